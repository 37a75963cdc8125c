"""Write a cpio "newc" (070701) archive -- an initrd -- from a tree, in one
pass, deterministically, in constant memory.

stdlib only: runs as `python3 cpio.py TREE.json OUT [--gzip]` inside a Nix
derivation, and the native builder imports it.

TREE.json: {"entries": [ENTRY, ...]} in image_writer's plan-entry format
(file, dir, symlink, tree), expanded with image_writer.expand(); optional
"mtime" (default 0) and "hardlinks" ("link" | "copy").

What goes in, for each Member (sorted by path, as expand() and flatten give
them):
- names are relative ("etc/passwd"), no leading "./" and no entry for the
  root itself (nothing useful to say about it; Unikraft's reader and the
  kernel both start from an existing "/");
- owner from the Member (0:0 unless an image said otherwise), one fixed
  mtime, devmajor/devminor 0 (no host device numbers leak in);
- inode numbers 1, 2, 3... in archive order; a hard-link group takes one
  number, at its first member;
- directories have nlink 2 + their subdirectories, like a real filesystem;
- symlinks: the data is the target, no NUL;
- char/block devices carry rdevmajor/rdevminor; fifos have no data;
- hard links (GNU cpio's and libarchive's newc convention, which the kernel's
  initramfs unpacker also follows): every link of a group has the same ino
  and nlink = size of the group; all but the LAST have filesize 0 and the
  last one carries the data. The kernel creates the file at the first link,
  links the others to it, and writes the data when the last one arrives.
  Readers that know nothing of hard links (Unikraft's ukcpio) would see the
  earlier names as empty files: pass hardlinks="copy" to store every name as
  an independent file with its own data instead;
- the "TRAILER!!!" entry (ino 0, nlink 1), then zeros up to a multiple of
  512 bytes, as GNU cpio does (its default block size); the kernel and
  bsdcpio ignore the padding, and it keeps byte-for-byte comparisons with
  `cpio -o -H newc --reproducible` possible.

newc fields are 32 bits: a file of 4 GiB or more, an mtime past 2106, an
owner id or inode count above 2^32-1 cannot be stored. They are checked
before anything is written, and the error names the file.

gzip (optional, Linux only -- Unikraft reads only uncompressed cpio): level 6,
mtime 0 and no file name in the gzip header, so the bytes depend only on the
input and on zlib's version.
"""

from __future__ import annotations

import gzip
import json
import os
import sys
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, SupportsWrite

    Out = SupportsWrite[ReadableBuffer]  # a file, a GzipFile, a layer's writer

if __package__:
    from .image_writer import Member, PlanError, expand
else:  # run as a script, e.g. inside a Nix derivation
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from image_writer import Member, PlanError, expand  # type: ignore[no-redef]  # noqa: E402  (the same names)

CHUNK = 1 << 20
MAGIC = b"070701"
MAX32 = 0xFFFFFFFF
BLOCK = 512
TRAILER = "TRAILER!!!"

S_IFMT = {"file": 0o100000, "dir": 0o040000, "symlink": 0o120000, "char": 0o020000, "block": 0o060000, "fifo": 0o010000}

Progress = Callable[[int], None]


class CpioError(PlanError):
    """The tree cannot be stored as newc cpio (a size or a number too large
    for its 32-bit fields, a hard link to nothing)."""


def _name(path: str) -> bytes:
    return path.encode("utf-8", "surrogateescape") + b"\0"


def _header(
    ino: int, mode: int, uid: int, gid: int, nlink: int, mtime: int, size: int, rmaj: int, rmin: int, name: bytes
) -> bytes:
    fields = (ino, mode, uid, gid, nlink, mtime, size, 0, 0, rmaj, rmin, len(name), 0)
    head = MAGIC + b"".join(b"%08X" % v for v in fields) + name
    return head + bytes(-len(head) % 4)


class _Entry:
    """One cpio record, everything known before any byte is written."""

    __slots__ = ("member", "name", "ino", "mode", "nlink", "size", "data_from")

    def __init__(self, member: Member, name: bytes, ino: int, mode: int, nlink: int, size: int, data_from: Member | None):
        self.member, self.name, self.ino, self.mode = member, name, ino, mode
        self.nlink, self.size, self.data_from = nlink, size, data_from

    def header(self, mtime: int) -> bytes:
        m = self.member
        return _header(self.ino, self.mode, m.uid, m.gid, self.nlink, mtime, self.size, m.devmajor, m.devminor, self.name)


