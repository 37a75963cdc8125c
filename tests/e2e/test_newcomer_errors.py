"""A newcomer's first hour (issue 15, items 1-3): every problem of every
stage in one run, each once; no follow-on pointing the wrong way; fields and
hints in the syntax of the file the user wrote. Through the real CLI."""

from __future__ import annotations

import re

import pytest

from cli import urunix

NO_NIX = {"URUNIX_NO_NIX": "1"}

# Eight mistakes: one each of shape (cmd, env), values (useDMBlock, fsType,
# size), files on disk (rootfs.from), unknown keys and cross-field rules.
YAML_8 = """\
name: urunc/nginx-linux-block
tag: v1
files:
  ./vmlinux: /kernel
annotations:
  unikernelType: linux
  hypervisor: qemu
  binary: /kernel
  useDMBlock: "yes"
cmd: /bin/nginx -g daemon-off
env: NGINX_PORT=80
rootfs:
  type: block
  from: ./rootfss
  size: 64 megs
  fsType: ext3
  compresion: gzip
labels:
  com.urunc.unikernel.hypervisor: qemu
"""

BUNNY_5 = """\
#syntax=harbor.nbfc.io/nubificus/bunny:latest
version: v0.1

platforms:
  framework: unikrat
  monitor: qemu
  architecture: x86

rootfs:
  form: local
  path: rootfs.cpio
  tyep: initrd

kernel:
  from: locl
  path: kernel.qemu

cmdline: "nginx -c /nginx/conf/nginx.conf"
envs:
  - NGINX_PORT
"""


def errors(stderr: str) -> list[str]:
    """The head line of each error."""
    return [ln for ln in stderr.splitlines() if ln.startswith("error: ")]


def validate(d, name: str, text: str, files: dict[str, bytes]):
    """`urunix validate` without Nix of the spec `text`, written to `name`
    in d next to `files`, as image x/y:1."""
    for f, data in files.items():
        (d / f).write_bytes(data)
    (d / name).write_text(text)
    return urunix("validate", name, "-t", "x/y:1", cwd=d, env=NO_NIX)


def test_yaml_with_eight_mistakes_reports_all_eight_once(tmp_path):
    (tmp_path / "vmlinux").write_bytes(b"\x7fELF")
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "spec.yaml").write_text(YAML_8)
    r = urunix("build", "spec.yaml", cwd=tmp_path, env=NO_NIX)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    heads = errors(r.stderr)
    expect = [
        "spec.yaml:9: annotations.useDMBlock:",
        "spec.yaml:10: cmd:",
        "spec.yaml:11: env:",
        "spec.yaml:14: rootfs.from:",
        "spec.yaml:15: rootfs.size:",
        "spec.yaml:16: rootfs.fsType:",
        "spec.yaml:17: rootfs.compresion:",
        'spec.yaml:19: labels."com.urunc.unikernel.hypervisor":',
    ]
    assert len(heads) == 8, r.stderr
    for e, h in zip(expect, heads):  # in file order, each once
        assert h.startswith("error: " + e), (e, r.stderr)
    # no follow-on of the bad cmd (a Linux guest "needs an init"), none of the bad from
    assert "init" not in r.stderr and "will not contain" not in r.stderr
    # hints in YAML, never in Nix syntax
    assert 'cmd: ["/bin/nginx", "-g", "daemon-off"]' in r.stderr
    assert 'NGINX_PORT: "80"  (under env:)' in r.stderr
    assert 'did you mean "./rootfs"?' in r.stderr
    assert ";" not in "".join(ln for ln in r.stderr.splitlines() if "hint:" in ln)
    assert not (tmp_path / "result").exists()


def test_bunnyfile_with_five_typos_reports_all_five_in_bunny_words(tmp_path):
    (tmp_path / "kernel.qemu").write_bytes(b"\x7fELF")
    (tmp_path / "rootfs.cpio").write_bytes(b"070701")
    (tmp_path / "bunnyfile").write_text(BUNNY_5)
    r = urunix("build", "bunnyfile", "-t", "x/nginx:1", cwd=tmp_path, env=NO_NIX)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    heads = errors(r.stderr)
    assert [re.match(r"error: bunnyfile:(\d+): ([^:]+):", h).groups() for h in heads] == [
        ("5", "platforms.framework"),
        ("10", "rootfs.form"),
        ("12", "rootfs.tyep"),
        ("15", "kernel.from"),
        ("20", "envs.0"),
    ], r.stderr
    for hint in (
        'did you mean "unikraft"?',
        'did you mean "from"?',
        'did you mean "type"?',
        'did you mean "local"?',
        "- NGINX_PORT=VALUE",
    ):
        assert hint in r.stderr, r.stderr
    # bunny's words only: no spec-model names the user never wrote
    assert "annotations" not in r.stderr and "unikernelType" not in r.stderr


