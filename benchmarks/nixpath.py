"""The Nix path at scale: `nix-build default.nix` of a block rootfs from a
directory (`rootfs = { type = "block"; from = "TREE"; }`), against
tests/nix/testpkgs.nix, whose dockerTools.buildImage does what nixpkgs' does
(unpack fromImage, add a layer, re-pack, gzip unless `compressor`), next to
`urunix build --backend native` of the same spec without the cache.

Cases, interleaved like the others (warm-up, then --runs rounds):
  nix_block           cold: every store path the previous run made is deleted
                      first, the tree's own import included
  nix_block_rebuild   after an untimed cold build of the same spec, the spec
                      with only `cmdline` changed
  nix_stream          cold, `nix-build default.nix -A stream` (one derivation
                      per layer and a script that streams the archive; the
                      image is the layers' bytes, the same as nix_block's)
  nix_stream_rebuild  -A stream after an untimed cold build, cmdline changed
  nix_block_store, nix_stream_store (and _rebuild)
                      the same with the tree already in the store (`from` a
                      store path, as a fetched or built tree is): no import
                      at evaluation
  native_block        `urunix build --backend native`, URUNIX_NO_CACHE=1

Besides wall time and peak RSS (benchmarks/probe.py), each Nix run reports
its store growth: the bytes of the store paths it added, with the tree's
import (`source`) apart from what the build made (`built`), and the image
(the result's size; for a stream, the size of the archive it writes)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess

STORE = "/nix/store"


def store_paths() -> set[str]:
    try:
        return {os.path.join(STORE, n) for n in os.listdir(STORE)}
    except OSError:
        return set()


def ours(link: str, new: set[str]) -> set[str]:
    """The new store paths this build made or imported: the new ones in the
    closure of the result's derivation with its outputs (other Nix users of
    a shared store add paths meanwhile)."""
    drv = subprocess.run(["nix-store", "-q", "--deriver", os.path.realpath(link)], capture_output=True, text=True).stdout.strip()
    if not drv or not os.path.exists(drv):
        return {p for p in new if not p.endswith(".lock")}
    closure = subprocess.run(["nix-store", "-qR", "--include-outputs", drv], capture_output=True, text=True).stdout.split()
    return new & set(closure)


def tree_bytes(path: str) -> int:
    """Apparent bytes of a file or a tree (symlinks as themselves)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return 0
    if not os.path.isdir(path) or os.path.islink(path):
        return st.st_size
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.lstat(os.path.join(root, n)).st_size for n in files)
    return total


