"""Checks of validate.py that only an edge case reaches: each test here
fails if its check is deleted (they were found by deleting them, and by
mutation testing: tests/mutate)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from urunix.errors import _UNSET, SpecError
from urunix.resources import contract
from urunix.spec import FileEntry, Rootfs, Source, Spec
from urunix.validate import NAME_MAX, PATH_MAX, SIZE_FORMS, check_path, validate


def spec(
    tmp_path: Path,
    files: dict[str, str] | None = None,
    dirs: dict[str, str] | None = None,
    guest: tuple[str, str] = ("rumprun", "hvt"),
    **kw,
) -> Spec:
    (tmp_path / "kernel").write_bytes(b"\x7fELF")
    entries = [FileEntry("./kernel", tmp_path / "kernel", "/unikernel/kernel", 'files."./kernel"')]
    for i, (name, target) in enumerate((files or {}).items()):
        (tmp_path / name).write_bytes(b"x")
        entries.append(FileEntry(f"./{name}", tmp_path / name, target, f'files."./{name}"'))
    for name, target in (dirs or {}).items():
        (tmp_path / name).mkdir(exist_ok=True)
        entries.append(FileEntry(f"./{name}", tmp_path / name, target, f'files."./{name}"'))
    ann = {"unikernelType": guest[0], "hypervisor": guest[1], "binary": "/unikernel/kernel", "cmdline": "hello"}
    return Spec(file=tmp_path / "args.nix", format="args.nix", name="hello", tag="latest", files=entries, annotations=ann, **kw)


def problems(s: Spec) -> list:
    with pytest.raises(SpecError) as e:
        validate(s)
    return e.value.problems


def test_a_file_copied_inside_a_file_is_refused(tmp_path):
    (p,) = problems(spec(tmp_path, {"a": "/etc/conf", "b": "/etc/conf/extra"}))
    assert p.field == 'files."./b"' and "inside /etc/conf" in p.message and 'files."./a"' in p.message
    # the same two targets as a directory and a file inside it are fine
    img, _ = validate(spec(tmp_path, {"b": "/etc/conf/extra"}, dirs={"d": "/etc/conf"}))
    assert [f.target for f in img.files] == ["/unikernel/kernel", "/etc/conf", "/etc/conf/extra"]


def test_name_max_is_the_boundary(tmp_path):
    ok = "n" * NAME_MAX
    img, _ = validate(spec(tmp_path, {"a": f"/d/{ok}"}))
    assert f"/d/{ok}" in [f.target for f in img.files]
    (p,) = problems(spec(tmp_path, {"a": f"/d/{ok}x"}))
    assert p.field == 'files."./a"' and f"longer than {NAME_MAX} bytes" in p.message
    # bytes, not characters: 128 two-byte characters are 256 bytes
    (p,) = problems(spec(tmp_path, {"a": "/d/" + "é" * 128}))
    assert f"longer than {NAME_MAX} bytes" in p.message


def test_path_max_is_the_boundary(tmp_path):
    part = "p" * 200
    deep = "/" + "/".join([part] * 20)
    ok = (deep + "/" + "q" * NAME_MAX)[:PATH_MAX].rstrip("/")
    assert len(ok) == PATH_MAX
    img, _ = validate(spec(tmp_path, {"a": ok}))
    assert ok in [f.target for f in img.files]
    (p,) = problems(spec(tmp_path, {"a": ok + "r"}))
    assert f"longer than {PATH_MAX} bytes" in p.message


@pytest.mark.parametrize("key", ["A=B", "=A"])
def test_env_key_with_equals_is_refused(tmp_path, key):
    (p,) = problems(spec(tmp_path, env={key: "v"}, guest=("unikraft", "qemu")))
    assert p.field.startswith("env.") and p.message == "is not a valid environment variable name"
    assert p.value == key


def test_env_keys_without_equals_pass_unchanged(tmp_path):
    img, _ = validate(spec(tmp_path, env={"A_B": "1", "lower.dot-dash": "2"}, guest=("unikraft", "qemu")))
    assert img.env == ("A_B=1", "lower.dot-dash=2")


@pytest.mark.parametrize(
    "name,limit",
    [
        ("a" * 237, "ok"),
        ("a" * 238, "long"),
        ("a/" + "b" * 243, "ok"),
        ("a/" + "b" * 244, "long"),
        ("reg.io/" + "b" * 248, "ok"),
        ("reg.io/" + "b" * 249, "long"),
        ("localhost/" + "b" * 245, "ok"),
        ("localhost/" + "b" * 246, "long"),
        ("a/b.c/" + "x" * 240, "long"),  # a.b in the second component: still docker.io/a/...
        ("reg:5000/" + "b" * 246, "ok"),  # a port: a registry, counted as given
    ],
)
def test_image_name_length_as_docker_counts_it(tmp_path, name, limit):
    """distribution/reference: at most 255 characters once normalized
    (docker.io/library/NAME, docker.io/USER/NAME, or with a registry as given)."""
    s = spec(tmp_path)
    s.name = name
    if limit == "ok":
        assert validate(s)[0].name == name
    else:
        (p,) = problems(s)
        assert p.field == "name" and "longer than Docker takes: 255 characters" in p.message


def fields_of(s: Spec) -> list[tuple]:
    return [(p.field, p.message, p.value, p.allowed, p.hint) for p in problems(s)]


NUL = "a\0b"
NUL_MSG = "holds a NUL byte, which no image config, Nix string, argv or environment can carry"
SURROGATE_MSG = "holds a lone UTF-16 surrogate (e.g. \\ud800), which is not valid Unicode and cannot be written as UTF-8"
TEXT_HINT = "remove the character; urunix passes strings on byte for byte"


def _put(s: Spec, tmp_path: Path, where: str, bad: str) -> None:
    """Put the string `bad` at one place of the spec `s`."""
    kind, _, attr = where.partition(":")
    (tmp_path / "tree").mkdir(exist_ok=True)
    if kind in ("name", "tag", "architecture"):
        setattr(s, kind, bad)
    elif kind in ("cmd", "entrypoint"):
        setattr(s, kind, ["ok", bad])
    elif kind in ("annotations", "env", "labels", "unknown"):
        mapping = {bad: "v"} if attr == "key" else {"k": bad}
        if kind == "annotations":
            s.annotations.update(mapping if attr == "key" else {"cmdline": bad})
        else:
            setattr(s, kind, mapping)
    elif kind == "files":
        e = s.files[0]
        s.files[0] = FileEntry(bad if attr == "source" else e.source, e.path, bad if attr == "target" else e.target, e.field)
    elif kind in ("rootfs", "rootfs-unnamed"):
        r = Rootfs(type="initrd", origin="./tree", field="rootfs" if kind == "rootfs" else "")
        if attr == "include":
            r.include = [FileEntry("./x", tmp_path / "x", bad, "rootfs.include.0")]
        else:
            setattr(r, attr, bad)
        s.rootfs = r
    elif kind in ("kernel", "init"):
        src = Source("./tree", "/k", kind)
        setattr(src, "origin" if attr == "from" else "path", bad)
        setattr(s, kind, src)


@pytest.mark.parametrize(
    "where,field,shown",
    [
        ("name", "name", NUL),
        ("tag", "tag", NUL),
        ("architecture", "architecture", NUL),
        ("annotations:value", "annotations.cmdline", NUL),
        ("annotations:key", "annotations", NUL),
        ("cmd", "cmd.1", NUL),
        ("entrypoint", "entrypoint.1", NUL),
        ("env:value", "env.k", NUL),
        ("env:key", "env", NUL),
        ("labels:value", "labels.k", NUL),
        ("unknown:value", "unknown.k", NUL),
        ("files:source", 'files."./kernel"', NUL),
        ("files:target", 'files."./kernel"', NUL),
        ("rootfs:include", "rootfs.include.0", NUL),
        ("rootfs:type", "rootfs.type", NUL),
        ("rootfs:origin", "rootfs.origin", NUL),
        ("rootfs:path", "rootfs.path", NUL),
        ("rootfs:size", "rootfs.size", NUL),
        ("rootfs:fs_type", "rootfs.fs_type", NUL),
        ("rootfs-unnamed:compression", "rootfs.compression", NUL),
        ("kernel:from", "kernel.from", NUL),
        ("kernel:path", "kernel.path", NUL),
        ("init:from", "init.from", NUL),
        ("init:path", "init.path", NUL),
    ],
)
def test_a_nul_anywhere_is_refused_first_and_alone(tmp_path, where, field, shown):
    """Every string of the spec, keys included; the field named, the string shown."""
    s = spec(tmp_path, guest=("unikraft", "qemu"))
    s.name = "bad name!"  # would fail later: texts() stops first
    _put(s, tmp_path, where, NUL)
    assert fields_of(s) == [(field, NUL_MSG, shown, None, TEXT_HINT)]


def test_a_lone_surrogate_is_refused(tmp_path):
    s = spec(tmp_path)
    s.cmd = ["\ud800"]
    assert fields_of(s) == [("cmd.0", SURROGATE_MSG, "\ud800", None, TEXT_HINT)]


def test_one_problem_per_field_however_many_bad_strings(tmp_path):
    s = spec(tmp_path)
    s.labels = {"\0a": "x", "\0b": "y"}
    assert fields_of(s) == [("labels", NUL_MSG, "\0a", None, TEXT_HINT)]


def test_keys_that_are_not_strings_are_walked_too(tmp_path):
    s = spec(tmp_path, guest=("unikraft", "qemu"))
    s.labels = {1: "one"}
    assert validate(s)[0].labels == {"1": "one"}


TOP = "name, tag, files, annotations, architecture, cmd, entrypoint, env, labels, rootfs, kernel, init, urunc"


@pytest.mark.parametrize(
    "change,want",
    [
        ({"unknown": {"colour": "red"}}, [("colour", "is not a field urunix knows", "red", TOP, "remove it")]),
        ({"unknown": {"nmae": "x"}}, [("nmae", "is not a field urunix knows", "x", TOP, 'did you mean "name"?')]),
        ({"name": 5}, [("name", "must be a string", 5, None, None)]),
        ({"tag": 5}, [("tag", "must be a string", 5, None, None)]),
    ],
)
def test_top_level_fields(tmp_path, change, want):
    s = spec(tmp_path)
    for k, v in change.items():
        setattr(s, k, v)
    assert fields_of(s) == want


@pytest.mark.parametrize(
    "value,ok",
    [
        ("/" + "a" * (PATH_MAX), True),  # 4096 bytes: urunc's own limit
        ("/" + "a" * (PATH_MAX + 1), "is longer than 4096 bytes"),
        ("/a b!", "holds characters urunc refuses (' !'); allowed are letters, digits and ._/-"),
        (".", "is '.'"),
        ("..x", "starts with '..' or '-'"),
        ("-x", "starts with '..' or '-'"),
        ("/", "is '/'"),
        ("//a", "is not clean (urunc wants '/a')"),
        ("/a//b", "is not clean (urunc wants '/a/b')"),
        ("/a/", "is not clean (urunc wants '/a')"),
        ("//Xa", "is not clean (urunc wants '/Xa')"),
        ("a//b", "is not clean (urunc wants 'a/b')"),  # relative: refused as such by the caller
    ],
)
def test_check_path_says_what_is_wrong(value, ok):
    assert check_path(value) == (None if ok is True else ok)


def test_only_a_mount_point_may_be_the_root():
    assert (check_path("/", root_ok=True), check_path("/")) == (None, "is '/'")


@pytest.mark.parametrize(
    "name,ok",
    [
        ("Foo/bar", False),  # Docker reads Foo as a path component: no upper case
        ("LOCALHOST/bar", False),
        ("Foo/a.b/c", False),  # only the FIRST component can be a registry
        ("Reg.io/foo", True),
        ("Foo:5000/bar", True),
        ("localhost/bar", True),
    ],
)
def test_upper_case_only_in_a_registry_host(tmp_path, name, ok):
    s = spec(tmp_path)
    s.name = name
    if ok:
        assert validate(s)[0].name == name
    else:
        assert [p[:3] for p in fields_of(s)] == [("name", "is not a valid image name", name)]


@pytest.mark.parametrize(
    "machine,arch",
    [("X86_64", "amd64"), ("x86_64", "amd64"), ("AArch64", "arm64"), ("riscv64", "riscv64"), ("RISCV64", "riscv64")],
)
def test_host_architecture_when_none_is_given(tmp_path, monkeypatch, machine, arch):
    import platform

    monkeypatch.setattr(platform, "machine", lambda: machine)
    assert validate(spec(tmp_path))[0].architecture == arch


def test_source_date_epoch_is_utc_and_checked(monkeypatch):
    import time

    from urunix.validate import created

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        monkeypatch.setenv("SOURCE_DATE_EPOCH", "86399")
        assert created() == "1970-01-01T23:59:59Z"
        monkeypatch.setenv("SOURCE_DATE_EPOCH", "soon")
        with pytest.raises(SpecError) as e:
            created()
        ((message, field, value),) = [(p.message, p.field, p.value) for p in e.value.problems]
        assert (message, field, value) == ("SOURCE_DATE_EPOCH is not a number of seconds", "SOURCE_DATE_EPOCH", "soon")
    finally:
        monkeypatch.undo()
        time.tzset()


# -- rootfs, kernel and init (Validator.storage, .rootfs, .extract) ---------------

MONITOR = {"unikraft": "qemu", "rumprun": "hvt", "linux": "qemu", "mewz": "qemu", "mirage": "hvt"}
TYPE_HINT = "initrd: a cpio in memory; block: an ext2/ext4 disk image; raw: the image's own rootfs (devmapper)"


def image_tar(path: Path) -> None:
    """The smallest docker-archive sources.resolve takes for an image."""
    with tarfile.open(path, "w") as t:
        data = b"[]"
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))


def guest_spec(tmp_path: Path, guest: str, ann: dict | None = None, fmt: str = "args.nix", binary: bool = True, **kw) -> Spec:
    """A spec for `guest` with a kernel at /unikernel/kernel (unless
    binary=False), a directory ./tree, a plain file ./blob and an image
    archive ./img.tar beside it."""
    (tmp_path / "kernel").write_bytes(b"\x7fELF")
    (tmp_path / "tree").mkdir(exist_ok=True)
    (tmp_path / "tree" / "app").write_bytes(b"app")
    (tmp_path / "blob").write_bytes(b"blob")
    image_tar(tmp_path / "img.tar")
    kind, monitor = guest, MONITOR[guest]
    files = [FileEntry("./kernel", tmp_path / "kernel", "/unikernel/kernel", 'files."./kernel"')] if binary else []
    base = {"unikernelType": kind, "hypervisor": monitor} | ({"binary": "/unikernel/kernel"} if binary else {})
    if guest == "linux":
        kw.setdefault("cmd", ["/sbin/init"])
    return Spec(file=tmp_path / "spec", format=fmt, name="t/x", tag="latest", files=files, annotations=base | (ann or {}), **kw)


def refused(spec: Spec) -> list[tuple]:
    with pytest.raises(SpecError) as e:
        validate(spec)
    return [(p.field, p.message, p.value, p.allowed, p.hint) for p in e.value.problems]


def problem(field: str, message: str, value=_UNSET, allowed=None, hint=None) -> tuple:
    return (field, message, value, allowed, hint)


# -- what is built: the defaults and what the spec sets -------------------------


# fmt: off
@pytest.mark.parametrize(
    "guest,rootfs,want,ann",
    [
        pytest.param('unikraft', Rootfs(origin='./tree'), {'type': 'initrd', 'target': '/.boot/rootfs', 'compression': 'none', 'hardlinks': 'copy', 'size': 'auto'}, {'initrd': '/.boot/rootfs', 'useDMBlock': 'false', 'mountRootfs': 'false'}, id='unikraft-default-initrd-copies-hardlinks'),
        pytest.param('linux', Rootfs(type='initrd', origin='./tree', compression='gzip'), {'type': 'initrd', 'target': '/.boot/rootfs', 'compression': 'gzip', 'hardlinks': 'link'}, {'initrd': '/.boot/rootfs', 'useDMBlock': 'false', 'mountRootfs': 'false'}, id='linux-gzip-initrd'),
        pytest.param('rumprun', Rootfs(type='block', origin='./tree'), {'type': 'block', 'target': '/.boot/rootfs.ext2', 'fs_type': 'ext2', 'size': 'auto', 'compression': 'none'}, {'block': '/.boot/rootfs.ext2', 'blkMntPoint': '/data', 'useDMBlock': 'false', 'mountRootfs': 'false'}, id='rumprun-block-defaults'),
        pytest.param('linux', Rootfs(type='block', origin='./tree', fs_type='ext4', size='64M', path='/boot/disk'), {'type': 'block', 'target': '/boot/disk', 'fs_type': 'ext4', 'size': '64M'}, {'block': '/boot/disk', 'blkMntPoint': '/', 'useDMBlock': 'false', 'mountRootfs': 'false'}, id='linux-block-as-written'),
        pytest.param('linux', Rootfs(type='block', origin='scratch', fs_type='ext4'), {'type': 'block', 'target': '/.boot/rootfs.ext4', 'fs_type': 'ext4'}, {'block': '/.boot/rootfs.ext4', 'blkMntPoint': '/'}, id='block-default-path-names-the-fs'),
        pytest.param('mirage', Rootfs(type='block', origin='./tree', size=1048576), {'type': 'block', 'size': '1048576', 'fs_type': 'ext2'}, {'block': '/.boot/rootfs.ext2', 'blkMntPoint': '/'}, id='mirage-block-size-in-bytes'),
        pytest.param('linux', Rootfs(type='raw', origin='./tree'), {'type': 'raw', 'target': None}, {'useDMBlock': 'true', 'mountRootfs': 'true'}, id='raw-is-devmapper'),
        pytest.param('unikraft', Rootfs(type='initrd', origin='./tree', path='/boot/initrd'), {'type': 'initrd', 'target': '/boot/initrd'}, {'initrd': '/boot/initrd'}, id='initrd-path'),
        pytest.param('unikraft', Rootfs(type='initrd', origin='./tree'), {'type': 'initrd', 'target': '/boot/initrd'}, {'initrd': '/boot/initrd'}, id='initrd-path-from-the-annotation'),
    ],
)
# fmt: on
def test_rootfs_built(tmp_path, guest, rootfs, want, ann):
    given = {"initrd": "/boot/initrd"} if rootfs.path is None and want.get("target") == "/boot/initrd" else None
    img, _ = validate(guest_spec(tmp_path, guest, given, rootfs=rootfs))
    assert img.rootfs is not None
    assert {k: getattr(img.rootfs, k) for k in want} == want
    assert img.rootfs.field == "rootfs" and img.rootfs.origin.kind == ("dir" if rootfs.origin == "./tree" else "scratch")
    assert {k: img.annotations.get(k) for k in ann} == ann
    assert set(img.annotations) <= set(contract()["keys"])


def test_built_block_rootfs_is_mounted_at_root_next_to_an_initrd(tmp_path):
    """urunc v0.7.0 attaches a block image next to an initrd at blkMntPoint:
    the rootfs urunix builds says where (urunc_rules.fill_defaults would not)."""
    s = guest_spec(tmp_path, "linux", {"initrd": "/boot/initrd"}, rootfs=Rootfs(type="block", origin="./tree"), urunc=["v0.7.0"])
    s.files.append(FileEntry("./blob", tmp_path / "blob", "/boot/initrd", 'files."./blob"'))
    img, _ = validate(s)
    assert (img.annotations["block"], img.annotations["blkMntPoint"]) == ("/.boot/rootfs.ext2", "/")


def test_rootfs_of_an_unknown_guest(tmp_path):
    s = guest_spec(tmp_path, "rumprun", {"unikernelType": "rumprunn"}, rootfs=Rootfs(type="block", origin="./tree"))
    assert [p[:2] for p in refused(s)] == [("annotations.unikernelType", "is not a guest kind urunc knows")]


# -- what is refused -----------------------------------------------------------

PREBUILT = {
    "initrd": 'copy the prebuilt initrd into the image (add it to files: files."./rootfs" = "/.boot/rootfs";) '
    'and point at it: annotations.initrd = "/.boot/rootfs";',
    "block": 'copy the prebuilt block into the image (add it to files: files."./rootfs" = "/.boot/rootfs";) '
    'and point at it: annotations.block = "/.boot/rootfs";',
}


# fmt: off
@pytest.mark.parametrize(
    "guest,rootfs,ann,want",
    [
        pytest.param('rumprun', Rootfs(origin='./tree'), {}, [problem('rootfs', 'rootfs.type is needed for a rumprun guest', allowed='initrd, block, raw', hint=TYPE_HINT)], id='no-default-type'),
        pytest.param('unikraft', Rootfs(type='initrdd', origin='./tree'), {}, [problem('rootfs.type', 'is not a rootfs type', 'initrdd', 'initrd, block, raw', 'did you mean "initrd"?')], id='unknown-type'),
        pytest.param('unikraft', Rootfs(type='initrdd', origin='./tree', field='disk'), {}, [problem('disk.type', 'is not a rootfs type', 'initrdd', 'initrd, block, raw', 'did you mean "initrd"?')], id='named-by-its-field'),
        pytest.param('unikraft', Rootfs(type='block', origin='./tree', field=''), {}, [problem('rootfs.type', 'a unikraft guest cannot boot from block storage', 'block', 'storage for unikraft: initrd')], id='unnamed-is-rootfs'),
        pytest.param('rumprun', Rootfs(type='initrd', origin='./tree'), {}, [problem('rootfs.type', 'a rumprun guest cannot boot from initrd storage', 'initrd', 'storage for rumprun: block, devmapper')], id='storage-of-the-guest'),
        pytest.param('unikraft', Rootfs(type='raw', origin='./tree'), {}, [problem('rootfs.type', 'a unikraft guest cannot boot from devmapper storage', 'raw', 'storage for unikraft: initrd')], id='raw-needs-devmapper'),
        pytest.param('mewz', Rootfs(type='block', origin='./tree'), {}, [problem('rootfs.type', 'a mewz guest cannot boot from block storage', 'block', 'storage for mewz: none (in-memory)')], id='in-memory-guest'),
        pytest.param('unikraft', Rootfs(type='initrd', origin='./blob'), {}, [problem('rootfs.from', 'a single file is not a rootfs tree', './blob', hint=PREBUILT['initrd'])], id='file-is-no-tree-initrd'),
        pytest.param('rumprun', Rootfs(type='block', origin='./blob'), {}, [problem('rootfs.from', 'a single file is not a rootfs tree', './blob', hint=PREBUILT['block'])], id='file-is-no-tree-block'),
        pytest.param('linux', Rootfs(type='raw', origin='./tree'), {'useDMBlock': 'false'}, [problem('annotations.useDMBlock', "a raw rootfs is the container's own rootfs, handed to the guest by devmapper", 'false', hint='remove it: urunix sets it to true for rootfs.type = raw')], id='raw-with-devmapper-off'),
        pytest.param('unikraft', Rootfs(type='initrd', origin='./tree'), {'mountRootfs': 'true'}, [problem('annotations.mountRootfs', 'asks for the devmapper rootfs, but rootfs.type is initrd', 'true')], id='initrd-with-devmapper-on'),
        pytest.param('rumprun', Rootfs(type='block', origin='./tree', fs_type='xfs'), {}, [problem('rootfs.fsType', 'is not a filesystem urunix builds', 'xfs', 'ext2, ext4')], id='unknown-fs-said-once'),
        pytest.param('rumprun', Rootfs(type='block', origin='./tree', fs_type='ext4'), {}, [problem('rootfs.fsType', 'a rumprun guest mounts only ext2', 'ext4')], id='fs-of-the-guest'),
        pytest.param('linux', Rootfs(type='block', origin='./tree', size='lots'), {}, [problem('rootfs.size', 'is not a size', 'lots', SIZE_FORMS)], id='bad-size'),
        pytest.param('linux', Rootfs(type='initrd', origin='./tree', compression='zstd'), {}, [problem('rootfs.compression', 'is not a compression urunix writes', 'zstd', 'none, gzip')], id='unknown-compression'),
        pytest.param('unikraft', Rootfs(type='initrd', origin='./tree', compression='gzip'), {}, [problem('rootfs.compression', 'a unikraft guest reads only an uncompressed cpio', 'gzip')], id='gzip-for-a-unikernel'),
        pytest.param('unikraft', Rootfs(type='initrd', origin='./tree', size='1M'), {}, [problem('rootfs.size', 'applies to block images only', '1M')], id='size-of-an-initrd'),
        pytest.param('unikraft', Rootfs(type='initrd', origin='./tree', path='/boot/x'), {'initrd': '/other'}, [problem('annotations.initrd', "disagrees with rootfs.path ('/boot/x')", '/other', hint='set only rootfs.path; urunix writes the annotation')], id='path-and-annotation-disagree'),
        pytest.param('unikraft', Rootfs(type='initrd', origin='./tree', path='boot/x'), {}, [problem('rootfs.path', 'must be absolute; urunc refuses such a path', 'boot/x')], id='relative-path'),
        pytest.param('unikraft', Rootfs(type='initrd', origin='./tree', path='/boot//x'), {}, [problem('rootfs.path', "is not clean (urunc wants '/boot/x'); urunc refuses such a path", '/boot//x')], id='unclean-path'),
    ],
)
# fmt: on
def test_rootfs_refused(tmp_path, guest, rootfs, ann, want):
    assert refused(guest_spec(tmp_path, guest, ann, rootfs=rootfs)) == want


def test_rootfs_problems_all_in_one_run(tmp_path):
    """A bad `from` does not hide the other fields' problems."""
    s = guest_spec(tmp_path, "unikraft", rootfs=Rootfs(type="initrd", origin="./blob", compression="zstd", size="1M"))
    assert [p[:2] for p in refused(s)] == [
        ("rootfs.from", "a single file is not a rootfs tree"),
        ("rootfs.compression", "is not a compression urunix writes"),
        ("rootfs.size", "applies to block images only"),
    ]


