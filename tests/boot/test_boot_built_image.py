"""The whole way: `urunix build` a Linux initrd image (the urunc docs'
recipe: an app container image, a kernel image, urunit as init), then, for
each targeted urunc release, take the kernel command line and urunit.conf
our urunc model (checked against urunc's own code in
tests/unit/test_urunc_model.py) says that release builds for the image, and
boot it for real under qemu with the urunit stand-in as init. With `docker
run IMAGE ARGS`, the init must stay in place and ARGS reach the program."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

import harness as H
from fixtures import boot_busybox, boot_kernel  # noqa: F401  (pytest fixtures)
from cli import urunix
from urunix import guest_view, urunc_model as M
from urunix.guest_args import app_view
from urunix.helpers import cpio
from urunix.helpers.image_writer import Member
from urunix.imagefile import open_image
from urunix.rootfs.flatten import read_file

SPEC = """{
  name = "urunix-test/urunit-boot";
  tag = "1";
  rootfs = { type = "initrd"; from = "./app.tar"; };
  kernel = { from = "./kernel.tar"; path = "/kernel"; };
  init = { from = "./urunit"; path = "/urunit"; };
  annotations = { unikernelType = "linux"; hypervisor = "qemu"; };
}
"""
APP_CMD = ["/bin/app", "--default"]
RUN_ARGS = ["--port", "8080", "two words"]


def _docker_archive(files: dict, config: dict, devices: dict = {}) -> bytes:
    """A minimal `docker save` archive: one layer, a config, manifest.json."""
    lb = H.layer_tar(files, devices)
    cfg = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(lb).hexdigest()]},
        }
    ).encode()
    cname = hashlib.sha256(cfg).hexdigest() + ".json"
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as t:
        for n, d in (
            (cname, cfg),
            ("layer.tar", lb),
            ("manifest.json", json.dumps([{"Config": cname, "RepoTags": ["t/t:1"], "Layers": ["layer.tar"]}]).encode()),
        ):
            ti = tarfile.TarInfo(n)
            ti.size = len(d)
            t.addfile(ti, io.BytesIO(d))
    return out.getvalue()


@pytest.fixture(scope="module")
def built(tmp_path_factory, boot_kernel, boot_busybox) -> Path:
    d = tmp_path_factory.mktemp("urunit-boot")
    (d / "app.tar").write_bytes(
        _docker_archive(
            {
                "bin/busybox": (0o755, Path(boot_busybox).read_bytes()),
                "bin/sh": "busybox",
                "bin/app": (0o755, H.URUNIT_APP.encode()),
                "proc/.keep": (0o644, b""),
                "sys/.keep": (0o644, b""),
            },
            {"Cmd": APP_CMD, "Env": ["URUNIX_TEST=hello"]},
            devices={"dev/console": (5, 1)},
        )
    )
    (d / "kernel.tar").write_bytes(_docker_archive({"kernel": (0o644, Path(boot_kernel).read_bytes())}, {}))
    (d / "urunit").write_bytes(H.URUNIT_STANDIN.read_bytes())
    (d / "urunit").chmod(0o755)
    (d / "args.nix").write_text(SPEC)
    r = urunix("build", "args.nix", "--backend", "native", "-o", "image.tar", cwd=d)
    assert r.returncode == 0, r.stderr
    return d / "image.tar"


def _boot(image: Path, tmp: Path, release: str, run_args) -> tuple[M.Result, H.BootResult]:
    img = guest_view.load(str(image))
    r = M.model(img, release, "docker", "overlayfs", run_args)
    assert r.outcome == "started" and r.rootfs == "initrd", r
    with open_image(str(image)) as (info, store):
        kernel = read_file(store, info, r.view["kernel"], limit=64 << 20)
        initrd = read_file(store, info, r.view["initrd"], limit=64 << 20)
    (tmp / "kernel").write_bytes(kernel)
    data = initrd
    if r.urunit_conf_where == "initrd":
        # urunc appends urunit.conf to the image's initrd as more newc records
        cpio.write_file(
            [Member("urunit.conf", "file", 0o644, size=len(r.urunit_conf), data=r.urunit_conf.encode())], str(tmp / "conf.cpio")
        )
        data += (tmp / "conf.cpio").read_bytes()
    (tmp / "initrd").write_bytes(data)
    return r, H.boot(tmp / "kernel", r.guest_cmdline, initrd=tmp / "initrd", timeout=90)


def _check(out: H.BootResult, args: list, view: dict | None = None) -> None:
    assert not out.timed_out, out.output[-3000:]
    pids = out.pids()
    assert pids is not None, out.output[-3000:]
    assert pids[0] != 1 and pids[1] == 1, pids
    assert out.value("URUNIX-INIT").split()[:2] == ["/bin/sh", "/urunit"], out.output[-2000:]
    assert out.args() == args, out.output[-2000:]
    assert out.value("URUNIX-ENV") == "URUNIX_TEST=hello"
    if view is not None:  # the model's view of what the program gets is what it got
        assert view["argv"] == ["/bin/app", *args] and "URUNIX_TEST=hello" in view["env"], view


@pytest.mark.slow
@pytest.mark.parametrize("release", ["v0.6.0", "v0.7.0", "main"])
def test_built_image_boots_with_urunit(built, tmp_path, release):
    r, out = _boot(built, tmp_path, release, None)
    assert r.process_args[:2] == ["/urunit", "/bin/app"], r.process_args
    _check(out, APP_CMD[1:], app_view(guest_view.load(str(built)), r))


@pytest.mark.slow
@pytest.mark.parametrize("release", ["v0.6.0", "v0.7.0", "main"])
def test_built_image_docker_run_args_keep_the_init(built, tmp_path, release):
    r, out = _boot(built, tmp_path, release, RUN_ARGS)
    assert r.process_args == ["/urunit", "/bin/app", *RUN_ARGS], r.process_args
    _check(out, RUN_ARGS)
