"""Checks of validate.py that only an edge case reaches: each test here
fails if its check is deleted (they were found by deleting them, and by
mutation testing: tests/mutate)."""

from __future__ import annotations

from pathlib import Path

import pytest

from urunix.errors import SpecError
from urunix.spec import FileEntry, Rootfs, Source, Spec
from urunix.validate import NAME_MAX, PATH_MAX, check_path, validate


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
    assert p.field.startswith("env.") and "not a valid environment variable name" in p.message
    assert p.value == key


def test_env_keys_without_equals_pass_unchanged(tmp_path):
    img, _ = validate(spec(tmp_path, env={"A_B": "1", "lower.dot-dash": "2"}, guest=("unikraft", "qemu")))
    assert img.env == ["A_B=1", "lower.dot-dash=2"]


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
    ],
)
def test_check_path_says_what_is_wrong(value, ok):
    assert check_path(value, "binary") == (None if ok is True else ok)


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
    "name,ok",
    [
        ("a/b.c/" + "x" * 240, False),  # a.b in the second component: still docker.io/a/...
        ("reg:5000/" + "b" * 246, True),  # a port: a registry, counted as given
    ],
)
def test_image_name_length_registry_is_the_first_component(tmp_path, name, ok):
    s = spec(tmp_path)
    s.name = name
    if ok:
        assert validate(s)[0].name == name
    else:
        assert [p.field for p in problems(s)] == ["name"]


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
