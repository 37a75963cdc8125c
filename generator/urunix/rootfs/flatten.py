"""Flatten an image's layers into one tree (a sorted list of Member), without
extracting anything to disk.

Reads what imagefile.open_image reads: a docker-archive (`docker save`, old
and Docker >= 25 layouts), an oci-archive, or an OCI layout directory. Layers
are tar, uncompressed or gzip (zstd is refused with a clear error).

Where content lives: a file of an uncompressed layer is a byte range of the
layer, which is itself a byte range of the archive (or a blob file of the
layout): Member(source=archive, offset=...), read in place by the cpio, ext
and image writers. A gzip layer is decompressed once into a temporary file
that the members point into; a GNU-sparse tar member is extracted to its own
temporary file. The temporaries live as long as the FlatImage (use it as a
context manager, or call close()).

Semantics, as Docker's and containerd's layer appliers have them:
- a layer's whiteouts act on the layers below: `.wh.NAME` removes NAME (and
  what is under it), `.wh..wh..opq` empties its directory; other `.wh..wh.*`
  names (aufs bookkeeping) are dropped;
- a directory over a directory updates its mode and owner, keeping the
  children; anything else replaces what was there (a directory with its
  whole subtree);
- missing parent directories are created 0755 root:root;
- hard links (LNKTYPE) name a path that exists when they are applied; they
  share an inode: deleting or replacing the first name later leaves the
  others with the content. In the output each group's first path (in sorted
  order) is the "file" and the others are "hardlink" members pointing to it;
- symlinks are kept as symlinks and never followed on the build host. When a
  later entry's parent path goes through a symlink in the tree, it is
  resolved INSIDE the tree, as a chroot would (absolute targets start at the
  image root, ".." stops at the root), so nothing lands outside it;
- member names: a leading "/" or "./" is dropped; a name with a ".."
  component, a NUL, or a loop of symlinks makes the image refused.
- owners (uid/gid) and modes (with setuid/setgid/sticky) are kept; file
  times are not (the writers use one fixed time); xattrs (e.g. file
  capabilities) are dropped: cpio cannot hold them.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field

from ..helpers.image_writer import Member
from ..imagefile import ImageFormatError, ImageInfo, _Tar, _why, iter_members, layout_path, open_image
from ..pathstep import dot_step

CHUNK = 1 << 20
MAX_SYMLINKS = 40


class FlattenError(ImageFormatError):
    """The image cannot be flattened safely (a hostile or broken layer)."""


# ------------------------------------------------------------------ the tree


class _Inode:
    """What hard links share: kind, content and metadata."""

    __slots__ = ("kind", "mode", "uid", "gid", "size", "source", "offset", "target", "devmajor", "devminor")

    def __init__(
        self,
        kind: str,
        mode: int,
        uid: int = 0,
        gid: int = 0,
        size: int = 0,
        source: str | None = None,
        offset: int = 0,
        target: str = "",
        devmajor: int = 0,
        devminor: int = 0,
    ):
        self.kind, self.mode, self.uid, self.gid, self.size = kind, mode, uid, gid, size
        self.source, self.offset, self.target = source, offset, target
        self.devmajor, self.devminor = devmajor, devminor


class _Tree:
    """path ("a/b") -> inode; the root ("") is implicit and always a directory."""

    def __init__(self, image: str):
        self.nodes: dict[str, _Inode] = {}
        self.children: dict[str, set[str]] = {"": set()}
        self.image = image

    def error(self, msg: str) -> FlattenError:
        return FlattenError(
            msg, file=self.image, hint="the image holds a layer urunix refuses to flatten; rebuild it with a standard tool"
        )

    # -- paths
    def resolve_dir(self, parts: list[str], create: bool) -> str | None:
        """The real path (no symlinks) of the directory `parts` names,
        following symlinks inside the tree. None if it does not exist and
        create is False."""
        todo = list(parts)
        cur: list[str] = []
        hops = 0
        while todo:
            name = todo.pop(0)
            if dot_step(cur, name):
                continue
            path = "/".join(cur + [name])
            node = self.nodes.get(path)
            if node is None:
                if not create:
                    return None
                self.put(path, _Inode("dir", 0o755))
                cur.append(name)
            elif node.kind == "dir":
                cur.append(name)
            elif node.kind == "symlink":
                hops += 1
                if hops > MAX_SYMLINKS:
                    raise self.error(f"too many levels of symlinks under /{'/'.join(parts)}")
                target = node.target.split("/")
                if node.target.startswith("/"):
                    cur = []
                todo = target + todo
            else:
                if not create:
                    return None
                raise self.error(f"/{path} is a {node.kind}, but a layer puts something under it")
        return "/".join(cur)

    def locate(self, name: str, create: bool) -> tuple[str, str] | None:
        """(real parent path, base name) of a member name, parents resolved."""
        parts = name.split("/")
        parent = self.resolve_dir(parts[:-1], create)
        if parent is None:
            return None
        return parent, parts[-1]

    # -- changes
    def put(self, path: str, node: _Inode) -> None:
        parent, _, base = path.rpartition("/")
        self.nodes[path] = node
        self.children.setdefault(parent, set()).add(path)
        if node.kind == "dir":
            self.children.setdefault(path, set())

    def remove(self, path: str) -> None:
        node = self.nodes.pop(path, None)
        if node is None:
            return
        parent = path.rpartition("/")[0]
        self.children.get(parent, set()).discard(path)
        if node.kind == "dir":
            self.clear(path)
            self.children.pop(path, None)

    def clear(self, path: str) -> None:
        for child in list(self.children.get(path, ())):
            self.remove(child)

    # -- result
    def members(self) -> list[Member]:
        paths = sorted(self.nodes, key=lambda p: p.split("/"))
        first: dict[int, str] = {}
        out = []
        for p in paths:
            n = self.nodes[p]
            if n.kind != "dir" and id(n) in first:
                out.append(Member(p, "hardlink", n.mode, target=first[id(n)], uid=n.uid, gid=n.gid))
                continue
            first[id(n)] = p
            if n.kind == "file":
                out.append(Member(p, "file", n.mode, n.size, source=n.source, offset=n.offset, uid=n.uid, gid=n.gid))
            elif n.kind == "symlink":
                out.append(Member(p, "symlink", 0o777, target=n.target, uid=n.uid, gid=n.gid))
            else:
                out.append(Member(p, n.kind, n.mode, uid=n.uid, gid=n.gid, devmajor=n.devmajor, devminor=n.devminor))
        return out


# ----------------------------------------------------------------- layers


class _Window(io.RawIOBase):
    """A read-only view of bytes [start, start+size) of a file."""

    def __init__(self, path: str, start: int, size: int):
        self.f = open(path, "rb")
        self.start, self.size, self.pos = start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = min(len(b), self.size - self.pos)
        if n <= 0:
            return 0
        self.f.seek(self.start + self.pos)
        got = self.f.readinto(memoryview(b)[:n])
        self.pos += got
        return got

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def close(self) -> None:
        self.f.close()
        super().close()


def _layer_location(image: str, index: dict | None, name: str) -> tuple[str, int, int]:
    if index is None:  # an OCI layout directory
        p = layout_path(image, name)
        if not os.path.isfile(p):
            raise FlattenError(f"layer {name} is missing from the layout", file=image)
        return p, 0, os.path.getsize(p)
    m = index.get(name)
    if m is None:
        raise FlattenError(f"layer {name} is missing from the archive", file=image)
    return image, m.offset_data, m.size


def _magic(path: str, offset: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(4)


def clean_name(name: str, image: str) -> str:
    if "\0" in name:
        raise FlattenError(f"member name {name!r} holds a NUL byte", file=image)
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise FlattenError(
            f"member name {name!r} climbs out of the image root with '..'",
            file=image,
            hint="the image is hostile or broken; urunix refuses it",
        )
    return "/".join(parts)


def _data(tar: tarfile.TarFile, m: tarfile.TarInfo):
    """A regular member's content (extractfile gives None only for others)."""
    f = tar.extractfile(m)
    assert f is not None, m.name
    return f


