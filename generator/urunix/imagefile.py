"""Read an image in any of the three forms urunix writes and `docker save`
writes: docker-archive, oci-archive, or an OCI layout directory.

Used by `urunix inspect` (and by anything that takes an image as input);
a file of the merged rootfs is read by rootfs/flatten.py (read_file), the
one place that merges layers."""

from __future__ import annotations

import json
import os
import re
import tarfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Iterator

from .errors import SpecError


class ImageFormatError(SpecError):
    """Not an image we can read: exit code 2, like any bad input."""


@dataclass
class ImageInfo:
    format: str
    config: dict
    manifest: dict | None
    manifest_annotations: dict = field(default_factory=dict)
    repo_tags: list[str] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)  # names inside the archive / layout


_DIGEST = re.compile(r"^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")
MAX_OUTER_MEMBERS = 100_000  # an image archive holds a few files per layer


def layout_path(root: str, name: str) -> str:
    """The host path of `name` inside an OCI layout directory; refuses a name
    or a symlink that leads outside it."""
    parts = name.split("/")
    if name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ImageFormatError(f"{name!r} is not a path inside the layout", file=root)
    path = os.path.join(root, *parts)
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if real != real_root and not real.startswith(real_root + os.sep):
        raise ImageFormatError(
            f"{name} leads outside the layout (a symlink to {real})", file=root, hint="an OCI layout must hold its blobs itself"
        )
    return path


class _Dir:
    def __init__(self, root: str):
        self.root = root

    def exists(self, name: str) -> bool:
        return os.path.isfile(layout_path(self.root, name))

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        path = layout_path(self.root, name)
        if not os.path.isfile(path):
            raise ImageFormatError(f"{name} is missing from the layout", file=self.root)
        with open(path, "rb") as f:
            yield f


def _strip(name: str) -> str:
    return (name[2:] if name.startswith("./") else name).rstrip("/")


class _Tar:
    """An image archive: its regular members by name (symlinks and hard links
    to them resolved, as old `docker save` links identical layer.tar files)."""

    def __init__(self, path: str):
        self.path = path
        self.tar = tarfile.open(path, "r:")
        raw: dict[str, tarfile.TarInfo] = {}
        for m in iter_members(self.tar):
            if len(raw) >= MAX_OUTER_MEMBERS:
                self.tar.close()
                raise ImageFormatError(f"holds more than {MAX_OUTER_MEMBERS} files: not an image archive", file=path)
            raw[_strip(m.name)] = m
        self.members: dict[str, tarfile.TarInfo] = {}
        for name, first in raw.items():
            hit: tarfile.TarInfo | None = first
            hops = 0
            while hit is not None and (hit.issym() or hit.islnk()) and hops < 16:
                hops += 1
                link = hit.linkname
                if hit.issym():
                    link = os.path.normpath(os.path.join(os.path.dirname(name), link))
                hit = raw.get(_strip(link))
            if hit is not None and hit.isfile():
                self.members[name] = hit

    def exists(self, name: str) -> bool:
        return name in self.members

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        m = self.members.get(name)
        if m is None:
            raise ImageFormatError(f"{name} is missing from the archive", file=self.path)
        f = self.tar.extractfile(m)
        assert f is not None
        yield f


def _why(e: BaseException) -> str:
    """An exception's reason without Python's `[Errno N]` or a repeated path."""
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


def _json(store, name: str, limit: int = 16 << 20):
    with store.open(name) as f:
        try:
            data = f.read(limit + 1)
        except (tarfile.TarError, OSError, EOFError) as e:
            raise ImageFormatError(f"{name} cannot be read ({_why(e)})")
    if len(data) > limit:
        raise ImageFormatError(f"{name} is larger than {limit} bytes")
    try:
        return json.loads(data)
    except RecursionError:
        raise ImageFormatError(f"{name} is nested too deeply") from None
    except ValueError as e:
        raise ImageFormatError(f"{name} is not valid JSON: {e}") from None


def iter_members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """A tar's members, one at a time, without tarfile keeping every TarInfo
    (it does, even in stream mode): memory stays flat for a million entries."""
    while True:
        m = tar.next()
        if m is None:
            return
        tar.members.clear()  # type: ignore[attr-defined]  # tarfile's own list, not in its stubs
        yield m


def _blob(digest: object) -> str:
    """blobs/ALGO/HEX of a descriptor's digest; anything but a well-formed
    sha256/sha512 digest is refused (it would name a path: `../../etc:x`)."""
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise ImageFormatError(f"bad digest {digest!r}", allowed="sha256:<64 hex digits> or sha512:<128 hex digits>")
    algo, _, hexd = digest.partition(":")
    return f"blobs/{algo}/{hexd}"


def _need(value: object, kind: type, what: str, path: str):
    if not isinstance(value, kind):
        raise ImageFormatError(
            f"{what} must be a JSON {'object' if kind is dict else 'array' if kind is list else 'string'}"
            f" (got {type(value).__name__})",
            file=path,
        )
    return value


