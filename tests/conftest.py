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
HERE = ROOT / "tests"
# The one place that puts the tests' helper modules on sys.path, for every
# test module (none edits sys.path itself): support, cli, standins (tests/),
# hsupport, hostile (hardening/), nixhelp (nix/), cases (urunc_facts/),
# harness, fixtures (boot/). And the package, for a run without `pip install -e`.
for _d in (ROOT / "generator", HERE / "boot", HERE / "urunc_facts", HERE / "nix", HERE / "hardening", HERE):
    if str(_d) not in sys.path:
        sys.path.insert(0, str(_d))

from support import Docker, need  # noqa: E402

# No binary cache is reachable here: every Nix call would wait for one.
os.environ.setdefault("URUNIX_NIX_OFFLINE", "1")


def _as_on_a_fresh_machine() -> Path:
    """Give the whole session, and every process it starts, the state a new
    CI machine has: no Nix configuration but the one written here (Debian's
    nix-bin as root wants a `nixbld` group and a sandbox a fresh machine does
    not have), no channels or <nixpkgs>, a new HOME and XDG directories (no
    layer cache, no Docker CLI config). Docker's engine is always our own (the
    `docker` fixture), never one on the default socket. A machine's leftovers
    (a hand-written /etc/nix/nix.conf, a nixbld group, a warm cache) can then
    neither help nor hurt a run."""
    base = Path(tempfile.mkdtemp(prefix="urunix-tests-"))
    conf = base / "nix-conf"
    conf.mkdir()
    (conf / "nix.conf").write_text("")  # replaces /etc/nix/nix.conf for every Nix process
    for d in ("home", "cache", "config", "data", "state"):
        (base / d).mkdir()
    os.environ.update(
        {
            "NIX_CONF_DIR": str(conf),
            "NIX_USER_CONF_FILES": str(conf / "nix.conf"),
            "NIX_CONFIG": "build-users-group =\nsandbox = false\nsubstituters =\n",
            "NIX_PATH": "",
            "HOME": str(base / "home"),
            "XDG_CACHE_HOME": str(base / "cache"),
            "XDG_CONFIG_HOME": str(base / "config"),
            "XDG_DATA_HOME": str(base / "data"),
            "XDG_STATE_HOME": str(base / "state"),
        }
    )
    for var in ("NIX_REMOTE", "DOCKER_CONTEXT", "DOCKER_CONFIG"):
        os.environ.pop(var, None)
    return base


if os.environ.get("URUNIX_TESTS_HOST_STATE") != "1":  # an escape hatch for debugging on a dev machine
    _FRESH = _as_on_a_fresh_machine()

    def pytest_unconfigure(config) -> None:
        subprocess.run(["chmod", "-R", "u+w", str(_FRESH)], capture_output=True)
        shutil.rmtree(_FRESH, ignore_errors=True)


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
        [
            dockerd,
            "--storage-driver=vfs",
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
            f"--data-root={state}/data",
            f"--exec-root={state}/exec",
            f"--pidfile={state}/docker.pid",
            "-H",
            sock,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
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
