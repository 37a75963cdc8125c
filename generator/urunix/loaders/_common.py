"""The one schema shared by args.nix and YAML specs: turn plain data (dicts,
lists, scalars) plus a {field: line} map into a `Spec`.

Only the shape is checked here (a set where a set belongs, a list of strings
for argv); urunc values are validate.py's business, so they stay raw."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from ..errors import SpecError, did_you_mean
from ..spec import TOP_LEVEL_FIELDS, FileEntry, Rootfs, Source, Spec, display_path
from .nixdata import NixPath, dotted

ROOTFS_FIELDS = ("type", "from", "path", "include", "size", "fsType", "compression")
SOURCE_FIELDS = ("from", "path")

#: Fields whose strings name something inside the image or are plain text:
#: a Nix path literal there would silently become a host path, so refuse it.
_NO_PATHS = ("name", "tag", "annotations", "architecture", "cmd", "entrypoint", "env", "labels", "urunc")


def read_text(path: Path) -> str:
    """The spec file as text (UTF-8, a BOM dropped), or a SpecError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SpecError(
            "the spec file does not exist",
            file=display_path(path),
            hint="check the path, or run from the directory that holds the spec",
        ) from None
    except IsADirectoryError:
        raise SpecError(
            "expected a spec file, got a directory",
            file=display_path(path),
            hint="name the file itself, e.g. args.nix, spec.yaml or bunnyfile",
        ) from None
    except OSError as e:
        raise SpecError(f"cannot read the spec file: {e.strerror}", file=display_path(path)) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise SpecError(
            "the spec file is not valid UTF-8", file=display_path(path), line=line, hint="save the file as UTF-8"
        ) from None


