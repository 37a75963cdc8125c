"""Containerfiles against the real thing.

1. Docker itself is the oracle for the syntax: every case of the parser
   table (tests/unit/test_containerfile.py) is built with `docker build`
   (Debian's engine, classic builder: DOCKER_BUILDKIT=0, FROM scratch, no
   network) and Docker's own reading of labels, env and Cmd must equal
   urunix's.
2. Every seed Containerfile (examples/*/Containerfile) builds unchanged with
   `urunix build --backend native`, loads into Docker, carries what Docker
   itself makes of the same file (labels, files), and carries the same
   annotations, files and Cmd as the same seed's args.nix / bunnyfile.
3. Registry FROMs, multi-stage builds and bad input fail with the line and
   exit code 2."""

from __future__ import annotations

import base64
import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

from cli import assert_refused, urunix
from standins import EXAMPLES, example
from urunix.loaders import load
from urunix.validate import validate

_UNIT = Path(__file__).resolve().parent.parent / "unit" / "test_containerfile.py"
_spec = importlib.util.spec_from_file_location("containerfile_cases", _UNIT)
cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cases)

PREFIX = "com.urunc.unikernel."
DOCKER_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

SEEDS = sorted((p.parent.name, p.name) for p in EXAMPLES.glob("*/*Containerfile"))
FROM_REGISTRY = {("nginx-unikraft-pun", "catalog.Containerfile")}
# Where a seed's Containerfile and its args.nix deliberately differ (the docs
# wrote cmdline = "hello" in args.nix, the real command in the Containerfile).
DIFFER = {"redis-rumprun-hvt": {"cmdline"}}
# Examples whose args.nix/bunnyfile no longer use the Containerfile's storage:
# redis-rumprun-hvt builds a block image (the docs' devmapper rootfs cannot
# work on urunc v0.6.0+ under overlayfs; see its README).
STORAGE_DIFFERS = {"redis-rumprun-hvt"}

# Seed 004: urunit added to redis:alpine, a multi-stage build from registry
# images. Not an example (it cannot build): it must fail clearly.
URUNIT_SEED = "FROM harbor.nbfc.io/nubificus/urunit:latest AS init\nFROM redis:alpine\nCOPY --from=init /urunit /urunit\n"


def docker_build(docker, context: Path, tag: str, dockerfile: str = "Dockerfile") -> dict:
    r = subprocess.run(
        ["docker", "build", "-q", "-f", str(context / dockerfile), "-t", tag, str(context)],
        capture_output=True,
        env={**docker.env, "DOCKER_BUILDKIT": "0"},
        timeout=300,
    )
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return docker.inspect(tag)


def docker_config(cfg: dict) -> dict:
    c = cfg["Config"]
    env = [e for e in (c.get("Env") or []) if e != DOCKER_PATH]
    return {
        "labels": c.get("Labels") or {},
        "env": dict(e.split("=", 1) for e in env),
        "cmd": c.get("Cmd"),
        "entrypoint": c.get("Entrypoint"),
    }


