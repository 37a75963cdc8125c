"""Build a guest rootfs artifact (an initrd or a block image), or take one
file (a kernel, an init) out of an image, inside a Nix derivation.

stdlib only. It runs the very code `urunix build` runs (native/artifacts.py,
helpers/cpio.py, helpers/ext.py, rootfs/flatten.py): the derivation copies
the urunix package into the store, and this script loads it from the
directory above its own, whatever that directory is called.

    python3 build_rootfs.py ROOTFS.json OUT

ROOTFS.json, for an artifact (OUT a file) or a raw tree (OUT a directory):
  {"type": "initrd" | "block" | "raw",
   "origin": {"kind": "scratch" | "dir" | "image", "location": "/nix/store/..."},
   "include": [{"source": "/nix/store/...", "target": "/conf/redis.conf"}, ...],
   "init": {"origin": {...}, "inner": "/urunit" | null, "target": "/urunit"} | null,
   "size": "auto", "fsType": "ext2", "compression": "none", "hardlinks": "link"}
and to extract a file:
  {"extract": {"origin": {"kind": "image", "location": "..."}, "inner": "/kernel", "target": "/kernel"}}
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import script  # noqa: E402


def _origin(d: dict):
    from urunix.spec import Origin

    return Origin(d["kind"], d.get("location", ""), d.get("field", ""))


def _extract(d: dict | None):
    from urunix.spec import Extract

    if not d:
        return None
    return Extract(_origin(d["origin"]), d.get("inner"), d["target"], d.get("field", ""))


def _rootfs(desc: dict):
    """The RootfsBuild a rootfs description names (None: only an extract)."""
    from urunix.spec import FileEntry, RootfsBuild

    if "type" not in desc:
        return None
    include = [FileEntry(i["source"], Path(i["source"]), i["target"], "rootfs.include") for i in desc.get("include", [])]
    return RootfsBuild(
        desc["type"],
        _origin(desc["origin"]),
        include,
        target="/rootfs",
        size=str(desc.get("size", "auto")),
        fs_type=desc.get("fsType", "ext2"),
        compression=desc.get("compression", "none"),
        hardlinks=desc.get("hardlinks", "link"),
    )


def build(desc: dict, out: str) -> None:
    script.load_package()
    from urunix.helpers import cpio, ext
    from urunix.helpers.image_writer import Member
    from urunix.native.artifacts import Materializer

    with ExitStack() as stack:
        scratch = tempfile.mkdtemp(prefix="urunix-")
        stack.callback(shutil.rmtree, scratch, True)
        r = _rootfs(desc)
        # store paths: see image_writer._walk
        m = Materializer(r, scratch, stack, host_hardlinks=False, init=_extract(desc.get("init")))
        if "extract" in desc:
            from urunix.rootfs.flatten import copy_member

            member: Member = m.extract(_extract(desc["extract"]))
            copy_member(member, out)
            os.chmod(out, member.mode & 0o777)
            return
        members = m.tree()
        if r.type == "initrd":
            cpio.write_file(members, out, gzip_level=6 if r.compression == "gzip" else None, hardlinks=r.hardlinks)
        elif r.type == "block":
            ext.write_ext(members, out, fs=r.fs_type, size=r.size)
        elif r.type == "raw":
            write_tree(members, out)
        else:
            raise SystemExit(f"build_rootfs.py: rootfs type {r.type!r} is not an artifact")


def write_tree(members, out: str) -> None:
    """A raw rootfs as a directory (a Nix store path, which the image step
    takes as one layer): directories, files with modes 0644/0755, symlinks.
    Hard links become copies; owners, device nodes and fifos cannot live in
    the Nix store and are refused."""
    from urunix.rootfs.flatten import copy_member

    os.makedirs(out, mode=0o755)
    by_path = {m.path: m for m in members}
    for m in members:
        dest = os.path.join(out, m.path)
        if m.kind == "dir":
            os.makedirs(dest, mode=0o755, exist_ok=True)
        elif m.kind in ("file", "hardlink"):
            src = by_path.get(m.target) if m.kind == "hardlink" else m
            if src is None or src.kind != "file":
                raise ValueError(f"/{m.path}: hard link to /{m.target}, which is not a file in the tree")
            copy_member(src, dest)
            os.chmod(dest, 0o755 if src.mode & 0o111 else 0o644)
        elif m.kind == "symlink":
            os.symlink(m.target, dest)
        else:
            raise ValueError(
                f"/{m.path}: a {m.kind} cannot be stored in the Nix store; build a raw rootfs with it with `urunix build`"
            )


def main(argv: list[str]) -> int:
    return script.run(argv, "ROOTFS.json OUT", build)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
