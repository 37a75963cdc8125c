"""bunny's `bunnyfile` (YAML, version v0.1), mapped onto a Spec the way bunny
(github.com/nubificus/bunny, hops/package.go) builds its image:

- `platforms.framework/monitor/version` -> annotations unikernelType,
  hypervisor, unikernelVersion; `platforms.architecture` -> Spec.architecture
  (raw, e.g. `x86`; validate maps it).
- `kernel: {from: local, path: P}` -> P is copied to `/.boot/kernel` and
  `binary` points there (bunny's DefaultKernelPath). A kernel from an image is
  not supported yet.
- `rootfs`, with `from` defaulting to scratch as in bunny:
  - `from: local, path: P` -> P is copied to `/.boot/rootfs` (bunny's
    DefaultRootfsPath); `initrd` (or `block`) points there.
  - `from: scratch, type: raw, include: [src:dst]` -> the files go into the
    image's own rootfs (Spec.files), and useDMBlock/mountRootfs are "true".
  - `from: scratch, type: initrd|block, include: ...` -> Spec.rootfs carries
    the includes to build at `/.boot/rootfs` (the planner decides whether it
    can build it yet); `initrd`/`block` point there.
  - from an image: not supported yet.
  Unlike bunny, a missing `type` is not silently `raw` for every framework
  but Unikraft: Unikraft defaults to initrd as in bunny; others must say.
  Otherwise useDMBlock and mountRootfs are "false", as bunny writes
  mountRootfs (urunc v0.5 defaults an unset useDMBlock to true).
  `block` also sets blkMntPoint like bunny: "/", or "/data" for rumprun.
  Spec.rootfs is set whenever a rootfs section exists. Whatever is a plain
  copy is already in Spec.files: only a non-empty `Spec.rootfs.include`
  still needs building.
- `cmdline` -> annotations.cmdline byte for byte. bunny ignores cmdline when
  `cmd` is given (non-empty); so do we: it is then dropped.
- `cmd`, `entrypoint` -> Spec.cmd/entrypoint; `envs: [K=V]` -> Spec.env.
- A bunnyfile has no name or tag: they stay None, the CLI takes `-t name:tag`.

Fields bunny reads as strings take the scalar's text as written
(`version: 0.17` is "0.17", as Go's YAML decoder gives bunny). Unknown keys
at any level are refused with a did-you-mean (bunny ignores them)."""

from __future__ import annotations

import difflib
import posixpath
from pathlib import Path
from typing import Any

from ..errors import _UNSET, NotSupportedYet, SpecError, did_you_mean
from ..spec import FileEntry, Rootfs, Source, Spec, display_path
from ._common import read_text
from .nixdata import dotted
from .yamlspec import read_yaml

VERSION = "v0.1"
KERNEL_PATH = "/.boot/kernel"
ROOTFS_PATH = "/.boot/rootfs"
ROOTFS_TYPES = ("initrd", "block", "raw")

FIELDS: dict[str, tuple[str, ...]] = {
    "": ("version", "platforms", "rootfs", "kernel", "cmdline", "cmd", "entrypoint", "envs", "urunc"),
    "platforms": ("framework", "monitor", "architecture", "version"),
    "rootfs": ("from", "type", "path", "include"),
    "kernel": ("from", "path"),
    "include": ("from", "source", "destination"),
}


def load(path: Path) -> Spec:
    data, lines, texts = read_yaml(read_text(path), path)
    return _Bunny(path, lines, texts).spec_from(data)


