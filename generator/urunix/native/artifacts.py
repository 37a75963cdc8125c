"""Make what the image needs beyond plain copies, natively: the guest rootfs
tree (from scratch, a host directory or an image, plus includes and the
init), written as an initrd (cpio) or a block image (ext2/ext4) or left as
members of the image's own rootfs (raw); and a kernel or init taken from an
image. Work files live in a scratch directory the caller removes."""

from __future__ import annotations

import dataclasses
import os
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import BuildError, SpecError
from ..helpers import cpio, ext
from ..helpers.image_writer import Entry, Member, PlanError, clean_path, expand, host_mode
from .. import overlap
from ..plan import file_entry
from ..rootfs import fetch
from ..rootfs import flatten as F
from ..rootfs.sources import IMAGE_KINDS
from ..spec import Extract, Image, Origin, RootfsBuild


@dataclass
class Recipe:
    """The rootfs artifact (initrd or block image), not made yet: `key`
    names what it would be made from (None: cannot be cached), `make()`
    makes it and returns its Member, which replaces `placeholder` in the
    rootfs layer. A layer cache hit on the key skips make() altogether."""

    key: str | None
    placeholder: Member
    make: Callable[[], Member]


@dataclass
class Artifacts:
    """Extra layer content for plan(): members by layer name."""

    kernel: list[Member] = field(default_factory=list)
    rootfs: list[Member] = field(default_factory=list)
    files: list[Member] = field(default_factory=list)
    recipe: Recipe | None = None
    expanded: bool = False  # rootfs holds a whole sorted tree, from expand()


