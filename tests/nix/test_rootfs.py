"""Rootfs, kernel and init on the Nix side: the same rules as validate.py
(the Nix normalize and the Python validator give the same annotations and
argv), the errors (the validator's, in the metadata derivation), what
reaches dockerTools, and real nix-build
runs against tests/nix/testpkgs.nix compared with the native builder's
output -- for the cpio the very same bytes."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import nixhelp
import pytest
from nixhelp import (
    HERE,
    NIX_OPTS,
    assert_same_content,
    bimanix_checkout,
    eval_json,
    host_python,
    image_content,
    need_nix,
    nix_build,
    read_image,
    run,
)
from urunix import nixgen
from urunix.helpers import image_writer
from urunix.loaders import load
from urunix.validate import validate

pytestmark = pytest.mark.nix

RECORD = f"import {HERE / 'recordpkgs.nix'} {{ }}"


@pytest.fixture(autouse=True)
def _nix():
    need_nix()


# -- fixtures: a source tree, image archives written by urunix's own writer --


def make_tree(d: Path) -> None:
    """Files the specs below name: a kernel, an init, a conf dir, a rootfs
    dir (with a symlink, an executable, an empty file, a name with a space,
    non-ASCII), and two image archives (docker-archive, as `docker save`)."""
    (d / "conf").mkdir(parents=True)
    (d / "conf" / "redis.conf").write_text("port 6379\n")
    (d / "conf" / "empty").write_bytes(b"")
    (d / "kernel").write_bytes(b"\x7fELF kernel" + bytes(range(256)))
    (d / "kernel").chmod(0o755)
    (d / "urunit").write_text('#!/bin/sh\nexec "$@"\n')
    (d / "urunit").chmod(0o755)
    root = d / "rootdir"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "app").write_text("#!/bin/sh\necho app\n")
    (root / "bin" / "app").chmod(0o755)
    (root / "bin" / "sh").symlink_to("app")
    (root / "etc").mkdir()
    (root / "etc" / "a file with space").write_text("space\n")
    (root / "etc" / "caf\u00e9").write_text("\u00e9\n")
    (root / "var" / "empty").mkdir(parents=True)
    write_image(
        d / "app.tar",
        "t/app:1",
        root,
        {"Cmd": ["/bin/app", "arg1", "two words"], "Env": ["URUNIX_TEST=hello"], "WorkingDir": "/srv"},
    )
    kroot = d / "kroot"
    kroot.mkdir()
    shutil.copy(d / "kernel", kroot / "kernel")
    write_image(d / "kernel.tar", "t/kernel:1", kroot, {"Cmd": ["none"]})


def write_image(out: Path, tag: str, tree: Path, config: dict) -> None:
    plan = {
        "format": "docker-archive",
        "repoTags": [tag],
        "created": "1970-01-01T00:00:01Z",
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "layers": [{"name": "l", "entries": [{"type": "tree", "path": "", "source": str(tree)}]}],
    }
    image_writer.write(plan, str(out))


@pytest.fixture(scope="module")
def srcdir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("src")
    make_tree(d)
    return d


def spec_dir(tmp_path: Path, srcdir: Path, text: str) -> Path:
    """A bimanix-style checkout with args.nix = text and the source tree."""
    d = bimanix_checkout(tmp_path / "w")
    for p in srcdir.iterdir():
        dest = d / p.name
        if p.is_dir():
            shutil.copytree(p, dest, symlinks=True)
        else:
            shutil.copy2(p, dest)
    (d / "args.nix").write_text(text)
    return d


# -- the same rules as validate.py -------------------------------------------

SPECS = {
    "unikraft-initrd": """{
      name = "t/ukr"; files = { "./kernel" = "/unikernel/kernel"; };
      annotations = { unikernelType = "unikraft"; hypervisor = "qemu"; binary = "/unikernel/kernel";
                      cmdline = "redis-server /conf/redis.conf"; };
      rootfs = { include = { "./conf" = "/conf"; }; };
    }""",
    "unikraft-initrd-list-include": """{
      name = "t/ukr2"; kernel = "./kernel";
      annotations = { unikernelType = "unikraft"; hypervisor = "firecracker"; };
      rootfs = { type = "initrd"; path = "/data/initrd"; include = [ "conf:/conf" "./urunit:/sbin/init" ]; };
    }""",
    "rumprun-block": """{
      name = "t/rr"; files = { "./kernel" = "/unikernel/redis.hvt"; };
      annotations = { unikernelType = "rumprun"; hypervisor = "hvt"; binary = "/unikernel/redis.hvt";
                      cmdline = "redis-server /data/conf/redis.conf"; };
      rootfs = { type = "block"; from = "./rootdir"; include = { "./conf" = "/conf"; }; };
    }""",
    "linux-block-ext4": """{
      name = "t/lb"; kernel = { from = "local"; path = "./kernel"; };
      init = "./urunit";
      annotations = { unikernelType = "linux"; hypervisor = "firecracker"; };
      rootfs = { type = "block"; fsType = "ext4"; size = "16M"; from = "./rootdir"; };
      cmd = [ "/bin/app" "two words" ];
    }""",
    "linux-initrd-image": """{
      name = "t/li"; kernel = { from = "./kernel.tar"; path = "/kernel"; };
      init = { from = "./urunit"; path = "/urunit"; };
      annotations = { unikernelType = "linux"; hypervisor = "qemu"; };
      rootfs = { type = "initrd"; from = "./app.tar"; compression = "gzip"; };
      cmd = [ "/bin/app" "arg1" ];
    }""",
    "linux-raw-dir": """{
      name = "t/lr"; kernel = "./kernel"; init = { from = "./urunit"; path = "/sbin/urunit"; };
      annotations = { unikernelType = "linux"; hypervisor = "qemu"; };
      rootfs = { type = "raw"; from = "./rootdir"; };
      entrypoint = [ "/bin/app" ];
    }""",
    "linux-init-only": """{
      name = "t/lo"; kernel = "./kernel"; init = "./urunit";
      annotations = { unikernelType = "linux"; hypervisor = "qemu"; mountRootfs = "true"; };
      rootfs = { type = "raw"; };
      cmd = [ ];
      entrypoint = [ ];
    }""",
    "linux-cmd-and-cmdline-with-init": """{
      name = "t/lc"; kernel = "./kernel"; init = "./urunit";
      annotations = { unikernelType = "linux"; hypervisor = "qemu"; cmdline = "/bin/app a"; };
      rootfs = { type = "initrd"; from = "./rootdir"; };
      cmd = [ "/bin/app" "a" ];
    }""",
    "unikraft-cmd-args-only": """{
      name = "t/uka"; files = { "./kernel" = "/unikernel/kernel"; };
      annotations = { unikernelType = "unikraft"; hypervisor = "qemu"; binary = "/unikernel/kernel"; };
      rootfs = { include = { "./conf" = "/conf"; }; };
      cmd = [ "/conf/redis.conf" ];
    }""",
    "unikraft-elfloader-one-word-v050": """{
      name = "t/uke"; files = { "./kernel" = "/unikernel/kernel"; };
      annotations = { unikernelType = "unikraft"; hypervisor = "qemu"; binary = "/unikernel/kernel"; cmdline = "/chttp"; };
      rootfs = { include = { "./conf" = "/conf"; }; };
      urunc = "v0.5.0,v0.6.0,main";
    }""",
    "unikraft-entrypoint-elfloader": """{
      name = "t/ukp"; files = { "./kernel" = "/unikernel/kernel"; };
      annotations = { unikernelType = "unikraft"; hypervisor = "qemu"; binary = "/unikernel/kernel"; };
      rootfs = { include = { "./conf" = "/conf"; }; };
      entrypoint = [ "/chttp" ];
      cmd = [ "" ];
    }""",
    "rumprun-block-annotation-gets-blkmntpoint": """{
      name = "t/rb"; files = { "./kernel" = "/unikernel/k.hvt"; "./conf/redis.conf" = "/disk.ext2"; };
      annotations = { unikernelType = "rumprun"; hypervisor = "hvt"; binary = "/unikernel/k.hvt"; block = "/disk.ext2";
                      cmdline = "redis-server /data/redis.conf"; };
      urunc = [ "v0.5.0" "v0.7.0" ];
    }""",
    "linux-initrd-no-init": """{
      name = "t/ln"; kernel = "./kernel";
      annotations = { unikernelType = "linux"; hypervisor = "qemu"; cmdline = "/bin/app"; };
      rootfs = { type = "initrd"; from = "./rootdir"; };
    }""",
}


def nix_normalized(d: Path) -> dict:
    return eval_json(
        f"(import {d / 'nix' / 'validate.nix'} {{ }}).normalize "
        f'{{ spec = import {d / "args.nix"}; src = {d}; specName = "args.nix"; }}'
    )


@pytest.mark.parametrize("name", sorted(SPECS))
def test_same_annotations_and_argv_as_python(tmp_path, srcdir, name):
    d = spec_dir(tmp_path, srcdir, SPECS[name])
    image, _ = validate(load(d / "args.nix"))
    n = nix_normalized(d)
    assert n["annotations"] == image.annotations
    assert (n["cmd"], n["entrypoint"]) == (image.to_json()["cmd"], image.to_json()["entrypoint"])
    r = image.rootfs
    if r is None:
        assert n["rootfs"] is None
    else:
        assert n["rootfs"]["type"] == r.type
        assert n["rootfs"].get("path") == (r.target if r.type != "raw" else None)
        assert [i["target"] for i in n["rootfs"]["include"]] == [i.target for i in r.include]
        assert n["rootfs"].get("fsType", "ext2") == r.fs_type
        assert n["rootfs"].get("size", "auto") == r.size
        assert n["rootfs"].get("compression", "none") == r.compression
    for key in ("kernel", "init"):
        x = getattr(image, key)
        assert (n[key] is None) == (x is None)
    # normalizing the normalized spec gives the same
    again = eval_json(
        f"let v = import {d / 'nix' / 'validate.nix'} {{ }}; "
        f"once = v.normalize {{ spec = import {d / 'args.nix'}; src = {d}; }}; "
        f"in v.normalize {{ spec = once; src = {d}; }}"
    )
    assert again == n


# -- eval-time errors ---------------------------------------------------------

BASE = """{{
  name = "t/e"; kernel = "./kernel";
  annotations = {{ unikernelType = "{guest}"; hypervisor = "{monitor}"; }} // {{ {ann} }};
  cmd = [ "/bin/app" ];
  {extra}
}}"""

ERRORS = [
    ("rumprun", "hvt", "", 'rootfs = { from = "./rootdir"; };', "rootfs: rootfs.type is needed for a rumprun guest"),
    (
        "linux",
        "qemu",
        "",
        'rootfs = { type = "initrdd"; };',
        'rootfs.type: "initrdd" is not a rootfs type; allowed: initrd, block, raw; did you mean "initrd"?',
    ),
    ("unikraft", "qemu", "", 'rootfs = { type = "block"; };', "rootfs.type: a unikraft guest cannot boot from block storage"),
    ("mirage", "hvt", "", 'rootfs = { type = "initrd"; };', "rootfs.type: a mirage guest cannot boot from initrd storage"),
    (
        "rumprun",
        "hvt",
        "",
        'rootfs = { type = "block"; fsType = "ext4"; };',
        'rootfs.fsType: a rumprun guest mounts only ext2 (got "ext4")',
    ),
    (
        "linux",
        "qemu",
        "",
        'rootfs = { type = "block"; fsType = "xfs"; };',
        'rootfs.fsType: "xfs" is not a filesystem urunix builds',
    ),
    ("linux", "qemu", "", 'rootfs = { type = "block"; size = "64Q"; };', 'rootfs.size: "64Q" is not a size'),
    (
        "unikraft",
        "qemu",
        "",
        'rootfs = { compression = "gzip"; };',
        "rootfs.compression: a unikraft guest reads only an uncompressed cpio",
    ),
    ("linux", "qemu", "", 'rootfs = { type = "initrd"; compression = "xz"; };', 'rootfs.compression: "xz" is not a compression'),
    ("linux", "qemu", "", 'rootfs = { type = "initrd"; size = "1M"; };', "rootfs.size: applies to block images only"),
    (
        "linux",
        "qemu",
        'useDMBlock = "true";',
        'rootfs = { type = "initrd"; };',
        "annotations.useDMBlock: asks for the devmapper rootfs, but rootfs.type is initrd",
    ),
    (
        "linux",
        "qemu",
        'mountRootfs = "false";',
        'rootfs = { type = "raw"; from = "./rootdir"; };',
        "annotations.mountRootfs: a raw rootfs is the container's own rootfs",
    ),
    (
        "linux",
        "qemu",
        'initrd = "/boot/initrd";',
        'rootfs = { type = "initrd"; path = "/boot/other"; };',
        'annotations.initrd: "/boot/initrd" disagrees with rootfs.path ("/boot/other")',
    ),
    ("linux", "qemu", "", 'rootfs = { type = "initrd"; path = "/boot//x"; };', 'rootfs.path: "/boot//x" is not a clean path'),
    ("linux", "qemu", "", 'rootfs = { type = "initrd"; tipe = "x"; };', "rootfs.tipe: unknown field in rootfs"),
    ("linux", "qemu", "", 'rootfs = { type = "initrd"; from = "./nope"; };', 'rootfs.from: "./nope" does not exist'),
    (
        "linux",
        "qemu",
        "",
        'rootfs = { type = "initrd"; from = "docker://busybox"; };',
        "rootfs.from: a registry reference must be pinned by digest",
    ),
    (
        "linux",
        "qemu",
        "",
        'rootfs = { type = "initrd"; from = "docker://busybox@sha256:' + "0" * 64 + '"; };',
        "is not supported by the Nix backend yet",
    ),
    (
        "linux",
        "qemu",
        "",
        'rootfs = { type = "initrd"; from = "library/busybox:1.36"; };',
        "names a registry image that is not pinned by digest",
    ),
    ("linux", "qemu", "", 'rootfs = { type = "initrd"; from = "oci:./rootdir"; };', "is not an OCI layout"),
    (
        "linux",
        "qemu",
        "",
        'rootfs = { type = "initrd"; include = { "./conf" = "conf"; }; };',
        'rootfs.include."./conf": target must be an absolute path',
    ),
    (
        "linux",
        "qemu",
        "",
        'rootfs = { type = "initrd"; include = { "./missing" = "/x"; }; };',
        'rootfs.include."./missing": no such file or directory',
    ),
    (
        "unikraft",
        "qemu",
        "",
        'init = "./urunit";',
        "init: only Linux guests run an init; a unikraft guest is the application itself",
    ),
    ("linux", "qemu", "", 'init = { from = "./rootdir"; };', "init.from: must be a file or an image, not a dir"),
    (
        "linux",
        "qemu",
        "",
        'init = { from = "./kernel.tar"; path = "urunit"; };',
        "init.path: must be an absolute path inside the image",
    ),
    ("linux", "qemu", "", "init = 42;", "init: must be a path string or { from"),
]


@pytest.mark.parametrize("guest, monitor, ann, extra, message", ERRORS)
def test_errors_are_the_validators(tmp_path, srcdir, guest, monitor, ann, extra, message):
    """The metadata derivation's check refuses each with `urunix validate`'s
    words, and a spec the validator accepts but the Nix backend cannot build
    with the reason. (`message` was the Nix wording when Nix judged specs
    itself; it is kept for the latter.)"""
    from verdicts import nix_verdict, python_verdict

    d = spec_dir(tmp_path, srcdir, BASE.format(guest=guest, monitor=monitor, ann=ann, extra=extra))
    ok, text = python_verdict(d / "args.nix")
    nix = nix_verdict(d / "args.nix", tmp_path / "out")
    if "Nix backend" in message:
        assert ok and not nix[0] and message in nix[1] and nix[1].startswith("error: args.nix: "), nix
        return
    assert not ok
    assert nix == (ok, text)


@pytest.mark.parametrize("cmdline", [None, "", "   "])  # blanks give no command either
def test_image_rootfs_needs_cmd(tmp_path, srcdir, cmdline):
    d = spec_dir(
        tmp_path,
        srcdir,
        """{
      name = "t/e"; kernel = "./kernel"; init = "./urunit";
      annotations = { unikernelType = "linux"; hypervisor = "qemu"; cmdline = CMDLINE; };
      rootfs = { type = "initrd"; from = "./app.tar"; };
    }""".replace("CMDLINE", json.dumps(cmdline)),
    )
    from verdicts import nix_verdict

    ok, err = nix_verdict(d / "args.nix", tmp_path / "out")
    assert not ok
    assert "rootfs.from is an image" in err and "set cmd = [ ... ];" in err and "urunix generate" in err
    # the Python side reads the command from the image instead, before
    # validating; the Nix check (read_images="none") leaves it unread
    image, _ = validate(load(d / "args.nix"))
    assert not image.argv_from_image and (image.entrypoint or image.cmd)[:1] == ("/urunit",)
    assert validate(load(d / "args.nix"), read_images="none")[0].argv_from_image


def test_raw_from_image_refused(tmp_path, srcdir):
    d = spec_dir(
        tmp_path,
        srcdir,
        """{
      name = "t/e"; kernel = "./kernel";
      annotations = { unikernelType = "linux"; hypervisor = "qemu"; };
      rootfs = { type = "raw"; from = "./app.tar"; };
      cmd = [ "/bin/app" ];
    }""",
    )
    from verdicts import nix_verdict

    ok, err = nix_verdict(d / "args.nix", tmp_path / "out")
    assert not ok
    assert 'rootfs.type = "raw" from an image' in err and "not supported by the Nix backend yet" in err
    image, _ = validate(load(d / "args.nix"))
    assert nixgen.unsupported(image) and "raw" in nixgen.unsupported(image)


# -- what reaches dockerTools (recording pkgs) ---------------------------------


def recorded(d: Path) -> list[dict]:
    """The layers the library plans, each {layer; config; entries; PATH}:
    an entry's `source` is a store path, or it has `build` (a rootfs
    description for helpers/base_image.py) or `extract` (a file out of an
    image); PATH is the base archive derivation's."""
    expr = f"""
      let
        pkgs = {RECORD};
        img = (import {d / "nix"} {{ inherit pkgs; }}).fromArgs {{ args = {d / "args.nix"}; }};
        plain = x: builtins.fromJSON (builtins.unsafeDiscardStringContext (builtins.toJSON x));
      in
        map (l: {{
          inherit (img) config;
          layer = l.name;
          PATH = img.urunix.base.drvAttrs.PATH or null;
          entries = plain l.entries;
        }}) img.urunix.layers
    """
    r = run(["nix-instantiate", "--eval", "--strict", "--json", "--read-write-mode", "--expr", expr, *NIX_OPTS])
    return json.loads(r.stdout)  # read-write: builtins.path copies the sources we read


