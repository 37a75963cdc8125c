"""One validator: `nix-build` judges a spec with the Python validator, run
inside the metadata derivation (helpers/nix_check.py), so it gives the same
verdicts and the same messages as `urunix validate`; the derivation also
fails when Nix's plan and Python's differ (drift), and every layer waits
for it."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nixhelp import NIX_OPTS, bimanix_checkout, env, need_nix
from nixhelp import testpkgs_expr as pkgs_expr
from urunix import nixgen
from verdicts import RECORD, build_messages, check_json, nix_verdict, python_verdict, run_check

pytestmark = pytest.mark.nix


@pytest.fixture(autouse=True)
def _nix():
    need_nix()


def spec_dir(d: Path, spec: dict, files: dict[str, bytes] | None = None) -> Path:
    """args.nix (plain data, one field a line) plus its files in `d`."""
    d.mkdir(parents=True, exist_ok=True)
    for name, data in (files or {"k": b"\x7fELF k", "a": b"a"}).items():
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    (d / "args.nix").write_text(nixgen.nix_value(spec) + "\n")
    return d / "args.nix"


def nix_build(repo: Path, args: Path, environ: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`nix-build` of the bimanix checkout `repo` with the spec `args` (testpkgs)."""
    return subprocess.run(
        [
            "nix-build",
            str(repo / "default.nix"),
            "--no-out-link",
            "--arg",
            "args",
            str(args),
            "--arg",
            "pkgs",
            pkgs_expr(),
            *NIX_OPTS,
        ],
        capture_output=True,
        text=True,
        env=environ or env(),
        timeout=600,
    )


BASE = {"name": "x/y", "files": {"./k": "/k"}, "annotations": {"unikernelType": "rumprun", "hypervisor": "hvt", "binary": "/k"}}

# The five probes the two validators once judged differently: (change, accepted?)
PROBES = {
    "registry-host-upper-case": ({"name": "Registry.Example.com/x/y"}, True),
    "leading-dash": ({"name": "-foo.-/x"}, False),
    "env-key-with-equals": ({"env": {"A=B": "1"}}, False),
    "file-inside-a-file": ({"files": {"./k": "/k", "./a": "/k/a"}}, False),
    "300-byte-component": ({"files": {"./k": "/k", "./a": "/d/" + "x" * 300}}, False),
}


@pytest.mark.parametrize("probe", sorted(PROBES))
def test_probe_same_verdict_and_message(tmp_path, probe):
    change, accepted = PROBES[probe]
    args = spec_dir(tmp_path / "spec", {**BASE, **change})
    py = python_verdict(args)
    assert py[0] is accepted, py
    assert nix_verdict(args, tmp_path / "out") == py


@pytest.mark.parametrize("probe", ["registry-host-upper-case", "leading-dash", "file-inside-a-file"])
def test_probe_real_nix_build(tmp_path, probe):
    """The same through `nix-build default.nix` (testpkgs): the build fails
    in the metadata derivation with `urunix validate`'s words, and builds no
    layer before it."""
    change, accepted = PROBES[probe]
    repo = bimanix_checkout(tmp_path / "repo")
    args = spec_dir(tmp_path / "spec", {**BASE, **change})
    r = nix_build(repo, args)
    ok, text = python_verdict(args)
    assert (r.returncode == 0) is ok is accepted, r.stderr
    if not ok:
        assert build_messages(r.stderr) == text
        built = re.findall(r"building '/nix/store/[a-z0-9]+-([^']+)\.drv'", r.stderr)
        assert [b for b in built if b.endswith("-urunc-metadata")], built
        layers = [
            b
            for b in built
            if b.startswith(("urunix-checked-", "docker-image-")) or b.endswith(("-kernel", "-rootfs", "-files", "-urunc.json"))
        ]
        assert layers == [], built


def test_not_utf8_refused_alike(tmp_path):
    """Nix strings are bytes; the check reads the spec file as `urunix
    validate` does and refuses it the same way."""
    args = spec_dir(tmp_path / "spec", BASE)
    args.write_bytes(args.read_bytes().replace(b'"x/y"', b'"x/\xff"'))
    py = python_verdict(args)
    assert not py[0] and "not valid UTF-8" in py[1]
    assert nix_verdict(args, tmp_path / "out") == py


# -- hypothesis: the same specs, both ways -----------------------------------

NAMES = ["x/y"] * 6 + ["Registry.Example.com/x/y", "-foo.-/x", "UPPER/x", "a..b", "localhost:5000/a", "a b", ""]
TARGETS = ["/k", "/k/a", "/a", "a", "/urunc.json", "/d/" + "x" * 300, "/../x", "/dir", "/dir/f", "/a/./b/"]
SOURCES = ["./k", "./a", "./dir", "./missing"]
texts = st.text(alphabet="aZ09 =_-./\u00e9", max_size=6)


