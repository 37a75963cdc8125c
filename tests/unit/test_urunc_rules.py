"""urunc_rules.py through the validator: what each targeted urunc release
would fail on or mangle is refused (naming the release and the field), what
depends on the snapshotter is a warning; and the image shape per guest
(Cmd/Entrypoint) that every release from v0.6.0 reads as meant. The facts
are ../shared/urunc-releases.md (urunc's own code, run by the harness)."""

from __future__ import annotations

from pathlib import Path

import pytest

from urunix.errors import SpecError
from urunix.resources import contract
from urunix.spec import FileEntry, Source, Spec
from urunix.validate import validate


def make(tmp_path: Path, ann: dict, files: dict | None = None, **kw) -> Spec:
    files = {"./kernel": "/unikernel/kernel"} if files is None else files
    entries = []
    for src, dst in files.items():
        p = tmp_path / src
        if not p.exists():
            p.write_bytes(b"\x7fELF")
        entries.append(FileEntry(src, p, dst, f'files."{src}"'))
    base = {"unikernelType": "rumprun", "hypervisor": "hvt", "binary": "/unikernel/kernel"}
    return Spec(
        file=tmp_path / "args.nix", format="args.nix", name="t/x", tag="latest", files=entries, annotations={**base, **ann}, **kw
    )


def refused(spec: Spec) -> list:
    with pytest.raises(SpecError) as e:
        validate(spec)
    return e.value.problems


def one(spec: Spec, field: str):
    hits = [p for p in refused(spec) if p.field == field]
    assert len(hits) == 1, [p.render() for p in refused(spec)]
    return hits[0]


UK = {"unikernelType": "unikraft", "hypervisor": "qemu"}
LINUX = {"unikernelType": "linux", "hypervisor": "qemu"}
MIRAGE = {"unikernelType": "mirage", "hypervisor": "hvt"}


def with_init(tmp_path: Path, spec: Spec) -> Spec:
    (tmp_path / "urunit").write_bytes(b"\x7fELF")
    spec.init = Source("local", "./urunit", "init")
    return spec


# -- the contract, per release --------------------------------------------------


def test_contract_releases_follow_the_facts_page():
    rel = contract()["releases"]
    assert list(rel) == ["v0.5.0", "v0.6.0", "v0.7.0", "main", "next"]
    assert "linux" not in rel["v0.5.0"]["guests"] and "linux" in rel["v0.6.0"]["guests"]
    assert contract()["guests"]["linux"]["since"] == "v0.6.0"
    assert "hermit" in rel["main"]["guests"] and "hermit" not in rel["v0.7.0"]["guests"]
    assert "cloud-hypervisor" in rel["main"]["monitors"] and "cloud-hypervisor" not in rel["v0.7.0"]["monitors"]
    assert rel["v0.5.0"]["command"] == "cmdline" and rel["v0.6.0"]["command"] == "args"
    assert [rel[r]["specAnnotations"] for r in ("v0.5.0", "v0.6.0", "v0.7.0", "main")] == ["base64"] * 3 + ["plain"]
    assert rel["v0.5.0"]["keys"][-1] == "useDMBlock" and "mountRootfs" in rel["v0.6.0"]["keys"]
    assert contract()["defaultTargets"] == ["v0.6.0", "v0.7.0", "main"]
    for r in rel.values():  # solo5 device names: no release reads them
        assert "solo5NetDev" not in r["keys"] and "solo5BlkDev" not in r["keys"]


# -- targets --------------------------------------------------------------------


def test_default_targets(tmp_path):
    img, _ = validate(make(tmp_path, {"cmdline": "hello"}))
    assert img.targets == ("v0.6.0", "v0.7.0", "main")


@pytest.mark.parametrize("value", ["v0.5.0,main", ["main", "v0.5.0"], " v0.5.0 , main"])
def test_targets_as_list_or_comma_string(tmp_path, value):
    img, _ = validate(make(tmp_path, {"cmdline": "hello"}, urunc=value))
    assert img.targets == ("v0.5.0", "main")


def test_unknown_target_is_refused_with_the_known_ones(tmp_path):
    p = one(make(tmp_path, {"cmdline": "hello"}, urunc=["v0.6", "main"]), "urunc")
    assert "'v0.6'" in p.message and "v0.5.0, v0.6.0, v0.7.0, main, next" in p.allowed
    assert p.hint == 'urunc = [ "v0.6.0" "v0.7.0" "main" ];'


