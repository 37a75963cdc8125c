"""A content-addressed cache of built layers, so that a rebuild after a
small change (the cmdline, a tag) copies the big layers instead of making
them again.

Where: $XDG_CACHE_HOME/urunix (default ~/.cache/urunix), under v2/:
  keys/<key>.json   {"digest", "size", "file", "offset", "fp": [size, dev, ino, mtime_ns, ctime_ns]}
  blobs/f-<random>  the cache's own copy of one layer (read-only, mode 0444)
  tmp/              key files and blobs being written

The key of a layer is a SHA-256 of everything its bytes follow from: each
member's path, kind, mode, owner, size, link target, device numbers, offset,
inline data, and for content read from a host file its path and
(dev, inode, size, mtime_ns, ctime_ns); the layer mtime; this Python's
version and the source of the writers (helpers/image_writer.py, cpio.py,
ext.py). A layer urunix makes itself (an initrd, a block image) is keyed by
its recipe (type, options, e2fsprogs' binary, zlib's version) and the
tree it is made from, so a hit skips cpio or mke2fs altogether. A change to
any input file changes its mtime/ctime and so the key: a miss.

How an entry stays what it was (SECURITY.md, "the layer cache"):
- it enters the cache from the build's own staged file, in the build's
  private scratch directory, while the build holds it -- never from the
  output path, which another build (`make -j`) may rename over meanwhile;
- the cache keeps its own inode: the layer's bytes are copied with
  copy_file_range (a reflink on XFS and btrfs, so free there; a real copy
  on ext4), and a hit is copied the same way into the output (an OCI
  layout's blob too). No output ever shares an inode with the cache, so
  editing `result` in place cannot change an entry;
- the entry's stat fingerprint includes ctime, which no one can set back
  (`touch -r` restores mtime, not ctime; any write or chmod moves ctime):
  on use, a fingerprint that differs means the bytes are hashed again, and
  the entry is dropped (and the layer rebuilt) unless the digest still
  matches. URUNIX_CACHE_VERIFY=1 hashes on every use;
- a key file is written under tmp/ and renamed, after its blob: an
  interrupted build leaves no partial entry (at most an unnamed blob,
  removed by prune); concurrent builds of the same spec each store their
  own blob and the last key rename wins, either entry whole;
- an open file is held from lookup to copy, so a concurrent prune cannot
  pull the blob away mid-copy.

Bounded: `urunix cache prune` (prune() here) removes least recently used
entries down to a size; every store also prunes down to $URUNIX_CACHE_MAX
(default 10G). URUNIX_NO_CACHE=1 turns the cache off.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Iterable

from ..envflags import flag
from ..helpers.image_writer import CHUNK, Member, copy_range, source_ident

VERSION = "v2"  # v1 shared inodes with outputs: never read again
MIN_BYTES = 1 << 20  # smaller layers are cheaper to make than to look up
DEFAULT_MAX = 10 << 30
STALE_TMP = 15 * 60  # seconds: an untouched tmp file older than this is abandoned


def enabled() -> bool:
    return not flag("URUNIX_NO_CACHE")


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "urunix")


def parse_bytes(text: str | int | None, default: int) -> int:
    """A size as everywhere in urunix (helpers/ext.py parse_size); ValueError if not one."""
    if text is None or text == "":
        return default
    from ..helpers.ext import ExtError, parse_size

    try:
        return parse_size(text)
    except ExtError as e:
        raise ValueError(str(e)) from None


# ---------------------------------------------------------------- keys

_code_digest: str | None = None


def _code() -> str:
    """What the layer bytes also depend on: the writers' source, Python."""
    global _code_digest
    if _code_digest is None:
        h = hashlib.sha256(f"{VERSION} {sys.version_info[0]}.{sys.version_info[1]} {zlib.ZLIB_VERSION}\n".encode())
        here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "helpers")
        for name in ("image_writer.py", "cpio.py", "ext.py"):
            try:
                with open(os.path.join(here, name), "rb") as f:
                    h.update(f.read())
            except OSError:
                h.update(b"?")
        _code_digest = h.hexdigest()
    return _code_digest


def tool_fingerprint(path: str | None) -> str:
    """A cheap stand-in for a tool's version: its path, size and mtime."""
    if not path:
        return "-"
    try:
        st = os.stat(path)
        return f"{path}:{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        return f"{path}:?"