# What `docker export` adds to any container's rootfs.
RUNTIME_FILES = {"/.dockerenv", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/etc/mtab"}


def tree(root: Path) -> dict[str, bytes]:
    """The regular files of an exported rootfs, without Docker's runtime ones."""
    out = {}
    for p in sorted(root.rglob("*")):
        name = "/" + str(p.relative_to(root))
        if p.is_file() and not p.is_symlink() and name not in RUNTIME_FILES:
            out[name] = p.read_bytes()
    return out


# -- 1. the syntax, with Docker as the oracle ---------------------------------------


@pytest.mark.docker
@pytest.mark.parametrize("text,want", [c[1:] for c in cases.CASES], ids=[c[0] for c in cases.CASES])
def test_docker_reads_it_the_same(tmp_path, docker, text, want, request):
    cases.write(tmp_path, text, name="Dockerfile")
    tag = f"urunix-cf/{request.node.callspec.id.lower()}:test"
    theirs = docker_config(docker_build(docker, tmp_path, tag))
    ours = cases.config_of(load(tmp_path / "Dockerfile"))
    docker.run("rmi", tag)
    assert ours == theirs
    assert theirs == cases.expected(want)


# -- 2. the seed Containerfiles ---------------------------------------------------------


@pytest.mark.docker
@pytest.mark.parametrize("name,file", [s for s in SEEDS if s not in FROM_REGISTRY])
def test_seed_containerfile_builds_unchanged(tmp_path, docker, name, file):
    work = example(name, tmp_path / name)
    original = (EXAMPLES / name / file).read_bytes()
    tag = f"urunix-test/{name}:containerfile"
    r = urunix("build", file, "-t", tag, "-o", "result", "--backend", "native", cwd=work)
    assert r.returncode == 0, r.stderr
    assert (work / file).read_bytes() == original  # unchanged
    assert "Traceback" not in r.stderr

    spec = load(work / file)
    spec.name, spec.tag = tag.split(":")
    image, _ = validate(spec)
    ref = docker.load(work / "result")
    assert ref == tag
    cfg = docker.inspect(ref)
    labels = cfg["Config"]["Labels"]
    assert labels == {PREFIX + k: v for k, v in image.annotations.items()}
    assert cfg["Config"]["Cmd"] == list(image.cmd)
    ours = tree(docker.export(ref, tmp_path / "ours"))
    doc = json.loads(ours.pop("/urunc.json"))
    assert {k: base64.b64decode(v).decode() for k, v in doc.items()} == labels

    # Docker's own build of the same file: the same labels (as written; urunix
    # drops empty ones and adds mountRootfs next to useDMBlock) and files.
    theirs_cfg = docker_build(docker, work, f"urunix-docker/{name}:{file.lower().replace('.', '-')}", file)
    theirs = {k: v for k, v in (theirs_cfg["Config"]["Labels"] or {}).items() if v != ""}
    if "useDMBlock" in image.annotations:
        theirs[PREFIX + "mountRootfs"] = theirs[PREFIX + "useDMBlock"]
    assert labels == theirs
    assert ours == tree(docker.export(theirs_cfg["Id"], tmp_path / "theirs", "/none"))
    docker.run("rmi", ref, theirs_cfg["Id"], check=False)


@pytest.mark.docker
@pytest.mark.parametrize("name", sorted({n for n, f in SEEDS if (EXAMPLES / n / "args.nix").exists()} - STORAGE_DIFFERS))
def test_seed_containerfile_equals_args_nix_and_bunnyfile(tmp_path, docker, name):
    """The same seed, three ways: the images agree on annotations, files and
    Cmd, except where the docs made them differ (bunny puts the kernel at
    /.boot/kernel; args.nix's cmdline is sometimes a placeholder)."""
    work = example(name, tmp_path / name)
    built = {}
    for spec in ("Containerfile", "args.nix", "bunnyfile"):
        if not (work / spec).exists():
            continue
        out = f"result-{spec.replace('.', '-')}"
        tag = f"urunix-eq/{name}:{spec.replace('.', '-').lower()}"
        r = urunix("build", spec, "-t", tag, "-o", out, "--backend", "native", cwd=work)
        assert r.returncode == 0, r.stderr
        ref = docker.load(work / out)
        cfg = docker.inspect(ref)["Config"]
        files = tree(docker.export(ref, tmp_path / out))
        built[spec] = {"labels": cfg["Labels"], "cmd": cfg["Cmd"], "files": files}
        docker.run("rmi", ref, check=False)

    cf, nix = built["Containerfile"], built["args.nix"]
    differ = {PREFIX + k for k in DIFFER.get(name, ())}
    assert {k: v for k, v in cf["labels"].items() if k not in differ} == {
        k: v for k, v in nix["labels"].items() if k not in differ
    }
    assert {k: v for k, v in cf["files"].items() if k != "/urunc.json"} == {
        k: v for k, v in nix["files"].items() if k != "/urunc.json"
    }
    if not differ:
        assert cf["cmd"] == nix["cmd"] and cf["files"]["/urunc.json"] == nix["files"]["/urunc.json"]
    if "bunnyfile" in built:
        bunny = built["bunnyfile"]
        # bunny's kernel sits at /.boot/kernel and its rootfs file at /.boot/rootfs
        same = ("unikernelType", "hypervisor", "cmdline", "useDMBlock", "mountRootfs")
        for key in same:
            if PREFIX + key in cf["labels"] or PREFIX + key in bunny["labels"]:
                want = cf["labels"].get(PREFIX + key)
                if key in ("useDMBlock", "mountRootfs") and want is None:
                    continue  # bunny writes "false" where the docs' Containerfile says nothing
                assert bunny["labels"].get(PREFIX + key) == want, key
        assert cf["cmd"] == bunny["cmd"]
        assert set(bunny["files"].values()) - {bunny["files"].get("/urunc.json")} == set(cf["files"].values()) - {
            cf["files"].get("/urunc.json")
        }


def test_every_seed_containerfile_is_here():
    """The examples hold the seed documents' Containerfiles byte for byte."""
    seeds = Path("/work/shared/seeds")
    if not seeds.is_dir():
        pytest.skip("the seed documents are not on this machine")
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(seeds.glob("0*.txt")))
    for name, file in SEEDS:
        body = (EXAMPLES / name / file).read_text(encoding="utf-8").rstrip("\n")
        assert body in text, f"{name}/{file} is not the seed's text"
    assert URUNIT_SEED in text


