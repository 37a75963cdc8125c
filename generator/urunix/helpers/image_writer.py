"""Write an OCI image (docker-archive, oci-archive, or an OCI layout directory)
from a plan of layers, in one pass, deterministically, in constant memory.

stdlib only: runs as `python3 image_writer.py PLAN.json OUT` inside a Nix
derivation, and the native builder imports it.

Why one pass: a layer's tar size follows from stat() alone, so its outer tar
header can be written before the layer is streamed through sha256. Its name
(`blobs/sha256/<digest>`) is not known until the end, so the header is first
written with a placeholder of the same length and patched afterwards (the
output is a regular file, so it can seek). Each input byte is read once and
each output byte written once. The hashing of a large blob runs on a second
thread, over a ring of four 1 MiB buffers (see HashingWriter).

Determinism: entries sorted by path, owner 0:0 with no user names, one fixed
mtime, modes 0644/0755 (as Nix stores files) unless the plan says otherwise.

PLAN.json:
  {"format": "docker-archive" | "oci-archive" | "oci",
   "repoTags": ["name:tag"], "created": "1970-01-01T00:00:01Z",
   "architecture": "amd64", "os": "linux",
   "config": {"Cmd": [...], "Entrypoint": null, "Env": [...], "Labels": {...}},
   "manifestAnnotations": {...},
   "layers": [{"name": "kernel", "entries": [ENTRY, ...]}, ...]}
ENTRY:
  {"type": "file", "path": "a/b", "source": "/host/file", "mode": 420}  (mode optional)
  {"type": "file", "path": "a/b", "data": "text"}
  {"type": "dir", "path": "a"}
  {"type": "symlink", "path": "a/l", "target": "b"}
  {"type": "tree", "path": "a", "source": "/host/dir"}   (contents of a directory)
  {"type": "tree", ..., "hardlinks": false}   (a Nix store path: see _walk)
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import stat
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterable, TypedDict

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

BLOCK = 512
CHUNK = 1 << 20
EMPTY_DIGEST = "0" * 64
LAYER_MEDIA = "application/vnd.oci.image.layer.v1.tar"
CONFIG_MEDIA = "application/vnd.oci.image.config.v1+json"
MANIFEST_MEDIA = "application/vnd.oci.image.manifest.v1+json"
FORMATS = ("docker-archive", "oci-archive", "oci")

Progress = Callable[[int], None]


class PlanError(Exception):
    """The plan cannot be written as asked (bad entry, conflicting paths, a
    source that changed under us)."""


class UnsupportedFile(PlanError):
    """A host tree holds what an image may not take from the host (a device
    node, a fifo, a socket): the spec's fault, named by `source`."""

    def __init__(self, source: str, what: str):
        super().__init__(f"{source}: {what} (device nodes, fifos and sockets are refused)")
        self.source, self.what = source, what


@dataclass(frozen=True)
class Member:
    """One entry of a layer tar, everything known before any byte is read."""

    path: str  # relative, no leading '/', no trailing '/'
    kind: str  # file | dir | symlink | hardlink | char | block | fifo
    mode: int
    size: int = 0
    source: str | None = None  # host file to stream (from `offset`)
    data: bytes | None = None  # inline content
    target: str = ""  # symlink target, or the path a hardlink points to
    uid: int = 0  # owners other than 0 come only from image trees
    gid: int = 0
    devmajor: int = 0
    devminor: int = 0
    offset: int = 0  # where the content starts in `source` (a layer inside an archive)
    # content made while the layer streams (an initrd): called with a write
    # function (of any bytes-like object), it must write exactly `size` bytes
    fill: "Callable[[Callable[[ReadableBuffer], None]], None] | None" = field(default=None, compare=False, repr=False)
    # the source file's identity when it was planned, "dev:ino:size:mtime_ns:ctime_ns"
    # (the layer cache keys on it; the walk has the stat already)
    ident: str | None = field(default=None, compare=False, repr=False)

    def header(self, mtime: int) -> bytes:
        fast = _ustar_header(self, mtime)
        if fast is not None:
            return fast
        info = tarfile.TarInfo(self.path + ("/" if self.kind == "dir" else ""))
        info.type = TAR_TYPES[self.kind]
        info.mode = self.mode
        info.size = self.size if self.kind == "file" else 0
        info.linkname = self.target
        info.mtime = mtime
        info.uid, info.gid = self.uid, self.gid
        info.uname = info.gname = ""
        info.devmajor, info.devminor = self.devmajor, self.devminor
        return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


_USTAR_KINDS = {"file": b"0", "dir": b"5", "symlink": b"2", "hardlink": b"1", "fifo": b"6"}
_DEV_EMPTY = bytes(8)
_TAIL = bytes(32) + bytes(32) + _DEV_EMPTY + _DEV_EMPTY + bytes(155) + bytes(12)  # unames, devs, prefix, pad