def members_digest(members: Iterable[Member], h=None):
    """Feed every member's metadata (and its source file's identity) into
    `h` (a sha256); returns h, or None if a member cannot be keyed (content
    made on the fly)."""
    h = h or hashlib.sha256()
    stats: dict[str, str] = {}
    for m in members:
        if m.fill is not None:
            return None
        src: str | None = ""
        if m.source is not None:
            src = stats.get(m.source)
            if src is None:
                # the walk's stat where there was one
                src = f"{m.source}\0{m.ident or source_ident(os.stat(m.source))}"
                stats[m.source] = src
        data = hashlib.sha256(m.data).hexdigest() if m.data is not None else "-"
        h.update(
            f"{m.path}\0{m.kind}\0{m.mode}\0{m.uid}:{m.gid}\0{m.size}\0{m.target}\0"
            f"{m.devmajor}:{m.devminor}\0{m.offset}\0{data}\0{src}\n".encode("utf-8", "surrogateescape")
        )
    return h


def layer_key(members: Iterable[Member], mtime: int, recipe: str = "") -> str | None:
    """The key of a layer of these members (plus a made artifact's recipe
    key, if the layer holds one), or None if it cannot be cached."""
    h = hashlib.sha256(f"layer {_code()} {mtime}\n{recipe}\n".encode())
    return None if members_digest(members, h) is None else h.hexdigest()


def recipe_key(params: dict, members: Iterable[Member]) -> str | None:
    """The key of an artifact (initrd, block image) made from `members`."""
    h = hashlib.sha256(("recipe " + json.dumps(params, sort_keys=True) + "\n").encode())
    return None if members_digest(members, h) is None else h.hexdigest()


# ---------------------------------------------------------------- store


@dataclass
class Hit:
    file: BinaryIO  # open: read the layer from here
    offset: int  # where it starts in the file
    size: int
    digest: str

    def close(self) -> None:
        self.file.close()


def _fp(st: os.stat_result) -> list[int]:
    # ctime too: the blob is the cache's own inode (never linked to an
    # output), so only a change to it moves ctime, and ctime cannot be set back
    return [st.st_size, st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns]


def _sha256_range(f: BinaryIO, offset: int, size: int) -> str:
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    left = size
    while left:
        n = os.preadv(f.fileno(), [view[: min(left, CHUNK)]], offset)
        if not n:
            break
        h.update(view[:n])
        offset, left = offset + n, left - n
    return h.hexdigest() if not left else ""


class LayerCache:
    """Entries are keys pointing at a byte range of a file under blobs/,
    the cache's own read-only copy of a layer (see the module docstring)."""

    def __init__(self, root: str | None = None, verify: bool | None = None):
        self.root = os.path.join(root or cache_dir(), VERSION)
        self.keys = os.path.join(self.root, "keys")
        self.blobs = os.path.join(self.root, "blobs")
        self.tmp = os.path.join(self.root, "tmp")
        self.verify = flag("URUNIX_CACHE_VERIFY") if verify is None else verify
        # what this cache object did (for tests and diagnostics)
        self.stats = {"hits": 0, "misses": 0, "stores": 0, "rehashed": 0, "corrupt": 0}

    def _dirs(self) -> None:
        for d in (self.keys, self.blobs, self.tmp):
            os.makedirs(d, exist_ok=True)

    def _key_path(self, key: str) -> str:
        return os.path.join(self.keys, key + ".json")

    def _write_key(self, key: str, entry: dict) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.tmp, prefix="key-")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(entry, f)
            os.replace(tmp, self._key_path(key))
        except BaseException:
            _unlink(tmp)
            raise

    def lookup(self, key: str) -> Hit | None:
        """The cached layer for `key`, checked; None on a miss."""
        try:
            with open(self._key_path(key)) as kf:
                entry = json.load(kf)
            digest, size, offset, fp = entry["digest"], int(entry["size"]), int(entry["offset"]), entry["fp"]
            name = entry["file"]
            if not re.fullmatch(r"[0-9a-f]{64}", digest) or "/" in name or name.startswith("."):
                raise ValueError(digest)
        except (OSError, ValueError, KeyError, TypeError):
            self.stats["misses"] += 1
            return None
        blob = os.path.join(self.blobs, name)
        try:
            f: BinaryIO = open(blob, "rb")
        except OSError:
            self.stats["misses"] += 1
            _unlink(self._key_path(key))
            return None
        try:
            st = os.fstat(f.fileno())
            if _fp(st) != fp or self.verify:
                self.stats["rehashed"] += 1
                if st.st_size < offset + size or _sha256_range(f, offset, size) != digest:
                    raise _Corrupt()
                if _fp(st) != fp:
                    self._write_key(key, {**entry, "fp": _fp(st)})
            try:  # the key file's mtime is the entry's last use, for prune
                os.utime(self._key_path(key))
            except OSError:
                pass
        except _Corrupt:
            self.stats["corrupt"] += 1
            self.stats["misses"] += 1
            f.close()
            _unlink(self._key_path(key))
            return None
        except BaseException:
            f.close()
            raise
        self.stats["hits"] += 1
        return Hit(f, offset, size, digest)

    def store(self, key: str, digest: str, src: str, offset: int, size: int) -> None:
        """Keep bytes [offset, offset+size) of `src` (the build's own staged
        file) as the layer `key`: copied into a read-only blob of the
        cache's own. Errors are not fatal: a cache that cannot be written is
        only a slower next build."""
        try:
            self._dirs()
            final = os.path.join(self.blobs, "f-" + os.urandom(12).hex())
            fd, tmp = tempfile.mkstemp(dir=self.tmp, prefix="blob-")
            try:
                with os.fdopen(fd, "wb") as dst, open(src, "rb") as f:
                    copy_range(f, offset, dst, 0, size)
                    os.fchmod(dst.fileno(), 0o444)
                os.replace(tmp, final)
            except BaseException:
                _unlink(tmp)
                raise
            fp = _fp(os.stat(final))
            self._write_key(key, {"digest": digest, "size": size, "offset": 0, "file": os.path.basename(final), "fp": fp})
            self.stats["stores"] += 1
        except OSError:
            return
        try:
            limit = parse_bytes(os.environ.get("URUNIX_CACHE_MAX"), DEFAULT_MAX)
        except ValueError:
            limit = DEFAULT_MAX
        prune(limit, self.root)


