"""The image step of tests/nix/testpkgs.nix: dockerTools.buildImage's stand-in.

Builder of a derivation with outputs `out` (the docker-archive) and `plan`
(plan.json, so an image built `fromImage` this one can add a layer on top).
Each copyToRoot path becomes one layer of "tree" entries; extraCommands is
not run (the image writer already gives files modes 0644/0755).
"""

import json
import os
import subprocess
import sys


def main() -> int:
    writer = sys.argv[1]
    with open(os.environ["imageArgsPath"], encoding="utf-8") as f:
        args = json.load(f)
    layers = []
    if os.environ.get("fromImagePlan"):
        with open(os.path.join(os.environ["fromImagePlan"], "plan.json"), encoding="utf-8") as f:
            layers = json.load(f)["layers"]
    for root in args.get("copyToRoot", []):
        # /nix/store/<hash>-<image>-<layer> -> <layer>
        layers.append({"name": root.rsplit("-", 1)[-1],
                       "entries": [{"type": "tree", "path": "", "source": root}]})
    config = args.get("config") or {}
    plan = {
        "format": "docker-archive",
        "repoTags": [f"{args['name']}:{args.get('tag') or 'latest'}"],
        "created": args.get("created", "1970-01-01T00:00:01Z"),
        "architecture": args.get("architecture", "amd64"),
        "os": "linux",
        "config": {k: config.get(k) for k in ("Cmd", "Entrypoint", "Env", "WorkingDir", "Labels")},
        "manifestAnnotations": {},
        "layers": layers,
    }
    os.makedirs(os.environ["plan"])
    path = os.path.join(os.environ["plan"], "plan.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(plan, f, indent=1, sort_keys=True)
    return subprocess.call([os.environ["python"], writer, path, os.environ["out"]])


if __name__ == "__main__":
    sys.exit(main())
