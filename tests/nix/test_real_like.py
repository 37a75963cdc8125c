"""The Nix path against tests/nix/testpkgs.nix, whose dockerTools.buildImage
does what nixpkgs' does to an image (base Env concatenation, `chmod ug+w`
of the layer root, the layer's store closure appended, gzip unless
`compressor`): the defects that real dockerTools showed stay fixed."""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path

import pytest

from nixhelp import HERE, NIX_OPTS, bimanix_checkout, host_python, image_content, need_nix, nix_build, read_image, run

pytestmark = pytest.mark.nix

KERNEL = b"\x7fELF kernel"


@pytest.fixture(autouse=True)
def _nix():
    need_nix()


def build(tmp_path: Path, spec: str, files: dict[str, bytes], *args: str) -> Path:
    d = bimanix_checkout(tmp_path / "repo")
    for name, data in files.items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(data)
        (d / name).chmod(0o755)
    (d / "args.nix").write_text(spec)
    return nix_build(d / "default.nix", d / "result", *args, cwd=d)


def layers(archive: Path) -> list[list[tarfile.TarInfo]]:
    with tarfile.open(archive) as t:
        manifest = json.load(t.extractfile("manifest.json"))[0]
        out = []
        for name in manifest["Layers"]:
            with tarfile.open(fileobj=t.extractfile(name)) as lt:
                out.append(lt.getmembers())
        return out


SPEC = """{
  name = "real/like"; tag = "t";
  urunc = [ "v0.7.0" "main" ];   # the releases that hand env to a rumprun guest
  files = { "./k.hvt" = "/unikernel/k.hvt"; "./conf/a.conf" = "/conf/a.conf"; };
  env = { A = "1"; B = "two words"; };
  annotations = { unikernelType = "rumprun"; hypervisor = "hvt"; binary = "/unikernel/k.hvt"; cmdline = "k"; };
}"""
FILES = {"k.hvt": KERNEL, "conf/a.conf": b"a = 1\n"}


def test_env_once(tmp_path):
    """Defect 1: Env once, not once per layer."""
    config, _ = image_content(build(tmp_path, SPEC, FILES))
    assert config["Env"] == ["A=1", "B=two words"]


def test_root_0755(tmp_path):
    """Defect 2: `/` 0755, not 0775 (buildImage's `chmod ug+w` of the layer root)."""
    result = build(tmp_path, SPEC, FILES)
    _, tree = image_content(result)
    for members in layers(result):
        for m in members:
            if m.name in (".", "./"):
                assert m.mode & 0o7777 == 0o755, oct(m.mode)
    assert tree["/urunc.json"][1] == 0o644 and tree["/unikernel/k.hvt"][1] == 0o755
    assert tree["/conf"][:2] == ("dir", 0o755)


def test_uncompressed_where_supported_gzip_otherwise(tmp_path):
    plain = build(tmp_path / "a", SPEC, FILES)
    assert plain.name.endswith(".tar") and plain.read_bytes()[:2] != b"\x1f\x8b"
    gz = build(
        tmp_path / "b",
        SPEC,
        FILES,
        "--arg",
        "pkgs",
        f'import {HERE / "testpkgs.nix"} {{ python = "{host_python()}"; withCompressor = false; }}',
    )
    assert gz.name.endswith(".tar.gz") and gz.read_bytes()[:2] == b"\x1f\x8b"
    assert image_content(gz) == image_content(plain)


def test_no_store_closure_enters_the_image(tmp_path):
    """Defect 4: a value naming a store path (here an Env value and a file's
    bytes) does not bring that path into the image; the build says which
    file names which store path."""
    tool = (
        run(
            [
                "nix-instantiate",
                "--eval",
                "--read-write-mode",
                "--expr",
                'builtins.toFile "tool" "#!/bin/sh\\necho tool\\n"',
                *NIX_OPTS,
            ]
        )
        .stdout.strip()
        .strip('"')
    )
    spec = SPEC.replace(
        'env = { A = "1"; B = "two words"; };', 'env = { TOOL = "${builtins.toFile "tool" "#!/bin/sh\\necho tool\\n"}"; };'
    )
    # unique bytes: the base derivation is built (and says so) in this run,
    # not taken from the store of an earlier one
    files = {**FILES, "conf/a.conf": f"exec {tool}\n# {tmp_path}\n".encode()}
    d = bimanix_checkout(tmp_path / "repo")
    for name, data in files.items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(data)
    (d / "args.nix").write_text(spec)
    r = run(
        [
            "nix-build",
            str(d / "default.nix"),
            "-o",
            str(d / "result"),
            "--arg",
            "pkgs",
            f"import {HERE / 'testpkgs.nix'} {{ }}",
            *NIX_OPTS,
        ],
        cwd=d,
    )
    config, tree = image_content(d / "result")
    assert not [p for p in tree if p.startswith("/nix")], sorted(tree)
    assert config["Env"] == [f"TOOL={tool}"]
    assert re.search(r"a\.conf names " + re.escape(tool), r.stderr), r.stderr[-3000:]


def test_layout_is_what_buildimage_writes(tmp_path):
    """The stand-in's own shape (so the tests above mean something): the
    top layer has a `./` entry, owner names root, mtime 1980-01-01; the
    config has preferLocalBuild and one history entry per layer."""
    result = build(tmp_path, SPEC, FILES)
    top = layers(result)[-1]
    assert top[0].name in (".", "./")
    assert {(m.uname, m.gname, m.mtime) for m in top} == {("root", "root", 315532800)}
    config, _, history = read_image(result)
    assert config["preferLocalBuild"] is True and len(history) == 3


def test_closure_would_be_appended_by_buildimage(tmp_path):
    """The stand-in does append a layer's references, as nixpkgs does: a
    copyToRoot tree that refers to a store path brings it in."""
    expr = f"""
      let
        pkgs = import {HERE / "testpkgs.nix"} {{ python = "{host_python()}"; }};
        tool = builtins.toFile "tool" "x";
        tree = derivation {{
          name = "tree"; system = pkgs.system; builder = "{host_python()}";
          args = [ "-c" "import os; os.makedirs(os.environ['out'] + '/etc'); open(os.environ['out'] + '/etc/t', 'w').write(os.environ['tool'])" ];
          inherit tool;
        }};
      in pkgs.dockerTools.buildImage {{ name = "c"; tag = "t"; copyToRoot = [ tree ]; }}
    """
    out = run(["nix-build", "--no-out-link", "--expr", expr, *NIX_OPTS]).stdout.strip()
    _, tree = image_content(Path(out))
    assert any(p.startswith("/nix/store/") and p.endswith("-tool") for p in tree), sorted(tree)
    # tar -r --owner=1000 --group=100 --mode=u+w, as nixpkgs appends it
    assert tree["/nix/store"][:4] == ("dir", 0o755, 1000, 100)