@pytest.mark.parametrize("lines,field", [({}, "rootfs"), ({"rootfs.from": 3}, "rootfs.from")])
def test_rootfs_from_is_named_where_the_user_wrote_it(tmp_path, lines, field):
    s = guest_spec(tmp_path, "unikraft", rootfs=Rootfs(type="initrd", origin="./nothere"), lines=lines)
    ((f, message, value, _, _),) = refused(s)
    assert (f, message, value) == (field, "does not exist", "./nothere")


def test_prebuilt_hint_in_a_bunnyfile(tmp_path):
    s = guest_spec(tmp_path, "unikraft", fmt="bunnyfile", rootfs=Rootfs(type="initrd", origin="./blob"))
    (p,) = refused(s)
    assert p == (
        "rootfs.from",
        "a single file is not a rootfs tree",
        "./blob",
        None,
        "a prebuilt initrd or block image is from: local with path: FILE",
    )


@pytest.mark.parametrize(
    "guest,rootfs,ann",
    [
        ("linux", Rootfs(type="initrd", origin="local", path="./blob"), {"useDMBlock": "false", "mountRootfs": "false"}),
        ("linux", Rootfs(type="raw", origin="scratch"), {"useDMBlock": None, "mountRootfs": None}),
        ("unikraft", Rootfs(type="initrd", origin="local", path="./blob"), {"useDMBlock": None, "mountRootfs": None}),
    ],
)
def test_rootfs_urunix_does_not_build(tmp_path, guest, rootfs, ann):
    """A local (prebuilt) rootfs, or a raw one from scratch: nothing to build;
    a Linux guest's snapshot settings are still written (off) for a prebuilt one."""
    img, _ = validate(guest_spec(tmp_path, guest, rootfs=rootfs))
    assert img.rootfs is None
    assert {k: img.annotations.get(k) for k in ann} == ann


