"""The Python validator, inside the Nix build: the metadata derivation runs it
before it writes /urunc.json, so `nix-build` judges a spec with the very code
(validate.py, contract.json, the loaders) that `urunix validate` runs, and
fails with the same messages.

stdlib only. Like build_rootfs.py it loads the urunix package from the
directory above its own (a store path; script.py).

    python3 nix_check.py CHECK.json OUT_DIR      (or CHECK.json in $checkPath)

CHECK.json, written by nix/image.nix with builtins.toJSON (never a shell):
  {"specName": "args.nix", "form": "args" | "normalized",
   "specFile": "/host/dir/args.nix" | null,   the spec's host path (messages)
   "src": "/host/dir" | null,                 where its sources are
   "specText": "/nix/store/...-args.nix" | null,  its text (line numbers)
   "spec": {...},             the value Nix evaluated; a path literal is
                              {"__urunixNixPath": "/host/abs"} as argsnix.py reads it
   "sources": {"/host/abs": "/nix/store/..." | "directory" | null},  what Nix
                              copied (a directory no layer needs is not)
   "nix": {...},              what Nix computed (see `summary`)
   "limits": ["..."]}         what the Nix backend cannot build (yet)

The sources are laid out again under a private directory at their host
paths, so relative paths, directories and "a file inside a file" resolve as
on the host; that prefix is taken out of every message. Then:
  1. the spec is read like `urunix validate` reads it; problems -> exit 2;
  2. what the Nix backend cannot build is refused -> exit 2;
  3. Python's own plan is compared with Nix's; any difference -> exit 3
     (a bug: the two sides drifted apart);
  4. OUT_DIR/urunc.json and OUT_DIR/labels.json are written.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import script  # noqa: E402


def lay_out(root: str, sources: dict[str, str | None]) -> None:
    """Symlink each store copy at `root` + its host path. Shorter paths
    first: a source inside a copied directory is already there."""
    for host, store in sorted(sources.items()):
        if not store or not host.startswith("/"):
            continue
        at = root + host
        parent = os.path.dirname(at)
        if any(os.path.islink(p) for p in _ancestors(parent, root)):
            continue
        os.makedirs(parent, exist_ok=True)
        if store == "directory":  # a directory no layer uses: its kind is all that counts
            os.makedirs(at, exist_ok=True)
        elif not os.path.lexists(at):
            os.symlink(store, at)


def _ancestors(path: str, root: str):
    while len(path) > len(root):
        yield path
        path = os.path.dirname(path)


def _under(root: str, value: Any) -> Any:
    """Path literals ({"__urunixNixPath": ...}) as NixPath under `root`."""
    from urunix.loaders.nixdata import NixPath

    if isinstance(value, dict):
        if set(value) == {"__urunixNixPath"}:
            return NixPath(root + value["__urunixNixPath"])
        return {k: _under(root, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_under(root, v) for v in value]
    return value


def from_normalized(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The normalized spec `urunix generate` writes (files and include as
    lists of {source; target}, env as KEY=VALUE, plus created and workdir)
    in the schema the loaders read; and the problems of the two extra fields."""
    data = dict(data)
    problems = []
    created = data.pop("created", None)
    if created is not None and (not isinstance(created, str) or created == "now"):
        problems.append(
            'created: must be a fixed RFC 3339 time such as "1970-01-01T00:00:01Z"; "now" makes builds irreproducible'
        )
    workdir = data.pop("workdir", None)
    if workdir is not None and not (isinstance(workdir, str) and workdir.startswith("/")):
        problems.append(f"workdir: must be an absolute path inside the guest (got {json.dumps(workdir)})")

    def pairs(v: Any) -> Any:
        if isinstance(v, list) and all(isinstance(x, dict) and set(x) == {"source", "target"} for x in v):
            return {x["source"]: x["target"] for x in v}
        return v

    data["files"] = pairs(data.get("files"))
    if data["files"] is None:
        del data["files"]
    rootfs = data.get("rootfs")
    if isinstance(rootfs, dict) and "include" in rootfs:
        data["rootfs"] = {**rootfs, "include": pairs(rootfs["include"])}
    env = data.get("env")
    if isinstance(env, list) and all(isinstance(e, str) for e in env):
        for e in env:
            if "=" not in e:
                problems.append(f"env: {json.dumps(e)} is not KEY=VALUE")
        data["env"] = dict(e.split("=", 1) for e in env if "=" in e)
    for key in ("entrypoint", "cmd", "labels", "annotations"):
        if key in data and data[key] is None:
            del data[key]
    return data, problems


