"""The Nix path (`nix-build default.nix`, unchanged, against tests/nix/testpkgs.nix,
whose dockerTools.buildImage does what nixpkgs' does) and `urunix build` give
the same image by content: Docker loads both, and the container file trees
(names, types, bytes, modes, owners, link targets) and configs (Labels, Env,
Entrypoint, Cmd, WorkingDir, Architecture) are equal. Not the bytes: what
buildImage makes unavoidably different is listed once, with its reason, in
tests/nix/nixhelp.py UNAVOIDABLE. URUNIX_TEST_PKGS runs the same comparison
with another pkgs (nixpkgs' own dockerTools, by hand)."""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path

import pytest

from cli import urunix
from nixhelp import assert_same_content, build_example, member_entry, need_nix
from standins import EXAMPLES  # noqa: E402

# Examples whose rootfs/kernel/init come from image archives are compared
# by tests/e2e/test_nix_rootfs.py.
WITH_ARGS_NIX = sorted(
    d.name for d in EXAMPLES.iterdir() if (d / "args.nix").exists() and "rootfs" not in (d / "args.nix").read_text()
)
MADE_BY_DOCKER = ("dev", "proc", "sys", "etc", ".dockerenv")


def tree(root: Path) -> dict[str, tuple[int, str]]:
    """{path: (mode, sha256 | "dir")} of an unpacked container root (kept for
    tests/e2e/test_nix_rootfs.py)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = "/" + str(p.relative_to(root))
        if rel.startswith(tuple("/" + m for m in MADE_BY_DOCKER)):
            continue  # made by Docker for every container
        if p.is_file() and not p.is_symlink():
            out[rel] = (p.stat().st_mode & 0o7777, hashlib.sha256(p.read_bytes()).hexdigest())
        elif p.is_dir():
            out[rel] = (p.stat().st_mode & 0o7777, "dir")
    return out


def exported(tar_path: Path) -> dict[str, tuple]:
    """What `docker export` gives: {path: (type, mode, uid, gid, sha256 or link target)}."""
    out = {}
    with tarfile.open(tar_path) as t:
        for m in t:
            path = os.path.normpath("/" + m.name)
            if path == "/" or path.split("/")[1] in MADE_BY_DOCKER:
                continue
            out[path] = member_entry(t, m)
    return out


def content(docker, archive: Path, dest: Path) -> tuple[dict, dict]:
    ref = docker.load(archive)
    try:
        cfg = docker.inspect(ref)
        docker.export(ref, dest)
        c = cfg["Config"]
        config = {k: c.get(k) for k in ("Labels", "Env", "Entrypoint", "Cmd", "WorkingDir")}
        config["Env"] = config["Env"] or []  # UNAVOIDABLE["Env"]
        config["WorkingDir"] = config["WorkingDir"] or None
        config["Architecture"] = cfg["Architecture"]
        return config, exported(dest.with_suffix(".tar"))
    finally:
        docker.run("rmi", ref)


@pytest.mark.docker
@pytest.mark.nix
@pytest.mark.parametrize("name", WITH_ARGS_NIX)
def test_nix_and_native_images_have_the_same_content(name, tmp_path, docker):
    need_nix()
    nix_result = build_example(name, tmp_path / "nix")
    work = tmp_path / "nix" / name
    urunix("build", "args.nix", "-o", str(tmp_path / "native.tar"), "--backend", "native", cwd=work, check=True)
    nix = content(docker, nix_result, tmp_path / "nix-root")
    native = content(docker, tmp_path / "native.tar", tmp_path / "native-root")
    assert nix[0] == native[0]
    assert nix[1] == native[1]
    assert "/urunc.json" in nix[1] and not [p for p in nix[1] if p.startswith("/nix")]
    # The archives themselves, read without Docker, agree too.
    assert_same_content(nix_result, tmp_path / "native.tar")
