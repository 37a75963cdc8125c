"""Every example (the seed documents' args.nix, bunnyfiles, and YAML) builds
natively, loads into a real Docker Engine, and carries exactly what urunc
reads: labels, Cmd, architecture, the files byte for byte, and a urunc.json
that decodes back to the annotations."""

from __future__ import annotations

import base64
import json
import subprocess

import pytest

from cli import urunix
from standins import EXAMPLES, example
from urunix.loaders import load
from urunix.validate import join_args, validate

SPECS = sorted(
    (d.name, f.name)
    for d in EXAMPLES.iterdir()
    if d.is_dir()
    for f in d.iterdir()
    if f.name in ("args.nix", "bunnyfile", "spec.yaml")
)
NOT_YET: set = set()


def tag_for(name: str, spec: str) -> list[str]:
    return ["-t", f"urunix-test/{name}:{spec.replace('.', '-')}"] if spec == "bunnyfile" else []


@pytest.mark.docker
@pytest.mark.parametrize("name,spec", SPECS)
def test_example_builds_and_loads(name, spec, tmp_path, docker):
    work = example(name, tmp_path / name)
    r = urunix("build", spec, "-o", "result", "--backend", "native", *tag_for(name, spec), cwd=work)
    if (name, spec) in NOT_YET:
        assert r.returncode == 2, r.stderr
        assert "not supported yet" in r.stderr
        return
    assert r.returncode == 0, r.stderr

    s = load(work / spec)
    if spec == "bunnyfile":
        s.name, s.tag = f"urunix-test/{name}", "bunnyfile"
    image, _ = validate(s)
    if validate(s, read_images="none")[0].argv_from_image:
        # no command in the spec: the init, then the rootfs image's own
        # Entrypoint + Cmd (the stand-in image's, see standins.py); its Cmd
        # stays Cmd, so `docker run IMAGE ARGS` replaces only the arguments
        head = (image.init.target,) if image.init else ()
        assert (image.entrypoint, image.cmd) == ((*head, "/bin/app"), ("--port", "80"))
        assert image.annotations["cmdline"] == join_args([*head, "/bin/app", "--port", "80"], "linux")
    ref = docker.load(work / "result")
    assert ref == f"{image.name}:{image.tag}"

    cfg = docker.inspect(ref)
    want_labels = {f"com.urunc.unikernel.{k}": v for k, v in image.annotations.items()}
    assert cfg["Config"]["Labels"] == want_labels
    assert cfg["Config"]["Cmd"] == list(image.cmd)
    assert cfg["Config"]["Entrypoint"] == (None if image.entrypoint is None else list(image.entrypoint))
    assert cfg["Architecture"] == image.architecture
    assert cfg["Os"] == "linux"
    assert cfg["Created"].startswith("1970-01-01T00:00:01")
    if image.rootfs is not None and image.rootfs.origin.kind == "image":
        assert "APP_MODE=prod" in cfg["Config"]["Env"]  # the rootfs image's Env is kept

    root = docker.export(ref, tmp_path / "rootfs")
    for f in image.files:
        assert (root / f.target.lstrip("/")).read_bytes() == f.path.read_bytes(), f.target
    if image.rootfs is not None and image.rootfs.type == "initrd":
        # The initrd urunix built holds the includes, byte for byte (read by GNU cpio).
        unpacked = tmp_path / "initrd"
        unpacked.mkdir()
        with open(root / image.rootfs.target.lstrip("/"), "rb") as f:
            subprocess.run(["cpio", "-idm", "--quiet"], stdin=f, cwd=unpacked, check=True)
        for f in image.rootfs.include:
            assert (unpacked / f.target.lstrip("/")).read_bytes() == f.path.read_bytes(), f.target
    doc = json.loads((root / "urunc.json").read_text())
    assert {k: base64.b64decode(v, validate=True).decode() for k, v in doc.items()} == want_labels
    for v in doc.values():
        assert base64.standard_b64encode(base64.b64decode(v)).decode() == v  # padded, standard alphabet
    docker.run("rmi", ref)


@pytest.mark.docker
@pytest.mark.parametrize("command", ["cmd = [ ];", "entrypoint = [ ];"])
def test_an_empty_command_still_makes_a_container(command, tmp_path, docker):
    """`cmd = [];` (no arguments) is written as one empty argument: the
    engine refuses to create a container of an image with no command."""
    work = example("hello-rumprun", tmp_path / "hello")
    spec = work / "args.nix"
    text = spec.read_text().replace('    cmdline = "hello";\n', "")
    spec.write_text(text.replace('  tag = "latest";', f'  tag = "latest";\n  {command}'))
    r = urunix("build", "args.nix", "-o", "result", "--backend", "native", cwd=work)
    assert r.returncode == 0, r.stderr
    ref = docker.load(work / "result")
    assert docker.inspect(ref)["Config"]["Cmd"] == [""]
    cid = docker.run("create", ref).stdout.decode().strip()
    docker.run("rm", cid)