@st.composite
def specs(draw) -> dict:
    """A valid spec, each part of it changed now and then (p = 1/6)."""

    def sometimes() -> bool:
        return draw(st.integers(0, 5)) == 0

    spec: dict = {"name": draw(st.sampled_from(NAMES)) if sometimes() else "x/y"}
    if sometimes():
        spec["tag"] = draw(st.sampled_from(["latest", "v1", "V1", "-x", ""]))
    guest, monitor = ("rumprun", "hvt")
    if sometimes():
        guest, monitor = draw(
            st.sampled_from(
                [
                    ("mirage", "spt"),
                    ("unikraft", "qemu"),
                    ("linux", "qemu"),
                    ("unikrafft", "hvt"),
                    ("rumprun", "firecraker"),
                    ("mirage", "qemu"),
                ]
            )
        )
    ann = {"unikernelType": guest, "hypervisor": monitor, "binary": "/k"}
    if sometimes():
        ann["binary"] = draw(st.sampled_from(["k", "/other", "//k", "/uni kernel", "/dir/f"]))
    if sometimes():
        ann["cmdline"] = draw(texts)
    if sometimes():
        ann[draw(st.sampled_from(["mountRootfs", "useDMBlock"]))] = draw(st.sampled_from([True, False, "yes"]))
    spec["annotations"] = ann
    spec["files"] = {"./k": "/k"}
    if sometimes():
        spec["files"] = draw(st.dictionaries(st.sampled_from(SOURCES), st.sampled_from(TARGETS), max_size=3))
    if sometimes():
        spec["cmd"] = draw(st.lists(texts, max_size=3))
    if sometimes():
        spec["env"] = draw(st.dictionaries(st.sampled_from(["A", "A=B", "PATH", "x y"]), texts, max_size=2))
    if sometimes():
        spec["labels"] = draw(st.dictionaries(st.sampled_from(["org.x", "com.urunc.unikernel.binary"]), texts, max_size=2))
    if sometimes():
        spec["rootfs"] = {
            "type": draw(st.sampled_from(["initrd", "block", "raw", "initrdd"])),
            "from": draw(st.sampled_from(["./dir", "scratch", "oci:./dir", "./k"])),
        }
        if sometimes():
            spec["rootfs"]["include"] = draw(st.dictionaries(st.sampled_from(SOURCES), st.sampled_from(TARGETS), max_size=2))
    if sometimes():
        spec["kernel"] = draw(st.sampled_from(["./k", "./dir", "./missing", {"from": "./k", "path": "/boot/k"}]))
    if sometimes():
        spec["init"] = draw(st.sampled_from(["./a", {"from": "./dir"}, {"from": "./a", "path": "/sbin/init"}]))
    return spec


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=specs())
def test_same_verdicts_and_messages(tmp_path_factory, spec):
    d = tmp_path_factory.mktemp("spec")
    args = spec_dir(d, spec, {"k": b"\x7fELF k", "a": b"a", "dir/f": b"f"})
    py = python_verdict(args)
    assert nix_verdict(args, d / "out") == py, json.dumps(spec)
    VERDICTS.append(py[0])


VERDICTS: list[bool] = []


def test_hypothesis_saw_both_verdicts():
    """(runs after the test above) the generated specs were not all refused"""
    if VERDICTS:
        assert True in VERDICTS and False in VERDICTS, VERDICTS


# -- drift ---------------------------------------------------------------------


def test_drift_fails_the_check(tmp_path):
    # urunc = [ ]: every release splits "b c" for rumprun (refused otherwise)
    args = spec_dir(tmp_path / "spec", {**BASE, "cmd": ["a", "b c"], "urunc": []})
    check, err = check_json(args)
    assert check is not None, err
    assert run_check(check, tmp_path / "ok").returncode == 0
    doc = json.loads(check)
    doc["nix"]["config"]["Cmd"] = ["a", "b", "c"]
    r = run_check(json.dumps(doc), tmp_path / "drift")
    assert r.returncode == 3
    assert "planned this image differently" in r.stderr
    assert '  config: Nix computed {"Cmd": ["a", "b", "c"]' in r.stderr and '"Cmd": ["a", "b c"]' in r.stderr
    assert not (tmp_path / "drift").exists()


