"""`urunix inspect` for a newcomer (issue 15, items 8-10): a plain image is
called what it is; no Python reprs; a stable --json; clean errors; oci:DIR,
oci:DIR:TAG and docker-daemon:NAME:TAG. Through the real CLI."""

from __future__ import annotations

import json

import pytest

from cli import urunix
from standins import standin_image

NO_NIX = {"URUNIX_NO_NIX": "1"}
KEYS = [
    "schemaVersion",
    "image",
    "format",
    "repoTags",
    "architecture",
    "os",
    "created",
    "entrypoint",
    "cmd",
    "env",
    "labels",
    "uruncJson",
    "manifestAnnotations",
    "uruncImage",
    "missing",
    "disagreements",
]


@pytest.fixture
def built(tmp_path):
    """A urunc image built by urunix, in all three forms."""
    (tmp_path / "hello.hvt").write_bytes(b"\x7fELF")
    (tmp_path / "spec.yaml").write_text(
        "name: x/hello\ntag: v1\nfiles:\n  ./hello.hvt: /unikernel/hello.hvt\nannotations:\n"
        "  unikernelType: rumprun\n  hypervisor: hvt\n  binary: /unikernel/hello.hvt\ncmd: [hello, world]\n"
    )
    for fmt, out in (("docker-archive", "result"), ("oci", "layout")):
        urunix("build", "spec.yaml", "--format", fmt, "-o", out, "--backend", "native", cwd=tmp_path, env=NO_NIX, check=True)
    return tmp_path


def test_a_plain_image_is_called_not_a_urunc_image(tmp_path):
    standin_image(tmp_path / "app.tar")  # what `docker save` gives for an ordinary image
    r = urunix("inspect", "app.tar", cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    out = r.stdout
    assert "not a urunc image" in out and "/urunc.json" in out and "com.urunc.unikernel.* labels" in out
    assert "rootfs: {type: block, from: ./image.tar}" in out and "urunix build" in out
    assert "DISAGREEMENT" not in out and "None" not in out and "['" not in out
    report = json.loads(urunix("inspect", "--json", "app.tar", cwd=tmp_path).stdout)
    assert report["uruncImage"] is False and "/urunc.json" in report["missing"]


def test_human_output_has_no_python_reprs(built):
    r = urunix("inspect", "result", cwd=built)
    assert r.returncode == 0, r.stderr
    assert 'Cmd: ["hello", "world"]' in r.stdout and "Entrypoint: (none)" in r.stdout
    assert "None" not in r.stdout and "['" not in r.stdout and "'/unikernel" not in r.stdout


def test_json_is_stable(built):
    a = urunix("inspect", "--json", "result", cwd=built)
    b = urunix("inspect", "--json", "result", cwd=built)
    assert a.returncode == 0 and a.stdout == b.stdout
    report = json.loads(a.stdout)
    assert list(report) == KEYS and report["schemaVersion"] == 1
    assert report["uruncImage"] is True and report["missing"] == [] and report["disagreements"] == []
    assert report["cmd"] == ["hello", "world"] and report["entrypoint"] is None


@pytest.mark.parametrize(
    "arg,want", [("nothere", "nothere: no such file or directory"), ("oci:nothere", "oci:nothere: no such file or directory")]
)
def test_errors_say_it_once_without_errno(tmp_path, arg, want):
    r = urunix("inspect", arg, cwd=tmp_path)
    assert r.returncode == 2 and want in r.stderr, r.stderr
    assert "Errno" not in r.stderr and r.stderr.count("nothere") == 1


def test_not_an_archive_has_no_errno(tmp_path):
    (tmp_path / "k").write_text("hello")
    r = urunix("inspect", "k", cwd=tmp_path)
    assert r.returncode == 2 and "k: not an image archive" in r.stderr and "Errno" not in r.stderr


def test_oci_dir_and_oci_dir_tag(built):
    for ref in ("layout", "oci:layout", "oci:layout:v1"):
        r = urunix("inspect", "--json", ref, cwd=built)
        assert r.returncode == 0, (ref, r.stderr)
        assert json.loads(r.stdout)["uruncJson"]["binary"] == "/unikernel/hello.hvt"
    r = urunix("inspect", "oci:layout:v2", cwd=built)
    assert r.returncode == 2 and "no image tagged v2" in r.stderr and "allowed: v1" in r.stderr


@pytest.mark.docker
def test_docker_daemon_name_tag(built, docker):
    docker.run("load", "-i", str(built / "result"))
    try:
        r = urunix("inspect", "--json", "docker-daemon:x/hello:v1", env={"DOCKER_HOST": docker.env["DOCKER_HOST"]})
        assert r.returncode == 0, r.stderr
        report = json.loads(r.stdout)
        assert report["image"] == "docker-daemon:x/hello:v1" and report["cmd"] == ["hello", "world"]
        r = urunix("inspect", "docker-daemon:x/nothere:v1", env={"DOCKER_HOST": docker.env["DOCKER_HOST"]})
        assert r.returncode == 2 and "docker cannot save it" in r.stderr and "Traceback" not in r.stderr
    finally:
        docker.run("rmi", "-f", "x/hello:v1", check=False)
