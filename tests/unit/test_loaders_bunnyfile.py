"""bunnyfiles: the seed docs' bunnyfiles load the way bunny would package
them (kernel at /.boot/kernel, rootfs at /.boot/rootfs); registry images are
"not supported yet" with the line; unknown keys get a did-you-mean."""

from __future__ import annotations

from pathlib import Path

import pytest

from urunix.errors import NotSupportedYet, SpecError
from urunix.validate import validate
from urunix.loaders import load
from urunix.spec import FileEntry, Rootfs, Source

# Seed 000: Redis on Unikraft/QEMU, an initrd built from scratch.
REDIS_UNIKRAFT = """\
#syntax=harbor.nbfc.io/nubificus/bunny:latest
version: v0.1

platforms:
  framework: unikraft
  monitor: qemu
  architecture: x86

rootfs:
  from: scratch
  type: initrd
  include:
  - redis.conf:/conf/redis.conf

kernel:
  from: local
  path: redis-qemu-x86_64-initrd_qemu-x86_64

cmdline: "redis-server /conf/redis.conf"
"""

# Seed 000: Redis on Rumprun/hvt, files copied into the image (devmapper).
REDIS_RUMPRUN = """\
#syntax=harbor.nbfc.io/nubificus/bunny:latest
version: v0.1

platforms:
  framework: rumprun
  monitor: hvt
  architecture: x86

rootfs:
  from: scratch
  type: raw
  include:
  - redis.conf:/conf/redis.conf

kernel:
  from: local
  path: redis.hvt

cmdline: "redis-server /data/conf/redis.conf"
"""

# Seed 000: C HTTP server on Unikraft/QEMU with a prebuilt rootfs.cpio.
CHTTP_UNIKRAFT = """\
#syntax=harbor.nbfc.io/nubificus/bunny:latest
version: v0.1

platforms:
  framework: unikraft
  monitor: qemu
  architecture: x86

rootfs:
  from: local
  path: rootfs.cpio

kernel:
  from: local
  path: app-elfloader-qemu-x86_64-initrd_qemu-x86_64

cmdline: "/chttp"
"""

# Seed 001 (the page lost the indentation; restored as in bunny's docs).
NETWORK_MIRAGE = """\
#syntax=harbor.nbfc.io/nubificus/bunny:latest
version: v0.1
platforms:
  framework: mirage
  monitor: hvt
  architecture: x86
kernel:
  from: local
  path: network.hvt
cmdline: ""
"""

# Seed 004: redis:alpine as a Linux VM, kernel from a registry.
REDIS_LINUX = """\
#syntax=harbor.nbfc.io/nubificus/bunny:latest
version: v0.1
platforms:
  framework: linux
  monitor: qemu
  architecture: x86
rootfs:
  from: redis:alpine
  type: raw
kernel:
  from: harbor.nbfc.io/nubificus/urunc/linux-kernel-qemu:v6.14
  path: /kernel
cmdline: "/usr/local/bin/redis-server"
"""

# Seed 004: traefik/whoami with a prebuilt initrd on Firecracker.
WHOAMI_LINUX = """\
#syntax=harbor.nbfc.io/nubificus/bunny:latest
version: v0.1
platforms:
  framework: linux
  monitor: firecracker
  architecture: x86
rootfs:
  from: local
  type: initrd
  path: rootfs.initrd
kernel:
  from: harbor.nbfc.io/nubificus/urunc/linux-kernel-firecracker:v6.14
  path: /kernel
cmdline: "/urunit /whoami"
"""


def write(tmp_path: Path, text: str, name: str = "bunnyfile") -> Path:
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    return f


def kernel(tmp_path: Path, name: str) -> FileEntry:
    return FileEntry(name, tmp_path / name, "/.boot/kernel", "kernel.path")


def test_seed_redis_unikraft_initrd_from_scratch(tmp_path):
    spec = load(write(tmp_path, REDIS_UNIKRAFT))
    assert (spec.format, spec.name, spec.tag, spec.architecture) == ("bunnyfile", None, None, "x86")
    assert spec.files == [kernel(tmp_path, "redis-qemu-x86_64-initrd_qemu-x86_64")]
    assert spec.kernel == Source("local", "redis-qemu-x86_64-initrd_qemu-x86_64", "kernel", target="/.boot/kernel")
    # the initrd is still to be built from the includes, at bunny's path
    assert spec.rootfs == Rootfs(
        type="initrd",
        origin="scratch",
        path="/.boot/rootfs",
        include=[FileEntry("redis.conf", tmp_path / "redis.conf", "/conf/redis.conf", "rootfs.include.0")],
    )
    assert spec.annotations == {
        "unikernelType": "unikraft",
        "hypervisor": "qemu",
        "binary": "/.boot/kernel",
        "initrd": "/.boot/rootfs",
        "cmdline": "redis-server /conf/redis.conf",
        "useDMBlock": "false",
        "mountRootfs": "false",
    }
    assert spec.cmd is None
    lines = spec.lines
    assert (lines["annotations.unikernelType"], lines["annotations.hypervisor"], lines["architecture"]) == (5, 6, 7)
    assert (lines["annotations.binary"], lines["annotations.cmdline"], lines["rootfs.include.0"]) == (17, 19, 13)