# -- 3. what cannot build, and bad input --------------------------------------------------


def test_registry_from_needs_a_digest_or_a_local_archive(tmp_path):
    work = example("nginx-unikraft-pun", tmp_path / "pun")
    r = urunix("build", "catalog.Containerfile", "-t", "nginx:test", "--backend", "native", cwd=work)
    assert r.returncode == 2, r.stderr
    assert "catalog.Containerfile:2: FROM: a registry image needs a digest" in r.stderr
    assert '(got "unikraft.org/nginx:1.15")' in r.stderr and "--from NAME=PATH" in r.stderr
    assert "Traceback" not in r.stderr and not (work / "result").exists()


@pytest.mark.docker
def test_registry_from_mapped_to_a_local_archive(tmp_path, docker):
    """The documented way in: map the name to a `docker save` archive with
    --from NAME=PATH. As in Docker, the base image's files lie under ours,
    and the labels (not the base) say what urunc boots: the kernel at
    /unikraft/bin/kernel comes from the base image."""
    work = example("nginx-unikraft-pun", tmp_path / "pun")
    base = tmp_path / "base"
    base.mkdir()
    (base / "kernel").write_bytes(b"\x7fELF kernel")
    (base / "Dockerfile").write_text("FROM scratch\nCOPY kernel /unikraft/bin/kernel\n")
    docker_build(docker, base, "urunix-base/nginx:1.15")
    docker.run("save", "-o", str(work / "nginx.tar"), "urunix-base/nginx:1.15")
    spec = load(work / "catalog.Containerfile", from_map={"unikraft.org/nginx:1.15": str(work / "nginx.tar")})
    assert spec.rootfs is not None and spec.rootfs.origin == str(work / "nginx.tar") and spec.rootfs.type == "base"
    assert spec.where(spec.rootfs.field)["line"] == 2
    r = urunix(
        "build",
        "catalog.Containerfile",
        "-t",
        "nginx-unikraft:test",
        "--backend",
        "native",
        "--from",
        "unikraft.org/nginx:1.15=nginx.tar",
        cwd=work,
    )
    assert r.returncode == 0, r.stderr
    ref = docker.load(work / "result")
    labels = docker.inspect(ref)["Config"]["Labels"]
    assert labels["com.urunc.unikernel.binary"] == "/unikraft/bin/kernel"
    assert labels["com.urunc.unikernel.unikernelType"] == "unikraft"
    assert "com.urunc.unikernel.mountRootfs" not in labels  # FROM implies no devmapper
    root = docker.export(ref, tmp_path / "rootfs")
    assert (root / "unikraft" / "bin" / "kernel").read_bytes() == b"\x7fELF kernel"
    docker.run("rmi", ref, "urunix-base/nginx:1.15", check=False)


