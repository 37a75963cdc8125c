"""Image -> a plan of layers and config, the input of helpers/image_writer.py.

One layer per artifact, in the order they change least to most: the kernel,
the rootfs artifacts (initrd / block image), the user's other files, and last
the small /urunc.json. A cmdline-only change then rebuilds only that last
layer and the config."""

from __future__ import annotations

from typing import Any

from . import overlap
from .helpers import urunc_json
from .helpers.image_writer import Entry
from .rootfs.sources import IMAGE_KINDS
from .spec import FileEntry, Image

FORMATS = ("docker-archive", "oci-archive", "oci")


def file_entry(f: FileEntry, hardlinks: bool = True) -> Entry:
    """A `files` (or `include`) copy as an image_writer plan entry;
    hardlinks=False for a Nix store path (see image_writer._walk)."""
    if f.path.is_dir():
        entry: Entry = {"type": "tree", "path": f.target, "source": str(f.path.absolute())}
        if not hardlinks:
            entry["hardlinks"] = False
        if f.exclude:
            entry["exclude"] = sorted(f.exclude)
        return entry
    return {"type": "file", "path": f.target, "source": str(f.path.absolute())}


def plan(image: Image, fmt: str = "docker-archive", artifacts=None, exclude=()) -> dict[str, Any]:
    """The image_writer plan; `artifacts` (native/artifacts.py) adds members
    made by urunix itself: a kernel from an image, the built rootfs, the init.
    `exclude`: host paths no directory copy may take in (the output, the
    build's scratch directory).

    Where entries overlap, the later one in `image.files` wins, whatever
    layer it lands in (validate.py orders them: the later COPY, or the more
    specific target): a directory copy in a later layer leaves out what an
    entry that outranks it put in an earlier one."""
    ann = image.annotations
    kernel = [f for f in image.files if f.target == ann.get("binary")]
    rootfs = [f for f in image.files if f.target in (ann.get("initrd"), ann.get("block")) and f not in kernel]
    rest = [f for f in image.files if f not in kernel and f not in rootfs]
    made = (
        {"kernel": [], "rootfs": [], "files": []}
        if artifacts is None
        else {"kernel": artifacts.kernel, "rootfs": artifacts.rootfs, "files": artifacts.files}
    )
    r = image.rootfs
    # an image's tree as the raw rootfs is the base, as FROM is in Docker:
    # what the spec copies (the kernel too) lies over it, never under it
    base_tree = r is not None and r.type == "raw" and r.origin.kind in IMAGE_KINDS
    rank = {id(f): i for i, f in enumerate(image.files)}
    earlier = [(f.target, rank[id(f)]) for f in kernel + rootfs]
    earlier += [
        ("/" + m.path.lstrip("/"), len(image.files))
        for m in list(made["kernel"]) + ([] if base_tree else list(made["rootfs"]))
        if getattr(m, "kind", "file") != "dir"
    ]
    above = overlap.index_earlier(earlier)
    excluded = overlap.real_paths(exclude)

    def entry(f: FileEntry, later_layer: bool) -> Entry:
        e = file_entry(f)
        e["rank"] = rank[id(f)]
        if e["type"] == "tree":
            skip = overlap.outranked(f.target, rank[id(f)], above) if later_layer else []
            skip += overlap.inside(e["source"], f.target, excluded)
            if skip:
                e["skip"] = skip
        return e

    layers = [
        {"name": "kernel", "entries": [entry(f, False) for f in kernel], "members": made["kernel"]},
        # a raw rootfs tree comes out of expand() sorted, with its parents
        {
            "name": "rootfs",
            "entries": [entry(f, False) for f in rootfs],
            "members": made["rootfs"],
            "expanded": bool(artifacts is not None and getattr(artifacts, "expanded", False)),
        },
        {"name": "files", "entries": [entry(f, True) for f in rest], "members": made["files"]},
        {
            "name": "urunc.json",
            "entries": [{"type": "file", "path": "/urunc.json", "data": urunc_json.urunc_json(ann).decode("ascii")}],
        },
    ]
    if base_tree:
        layers.insert(0, layers.pop(1))
    labels = {**image.labels, **urunc_json.labels(ann)}
    return {
        "format": fmt,
        "repoTags": [f"{image.name}:{image.tag}"],
        "created": image.created,
        "architecture": image.architecture,
        "os": image.os,
        "config": {
            "Entrypoint": image.entrypoint,
            "Cmd": image.cmd,
            "Env": image.env or None,
            "WorkingDir": image.workdir,
            "Labels": dict(sorted(labels.items())),
        },
        # OCI outputs carry them in the manifest too; Docker ignores them, so
        # a docker-archive stays byte-identical to the Nix-built one.
        "manifestAnnotations": urunc_json.labels(ann) if fmt != "docker-archive" else {},
        "layers": [layer for layer in layers if layer["entries"] or layer.get("members")],
    }
