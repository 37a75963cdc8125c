"""5. Honest exit codes and messages.

0 success; 1 the build failed, with the reason from the tool that failed; 2
the spec or the usage is wrong. No traceback unless --debug, which shows it.
A missing external tool (nix-build, mke2fs, skopeo) is named with how to
install it -- tested by running the CLI where the tool cannot be found."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cli import urunix

ROOT = Path(__file__).resolve().parents[2]
GOOD = "name: codes/test\nfiles: {./k: /k}\nannotations: {unikernelType: rumprun, hypervisor: hvt, binary: /k, cmdline: x}\n"
LINUX_BLOCK = (
    "name: codes/block\nannotations: {unikernelType: linux, hypervisor: qemu}\nkernel: ./k\n"
    "rootfs: {type: block, include: {./k: /k}, size: SIZE}\ncmd: [/k]\n"
)
REGISTRY = (
    "name: codes/reg\nannotations: {unikernelType: linux, hypervisor: qemu}\nkernel: ./k\n"
    'rootfs: {type: initrd, from: "docker://127.0.0.1:1/x@sha256:' + "0" * 64 + '"}\ncmd: [/k]\n'
)


@pytest.fixture
def work(tmp_path):
    (tmp_path / "k").write_bytes(b"\x7fELF")
    (tmp_path / "good.yaml").write_text(GOOD)
    return tmp_path


def check(r, code: int, *want: str) -> None:
    assert r.returncode == code, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    for w in want:
        assert w in r.stderr, (w, r.stderr[-2000:])


def test_success_is_zero(work):
    check(urunix("validate", "good.yaml", cwd=work), 0)
    check(urunix("build", "--backend", "native", "good.yaml", "-o", "out", cwd=work), 0, "built codes/test")
    check(urunix("inspect", "out", cwd=work), 0)


@pytest.mark.parametrize(
    "args,want",
    [
        (["validate", "missing.yaml"], "no such file"),
        (["build", "--backend", "native", "good.yaml", "-o", "nodir/out"], "the output's directory does not exist"),
        (["build", "--format", "zip", "good.yaml"], "zip"),
        (["build", "--nosuchflag", "good.yaml"], "nosuchflag"),
        (["build", "--backend", "nix", "--format", "oci", "good.yaml"], "docker-archive only"),
        (["validate", "--spec-format", "toml", "good.yaml"], "toml"),
        (["inspect", "k"], "not an image archive"),
        (["inspect", "nothere"], "nothere"),
        (["validate", "bad.yaml"], "unikrafft"),
    ],
)
def test_usage_and_spec_errors_are_two(work, args, want):
    (work / "bad.yaml").write_text(GOOD.replace("rumprun", "unikrafft"))
    r = urunix(*args, cwd=work)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and want in r.stderr + r.stdout, r.stderr


def test_debug_shows_the_traceback_for_each_kind(work):
    (work / "bad.yaml").write_text(GOOD.replace("rumprun", "unikrafft"))
    r = urunix("--debug", "validate", "bad.yaml", cwd=work)
    assert r.returncode == 2 and "Traceback" in r.stderr and "unikrafft" in r.stderr
    (work / "big").write_bytes(os.urandom(3 << 20))
    (work / "block.yaml").write_text(LINUX_BLOCK.replace("SIZE", "1M").replace("{./k: /k}", "{./k: /k, ./big: /big}"))
    r = urunix("--debug", "build", "--backend", "native", "block.yaml", "-o", "out", cwd=work)
    assert r.returncode == 1 and "Traceback" in r.stderr, r.stderr


def test_build_failure_is_one_with_the_tools_reason(work):
    """mke2fs cannot fit the tree in 1M: exit 1, and mke2fs's words."""
    (work / "big").write_bytes(os.urandom(3 << 20))
    (work / "block.yaml").write_text(LINUX_BLOCK.replace("SIZE", "1M").replace("{./k: /k}", "{./k: /k, ./big: /big}"))
    r = urunix("build", "--backend", "native", "block.yaml", "-o", "out", cwd=work)
    check(r, 1, "does not fit in 1M")
    assert not (work / "out").exists()
    assert [n for n in os.listdir(work) if n.startswith(".urunix")] == []


def test_skopeo_failure_is_one_with_skopeos_reason(work):
    if not shutil.which("skopeo"):
        pytest.skip("skopeo is not installed")
    (work / "reg.yaml").write_text(REGISTRY)
    r = urunix("build", "--backend", "native", "reg.yaml", "-o", "out", cwd=work, timeout=120)
    check(r, 1, "skopeo could not read the config of 127.0.0.1:1/x@sha256:")  # read before validation (rootfs_image_config)
    assert "connection refused" in r.stderr.lower() or "pinging" in r.stderr.lower(), r.stderr


def test_nix_build_failure_is_one_with_nixs_reason(work):
    if not shutil.which("nix-build"):
        pytest.skip("nix is not installed")
    r = urunix(
        "build",
        "--backend",
        "nix",
        "--nix-pkgs",
        'throw "no pkgs here"',
        "good.yaml",
        "-o",
        "out",
        cwd=work,
        env={"URUNIX_NIX_OFFLINE": "1"},
    )
    check(r, 1, "nix-build failed", "no pkgs here")


def _path_without(tool: str, tmp: Path) -> str:
    """A PATH of symlinks to everything on the current PATH but `tool`."""
    d = tmp / "bin"
    d.mkdir()
    for p in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(p):
            continue
        for name in os.listdir(p):
            if name != tool and not (d / name).exists():
                try:
                    (d / name).symlink_to(os.path.join(p, name))
                except OSError:
                    pass
    return str(d)


def test_missing_nix_build_is_named_with_how_to_install(work):
    r = urunix("build", "--backend", "nix", "good.yaml", "-o", "out", cwd=work, env={"PATH": _path_without("nix-build", work)})
    check(r, 1, "nix-build is needed", "apt-get install nix-bin")


def test_missing_skopeo_is_named_with_how_to_install(work):
    (work / "reg.yaml").write_text(REGISTRY)
    r = urunix("build", "--backend", "native", "reg.yaml", "-o", "out", cwd=work, env={"PATH": _path_without("skopeo", work)})
    check(r, 1, "skopeo is needed", "apt-get install skopeo")


def test_missing_mke2fs_is_named_with_how_to_install(work):
    """e2fsprogs is also looked up in /usr/sbin and /sbin, off a user's PATH:
    hide those with a private mount namespace (root only)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare to hide /usr/sbin")
    (work / "block.yaml").write_text(LINUX_BLOCK.replace("SIZE", "auto"))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "generator"), "PATH": _path_without("mke2fs", work)}
    script = (
        "mount -t tmpfs tmpfs /usr/sbin && { [ -L /sbin ] || mount -t tmpfs tmpfs /sbin; } && "
        f"exec {sys.executable} -m urunix build --backend native block.yaml -o out"
    )
    r = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if "unshare failed" in r.stderr or "mount:" in r.stderr:
        pytest.skip(f"no private mount namespace here: {r.stderr.strip()[:200]}")
    check(r, 1, "mke2fs not found", "apt-get install e2fsprogs")