def test_recorded_initrd_and_kernel_from_image(tmp_path, srcdir):
    d = spec_dir(tmp_path, srcdir, SPECS["linux-initrd-image"])
    steps = recorded(d)
    assert [s["layer"] for s in steps] == ["kernel", "rootfs", "urunc.json"]
    kernel, rootfs = steps[0]["entries"], steps[1]["entries"]
    assert kernel[0]["target"] == "/kernel"
    desc = kernel[0]["extract"]
    assert desc["inner"] == "/kernel" and desc["origin"]["kind"] == "image"
    assert desc["origin"]["location"].endswith("-kernel.tar")
    assert rootfs[0]["target"] == "/.boot/rootfs"
    desc = rootfs[0]["build"]
    assert desc["type"] == "initrd" and desc["compression"] == "gzip" and desc["hardlinks"] == "link"
    assert desc["origin"]["kind"] == "image" and desc["init"]["target"] == "/urunit"
    assert desc["init"]["origin"]["kind"] == "file"
    c = steps[-1]["config"]
    assert (c["Entrypoint"], c["Cmd"]) == (["/urunit", "/bin/app"], ["arg1"])
    assert c["Labels"]["com.urunc.unikernel.initrd"] == "/.boot/rootfs"
    assert c["Labels"]["com.urunc.unikernel.binary"] == "/kernel"
    assert c["Labels"]["com.urunc.unikernel.useDMBlock"] == "false"


