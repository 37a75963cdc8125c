"""Where a build's image goes, and how it gets there without harming
anything the user has: `-o` resolved (a file, a directory, an OCI layout,
`-` for stdout), the image staged in the build's own scratch directory and
only then moved into place.

The rules (SECURITY.md, "the output"):
- an archive replaces only a file (or nothing); `-o DIR` writes
  DIR/<name>.tar, as `cp` and `docker save -o DIR/...` users expect;
- `--format oci` into an existing OCI layout adds the image the way
  `skopeo copy ... oci:DIR:TAG` does: other images and tags, and every
  other file of the layout, are kept; an image under the same tag is
  replaced (and its blobs that nothing else uses dropped). Any other
  non-empty directory is refused;
- `-o -` streams the archive to stdout once it is complete: a failed
  build writes nothing there."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import stat
import sys
from dataclasses import dataclass

from ..errors import BuildError, SpecError
from ..helpers import image_writer

REF_NAME = "org.opencontainers.image.ref.name"
_DIGEST = re.compile(r"^(sha256|sha512):([0-9a-f]{64}|[0-9a-f]{128})$")


@dataclass(frozen=True)
class Destination:
    """A resolved `-o`: `path` is what gets replaced (None: stdout);
    `parent` is where the scratch directory goes."""

    given: str
    fmt: str
    path: str | None
    parent: str

    @property
    def stream(self) -> bool:
        return self.path is None


def is_layout(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "oci-layout")) and os.path.isfile(os.path.join(path, "index.json"))


def archive_name(image_name: str) -> str:
    """DIR/<name>.tar for `-o DIR`: the image name's last component."""
    base = image_name.rstrip("/").rsplit("/", 1)[-1] or "image"
    return base + ".tar"


def resolve(given: str, fmt: str, image_name: str, spec_file: str | None = None) -> Destination:
    """Decide what `-o GIVEN` means, or refuse it (exit 2) before anything
    is built."""
    if given == "-":
        if fmt == "oci":
            raise SpecError(
                "an OCI layout is a directory and cannot go to stdout",
                field="--output",
                value=given,
                hint="use --format oci-archive or docker-archive with -o -",
            )
        import tempfile

        return Destination(given, fmt, None, tempfile.gettempdir())
    path = os.path.abspath(given)
    if spec_file and os.path.exists(path) and os.path.realpath(path) == os.path.realpath(spec_file):
        raise SpecError("is the spec itself", field="--output", value=given, hint="write the image elsewhere, e.g. -o result")
    if fmt != "oci" and os.path.isdir(path):
        if is_layout(path):
            raise SpecError(
                "is an OCI layout; an archive would be written into it",
                field="--output",
                value=given,
                hint=f"add the image to the layout with --format oci, or give a file name: -o {given.rstrip('/')}.tar",
            )
        path = os.path.join(path, archive_name(image_name))
        if os.path.isdir(path):
            raise SpecError(
                f"holds a directory named {os.path.basename(path)}, where the archive would go",
                field="--output",
                value=given,
                hint="give the archive's file name: -o DIR/NAME.tar",
            )
    elif fmt == "oci" and os.path.lexists(path):
        if os.path.islink(path) or not os.path.isdir(path):
            raise SpecError(
                "exists and is not a directory; an OCI layout is a directory",
                field="--output",
                value=given,
                hint="choose a new directory for --format oci, or --format oci-archive for a file",
            )
        cwd = os.path.realpath(os.getcwd())
        real = os.path.realpath(path)
        inside = [
            p
            for p in (cwd, os.path.realpath(spec_file) if spec_file else None)
            if p and (p == real or p.startswith(real.rstrip("/") + "/"))
        ]
        if inside or (not is_layout(path) and os.listdir(path)):
            raise SpecError(
                "is a directory that holds other files; urunix never replaces what it did not make"
                if not inside
                else "holds the current directory or the spec; urunix never replaces it",
                field="--output",
                value=given,
                hint="give a new (or empty) directory, e.g. -o ./image-oci, or an existing OCI layout "
                "(a directory with oci-layout and index.json) to add the image to it",
            )
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise SpecError("the output's directory does not exist", field="--output", value=given)
    return Destination(given, fmt, path, parent)


def write(plan: dict, dest: Destination, scratch: str, progress=None, layers=None, on_layer=None, fsync: bool = False) -> str:
    """Write the image into `scratch` (the build's own, locked directory),
    then put it where `dest` says; return the manifest digest."""
    import tempfile

    staged = os.path.join(tempfile.mkdtemp(dir=scratch, prefix="out-"), "image")
    digest = image_writer.write(plan, staged, progress, layers, on_layer, fsync)
    if dest.path is None:  # dest.stream
        stream(staged)
    elif dest.fmt == "oci":
        with _locked(dest.parent):
            if os.path.isdir(dest.path):
                merge_layout(dest.path, staged, scratch)
                image_writer.replace_dir(staged, dest.path, scratch)
            else:
                try:
                    os.rename(staged, dest.path)
                except OSError as e:
                    if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        raise
                    merge_layout(dest.path, staged, scratch)
                    image_writer.replace_dir(staged, dest.path, scratch)
    else:
        if os.path.isdir(dest.path):
            raise SpecError("became a directory during the build", field="--output", value=dest.given)
        os.replace(staged, dest.path)
    if fsync and dest.path is not None:
        image_writer.fsync_dir(dest.parent)
    return digest