class _Entry:
    """What _apply_layer keeps of a tar member: a TarInfo holds much more
    (pax headers, names twice), and a layer may have a million of them."""

    __slots__ = ("name", "type", "mode", "uid", "gid", "size", "offset", "linkname", "devmajor", "devminor", "tmp")

    def __init__(self, name: str, m: tarfile.TarInfo, tmp: str | None):
        self.name, self.type, self.mode, self.uid, self.gid = name, m.type, m.mode & 0o7777, m.uid, m.gid
        self.size, self.offset, self.linkname = m.size, m.offset_data, m.linkname
        self.devmajor, self.devminor, self.tmp = m.devmajor, m.devminor, tmp


class _Need(Exception):
    """read_file: the wanted path leads (a hard link) to one not kept yet."""

    def __init__(self, path: str):
        self.path = path


def _on_the_way(name: str, keep: set[str] | frozenset[str]) -> bool:
    """`name` is a kept path or one of its parent directories."""
    return any(k == name or k.startswith(name + "/") or not name for k in keep)


def _apply_layer(
    tree: _Tree,
    tar: tarfile.TarFile,
    base: int,
    source: str,
    scratch: str,
    size: int | None = None,
    keep: set[str] | None = None,
    limit: int = 0,
) -> None:
    """Apply one layer: whiteouts against the layers below, then the entries.
    `size`: the layer's length, to refuse a member whose data runs past it.
    `keep` (read_file): only what lies on the way to these paths is applied,
    and a kept file's content (at most `limit` bytes) is copied to scratch,
    so that the layer can be a stream (gzip) and memory stays flat."""
    adds: list[_Entry] = []
    opaque: list[str] = []
    whiteouts: list[str] = []
    for m in iter_members(tar):
        name = clean_name(m.name, tree.image)
        head, _, b = name.rpartition("/")
        if b == ".wh..wh..opq":
            if keep is None or _on_the_way(head, keep):
                opaque.append(head)
        elif b.startswith(".wh..wh."):
            continue
        elif b.startswith(".wh."):
            gone = f"{head}/{b[4:]}" if head else b[4:]
            if keep is None or _on_the_way(gone, keep):
                whiteouts.append(gone)
        elif name and (keep is None or _on_the_way(name, keep)):
            tmp = None
            if m.isreg() and not m.issparse() and size is not None and m.offset_data + m.size > size:
                raise FlattenError(f"/{name}: its data runs past the end of the layer (truncated?)", file=tree.image)
            if keep is not None and m.isreg():
                if m.size > limit:
                    raise FlattenError(f"/{name} in the image is larger than {limit} bytes", file=tree.image)
                fd, tmp = tempfile.mkstemp(dir=scratch, prefix="file-")
                with os.fdopen(fd, "wb") as out, _data(tar, m) as src:
                    shutil.copyfileobj(src, out, CHUNK)
            elif m.issparse():
                # content is not one byte range: extract it
                fd, tmp = tempfile.mkstemp(dir=scratch, prefix="sparse-")
                with os.fdopen(fd, "wb") as out, _data(tar, m) as src:
                    shutil.copyfileobj(src, out, CHUNK)
            adds.append(_Entry(name, m, tmp))
    for d in opaque:
        real = tree.resolve_dir(d.split("/") if d else [], create=False)
        if real is not None:
            tree.clear(real)
    for w in whiteouts:
        loc = tree.locate(w, create=False)
        if loc is not None:
            tree.remove(f"{loc[0]}/{loc[1]}" if loc[0] else loc[1])
    for e in adds:
        name = e.name
        loc = tree.locate(name, create=True)
        assert loc is not None  # create=True makes the parents
        parent, b = loc
        path = f"{parent}/{b}" if parent else b
        old = tree.nodes.get(path)
        mode = e.mode
        if e.type == tarfile.DIRTYPE:
            if old is not None and old.kind == "dir":
                old.mode, old.uid, old.gid = mode, e.uid, e.gid
                continue
            node = _Inode("dir", mode, e.uid, e.gid)
        elif e.type == tarfile.LNKTYPE:
            t = clean_name(e.linkname, tree.image)
            loc = tree.locate(t, create=False)
            tpath = (f"{loc[0]}/{loc[1]}" if loc[0] else loc[1]) if loc else None
            found = tree.nodes.get(tpath) if tpath else None
            if found is None and keep is not None and t not in keep:
                raise _Need(t)  # read_file: apply the layers again, keeping the target too
            if found is None:
                raise tree.error(f"hard link /{name} -> /{e.linkname}: no such file in the image")
            if found.kind == "dir":
                raise tree.error(f"hard link /{name} -> /{e.linkname} names a directory")
            node = found
            if tpath == path:
                continue
        elif e.type == tarfile.SYMTYPE:
            node = _Inode("symlink", 0o777, e.uid, e.gid, target=e.linkname)
        elif e.type in (tarfile.CHRTYPE, tarfile.BLKTYPE):
            node = _Inode(
                "char" if e.type == tarfile.CHRTYPE else "block", mode, e.uid, e.gid, devmajor=e.devmajor, devminor=e.devminor
            )
        elif e.type == tarfile.FIFOTYPE:
            node = _Inode("fifo", mode, e.uid, e.gid)
        elif e.type in tarfile.REGULAR_TYPES or e.tmp:
            if e.tmp:
                node = _Inode("file", mode, e.uid, e.gid, e.size, source=e.tmp, offset=0)
            else:
                node = _Inode("file", mode, e.uid, e.gid, e.size, source=source, offset=base + e.offset)
        else:
            raise tree.error(f"/{name}: unsupported tar entry type {e.type!r}")
        if old is not None:
            tree.remove(path)
        tree.put(path, node)


