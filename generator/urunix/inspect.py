"""`urunix inspect`: what urunc will read from an image, from both places it
can read it (config labels and /urunc.json), and where they disagree."""

from __future__ import annotations

import binascii

from .helpers.urunc_json import PREFIX, decode
from .imagefile import ImageFormatError, open_image, read_file


def _section(value: object, what: str, path: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ImageFormatError(f"{what} is not a JSON object", file=path, value=value)
    return value


def inspect_image(path: str) -> dict:
    with open_image(path) as (info, store):
        cfg = _section(info.config.get("config"), 'the config\'s "config"', path)
        all_labels = _section(cfg.get("Labels"), "the config's Labels", path)
        labels = {k[len(PREFIX):]: v for k, v in all_labels.items() if k.startswith(PREFIX)}
        raw = read_file(store, info, "/urunc.json")
    problems: list[str] = []
    urunc = None
    if raw is None:
        problems.append("/urunc.json is missing: urunc reads only it under Docker/nerdctl and with devmapper")
    else:
        try:
            urunc = decode(raw)
        except RecursionError:
            problems.append("/urunc.json is not valid for urunc: it is nested too deeply")
        except (ValueError, binascii.Error, UnicodeDecodeError) as e:
            problems.append(f"/urunc.json is not valid for urunc: {e}")
    if urunc is not None:
        for key in sorted(set(labels) | set(urunc)):
            a, b = labels.get(key), urunc.get(key)
            if a != b:
                problems.append(f"{key}: label {a!r} but urunc.json {b!r}")
    ann = {k[len(PREFIX):]: v for k, v in info.manifest_annotations.items() if k.startswith(PREFIX)}
    for key in sorted(set(ann) & set(labels)):
        if ann[key] != labels[key]:
            problems.append(f"{key}: label {labels[key]!r} but manifest annotation {ann[key]!r}")
    return {
        "image": path,
        "format": info.format,
        "repoTags": info.repo_tags,
        "architecture": info.config.get("architecture"),
        "os": info.config.get("os"),
        "created": info.config.get("created"),
        "entrypoint": cfg.get("Entrypoint"),
        "cmd": cfg.get("Cmd"),
        "env": cfg.get("Env"),
        "labels": labels,
        "uruncJson": urunc,
        "manifestAnnotations": ann,
        "disagreements": problems,
    }


def render(report: dict, console) -> None:
    from rich.table import Table
    from rich.text import Text

    # Every value comes from the image: plain Text, never rich markup.
    console.print(f"{report['image']}: {report['format']} {', '.join(report['repoTags']) or '(untagged)'} "
                  f"{report['os']}/{report['architecture']}", markup=False)
    console.print(f"Entrypoint: {report['entrypoint']!r}  Cmd: {report['cmd']!r}", markup=False)
    table = Table("annotation", "label", "urunc.json")
    keys = sorted(set(report["labels"]) | set(report["uruncJson"] or {}))
    for key in keys:
        table.add_row(Text(key), Text(repr(report["labels"].get(key))), Text(repr((report["uruncJson"] or {}).get(key))))
    console.print(table)
    for p in report["disagreements"]:
        console.print(f"DISAGREEMENT: {p}", markup=False)
    if not report["disagreements"]:
        console.print("labels and urunc.json agree", markup=False)


__all__ = ["inspect_image", "render", "ImageFormatError"]
