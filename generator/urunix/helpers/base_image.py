"""The big, rarely changing layers of a Nix-built image (kernel, rootfs,
other files), written in one derivation as a docker-archive that
dockerTools.buildImage then takes as `fromImage`.

stdlib only; loads the urunix package as build_rootfs.py does (script.py). Why one
step: the rootfs artifact (an ext2 image, a cpio) is built in the build
directory and streamed straight into its layer, so it enters the Nix store
once, inside this archive, instead of as an artifact, a layer tree, a layer
tarball and once more per chained image. A cmdline change rebuilds only the
small layer dockerTools adds on top.

    python3 base_image.py BASE.json OUT
    python3 base_image.py --layer LAYER.json OUT   one layer: OUT/layer.tar, OUT/layer.json
                                                   (or LAYER.json in $layerPath)

BASE.json:
  {"repoTags": ["name-base:tag"], "created": "...", "architecture": "amd64",
   "storeDir": "/nix/store",
   "layers": [{"name": "kernel", "entries": [ENTRY, ...]}, ...]}
ENTRY:
  {"source": "/nix/store/...", "target": "/unikernel/k"}   a file or a directory
  {"build": ROOTFS, "target": "/rootfs.ext2"}              build_rootfs.py's description
  {"build": ROOTFS (type raw), "target": "/"}              a raw rootfs: the tree itself
  {"extract": EXTRACT, "target": "/kernel"}                one file out of an image

The layers are the native builder's (same writer, same entries), so their
bytes and digests are the ones `urunix build` writes. The archive has no
index.json/oci-layout: dockerTools deletes the *.json it finds at the top of
its base image, and a leftover oci-layout without index.json would make
containerd refuse the result.

Files that name a Nix store path are reported (file and path): the image gets
the bytes only, not the store path, so a Nix-built program that needs it
will not find it in the guest.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from contextlib import ExitStack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import build_rootfs  # noqa: E402
import script  # noqa: E402


SCAN_LIMIT = 16 << 20


def store_refs(path: str, store_dir: bytes, seen: set) -> list[tuple[str, str]]:
    """(file, store path) for every store path named in the files under
    `path`, up to SCAN_LIMIT bytes each: programs and configs, not the big
    data files whose second read would cost the build as much again."""
    pattern = re.compile(re.escape(store_dir) + rb"/[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+._?=-]*")
    found = []
    files = [path] if not os.path.isdir(path) else [os.path.join(r, n) for r, _, ns in os.walk(path) for n in sorted(ns)]
    for f in files:
        if os.path.islink(f) or not os.path.isfile(f) or os.path.getsize(f) > SCAN_LIMIT:
            continue
        tail = b""
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                buf = tail + chunk
                if store_dir in buf:
                    for m in pattern.finditer(buf):
                        ref = m.group().decode("ascii", "replace")
                        if (f, ref) not in seen:
                            seen.add((f, ref))
                            found.append((f, ref))
                tail = buf[-300:]
    return found


def build(desc: dict, out: str) -> None:
    """The docker-archive of all of desc's layers, for `fromImage`."""
    with ExitStack() as stack:
        image_writer, layers = plan_layers(desc, stack)
        plan = {
            "format": "docker-archive",
            "ociLayout": False,
            "repoTags": desc["repoTags"],
            "created": desc["created"],
            "architecture": desc["architecture"],
            "os": "linux",
            "config": {},
            "layers": layers,
        }
        image_writer.write(plan, out)


def build_layer(desc: dict, out: str) -> None:
    """desc's one layer as OUT/layer.tar, with OUT/layer.json ({name,
    digest, size}): a layer in the store by itself, for the streamed image
    (stream_image.py), so a rebuild of another layer leaves it alone."""
    if len(desc["layers"]) != 1:
        raise ValueError("--layer takes a description of exactly one layer")
    with ExitStack() as stack:
        image_writer, (layer,) = plan_layers(desc, stack)
        os.mkdir(out)
        digest, size = image_writer.write_layer(layer, desc["created"], os.path.join(out, "layer.tar"))
        with open(os.path.join(out, "layer.json"), "w") as f:
            json.dump({"name": layer["name"], "digest": digest, "size": size}, f, sort_keys=True)


def plan_layers(desc: dict, stack: ExitStack):
    """(the image_writer module, desc's layers as image_writer plan
    layers): rootfs artifacts built and files taken out of images in a
    scratch directory that lives as long as `stack`."""
    if all("source" in e for layer in desc["layers"] for e in layer["entries"]):
        import image_writer  # copies only: the helper beside this one will do

        # (no Materializer, no copy_member: the loop below needs them only
        # for entries that extract or build)
    else:
        script.load_package()
        from urunix.helpers import image_writer
        from urunix.native.artifacts import Materializer
        from urunix.rootfs.flatten import copy_member

    store_dir = desc.get("storeDir", "/nix/store").encode()
    seen: set = set()
    refs: list[tuple[str, str]] = []
    scratch = tempfile.mkdtemp(prefix="urunix-base-", dir=os.environ.get("TMPDIR"))
    stack.callback(shutil.rmtree, scratch, True)
    layers = []
    for i, layer in enumerate(desc["layers"]):
        entries, members, expanded = [], [], False
        for j, e in enumerate(layer["entries"]):
            target = e["target"]
            if "source" in e:
                src = e["source"]
                refs += store_refs(src, store_dir, seen)
                if os.path.isdir(src):  # a store path: see image_writer._walk
                    entries.append({"type": "tree", "path": target, "source": src, "hardlinks": False})
                else:
                    entries.append({"type": "file", "path": target, "source": src})
                continue
            if "extract" in e:
                d = e["extract"]
                m = Materializer(None, scratch, stack, host_hardlinks=False)
                member = m.extract(build_rootfs._extract(d))
                dest = os.path.join(scratch, f"{i}-{j}")
                copy_member(member, dest)
                os.chmod(dest, member.mode & 0o777)
                refs += store_refs(dest, store_dir, seen)
                entries.append({"type": "file", "path": target, "source": dest})
                continue
            r = e["build"]
            for inc in r.get("include", []):
                refs += store_refs(inc["source"], store_dir, seen)
            if r.get("origin", {}).get("kind") == "dir":
                refs += store_refs(r["origin"]["location"], store_dir, seen)
            if r["type"] == "raw":
                init = build_rootfs._extract(r.get("init"))
                members += Materializer(build_rootfs._rootfs(r), scratch, stack, host_hardlinks=False, init=init).tree()
                expanded = True
            else:
                dest = os.path.join(scratch, f"{i}-{j}")
                build_rootfs.build(r, dest)
                entries.append({"type": "file", "path": target, "source": dest})
        if expanded and entries:
            raise SystemExit("base_image.py: a raw rootfs shares its layer with nothing")
        layers.append({"name": layer["name"], "entries": entries, "members": members, "expanded": expanded})
    for f, ref in refs:
        print(
            f"urunix: warning: {f} names {ref}; the image gets this file's bytes, "
            f"not {ref} (nothing from {store_dir.decode()} is copied into the image)",
            file=sys.stderr,
        )
    return image_writer, layers


def main(argv: list[str]) -> int:
    if argv[1:2] == ["--layer"]:
        # LAYER.json may name a derivation's output (the urunc.json layer):
        # then it comes by passAsFile, in $layerPath
        return script.run(argv[:1] + argv[2:], "--layer LAYER.json OUT (or LAYER.json in $layerPath)", build_layer, "layerPath")
    return script.run(argv, "[--layer] BASE.json OUT", build)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