@pytest.fixture
def hello(tmp_path):
    (tmp_path / "hello.hvt").write_bytes(b"\x7fELF")
    text = (
        "name: hello\nfiles:\n  ./hello.hvt: /unikernel/hello.hvt\nannotations:\n"
        "  unikernelType: rumprun\n  hypervisor: hvt\n  binary: /unikernel/hello.hvt\n"
    )
    (tmp_path / "spec.yaml").write_text(text)
    return tmp_path


def test_missing_file_is_one_error_not_a_wrong_allowed_list(hello):
    (hello / "hello.hvt").unlink()
    r = urunix("build", "spec.yaml", cwd=hello, env=NO_NIX)
    assert r.returncode == 2
    assert len(errors(r.stderr)) == 1 and "source file does not exist" in r.stderr
    assert "targets of" not in r.stderr and "none" not in r.stderr


def test_relative_target_does_not_also_say_add_it_to_files(hello):
    text = (hello / "spec.yaml").read_text().replace(": /unikernel/hello.hvt\nannotations", ": unikernel/hello.hvt\nannotations")
    (hello / "spec.yaml").write_text(text)
    r = urunix("validate", "spec.yaml", cwd=hello, env=NO_NIX)
    assert r.returncode == 2 and len(errors(r.stderr)) == 1, r.stderr
    assert 'did you mean "/unikernel/hello.hvt"?' in r.stderr and "binary" not in r.stderr


def test_misspelled_local_gets_did_you_mean(tmp_path):
    (tmp_path / "spec.yaml").write_text(
        "name: x\nkernel:\n  from: locl\n  path: ./vmlinux\nannotations:\n"
        "  unikernelType: linux\n  hypervisor: qemu\ncmd: [/bin/sh]\n"
    )
    r = urunix("validate", "spec.yaml", cwd=tmp_path, env=NO_NIX)
    assert r.returncode == 2 and len(errors(r.stderr)) == 1, r.stderr
    assert 'kernel.from: does not exist (got "locl")' in r.stderr and 'did you mean "local"?' in r.stderr


def test_block_for_unikraft_in_a_bunnyfile_names_rootfs_type(tmp_path):
    r = validate(
        tmp_path,
        "bunnyfile",
        "version: v0.1\nplatforms:\n  framework: unikraft\n  monitor: qemu\n"
        "rootfs:\n  from: local\n  path: rootfs.ext2\n  type: block\n"
        "kernel:\n  from: local\n  path: kernel\ncmdline: hi\n",
        {"kernel": b"k", "rootfs.ext2": b"x"},
    )
    assert r.returncode == 2 and len(errors(r.stderr)) == 1, r.stderr
    assert "bunnyfile:8: rootfs.type: a unikraft guest cannot boot from block storage" in r.stderr
    assert "hint: write type: initrd  (under rootfs:)" in r.stderr
    assert "/.boot/kernel" not in r.stderr


