"""Make what the image needs beyond plain copies, natively: the guest rootfs
tree (from scratch, a host directory or an image, plus includes and the
init), written as an initrd (cpio) or a block image (ext2/ext4) or left as
members of the image's own rootfs (raw); and a kernel or init taken from an
image. Work files live in a scratch directory the caller removes."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Callable

from ..errors import BuildError, MissingTool, SpecError
from ..helpers import cpio, ext
from ..helpers.image_writer import Entry, Member, PlanError, clean_path, expand, host_mode
from .. import overlap
from ..plan import file_entry
from ..rootfs import flatten as F
from ..rootfs.sources import IMAGE_KINDS
from ..spec import Extract, Image, Origin
from ..guest_argv import linux_split
from ..validate import join_args


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
    def __init__(self, image: Image, scratch: str, stack: ExitStack, exclude=(), host_hardlinks: bool = True):
        """exclude: host paths never taken into a tree (urunix's own output and
        scratch); host_hardlinks: keep hard links of a rootfs directory (False
        for a Nix store path: see image_writer._walk)."""
        self.image = image
        self.host_hardlinks = host_hardlinks
        self.scratch = scratch
        self.stack = stack
        self.exclude = overlap.real_paths(exclude)  # urunix's own output and scratch: never in a tree
        self.opened: dict[str, F.FlatImage] = {}

    def fail(self, where: str, message: str, **kw) -> SpecError:
        src = self.image.source
        return SpecError(message, file=str(src) if src else None, field=where, **kw)

    def local_image(self, origin: Origin) -> str:
        """A path flatten() reads: the origin itself, or a registry pull."""
        if origin.kind == "image":
            return origin.location
        if origin.kind == "dockerfile":
            return self.docker_build(origin)
        if origin.kind != "registry":
            raise AssertionError(origin)
        skopeo = shutil.which("skopeo")
        if not skopeo:
            raise MissingTool("skopeo", "apt-get install skopeo", f"to fetch {origin.location}")
        dest = os.path.join(self.scratch, f"pull-{len(self.opened)}")
        r = subprocess.run(
            [skopeo, "copy", "--quiet", f"docker://{origin.location}", f"oci:{dest}:image"], capture_output=True, text=True
        )
        if r.returncode != 0:
            raise BuildError(f"skopeo could not fetch {origin.location}: {r.stderr.strip()[-2000:]}")
        return dest

    def docker_build(self, origin: Origin) -> str:
        """kraft's way: build the Dockerfile with the Docker Engine (its
        directory is the context), save the image, and read that archive.
        The image is removed from the engine again; the build's own cache
        stays, as with any docker build."""
        import hashlib

        docker = shutil.which("docker")
        if not docker:
            raise MissingTool("docker", "apt-get install docker.io (and start dockerd)", f"to build {origin.location}")
        tag = "urunix-rootfs/" + hashlib.sha256(f"{origin.location}:{self.scratch}".encode()).hexdigest()[:16]
        dest = os.path.join(self.scratch, f"dockerfile-{len(self.opened)}.tar")
        context = os.path.dirname(origin.location)
        steps = ([docker, "build", "-q", "-f", origin.location, "-t", tag, context], [docker, "save", "-o", dest, tag])
        try:
            for argv in steps:
                r = subprocess.run(argv, capture_output=True, text=True)
                if r.returncode != 0:
                    if "Cannot connect to the Docker daemon" in r.stderr or "daemon running" in r.stderr:
                        raise BuildError(
                            f"{origin.location}: a rootfs from a Dockerfile needs a running Docker "
                            f"Engine (dockerd, or DOCKER_HOST): {r.stderr.strip()[-500:]}"
                        )
                    raise BuildError(f"docker {argv[1]} of {origin.location} failed: {r.stderr.strip()[-2000:]}")
        finally:
            subprocess.run([docker, "rmi", "-f", tag], capture_output=True)
        return dest

    def flat(self, origin: Origin) -> F.FlatImage:
        key = f"{origin.kind}:{origin.location}"
        if key not in self.opened:
            path = self.local_image(origin)
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
        r = self.image.rootfs
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
            flat = self.flat(r.origin)
            base = flat.members
            self.image_config(flat)
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
        if self.image.init is not None:
            m = self.extract(self.image.init)
            drop_below(merged, m.path)
            merged[m.path] = m
        if r.origin.kind == "dir" and not r.include and self.image.init is None:
            return base  # expand() made it: sorted and complete as it is
        relink(merged, originals)
        # Re-expand so parent directories of includes exist and order is sorted.
        return expand([], [m for m in merged.values()])

    def image_config(self, flat: F.FlatImage) -> None:
        """Keep the rootfs image's command, Env and WorkingDir where the
        guest uses them."""
        from ..urunc_rules import Rules

        img = self.image
        rules = Rules(img.targets)  # the targeted releases' rules on what is known only now
        if img.argv_from_image:
            argv = flat.argv()
            if not argv and img.annotations.get("unikernelType") == "linux" and not img.cmd:
                raise self.fail(
                    "cmd",
                    "the rootfs image has no Entrypoint or Cmd, and the spec gives no command",
                    hint="set cmdline (or cmd); a Linux guest needs an init",
                )
            guest = img.annotations.get("unikernelType", "")
            full = img.cmd + argv  # img.cmd holds the init, if any
            img.annotations["cmdline"] = join_args(full, guest)
            img.entrypoint, img.cmd = None, full
            if guest == "linux":
                # Docker's convention kept: the image's Entrypoint (or its
                # program) stays, its Cmd stays replaceable by `docker run` ARGS
                ep = flat.entrypoint()
                if ep:
                    n = len(full) - len(flat.cmd())
                    img.entrypoint, img.cmd = full[:n], full[n:]
                else:
                    img.entrypoint, img.cmd = linux_split(full, img.init is not None)
            if not img.entrypoint and not img.cmd:
                img.cmd = [""]  # Docker refuses an image without a command; urunc reads [""] as none
            img.argv_from_image = False
            rules.command(guest, full, img.annotations.get("cmdline"), ["image Entrypoint/Cmd"] * len(full))
        mine = {e.split("=", 1)[0] for e in img.env}
        inherited = [e for e in flat.env() if e.split("=", 1)[0] not in mine]
        img.env = inherited + img.env
        img.workdir = img.workdir or flat.workdir() or None
        guest = img.annotations.get("unikernelType", "")
        argv = (img.entrypoint or []) + img.cmd
        rules.env(
            guest,
            dict(e.split("=", 1) for e in inherited if "=" in e),
            argv[0] if argv else None,
            img.annotations.get("unikernelVersion"),
        )
        rules.workdir_user(guest, argv[0] if argv else None, img.workdir, None)
        self.report(rules)

    def report(self, rules) -> None:
        import sys

        errors = []
        for f in rules.findings():
            where = "image Env" + f.field[3:] if f.field.startswith("env") else f.field
            p = self.fail(where, f.text(), value=f.value, hint=f.hint)
            if f.level == "error":
                errors.extend(p.problems)
            else:
                print(p.problem.render("warning"), file=sys.stderr, flush=True)
        if errors:
            raise SpecError(problems=errors)

    def build(self, lazy: bool = False) -> Artifacts:
        """What the image needs. lazy: leave the initrd / block image to
        Artifacts.recipe (made only when the layer cache misses)."""
        img, out = self.image, Artifacts()
        if img.kernel is not None:
            out.kernel.append(self.extract(img.kernel))
        r = img.rootfs
        if r is None:
            if img.init is not None:
                out.files.append(self.extract(img.init))
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
    return Materializer(image, scratch, stack, exclude).build(lazy)