def _strings(value: object, what: str, path: str) -> list[str]:
    items = _need(value, list, what, path)
    for v in items:
        _need(v, str, f"each of {what}", path)
    return list(items)


@contextmanager
def open_image(path: str, ref: str | None = None) -> Iterator[tuple[ImageInfo, object]]:
    """Yield (info, store); store.open(name) reads a member (e.g. a layer).
    `ref` picks, in an OCI index, the manifest of that tag
    (org.opencontainers.image.ref.name), as skopeo's oci:DIR:TAG does.
    Anything malformed is an ImageFormatError (exit code 2)."""
    if not os.path.lexists(path):
        raise ImageFormatError(
            "no such file or directory", file=path, hint="give a docker-archive, an oci-archive or an OCI layout directory"
        )
    if os.path.isdir(path):
        store: _Dir | _Tar = _Dir(path)
        kind = "oci"
    else:
        try:
            store = _Tar(path)
        except (tarfile.TarError, OSError, EOFError) as e:
            raise ImageFormatError(
                f"not an image archive ({_why(e)})",
                file=path,
                hint="give a docker-archive, an oci-archive or an OCI layout directory",
            ) from None
        kind = "docker-archive" if store.exists("manifest.json") else "oci-archive"
    try:
        try:
            info = _read_info(store, kind, path, ref)
        except ImageFormatError as e:
            for p in e.problems:
                p.file = p.file or path
            raise
        except (KeyError, TypeError, IndexError, AttributeError, ValueError) as e:
            raise ImageFormatError(f"malformed image metadata ({type(e).__name__}: {e})", file=path) from None
        yield info, store
    finally:
        if isinstance(store, _Tar):
            store.tar.close()


def _read_info(store, kind: str, path: str, ref: str | None = None) -> ImageInfo:
    if kind == "docker-archive":
        manifest_list = _need(_json(store, "manifest.json"), list, "manifest.json", path)
        if not manifest_list:
            raise ImageFormatError("manifest.json holds no image", file=path)
        entry = _need(manifest_list[0], dict, "manifest.json[0]", path)
        config = _need(_json(store, _need(entry.get("Config"), str, "manifest.json Config", path)), dict, "the config", path)
        info = ImageInfo(
            kind,
            config,
            None,
            repo_tags=_strings(entry.get("RepoTags") or [], "RepoTags", path),
            layers=_strings(entry.get("Layers"), "Layers", path),
        )
        if store.exists("index.json"):  # Docker >= 25 archives are OCI layouts too
            _add_oci(store, info, path)
    else:
        if not store.exists("index.json"):
            raise ImageFormatError(
                "not an image: neither manifest.json nor index.json found",
                file=path,
                hint="give a docker-archive, an oci-archive or an OCI layout directory",
            )
        info = ImageInfo(kind, {}, None)
        _add_oci(store, info, path, ref)
        assert info.manifest is not None
        cdesc = _need(info.manifest.get("config"), dict, "the manifest's config", path)
        info.config = _need(_json(store, _blob(cdesc.get("digest"))), dict, "the config", path)
        layers = _need(info.manifest.get("layers"), list, "the manifest's layers", path)
        info.layers = [_blob(_need(d, dict, "a layer descriptor", path).get("digest")) for d in layers]
    return info


REF_NAME = "org.opencontainers.image.ref.name"


def _add_oci(store, info: ImageInfo, path: str, ref: str | None = None) -> None:
    index = _need(_json(store, "index.json"), dict, "index.json", path)
    manifests = _need(index.get("manifests"), list, "index.json manifests", path)
    if not manifests:
        raise ImageFormatError("index.json lists no manifest", file=path)
    desc = _need(manifests[0], dict, "index.json manifests[0]", path)
    if ref is not None:
        names = [(d.get("annotations") or {}).get(REF_NAME) if isinstance(d, dict) else None for d in manifests]
        if ref not in names:
            known = ", ".join(n for n in names if isinstance(n, str)) or "none"
            raise ImageFormatError(f"the layout has no image tagged {ref}", file=path, allowed=known)
        desc = _need(manifests[names.index(ref)], dict, "index.json manifests[]", path)
    manifest = _need(_json(store, _blob(desc.get("digest"))), dict, "the manifest", path)
    if str(manifest.get("mediaType", "")).endswith("index.v1+json") or "manifests" in manifest:
        inner = _need(manifest.get("manifests"), list, "the nested index's manifests", path)
        if not inner:
            raise ImageFormatError("a nested index lists no manifest", file=path)
        desc = _need(inner[0], dict, "a nested index's manifests[0]", path)
        manifest = _need(_json(store, _blob(desc.get("digest"))), dict, "the manifest", path)
    info.manifest = manifest
    ann = manifest.get("annotations") or {}
    info.manifest_annotations = {k: v for k, v in ann.items() if isinstance(v, str)} if isinstance(ann, dict) else {}
    dann = desc.get("annotations") or {}
    name = dann.get("io.containerd.image.name") if isinstance(dann, dict) else None
    if isinstance(name, str) and name and not info.repo_tags:
        info.repo_tags = [name]
