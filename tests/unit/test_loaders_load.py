"""`load(path, format)`: the format comes from the name, then the content."""

from __future__ import annotations

from pathlib import Path

import pytest

from urunix.errors import SpecError
from urunix.loaders import FORMATS, detect, load

BUNNY = (
    "#syntax=harbor.nbfc.io/nubificus/bunny:latest\nversion: v0.1\nplatforms:\n  framework: mirage\n"
    "  monitor: hvt\nkernel:\n  from: local\n  path: k.hvt\n"
)


@pytest.mark.parametrize(
    "name, text, fmt",
    [
        ("args.nix", "{ }", "args.nix"),
        ("redis.nix", "{ }", "args.nix"),
        ("spec.yaml", "name: x\n", "yaml"),
        ("spec.yml", "name: x\n", "yaml"),
        ("bunnyfile", BUNNY, "bunnyfile"),
        ("redis.bunnyfile", BUNNY, "bunnyfile"),
        ("bunny.yaml", BUNNY, "bunnyfile"),  # a bunnyfile by its content
        ("Bunnyfile.redis", BUNNY, "bunnyfile"),
    ],
)
def test_detect(tmp_path, name, text, fmt):
    f = tmp_path / name
    f.write_text(text)
    assert detect(f) == fmt
    assert load(f).format == fmt


def test_explicit_format_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("URUNIX_NO_NIX", "1")
    f = tmp_path / "spec.txt"
    f.write_text("name: x\n")
    assert load(f, "yaml").name == "x"
    assert load(str(f), format="yaml").file == f  # str paths are fine too


def test_unknown_format(tmp_path):
    with pytest.raises(SpecError) as e:
        load(tmp_path / "x", format="yml")
    assert e.value.problem.allowed == ", ".join(FORMATS) == "args.nix, yaml, bunnyfile, containerfile"
    assert e.value.problem.hint == 'did you mean "yaml"?'


def test_undetectable_format(tmp_path):
    f = tmp_path / "Makefile"  # (a Containerfile is a format of its own now)
    f.write_text("all:\n")
    with pytest.raises(SpecError) as e:
        load(f)
    assert "cannot tell" in e.value.problem.message and e.value.problem.allowed


def test_relative_paths_resolve_against_the_spec_directory(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "spec.yaml").write_text("files:\n  ./k: /k\n")
    monkeypatch.chdir(tmp_path)
    spec = load(Path("sub/spec.yaml"))
    assert spec.file == tmp_path / "sub" / "spec.yaml"
    assert spec.files[0].path == tmp_path / "sub" / "k" and spec.files[0].source == "./k"