def test_from_image_without_the_kernel_is_refused_at_build(tmp_path):
    """binary inside a base image can only be checked once the image is read."""
    work = example("nginx-unikraft-pun", tmp_path / "pun")
    from standins import standin_image

    standin_image(work / "empty.tar")
    r = urunix(
        "build",
        "catalog.Containerfile",
        "-t",
        "x:y",
        "--backend",
        "native",
        "--from",
        "unikraft.org/nginx:1.15=empty.tar",
        cwd=work,
    )
    assert r.returncode == 2, r.stderr
    assert "annotations.binary: names a file the image will not contain" in r.stderr
    assert not (work / "result").exists()


def test_multi_stage_seed_fails_with_every_line(tmp_path):
    (tmp_path / "Containerfile").write_text(URUNIT_SEED)
    r = urunix("validate", "Containerfile", "-t", "redis-urunit:test", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    for want in (
        "Containerfile:1: FROM: a registry image needs a digest",
        "Containerfile:2: FROM: a second FROM starts a multi-stage build",
        "Containerfile:3: COPY --from=init: copies from another build stage",
    ):
        assert want in r.stderr, r.stderr


@pytest.mark.parametrize(
    "text,expect",
    [
        ("FROM scratch\nCOPY k /k\nRUN make\n", ["Containerfile:3: RUN: runs a command", "build the artifact beforehand"]),
        (
            "FROM scratch\nCOPY k /k\nCMD redis-server /conf\n",
            ["Containerfile:3: CMD: CMD in shell form", 'CMD ["redis-server", "/conf"]'],
        ),
        (
            "FROM scratch\nCOPY k /k\nLABLE a=b\n",
            ["Containerfile:3: LABLE: is not a Dockerfile instruction", 'did you mean "LABEL"?'],
        ),
        ('FROM scratch\nCOPY k /k\nLABEL a="open\n', ["Containerfile:3: LABEL a:", "matching double-quote"]),
        (
            "FROM scratch\nCOPY k /k\nLABEL com.urunc.unikernel.binary=/k \\\n"
            "  com.urunc.unikernel.unikernelType=unikrafft com.urunc.unikernel.hypervisor=qemu\n",
            ["Containerfile:3: LABEL com.urunc.unikernel.unikernelType", 'did you mean "unikraft"?'],
        ),
        (
            "FROM scratch\nCOPY k /k\nCOPY missing /m\nLABEL com.urunc.unikernel.binary=/k\n",
            ["Containerfile:3: COPY missing: source file does not exist"],
        ),
        (
            "FROM scratch\nCOPY k /k\nLABEL com.urunc.unikernel.binary=/kernel com.urunc.unikernel.unikernelType=unikraft "
            "com.urunc.unikernel.hypervisor=qemu\n",
            ["Containerfile:3: LABEL com.urunc.unikernel.binary: names a file the image will not contain"],
        ),
    ],
)
@pytest.mark.parametrize("command", ["validate", "build"])
def test_bad_input_exit_code_and_line(tmp_path, text, expect, command):
    (tmp_path / "k").write_bytes(b"\x7fELF")
    (tmp_path / "Containerfile").write_text(text)
    r = (
        urunix(command, "Containerfile", "-t", "x:y", "--backend", "native", cwd=tmp_path)
        if command == "build"
        else urunix(command, "Containerfile", "-t", "x:y", cwd=tmp_path)
    )
    assert_refused(r, expect, tmp_path)


def test_spec_format_option(tmp_path):
    (tmp_path / "k").write_bytes(b"\x7fELF")
    (tmp_path / "unikernel.txt").write_text(
        "FROM scratch\nCOPY k /k\nLABEL com.urunc.unikernel.binary=/k com.urunc.unikernel.unikernelType=unikraft "
        'com.urunc.unikernel.hypervisor=qemu\nCMD ["app"]\n'
    )
    r = urunix("validate", "unikernel.txt", "--spec-format", "containerfile", "-t", "x:y", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (
        out["cmd"] == ["app"] and out["annotations"]["cmdline"] == "Unikraft app"
    )  # Unikraft: Cmd holds the arguments (urunc v0.6.0+ write argv0 Unikraft)
