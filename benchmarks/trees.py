"""Fixed-seed synthetic input trees (same seed, same tree, on any machine).

small     ~1,000 files, 50 MB
mid       ~8,000 files, 238 MB (the size a Nix user reported, issue 17)
large     ~20,000 files, 1 GiB: mostly small files, a few big ones, some
          hard links and symlinks, directories up to 4 deep
bigfile   one 2 GiB file

A tree is made once under WORK/trees/<case> and reused while its stamp
(the parameters and GEN_VERSION) matches. File content is pseudo-random
(incompressible, so nothing downstream can cheat), drawn from one seeded
generator.
"""

from __future__ import annotations

import json
import os
import random
import shutil

GEN_VERSION = 1
MIB = 1 << 20
GIB = 1 << 30

# name: (files, total bytes, hard links, symlinks, big files)
FULL = {
    "small": dict(files=1000, total=50 * 1000 * 1000, hardlinks=10, symlinks=20, big=2),
    "mid": dict(files=8000, total=238 * 1000 * 1000, hardlinks=80, symlinks=160, big=16),
    "large": dict(files=20000, total=GIB, hardlinks=200, symlinks=400, big=40),
    "bigfile": dict(files=1, total=2 * GIB, hardlinks=0, symlinks=0, big=1),
}
QUICK = {
    "small": dict(files=40, total=1 * MIB, hardlinks=2, symlinks=2, big=1),
    "mid": dict(files=80, total=2 * MIB, hardlinks=2, symlinks=2, big=1),
    "large": dict(files=200, total=4 * MIB, hardlinks=4, symlinks=4, big=2),
    "bigfile": dict(files=1, total=8 * MIB, hardlinks=0, symlinks=0, big=1),
}


def _sizes(rng: random.Random, files: int, total: int, big: int) -> list[int]:
    """`files` sizes summing to `total`: `big` large files share ~80% of the
    bytes (only one file when files == 1), the rest are log-uniform small
    files (0 B .. 256 KiB) scaled to the remaining ~20%."""
    if files == 1:
        return [total]
    small_n = files - big
    raw = [int(2 ** rng.uniform(0, 18)) - 1 for _ in range(small_n)]
    small_budget = total // 5
    scale = small_budget / max(1, sum(raw))
    smalls = [int(s * scale) for s in raw]
    left = total - sum(smalls)
    bigs = [left // big] * big
    bigs[-1] += left - sum(bigs)
    sizes = smalls + bigs
    rng.shuffle(sizes)
    return sizes


def _fill(f, rng: random.Random, size: int) -> None:
    left = size
    while left:
        n = min(left, 8 * MIB)
        f.write(rng.randbytes(n))
        left -= n


def make(root: str, params: dict, seed: int = 20240501) -> dict:
    """Create the tree at `root` (replacing what is there); return facts."""
    if os.path.lexists(root):
        shutil.rmtree(root)
    os.makedirs(root)
    rng = random.Random(f"{seed}:{json.dumps(params, sort_keys=True)}")
    n = params["files"]
    sizes = _sizes(rng, n, params["total"], params["big"])
    ndirs = max(1, n // 20)
    dirs = [""]
    for i in range(1, ndirs):
        parent = rng.choice(dirs) if len(dirs) < 4 or rng.random() < 0.7 else ""
        depth = parent.count("/") + 1 if parent else 0
        if depth >= 4:
            parent = ""
        d = f"{parent}/d{i:04d}" if parent else f"d{i:04d}"
        dirs.append(d)
        os.makedirs(os.path.join(root, d), exist_ok=True)
    paths = []
    for i, size in enumerate(sizes):
        d = rng.choice(dirs)
        p = os.path.join(d, f"f{i:05d}.bin") if d else f"f{i:05d}.bin"
        with open(os.path.join(root, p), "wb") as f:
            _fill(f, rng, size)
        if rng.random() < 0.1:
            os.chmod(os.path.join(root, p), 0o755)
        paths.append(p)
    for i in range(params["hardlinks"]):
        src = rng.choice(paths)
        d = rng.choice(dirs)
        os.link(os.path.join(root, src), os.path.join(root, d, f"hl{i:04d}"))
    for i in range(params["symlinks"]):
        target = rng.choice(paths)
        d = rng.choice(dirs)
        rel = os.path.relpath(os.path.join(root, target), os.path.join(root, d))
        os.symlink(rel, os.path.join(root, d, f"sl{i:04d}"))
    return facts(root)


def facts(root: str) -> dict:
    files = links = dirs = 0
    nbytes = 0
    seen = set()
    for dirpath, dirnames, filenames in os.walk(root):
        dirs += len(dirnames)
        for name in filenames:
            st = os.lstat(os.path.join(dirpath, name))
            if os.path.islink(os.path.join(dirpath, name)):
                links += 1
                continue
            files += 1
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                nbytes += st.st_size
    return {"files": files, "symlinks": links, "dirs": dirs, "bytes": nbytes, "hardlinked_names": files - len(seen)}


def ensure(work: str, name: str, params: dict) -> tuple[str, dict]:
    """The tree for case `name` under work/trees, made if missing or stale."""
    root = os.path.join(work, "trees", name)
    stamp_path = root + ".stamp.json"
    want = {"version": GEN_VERSION, "params": params}
    try:
        with open(stamp_path) as f:
            stamp = json.load(f)
        if stamp.get("want") == want and os.path.isdir(root):
            return root, stamp["facts"]
    except (OSError, ValueError):
        pass
    if os.path.exists(stamp_path):
        os.unlink(stamp_path)
    got = make(root, params)
    with open(stamp_path, "w") as f:
        json.dump({"want": want, "facts": got}, f)
    return root, got
