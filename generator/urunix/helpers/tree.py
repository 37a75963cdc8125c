"""Assemble one layer's root tree inside a Nix derivation (stdlib only).

Run as the builder of a derivation: `python3 tree.py`. The derivation passes
its entries as a JSON file (Nix's `passAsFile`, env var `entriesPath`): a list
of {"source": "/nix/store/...", "target": "/unikernel/kernel"}. Each source
(a file or a directory) is copied to its target under $out. Targets come from
the user and are used as data only, never through a shell.

Modes are normalized the way the native builder does it: 0755 for
directories and for files with any exec bit, else 0644 (the Nix store then
drops the write bits; the image step restores them). Symlinks inside a copied
directory stay symlinks.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys


def fail(msg: str) -> None:
    print(f"urunix tree: {msg}", file=sys.stderr)
    sys.exit(1)


def inside(out: str, target: str) -> str:
    parts = [p for p in target.split("/") if p]
    if any(p in (".", "..") for p in parts):
        fail(f"target {target!r} has '.' or '..' components")
    return os.path.join(out, *parts)


def makedirs(path: str) -> None:
    if os.path.lexists(path) and not os.path.isdir(path):
        fail(f"{path!r} is both a file and a directory in the image")
    os.makedirs(path, mode=0o755, exist_ok=True)


def copy_file(src: str, dst: str) -> None:
    if os.path.lexists(dst):
        fail(f"two entries write {dst!r}")
    makedirs(os.path.dirname(dst))
    shutil.copyfile(src, dst, follow_symlinks=True)
    exec_bit = os.stat(src).st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    os.chmod(dst, 0o755 if exec_bit else 0o644)


def copy_tree(src: str, dst: str) -> None:
    makedirs(dst)
    os.chmod(dst, 0o755)
    for name in sorted(os.listdir(src)):
        s = os.path.join(src, name)
        d = os.path.join(dst, name)
        if os.path.islink(s):
            if os.path.lexists(d):
                fail(f"two entries write {d!r}")
            os.symlink(os.readlink(s), d)
        elif os.path.isdir(s):
            copy_tree(s, d)
        else:
            copy_file(s, d)


def main() -> int:
    out = os.environ["out"]
    with open(os.environ["entriesPath"], encoding="utf-8") as f:
        entries = json.load(f)
    os.makedirs(out, mode=0o755)
    for entry in entries:
        src, dst = entry["source"], inside(out, entry["target"])
        if os.path.isdir(src):
            copy_tree(src, dst)
        elif os.path.exists(src):
            copy_file(src, dst)
        else:
            fail(f"source {src!r} does not exist")
    return 0


if __name__ == "__main__":
    sys.exit(main())