@pytest.mark.parametrize("include", [False, True])
def test_base_rootfs_is_an_image_tree(tmp_path, include):
    """A Containerfile's FROM: the base's tree under ours, so a binary that
    is only in the base is not reported missing."""
    (tmp_path / "conf").write_bytes(b"c")
    entries = [FileEntry("./conf", tmp_path / "conf", "/etc/conf", "COPY")] if include else []
    s = guest_spec(
        tmp_path, "rumprun", {"binary": "/bin/app"}, binary=False, rootfs=Rootfs(type="base", origin="./img.tar", include=entries)
    )
    img, _ = validate(s, read_images="none")  # the image's config is rootfs_image_config's (test_rootfs_image_config)
    assert img.rootfs is not None and (img.rootfs.type, img.rootfs.origin.kind, img.rootfs.field) == ("raw", "image", "rootfs")
    assert [(f.target, f.field) for f in img.rootfs.include] == ([("/etc/conf", "COPY")] if include else [])


@pytest.mark.parametrize("rtype,origin", [("initrd", "./tree"), ("base", "./img.tar")])
def test_rootfs_include_may_fill_the_whole_tree(tmp_path, rtype, origin):
    """A guest rootfs is not the image: `/` and /urunc.json are the user's to fill."""
    s = guest_spec(tmp_path, "unikraft")
    include = [FileEntry("./tree", tmp_path / "tree", "/", "rootfs.include.0")]
    include += [FileEntry("./blob", tmp_path / "blob", "/urunc.json", "rootfs.include.1")] if rtype == "initrd" else []
    s.rootfs = Rootfs(type=rtype, origin=origin, include=include, field="disk")
    img, _ = validate(s, read_images="none")
    assert img.rootfs is not None and img.rootfs.field == "disk"
    assert [(f.target, f.field) for f in img.rootfs.include] == [(f.target, f.field) for f in include]


@pytest.mark.parametrize(
    "rtype,origin,found",
    [("raw", "./img.tar", True), ("raw", "./tree", False), ("initrd", "./img.tar", False), ("block", "./img.tar", False)],
)
def test_binary_from_the_rootfs_image_is_checked_at_build_time(tmp_path, rtype, origin, found):
    """Only a raw rootfs from an image is the image's own tree, read at build time."""
    s = guest_spec(tmp_path, "linux", {"binary": "/boot/vmlinuz"}, binary=False, rootfs=Rootfs(type=rtype, origin=origin))
    if found:
        assert validate(s, read_images="none")[0].annotations["binary"] == "/boot/vmlinuz"
    else:
        assert ("annotations.binary", "names a file the image will not contain") in [p[:2] for p in refused(s)]


def test_base_rootfs_that_does_not_exist(tmp_path):
    s = guest_spec(tmp_path, "rumprun", rootfs=Rootfs(type="base", origin="./nothere"))
    assert [p[:3] for p in refused(s)] == [("rootfs", "does not exist", "./nothere")]


# -- kernel and init -------------------------------------------------------------


# fmt: off
@pytest.mark.parametrize(
    "kernel,binary,want",
    [
        pytest.param(Source('local', './kernel', 'kernel'), None, ('file', None, '/kernel'), id='local-default-target'),
        pytest.param(Source('local', './kernel', 'kernel'), '/boot/k', ('file', None, '/boot/k'), id='local-at-the-binary'),
        pytest.param(Source('local', './kernel', 'kernel', target='/.boot/kernel'), None, ('file', None, '/.boot/kernel'), id='local-target'),
        pytest.param(Source('./img.tar', None, 'kernel'), None, ('image', '/kernel', '/kernel'), id='image-default-path'),
        pytest.param(Source('./img.tar', '/boot/vmlinuz', 'kernel'), None, ('image', '/boot/vmlinuz', '/boot/vmlinuz'), id='image-path'),
        pytest.param(Source('./blob', '/k', 'kernel'), None, ('file', '/k', '/k'), id='file-from-with-path'),
        pytest.param(Source('./blob', None, 'kernel'), None, ('file', None, '/kernel'), id='file-from'),
    ],
)
# fmt: on
def test_kernel_extracted(tmp_path, kernel, binary, want):
    s = guest_spec(tmp_path, "rumprun", {"binary": binary} if binary else {}, binary=False, kernel=kernel)
    img, _ = validate(s)
    assert img.kernel is not None
    assert (img.kernel.origin.kind, img.kernel.inner, img.kernel.target, img.kernel.field) == (*want, "kernel")
    assert img.annotations["binary"] == want[2]


def test_bunnyfile_local_kernel_already_in_files(tmp_path):
    s = guest_spec(tmp_path, "rumprun", kernel=Source("local", "./kernel", "kernel", target="/unikernel/kernel"))
    img, _ = validate(s)
    assert img.kernel is None and [f.target for f in img.files] == ["/unikernel/kernel"]


# fmt: off
@pytest.mark.parametrize(
    "kernel,want",
    [
        pytest.param(Source('./img.tar', 'boot/vmlinuz', ''), [problem('kernel.path', 'must be an absolute path inside the image', 'boot/vmlinuz')], id='relative-inner-path'),
        pytest.param(Source('./tree', None, 'kernel'), [problem('kernel.from', 'must be a file or an image, not a dir', './tree', hint='e.g. kernel.from = "./kernel-image.tar";')], id='dir-is-no-kernel'),
        pytest.param(Source('./blob', '/boot//k', 'kernel'), [problem('kernel.path', "is not clean (urunc wants '/boot/k'); urunc refuses such a binary path", '/boot//k')], id='unclean-target'),
    ],
)
# fmt: on
def test_kernel_refused(tmp_path, kernel, want):
    assert refused(guest_spec(tmp_path, "rumprun", binary=False, kernel=kernel)) == want


@pytest.mark.parametrize("binary", [None, "/unikernel/kernel"])
def test_kernel_that_does_not_exist_is_said_once(tmp_path, binary):
    """Its `from` is wrong: no "binary is missing" or "not in the image" on top."""
    s = guest_spec(
        tmp_path, "rumprun", {"binary": binary} if binary else {}, binary=False, kernel=Source("./nothere", None, "kernel")
    )
    assert [p[:3] for p in refused(s)] == [("kernel.from", "does not exist", "./nothere")]


@pytest.mark.parametrize("guest", ["rumprun", "linux"])
def test_init_only_for_linux(tmp_path, guest):
    (tmp_path / "urunit").write_bytes(b"\x7fELF")
    s = guest_spec(tmp_path, guest, init=Source("local", "./urunit", "init"))
    if guest == "linux":
        img, _ = validate(s)
        assert img.init is not None and (img.init.origin.kind, img.init.target) == ("file", "/urunit")
        return
    assert refused(s) == [
        problem(
            "init",
            "only Linux guests run an init; a rumprun guest is the application itself",
            hint='remove init, or set annotations.unikernelType = "linux";',
        )
    ]


# -- hints in the user's format, the files urunc boots --------------------------


