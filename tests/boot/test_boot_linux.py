"""Boot for real: Debian's cloud kernel under qemu TCG, with an initrd made
by helpers/cpio.py and block images made by helpers/ext.py, on the kernel
command line urunc builds. The init prints a marker, its argv, an
environment variable and what / is, then powers off."""

from __future__ import annotations

import pytest

import harness as H
from fixtures import boot_busybox, boot_kernel  # noqa: F401  (pytest fixtures)
from urunix.helpers import cpio, ext

ARGV = ["/init", "arg1", "two words"]
# the kernel splits on spaces and knows no single quotes: urunc's quoting
# reaches init as two words, for urunit to regroup
GUEST_ARGS = ["arg1", "'two", "words'"]
ENV = ["URUNIX_TEST=hello"]


def check(r: H.BootResult) -> None:
    assert not r.timed_out, "no power-off within the timeout:\n" + r.output[-3000:]
    assert r.ok, "no marker on the console:\n" + r.output[-3000:]
    assert r.args() == GUEST_ARGS, r.output[-2000:]
    assert r.value("URUNIX-ENV") == "URUNIX_TEST=hello"


@pytest.mark.slow
@pytest.mark.parametrize("compress", [False, True], ids=["cpio", "cpio.gz"])
def test_boot_initrd(boot_kernel, boot_busybox, tmp_path, compress):
    initrd = tmp_path / ("rootfs.cpio" + (".gz" if compress else ""))
    cpio.write_file(H.init_members(boot_busybox), str(initrd), gzip_level=6 if compress else None)
    cmdline = H.urunc_cmdline(ARGV, initrd=True, env=ENV)
    assert cmdline == (
        "panic=-1 console=ttyS0 root=/dev/ram0 rw ip=172.17.0.2::172.17.0.1:255.255.0.0:urunc:eth0:off "
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOSTNAME=c0ffee000001 "
        "URUNIX_TEST=hello rdinit=/init -- arg1 'two words'"
    )  # urunc v0.6.0's
    r = H.boot(boot_kernel, cmdline, initrd=initrd)
    check(r)
    assert r.value("URUNIX-ROOT") == "rootfs rootfs"


@pytest.mark.slow
@pytest.mark.parametrize("fs", ["ext2", "ext4"])
def test_boot_block(boot_kernel, boot_busybox, tmp_path, fs):
    disk = tmp_path / f"rootfs.{fs}"
    ext.write_ext(H.init_members(boot_busybox), str(disk), fs=fs)
    cmdline = H.urunc_cmdline(ARGV, initrd=False, env=ENV, block_dev="/dev/nvme0n1")
    r = H.boot(boot_kernel, cmdline, disk=disk)
    check(r)
    assert r.value("URUNIX-ROOT") == f"/dev/root {fs}"
