"""YAML specs: the args.nix schema in YAML, strings byte for byte, raw scalars
kept for validate, duplicate keys and syntax errors refused with the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from urunix.errors import SpecError
from urunix.loaders import load
from urunix.spec import FileEntry

REDIS_RUMPRUN = """\
name: urunc/prebuilt/redis-rumprun-hvt
tag: test
files:
  ./redis.hvt: /unikernel/redis.hvt
  ./redis.conf: /conf/redis.conf
annotations:
  unikernelType: rumprun
  hypervisor: hvt
  binary: /unikernel/redis.hvt
  cmdline: "redis-server  /data/conf/redis.conf"
  unikernelVersion: ""
  useDMBlock: true
cmd: ["redis-server", "/data/conf/redis.conf"]
env:
  FOO: bar
  N: 1
labels:
  org.example.owner: me
"""


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    return f


def test_yaml_spec(tmp_path):
    spec = load(write(tmp_path, REDIS_RUMPRUN))
    assert (spec.format, spec.name, spec.tag) == ("yaml", "urunc/prebuilt/redis-rumprun-hvt", "test")
    assert spec.files == [
        FileEntry("./redis.hvt", tmp_path / "redis.hvt", "/unikernel/redis.hvt", 'files."./redis.hvt"'),
        FileEntry("./redis.conf", tmp_path / "redis.conf", "/conf/redis.conf", 'files."./redis.conf"'),
    ]
    assert spec.annotations["cmdline"] == "redis-server  /data/conf/redis.conf"  # both spaces kept
    assert spec.annotations["unikernelVersion"] == ""
    assert spec.annotations["useDMBlock"] is True  # raw: validate decides
    assert spec.cmd == ["redis-server", "/data/conf/redis.conf"]
    assert spec.env == {"FOO": "bar", "N": 1}
    assert spec.labels == {"org.example.owner": "me"}
    assert spec.lines['files."./redis.conf"'] == 5
    assert spec.lines["annotations.cmdline"] == 10
    assert spec.lines["env.N"] == 16
    assert spec.lines['labels."org.example.owner"'] == 18


def test_yml_suffix_and_raw_scalars(tmp_path):
    spec = load(write(tmp_path, "name: app\ntag: 1.0\n", "spec.yml"))
    assert spec.tag == 1.0 and spec.format == "yaml"


def test_aliases_and_merge_keys_are_plain_data(tmp_path):
    spec = load(
        write(
            tmp_path,
            """\
annotations: &common
  unikernelType: mirage
  hypervisor: hvt
labels:
  <<: *common
  hypervisor: spt
""",
        )
    )
    assert spec.labels == {"unikernelType": "mirage", "hypervisor": "spt"}
    assert spec.lines["labels.hypervisor"] == 6


def test_unknown_keys_are_kept_for_validate(tmp_path):
    spec = load(write(tmp_path, "name: x\nanotations: {}\n"))
    assert spec.unknown == {"anotations": {}} and spec.lines["anotations"] == 2


@pytest.mark.parametrize(
    "text, field, line, words",
    [
        ("name: a\ntag: b\nname: c\n", "name", 3, "appears twice (first on line 1)"),
        ("annotations:\n  binary: /a\n  binary: /b\n", "annotations.binary", 3, "appears twice"),
        ("files:\n  - ./a:/a\n", "files", 1, "must be a mapping"),
        ("annotations: [a]\n", "annotations", 1, "must be a mapping"),
        ("cmd: redis-server /conf\n", "cmd", 1, "must be a list of strings"),
        ("cmd: [a, true]\n", "cmd.1", 1, "must be a string"),
        ("files:\n  ./a: 1\n", 'files."./a"', 2, "target"),
        ("env:\n  1: x\n", "env", 2, "keys must be strings"),
        ("labels: !!set {a}\n", "labels", 1, "not plain data"),
        ("name: !custom x\n", "name", 1, "cannot read this YAML value"),
        ("- a\n- b\n", None, 1, "must be a mapping at the top level"),
    ],
)
def test_bad_yaml_specs(tmp_path, text, field, line, words):
    with pytest.raises(SpecError) as e:
        load(write(tmp_path, text))
    p = e.value.problem
    assert words in p.message, p.message
    assert (p.field, p.line) == (field, line)
    assert p.file.endswith("spec.yaml")


def test_syntax_error_has_line_and_column(tmp_path):
    with pytest.raises(SpecError) as e:
        load(write(tmp_path, "name: x\nfiles: [./a\ntag: y\n"))
    p = e.value.problem
    assert p.message.startswith("YAML syntax error") and "column" in p.message
    assert p.line == 3 and p.hint


def test_multiple_documents_are_refused(tmp_path):
    with pytest.raises(SpecError, match="single document"):
        load(write(tmp_path, "name: a\n---\nname: b\n"))


def test_empty_file(tmp_path):
    with pytest.raises(SpecError, match="empty"):
        load(write(tmp_path, "# nothing\n"))


def test_alias_bombs_are_bounded(tmp_path):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        lines.append(f"{chr(97 + i)}: &{chr(97 + i)} [" + ", ".join([f"*{chr(96 + i)}"] * 10) + "]")
    with pytest.raises(SpecError, match="expands too much"):
        load(write(tmp_path, "\n".join(lines) + "\n"))