def test_containerfile_label_names_targets(tmp_path):
    s = make(tmp_path, {"cmdline": "hello"}, labels={"urunix.urunc": "v0.5.0,v0.6.0"})
    img, _ = validate(s)
    assert img.targets == ("v0.5.0", "v0.6.0") and img.labels == {"urunix.urunc": "v0.5.0,v0.6.0"}


# -- guests and monitors per release ----------------------------------------------


def test_linux_on_v050_is_refused_naming_the_release(tmp_path):
    p = one(make(tmp_path, {**LINUX, "cmdline": "/sbin/init"}, urunc="v0.5.0,v0.6.0"), "annotations.unikernelType")
    assert p.message.startswith("urunc v0.5.0: has no linux guest (it came in v0.6.0)")
    assert (
        p.hint == 'target the releases that run it: urunc = [ "v0.6.0" "v0.7.0" "main" "next" ]; '
        "(or --urunc v0.6.0,v0.7.0,main,next)"
    )


def test_linux_on_default_targets_is_fine(tmp_path):
    validate(make(tmp_path, {**LINUX, "cmdline": "/sbin/init"}))


def test_hermit_and_cloud_hypervisor_need_main(tmp_path):
    p = one(make(tmp_path, {"unikernelType": "hermit", "hypervisor": "qemu", "cmdline": "x"}), "annotations.unikernelType")
    assert p.message.startswith("urunc v0.6.0 and v0.7.0: has no hermit guest")
    p = one(make(tmp_path, {**LINUX, "hypervisor": "cloud-hypervisor", "cmdline": "/init"}), "annotations.hypervisor")
    assert p.message.startswith("urunc v0.6.0 and v0.7.0: has no cloud-hypervisor monitor")
    validate(make(tmp_path, {**LINUX, "hypervisor": "cloud-hypervisor", "cmdline": "/init"}, urunc="main"))


# -- image shape per guest ----------------------------------------------------------


def test_unikraft_cmd_is_the_arguments_of_the_cmdline(tmp_path):
    # nginx-unikraft-pun, redis-unikraft-qemu: urunc v0.6.0+ write argv0
    # `Unikraft` and put all of Cmd after `--`: the program name must not be in Cmd
    img, _ = validate(make(tmp_path, {**UK, "cmdline": "nginx -c /nginx/conf/nginx.conf"}))
    assert (img.entrypoint, img.cmd) == (None, ("-c", "/nginx/conf/nginx.conf"))
    assert img.annotations["cmdline"] == "nginx -c /nginx/conf/nginx.conf"  # v0.5.0 reads argv0 from it


def test_unikraft_one_word_cmdline_is_the_elfloaders_program(tmp_path):
    img, _ = validate(make(tmp_path, {**UK, "cmdline": "/chttp"}))
    assert img.cmd == ("/chttp",)


def test_unikraft_cmd_given_is_arguments_only_and_writes_a_v050_cmdline(tmp_path):
    img, _ = validate(make(tmp_path, UK, cmd=["/conf/redis.conf"]))
    assert img.cmd == ("/conf/redis.conf",)
    assert img.annotations["cmdline"] == "Unikraft /conf/redis.conf"


def test_unikraft_elfloader_program_in_entrypoint_survives_docker_run_args(tmp_path):
    img, _ = validate(make(tmp_path, UK, entrypoint=["/chttp"], cmd=[""]))
    assert (img.entrypoint, img.cmd) == (("/chttp",), ("",))
    assert img.annotations["cmdline"] == "Unikraft /chttp"


def test_unikraft_no_arguments_is_one_empty_argument(tmp_path):
    img, _ = validate(make(tmp_path, UK))
    assert img.cmd == ("",) and "cmdline" not in img.annotations


def test_unikraft_cmd_and_cmdline_must_agree_as_argv0_plus_args(tmp_path):
    validate(make(tmp_path, {**UK, "cmdline": "redis-server /c"}, cmd=["/c"]))
    p = one(make(tmp_path, {**UK, "cmdline": "redis-server /c"}, cmd=["redis-server", "/c"]), "cmd")
    assert "cmd holds the app's arguments only" in p.message


