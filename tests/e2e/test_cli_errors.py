"""Bad input gets one clear message -- file, line, field, value, what is
allowed, a hint -- and exit code 2, with no traceback unless --debug."""

from __future__ import annotations

import pytest

from cli import assert_refused, urunix
from standins import example

SEED = (
    "{\n"
    '  name = "urunc/prebuilt/redis-rumprun-hvt";\n'
    '  tag = "test";\n'
    '  files = { "./redis.hvt" = "/unikernel/redis.hvt"; };\n'
    "  annotations = {\n"
    '    unikernelType = "{guest}";\n'
    '    hypervisor = "{monitor}";\n'
    '    binary = "{binary}";\n'
    "    {extra}\n"
    "  };\n"
    "}\n"
)


def spec(tmp_path, guest="rumprun", monitor="hvt", binary="/unikernel/redis.hvt", extra=""):
    (tmp_path / "redis.hvt").write_bytes(b"\x7fELF")
    text = SEED.replace("{guest}", guest).replace("{monitor}", monitor).replace("{binary}", binary).replace("{extra}", extra)
    (tmp_path / "args.nix").write_text(text)
    return tmp_path


@pytest.mark.parametrize("nix", ["nix", "builtin"])
@pytest.mark.parametrize(
    "kw,expect",
    [
        (
            {"guest": "unikrafft"},
            [
                "args.nix:6: annotations.unikernelType",
                '(got "unikrafft")',
                "allowed: unikraft, rumprun",
                'hint: did you mean "unikraft"?',
            ],
        ),
        (
            {"guest": "unikraft"},
            [
                "args.nix:7: annotations.hypervisor",
                "cannot run a unikraft guest on hvt",
                "unikraft runs on qemu, firecracker, hyperlight",
            ],
        ),
        (
            {"binary": "/unikernel/redis.hvtt"},
            ["args.nix:8: annotations.binary", "will not contain", 'hint: did you mean "/unikernel/redis.hvt"?'],
        ),
        ({"binary": "/unikernel/../redis.hvt"}, ["args.nix:8: annotations.binary", "is not clean"]),
        ({"extra": 'mountRootFs = "true";'}, ["args.nix:9: annotations.mountRootFs", 'did you mean "mountRootfs"?']),
        ({"extra": 'useDMBlock = "yes";'}, ["args.nix:9: annotations.useDMBlock", "true or false"]),
    ],
)
def test_bad_spec_message_and_exit_code(tmp_path, nix, kw, expect):
    work = spec(tmp_path, **kw)
    env = {"URUNIX_NO_NIX": "1"} if nix == "builtin" else {}
    for cmd in ("validate", "build"):
        assert_refused(urunix(cmd, "args.nix", cwd=work, env=env), expect, work)


def test_debug_shows_the_traceback(tmp_path):
    work = spec(tmp_path, guest="unikrafft")
    r = urunix("--debug", "validate", "args.nix", cwd=work)
    assert r.returncode == 2 and "Traceback" in r.stderr


def test_missing_file_is_named_with_its_line(tmp_path):
    work = spec(tmp_path)
    (work / "redis.hvt").unlink()
    r = urunix("build", "args.nix", cwd=work)
    assert r.returncode == 2
    assert 'args.nix:4: files."./redis.hvt": source file does not exist (got "./redis.hvt")' in r.stderr


def test_non_data_nix_without_nix_suggests_installing_it(tmp_path):
    work = spec(tmp_path)
    (work / "args.nix").write_text('let x = "a"; in { name = x; }\n')
    r = urunix("validate", "args.nix", cwd=work, env={"URUNIX_NO_NIX": "1"})
    assert r.returncode == 2 and "args.nix:1" in r.stderr and "Nix" in r.stderr and "Traceback" not in r.stderr


def test_yaml_errors_carry_lines(tmp_path):
    (tmp_path / "k").write_bytes(b"k")
    (tmp_path / "spec.yaml").write_text(
        "name: x\nfiles:\n  ./k: /k\nannotations:\n  unikernelType: rumprun\n  hypervisor: qemu\n  binary: /k\n"
    )
    r = urunix("validate", "spec.yaml", cwd=tmp_path)
    assert r.returncode == 2 and "spec.yaml:6: annotations.hypervisor" in r.stderr


def test_bunnyfile_needs_a_name(tmp_path):
    work = example("network-mirage-hvt", tmp_path / "ex")
    r = urunix("build", "bunnyfile", cwd=work)
    assert r.returncode == 2 and "name" in r.stderr and "--tag" in r.stderr
    r = urunix("build", "bunnyfile", "-t", "my/mirage:1", "--backend", "native", cwd=work)
    assert r.returncode == 0, r.stderr


def test_failed_build_keeps_the_previous_result(tmp_path):
    work = spec(tmp_path)
    assert urunix("build", "args.nix", "--backend", "native", cwd=work).returncode == 0
    before = (work / "result").read_bytes()
    (work / "args.nix").write_text((work / "args.nix").read_text().replace('"hvt"', '"qemu"'))
    assert urunix("build", "args.nix", "--backend", "native", cwd=work).returncode == 2
    assert (work / "result").read_bytes() == before
    assert sorted(p.name for p in work.iterdir()) == ["args.nix", "redis.hvt", "result"]


def test_usage_error_is_exit_2(tmp_path):
    r = urunix("build", "x", "--format", "tarball", cwd=tmp_path)
    assert r.returncode == 2


def test_readme_main_job_builds_the_example(tmp_path):
    """The README's first command: `urunix build args.nix.example`."""
    from standins import ROOT

    r = urunix("build", str(ROOT / "args.nix.example"), "-o", str(tmp_path / "result"), "--backend", "native")
    assert r.returncode == 0, r.stderr
    r = urunix("inspect", str(tmp_path / "result"), "--json", check=True)
    assert '"binary": "/unikernel/hello.hvt"' in r.stdout


def test_validate_json_prints_the_resolved_spec(tmp_path):
    """`urunix validate --json`: what the Nix library builds, defaults resolved."""
    import json

    work = example("nginx-linux-block", tmp_path / "ex")
    spec = json.loads(urunix("validate", "args.nix", "--json", cwd=work, check=True).stdout)
    assert spec["rootfs"]["path"] == "/.boot/rootfs.ext2" and spec["rootfs"]["fsType"] == "ext2"
    assert spec["annotations"]["block"] == "/.boot/rootfs.ext2" and spec["annotations"]["blkMntPoint"] == "/"
    assert spec["entrypoint"] == ["/urunit", "/usr/sbin/nginx"] and spec["kernel"]["path"] == "/kernel"


def test_messages_show_values_as_given(tmp_path):
    """A value is printed as it is: no markup or emoji codes expanded."""
    work = spec(tmp_path, guest=":thumbs_up: [bold]x[/bold]")
    r = urunix("validate", "args.nix", cwd=work, env={"URUNIX_NO_NIX": "1"})
    assert r.returncode == 2
    assert '(got ":thumbs_up: [bold]x[/bold]")' in r.stderr, r.stderr