def summary(image) -> dict[str, Any]:
    """What the image is made of, as Nix computes it too (nix/image.nix
    `plan`): config, annotations and where each artifact lands."""
    from urunix.helpers import urunc_json

    def copies(entries) -> list[list[str]]:
        return sorted([f.target, f.source] for f in entries)

    def source(x) -> Any:
        if x is None:
            return None
        inner = x.inner if x.origin.kind == "image" else None  # a plain file has no inside
        return {"kind": x.origin.kind, "inner": inner, "target": x.target}

    r = image.rootfs
    rootfs = None
    if r is not None:
        rootfs = {"type": r.type, "kind": r.origin.kind, "target": r.target, "include": copies(r.include)}
        if r.type == "block":
            rootfs.update(size=r.size, fsType=r.fs_type)
        if r.type == "initrd":
            rootfs.update(compression=r.compression, hardlinks=r.hardlinks)
    ann = image.annotations
    return {
        "name": image.name,
        "tag": image.tag,
        "architecture": image.architecture,
        "annotations": dict(sorted(ann.items())),
        "config": {
            "Cmd": list(image.cmd),
            "Entrypoint": None if image.entrypoint is None else list(image.entrypoint),
            "Env": list(image.env),
            "Labels": dict(sorted({**image.labels, **urunc_json.labels(ann)}.items())),
        },
        "files": copies(image.files),
        "rootfs": rootfs,
        "kernel": source(image.kernel),
        "init": source(image.init),
    }


def drift(nix: dict[str, Any], py: dict[str, Any]) -> list[str]:
    """One line per top-level part where the two plans differ."""
    out = []
    for key in py:
        if nix.get(key) != py[key]:
            out.append(
                f"  {key}: Nix computed {json.dumps(nix.get(key), sort_keys=True)}, "
                f"the validator {json.dumps(py[key], sort_keys=True)}"
            )
    return out


def check(doc: dict[str, Any], root: str) -> tuple[int, str, Any]:
    """(exit code, text for stderr, annotations or None)."""
    script.load_package()
    from urunix.errors import SpecError
    from urunix.loaders import nixdata
    from urunix.loaders._common import build_spec, read_text
    from urunix.validate import validate

    lay_out(root, doc.get("sources") or {})
    name = doc.get("specName") or "spec"
    host_file = doc.get("specFile") or (doc.get("src") or "/urunix-spec") + "/" + os.path.basename(name)
    file = Path(root + host_file)
    file.parent.mkdir(parents=True, exist_ok=True)
    os.chdir(file.parent)  # messages name the file as `urunix validate` run next to it does
    lines: dict[str, int] = {}
    if doc.get("specText"):
        if not os.path.lexists(file):  # else it is inside a copied source (`files."./"`)
            with open(doc["specText"], "rb") as src, open(file, "wb") as dst:
                dst.write(src.read())
        try:
            text = read_text(file)  # not UTF-8: refused as `urunix validate` refuses it
        except SpecError as e:
            return 2, e.render(), None
        try:
            _, lines = nixdata.read(text, file=file)
        except (SpecError, RecursionError):
            lines = {}  # full Nix: no line numbers (as `urunix validate`)
    data = _under(root, doc.get("spec"))
    extra: list[str] = []
    if doc.get("form") == "normalized" and isinstance(data, dict):
        data, extra = from_normalized(data)
    out: list[str] = []
    try:
        spec = build_spec(data, lines, file, "args.nix")
        for f in spec.files + (spec.rootfs.include if spec.rootfs else []):
            # where Nix found it: "/abs" under the copies too, ".." taken
            # lexically (a parent may be a copied directory, a store path)
            f.path = Path(os.path.normpath(root + f.source if f.source.startswith("/") else f.path))
        image, diag = validate(spec, read_images="none")  # as the Nix library: it cannot read an image
    except SpecError as e:
        out.append(e.render())
        image = None
    else:
        out.extend(w.render("warning") for w in diag.warnings)
    out.extend(f"error: {name}: {p}" for p in extra)
    if image is not None and not extra:
        extra = doc.get("limits") or []
        out.extend(f"error: {name}: {p}" for p in extra)
    text = "\n".join(out)
    if image is None or extra:
        return 2, text, None
    nix = doc.get("nix")
    if nix is not None:
        lines_ = drift(nix, summary(image))
        if lines_:
            return (
                3,
                "\n".join(
                    out
                    + [
                        f"error: {name}: the Nix library and the Python validator planned this image differently "
                        "(a bug in urunix; please report it with the spec):"
                    ]
                    + lines_
                ),
                None,
            )
    return 0, text, image.annotations


def main(argv: list[str]) -> int:
    return script.run(argv, "CHECK.json OUT_DIR (or CHECK.json in $checkPath)", judge, "checkPath")


def judge(doc: dict[str, Any], out: str) -> int:
    """check(), its text on stderr, and the metadata in `out` if it passed."""
    with tempfile.TemporaryDirectory(prefix="urunix-host-") as tmp:
        root = os.path.realpath(tmp)
        code, text, annotations = check(doc, root)
        os.chdir("/")
    if text:
        print(text.replace(root, ""), file=sys.stderr)
    if annotations is None:
        return code
    from urunix.helpers import urunc_json

    urunc_json.write(out, annotations)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