def _resolve(members: list[Member]) -> dict[str, Member]:
    """hardlink path -> the non-hardlink Member it finally names."""
    by_path = {m.path: m for m in members}
    out: dict[str, Member] = {}
    for m in members:
        if m.kind != "hardlink":
            continue
        seen = {m.path}
        t = by_path.get(m.target)
        while t is not None and t.kind == "hardlink":
            if t.path in seen:
                raise CpioError(f"/{m.path}: hard link loop")
            seen.add(t.path)
            t = by_path.get(t.target)
        if t is None:
            raise CpioError(f"/{m.path}: hard link to /{m.target}, which is not in the tree")
        if t.kind == "dir":
            raise CpioError(f"/{m.path}: hard link to the directory /{t.path}")
        out[m.path] = t
    return out


def plan(members: list[Member], mtime: int = 0, hardlinks: str = "link") -> list[_Entry]:
    """The records write_cpio will write, checked against newc's limits."""
    if hardlinks not in ("link", "copy"):
        raise CpioError(f"hardlinks must be 'link' or 'copy', not {hardlinks!r}")
    if not 0 <= mtime <= MAX32:
        raise CpioError(f"mtime {mtime} does not fit newc's 32-bit field")
    target_of = _resolve(members)
    # regular-file groups: prototype path -> all names, in archive order
    groups: dict[str, list[str]] = {}
    for m in members:
        if m.kind == "file":
            groups.setdefault(m.path, []).insert(0, m.path)
    for m in members:
        t = target_of.get(m.path)
        if t is not None and t.kind == "file" and hardlinks == "link":
            groups[t.path].append(m.path)
    order = {m.path: i for i, m in enumerate(members)}
    for names in groups.values():
        names.sort(key=order.__getitem__)
    group_of = {n: g for g in groups.values() if len(g) > 1 for n in g}

    subdirs: dict[str, int] = {}
    for m in members:
        if m.kind == "dir" and "/" in m.path:
            parent = m.path.rsplit("/", 1)[0]
            subdirs[parent] = subdirs.get(parent, 0) + 1

    entries: list[_Entry] = []
    ino_of_group: dict[str, int] = {}
    next_ino = 1
    for m in members:
        proto = target_of.get(m.path, m)
        if m.uid > MAX32 or m.gid > MAX32 or m.uid < 0 or m.gid < 0:
            raise CpioError(f"/{m.path}: owner {m.uid}:{m.gid} does not fit newc's 32-bit fields")
        if proto.kind not in S_IFMT:
            raise CpioError(f"/{m.path}: cannot store a {proto.kind!r} in cpio")
        if proto.kind == "file" and proto.size > MAX32:
            raise CpioError(
                f"/{m.path} is {proto.size} bytes; cpio newc stores at most {MAX32} bytes "
                f"(4 GiB - 1) per file: leave it out of the initrd or use a block rootfs"
            )
        mode = S_IFMT[proto.kind] | (proto.mode & 0o7777)
        group = group_of.get(m.path)
        if group is not None:
            key = group[0]
            if key not in ino_of_group:
                ino_of_group[key] = next_ino
                next_ino += 1
            ino = ino_of_group[key]
            last = group[-1] == m.path
            size = proto.size if last else 0
            # every name of the group has the file's owner and mode
            entries.append(_Entry(proto, _name(m.path), ino, mode, len(group), size, proto if last else None))
            continue
        ino = next_ino
        next_ino += 1
        if proto.kind == "file":
            entries.append(_Entry(proto, _name(m.path), ino, mode, 1, proto.size, proto))
        elif proto.kind == "symlink":
            target = proto.target.encode("utf-8", "surrogateescape")
            if len(target) > MAX32:
                raise CpioError(f"/{m.path}: symlink target too long")
            entries.append(_Entry(proto, _name(m.path), ino, mode, 1, len(target), proto))
        elif proto.kind == "dir":
            entries.append(_Entry(m, _name(m.path), ino, mode, 2 + subdirs.get(m.path, 0), 0, None))
        else:  # char, block, fifo
            entries.append(_Entry(proto, _name(m.path), ino, mode, 1, 0, None))
    if next_ino > MAX32:
        raise CpioError(f"{next_ino - 1} inodes do not fit newc's 32-bit inode numbers")
    return entries


