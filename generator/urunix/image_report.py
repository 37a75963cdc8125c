"""`urunix inspect`: what urunc will read from an image, from both places it
can read it (config labels and /urunc.json), and where they disagree.

Inputs, as skopeo names them: a docker-archive or oci-archive file, an OCI
layout directory (`DIR`, `oci:DIR`, `oci:DIR:TAG`), or an image loaded into
Docker (`docker-daemon:NAME:TAG`, read through `docker save`).

`--json` prints `report()`'s dict: every key always present, in this order,
`schemaVersion` 1 (bumped only when a key changes meaning or goes away):
schemaVersion, image, format, repoTags, architecture, os, created,
entrypoint, cmd, env, labels (urunc's, short keys), uruncJson (decoded, or
null), manifestAnnotations (urunc's, short keys), uruncImage (bool), missing
(what a urunc image needs and this one lacks), disagreements (strings).

Exit code: 0 a urunc image whose sources agree; 1 not a urunc image, or
they disagree; 2 not an image at all."""

from __future__ import annotations

import binascii
import json
import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from typing import Iterator

from .errors import MissingTool, SpecError
from .helpers.urunc_json import PREFIX, decode
from .imagefile import ImageFormatError, open_image
from .rootfs.flatten import read_file

SCHEMA_VERSION = 1
INPUT_FORMS = "an image archive (docker save, urunix build), an OCI layout DIR, oci:DIR[:TAG], docker-daemon:NAME:TAG"


def _section(value: object, what: str, path: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ImageFormatError(f"{what} is not a JSON object", file=path, value=value)
    return value


@contextmanager
def _local(ref: str) -> Iterator[tuple[str, str | None]]:
    """(a host path open_image reads, the tag to pick in an OCI layout)."""
    if ref.startswith("docker-daemon:"):
        name = ref[len("docker-daemon:") :]
        if not name:
            raise SpecError("names no image", field="IMAGE", value=ref, hint="e.g. docker-daemon:alpine:3.20")
        docker = shutil.which("docker")
        if docker is None:
            raise MissingTool("docker", "apt-get install docker.io", "to read an image from the Docker Engine")
        with tempfile.TemporaryDirectory(prefix="urunix-inspect-") as tmp:
            out = os.path.join(tmp, "image.tar")
            r = subprocess.run([docker, "save", "-o", out, name], capture_output=True, text=True, stdin=subprocess.DEVNULL)
            if r.returncode != 0:
                why = r.stderr.strip().removeprefix("Error response from daemon: ").removeprefix("Error: ")
                raise SpecError(
                    f"docker cannot save it: {why or 'no message'}",
                    field="IMAGE",
                    value=ref,
                    hint=f"is it loaded? docker image ls {name.split(':')[0]}",
                )
            yield out, None
        return
    if ref.startswith("oci:"):
        rest = ref[len("oci:") :]
        if os.path.isdir(rest) or ":" not in rest:
            yield rest, None
        else:
            layout, _, tag = rest.rpartition(":")
            yield layout, tag
        return
    yield ref, None


def inspect_image(path: str) -> dict:
    with _local(path) as (local, tag):
        if not os.path.lexists(local):
            raise SpecError("no such file or directory", file=path, hint=f"give {INPUT_FORMS}")
        return _report(path, local, tag)


def _report(shown: str, local: str, tag: str | None) -> dict:
    with open_image(local, ref=tag) as (info, store):
        cfg = _section(info.config.get("config"), 'the config\'s "config"', shown)
        all_labels = _section(cfg.get("Labels"), "the config's Labels", shown)
        labels = {k[len(PREFIX) :]: v for k, v in all_labels.items() if k.startswith(PREFIX)}
        raw = read_file(store, info, "/urunc.json", image=shown)
    problems: list[str] = []
    missing: list[str] = []
    urunc = None
    if raw is None:
        missing.append("/urunc.json")
    else:
        try:
            urunc = decode(raw)
        except RecursionError:
            problems.append("/urunc.json is not valid for urunc: it is nested too deeply")
        except (ValueError, binascii.Error, UnicodeDecodeError) as e:
            problems.append(f"/urunc.json is not valid for urunc: {e}")
    ann = {k[len(PREFIX) :]: v for k, v in info.manifest_annotations.items() if k.startswith(PREFIX)}
    if not labels:
        missing.append(f"{PREFIX}* labels")
    is_urunc = bool(labels or urunc or ann or raw is not None)
    if is_urunc:
        if raw is None:
            problems.append("/urunc.json is missing: urunc reads only it under Docker/nerdctl and with devmapper")
        if urunc is not None:
            for key in sorted(set(labels) | set(urunc)):
                a, b = labels.get(key), urunc.get(key)
                if a != b:
                    problems.append(f"{key}: label {_shown(a)} but urunc.json {_shown(b)}")
        for key in sorted(set(ann) & set(labels)):
            if ann[key] != labels[key]:
                problems.append(f"{key}: label {_shown(labels[key])} but manifest annotation {_shown(ann[key])}")
    return {
        "schemaVersion": SCHEMA_VERSION,
        "image": shown,
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
        "uruncImage": is_urunc,
        "missing": missing if not is_urunc or raw is None else [],
        "disagreements": problems,
    }


def _shown(value: object) -> str:
    """A value in a message: JSON-quoted, or `absent` (never a Python repr)."""
    return "absent" if value is None else json.dumps(value, ensure_ascii=False)


def _argv(value: object) -> str:
    if value is None:
        return "(none)"
    return json.dumps(value, ensure_ascii=False)


def exit_code(report: dict) -> int:
    return 0 if report["uruncImage"] and not report["disagreements"] else 1


def render(report: dict, console) -> None:
    from rich.table import Table
    from rich.text import Text

    # Every value comes from the image: plain Text, never rich markup.
    tags = ", ".join(report["repoTags"]) or "(untagged)"
    console.print(f"{report['image']}: {report['format']}, {tags}, {report['os']}/{report['architecture']}", markup=False)
    console.print(f"Entrypoint: {_argv(report['entrypoint'])}", markup=False)
    console.print(f"Cmd: {_argv(report['cmd'])}", markup=False)
    if not report["uruncImage"]:
        console.print(
            "not a urunc image: it has no "
            + " and no ".join(report["missing"])
            + ", so urunc would hand it to runc as an ordinary container.",
            markup=False,
        )
        console.print(
            "to make it one, take it as the rootfs of a Linux guest, e.g. in spec.yaml:\n"
            f"    rootfs: {{type: block, from: ./image.tar}}   # docker save -o image.tar {tags.split(',')[0] if report['repoTags'] else 'IMAGE'}\n"
            "    kernel: ./vmlinux\n"
            "    annotations: {unikernelType: linux, hypervisor: qemu}\n"
            "  then: urunix build spec.yaml (see the README: Root filesystems, kernels and inits)",
            markup=False,
        )
        return
    table = Table("annotation", "label", "urunc.json")
    keys = sorted(set(report["labels"]) | set(report["uruncJson"] or {}))
    for key in keys:
        a, b = report["labels"].get(key), (report["uruncJson"] or {}).get(key)
        table.add_row(Text(key), Text("-" if a is None else a), Text("-" if b is None else b))
    console.print(table)
    for p in report["disagreements"]:
        console.print(f"DISAGREEMENT: {p}", markup=False)
    if not report["disagreements"]:
        console.print("labels and urunc.json agree", markup=False)


__all__ = ["inspect_image", "render", "exit_code", "ImageFormatError"]