class Shapes:
    """Shape checks that speak the input format's words (attribute set vs mapping)."""

    def __init__(self, spec: Spec):
        self.spec = spec
        self.nix = spec.format == "args.nix"

    @property
    def a_set(self) -> str:
        return "an attribute set" if self.nix else "a mapping"

    def error(self, field: str, message: str, value: Any, *, allowed: str | None = None, hint: str | None = None) -> SpecError:
        return SpecError(message, value=value, allowed=allowed, hint=hint, **self.spec.where(field))

    def mapping(self, field: str, value: Any, example: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            if isinstance(value, str) and "=" in value and field in ("env", "labels"):
                k, _, v = value.partition("=")  # `env: FOO=bar`: show their own pair as a mapping
                from ..syntax import setting

                example = setting(self.spec, f"{field}.{k.strip()}", v.strip()) or example
            raise self.error(field, f"must be {self.a_set}", value, hint=f"write it like: {example}")
        return value

    def string_list(self, field: str, value: Any) -> list[str] | None:
        if value is None:
            return None
        from ..syntax import setting

        example = setting(self.spec, field, value.split() if isinstance(value, str) and value.split() else ["/app", "--flag"])
        if not isinstance(value, list):
            raise self.error(field, "must be a list of strings (one per argument)", value, hint=f"write it like: {example}")
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise self.error(
                    dotted([field, i]),
                    "must be a string",
                    item,
                    hint="quote each argument" + (" (YAML reads true, 1 or 1.0 as non-strings)" if not self.nix else ""),
                )
        return list(value)

    def no_path_literals(self, field: str, value: Any) -> None:
        """A Nix path literal where a string belongs: `./x` would become a host path."""
        if isinstance(value, NixPath):
            raise self.error(field, "a Nix path literal is not allowed here", value, hint="write the value as a quoted string")
        if isinstance(value, dict):
            for k, v in value.items():
                self.no_path_literals(f"{field}.{dotted([k])}", v)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self.no_path_literals(f"{field}.{i}", v)


def file_entry(spec: Spec, shapes: Shapes, field: str, source: Any, target: Any) -> FileEntry:
    """One `"./src" = "/dst"` pair; the source resolves against the spec's directory."""
    if not isinstance(source, str):
        raise shapes.error(field, "a file source must be a string", source)
    if isinstance(target, NixPath) or not isinstance(target, str):
        raise shapes.error(
            field,
            "the target (the path inside the image) must be a string",
            target,
            hint='write it like: "./redis.hvt" = "/unikernel/redis.hvt";'
            if shapes.nix
            else 'write it like: "./redis.hvt": /unikernel/redis.hvt',
        )
    return FileEntry(source=str(source), path=spec.base_dir / source, target=target, field=field)


def files_from(spec: Spec, shapes: Shapes, field: str, value: Any, *, allow_list: bool = False) -> list[FileEntry]:
    """`files` as {source: target}; with allow_list also ["src:dst", ...] (rootfs.include)."""
    if allow_list and isinstance(value, list):
        out = []
        for i, item in enumerate(value):
            f = dotted([field, i])
            if not isinstance(item, str) or not item.split(":", 1)[0]:
                raise shapes.error(f, 'an include must be a "source:target" string', item)
            src, _, dst = item.partition(":")
            out.append(file_entry(spec, shapes, f, src, dst or src))
        return out
    example = '{ "./redis.hvt" = "/unikernel/redis.hvt"; }' if shapes.nix else '{"./redis.hvt": /unikernel/redis.hvt}'
    mapping = shapes.mapping(field, value, f"{field} = {example}" if shapes.nix else f"{field}: {example}")
    out = []
    for src, dst in mapping.items():
        try:  # one bad entry does not hide the others
            out.append(file_entry(spec, shapes, f"{field}.{dotted([src])}", src, dst))
        except SpecError as e:
            spec.problems.extend(e.problems)
    return out


def known_keys(shapes: Shapes, field: str, value: dict[str, Any], allowed: tuple[str, ...]) -> dict[str, Any]:
    """The known keys of `value`; each unknown one is a problem of its own
    (all of them, not just the first), and is left out."""
    out = {k: v for k, v in value.items() if k in allowed}
    lines = shapes.spec.lines
    for key in value:
        if key not in allowed:
            where = f"{field}.{dotted([key])}"
            shapes.spec.problems.extend(
                shapes.error(
                    where, f"unknown field in {field}", key, allowed=", ".join(allowed), hint=did_you_mean(key, allowed)
                ).problems
            )
            # read on as if the near miss were spelled right: its value is
            # checked too, and nothing follows from the typo alone
            close = difflib.get_close_matches(str(key), [k for k in allowed if k not in value], n=1, cutoff=0.6)
            if close and close[0] not in out:
                out[close[0]] = value[key]
                if where in lines:
                    lines.setdefault(f"{field}.{close[0]}", lines[where])
    return out


def source_from(shapes: Shapes, field: str, value: Any) -> Source:
    """`kernel`/`init`: { from; path; }, or a bare path/string meaning a local file."""
    if isinstance(value, str):
        return Source(origin="local", path=str(value), field=field)
    example = '{ from = "local"; path = "./vmlinux"; }' if shapes.nix else "{from: local, path: ./vmlinux}"
    mapping = known_keys(shapes, field, shapes.mapping(field, value, example), SOURCE_FIELDS)
    return Source(origin=mapping.get("from", "local"), path=mapping.get("path"), field=field)


def rootfs_from(spec: Spec, shapes: Shapes, value: Any) -> Rootfs:
    example = (
        '{ type = "initrd"; include = { "./conf" = "/conf"; }; }' if shapes.nix else "{type: initrd, include: [./conf:/conf]}"
    )
    mapping = known_keys(shapes, "rootfs", shapes.mapping("rootfs", value, example), ROOTFS_FIELDS)
    include = mapping.get("include")
    entries = []
    if include is not None:
        try:
            entries = files_from(spec, shapes, "rootfs.include", include, allow_list=True)
        except SpecError as e:
            spec.problems.extend(e.problems, marks=("rootfs.include",))
    return Rootfs(
        type=mapping.get("type"),
        origin=mapping.get("from", "scratch"),
        path=mapping.get("path"),
        include=entries,
        size=mapping.get("size"),
        fs_type=mapping.get("fsType"),
        compression=mapping.get("compression"),
        field="rootfs",
    )


def build_spec(data: Any, lines: dict[str, int], file: Path, fmt: str) -> Spec:
    """A Spec from the top-level value of an args.nix or YAML spec."""
    spec = Spec(file=file, format=fmt, lines=dict(lines))
    shapes = Shapes(spec)
    if not isinstance(data, dict):
        raise SpecError(
            f"the spec must be {shapes.a_set} at the top level",
            file=display_path(file),
            line=1,
            value=data,
            hint='start with { name = "..."; tag = "..."; ... }' if shapes.nix else "start with name: ..., tag: ..., ...",
        )
    for key, value in data.items():
        if key not in TOP_LEVEL_FIELDS:
            spec.unknown[key] = value
            continue
        try:
            _top_level(spec, shapes, key, value)
        except SpecError as e:
            # the field is left unset; validate then leaves out what only
            # follows from its absence (Problems.failed)
            spec.problems.extend(e.problems, marks=(key, *_FILLS.get(key, ())))
    return spec


#: annotations a top-level field supplies when it is right: when it is
#: wrong, validate must not also call them missing
_FILLS = {"kernel": ("annotations.binary",), "rootfs": ("annotations.initrd", "annotations.block")}


def _top_level(spec: Spec, shapes: Shapes, key: str, value: Any) -> None:
    """Read one known top-level field into `spec`; a SpecError leaves it unset."""
    if key in _NO_PATHS:
        shapes.no_path_literals(key, value)
    if key in ("name", "tag", "architecture", "urunc"):
        setattr(spec, key, value)
    elif key == "files":
        spec.files = files_from(spec, shapes, "files", value)
    elif key == "annotations":
        example = (
            '{ unikernelType = "rumprun"; hypervisor = "hvt"; }' if shapes.nix else "{unikernelType: rumprun, hypervisor: hvt}"
        )
        spec.annotations = dict(
            shapes.mapping("annotations", value, f"annotations = {example}" if shapes.nix else f"annotations: {example}")
        )
    elif key in ("cmd", "entrypoint"):
        setattr(spec, key, shapes.string_list(key, value))
    elif key in ("env", "labels"):
        example = '{ FOO = "bar"; }' if shapes.nix else "{FOO: bar}"
        setattr(spec, key, dict(shapes.mapping(key, value, f"{key} = {example}" if shapes.nix else f"{key}: {example}")))
    elif key == "rootfs":
        spec.rootfs = rootfs_from(spec, shapes, value)
    elif key in ("kernel", "init"):
        setattr(spec, key, source_from(shapes, key, value))
