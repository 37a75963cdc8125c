"""Judge a Spec against urunc's contract (contract.json) and normalize it into
an Image. Every problem names the file, the field, the line, the bad value,
what is allowed and a hint; all problems are reported at once.

How a check reports (and how a new rule module should):
    self.fail("annotations.block", "a mirage guest cannot boot from block storage",
              value=..., allowed=..., hint=f"write {self.say('rootfs.type', 'initrd')}",
              after=("rootfs.type",))
- the field is the spec model's name; Spec.where() shows the user's own
  (`platforms.monitor` in a bunnyfile, `LABEL com.urunc.unikernel.block` in a
  Containerfile) with its line;
- `self.say(field, value)` writes the fix in the user's format (syntax.py);
- `after=` names fields whose failure makes this problem a mere consequence:
  it is then left out (errors.Problems); the loader's shape problems are
  already in self.problems, so `after=("cmd",)` also covers "cmd was not a list".
Everything goes into the one errors.Problems; run() raises it once, sorted
by line."""

from __future__ import annotations

import os
import platform
import re
import stat
from typing import Any

from . import guest_argv, overlap, rootfs_image_config, syntax, urunc_rules
from .errors import Diagnostics, Problem, Problems, SpecError, did_you_mean
from .helpers.ext import ExtError, parse_size
from .loaders.nixdata import dotted
from .resources import contract
from .rootfs_image_config import ImageConfig
from .rootfs.sources import IMAGE_KINDS
from .rootfs.sources import resolve as resolve_origin
from .spec import TOP_LEVEL_FIELDS, Extract, FileEntry, Image, Origin, Rootfs, RootfsBuild, Source, Spec

ROOTFS_TYPES = ("initrd", "block", "raw")
SIZE_FORMS = (
    '"auto"; bytes; or a number with K, M, G, T or KiB, MiB, GiB, TiB (powers of 1024), '
    'or KB, MB, GB, TB (powers of 1000), e.g. "64M", "64MiB", "64MB", "1G"'
)

# Docker reference grammar (distribution/reference), enough to refuse what
# `docker load` would refuse.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?/)"
NAME_RE = re.compile(rf"^{_HOST}?{_COMPONENT}(?:/{_COMPONENT})*$")
# Docker's tag grammar: upper case is allowed in a tag (not in the name).
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
ENV_KEY_RE = re.compile(r"^[^=\0]+$")
URUNC_JSON = "/urunc.json"
DOCKER_NAME_MAX = 255  # characters of a normalized image name (distribution/reference NameTotalLengthMax)
NAME_MAX = 255  # bytes in one path component (Linux)
PATH_MAX = 4095  # bytes in a whole path (Linux, without the NUL)


def _docker_name_length(name: str) -> int:
    """The length of `name` as Docker normalizes it (docker.io/library/x)."""
    first, slash, _ = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return len(name)
    return len("docker.io/") + (0 if slash else len("library/")) + len(name)


def _upper_first_component(name: str) -> bool:
    """Docker reads a first component as a registry host only if it holds a
    '.' or ':' or is localhost; otherwise it is a path component, lower case."""
    first, sep, _ = name.partition("/")
    # (localhost, a host, is lower case already)
    return bool(sep) and not ("." in first or ":" in first) and first != first.lower()


def host_architecture() -> str:
    return contract()["architectures"].get(platform.machine().lower(), platform.machine().lower())


# Go's unicode.IsSpace (not Python's str.isspace, which also splits on
# \x1c-\x1f): the separators of strings.Fields.
_GO_SPACE = re.compile("[\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")


def fields(cmdline: str) -> list[str]:
    """Go's strings.Fields: how urunc v0.5 splits the cmdline annotation."""
    return [f for f in _GO_SPACE.split(cmdline) if f]


def join_args(args: list[str], guest: str | None) -> str:
    """The cmdline annotation for an argv, as urunc itself would join it:
    for Linux guests an argument holding a space is wrapped in single quotes
    (the urunc/urunit convention); other guests join with plain spaces."""
    if guest == "linux":
        args = [f"'{a.strip()}'" if " " in a.strip() else a for a in args]
    return " ".join(args)


def check_path(value: str, root_ok: bool = False) -> str | None:
    """urunc main's path rules; returns what is wrong, or None. Only a
    mount point (blkMntPoint) may be "/"."""
    rules = contract()["paths"]
    if len(value.encode("utf-8", "surrogateescape")) > rules["maxBytes"]:
        return f"is longer than {rules['maxBytes']} bytes"
    if not re.match(rules["pattern"], value):
        bad = sorted({c for c in value if not re.match(rules["pattern"], c)})
        return f"holds characters urunc refuses ({''.join(bad)!r}); allowed are letters, digits and ._/-"
    if value == ".":
        return "is '.'"
    if value.startswith("..") or value.startswith("-"):
        return "starts with '..' or '-'"
    if value == "/" and not root_ok:
        return "is '/'"
    if os.path.normpath(value) != value or value.startswith("//"):
        clean = os.path.normpath(value)
        return f"is not clean (urunc wants {'/' + clean.lstrip('/') if clean.startswith('//') else clean!r})"
    return None


_SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """What makes a string unusable anywhere urunix puts it (an image config,
    a tar header, a Nix string, an argv, a kernel command line), or None."""
    if "\0" in value:
        return "holds a NUL byte, which no image config, Nix string, argv or environment can carry"
    if _SURROGATE.search(value):
        return "holds a lone UTF-16 surrogate (e.g. \\ud800), which is not valid Unicode and cannot be written as UTF-8"
    return None