def test_recorded_block_uses_e2fsprogs(tmp_path, srcdir):
    d = spec_dir(tmp_path, srcdir, SPECS["rumprun-block"])
    steps = recorded(d)
    rootfs = steps[1]["entries"][0]
    assert rootfs["target"] == "/.boot/rootfs.ext2"
    assert steps[1]["PATH"] == "/recorded/e2fsprogs/bin"
    desc = rootfs["build"]
    assert desc["type"] == "block" and desc["fsType"] == "ext2" and desc["size"] == "auto"
    assert desc["origin"]["kind"] == "dir" and [i["target"] for i in desc["include"]] == ["/conf"]
    labels = steps[-1]["config"]["Labels"]
    assert labels["com.urunc.unikernel.block"] == "/.boot/rootfs.ext2"
    assert labels["com.urunc.unikernel.blkMntPoint"] == "/data"


# -- real builds, compared with the native builder ------------------------------


def native(d: Path, out: Path, spec: str = "args.nix") -> Path:
    from cli import urunix

    urunix("build", spec, "-o", str(out), "--backend", "native", cwd=d, check=True)
    return out


def layer_file(archive: Path, path: str) -> bytes:
    return read_image(archive)[1][path][1]


def test_initrd_scratch_include_same_cpio_bytes(tmp_path, srcdir):
    d = spec_dir(tmp_path, srcdir, SPECS["unikraft-initrd"])
    nix = nix_build(d / "default.nix", d / "result", cwd=d)
    nat = native(d, tmp_path / "native.tar")
    a, b = layer_file(nix, "/.boot/rootfs"), layer_file(nat, "/.boot/rootfs")
    assert a == b and a[:6] == b"070701"
    listing = subprocess.run(["cpio", "-it", "--quiet"], input=a, capture_output=True, check=True).stdout.decode()
    assert listing.split() == ["conf", "conf/empty", "conf/redis.conf"]
    assert_same_content(nix, nat)