def _ustar_header(m: "Member", mtime: int) -> bytes | None:
    """The bytes tarfile's PAX_FORMAT tobuf() gives for a member that needs
    no pax record (ASCII names up to 100 bytes, numbers in range, no device
    numbers), made 10x faster; None for any other member (tarfile then
    makes it). tests/unit/test_image_writer.py checks the two agree."""
    t = _USTAR_KINDS.get(m.kind)
    if t is None:
        return None
    name = m.path + "/" if m.kind == "dir" else m.path
    size = m.size if m.kind == "file" else 0
    if (
        len(name) > 100
        or len(m.target) > 100
        or not name.isascii()
        or not m.target.isascii()
        or not (
            0 <= m.uid < 0o10000000 and 0 <= m.gid < 0o10000000 and 0 <= size < 0o100000000000 and 0 <= mtime < 0o100000000000
        )
        or type(mtime) is not int
        or type(m.mode) is not int
    ):
        return None
    nb, lb = name.encode("ascii"), m.target.encode("ascii")
    head = b"".join(
        (
            nb,
            bytes(100 - len(nb)),
            b"%07o\0" % (m.mode & 0o7777),
            b"%07o\0" % m.uid,
            b"%07o\0" % m.gid,
            b"%011o\0" % size,
            b"%011o\0" % mtime,
            b"        ",
            t,
            lb,
            bytes(100 - len(lb)),
            b"ustar\x0000",
            _TAIL,
        )
    )
    return head[:148] + b"%06o\0" % sum(head) + head[155:]


TAR_TYPES = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "char": tarfile.CHRTYPE,
    "block": tarfile.BLKTYPE,
    "fifo": tarfile.FIFOTYPE,
}


def padding(size: int) -> int:
    return -size % BLOCK


def clean_path(path: str) -> str:
    """'/a//b/' -> 'a/b'; refuse '..' and NUL so nothing lands outside the root."""
    if "\0" in path:
        raise PlanError(f"path contains a NUL byte: {path!r}")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise PlanError(f"path escapes the image root: {path!r}")
    return "/".join(parts)


def host_mode(st: os.stat_result) -> int:
    """The mode a host file gets in the image: as Nix stores it."""
    if stat.S_ISDIR(st.st_mode):
        return 0o755
    return 0o755 if st.st_mode & 0o111 else 0o644


_KIND_NAMES = {
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a fifo",
    stat.S_IFSOCK: "a socket",
}


def source_ident(st: os.stat_result) -> str:
    """A host file's identity for the layer cache: changes with any write."""
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


PATH_MAX = 4095  # bytes of an absolute path Linux (and so docker load, mke2fs, a guest) can create


def _walk(
    root: str, prefix: str, exclude: frozenset = frozenset(), skip: frozenset = frozenset(), links: bool = True
) -> list[Member]:
    """A host directory's contents in sorted depth-first order, symlinks
    kept as symlinks (never followed); a file's second and later names
    (same inode, in walk order) become hard links to its first. A loop, not
    recursion: any depth. Left out: paths relative to root in `exclude`
    (.dockerignore; a directory with all it holds), image paths in `skip`
    (what another entry provides, urunix's own output) and urunix's
    temporary directories (.urunix-tmp-*), never part of anyone's tree.
    Hard links between files of a host tree are kept (`links`), as tar,
    cpio and mke2fs -d keep them. Inside a Nix build the tree is a store
    path, whose shared inodes come from store optimisation, not from the
    user (a NAR has no hard links): its entries say "hardlinks": false."""
    out: list[Member] = []
    seen: dict = {}

    def listing(d: str):
        with os.scandir(d) as it:
            return iter(sorted((e.name, e.path) for e in it))

    stack = [(prefix, listing(root))]
    while stack:
        pfx, entries = stack[-1]
        for name, src in entries:
            path = f"{pfx}/{name}" if pfx else name
            if path in skip or name.startswith(TEMP_PREFIX):
                continue
            if exclude and path[len(prefix) + 1 if prefix else 0 :] in exclude:
                continue
            if len(path.encode("utf-8", "surrogateescape")) >= PATH_MAX:
                raise UnsupportedFile(
                    src,
                    f"a path of {len(path.encode('utf-8', 'surrogateescape')) + 1} bytes in the "
                    f"image (/{path[:40]}...), over the {PATH_MAX} bytes Linux and docker load take",
                )
            st = os.lstat(src)
            mode = st.st_mode
            if stat.S_ISREG(mode):
                if st.st_nlink > 1 and links:
                    first = seen.setdefault((st.st_dev, st.st_ino), path)
                    if first != path:
                        out.append(Member(path, "hardlink", host_mode(st), target=first))
                        continue
                out.append(Member(path, "file", host_mode(st), st.st_size, source=src, ident=source_ident(st)))
            elif stat.S_ISDIR(mode):
                out.append(Member(path, "dir", 0o755))
                stack.append((path, listing(src)))
                break
            elif stat.S_ISLNK(mode):
                out.append(Member(path, "symlink", 0o777, target=os.readlink(src)))
            else:
                raise UnsupportedFile(src, _KIND_NAMES.get(stat.S_IFMT(mode), "not a regular file, directory or symlink"))
        else:
            stack.pop()
    return out