@pytest.mark.parametrize(
    "key,value,rootfs,hint",
    [
        ("useDMBlock", "yes", None, 'write annotations.useDMBlock = "true";'),
        ("mountRootfs", "1", None, 'write annotations.mountRootfs = "true";'),
        ("useDMBlock", "no", None, 'write annotations.useDMBlock = "false";'),
        ("useDMBlock", "N", None, 'write annotations.useDMBlock = "false";'),
        ("useDMBlock", "OFF", None, 'write annotations.useDMBlock = "false";'),
        ("mountRootfs", "0", None, 'write annotations.mountRootfs = "false";'),
        ("useDMBlock", "yes", "raw", 'remove it: with rootfs.type raw urunix writes "true" itself'),
        ("mountRootfs", "yes", "raw", 'remove it: with rootfs.type raw urunix writes "true" itself'),
        ("mountRootfs", "yes", "block", 'remove it: with rootfs.type block urunix writes "false" itself'),
    ],
)
def test_bool_annotation_hint(tmp_path, key, value, rootfs, hint):
    s = guest_spec(tmp_path, "linux", {key: value}, rootfs=Rootfs(type=rootfs, origin="./tree") if rootfs else None)
    want = ("annotations." + key, "must be the text true or false (urunc main refuses anything else)", value, "true, false", hint)
    assert want in refused(s)


@pytest.mark.parametrize(
    "fmt,hint",
    [
        ("args.nix", 'add annotations.binary = "..."; -- the kernel path inside the image'),
        ("yaml", "add binary: ...  (under annotations:) -- the kernel path inside the image"),
    ],
)
def test_missing_annotation_hint_in_the_users_format(tmp_path, fmt, hint):
    s = guest_spec(tmp_path, "rumprun", fmt=fmt, binary=False)
    assert refused(s) == [problem("annotations.binary", "is required by urunc and missing", hint=hint)]


def test_a_loader_problem_under_the_users_name_counts_as_failed(tmp_path):
    """A Containerfile loader reports `LABEL com.urunc.unikernel.binary`:
    no "binary is missing" on top of it."""
    from urunix.errors import Problem

    s = guest_spec(tmp_path, "rumprun", fmt="containerfile", binary=False)
    s.problems.add(Problem("is not a path", field="LABEL com.urunc.unikernel.binary"))
    assert [p[:2] for p in refused(s)] == [("LABEL com.urunc.unikernel.binary", "is not a path")]


@pytest.mark.parametrize(
    "layout,binary,exclude,found",
    [
        ({"d/kernel": b"k"}, "/x/kernel", (), True),
        ({"d/sub/kernel": b"k"}, "/x/sub/kernel", (), True),
        ({"d/sub/kernel": b"k"}, "/x/sub/kernel", ("sub",), False),  # a .dockerignore'd directory
        ({"d/sub/kernel": b"k"}, "/x/sub/kernel", ("sub/kernel",), False),
        ({"d/kernel": b"k"}, "/x/other", (), False),
        ({"d/kernel": b"k"}, "/y/kernel", (), False),  # the same name, but not below the copy's target
    ],
)
def test_binary_inside_a_copied_directory(tmp_path, layout, binary, exclude, found):
    for rel, data in layout.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    s = guest_spec(tmp_path, "rumprun", {"binary": binary}, binary=False)
    s.files = [FileEntry("./d", tmp_path / "d", "/x", 'files."./d"', frozenset(exclude))]
    if found:
        assert validate(s)[0].annotations["binary"] == binary
    else:
        assert [p[:3] for p in refused(s)] == [("annotations.binary", "names a file the image will not contain", binary)]


@pytest.mark.parametrize("inside", [False, True])
def test_an_empty_binary_is_a_warning(tmp_path, inside):
    s = guest_spec(tmp_path, "rumprun", {"binary": "/x/kernel" if inside else "/unikernel/kernel"}, binary=inside is False)
    if inside:
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "kernel").write_bytes(b"")
        s.files = [FileEntry("./d", tmp_path / "d", "/x", 'files."./d"')]
    else:
        (tmp_path / "kernel").write_bytes(b"")
    _, diag = validate(s)
    (w,) = [w for w in diag.warnings if w.field == "annotations.binary"]
    assert (w.message, w.value, w.hint) == (
        "names an empty file (0 bytes); urunc would hand the monitor an empty binary",
        "/x/kernel" if inside else "/unikernel/kernel",
        "check that the file was built completely",
    )


# -- every refusal, exactly: field, message, value, allowed, hint ------------------
# (guest, format, annotations added, files added (source, target), other fields, problems)
NAME_FORM = "lowercase letters, digits and separators (. _ - /), e.g. urunc/prebuilt/redis-rumprun-hvt"
KEYS = (
    "unikernelType, hypervisor, binary, cmdline, unikernelVersion, initrd, block, blkMntPoint, useDMBlock, mountRootfs, "
    "solo5NetDev, solo5BlkDev"
)


