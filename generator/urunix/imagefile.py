"""Read an image in any of the three forms urunix writes and `docker save`
writes: docker-archive, oci-archive, or an OCI layout directory.

Used by `urunix inspect` (and by anything that takes an image as input)."""

from __future__ import annotations

import json
import os
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
    layers: list[str] = field(default_factory=list)   # names inside the archive / layout


class _Dir:
    def __init__(self, root: str):
        self.root = root

    def exists(self, name: str) -> bool:
        return os.path.isfile(os.path.join(self.root, name))

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        with open(os.path.join(self.root, name), "rb") as f:
            yield f


class _Tar:
    def __init__(self, path: str):
        self.tar = tarfile.open(path, "r:")
        self.members = {m.name.lstrip("./") if m.name.startswith("./") else m.name: m for m in self.tar.getmembers() if m.isfile()}

    def exists(self, name: str) -> bool:
        return name in self.members

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        f = self.tar.extractfile(self.members[name])
        assert f is not None
        yield f


def _json(store, name: str, limit: int = 16 << 20):
    with store.open(name) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ImageFormatError(f"{name} is larger than {limit} bytes")
    try:
        return json.loads(data)
    except ValueError as e:
        raise ImageFormatError(f"{name} is not valid JSON: {e}")


def _blob(digest: str) -> str:
    algo, _, hexd = digest.partition(":")
    if not hexd or "/" in hexd or ".." in hexd:
        raise ImageFormatError(f"bad digest {digest!r}")
    return f"blobs/{algo}/{hexd}"


@contextmanager
def open_image(path: str) -> Iterator[tuple[ImageInfo, object]]:
    """Yield (info, store); store.open(name) reads a member (e.g. a layer)."""
    if os.path.isdir(path):
        store = _Dir(path)
        kind = "oci"
    else:
        try:
            store = _Tar(path)
        except (tarfile.TarError, OSError) as e:
            raise ImageFormatError(f"{path}: not an image archive ({e})", file=path,
                                   hint="give a docker-archive, an oci-archive or an OCI layout directory")
        kind = "docker-archive" if store.exists("manifest.json") else "oci-archive"
    try:
        if kind == "docker-archive":
            manifest_list = _json(store, "manifest.json")
            if not isinstance(manifest_list, list) or not manifest_list:
                raise ImageFormatError("manifest.json holds no image", file=path)
            entry = manifest_list[0]
            info = ImageInfo(kind, _json(store, entry["Config"]), None,
                             repo_tags=entry.get("RepoTags") or [], layers=list(entry["Layers"]))
            if store.exists("index.json"):  # Docker >= 25 archives are OCI layouts too
                _add_oci(store, info)
        else:
            if not store.exists("index.json"):
                raise ImageFormatError(f"{path}: neither manifest.json nor index.json found", file=path,
                                       hint="give a docker-archive, an oci-archive or an OCI layout directory")
            info = ImageInfo(kind, {}, None)
            _add_oci(store, info)
            info.config = _json(store, _blob(info.manifest["config"]["digest"]))
            info.layers = [_blob(d["digest"]) for d in info.manifest["layers"]]
        yield info, store
    except (KeyError, TypeError, IndexError) as e:
        raise ImageFormatError(f"{path}: malformed image metadata ({e!r})", file=path)
    finally:
        if isinstance(store, _Tar):
            store.tar.close()


def _add_oci(store, info: ImageInfo) -> None:
    index = _json(store, "index.json")
    desc = index["manifests"][0]
    manifest = _json(store, _blob(desc["digest"]))
    if manifest.get("mediaType", "").endswith("index.v1+json") or "manifests" in manifest:
        desc = manifest["manifests"][0]
        manifest = _json(store, _blob(desc["digest"]))
    info.manifest = manifest
    info.manifest_annotations = manifest.get("annotations") or {}
    name = (desc.get("annotations") or {}).get("io.containerd.image.name")
    if name and not info.repo_tags:
        info.repo_tags = [name]


def read_file(store, info: ImageInfo, path: str, limit: int = 16 << 20) -> bytes | None:
    """The content of `path` in the image's merged rootfs (top layer wins,
    whiteouts honoured), or None."""
    want = path.strip("/")
    for layer in reversed(info.layers):
        with store.open(layer) as f:
            try:
                with tarfile.open(fileobj=f, mode="r|*") as t:
                    for m in t:
                        name = m.name.strip("/")
                        if name.startswith("./"):
                            name = name[2:]
                        head, _, base = want.rpartition("/")
                        if name == (f"{head}/.wh.{base}" if head else f".wh.{base}"):
                            return None
                        if name == want:
                            if not m.isfile():
                                return None
                            if m.size > limit:
                                raise ImageFormatError(f"{path} in the image is larger than {limit} bytes")
                            data = t.extractfile(m)
                            return data.read() if data else None
            except tarfile.TarError as e:
                raise ImageFormatError(f"layer {layer} is not a readable tar ({e})")
    return None
