"""Regenerate the crasher corpus: inputs that once crashed urunix (a
traceback instead of exit code 0/1/2) or made it misbehave, kept as
regression cases. test_fuzz.py::test_corpus runs each one through the CLI
with the command and exit code that expect.json names.

    python3 tests/hardening/corpus/make_corpus.py
"""

from __future__ import annotations

import gzip
import io
import json
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from hostile import docker_archive, layer, oci_archive  # noqa: E402

RUMP = "annotations: {unikernelType: rumprun, hypervisor: hvt, binary: /k}\nfiles: {./k: /k}\nname: a/b\n"
LINUX = "name: a/b\nannotations: {unikernelType: linux, hypervisor: qemu}\nkernel: ./k\ncmd: [/bin/app]\n"
expect: dict[str, dict] = {}


def text(name: str, body: str | bytes, cmd: list[str], code: int, why: str) -> None:
    p = HERE / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(body if isinstance(body, bytes) else body.encode("utf-8"))
    expect[name] = {"cmd": cmd, "exit": code, "why": why}


def raw_tar(path: Path, files: dict[str, bytes]) -> None:
    with tarfile.open(path, "w") as t:
        for n, b in files.items():
            ti = tarfile.TarInfo(n)
            ti.size = len(b)
            t.addfile(ti, io.BytesIO(b))