def test_seed_redis_rumprun_raw(tmp_path):
    spec = load(write(tmp_path, REDIS_RUMPRUN))
    assert spec.files == [
        kernel(tmp_path, "redis.hvt"),
        FileEntry("redis.conf", tmp_path / "redis.conf", "/conf/redis.conf", "rootfs.include.0"),
    ]
    assert spec.rootfs == Rootfs(type="raw", origin="scratch")  # nothing left to build
    assert spec.annotations["useDMBlock"] == spec.annotations["mountRootfs"] == "true"
    assert "initrd" not in spec.annotations and "block" not in spec.annotations
    assert spec.annotations["cmdline"] == "redis-server /data/conf/redis.conf"


def test_seed_chttp_local_rootfs_defaults_to_initrd_for_unikraft(tmp_path):
    spec = load(write(tmp_path, CHTTP_UNIKRAFT))
    assert spec.files == [
        kernel(tmp_path, "app-elfloader-qemu-x86_64-initrd_qemu-x86_64"),
        FileEntry("rootfs.cpio", tmp_path / "rootfs.cpio", "/.boot/rootfs", "rootfs.path"),
    ]
    assert spec.rootfs == Rootfs(type="initrd", origin="local", path="rootfs.cpio")
    assert spec.annotations["initrd"] == "/.boot/rootfs"
    assert spec.annotations["cmdline"] == "/chttp"
    assert spec.lines["annotations.initrd"] == 11


def test_seed_network_mirage_without_rootfs(tmp_path):
    spec = load(write(tmp_path, NETWORK_MIRAGE))
    assert spec.files == [kernel(tmp_path, "network.hvt")]
    assert spec.rootfs is None
    assert spec.annotations == {
        "unikernelType": "mirage",
        "hypervisor": "hvt",
        "binary": "/.boot/kernel",
        "cmdline": "",
        "useDMBlock": "false",
        "mountRootfs": "false",
    }


def test_seed_redis_linux_needs_pinned_or_saved_images(tmp_path):
    """bunny pulls `redis:alpine` by tag; urunix wants a digest or a local archive."""
    spec = load(write(tmp_path, REDIS_LINUX))
    assert spec.rootfs.origin == "redis:alpine" and spec.rootfs.type == "raw"
    assert spec.kernel == Source(
        "harbor.nbfc.io/nubificus/urunc/linux-kernel-qemu:v6.14", "/kernel", "kernel", target="/.boot/kernel"
    )
    spec.name = "redis/alpine/linux/qemu"
    with pytest.raises(SpecError) as e:
        validate(spec)
    problems = e.value.problems
    assert [(p.field, p.line) for p in problems] == [("rootfs.from", 8), ("kernel.from", 11)]  # in file order
    assert all("not pinned by digest" in p.message for p in problems)
    assert "docker save redis:alpine -o redis.tar" in problems[0].hint
    assert all(p.file.endswith("bunnyfile") for p in problems)


def test_seed_redis_linux_with_a_local_kernel_still_needs_the_image(tmp_path):
    text = REDIS_LINUX.replace(
        "from: harbor.nbfc.io/nubificus/urunc/linux-kernel-qemu:v6.14\n  path: /kernel", "from: local\n  path: bzImage"
    )
    (tmp_path / "bzImage").write_bytes(b"k")
    spec = load(write(tmp_path, text))
    spec.name = "x"
    with pytest.raises(SpecError) as e:
        validate(spec)
    assert [(p.field, p.line) for p in e.value.problems] == [("rootfs.from", 8)]


def test_seed_whoami_kernel_from_registry(tmp_path):
    (tmp_path / "rootfs.initrd").write_bytes(b"070701")
    spec = load(write(tmp_path, WHOAMI_LINUX))
    spec.name = "x"
    with pytest.raises(SpecError) as e:
        validate(spec)
    assert [(p.field, p.line) for p in e.value.problems] == [("kernel.from", 12)]


def test_cmd_wins_over_cmdline_like_bunny(tmp_path):
    spec = load(
        write(
            tmp_path,
            NETWORK_MIRAGE.replace(
                'cmdline: ""', 'cmdline: "ignored"\ncmd: ["a b", "c"]\nentrypoint: [/init]\nenvs:\n  - HOME=/root\n  - EQ=a=b\n'
            ),
        )
    )
    assert spec.cmd == ["a b", "c"] and spec.entrypoint == ["/init"]
    assert "cmdline" not in spec.annotations
    assert spec.env == {"HOME": "/root", "EQ": "a=b"}
    assert spec.lines["env.EQ"] == 15


def test_string_fields_keep_their_text(tmp_path):
    spec = load(
        write(
            tmp_path,
            NETWORK_MIRAGE.replace("  architecture: x86", "  architecture: x86\n  version: 0.17").replace(
                'cmdline: ""', 'cmdline: "a  b"'
            ),
        )
    )
    assert spec.annotations["unikernelVersion"] == "0.17"  # not the float 0.17
    assert spec.annotations["cmdline"] == "a  b"


