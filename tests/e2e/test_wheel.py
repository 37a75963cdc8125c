"""Installed from a wheel into a fresh virtualenv, urunix still finds its
contract, helpers, Nix library and templates, and builds an example."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

from standins import ROOT, example


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp / "dist"), str(ROOT)], check=True, capture_output=True
    )
    (wheel,) = (tmp / "dist").glob("urunix-*.whl")
    venv.create(tmp / "venv", with_pip=True)
    py = tmp / "venv" / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], check=True, capture_output=True)
    return tmp / "venv" / "bin"


def test_wheel_carries_its_data(installed):
    code = (
        "from urunix import resources as r; "
        "print(r.nix_dir()); print(r.templates_dir()); print(r.contract()['prefix']); "
        "print((r.HELPERS / 'urunc_json.py').is_file(), (r.HELPERS / 'image_writer.py').is_file())"
    )
    out = subprocess.run(
        [str(installed / "python"), "-c", code], capture_output=True, text=True, check=True, cwd="/"
    ).stdout.splitlines()
    assert "site-packages/urunix/_data/nix" in out[0]
    assert "site-packages/urunix/_data/templates" in out[1]
    assert out[2] == "com.urunc.unikernel."
    assert out[3] == "True True"
    assert (Path(out[0]) / "default.nix").is_file()


def test_wheel_builds_an_example(installed, tmp_path):
    work = example("hello-rumprun", tmp_path / "ex")
    r = subprocess.run(
        [str(installed / "urunix"), "build", "args.nix", "--backend", "native"],
        cwd=work,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "URUNIX_NO_NIX": "1"},
    )
    assert r.returncode == 0, r.stderr
    # the image holds the example's kernel and urunc's metadata, byte for byte
    from urunix.helpers.urunc_json import decode, labels
    from urunix.imagefile import open_image
    from urunix.loaders import load
    from urunix.rootfs.flatten import flatten, read_file
    from urunix.validate import validate

    image, _ = validate(load(work / "args.nix"))
    with open_image(str(work / "result")) as (info, store):
        assert info.repo_tags == ["hello-rumprun:latest"]
        assert info.config["config"]["Labels"] == labels(image.annotations)
        assert decode(read_file(store, info, "/urunc.json")) == image.annotations
    with flatten(str(work / "result")) as flat:
        assert sorted(m.path for m in flat.members if m.kind == "file") == ["unikernel/hello.hvt", "urunc.json"]
        assert read_file_of(flat, "unikernel/hello.hvt") == (work / "hello.hvt").read_bytes()
    # and it is the image the source tree's urunix makes from the same spec
    r = subprocess.run(
        [sys.executable, "-m", "urunix", "build", "args.nix", "--backend", "native", "-o", "ref.tar"],
        cwd=work,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "URUNIX_NO_NIX": "1"},
    )
    assert r.returncode == 0, r.stderr
    assert (work / "result").read_bytes() == (work / "ref.tar").read_bytes()


def read_file_of(flat, path: str) -> bytes:
    m = flat.find(path)
    with open(m.source, "rb") as f:
        f.seek(m.offset)
        return f.read(m.size)
