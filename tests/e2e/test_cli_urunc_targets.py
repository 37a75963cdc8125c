"""Target urunc releases through the real entry point: the `urunc` field of
every spec format and `--urunc`; a spec that some targeted release cannot
serve exits 2 naming the release, the field and what urunc does; the image
built for all targets carries the shape every release reads as meant."""

from __future__ import annotations

import json
import tarfile

import pytest

from cli import urunix
from standins import example


def unikraft(tmp_path, extra_top: str = "", cmdline: str = "redis-server /conf/redis.conf"):
    (tmp_path / "kernel").write_bytes(b"\x7fELF")
    (tmp_path / "args.nix").write_text(
        "{\n"
        '  name = "t/ukr";\n'
        '  files = { "./kernel" = "/unikernel/kernel"; };\n'
        '  annotations = { unikernelType = "unikraft"; hypervisor = "qemu"; binary = "/unikernel/kernel";\n'
        f'                  cmdline = "{cmdline}"; }};\n'
        f"  {extra_top}\n"
        "}\n"
    )
    return tmp_path


def linux(tmp_path, fmt: str, urunc_line: str):
    (tmp_path / "kernel").write_bytes(b"\x7fELF")
    if fmt == "yaml":
        (tmp_path / "spec.yaml").write_text(
            "name: t/lx\nfiles: {./kernel: /kernel}\n"
            "annotations: {unikernelType: linux, hypervisor: qemu, binary: /kernel, cmdline: /sbin/init}\n" + urunc_line
        )
        return "spec.yaml"
    (tmp_path / "bunnyfile").write_text(
        "#syntax=harbor.nbfc.io/nubificus/bunny:latest\nversion: v0.1\n"
        "platforms: {framework: linux, monitor: qemu, architecture: x86}\n"
        "kernel: {from: local, path: kernel}\ncmdline: /sbin/init\n" + urunc_line
    )
    return "bunnyfile"


