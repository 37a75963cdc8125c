"""validate(): urunc's contract, with messages that say where, what, what is
allowed, and what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from urunix.errors import SpecError
from urunix.spec import FileEntry, Spec
from urunix.validate import check_path, fields, join_args, validate


def make(tmp_path: Path, annotations: dict, files: dict | None = None, **kw) -> Spec:
    files = {"./kernel": "/unikernel/kernel"} if files is None else files
    entries = []
    for src, dst in files.items():
        p = tmp_path / src
        if not p.exists() and not src.startswith("./missing"):
            p.write_bytes(b"\x7fELF")
        entries.append(FileEntry(src, p, dst, f'files."{src}"'))
    base = {"unikernelType": "rumprun", "hypervisor": "hvt", "binary": "/unikernel/kernel"}
    s = Spec(
        file=tmp_path / "args.nix",
        format="args.nix",
        name=kw.pop("name", "hello"),
        tag=kw.pop("tag", "latest"),
        files=entries,
        annotations={**base, **annotations},
        **kw,
    )
    s.lines = {"annotations.unikernelType": 7, "annotations.hypervisor": 8, "annotations.binary": 9}
    return s


def problems(spec: Spec) -> list:
    with pytest.raises(SpecError) as e:
        validate(spec)
    return e.value.problems


def test_seed_style_spec_normalizes(tmp_path):
    img, diag = validate(make(tmp_path, {"cmdline": "hello", "unikernelVersion": "", "initrd": "", "useDMBlock": "true"}))
    assert img.annotations == {
        "binary": "/unikernel/kernel",
        "cmdline": "hello",
        "hypervisor": "hvt",
        "mountRootfs": "true",
        "unikernelType": "rumprun",
        "useDMBlock": "true",
    }
    assert img.cmd == ("hello",)
    # a rumprun guest takes the container rootfs only from a devmapper ext2 snapshot
    assert [w.message.split(":")[0] for w in diag.warnings] == ["urunc v0.6.0", "urunc v0.7.0 and main"]
    assert all("devmapper" in w.message and w.field == "annotations.useDMBlock" for w in diag.warnings)


def test_misspelt_guest_names_the_line_and_suggests(tmp_path):
    (p,) = problems(make(tmp_path, {"unikernelType": "rumprunn"}))
    text = p.render()
    assert "args.nix:7" in text and "annotations.unikernelType" in text
    assert '"rumprunn"' in text and "unikraft, rumprun" in text and 'did you mean "rumprun"?' in text


def test_bad_pair_says_which_monitors_fit(tmp_path):
    (p,) = problems(make(tmp_path, {"unikernelType": "unikraft", "hypervisor": "hvt"}))
    assert "cannot run a unikraft guest on hvt" in p.message
    assert "unikraft runs on qemu, firecracker, hyperlight" in p.allowed


@pytest.mark.parametrize(
    "monitor,guest,release,older",
    [
        ("cloud-hypervisor", "linux", "main", "v0.6.0"),
        ("hyperlight", "unikraft", "next", "v0.6.0"),
        ("spt", "mirage", "v0.6.0", None),
        ("firecracker", "freebsd", "next", "v0.6.0"),
    ],
)
def test_pairs_of_newer_urunc_are_accepted_when_targeted(tmp_path, monitor, guest, release, older):
    img, diag = validate(
        make(
            tmp_path,
            {"unikernelType": guest, "hypervisor": monitor, "cmdline": "/init x", "mountRootfs": "false"},
            urunc=[release],
        )
    )
    assert (img.annotations["unikernelType"], img.annotations["hypervisor"]) == (guest, monitor)
    assert release in img.targets and img.annotations["cmdline"] == "/init x"
    if older is None:
        return
    # and the same pair is refused when no urunc release that runs it is targeted
    (p, *_) = problems(
        make(
            tmp_path, {"unikernelType": guest, "hypervisor": monitor, "cmdline": "/init x", "mountRootfs": "false"}, urunc=[older]
        )
    )
    assert p.field in ("annotations.hypervisor", "annotations.unikernelType", "urunc")


def test_unknown_annotation_did_you_mean(tmp_path):
    (p,) = problems(make(tmp_path, {"version": "0.17.0"}))
    assert p.field == "annotations.version"
    (p,) = problems(make(tmp_path, {"mountRootFs": "true"}))
    assert p.hint == 'did you mean "mountRootfs"?'


def test_full_key_names_are_accepted(tmp_path):
    img, _ = validate(make(tmp_path, {"com.urunc.unikernel.cmdline": "x"}))
    assert img.annotations["cmdline"] == "x"


@pytest.mark.parametrize(
    "value,why",
    [
        ("unikernel/kernel", "absolute"),
        ("/unikernel//kernel", "not clean"),
        ("/a/../kernel", "not clean"),
        ("/", "is '/'"),
        ("/uni kernel", "characters"),
        ("-x", "starts with"),
        ("..", "starts with"),
        ("/" + "a" * 4100, "longer than 4096"),
        ("/k$HOME", "characters"),
    ],
)
def test_path_rules(tmp_path, value, why):
    ps = problems(make(tmp_path, {"binary": value}))
    assert any(why in p.message for p in ps), [p.render() for p in ps]


def test_check_path_allows_root_mountpoint():
    assert check_path("/", root_ok=True) is None
    assert check_path("/data", root_ok=True) is None


def test_binary_must_be_in_the_image(tmp_path):
    (p,) = problems(make(tmp_path, {"binary": "/unikernel/kernal"}))
    assert "will not contain" in p.message and 'did you mean "/unikernel/kernel"?' == p.hint


def test_binary_inside_a_copied_directory(tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "kernel").write_bytes(b"k")
    img, _ = validate(make(tmp_path, {"binary": "/unikernel/kernel"}, files={"./dir": "/unikernel"}))
    assert img.files[0].target == "/unikernel"


def test_missing_source_file(tmp_path):
    ps = problems(make(tmp_path, {}, files={"./missing.hvt": "/unikernel/kernel"}))
    assert any("does not exist" in p.message and p.field == 'files."./missing.hvt"' for p in ps)


def test_synonyms_written_both_ways_and_checked(tmp_path):
    img, _ = validate(make(tmp_path, {"mountRootfs": True}))
    assert img.annotations["useDMBlock"] == img.annotations["mountRootfs"] == "true"
    (p,) = problems(make(tmp_path, {"mountRootfs": "true", "useDMBlock": "false"}))
    assert "disagrees" in p.message


def test_bool_values_are_strict(tmp_path):
    (p,) = problems(make(tmp_path, {"useDMBlock": "yes"}))
    assert "true or false" in p.message


def test_linux_without_devmapper_setting_does_not_warn(tmp_path):
    # Linux came in urunc v0.6.0, where mountRootfs defaults to false (the
    # old warning about v0.5's useDMBlock default was about a release without Linux)
    _, diag = validate(make(tmp_path, {"unikernelType": "linux", "hypervisor": "qemu", "cmdline": "/urunit /bin/app"}))
    assert not diag.warnings
    _, diag = validate(
        make(tmp_path, {"unikernelType": "linux", "hypervisor": "qemu", "cmdline": "/init", "mountRootfs": "false"})
    )
    assert not diag.warnings


def test_linux_needs_an_init(tmp_path):
    (p,) = problems(make(tmp_path, {"unikernelType": "linux", "hypervisor": "qemu", "mountRootfs": "false"}))
    assert "needs an init" in p.message


def test_storage_by_guest(tmp_path):
    (tmp_path / "rootfs.cpio").write_bytes(b"070701")
    ps = problems(
        make(tmp_path, {"initrd": "/rootfs.cpio"}, files={"./kernel": "/unikernel/kernel", "./rootfs.cpio": "/rootfs.cpio"})
    )
    assert any("a rumprun guest cannot boot from initrd storage" in p.message for p in ps)


def test_cmd_from_cmdline_is_a_whitespace_split_like_urunc():
    assert fields("  redis-server   /data/conf/redis.conf\n") == ["redis-server", "/data/conf/redis.conf"]
    # Go's strings.Fields, not Python's str.split: \x1c is no separator, NBSP is
    assert fields("a\x1cb c\xa0d\u3000e") == ["a\x1cb", "c", "d", "e"]


def test_empty_cmdline_gives_one_empty_argument(tmp_path):
    img, _ = validate(make(tmp_path, {"unikernelType": "mirage", "cmdline": ""}))
    assert img.cmd == ("",) and "cmdline" not in img.annotations


def test_cmd_list_writes_cmdline_annotation(tmp_path):
    img, _ = validate(
        make(
            tmp_path,
            {"unikernelType": "linux", "hypervisor": "qemu", "mountRootfs": "false"},
            cmd=["/urunit", "/usr/sbin/nginx", "-g", "daemon off;"],
        )
    )
    assert (img.entrypoint, img.cmd) == (("/urunit", "/usr/sbin/nginx"), ("-g", "daemon off;"))
    assert img.annotations["cmdline"] == "/urunit /usr/sbin/nginx -g 'daemon off;'"


def test_join_args_quotes_only_for_linux():
    assert join_args(["a", "b c"], "linux") == "a 'b c'"
    assert join_args(["a", "b c"], "unikraft") == "a b c"


def test_cmd_and_cmdline_that_disagree(tmp_path):
    (p,) = problems(make(tmp_path, {"cmdline": "a b"}, cmd=["c"]))
    assert p.field == "cmd"


def test_name_and_tag(tmp_path):
    ps = problems(make(tmp_path, {}, name="Bad Name", tag="-x"))
    assert {p.field for p in ps} == {"name", "tag"}
    assert problems(make(tmp_path, {}, name=None))[0].field == "name"


def test_architecture_aliases(tmp_path):
    assert validate(make(tmp_path, {}, architecture="x86"))[0].architecture == "amd64"
    assert validate(make(tmp_path, {}, architecture="aarch64"))[0].architecture == "arm64"
    (p,) = problems(make(tmp_path, {}, architecture="amd46"))
    assert p.hint == 'did you mean "amd64"?'


def test_labels_may_not_carry_urunc_keys(tmp_path):
    (p,) = problems(make(tmp_path, {}, labels={"com.urunc.unikernel.binary": "/x"}))
    assert "annotations.binary" in p.hint


def test_urunc_json_is_reserved(tmp_path):
    ps = problems(make(tmp_path, {}, files={"./kernel": "/unikernel/kernel", "./x": "/urunc.json"}))
    assert any("/urunc.json is written by urunix" in p.message for p in ps)


def test_unknown_top_level_field(tmp_path):
    s = make(tmp_path, {})
    s.unknown = {"anotations": {}}
    (p,) = problems(s)
    assert p.hint == 'did you mean "annotations"?'


def test_all_problems_reported_at_once(tmp_path):
    ps = problems(make(tmp_path, {"unikernelType": "x", "hypervisor": "y", "useDMBlock": "maybe"}))
    assert len(ps) >= 3


def test_source_date_epoch(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "86400")
    assert validate(make(tmp_path, {}))[0].created == "1970-01-02T00:00:00Z"


def test_init_goes_first_in_cmd_and_cmdline_both(tmp_path):
    from urunix.spec import Source

    (tmp_path / "urunit").write_bytes(b"#!/bin/sh\n")
    s = make(
        tmp_path, {"unikernelType": "linux", "hypervisor": "qemu", "mountRootfs": "false", "cmdline": "/app a"}, cmd=["/app", "a"]
    )
    s.init = Source("local", "./urunit", "init")
    img, _ = validate(s)
    assert (img.entrypoint, img.cmd) == (("/urunit", "/app"), ("a",))
    assert img.annotations["cmdline"] == "/urunit /app a"
