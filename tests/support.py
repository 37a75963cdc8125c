"""Helpers the tests share: `need(tool)` and the Docker Engine client. Kept
out of conftest.py so that test modules import them by a name no other
conftest.py can shadow."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def need(tool: str) -> str:
    """The tool's path, or skip (fail under URUNIX_REQUIRE_TOOLS=1)."""
    path = shutil.which(tool) or (f"/usr/sbin/{tool}" if os.path.exists(f"/usr/sbin/{tool}") else None)
    if path:
        return path
    msg = f"{tool} is not installed"
    if os.environ.get("URUNIX_REQUIRE_TOOLS") == "1":
        pytest.fail(msg + " (URUNIX_REQUIRE_TOOLS=1)")
    pytest.skip(msg)


def special_members() -> list:
    """What a directory tree cannot give a rootfs writer (cpio, ext): a
    directory of devices and a fifo, a file with an owner and a setuid mode."""
    from urunix.helpers.image_writer import Member

    return [
        Member("dev", "dir", 0o755),
        Member("dev/console", "char", 0o600, devmajor=5, devminor=1),
        Member("dev/sda", "block", 0o660, devmajor=8, devminor=0, gid=6),
        Member("dev/fifo", "fifo", 0o644),
        Member("owned", "file", 0o4750, 4, data=b"suid", uid=1000, gid=1001),
    ]


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

    def export(self, ref: str, dest: Path, *command: str) -> Path:
        """docker create + docker export, unpacked into dest: what the
        container's rootfs holds. `command` lets Docker create a container
        of an image with no Cmd (Docker's own build of a seed that has none)."""
        cid = self.run("create", ref, *command).stdout.decode().strip()
        try:
            tar = dest.with_suffix(".tar")
            self.run("export", "-o", str(tar), cid)
            dest.mkdir(parents=True, exist_ok=True)
            subprocess.run(["tar", "-xf", str(tar), "-C", str(dest)], check=True)
            return dest
        finally:
            self.run("rm", cid, check=False)
