"""Run the urunix CLI as a user would: a separate process, argv only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def urunix(
    *args: str, cwd: Path | None = None, env: dict | None = None, check: bool = False, timeout: int = 600
) -> subprocess.CompletedProcess:
    e = {**os.environ, "PYTHONPATH": str(ROOT / "generator"), **(env or {})}
    e.pop("COLUMNS", None)
    r = subprocess.run([sys.executable, "-m", "urunix", *args], cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"urunix {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return r


def assert_refused(r: subprocess.CompletedProcess, expect: list[str], work: Path) -> None:
    """Bad input as users must see it: exit 2, no traceback, each `expect`
    text in stderr, and no `result` left in work."""
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    for e in expect:
        assert e in r.stderr, r.stderr
    assert not (work / "result").exists()
