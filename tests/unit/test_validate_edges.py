"""Checks of validate.py that only an edge case reaches: each test here
fails if its check is deleted (they were found by deleting them, and by
mutation testing: tests/mutate)."""

from __future__ import annotations

from pathlib import Path

import pytest

from urunix.errors import SpecError
from urunix.spec import FileEntry, Spec
from urunix.validate import NAME_MAX, PATH_MAX, validate


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
