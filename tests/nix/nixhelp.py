"""Helpers for the Nix tests: run nix-instantiate / nix-build against the
recording stand-in (recordpkgs.nix) or the host-tools pkgs (testpkgs.nix),
and read a built docker-archive back. `build_example` returns the result of
`nix-build default.nix` for an example, for reuse by other suites (the
docker comparison with the native build)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
NIX_OPTS = ["--option", "substituters", ""]
FLAKES = ["--extra-experimental-features", "nix-command flakes"]


def need_nix() -> None:
    if not shutil.which("nix-instantiate") or not shutil.which("nix-build"):
        if os.environ.get("URUNIX_REQUIRE_TOOLS") == "1":
            pytest.fail("nix is not installed (URUNIX_REQUIRE_TOOLS=1)")
        pytest.skip("nix is not installed")


def host_python() -> str:
    """A python3 for builders: NIX_TEST_PYTHON, /usr/bin/python3, or ours."""
    return os.environ.get("NIX_TEST_PYTHON") or (
        "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else os.path.realpath(sys.executable)
    )


def env() -> dict[str, str]:
    return {**os.environ, "NIX_TEST_PYTHON": host_python()}


def testpkgs_expr() -> str:
    """The `pkgs` real builds get: testpkgs.nix, or URUNIX_TEST_PKGS (a Nix
    expression), e.g. a pkgs with nixpkgs' own dockerTools and lib for a
    check by hand."""
    return os.environ.get("URUNIX_TEST_PKGS") or f"import {HERE / 'testpkgs.nix'} {{ }}"


def run(argv: list[str], cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=env(), timeout=600)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({r.returncode}):\n{r.stderr[-6000:]}")
    return r


def eval_json(expr: str, cwd: Path | None = None):
    r = run(["nix-instantiate", "--eval", "--strict", "--json", "--expr", expr, *NIX_OPTS], cwd=cwd)
    return json.loads(r.stdout)


def eval_error(expr: str, cwd: Path | None = None) -> str:
    r = run(["nix-instantiate", "--eval", "--strict", "--json", "--expr", expr, *NIX_OPTS], cwd=cwd, check=False)
    assert r.returncode != 0, f"expected an evaluation error, got {r.stdout}"
    return r.stderr


def nix_build(target: str | Path, out: Path, *args: str, cwd: Path | None = None) -> Path:
    run(["nix-build", str(target), "-o", str(out), "--arg", "pkgs", testpkgs_expr(), *NIX_OPTS, *args], cwd=cwd)
    return Path(os.path.realpath(out))


def bimanix_checkout(dest: Path) -> Path:
    """What a bimanix user has: the repository's default.nix, nix/ and the
    helpers it reads, in one directory they put args.nix and files into."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "default.nix", dest / "default.nix")
    shutil.copytree(ROOT / "nix", dest / "nix", dirs_exist_ok=True)
    # The Python package (its *.py and *.json): the rootfs derivations run
    # helpers/build_rootfs.py, which imports it.
    pkg = ROOT / "generator" / "urunix"
    gen = dest / "generator" / "urunix"
    for p in sorted(pkg.rglob("*")):
        if p.is_file() and p.suffix in (".py", ".json") and "__pycache__" not in p.parts:
            (gen / p.relative_to(pkg)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(p, gen / p.relative_to(pkg))
    return dest


def build_example(name: str, workdir: Path) -> Path:
    """`nix-build default.nix` (unchanged, bimanix style) for examples/NAME
    with stand-in files; returns the docker-archive's store path."""
    sys.path.insert(0, str(ROOT / "tests"))
    from standins import example

    d = bimanix_checkout(workdir / name)
    example(name, d)
    return nix_build(d / "default.nix", d / "result", cwd=d)


def read_image(archive: Path) -> tuple[dict, dict[str, tuple[int, bytes]], list[str]]:
    """(image config, {path: (mode, bytes)} of the merged rootfs, layer
    history names) of a docker-archive."""
    with tarfile.open(archive) as t:
        manifest = json.load(t.extractfile("manifest.json"))[0]
        config = json.load(t.extractfile(manifest["Config"]))
        files: dict[str, tuple[int, bytes]] = {}
        for layer in manifest["Layers"]:
            with tarfile.open(fileobj=t.extractfile(layer)) as lt:
                for m in lt.getmembers():
                    if m.isfile():
                        files["/" + (m.name[2:] if m.name.startswith("./") else m.name).lstrip("/")] = (
                            m.mode,
                            lt.extractfile(m).read(),
                        )
    history = [h.get("created_by", "") for h in config.get("history", [])]
    return config, files, history


# What "the same image" means between the Nix path and `urunix build`: the
# same content and config, not the same bytes. nixpkgs' dockerTools.buildImage
# writes its own layer (a `./` entry, user/group names root, mtime 1980-01-01
# from stdenv's SOURCE_DATE_EPOCH), its own config (`preferLocalBuild`, no
# history text) and its own archive layout, so these are left out, and:
UNAVOIDABLE = {
    "Env": "buildImage sets Env to the base image's Env + config.Env, so no Env is [] (native: absent)",
    "/": "buildImage's layer has a `./` entry; native writes none, and Docker's `/` is 0755 root: compared as that",
    "mtime": "buildImage's layer has mtime 315532800 (1980-01-01, stdenv); native uses `created`",
}
CONFIG_KEYS = ("Labels", "Env", "Entrypoint", "Cmd", "WorkingDir")


def member_entry(t: tarfile.TarFile, m: tarfile.TarInfo) -> tuple:
    """A tar member as the content comparisons see it: (type, mode, uid,
    gid, sha256 of the bytes or the link target)."""
    import hashlib

    if m.isfile():
        what = ("file", hashlib.sha256(t.extractfile(m).read()).hexdigest())
    elif m.isdir():
        what = ("dir", "")
    elif m.issym():
        what = ("symlink", m.linkname)
    elif m.islnk():
        what = ("hardlink", os.path.normpath("/" + m.linkname))
    else:
        what = (str(m.type), f"{m.devmajor}:{m.devminor}")
    return (what[0], m.mode & 0o7777, m.uid, m.gid, what[1])


def image_content(archive: Path) -> tuple[dict, dict[str, tuple]]:
    """(config, tree) of a docker-archive (plain or compressed): config is
    Labels, Env, Entrypoint, Cmd, WorkingDir and Architecture; tree maps
    each path of the merged layers to (type, mode, uid, gid, sha256 of the
    bytes or the link target). See UNAVOIDABLE for what is normalized."""
    with tarfile.open(archive) as t:
        manifest = json.load(t.extractfile("manifest.json"))[0]
        cfg = json.load(t.extractfile(manifest["Config"]))
        # `/` as Docker makes it when no layer has an entry for it
        tree: dict[str, tuple] = {"/": ("dir", 0o755, 0, 0, "")}
        for layer in manifest["Layers"]:
            with tarfile.open(fileobj=t.extractfile(layer)) as lt:
                for m in lt:
                    path = os.path.normpath("/" + m.name)
                    base = os.path.basename(path)
                    if base.startswith(".wh."):
                        gone = os.path.join(os.path.dirname(path), base[4:])
                        tree = {p: v for p, v in tree.items() if p != gone and not p.startswith(gone + "/")}
                        continue
                    tree[path] = member_entry(lt, m)
    c = cfg.get("config") or {}
    config = {k: c.get(k) for k in CONFIG_KEYS}
    config["Env"] = config["Env"] or []
    config["Architecture"] = cfg.get("architecture")
    return config, tree


def assert_same_content(nix: Path, native: Path) -> None:
    a, b = image_content(nix), image_content(native)
    assert a[0] == b[0], f"config differs:\nnix    {a[0]}\nnative {b[0]}"
    only = sorted(set(a[1]) ^ set(b[1]))
    assert not only, f"paths in only one image: {only[:20]}"
    diff = [(p, a[1][p], b[1][p]) for p in sorted(a[1]) if a[1][p] != b[1][p]]
    assert not diff, f"entries differ (path, nix, native): {diff[:20]}"