def debugfs_listing(image: bytes, tmp: Path) -> dict[str, tuple[str, bytes]]:
    """{path: (mode, content)} of an ext2/ext4 image, read with debugfs."""
    from support import need

    debugfs = need("debugfs")
    img = tmp / f"fs-{hashlib.sha256(image).hexdigest()[:8]}"
    img.write_bytes(image)
    out: dict[str, tuple[str, bytes]] = {}

    def walk(path: str) -> None:
        r = subprocess.run([debugfs, "-R", f'ls -p "{path}"', str(img)], capture_output=True, check=True)
        for line in r.stdout.decode().splitlines():
            # /inode/mode/uid/gid/name/size/
            parts = line.split("/")
            if len(parts) < 7 or parts[5] in (".", "..", "lost+found"):
                continue
            mode, name = parts[2], parts[5]
            child = f"{path.rstrip('/')}/{name}"
            if mode.startswith("04"):
                out[child] = (mode, b"")
                walk(child)
            else:
                data = subprocess.run([debugfs, "-R", f'cat "{child}"', str(img)], capture_output=True, check=True).stdout
                out[child] = (mode, data)

    walk("/")
    return out


def test_block_from_dir_same_listing_and_bytes(tmp_path, srcdir):
    d = spec_dir(tmp_path, srcdir, SPECS["rumprun-block"])
    nix = nix_build(d / "default.nix", d / "result", cwd=d)
    nat = native(d, tmp_path / "native.tar")
    a, b = layer_file(nix, "/.boot/rootfs.ext2"), layer_file(nat, "/.boot/rootfs.ext2")
    la, lb = debugfs_listing(a, tmp_path), debugfs_listing(b, tmp_path)
    assert la == lb
    assert "/bin/app" in la, sorted(la)
    assert la["/bin/app"] == ("100755", b"#!/bin/sh\necho app\n")
    assert la["/conf/redis.conf"] == ("100644", b"port 6379\n")
    assert "/etc/a file with space" in la and "/etc/caf\u00e9" in la
    from support import need

    img = tmp_path / "check.ext2"
    img.write_bytes(a)
    subprocess.run([need("e2fsck"), "-fn", str(img)], check=True, capture_output=True)
    # same e2fsprogs (the host's, in both), same bytes
    assert a == b


