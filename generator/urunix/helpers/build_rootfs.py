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

import importlib.util
import json
import os
import shutil
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path


def _load_package():
    """Import urunix from the directory holding helpers/ (a store path with
    a hash in its name, so a plain sys.path entry would not do)."""
    if "urunix" in sys.modules:
        return
    pkg = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location("urunix", os.path.join(pkg, "__init__.py"), submodule_search_locations=[pkg])
    assert spec is not None and spec.loader is not None  # a .py path always gets a source loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["urunix"] = module
    spec.loader.exec_module(module)


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
    _load_package()
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
    if len(argv) != 3:
        print("usage: build_rootfs.py ROOTFS.json OUT", file=sys.stderr)
        return 2
    with open(argv[1], "rb") as f:
        desc = json.load(f)
    try:
        build(desc, argv[2])
    except Exception as e:  # a derivation log wants the reason, not a traceback
        if os.environ.get("URUNIX_DEBUG", "").strip().lower() not in ("", "0", "false", "no", "off"):  # urunix/envflags.py
            raise
        print(f"build_rootfs.py: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
