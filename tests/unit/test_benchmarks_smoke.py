"""The benchmark harness keeps working: `python -m benchmarks --quick` (tiny
trees, one run) writes a JSON report with every case. No timed assertions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

TREES = ("small", "large", "bigfile")
CASES = (
    ["copy_limit", "tar", "cpio_tar", "mke2fs_tar"]
    + [f"urunix_{t}{s}" for t in ("raw", "initrd", "block") for s in ("", "_rebuild", "_nocache")]
    + ["urunix_raw_oci_archive", "urunix_raw_oci"]
)


@pytest.mark.slow
def test_quick_run_reports_every_case(tmp_path):
    for tool in ("tar", "cpio", "mke2fs"):
        if not any(
            os.access(os.path.join(d, tool), os.X_OK)
            for d in os.environ.get("PATH", "").split(os.pathsep) + ["/usr/sbin", "/sbin"]
        ):
            pytest.skip(f"{tool} is not installed")
    env = {**os.environ, "PATH": os.environ.get("PATH", "") + ":/usr/sbin:/sbin"}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--quiet",
            "--work",
            str(tmp_path / "work"),
            "--out",
            str(tmp_path / "out"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-4000:]
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert data["quick"] is True
    for tree in TREES:
        got = data["results"][tree]
        for case in CASES:
            assert case in got, (tree, case)
            s = got[case]
            assert s["runs"] == 1 and s["wall_median"] > 0 and s["rss_max_kib"] > 0
            assert "rchar" in s["io_median"] and "write_bytes" in s["io_median"]
        assert data["trees"][tree]["bytes"] > 0
        assert "raw_vs_tar" in data["ratios"][tree] and "block_rebuild_vs_cold" in data["ratios"][tree]
    # the Nix figures: measured, or said why not
    large = data["results"]["large"]
    if "nix_build" in large:  # nix-build not installed
        assert "skipped" in large["nix_build"]
    else:
        for case in (
            "nix_block",
            "nix_block_rebuild",
            "nix_stream",
            "nix_stream_rebuild",
            "nix_block_store",
            "nix_stream_store_rebuild",
            "native_block",
        ):
            assert large[case]["runs"] == 1 and large[case]["image_bytes"] > 0, case
        assert large["nix_block"]["store_built"] > 0 and large["nix_block"]["store_source"] > 0
        assert large["nix_stream"]["store_built"] > 0
        # a tree already in the store is not imported again
        assert large["nix_stream_store"]["store_source"] == 0 and large["nix_stream_store"]["store_built"] > 0
        assert "nix_rebuild_vs_cold" in data["ratios"]["large"]
        assert "nix_stream_rebuild_store_vs_image" in data["ratios"]["large"]
        assert "Nix-path case" in (tmp_path / "out" / "results.md").read_text()
    assert {"urunix_help", "urunix_validate", "urunix_validate_10k_yaml", "urunix_validate_10k_argsnix"} <= set(
        data["results"]["startup"]
    )
    md = (tmp_path / "out" / "results.md").read_text()
    assert "| urunix_raw |" in md and "raw_vs_tar" in md