class Entry(TypedDict, total=False):
    """One plan entry (see the module docstring): what plan.py and
    base_image.py hand expand(). Only "type" and "path" are always there."""

    type: str  # file | dir | symlink | tree
    path: str
    source: str  # a host file or directory
    data: str  # a file's content (surrogateescape text)
    mode: int
    target: str  # a symlink's target
    exclude: list[str]  # tree: paths left out (.dockerignore)
    skip: list[str]  # tree: image paths another entry provides
    rank: int  # where two entries give one path, the higher wins
    hardlinks: bool  # tree: keep host hard links (false for a Nix store path)


class Descriptor(TypedDict):
    """An OCI content descriptor (a layer's, in the manifest)."""

    mediaType: str
    digest: str  # "sha256:<hex>"
    size: int


class LayerPlan(TypedDict):
    name: str
    entries: list[Entry]


def expand(entries: Iterable[Entry], extra: Iterable[Member] = ()) -> list[Member]:
    """Plan entries (plus members already made, e.g. a flattened image) ->
    sorted tar members with their parent directories."""
    members: dict[str, Member] = {}
    ranks: dict[str, int] = {}

    def add(m: Member, rank=None) -> None:
        """Entries may carry a "rank": where two provide one path, the
        higher rank wins (the later COPY, the more specific target)."""
        old = members.get(m.path)
        if old is not None and not (old.kind == m.kind == "dir"):
            had = ranks.get(m.path)
            if rank is None or had is None or rank == had:
                raise PlanError(f"two entries for /{m.path} in one layer")
            if rank < had:
                return
        members[m.path] = m
        if rank is not None:
            ranks[m.path] = rank

    for e in entries:
        kind = e.get("type")
        path = clean_path(e.get("path", ""))
        mode = e.get("mode")
        rank = e.get("rank")
        if kind == "tree":
            if path:
                add(Member(path, "dir", 0o755), rank)
            for m in _walk(
                e["source"],
                path,
                frozenset(e.get("exclude", ())),
                frozenset(clean_path(x) for x in e.get("skip", ())),
                e.get("hardlinks", True),
            ):
                add(m, rank)
            continue
        if not path:
            raise PlanError(f"entry {e!r} has an empty path")
        if kind == "file":
            if "data" in e:
                data = e["data"].encode("utf-8", "surrogateescape")
                add(Member(path, "file", 0o644 if mode is None else mode, len(data), data=data), rank)
            else:
                st = os.stat(e["source"])
                if not stat.S_ISREG(st.st_mode):
                    raise PlanError(f"{e['source']}: not a regular file")
                add(Member(path, "file", host_mode(st) if mode is None else mode, st.st_size, source=e["source"]), rank)
        elif kind == "dir":
            add(Member(path, "dir", 0o755 if mode is None else mode), rank)
        elif kind == "symlink":
            add(Member(path, "symlink", 0o777, target=e["target"]), rank)
        else:
            raise PlanError(f"unknown entry type {kind!r}")

    for m in extra:
        add(m)

    for path in list(members):
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            got = members.get(parent)
            if got is None:
                members[parent] = Member(parent, "dir", 0o755)
            elif got.kind != "dir":
                raise PlanError(f"/{parent} is a {got.kind} in the image but /{path} needs it to be a directory")
    return [members[p] for p in sorted(members, key=lambda p: p.split("/"))]


def layer_size(members: list[Member], mtime: int, headers: list[bytes] | None = None) -> int:
    headers = headers if headers is not None else [m.header(mtime) for m in members]
    total = 2 * BLOCK
    for m, h in zip(members, headers):
        total += len(h)
        if m.kind == "file":
            total += m.size + padding(m.size)
    return total


@dataclass
class Layer:
    """One layer ready to write: its members, their tar headers (made once)
    and its exact size; or, for a layer whose bytes exist already (a cache
    hit), the file range holding them and their digest."""

    name: str
    members: list[Member]
    headers: list[bytes]
    size: int
    blob: tuple | None = None  # (path or open file, offset) of ready bytes
    digest: str | None = None  # hex sha256 of those bytes
    key: str | None = None  # the caller's cache key, if any


def prepare(name: str, members: list[Member], mtime: int) -> Layer:
    headers = [m.header(mtime) for m in members]
    return Layer(name, members, headers, layer_size(members, mtime, headers))


def ready_layer(name: str, path, offset: int, size: int, digest: str, key: str | None = None) -> Layer:
    return Layer(name, [], [], size, (path, offset), digest, key)