class _Corrupt(Exception):
    pass


def _unlink(path: str) -> int:
    try:
        size = os.lstat(path).st_size
        os.unlink(path)
        return size
    except OSError:
        return -1


def prune(max_bytes: int | None = None, root: str | None = None) -> tuple[int, int]:
    """Shrink the cache to at most `max_bytes` of blobs (None or 0: empty
    it), least recently used entries first; also remove abandoned temp
    files, keys whose blob is gone and blobs no key names. Safe while builds
    run: a build holding a blob open keeps reading it. Returns (files
    removed, bytes freed)."""
    root = root or os.path.join(cache_dir(), VERSION)
    keys, blobs, tmpdir = (os.path.join(root, d) for d in ("keys", "blobs", "tmp"))
    files = freed = 0

    def gone(path: str) -> None:
        nonlocal files, freed
        n = _unlink(path)
        if n >= 0:
            files += 1
            freed += n

    now = time.time()
    for name in _listdir(tmpdir):
        p = os.path.join(tmpdir, name)
        try:
            if max_bytes in (None, 0) or now - os.lstat(p).st_mtime > STALE_TMP:
                gone(p)
        except OSError:
            pass
    entries = []  # (last use, key path, digest)
    for name in _listdir(keys):
        p = os.path.join(keys, name)
        try:
            with open(p) as f:
                name = json.load(f)["file"]
            entries.append((os.stat(p).st_mtime, p, str(name)))
        except (OSError, ValueError, KeyError, TypeError):
            gone(p)
    sizes = {}
    for name in _listdir(blobs):
        try:
            st = os.lstat(os.path.join(blobs, name))
            if stat.S_ISREG(st.st_mode):
                sizes[name] = st.st_size
        except OSError:
            pass
    named = {d for _, _, d in entries}
    for name in list(sizes):  # blobs no key names (a store interrupted between the two renames)
        p = os.path.join(blobs, name)
        try:
            young = now - os.lstat(p).st_mtime < STALE_TMP
        except OSError:
            continue
        if name not in named and (max_bytes in (None, 0) or not young):
            gone(p)
            del sizes[name]
    live = []
    for e in entries:
        if e[2] in sizes:
            live.append(e)
        else:
            gone(e[1])
    total = sum(sizes.values())
    limit = max_bytes or 0
    users: dict[str, int] = {}
    for _, _, d in live:
        users[d] = users.get(d, 0) + 1
    for _, kp, digest in sorted(live):  # oldest use first
        if total <= limit:
            break
        gone(kp)
        users[digest] -= 1
        if users[digest] == 0:
            gone(os.path.join(blobs, digest))
            total -= sizes.pop(digest, 0)
    return files, freed


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []
