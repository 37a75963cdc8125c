"""Loaders: one per input format, each turning a spec file into a `Spec`.

    from urunix.loaders import load
    spec = load(Path("args.nix"))              # format from the file name
    spec = load(Path("spec"), format="yaml")   # or said explicitly
    spec = load(Path("Containerfile"), from_map={"unikraft.org/nginx:1.15": "./nginx.tar"})

Loaders keep what the user wrote and where (Spec.lines); they refuse
malformed input but leave urunc values to validate.py."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import SpecError, did_you_mean
from ..spec import Spec, display_path

FORMATS = ("args.nix", "yaml", "bunnyfile", "containerfile")

_BUNNY_KEYS = re.compile(r"^(version|platforms)\s*:", re.M)


def load(
    path: Path | str, format: str | None = None, *, from_map: dict[str, str] | None = None, keep_problems: bool = False
) -> Spec:
    """Read `path` as `format` ("args.nix", "yaml", "bunnyfile", "containerfile";
    None: detect). `from_map` maps a Containerfile's `FROM name:tag` to a
    local image archive or OCI layout (the CLI's `--from NAME=PATH`).

    A file that cannot be read at all raises SpecError. Shape problems (a
    string where a list belongs, an unknown key) leave that field unset and
    are kept in Spec.problems: with keep_problems the caller gets the Spec
    and validate() reports them together with its own, in one run (what the
    CLI does); without, they are raised here."""
    spec = _load(path, format, from_map)
    if not keep_problems:
        spec.problems.raise_if_any()
    return spec


def _load(path: Path | str, format: str | None, from_map: dict[str, str] | None) -> Spec:
    path = Path(path).absolute()
    if format is None:
        format = detect(path)
    elif format not in FORMATS:
        raise SpecError("unknown spec format", value=format, allowed=", ".join(FORMATS), hint=did_you_mean(format, FORMATS))
    if from_map and format != "containerfile":
        raise SpecError(
            "--from NAME=PATH applies to Containerfiles only",
            field="--from",
            value=", ".join(from_map),
            hint=f"this spec is read as {format}",
        )
    if format == "containerfile":
        from . import containerfile

        return containerfile.load(path, from_map)
    if format == "args.nix":
        from . import argsnix

        return argsnix.load(path)
    if format == "yaml":
        from . import yamlspec

        return yamlspec.load(path)
    from . import bunnyfile

    return bunnyfile.load(path)


def detect(path: Path) -> str:
    """The format of a spec file: by name (`*.nix`, `bunnyfile`, `*.bunnyfile`,
    `Containerfile`, `Dockerfile`, `*.Containerfile`, `*.Dockerfile`), then by
    content (top-level `version:` and `platforms:` make a bunnyfile, whatever
    the name), then `*.yaml`/`*.yml`."""
    name = path.name
    if name.endswith(".example"):  # args.nix.example, spec.yaml.example
        name = name[: -len(".example")]
    suffix = Path(name).suffix
    if name == "bunnyfile" or name.endswith(".bunnyfile"):
        return "bunnyfile"
    if name in ("Containerfile", "Dockerfile") or name.endswith((".Containerfile", ".Dockerfile")):
        return "containerfile"
    if suffix == ".nix":
        return "args.nix"
    if _looks_like_bunnyfile(path):
        return "bunnyfile"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    raise SpecError(
        "cannot tell the spec format from the file name",
        file=display_path(path),
        allowed=", ".join(FORMATS),
        hint="name it *.nix, *.yaml, *.yml, bunnyfile or Containerfile, or give the format explicitly",
    )


def _looks_like_bunnyfile(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(65536).decode("utf-8", "replace")
    except OSError:
        return False
    return {m.group(1) for m in _BUNNY_KEYS.finditer(head)} == {"version", "platforms"}
