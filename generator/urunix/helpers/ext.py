"""Make an ext2 or ext4 block image from a tree with e2fsprogs (`mke2fs -d`):
no mount, no loop device, deterministic.

stdlib only: runs as `python3 ext.py TREE.json OUT [--fs ext2|ext4]
[--size auto|64M] [--label L]` inside a Nix derivation (with e2fsprogs on
PATH), and the native builder imports it.

TREE.json: {"entries": [ENTRY, ...]} in image_writer's plan-entry format,
expanded with image_writer.expand(); optional "mtime", "fs", "size", "label".

How (and why this way):
1. The tree (a list of Member, as expand() and rootfs.flatten give it) is
   staged into a temporary directory beside the output: directories, files,
   symlinks, hard links (os.link inside the staging), fifos, and -- as root --
   device nodes and owners (lchown). A file is cloned (FICLONE, free on
   btrfs/xfs) or copied sparsely (SEEK_DATA/SEEK_HOLE + copy_file_range), so a
   2 GiB sparse file costs no disk space. Hard-linking the user's file into
   the staging would be free too, but mke2fs takes mode, owner and times from
   the inode, and changing those would change the user's file.
2. `mke2fs -d STAGING` with our own mke2fs.conf (MKE2FS_CONFIG: the host's
   /etc/mke2fs.conf does not decide the features), -b 4096, -I 256, -m 0,
   -N inodes, fixed -U UUID and -E hash_seed, root_owner=0:0,
   E2FSPROGS_FAKE_TIME, LC_ALL=C (mke2fs sorts directory entries with
   alphasort, which follows the locale).
3. A `debugfs -w` pass sets atime/mtime/ctime/crtime of every used inode to
   the fixed mtime: mke2fs -d copies ctime from the staging, which nobody can
   set. Inodes are addressed by number (from the inode bitmap that dumpe2fs
   prints), so no file name is ever parsed. Not as root, the same pass sets
   owners and creates device nodes (by quoted path; a name holding a newline
   cannot be given there and is refused).
4. `e2fsck -fn` must pass, or the build fails.

ext2 is the default (rumprun reads only ext2). ext4 is made WITHOUT a journal
(-O ^has_journal): the image is a per-container copy, a journal would add
4-64 MiB and bytes nobody replays. Features are pinned by our config, so the
same e2fsprogs version gives the same bytes; across versions they may differ.

UUID: derived from a SHA-256 of the listing (paths, kinds, modes, owners,
sizes, link targets, device numbers) plus fs type and size, so two different
rootfs images attached to one VM do not share a UUID, while the same tree
always gets the same one; the hash seed comes from the same digest. Pass
uuid= to choose one.

size="auto": data blocks (per file, allocated bytes for sparse sources, with
ext2's indirect blocks), directory and symlink blocks, inode tables for the
inode count (members + 25% + 64), plus 15% and 2 MiB of metadata room, at
least 8 MiB, rounded up to 1 MiB. If mke2fs still runs out of space the size
grows by half and it tries again (deterministically). An explicit size such
as "64M" / "1G" / "4096K" / bytes is taken as is and an error names what did
not fit.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import uuid as uuidlib
from typing import Callable

if __package__:
    from .image_writer import Member, PlanError, expand
else:  # run as a script, e.g. inside a Nix derivation
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from image_writer import Member, PlanError, expand  # type: ignore[no-redef]  # noqa: E402  (the same names)

BLOCK_SIZE = 4096
INODE_SIZE = 256
MIB = 1 << 20
FLOOR = 8 * MIB
FS_TYPES = ("ext2", "ext4")
FICLONE = 0x40049409

PROFILE = """[defaults]
	base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
	default_mntopts = acl,user_xattr
	enable_periodic_fsck = 0
	blocksize = 4096
	inode_size = 256
	inode_ratio = 16384
	reserved_ratio = 0
	lazy_itable_init = false
	lazy_journal_init = false