# fmt: off
@pytest.mark.parametrize(
    "guest,fmt,ann,files,attrs,want",
    [
        pytest.param('rumprun', 'args.nix', 'x', [], {}, [('annotations', 'must be an attribute set / mapping', 'x', None, None)], id='annotations-not-a-mapping'),
        pytest.param('rumprun', 'args.nix', {'colour': 'red'}, [], {}, [('annotations.colour', 'is not an annotation urunc reads', None, KEYS, 'urunc ignores unknown keys; put other metadata in `labels`')], id='unknown-annotation'),
        pytest.param('rumprun', 'args.nix', {'binay': '/unikernel/kernel'}, [], {}, [('annotations.binay', 'is not an annotation urunc reads', None, KEYS, 'did you mean "binary"?')], id='unknown-annotation-near-miss'),
        pytest.param('rumprun', 'containerfile', {'colour': 'red'}, [], {}, [('LABEL com.urunc.unikernel.colour', 'is not an annotation urunc reads', None, KEYS, 'urunc ignores unknown keys; for other metadata use a label without the com.urunc.unikernel. prefix')], id='unknown-label-in-a-containerfile'),
        pytest.param('rumprun', 'args.nix', {'cmdline': 5}, [], {}, [('annotations.cmdline', 'must be a string', 5, None, 'write it in quotes: annotations.cmdline = "5";')], id='annotation-not-a-string'),
        pytest.param('rumprun', 'args.nix', {'cmdline': True}, [], {}, [('annotations.cmdline', 'must be a string', True, None, 'write it in quotes: annotations.cmdline = "true";')], id='annotation-bool-not-a-string'),
        pytest.param('rumprun', 'args.nix', {'unikernelType': 'rumprunn'}, [], {}, [('annotations.unikernelType', 'is not a guest kind urunc knows', 'rumprunn', 'unikraft, rumprun, mirage, mewz, linux, hermit, freebsd', 'did you mean "rumprun"?')], id='unknown-guest'),
        pytest.param('rumprun', 'args.nix', {'hypervisor': 'hvtt'}, [], {}, [('annotations.hypervisor', 'is not a monitor urunc knows', 'hvtt', 'qemu, firecracker, hvt, spt, cloud-hypervisor, hyperlight', 'did you mean "hvt"?')], id='unknown-monitor'),
        pytest.param('rumprun', 'args.nix', {'binary': '/a b'}, [], {}, [('annotations.binary', "holds characters urunc refuses (' '); allowed are letters, digits and ._/-; urunc refuses such a path when the container starts", '/a b', 'a clean absolute path of letters, digits and ._/- (e.g. /unikernel/kernel)', None)], id='path-characters'),
        pytest.param('rumprun', 'args.nix', {'binary': 'unikernel/kernel'}, [], {}, [('annotations.binary', 'must be an absolute path inside the image', 'unikernel/kernel', None, 'did you mean "/unikernel/kernel"?')], id='path-relative'),
        pytest.param('linux', 'args.nix', {'blkMntPoint': 'data'}, [], {}, [('annotations.blkMntPoint', 'must be an absolute path inside the image', 'data', None, 'did you mean "/data"?')], id='mountpoint-relative'),
        pytest.param('rumprun', 'args.nix', {'useDMBlock': 'True'}, [], {}, [('annotations.useDMBlock', 'must be the text true or false (urunc main refuses anything else)', 'True', 'true, false', 'did you mean "true"?')], id='bool-near-miss'),
        pytest.param('rumprun', 'args.nix', {'solo5NetDev': 'bad-name!'}, [], {}, [('annotations.solo5NetDev', 'is not a valid Solo5 device name', 'bad-name!', '1 to 67 letters or digits', None), ('annotations.solo5NetDev', 'urunc v0.6.0, v0.7.0 and main: does not read solo5NetDev: the Solo5 device names are fixed (rumprun --net:tap/--block:rootfs, Mirage --net:service/--block:storage)', 'bad-name!', None, 'remove annotations.solo5NetDev')], id='devname'),
        pytest.param('rumprun', 'args.nix', {'hypervisor': 'qemu'}, [], {}, [('annotations.hypervisor', 'urunc cannot run a rumprun guest on qemu', 'qemu', 'rumprun runs on hvt, spt; qemu runs unikraft, mirage, mewz, linux, hermit, freebsd', 'urunc would hand such a container to runc, silently')], id='pair'),
        pytest.param('rumprun', 'args.nix', {'useDMBlock': 'true', 'mountRootfs': 'false'}, [], {}, [('annotations.mountRootfs', "disagrees with useDMBlock ('true'); they mean the same thing", 'false', None, 'set only one of useDMBlock and mountRootfs; urunix writes both')], id='synonyms-disagree'),
        pytest.param('rumprun', 'args.nix', {'initrd': '/boot/x'}, [('blob', '/boot/x')], {}, [('annotations.initrd', 'a rumprun guest cannot boot from initrd storage', '/boot/x', 'storage for rumprun: block, devmapper', 'write annotations.block = "/boot/x";')], id='initrd-for-rumprun'),
        pytest.param('unikraft', 'args.nix', {'block': '/boot/x'}, [('blob', '/boot/x')], {}, [('annotations.block', 'a unikraft guest cannot boot from block storage', '/boot/x', 'storage for unikraft: initrd', 'write annotations.initrd = "/boot/x";'), ('annotations.blkMntPoint', 'urunc v0.7.0 and main: a block image without blkMntPoint stops the container at start (block.go:handleExplicitBlockImage)', None, None, 'set annotations.blkMntPoint = "/"; for the guest\'s rootfs, or the path of an extra volume')], id='block-for-unikraft'),
        pytest.param('mewz', 'args.nix', {'initrd': '/boot/x'}, [('blob', '/boot/x')], {}, [('annotations.initrd', 'a mewz guest cannot boot from initrd storage', '/boot/x', 'storage for mewz: none (in-memory)', None)], id='initrd-for-mewz'),
        pytest.param('rumprun', 'args.nix', {}, [('blob', '')], {}, [('files."./blob"', 'needs a target path inside the image', '', None, None)], id='target-missing'),
        pytest.param('rumprun', 'args.nix', {}, [('blob', 'etc/x')], {}, [('files."./blob"', 'target must be an absolute path inside the image', 'etc/x', None, 'did you mean "/etc/x"?')], id='target-relative'),
        pytest.param('rumprun', 'args.nix', {}, [('blob', '/etc/../x')], {}, [('files."./blob"', "target must name a path below / without '..'", '/etc/../x', None, None)], id='target-dotdot'),
        pytest.param('rumprun', 'args.nix', {}, [('blob', '/')], {}, [('files."./blob"', "target must name a path below / without '..'", '/', None, None)], id='target-root'),
        pytest.param('rumprun', 'args.nix', {}, [('blob', '//urunc.json')], {}, [('files."./blob"', 'target /urunc.json is written by urunix itself', '//urunc.json', None, "give urunc's metadata as annotations")], id='target-urunc-json'),
        pytest.param('rumprun', 'containerfile', {}, [('blob', '/urunc.json')], {}, [('files."./blob"', 'target /urunc.json is written by urunix itself', '/urunc.json', None, "give urunc's metadata as LABEL com.urunc.unikernel.KEY=VALUE lines")], id='target-urunc-json-containerfile'),
        pytest.param('rumprun', 'args.nix', {}, [('blob', '/etc/x'), ('blob2', '/etc//x')], {'lines': {'files."./blob"': 4}}, [('files."./blob2"', 'copies to the same target as files."./blob" (line 4)', '/etc//x', None, 'keep one of the two entries')], id='target-twice'),
        pytest.param('rumprun', 'args.nix', {}, [('blob', '/etc/x'), ('blob2', '/etc/x')], {}, [('files."./blob2"', 'copies to the same target as files."./blob"', '/etc/x', None, 'keep one of the two entries')], id='target-twice-no-line'),
        pytest.param('rumprun', 'args.nix', {}, [('missing', '/etc/x')], {}, [('files."./missing"', 'source file does not exist', './missing', None, "paths are relative to the spec's directory ({tmp})")], id='source-missing'),
        pytest.param('rumprun', 'args.nix', {}, [('fifo', '/etc/x')], {}, [('files."./fifo"', 'source is neither a regular file nor a directory', './fifo', None, None)], id='source-special'),
        pytest.param('rumprun', 'args.nix', {'binary': '/x'}, [('tree', '/x')], {}, [('annotations.binary', 'names a directory (files."./tree" copies one there); urunc needs a file', '/x', None, 'name a file inside it, e.g. "/x/app"')], id='binary-a-directory'),
        pytest.param('rumprun', 'args.nix', {'binary': '/x'}, [('empty', '/x')], {}, [('annotations.binary', 'names a directory (files."./empty" copies one there); urunc needs a file', '/x', None, 'copy the file itself, not its directory')], id='binary-an-empty-directory'),
        pytest.param('rumprun', 'args.nix', {'binary': '/unikernel/kernal'}, [], {}, [('annotations.binary', 'names a file the image will not contain', '/unikernel/kernal', 'the paths the image will hold: /unikernel/kernel', 'did you mean "/unikernel/kernel"?')], id='binary-missing'),
        pytest.param('rumprun', 'args.nix', {'binary': '/zzz'}, [], {}, [('annotations.binary', 'names a file the image will not contain', '/zzz', 'the paths the image will hold: /unikernel/kernel', 'add it to files: files."./zzz" = "/zzz";')], id='binary-missing-none-close'),
        pytest.param('rumprun', 'yaml', {'binary': '/zzz'}, [], {}, [('annotations.binary', 'names a file the image will not contain', '/zzz', 'the paths the image will hold: /unikernel/kernel', 'add it to files: ./zzz: /zzz  (under files:)')], id='binary-missing-yaml'),
        pytest.param('rumprun', 'bunnyfile', {'binary': '/zzz'}, [], {}, [('kernel.path', 'names a file the image will not contain', '/zzz', 'the paths the image will hold: /unikernel/kernel', 'include it: - ./zzz:/zzz  (under rootfs: include:)')], id='binary-missing-bunnyfile'),
        pytest.param('rumprun', 'containerfile', {'binary': '/zzz'}, [], {}, [('LABEL com.urunc.unikernel.binary', 'names a file the image will not contain', '/zzz', 'the paths the image will hold: /unikernel/kernel', 'COPY it: COPY ./zzz /zzz')], id='binary-missing-containerfile'),
        pytest.param('rumprun', 'args.nix', {'binary': '/etc/x'}, [('missing', '/etc/x')], {}, [('files."./missing"', 'source file does not exist', './missing', None, "paths are relative to the spec's directory ({tmp})")], id='binary-of-a-failed-copy'),
        pytest.param('rumprun', 'args.nix', {}, [], {'architecture': 'amd6'}, [('architecture', 'is not an architecture urunix builds for', 'amd6', 'x86_64, amd64, x86, aarch64, arm64', 'did you mean "amd64"?')], id='architecture'),
        pytest.param('rumprun', 'args.nix', {}, [], {'architecture': 64}, [('architecture', 'is not an architecture urunix builds for', 64, 'x86_64, amd64, x86, aarch64, arm64', None)], id='architecture-not-a-string'),
        pytest.param('rumprun', 'args.nix', {}, [], {'cmd': 'redis-server --port 1'}, [('cmd', 'must be a list of strings', 'redis-server --port 1', None, 'e.g. cmd = [ "redis-server" "--port" "1" ];')], id='cmd-not-a-list'),
        pytest.param('rumprun', 'args.nix', {}, [], {'entrypoint': [1]}, [('entrypoint', 'must be a list of strings', [1], None, 'e.g. entrypoint = [ "redis-server" "/conf/redis.conf" ];')], id='entrypoint-not-strings'),
        pytest.param('rumprun', 'args.nix', {}, [], {'env': ['A=1']}, [('env', 'must be an attribute set / mapping of strings', ['A=1'], None, None)], id='env-not-a-mapping'),
        pytest.param('rumprun', 'args.nix', {}, [], {'env': {'A': [1]}}, [('env.A', 'must be a string', [1], None, None)], id='env-value-not-a-string'),
        pytest.param('rumprun', 'args.nix', {}, [], {'labels': {'com.urunc.unikernel.binary': '/k'}}, [('labels."com.urunc.unikernel.binary"', 'is a urunc annotation; urunix writes those labels itself', None, None, 'move it to annotations: annotations.binary = "/k";')], id='labels-urunc-key'),
        pytest.param('rumprun', 'args.nix', {'cmdline': 'a b'}, [], {'cmd': ['a', 'c']}, [('cmd', 'and annotations.cmdline are both given and disagree', ['a', 'c'], None, 'give one of them: urunix derives the other')], id='cmd-and-cmdline-disagree'),
        pytest.param('linux', 'args.nix', {}, [], {'cmd': []}, [('annotations.cmdline', "a Linux guest needs an init: urunc passes argv[0] as init= and fails with 'No init was specified'", None, None, 'set cmd = [ "/urunit" "/usr/bin/app" ];')], id='linux-no-init'),
        pytest.param('rumprun', 'args.nix', {}, [], {'urunc': 'v9'}, [('urunc', "names 'v9', not a urunc release urunix knows", 'v9', 'v0.5.0, v0.6.0, v0.7.0, main, next', 'urunc = [ "v0.6.0" "v0.7.0" "main" ];')], id='bad-target'),
        pytest.param('rumprun', 'args.nix', {}, [], {'name': None}, [('name', 'is missing', None, None, 'set name = "my/image"; in the spec, or pass --tag NAME:TAG')], id='name-missing'),
        pytest.param('rumprun', 'yaml', {}, [], {'name': ''}, [('name', 'is missing', None, None, 'set name: my/image in the spec, or pass --tag NAME:TAG')], id='name-missing-yaml'),
        pytest.param('rumprun', 'bunnyfile', {}, [], {'name': None}, [('image name', 'is missing', None, None, 'pass --tag NAME:TAG (a bunnyfile names no image)')], id='name-missing-bunnyfile'),
        pytest.param('rumprun', 'containerfile', {}, [], {'name': None}, [('image name', 'is missing', None, None, 'pass --tag NAME:TAG (a Containerfile names no image)')], id='name-missing-containerfile'),
        pytest.param('rumprun', 'args.nix', {}, [], {'name': '-My Img!'}, [('name', 'is not a valid image name', '-My Img!', NAME_FORM, 'try "my-img"')], id='name-invalid'),
        pytest.param('rumprun', 'args.nix', {}, [], {'name': '!!!'}, [('name', 'is not a valid image name', '!!!', NAME_FORM, 'try "my-image"')], id='name-invalid-nothing-left'),
        pytest.param('rumprun', 'args.nix', {}, [], {'name': 'a' * 300}, [('name', 'is longer than Docker takes: 255 characters, counting the docker.io/ (and library/) Docker puts before it', 'a' * 80 + '...', None, None)], id='name-too-long'),
        pytest.param('rumprun', 'args.nix', {}, [], {'tag': '.x'}, [('tag', 'is not a valid image tag', '.x', 'up to 128 of A-Z a-z 0-9 _ . -, not starting with . or -', None)], id='tag-invalid'),
    ],
)
# fmt: on
def test_refused_exactly(tmp_path, guest, fmt, ann, files, attrs, want):
    """Sources: ./blob, ./blob2 (files), ./tree (a directory holding app),
    ./empty (an empty directory), ./fifo (neither), ./missing (nothing)."""
    s = guest_spec(tmp_path, guest, fmt=fmt)
    s.annotations = s.annotations | ann if isinstance(ann, dict) else ann
    (tmp_path / "empty").mkdir()
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "blob2").write_bytes(b"2")
    s.files += [FileEntry(f"./{src}", tmp_path / src, target, f'files."./{src}"') for src, target in files]
    for k, v in attrs.items():
        setattr(s, k, v)
    with pytest.raises(SpecError) as e:
        validate(s)
    got = [(p.field, p.message, None if p.value is _UNSET else p.value, p.allowed, p.hint) for p in e.value.problems]
    assert got == [tuple(x.replace("{tmp}", str(tmp_path)) if isinstance(x, str) else x for x in p) for p in want]


def test_unikernel_version_only_for_unikraft(tmp_path):
    _, diag = validate(guest_spec(tmp_path, "rumprun", {"unikernelVersion": "0.16"}))
    assert [(w.field, w.message) for w in diag.warnings if "unikernelVersion" in w.field] == [
        ("annotations.unikernelVersion", "only Unikraft uses unikernelVersion; urunc ignores it for rumprun")
    ]
    _, diag = validate(guest_spec(tmp_path, "unikraft", {"unikernelVersion": "0.16"}))
    assert [w for w in diag.warnings if "unikernelVersion" in w.field] == []


# -- the argv: entrypoint, cmd and the cmdline annotation, per guest ---------------
# (guest, cmd, entrypoint, annotations.cmdline, with an init) -> (entrypoint, cmd, cmdline written)
# fmt: off
ARGV = [
    (("rumprun", None, None, "hello world", False), (None, ["hello", "world"], "hello world")),
    (("rumprun", ["hello", "world"], None, None, False), (None, ["hello", "world"], "hello world")),
    (("rumprun", ["hello"], ["/bin/x"], None, False), (["/bin/x"], ["hello"], "/bin/x hello")),
    (("rumprun", None, ["/bin/x"], None, False), (["/bin/x"], [], None)),
    (("rumprun", None, None, None, False), (None, [""], None)),  # one empty argument: Docker wants a Cmd
    (("rumprun", ["a"], None, "a", False), (None, ["a"], "a")),
    (("mirage", None, None, "a b", False), (None, ["a", "b"], "a b")),
    (("linux", None, None, "/bin/app -v", False), (["/bin/app"], ["-v"], "/bin/app -v")),
    (("linux", None, None, "/bin/app -v", True), (["/urunit", "/bin/app"], ["-v"], "/urunit /bin/app -v")),
    (("linux", None, None, "/urunit /bin/app", True), (["/urunit", "/bin/app"], [], "/urunit /bin/app")),
    (("linux", ["/bin/app", "-v"], None, None, True), (["/urunit", "/bin/app"], ["-v"], "/urunit /bin/app -v")),
    (("linux", ["-v"], ["/bin/app"], None, True), (["/urunit", "/bin/app"], ["-v"], "/urunit /bin/app -v")),
    (("linux", ["/bin/app"], None, "/bin/app", True), (["/urunit", "/bin/app"], [], "/urunit /bin/app")),
    (("linux", ["/urunit", "/bin/app"], None, None, True), (["/urunit", "/bin/app"], [], "/urunit /bin/app")),
    (("linux", ["/bin/app", "-v"], None, None, False), (["/bin/app"], ["-v"], "/bin/app -v")),
    (("linux", None, ["/bin/app"], None, False), (["/bin/app"], [], None)),
    (("linux", ["/bin/app", "a b"], None, None, True), (["/urunit", "/bin/app"], ["a b"], "/urunit /bin/app 'a b'")),
    (("linux", None, None, None, True), (["/urunit"], [], "/urunit")),
    (("linux", [], [], None, True), (["/urunit"], [], "/urunit")),
    (("linux", ["/bin/app", "-v"], None, "/bin/app  -v", False), (["/bin/app"], ["-v"], "/bin/app  -v")),
]
# fmt: on


