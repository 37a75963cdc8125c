"""Progress (issue 15, item 7): names the step; fits a 60-column terminal;
one line per step when stderr is not a terminal; Ctrl-C says "interrupted"
and exits 130. Through the real CLI (a pseudo-terminal for the tty case)."""

from __future__ import annotations

import os
import pty
import re
import signal
import subprocess
import sys
import time

import pytest

from cli import ROOT, urunix

ENV = {"URUNIX_NO_NIX": "1"}


def spec(tmp_path, rtype="initrd", size=3 << 20):
    (tmp_path / "vmlinux").write_bytes(b"\x7fELF")
    (tmp_path / "tree" / "bin").mkdir(parents=True)
    with open(tmp_path / "tree" / "bin" / "app", "wb") as f:
        f.truncate(size)  # sparse: no disk for the source
    (tmp_path / "spec.yaml").write_text(
        "name: x/prog\nkernel: ./vmlinux\nannotations: {unikernelType: linux, hypervisor: qemu}\n"
        f"cmd: [/bin/app]\nrootfs: {{type: {rtype}, from: ./tree}}\n"
    )
    return tmp_path


@pytest.mark.parametrize("rtype,tool", [("initrd", "rootfs (3.0 MiB, cpio)"), ("block", "mke2fs: making the ext2 image")])
def test_one_line_per_step_without_a_terminal(tmp_path, rtype, tool):
    work = spec(tmp_path, rtype)
    r = urunix("build", "spec.yaml", "--no-cache", cwd=work, env=ENV)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert lines[0] == "urunix: reading the tree of rootfs"
    assert any(tool in ln for ln in lines), lines
    assert [ln.split(":")[1].strip() for ln in lines if re.match(r"urunix: layer \d of 3", ln)] == [
        "layer 1 of 3",
        "layer 2 of 3",
        "layer 3 of 3",
    ]
    assert "urunix: writing result" in lines and lines[-1].startswith("built x/prog:latest")
    assert "\r" not in r.stderr and "\x1b" not in r.stderr


def test_status_line_fits_sixty_columns(tmp_path):
    work = spec(tmp_path, size=64 << 20)
    pid, fd = pty.fork()
    if pid == 0:  # the child: urunix with its stderr on the terminal
        os.chdir(work)
        env = {**os.environ, **ENV, "PYTHONPATH": str(ROOT / "generator"), "COLUMNS": "60"}
        env.pop("CI", None)
        os.execve(sys.executable, [sys.executable, "-m", "urunix", "build", "spec.yaml", "--no-cache"], env)
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out
    text = out.decode()
    draws = [re.sub(r"\x1b\[K", "", d) for d in re.split(r"\r", text.split("built ")[0])]
    draws = [d for d in draws if d.strip()]
    assert any("layer 2 of 3: rootfs" in d for d in draws) and any("reading the tree" in d for d in draws), draws
    assert all(len(d) < 60 for d in draws), [d for d in draws if len(d) >= 60]


def test_ctrl_c_says_interrupted_and_exits_130(tmp_path):
    work = spec(tmp_path, size=400 << 20)
    env = {**os.environ, **ENV, "PYTHONPATH": str(ROOT / "generator")}
    p = subprocess.Popen(
        [sys.executable, "-m", "urunix", "build", "spec.yaml", "--no-cache"], cwd=work, env=env, stderr=subprocess.PIPE, text=True
    )
    first = p.stderr.readline()  # a step has started: the build is under way
    assert first.startswith("urunix: "), first
    time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    rest = p.stderr.read()
    assert p.wait(60) == 130, rest
    assert "interrupted" in rest and "Traceback" not in rest
    assert not (work / "result").exists() and not list(work.glob(".urunix-tmp-*"))