[fs_types]
	ext2 = {
		features = ^has_journal
	}
	ext4 = {
		features = ^has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
	}
"""

Progress = Callable[[int], None]


class ExtError(PlanError):
    """The block image cannot be made (tool missing, tree too large for the
    size asked, a check failed)."""


SBIN = ["/usr/sbin", "/sbin"]  # e2fsprogs lives there, often off a user's PATH


def tool(name: str) -> str:
    for d in os.environ.get("PATH", "").split(os.pathsep) + SBIN:
        p = os.path.join(d, name)
        if d and os.access(p, os.X_OK):
            return p
    raise ExtError(f"{name} not found: install e2fsprogs (Debian/Ubuntu: apt-get install e2fsprogs; Nix: pkgs.e2fsprogs)")


_SIZE = re.compile(r"\s*([0-9]+)\s*(?:([KMGT])(i?)B?|B)?\s*", re.IGNORECASE)


def parse_size(size: str | int) -> int:
    """The one size syntax of urunix, in the spec and on the command line:
    a number of bytes; K, M, G, T or KiB, MiB, GiB, TiB (powers of 1024:
    "64M" = "64MiB" = 64 * 2**20); KB, MB, GB, TB (powers of 1000, as disk
    makers and `df -H` count: "64MB" = 64 * 10**6); a trailing B is bytes.
    Letters in either case."""
    if isinstance(size, int) and not isinstance(size, bool):
        return size
    m = _SIZE.fullmatch(str(size))
    if not m:
        raise ExtError(
            f'size {size!r}: give "auto", bytes, or a number with K, M, G, T '
            f'(or KiB...: powers of 1024; KB...: powers of 1000), e.g. "64M"'
        )
    number, prefix, binary = m.groups()
    if not prefix:
        return int(number)
    power = " KMGT".index(prefix.upper())
    whole = m.group(0).rstrip()
    decimal = whole[-1:] in "bB" and not binary  # KB, MB: SI
    return int(number) * ((1000 if decimal else 1024) ** power)


def _blocks(n: int, bs: int = BLOCK_SIZE) -> int:
    return -(-n // bs)


def _indirect(data_blocks: int, bs: int = BLOCK_SIZE) -> int:
    """ext2 indirect blocks for a file of `data_blocks` blocks (an upper bound
    for ext4 extents too)."""
    per = bs // 4
    left = data_blocks - 12
    if left <= 0:
        return 0
    n = 1  # single indirect
    left -= per
    if left > 0:  # double indirect
        n += 1 + _blocks(min(left, per * per), per)
        left -= per * per
    if left > 0:  # triple indirect
        n += 1 + _blocks(left, per * per) + _blocks(left, per)
    return n


def _allocated(m: Member) -> int:
    """Bytes of data the file will occupy: a sparse source costs only what it
    holds."""
    if m.data is not None or m.source is None:
        return m.size
    if m.offset == 0:
        try:
            st = os.stat(m.source)
            if st.st_size == m.size:
                return min(m.size, st.st_blocks * 512)
        except OSError:
            pass
    return m.size


def auto_size(members: list[Member]) -> tuple[int, int]:
    """(bytes, inode count) for size="auto"."""
    blocks = 0
    entries_per_dir: dict[str, int] = {"": 24}
    for m in members:
        parent = m.path.rsplit("/", 1)[0] if "/" in m.path else ""
        name_len = len(m.path.rsplit("/", 1)[-1].encode("utf-8", "surrogateescape"))
        entries_per_dir[parent] = entries_per_dir.get(parent, 24) + 8 + ((name_len + 3) & ~3)
        if m.kind == "file":
            b = _blocks(_allocated(m))
            blocks += b + _indirect(_blocks(m.size))
        elif m.kind == "dir":
            entries_per_dir.setdefault(m.path, 24)
        elif m.kind == "symlink" and len(m.target.encode("utf-8", "surrogateescape")) >= 60:
            blocks += 1
    for used in entries_per_dir.values():
        blocks += max(1, _blocks(used)) + (1 if used > BLOCK_SIZE else 0)
    inodes = len(members) + len(members) // 4 + 64
    total = blocks * BLOCK_SIZE + inodes * INODE_SIZE
    total = int(total * 1.15) + 2 * MIB
    total = max(FLOOR, -(-total // MIB) * MIB)
    return total, inodes


def fs_uuid(members: list[Member], fs: str, size: int) -> tuple[str, str]:
    """(UUID, hash seed) from the listing."""
    h = hashlib.sha256(f"urunix-ext {fs} {size}\n".encode())
    for m in members:
        h.update(
            json.dumps(
                [m.path, m.kind, m.mode, m.uid, m.gid, m.size, m.target, m.devmajor, m.devminor], ensure_ascii=False
            ).encode("utf-8", "surrogateescape")
            + b"\n"
        )
    d = h.digest()
    return str(uuidlib.UUID(bytes=d[:16], version=4)), str(uuidlib.UUID(bytes=d[16:32], version=4))


# ---------------------------------------------------------------- staging


def _copy_range(src_fd: int, dst_fd: int, offset: int, length: int, out_offset: int) -> None:
    while length > 0:
        try:
            n = os.copy_file_range(src_fd, dst_fd, min(length, 1 << 30), offset, out_offset)
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            n = 0
            os.lseek(src_fd, offset, os.SEEK_SET)
            os.lseek(dst_fd, out_offset, os.SEEK_SET)
            chunk = os.read(src_fd, min(length, 1 << 20))
            if chunk:
                os.write(dst_fd, chunk)
                n = len(chunk)
        if n == 0:
            raise ExtError("source file shrank while it was being copied")
        offset, out_offset, length = offset + n, out_offset + n, length - n


_clone_ok = [True]  # FICLONE failed once with "not supported": skip it from then on


def _stage_file(m: Member, dst: str) -> None:
    """Write the member's bytes at `dst` with its mode. No utime: the
    debugfs pass sets every inode's times."""
    mode = m.mode & 0o7777
    if m.data is not None:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(m.data)
            while view:
                view = view[os.write(fd, view) :]
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        return
    if m.source is None:  # a member whose content is made while a layer streams (fill)
        raise ExtError(f"/{m.path}: has no content to write into the block image")
    src_fd = os.open(m.source, os.O_RDONLY)
    try:
        dst_fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            st = os.fstat(src_fd)
            whole = m.offset == 0 and st.st_size == m.size
            if whole and _clone_ok[0] and m.size >= (1 << 16):
                try:
                    fcntl.ioctl(dst_fd, FICLONE, src_fd)
                    os.fchmod(dst_fd, mode)
                    return
                except OSError as e:
                    if e.errno in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS):
                        _clone_ok[0] = False
            if whole and st.st_blocks * 512 < st.st_size:
                # sparse: copy the data segments only, so holes stay holes
                pos = 0
                while pos < m.size:
                    try:
                        data = os.lseek(src_fd, pos, os.SEEK_DATA)
                    except OSError as e:
                        if e.errno == errno.ENXIO:  # only a hole is left
                            break
                        raise
                    hole = os.lseek(src_fd, data, os.SEEK_HOLE)
                    _copy_range(src_fd, dst_fd, data, min(hole, m.size) - data, data)
                    pos = hole
                os.ftruncate(dst_fd, m.size)
            else:
                if m.offset + m.size > st.st_size:
                    raise ExtError(f"{m.source}: {m.size} bytes at {m.offset} run past its end")
                if m.size:
                    _copy_range(src_fd, dst_fd, m.offset, m.size, 0)
            os.fchmod(dst_fd, mode)
        finally:
            os.close(dst_fd)
    finally:
        os.close(src_fd)


