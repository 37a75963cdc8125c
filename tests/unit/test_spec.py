"""spec.py: where a problem is (file, the user's field name, line) and the
plain data the Nix library takes."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from urunix.spec import FileEntry, Image, Spec, display_path


def test_where_names_the_line_of_the_field_or_of_its_parent(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = Spec(
        file=tmp_path / "d" / "args.nix",
        format="args.nix",
        lines={"annotations": 4, "annotations.cmdline": 6, "files": 9, "env": 3, "env.A": 11},
    )
    assert s.base_dir == tmp_path / "d"
    assert s.where("annotations.cmdline") == {
        "file": os.path.join("d", "args.nix"),
        "field": "annotations.cmdline",
        "line": 6,
        "key": "annotations.cmdline",
    }
    assert s.where("annotations.binary")["line"] == 4  # the parent's line
    assert s.where("files")["line"] == 9
    assert s.where("name")["line"] is None  # no line, no parent
    assert s.where("env.A.B")["line"] == 11  # the direct parent's line
    assert s.where("env.C.D")["line"] is None  # only the direct parent counts
    s.names = {"annotations.binary": "LABEL com.urunc.unikernel.binary"}
    assert s.where("annotations.binary")["field"] == "LABEL com.urunc.unikernel.binary"


def test_display_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert display_path(tmp_path / "a" / "b.yaml") == os.path.join("a", "b.yaml")
    assert display_path(Path("/elsewhere/x.yaml")) == "/elsewhere/x.yaml"


def test_image_to_json_is_the_plain_data_nix_takes(tmp_path):
    img = Image(
        name="n/x",
        tag="t",
        architecture="arm64",
        annotations={"b": "2", "a": "1"},
        cmd=["/k", "a b"],
        entrypoint=["/init"],
        env=["A=1"],
        labels={"l": "v"},
        files=[FileEntry("./k", tmp_path / "k", "/k", 'files."./k"')],
        created="2020-01-01T00:00:00Z",
    )
    got = img.to_json()
    assert got == {
        "name": "n/x",
        "tag": "t",
        "architecture": "arm64",
        "annotations": {"b": "2", "a": "1"},
        "cmd": ["/k", "a b"],
        "entrypoint": ["/init"],
        "env": ["A=1"],
        "labels": {"l": "v"},
        "files": [{"source": "./k", "target": "/k"}],
        "created": "2020-01-01T00:00:00Z",
    }
    got["cmd"].append("x")
    got["annotations"]["c"] = "3"
    assert img.cmd == ("/k", "a b") and "c" not in img.annotations  # copies, not the Image's own lists
    assert img.entrypoint == ("/init",) and img.env == ("A=1",) and isinstance(img.files, tuple)
    # frozen: nothing after the validator changes what it judged
    with pytest.raises(dataclasses.FrozenInstanceError):
        img.cmd = ("x",)  # type: ignore[misc]
    with pytest.raises(TypeError):
        img.annotations["c"] = "3"  # type: ignore[index]
