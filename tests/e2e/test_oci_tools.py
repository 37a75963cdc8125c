"""The OCI outputs, read by independent tools: skopeo and umoci."""

from __future__ import annotations

import base64
import json
import subprocess

import pytest

from cli import urunix
from support import need
from standins import example, standin_bytes


@pytest.fixture
def work(tmp_path):
    return example("chttp-unikraft-qemu", tmp_path / "ex")


WANT = {
    "com.urunc.unikernel.binary": "/unikernel/kernel",
    "com.urunc.unikernel.cmdline": "/chttp",
    "com.urunc.unikernel.hypervisor": "qemu",
    "com.urunc.unikernel.initrd": "/unikernel/rootfs.cpio",
    "com.urunc.unikernel.unikernelType": "unikraft",
}


def test_oci_archive_with_skopeo(work):
    skopeo = need("skopeo")
    urunix("build", "args.nix", "-o", "img.tar", "--format", "oci-archive", "--backend", "native", cwd=work, check=True)
    info = json.loads(
        subprocess.run([skopeo, "inspect", "oci-archive:img.tar"], cwd=work, capture_output=True, text=True, check=True).stdout
    )
    assert info["Labels"] == WANT
    assert info["Architecture"] and info["Os"] == "linux"
    assert len(info["Layers"]) == 3  # kernel, rootfs (initrd), urunc.json
    raw = json.loads(
        subprocess.run(
            [skopeo, "inspect", "--raw", "oci-archive:img.tar"], cwd=work, capture_output=True, text=True, check=True
        ).stdout
    )
    assert raw["annotations"] == WANT  # manifest annotations for OCI consumers


def test_docker_archive_with_skopeo(work):
    skopeo = need("skopeo")
    urunix("build", "args.nix", "--backend", "native", cwd=work, check=True)
    info = json.loads(
        subprocess.run([skopeo, "inspect", "docker-archive:result"], cwd=work, capture_output=True, text=True, check=True).stdout
    )
    assert info["Labels"] == WANT


def test_oci_layout_with_umoci(work, tmp_path):
    umoci = need("umoci")
    urunix("build", "args.nix", "-o", "layout", "--format", "oci", "--backend", "native", cwd=work, check=True)
    tag = "test"
    subprocess.run(
        [umoci, "unpack", "--rootless", "--image", f"layout:{tag}", str(tmp_path / "bundle")],
        cwd=work,
        check=True,
        capture_output=True,
    )
    root = tmp_path / "bundle" / "rootfs"
    assert (root / "unikernel" / "kernel").read_bytes() == standin_bytes("app-elfloader-qemu-x86_64-initrd_qemu-x86_64")
    assert (root / "unikernel" / "rootfs.cpio").read_bytes() == standin_bytes("rootfs.cpio")
    doc = json.loads((root / "urunc.json").read_text())
    assert {k: base64.b64decode(v).decode() for k, v in doc.items()} == WANT
    config = json.loads((tmp_path / "bundle" / "config.json").read_text())
    assert config["process"]["args"] == ["/chttp"]


@pytest.mark.parametrize("fmt,out", [("docker-archive", "result"), ("oci-archive", "img.tar"), ("oci", "layout")])
def test_inspect_reads_every_format(work, fmt, out):
    urunix("build", "args.nix", "-o", out, "--format", fmt, "--backend", "native", cwd=work, check=True)
    r = urunix("inspect", out, "--json", cwd=work, check=True)
    report = json.loads(r.stdout)
    assert report["disagreements"] == []
    assert report["uruncJson"] == {k.rsplit(".", 1)[1]: v for k, v in WANT.items()}
    assert report["cmd"] == ["/chttp"]
    assert report["repoTags"] == ["urunc/prebuilt/chttp-unikraft-qemu:test"]


def test_inspect_flags_a_disagreement(work, tmp_path):
    """An image whose labels and urunc.json disagree (as a hand-made one may)."""
    from urunix.helpers import image_writer

    p = {
        "format": "docker-archive",
        "repoTags": ["x/y:1"],
        "created": "1970-01-01T00:00:01Z",
        "architecture": "amd64",
        "config": {"Cmd": ["a"], "Labels": {"com.urunc.unikernel.binary": "/a"}},
        "layers": [
            {
                "name": "m",
                "entries": [
                    {
                        "type": "file",
                        "path": "/urunc.json",
                        "data": json.dumps({"com.urunc.unikernel.binary": base64.b64encode(b"/b").decode()}),
                    }
                ],
            }
        ],
    }
    image_writer.write_atomic(p, str(tmp_path / "bad.tar"))
    r = urunix("inspect", str(tmp_path / "bad.tar"))
    assert r.returncode == 1
    assert 'DISAGREEMENT: binary: label "/a" but urunc.json "/b"' in r.stdout


def test_inspect_rejects_what_is_not_an_image(tmp_path):
    (tmp_path / "x").write_text("hello")
    r = urunix("inspect", str(tmp_path / "x"))
    assert r.returncode == 2 and "not an image archive" in r.stderr and "Traceback" not in r.stderr