class _Bunny:
    def __init__(self, path: Path, lines: dict[str, int], texts: dict[str, str]):
        self.spec = Spec(file=path, format="bunnyfile", lines=dict(lines))
        self.texts = texts
        self.unsupported: list[NotSupportedYet] = []

    # -- helpers -------------------------------------------------------------
    def err(
        self, field: str, message: str, value: Any = _UNSET, *, allowed: str | None = None, hint: str | None = None
    ) -> SpecError:
        return SpecError(message, value=value, allowed=allowed, hint=hint, **self.spec.where(field))

    def not_yet(self, field: str, what: str) -> None:
        self.unsupported.append(NotSupportedYet(what, **self.spec.where(field)))

    def alias(self, spec_field: str, *bunny_fields: str) -> None:
        """Let messages about a Spec field point at the bunnyfile line it came
        from, and name it as the bunnyfile does (syntax.name)."""
        for f in bunny_fields:
            if f in self.spec.lines:
                self.spec.lines[spec_field] = self.spec.lines[f]
                self.spec.names[spec_field] = f
                return

    #: the spec fields each part fills: when the part fails, validate must not
    #: also report them as missing (errors.Problems)
    FILLS = {
        "platforms": ("annotations.unikernelType", "annotations.hypervisor", "annotations.unikernelVersion", "architecture"),
        "kernel": ("annotations.binary",),
        "rootfs": ("annotations.initrd", "annotations.block", "annotations.useDMBlock", "annotations.mountRootfs"),
        "cmd": ("cmd", "entrypoint", "annotations.cmdline", "env"),
    }

    def step(self, field: str, fn: Any, *args: Any) -> Any:
        """Run one part of the mapping; its SpecError becomes problems (the
        part is then left out) so that the other parts are still checked."""
        try:
            return fn(*args)
        except SpecError as e:
            self.spec.problems.extend(e.problems, marks=(field, *self.FILLS.get(field, ())))
            return None

    def section(self, field: str, value: Any, kind: str, required: bool = False) -> dict[str, Any] | None:
        if value is None:
            if required:
                raise self.err(
                    field or "bunnyfile",
                    f"the {field} section is required",
                    hint=f"see bunny's README: {field}: with " + ", ".join(FIELDS[kind]),
                )
            return None
        if not isinstance(value, dict):
            raise self.err(
                field or "bunnyfile", f"{field or 'a bunnyfile'} must be a mapping", value, allowed=", ".join(FIELDS[kind])
            )
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in FIELDS[kind]:
                out.setdefault(key, item)
                continue
            f = f"{field}.{dotted([key])}" if field else dotted([key])
            self.spec.problems.extend(
                self.err(
                    f,
                    f"unknown field{' in ' + field if field else ''}",
                    key,
                    allowed=", ".join(FIELDS[kind]),
                    hint=did_you_mean(key, FIELDS[kind]) or "bunny ignores unknown fields; urunix refuses them",
                ).problems
            )
            # read on as if the near miss were spelled right, so the rest of
            # the section is checked as the user meant it (and nothing is
            # reported that only follows from the typo)
            close = difflib.get_close_matches(str(key), [k for k in FIELDS[kind] if k not in value], n=1, cutoff=0.6)
            if close:
                out.setdefault(close[0], item)
                fixed = f"{field}.{close[0]}" if field else close[0]
                if f in self.spec.lines:
                    self.spec.lines.setdefault(fixed, self.spec.lines[f])
                    self.texts.setdefault(fixed, self.texts.get(f, ""))
        return out

    def text(self, field: str, value: Any, required: bool = False) -> str | None:
        """A field bunny reads as a string: a non-string scalar gives its text as written."""
        if required and value in (None, ""):
            raise self.err(field, f"{field} is required", hint="bunny requires it too")
        if value is None:
            return None
        if isinstance(value, (dict, list)):
            raise self.err(field, f"{field} must be a string", value)
        if isinstance(value, str):
            return value
        return self.texts.get(field, str(value))

    def strings(self, field: str, value: Any) -> list[str] | None:
        if value is None:
            return None
        if not isinstance(value, list):
            raise self.err(field, f"{field} must be a list of strings", value, hint=f'write it like: {field}: ["/app", "--flag"]')
        return [self.text(f"{field}.{i}", v) or "" for i, v in enumerate(value)]

    # -- the mapping -----------------------------------------------------------
    def spec_from(self, data: Any) -> Spec:
        if data is None:
            raise SpecError(
                "the bunnyfile is empty",
                file=display_path(self.spec.file),
                hint="it needs at least version, platforms and kernel",
            )
        top = self.section("", data, "")
        assert top is not None
        self.step("version", self.version, top.get("version"))
        framework = self.step("platforms", self.platforms, top.get("platforms"))
        self.step("kernel", self.kernel, top.get("kernel"))
        rootfs_type = self.step("rootfs", self.rootfs, top.get("rootfs"), framework)
        if not self.spec.problems.failed("rootfs"):
            self.storage_flags(rootfs_type, framework)
        self.step("cmd", self.command, top)
        # urunix's own key: the urunc releases to build for (a list, or "v0.6.0,main")
        urunc = top.get("urunc")
        self.spec.urunc = self.step(
            "urunc", lambda v: self.strings("urunc", v) if isinstance(v, list) else self.text("urunc", v), urunc
        )
        if self.unsupported and not self.spec.problems:  # only "not supported yet": say so by type too
            self.unsupported.sort(key=lambda e: e.problem.line or 0)
            first = self.unsupported[0]
            first.problems = [e.problem for e in self.unsupported]
            raise first
        for e in self.unsupported:
            self.spec.problems.extend(e.problems)
        return self.spec

    def version(self, value: Any) -> None:
        version = self.text("version", value, required=True)
        if version != VERSION:
            raise self.err("version", "unsupported bunnyfile version", version, allowed=VERSION, hint=f"write version: {VERSION}")

    def platforms(self, value: Any) -> str | None:
        plat = self.section("platforms", value, "platforms", required=True)
        assert plat is not None
        ann = self.spec.annotations
        ann["unikernelType"] = framework = self.text("platforms.framework", plat.get("framework"), required=True)
        ann["hypervisor"] = self.text("platforms.monitor", plat.get("monitor"), required=True)
        self.alias("annotations", "platforms")
        self.alias("annotations.unikernelType", "platforms.framework")
        self.alias("annotations.hypervisor", "platforms.monitor")
        version = self.text("platforms.version", plat.get("version"))
        if version is not None:
            ann["unikernelVersion"] = version
            self.alias("annotations.unikernelVersion", "platforms.version")
        self.spec.architecture = self.text("platforms.architecture", plat.get("architecture"))
        self.alias("architecture", "platforms.architecture")
        return framework

    def kernel(self, value: Any) -> None:
        kernel = self.section("kernel", value, "kernel", required=True)
        assert kernel is not None
        origin = self.keyword("kernel.from", self.text("kernel.from", kernel.get("from"), required=True), ("local",))
        path = self.text("kernel.path", kernel.get("path"), required=True)
        assert origin is not None and path is not None
        # Either way the kernel lands at bunny's /.boot/kernel; from an image,
        # `path` is where it sits inside that image.
        self.spec.kernel = Source(origin=origin, path=path, field="kernel", target=KERNEL_PATH)
        if origin != "local":
            self.spec.annotations["binary"] = KERNEL_PATH
            self.alias("annotations.binary", "kernel.path")
            return
        self.spec.files.append(self.entry("kernel.path", path, KERNEL_PATH))
        self.spec.annotations["binary"] = KERNEL_PATH
        self.alias("annotations.binary", "kernel.path")

    def keyword(self, field: str, origin: Any, words: tuple[str, ...]) -> Any:
        """A `from` that misspells one of bunny's words (`locl`) and names
        nothing on disk: say so, and read on as the word it is close to."""
        if not isinstance(origin, str) or origin in words or (self.spec.base_dir / origin).exists():
            return origin
        close = difflib.get_close_matches(origin, words, n=1, cutoff=0.6)
        if not close:
            return origin
        self.spec.problems.extend(
            self.err(
                field,
                "is neither " + " nor ".join(f'"{w}"' for w in words) + " nor an image",
                origin,
                allowed=", ".join(words) + ", or an image reference",
                hint=f'did you mean "{close[0]}"?',
            ).problems
        )
        return close[0]

    def entry(self, field: str, source: str, target: str) -> FileEntry:
        return FileEntry(source=source, path=self.spec.base_dir / source, target=target, field=field)

    def rootfs(self, value: Any, framework: str | None) -> str | None:
        """Fill files/annotations/Spec.rootfs; return the rootfs type in effect."""
        rootfs = self.section("rootfs", value, "rootfs")
        if rootfs is None:
            return None
        origin = self.keyword("rootfs.from", self.text("rootfs.from", rootfs.get("from")) or "scratch", ("local", "scratch"))
        path = self.text("rootfs.path", rootfs.get("path"))
        rtype = self.text("rootfs.type", rootfs.get("type"))
        if rtype is not None and rtype not in ROOTFS_TYPES:
            raise self.err(
                "rootfs.type",
                "unknown rootfs type",
                rtype,
                allowed=", ".join(ROOTFS_TYPES),
                hint=did_you_mean(rtype, ROOTFS_TYPES),
            )
        includes = self.includes(rootfs.get("include"))
        self.spec.rootfs = Rootfs(type=rtype, origin=origin, path=path, field="rootfs")
        if origin not in ("scratch", "local"):
            return self.image_rootfs(rtype, path, includes, framework)
        if origin == "scratch":
            return self.scratch_rootfs(rtype, path, includes, framework)
        return self.local_rootfs(rtype, path, includes, framework)

    def image_rootfs(self, rtype: str | None, path: str | None, includes: list[FileEntry], framework: str | None) -> str:
        """A rootfs from an image: urunix flattens it (plus includes) into the
        image's own rootfs (raw), an initrd, or a block image."""
        assert self.spec.rootfs is not None
        if rtype is None:
            rtype = self.spec.rootfs.type = self.default_type(framework, ROOTFS_TYPES)
        self.spec.rootfs.include = includes
        if rtype != "raw":
            self.spec.rootfs.path = path or ROOTFS_PATH
        return rtype

    def default_type(self, framework: str | None, choices: tuple[str, ...]) -> str:
        """bunny's default: initrd for Unikraft; other frameworks must choose,
        since bunny's silent `raw` is rarely what a non-devmapper host wants."""
        if framework == "unikraft":
            return "initrd"
        if framework is None:  # platforms is wrong, and said so: no guess, no second message
            raise SpecError(problems=[])
        raise self.err(
            "rootfs",
            f"rootfs.type is needed for {framework} guests",
            allowed=", ".join(choices),
            hint="bunny would silently pick raw (the container's own rootfs through devmapper); say which one you mean",
        )

    def scratch_rootfs(self, rtype: str | None, path: str | None, includes: list[FileEntry], framework: str | None) -> str | None:
        assert self.spec.rootfs is not None
        if path is not None:
            raise self.err(
                "rootfs.path",
                "rootfs.path needs rootfs.from: local (a prebuilt file)",
                path,
                hint="bunny refuses a path with from: scratch as well",
            )
        if not includes:
            if rtype in ("initrd", "block"):
                raise self.err(
                    "rootfs.type",
                    f"an empty {rtype} from scratch has nothing to hold",
                    hint="list files under rootfs.include, or use from: local with a path",
                )
            return rtype
        if rtype is None:
            rtype = self.spec.rootfs.type = self.default_type(framework, ROOTFS_TYPES)
        if rtype == "raw":
            self.spec.files.extend(includes)
            return rtype
        self.spec.rootfs.path = ROOTFS_PATH
        self.spec.rootfs.include = includes
        self.point_at_rootfs(rtype, framework, "rootfs.include", "rootfs")
        return rtype

    def local_rootfs(self, rtype: str | None, path: str | None, includes: list[FileEntry], framework: str | None) -> str:
        assert self.spec.rootfs is not None
        if includes:
            raise self.err(
                "rootfs.include",
                "rootfs.include cannot be combined with from: local",
                hint="include builds a rootfs; from: local takes a prebuilt file",
            )
        if path is None:
            raise self.err(
                "rootfs",
                "rootfs.path is required with from: local",
                hint="name the prebuilt initrd or block image, e.g. path: rootfs.cpio",
            )
        if (self.spec.base_dir / path).is_dir() and rtype != "raw":
            # bunny would copy the directory itself to /.boot/rootfs, where
            # urunc expects a file; urunix builds the initrd or block image
            # from the directory's tree instead
            if rtype is None:
                rtype = self.spec.rootfs.type = self.default_type(framework, ("initrd", "block"))
            self.spec.rootfs.origin = path
            self.spec.rootfs.path = ROOTFS_PATH
            self.alias("rootfs.from", "rootfs.path")
            self.point_at_rootfs(rtype, framework, "rootfs.path", "rootfs")
            return rtype
        if rtype == "raw":
            raise self.err(
                "rootfs.type",
                "a raw rootfs cannot come from a local file",
                rtype,
                allowed="initrd, block",
                hint="raw means files copied into the image; use from: scratch with include",
            )
        if rtype is None:
            rtype = self.spec.rootfs.type = self.default_type(framework, ("initrd", "block"))
        self.spec.files.append(self.entry("rootfs.path", path, ROOTFS_PATH))
        self.point_at_rootfs(rtype, framework, "rootfs.path", "rootfs")
        return rtype

    def point_at_rootfs(self, rtype: str, framework: str | None, *fields: str) -> None:
        ann = self.spec.annotations
        ann[rtype] = ROOTFS_PATH
        self.alias(f"annotations.{rtype}", *fields)
        if rtype == "block":
            ann["blkMntPoint"] = "/data" if framework == "rumprun" else "/"
            self.alias("annotations.blkMntPoint", "rootfs.type", "rootfs")

    def includes(self, value: Any) -> list[FileEntry]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.err(
                "rootfs.include",
                "rootfs.include must be a list",
                value,
                hint='write it like: include: ["redis.conf:/conf/redis.conf"]',
            )
        out = []
        for i, item in enumerate(value):
            field = f"rootfs.include.{i}"
            if isinstance(item, dict):
                out.extend(self.include_mapping(field, item))
                continue
            text = self.text(field, item) or ""
            src, _, dst = text.partition(":")
            if not src:
                raise self.err(
                    field, "an include needs a source before ':'", text, hint="write it like: - redis.conf:/conf/redis.conf"
                )
            # bunny's short form `- conf/nginx`: the same path, below / (its
            # copy resolves a relative destination against /)
            out.append(self.entry(field, src, dst or posixpath.normpath("/" + src)))
        return out

    def include_mapping(self, field: str, item: dict[str, Any]) -> list[FileEntry]:
        self.section(field, item, "include")
        origin = self.text(f"{field}.from", item.get("from")) or "local"
        src = self.text(f"{field}.source", item.get("source"), required=True)
        dst = self.text(f"{field}.destination", item.get("destination"), required=True)
        assert src is not None and dst is not None
        if origin != "local":
            self.not_yet(f"{field}.from", f"including files from an image (from: {origin})")
            return []
        return [self.entry(field, src, dst)]

    def storage_flags(self, rtype: str | None, framework: str | None) -> None:
        """bunny writes mountRootfs "false" unless the rootfs is raw; we write
        both names, since urunc v0.5 reads useDMBlock and defaults it to true."""
        flag = "true" if rtype == "raw" else "false"
        for key in ("useDMBlock", "mountRootfs"):
            self.spec.annotations[key] = flag
            self.alias(f"annotations.{key}", "rootfs.type", "rootfs")

    def command(self, top: dict[str, Any]) -> None:
        cmd = self.strings("cmd", top.get("cmd"))
        self.spec.cmd = cmd
        self.spec.entrypoint = self.strings("entrypoint", top.get("entrypoint"))
        cmdline = self.text("cmdline", top.get("cmdline"))
        if cmdline is not None and not cmd:
            self.spec.annotations["cmdline"] = cmdline
            self.alias("annotations.cmdline", "cmdline")
        self.spec.env = self.envs(top.get("envs"))

    def envs(self, value: Any) -> dict[str, str]:
        env: dict[str, str] = {}
        for i, item in enumerate(self.strings("envs", value) or []):
            field = f"envs.{i}"
            key, sep, val = item.partition("=")
            if not sep or not key:
                self.spec.problems.extend(
                    self.err(
                        field, "an environment variable must be KEY=VALUE", item, hint=f"write it like: - {key or 'HOME'}=VALUE"
                    ).problems
                )
                continue
            if key in env:
                self.spec.problems.extend(self.err(field, f"the environment variable {key} is set twice", item).problems)
                continue
            env[key] = val
            self.alias(f"env.{dotted([key])}", field)
        self.alias("env", "envs")
        return env