def test_block_from_a_store_path_is_used_where_it_is(tmp_path, srcdir):
    """A `from` tree already in the store (a fetched or built tree) is not
    copied again: the derivations take that store path, and the image is the
    one the same tree as a directory gives."""
    d = spec_dir(tmp_path, srcdir, SPECS["rumprun-block"])
    stored = run(["nix-store", "--add", str(d / "rootdir")]).stdout.strip()
    assert stored.startswith("/nix/store/") and stored.endswith("-rootdir")
    (d / "args.nix").write_text(SPECS["rumprun-block"].replace('"./rootdir"', f'"{stored}"'))
    drv = run(
        ["nix-instantiate", str(d / "default.nix"), "--arg", "pkgs", nixhelp.testpkgs_expr(), *NIX_OPTS], cwd=d
    ).stdout.split()[-1]
    inputs = run(["nix-store", "-qR", drv]).stdout.split()
    assert stored in inputs
    digest = Path(stored).name.split("-", 1)[0]
    assert [p for p in inputs if digest in p] == [stored], "the tree was copied into the store again"
    nix = nix_build(d / "default.nix", d / "result", cwd=d)
    nat = native(spec_dir(tmp_path / "dir", srcdir, SPECS["rumprun-block"]), tmp_path / "native.tar")
    assert layer_file(nix, "/.boot/rootfs.ext2") == layer_file(nat, "/.boot/rootfs.ext2")