def test_drift_fails_a_real_build(tmp_path):
    """A library whose argv rule went astray (a space no longer quoted for
    Linux) builds nothing: the check sees Python's plan differ."""
    repo = bimanix_checkout(tmp_path / "repo")
    v = repo / "nix" / "validate.nix"
    text = v.read_text()
    assert "then \"'${util.strip a}'\" else a" in text
    v.write_text(text.replace("then \"'${util.strip a}'\" else a", "then a else a"))
    args = spec_dir(
        tmp_path / "spec",
        {
            "name": "x/l",
            "files": {"./k": "/k", "./a": "/urunit"},
            "annotations": {"unikernelType": "linux", "hypervisor": "qemu", "binary": "/k", "mountRootfs": "false"},
            "cmd": ["/urunit", "echo", "two words"],
        },
    )
    r = nix_build(repo, args)
    assert r.returncode != 0
    assert "the Nix library and the Python validator planned this image differently" in r.stderr
    assert "/urunit echo 'two words'" in r.stderr and "/urunit echo two words" in r.stderr


def test_cmdline_change_keeps_the_other_layers(tmp_path):
    """The base archive (kernel, rootfs, files) waits for the check through a
    fixed-output stamp named after it, so after a cmdline-only change it
    keeps its output path (its .drv names the new stamp's .drv, but a
    fixed-output input does not change an output path): Nix rebuilds only
    the metadata and the urunc.json tree."""

    def drvs(cmdline: str) -> dict[str, str]:
        args = spec_dir(
            tmp_path / cmdline,
            {**BASE, "files": {"./k": "/k", "./a": "/etc/a"}, "annotations": {**BASE["annotations"], "cmdline": cmdline}},
        )
        expr = (
            f"let i = (import {Path(__file__).resolve().parents[2] / 'nix'} {{ pkgs = {RECORD}; }})"
            f".fromArgs {{ args = {args}; }}; in "
            "{ base = i.urunix.base.outPath; top = i.urunix.top.outPath; metadata = i.urunix.metadata.outPath;"
            "  layers = map (l: l.name) i.urunix.layers; }"
        )
        r = subprocess.run(
            ["nix-instantiate", "--eval", "--strict", "--json", "--expr", expr, *NIX_OPTS],
            capture_output=True,
            text=True,
            env=env(),
            timeout=300,
        )
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    one, two = drvs("one"), drvs("two")
    assert one["layers"] == ["kernel", "files", "urunc.json"]
    assert one["base"] == two["base"]
    assert one["metadata"] != two["metadata"] and one["top"] != two["top"]


def test_sandboxed_build_sees_only_the_store_copies(tmp_path):
    """With the sandbox on, the check sees the spec's sources only through
    the store copies Nix made (an absolute source too), and still judges
    like `urunix validate`. Skipped where this machine cannot sandbox."""
    sandbox = {
        **env(),
        "NIX_CONFIG": env().get("NIX_CONFIG", "") + "\nsandbox = true\n"
        "extra-sandbox-paths = /usr /lib /lib64 /bin /etc/alternatives\nbuild-users-group =\n",
    }
    probe = subprocess.run(
        [
            "nix-build",
            "--no-out-link",
            *NIX_OPTS,
            "-E",
            'derivation { name = "urunix-sandbox-probe"; system = builtins.currentSystem; '
            'builder = "/bin/sh"; args = [ "-c" "echo > $out" ]; }',
        ],
        capture_output=True,
        text=True,
        env=sandbox,
        timeout=300,
    )
    if probe.returncode != 0:
        pytest.skip("no Nix sandbox here: " + probe.stderr[-300:])
    (tmp_path / "abs").mkdir()
    (tmp_path / "abs" / "kern").write_bytes(b"\x7fELF sandboxed")
    repo = bimanix_checkout(tmp_path / "repo")
    for files, accepted in (
        ({str(tmp_path / "abs" / "kern"): "/k"}, True),
        ({str(tmp_path / "abs" / "kern"): "/k", "./a": "/k/a"}, False),
    ):
        args = spec_dir(tmp_path / f"spec-{accepted}", {**BASE, "name": "x/sandboxed", "files": files})
        r = nix_build(repo, args, sandbox)
        ok, text = python_verdict(args)
        assert (r.returncode == 0) is ok is accepted, r.stderr[-3000:]
        if not ok:
            assert build_messages(r.stderr) == text


@pytest.mark.parametrize("files", [{"./": "/app", "./k": "/k"}, {"../spec": "/app", "./k": "/k", "./nope": "/n"}])
def test_spec_directory_itself_copied(tmp_path, files):
    """A source that is the spec's own directory (or holds it): the check
    finds the spec inside that copy."""
    args = spec_dir(tmp_path / "spec", {**BASE, "files": files})
    py = python_verdict(args)
    assert nix_verdict(args, tmp_path / "out") == py
