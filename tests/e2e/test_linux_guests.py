"""The three Linux recipes of the urunc docs ("Running existing containers
with Linux": devmapper rootfs, ext2 block image, initrd), each as ONE spec
instead of dd, mkfs.ext2, mount, docker export and cpio by hand as root.

The container image and the kernel image are made here with Docker (`docker
import` + `docker save`, no registry), the images urunix builds are loaded
into Docker, and what urunc would boot is booted for real under qemu with
Debian's cloud kernel, on the kernel command line urunc builds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import boot.harness as H
from boot.fixtures import boot_busybox, boot_kernel  # noqa: F401  (fixtures)
from cli import urunix
from urunix.helpers import ext
from urunix.helpers.image_writer import expand

APP_ARGV = ["/bin/app", "arg1", "two words"]
# the app stands in for redis/nginx/whoami: it is the boot harness's init
# script, printing a marker, its argv and $URUNIX_TEST, then powering off.
URUNIT = '#!/bin/busybox sh\n# stands in for urunit: run the app\nexec "$@"\n'

SPEC = """{{
  name = "urunix-test/app-linux-qemu";
  tag = "{rtype}";
  rootfs = {{ type = "{rtype}"; from = "./app.tar"; }};
  kernel = {{ from = "./kernel.tar"; path = "/kernel"; }};
  init = {{ from = "./urunit"; path = "/urunit"; }};
  annotations = {{ unikernelType = "linux"; hypervisor = "qemu"; }};
}}
"""


@pytest.fixture(scope="module")
def images(tmp_path_factory, docker, boot_kernel, boot_busybox) -> Path:
    """app.tar (a container image with a Cmd and an Env, as `docker save`
    writes it), kernel.tar (a kernel image with /kernel, like the published
    linux-kernel-qemu images) and a local urunit stand-in."""
    d = tmp_path_factory.mktemp("linux")
    app = H.layer_tar(
        {
            "bin/busybox": (0o755, Path(boot_busybox).read_bytes()),
            "bin/sh": "busybox",
            "bin/app": (0o755, H.INIT_SCRIPT.encode()),
            "proc/.keep": (0o644, b""),
            "sys/.keep": (0o644, b""),
        },
        devices={"dev/console": (5, 1)},
    )
    docker.run(
        "import",
        "--change",
        f"CMD {json.dumps(APP_ARGV)}",
        "--change",
        "ENV URUNIX_TEST=hello",
        "-",
        "urunix-test/app:1",
        input=app,
    )
    docker.run("save", "-o", str(d / "app.tar"), "urunix-test/app:1")
    docker.run("import", "-", "urunix-test/kernel:1", input=H.layer_tar({"kernel": (0o644, Path(boot_kernel).read_bytes())}))
    docker.run("save", "-o", str(d / "kernel.tar"), "urunix-test/kernel:1")
    (d / "urunit").write_text(URUNIT)
    (d / "urunit").chmod(0o755)
    return d


def build(images: Path, tmp_path: Path, docker, rtype: str) -> tuple[dict, Path]:
    work = tmp_path / "w"
    work.mkdir()
    for f in ("app.tar", "kernel.tar", "urunit"):
        (work / f).symlink_to(images / f)
    (work / "args.nix").write_text(SPEC.format(rtype=rtype))
    r = urunix("build", "args.nix", "--backend", "native", cwd=work)
    assert r.returncode == 0, r.stderr
    ref = docker.load(work / "result")
    cfg = docker.inspect(ref)
    root = docker.export(ref, tmp_path / "rootfs")
    docker.run("rmi", ref)
    return cfg, root


def check_config(cfg: dict, extra: dict) -> None:
    c = cfg["Config"]
    # the init and the program in Entrypoint, the image's arguments in Cmd
    # (so `docker run IMAGE ARGS` replaces only the arguments)
    assert (c["Entrypoint"], c["Cmd"]) == (["/urunit", APP_ARGV[0]], APP_ARGV[1:])
    assert "URUNIX_TEST=hello" in c["Env"]
    labels = {k.rsplit(".", 1)[1]: v for k, v in c["Labels"].items()}
    assert labels == {
        "unikernelType": "linux",
        "hypervisor": "qemu",
        "binary": "/kernel",
        "cmdline": "/urunit /bin/app arg1 'two words'",
        **extra,
    }


def check_boot(r: H.BootResult) -> None:
    assert not r.timed_out and r.ok, r.output[-3000:]
    assert r.args() == ["arg1", "'two", "words'"]  # as the kernel hands them over; urunit regroups
    assert r.value("URUNIX-ENV") == "URUNIX_TEST=hello"


@pytest.mark.docker
@pytest.mark.slow
def test_initrd_recipe(images, tmp_path, docker, boot_kernel):
    cfg, root = build(images, tmp_path, docker, "initrd")
    check_config(cfg, {"initrd": "/.boot/rootfs", "useDMBlock": "false", "mountRootfs": "false"})
    cmdline = H.urunc_cmdline(cfg["Config"]["Entrypoint"] + cfg["Config"]["Cmd"], initrd=True, env=["URUNIX_TEST=hello"])
    r = H.boot(root / "kernel", cmdline, initrd=root / ".boot" / "rootfs")
    check_boot(r)
    assert r.value("URUNIX-ROOT") == "rootfs rootfs"


@pytest.mark.docker
@pytest.mark.slow
def test_block_recipe(images, tmp_path, docker, boot_kernel):
    cfg, root = build(images, tmp_path, docker, "block")
    check_config(cfg, {"block": "/.boot/rootfs.ext2", "blkMntPoint": "/", "useDMBlock": "false", "mountRootfs": "false"})
    disk = root / ".boot" / "rootfs.ext2"
    cmdline = H.urunc_cmdline(
        cfg["Config"]["Entrypoint"] + cfg["Config"]["Cmd"], initrd=False, env=["URUNIX_TEST=hello"], block_dev="/dev/nvme0n1"
    )
    r = H.boot(root / "kernel", cmdline, disk=disk)
    check_boot(r)
    assert r.value("URUNIX-ROOT") == "/dev/root ext2"


@pytest.mark.docker
@pytest.mark.slow
def test_devmapper_recipe(images, tmp_path, docker, boot_kernel):
    """raw: the app's tree and the init are the image's own rootfs, which
    urunc hands to the guest as a block device (devmapper). Here the
    exported container rootfs becomes that block device."""
    cfg, root = build(images, tmp_path, docker, "raw")
    check_config(cfg, {"useDMBlock": "true", "mountRootfs": "true"})
    assert (root / "bin" / "app").read_bytes() == H.INIT_SCRIPT.encode()
    assert (root / "urunit").read_text() == URUNIT
    disk = tmp_path / "snapshot.ext2"
    members = [m for m in expand([{"type": "tree", "path": "", "source": str(root)}]) if not m.path.startswith("dev/")]
    from urunix.helpers.image_writer import Member

    ext.write_ext(members + [Member("dev/console", "char", 0o600, devmajor=5, devminor=1)], str(disk))
    cmdline = H.urunc_cmdline(
        cfg["Config"]["Entrypoint"] + cfg["Config"]["Cmd"], initrd=False, env=["URUNIX_TEST=hello"], block_dev="/dev/nvme0n1"
    )
    check_boot(H.boot(root / "kernel", cmdline, disk=disk))