def test_linux_guest_from_images_matches_native(tmp_path, srcdir):
    d = spec_dir(tmp_path, srcdir, SPECS["linux-initrd-image"].replace('compression = "gzip";', "") + "\n")
    nix = nix_build(d / "default.nix", d / "result", cwd=d)
    nat = native(d, tmp_path / "native.tar")
    (cn, fn, hn), (cb, fb, hb) = read_image(nix), read_image(nat)
    assert fn == fb and len(hn) == len(hb)
    assert cn["config"]["Cmd"] == cb["config"]["Cmd"] == ["arg1"]
    assert cn["config"]["Entrypoint"] == cb["config"]["Entrypoint"] == ["/urunit", "/bin/app"]
    assert cn["config"]["Labels"] == cb["config"]["Labels"]
    # the image's Env and WorkingDir: urunix build reads them from app.tar;
    # the Nix library cannot at evaluation time (see the README)
    assert cb["config"]["Env"] == ["URUNIX_TEST=hello"] and cb["config"]["WorkingDir"] == "/srv"
    assert cn["config"]["Env"] == [] and "WorkingDir" not in cn["config"]  # buildImage: Env [] (UNAVOIDABLE)
    listing = (
        subprocess.run(["cpio", "-it", "--quiet"], input=fn["/.boot/rootfs"][1], capture_output=True, check=True)
        .stdout.decode()
        .splitlines()
    )
    assert "urunit" in listing and "bin/app" in listing and "etc/a file with space" in listing
    assert fn["/kernel"][1] == (srcdir / "kernel").read_bytes()