RING = 4  # buffers in flight between the main thread and the hasher
THREAD_MIN = 4 * CHUNK  # blobs smaller than this are hashed inline (a thread costs more)
_ZEROS = bytes(2 * BLOCK)


class HashingWriter:
    """Writes a blob to a file, hashing and counting as it goes, in 1 MiB
    batches: headers, inline data and file contents are gathered into one
    of `RING` buffers (file contents are read straight into it), and a
    full buffer is handed to the hasher thread and written out by the
    calling thread at the same time. hashlib releases the GIL while it
    hashes a large buffer, so SHA-256 runs on another core while this
    thread reads and writes: the cost is max(hashing, I/O), not their sum.
    The ring bounds memory (RING MiB) whatever the blob's size. `threaded`
    False hashes inline (small blobs). Use as a context manager: leaving
    it flushes the last buffer and stops the thread, also on an error;
    `sha` and `count` are final only after that."""

    def __init__(self, out, progress: Progress | None = None, threaded: bool = False):
        self.out = out
        self.sha = hashlib.sha256()
        self.count = 0
        self.progress = progress
        self._thread = None
        self._error: BaseException | None = None
        if threaded:
            import queue
            import threading

            self._free: "queue.SimpleQueue[bytearray]" = queue.SimpleQueue()
            self._work: "queue.SimpleQueue[tuple | None]" = queue.SimpleQueue()
            for _ in range(RING - 1):
                self._free.put(bytearray(CHUNK))
            self._thread = threading.Thread(target=self._hasher, name="urunix-sha256", daemon=True)
            self._thread.start()
        self._buf = bytearray(CHUNK)
        self._view = memoryview(self._buf)
        self._pos = 0

    def __enter__(self) -> "HashingWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.flush()
        finally:
            self._stop()
        if exc_type is None and self._error is not None:
            raise self._error

    def _hasher(self) -> None:
        work, free, update = self._work, self._free, self.sha.update
        while True:
            item = work.get()
            if item is None:
                return
            buf, n = item
            if self._error is None:
                try:
                    update(memoryview(buf)[:n] if n < CHUNK else buf)
                except BaseException as e:  # noqa: BLE001 -- re-raised by the writing thread
                    self._error = e
            free.put(buf)

    def _stop(self) -> None:
        if self._thread is not None:
            self._work.put(None)
            self._thread.join()
            self._thread = None

    def _dispatch(self) -> None:
        """Hash and write the buffer's `_pos` bytes; start a new buffer."""
        n, buf = self._pos, self._buf
        data = self._view[:n] if n < CHUNK else buf
        if self._thread is None:
            self.sha.update(data)
            self.out.write(data)
        else:
            if self._error is not None:
                raise self._error
            self._work.put((buf, n))
            self.out.write(data)  # while the hasher reads the same bytes
            self._buf = self._free.get()  # waits while the ring is full
            self._view = memoryview(self._buf)
        self._pos = 0
        if self.progress:
            self.progress(n)

    def flush(self) -> None:
        if self._pos:
            self._dispatch()

    def write(self, data) -> None:
        n = len(data)
        pos = self._pos
        if pos + n < CHUNK:
            self._view[pos : pos + n] = data
            self._pos = pos + n
            self.count += n
            return
        data = memoryview(data).cast("B")
        self.count += n
        done = 0
        while done < n:
            k = min(CHUNK - self._pos, n - done)
            self._view[self._pos : self._pos + k] = data[done : done + k]
            self._pos += k
            done += k
            if self._pos == CHUNK:
                self._dispatch()

    def copy_file(self, source: str, offset: int, size: int) -> None:
        """Append `size` bytes of `source` from `offset`, read straight into
        the buffers; PlanError if the file is not exactly that long (from
        offset 0) or too short."""
        left = size
        with open(source, "rb", buffering=0) as f:
            if offset:
                f.seek(offset)
            while left:
                pos = self._pos
                n = f.readinto(self._view[pos : pos + min(CHUNK - pos, left)])
                if not n:
                    break
                self._pos = pos + n
                self.count += n
                left -= n
                if self._pos == CHUNK:
                    self._dispatch()
            if left or (not offset and f.read(1)):
                raise PlanError(f"{source} changed size while it was being read")


def stream_layer(members: list[Member], w: HashingWriter, mtime: int, headers: list[bytes] | None = None) -> None:
    headers = headers if headers is not None else [m.header(mtime) for m in members]
    for m, head in zip(members, headers):
        w.write(head)
        if m.kind != "file":
            continue
        if m.data is not None:
            w.write(m.data)
        elif m.fill is not None:
            start = w.count
            m.fill(w.write)
            if w.count - start != m.size:
                raise PlanError(f"/{m.path}: {w.count - start} bytes were made, not the {m.size} planned")
        else:
            assert m.source is not None  # a file Member has data, a fill or a source
            w.copy_file(m.source, m.offset, m.size)
        pad = padding(m.size)
        if pad:
            w.write(_ZEROS[:pad])
    w.write(_ZEROS)


