"""bunny's documented short forms (issue 15, item 5), checked against
bunny's README and hops/package.go: an include without a destination lands
at the same path below /; `- dir:/` makes the directory the rootfs's tree;
`from: local` with a directory builds the rootfs from that directory (bunny
would copy the directory where urunc expects a file). Through the real CLI."""

from __future__ import annotations

import subprocess

import pytest

from cli import urunix

NO_NIX = {"URUNIX_NO_NIX": "1"}
HEAD = "version: v0.1\nplatforms:\n  framework: unikraft\n  monitor: qemu\n"
TAIL = "kernel:\n  from: local\n  path: kernel\ncmdline: nginx\n"


@pytest.fixture
def ctx(tmp_path):
    (tmp_path / "rootfs" / "nginx" / "conf").mkdir(parents=True)
    (tmp_path / "rootfs" / "nginx" / "conf" / "nginx.conf").write_text("worker_processes 1;\n")
    (tmp_path / "rootfs" / "etc").mkdir()
    (tmp_path / "rootfs" / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    (tmp_path / "kernel").write_bytes(b"\x7fELF")
    return tmp_path


def initrd_names(work, archive) -> list[str]:
    from urunix.imagefile import open_image
    from urunix.rootfs.flatten import read_file

    with open_image(str(work / archive)) as (info, store):
        data = read_file(store, info, "/.boot/rootfs", limit=1 << 30)
    (work / "x.cpio").write_bytes(data)
    r = subprocess.run(["cpio", "-t"], stdin=open(work / "x.cpio", "rb"), capture_output=True, text=True)
    return r.stdout.split()


def build(work, rootfs: str, out: str) -> subprocess.CompletedProcess:
    (work / "bunnyfile").write_text(HEAD + rootfs + TAIL)
    return urunix("build", "bunnyfile", "-t", "x/nginx:1", "-o", out, "--backend", "native", cwd=work, env=NO_NIX)


def test_include_without_destination(ctx):
    r = build(ctx, "rootfs:\n  include:\n    - rootfs/nginx\n", "a.tar")
    assert r.returncode == 0, r.stderr
    assert "rootfs/nginx/conf/nginx.conf" in initrd_names(ctx, "a.tar")


def test_include_a_whole_directory_at_root_and_local_directory_agree(ctx):
    r = build(ctx, "rootfs:\n  include:\n    - rootfs:/\n", "b.tar")
    assert r.returncode == 0, r.stderr
    names = initrd_names(ctx, "b.tar")
    assert "nginx/conf/nginx.conf" in names and "etc/hosts" in names
    r = build(ctx, "rootfs:\n  from: local\n  path: rootfs\n", "c.tar")
    assert r.returncode == 0, r.stderr
    assert (ctx / "b.tar").read_bytes() == (ctx / "c.tar").read_bytes()
