"""Support of the hardening suite: an in-process CLI runner (fast, for the
many small hostile cases; the subprocess runner of tests/cli.py is used where
the process itself matters: kills, PATH, peak memory) and a guard that proves
nothing was written outside the output."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hostile import markers, snapshot  # noqa: E402


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> Run:
    """`urunix ARGS` in this process (cli.main), output captured."""
    from urunix.cli import main

    old_cwd = os.getcwd()
    old_env = dict(os.environ)
    old_term = signal.getsignal(signal.SIGTERM)
    out, err = io.StringIO(), io.StringIO()
    try:
        if cwd is not None:
            os.chdir(cwd)
        os.environ.update(env or {})
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        os.chdir(old_cwd)
        os.environ.clear()
        os.environ.update(old_env)
        signal.signal(signal.SIGTERM, old_term)
    return Run(code, out.getvalue(), err.getvalue())


class Guard:
    """Snapshots of the places a hostile input might write to: a canary
    directory (the target of the hostile symlinks), the work directory
    (which may gain only the output), a private temporary directory (the
    system's, for the runs in this process), and the injection markers."""

    def __init__(self, root: Path):
        self.canary = root / "canary"
        self.canary.mkdir()
        (self.canary / "keep").write_text("canary\n")
        self.work = root / "work"
        self.work.mkdir()
        self.tmp = root / "systmp"
        self.tmp.mkdir()
        self.before: dict = {}

    def arm(self) -> None:
        tempfile.tempdir = str(self.tmp)
        self.before = {"canary": snapshot(self.canary), "work": snapshot(self.work), "markers": markers()}

    def check(self, allowed: set[str] = frozenset()) -> None:
        """Nothing changed but `allowed` (names in work/, e.g. the output)."""
        assert snapshot(self.canary) == self.before["canary"], "the canary directory changed"
        work = {k: v for k, v in snapshot(self.work).items() if k.split("/")[0] not in allowed}
        assert work == self.before["work"], f"work/ changed: {sorted(set(work) ^ set(self.before['work']))}"
        assert not os.listdir(self.tmp), f"left in the temporary directory: {os.listdir(self.tmp)}"
        assert markers() == self.before["markers"], f"an injection ran: {markers()}"