def outer_header(name: str, size: int, mtime: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = mtime
    info.uname = info.gname = ""
    return info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict")


ALIGN = 4096  # where a layer's bytes start in an archive: a filesystem block


def align_pad(offset: int, mtime: int) -> bytes:
    """Tar bytes to write at `offset` (a multiple of 512) so that the next
    member's data, after its 512-byte header, starts at a multiple of
    ALIGN: a pax extended header whose only record is a comment, which
    readers skip. With the layer's bytes block-aligned, copy_file_range can
    share them on XFS and btrfs (reflinks) when a rebuild takes a layer
    from the cache: no byte copied."""
    need = -(offset + BLOCK) % ALIGN
    if need == 0:
        return b""
    body = b""
    if need > BLOCK:  # one record filling the header's data blocks exactly
        want = need - BLOCK
        body = f"{want} comment={'-' * (want - 10 - len(str(want)))}\n".encode()
    info = tarfile.TarInfo("././@PaxHeader")
    info.type = tarfile.XHDTYPE
    info.size = len(body)
    info.mtime = mtime
    info.uname = info.gname = ""
    head = info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict")
    return head + body


class StreamOut:
    """A pipe as an archive's output: counts what is written (a pipe has
    no tell()) and cannot seek, so only blobs whose digest is known before
    their bytes (ready layers, in-memory data) can go to it."""

    def __init__(self, f):
        self.f, self.pos, self.name = f, 0, getattr(f, "name", "<stream>")

    def write(self, data) -> int:
        view = memoryview(data)
        while view:
            n = self.f.write(view)
            n = len(view) if n is None else n
            view = view[n:]
            self.pos += n
        return len(data)

    def tell(self) -> int:
        return self.pos

    def fileno(self) -> int:
        return self.f.fileno()

    def flush(self) -> None:
        self.f.flush()

    def close(self) -> None:
        self.f.flush()  # the caller's file: it closes it


class Sink:
    """Where blobs go: into an outer tar (archives) or a layout directory.
    `out_path` may be an open binary file (a pipe): see StreamOut."""

    def __init__(self, fmt: str, out_path, mtime: int):
        self.fmt, self.mtime = fmt, mtime
        self.stream = not isinstance(out_path, (str, bytes, os.PathLike))
        if self.stream and fmt == "oci":
            raise PlanError("an OCI layout is a directory: it cannot be streamed")
        if fmt == "oci":
            os.makedirs(os.path.join(out_path, "blobs", "sha256"))
            self.root = out_path
            self.tar: StreamOut | BinaryIO | None = None  # None: the layout directory `root`
        elif self.stream:
            self.tar = StreamOut(out_path)
        else:
            self.tar = open(out_path, "wb")

    def blob(self, size: int, fill: Callable[[HashingWriter], None], progress: Progress | None = None, align: bool = True) -> str:
        """Stream one blob of known size; return its hex digest. Afterwards
        `self.last` is (path, offset) of the blob's bytes in the output."""
        if self.stream:
            raise PlanError("a layer whose digest is not known yet cannot be streamed")
        threaded = size >= THREAD_MIN
        if self.tar is None:
            fd, tmp = tempfile.mkstemp(dir=os.path.join(self.root, "blobs", "sha256"), prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                with HashingWriter(f, progress, threaded) as w:
                    fill(w)
            digest = w.sha.hexdigest()
            final = os.path.join(self.root, "blobs", "sha256", digest)
            os.replace(tmp, final)
            self.last = (final, 0)
        else:
            assert not isinstance(self.tar, StreamOut)  # a stream raised above: this one seeks
            if align:
                self.tar.write(align_pad(self.tar.tell(), self.mtime))
            start = self.tar.tell()
            head = outer_header("blobs/sha256/" + EMPTY_DIGEST, size, self.mtime)
            self.tar.write(head)
            with HashingWriter(self.tar, progress, threaded) as w:
                fill(w)
            digest = w.sha.hexdigest()
            end = self.tar.tell()
            self.tar.seek(start)
            self.tar.write(outer_header("blobs/sha256/" + digest, size, self.mtime))
            self.tar.seek(end)
            self.tar.write(bytes(padding(size)))
            self.last = (self.tar.name, start + len(head))
        if w.count != size:
            raise PlanError(f"blob size {w.count} differs from the computed {size}")
        return digest

    def ready_blob(self, path, offset: int, size: int, digest: str, progress: Progress | None = None) -> str:
        """Put bytes whose digest is already known (a cached layer) into the
        output, by copy_file_range: in the kernel, and free where the
        filesystem shares extents. No hashing here: the caller vouches for
        the digest."""
        from contextlib import nullcontext

        with open(path, "rb") if isinstance(path, str) else nullcontext(path) as src:
            if self.tar is None:
                final = os.path.join(self.root, "blobs", "sha256", digest)
                # copied, never linked: an output must not share an inode
                # with the cache (editing one would change the other);
                # copy_file_range makes it a reflink on XFS and btrfs
                fd, tmp = tempfile.mkstemp(dir=os.path.join(self.root, "blobs", "sha256"), prefix=".tmp-")
                with os.fdopen(fd, "wb") as f:
                    copy_range(src, offset, f, 0, size, progress)
                os.replace(tmp, final)
                self.last = (final, 0)
            else:
                self.tar.write(align_pad(self.tar.tell(), self.mtime))
                self.tar.write(outer_header("blobs/sha256/" + digest, size, self.mtime))
                self.tar.flush()
                start = self.tar.tell()
                if self.stream:
                    copy_stream(src, offset, self.tar, size, progress)
                else:
                    assert not isinstance(self.tar, StreamOut)  # self.stream is False
                    copy_range(src, offset, self.tar, start, size, progress)
                    self.tar.seek(start + size)
                self.tar.write(bytes(padding(size)))
                self.last = (self.tar.name, start)
        return digest

    def data_blob(self, data: bytes) -> str:
        """A small blob held in memory: hashed first, so its header is
        written once and nothing seeks (the same bytes blob() writes)."""
        if self.tar is None:
            return self.blob(len(data), lambda w: w.write(data), align=False)
        digest = hashlib.sha256(data).hexdigest()
        self.tar.write(outer_header("blobs/sha256/" + digest, len(data), self.mtime))
        self.tar.write(data + bytes(padding(len(data))))
        return digest

    def file(self, name: str, data: bytes) -> None:
        if self.tar is None:
            with open(os.path.join(self.root, name), "wb") as f:
                f.write(data)
        else:
            self.tar.write(outer_header(name, len(data), self.mtime))
            self.tar.write(data + bytes(padding(len(data))))

    def close(self, fsync: bool = False) -> None:
        if self.tar is not None:
            self.tar.write(bytes(2 * BLOCK))
            self.tar.flush()
            if fsync:
                os.fsync(self.tar.fileno())
            self.tar.close()


def copy_range(src, src_off: int, dst, dst_off: int, size: int, progress: Progress | None = None) -> None:
    """Copy `size` bytes between two open files at the given offsets: with
    copy_file_range where the kernel offers it, else through a buffer."""
    left = size
    sfd, dfd = src.fileno(), dst.fileno()
    use_cfr = hasattr(os, "copy_file_range")
    while left:
        n = 0
        if use_cfr:
            try:
                n = os.copy_file_range(sfd, dfd, min(left, 1 << 30), src_off, dst_off)
            except OSError:
                use_cfr = False
                continue
        else:
            chunk = os.pread(sfd, min(left, CHUNK), src_off)
            n = os.pwrite(dfd, chunk, dst_off) if chunk else 0
        if n <= 0:
            raise PlanError(f"{src.name} ended {left} bytes early")
        src_off, dst_off, left = src_off + n, dst_off + n, left - n
        if progress:
            progress(n)


def copy_stream(src, src_off: int, dst, size: int, progress: Progress | None = None) -> None:
    """Copy `size` bytes of `src` from `src_off` to the end of `dst` (a
    StreamOut), by sendfile where the kernel offers it, else a buffer."""
    left = size
    dst.flush()
    use_sendfile = hasattr(os, "sendfile")
    while left:
        n = 0
        if use_sendfile:
            try:
                n = os.sendfile(dst.fileno(), src.fileno(), src_off, min(left, 1 << 30))
            except OSError as e:
                if e.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                    raise
                use_sendfile = False
                continue
            dst.pos += n
        else:
            chunk = os.pread(src.fileno(), min(left, CHUNK), src_off)
            n = dst.write(chunk) if chunk else 0
        if n <= 0:
            raise PlanError(f"{src.name} ended {left} bytes early")
        src_off, left = src_off + n, left - n
        if progress:
            progress(n)


def write_layer(layer_plan: dict, created: str, out_path: str) -> tuple[str, int]:
    """One layer's tar alone (the bytes write() puts in an archive for the
    same plan layer), for a layer kept in the Nix store by itself; returns
    (hex digest, size)."""
    mtime = epoch(created)
    ((name, members),) = plan_members({"layers": [layer_plan]})
    layer = prepare(name, members, mtime)
    with open(out_path, "wb") as f:
        with HashingWriter(f, None, layer.size >= THREAD_MIN) as w:
            stream_layer(layer.members, w, mtime, layer.headers)
    if w.count != layer.size:
        raise PlanError(f"layer size {w.count} differs from the computed {layer.size}")
    return w.sha.hexdigest(), layer.size


def canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogateescape")


def epoch(created: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp())


def plan_members(plan: dict) -> list[tuple[str, list[Member]]]:
    """(name, sorted members) of every layer. A layer marked "expanded"
    (members that came out of expand() already, and no entries) is taken
    as it is."""
    return [
        (
            layer.get("name", f"layer{i}"),
            list(layer["members"])
            if layer.get("expanded") and not layer.get("entries")
            else expand(layer.get("entries", ()), layer.get("members", ())),
        )
        for i, layer in enumerate(plan["layers"])
    ]


def _prepared(plan: dict, layers) -> list[Layer]:
    mtime = epoch(plan["created"])
    layers = layers if layers is not None else plan_members(plan)
    return [x if isinstance(x, Layer) else prepare(x[0], x[1], mtime) for x in layers]


def total_bytes(plan: dict, layers: list | None = None) -> int:
    """Bytes of layer data the plan will write (for a progress bar)."""
    return sum(x.size for x in _prepared(plan, layers))


LayerDone = Callable[[Layer, str, str, int], None]


def write(
    plan: dict,
    out_path: str,
    progress: Progress | None = None,
    layers: list | None = None,
    on_layer: LayerDone | None = None,
    fsync: bool = False,
) -> str:
    """Write the image to `out_path` (which must not exist); return the
    manifest digest. Callers make it atomic by writing to a temporary name.
    `layers`: (name, members) pairs or prepared Layers (see prepare() and
    ready_layer()). `on_layer(layer, digest, path, offset)` is called after
    each layer is written, with where its bytes now lie (a layer cache
    keeps them). `fsync`: flush the archive to disk before returning."""
    fmt = plan.get("format", "docker-archive")
    if fmt not in FORMATS:
        raise PlanError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
    created = plan["created"]
    mtime = epoch(created)
    layers = _prepared(plan, layers)
    sink = Sink(fmt, out_path, mtime)
    closed = False
    try:
        diff_ids: list[str] = []
        descs: list[Descriptor] = []
        for layer in layers:
            size = layer.size
            if layer.blob is not None:
                assert layer.digest is not None  # ready_layer() gives both
                digest = sink.ready_blob(layer.blob[0], layer.blob[1], size, layer.digest, progress)
            else:
                digest = sink.blob(size, lambda w: stream_layer(layer.members, w, mtime, layer.headers), progress)
                if on_layer is not None:
                    if sink.tar is not None:
                        sink.tar.flush()
                    on_layer(layer, digest, *sink.last)
            diff_ids.append("sha256:" + digest)
            descs.append({"mediaType": LAYER_MEDIA, "digest": "sha256:" + digest, "size": size})

        config = {
            "architecture": plan["architecture"],
            "os": plan.get("os", "linux"),
            "created": created,
            "config": {k: v for k, v in plan.get("config", {}).items() if v is not None},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": created, "created_by": f"urunix: {x.name}"} for x in layers],
        }
        config_bytes = canonical(config)
        config_digest = sink.data_blob(config_bytes)

        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA,
            "config": {"mediaType": CONFIG_MEDIA, "digest": "sha256:" + config_digest, "size": len(config_bytes)},
            "layers": descs,
        }
        if plan.get("manifestAnnotations"):
            manifest["annotations"] = dict(sorted(plan["manifestAnnotations"].items()))
        manifest_bytes = canonical(manifest)
        manifest_digest = sink.data_blob(manifest_bytes)

        tags = plan.get("repoTags", [])
        ref_annotations = {}
        if tags:
            ref_annotations = {
                "io.containerd.image.name": tags[0],
                "org.opencontainers.image.ref.name": tags[0].rsplit(":", 1)[-1],
            }
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": MANIFEST_MEDIA,
                    "digest": "sha256:" + manifest_digest,
                    "size": len(manifest_bytes),
                    "platform": {"architecture": plan["architecture"], "os": plan.get("os", "linux")},
                    **({"annotations": ref_annotations} if ref_annotations else {}),
                }
            ],
        }
        if fmt != "docker-archive" or plan.get("ociLayout", True):
            # helpers/base_image.py turns it off: see there
            sink.file("index.json", canonical(index))
            sink.file("oci-layout", canonical({"imageLayoutVersion": "1.0.0"}))
        if fmt == "docker-archive":
            # What `docker load` reads; the rest makes the archive an OCI
            # layout too, exactly as Docker >= 25 `docker save` writes it.
            docker_manifest = [
                {
                    "Config": "blobs/sha256/" + config_digest,
                    "RepoTags": tags,
                    "Layers": ["blobs/sha256/" + d["digest"][7:] for d in descs],
                }
            ]
            sink.file("manifest.json", canonical(docker_manifest))
        sink.close(fsync)
        closed = True
    finally:
        if not closed:
            sink.close()
    return "sha256:" + manifest_digest