def stream(path: str) -> None:
    """The finished archive to stdout, in the kernel where it can."""
    sys.stdout.flush()
    out = sys.stdout.buffer if hasattr(sys.stdout, "buffer") else None
    try:
        fd = out.fileno() if out is not None else None
    except (OSError, ValueError, AttributeError):
        fd = None
    with open(path, "rb") as src:
        size = os.fstat(src.fileno()).st_size
        try:
            if fd is None:
                shutil.copyfileobj(src, out if out is not None else sys.stdout)
                return
            offset = 0
            while offset < size:
                try:
                    n = os.sendfile(fd, src.fileno(), offset, min(size - offset, 1 << 30))
                except OSError as e:
                    if e.errno in (errno.EINVAL, errno.ENOSYS):  # stdout cannot take sendfile: copy
                        src.seek(offset)
                        assert out is not None  # fd is out's
                        shutil.copyfileobj(src, out)
                        out.flush()
                        return
                    raise
                if n == 0:
                    break
                offset += n
        except BrokenPipeError as e:
            # the reader went away: its problem is the user's to see, ours to say
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            except (OSError, ValueError, AttributeError):
                pass
            raise BuildError("stdout was closed before the whole image was written (did the reading command fail?)") from e


class _locked:
    """flock on the output's directory: builds that add to one OCI layout at
    once take turns (each reads the index the other wrote)."""

    def __init__(self, parent: str):
        self.parent = parent

    def __enter__(self):
        self.fd = os.open(self.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc) -> None:
        os.close(self.fd)  # releases the lock


def _blob_path(root: str, digest: str) -> str | None:
    m = _DIGEST.match(digest or "")
    return os.path.join(root, "blobs", m.group(1), m.group(2)) if m else None


def _reachable(root: str, descs: list) -> set[str]:
    """Digests a list of descriptors reaches in the layout at `root`:
    manifests, their configs and layers, nested indexes."""
    seen: set[str] = set()
    todo = [d for d in descs if isinstance(d, dict)]
    while todo:
        d = todo.pop()
        digest = d.get("digest")
        if not isinstance(digest, str) or digest in seen:
            continue
        seen.add(digest)
        if (
            not str(d.get("mediaType", "")).endswith("+json")
            and "manifest" not in str(d.get("mediaType", ""))
            and "index" not in str(d.get("mediaType", ""))
        ):
            continue
        p = _blob_path(root, digest)
        try:
            if p is None or os.path.getsize(p) > 16 << 20:
                continue
            with open(p, "rb") as f:
                doc = json.load(f)
        except (OSError, ValueError):
            continue
        if not isinstance(doc, dict):
            continue
        for key in ("config",):
            if isinstance(doc.get(key), dict):
                todo.append(doc[key])
        for key in ("layers", "manifests"):
            if isinstance(doc.get(key), list):
                todo.extend(x for x in doc[key] if isinstance(x, dict))
    return seen


def merge_layout(old: str, staged: str, scratch: str) -> None:
    """Make the staged layout (one image) the union of itself and the
    existing layout `old`: every file of `old` is linked (or copied) into
    it, except its index.json and the blobs of an image whose tag the new
    one takes that no other image uses. The caller then swaps the two
    directories in one step."""
    new_index_path = os.path.join(staged, "index.json")
    with open(new_index_path, "rb") as f:
        new_index = json.load(f)
    ours = new_index["manifests"]
    tags = {m.get("annotations", {}).get(REF_NAME) for m in ours}
    old_index = None
    if is_layout(old):
        try:
            with open(os.path.join(old, "index.json"), "rb") as f:
                old_index = json.load(f)
            if not isinstance(old_index, dict) or not isinstance(old_index.get("manifests", []), list):
                raise ValueError("no manifests list")
        except (OSError, ValueError) as e:
            raise BuildError(
                f"{os.path.join(old, 'index.json')}: not a readable OCI index ({e}); the layout was left as it was"
            ) from e
    kept: list[object] = []
    dropped: list[object] = []
    for m in (old_index or {}).get("manifests", []):
        ref = m.get("annotations", {}).get(REF_NAME) if isinstance(m, dict) else None
        (dropped if ref is not None and ref in tags else kept).append(m)
    unused = _reachable(old, dropped) - _reachable(old, kept) - _reachable(staged, ours)
    skip = {p for p in (_blob_path(old, d) for d in unused) if p}
    skip.add(os.path.join(old, "index.json"))
    for dirpath, dirnames, filenames in os.walk(old):
        rel = os.path.relpath(dirpath, old)
        into = os.path.join(staged, rel) if rel != "." else staged
        for name in dirnames:
            src = os.path.join(dirpath, name)
            dst = os.path.join(into, name)
            if os.path.islink(src):
                if not os.path.lexists(dst):
                    os.symlink(os.readlink(src), dst)
            elif not os.path.isdir(dst):
                os.mkdir(dst)
                shutil.copymode(src, dst)
        for name in filenames:
            src = os.path.join(dirpath, name)
            dst = os.path.join(into, name)
            if src in skip:
                continue
            if os.path.lexists(dst):
                if rel.split(os.sep)[0] == "blobs":
                    continue  # a blob both images share: the same bytes by its name
                os.unlink(dst)  # the layout's own oci-layout (any spelling of it) stays as it was
            st = os.lstat(src)
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(src), dst)
                continue
            try:
                os.link(src, dst, follow_symlinks=False)
            except OSError:
                shutil.copy2(src, dst, follow_symlinks=False)
    if old_index is not None:
        merged = dict(old_index)
        merged["manifests"] = kept + ours
        for k, v in new_index.items():
            merged.setdefault(k, v)
        tmp = new_index_path + ".new"
        with open(tmp, "wb") as f:
            f.write(image_writer.canonical(merged))
        os.replace(tmp, new_index_path)
