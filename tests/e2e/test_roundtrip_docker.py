"""A cmdline full of characters that break other tools (bunix's shell echo,
bima's label parsing) comes back byte for byte from the labels and from
urunc.json, whichever format it was written in."""

from __future__ import annotations

import base64
import json

import pytest

from cli import urunix
from standins import standin_bytes

CMDLINE = "app \"dq\" 'sq' $HOME ${x} `id` \\ back\\slash\nnew line  two  spaces é ü 日本"

ARGS_NIX = r"""{
  name = "urunix-test/roundtrip";
  tag = "nix";
  urunc = [ ];   # no urunc release reads such a cmdline as meant (refused otherwise); only its transport is tested
  files = { "./k.hvt" = "/unikernel/k.hvt"; };
  annotations = {
    unikernelType = "rumprun";
    hypervisor = "hvt";
    binary = "/unikernel/k.hvt";
    cmdline = "app \"dq\" 'sq' $HOME \${x} `id` \\ back\\slash\nnew line  two  spaces é ü 日本";
  };
}
"""

YAML = r"""name: urunix-test/roundtrip
tag: yaml
urunc: []
files:
  ./k.hvt: /unikernel/k.hvt
annotations:
  unikernelType: rumprun
  hypervisor: hvt
  binary: /unikernel/k.hvt
  cmdline: "app \"dq\" 'sq' $HOME ${x} `id` \\ back\\slash\nnew line  two  spaces é ü 日本"
"""


@pytest.mark.docker
@pytest.mark.parametrize(
    "fmt,text,env",
    [
        ("args.nix", ARGS_NIX, {}),
        ("args.nix", ARGS_NIX, {"URUNIX_NO_NIX": "1"}),  # the built-in reader
        ("spec.yaml", YAML, {}),
    ],
)
def test_cmdline_round_trips_byte_for_byte(tmp_path, docker, fmt, text, env):
    (tmp_path / fmt).write_text(text, encoding="utf-8")
    (tmp_path / "k.hvt").write_bytes(standin_bytes("k"))
    r = urunix("build", fmt, "--backend", "native", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    ref = docker.load(tmp_path / "result")
    cfg = docker.inspect(ref)["Config"]
    assert cfg["Labels"]["com.urunc.unikernel.cmdline"] == CMDLINE
    assert cfg["Cmd"] == CMDLINE.split()
    root = docker.export(ref, tmp_path / "rootfs")
    doc = json.loads((root / "urunc.json").read_bytes())
    assert base64.b64decode(doc["com.urunc.unikernel.cmdline"]).decode("utf-8") == CMDLINE
    docker.run("rmi", ref)
