"""What a rootfs image gives (its Entrypoint+Cmd, Env, WorkingDir) is read
before validation (rootfs_image_config.py): `urunix validate` judges it like
any value the user wrote, and a build can no longer be the first to say."""

from __future__ import annotations

import json

import pytest

from cli import urunix
from standins import standin_image
from urunix.helpers import image_writer

# the stand-in application image: Entrypoint /bin/app, Cmd --port 80,
# Env APP_MODE=prod, WorkingDir /data (standins.py); no-cmd.tar has none of it
SPEC = "name: t/x\ntag: y\nkernel: ./kernel\nrootfs: {{type: {rtype}, from: ./{image}}}\nannotations: {{unikernelType: {guest}, hypervisor: {monitor}}}\n{extra}"


def project(tmp_path, rtype="initrd", image="app.tar", guest="linux", monitor="qemu", extra=""):
    standin_image(tmp_path / "app.tar")
    image_writer.write_atomic(
        {
            "format": "docker-archive",
            "repoTags": ["s/no-cmd:latest"],
            "created": "1970-01-01T00:00:01Z",
            "architecture": "amd64",
            "config": {},
            "layers": [{"name": "base", "entries": [{"type": "file", "path": "/bin/app", "data": "x", "mode": 0o755}]}],
        },
        str(tmp_path / "no-cmd.tar"),
    )
    (tmp_path / "kernel").write_bytes(b"\x7fELF kernel")
    (tmp_path / "urunit").write_bytes(b"\x7fELF urunit")
    text = SPEC.format(rtype=rtype, image=image, guest=guest, monitor=monitor, extra=extra)
    (tmp_path / "spec.yaml").write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    "kw, code, said",
    [
        # the image's Env, refused for a rumprun guest on v0.6.0; with a
        # problem of the spec's own, in the same run
        (
            {"rtype": "block", "guest": "rumprun", "monitor": "hvt", "extra": "architecture: sparc\n"},
            2,
            [
                "error: spec.yaml:4: image Env: urunc v0.6.0: does not hand the environment to a rumprun guest; "
                "it is dropped (got ['APP_MODE'])",
                "error: spec.yaml:6: architecture: is not an architecture urunix builds for",
            ],
        ),
        # the image's WorkingDir: a warning, at the rootfs `from`
        (
            {},
            0,
            [
                "warning: spec.yaml:4: WorkingDir: urunc v0.6.0, v0.7.0 and main: does not hand WorkingDir to the guest "
                '(only Linux with urunit gets it, from v0.7.0) (got "/data")'
            ],
        ),
        # no command anywhere: refused, the hint in the spec's own syntax
        (
            {"image": "no-cmd.tar"},
            2,
            [
                "error: spec.yaml: cmd: the rootfs image has no Entrypoint or Cmd, and the spec gives no command",
                'hint: set cmd: ["/urunit", "/usr/bin/app"] (a Linux guest needs an init)',
            ],
        ),
    ],
)
def test_validate_judges_what_the_rootfs_image_gives(tmp_path, kw, code, said):
    work = project(tmp_path, **kw)
    r = urunix("validate", "spec.yaml", cwd=work)
    assert r.returncode == code, r.stderr
    for line in said:
        assert line in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_validate_json_shows_the_final_command_and_env(tmp_path):
    work = project(tmp_path, extra="init: ./urunit\nenv: {APP_MODE: dev, B: c}\n")
    r = urunix("validate", "spec.yaml", "--json", cwd=work)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    # the init, then the image's Entrypoint (kept) and Cmd (replaceable by `docker run` ARGS)
    assert (doc["entrypoint"], doc["cmd"]) == (["/urunit", "/bin/app"], ["--port", "80"])
    assert doc["annotations"]["cmdline"] == "/urunit /bin/app --port 80"
    assert doc["env"] == ["APP_MODE=dev", "B=c"]  # the spec's value wins over the image's
    assert doc["workdir"] == "/data"


def test_an_unreadable_image_config_is_one_of_the_problems(tmp_path):
    work = project(tmp_path, extra="architecture: sparc\n")
    image_writer.write_atomic(
        {
            "format": "docker-archive",
            "repoTags": ["s/bad:latest"],
            "created": "1970-01-01T00:00:01Z",
            "architecture": "amd64",
            "config": {"Env": "A=1"},
            "layers": [],
        },
        str(work / "bad.tar"),
    )
    (work / "spec.yaml").write_text((work / "spec.yaml").read_text().replace("app.tar", "bad.tar"))
    r = urunix("validate", "spec.yaml", cwd=work)
    assert r.returncode == 2, r.stderr
    assert "the image config's Env is not a list of strings" in r.stderr
    assert "architecture: is not an architecture urunix builds for" in r.stderr