def test_block_rootfs_sets_the_mount_point_like_bunny(tmp_path):
    spec = load(write(tmp_path, REDIS_RUMPRUN.replace("type: raw", "type: block")))
    assert spec.annotations["block"] == "/.boot/rootfs"
    assert spec.annotations["blkMntPoint"] == "/data"  # rumprun mounts at /data
    assert spec.rootfs.type == "block" and len(spec.rootfs.include) == 1


def test_include_forms(tmp_path):
    spec = load(
        write(
            tmp_path,
            REDIS_RUMPRUN.replace(
                "  - redis.conf:/conf/redis.conf", "  - redis.conf\n  - source: data/x\n    destination: /x\n  - a:b:c"
            ),
        )
    )
    assert [(f.source, f.target, f.field) for f in spec.files[1:]] == [
        ("redis.conf", "/redis.conf", "rootfs.include.0"),  # no ":" -> same path below /, as bunny
        ("data/x", "/x", "rootfs.include.1"),
        ("a", "b:c", "rootfs.include.2"),  # split on the first ':'
    ]


@pytest.mark.parametrize(
    "edit, field, line, words, hint",
    [
        (("version: v0.1", "version: v0.2"), "version", 2, "unsupported bunnyfile version", "write version: v0.1"),
        (("version: v0.1\n", ""), "version", None, "version is required", None),
        (("  monitor: hvt", "  moniter: hvt"), "platforms.moniter", 5, "unknown field in platforms", 'did you mean "monitor"?'),
        (("cmdline:", "cmdlin:"), "cmdlin", 10, "unknown field", 'did you mean "cmdline"?'),
        (("  path: network.hvt\n", ""), "kernel.path", 7, "kernel.path is required", None),
        (('cmdline: ""', "cmd: /bin/app"), "cmd", 10, "cmd must be a list of strings", None),
        (('cmdline: ""', "envs: [HOME]"), "envs.0", 10, "KEY=VALUE", None),
        (
            ("platforms:\n  framework: mirage\n  monitor: hvt\n  architecture: x86\n", "platforms: mirage\n"),
            "platforms",
            3,
            "platforms must be a mapping",
            None,
        ),
    ],
)
def test_bad_bunnyfiles(tmp_path, edit, field, line, words, hint):
    old, new = edit
    assert old in NETWORK_MIRAGE
    with pytest.raises(SpecError) as e:
        load(write(tmp_path, NETWORK_MIRAGE.replace(old, new)))
    p = e.value.problem
    assert words in p.message, p.message
    assert (p.field, p.line) == (field, line)
    if hint:
        assert p.hint == hint
    assert p.file.endswith("bunnyfile")


@pytest.mark.parametrize(
    "rootfs, field, words",
    [
        ("rootfs:\n  type: ramdisk\n", "rootfs.type", "unknown rootfs type"),
        ("rootfs:\n  from: local\n  type: raw\n  path: x\n", "rootfs.type", "raw rootfs cannot come from a local file"),
        ("rootfs:\n  from: local\n  type: block\n", "rootfs", "rootfs.path is required"),
        ("rootfs:\n  from: local\n  type: block\n  path: x\n  include: [a]\n", "rootfs.include", "cannot be combined"),
        ("rootfs:\n  path: x.img\n", "rootfs.path", "needs rootfs.from: local"),
        ("rootfs:\n  include: [a:/a]\n", "rootfs", "rootfs.type is needed"),
        ("rootfs:\n  type: block\n", "rootfs.type", "nothing to hold"),
        ("rootfs:\n  include: [':/a']\n  type: raw\n", "rootfs.include.0", "needs a source"),
        ("rootfs:\n  include: [{src: a, destination: /a}]\n  type: raw\n", "rootfs.include.0.src", "unknown field"),
    ],
)
def test_bad_rootfs(tmp_path, rootfs, field, words):
    text = NETWORK_MIRAGE.replace('cmdline: ""\n', rootfs)
    with pytest.raises(SpecError) as e:
        load(write(tmp_path, text))
    p = e.value.problem
    assert words in p.message, p.message
    assert p.field == field and p.line is not None


def test_the_default_rootfs_type_is_not_guessed_for_other_guests(tmp_path):
    text = NETWORK_MIRAGE.replace('cmdline: ""\n', "rootfs:\n  from: local\n  path: disk.img\n")
    with pytest.raises(SpecError) as e:
        load(write(tmp_path, text))
    assert e.value.problem.allowed == "initrd, block"
    assert "silently pick raw" in e.value.problem.hint


def test_include_from_an_image_is_not_supported_yet(tmp_path):
    text = REDIS_RUMPRUN.replace(
        "  - redis.conf:/conf/redis.conf", "  - from: nginx:alpine\n    source: /etc/nginx\n    destination: /etc/nginx"
    )
    with pytest.raises(NotSupportedYet) as e:
        load(write(tmp_path, text))
    assert e.value.problem.field == "rootfs.include.0.from" and e.value.problem.line == 13
