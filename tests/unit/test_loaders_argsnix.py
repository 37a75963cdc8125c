"""args.nix: every args.nix of the seed docs loads unchanged, with and without
Nix, into the same Spec; bad input names file, field, line, value and a hint."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from urunix.errors import SpecError
from urunix.loaders import load
from urunix.loaders.nixdata import NixPath
from urunix.spec import FileEntry, Rootfs, Source

NIX = shutil.which("nix-instantiate")
# skipped without Nix, except under URUNIX_REQUIRE_TOOLS=1 (CI), where they fail
needs_nix = pytest.mark.skipif(
    NIX is None and os.environ.get("URUNIX_REQUIRE_TOOLS") != "1", reason="nix-instantiate is not installed"
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example(name: str) -> str:
    """An args.nix of examples/, as the seed docs give it."""
    return (EXAMPLES / name / "args.nix").read_text(encoding="utf-8")


# Seed 000: C HTTP server on Unikraft/QEMU with a prebuilt initrd.
CHTTP_UNIKRAFT = example("chttp-unikraft-qemu")
# Seed 001, exactly as the page renders it (its indentation was lost).
NETWORK_MIRAGE = example("network-mirage-hvt")
# Seed 003: bimanix's hello world.
HELLO_RUMPRUN = example("hello-rumprun")

# Seed 000: Redis on Rumprun/hvt (devmapper rootfs). Kept here: the seed's
# text, which examples/redis-rumprun-hvt/args.nix changed on purpose (it
# builds its own block image; see the comment there).
REDIS_RUMPRUN = """{
  name = "urunc/prebuilt/redis-rumprun-hvt";
  tag = "test";
  files = {
    "./redis.hvt" = "/unikernel/redis.hvt";
    "./redis.conf" = "/conf/redis.conf";
  };
  annotations = {
    unikernelType = "rumprun";
    hypervisor = "hvt";
    binary = "/unikernel/redis.hvt";
    cmdline = "hello";
    unikernelVersion = "";
    initrd = "";
    block = "";
    blkMntPoint = "";
    useDMBlock = "true";
  };
}
"""


@pytest.fixture(params=["nix", "builtin"])
def mode(request, monkeypatch):
    """Run a test with Nix evaluating the file, and with the built-in reader."""
    if request.param == "nix":
        if NIX is None:
            if os.environ.get("URUNIX_REQUIRE_TOOLS") == "1":
                pytest.fail("nix-instantiate is not installed (URUNIX_REQUIRE_TOOLS=1)")
            pytest.skip("nix-instantiate is not installed")
        monkeypatch.delenv("URUNIX_NO_NIX", raising=False)
    else:
        monkeypatch.setenv("URUNIX_NO_NIX", "1")
    return request.param


def write(tmp_path: Path, text: str, name: str = "args.nix") -> Path:
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    return f


def test_seed_redis_rumprun(tmp_path, mode):
    spec = load(write(tmp_path, REDIS_RUMPRUN))
    assert (spec.format, spec.name, spec.tag) == ("args.nix", "urunc/prebuilt/redis-rumprun-hvt", "test")
    # Nix orders attribute names; the built-in reader does the same.
    assert spec.files == [
        FileEntry("./redis.conf", tmp_path / "redis.conf", "/conf/redis.conf", 'files."./redis.conf"'),
        FileEntry("./redis.hvt", tmp_path / "redis.hvt", "/unikernel/redis.hvt", 'files."./redis.hvt"'),
    ]
    assert spec.annotations == {
        "unikernelType": "rumprun",
        "hypervisor": "hvt",
        "binary": "/unikernel/redis.hvt",
        "cmdline": "hello",
        "unikernelVersion": "",
        "initrd": "",
        "block": "",
        "blkMntPoint": "",
        "useDMBlock": "true",
    }
    assert spec.lines["name"] == 2
    assert spec.lines['files."./redis.hvt"'] == 5
    assert spec.lines["annotations.useDMBlock"] == 17
    assert (spec.cmd, spec.entrypoint, spec.env, spec.labels, spec.unknown) == (None, None, {}, {}, {})


def test_seed_chttp_unikraft(tmp_path, mode):
    spec = load(write(tmp_path, CHTTP_UNIKRAFT))
    assert [f.target for f in spec.files] == ["/unikernel/kernel", "/unikernel/rootfs.cpio"]
    assert spec.annotations["initrd"] == "/unikernel/rootfs.cpio"
    assert spec.annotations["useDMBlock"] == ""  # empty stays empty: validate treats it as unset
    assert spec.where("annotations.initrd")["line"] == 14


def test_seed_network_mirage_unindented(tmp_path, mode):
    spec = load(write(tmp_path, NETWORK_MIRAGE))
    assert spec.files == [FileEntry("./network.hvt", tmp_path / "network.hvt", "/unikernel/network.hvt", 'files."./network.hvt"')]
    assert spec.annotations["useDMBlock"] == "false"
    assert spec.annotations["cmdline"] == ""
    assert spec.lines["annotations.unikernelType"] == 8


def test_seed_hello_rumprun(tmp_path, mode):
    spec = load(write(tmp_path, HELLO_RUMPRUN))
    assert (spec.name, spec.tag) == ("hello-rumprun", "latest")
    assert "useDMBlock" not in spec.annotations


@needs_nix
@pytest.mark.parametrize("text", [REDIS_RUMPRUN, CHTTP_UNIKRAFT, NETWORK_MIRAGE, HELLO_RUMPRUN])
def test_nix_and_builtin_reader_give_the_same_spec(tmp_path, monkeypatch, text):
    f = write(tmp_path, text)
    monkeypatch.delenv("URUNIX_NO_NIX", raising=False)
    with_nix = load(f)
    monkeypatch.setenv("URUNIX_NO_NIX", "1")
    assert load(f) == with_nix


FULL = r"""{
  name = "app";
  tag = "v1";
  architecture = "x86_64";
  files."./app" = "/app";
  annotations = {
    unikernelType = "linux";
    hypervisor = "qemu";
    binary = "/kernel";
    cmdline = "a \"quoted\" $HOME `tick` \\ back  two  spaces";
    useDMBlock = false;
    custom = 3;
  };
  cmd = [ "/app" "--port" "80" ];
  entrypoint = [ "/urunit" ];
  env = { HOME = "/root"; "WITH.DOT" = "1"; };
  labels.owner = "me";
  kernel = { from = "local"; path = ./vmlinux; };
  init = ./urunit;
  rootfs = {
    type = "initrd";
    include = { "./conf" = "/etc/conf"; };
    size = "64M";
    fsType = "ext4";
  };
  extra = 1;
}
"""


def test_all_fields(tmp_path, mode):
    spec = load(write(tmp_path, FULL))
    assert spec.architecture == "x86_64"
    assert spec.files == [FileEntry("./app", tmp_path / "app", "/app", 'files."./app"')]
    # values are kept raw and byte for byte: validate judges them
    assert spec.annotations["cmdline"] == 'a "quoted" $HOME `tick` \\ back  two  spaces'
    assert spec.annotations["useDMBlock"] is False and spec.annotations["custom"] == 3
    assert spec.cmd == ["/app", "--port", "80"] and spec.entrypoint == ["/urunit"]
    assert spec.env == {"HOME": "/root", "WITH.DOT": "1"} and spec.labels == {"owner": "me"}
    assert spec.kernel == Source("local", str(tmp_path / "vmlinux"), "kernel")
    assert isinstance(spec.kernel.path, NixPath)
    assert spec.init == Source("local", str(tmp_path / "urunit"), "init")
    assert spec.rootfs == Rootfs(
        type="initrd",
        origin="scratch",
        path=None,
        include=[FileEntry("./conf", tmp_path / "conf", "/etc/conf", 'rootfs.include."./conf"')],
        size="64M",
        fs_type="ext4",
    )
    assert spec.unknown == {"extra": 1}
    assert spec.lines["extra"] == 26 and spec.lines['env."WITH.DOT"'] == 16
    assert spec.lines["labels.owner"] == 17 and spec.lines["kernel.path"] == 18


@needs_nix
def test_full_nix_is_evaluated_by_nix_without_lines(tmp_path, monkeypatch):
    monkeypatch.delenv("URUNIX_NO_NIX", raising=False)
    f = write(
        tmp_path,
        """let v = "1.0"; in {
  name = "app-" + v;
  tag = v;
  files = builtins.listToAttrs [ { name = "./app"; value = "/app"; } ];
  kernel.path = ./sub/../k;
}""",
    )
    spec = load(f)
    assert (spec.name, spec.tag) == ("app-1.0", "1.0")
    assert spec.files == [FileEntry("./app", tmp_path / "app", "/app", 'files."./app"')]
    # a path literal is not copied to the store: it arrives as its absolute path
    assert spec.kernel == Source("local", str(tmp_path / "k"), "kernel")
    assert isinstance(spec.kernel.path, NixPath)
    assert spec.lines == {}


def test_without_nix_full_nix_is_refused_with_a_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("URUNIX_NO_NIX", "1")
    f = write(tmp_path, '{ pkgs ? import <nixpkgs> {} }:\n{ name = "x"; }\n')
    with pytest.raises(SpecError) as e:
        load(f)
    p = e.value.problem
    assert p.file.endswith("args.nix") and p.line == 1
    assert "function" in p.message and "nix-bin" in p.hint


@needs_nix
def test_nix_errors_carry_nixs_message_and_line(tmp_path, monkeypatch):
    monkeypatch.delenv("URUNIX_NO_NIX", raising=False)
    f = write(tmp_path, '{\n  name = "x";\n  tag = undefinedThing;\n}\n')
    with pytest.raises(SpecError) as e:
        load(f)
    p = e.value.problem
    assert "undefined variable 'undefinedThing'" in p.message
    assert "\x1b[" not in p.message
    assert p.line == 3 and p.file.endswith("args.nix")


@pytest.mark.parametrize(
    "text, field, line, words",
    [
        ('{\n  files = [ "./a" ];\n}', "files", 2, "must be an attribute set"),
        ('{\n  files = { "./a" = 1; };\n}', 'files."./a"', 2, "target"),
        ('{\n  files = { "./a" = ./b; };\n}', 'files."./a"', 2, "target"),
        ('{\n  annotations = "rumprun";\n}', "annotations", 2, "must be an attribute set"),
        ('{\n  cmd = "redis-server /conf";\n}', "cmd", 2, "must be a list of strings"),
        ('{\n  cmd = [ "a" 1 ];\n}', "cmd.1", 2, "must be a string"),
        ('{\n  env = [ "A=1" ];\n}', "env", 2, "must be an attribute set"),
        ("{\n  annotations.binary = ./redis.hvt;\n}", "annotations.binary", 2, "Nix path literal"),
        ('{\n  rootfs = { tpye = "initrd"; };\n}', "rootfs.tpye", 2, "unknown field in rootfs"),
        ('{\n  kernel = { from = "local"; pth = "x"; };\n}', "kernel.pth", 2, "unknown field in kernel"),
        ("[ 1 ]", None, 1, "must be an attribute set at the top level"),
    ],
)
def test_shape_errors(tmp_path, mode, text, field, line, words):
    with pytest.raises(SpecError) as e:
        load(write(tmp_path, text))
    p = e.value.problem
    assert words in p.message
    assert (p.field, p.line) == (field, line)
    assert p.file.endswith("args.nix")
    rendered = e.value.render()
    assert "args.nix:" in rendered


def test_did_you_mean_for_a_nested_typo(tmp_path, mode):
    with pytest.raises(SpecError) as e:
        load(write(tmp_path, '{ rootfs = { tpye = "initrd"; }; }'))
    assert e.value.problem.hint == 'did you mean "type"?'


def test_unknown_top_level_keys_are_kept_for_validate(tmp_path, mode):
    spec = load(write(tmp_path, '{\n  name = "x";\n  annotatons = { };\n}'))
    assert spec.unknown == {"annotatons": {}} and spec.lines["annotatons"] == 3


def test_missing_file():
    with pytest.raises(SpecError, match="does not exist"):
        load(Path("/nonexistent/args.nix"))


def test_not_utf8(tmp_path, mode):
    f = tmp_path / "args.nix"
    f.write_bytes(b'{\n  name = "\xff";\n}')
    with pytest.raises(SpecError) as e:
        load(f)
    assert e.value.problem.line == 2 and "UTF-8" in e.value.problem.message