def _resolve_links(members: list[Member]) -> dict[str, Member]:
    by_path = {m.path: m for m in members}
    out = {}
    for m in members:
        if m.kind == "hardlink":
            t, seen = by_path.get(m.target), {m.path}
            while t is not None and t.kind == "hardlink" and t.path not in seen:
                seen.add(t.path)
                t = by_path.get(t.target)
            if t is None or t.kind in ("hardlink", "dir"):
                raise ExtError(f"/{m.path}: hard link to /{m.target}, which is not a file in the tree")
            out[m.path] = t
    return out


def stage(members: list[Member], root: str, as_root: bool) -> list[Member]:
    """Build the tree under `root`; return the members debugfs must still
    handle (devices when not root)."""
    later: list[Member] = []
    links = _resolve_links(members)
    dirs: list[tuple[str, Member]] = []
    for m in members:
        if m.path in ("", ".") or m.path.startswith("/") or ".." in m.path.split("/"):
            raise ExtError(f"bad path {m.path!r}")
        dst = os.path.join(root, m.path)
        if m.kind == "dir":
            os.mkdir(dst, 0o700)
            dirs.append((dst, m))
            continue
        if m.kind == "file":
            _stage_file(m, dst)
        elif m.kind == "symlink":
            os.symlink(m.target, dst)
        elif m.kind == "hardlink":
            os.link(os.path.join(root, links[m.path].path), dst, follow_symlinks=False)
            continue
        elif m.kind == "fifo":
            os.mkfifo(dst, 0o600)
        elif m.kind in ("char", "block"):
            if not as_root:
                later.append(m)
                continue
            kind = stat.S_IFCHR if m.kind == "char" else stat.S_IFBLK
            os.mknod(dst, kind | 0o600, os.makedev(m.devmajor, m.devminor))
        else:
            raise ExtError(f"/{m.path}: cannot store a {m.kind!r}")
        _fix(dst, m, as_root)
    for dst, m in reversed(dirs):  # after their contents, so the mode cannot lock us out
        _fix(dst, m, as_root)
    return later