class Materializer:
    def __init__(
        self,
        rootfs: RootfsBuild | None,
        scratch: str,
        stack: ExitStack,
        exclude=(),
        host_hardlinks: bool = True,
        kernel: Extract | None = None,
        init: Extract | None = None,
        source: Path | None = None,
    ):
        """What it reads of a validated Image: the rootfs, kernel and init to
        make, and the spec file (source) for messages. exclude: host paths
        never taken into a tree (urunix's own output and scratch);
        host_hardlinks: keep hard links of a rootfs directory (False for a
        Nix store path: see image_writer._walk)."""
        self.rootfs, self.kernel, self.init, self.source = rootfs, kernel, init, source
        self.host_hardlinks = host_hardlinks
        self.scratch = scratch
        self.stack = stack
        self.exclude = overlap.real_paths(exclude)  # urunix's own output and scratch: never in a tree
        self.opened: dict[str, F.FlatImage] = {}

    def fail(self, where: str, message: str, **kw) -> SpecError:
        src = self.source
        return SpecError(message, file=str(src) if src else None, field=where, **kw)

    def flat(self, origin: Origin) -> F.FlatImage:
        key = f"{origin.kind}:{origin.location}"
        if key not in self.opened:
            path = fetch.local_image(origin, self.scratch, len(self.opened))
            self.opened[key] = self.stack.enter_context(F.flatten(path, scratch_dir=self.scratch))
        return self.opened[key]

    def extract(self, x: Extract) -> Member:
        """The member for a kernel or init, placed at its target."""
        target = clean_path(x.target)
        if x.origin.kind == "file":
            st = os.stat(x.origin.location)
            return Member(target, "file", host_mode(st), st.st_size, source=x.origin.location)
        flat = self.flat(x.origin)
        m = flat.find(x.inner or "/")
        if m is None or m.kind not in ("file", "hardlink"):
            raise self.fail(
                f"{x.field}.path",
                f"is not a file in {os.path.basename(x.origin.location)}",
                value=x.inner,
                hint="list the image's files with: tar -tf, or docker export",
            )
        return dataclasses.replace(m, path=target, uid=0, gid=0, target="")

    def tree(self) -> list[Member]:
        """The guest rootfs: origin tree, then includes, then the init (later
        ones replace earlier ones at the same path)."""
        r = self.rootfs
        assert r is not None
        merged: dict[str, Member] = {}
        if r.origin.kind == "dir":
            base = expand(
                [
                    {
                        "type": "tree",
                        "path": "",
                        "source": r.origin.location,
                        "skip": overlap.inside(r.origin.location, "/", self.exclude),
                        "hardlinks": self.host_hardlinks,
                    }
                ]
            )
        elif r.origin.kind in IMAGE_KINDS:
            base = self.flat(r.origin).members
        else:
            base = []
        for m in base:
            merged[m.path] = m
        originals = {m.path: m for m in base if m.kind == "file"}
        includes: list[Entry] = []
        for i, f in enumerate(r.include):  # validate.py ordered them: a later entry wins
            e: Entry = {**file_entry(f, self.host_hardlinks), "rank": i}
            if e["type"] == "tree":
                e["skip"] = overlap.inside(e["source"], f.target, self.exclude)
            includes.append(e)
        for m in expand(includes):
            if m.kind == "dir" and m.path in merged:
                continue
            drop_below(merged, m.path)
            merged[m.path] = m
        if self.init is not None:
            m = self.extract(self.init)
            drop_below(merged, m.path)
            merged[m.path] = m
        if r.origin.kind == "dir" and not r.include and self.init is None:
            return base  # expand() made it: sorted and complete as it is
        relink(merged, originals)
        # Re-expand so parent directories of includes exist and order is sorted.
        return expand([], [m for m in merged.values()])

    def build(self, lazy: bool = False) -> Artifacts:
        """What the image needs. lazy: leave the initrd / block image to
        Artifacts.recipe (made only when the layer cache misses)."""
        out = Artifacts()
        if self.kernel is not None:
            out.kernel.append(self.extract(self.kernel))
        r = self.rootfs
        if r is None:
            if self.init is not None:
                out.files.append(self.extract(self.init))
            return out
        members = self.tree()
        if r.type == "raw":
            out.rootfs = members
            out.expanded = True
            return out
        target = clean_path(r.target or "/.boot/rootfs")

        def make() -> Member:
            try:
                if r.type == "initrd" and r.compression != "gzip":
                    # streamed straight into the layer: the archive is
                    # written once, where it belongs
                    return cpio.stream_member(target, members, hardlinks=r.hardlinks)
                artifact = os.path.join(self.scratch, "rootfs." + ("cpio" if r.type == "initrd" else r.fs_type))
                if r.type == "initrd":
                    cpio.write_file(members, artifact, gzip_level=6, hardlinks=r.hardlinks)
                else:
                    ext.write_ext(members, artifact, fs=r.fs_type, size=r.size)
            except PlanError as e:
                raise BuildError(f"{r.field}: {e}") from e
            st = os.stat(artifact)
            return Member(target, "file", 0o644, st.st_size, source=artifact)

        if not lazy:
            out.rootfs.append(make())
            return out
        from . import cache

        params: dict[str, object] = {
            "type": r.type,
            "target": target,
            "compression": r.compression,
            "hardlinks": r.hardlinks,
            "fs": r.fs_type,
            "size": str(r.size),
        }
        if r.type == "block":
            params["mke2fs"] = [cache.tool_fingerprint(_which(t)) for t in ("mke2fs", "debugfs")]
            params["root"] = os.geteuid() == 0
        placeholder = Member(target, "file", 0o644, 0, data=b"")
        out.rootfs.append(placeholder)
        out.recipe = Recipe(cache.recipe_key(params, members), placeholder, make)
        return out


def relink(merged: dict[str, Member], originals: dict[str, Member]) -> None:
    """An include (or the init) that replaces or removes the first name of a
    hard-linked file must not take the other names along: the first name
    left becomes the file, the rest link to it."""
    moved: dict[str, str] = {}
    links = sorted((p for p, m in merged.items() if m.kind == "hardlink"), key=lambda p: p.split("/"))
    for path in links:
        h = merged[path]
        orig = originals.get(h.target)
        if orig is None or merged.get(h.target) is orig:
            continue
        if h.target in moved:
            merged[path] = dataclasses.replace(h, target=moved[h.target])
        else:
            merged[path] = dataclasses.replace(orig, path=path, mode=h.mode, uid=h.uid, gid=h.gid)
            moved[h.target] = path


def drop_below(merged: dict[str, Member], path: str) -> None:
    """A file replacing a directory replaces what was inside it too."""
    prefix = path + "/"
    for p in [p for p in merged if p.startswith(prefix)]:
        del merged[p]


def _which(name: str) -> str | None:
    try:
        return ext.tool(name)
    except PlanError:
        return None


def materialize(image: Image, scratch: str, stack: ExitStack, lazy: bool = False, exclude=()) -> Artifacts:
    if image.argv_from_image:  # validate(spec, read_images="none"): not an Image to build
        raise BuildError("the rootfs image's command was not read before validation")
    m = Materializer(image.rootfs, scratch, stack, exclude, kernel=image.kernel, init=image.init, source=image.source)
    return m.build(lazy)
