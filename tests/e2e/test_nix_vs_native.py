"""The Nix path (`nix-build default.nix`, unchanged, against the host-tools
test pkgs whose image step is the native image writer) and `urunix build`
give the same image: it loads in Docker with the same labels, Cmd,
architecture, files (bytes and modes) and urunc.json."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "nix"))

from cli import urunix  # noqa: E402
from nixhelp import build_example, need_nix  # noqa: E402
from standins import EXAMPLES  # noqa: E402

# Examples whose rootfs/kernel/init come from image archives are compared
# by tests/e2e/test_nix_rootfs.py.
WITH_ARGS_NIX = sorted(d.name for d in EXAMPLES.iterdir() if (d / "args.nix").exists()
                       and "rootfs" not in (d / "args.nix").read_text())


def tree(root: Path) -> dict[str, tuple[int, str]]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = "/" + str(p.relative_to(root))
        if rel.startswith(("/dev", "/proc", "/sys", "/etc", "/.dockerenv")):
            continue   # made by Docker for every container
        if p.is_file() and not p.is_symlink():
            out[rel] = (p.stat().st_mode & 0o7777, hashlib.sha256(p.read_bytes()).hexdigest())
        elif p.is_dir():
            out[rel] = (p.stat().st_mode & 0o7777, "dir")
    return out


@pytest.mark.docker
@pytest.mark.nix
@pytest.mark.parametrize("name", WITH_ARGS_NIX)
def test_nix_and_native_images_match(name, tmp_path, docker):
    need_nix()
    nix_result = build_example(name, tmp_path / "nix")
    work = tmp_path / "nix" / name
    urunix("build", "args.nix", "-o", str(tmp_path / "native.tar"), "--backend", "native", cwd=work, check=True)

    seen = []
    for archive in (nix_result, tmp_path / "native.tar"):
        ref = docker.load(archive)
        cfg = docker.inspect(ref)
        root = docker.export(ref, tmp_path / f"root{len(seen)}")
        seen.append((ref, cfg["Config"]["Labels"], cfg["Config"]["Cmd"], cfg["Config"].get("Env"),
                     cfg["Architecture"], cfg["Created"], tree(root), (root / "urunc.json").read_bytes()))
        docker.run("rmi", ref)
    assert seen[0] == seen[1]
    # The same plan through the same writer: the very same bytes.
    assert hashlib.sha256(nix_result.read_bytes()).hexdigest() == \
        hashlib.sha256((tmp_path / "native.tar").read_bytes()).hexdigest()