def direct_source(members: list[Member]) -> tuple[str, list[Member]] | None:
    """The host directory mke2fs -d can read as it is, with no staging, and
    the members whose mode or owner there differ from the plan (debugfs sets
    those); None unless the plan is exactly that directory, entry for entry
    (a rootfs from one directory, as expand() walks it). Staging would copy
    every byte once more (and hard-linking instead would touch the user's
    files: ctime, which the layer cache keys on). The image is the same
    either way: same names, same sorted order, same inode and block
    allocation; the checks here make sure of it: every member exists with
    its kind, size and link target, no directory has an entry the plan
    lacks, and two names share an inode exactly where the plan has a hard
    link (mke2fs links every inode it meets twice)."""
    root = None
    for m in members:
        if "\n" in m.path or "\r" in m.path:  # debugfs could not address it
            return None
        if m.kind == "file":
            if m.data is not None or m.source is None or m.offset != 0 or not m.source.endswith("/" + m.path):
                return None
            r = m.source[: -len(m.path) - 1]
            if root is None:
                root = r
            elif r != root:
                return None
        elif m.kind not in ("dir", "symlink", "hardlink"):
            return None
    if root is None:
        return None
    try:
        for m in members:  # mke2fs sorts names as bytes: keep to names whose str order is that order
            m.path.encode("utf-8")
    except UnicodeEncodeError:
        return None
    children: dict[str, set] = {"": set()}
    inodes: dict = {}  # (dev, ino) -> path of the file member
    where: dict = {}  # path of a file member -> (dev, ino)
    relabel = []
    try:
        for m in members:
            parent, _, name = m.path.rpartition("/")
            if parent not in children:
                return None
            children[parent].add(name)
            st = os.lstat(os.path.join(root, m.path))
            if m.kind == "file":
                if not stat.S_ISREG(st.st_mode) or st.st_size != m.size or (st.st_dev, st.st_ino) in inodes:
                    return None
                inodes[st.st_dev, st.st_ino] = m.path
                where[m.path] = (st.st_dev, st.st_ino)
            elif m.kind == "hardlink":  # mke2fs links a name whose inode it has seen: must be the plan's target
                if inodes.get((st.st_dev, st.st_ino)) != m.target or where.get(m.target) != (st.st_dev, st.st_ino):
                    return None
                continue
            elif m.kind == "dir":
                if not stat.S_ISDIR(st.st_mode):
                    return None
                children[m.path] = set()
            elif not stat.S_ISLNK(st.st_mode) or os.readlink(os.path.join(root, m.path)) != m.target:
                return None
            if (st.st_uid, st.st_gid) != (m.uid, m.gid) or (m.kind != "symlink" and st.st_mode & 0o7777 != m.mode & 0o7777):
                relabel.append(m)
        for d, names in children.items():
            if set(os.listdir(os.path.join(root, d) if d else root)) != names:
                return None
    except OSError:
        return None
    return root, relabel