class Validator:
    def __init__(self, spec: Spec, base: ImageConfig | None = None):
        """base: what the rootfs image gives, read before (rootfs_image_config.py)."""
        self.spec = spec
        self.base = base
        self.c = contract()
        # the loader's problems first; every check below adds to the same list
        self.problems = Problems(spec.problems)
        self.failed_targets: set[str] = set()  # image paths of `files` entries that failed
        self.diag = Diagnostics()
        self.planned: set[str] = set()  # image paths urunix itself will fill (kernel, initrd, block)
        self.bad_text: set[str] = set()  # fields already refused by texts()

    def texts(self) -> None:
        """Refuse a NUL or a lone surrogate in ANY string of the spec, keys
        included, before anything else looks at it."""
        s = self.spec

        def walk(fieldname: str, value: Any) -> None:
            if isinstance(value, str):
                wrong = text_problem(value)
                if wrong and fieldname not in self.bad_text:
                    self.bad_text.add(fieldname)
                    self.fail(fieldname, wrong, value=value, hint="remove the character; urunix passes strings on byte for byte")
            elif isinstance(value, dict):
                for k, v in value.items():
                    if isinstance(k, str) and text_problem(k):
                        walk(fieldname, k)  # a bad key: name the mapping, show the key
                    walk(f"{fieldname}.{k}", v)
            elif isinstance(value, (list, tuple)):
                for i, v in enumerate(value):
                    walk(f"{fieldname}.{i}", v)

        for name in ("name", "tag", "architecture", "annotations", "cmd", "entrypoint", "env", "labels"):
            walk(name, getattr(s, name))
        walk("unknown", {k: v for k, v in s.unknown.items() if isinstance(k, str)})
        entries = list(s.files) + (list(s.rootfs.include) if s.rootfs else [])
        for f in entries:
            walk(f.field, f.source)
            walk(f.field, f.target)
        if s.rootfs is not None:
            r = s.rootfs
            for attr in ("type", "origin", "path", "size", "fs_type", "compression"):
                walk(f"{r.field or 'rootfs'}.{attr}", getattr(r, attr))
        for src in (s.kernel, s.init):
            if src is not None:
                walk(f"{src.field}.from", src.origin)
                walk(f"{src.field}.path", src.path)
        self.image_tree = False  # the image's rootfs holds an image's tree (raw/base from an image)

    def fail(self, fieldname: str, message: str, *, after: tuple[str, ...] = (), **kw: Any) -> None:
        """A problem with `fieldname`; left out if a field in `after` already
        failed (it would only be a consequence of that one)."""
        if not any(self.failed(f) for f in after):
            self.problems.add(Problem(message, **self.spec.where(fieldname), **kw))

    def failed(self, fieldname: str) -> bool:
        """Whether a problem was reported about `fieldname`, under the spec
        model's name or the user's (a Containerfile loader reports `LABEL ...`)."""
        return self.problems.failed(fieldname) or self.problems.failed(syntax.name(self.spec, fieldname))

    def say(self, fieldname: str, value: Any = "...", fallback: str = "") -> str:
        """How the user writes `fieldname = value` in their own format."""
        return syntax.example(self.spec, fieldname, value, fallback)

    def add_file_hint(self, target: str) -> str:
        """How to put a host file at `target`, in the user's format."""
        base = os.path.basename(target)  # a clean absolute path (check_path): never empty
        fmt = self.spec.format
        if fmt == "containerfile":
            return f"COPY it: COPY ./{base} {target}"
        if fmt == "bunnyfile":
            return f"include it: - ./{base}:{target}  (under rootfs: include:)"
        if fmt == "yaml":
            return f"add it to files: ./{base}: {target}  (under files:)"
        return f'add it to files: files."./{base}" = "{target}";'

    def warn(self, fieldname: str, message: str, **kw: Any) -> None:
        self.diag.warn(message, **self.spec.where(fieldname), **kw)

    # -- pieces --------------------------------------------------------------

    def top_level(self) -> None:
        for key, value in self.spec.unknown.items():
            hint = did_you_mean(key, TOP_LEVEL_FIELDS) or "remove it"
            self.fail(key, "is not a field urunix knows", value=value, allowed=", ".join(TOP_LEVEL_FIELDS), hint=hint)

    def string(self, fieldname: str, value: Any, *, default: str | None = None) -> str | None:
        if value is None:
            return default
        if not isinstance(value, str):
            self.fail(fieldname, "must be a string", value=value)
            return default
        return value

    def name_tag(self) -> tuple[str, str]:
        name = self.string("name", self.spec.name)
        tag = self.string("tag", self.spec.tag) or self.c["defaults"]["tag"]  # "" is unset too
        if not name:
            self.fail(
                "name",
                "is missing",
                after=("name",),
                hint=(
                    f"pass --tag NAME:TAG (a {'Containerfile' if self.spec.format == 'containerfile' else 'bunnyfile'} names no image)"
                    if self.spec.format in ("bunnyfile", "containerfile")
                    else f"set {self.say('name', 'my/image')} in the spec, or pass --tag NAME:TAG"
                ),
            )
            name = "invalid"
        elif not NAME_RE.match(name) or _upper_first_component(name):
            self.fail(
                "name",
                "is not a valid image name",
                value=name,
                allowed="lowercase letters, digits and separators (. _ - /), e.g. urunc/prebuilt/redis-rumprun-hvt",
                hint=f'try "{re.sub(r"[^a-z0-9./_-]+", "-", name.lower()).strip("-./_") or "my-image"}"',
            )
        elif _docker_name_length(name) > DOCKER_NAME_MAX:
            self.fail(
                "name",
                f"is longer than Docker takes: {DOCKER_NAME_MAX} characters, counting the "
                "docker.io/ (and library/) Docker puts before it",
                value=name[:80] + "...",
            )
        if not TAG_RE.match(tag):
            self.fail(
                "tag", "is not a valid image tag", value=tag, allowed="up to 128 of A-Z a-z 0-9 _ . -, not starting with . or -"
            )
        return name, tag

    def annotations(self) -> dict[str, str]:
        raw = self.spec.annotations
        if not isinstance(raw, dict):
            self.fail("annotations", "must be an attribute set / mapping", value=raw)
            return {}
        keys = self.c["keys"]
        prefix = self.c["prefix"]
        out: dict[str, str] = {}
        for key, value in raw.items():
            fieldname = f"annotations.{key}"
            short = key[len(prefix) :] if isinstance(key, str) and key.startswith(prefix) else key
            if short not in keys:
                self.fail(
                    fieldname,
                    "is not an annotation urunc reads",
                    allowed=", ".join(keys),
                    hint=did_you_mean(short, keys)
                    or (
                        f"urunc ignores unknown keys; for other metadata use a label without the {self.c['prefix']} prefix"
                        if self.spec.format == "containerfile"
                        else "urunc ignores unknown keys; put other metadata in `labels`"
                    ),
                )
                continue
            kind = keys[short]["kind"]
            if isinstance(value, bool) and kind == "bool":
                value = "true" if value else "false"
            if value is None:
                continue
            if not isinstance(value, str):
                self.fail(
                    fieldname,
                    "must be a string",
                    value=value,
                    hint="write it in quotes: "
                    + self.say(f"annotations.{short}", str(value).lower() if isinstance(value, bool) else str(value)),
                )
                continue
            if value == "":
                continue  # bimanix: an empty string means unset
            out[short] = value
            self.annotation_value(short, kind, value, fieldname)
        return out

    def annotation_value(self, key: str, kind: str, value: str, fieldname: str) -> None:
        c = self.c
        known = c["guests"] if kind == "guest" else c["monitors"] if kind == "monitor" else None
        if known is not None and value not in known:
            what = "a guest kind" if kind == "guest" else "a monitor"
            self.fail(
                fieldname, f"is not {what} urunc knows", value=value, allowed=", ".join(known), hint=did_you_mean(value, known)
            )
        elif kind in ("path", "mountpoint"):
            wrong = check_path(value, root_ok=key == "blkMntPoint")
            if wrong:
                self.fail(
                    fieldname,
                    f"{wrong}; urunc refuses such a path when the container starts",
                    value=value,
                    allowed="a clean absolute path of letters, digits and ._/- (e.g. /unikernel/kernel)",
                )
            elif not value.startswith("/"):
                self.fail(fieldname, "must be an absolute path inside the image", value=value, hint=f'did you mean "/{value}"?')
        elif kind == "bool" and value not in c["bool"]:
            self.fail(
                fieldname,
                "must be the text true or false (urunc main refuses anything else)",
                value=value,
                allowed="true, false",
                hint=did_you_mean(value.lower(), c["bool"]) or self.bool_hint(key, value, fieldname),
            )
        elif kind == "devname" and not re.match(c["devname"]["pattern"], value):
            self.fail(fieldname, "is not a valid Solo5 device name", value=value, allowed="1 to 67 letters or digits")

    def bool_hint(self, key: str, value: str, fieldname: str) -> str:
        r = self.spec.rootfs
        if key in ("useDMBlock", "mountRootfs") and r is not None and isinstance(r.type, str):
            want = "true" if r.type == "raw" else "false"
            return f'remove it: with rootfs.type {r.type} urunix writes "{want}" itself'
        return "write " + self.say(fieldname, "false" if value.lower() in ("no", "n", "off", "0") else "true")

    def contract_rules(self, ann: dict[str, str]) -> None:
        c = self.c
        for key in c["required"]:
            if key not in ann and not self.failed(f"annotations.{key}"):
                self.fail(
                    f"annotations.{key}",
                    "is required by urunc and missing",
                    hint=f"add {self.say(f'annotations.{key}')} -- the {c['keys'][key]['doc']}",
                )
        guest, monitor = ann.get("unikernelType"), ann.get("hypervisor")
        if guest in c["guests"] and monitor in c["monitors"] and guest not in c["pairs"][monitor]:
            can = [m for m, gs in c["pairs"].items() if guest in gs]
            self.fail(
                "annotations.hypervisor",
                f"urunc cannot run a {guest} guest on {monitor}",
                value=monitor,
                allowed=f"{guest} runs on {', '.join(can)}; {monitor} runs {', '.join(c['pairs'][monitor])}",
                hint="urunc would hand such a container to runc, silently",
            )
        for a, b in c["synonyms"]:
            if a in ann and b in ann and ann[a] != ann[b]:
                self.fail(
                    f"annotations.{b}",
                    f"disagrees with {a} ({ann[a]!r}); they mean the same thing",
                    value=ann[b],
                    hint=f"set only one of {a} and {b}; urunix writes both",
                )
            elif a in ann or b in ann:
                ann[a] = ann[b] = ann[a] if a in ann else ann[b]
        if guest in c["guests"]:
            storage = c["guests"][guest].get("storage")
            for key in ("initrd", "block"):
                if key in ann and storage is not None and key not in storage:
                    # name what the user chose: rootfs.type when that is where it came from
                    r = self.spec.rootfs
                    fieldname, value = (
                        ("rootfs.type", key) if r is not None and r.type == key else (f"annotations.{key}", ann[key])
                    )
                    other = next((x for x in storage if x in ("initrd", "block")), None)
                    fix = other and (
                        self.say("rootfs.type", other)
                        if fieldname == "rootfs.type"
                        else self.say(f"annotations.{other}", ann[key])
                    )
                    self.fail(
                        fieldname,
                        f"a {guest} guest cannot boot from {key} storage",
                        value=value,
                        allowed=f"storage for {guest}: {', '.join(storage) or 'none (in-memory)'}",
                        hint=f"write {fix}" if fix else None,  # None: the user's format cannot say it
                    )
                    self.problems.mark(f"annotations.{key}")  # no "will not contain" for it as well
            if "unikernelVersion" in ann and guest != "unikraft":
                self.warn("annotations.unikernelVersion", f"only Unikraft uses unikernelVersion; urunc ignores it for {guest}")

    def files(self, entries: list[FileEntry], reserved: bool = True) -> list[FileEntry]:
        """Check copies into a tree (the image's files, or a rootfs's include)."""
        seen: dict[str, FileEntry] = {}
        good = []
        for f in entries:
            target = f.target
            if isinstance(target, str) and target:
                # whatever is wrong below, the user did ask for this path: a
                # check that looks for it must not report it missing as well
                self.failed_targets.add("/" + os.path.normpath(target).lstrip("/"))
            if not isinstance(target, str) or not target:
                self.fail(f.field, "needs a target path inside the image", value=target)
                continue
            if not target.startswith("/"):
                self.fail(
                    f.field, "target must be an absolute path inside the image", value=target, hint=f'did you mean "/{target}"?'
                )
                continue
            if ".." not in target.split("/"):
                target = overlap.normalize(target)  # '//urunc.json' is '/urunc.json'
            parts = [p for p in target.split("/") if p]
            if target == "/" and not reserved and f.path.is_dir():
                # bunny's `- rootfs:/`: the directory's tree is the rootfs's tree
                good.append(FileEntry(f.source, f.path, "/", f.field, f.exclude))
                self.failed_targets.discard("/")
                continue
            if ".." in parts or not parts:  # not parts: the target is "/"
                self.fail(f.field, "target must name a path below / without '..'", value=f.target)
                continue
            long_part = next((p for p in parts if len(p.encode("utf-8")) > NAME_MAX), None)
            if long_part is not None or len(target.encode("utf-8")) > PATH_MAX:
                self.fail(
                    f.field,
                    f"target has a name longer than {NAME_MAX} bytes"
                    if long_part is not None
                    else f"target is longer than {PATH_MAX} bytes",
                    value=f.target,
                    hint="Linux (and so docker load, mke2fs and the guest) cannot create such a path",
                )
                continue
            norm = os.path.normpath(target)
            if norm == URUNC_JSON and reserved:
                self.fail(
                    f.field,
                    "target /urunc.json is written by urunix itself",
                    value=f.target,
                    hint="give urunc's metadata as "
                    + ("LABEL com.urunc.unikernel.KEY=VALUE lines" if self.spec.format == "containerfile" else "annotations"),
                )
                continue
            if norm in seen:
                line = self.spec.lines.get(seen[norm].field)
                self.fail(
                    f.field,
                    f"copies to the same target as {seen[norm].field}" + (f" (line {line})" if line else ""),
                    value=f.target,
                    hint="keep one of the two entries",
                )
                continue
            try:
                mode = os.stat(f.path).st_mode  # one stat per entry: 10,000 entries validate in a blink
            except (OSError, ValueError):
                mode = 0
            if not mode and not os.path.lexists(f.path):
                self.fail(
                    f.field,
                    "source file does not exist",
                    value=f.source,
                    hint=f"paths are relative to the spec's directory ({self.spec.base_dir})",
                )
                continue
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                self.fail(f.field, "source is neither a regular file nor a directory", value=f.source)
                continue
            seen[norm] = f
            good.append(FileEntry(f.source, f.path, norm, f.field, f.exclude))
            self.failed_targets.discard(norm)
        good = overlap.by_precedence(good, ordered=self.spec.format == "containerfile")
        for f, other, wrong in overlap.conflicts(good):
            line = self.spec.lines.get(other.field)
            self.fail(f.field, wrong + (f" (line {line})" if line else ""), value=f.target)
        return good

    def contains(self, files: list[FileEntry], path: str) -> bool:
        if path in self.planned or self.image_tree:
            return True  # an image's tree: checked at build time, once it is read
        for f in files:
            if f.target == path:
                return f.path.is_file()
            if path.startswith(f.target + "/") and f.path.is_dir():
                rel = path[len(f.target) + 1 :]
                parts = rel.split("/")
                left_out = any("/".join(parts[:i]) in f.exclude for i in range(1, len(parts) + 1))
                if (f.path / rel).is_file() and not left_out:
                    return True
        return False

    def artifacts(self, ann: dict[str, str], files: list[FileEntry]) -> None:
        everything = sorted({f.target for f in files} | self.failed_targets | self.planned)
        by_target = {f.target: f for f in files}
        for key in ("binary", "initrd", "block"):
            value = ann.get(key)
            if value and value in self.failed_targets:
                continue  # its `files` entry is wrong, and said so already
            if not (value and value.startswith("/") and not check_path(value)):
                continue
            if not self.contains(files, value):
                given = by_target.get(value)
                if given is not None and given.path.is_dir():
                    inside = min((p.name for p in given.path.iterdir() if p.is_file()), default=None)
                    self.fail(
                        f"annotations.{key}",
                        f"names a directory ({given.field} copies one there); urunc needs a file",
                        value=value,
                        after=(f"annotations.{key}",),
                        hint=(
                            f'name a file inside it, e.g. "{value}/{inside}"'
                            if inside is not None
                            else "copy the file itself, not its directory"
                        ),
                    )
                    continue
                self.fail(
                    f"annotations.{key}",
                    "names a file the image will not contain",
                    value=value,
                    # a COPY that failed: its target is unknown, so any path may be its
                    after=(f"annotations.{key}",) + (("files",) if self.spec.format == "containerfile" else ()),
                    allowed=f"the paths the image will hold: {', '.join(everything) or 'none'}",
                    hint=did_you_mean(value, [t for t in everything if t != value]) or self.add_file_hint(value),
                )
            elif value not in self.planned and self._size(files, value) == 0:
                self.warn(
                    f"annotations.{key}",
                    f"names an empty file (0 bytes); urunc would hand the monitor an empty {key}",
                    value=value,
                    hint="check that the file was built completely",
                )

    def _size(self, files: list[FileEntry], path: str) -> int | None:
        """The size of the host file that lands at `path`, if one does."""
        for f in reversed(files):  # the later entry wins
            if f.target == path or path.startswith(f.target + "/"):
                host = f.path / path[len(f.target) + 1 :]  # the entry itself: path / "" is path
                try:
                    return host.stat().st_size if host.is_file() else None
                except OSError:
                    return None
        return None

    def architecture(self) -> str:
        arch = self.spec.architecture
        archs = self.c["architectures"]
        if arch is None or arch == "":
            return host_architecture()
        if not isinstance(arch, str) or arch.lower() not in archs:
            self.fail(
                "architecture",
                "is not an architecture urunix builds for",
                value=arch,
                allowed=", ".join(archs),
                hint=did_you_mean(arch, archs),
            )
            return host_architecture()
        return archs[arch.lower()]

    def string_list(self, fieldname: str, value: Any) -> list[str] | None:
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(
                fieldname,
                "must be a list of strings",
                value=value,
                hint="e.g. "
                + self.say(fieldname, value.split() if isinstance(value, str) else ["redis-server", "/conf/redis.conf"]),
            )
            return None
        return list(value)

    def string_map(self, fieldname: str, value: Any) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(fieldname, "must be an attribute set / mapping of strings", value=value)
            return {}
        out = {}
        for k, v in value.items():
            if isinstance(v, bool):
                v = "true" if v else "false"
            elif isinstance(v, (int, float)):
                v = str(v)
            if not isinstance(v, str):
                self.fail(f"{fieldname}.{k}", "must be a string", value=v)
                continue
            out[str(k)] = v
        return out

    def argv(self, ann: dict[str, str], init: Extract | None, from_image: bool) -> tuple[list[str] | None, list[str], bool]:
        """(entrypoint, cmd, argv_from_image). With an init, it comes first;
        from_image (a rootfs image, and no command in the spec): the image's
        own command is used (argv_from_image: its config was not read)."""
        guest = ann.get("unikernelType")
        if from_image:
            if self.base is None:
                return None, [init.target] if init else [], True
            return (*self.image_argv(ann, init, self.base), False)
        cmd = self.string_list("cmd", self.spec.cmd)
        entrypoint = self.string_list("entrypoint", self.spec.entrypoint)
        cmdline = ann.get("cmdline")
        if guest == "unikraft":
            entrypoint, cmd, wrong = guest_argv.unikraft(ann, entrypoint, cmd, cmdline)
            if wrong:
                self.fail("cmd", wrong[0], value=cmd, hint=wrong[1])
            return entrypoint, cmd, False
        if cmd is not None and cmdline is not None:
            if fields(cmdline) != (entrypoint or []) + cmd and join_args((entrypoint or []) + cmd, guest) != cmdline:
                self.fail(
                    "cmd",
                    "and annotations.cmdline are both given and disagree",
                    value=cmd,
                    hint="give one of them: urunix derives the other",
                )
        if cmd is None:
            # Whitespace split, exactly as urunc v0.5 reads the annotation, so
            # old and new runtimes hand the guest the same command line.
            cmd = fields(cmdline) if cmdline else []
            if init and (entrypoint or cmd)[:1] != [init.target]:
                if entrypoint:
                    entrypoint = [init.target] + entrypoint
                else:
                    cmd = [init.target] + cmd
                ann["cmdline"] = join_args((entrypoint or []) + cmd, guest)
        else:
            if init and ((entrypoint or cmd)[:1] != [init.target]):
                if entrypoint is not None:
                    entrypoint = [init.target] + entrypoint
                else:
                    cmd = [init.target] + cmd
                # the init goes first in the annotation too (cmdline agrees
                # with cmd, so it lacks the init as well): written anew below
                cmdline = None
            joined = join_args((entrypoint or []) + cmd, guest)
            if cmdline is None and joined:
                ann["cmdline"] = joined  # "" would mean unset
        if guest != "linux":  # (a Linux guest without a command is refused below)
            cmd = guest_argv.with_a_command(entrypoint, cmd)  # also for `cmd = [];`
        # (a rootfs image's own command was taken above, when the spec gives none)
        if guest == "linux" and not ((entrypoint or []) + [a for a in cmd if a]):
            self.fail(
                "annotations.cmdline",
                "a Linux guest needs an init: urunc passes argv[0] as init= and fails with 'No init was specified'",
                after=("cmd", "entrypoint", "annotations.cmdline"),
                hint=f"set {self.say('cmd', ['/urunit', '/usr/bin/app'])}",
            )
        if guest == "linux" and not entrypoint:
            entrypoint, cmd = guest_argv.linux_split(cmd, init is not None)
        return entrypoint, cmd, False

    def command_given(self, ann: dict[str, str]) -> bool:
        # a cmdline of blanks gives no command (urunc splits it to nothing)
        return self.spec.cmd is not None or self.spec.entrypoint is not None or bool(fields(ann.get("cmdline") or ""))

    def image_argv(self, ann: dict[str, str], init: Extract | None, base: ImageConfig) -> tuple[list[str] | None, list[str]]:
        """The init, then the rootfs image's Entrypoint + Cmd. For a Linux
        guest Docker's convention is kept: the image's Entrypoint (or its
        program) stays, its Cmd stays replaceable by `docker run` ARGS."""
        guest = ann.get("unikernelType")
        full = ([init.target] if init else []) + list(base.argv)
        if not full and guest == "linux":
            self.fail(
                "cmd",
                "the rootfs image has no Entrypoint or Cmd, and the spec gives no command",
                hint=f"set {self.say('cmd', ['/urunit', '/usr/bin/app'])} (a Linux guest needs an init)",
            )
        ann["cmdline"] = join_args(full, guest)
        entrypoint, cmd = None, full
        if guest == "linux":
            if base.entrypoint:
                n = len(full) - len(base.cmd)
                entrypoint, cmd = full[:n], full[n:]
            else:
                entrypoint, cmd = guest_argv.linux_split(full, init is not None)
        return entrypoint, guest_argv.with_a_command(entrypoint, cmd)

    # -- rootfs, kernel, init (what urunix builds or fetches) ----------------

    def origin(self, text: object, fieldname: str) -> Origin | None:
        try:
            return resolve_origin(text, self.spec.base_dir, self.spec.where(fieldname))
        except SpecError as e:
            self.problems.extend(e.problems)
            return None

    def extract(self, src: Source, default: str, files: list[FileEntry]) -> Extract | None:
        """A kernel or an init: from a host file, or from inside an image."""
        fieldname = src.field or "kernel"
        if src.origin == "local":
            if src.target and any(f.target == src.target for f in files):
                return None  # a bunnyfile's local kernel: already one of `files`
            origin = self.origin(src.path, f"{fieldname}.path")
            inner = None
        else:
            origin = self.origin(src.origin, f"{fieldname}.from")
            inner = src.path
        if origin is None:
            return None
        if origin.kind in IMAGE_KINDS:
            inner = inner or default
            if not inner.startswith("/"):
                self.fail(f"{fieldname}.path", "must be an absolute path inside the image", value=inner)
                return None
        elif origin.kind != "file":
            self.fail(
                f"{fieldname}.from",
                f"must be a file or an image, not a {origin.kind}",
                value=src.origin,
                hint="e.g. " + self.say(f"{fieldname}.from", f"./{fieldname}-image.tar"),
            )
            return None
        # inner is the path inside the image, or the path a non-local file lands at
        return Extract(origin, inner, src.target or inner or default, fieldname)

    def storage(self, ann: dict[str, str], files: list[FileEntry]) -> tuple[RootfsBuild | None, Extract | None, Extract | None]:
        s, c = self.spec, self.c
        guest = ann.get("unikernelType")
        gspec = c["guests"].get(guest, {})
        storage = gspec.get("storage")

        kernel = None
        if s.kernel is not None:
            kernel = self.extract(s.kernel, c["defaults"]["kernel"], files)
            if self.problems.failed("kernel"):
                self.problems.mark("annotations.binary")  # no "binary is missing" on top of it
            if kernel is not None:
                if ann.get("binary") and s.kernel.target is None:
                    kernel.target = ann["binary"]
                else:
                    ann.setdefault("binary", kernel.target)
                wrong = check_path(kernel.target)
                if wrong:
                    self.fail(f"{kernel.field}.path", f"{wrong}; urunc refuses such a binary path", value=kernel.target)
                self.planned.add(kernel.target)

        init = None
        if s.init is not None:
            init = self.extract(s.init, c["defaults"]["init"], [])
            if init is not None and guest not in (None, "linux"):
                self.fail(
                    "init",
                    f"only Linux guests run an init; a {guest} guest is the application itself",
                    hint=f"remove init, or set {self.say('annotations.unikernelType', 'linux')}",
                )

        rootfs = None
        r = s.rootfs
        if r is not None and not (r.origin == "local" or (r.type in ("raw", "base") and r.origin == "scratch" and not r.include)):
            rootfs = self.rootfs(r, ann, guest, storage)
        elif guest == "linux" and r is not None and r.type != "raw":
            for key in ("useDMBlock", "mountRootfs"):
                ann.setdefault(key, "false")
        return rootfs, kernel, init

    def rootfs(self, r: Rootfs, ann: dict[str, str], guest: str | None, storage: list | None) -> RootfsBuild | None:
        f = r.field or "rootfs"
        rtype = r.type
        if rtype is None:
            rtype = self.c["defaults"]["rootfsType"].get(guest)
            if rtype is None:
                self.fail(
                    f,
                    f"rootfs.type is needed for a {guest} guest",
                    allowed="initrd, block, raw",
                    hint="initrd: a cpio in memory; block: an ext2/ext4 disk image; raw: the image's own rootfs (devmapper)",
                )
                return None
        if rtype == "base":
            # A Containerfile's FROM: the image's files under ours, as in
            # Docker; the labels, not the base, say what urunc boots from.
            origin = self.origin(r.origin, f)
            if origin is None:
                return None
            self.image_tree = True
            return RootfsBuild("raw", origin, self.files(r.include, reserved=False), field=f)
        if rtype not in ROOTFS_TYPES:
            self.fail(
                f"{f}.type",
                "is not a rootfs type",
                value=rtype,
                allowed=", ".join(ROOTFS_TYPES),
                hint=did_you_mean(rtype, ROOTFS_TYPES),
            )
            return None
        need = "devmapper" if rtype == "raw" else rtype
        if storage is not None and need not in storage:
            self.fail(
                f"{f}.type",
                f"a {guest} guest cannot boot from {need} storage",
                value=rtype,
                allowed=f"storage for {guest}: {', '.join(storage) or 'none (in-memory)'}",
            )
            return None
        # a bad `from` does not stop the checks of the other rootfs fields:
        # they are reported in the same run, and the build is refused after
        origin = self.origin(r.origin, f"{f}.from" if f"{f}.from" in self.spec.lines else f)
        if origin is not None and rtype == "raw" and origin.kind in IMAGE_KINDS:
            self.image_tree = True
        if origin is not None and origin.kind == "file":
            self.fail(f"{f}.from", "a single file is not a rootfs tree", value=r.origin, hint=self.prebuilt_hint(rtype))
            origin = None
        include = self.files(r.include, reserved=False)
        build = RootfsBuild(rtype, origin or Origin("scratch", "", f), include, field=f)
        if rtype == "raw":
            for key in ("useDMBlock", "mountRootfs"):
                if ann.get(key) == "false":
                    self.fail(
                        f"annotations.{key}",
                        "a raw rootfs is the container's own rootfs, handed to the guest by devmapper",
                        value="false",
                        hint="remove it: urunix sets it to true for rootfs.type = raw",
                    )
                ann[key] = "true"
            return build if origin is not None else None
        for key in ("useDMBlock", "mountRootfs"):
            if ann.get(key) == "true":
                self.fail(f"annotations.{key}", f"asks for the devmapper rootfs, but rootfs.type is {rtype}", value="true")
            ann[key] = "false"
        if rtype == "block":
            build.fs_type = r.fs_type or self.c["defaults"]["fsType"]
            if build.fs_type not in ("ext2", "ext4"):
                self.fail(f"{f}.fsType", "is not a filesystem urunix builds", value=build.fs_type, allowed="ext2, ext4")
            blockfs = self.c["guests"].get(guest, {}).get("blockFs")
            if blockfs and build.fs_type not in blockfs:
                self.fail(
                    f"{f}.fsType",
                    f"a {guest} guest mounts only {', '.join(blockfs)}",
                    value=build.fs_type,
                    after=(f"{f}.fsType",),
                )
            build.size = str(r.size or self.c["defaults"]["size"])
            if build.size != "auto":
                try:
                    parse_size(build.size)
                except (ExtError, ValueError):
                    self.fail(f"{f}.size", "is not a size", value=r.size, allowed=SIZE_FORMS)
            default = self.c["defaults"]["blockPath"].format(fsType=build.fs_type)
        else:
            default = self.c["defaults"]["initrdPath"]
            build.compression = r.compression or self.c["defaults"]["compression"]
            if build.compression not in ("none", "gzip"):
                self.fail(f"{f}.compression", "is not a compression urunix writes", value=build.compression, allowed="none, gzip")
            elif build.compression == "gzip" and guest != "linux":
                self.fail(f"{f}.compression", f"a {guest} guest reads only an uncompressed cpio", value="gzip")
            # Unikraft's cpio reader knows no hard links
            build.hardlinks = self.c["defaults"]["cpioHardlinks"].get(guest, build.hardlinks)
        if r.size is not None and rtype != "block":
            self.fail(f"{f}.size", "applies to block images only", value=r.size)
        target = r.path or ann.get(rtype) or default
        if ann.get(rtype) and ann[rtype] != target:
            self.fail(
                f"annotations.{rtype}",
                f"disagrees with rootfs.path ({target!r})",
                value=ann[rtype],
                hint="set only rootfs.path; urunix writes the annotation",
            )
        wrong = check_path(target)
        if wrong or not target.startswith("/"):
            self.fail(f"{f}.path", f"{wrong or 'must be absolute'}; urunc refuses such a path", value=target)
        ann[rtype] = build.target = target
        self.planned.add(target)
        if rtype == "block":
            mnt = self.c["guests"].get(guest, {}).get("blkMntPoint")
            if mnt:
                ann.setdefault("blkMntPoint", mnt)
        return build if origin is not None else None

    def prebuilt_hint(self, rtype: str) -> str:
        """Where a prebuilt initrd or block image goes, in the user's format."""
        if self.spec.format == "bunnyfile":
            return "a prebuilt initrd or block image is from: local with path: FILE"
        key = "block" if rtype == "block" else "initrd"
        return f"copy the prebuilt {key} into the image ({self.add_file_hint('/.boot/rootfs')}) and point at it: " + self.say(
            f"annotations.{key}", "/.boot/rootfs"
        )

    # -- urunc releases (urunc_rules.py) ----------------------------------------

    def targets(self) -> tuple[str, ...]:
        targets, wrong = urunc_rules.spec_targets(self.spec)
        if wrong:
            self.fail(**wrong)
        return targets

    def urunc_rules(
        self,
        targets: tuple[str, ...],
        ann: dict[str, str],
        entrypoint: list[str] | None,
        cmd: list[str],
        env: dict[str, str],
        argv_from_image: bool,
        image: urunc_rules.FromImage | None = None,
    ) -> None:
        if any(p.field in ("annotations.unikernelType", "annotations.hypervisor") for p in self.problems):
            return
        found = urunc_rules.judge(self.spec, targets, ann, entrypoint, cmd, env, argv_from_image, image)
        for level, fieldname, message, kw in found:
            if fieldname.startswith("image ") or fieldname == "WorkingDir":
                # a value of the rootfs image: shown under its own name, at the rootfs `from`
                f = (self.spec.rootfs.field if self.spec.rootfs else "") or "rootfs"
                where = self.spec.where(f"{f}.from")  # the rootfs's line when `from` has none
                (self.problems.add if level == "error" else self.diag.warnings.append)(
                    Problem(message, **{**where, "field": fieldname, "key": fieldname}, **kw)
                )
                continue
            (self.fail if level == "error" else self.warn)(fieldname, message, **kw)

    # -- all of it -----------------------------------------------------------

    def run(self) -> Image:
        self.texts()
        if self.bad_text:  # the rest would trip over the NUL or the surrogate
            self.problems.raise_if_any()
        self.top_level()
        name, tag = self.name_tag()
        ann = self.annotations()
        files = self.files(self.spec.files)
        rootfs, kernel, init = self.storage(ann, files)
        targets = self.targets()
        urunc_rules.fill_defaults(ann, targets)
        self.contract_rules(ann)
        self.artifacts(ann, files)
        arch = self.architecture()
        image_argv = rootfs is not None and rootfs.origin.kind in IMAGE_KINDS
        base = self.base if image_argv else None
        given = self.command_given(ann)  # before argv() writes the cmdline
        entrypoint, cmd, argv_from_image = self.argv(ann, init, image_argv and not given)
        env = self.string_map("env", self.spec.env)
        for k in env:
            if not ENV_KEY_RE.match(k):
                self.fail(dotted(["env", k]), "is not a valid environment variable name", value=k)
        labels = self.string_map("labels", self.spec.labels)
        for k, v in labels.items():
            if k.startswith(self.c["prefix"]):
                short = k[len(self.c["prefix"]) :]
                self.fail(
                    dotted(["labels", k]),
                    "is a urunc annotation; urunix writes those labels itself",
                    hint=f"move it to annotations: {self.say(f'annotations.{short}', v)}",
                )
        own = [f"{k}={v}" for k, v in env.items()]
        inherited: list[str] = []
        workdir = self.spec.workdir
        image = None
        if base is not None:
            # the image's Env the spec does not set, before the spec's
            mine = {e.split("=", 1)[0] for e in own}
            inherited = [e for e in base.env if e.split("=", 1)[0] not in mine]
            workdir = workdir or base.workdir or None
            image = urunc_rules.FromImage(not given, inherited, workdir)
        self.urunc_rules(targets, ann, entrypoint, cmd, env, argv_from_image, image)
        self.problems.raise_if_any()
        return Image(
            targets=targets,
            name=name,
            tag=tag,
            architecture=arch,
            annotations=dict(sorted(ann.items())),
            cmd=tuple(cmd),
            entrypoint=None if entrypoint is None else tuple(entrypoint),
            env=tuple(inherited + own),
            labels=labels,
            files=tuple(files),
            created=created(),
            source=self.spec.file,
            rootfs=rootfs,
            kernel=kernel,
            init=init,
            argv_from_image=argv_from_image,
            workdir=workdir,
        )


