"""Shared fixtures: real tools only. Docker's engine is started by the test
session itself (Debian's docker.io, vfs storage, no network), on a private
socket, and stopped afterwards.

Set URUNIX_REQUIRE_TOOLS=1 (CI does) to turn a missing tool into a failure
instead of a skip, so a green CI run never hides a skipped suite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "generator"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import Docker, need  # noqa: E402

# No binary cache is reachable here: every Nix call would wait for one.
os.environ.setdefault("URUNIX_NIX_OFFLINE", "1")


@pytest.fixture(scope="session")
def docker() -> Docker:
    need("docker")
    existing = os.environ.get("DOCKER_HOST")
    if existing and subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
        yield Docker(existing)
        return
    dockerd = need("dockerd")
    state = Path(tempfile.mkdtemp(prefix="urunix-dockerd-"))
    sock = f"unix://{state}/docker.sock"
    log = open(state / "dockerd.log", "wb")
    proc = subprocess.Popen(
        [dockerd, "--storage-driver=vfs", "--iptables=false", "--ip6tables=false", "--bridge=none",
         f"--data-root={state}/data", f"--exec-root={state}/exec", f"--pidfile={state}/docker.pid",
         "-H", sock],
        stdout=log, stderr=subprocess.STDOUT)
    d = Docker(sock)
    for _ in range(300):
        if d.run("info", check=False).returncode == 0:
            break
        if proc.poll() is not None:
            pytest.fail("dockerd exited: " + (state / "dockerd.log").read_text()[-2000:])
        time.sleep(0.1)
    else:
        proc.terminate()
        pytest.fail("dockerd did not start in 30 s: " + (state / "dockerd.log").read_text()[-2000:])
    yield d
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
    subprocess.run(["umount", "-R", str(state / "exec")], capture_output=True)
    shutil.rmtree(state, ignore_errors=True)