def test_generated_dir_with_rootfs_has_the_same_content(tmp_path, srcdir):
    """`urunix generate` writes the image's command, Env and WorkingDir into
    the expression, so nix-build of it gives the native build's content and
    config (Env once, not once per layer)."""
    d = spec_dir(
        tmp_path,
        srcdir,
        """{
      name = "t/gen"; tag = "v1";
      rootfs = { type = "initrd"; from = "./app.tar"; include = { "./conf" = "/etc/conf"; }; };
      kernel = { from = "./kernel.tar"; path = "/kernel"; };
      init = { from = "./urunit"; path = "/urunit"; };
      annotations = { unikernelType = "linux"; hypervisor = "qemu"; };
    }""",
    )
    image, _ = validate(load(d / "args.nix"))
    out = nixgen.generate(image, d / "args.nix", tmp_path / "gen")
    text = (out / "default.nix").read_text()
    assert 'workdir = "/srv";' in text and '"URUNIX_TEST=hello"' in text
    assert str(tmp_path) not in "".join(p.read_text(errors="replace") for p in out.rglob("*.nix"))
    for f in out.rglob("*.nix"):
        run(["nix-instantiate", "--parse", str(f)])
    moved = tmp_path / "moved"
    shutil.move(out, moved)
    result = nixgen.nix_build(moved, tmp_path / "result", f'import {HERE / "testpkgs.nix"} {{ python = "{host_python()}"; }}')
    nat = native(d, tmp_path / "native.tar")
    assert_same_content(Path(result), nat)
    assert image_content(Path(result))[0]["Env"] == ["URUNIX_TEST=hello"]


