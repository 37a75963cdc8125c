"""helpers/urunc_json.py: the bytes of /urunc.json and the labels, exactly
as urunc reads them (padded standard base64, full keys), and back."""

from __future__ import annotations

import json

import pytest

from urunix.helpers import urunc_json as U


def test_exact_bytes():
    got = U.urunc_json({"cmdline": "a b", "binary": "/k", "com.urunc.unikernel.hypervisor": "qemu"})
    assert got == (
        b"{\n"
        b'  "com.urunc.unikernel.binary": "L2s=",\n'
        b'  "com.urunc.unikernel.cmdline": "YSBi",\n'
        b'  "com.urunc.unikernel.hypervisor": "cWVtdQ=="\n'
        b"}\n"
    )


def test_values_are_byte_exact_and_non_ascii_safe():
    value = 'é "q" \\ \udcff'  # a lone surrogate: a non-UTF-8 byte from the host
    raw = U.urunc_json({"cmdline": value})
    assert raw.isascii()
    assert json.loads(raw) == {"com.urunc.unikernel.cmdline": "w6kgInEiIFwg/w=="}
    assert U.decode(raw) == {"cmdline": value}


def test_full_key_and_labels():
    assert U.full_key("binary") == "com.urunc.unikernel.binary"
    assert U.full_key("com.urunc.unikernel.binary") == "com.urunc.unikernel.binary"
    assert U.full_key("com.urunc.unikernelx") == "com.urunc.unikernel.com.urunc.unikernelx"
    labels = U.labels({"z": "1", "a": "ü"})
    assert list(labels.items()) == [("com.urunc.unikernel.a", "ü"), ("com.urunc.unikernel.z", "1")]


def test_decode_keeps_other_keys_and_refuses_bad_documents():
    assert U.decode(b'{"other": "eA==", "com.urunc.unikernel.b": ""}') == {"other": "x", "b": ""}
    with pytest.raises(ValueError) as e:
        U.decode(b'["x"]')
    assert str(e.value) == "urunc.json is not a JSON object"
    with pytest.raises(ValueError, match="b: value is not a string"):
        U.decode(b'{"b": 1}')
    with pytest.raises(ValueError):
        U.decode(b'{"b": "eA"}')  # unpadded: urunc refuses it too
    with pytest.raises(ValueError):
        U.decode(b'{"b": "e A=="}')  # not base64


def test_main_writes_both_files(tmp_path, capsys):
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps({"cmdline": "ü x", "binary": "/k"}))
    out = tmp_path / "new" / "dir"
    assert U.main(["urunc_json.py", str(ann), str(out)]) == 0
    assert (out / "urunc.json").read_bytes() == U.urunc_json({"cmdline": "ü x", "binary": "/k"})
    assert (out / "labels.json").read_bytes() == (
        '{"com.urunc.unikernel.binary": "/k", "com.urunc.unikernel.cmdline": "ü x"}\n'.encode()
    )
    assert sorted(p.name for p in out.iterdir()) == ["labels.json", "urunc.json"]
    # again into the existing directory, with a value that is no valid UTF-8 (a host byte)
    ann.write_text(json.dumps({"cmdline": "x\udcff"}))
    assert U.main(["urunc_json.py", str(ann), str(out)]) == 0
    assert (out / "labels.json").read_bytes() == b'{"com.urunc.unikernel.cmdline": "x\xff"}\n'
    assert U.decode((out / "urunc.json").read_bytes()) == {"cmdline": "x\udcff"}
    assert U.main(["urunc_json.py", str(ann)]) == 2
    assert capsys.readouterr().err == "usage: urunc_json.py ANNOTATIONS.json OUT_DIR\n"


def test_write_gives_both_files_byte_exact(tmp_path):
    """write() itself (main and nix_check reach it through script.run)."""
    out = tmp_path / "a" / "b"
    U.write(str(out), {"z": "1", "cmdline": "ü\udcff"})
    assert sorted(p.name for p in out.iterdir()) == ["labels.json", "urunc.json"]
    assert (out / "urunc.json").read_bytes() == U.urunc_json({"z": "1", "cmdline": "ü\udcff"})
    assert (
        out / "labels.json"
    ).read_bytes() == b'{"com.urunc.unikernel.cmdline": "\xc3\xbc\xff", "com.urunc.unikernel.z": "1"}\n'
    U.write(str(out), {"a": "2"})  # again, into the existing directory: replaced
    assert json.loads((out / "labels.json").read_text()) == {"com.urunc.unikernel.a": "2"}


def test_write_replaces_atomically(tmp_path):
    target = tmp_path / "f"
    target.write_bytes(b"old")
    U._write(str(target), b"new")
    assert target.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_the_label_prefix_is_the_contracts():
    """One Python copy of the prefix (helpers/urunc_json.py, stdlib-only so
    derivations can run it), equal to the contract's, which Nix reads."""
    from urunix.helpers import urunc_json
    from urunix.resources import contract

    assert urunc_json.PREFIX == contract()["prefix"]