def write_atomic(
    plan: dict,
    out_path: str,
    progress: Progress | None = None,
    layers: list | None = None,
    on_layer: LayerDone | None = None,
    fsync: bool = False,
) -> str:
    """Write beside `out_path` under a temporary name, then rename over it:
    a failed or interrupted build leaves the previous result as it was and
    nothing else. The data is not forced to disk unless `fsync` (as `tar`
    and `docker save` do not): on a 2-core VM writing 1 GiB at ~250 MB/s
    that fsync alone cost 4 s, three times the build. The rename is atomic
    either way; `fsync` adds durability across a power loss."""
    from contextlib import ExitStack

    out_path = os.path.abspath(out_path)
    parent = os.path.dirname(out_path)
    with ExitStack() as stack:
        tmp, _ = owned_temp_dir(parent, stack)
        staged = os.path.join(tmp, "out")
        digest = write(plan, staged, progress, layers, on_layer, fsync)
        if os.path.isdir(staged):
            replace_dir(staged, out_path, tmp)
        else:
            os.replace(staged, out_path)
        if fsync:
            fsync_dir(parent)
        return digest


TEMP_PREFIX = ".urunix-tmp-"
LOCK = ".lock"


def temp_dir(parent: str) -> tuple[str, int]:
    """A scratch directory beside the output, locked (flock) for as long as
    the returned descriptor is open, after sweeping away the ones that
    killed builds left: a directory whose lock nobody holds is dead.

    The lock file is locked under a temporary name and renamed into place,
    so a `.lock` that exists is never unlocked while its build lives."""
    sweep_stale(parent)
    tmp = tempfile.mkdtemp(dir=parent, prefix=TEMP_PREFIX)
    fd = os.open(os.path.join(tmp, LOCK + ".new"), os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(os.path.join(tmp, LOCK + ".new"), os.path.join(tmp, LOCK))
    except BaseException:
        os.close(fd)
        remove_tree(tmp)
        raise
    return tmp, fd


@contextlib.contextmanager
def signals_held():
    """SIGINT/SIGTERM wait (blocked) while the block runs, and are delivered
    at its end: a step that must not be cut in half runs whole."""
    import signal

    sigs = {signal.SIGINT, signal.SIGTERM}
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    except (AttributeError, OSError, ValueError):  # no pthread_sigmask here
        old = None
    try:
        yield
    finally:
        if old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)  # a pending signal is delivered now