def test_raw_from_dir_and_block_ext4_match_native(tmp_path, srcdir):
    for name in ("linux-raw-dir", "linux-block-ext4", "linux-init-only", "unikraft-initrd-list-include"):
        d = spec_dir(tmp_path / name, srcdir, SPECS[name])
        nix = nix_build(d / "default.nix", d / "result", cwd=d)
        nat = native(d, tmp_path / name / "native.tar")
        assert_same_content(nix, nat)


@pytest.mark.parametrize(
    "name, layer",
    [
        ("unikraft-initrd", "rootfs"),
        ("linux-initrd-image", "rootfs"),
        ("linux-initrd-image", "kernel"),
        ("rumprun-block", "rootfs"),
    ],
)
def test_rootfs_derivations_are_deterministic(tmp_path, srcdir, name, layer):
    """nix-build --check rebuilds the cpio / ext2 / extract derivation and
    compares the bytes."""
    d = spec_dir(tmp_path, srcdir, SPECS[name])
    nix_build(d / "default.nix", d / "result", cwd=d)
    expr = (
        f"let img = import {d / 'default.nix'} {{ pkgs = import {HERE / 'testpkgs.nix'} {{ }}; }}; "
        f'in assert builtins.any (l: l.name == "{layer}") img.urunix.layers; img.urunix.base'
    )
    drv = run(["nix-instantiate", *NIX_OPTS, "-E", expr], cwd=d).stdout.strip()
    assert drv.endswith("-base.tar.drv")
    run(["nix-build", drv, "--no-out-link", "--check", *NIX_OPTS], cwd=d)