@pytest.mark.parametrize("given,want", ARGV)
def test_argv_per_guest(tmp_path, given, want):
    guest, cmd, entrypoint, cmdline, init = given
    s = guest_spec(tmp_path, guest, {"cmdline": cmdline} if cmdline is not None else {}, cmd=cmd, entrypoint=entrypoint)
    if init:
        (tmp_path / "urunit").write_bytes(b"\x7fELF")
        s.init = Source("local", "./urunit", "init")
    img, _ = validate(s)
    listed = None if img.entrypoint is None else list(img.entrypoint), list(img.cmd)  # the Image holds tuples
    assert (*listed, img.annotations.get("cmdline"), img.argv_from_image) == (*want, False)


def test_the_whole_image(tmp_path):
    """Every field validate() fills, for one spec that sets them all."""
    s = guest_spec(
        tmp_path,
        "unikraft",
        {"cmdline": "app -v"},
        architecture="AArch64",
        env={"A": 1, "B": True, "C": "x=y", "D": False, "E": 1.5},
        labels={"org.example": "1"},
        workdir="/srv",
        urunc=["v0.7.0", "main"],
    )
    s.tag = None
    img, _ = validate(s)
    got = img.to_json() | {k: getattr(img, k) for k in ("targets", "source", "workdir", "argv_from_image", "rootfs", "kernel")}
    assert got == {
        "name": "t/x",
        "tag": "latest",
        "architecture": "arm64",
        "annotations": {"binary": "/unikernel/kernel", "cmdline": "app -v", "hypervisor": "qemu", "unikernelType": "unikraft"},
        "cmd": ["-v"],
        "entrypoint": None,  # Unikraft: urunc puts its own argv0 first
        "env": ["A=1", "B=true", "C=x=y", "D=false", "E=1.5"],
        "labels": {"org.example": "1"},
        "files": [{"source": "./kernel", "target": "/unikernel/kernel"}],
        "created": "1970-01-01T00:00:01Z",
        "targets": ("v0.7.0", "main"),
        "source": tmp_path / "spec",
        "workdir": "/srv",
        "argv_from_image": False,
        "rootfs": None,
        "kernel": None,
    }


# -- the command a rootfs image gives (Validator.image_argv) ---------------------


def config_image(path: Path, config: dict) -> None:
    """An image archive with one empty layer and this run config."""
    from urunix.helpers import image_writer

    plan = {"format": "docker-archive", "repoTags": ["t/base:latest"], "created": "1970-01-01T00:00:01Z", "architecture": "amd64"}
    image_writer.write_atomic(
        plan | {"config": config, "layers": [{"name": "base", "entries": [{"type": "dir", "path": "/data"}]}]}, str(path)
    )


# fmt: off
@pytest.mark.parametrize(("guest", "config", "init", "want"), [
    # guest, the image's Entrypoint/Cmd, an init, -> (Entrypoint, Cmd, cmdline)
    ("linux", {"Entrypoint": ["/bin/app"], "Cmd": ["--port", "80"]}, False, (["/bin/app"], ["--port", "80"], "/bin/app --port 80")),
    ("linux", {"Entrypoint": ["/bin/app"], "Cmd": ["--port", "80"]}, True, (["/urunit", "/bin/app"], ["--port", "80"], "/urunit /bin/app --port 80")),
    ("linux", {"Entrypoint": ["/bin/app", "-v"]}, True, (["/urunit", "/bin/app", "-v"], [], "/urunit /bin/app -v")),
    ("linux", {"Cmd": ["/bin/app", "a"]}, False, (["/bin/app"], ["a"], "/bin/app a")),
    ("linux", {"Cmd": ["/bin/app", "a b"]}, True, (["/urunit", "/bin/app"], ["a b"], "/urunit /bin/app 'a b'")),
    ("linux", {"Cmd": ["/bin/app", "x"]}, True, (["/urunit", "/bin/app"], ["x"], "/urunit /bin/app x")),
    ("linux", {"Cmd": ["/bin/app"]}, True, (["/urunit", "/bin/app"], [], "/urunit /bin/app")),
    ("linux", {}, True, (["/urunit"], [], "/urunit")),
    ("rumprun", {"Entrypoint": ["/bin/app"], "Cmd": ["-v"]}, False, (None, ["/bin/app", "-v"], "/bin/app -v")),
    ("rumprun", {}, False, (None, [""], "")),  # as the build wrote it before validation took it over
])
# fmt: on
def test_the_command_a_rootfs_image_gives(tmp_path, guest, config, init, want):
    config_image(tmp_path / "app.tar", config | ({"Env": ["A=1"]} if guest == "linux" else {}))
    s = guest_spec(tmp_path, guest, rootfs=Rootfs(type="initrd" if guest == "linux" else "block", origin="./app.tar"))
    s.cmd = None
    if init:
        (tmp_path / "urunit").write_bytes(b"\x7fELF")
        s.init = Source("local", "./urunit", "init")
    img, _ = validate(s)
    listed = None if img.entrypoint is None else list(img.entrypoint), list(img.cmd)
    assert (*listed, img.annotations.get("cmdline"), img.argv_from_image) == (*want, False)


def test_a_linux_rootfs_image_without_a_command(tmp_path):
    config_image(tmp_path / "app.tar", {})
    s = guest_spec(tmp_path, "linux", rootfs=Rootfs(type="initrd", origin="./app.tar"))
    s.cmd = None
    want = ("cmd", "the rootfs image has no Entrypoint or Cmd, and the spec gives no command")
    assert [p[:2] for p in refused(s)] == [want]
    assert refused(s)[0][4] == 'set cmd = [ "/urunit" "/usr/bin/app" ]; (a Linux guest needs an init)'


# -- files: every entry is checked, one problem each ----------------------------

LINUX_CANNOT = "Linux (and so docker load, mke2fs and the guest) cannot create such a path"


def gone(tmp_path: Path) -> tuple:
    """The problem of the second entry each case below adds: its source is missing."""
    return problem('files."./gone"', "source file does not exist", "./gone", hint=f"paths are relative to the spec's directory ({tmp_path})")


# fmt: off
@pytest.mark.parametrize(
    "target,source,want",
    [
        pytest.param("", "blob", ("needs a target path inside the image", "", None), id="empty-target"),
        pytest.param("etc/x", "blob", ("target must be an absolute path inside the image", "etc/x", 'did you mean "/etc/x"?'), id="relative"),
        pytest.param("/a/../b", "blob", ("target must name a path below / without '..'", "/a/../b", None), id="dot-dot"),
        pytest.param("/", "blob", ("target must name a path below / without '..'", "/", None), id="root-file"),
        pytest.param("/", "tree", ("target must name a path below / without '..'", "/", None), id="root-dir-in-files"),
        pytest.param("/d/" + "n" * 256, "blob", (f"target has a name longer than {NAME_MAX} bytes", "/d/" + "n" * 256, LINUX_CANNOT), id="long-name"),
        pytest.param("/d" * 2049, "blob", (f"target is longer than {PATH_MAX} bytes", "/d" * 2049, LINUX_CANNOT), id="long-path"),
        pytest.param("/urunc.json", "blob", ("target /urunc.json is written by urunix itself", "/urunc.json", "give urunc's metadata as annotations"), id="urunc-json"),
        pytest.param("/x", "dangling", ("source is neither a regular file nor a directory", "./dangling", None), id="dangling-symlink"),
        pytest.param("/x", "nothere", ("source file does not exist", "./nothere", "SPECDIR"), id="missing-source"),
        pytest.param("/x", "fifo", ("source is neither a regular file nor a directory", "./fifo", None), id="fifo"),
    ],
)
# fmt: on
def test_a_bad_entry_is_said_and_the_next_is_checked_too(tmp_path, target, source, want):
    s = guest_spec(tmp_path, "rumprun")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    os.mkfifo(tmp_path / "fifo")
    s.files += [
        FileEntry(f"./{source}", tmp_path / source, target, f'files."./{source}"'),
        FileEntry("./gone", tmp_path / "gone", "/gone", 'files."./gone"'),
    ]
    message, value, hint = want
    if hint == "SPECDIR":
        hint = f"paths are relative to the spec's directory ({tmp_path})"
    assert refused(s) == [problem(f'files."./{source}"', message, value, hint=hint), gone(tmp_path)]


@pytest.mark.parametrize("lines,suffix", [({'files."./blob"': 4}, " (line 4)"), ({}, "")])
@pytest.mark.parametrize(
    "second,message,hint",
    [
        ("//etc/conf", 'copies to the same target as files."./blob"{}', "keep one of the two entries"),
        ("/etc/conf/extra", 'would go inside /etc/conf, which files."./blob" makes a file{}', None),
    ],
)
def test_a_clash_with_an_earlier_entry_names_it_and_its_line(tmp_path, lines, suffix, second, message, hint):
    s = guest_spec(tmp_path, "rumprun", lines=lines)
    (tmp_path / "blob2").write_bytes(b"2")
    s.files += [
        FileEntry("./blob", tmp_path / "blob", "/etc/conf", 'files."./blob"'),
        FileEntry("./blob2", tmp_path / "blob2", second, 'files."./blob2"'),
        FileEntry("./gone", tmp_path / "gone", "/gone", 'files."./gone"'),
    ]
    want = [problem('files."./blob2"', message.format(suffix), second, hint=hint), gone(tmp_path)]
    assert sorted(refused(s)) == sorted(want)


@pytest.mark.parametrize("fmt,order", [("containerfile", ["/d/x", "/d"]), ("args.nix", ["/d", "/d/x"])])
def test_a_containerfile_keeps_its_copy_order(tmp_path, fmt, order):
    """A later COPY wins in a Containerfile; elsewhere a file inside a copied
    directory is placed after the directory, whatever the order written."""
    s = guest_spec(tmp_path, "rumprun", fmt=fmt, binary=False)
    s.annotations["binary"] = "/d/x"
    s.files += [
        FileEntry("./blob", tmp_path / "blob", "/d/x", 'files."./blob"'),
        FileEntry("./tree", tmp_path / "tree", "/d", 'files."./tree"'),
    ]
    img, _ = validate(s)
    assert [f.target for f in img.files] == order


def test_a_failed_relative_target_is_not_also_said_missing(tmp_path):
    """The annotation naming what a wrong entry meant to copy is not a second
    problem: the entry's own problem says it."""
    s = guest_spec(tmp_path, "rumprun", {"binary": "/Xkernel"}, binary=False)
    s.files.append(FileEntry("./kernel", tmp_path / "kernel", "Xkernel", 'files."./kernel"'))
    assert refused(s) == [
        problem('files."./kernel"', "target must be an absolute path inside the image", "Xkernel", hint='did you mean "/Xkernel"?')
    ]


def test_an_entry_without_target_adds_no_path_to_the_list(tmp_path):
    s = guest_spec(tmp_path, "rumprun", {"binary": "/unikernel/kernell"})
    s.files.append(FileEntry("./blob", tmp_path / "blob", "", 'files."./blob"'))
    found = refused(s)
    assert found[0] == problem('files."./blob"', "needs a target path inside the image", "")
    assert found[1][:2] == ("annotations.binary", "names a file the image will not contain")
    assert found[1][3] == "the paths the image will hold: /unikernel/kernel"