def _remove_whole(tmp: str) -> None:
    with signals_held():  # an interrupt during the clean-up would leave half a directory
        remove_tree(tmp)


def owned_temp_dir(parent: str, stack) -> tuple[str, int]:
    """temp_dir(), with its removal (and the lock's release) registered on
    the ExitStack `stack` before a SIGINT/SIGTERM can interrupt: those wait,
    blocked, until the callbacks are in place, so an interrupt at any point
    unwinds through them and leaves no directory behind. The removal itself
    runs with the signals held too: one that comes while the build is being
    cleaned up is delivered after it."""
    with signals_held():
        tmp, lock = temp_dir(parent)
        stack.callback(os.close, lock)
        stack.callback(_remove_whole, tmp)
    return tmp, lock


def sweep_stale(parent: str, grace: float = 3600.0) -> None:
    """Remove `.urunix-tmp-*` directories of builds that died: those whose
    lock is free, and (lockless, killed between mkdtemp and locking) those
    older than `grace` seconds."""
    import fcntl
    import time

    try:
        names = [n for n in os.listdir(parent) if n.startswith(TEMP_PREFIX)]
    except OSError:
        return
    for name in names:
        d = os.path.join(parent, name)
        try:
            fd = os.open(os.path.join(d, LOCK), os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            try:
                if time.time() - os.lstat(d).st_mtime > grace:
                    remove_tree(d)
            except OSError:
                pass
            continue
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # a live build holds it
        else:
            remove_tree(d)
        finally:
            os.close(fd)


def _exchange(a: str, b: str) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False
    where the system cannot."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), b)


def replace_dir(staged: str, out_path: str, scratch: str) -> None:
    """Put a finished directory in place of the old result. Swapped in one
    step where Linux allows it, so there is no moment without a result;
    elsewhere the old one is moved aside first. The old result ends in
    `scratch`, removed with it."""
    for _ in range(3):
        if os.path.lexists(out_path):
            if _exchange(staged, out_path):
                return
            os.rename(out_path, os.path.join(scratch, f"old-{_}"))
        try:
            os.rename(staged, out_path)
            return
        except OSError as e:  # another build put its result there meanwhile
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
    raise OSError(errno.EBUSY, "other builds keep replacing the output", out_path)


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_tree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str]) -> int:
    try:
        from . import script
    except ImportError:  # run by path, also as `python3 -I` (no directory on sys.path)
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import script  # type: ignore[no-redef]

    return script.run(argv, "PLAN.json OUT", _write_plan)


def _write_plan(plan: dict, out: str) -> None:
    # Inside a derivation $out does not exist yet: nothing to protect.
    print((write_atomic if os.path.lexists(out) else write)(plan, out))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