def _fix(dst: str, m: Member, as_root: bool) -> None:
    """Owner and mode of a staged entry (times: the debugfs pass sets them).
    A new entry is ours already: lchown only for another owner."""
    chown = as_root and (m.uid, m.gid) != _OURS
    if chown:
        os.lchown(dst, m.uid, m.gid)
    # files had fchmod when written, but chown clears setuid/setgid
    if m.kind != "symlink" and (m.kind != "file" or (chown and m.mode & 0o6000)):
        os.chmod(dst, m.mode & 0o7777)


_OURS = (os.geteuid(), os.getegid())


# ---------------------------------------------------------------- mke2fs


def _dumpe2fs_number(dumpe2fs_out: str, field: str) -> int:
    m = re.search(rf"^{field}:\s+(\d+)", dumpe2fs_out, re.M)
    if m is None:
        raise ExtError(f"dumpe2fs printed no {field!r}; cannot tell which inodes are in use")
    return int(m.group(1))


def _used_inodes(dumpe2fs_out: str) -> list[int]:
    per = _dumpe2fs_number(dumpe2fs_out, "Inodes per group")
    first = _dumpe2fs_number(dumpe2fs_out, "First inode")
    groups = re.findall(r"^Group (\d+):.*?^\s+Free inodes:\s*([0-9,\- ]*)$", dumpe2fs_out, re.M | re.S)
    used = []
    for g, free_text in groups:
        lo, hi = int(g) * per + 1, (int(g) + 1) * per
        free: set[int] = set()
        for part in free_text.replace(" ", "").split(","):
            if part:
                a, _, b = part.partition("-")
                free.update(range(int(a), int(b or a) + 1))
        used += [i for i in range(lo, hi + 1) if i not in free and (i == 2 or i >= first)]
    return used


def _quote(path: str) -> str:
    if "\n" in path or "\r" in path:
        raise ExtError(f"/{path!r}: a name with a newline cannot be fixed up with debugfs; build as root")
    return '"' + ("/" + path).replace('"', '""') + '"'


def _run(cmd: list[str], env: dict, what: str) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, env=env)
    if r.returncode != 0:
        raise ExtError(f"{what} failed ({r.returncode}): " + (r.stderr or r.stdout).decode("utf-8", "replace")[-2000:])
    return r


