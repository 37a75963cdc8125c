"""1. No escape from the image root or the build directory.

Hostile targets, hostile source archives (docker-archive, oci-archive and OCI
layout, written with Python's tarfile) used as rootfs.from and kernel.from,
device nodes and symlinks in host trees. Every case checks that nothing was
written outside the output (a canary directory, the work directory, the
temporary directory, see conftest.Guard), not only that an error came."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from hsupport import run_cli
from hostile import FORMS, cpio_names, layer, make_image, read_archive


def spec_yaml(body: str) -> str:
    return "name: hostile/escape\n" + body


LINUX = 'annotations: {unikernelType: linux, hypervisor: qemu}\nkernel: ./vmlinux\ncmd: ["/bin/app"]\n'


def build(guard, spec: str, out: str = "out", fmt: str = "docker-archive"):
    (guard.work / "spec.yaml").write_text(spec)
    (guard.work / "vmlinux").write_bytes(b"\x7fELF kernel")
    guard.arm()
    r = run_cli("build", "--backend", "native", "--format", fmt, "-o", str(guard.work / out), str(guard.work / "spec.yaml"))
    assert "Traceback" not in r.stderr
    return r


# ------------------------------------------------------------------ archives


def ARCHIVES(canary: str) -> dict[str, tuple[list[tuple], str]]:
    """name -> (layer entries, "refused" | "neutralised")."""
    base = [("bin/app", "file", b"#!/bin/sh\n"), ("kernel", "file", b"KERNEL")]
    return {
        "dotdot-member": (base + [("../../../../" + canary.lstrip("/") + "/evil", "file", b"x")], "refused"),
        "dotdot-inside": (base + [("a/../../evil", "file", b"x")], "refused"),
        "dotdot-dir": (base + [("..", "dir")], "refused"),
        "hardlink-dotdot": (base + [("h", "hardlink", "../../../" + canary.lstrip("/") + "/keep")], "refused"),
        "hardlink-outside": (base + [("h", "hardlink", canary + "/keep")], "refused"),
        "hardlink-to-dir": (base + [("d", "dir"), ("h", "hardlink", "d")], "refused"),
        "symlink-loop-write": (base + [("a", "symlink", "b"), ("b", "symlink", "a"), ("a/x", "file", b"x")], "refused"),
        "absolute-member": (base + [("/etc/evil", "file", b"abs")], "neutralised"),
        "plant-abs-symlink-then-write": (base + [("evil", "symlink", canary), ("evil/pwned", "file", b"through")], "neutralised"),
        "plant-rel-symlink-then-write": (
            base + [("up", "symlink", "../../../../../../../.."), ("up" + canary + "/pwned", "file", b"up")],
            "neutralised",
        ),
        "symlink-chain-then-write": (
            base + [("s1", "symlink", "s2"), ("s2", "symlink", canary), ("s1/deep/pwned", "file", b"chain")],
            "neutralised",
        ),
        "hardlink-to-outward-symlink": (base + [("s", "symlink", canary + "/keep"), ("h", "hardlink", "s")], "neutralised"),
        "whiteout-dotdot": (base + [("a/.wh...", "file"), (".wh..wh..opq", "file")], "neutralised"),
        "device-and-fifo": (
            base + [("dev/sda", "block", (8, 0)), ("dev/null", "char", (1, 3)), ("dev/p", "fifo")],
            "neutralised",
        ),
    }


USES = {
    "rootfs-initrd": "rootfs: {type: initrd, from: FROM}\n" + LINUX,
    "rootfs-block": "rootfs: {type: block, from: FROM}\n" + LINUX,
    "rootfs-raw": "rootfs: {type: raw, from: FROM}\n" + LINUX,
    "kernel-from": "annotations: {unikernelType: unikraft, hypervisor: qemu}\nkernel: {from: FROM, path: /kernel}\n",
}

CASES = [
    (a, f, u)
    for a in ARCHIVES("/c")
    for f in FORMS
    for u in USES
    # the full matrix for docker-archive; the other forms with two uses
    if f == "docker-archive" or u in ("rootfs-initrd", "kernel-from")
]


def _inside(name: str) -> None:
    parts = name.split("/")
    assert not name.startswith("/") and ".." not in parts, f"entry {name!r} is not inside the root"


@pytest.mark.parametrize("archive,form,use", CASES)
def test_hostile_archive(guard, archive, form, use):
    canary = str(guard.canary)
    entries, expect = ARCHIVES(canary)[archive]
    try:
        data = layer(entries)
    except ValueError as e:  # tarfile refused to write it: nothing to test
        pytest.skip(f"tarfile cannot write this archive: {e}")
    src = make_image(form, guard.work, [data])
    r = build(guard, spec_yaml(USES[use].replace("FROM", src)))
    if expect == "refused":
        assert r.returncode == 2, r.stderr
        assert "error:" in r.stderr and ("'..'" in r.stderr or "hard link" in r.stderr or "symlinks" in r.stderr), r.stderr
        guard.check()
        return
    assert r.returncode == 0, r.stderr
    guard.check(allowed={"out"})
    config, layers, files = read_archive(guard.work / "out")
    for name in layers:
        _inside(name)
    if use == "kernel-from":
        assert files["kernel"] == b"KERNEL"
        return
    if use == "rootfs-raw":
        tree = {n: (m.type, m.linkname) for n, m in layers.items()}
    elif use == "rootfs-initrd":
        tree = {n: (m[0], m[1]) for n, m in cpio_names(files[".boot/rootfs"]).items()}
    else:
        return  # the block image: its safety is the host's (checked above)
    for name in tree:
        _inside(name)
    inner = canary.lstrip("/")
    if archive == "absolute-member":
        assert "etc/evil" in tree
    elif archive.startswith("plant-abs") or archive.startswith("plant-rel"):
        # the write went through the symlink INSIDE the image: to the
        # canary's path in the image's tree, never on the host
        assert f"{inner}/pwned" in tree, sorted(tree)
    elif archive == "symlink-chain-then-write":
        assert f"{inner}/deep/pwned" in tree, sorted(tree)


def test_hostile_layout_digest_cannot_read_outside(guard):
    """An OCI layout whose manifest names a blob by a digest that is a path
    ("sha256:../../x", or "../../etc:passwd") must not read that path."""
    import hashlib
    import json

    data = layer([("kernel", "file", b"KERNEL")])
    make_image("oci-layout", guard.work, [data])
    lay = guard.work / "layout"
    index = json.loads((lay / "index.json").read_text())
    mdigest = index["manifests"][0]["digest"]
    manifest = json.loads((lay / "blobs/sha256" / mdigest[7:]).read_text())
    (guard.canary / "secret").write_bytes(data)  # a valid layer, outside the layout
    rel = os.path.relpath(guard.canary, lay / "blobs")
    results = []
    for bad in (f"{rel}:secret", "sha256:../../../canary/secret", "sha256:" + "0" * 63 + "/"):
        manifest["layers"][0]["digest"] = bad
        mb = json.dumps(manifest).encode()
        d = hashlib.sha256(mb).hexdigest()
        (lay / "blobs/sha256" / d).write_bytes(mb)
        index["manifests"][0]["digest"] = "sha256:" + d
        (lay / "index.json").write_text(json.dumps(index))
        r = build(guard, spec_yaml(USES["kernel-from"].replace("FROM", "oci:./layout")))
        results.append((bad, r.returncode, r.stderr))
        assert r.returncode == 2 and "bad digest" in r.stderr, r.stderr
        guard.check()


def test_layout_blob_symlink_out_of_the_layout_is_refused(guard):
    data = layer([("kernel", "file", b"KERNEL")])
    make_image("oci-layout", guard.work, [data])
    import hashlib

    blob = guard.work / "layout/blobs/sha256" / hashlib.sha256(data).hexdigest()
    (guard.canary / "layer").write_bytes(data)
    blob.unlink()
    blob.symlink_to(guard.canary / "layer")
    r = build(guard, spec_yaml(USES["kernel-from"].replace("FROM", "oci:./layout")))
    assert r.returncode == 2 and "leads outside the layout" in r.stderr, r.stderr
    guard.check()


# ------------------------------------------------------------------ targets

LONG = "/" + "n" * 256
TARGETS_REFUSED = [
    "../../etc/x",
    "/a/../../b",
    "",
    ".",
    "/",
    "/.",
    "//",
    "/a/..",
    "relative/x",
    "/x\0y",
    LONG,
    "/a" * 2100,
    "/urunc.json",
]


def _files_spec(target: str) -> str:
    from hostile import yaml_quote

    return spec_yaml(
        f"annotations: {{unikernelType: rumprun, hypervisor: hvt, binary: /k}}\nfiles:\n  ./k: /k\n  ./f: {yaml_quote(target)}\n"
    )


@pytest.mark.parametrize("target", TARGETS_REFUSED, ids=lambda t: repr(t)[:30])
def test_hostile_file_targets_are_refused(guard, target):
    (guard.work / "k").write_bytes(b"k")
    (guard.work / "f").write_bytes(b"f")
    r = build(guard, _files_spec(target))
    assert r.returncode == 2, r.stderr
    assert 'files."./f"' in r.stderr, r.stderr
    guard.check()


@pytest.mark.parametrize(
    "field,value",
    [
        ("rootfs.include", "../../etc/x"),
        ("rootfs.include", "/a/../../b"),
        ("rootfs.include", "/x\0y"),
        ("rootfs.path", "/../x"),
        ("rootfs.path", "/.boot/../../x"),
        ("rootfs.path", "."),
        ("kernel.path", "/a/../../k"),
    ],
)
def test_hostile_rootfs_and_kernel_paths_are_refused(guard, field, value):
    from hostile import yaml_quote

    (guard.work / "f").write_bytes(b"f")
    q = yaml_quote(value)
    if field == "rootfs.include":
        body = f"rootfs: {{type: initrd, include: {{./f: {q}}}}}\n" + LINUX
    elif field == "rootfs.path":
        body = f"rootfs: {{type: initrd, include: {{./f: /f}}, path: {q}}}\n" + LINUX
    else:
        make_image("docker-archive", guard.work, [layer([("kernel", "file", b"K")])])
        body = f"annotations: {{unikernelType: unikraft, hypervisor: qemu}}\nkernel: {{from: ./img.tar, path: {q}}}\n"
    r = build(guard, spec_yaml(body))
    assert r.returncode == 2, r.stderr
    guard.check()


def test_dot_segments_are_cleaned_not_escaping(guard):
    (guard.work / "k").write_bytes(b"k")
    (guard.work / "f").write_bytes(b"F")
    r = build(guard, _files_spec("/a/./b//c"))
    assert r.returncode == 0, r.stderr
    guard.check(allowed={"out"})
    _, layers, files = read_archive(guard.work / "out")
    assert files["a/b/c"] == b"F"


@pytest.mark.parametrize("origin", ["dir", "image"])
def test_target_behind_a_symlink_does_not_escape(guard, origin):
    """rootfs.include /lib/pwned where /lib is a symlink (to the canary's
    absolute path, or out with ..) in the rootfs tree: refused or written
    inside the image, never through the symlink on the host."""
    (guard.work / "f").write_bytes(b"PWN")
    if origin == "dir":
        tree = guard.work / "tree"
        tree.mkdir()
        (tree / "lib").symlink_to(guard.canary)
        (tree / "up").symlink_to("../../../../..")
        src = "./tree"
    else:
        src = make_image(
            "docker-archive", guard.work, [layer([("lib", "symlink", str(guard.canary)), ("up", "symlink", "../../../../..")])]
        )
    for target in ("/lib/pwned", "/up" + str(guard.canary) + "/pwned"):
        for t in ("initrd", "raw"):
            r = build(guard, spec_yaml(f"rootfs: {{type: {t}, from: {src}, include: {{./f: {target}}}}}\n" + LINUX))
            assert r.returncode in (0, 1, 2), r.stderr
            if r.returncode:
                assert "error:" in r.stderr and "symlink" in r.stderr, r.stderr
                guard.check()
            else:
                guard.check(allowed={"out"})
                _, layers, files = read_archive(guard.work / "out")
                for name in layers:
                    _inside(name)
                (guard.work / "out").unlink()


# ------------------------------------------------------------------ host trees


def _special_tree(root: Path, kind: str) -> None:
    root.mkdir()
    (root / "ok").write_text("ok")
    p = root / "special"
    if kind == "char":
        os.mknod(p, stat.S_IFCHR | 0o600, os.makedev(1, 3))
    elif kind == "block":
        os.mknod(p, stat.S_IFBLK | 0o600, os.makedev(7, 0))
    elif kind == "fifo":
        os.mkfifo(p)
    else:
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(p))
        s.close()


@pytest.mark.parametrize("kind", ["char", "block", "fifo", "socket"])
@pytest.mark.parametrize("use", ["files", "rootfs-initrd", "rootfs-block", "rootfs-raw", "include"])
def test_special_files_in_host_trees_are_refused(guard, kind, use):
    if kind in ("char", "block") and os.geteuid() != 0:
        pytest.skip("mknod needs root")
    _special_tree(guard.work / "tree", kind)
    if use == "files":
        (guard.work / "k").write_bytes(b"k")
        body = "annotations: {unikernelType: rumprun, hypervisor: hvt, binary: /k}\nfiles: {./k: /k, ./tree: /data}\n"
    elif use == "include":
        body = "rootfs: {type: initrd, include: {./tree: /data}}\n" + LINUX
    else:
        body = f"rootfs: {{type: {use.split('-')[1]}, from: ./tree}}\n" + LINUX
    r = build(guard, spec_yaml(body))
    assert r.returncode == 2, r.stderr  # the spec's fault: named, with a hint
    what = {"char": "a character device", "block": "a block device", "fifo": "a fifo", "socket": "a socket"}[kind]
    assert f"holds {what}, which an image cannot take from a host directory" in r.stderr, r.stderr
    field = {"files": 'files."./tree"', "include": "rootfs.include"}.get(use, "rootfs.from")
    assert field in r.stderr and "hint: remove it" in r.stderr, r.stderr
    guard.check()


def test_special_file_as_a_direct_source_is_refused(guard):
    (guard.work / "k").write_bytes(b"k")
    os.mkfifo(guard.work / "fifo")
    r = build(
        guard,
        spec_yaml(
            "annotations: {unikernelType: rumprun, hypervisor: hvt, binary: /k}\n"
            "files: {./k: /k, ./fifo: /fifo, /dev/null: /null}\n"
        ),
    )
    assert r.returncode == 2 and "neither a regular file nor a directory" in r.stderr, r.stderr
    guard.check()


@pytest.mark.parametrize("use", ["files", "rootfs-initrd", "rootfs-raw"])
def test_host_symlinks_are_stored_as_symlinks(guard, use):
    tree = guard.work / "tree"
    tree.mkdir()
    (tree / "abs").symlink_to(guard.canary / "keep")
    (tree / "dirlink").symlink_to(guard.canary)
    (tree / "rel").symlink_to("../../../outside")
    (tree / "dangling").symlink_to("/nonexistent/x")
    (tree / "plain").write_text("plain")
    if use == "files":
        (guard.work / "k").write_bytes(b"k")
        body = "annotations: {unikernelType: rumprun, hypervisor: hvt, binary: /k}\nfiles: {./k: /k, ./tree: /data}\n"
        prefix = "data/"
    else:
        body = f"rootfs: {{type: {use.split('-')[1]}, from: ./tree}}\n" + LINUX
        prefix = ""
    r = build(guard, spec_yaml(body))
    assert r.returncode == 0, r.stderr
    guard.check(allowed={"out"})
    _, layers, files = read_archive(guard.work / "out")
    want = {
        "abs": str(guard.canary / "keep"),
        "dirlink": str(guard.canary),
        "rel": "../../../outside",
        "dangling": "/nonexistent/x",
    }
    if use == "rootfs-initrd":
        cp = cpio_names(files[".boot/rootfs"])
        for name, target in want.items():
            mode, data = cp[name]
            assert stat.S_ISLNK(mode) and data.decode() == target
        assert not any(n.startswith("dirlink/") for n in cp), "a host symlink was followed"
        assert b"canary\n" not in files[".boot/rootfs"]
    else:
        for name, target in want.items():
            m = layers[prefix + name]
            assert m.issym() and m.linkname == target, (name, m.type, m.linkname)
        assert not any(n.startswith(prefix + "dirlink/") for n in layers), "a host symlink was followed"