def created() -> str:
    """1970-01-01T00:00:01Z (as dockerTools), or SOURCE_DATE_EPOCH when set."""
    from datetime import datetime, timezone

    sde = os.environ.get("SOURCE_DATE_EPOCH")
    if sde:
        try:
            return datetime.fromtimestamp(int(sde), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        except (ValueError, OverflowError, OSError):
            raise SpecError("SOURCE_DATE_EPOCH is not a number of seconds", field="SOURCE_DATE_EPOCH", value=sde)
    return contract()["defaults"]["created"]


def validate(spec: Spec, read_images: str = "local") -> tuple[Image, Diagnostics]:
    """Spec -> Image, or SpecError listing every problem found. read_images:
    which rootfs images to read what they give from first
    (rootfs_image_config.py): "local" archives and layouts (cheap), "all"
    (also a registry image's config and a Dockerfile's build: what `urunix
    build` fetches anyway), or "none" (the Nix check: the Nix library cannot).
    An image not read leaves Image.argv_from_image set."""
    kinds = {"none": (), "local": ("image",), "all": IMAGE_KINDS}[read_images]
    base, wrong = rootfs_image_config.of_spec(spec, kinds)
    v = Validator(spec, base)
    v.problems.extend(wrong)
    image = v.run()
    return image, v.diag