def write_ext(
    members: list[Member],
    out_path: str,
    fs: str = "ext2",
    size: str | int = "auto",
    label: str | None = None,
    mtime: int = 0,
    uuid: str | None = None,
    hash_seed: str | None = None,
    as_root: bool | None = None,
) -> dict:
    """Write the ext2/ext4 image of `members` (sorted by path, no root entry)
    to `out_path`. Returns {"size", "inodes", "uuid", "fs"}.
    as_root=None: decide from the effective uid (False forces the debugfs
    path for owners and devices, for tests)."""
    if fs not in FS_TYPES:
        raise ExtError(f"fs {fs!r}: allowed are {', '.join(FS_TYPES)}")
    if label is not None and len(label.encode()) > 16:
        raise ExtError(f"label {label!r} is longer than 16 bytes")
    mke2fs, debugfs, e2fsck, dumpe2fs = (tool(t) for t in ("mke2fs", "debugfs", "e2fsck", "dumpe2fs"))
    if as_root is None:
        as_root = os.geteuid() == 0
    want_inodes = len(members) + len(members) // 4 + 64
    if size == "auto":
        nbytes, _ = auto_size(members)
        grow = True
    else:
        nbytes = parse_size(size)
        grow = False
    nbytes -= nbytes % BLOCK_SIZE
    if nbytes < 1 * MIB:
        raise ExtError(f"size {size!r} is too small for an ext filesystem (at least 1M)")
    fake_time = str(max(mtime, 1))  # e2fsprogs reads 0 as "not set"

    out_path = os.path.abspath(out_path)
    work = tempfile.mkdtemp(prefix=".urunix-ext-", dir=os.path.dirname(out_path))
    try:
        profile = os.path.join(work, "mke2fs.conf")
        with open(profile, "w") as f:
            f.write(PROFILE)
        env = {**os.environ, "MKE2FS_CONFIG": profile, "E2FSPROGS_FAKE_TIME": fake_time, "LC_ALL": "C", "MKE2FS_SYNC": "0"}
        env.pop("MKE2FS_DEVICE_SECTSIZE", None)
        direct = direct_source(members)
        relabel: list[Member] = []
        if direct is not None:
            root, relabel = direct
            later: list[Member] = []
        else:
            root = os.path.join(work, "root")
            os.mkdir(root, 0o755)
            os.chmod(root, 0o755)  # no setgid from the output's directory: new entries get our gid
            later = stage(members, root, as_root)

        xattrs = ",no_copy_xattrs"
        for attempt in range(7):
            fs_id, seed = fs_uuid(members, fs, nbytes)
            fs_id, seed = uuid or fs_id, hash_seed or seed
            if os.path.lexists(out_path):
                os.unlink(out_path)
            with open(out_path, "wb") as f:
                f.truncate(nbytes)
            cmd = [
                mke2fs,
                "-q",
                "-F",
                "-t",
                fs,
                "-b",
                str(BLOCK_SIZE),
                "-I",
                str(INODE_SIZE),
                "-m",
                "0",
                "-N",
                str(want_inodes),
                "-U",
                fs_id,
                "-E",
                f"root_owner=0:0,hash_seed={seed},lazy_itable_init=0,nodiscard{xattrs}",
                *(["-L", label] if label else []),
                "-d",
                root,
                out_path,
                str(nbytes // BLOCK_SIZE),
            ]
            r = subprocess.run(cmd, capture_output=True, env=env)
            if r.returncode == 0:
                break
            msg = (r.stderr or r.stdout).decode("utf-8", "replace")
            if xattrs and "no_copy_xattrs" in msg:  # an e2fsprogs without the option (< 1.45)
                xattrs = ""
                continue
            full = re.search(
                r"(Could not allocate|No space left|not enough space|Could not find a free|"
                r"too many inodes|inode table)",
                msg,
                re.I,
            )
            if grow and full:
                nbytes = -(-(nbytes * 3 // 2) // MIB) * MIB
                continue
            if full:
                raise ExtError(
                    f'the tree does not fit in {size} ({nbytes} bytes): {msg.strip()[-500:]}; use size = "auto" or a larger size'
                )
            raise ExtError(f"mke2fs failed: {msg.strip()[-2000:]}")
        else:
            raise ExtError("mke2fs kept running out of space")

        # fix-ups: times of every used inode; owners and devices when not root
        cmds: list[str] = []
        for m in later:  # device nodes (not root)
            # debugfs's mknod takes a name in the current directory, not a path
            parent, _, base = m.path.rpartition("/")
            cmds += [
                f"cd {_quote(parent)}",
                f"mknod {_quote(base)[0]}{_quote(base)[2:]} {'c' if m.kind == 'char' else 'b'} {m.devmajor} {m.devminor}",
                "cd /",
            ]
        if direct is not None:  # the root directory as staging makes it
            cmds += ['sif "/" mode 040755', 'sif "/" uid 0', 'sif "/" gid 0']
        if not as_root or relabel:
            links = _resolve_links(members)
            for m in members if not as_root else relabel:
                if m.kind == "hardlink":
                    m = links[m.path]
                ft = {
                    "file": 0o100000,
                    "dir": 0o040000,
                    "symlink": 0o120000,
                    "char": 0o020000,
                    "block": 0o060000,
                    "fifo": 0o010000,
                }[m.kind]
                q = _quote(m.path)
                cmds += [f"sif {q} uid {m.uid}", f"sif {q} gid {m.gid}", f"sif {q} mode 0{ft | (m.mode & 0o7777):o}"]
        if cmds:
            _debugfs(debugfs, out_path, cmds, env, work)
        d = _run([dumpe2fs, out_path], env, "dumpe2fs").stdout.decode("utf-8", "replace")
        used = _used_inodes(d)
        if direct is not None and len(used) != 2 + sum(m.kind != "hardlink" for m in members):
            raise ExtError(f"{root} changed while the block image was made from it; build again")
        t = f"@{mtime}"
        cmds = [f"sif <{ino}> {field} {t}" for ino in used for field in ("atime", "mtime", "ctime", "crtime")]
        _debugfs(debugfs, out_path, cmds, env, work)
        r = subprocess.run([e2fsck, "-fn", out_path], capture_output=True, env=env)
        if r.returncode != 0:
            raise ExtError(
                "e2fsck -fn found problems in the new image: " + (r.stdout + r.stderr).decode("utf-8", "replace")[-2000:]
            )
        return {"size": nbytes, "inodes": want_inodes, "uuid": fs_id, "fs": fs}
    except BaseException:
        if os.path.lexists(out_path):
            os.unlink(out_path)
        raise
    finally:
        _rmtree(work)


def _debugfs(debugfs: str, image: str, cmds: list[str], env: dict, work: str) -> None:
    script = os.path.join(work, "debugfs.cmd")
    with open(script, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write("\n".join(cmds) + "\n")
    r = _run([debugfs, "-w", "-f", script, image], env, "debugfs")
    # debugfs reports command errors on stderr but exits 0
    errs = [ln for ln in r.stderr.decode("utf-8", "replace").splitlines() if ln.strip() and not ln.startswith("debugfs ")]
    if errs:
        raise ExtError("debugfs: " + "; ".join(errs[:10]))


def _rmtree(path: str) -> None:
    def onerror(func, p, exc):
        try:
            os.chmod(os.path.dirname(p), 0o700)
            func(p)
        except OSError:
            pass

    # a staged directory may be mode 0 or 0500: make it writable again. A
    # staged symlink to a directory is listed among dirnames too: skip it
    # (chmod would follow it out of the staging, e.g. to the host's /etc,
    # and Linux has no lchmod).
    for dirpath, dirnames, _ in os.walk(path):
        for d in dirnames:
            p = os.path.join(dirpath, d)
            if os.path.islink(p):
                continue
            try:
                os.chmod(p, 0o700)
            except OSError:
                pass
    shutil.rmtree(path, onerror=onerror)


def main(argv: list[str]) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="ext.py", description="ext2/ext4 image from a tree")
    p.add_argument("tree")
    p.add_argument("out")
    p.add_argument("--fs", choices=FS_TYPES)
    p.add_argument("--size")
    p.add_argument("--label")
    a = p.parse_args(argv[1:])
    try:
        with open(a.tree, "rb") as f:
            tree = json.load(f)
        info = write_ext(
            expand(tree["entries"]),
            a.out,
            fs=a.fs or tree.get("fs", "ext2"),
            size=a.size or tree.get("size", "auto"),
            label=a.label or tree.get("label"),
            mtime=int(tree.get("mtime", 0)),
        )
    except (PlanError, OSError, KeyError, ValueError) as e:
        print(f"ext: {e}", file=sys.stderr)
        return 1
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
