"""The one spec model. Every input format (args.nix, YAML, bunnyfile) is read
into a `Spec`; validation turns a `Spec` into an `Image`, which every backend
(native, Nix) consumes. Loaders keep what the user wrote (raw values, line
numbers); they do not judge it -- that is validate.py's job."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from .errors import Problems

#: Fields of the top level of an args.nix / YAML spec.
TOP_LEVEL_FIELDS = (
    "name",
    "tag",
    "files",
    "annotations",
    "architecture",
    "cmd",
    "entrypoint",
    "env",
    "labels",
    "rootfs",
    "kernel",
    "init",
    "urunc",
)


@dataclass
class FileEntry:
    """A host file or directory copied into the image: `files."./src" = "/dst"`."""

    source: str  # as the user wrote it, e.g. "./redis.hvt"
    path: Path  # resolved against the spec's directory
    target: str  # absolute path inside the image, as written
    field: str  # e.g. 'files."./redis.hvt"', for messages
    # paths below a directory source that are left out (a Containerfile's
    # .dockerignore), relative to it; an excluded directory takes its contents
    exclude: frozenset[str] = frozenset()


@dataclass
class Source:
    """Where a kernel, init or rootfs comes from: `from` plus a path inside it."""

    origin: str  # "local", "./file", "./image.tar", "oci:./layout", "docker://ref@sha256:..."
    path: str | None = None  # local: the host file; else the path inside the image (and where it lands)
    field: str = ""
    target: str | None = None  # where it lands, when that differs from `path` (bunny: /.boot/kernel)


@dataclass
class Rootfs:
    """The guest's root filesystem (bunny's `rootfs` section)."""

    type: str | None = None  # initrd | block | raw | base (a Containerfile's FROM: files only)
    origin: str = "scratch"  # scratch | local | ./dir | image archive
    path: str | None = None  # local: host file; else where it sits in the image
    include: list[FileEntry] = field(default_factory=list)
    size: str | None = None
    fs_type: str | None = None
    compression: str | None = None
    field: str = "rootfs"


@dataclass
class Spec:
    """What the user asked for, in any input format, before any judgement."""

    file: Path  # the spec file (for messages and relative paths)
    format: str  # "args.nix" | "yaml" | "bunnyfile" | "containerfile"
    name: Any = None
    tag: Any = None
    files: list[FileEntry] = field(default_factory=list)
    annotations: dict[str, Any] = field(default_factory=dict)
    architecture: Any = None
    cmd: Any = None  # list[str] argv, or None
    entrypoint: Any = None  # list[str], or None
    env: Any = field(default_factory=dict)  # {KEY: VALUE}
    labels: Any = field(default_factory=dict)  # extra image labels
    rootfs: Rootfs | None = None
    kernel: Source | None = None
    init: Source | None = None
    lines: dict[str, int] = field(default_factory=dict)  # field -> line in `file`
    unknown: dict[str, Any] = field(default_factory=dict)  # top-level keys we do not know
    notes: list[str] = field(default_factory=list)  # rendered warnings a loader found (e.g. Containerfile)
    workdir: str | None = None  # the image's WorkingDir (a Containerfile's WORKDIR)
    names: dict[str, str] = field(default_factory=dict)  # spec field -> the user's own name for it (syntax.py)
    problems: Problems = field(default_factory=Problems)  # what the loader found wrong; validate adds the rest
    urunc: Any = None  # the urunc releases to build for (list, or "v0.6.0,main"); None: the default

    @property
    def base_dir(self) -> Path:
        return self.file.parent

    def where(self, fieldname: str) -> dict[str, Any]:
        """Location keywords for a Problem about `fieldname`: the field as
        the user wrote it (syntax.name), its line, and the model's name as `key`."""
        from .syntax import name

        line = self.lines.get(fieldname)
        if line is None and "." in fieldname:
            line = self.lines.get(fieldname.rsplit(".", 1)[0])
        return {"file": display_path(self.file), "field": name(self, fieldname), "line": line, "key": fieldname}


@dataclass
class Origin:
    """Where a tree or a file comes from, once resolved.

    kind: scratch | dir (a host directory) | file (a host file) |
    image (docker-archive, oci-archive or OCI layout on this host) |
    registry (a reference pinned by digest) | dockerfile (built with the
    Docker Engine, kraft style)."""

    kind: str
    location: str = ""  # absolute host path, or the registry reference
    field: str = ""


@dataclass
class RootfsBuild:
    """A guest rootfs urunix builds: the tree of `origin` plus `include`
    (plus the init), as an initrd, a block image, or the image's own rootfs."""

    type: str  # initrd | block | raw (base: raw without implying devmapper)
    origin: Origin
    include: list[FileEntry] = field(default_factory=list)
    target: str | None = None  # where the initrd/block image sits in the image
    size: str = "auto"
    fs_type: str = "ext2"
    compression: str = "none"  # none | gzip (initrd only)
    hardlinks: str = "link"  # link | copy (Unikraft's cpio reader ignores hard links)
    field: str = "rootfs"


@dataclass
class Extract:
    """One file put into the image (kernel) or the guest rootfs (init),
    taken from a host file or from inside an image."""

    origin: Origin
    inner: str | None  # path inside the image (kind image/registry)
    target: str  # absolute path where it lands
    field: str = ""


@dataclass(frozen=True)
class Image:
    """A validated, normalized image: the one thing every backend builds.
    Frozen, its lists tuples and its maps read-only: no stage after the
    validator changes what the validator judged.

    `annotations` holds short key names with plain-text values, only those
    set, with both useDMBlock and mountRootfs written when either was given."""

    name: str
    tag: str
    architecture: str  # GOARCH: amd64 | arm64
    annotations: Mapping[str, str]
    cmd: tuple[str, ...]
    entrypoint: tuple[str, ...] | None
    env: tuple[str, ...]  # ("KEY=VALUE", ...): the rootfs image's, then the spec's
    labels: Mapping[str, str]  # user labels (urunc labels are added by the plan)
    files: tuple[FileEntry, ...]
    created: str = "1970-01-01T00:00:01Z"
    os: str = "linux"
    source: Path | None = None
    rootfs: RootfsBuild | None = None
    kernel: Extract | None = None
    init: Extract | None = None
    # a rootfs image's command that was not read (the Nix check: the Nix
    # library refuses the spec); else Entrypoint/Cmd are final
    argv_from_image: bool = False
    workdir: str | None = None
    targets: tuple[str, ...] = ()  # the urunc releases the image is built for (urunc_rules.py)

    def __post_init__(self) -> None:
        for key in ("annotations", "labels"):
            object.__setattr__(self, key, MappingProxyType(dict(getattr(self, key))))
        for key in ("cmd", "env", "files", "targets"):
            object.__setattr__(self, key, tuple(getattr(self, key)))
        if self.entrypoint is not None:
            object.__setattr__(self, "entrypoint", tuple(self.entrypoint))

    def to_json(self) -> dict[str, Any]:
        """The normalized spec as plain data (what the Nix library takes)."""
        return {
            "name": self.name,
            "tag": self.tag,
            "architecture": self.architecture,
            "annotations": dict(self.annotations),
            "cmd": list(self.cmd),
            "entrypoint": None if self.entrypoint is None else list(self.entrypoint),
            "env": list(self.env),
            "labels": dict(self.labels),
            "files": [{"source": f.source, "target": f.target} for f in self.files],
            "created": self.created,
        }


def display_path(path: Path) -> str:
    """A path as short as is still clear: relative to the cwd when under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)
