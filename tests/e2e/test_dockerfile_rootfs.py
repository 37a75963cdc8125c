"""kraft's way: `rootfs.from = "./Dockerfile"` builds the Dockerfile with the
Docker Engine, and the image it makes becomes the initrd, block or raw
rootfs like any image archive. Without an engine the user is told what is
needed."""

from __future__ import annotations

import subprocess

import pytest

from cli import urunix

DOCKERFILE = """FROM scratch
COPY redis.conf /conf/redis.conf
COPY app /bin/app
CMD ["/bin/app", "--config", "/conf/redis.conf"]
"""


def project(tmp_path, rtype: str, guest: str = "unikraft", monitor: str = "qemu", extra: str = ""):
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    (tmp_path / "redis.conf").write_text("port 6379\n")
    (tmp_path / "app").write_bytes(b"\x7fELF app")
    (tmp_path / "kernel").write_bytes(b"\x7fELF kernel")
    (tmp_path / "spec.yaml").write_text(
        f"name: urunix-test/dockerfile-rootfs\ntag: {rtype}\n"
        f"kernel: ./kernel\n"
        f"rootfs: {{type: {rtype}, from: ./Dockerfile}}\n"
        f"annotations: {{unikernelType: {guest}, hypervisor: {monitor}}}\n{extra}"
    )
    return tmp_path


@pytest.mark.docker
def test_initrd_from_a_dockerfile(tmp_path, docker):
    work = project(tmp_path, "initrd", extra="cmd: [redis-server, /conf/redis.conf]\n")
    r = urunix("build", "spec.yaml", "--backend", "native", cwd=work, env={"DOCKER_HOST": docker.env["DOCKER_HOST"]})
    assert r.returncode == 0, r.stderr
    ref = docker.load(work / "result")
    root = docker.export(ref, tmp_path / "rootfs")
    labels = docker.inspect(ref)["Config"]["Labels"]
    assert labels["com.urunc.unikernel.initrd"] == "/.boot/rootfs"
    out = tmp_path / "unpacked"
    out.mkdir()
    with open(root / ".boot" / "rootfs", "rb") as f:
        subprocess.run(["cpio", "-idm", "--quiet"], stdin=f, cwd=out, check=True)
    assert (out / "conf" / "redis.conf").read_text() == "port 6379\n"
    assert (out / "bin" / "app").read_bytes() == b"\x7fELF app"
    # the engine keeps no image of ours
    assert "urunix-rootfs/" not in docker.run("images", "--format", "{{.Repository}}").stdout.decode()
    docker.run("rmi", ref)


@pytest.mark.docker
def test_linux_guest_takes_the_dockerfile_cmd(tmp_path, docker):
    work = project(tmp_path, "block", guest="linux", monitor="firecracker")
    r = urunix("build", "spec.yaml", "--backend", "native", cwd=work, env={"DOCKER_HOST": docker.env["DOCKER_HOST"]})
    assert r.returncode == 0, r.stderr
    ref = docker.load(work / "result")
    cfg = docker.inspect(ref)["Config"]
    # a Linux guest: the program in Entrypoint (no init here: it is init=), its arguments in Cmd
    assert (cfg["Entrypoint"], cfg["Cmd"]) == (["/bin/app"], ["--config", "/conf/redis.conf"])
    assert cfg["Labels"]["com.urunc.unikernel.block"] == "/.boot/rootfs.ext2"
    docker.run("rmi", ref)


def test_no_engine_names_the_requirement(tmp_path):
    work = project(tmp_path, "initrd", extra="cmd: [redis-server]\n")
    r = urunix("build", "spec.yaml", "--backend", "native", cwd=work, env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert r.returncode == 1, r.stderr
    assert "needs a running Docker Engine" in r.stderr and "Traceback" not in r.stderr
    assert not (work / "result").exists()