@pytest.mark.parametrize("fmt", ["args.nix", "yaml", "containerfile", "bunnyfile"])
def test_hints_are_in_the_syntax_of_the_file(tmp_path, fmt):
    """A missing hypervisor, told in each format's own words."""
    (tmp_path / "k").write_bytes(b"k")
    if fmt == "args.nix":
        name = "args.nix"
        text = '{ name = "x"; files = { "./k" = "/k"; }; annotations = { unikernelType = "rumprun"; binary = "/k"; }; }\n'
        want = 'add annotations.hypervisor = "...";'
    elif fmt == "yaml":
        name = "spec.yaml"
        text = "name: x\nfiles:\n  ./k: /k\nannotations:\n  unikernelType: rumprun\n  binary: /k\n"
        want = "add hypervisor: ...  (under annotations:)"
    elif fmt == "containerfile":
        name = "Containerfile"
        text = "FROM scratch\nCOPY k /k\nLABEL com.urunc.unikernel.unikernelType=rumprun\nLABEL com.urunc.unikernel.binary=/k\n"
        want = 'add LABEL com.urunc.unikernel.hypervisor="..."'
    else:
        name = "bunnyfile"
        text = "version: v0.1\nplatforms:\n  framework: rumprun\n  monitor: hvt\nkernel:\n  from: local\n  path: k\n"
        want = None
    (tmp_path / name).write_text(text)
    args = ["validate", name, "-t", "x/y:1"]
    r = urunix(*args, cwd=tmp_path, env=NO_NIX)
    if want is None:  # a bunnyfile requires the monitor itself: its own key, its own message
        (tmp_path / name).write_text(text.replace("  monitor: hvt\n", ""))
        r = urunix(*args, cwd=tmp_path, env=NO_NIX)
        assert r.returncode == 2 and "platforms.monitor" in r.stderr and "annotations" not in r.stderr, r.stderr
        return
    assert r.returncode == 2 and want in r.stderr, r.stderr
    if fmt == "containerfile":
        assert "annotations" not in r.stderr


def test_linux_containerfile_hint_is_a_label_line(tmp_path):
    """A urunc release rule's hint (urunc_rules.py) in Containerfile words."""
    r = validate(
        tmp_path,
        "Containerfile",
        "FROM scratch\nCOPY kernel /kernel\nCOPY initrd /initrd\nLABEL com.urunc.unikernel.unikernelType=linux\n"
        "LABEL com.urunc.unikernel.hypervisor=qemu\nLABEL com.urunc.unikernel.binary=/kernel\n"
        "LABEL com.urunc.unikernel.initrd=/initrd\nLABEL com.urunc.unikernel.mountRootfs=true\n"
        'LABEL com.urunc.unikernel.cmdline="/bin/sh"\n',
        {"kernel": b"k", "initrd": b"i"},
    )
    assert r.returncode == 2, r.stderr
    assert 'set LABEL com.urunc.unikernel.mountRootfs="false"' in r.stderr
    assert "mountRootfs = " not in r.stderr and "annotations" not in r.stderr


@pytest.mark.parametrize("nix", ["builtin", "nix"])
@pytest.mark.parametrize(
    "text,line,col",
    [
        ('{\n  name = "x"\n  tag = "y";\n}\n', 2, 13),
        ('{\n  name = "x";\n  files = { "./a" = "/a" };\n}\n', 3, 25),
    ],
)
def test_nix_reader_says_expected_semicolon(tmp_path, nix, text, line, col):
    """Item 4: a forgotten `;` is named as such, where it belongs, with no advice to install Nix."""
    import shutil

    if nix == "nix" and not shutil.which("nix-instantiate"):
        pytest.skip("needs nix-instantiate")
    (tmp_path / "args.nix").write_text(text)
    r = urunix("validate", "args.nix", cwd=tmp_path, env=NO_NIX if nix == "builtin" else {})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"args.nix:{line}: expected `;` after the value of" in r.stderr, r.stderr
    assert f"(column {col})" in r.stderr and "install Nix" not in r.stderr and "function application" not in r.stderr


def test_containerfile_problems_and_validation_in_one_run(tmp_path):
    """The Containerfile's own problems and validate's come together, with no
    follow-on: the unset $MONITOR is not also "hypervisor missing", the
    missing COPY source not also "binary will not contain"."""
    r = validate(
        tmp_path,
        "Containerfile",
        "FROM scratch\nCOPY kernell /unikernel/kernel\nLABEL com.urunc.unikernel.unikernelType=unikrafft\n"
        "LABEL com.urunc.unikernel.hypervisor=$MONITOR\nLABEL com.urunc.unikernel.binary=/unikernel/kernel\n"
        'LABEL com.urunc.unikernel.cmdline="hello"\nENTRYPOINT /app\n',
        {"kernel": b"k"},
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    heads = errors(r.stderr)
    assert [h.split(": ")[1] for h in heads] == ["Containerfile:2", "Containerfile:3", "Containerfile:4", "Containerfile:7"], (
        r.stderr
    )
    assert 'did you mean "unikraft"?' in r.stderr and "$MONITOR is not set" in r.stderr
    assert "required" not in r.stderr and "will not contain" not in r.stderr