def test_unikraft_empty_command_refused_on_v050_only(tmp_path):
    p = one(make(tmp_path, UK, urunc="v0.5.0,main"), "annotations.cmdline")
    assert p.message.startswith("urunc v0.5.0: reads only the cmdline annotation")
    assert "argv0" in p.message


def test_mirage_cmd_is_arguments_only(tmp_path):
    img, _ = validate(make(tmp_path, {**MIRAGE, "cmdline": ""}))
    assert img.cmd == ("",)
    img, _ = validate(make(tmp_path, {**MIRAGE, "cmdline": "--verbose 2"}))
    assert img.cmd == ("--verbose", "2")


def test_rumprun_cmd0_is_the_program(tmp_path):
    img, _ = validate(make(tmp_path, {"cmdline": "redis-server /data/conf/redis.conf"}))
    assert (img.entrypoint, img.cmd) == (None, ("redis-server", "/data/conf/redis.conf"))


def test_linux_init_and_program_in_entrypoint_arguments_in_cmd(tmp_path):
    s = with_init(tmp_path, make(tmp_path, LINUX, cmd=["/usr/sbin/nginx", "-g", "daemon off;"]))
    img, _ = validate(s)
    assert (img.entrypoint, img.cmd) == (("/urunit", "/usr/sbin/nginx"), ("-g", "daemon off;"))
    assert img.annotations["cmdline"] == "/urunit /usr/sbin/nginx -g 'daemon off;'"


def test_linux_without_urunit_init_alone_in_entrypoint(tmp_path):
    img, _ = validate(make(tmp_path, {**LINUX, "cmdline": "/bin/sh -c date"}))
    assert (img.entrypoint, img.cmd) == (("/bin/sh",), ("-c", "date"))


def test_linux_urunit_from_cmdline(tmp_path):
    img, _ = validate(make(tmp_path, {**LINUX, "cmdline": "/urunit /bin/app --port 80"}))
    assert (img.entrypoint, img.cmd) == (("/urunit", "/bin/app"), ("--port", "80"))


def test_linux_user_entrypoint_kept_after_init(tmp_path):
    s = with_init(tmp_path, make(tmp_path, LINUX, entrypoint=["/bin/app"], cmd=["--port", "80"]))
    img, _ = validate(s)
    assert (img.entrypoint, img.cmd) == (("/urunit", "/bin/app"), ("--port", "80"))


# -- arguments ------------------------------------------------------------------------


@pytest.mark.parametrize("guest,monitor", [("unikraft", "qemu"), ("rumprun", "hvt"), ("mirage", "hvt")])
def test_argument_with_space_refused_for_unikernels(tmp_path, guest, monitor):
    p = one(make(tmp_path, {"unikernelType": guest, "hypervisor": monitor}, cmd=["-c", "a b"]), "cmd.1")
    assert p.message.startswith("urunc v0.6.0, v0.7.0 and main: joins the arguments with spaces")


@pytest.mark.parametrize("bad", ["a&b", "<x>", 'say"hi"', "back\\slash", "two\nlines"])
def test_rumprun_json_escaped_characters_refused_on_every_release(tmp_path, bad):
    problems = refused(make(tmp_path, {}, cmd=["redis-server", bad], urunc="v0.5.0,v0.6.0,v0.7.0,main"))
    assert any(
        p.field == "cmd.1" and p.message.startswith("urunc v0.5.0, v0.6.0, v0.7.0 and main: writes rumprun's") for p in problems
    ), [p.render() for p in problems]


def test_unikraft_quote_inside_argument_refused(tmp_path):
    p = one(make(tmp_path, UK, cmd=["it's"]), "cmd.0")
    assert "quote" in p.message


def test_linux_multiword_argument_without_urunit_refused(tmp_path):
    p = one(make(tmp_path, LINUX, cmd=["/bin/sh", "-c", "echo a b"]), "cmd.2")
    assert "only urunit undoes" in p.message and p.message.startswith("urunc v0.6.0, v0.7.0 and main")


