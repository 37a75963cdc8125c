"""CLI habits a newcomer brings from docker, nerdctl, skopeo and nix (issue
15, item 6), through the real entry point."""

from __future__ import annotations

import pytest

from cli import urunix

NO_NIX = {"URUNIX_NO_NIX": "1"}
HELLO = (
    "name: hello\nfiles:\n  ./hello.hvt: /unikernel/hello.hvt\nannotations:\n"
    "  unikernelType: rumprun\n  hypervisor: hvt\n  binary: /unikernel/hello.hvt\n"
)


@pytest.fixture
def hello(tmp_path):
    (tmp_path / "hello.hvt").write_bytes(b"\x7fELF")
    (tmp_path / "spec.yaml").write_text(HELLO)
    return tmp_path


@pytest.mark.parametrize("args", [[], ["build"], ["validate"], ["inspect"], ["generate"], ["cache"], ["cache", "prune"]])
def test_dash_h_is_help_everywhere(args):
    r = urunix(*args, "-h")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Usage: urunix") and "-h, --help" in r.stdout


def test_usage_shows_SPEC_and_the_whole_first_lines():
    r = urunix("build", "--help")
    assert "Usage: urunix build [OPTIONS] [SPEC]" in r.stdout and "{spec}" not in r.stdout
    top = " ".join(urunix("--help").stdout.split())
    assert "Build an image that `docker load < result` accepts and urunc boots." in top
    assert "Show the urunc metadata of an image: labels, urunc.json, and any disagreement." in top
    assert "..." not in top.split("Commands:")[1]


def test_debug_after_the_subcommand(hello):
    (hello / "spec.yaml").write_text(HELLO.replace("rumprun", "rumprunn"))
    for args in (
        ["--debug", "validate", "spec.yaml"],
        ["validate", "--debug", "spec.yaml"],
        ["validate", "spec.yaml", "--debug"],
    ):
        r = urunix(*args, cwd=hello, env=NO_NIX)
        assert r.returncode == 2 and "Traceback" in r.stderr and 'did you mean "rumprun"?' in r.stderr, (args, r.stderr)


def test_build_dir_finds_the_one_spec(hello):
    r = urunix("validate", str(hello), cwd=hello.parent, env=NO_NIX)
    assert r.returncode == 0 and "spec.yaml: ok" in r.stderr, r.stderr
    r = urunix("validate", cwd=hello, env=NO_NIX)  # no SPEC: the current directory
    assert r.returncode == 0, r.stderr
    r = urunix("build", ".", "-t", "x/hello:1", cwd=hello, env=NO_NIX)
    assert r.returncode == 0 and (hello / "result").is_file(), r.stderr


def test_build_dir_with_two_specs_names_them(hello):
    (hello / "args.nix").write_text("{ }\n")
    r = urunix("build", ".", cwd=hello, env=NO_NIX)
    assert r.returncode == 2
    assert "holds 2 specs: args.nix, spec.yaml" in r.stderr and "name one with -f" in r.stderr
    (hello / "args.nix").unlink()
    (hello / "spec.yaml").unlink()
    r = urunix("build", ".", cwd=hello, env=NO_NIX)
    assert r.returncode == 2 and "no spec in the current directory" in r.stderr
    assert "Traceback" not in r.stderr


def test_dash_f_is_the_spec_file_as_with_docker_build(hello):
    (hello / "Containerfile").write_text(
        "FROM scratch\nCOPY hello.hvt /unikernel/hello.hvt\nLABEL com.urunc.unikernel.unikernelType=rumprun\n"
        "LABEL com.urunc.unikernel.hypervisor=hvt\nLABEL com.urunc.unikernel.binary=/unikernel/hello.hvt\n"
    )
    r = urunix("build", "-f", "Containerfile", "-t", "x/hello:1", "--format", "oci-archive", ".", cwd=hello, env=NO_NIX)
    assert r.returncode == 0, r.stderr
    assert "(oci-archive, native backend)" in r.stderr
    # -f no longer means the output format
    r = urunix("build", "spec.yaml", "-f", "oci", cwd=hello, env=NO_NIX)
    assert r.returncode == 2 and "-f names the spec file" in r.stderr


def test_tag_may_have_upper_case_the_name_may_not(hello):
    r = urunix("validate", "spec.yaml", "-t", "x/hello:Name", cwd=hello, env=NO_NIX)
    assert r.returncode == 0 and "x/hello:Name" in r.stderr, r.stderr
    r = urunix("validate", "spec.yaml", "-t", "X/hello:name", cwd=hello, env=NO_NIX)
    assert r.returncode == 2 and "is not a valid image name" in r.stderr


@pytest.mark.parametrize(
    "size,ok",
    [("64M", True), ("64MiB", True), ("64MB", True), ("1G", True), ("67108864", True), ("64 megs", False), ("1.5G", False)],
)
def test_one_size_syntax_for_spec_and_cli(tmp_path, size, ok):
    (tmp_path / "k").write_bytes(b"k")
    (tmp_path / "spec.yaml").write_text(
        "name: x\nfiles:\n  ./k: /kernel\nannotations:\n  unikernelType: linux\n  hypervisor: qemu\n"
        f'  binary: /kernel\ncmd: [/bin/sh]\nrootfs:\n  type: block\n  from: scratch\n  size: "{size}"\n'
        "  include: [./k:/k]\n"
    )
    r = urunix("validate", "spec.yaml", cwd=tmp_path, env=NO_NIX)
    assert (r.returncode == 0) == ok, r.stderr
    if not ok:
        assert "rootfs.size: is not a size" in r.stderr and '"64MB"' in r.stderr
    r = urunix("cache", "prune", "--max-size", size, env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert (r.returncode == 0) == ok, r.stderr
