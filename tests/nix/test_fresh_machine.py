"""A fresh Debian machine with nix-bin: no channel (no <nixpkgs>), no nixbld
group, no /etc/nix/nix.conf. What users meet there, and that the test
session itself runs as on such a machine (tests/conftest.py)."""

from __future__ import annotations

import grp
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from nixhelp import NIX_OPTS, ROOT, bimanix_checkout, need_nix, run
from nixhelp import testpkgs_expr as pkgs_expr

import cli
from urunix.nixenv import BUILD_USERS_HINT, explain_failure


@pytest.fixture(autouse=True)
def _nix():
    need_nix()


def test_session_has_no_host_nix_state():
    """The session's Nix reads only the configuration conftest wrote: a
    machine's /etc/nix/nix.conf or channels cannot make a run pass."""
    conf = Path(os.environ["NIX_CONF_DIR"])
    assert conf != Path("/etc/nix") and (conf / "nix.conf").read_text() == ""
    assert os.environ["NIX_PATH"] == ""
    assert "build-users-group =" in os.environ["NIX_CONFIG"]
    assert not Path(os.environ["HOME"], ".nix-defexpr").exists()
    assert Path(os.environ["XDG_CACHE_HOME"]).is_relative_to(Path(os.environ["HOME"]).parent)
    r = subprocess.run(["nix-instantiate", "--find-file", "nixpkgs"], capture_output=True, text=True)
    assert r.returncode != 0


def test_default_nix_without_nixpkgs_says_how_to_supply_it(tmp_path):
    d = bimanix_checkout(tmp_path / "repo")
    shutil.copy(ROOT / "args.nix.example", d / "args.nix")
    r = subprocess.run(["nix-build", "default.nix", "--no-out-link", *NIX_OPTS], cwd=d, capture_output=True, text=True)
    assert r.returncode != 0
    err = r.stderr
    assert "<nixpkgs> is not on the Nix search path" in err, err
    for way in ("-I nixpkgs=", "NIX_PATH=nixpkgs=", "nix-channel --add", "--arg pkgs", "nix build"):
        assert way in err, (way, err)
    assert "file 'nixpkgs' was not found" not in err


def test_default_nix_with_nixpkgs_on_the_search_path(tmp_path):
    """-I nixpkgs=DIR is honoured: the check does not get in the way."""
    d = bimanix_checkout(tmp_path / "repo")
    fake = tmp_path / "np"
    fake.mkdir()
    (fake / "default.nix").write_text(f"{{ ... }}: {pkgs_expr()}\n")
    (d / "k.hvt").write_bytes(b"\x7fELF")
    (d / "args.nix").write_text(
        '{ name = "x"; files = { "./k.hvt" = "/k.hvt"; }; '
        'annotations = { unikernelType = "rumprun"; hypervisor = "hvt"; binary = "/k.hvt"; }; }'
    )
    r = run(["nix-instantiate", "default.nix", "-I", f"nixpkgs={fake}", *NIX_OPTS], cwd=d)
    assert r.stdout.strip().endswith(".drv")


def test_backend_nix_without_nixpkgs_is_a_usage_error(tmp_path):
    r = cli.urunix("build", str(ROOT / "args.nix.example"), "--backend", "nix", "-o", str(tmp_path / "result"), cwd=ROOT)
    assert r.returncode == 2, r.stderr
    assert "<nixpkgs> is not on the Nix search path" in r.stderr
    assert "--nix-pkgs" in r.stderr and "NIX_PATH=nixpkgs=" in r.stderr
    assert "urunix-nix-" not in r.stderr  # no deleted scratch path
    assert not (tmp_path / "result").exists()


def test_backend_auto_without_nixpkgs_builds_natively(tmp_path):
    r = cli.urunix("build", str(ROOT / "args.nix.example"), "-o", str(tmp_path / "result"), cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "native backend" in r.stderr


@pytest.mark.skipif(
    _has_nixbld := (lambda: any(g.gr_name == "nixbld" for g in grp.getgrall()))(), reason="this machine has a nixbld group"
)
def test_nix_without_build_users_names_the_fix(tmp_path):
    """What a Debian nix-bin user gets as root without the setting: Nix's
    own error, then our hint; the deleted scratch directory is not cited."""
    env = {"NIX_CONFIG": "build-users-group = nixbld\nsandbox = false\nsubstituters =\n"}
    r = cli.urunix(
        "build",
        str(ROOT / "args.nix.example"),
        "--backend",
        "nix",
        "--nix-pkgs",
        pkgs_expr(),
        "-o",
        str(tmp_path / "result"),
        cwd=ROOT,
        env=env,
    )
    if os.geteuid() != 0:
        pytest.skip("Nix wants build users only as root")
    assert r.returncode == 1, r.stderr
    assert "nixbld" in r.stderr and BUILD_USERS_HINT in r.stderr
    assert "/urunix-nix-" not in r.stderr


def test_explain_failure_hides_the_scratch_dir():
    text = explain_failure("error: getting status of '/tmp/urunix-nix-abc/files/x': No such file", "/tmp/urunix-nix-abc")
    assert "/tmp/urunix-nix-abc" not in text and "<generated expression>/files/x" in text
    assert "urunix generate SPEC -o DIR" in text