# ------------------------------------------------------------------ the API


@dataclass
class FlatImage:
    """A flattened image: members (sorted, ready for the writers), the image
    config's "config" section (Entrypoint, Cmd, Env, WorkingDir, User, ...),
    and the temporary files the members may point into."""

    path: str
    format: str
    members: list[Member]
    config: dict
    architecture: str = ""
    os: str = ""
    scratch: str | None = None
    _closed: bool = field(default=False, repr=False)

    def entrypoint(self) -> list[str]:
        return list(self.config.get("Entrypoint") or [])

    def cmd(self) -> list[str]:
        return list(self.config.get("Cmd") or [])

    def argv(self) -> list[str]:
        """Entrypoint + Cmd: what a container runtime would run."""
        return self.entrypoint() + self.cmd()

    def env(self) -> list[str]:
        return list(self.config.get("Env") or [])

    def workdir(self) -> str:
        return self.config.get("WorkingDir") or ""

    def find(self, path: str, follow: bool = True) -> Member | None:
        return find(self.members, path, follow)

    def close(self) -> None:
        if self.scratch and not self._closed:
            shutil.rmtree(self.scratch, ignore_errors=True)
        self._closed = True

    def __enter__(self) -> "FlatImage":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def flatten(image: str, scratch_dir: str | None = None) -> FlatImage:
    """Flatten `image` (docker-archive, oci-archive, or OCI layout directory).
    Temporary files (decompressed gzip layers) go to a new directory under
    scratch_dir (default: the system's temp dir)."""
    image = os.path.abspath(image)
    with open_image(image) as (info, store):
        # the archive's members by name, as imagefile indexed them (links resolved)
        index = store.members if isinstance(store, _Tar) else None
        scratch = tempfile.mkdtemp(prefix="urunix-flatten-", dir=scratch_dir)
        tree = _Tree(image)
        try:
            for i, layer in enumerate(info.layers):
                path, start, size = _layer_location(image, index, layer)
                magic = _magic(path, start)
                if magic[:2] == b"\x1f\x8b":
                    plain = os.path.join(scratch, f"layer{i}.tar")
                    with (
                        _Window(path, start, size) as w,
                        gzip.GzipFile(fileobj=io.BufferedReader(w, CHUNK)) as gz,
                        open(plain, "wb") as out,
                    ):
                        while True:
                            try:
                                chunk = gz.read(CHUNK)
                            except (OSError, EOFError, zlib.error) as e:
                                raise FlattenError(f"layer {layer}: bad gzip data ({e})", file=image) from None
                            if not chunk:
                                break
                            out.write(chunk)  # ENOSPC here is the disk's fault, not the image's
                    path, start, size = plain, 0, os.path.getsize(plain)
                elif magic == b"\x28\xb5\x2f\xfd":
                    raise FlattenError(
                        f"layer {layer} is zstd-compressed, which urunix cannot read yet",
                        file=image,
                        hint="re-export the image with gzip or uncompressed layers",
                    )
                with _Window(path, start, size) as w:
                    try:
                        with tarfile.open(fileobj=io.BufferedReader(w, CHUNK), mode="r:") as t:
                            _apply_layer(tree, t, start, path, scratch, size)
                    except (tarfile.TarError, EOFError) as e:
                        raise FlattenError(f"layer {layer} is not a readable tar ({e})", file=image) from None
            cfg = info.config if isinstance(info.config, dict) else {}
            return FlatImage(
                image,
                info.format,
                tree.members(),
                _run_config(cfg.get("config"), image),
                _text(cfg.get("architecture")),
                _text(cfg.get("os")),
                scratch,
            )
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _run_config(value: object, image: str) -> dict:
    """The config's "config" section, with the fields urunix uses checked:
    Entrypoint, Cmd and Env lists of strings (or null), WorkingDir a string."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FlattenError('the image config\'s "config" is not a JSON object', file=image)
    for key in ("Entrypoint", "Cmd", "Env"):
        v = value.get(key)
        if v is not None and not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
            raise FlattenError(f"the image config's {key} is not a list of strings", file=image, value=v)
    if value.get("WorkingDir") is not None and not isinstance(value.get("WorkingDir"), str):
        raise FlattenError("the image config's WorkingDir is not a string", file=image, value=value.get("WorkingDir"))
    return dict(value)


def find(members: list[Member], path: str, follow: bool = True) -> Member | None:
    """The member at `path` (symlinks in it followed inside the tree, the
    last one too when follow is True; hard links resolved to the file)."""
    by_path = {m.path: m for m in members}
    walked = _walk_links(by_path, path, follow)
    if walked is None or not walked[1]:
        return None
    m = by_path.get(walked[0])
    if m is not None and m.kind == "hardlink":
        m = by_path.get(m.target)
    return m


def _walk_links(by_path: dict[str, Member], path: str, follow: bool = True) -> tuple[str, bool] | None:
    """(`path` with the symlinks the members hold resolved, as a chroot would:
    absolute targets start at the root, ".." stops there; whether each
    component before the last exists and is a directory), or None on a
    loop. _Tree.resolve_dir is the same walk over the tree still being
    built (it creates missing directories and refuses a file on the way);
    this one reads finished members and changes nothing."""
    parts = [p for p in path.split("/") if p]
    cur: list[str] = []
    hops = 0
    whole = True
    while parts:
        name = parts.pop(0)
        if dot_step(cur, name):
            continue
        m = by_path.get("/".join(cur + [name]))
        if m is not None and m.kind == "symlink" and (parts or follow):
            hops += 1
            if hops > MAX_SYMLINKS:
                return None
            if m.target.startswith("/"):
                cur = []
            parts = m.target.split("/") + parts
            continue
        cur.append(name)
        if parts and (m is None or m.kind != "dir"):
            whole = False
    return "/".join(cur), whole


def copy_member(m: Member, dest: str) -> str:
    """Write a file member's content to dest."""
    with open(dest, "wb") as out:
        if m.data is not None:
            out.write(m.data)
            return dest
        assert m.source is not None, m  # a file member has data or a source
        with open(m.source, "rb") as f:
            f.seek(m.offset)
            left = m.size
            while left:
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    raise FlattenError(f"{m.source}: ends before /{m.path} does")
                out.write(chunk)
                left -= len(chunk)
    return dest


