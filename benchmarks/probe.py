"""Run one measured command and report what it cost, as JSON.

    python3 -m benchmarks.probe REPORT.json -- COMMAND [ARG ...]
    python3 -m benchmarks.probe REPORT.json --urunix -- [URUNIX ARG ...]

The first form runs an external command (a shell pipeline goes through
`sh -c`); the second runs `urunix` in this very process, so that its
/proc/self/io is the build's own.

Reported: wall seconds, peak RSS (KiB: the largest of this process and its
reaped children -- for an external command, the children only) and the
/proc/self/io counters (rchar, wchar: bytes through read/write syscalls;
read_bytes, write_bytes: bytes the block layer was asked to read / bytes
dirtied for writeback; cancelled_write_bytes). Linux adds the counters of
every reaped child to its parent's, so the delta of this process's
/proc/self/io over the run covers the command and everything it ran.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402


def proc_io() -> dict[str, int]:
    out = {}
    try:
        with open("/proc/self/io") as f:
            for line in f:
                k, _, v = line.partition(":")
                out[k.strip()] = int(v)
    except OSError:
        pass
    return out


def main(argv: list[str]) -> int:
    if len(argv) < 3 or "--" not in argv:
        print(__doc__, file=sys.stderr)
        return 2
    report = argv[0]
    sep = argv.index("--")
    opts, cmd = argv[1:sep], argv[sep + 1 :]
    io0 = proc_io()
    if "--urunix" in opts:
        t0 = T0
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "generator"))
        from urunix.cli import main as urunix_main
        from urunix.native import build as native_build

        inner = native_build.build
        build_wall = []

        def timed(*a, **kw):
            t = time.perf_counter()
            try:
                return inner(*a, **kw)
            finally:
                build_wall.append(time.perf_counter() - t)

        native_build.build = timed
        rc = urunix_main(cmd)
        self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    else:
        t0 = time.perf_counter()
        rc = subprocess.run(cmd).returncode
        self_rss = 0
        build_wall = []
    wall = time.perf_counter() - t0
    io1 = proc_io()
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = {
        "rc": rc,
        "wall": wall,
        "rss_kib": max(self_rss, child_rss),
        "self_rss_kib": self_rss,
        "child_rss_kib": child_rss,
        "build_wall": sum(build_wall) if build_wall else None,
        "io": {k: io1.get(k, 0) - io0.get(k, 0) for k in io1},
    }
    with open(report, "w") as f:
        json.dump(out, f)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