def test_a_directory_as_the_rootfs_root(tmp_path):
    """bunny's `- rootfs:/`: a directory's tree is the rootfs's tree, kept
    with what it leaves out; `/` is not then a path the image lacks."""
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "skip").write_bytes(b"s")
    entry = FileEntry("./root", tmp_path / "root", "/", "rootfs.include.0", frozenset({"skip"}))
    s = guest_spec(tmp_path, "unikraft", {"binary": "/unikernel/kernell"}, rootfs=Rootfs(type="initrd", include=[entry]))
    found = refused(s)
    assert [p[:2] for p in found] == [("annotations.binary", "names a file the image will not contain")]
    assert found[0][3] == "the paths the image will hold: /.boot/rootfs, /unikernel/kernel"
    img, _ = validate(guest_spec(tmp_path, "unikraft", rootfs=Rootfs(type="initrd", include=[entry])))
    assert img.rootfs is not None and img.rootfs.include == [entry]


# -- each annotation, name and field on its own: one bad one hides no other ----


@pytest.mark.parametrize("tag", [None, ""])
def test_no_tag_is_latest(tmp_path, tag):
    s = guest_spec(tmp_path, "rumprun")
    s.tag = tag
    assert validate(s)[0].tag == "latest"


def test_a_mount_point_may_be_the_root_a_path_may_not(tmp_path):
    img, _ = validate(guest_spec(tmp_path, "linux", {"blkMntPoint": "/"}))
    assert img.annotations["blkMntPoint"] == "/"
    assert refused(guest_spec(tmp_path, "rumprun", {"binary": "/"}))[0][:3] == (
        "annotations.binary",
        "is '/'; urunc refuses such a path when the container starts",
        "/",
    )


@pytest.mark.parametrize("value,want", [(False, "false"), (True, "true")])
def test_a_bool_annotation_is_the_text(tmp_path, value, want):
    img, _ = validate(guest_spec(tmp_path, "rumprun", {"useDMBlock": value}))
    assert (img.annotations["useDMBlock"], img.annotations["mountRootfs"]) == (want, want)


HV = problem("annotations.hypervisor", "is not a monitor urunc knows", "hvtt", ", ".join(contract()["monitors"]), 'did you mean "hvt"?')


@pytest.mark.parametrize(
    "first,want",
    [
        pytest.param({"bogus": "x"}, [problem("annotations.bogus", "is not an annotation urunc reads", allowed=None, hint=None)], id="unknown"),
        pytest.param({"cmdline": None}, [], id="none-is-unset"),
        pytest.param({"cmdline": ""}, [], id="empty-is-unset"),
        pytest.param({"cmdline": ["A"]}, [problem("annotations.cmdline", "must be a string", ["A"], hint="write it in quotes: annotations.cmdline = \"['A']\";")], id="list"),
        pytest.param({"useDMBlock": 1}, [problem("annotations.useDMBlock", "must be a string", 1, hint='write it in quotes: annotations.useDMBlock = "1";')], id="number"),
    ],
)
def test_an_annotation_after_another_is_checked_too(tmp_path, first, want):
    s = guest_spec(tmp_path, "rumprun")
    s.annotations = first | {k: v for k, v in s.annotations.items() if k not in first} | {"hypervisor": "hvtt"}
    found = refused(s)
    if want and want[0][0] == "annotations.bogus":
        assert found[0][:2] == want[0][:2] and found[1:] == [HV]
    else:
        assert found == want + [HV]


def test_every_missing_artifact_is_said(tmp_path):
    """binary, initrd and block each: one refused does not stop the next."""
    s = guest_spec(tmp_path, "linux", {"binary": "/nokernel", "initrd": "/noinitrd", "block": "/noblock"})
    assert [(p[0], p[1]) for p in refused(s) if "will not contain" in p[1]] == [
        ("annotations.binary", "names a file the image will not contain"),
        ("annotations.initrd", "names a file the image will not contain"),
        ("annotations.block", "names a file the image will not contain"),
    ]


@pytest.mark.parametrize(
    "binary,entry,want",
    [
        pytest.param("/Xk", FileEntry("./kernel", Path("kernel"), "Xk", 'files."./kernel"'), ("files.\"./kernel\"", "target must be an absolute path inside the image"), id="failed-entry"),
        pytest.param("kernel", None, ("annotations.binary", "must be an absolute path inside the image"), id="relative"),
        pytest.param("/d", FileEntry("./tree", Path("tree"), "/d", 'files."./tree"'), ("annotations.binary", 'names a directory (files."./tree" copies one there); urunc needs a file'), id="directory"),
    ],
)
def test_an_artifact_after_a_wrong_one_is_checked_too(tmp_path, binary, entry, want):
    s = guest_spec(tmp_path, "linux", {"binary": binary, "initrd": "/noinitrd"}, binary=False)
    if entry is not None:
        s.files.append(FileEntry(entry.source, tmp_path / entry.path, entry.target, entry.field))
    assert [(p[0], p[1]) for p in refused(s)] == [want, ("annotations.initrd", "names a file the image will not contain")]


@pytest.mark.parametrize("names,hint", [(["b", "a"], 'name a file inside it, e.g. "/d/a"'), ([], "copy the file itself, not its directory")])
def test_a_directory_named_as_the_binary(tmp_path, names, hint):
    (tmp_path / "d").mkdir()
    for n in names:
        (tmp_path / "d" / n).write_bytes(b"x")
    (tmp_path / "d" / "sub").mkdir()
    s = guest_spec(tmp_path, "rumprun", {"binary": "/d"}, binary=False)
    s.files.append(FileEntry("./d", tmp_path / "d", "/d", 'files."./d"'))
    assert refused(s) == [problem("annotations.binary", 'names a directory (files."./d" copies one there); urunc needs a file', "/d", hint=hint)]


def test_an_image_without_paths_says_none(tmp_path):
    found = refused(guest_spec(tmp_path, "rumprun", {"binary": "/x"}, binary=False))
    assert [p[3] for p in found] == ["the paths the image will hold: none"]


def test_a_failed_copy_in_a_containerfile_hides_the_missing_artifact(tmp_path):
    """A COPY that failed has no known target: any path may have been its."""
    from urunix.errors import Problem

    s = guest_spec(tmp_path, "rumprun", {"binary": "/x"}, fmt="containerfile", binary=False)
    s.problems.add(Problem("source does not exist", field="files"))
    assert [p[:2] for p in refused(s)] == [("files", "source does not exist")]
    s = guest_spec(tmp_path, "rumprun", {"binary": "/x"}, binary=False)
    s.problems.add(Problem("source does not exist", field="files"))
    assert [p[:2] for p in refused(s)] == [("files", "source does not exist"), ("annotations.binary", "names a file the image will not contain")]


def test_an_empty_architecture_is_the_hosts(tmp_path):
    from urunix.validate import host_architecture

    img, _ = validate(guest_spec(tmp_path, "rumprun", architecture=""))
    assert img.architecture == host_architecture()


def test_every_bad_env_value_is_said(tmp_path):
    s = guest_spec(tmp_path, "rumprun", env={"A": [1], "B": {"x": 1}})
    assert [p[:3] for p in refused(s)] == [("env.A", "must be a string", [1]), ("env.B", "must be a string", {"x": 1})]


def test_an_unread_rootfs_image_leaves_the_command_to_the_build(tmp_path):
    """read_images="none" (the Nix check): the image's own command is not
    known, so the argv is the init alone and argv_from_image says so."""
    config_image(tmp_path / "app.tar", {"Cmd": ["/bin/app"]})
    (tmp_path / "urunit").write_bytes(b"\x7fELF")
    s = guest_spec(tmp_path, "linux", rootfs=Rootfs(type="initrd", origin="./app.tar"), init=Source("local", "./urunit", "init"))
    s.cmd = None
    img, _ = validate(s, read_images="none")
    assert (img.entrypoint, img.cmd, img.argv_from_image) == (None, ("/urunit",), True)
    s.init = None
    img, _ = validate(s, read_images="none")
    assert (img.entrypoint, img.cmd, img.argv_from_image) == (None, (), True)


def test_an_init_of_another_name_still_leads_the_entrypoint(tmp_path):
    config_image(tmp_path / "app.tar", {"Cmd": ["/bin/app", "x"]})
    (tmp_path / "tini").write_bytes(b"\x7fELF")
    s = guest_spec(tmp_path, "linux", rootfs=Rootfs(type="initrd", origin="./app.tar"), init=Source("local", "./tini", "init", target="/sbin/tini"))
    s.cmd = None
    img, _ = validate(s)
    assert (img.entrypoint, img.cmd) == (("/sbin/tini", "/bin/app"), ("x",))


@pytest.mark.parametrize(
    "fmt,hint",
    [("args.nix", 'write rootfs.type = "block";'), ("bunnyfile", "write type: block  (under rootfs:)")],
)
def test_a_prebuilt_rootfs_of_a_type_the_guest_cannot_boot(tmp_path, fmt, hint):
    """A prebuilt (local) rootfs is not built, so the guest's storage is
    checked on the annotation it gives, and named where the user chose it."""
    s = guest_spec(tmp_path, "rumprun", {"initrd": "/boot/initrd"}, fmt=fmt, rootfs=Rootfs(type="initrd", origin="local", path="./blob"))
    assert refused(s) == [
        problem("rootfs.type", "a rumprun guest cannot boot from initrd storage", "initrd", "storage for rumprun: block, devmapper", hint)
    ]
    s = guest_spec(tmp_path, "rumprun", {"initrd": "/boot/initrd"}, fmt=fmt)
    # a bunnyfile names the annotation rootfs.path, and cannot write a block one
    field, hint = ("annotations.initrd", 'write annotations.block = "/boot/initrd";') if fmt == "args.nix" else ("rootfs.path", None)
    assert refused(s) == [
        problem(field, "a rumprun guest cannot boot from initrd storage", "/boot/initrd", "storage for rumprun: block, devmapper", hint)
    ]


IMAGE_ENV = "urunc v0.6.0: does not hand the environment to a rumprun guest; it is dropped"
IMAGE_WD = "urunc v0.6.0: does not hand WorkingDir to the guest (only Linux with urunit gets it, from v0.7.0)"


@pytest.mark.parametrize(
    "field,lines,line",
    [
        ("rootfs", {"rootfs.from": 4, "rootfs": 2}, 4),
        ("rootfs", {"rootfs": 2}, 2),
        ("disk", {"disk.from": 5}, 5),
        ("", {}, None),
        ("", {"rootfs": 3}, 3),
    ],
)
def test_what_the_rootfs_image_gives_is_judged_at_its_from(tmp_path, field, lines, line):
    """The image's Env and WorkingDir are not the spec's: each is named as
    the image's, at the line of the rootfs `from` (or of the rootfs)."""
    config_image(tmp_path / "app.tar", {"Cmd": ["/bin/app"], "Env": ["APP=1"], "WorkingDir": "/data"})
    rootfs = Rootfs(type="block", origin="./app.tar", field=field)
    s = guest_spec(tmp_path, "rumprun", rootfs=rootfs, urunc=["v0.6.0"], lines=lines, cmd=None)
    with pytest.raises(SpecError) as e:
        validate(s)
    assert [(p.field, p.line, p.key, p.message, p.value) for p in e.value.problems] == [
        ("image Env", line, "image Env", IMAGE_ENV, ["APP"])
    ]
    # and the image's WorkingDir, which no rumprun guest gets: a warning there
    with pytest.raises(SpecError) as e:
        validate(guest_spec(tmp_path, "rumprun", rootfs=rootfs, urunc=["v0.6.0"], lines=lines, cmd=None, env={"A": "1"}))
    assert sorted(p.field for p in e.value.problems) == ["env", "image Env"]
    rootfs = Rootfs(type="initrd", origin="./app.tar", field=field)
    img, diag = validate(guest_spec(tmp_path, "linux", rootfs=rootfs, urunc=["v0.6.0"], lines=lines, cmd=None))
    assert [(w.field, w.line, w.key, w.message) for w in diag.warnings] == [("WorkingDir", line, "WorkingDir", IMAGE_WD)]
    assert img.workdir == "/data"


# -- the command: argv() and where it comes from --------------------------------