def test_linux_second_multiword_argument_with_urunit_refused(tmp_path):
    s = with_init(tmp_path, make(tmp_path, LINUX, cmd=["/bin/app", "a b", "c d"]))
    p = one(s, "cmd.2")
    assert "drops every argument after the first one holding a space" in p.message
    validate(with_init(tmp_path, make(tmp_path, LINUX, cmd=["/bin/app", "-x", "a b"])))


def test_linux_double_quote_refused(tmp_path):
    s = with_init(tmp_path, make(tmp_path, LINUX, cmd=["/bin/app", 'a"b']))
    assert "kernel's own parsing" in one(s, "cmd.1").message


def test_mewz_arguments_dropped(tmp_path):
    p = one(make(tmp_path, {"unikernelType": "mewz", "hypervisor": "qemu"}, cmd=["--x"]), "cmd")
    assert "only ip= and gateway=" in p.message


# -- env ------------------------------------------------------------------------------


def test_unikraft_env_value_with_space_refused(tmp_path):
    p = one(make(tmp_path, UK, cmd=[""], env={"GREETING": "hello world"}), "env.GREETING")
    assert p.message.startswith("urunc v0.6.0, v0.7.0 and main: writes the environment into Unikraft's env.vars")


def test_linux_env_with_space_refused_on_v060_fine_with_urunit_later(tmp_path):
    s = with_init(tmp_path, make(tmp_path, LINUX, cmd=["/bin/app"], env={"A": "x y"}))
    p = one(s, "env.A")
    assert p.message.startswith("urunc v0.6.0: puts each K=V of a Linux guest on the kernel command line")
    s = with_init(tmp_path, make(tmp_path, LINUX, cmd=["/bin/app"], env={"A": "x y"}, urunc="v0.7.0,main"))
    validate(s)


def test_linux_env_with_space_without_urunit_refused_everywhere(tmp_path):
    p = one(make(tmp_path, LINUX, cmd=["/sbin/init"], env={"A": "x y"}), "env.A")
    assert p.message.startswith("urunc v0.6.0, v0.7.0 and main")


def test_env_dropped_for_mirage_and_early_rumprun(tmp_path):
    p = one(make(tmp_path, {**MIRAGE, "cmdline": ""}, env={"A": "b"}), "env")
    assert p.message.startswith("urunc v0.6.0, v0.7.0 and main: does not hand the environment to a mirage guest")
    p = one(make(tmp_path, {"cmdline": "x"}, env={"A": "b"}), "env")
    assert p.message.startswith("urunc v0.6.0: does not hand the environment to a rumprun guest")
    validate(make(tmp_path, {"cmdline": "x"}, env={"A": "b"}, urunc="v0.7.0,main"))


def test_rumprun_env_json_escapes_refused_from_v070(tmp_path):
    p = one(make(tmp_path, {"cmdline": "x"}, env={"A": "a&b"}, urunc="v0.7.0,main"), "env.A")
    assert p.message.startswith("urunc v0.7.0 and main: writes rumprun's env with Go's json.Marshal")
    validate(make(tmp_path, {"cmdline": "x"}, env={"A": "a b"}, urunc="v0.7.0,main"))


def test_env_on_v050_never_passed(tmp_path):
    p = one(make(tmp_path, {**UK, "cmdline": "app x"}, env={"A": "b"}, urunc="v0.5.0"), "env")
    assert p.message.startswith("urunc v0.5.0: does not hand the environment")


def test_old_unikraft_drops_env(tmp_path):
    p = one(make(tmp_path, {**UK, "cmdline": "app x", "unikernelVersion": "0.15.0"}, env={"A": "b"}), "env")
    assert "older than 0.16.1" in p.message


# -- metadata ------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["solo5NetDev", "solo5BlkDev"])
def test_solo5_device_names_refused(tmp_path, key):
    p = one(make(tmp_path, {"cmdline": "x", key: "tap0"}), f"annotations.{key}")
    assert "the Solo5 device names are fixed" in p.message


def test_rumprun_blkmntpoint_other_than_data_refused(tmp_path):
    s = make(
        tmp_path,
        {"cmdline": "x", "block": "/disk.ext2", "blkMntPoint": "/mnt"},
        files={"./kernel": "/unikernel/kernel", "./disk": "/disk.ext2"},
    )
    assert "mounts its block device at /data" in one(s, "annotations.blkMntPoint").message


