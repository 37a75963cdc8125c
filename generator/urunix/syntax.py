"""The user's own words for a spec field: every message names the field and
shows the fix in the syntax of the file the user wrote.

Validation speaks the one spec model (`annotations.hypervisor`, `cmd`,
`rootfs.type`); a bunnyfile user wrote `platforms.monitor`, a Containerfile
user `LABEL com.urunc.unikernel.hypervisor=...`. Two functions translate:

    name(spec, "annotations.hypervisor")          -> "platforms.monitor"
    setting(spec, "annotations.hypervisor", "qemu")
        args.nix:      annotations.hypervisor = "qemu";
        yaml:          hypervisor: qemu  (under annotations:)
        bunnyfile:     monitor: qemu  (under platforms:)
        containerfile: LABEL com.urunc.unikernel.hypervisor="qemu"

`setting` returns None when the format cannot say it at all (a bunnyfile has
no `useDMBlock`: bunny derives it from rootfs.type); the caller then
explains what decides it instead."""

from __future__ import annotations

import json
import re
from typing import Any

from .helpers.urunc_json import PREFIX

#: Spec field -> bunnyfile key, where bunny has one (hops/package.go).
BUNNY_NAMES = {
    "annotations": "platforms",
    "annotations.unikernelType": "platforms.framework",
    "annotations.hypervisor": "platforms.monitor",
    "annotations.unikernelVersion": "platforms.version",
    "annotations.cmdline": "cmdline",
    "architecture": "platforms.architecture",
    "annotations.binary": "kernel.path",
    "annotations.initrd": "rootfs.path",
    "annotations.block": "rootfs.path",
    "annotations.useDMBlock": "rootfs.type",
    "annotations.mountRootfs": "rootfs.type",
    "annotations.blkMntPoint": "rootfs.type",
    "env": "envs",
    "files": "rootfs.include",
    "name": "image name",
    "tag": "image tag",
}

#: What a bunnyfile writes for a spec field (the key, under its section).
BUNNY_KEYS = {
    "annotations.unikernelType": ("platforms", "framework"),
    "annotations.hypervisor": ("platforms", "monitor"),
    "annotations.unikernelVersion": ("platforms", "version"),
    "architecture": ("platforms", "architecture"),
    "annotations.cmdline": ("", "cmdline"),
    "cmd": ("", "cmd"),
    "entrypoint": ("", "entrypoint"),
    "rootfs.type": ("rootfs", "type"),
    "rootfs.from": ("rootfs", "from"),
    "rootfs.path": ("rootfs", "path"),
    "kernel.from": ("kernel", "from"),
    "kernel.path": ("kernel", "path"),
}

_CF_FIXED = {
    "cmd": "CMD",
    "entrypoint": "ENTRYPOINT",
    "name": "image name",
    "tag": "image tag",
    "architecture": "FROM --platform",
    "files": "COPY",
    "env": "ENV",
}


def name(spec: Any, field: str) -> str:
    """`field` as the user wrote it (or would write it) in their file."""
    names = getattr(spec, "names", {}) or {}
    if field in names:
        return names[field]
    fmt = getattr(spec, "format", "args.nix")
    if fmt == "bunnyfile":
        if field in BUNNY_NAMES:
            return BUNNY_NAMES[field]
        if field.startswith("env."):
            return "envs"
    elif fmt == "containerfile":
        if field in _CF_FIXED:
            return _CF_FIXED[field]
        head, _, rest = field.partition(".")
        if head == "annotations" and rest:
            return f"LABEL {PREFIX}{rest}"
        if head == "labels" and rest:
            return f"LABEL {rest}"
        if head == "env" and rest:
            return f"ENV {rest}"
    return field


def _nix(value: Any) -> str:
    if isinstance(value, list):
        return "[ " + " ".join(_nix(v) for v in value) + " ]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == "...":
        return '"..."'
    return json.dumps(value, ensure_ascii=False).replace("${", "\\${")


_YAML_PLAIN = re.compile(r"^[A-Za-z0-9_./][A-Za-z0-9_./ =+-]*$")


def _yaml(value: Any) -> str:
    if isinstance(value, list):  # a flow list: every item quoted, as in bunny's README
        return json.dumps([str(v) for v in value], ensure_ascii=False).replace('", "', '", "')
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if value == "...":
        return "..."
    # quote what YAML would read as something else (true, 1.0, null, a: b)
    if (
        _YAML_PLAIN.match(text)
        and text.lower() not in ("true", "false", "yes", "no", "on", "off", "null", "~")
        and not re.fullmatch(r"[-+]?[0-9][0-9._]*(e[-+]?[0-9]+)?", text, re.I)
        and not text.endswith(" ")
    ):
        return text
    return json.dumps(text, ensure_ascii=False)


def setting(spec: Any, field: str, value: Any = "...") -> str | None:
    """How to write `field = value` in the user's format, or None if it cannot."""
    fmt = getattr(spec, "format", "args.nix")
    if fmt == "args.nix":
        return f"{field} = {_nix(value)};"
    if fmt == "containerfile":
        if field.startswith("annotations."):
            return f"LABEL {PREFIX}{field[len('annotations.') :]}={json.dumps(str(value), ensure_ascii=False)}"
        if field in ("cmd", "entrypoint"):
            args = value if isinstance(value, list) else [value]
            return f"{field.upper()} {json.dumps(args, ensure_ascii=False)}"
        if field in ("name", "tag"):
            return "pass -t NAME:TAG on the command line (a Containerfile has no image name)"
        if field.startswith("env."):
            return f"ENV {field[4:]}={json.dumps(str(value), ensure_ascii=False)}"
        return None
    if fmt == "bunnyfile":
        if field in ("name", "tag"):
            return "pass -t NAME:TAG on the command line (a bunnyfile has no image name)"
        if field not in BUNNY_KEYS:
            return None
        section, key = BUNNY_KEYS[field]
        line = f"{key}: {_yaml(value)}"
        return f"{line}  (under {section}:)" if section else line
    # YAML: the same schema as args.nix
    head, _, rest = field.partition(".")
    if rest:
        return f"{rest}: {_yaml(value)}  (under {head}:)"
    return f"{field}: {_yaml(value)}"


def example(spec: Any, field: str, value: Any, fallback: str) -> str:
    """`setting(...)`, or `fallback` (an explanation) when the format cannot say it."""
    return setting(spec, field, value) or fallback
