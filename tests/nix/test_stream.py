"""`nix-build -A stream`: the image as a script that streams it (layers
one derivation each), against tests/nix/testpkgs.nix: the same image as
the default `result`, a cmdline change rebuilds only the small
derivations, and `docker load` takes the stream from a pipe."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from nixhelp import NIX_OPTS, assert_same_content, image_content, need_nix, nix_build, run
from nixhelp import testpkgs_expr as pkgs_expr
from test_rootfs import SPECS, make_tree, native, spec_dir

pytestmark = pytest.mark.nix


@pytest.fixture(autouse=True)
def _nix():
    need_nix()


@pytest.fixture(scope="module")
def srcdir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("src")
    make_tree(d)
    return d


def streamed(script: Path, out: Path) -> Path:
    with open(out, "wb") as f:
        subprocess.run([str(script)], stdout=f, check=True, timeout=300)
    return out


def archive_layers(archive: Path) -> tuple[list[str], list[str]]:
    """(diff_ids, history) of a docker-archive."""
    with tarfile.open(archive) as t:
        manifest = json.load(t.extractfile("manifest.json"))[0]
        cfg = json.load(t.extractfile(manifest["Config"]))
    return cfg["rootfs"]["diff_ids"], [h.get("created_by", "") for h in cfg.get("history", [])]


@pytest.mark.parametrize("name", ["rumprun-block", "linux-initrd-image"])
def test_stream_is_the_image_of_result(tmp_path, srcdir, name):
    """Same content and config as the default `result`; the big layers are
    the very bytes of the base archive's (same diff_ids), and the stream
    is a small script, not a copy of the image."""
    d = spec_dir(tmp_path, srcdir, SPECS[name])
    result = nix_build(d / "default.nix", d / "result", cwd=d)
    script = nix_build(d / "default.nix", d / "stream", "-A", "stream", cwd=d)
    assert script.is_file() and script.stat().st_size < 8192 and script.stat().st_mode & 0o111
    out = streamed(script, tmp_path / "streamed.tar")
    assert_same_content(out, result)
    ids, history = archive_layers(out)
    base_ids, _ = archive_layers(result)
    assert ids[:-1] == base_ids[:-1] and len(ids) == len(base_ids)
    assert history[-1] == "urunix: urunc.json"
    # a second run streams the same bytes
    assert streamed(script, tmp_path / "again.tar").read_bytes() == out.read_bytes()


@pytest.mark.parametrize("name", ["rumprun-block", "linux-raw-dir"])
def test_stream_is_the_native_archive_byte_for_byte(tmp_path, srcdir, name):
    """The stream is written by the native writer from the native layers:
    the very bytes `urunix build` writes (where the spec says everything
    the native build reads; a rootfs from an image gets Env and WorkingDir
    from the image natively only)."""
    d = spec_dir(tmp_path, srcdir, SPECS[name])
    script = nix_build(d / "default.nix", d / "stream", "-A", "stream", cwd=d)
    out = streamed(script, tmp_path / "streamed.tar")
    assert out.read_bytes() == native(d, tmp_path / "native.tar").read_bytes()


def to_build(d: Path, *args: str) -> list[str]:
    """Names of the derivations `nix-build -A stream` would build now."""
    r = run(
        ["nix-build", str(d / "default.nix"), "-A", "stream", "--dry-run", "--arg", "pkgs", pkgs_expr(), *NIX_OPTS, *args], cwd=d
    )
    block = r.stderr.split("will be built:")[1].split("will be fetched")[0] if "will be built:" in r.stderr else ""
    return sorted(
        re.sub(r"^/nix/store/[0-9a-z]{32}-|\.drv$", "", line.strip())
        for line in block.splitlines()
        if line.strip().endswith(".drv")
    )


def test_cmdline_change_rebuilds_only_the_small_layer(tmp_path, srcdir):
    d = spec_dir(tmp_path, srcdir, SPECS["rumprun-block"])
    nix_build(d / "default.nix", d / "stream", "-A", "stream", cwd=d)
    assert to_build(d) == []
    spec = (d / "args.nix").read_text()
    (d / "args.nix").write_text(spec.replace("redis-server /data/conf/redis.conf", "redis-server --port 7000"))
    assert to_build(d) == ["rr-layer-urunc.json", "rr-stream", "rr-urunc-metadata"]
    # a changed rootfs file rebuilds the rootfs layer, not the kernel's
    (d / "rootdir" / "etc" / "new").write_text("new\n")
    built = to_build(d)
    assert "rr-layer-rootfs" in built and "rr-layer-kernel" not in built, built


def test_invalid_spec_builds_no_layer(tmp_path, srcdir):
    """The layers wait for the validator: with a wrong spec the build fails
    in the metadata derivation and no layer is built."""
    d = spec_dir(tmp_path, srcdir, SPECS["rumprun-block"].replace('hypervisor = "hvt"', 'hypervisor = "hvtt"'))
    r = run(
        ["nix-build", str(d / "default.nix"), "-A", "stream", "--no-out-link", "--arg", "pkgs", pkgs_expr(), *NIX_OPTS],
        cwd=d,
        check=False,
    )
    assert r.returncode != 0
    assert "hvtt" in r.stderr
    assert not re.search(r"building '/nix/store/[0-9a-z]{32}-rr-layer-", r.stderr), r.stderr[-3000:]


def test_docker_loads_the_stream_from_a_pipe(tmp_path, srcdir, docker):
    d = spec_dir(tmp_path, srcdir, SPECS["rumprun-block"])
    script = nix_build(d / "default.nix", d / "stream", "-A", "stream", cwd=d)
    producer = subprocess.Popen([str(script)], stdout=subprocess.PIPE)
    loaded = subprocess.run(["docker", "load"], stdin=producer.stdout, capture_output=True, env=docker.env, timeout=300)
    producer.stdout.close()
    assert producer.wait(60) == 0 and loaded.returncode == 0, loaded.stderr.decode(errors="replace")
    ref = loaded.stdout.decode().strip().rsplit("Loaded image: ", 1)[-1].strip()
    assert ref == "t/rr:latest"
    config, tree = image_content(streamed(script, tmp_path / "s.tar"))
    got = docker.inspect(ref)
    assert got["Config"]["Labels"] == config["Labels"] and got["Config"]["Cmd"] == config["Cmd"]
    root = docker.export(ref, tmp_path / "rootfs")
    assert (root / "unikernel" / "redis.hvt").read_bytes() == (srcdir / "kernel").read_bytes()
    doc = json.loads((root / "urunc.json").read_text())
    assert {k: base64.b64decode(v).decode() for k, v in doc.items()} == {
        k: v for k, v in config["Labels"].items() if k.startswith("com.urunc.unikernel.")
    }
    disk = config["Labels"]["com.urunc.unikernel.block"]
    assert hashlib.sha256((root / disk.lstrip("/")).read_bytes()).hexdigest() == tree[disk][4]
    docker.run("rmi", ref)