def read_file(store, info: ImageInfo, path: str, limit: int = 16 << 20, image: str = "") -> bytes | None:
    """The content of the regular file at `path` in an opened image's merged
    rootfs (imagefile.open_image), merged as flatten() merges it: whiteouts,
    opaque directories, hard links, symlinks resolved inside the tree; None
    if it is not a regular file there. Each layer is streamed (gzip too) and
    only the entries on the way to `path` are kept, so memory does not grow
    with the layers; a hard link or a symlink on the way adds its target and
    the layers are read again."""
    keep = {clean_name(path, image)}
    for _ in range(MAX_SYMLINKS):
        with tempfile.TemporaryDirectory(prefix="urunix-read-") as scratch:
            tree = _Tree(image)
            try:
                for layer in info.layers:
                    with store.open(layer) as f:
                        try:
                            with tarfile.open(fileobj=f, mode="r|*") as t:
                                _apply_layer(tree, t, 0, "", scratch, keep=keep, limit=limit)
                        except (tarfile.TarError, EOFError, zlib.error) as e:
                            raise FlattenError(f"layer {layer} is not a readable tar ({_why(e)})", file=image) from None
            except _Need as need:
                keep.add(need.path)
                continue
            members = tree.members()
            walked = _walk_links({m.path: m for m in members}, path)
            if walked is not None and walked[0] not in keep:
                keep.add(walked[0])  # a symlink on the way leads elsewhere
                continue
            m = find(members, path)
            if m is None or m.kind != "file" or m.source is None:
                return None
            with open(m.source, "rb") as f:
                return f.read()
    raise FlattenError(f"too many levels of links on the way to {path}", file=image)