@pytest.mark.parametrize("guest,monitor,mnt", [("rumprun", "hvt", "/data"), ("mirage", "hvt", "/")])
def test_block_gets_a_blkmntpoint(tmp_path, guest, monitor, mnt):
    s = make(
        tmp_path,
        {"unikernelType": guest, "hypervisor": monitor, "cmdline": "x", "block": "/disk.ext2"},
        files={"./kernel": "/unikernel/kernel", "./disk": "/disk.ext2"},
    )
    img, _ = validate(s)
    assert img.annotations["blkMntPoint"] == mnt


def test_linux_block_next_to_initrd_refused_on_v060_and_main(tmp_path):
    s = make(
        tmp_path,
        {**LINUX, "cmdline": "/sbin/init", "block": "/vol.ext4", "blkMntPoint": "/vol", "initrd": "/initrd"},
        files={"./kernel": "/unikernel/kernel", "./vol": "/vol.ext4", "./initrd": "/initrd"},
    )
    msgs = sorted(p.message for p in refused(s) if p.field == "annotations.block")
    assert [m.split(":")[0] for m in msgs] == ["urunc main", "urunc v0.6.0"]
    assert "drops the block volume" in msgs[0] and "becomes the Linux root" in msgs[1]
    s.urunc = "v0.7.0"
    validate(s)


def test_linux_block_next_to_initrd_without_blkmntpoint_refused_on_v070(tmp_path):
    s = make(
        tmp_path,
        {**LINUX, "cmdline": "/sbin/init", "block": "/vol.ext4", "initrd": "/initrd"},
        files={"./kernel": "/unikernel/kernel", "./vol": "/vol.ext4", "./initrd": "/initrd"},
        urunc="v0.7.0",
    )
    assert "without blkMntPoint stops the container" in one(s, "annotations.blkMntPoint").message


def test_v050_target_writes_usedmblock_false(tmp_path):
    img, _ = validate(make(tmp_path, {"cmdline": "x"}, urunc="v0.5.0,v0.6.0"))
    assert img.annotations["useDMBlock"] == "false" == img.annotations["mountRootfs"]
    img, _ = validate(make(tmp_path, {"cmdline": "x"}))
    assert "useDMBlock" not in img.annotations


# -- mountRootfs ------------------------------------------------------------------------


def test_mirage_mountrootfs_refused(tmp_path):
    problems = refused(make(tmp_path, {**MIRAGE, "cmdline": "", "mountRootfs": "true"}))
    assert [x.message.split(":")[0] for x in problems] == ["urunc v0.6.0", "urunc v0.7.0 and main"]
    assert all("has no way to hand the container rootfs to a mirage guest" in x.message for x in problems)
    assert "cannot open its kernel" in problems[0].message and "refuses to start" in problems[1].message


def test_rumprun_mountrootfs_warns_about_the_snapshotter(tmp_path):
    _, diag = validate(make(tmp_path, {"cmdline": "x", "useDMBlock": "true"}))
    assert [w.message.split(":")[0] for w in diag.warnings] == ["urunc v0.6.0", "urunc v0.7.0 and main"]
    assert "cannot open its kernel" in diag.warnings[0].message and "refuses to start" in diag.warnings[1].message


def test_linux_mountrootfs_on_qemu_has_a_shared_fs_on_firecracker_needs_devmapper(tmp_path):
    _, diag = validate(make(tmp_path, {**LINUX, "cmdline": "/sbin/init", "mountRootfs": "true"}))
    assert not diag.warnings
    _, diag = validate(make(tmp_path, {**LINUX, "hypervisor": "firecracker", "cmdline": "/sbin/init", "mountRootfs": "true"}))
    assert diag.warnings and all("devmapper" in w.message for w in diag.warnings)


def test_unikraft_initrd_with_mountrootfs_refused_on_v060(tmp_path):
    s = make(
        tmp_path,
        {**UK, "cmdline": "app x", "initrd": "/initrd", "mountRootfs": "true"},
        files={"./kernel": "/unikernel/kernel", "./initrd": "/initrd"},
    )
    p = one(s, "annotations.mountRootfs")
    assert p.message.startswith("urunc v0.6.0: with an initrd, mountRootfs=true starts a monitor")