def with_init(tmp_path: Path, s: Spec, name: str = "urunit", target: str | None = None) -> Spec:
    (tmp_path / name).write_bytes(b"\x7fELF")
    s.init = Source("local", f"./{name}", "init", target=target)
    return s


# fmt: off
@pytest.mark.parametrize(
    "given,want",
    [
        # cmd, entrypoint, cmdline -> entrypoint, cmd, the cmdline written
        pytest.param((None, ["/bin/app", "a b"], None), (["/urunit", "/bin/app", "a b"], [], "/urunit /bin/app 'a b'"), id="entrypoint-gets-the-init"),
        pytest.param((None, None, "/bin/app x"), (["/urunit", "/bin/app"], ["x"], "/urunit /bin/app x"), id="cmdline-gets-the-init"),
        pytest.param((["/urunit", "/bin/app"], None, "/urunit  /bin/app"), (["/urunit", "/bin/app"], [], "/urunit  /bin/app"), id="cmdline-with-the-init-kept-as-written"),
        pytest.param((["/bin/app", "a b"], None, "/bin/app 'a b'"), (["/urunit", "/bin/app"], ["a b"], "/urunit /bin/app 'a b'"), id="quoted-cmdline-agrees"),
    ],
)
# fmt: on
def test_the_init_goes_first(tmp_path, given, want):
    cmd, entrypoint, cmdline = given
    s = with_init(tmp_path, guest_spec(tmp_path, "linux", {"cmdline": cmdline} if cmdline else {}, cmd=cmd, entrypoint=entrypoint))
    img, _ = validate(s)
    got = (None if img.entrypoint is None else list(img.entrypoint), list(img.cmd), img.annotations["cmdline"])
    assert got == want


def test_an_init_of_another_name_leads_the_spec_command_too(tmp_path):
    s = with_init(tmp_path, guest_spec(tmp_path, "linux", cmd=["/bin/app", "x"]), "tini", "/sbin/tini")
    img, _ = validate(s)
    assert (img.entrypoint, img.cmd, img.annotations["cmdline"]) == (("/sbin/tini", "/bin/app"), ("x",), "/sbin/tini /bin/app x")


@pytest.mark.parametrize(
    "attrs,ann,field",
    [
        ({"cmd": "/bin/app"}, {}, "cmd"),
        ({"cmd": None, "entrypoint": "/bin/app"}, {}, "entrypoint"),
        ({"cmd": None}, {"cmdline": 5}, "annotations.cmdline"),
    ],
)
def test_a_bad_command_is_not_also_a_missing_init(tmp_path, attrs, ann, field):
    s = guest_spec(tmp_path, "linux", ann, **attrs)
    assert [p[0] for p in refused(s)] == [field]


def test_bad_annotations_are_not_also_a_missing_init(tmp_path):
    s = guest_spec(tmp_path, "linux", cmd=None)
    s.annotations = ["not", "a", "mapping"]
    assert [p[:2] for p in refused(s)][0] == ("annotations", "must be an attribute set / mapping")
    assert all("needs an init" not in p[1] for p in refused(s))


def test_unikraft_cmd_and_cmdline_that_disagree(tmp_path):
    s = guest_spec(tmp_path, "unikraft", {"cmdline": "app -x"}, cmd=["-y"])
    ((field, message, value, _, hint),) = refused(s)
    assert (field, value) == ("cmd", ["-y"])
    assert message.startswith("and annotations.cmdline disagree: for Unikraft, cmd holds the app's arguments only")
    assert hint


@pytest.mark.parametrize(
    "attrs,ann,want",
    [
        ({"cmd": None}, {"cmdline": "/bin/other y"}, (["/bin/other"], ["y"])),
        ({"cmd": None, "entrypoint": ["/bin/other"]}, {}, (["/bin/other"], [])),
        ({"cmd": ["/bin/other"]}, {}, (["/bin/other"], [])),
    ],
)
def test_a_command_in_the_spec_replaces_the_images(tmp_path, attrs, ann, want):
    config_image(tmp_path / "app.tar", {"Cmd": ["/bin/app", "x"]})
    s = guest_spec(tmp_path, "linux", ann, rootfs=Rootfs(type="initrd", origin="./app.tar"), **attrs)
    img, _ = validate(s)
    assert (None if img.entrypoint is None else list(img.entrypoint), list(img.cmd)) == want


def test_a_base_from_scratch_builds_no_rootfs(tmp_path):
    img, _ = validate(guest_spec(tmp_path, "rumprun", fmt="containerfile", rootfs=Rootfs(type="base", origin="scratch")))
    assert img.rootfs is None


def test_a_prebuilt_linux_rootfs_turns_devmapper_off(tmp_path):
    s = guest_spec(tmp_path, "linux", {"initrd": "/boot/initrd"}, rootfs=Rootfs(type="initrd", origin="local", path="./blob"))
    s.files.append(FileEntry("./blob", tmp_path / "blob", "/boot/initrd", 'files."./blob"'))
    img, _ = validate(s)
    assert set(img.annotations) <= set(contract()["keys"])
    assert (img.annotations["useDMBlock"], img.annotations["mountRootfs"]) == ("false", "false")


def test_a_kernel_that_failed_is_not_also_a_missing_binary(tmp_path):
    s = guest_spec(tmp_path, "rumprun", {"binary": "/kernel"}, binary=False, kernel=Source("./nothere.tar", "/kernel", "kernel"))
    assert [p[:2] for p in refused(s)] == [("kernel.from", "does not exist")]


def test_two_bad_strings_in_one_field_are_one_problem(tmp_path):
    s = guest_spec(tmp_path, "rumprun")
    s.files.append(FileEntry("./a\0", tmp_path / "a", "/\ud800", 'files."./a"'))
    assert [p[0] for p in refused(s)] == ['files."./a"']


def test_a_linux_guest_without_a_command_and_a_bad_monitor(tmp_path):
    """Both are said: the missing init does not follow from the monitor."""
    s = guest_spec(tmp_path, "linux", {"hypervisor": "qemuu"}, cmd=None)
    assert [p[0] for p in refused(s)] == ["annotations.hypervisor", "annotations.cmdline"]


def test_a_directory_named_as_an_initrd_the_guest_cannot_boot(tmp_path):
    """The storage problem is the one said, not also what the path holds."""
    s = guest_spec(tmp_path, "rumprun", {"initrd": "/d"})
    s.files.append(FileEntry("./tree", tmp_path / "tree", "/d", 'files."./tree"'))
    assert [p[:2] for p in refused(s)] == [("annotations.initrd", "a rumprun guest cannot boot from initrd storage")]


def test_the_spec_env_overrides_the_images(tmp_path):
    config_image(tmp_path / "app.tar", {"Cmd": ["/bin/app"], "Env": ["A=b=c", "B=x", "C=1"]})
    s = guest_spec(tmp_path, "linux", rootfs=Rootfs(type="initrd", origin="./app.tar"), env={"A": "p=q", "C": "2"})
    assert validate(s)[0].env == ("B=x", "A=p=q", "C=2")


@pytest.mark.parametrize("read_images", ["none", "local", "all"])
def test_every_way_of_reading_rootfs_images(tmp_path, read_images):
    config_image(tmp_path / "app.tar", {"Cmd": ["/bin/app"]})
    s = guest_spec(tmp_path, "rumprun", rootfs=Rootfs(type="block", origin="./app.tar"), cmd=None)
    img, _ = validate(s, read_images=read_images)
    assert (img.cmd, img.argv_from_image) == (((), True) if read_images == "none" else (("/bin/app",), False))


def test_a_bad_label_value_is_named_as_a_label(tmp_path):
    s = guest_spec(tmp_path, "rumprun", labels={"a": ["x"]})
    assert [p[:3] for p in refused(s)] == [("labels.a", "must be a string", ["x"])]


@pytest.mark.parametrize("cmd,field", [(None, "image Entrypoint/Cmd"), (["/bin/app", "a b"], "cmd.1")])
def test_a_command_problem_names_whose_command_it_is(tmp_path, cmd, field):
    """rumprun splits its arguments at spaces again: said of the image's
    command when it is the image's, of the spec's when the spec gives one."""
    config_image(tmp_path / "app.tar", {"Cmd": ["/bin/app", "a b"]})
    s = guest_spec(tmp_path, "rumprun", rootfs=Rootfs(type="block", origin="./app.tar"), cmd=cmd)
    assert [p[0] for p in refused(s)] == [field]


def test_every_problem_of_the_images_env_is_said(tmp_path):
    config_image(tmp_path / "app.tar", {"Cmd": ["/bin/app"], "Env": ["A=a&b", "B=c<d"]})
    s = guest_spec(tmp_path, "rumprun", rootfs=Rootfs(type="block", origin="./app.tar"), urunc=["main"], cmd=None)
    assert [p[0] for p in refused(s)] == ["image Env.A", "image Env.B"]


@pytest.mark.parametrize("init", [False, True])
@pytest.mark.parametrize("cmdline", ["", "   "])
def test_a_blank_cmdline_leaves_the_images_command(tmp_path, cmdline, init):
    """A cmdline of blanks is no command: the rootfs image's is used. It gave
    a Linux image with no command, or the init alone: urunc's own code (the
    harness, v0.7.0 and main) then started `rdinit=/urunit -- ` with no app."""
    config_image(tmp_path / "app.tar", {"Entrypoint": ["/bin/app"], "Cmd": ["--port", "80"]})
    s = guest_spec(tmp_path, "linux", {"cmdline": cmdline}, rootfs=Rootfs(type="initrd", origin="./app.tar"), cmd=None)
    if init:
        s = with_init(tmp_path, s)
    lead = ("/urunit",) if init else ()
    img, _ = validate(s)
    got = (img.entrypoint, img.cmd, img.annotations["cmdline"])
    assert got == ((*lead, "/bin/app"), ("--port", "80"), " ".join((*lead, "/bin/app", "--port", "80")))


def test_no_release_rules_for_a_guest_on_a_monitor_urunc_cannot_pair(tmp_path):
    """The release-by-release findings (here: v0.6.0 drops a rumprun guest's
    env) assume the pair runs at all; for one urunc hands to runc they are noise."""
    s = guest_spec(tmp_path, "rumprun", {"hypervisor": "qemu"}, urunc=["v0.6.0"], env={"A": "1"})
    assert [p[:2] for p in refused(s)] == [("annotations.hypervisor", "urunc cannot run a rumprun guest on qemu")]
    s = guest_spec(tmp_path, "rumprun", urunc=["v0.6.0"], env={"A": "1"})
    assert [p[0] for p in refused(s)] == ["env"]


@pytest.mark.parametrize("guest", ["rumprun", "mirage", "unikraft"])
@pytest.mark.parametrize("attrs", [{"cmd": []}, {"cmd": [], "entrypoint": []}, {"cmd": None, "entrypoint": []}])
def test_an_empty_command_is_one_empty_argument(tmp_path, guest, attrs):
    """Docker refuses to create a container of an image with neither
    Entrypoint nor Cmd ("No command specified", checked with the engine in
    tests/e2e/test_examples_docker.py); `cmd = [];` gave one."""
    img, _ = validate(guest_spec(tmp_path, guest, **attrs))
    assert img.cmd == ("",) and "cmdline" not in img.annotations


def test_an_empty_linux_command_is_refused_with_a_rootfs_image_too(tmp_path):
    """`cmd = [];` replaces the image's command with none: no init to start."""
    config_image(tmp_path / "app.tar", {"Cmd": ["/bin/app"]})
    s = guest_spec(tmp_path, "linux", rootfs=Rootfs(type="initrd", origin="./app.tar"), cmd=[])
    assert [p[:2] for p in refused(s)] == [
        (
            "annotations.cmdline",
            "a Linux guest needs an init: urunc passes argv[0] as init= and fails with 'No init was specified'",
        )
    ]
