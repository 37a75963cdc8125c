"""The streamed image of the Nix path (`nix-build -A stream`): a small
script that writes the docker-archive to stdout, for `./result | docker load`.

stdlib only. Why: a self-contained archive in the store (the default
`result`) is a new store path holding every layer again whenever anything
changes, a cmdline included. Here each layer lies in the store by itself
(OUT/layer.tar and OUT/layer.json, written by `base_image.py --layer`), and
the archive is only ever assembled on the way to `docker load`, by the
native writer (image_writer.write) from those ready layers: a cmdline
change rebuilds the urunc.json layer and this script, nothing big.

    python3 stream_image.py --make DESC.json OUT   write the script OUT
                                                   (DESC.json `-`: in $descPath)
    OUT                                             stream the image

DESC.json:
  {"python": "/nix/store/...-python3/bin/python3",
   "helpers": "/nix/store/...-urunix-stream-helpers",
   "repoTags": ["name:tag"], "created": "...", "architecture": "amd64",
   "config": {"Cmd": [...], "Labels": {...}, ...},
   "layers": ["/nix/store/...-layer-kernel", ...]}
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import image_writer  # noqa: E402


def make(desc: dict, out: str) -> None:
    """The script: the description travels as a Python string literal
    (repr of its JSON), so every user string reaches the image byte for
    byte; the store paths in it make the layers the script's references."""
    image = {k: desc[k] for k in ("repoTags", "created", "architecture", "config", "layers")}
    text = (
        f"#!{desc['python']}\n"
        f"# urunix: streams the image {', '.join(desc['repoTags'])} as a docker-archive.\n"
        "#   ./result | docker load\n"
        "import sys\n"
        f"sys.path.insert(0, {desc['helpers']!r})\n"
        "import stream_image\n"
        f"sys.exit(stream_image.stream({json.dumps(image, sort_keys=True, ensure_ascii=False)!r}))\n"
    )
    with open(out, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write(text)
    os.chmod(out, 0o555)


def ready_layers(dirs: list[str]) -> list:
    layers = []
    for d in dirs:
        with open(os.path.join(d, "layer.json"), "rb") as f:
            info = json.load(f)
        layers.append(image_writer.ready_layer(info["name"], os.path.join(d, "layer.tar"), 0, info["size"], info["digest"]))
    return layers


def stream(desc_json: str, out=None) -> int:
    """Write the docker-archive to `out` (stdout): the same bytes
    image_writer.write gives for these layers in a file."""
    desc = json.loads(desc_json)
    out = out if out is not None else sys.stdout.buffer
    if out is sys.stdout.buffer and os.isatty(out.fileno()):
        print("urunix: this writes a docker-archive to stdout: pipe it, e.g. `./result | docker load`", file=sys.stderr)
        return 2
    plan = {
        "format": "docker-archive",
        "repoTags": desc["repoTags"],
        "created": desc["created"],
        "architecture": desc["architecture"],
        "os": "linux",
        "config": desc["config"],
        "layers": [],
    }
    try:
        image_writer.write(plan, out, layers=ready_layers(desc["layers"]))
        out.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())  # no second error when Python flushes stdout at exit
        print("urunix: stdout was closed before the whole image was written (did the reading command fail?)", file=sys.stderr)
        return 1
    except (image_writer.PlanError, OSError) as e:
        print(f"urunix: {e}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[1] != "--make":
        print("usage: stream_image.py --make DESC.json OUT", file=sys.stderr)
        return 2
    with open(os.environ["descPath"] if argv[2] == "-" else argv[2], "rb") as f:  # "-": passAsFile
        make(json.load(f), argv[3])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