def delete(paths: set[str]) -> None:
    """Delete store paths we made whose GC roots are gone. nix-store refuses
    the whole set when one is alive (still used elsewhere), so one at a
    time, referrers first, until nothing more goes."""
    left = {p for p in paths if os.path.lexists(p)}
    while left:
        for p in sorted(left):
            subprocess.run(["nix-store", "--delete", p], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        gone = {p for p in left if not os.path.lexists(p)}
        if not gone:
            return
        left -= gone


def nix_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${") + '"'


def write_args(path: str, name: str, tag: str, kernel: str, tree: str, cmdline: str) -> str:
    with open(path, "w") as f:
        f.write(f"""{{
  name = {nix_string(name)}; tag = {nix_string(tag)};
  files = {{ {nix_string(kernel)} = "/kernel"; }};
  rootfs = {{ type = "block"; from = {nix_string(tree)}; }};
  annotations = {{ unikernelType = "linux"; hypervisor = "qemu"; binary = "/kernel"; cmdline = {nix_string(cmdline)}; }};
}}
""")
    return path


def write_yaml(path: str, name: str, tag: str, kernel: str, tree: str, cmdline: str) -> str:
    import json

    with open(path, "w") as f:
        f.write(
            f"name: {json.dumps(name)}\ntag: {json.dumps(tag)}\nfiles:\n  {json.dumps(kernel)}: /kernel\n"
            f"rootfs:\n  type: block\n  from: {json.dumps(tree)}\n"
            f"annotations:\n  unikernelType: linux\n  hypervisor: qemu\n  binary: /kernel\n"
            f"  cmdline: {json.dumps(cmdline)}\n"
        )
    return path


def run(bench, name: str, tree: str, kernel: str, spec_dir: str, env: dict, *, root: str, probe, settle, summarize) -> dict:
    """Measure the three cases for one tree; return {case: summary}."""
    # URUNIX_BENCH_PKGS: another pkgs (e.g. nixpkgs' own dockerTools, by hand)
    pkgs = os.environ.get("URUNIX_BENCH_PKGS") or f"import {os.path.join(root, 'tests', 'nix', 'testpkgs.nix')} {{ }}"
    nenv = {
        "NIX_TEST_PYTHON": os.environ.get("NIX_TEST_PYTHON") or "/usr/bin/python3",
        "NIX_CONFIG": os.environ.get("NIX_CONFIG") or "build-users-group =\nsandbox = false\nsubstituters =",
    }
    link = os.path.join(bench.out, "nix-result")

    def spec_pair(kind: str, source: str) -> tuple[str, str]:
        """The cold spec and the cmdline-only change of it, for a tree at `source`."""
        a, b = (
            write_args(os.path.join(spec_dir, f"{name}-nix{kind}-{v}.nix"), f"bench/{name}-nix", "a", kernel, source, cmdline)
            for v, cmdline in (("a", "/init"), ("b", "/init console=ttyS0 quiet"))
        )
        return a, b

    a, b = spec_pair("", tree)
    # A cold run imports the tree: an import left in the store by an earlier
    # run (this harness's store paths are deleted only when it made them) is
    # deleted first where no root holds it (its path computed read-only).
    old_import = subprocess.run(
        ["nix-instantiate", "--eval", "--json", "--expr", f"builtins.path {{ path = {nix_string(os.path.abspath(tree))}; }}"],
        capture_output=True,
        text=True,
        env={**os.environ, **nenv},
    )
    if old_import.returncode == 0:
        # with what refers to it (earlier runs' derivations, unless a root holds them)
        held = subprocess.run(
            ["nix-store", "-q", "--referrers-closure", json.loads(old_import.stdout)],
            capture_output=True,
            text=True,
            env={**os.environ, **nenv},
        ).stdout.split()
        if held:
            subprocess.run(["nix-store", "--delete", *held], capture_output=True, env={**os.environ, **nenv})
    # The same tree already in the store (as a fetched or built tree would
    # be): added once, untimed, before the runs, so no run deletes it; under
    # its own name, so the directory cases still import (and count) theirs.
    stree = subprocess.run(
        [
            "nix-instantiate",
            "--read-write-mode",
            "--eval",
            "--json",
            "--expr",
            f'builtins.path {{ path = {nix_string(os.path.abspath(tree))}; name = "bench-tree-in-store"; }}',
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **nenv},
        check=True,
    )
    stree_path = json.loads(stree.stdout)
    a_store, b_store = spec_pair("-store", stree_path)
    y = write_yaml(os.path.join(spec_dir, f"{name}-block-native.yaml"), f"bench/{name}-nix", "a", kernel, tree, "/init")
    native_out = os.path.join(bench.out, "nix-native.tar")

    def nix_build(spec: str, *attr: str) -> list[str]:
        return [
            "nix-build",
            os.path.join(root, "default.nix"),
            *attr,
            "--arg",
            "args",
            spec,
            "--arg",
            "pkgs",
            pkgs,
            "--option",
            "substituters",
            "",
            "-o",
            link,
            "--quiet",
            "--no-build-output",
        ]

    def streamed_bytes() -> int:
        """The size of the archive the stream script writes (counted, not stored)."""
        with subprocess.Popen([os.path.realpath(link)], stdout=subprocess.PIPE) as p:
            n = sum(len(c) for c in iter(lambda: p.stdout.read(1 << 20), b""))
        if p.returncode:
            raise RuntimeError(f"the stream script failed ({p.returncode})")
        return n

    def measured(spec: str, *attr: str) -> dict:
        settle()
        s0 = store_paths()
        r = probe(bench.work, nix_build(spec, *attr), False, nenv)
        new = ours(link, store_paths() - s0)
        made.update(new & (store_paths() - before_all))
        src = source_paths(new)
        r.update(
            image_bytes=streamed_bytes() if attr else os.path.getsize(os.path.realpath(link)),
            store_source=sum(tree_bytes(p) for p in src),
            store_built=sum(tree_bytes(p) for p in new - src),
        )
        return r

    before_all = store_paths()
    made: set[str] = set()  # what our builds added (the store may be shared: delete nothing else)

    def clean() -> None:
        for p in (link, native_out):
            if os.path.lexists(p):
                os.unlink(p)
        delete({p for p in made if "-host-" not in p})
        made.clear()

    def source_paths(new: set[str]) -> set[str]:
        # the tree's import: builtins.path names it after the directory
        base = os.path.basename(tree.rstrip("/"))
        return {p for p in new if p.endswith("-" + base)}

    got: dict[str, list] = {
        "nix_block": [],
        "nix_block_rebuild": [],
        "nix_stream": [],
        "nix_stream_rebuild": [],
        "nix_block_store": [],
        "nix_block_store_rebuild": [],
        "nix_stream_store": [],
        "nix_stream_store_rebuild": [],
        "native_block": [],
    }
    variants = (
        ("nix_block", (), a, b),
        ("nix_stream", ("-A", "stream"), a, b),
        ("nix_block_store", (), a_store, b_store),
        ("nix_stream_store", ("-A", "stream"), a_store, b_store),
    )
    for i in range(-bench.args.warmup, bench.args.runs):
        for case, attr, cold_spec, rebuild_spec in variants:
            # cold
            clean()
            r = measured(cold_spec, *attr)
            if i >= 0:
                got[case].append(r)
            # rebuild after a cmdline-only change (the cold build above stays)
            r = measured(rebuild_spec, *attr)
            if i >= 0:
                got[case + "_rebuild"].append(r)
        clean()
        # native, no cache
        settle()
        r = probe(bench.work, ["build", "--backend", "native", y, "-o", native_out], True, {**env, "URUNIX_NO_CACHE": "1"})
        r["image_bytes"] = os.path.getsize(native_out)
        if i >= 0:
            got["native_block"].append(r)
        clean()
    out = {}
    for case, runs in got.items():
        s = summarize(runs)
        for k in ("image_bytes", "store_source", "store_built"):
            if runs and k in runs[0]:
                s[k] = int(statistics.median(r[k] for r in runs))
        out[case] = s
    return out


def ratios(cases: dict) -> dict:
    """The issue-17 goals as ratios, for the default result (nix_*) and the
    stream (nix_stream_*); a path whose cases are missing is left out."""
    out = {}
    nat = cases.get("native_block")
    for prefix, case in (
        ("nix", "nix_block"),
        ("nix_stream", "nix_stream"),
        ("nix_store", "nix_block_store"),
        ("nix_stream_store", "nix_stream_store"),
    ):
        cold, rb = cases.get(case), cases.get(case + "_rebuild")
        if not nat or not cold or not rb or "wall_median" not in cold or "wall_median" not in nat:
            continue
        img = cold["image_bytes"] or 1
        out.update(
            {
                f"{prefix}_cold_vs_native_cold": cold["wall_median"] / nat["wall_median"],  # goal <= 3
                f"{prefix}_store_built_vs_image": cold["store_built"] / img,  # goal <= 2
                f"{prefix}_store_with_source_vs_image": (cold["store_built"] + cold["store_source"]) / img,
                f"{prefix}_peak_rss_mib": cold["rss_max_kib"] / 1024,  # goal < 200
                f"{prefix}_rebuild_vs_cold": rb["wall_median"] / cold["wall_median"],  # goal <= 0.2
                f"{prefix}_rebuild_store_vs_image": rb["store_built"] / img,  # goal <= 0.05
            }
        )
    return out
