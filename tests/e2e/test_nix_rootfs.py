"""Rootfs, kernel and init through the Nix path, loaded into Docker and
compared with the native build: a Linux guest whose initrd is built from an
image archive, whose kernel comes out of another image archive, with an init
put first in the argv. Both through `nix-build default.nix` (the spec gives
cmd and env, which Nix cannot read from the image at evaluation time) and
through `urunix generate` (which reads them from the image itself, like
`urunix build`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cli import urunix
from nixhelp import HERE, assert_same_content, host_python, need_nix, nix_build
from test_nix_vs_native import tree  # noqa: E402
from test_rootfs import make_tree, spec_dir  # noqa: E402

from urunix import nixgen  # noqa: E402
from urunix.loaders import load  # noqa: E402
from urunix.validate import validate  # noqa: E402

SPEC = """{{
  name = "urunix-test/nix-rootfs";
  tag = "{rtype}";
  rootfs = {{ type = "{rtype}"; from = "./app.tar"; include = {{ "./conf" = "/etc/conf"; }}; }};
  kernel = {{ from = "./kernel.tar"; path = "/kernel"; }};
  init = {{ from = "./urunit"; path = "/urunit"; }};
  annotations = {{ unikernelType = "linux"; hypervisor = "qemu"; }};
  {argv}
}}
"""
ARGV = 'cmd = [ "/bin/app" "arg1" "two words" ]; env = { URUNIX_TEST = "hello"; };'


def seen(docker, archive: Path, dest: Path) -> tuple:
    ref = docker.load(archive)
    cfg = docker.inspect(ref)
    root = docker.export(ref, dest)
    c = cfg["Config"]
    # (Entrypoint, Cmd): a Linux guest's init and program, then its arguments
    out = (
        c["Labels"],
        (c.get("Entrypoint"), c["Cmd"]),
        c.get("Env"),
        c.get("WorkingDir"),
        cfg["Architecture"],
        tree(root),
        (root / "urunc.json").read_bytes(),
    )
    docker.run("rmi", ref)
    return out


def artifact(root_tree: dict, path: str) -> str:
    return root_tree[path][1]


@pytest.mark.docker
@pytest.mark.nix
@pytest.mark.parametrize("rtype", ["initrd", "block"])
def test_linux_guest_from_images_nix_matches_native(tmp_path, docker, rtype):
    need_nix()
    src = tmp_path / "src"
    src.mkdir()
    make_tree(src)
    d = spec_dir(tmp_path / "nix", src, SPEC.format(rtype=rtype, argv=ARGV))
    nix = nix_build(d / "default.nix", d / "result", cwd=d)
    urunix("build", "args.nix", "-o", str(tmp_path / "native.tar"), "--backend", "native", cwd=d, check=True)
    a = seen(docker, nix, tmp_path / "r-nix")
    b = seen(docker, tmp_path / "native.tar", tmp_path / "r-native")
    labels, cmd, env, workdir, arch, files, uj = b
    assert cmd == (["/urunit", "/bin/app"], ["arg1", "two words"])
    assert env == ["URUNIX_TEST=hello"]
    assert labels["com.urunc.unikernel.cmdline"] == "/urunit /bin/app arg1 'two words'"
    target = "/.boot/rootfs" if rtype == "initrd" else "/.boot/rootfs.ext2"
    assert labels[f"com.urunc.unikernel.{'initrd' if rtype == 'initrd' else 'block'}"] == target
    # Everything but WorkingDir (the image's, which only `urunix build` and
    # `urunix generate` read) is the same, the rootfs artifact byte for byte.
    # (Docker creates the WorkingDir in the container, hence /srv there.)
    assert workdir == "/srv" and a[3] in (None, "")
    assert b[5].pop("/srv") == (0o755, "dir")
    assert a[:3] + a[4:] == b[:3] + b[4:]
    assert artifact(a[5], target) == artifact(b[5], target)
    assert a[5]["/kernel"] == b[5]["/kernel"]


@pytest.mark.docker
@pytest.mark.nix
def test_generated_expression_reads_the_image_command(tmp_path, docker):
    """No cmd in the spec: `urunix generate` takes Entrypoint+Cmd, Env and
    WorkingDir from app.tar, so the Nix-built image has the native one's
    content and config."""
    need_nix()
    src = tmp_path / "src"
    src.mkdir()
    make_tree(src)
    d = spec_dir(tmp_path / "w", src, SPEC.format(rtype="initrd", argv=""))
    image, _ = validate(load(d / "args.nix"))
    out = nixgen.generate(image, d / "args.nix", tmp_path / "gen")
    result = nixgen.nix_build(out, tmp_path / "result", f'import {HERE / "testpkgs.nix"} {{ python = "{host_python()}"; }}')
    urunix("build", "args.nix", "-o", str(tmp_path / "native.tar"), "--backend", "native", cwd=d, check=True)
    assert_same_content(Path(result), tmp_path / "native.tar")
    a = seen(docker, Path(result), tmp_path / "r-nix")
    assert a[1] == (["/urunit", "/bin/app"], ["arg1", "two words"])
    assert a[2] == ["URUNIX_TEST=hello"] and a[3] == "/srv"
    cpio = (
        subprocess.run(
            ["cpio", "-it", "--quiet"],
            input=(tmp_path / "r-nix" / ".boot" / "rootfs").read_bytes(),
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .splitlines()
    )
    assert {"urunit", "bin/app", "etc/conf/redis.conf"} <= set(cpio)
