"""Boot a Linux guest with the urunit stand-in (urunit_standin.sh, written
from urunit's documented behaviour) as its init, on the kernel command line
our urunc model (urunix.urunc_model, checked against urunc's own code by
tests/unit/test_urunc_model.py) builds for each targeted release, with
`docker run IMAGE ARGS`-style extra arguments. Checks that the arguments
reach the program intact (a multi-word one regrouped), that the init stays
PID 1 with the program as its child, and that the env and working directory
arrive as that release hands them (kernel line on v0.6.0, /urunit.conf
appended to the initrd from v0.7.0)."""

from __future__ import annotations

from pathlib import Path

import pytest

import harness as H
from fixtures import boot_busybox, boot_kernel  # noqa: F401  (pytest fixtures)
from urunix import urunc_model as M
from urunix.guest_args import app_view
from urunix.helpers import cpio
from urunix.helpers.image_writer import Member, expand

IMAGE = M.Image(
    entrypoint=("/urunit", "/bin/app"),
    cmd=("--default",),
    env=("URUNIX_TEST=hello world",),
    workdir="/srv",
    labels={
        M.PREFIX + "unikernelType": "linux",
        M.PREFIX + "hypervisor": "qemu",
        M.PREFIX + "binary": "/kernel",
        M.PREFIX + "initrd": "/initrd",
    },
    urunc_json=None,
)
RUN_ARGS = ["--port", "8080", "two words", "x y", "z"]
# urunit keeps one multi-word argument and drops everything after it (urunix
# refuses a second one; here it shows the init behaves as urunit does)
EXPECTED = ["--port", "8080", "two words"]


def _initrd(busybox: str, path: Path, urunit_conf: str | None) -> None:
    entries = [
        {"type": "file", "path": "/bin/busybox", "source": busybox, "mode": 0o755},
        {"type": "file", "path": "/urunit", "source": str(H.URUNIT_STANDIN), "mode": 0o755},
        {"type": "file", "path": "/bin/app", "data": H.URUNIT_APP, "mode": 0o755},
        {"type": "dir", "path": "/proc"},
        {"type": "dir", "path": "/sys"},
        {"type": "dir", "path": "/dev"},
        {"type": "dir", "path": "/srv"},
    ]
    members = expand(entries) + [Member("bin/sh", "hardlink", 0o755, target="bin/busybox"), H.console_member()]
    cpio.write_file(sorted(members, key=lambda m: m.path.split("/")), str(path))
    if urunit_conf is not None:
        # urunc appends urunit.conf to the image's initrd as more newc records
        extra = path.with_suffix(".conf.cpio")
        cpio.write_file([Member("urunit.conf", "file", 0o644, size=len(urunit_conf), data=urunit_conf.encode())], str(extra))
        with open(path, "ab") as f:
            f.write(extra.read_bytes())


@pytest.mark.slow
@pytest.mark.parametrize("release", ["v0.6.0", "v0.7.0", "main"])
def test_urunit_standin_gets_docker_run_args(boot_kernel, boot_busybox, tmp_path, release):
    import base64
    import json

    img = M.Image(
        **{
            **IMAGE.__dict__,
            "urunc_json": json.dumps({k: base64.b64encode(v.encode()).decode() for k, v in IMAGE.labels.items()}),
        }
    )
    r = M.model(img, release, "docker", "overlayfs", RUN_ARGS)
    assert r.outcome == "started" and r.rootfs == "initrd", r
    assert r.process_args == ["/urunit", "/bin/app", *RUN_ARGS]
    assert r.guest_cmdline.endswith("rdinit=/urunit -- /bin/app --port 8080 'two words' 'x y' z"), r.guest_cmdline
    initrd = tmp_path / "initrd.cpio"
    _initrd(boot_busybox, initrd, r.urunit_conf if r.urunit_conf_where == "initrd" else None)
    out = H.boot(boot_kernel, r.guest_cmdline, initrd=initrd, timeout=90)
    assert not out.timed_out, out.output[-3000:]
    pids = out.pids()
    assert pids is not None, out.output[-3000:]
    assert pids[0] != 1 and pids[1] == 1, pids
    assert out.value("URUNIX-INIT").split()[:3] in (["/bin/sh", "/urunit", "/bin/app"], ["/urunit", "/bin/app", "--port"]), (
        out.output[-2000:]
    )
    assert out.args() == EXPECTED, out.output[-2000:]
    # the model's view of what the program gets is what it got
    v = app_view(img, r)
    assert v["argv"] == ["/bin/app", *EXPECTED]
    assert [e for e in v["env"] if e.startswith("URUNIX_TEST=")] == [f"URUNIX_TEST={out.value('URUNIX-ENV')[12:]}"]
    assert v["wd"] == out.value("URUNIX-PWD")
    # v0.6.0: env on the kernel line, split at the space, no WorkingDir;
    # v0.7.0+: the whole env and WD from /urunit.conf
    if release == "v0.6.0":
        assert out.value("URUNIX-ENV") == "URUNIX_TEST=hello"
        assert out.value("URUNIX-PWD") == "/"
    else:
        assert out.value("URUNIX-ENV") == "URUNIX_TEST=hello world"
        assert out.value("URUNIX-PWD") == "/srv"
    assert "urunit-standin: app exited with 0" in out.output
