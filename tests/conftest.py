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
# No binary cache is reachable here: every Nix call would wait for one.
os.environ.setdefault("URUNIX_NIX_OFFLINE", "1")


def need(tool: str) -> str:
    """The tool's path, or skip (fail under URUNIX_REQUIRE_TOOLS=1)."""
    path = shutil.which(tool) or (f"/usr/sbin/{tool}" if os.path.exists(f"/usr/sbin/{tool}") else None)
    if path:
        return path
    msg = f"{tool} is not installed"
    if os.environ.get("URUNIX_REQUIRE_TOOLS") == "1":
        pytest.fail(msg + " (URUNIX_REQUIRE_TOOLS=1)")
    pytest.skip(msg)


class Docker:
    """A Docker Engine the tests talk to, through argv lists only."""

    def __init__(self, host: str):
        self.env = {**os.environ, "DOCKER_HOST": host}

    def run(self, *args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run(["docker", *args], input=input, capture_output=True, env=self.env, timeout=300)
        if check and r.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed: {r.stderr.decode(errors='replace')}")
        return r

    def load(self, archive: Path) -> str:
        with open(archive, "rb") as f:
            out = self.run("load", input=f.read()).stdout.decode()
        return out.strip().rsplit("Loaded image: ", 1)[-1].strip()

    def inspect(self, ref: str) -> dict:
        import json
        return json.loads(self.run("image", "inspect", ref).stdout)[0]

    def export(self, ref: str, dest: Path) -> Path:
        """docker create + docker export, unpacked into dest: what the
        container's rootfs holds."""
        cid = self.run("create", ref).stdout.decode().strip()
        try:
            tar = dest.with_suffix(".tar")
            self.run("export", "-o", str(tar), cid)
            dest.mkdir(parents=True, exist_ok=True)
            subprocess.run(["tar", "-xf", str(tar), "-C", str(dest)], check=True)
            return dest
        finally:
            self.run("rm", cid, check=False)


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
