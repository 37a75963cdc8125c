"""2. No injection.

A corpus of hostile strings (hostile.CORPUS: Nix interpolation and builtins,
'' strings, backticks, $(...), quotes, backslashes, newlines, jinja2, shell
metacharacters, rich markup, very long values, ...; each tries to `touch
/tmp/urunix-pwned-<i>`) goes into every field that ends up in Nix or in a
command line: labels (keys and values), env (keys and values), cmd (and so
the cmdline annotation), file sources and targets, and name/tag (refused).
Many values ride in one spec, and that spec is built three ways:

  (a) the native builder, read back with tarfile, `urunix inspect --json`
      and (if Docker is there) docker load + inspect + export;
  (b) `urunix generate` + a real `nix-build` with the test pkgs;
  (c) `nix-build default.nix --arg args ./hostile.nix` with the test pkgs.

Each value arrives byte for byte, or the spec is refused with exit code 2
and a clear message (NUL, lone surrogates); no marker file ever exists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli import urunix
from hostile import CORPUS, REFUSED, markers, nix_quote, read_archive, yaml_quote
from hsupport import run_cli
from urunix.helpers.urunc_json import PREFIX

# Host file names: no '/', no NUL, at most 255 bytes, not '.' or '..'.
NAMES = [s for s in CORPUS if "/" not in s and s not in (".", "..", "") and len(s.encode()) <= 200]
ENV_KEYS = [s for s in CORPUS if "=" not in s and s]


def test_the_corpus_is_big_enough():
    assert len(CORPUS) >= 50 and len(set(CORPUS)) == len(CORPUS)
    assert len(NAMES) >= 40 and len(ENV_KEYS) >= 40


@pytest.fixture(autouse=True)
def no_markers_before_or_after():
    assert not markers(), f"stale markers: {markers()}"
    yield
    assert not markers(), f"an injection ran: {markers()}"


def expected() -> dict:
    labels = {f"l{i:02d}": s for i, s in enumerate(CORPUS)}
    labels.update({s: f"key{i}" for i, s in enumerate(CORPUS)})
    env = {f"E{i:02d}": s for i, s in enumerate(CORPUS)}
    env.update({k: f"v{i}" for i, k in enumerate(ENV_KEYS)})
    files = {f"/t/{n}": f"content {i}\n".encode() for i, n in enumerate(NAMES)}
    return {"labels": labels, "env": env, "cmd": list(CORPUS), "files": files}


def write_sources(d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / "kernel.hvt").write_bytes(b"\x7fELF hostile")
    src = d / "src"
    src.mkdir(exist_ok=True)
    for i, n in enumerate(NAMES):
        (src / n).write_bytes(f"content {i}\n".encode())


def _pair(k: str, v: str) -> str:
    """One mapping entry; YAML's simple keys stop at 1024 characters, so a
    longer key takes the explicit `? key` form."""
    if len(k) > 1000:
        return f"  ? {yaml_quote(k)}\n  : {yaml_quote(v)}"
    return f"  {yaml_quote(k)}: {yaml_quote(v)}"


def hostile_yaml(d: Path) -> Path:
    e = expected()
    # urunc: [] -- no urunc release reads these strings as meant (spaces,
    # JSON-escaped characters, env for rumprun): urunix refuses them for any
    # targeted release; here only their transport, byte for byte, is tested
    lines = [
        "name: hostile/injection",
        "tag: v1",
        "urunc: []",
        "annotations:",
        "  unikernelType: rumprun",
        "  hypervisor: hvt",
        "  binary: /unikernel/kernel.hvt",
        "files:",
        "  ./kernel.hvt: /unikernel/kernel.hvt",
    ]
    lines += [f"  {yaml_quote('./src/' + n)}: {yaml_quote('/t/' + n)}" for n in NAMES]
    lines += ["cmd:"] + [f"  - {yaml_quote(s)}" for s in e["cmd"]]
    lines += ["env:"] + [_pair(k, v) for k, v in e["env"].items()]
    lines += ["labels:"] + [_pair(k, v) for k, v in e["labels"].items()]
    write_sources(d)
    p = d / "spec.yaml"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def hostile_nix(d: Path) -> Path:
    e = expected()
    out = [
        "{",
        '  name = "hostile/injection";',
        '  tag = "v1";',
        "  urunc = [ ];",
        '  annotations = { unikernelType = "rumprun"; hypervisor = "hvt"; binary = "/unikernel/kernel.hvt"; };',
        "  files = {",
        '    "./kernel.hvt" = "/unikernel/kernel.hvt";',
    ]
    out += [f"    {nix_quote('./src/' + n)} = {nix_quote('/t/' + n)};" for n in NAMES]
    out += ["  };", "  cmd = ["] + [f"    {nix_quote(s)}" for s in e["cmd"]] + ["  ];"]
    out += ["  env = {"] + [f"    {nix_quote(k)} = {nix_quote(v)};" for k, v in e["env"].items()] + ["  };"]
    out += ["  labels = {"] + [f"    {nix_quote(k)} = {nix_quote(v)};" for k, v in e["labels"].items()] + ["  };", "}"]
    write_sources(d)
    p = d / "hostile.nix"
    p.write_text("\n".join(out) + "\n", encoding="utf-8")
    return p


def check_config(config: dict, files: dict[str, bytes]) -> None:
    e = expected()
    cfg = config["config"]
    labels = {k: v for k, v in cfg["Labels"].items() if not k.startswith(PREFIX)}
    assert labels == e["labels"]
    assert cfg["Cmd"] == e["cmd"]
    got_env = dict(x.split("=", 1) for x in cfg["Env"])
    assert got_env == e["env"]
    for target, data in e["files"].items():
        assert files.get(target.lstrip("/")) == data, f"{target!r} did not arrive"
    assert cfg["Labels"][PREFIX + "cmdline"] == " ".join(CORPUS)


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_native_build_carries_every_value_byte_for_byte(tmp_path, fmt):
    spec = hostile_yaml(tmp_path)
    r = run_cli("build", "--backend", "native", "--format", fmt, "-o", str(tmp_path / "out"), str(spec))
    assert r.returncode == 0, r.stderr
    config, _, files = read_archive(tmp_path / "out")
    check_config(config, files)
    r = run_cli("inspect", "--json", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["cmd"] == CORPUS
    assert report["labels"]["cmdline"] == report["uruncJson"]["cmdline"] == " ".join(CORPUS)
    # the human form too (rich must not read label text as markup)
    r = run_cli("inspect", str(tmp_path / "out"))
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr


def test_same_spec_as_args_nix_in_the_builtin_reader(tmp_path):
    """The hostile.nix of (c), read by the built-in Nix data reader, gives
    the same image config as the YAML spec."""
    spec = hostile_nix(tmp_path)
    r = run_cli("build", "--backend", "native", "-o", str(tmp_path / "out"), str(spec), env={"URUNIX_NO_NIX": "1"})
    assert r.returncode == 0, r.stderr
    config, _, files = read_archive(tmp_path / "out")
    check_config(config, files)


@pytest.mark.slow
def test_docker_sees_every_value(tmp_path, docker):
    spec = hostile_yaml(tmp_path)
    r = run_cli("build", "--backend", "native", "-o", str(tmp_path / "out"), str(spec))
    assert r.returncode == 0, r.stderr
    ref = docker.load(tmp_path / "out")
    try:
        info = docker.inspect(ref)
        cfg = info["Config"]
        e = expected()
        assert {k: v for k, v in cfg["Labels"].items() if not k.startswith(PREFIX)} == e["labels"]
        assert cfg["Cmd"] == e["cmd"]
        assert dict(x.split("=", 1) for x in cfg["Env"]) == e["env"]
        root = docker.export(ref, tmp_path / "export")
        for target, data in e["files"].items():
            assert (root / target.lstrip("/")).read_bytes() == data
    finally:
        docker.run("rmi", "-f", ref, check=False)


@pytest.mark.slow
def test_generate_then_nix_build(tmp_path):
    import nixhelp

    nixhelp.need_nix()
    spec = hostile_yaml(tmp_path)
    r = urunix("generate", str(spec), "-o", str(tmp_path / "gen"))
    assert r.returncode == 0, r.stderr
    out = nixhelp.nix_build(tmp_path / "gen", tmp_path / "result")
    config, _, files = read_archive(out)
    check_config(config, files)


@pytest.mark.slow
def test_default_nix_with_hostile_args(tmp_path):
    import nixhelp

    nixhelp.need_nix()
    d = nixhelp.bimanix_checkout(tmp_path / "checkout")
    spec = hostile_nix(d)
    out = nixhelp.nix_build(d / "default.nix", d / "result", "--arg", "args", str(spec), cwd=d)
    config, _, files = read_archive(out)
    check_config(config, files)


# ------------------------------------------------------------ refused values

FIELDS = {
    "label value": "labels: {{k: {v}}}",
    "label key": "labels: {{{v}: x}}",
    "env value": "env: {{K: {v}}}",
    "env key": "env: {{{v}: x}}",
    "cmd": "cmd: [{v}]",
    "entrypoint": "entrypoint: [{v}, x]",
    "cmdline": None,
    "file target": "files: {{./k: /k, ./f: {v}}}",
    "file source": "files: {{./k: /k, {v}: /f}}",
    "tag": "tag: {v}",
}


def _spec(field: str, value: str) -> str:
    v = yaml_quote(value)
    base = ["name: hostile/refused", "annotations:", "  unikernelType: rumprun", "  hypervisor: hvt", "  binary: /k"]
    if field == "cmdline":
        base.append(f"  cmdline: {v}")
    if field not in ("file target", "file source"):
        base.append("files: {./k: /k}")
    if FIELDS[field]:
        base.append(FIELDS[field].format(v=v))
    return "\n".join(base) + "\n"


@pytest.mark.parametrize("value", REFUSED, ids=lambda s: repr(s)[:20])
@pytest.mark.parametrize("field", list(FIELDS))
@pytest.mark.parametrize("command", ["validate", "build", "generate"])
def test_nul_and_surrogates_are_refused_clearly(tmp_path, field, value, command):
    (tmp_path / "k").write_bytes(b"k")
    (tmp_path / "f").write_bytes(b"f")
    (tmp_path / "spec.yaml").write_text(_spec(field, value), encoding="utf-8")
    extra = {
        "validate": [],
        "build": ["--backend", "native", "-o", str(tmp_path / "out")],
        "generate": ["-o", str(tmp_path / "gen")],
    }[command]
    r = run_cli(command, *extra, str(tmp_path / "spec.yaml"))
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    assert "NUL" in r.stderr or "surrogate" in r.stderr or "not a valid image tag" in r.stderr, r.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "gen" / "default.nix").exists()


# The corpus strings that are plain image names and tags: YAML would read
# them as a null, a bool or a number, but the spec quotes them, so they are
# the strings "null", "true", "0x41" and "1e400", which Docker takes too.
# ("-1" is not a name: a name starts with a letter or digit; nor a tag.)
PLAIN = {"null", "true", "0x41", "1e400"}


@pytest.mark.parametrize("field", ["name", "tag"])
def test_hostile_names_and_tags_are_refused(tmp_path, field):
    (tmp_path / "k").write_bytes(b"k")
    accepted = set()
    for i, s in enumerate(CORPUS + REFUSED):
        other = "tag: t" if field == "name" else "name: a/b"
        (tmp_path / "spec.yaml").write_text(
            f"{field}: {yaml_quote(s)}\n{other}\nfiles: {{./k: /k}}\n"
            "annotations: {unikernelType: rumprun, hypervisor: hvt, binary: /k}\n",
            encoding="utf-8",
        )
        r = run_cli("validate", str(tmp_path / "spec.yaml"))
        assert "Traceback" not in r.stderr
        if r.returncode == 0:
            accepted.add(s)
            continue
        assert r.returncode == 2, r.stderr
    assert accepted == PLAIN


# ------------------------------------------------------------ the spec's own file name

EVIL_NAME = 'spec\nassert builtins.trace "URUNIX-PWNED-NAME" true;\n#.yaml'


def test_spec_file_name_cannot_inject_nix(tmp_path):
    import subprocess

    import nixhelp

    nixhelp.need_nix()
    (tmp_path / "k").write_bytes(b"k")
    spec = tmp_path / EVIL_NAME
    spec.write_text("name: a/b\nfiles: {./k: /k}\nannotations: {unikernelType: rumprun, hypervisor: hvt, binary: /k}\n")
    r = urunix("generate", "--spec-format", "yaml", str(spec), "-o", str(tmp_path / "gen"))
    assert r.returncode == 0, r.stderr
    p = subprocess.run(
        ["nix-instantiate", str(tmp_path / "gen"), "--arg", "pkgs", nixhelp.testpkgs_expr(), *nixhelp.NIX_OPTS],
        capture_output=True,
        text=True,
        env=nixhelp.env(),
    )
    assert "URUNIX-PWNED-NAME" not in p.stderr, "the file name was evaluated as Nix code"
    assert p.returncode == 0, p.stderr
