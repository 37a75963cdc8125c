"""Build an Image natively: plan it, then stream it with helpers/image_writer."""

from __future__ import annotations

import errno
import os
from contextlib import ExitStack, nullcontext
from typing import Callable, ContextManager

from ..errors import BuildError, SpecError
from ..helpers import image_writer
from ..plan import plan
from ..spec import Image
from . import cache as layer_cache
from ..rootfs.sources import IMAGE_KINDS
from . import output
from .artifacts import materialize

ProgressFactory = Callable[[int], ContextManager[Callable[[int], None] | None]]


def build(
    image: Image,
    out: str,
    fmt: str = "docker-archive",
    progress: ProgressFactory | None = None,
    cache: bool | layer_cache.LayerCache | None = None,
    fsync: bool = False,
) -> str:
    """Write the image to `out` atomically; return its manifest digest.
    cache: use the layer cache (native/cache.py), or this LayerCache;
    None: unless URUNIX_NO_CACHE is set. fsync: force the result to disk before the
    rename (durable across a power loss; slower by the disk's write time)."""
    if fmt not in image_writer.FORMATS:
        raise SpecError(
            "is not an output format urunix writes", field="--format", value=fmt, allowed=", ".join(image_writer.FORMATS)
        )
    dest = output.resolve(out, fmt, image.name, str(image.source) if image.source else None)
    if isinstance(cache, layer_cache.LayerCache):
        store: layer_cache.LayerCache | None = cache
    else:
        use_cache = layer_cache.enabled() if cache is None else cache
        store = layer_cache.LayerCache() if use_cache else None
    scratch = None
    try:
        with ExitStack() as stack:
            scratch, _ = image_writer.owned_temp_dir(dest.parent, stack)
            step = getattr(progress, "step", None) or (lambda text: None)  # progress.py names the steps
            if image.rootfs is not None:
                step(f"reading the tree of {image.rootfs.field or 'rootfs'}")
            made = (
                materialize(image, scratch, stack, lazy=True, exclude=[dest.path or "", scratch])
                if (image.rootfs or image.kernel or image.init)
                else None
            )
            p = plan(image, fmt, made, exclude=[dest.path or "", scratch])
            r = image.rootfs
            if made is not None and made.expanded and r is not None and r.origin.kind in IMAGE_KINDS:
                check_paths_exist(image, made.rootfs)
            tool = (
                f"mke2fs: making the {r.fs_type} image"
                if r is not None and r.type == "block"
                else "cpio: making the gzip initrd"
                if r is not None and r.compression == "gzip"
                else None
            )
            layers = _layers(p, made, store, stack, lambda: step(tool) if tool else None)
            total = image_writer.total_bytes(p, layers)
            show_layers = getattr(progress, "layers", None)  # progress.py lists the layers
            if show_layers is not None:
                show_layers([(x.name, x.size) for x in layers])

            def keep(layer: image_writer.Layer, digest: str, path: str, offset: int) -> None:
                # the cache copies the layer out of this build's own staged
                # file (in its private scratch directory), never out of the
                # output path, which another build may replace meanwhile
                if store is not None and layer.key and layer.size >= layer_cache.MIN_BYTES:
                    store.store(layer.key, digest, path, offset, layer.size)

            with progress(total) if progress else nullcontext(None) as advance:
                return output.write(p, dest, scratch, advance, layers, keep, fsync)
    except image_writer.UnsupportedFile as e:
        raise _host_tree_error(image, e) from e
    except image_writer.PlanError as e:
        raise BuildError(str(e)) from e
    except OSError as e:
        shown = dest.given if dest.path is not None else "stdout"
        if e.errno == errno.ENOSPC:
            raise BuildError(f"the disk is full while writing {shown}; the previous result (if any) is untouched") from e
        name = e.filename
        if not name or (scratch and str(name).startswith(scratch)):
            name = shown  # a temporary name means nothing to the user
        raise BuildError(f"{name}: {e.strerror or e}") from e


def _host_tree_error(image: Image, e: image_writer.UnsupportedFile) -> SpecError:
    """Name the spec entry whose directory holds the refused file."""
    from ..spec import display_path

    places = [(str(f.path.absolute()), f.field, f.source) for f in image.files]
    r = image.rootfs
    if r is not None:
        if r.origin.kind == "dir":
            places.append((os.path.abspath(r.origin.location), r.origin.field or "rootfs.from", r.origin.location))
        places += [(str(f.path.absolute()), f.field, f.source) for f in r.include]
    field, value = None, e.source
    for root, where, given in places:
        if e.source == root or e.source.startswith(root.rstrip("/") + "/"):
            field, value = where, given
            break
    if e.what.startswith("a path of"):
        return SpecError(
            f"holds {e.what}: {e.source}",
            file=display_path(image.source) if image.source else None,
            field=field,
            value=value,
            hint="copy the directory to a shorter target, or flatten its nesting",
        )
    return SpecError(
        f"holds {e.what}, which an image cannot take from a host directory: {e.source}",
        file=display_path(image.source) if image.source else None,
        field=field,
        value=value,
        hint="remove it from the directory (a device node belongs in an image archive "
        "as the rootfs source, or is made by the guest's init)",
    )


def _layers(p: dict, made, store, stack: ExitStack, on_make: Callable[[], None] = lambda: None) -> list[image_writer.Layer]:
    """Prepared layers: cache hits as ready blobs, the rest with their
    members (the rootfs artifact made only on a miss)."""
    mtime = image_writer.epoch(p["created"])
    recipe = made.recipe if made is not None else None
    out = []
    for name, members in image_writer.plan_members(p):
        mine = recipe if (recipe is not None and any(m is recipe.placeholder for m in members)) else None
        key = None
        if store is not None and (mine is None or mine.key is not None):
            rest = [m for m in members if mine is None or m is not mine.placeholder]
            key = layer_cache.layer_key(rest, mtime, mine.key if mine else "")
        if key is not None:
            hit = store.lookup(key)
            if hit is not None:
                stack.callback(hit.close)
                out.append(image_writer.ready_layer(name, hit.file, hit.offset, hit.size, hit.digest, key))
                continue
        if mine is not None:
            on_make()
            made_member = mine.make()
            members = [made_member if m is mine.placeholder else m for m in members]
        layer = image_writer.prepare(name, members, mtime)
        layer.key = key
        out.append(layer)
    return out


def check_paths_exist(image: Image, tree: list) -> None:
    """binary/initrd/block that lie inside an image's tree (a raw rootfs, a
    Containerfile's FROM) can only be checked once the image is read: refuse
    an image urunc could not boot."""
    from ..rootfs.flatten import find
    from ..spec import display_path

    ours = {f.target for f in image.files} | {x.target for x in (image.kernel, image.init) if x is not None}
    for key in ("binary", "initrd", "block"):
        path = image.annotations.get(key)
        if not path or path in ours:
            continue
        found = find(tree, path)
        if found is None or found.kind != "file":
            raise SpecError(
                "names a file the image will not contain",
                value=path,
                file=display_path(image.source) if image.source else None,
                field=f"annotations.{key}",
                hint="the rootfs image has no such file either; list it with: tar -tf IMAGE.tar, or docker export",
            )
