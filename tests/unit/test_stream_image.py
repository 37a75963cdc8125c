"""helpers/stream_image.py and the pieces of helpers/image_writer.py it
uses: a layer written alone (write_layer) has the bytes write() gives it
in an archive, and an archive streamed into a pipe from ready layers is
byte for byte the archive write() makes in a file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from test_image_writer import plan_for
from urunix.helpers import image_writer as iw
from urunix.helpers import stream_image

HELPERS = Path(iw.__file__).parent


def layer_dirs(tmp_path: Path, plan: dict) -> list[str]:
    """Each plan layer as `base_image.py --layer` leaves it in the store."""
    dirs = []
    for i, layer in enumerate(plan["layers"]):
        d = tmp_path / f"layer{i}"
        d.mkdir()
        digest, size = iw.write_layer(layer, plan["created"], str(d / "layer.tar"))
        (d / "layer.json").write_text(json.dumps({"name": layer["name"], "digest": digest, "size": size}))
        dirs.append(str(d))
    return dirs


def make_stream(tmp_path: Path, plan: dict, dirs: list[str], repo_tags: tuple[str, ...] = ("t/x:1",)) -> Path:
    """The stream script for `plan`'s config and the layer directories `dirs`, as tmp_path/stream."""
    script = tmp_path / "stream"
    desc = {
        "python": sys.executable,
        "helpers": str(HELPERS),
        "repoTags": list(repo_tags),
        "created": plan["created"],
        "architecture": plan.get("architecture", "amd64"),
        "config": plan["config"],
        "layers": dirs,
    }
    stream_image.make(desc, str(script))
    return script


def test_layers_alone_match_the_archive_and_the_stream_matches_the_file(tmp_path):
    plan = plan_for(tmp_path)
    whole = tmp_path / "whole.tar"
    iw.write(plan, str(whole))
    dirs = layer_dirs(tmp_path, plan)
    with tarfile.open(whole) as t:
        manifest = json.load(t.extractfile("manifest.json"))[0]
        for d, name in zip(dirs, manifest["Layers"]):
            assert t.extractfile(name).read() == (Path(d) / "layer.tar").read_bytes()
    script = make_stream(tmp_path, plan, dirs, tuple(plan["repoTags"]))
    # through a pipe (no seek, no tell), as `./result | docker load` runs it
    p = subprocess.Popen([str(script)], stdout=subprocess.PIPE)
    data = p.stdout.read()
    assert p.wait() == 0
    assert data == whole.read_bytes()


def test_user_strings_reach_the_config_byte_for_byte(tmp_path):
    plan = plan_for(tmp_path)
    odd = "it's \"quoted\" \\ $HOME ${x} \u00e9 '''\n"
    plan["config"] = {"Cmd": [odd], "Labels": {"com.urunc.unikernel.cmdline": odd}}
    make_stream(tmp_path, plan, layer_dirs(tmp_path, plan))
    out = tmp_path / "out.tar"
    with open(out, "wb") as f:
        subprocess.run([str(tmp_path / "stream")], stdout=f, check=True)
    with tarfile.open(out) as t:
        cfg = json.load(t.extractfile(json.load(t.extractfile("manifest.json"))[0]["Config"]))
    assert cfg["config"]["Cmd"] == [odd] and cfg["config"]["Labels"]["com.urunc.unikernel.cmdline"] == odd


def test_a_closed_pipe_is_one_message(tmp_path):
    plan = plan_for(tmp_path)
    plan["config"] = {}
    make_stream(tmp_path, plan, layer_dirs(tmp_path, plan))
    r = subprocess.run(f"{tmp_path / 'stream'} | head -c 10 >/dev/null", shell=True, capture_output=True, text=True)
    assert "stdout was closed before the whole image was written" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_terminal_is_refused(tmp_path):
    pty = pytest.importorskip("pty")
    plan = plan_for(tmp_path)
    plan["config"] = {}
    make_stream(tmp_path, plan, layer_dirs(tmp_path, plan))
    master, slave = pty.openpty()
    r = subprocess.run([str(tmp_path / "stream")], stdout=slave, stderr=subprocess.PIPE, text=True)
    os.close(slave)
    os.close(master)
    assert r.returncode == 2 and "docker load" in r.stderr


def test_streaming_a_layer_of_unknown_digest_is_refused(tmp_path):
    r, w = os.pipe()
    with open(w, "wb") as f, pytest.raises(iw.PlanError, match="cannot be streamed"):
        iw.write(plan_for(tmp_path), f)
    os.close(r)