def test_default_targets_named_by_validate(tmp_path):
    r = urunix("validate", "args.nix", cwd=unikraft(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "urunc v0.6.0, v0.7.0, main" in r.stderr


@pytest.mark.parametrize("fmt,line", [("yaml", "urunc: [v0.5.0, main]\n"), ("bunnyfile", 'urunc: "v0.5.0,main"\n')])
def test_linux_refused_for_v050_from_every_format(tmp_path, fmt, line):
    spec = linux(tmp_path, fmt, line)
    r = urunix("validate", spec, "-t", "t/lx", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    field = {"yaml": "annotations.unikernelType", "bunnyfile": "platforms.framework"}[fmt]  # the user's own key
    assert f"{field}: urunc v0.5.0: has no linux guest (it came in v0.6.0)" in r.stderr
    assert "Traceback" not in r.stderr
    r = urunix("validate", spec, "-t", "t/lx", "--urunc", "v0.6.0,main", cwd=tmp_path)
    assert r.returncode == 0, r.stderr


def test_containerfile_label_names_targets(tmp_path):
    (tmp_path / "kernel").write_bytes(b"\x7fELF")
    (tmp_path / "Containerfile").write_text(
        "FROM scratch\nCOPY kernel /kernel\n"
        "LABEL com.urunc.unikernel.binary=/kernel com.urunc.unikernel.unikernelType=linux "
        "com.urunc.unikernel.hypervisor=qemu com.urunc.unikernel.cmdline=/sbin/init\n"
        'LABEL urunix.urunc="v0.5.0,v0.6.0"\n'
    )
    r = urunix("validate", "Containerfile", "-t", "t/cf", cwd=tmp_path)
    assert r.returncode == 2 and "urunc v0.5.0: has no linux guest" in r.stderr, r.stderr


def test_cli_flag_overrides_spec_and_unknown_release_is_exit_2(tmp_path):
    d = unikraft(tmp_path, 'urunc = [ "v0.5.0" ];')
    r = urunix("validate", "args.nix", "--urunc", "v0.6,main", cwd=d)
    assert r.returncode == 2
    assert "--urunc" in r.stderr or "urunc: names 'v0.6'" in r.stderr
    assert "v0.5.0, v0.6.0, v0.7.0, main, next" in r.stderr


def test_all_refusals_in_one_run_each_naming_release_and_field(tmp_path):
    d = unikraft(tmp_path, 'urunc = "v0.5.0,v0.6.0"; env = { GREETING = "hello world"; };', cmdline="")
    r = urunix("build", "args.nix", "-o", "out.tar", "--backend", "native", cwd=d)
    assert r.returncode == 2
    assert "annotations.cmdline: urunc v0.5.0: reads only the cmdline annotation" in r.stderr
    assert "env: urunc v0.5.0: does not hand the environment to a unikraft guest" in r.stderr
    assert "env.GREETING: urunc v0.6.0: writes the environment into Unikraft's env.vars" in r.stderr
    assert not (d / "out.tar").exists()


def test_rumprun_devmapper_seed_builds_with_a_warning_per_release(tmp_path):
    d = example("redis-rumprun-hvt", tmp_path / "ex")
    r = urunix(
        "build", "Containerfile", "-t", "urunc/prebuilt/redis-rumprun-hvt:test", "-o", "out.tar", "--backend", "native", cwd=d
    )
    assert r.returncode == 0, r.stderr
    assert "warning: Containerfile:11: LABEL com.urunc.unikernel.useDMBlock: urunc v0.6.0:" in r.stderr  # fields as written (i15)
    assert (
        "urunc v0.7.0 and main: can use the container rootfs of a rumprun guest on hvt only under "
        "containerd's devmapper snapshotter" in r.stderr
    )


def config_of(archive) -> dict:
    with tarfile.open(archive) as t:
        manifest = json.load(t.extractfile("manifest.json"))
        return json.load(t.extractfile(manifest[0]["Config"]))["config"]


def test_unikraft_image_for_v050_and_later(tmp_path):
    d = unikraft(tmp_path, 'urunc = [ "v0.5.0" "v0.6.0" "v0.7.0" "main" ];')
    r = urunix("build", "args.nix", "-o", "out.tar", "--backend", "native", cwd=d)
    assert r.returncode == 0, r.stderr
    cfg = config_of(d / "out.tar")
    assert cfg["Cmd"] == ["/conf/redis.conf"] and cfg.get("Entrypoint") is None
    assert cfg["Labels"]["com.urunc.unikernel.cmdline"] == "redis-server /conf/redis.conf"
    assert cfg["Labels"]["com.urunc.unikernel.useDMBlock"] == "false"  # unset means true on v0.5.0


def test_linux_example_keeps_init_and_program_in_entrypoint(tmp_path):
    d = example("nginx-linux-block", tmp_path / "ex")
    r = urunix("build", "args.nix", "-o", "out.tar", "--backend", "native", cwd=d)
    assert r.returncode == 0, r.stderr
    cfg = config_of(d / "out.tar")
    assert cfg["Entrypoint"] == ["/urunit", "/usr/sbin/nginx"]
    assert cfg["Cmd"] == ["-g", "daemon off;error_log stderr debug;"]
    assert cfg["Labels"]["com.urunc.unikernel.blkMntPoint"] == "/"


def app_image(path, config: dict) -> None:
    from urunix.helpers import image_writer

    entries = [{"type": "file", "path": "/bin/app", "data": "#!/bin/sh\n", "mode": 0o755}]
    image_writer.write_atomic(
        {
            "format": "docker-archive",
            "repoTags": ["t/app:1"],
            "created": "1970-01-01T00:00:01Z",
            "architecture": "amd64",
            "config": config,
            "layers": [{"name": "l", "entries": entries}],
        },
        str(path),
    )


def linux_from_image(tmp_path, config: dict, urunc: str = ""):
    app_image(tmp_path / "app.tar", config)
    (tmp_path / "kernel").write_bytes(b"\x7fELF")
    (tmp_path / "urunit").write_bytes(b"\x7fELF")
    (tmp_path / "args.nix").write_text(
        '{ name = "t/li"; kernel = "./kernel"; init = "./urunit"; '
        + urunc
        + ' annotations = { unikernelType = "linux"; hypervisor = "qemu"; };'
        ' rootfs = { type = "initrd"; from = "./app.tar"; }; }\n'
    )
    return tmp_path


def test_image_command_and_env_judged_at_build_time(tmp_path):
    # the rootfs image's own Cmd and Env are known only when it is read
    d = linux_from_image(tmp_path, {"Cmd": ["/bin/app", "a b", "c d"], "Env": ["OPTS=-x -y"]})
    r = urunix("build", "args.nix", "-o", "out.tar", "--backend", "native", cwd=d)
    assert r.returncode == 2, r.stderr
    assert "urunc v0.6.0, v0.7.0 and main: passes the arguments through urunit, which drops every argument" in r.stderr
    assert "urunc v0.6.0: puts each K=V of a Linux guest on the kernel command line" in r.stderr
    assert not (d / "out.tar").exists()


def test_image_entrypoint_stays_docker_run_args_replace_cmd(tmp_path):
    d = linux_from_image(
        tmp_path, {"Entrypoint": ["/bin/app", "serve"], "Cmd": ["--port", "80"], "Env": ["OPTS=-x -y"]}, 'urunc = "v0.7.0,main";'
    )
    r = urunix("build", "args.nix", "-o", "out.tar", "--backend", "native", cwd=d)
    assert r.returncode == 0, r.stderr  # env with spaces reaches urunit intact on v0.7.0+
    cfg = config_of(d / "out.tar")
    assert (cfg["Entrypoint"], cfg["Cmd"]) == (["/urunit", "/bin/app", "serve"], ["--port", "80"])
    assert cfg["Labels"]["com.urunc.unikernel.cmdline"] == "/urunit /bin/app serve --port 80"
