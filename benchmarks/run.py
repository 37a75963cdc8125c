"""The benchmark run: trees, cases, baselines, report. See benchmarks/README.md."""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import time

from . import nixpath, trees

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GENERATOR = os.path.join(ROOT, "generator")
PY = sys.executable
TYPES = ("raw", "initrd", "block")
BASELINE = {"raw": "tar", "initrd": "cpio_tar", "block": "mke2fs_tar"}
FORMATS = {"docker-archive": "", "oci-archive": "_oci_archive", "oci": "_oci"}


# ------------------------------------------------------------------ helpers


def sh(script: str) -> list[str]:
    return ["sh", "-c", script]


def q(path: str) -> str:
    return shlex.quote(path)


def nix_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${") + '"'


def write_spec(
    path: str, name: str, tag: str, kernel: str, rtype: str | None, tree: str, cmdline: str, tree_as_file: bool = False
) -> str:
    """An args.nix (path ending in .nix) or the same spec in YAML. The
    native builds use YAML: with Nix installed an args.nix is evaluated by
    nix-instantiate, a cost of the spec language, not of the build."""
    if path.endswith(".yaml"):
        text = (
            f"name: {json.dumps(name)}\ntag: {json.dumps(tag)}\nfiles:\n  {json.dumps(kernel)}: /kernel\n"
            + (f"  {json.dumps(tree)}: /rootfs\n" if tree_as_file else "")
            + (f"rootfs:\n  type: {rtype}\n  from: {json.dumps(tree)}\n" if rtype and not tree_as_file else "")
            + "annotations:\n  unikernelType: linux\n  hypervisor: qemu\n  binary: /kernel\n"
            + f"  cmdline: {json.dumps(cmdline)}\n"
        )
        with open(path, "w") as f:
            f.write(text)
        return path
    files = f'"{kernel}" = "/kernel";'
    rootfs = ""
    if tree_as_file:  # the Nix library does not build rootfs trees yet: copy the tree as plain files
        files += f' "{tree}" = "/rootfs";'
    elif rtype:
        rootfs = f'rootfs = {{ type = "{rtype}"; from = {tree}; }};'
    text = f"""{{
  name = "{name}"; tag = "{tag}";
  files = {{ {files} }};
  {rootfs}
  annotations = {{ unikernelType = "linux"; hypervisor = "qemu"; binary = "/kernel"; cmdline = {nix_string(cmdline)}; }};
}}
"""
    with open(path, "w") as f:
        f.write(text)
    return path


def rm(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.unlink(path)


def probe(work: str, cmd: list[str], urunix: bool = False, env: dict | None = None) -> dict:
    report = os.path.join(work, "probe.json")
    rm(report)
    argv = [PY, "-m", "benchmarks.probe", report, *(["--urunix"] if urunix else []), "--", *cmd]
    r = subprocess.run(
        argv, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        with open(report) as f:
            out = json.load(f)
    except (OSError, ValueError):
        out = {"rc": r.returncode}
    if r.returncode != 0 or out.get("rc"):
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr[-3000:]}")
    return out


def settle() -> None:
    """Between runs, untimed: push the previous run's dirty pages to disk so
    that one run's writeback does not slow the next."""
    os.sync()


def summarize(runs: list[dict]) -> dict:
    walls = [r["wall"] for r in runs]
    io_keys = sorted({k for r in runs for k in r.get("io", {})})
    return {
        "runs": len(runs),
        "wall_median": statistics.median(walls),
        "wall_min": min(walls),
        "wall_max": max(walls),
        "rss_max_kib": max(r.get("rss_kib", 0) for r in runs),
        "io_median": {k: int(statistics.median(r["io"].get(k, 0) for r in runs)) for k in io_keys},
        "walls": walls,
        # urunix only: the time inside the native builder, without the CLI's
        # imports and spec loading
        "build_median": (
            statistics.median(r["build_wall"] for r in runs)
            if runs and all(r.get("build_wall") is not None for r in runs)
            else None
        ),
    }


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = os.path.abspath(args.work)
        self.out = os.path.join(self.work, "out")
        self.cache = os.path.join(self.work, "cache")
        self.results: dict = {}
        self.notes: list[str] = []

    def log(self, msg: str) -> None:
        if not self.args.quiet:
            print(msg, file=sys.stderr, flush=True)

    def measure(self, group: str, cases: list[dict]) -> None:
        """Measure `cases` interleaved: one warm-up round, then `runs`
        rounds, each running every case once, so that a slow spell of this
        shared machine falls on baselines and urunix alike instead of on
        whichever case ran then. A case: {"name", "cmd": i -> argv,
        "urunix": bool, "env": dict, "before": i -> None (untimed: clear a
        cache, prime it), "outputs": [paths removed after each run]}."""
        got: dict[str, list] = {c["name"]: [] for c in cases}
        for i in range(-self.args.warmup, self.args.runs):
            for c in cases:
                for p in c.get("outputs", ()):
                    rm(p)
                if c.get("before"):
                    c["before"](i)
                settle()
                r = probe(self.work, c["cmd"](i), c.get("urunix", False), c.get("env"))
                for p in c.get("outputs", ()):
                    rm(p)
                if i >= 0:
                    got[c["name"]].append(r)
        for c in cases:
            s = summarize(got[c["name"]])
            self.results.setdefault(group, {})[c["name"]] = s
            self.log(f"  {group:8} {c['name']:28} median {s['wall_median']:8.3f} s  rss {s['rss_max_kib'] / 1024:7.1f} MiB")

    # ------------------------------------------------------------ cases
    def tree_cases(self, name: str, root: str, facts: dict, kernel: str) -> None:
        out, spec_dir = self.out, os.path.join(self.work, "specs")
        os.makedirs(out, exist_ok=True)
        os.makedirs(spec_dir, exist_ok=True)
        env = {"XDG_CACHE_HOME": self.cache, "CI": "1"}
        nocache = {**env, "URUNIX_NO_CACHE": "1"}
        o = lambda n: os.path.join(out, n)  # noqa: E731
        total = facts["bytes"]
        nbytes = self.ext_size(root)
        cases = [
            # the copy limit: read every input once, write as many bytes once
            {
                "name": "copy_limit",
                "outputs": [o("copy.bin")],
                "cmd": lambda i: sh(
                    f"find {q(root)} -type f -print0 | xargs -0 cat > /dev/null && "
                    f"dd if=/dev/zero of={q(o('copy.bin'))} bs=1M count={total} iflag=count_bytes status=none"
                ),
            },
            # baselines
            {
                "name": "tar",
                "outputs": [o("tree.tar")],
                "cmd": lambda i: ["tar", "--sort=name", "-cf", o("tree.tar"), "-C", root, "."],
            },
            {
                "name": "cpio_tar",
                "outputs": [o("tree.cpio"), o("cpio.tar")],
                "cmd": lambda i: sh(
                    f"cd {q(root)} && find . | LC_ALL=C sort | cpio -o -H newc --reproducible --quiet > {q(o('tree.cpio'))} "
                    f"&& tar -cf {q(o('cpio.tar'))} -C {q(out)} tree.cpio"
                ),
            },
            {
                "name": "mke2fs_tar",
                "outputs": [o("tree.img"), o("ext.tar")],
                "cmd": lambda i: sh(
                    f"mke2fs -q -F -t ext2 -b 4096 -d {q(root)} {q(o('tree.img'))} {nbytes // 4096} "
                    f"&& tar -cf {q(o('ext.tar'))} -C {q(out)} tree.img"
                ),
            },
        ]
        # urunix, per rootfs type: cold (cache emptied first), a rebuild
        # after a cmdline-only change (the cache primed, untimed, by a cold
        # build of the first spec), and cold without the cache
        for rtype in self.args.types.split(","):
            a = write_spec(
                os.path.join(spec_dir, f"{name}-{rtype}-a.yaml"), f"bench/{name}-{rtype}", "a", kernel, rtype, root, "/init"
            )
            b = write_spec(
                os.path.join(spec_dir, f"{name}-{rtype}-b.yaml"),
                f"bench/{name}-{rtype}",
                "a",
                kernel,
                rtype,
                root,
                "/init console=ttyS0 quiet",
            )
            img = o(f"{rtype}.tar")
            build = lambda spec, dst, *more: lambda i: ["build", "--backend", "native", spec, "-o", dst, *more]  # noqa: E731
            cases += [
                {
                    "name": f"urunix_{rtype}",
                    "cmd": build(a, img),
                    "urunix": True,
                    "env": env,
                    "outputs": [img],
                    "before": lambda i: rm(self.cache),
                },
                {
                    "name": f"urunix_{rtype}_rebuild",
                    "cmd": build(b, img),
                    "urunix": True,
                    "env": env,
                    "outputs": [img],
                    "before": lambda i, a=a, img=img: self.prime(a, img, env),
                },
                {"name": f"urunix_{rtype}_nocache", "cmd": build(a, img), "urunix": True, "env": nocache, "outputs": [img]},
            ]
            if rtype == "raw":
                for fmt, suffix in FORMATS.items():
                    if suffix:
                        dst = o(f"raw{suffix}")
                        cases.append(
                            {
                                "name": f"urunix_raw{suffix}",
                                "cmd": build(a, dst, "--format", fmt),
                                "urunix": True,
                                "env": nocache,
                                "outputs": [dst],
                            }
                        )
                # an OCI layout's layer blob is linked from the cache, not copied
                dst = o("raw_oci_rb")
                cases.append(
                    {
                        "name": "urunix_raw_oci_rebuild",
                        "cmd": build(b, dst, "--format", "oci"),
                        "urunix": True,
                        "env": env,
                        "outputs": [dst],
                        "before": lambda i, a=a, dst=dst: self.prime(a, dst, env, "oci"),
                    }
                )
        self.measure(name, cases)
        rm(self.cache)
        if name in self.args.nix_trees.split(","):
            self.nix_case(name, root, kernel, spec_dir, env)

    def prime(self, spec: str, img: str, env: dict, fmt: str = "docker-archive") -> None:
        """Untimed: empty the cache, build `spec` once (fills the cache)."""
        rm(img)
        rm(self.cache)
        settle()
        probe(self.work, ["build", "--backend", "native", spec, "-o", img, "--format", fmt], True, env)
        rm(img)

    def ext_size(self, root: str) -> int:
        """The size urunix's size="auto" picks for this tree (so both sides
        write the same number of bytes)."""
        sys.path.insert(0, GENERATOR)
        from urunix.helpers import ext
        from urunix.helpers.image_writer import expand

        return ext.auto_size(expand([{"type": "tree", "path": "", "source": root}]))[0]

    def nix_case(self, name: str, root: str, kernel: str, spec_dir: str, env: dict) -> None:
        """benchmarks/nixpath.py: nix-build of a block rootfs, cold and after
        a cmdline-only change, with store growth, next to the native build."""
        if not shutil.which("nix-build"):
            self.results.setdefault(name, {})["nix_build"] = {"skipped": "nix-build not found"}
            self.notes.append("nix-build not found: the Nix figures are missing")
            return
        try:
            got = nixpath.run(self, name, root, kernel, spec_dir, env, root=ROOT, probe=probe, settle=settle, summarize=summarize)
        except RuntimeError as e:
            self.results.setdefault(name, {})["nix_block"] = {"error": str(e)[-2000:]}
            self.notes.append(f"nix-build failed: {str(e)[-300:]}")
            return
        for case, s in got.items():
            self.results.setdefault(name, {})[case] = s
            extra = "".join(f"  {k} {mib(s[k])} MiB" for k in ("image_bytes", "store_built", "store_source") if k in s)
            self.log(f"  {name:8} {case:28} median {s['wall_median']:8.3f} s  rss {s['rss_max_kib'] / 1024:7.1f} MiB{extra}")

    def many_files_specs(self, n: int = 10_000) -> list[tuple[str, str]]:
        """A YAML spec and an args.nix with `n` files entries each (issue
        11: validation was O(n^2), 50 s / 114 s for these): the target is
        under 1 s for the whole `urunix validate` process."""
        d = os.path.join(self.work, f"many-{n}")
        src = os.path.join(d, "src")
        if not os.path.isdir(src):
            os.makedirs(src + ".tmp", exist_ok=True)
            for i in range(n):
                with open(os.path.join(src + ".tmp", f"f{i:05d}"), "w") as f:
                    f.write(str(i))
            with open(os.path.join(src + ".tmp", "kernel"), "wb") as f:
                f.write(b"\x7fELF")
            os.replace(src + ".tmp", src)
        ann = {"unikernelType": "rumprun", "hypervisor": "hvt", "binary": "/unikernel/kernel"}
        with open(os.path.join(d, "many.yaml"), "w") as f:
            f.write("name: bench/many\nfiles:\n  ./src/kernel: /unikernel/kernel\n")
            f.writelines(f"  ./src/f{i:05d}: /data/d{i % 100:02d}/f{i:05d}\n" for i in range(n))
            f.write("annotations:\n" + "".join(f"  {k}: {v}\n" for k, v in ann.items()))
        with open(os.path.join(d, "args.nix"), "w") as f:
            f.write('{ name = "bench/many"; files = {\n  "./src/kernel" = "/unikernel/kernel";\n')
            f.writelines(f'  "./src/f{i:05d}" = "/data/d{i % 100:02d}/f{i:05d}";\n' for i in range(n))
            f.write("}; annotations = { " + " ".join(f'{k} = "{v}";' for k, v in ann.items()) + " }; }\n")
        return [
            ("urunix_validate_10k_yaml", os.path.join(d, "many.yaml")),
            ("urunix_validate_10k_argsnix", os.path.join(d, "args.nix")),
        ]

    def startup(self, spec: str) -> None:
        env = {**os.environ, "PYTHONPATH": GENERATOR, "CI": "1"}
        many = [(case, ["validate", path]) for case, path in self.many_files_specs()]
        for case, argv in [("urunix_help", ["--help"]), ("urunix_validate", ["validate", spec])] + many:
            walls = []
            runs = max(self.args.runs, 10 if "10k" not in case else 3) if not self.args.quick else 1
            for i in range(-1, runs):
                t0 = time.perf_counter()
                subprocess.run(
                    [PY, "-m", "urunix", *argv], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True
                )
                if i >= 0:
                    walls.append(time.perf_counter() - t0)
            self.results.setdefault("startup", {})[case] = {
                "runs": len(walls),
                "wall_median": statistics.median(walls),
                "wall_min": min(walls),
                "wall_max": max(walls),
                "walls": walls,
            }
            self.log(f"  startup  {case:28} median {statistics.median(walls):8.3f} s")
            if "10k" in case and statistics.median(walls) >= 1.0:
                self.notes.append(f"{case}: median {statistics.median(walls):.2f} s, over the 1 s target")

    # ------------------------------------------------------------ the run
    def run(self) -> dict:
        sizes = trees.QUICK if self.args.quick else trees.FULL
        want = [t for t in self.args.trees.split(",") if t]
        os.makedirs(self.work, exist_ok=True)
        kernel = os.path.join(self.work, "kernel")
        if not os.path.exists(kernel):
            with open(kernel + ".tmp", "wb") as f:
                f.write(random.Random(7).randbytes(1 << 20))
            os.replace(kernel + ".tmp", kernel)
        facts = {}
        for name in want:
            self.log(f"tree {name}: making / checking")
            root, facts[name] = trees.ensure(self.work, name, sizes[name])
            self.log(f"tree {name}: {facts[name]}")
            self.tree_cases(name, root, facts[name], kernel)
        # a spec this run wrote (`--types block` writes no raw one)
        rtype = next((t for t in self.args.types.split(",") if t), "raw")
        small_spec = os.path.join(self.work, "specs", f"{want[0]}-{rtype}-a.yaml")
        self.startup(small_spec)
        return {
            "machine": machine(self.work),
            "command": " ".join(["python", "-m", "benchmarks", *sys.argv[1:]]),
            "quick": self.args.quick,
            "runs": self.args.runs,
            "warmup": self.args.warmup,
            "trees": facts,
            "results": self.results,
            "ratios": ratios(self.results),
            "notes": self.notes,
        }


def ratios(results: dict) -> dict:
    out = {}
    for tree, cases in results.items():
        if tree == "startup":
            continue
        med = {k: v.get("wall_median") for k, v in cases.items() if "wall_median" in v}
        r = {}
        for rtype, base in BASELINE.items():
            for suffix, label in (("", ""), ("_nocache", "_nocache")):
                k = f"urunix_{rtype}{suffix}"
                if k in med and base in med:
                    r[f"{rtype}{label}_vs_{base}"] = med[k] / med[base]
            if f"urunix_{rtype}" in med and "copy_limit" in med:
                r[f"{rtype}_vs_copy_limit"] = med[f"urunix_{rtype}"] / med["copy_limit"]
            if f"urunix_{rtype}_rebuild" in med and f"urunix_{rtype}" in med:
                r[f"{rtype}_rebuild_vs_cold"] = med[f"urunix_{rtype}_rebuild"] / med[f"urunix_{rtype}"]
        if "urunix_raw_oci_rebuild" in med and "urunix_raw_oci" in med:
            r["raw_oci_rebuild_vs_cold"] = med["urunix_raw_oci_rebuild"] / med["urunix_raw_oci"]
        for suffix in ("_oci_archive", "_oci"):
            if f"urunix_raw{suffix}" in med and "tar" in med:
                r[f"raw{suffix}_vs_tar"] = med[f"urunix_raw{suffix}"] / med["tar"]
        r.update(nixpath.ratios(cases))
        out[tree] = r
    return out


def machine(work: str) -> dict:
    def cmd(*a):
        try:
            return subprocess.run(a, capture_output=True, text=True).stdout.strip()
        except OSError:
            return ""

    df = cmd("df", "-hT", work).splitlines()
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            mem = int(next(ln.split()[1] for ln in f if ln.startswith("MemTotal"))) // 1024
    except (OSError, StopIteration):
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "mem_mib": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "disk": df[-1] if df else "",
        "tar": cmd("tar", "--version").splitlines()[0] if cmd("tar", "--version") else "",
        "cpio": (cmd("cpio", "--version").splitlines() or [""])[0],
        "mke2fs": (subprocess.run(["sh", "-c", "mke2fs -V 2>&1 | head -1"], capture_output=True, text=True).stdout.strip()),
    }


# ------------------------------------------------------------------ report


def mib(n: float) -> str:
    return f"{n / (1 << 20):,.1f}"


def markdown(data: dict) -> str:
    lines = []
    m = data["machine"]
    lines.append(
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['mem_mib']:,} MiB RAM, Linux {m['kernel']}, "
        f"Python {m['python']}; disk: `{m['disk']}`; {m['tar']}; {m['cpio']}; {m['mke2fs']}."
    )
    lines.append("")
    lines.append(
        f"Command: `{data['command']}` ({data['runs']} measured runs after {data['warmup']} warm-up; "
        "medians; I/O columns are the median /proc/&lt;pid&gt;/io deltas in MiB)."
    )
    lines.append("")
    for tree, cases in data["results"].items():
        if tree == "startup":
            continue
        f = data["trees"].get(tree, {})
        lines.append(
            f"### {tree}: {f.get('files', '?'):,} files, {mib(f.get('bytes', 0))} MiB, "
            f"{f.get('hardlinked_names', 0)} hard-linked names, {f.get('symlinks', 0)} symlinks"
        )
        lines.append("")
        lines.append("| case | median s | min-max s | in builder s | peak RSS MiB | rchar | wchar | read_bytes | write_bytes |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for case, s in cases.items():
            if "wall_median" not in s:
                lines.append(f"| {case} | {next(iter(s.values()))} | | | | | | | |")
                continue
            io = s["io_median"]
            inb = f"{s['build_median']:.3f}" if s.get("build_median") is not None else ""
            lines.append(
                f"| {case} | {s['wall_median']:.3f} | {s['wall_min']:.2f}-{s['wall_max']:.2f} | {inb} | "
                f"{s['rss_max_kib'] / 1024:.1f} | {mib(io.get('rchar', 0))} | {mib(io.get('wchar', 0))} | "
                f"{mib(io.get('read_bytes', 0))} | {mib(io.get('write_bytes', 0))} |"
            )
        lines.append("")
        nix = [(case, s) for case, s in cases.items() if "image_bytes" in s]
        if nix:
            lines.append("| Nix-path case | image MiB | store growth, built MiB | store growth, tree import MiB |")
            lines.append("|---|---:|---:|---:|")
            for case, s in nix:
                lines.append(
                    f"| {case} | {mib(s['image_bytes'])} | {mib(s.get('store_built', 0))} | {mib(s.get('store_source', 0))} |"
                )
            lines.append("")
        r = data["ratios"].get(tree, {})
        if r:
            lines.append("| ratio | value |")
            lines.append("|---|---:|")
            for k, v in r.items():
                unit = " s" if k.endswith("seconds") else " MiB" if k.endswith("_mib") else "x"
                lines.append(f"| {k} | {v:.2f}{unit} |")
            lines.append("")
    st = data["results"].get("startup", {})
    if st:
        lines.append("### start-up (whole process, `python3 -m urunix`)")
        lines.append("")
        lines.append("| command | median s | min-max s |")
        lines.append("|---|---:|---:|")
        for case, s in st.items():
            lines.append(f"| {case} | {s['wall_median']:.3f} | {s['wall_min']:.3f}-{s['wall_max']:.3f} |")
        lines.append("")
    for n in data.get("notes", []):
        lines.append(f"- note: {n}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description="urunix build benchmarks")
    p.add_argument("--quick", action="store_true", help="tiny trees, one run, no warm-up (CI smoke run)")
    p.add_argument("--runs", type=int, default=None, help="measured runs per case (default 5; --quick: 1)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up runs per case (default 1; --quick: 0)")
    p.add_argument(
        "--trees", default=None, help="comma-separated: small,mid,large,bigfile (default all; --quick: small,large,bigfile)"
    )
    p.add_argument("--types", default=",".join(TYPES), help="rootfs types to build: raw,initrd,block")
    p.add_argument(
        "--nix-trees", default=None, help="trees to build with nix-build too ('' for none; default mid,large; --quick: large)"
    )
    p.add_argument(
        "--work",
        default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "urunix-bench"),
        help="where trees, outputs and the benchmark's cache go (needs ~8 GB for the full run)",
    )
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "out"), help="where results.json/.md go")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.runs is None:
        args.runs = 1 if args.quick else 5
    if args.trees is None:
        args.trees = "small,large,bigfile" if args.quick else "small,mid,large,bigfile"
    if args.nix_trees is None:
        args.nix_trees = "large" if args.quick else "mid,large"
    if args.warmup is None:
        args.warmup = 0 if args.quick else 1
    if args.quick and args.work == p.get_default("work"):
        args.work = os.path.join(args.work, "quick")
    bench = Bench(args)
    data = bench.run()
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(data, f, indent=2)
    md = markdown(data)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(md)
    if not args.quiet:
        print(md)
    return 0