def _trailer() -> bytes:
    return _header(0, 0, 0, 0, 1, 0, 0, 0, 0, _name(TRAILER))


def _copy(m: Member, out: Out, view: memoryview, size: int, progress: Progress | None) -> None:
    if m.data is not None:
        if len(m.data) != size:
            raise CpioError(f"/{m.path}: inline data is {len(m.data)} bytes, not {size}")
        out.write(m.data)
        if progress:
            progress(size)
        return
    if m.source is None:  # a member whose content is made while a layer streams (fill)
        raise CpioError(f"/{m.path}: has no content to copy into the archive")
    left = size
    with open(m.source, "rb", buffering=0) as f:
        if m.offset:
            f.seek(m.offset)
        while left:
            n = f.readinto(view[: min(len(view), left)])
            if not n:
                break
            out.write(view[:n])
            left -= n
            if progress:
                progress(n)
        if left or (not m.offset and f.read(1)):
            raise CpioError(f"{m.source} changed size while it was being read")


def write_cpio(
    members: list[Member], out: Out, mtime: int = 0, progress: Progress | None = None, hardlinks: str = "link"
) -> None:
    """Write `members` (sorted by path, no root entry) to `out` as newc cpio.
    Raises CpioError before writing anything if the tree does not fit."""
    _write_entries(plan(members, mtime, hardlinks), out, mtime, progress)


class _Writes:
    def __init__(self, write: Callable[[ReadableBuffer], None]):
        self.write = write


def stream_member(path: str, members: list[Member], mtime: int = 0, hardlinks: str = "link", mode: int = 0o644) -> Member:
    """A file Member at `path` whose content is the (uncompressed) archive
    of `members`, made while the layer holding it streams: its exact size
    comes from the plan, so the archive is never written anywhere else."""
    entries = plan(members, mtime, hardlinks)
    total = sum(len(e.header(mtime)) + e.size + (-e.size % 4) for e in entries) + len(_trailer())
    total += -total % BLOCK
    return Member(path, "file", mode, total, fill=lambda write: _write_entries(entries, _Writes(write), mtime, None))


def _write_entries(entries: list[_Entry], out: Out, mtime: int, progress: Progress | None) -> None:
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    written = 0
    for e in entries:
        head = e.header(mtime)
        out.write(head)
        written += len(head)
        if e.size:
            m = e.data_from
            assert m is not None  # plan() names the member of every record with content
            if m.kind == "symlink":
                out.write(m.target.encode("utf-8", "surrogateescape"))
            else:
                _copy(m, out, view, e.size, progress)
            pad = -e.size % 4
            out.write(bytes(pad))
            written += e.size + pad
    tail = _trailer()
    written += len(tail)
    out.write(tail + bytes(-written % BLOCK))


def write_file(
    members: list[Member],
    path: str,
    mtime: int = 0,
    gzip_level: int | None = None,
    progress: Progress | None = None,
    hardlinks: str = "link",
) -> None:
    """Write the archive to `path`; gzip_level (e.g. 6) compresses it with a
    deterministic gzip header (mtime 0, no file name)."""
    plan(members, mtime, hardlinks)  # fail before creating the file
    with open(path, "wb") as raw:
        if gzip_level is None:
            write_cpio(members, raw, mtime, progress, hardlinks)
        else:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=gzip_level, mtime=0) as gz:
                write_cpio(members, gz, mtime, progress, hardlinks)


def main(argv: list[str]) -> int:
    args = [a for a in argv[1:] if not a.startswith("--")]
    flags = [a for a in argv[1:] if a.startswith("--")]
    bad = [f for f in flags if f not in ("--gzip", "--hardlinks=copy", "--hardlinks=link")]
    if len(args) != 2 or bad:
        print("usage: cpio.py TREE.json OUT [--gzip] [--hardlinks=link|copy]", file=sys.stderr)
        return 2
    try:
        with open(args[0], "rb") as f:
            tree = json.load(f)
        members = expand(tree["entries"])
        hardlinks = tree.get("hardlinks", "link")
        for flag in flags:
            if flag.startswith("--hardlinks="):
                hardlinks = flag.split("=", 1)[1]
        write_file(
            members, args[1], int(tree.get("mtime", 0)), 6 if "--gzip" in flags or tree.get("gzip") else None, hardlinks=hardlinks
        )
    except (PlanError, OSError, KeyError, ValueError) as e:
        print(f"cpio: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