def main() -> None:
    (HERE / "k").write_bytes(b"\x7fELF k")
    # loaders
    text(
        "deep-flow.yaml",
        "name: " + "[" * 5000 + "]" * 5000 + "\n",
        ["validate"],
        2,
        "RecursionError in pyyaml's composer (yamlspec.py now bounds the depth while composing)",
    )
    text("deep-map.yaml", "name: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n", ["validate"], 2, "same, mappings")
    text(
        "deep-list.nix",
        "{ name = " + "[" * 1200 + "]" * 1200 + "; }\n",
        ["validate"],
        2,
        "RecursionError in json.loads of Nix's --json output (argsnix.py)",
    )
    text(
        "deep-set.nix",
        "{ name = " + "{ a = " * 5000 + "1;" + " };" * 4999 + " }; }\n",
        ["validate"],
        2,
        "nested sets: refused by both readers",
    )
    text(
        "nul-label.yaml",
        RUMP + 'labels: {x: "a\\0b"}\n',
        ["generate", "-o", "{tmp}/gen"],
        2,
        "ValueError from nixgen.nix_string (validate.py now refuses NUL everywhere)",
    )
    text(
        "surrogate-label.yaml",
        RUMP + 'labels: {x: "a\\ud800b"}\n',
        ["build", "--backend", "native", "-o", "{tmp}/out"],
        2,
        "UnicodeEncodeError writing the config (validate.py now refuses lone surrogates)",
    )
    text("surrogate-env.yaml", RUMP + 'env: {"K\\udc80": "v"}\n', ["generate", "-o", "{tmp}/gen"], 2, "same, in a key")
    text(
        "long-name.yaml",
        RUMP.replace("files: {./k: /k}", "files: {./k: /k, ./k2: /" + "n" * 300 + "}"),
        ["validate"],
        2,
        "a 300-byte name was accepted and failed later in docker load / mke2fs",
    )
    (HERE / "k2").write_bytes(b"k2")
    # image archives
    arch = HERE / "archives"
    arch.mkdir(exist_ok=True)
    ok_layer = layer([("bin/app", "file", b"app"), ("kernel", "file", b"K")])
    raw_tar(
        arch / "null-config.tar",
        {"config.json": b"null", "manifest.json": json.dumps([{"Config": "config.json", "Layers": []}]).encode()},
    )
    expect["archives/null-config.tar"] = {"cmd": ["inspect"], "exit": 2, "why": "AttributeError in inspect.py"}
    raw_tar(arch / "int-digest.tar", {"index.json": json.dumps({"manifests": [{"digest": 1}]}).encode()})
    expect["archives/int-digest.tar"] = {"cmd": ["inspect"], "exit": 2, "why": "AttributeError in imagefile._blob"}
    raw_tar(arch / "list-manifest.tar", {"index.json": json.dumps({"manifests": [[]]}).encode()})
    expect["archives/list-manifest.tar"] = {"cmd": ["inspect"], "exit": 2, "why": "AttributeError: list.get"}
    raw_tar(arch / "deep-index.tar", {"index.json": b"[" * 100000 + b"]" * 100000})
    expect["archives/deep-index.tar"] = {"cmd": ["inspect"], "exit": 2, "why": "RecursionError in json.loads"}
    raw_tar(
        arch / "labels-list.tar",
        {
            "config.json": json.dumps({"config": {"Labels": ["x"]}}).encode(),
            "manifest.json": json.dumps([{"Config": "config.json", "Layers": []}]).encode(),
        },
    )
    expect["archives/labels-list.tar"] = {"cmd": ["inspect"], "exit": 2, "why": "AttributeError: list.items"}
    docker_archive(
        arch / "markup-labels.tar",
        [ok_layer],
        {"Labels": {"com.urunc.unikernel.[/]": "[/]", "com.urunc.unikernel.[bold": "[red]x"}},
    )
    expect["archives/markup-labels.tar"] = {
        "cmd": ["inspect"],
        "exit": 1,
        "why": "rich MarkupError rendering a label key (exit 1: labels and urunc.json disagree)",
    }
    oci_archive(arch / "dotdot-digest.tar", [ok_layer])
    (arch / "dotdot-digest.tar").read_bytes()  # readable
    with tarfile.open(arch / "dotdot-digest.tar") as t:
        members = {m.name: t.extractfile(m).read() for m in t.getmembers()}
    idx = json.loads(members["index.json"])
    idx["manifests"][0]["digest"] = "../../../../etc:passwd"
    members["index.json"] = json.dumps(idx).encode()
    raw_tar(arch / "dotdot-digest.tar", members)
    expect["archives/dotdot-digest.tar"] = {
        "cmd": ["inspect"],
        "exit": 2,
        "why": "a digest's algorithm part was used as a path (blobs/../../etc/passwd)",
    }
    docker_archive(arch / "_tmp.tar", [layer([("bin/app", "file", b"app"), ("big", "file", b"x" * 100000)])[:-60000]])
    (arch / "truncated-layer.tar").write_bytes((arch / "_tmp.tar").read_bytes())
    (arch / "_tmp.tar").unlink()
    expect["archives/truncated-layer.tar"] = {
        "cmd": ["rootfs-initrd"],
        "exit": 2,
        "why": "a member's data past the layer's end was only noticed while writing",
    }
    docker_archive(arch / "env-int.tar", [ok_layer], {"Cmd": ["/bin/app"], "Env": [1]})
    expect["archives/env-int.tar"] = {"cmd": ["rootfs-initrd"], "exit": 2, "why": "AttributeError on Env entries"}
    docker_archive(arch / "cmd-string.tar", [ok_layer], {"Cmd": "/bin/app"})
    expect["archives/cmd-string.tar"] = {"cmd": ["rootfs-initrd"], "exit": 2, "why": "a string Cmd became a list of letters"}
    bad_gz = gzip.compress(ok_layer)[:-20] + b"\0" * 20
    docker_archive(arch / "bad-gzip.tar", [bad_gz])
    expect["archives/bad-gzip.tar"] = {"cmd": ["rootfs-initrd"], "exit": 2, "why": "zlib.error escaped as a crash"}
    docker_archive(
        arch / "dir-symlink-block.tar",
        [layer([("usr/lib/x", "file", b"x"), ("lib", "symlink", "usr/lib"), ("bin/app", "file", b"app")])],
    )
    expect["archives/dir-symlink-block.tar"] = {
        "cmd": ["rootfs-block"],
        "exit": 0,
        "why": "ext.py _rmtree: chmod(follow_symlinks=False) raised NotImplementedError "
        "on a staged symlink to a directory (every Debian-like rootfs)",
    }
    (HERE / "expect.json").write_text(json.dumps(expect, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
