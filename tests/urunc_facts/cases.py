"""Our own cases for the urunc harness: small docker-archive images that each
isolate one thing urunc reads (quoting, env, block, initrd, mountRootfs, the
guest kinds and monitors), written without urunix so they can hold what
urunix refuses. Files are stand-in bytes: nothing runs, urunc only names them.

    python3 tests/urunc_facts/cases.py OUTDIR     # -> OUTDIR/case-NAME.tar

record.py runs the harness over them; the observations (never urunc's code)
land in tests/urunc_facts/*.json."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path

P = "com.urunc.unikernel."

UK = {
    "unikernelType": "unikraft",
    "hypervisor": "qemu",
    "binary": "/unikernel/kernel",
    "initrd": "/unikernel/initrd",
    "unikernelVersion": "0.17.0",
}
UK_FILES = ["/unikernel/kernel", "/unikernel/initrd"]
RR = {"unikernelType": "rumprun", "hypervisor": "hvt", "binary": "/unikernel/app.hvt", "useDMBlock": "false"}
MI = {"unikernelType": "mirage", "hypervisor": "hvt", "binary": "/unikernel/app.hvt", "useDMBlock": "false"}
LX = {"unikernelType": "linux", "hypervisor": "qemu", "binary": "/kernel", "initrd": "/initrd.cpio"}
LX_FILES = ["/kernel", "/initrd.cpio", "/urunit", "/bin/app"]
# the Linux guest with its rootfs elsewhere (a block image, the container's own, none)
LX_NO_INITRD = {k: v for k, v in LX.items() if k != "initrd"}

# name: (annotations, image config, files)
CASES: dict[str, tuple[dict, dict, list]] = {
    # Unikraft
    "uk-args-space": (dict(UK, cmdline="app 'a b' c"), {"Cmd": ["a b", "c"]}, UK_FILES),
    "uk-args-quotes": (dict(UK, cmdline="app"), {"Cmd": ['say "hi"', "it's", "back\\slash"]}, UK_FILES),
    "uk-entrypoint": (
        dict(UK, cmdline="app -x"),
        {"Entrypoint": ["/app"], "Cmd": ["-x"], "Env": ["A=1", "B=two words"]},
        UK_FILES,
    ),
    "uk-no-initrd-env": (
        dict({k: v for k, v in UK.items() if k != "initrd"}, cmdline="app"),
        {"Cmd": ["-v"], "Env": ["K=V"], "WorkingDir": "/w", "User": "1000"},
        ["/unikernel/kernel"],
    ),
    "uk-empty-cmdline": (dict(UK, cmdline=""), {"Cmd": [""]}, UK_FILES),
    "uk-fc": (dict(UK, hypervisor="firecracker", cmdline="app x"), {"Cmd": ["x"]}, UK_FILES),
    "uk-block": (dict(UK, block="/disk.img", blkMntPoint="/data", cmdline="app"), {"Cmd": [""]}, UK_FILES + ["/disk.img"]),
    # rumprun
    "rr-specials": (dict(RR, cmdline="app"), {"Cmd": ["app", "a&b", "<x>", 'q"q', "back\\s", "nl\nx"]}, ["/unikernel/app.hvt"]),
    "rr-env-space": (
        dict(RR, cmdline="app --x"),
        {"Cmd": ["app", "two words"], "Env": ["A=1", "B=x y"], "WorkingDir": "/srv"},
        ["/unikernel/app.hvt"],
    ),
    "rr-block-nomnt": (dict(RR, block="/disk.img", cmdline="app"), {"Cmd": ["app"]}, ["/unikernel/app.hvt", "/disk.img"]),
    "rr-block-other": (
        dict(RR, block="/disk.img", blkMntPoint="/mnt", cmdline="app"),
        {"Cmd": ["app"]},
        ["/unikernel/app.hvt", "/disk.img"],
    ),
    "rr-spt": (dict(RR, hypervisor="spt", cmdline="app"), {"Cmd": ["app", "-v"]}, ["/unikernel/app.hvt"]),
    "rr-mountrootfs": (dict(RR, mountRootfs="true", useDMBlock="true", cmdline="app"), {"Cmd": ["app"]}, ["/unikernel/app.hvt"]),
    "rr-qemu": (dict(RR, hypervisor="qemu", cmdline="app"), {"Cmd": ["app", "x"]}, ["/unikernel/app.hvt"]),
    # Mirage
    "mi-args": (dict(MI, cmdline="--a=1"), {"Cmd": ["--a=1", "--b=x y"], "Env": ["E=1"]}, ["/unikernel/app.hvt"]),
    "mi-block-nomnt": (dict(MI, block="/disk.img"), {"Cmd": [""]}, ["/unikernel/app.hvt", "/disk.img"]),
    "mi-mountrootfs": (dict(MI, mountRootfs="true", useDMBlock="true"), {"Cmd": [""]}, ["/unikernel/app.hvt"]),
    "mi-spt": (dict(MI, hypervisor="spt"), {"Cmd": ["--x"]}, ["/unikernel/app.hvt"]),
    # Linux
    "lx-urunit-multi": (
        dict(LX, cmdline="/urunit /bin/app"),
        {
            "Entrypoint": ["/urunit", "/bin/app"],
            "Cmd": ["one", "two words", "three four", "end"],
            "Env": ["A=1", "B=x y"],
            "WorkingDir": "/srv",
            "User": "1000:100",
        },
        LX_FILES,
    ),
    "lx-urunit-nocmd": (dict(LX, cmdline="/urunit /bin/app"), {"Entrypoint": ["/urunit", "/bin/app"]}, LX_FILES),
    "lx-direct-multi": (dict(LX, cmdline="/bin/app"), {"Cmd": ["/bin/app", "two words"], "Env": ["A=x y"]}, LX_FILES),
    "lx-quote-chars": (dict(LX, cmdline="/urunit /bin/app"), {"Cmd": ["/urunit", "/bin/app", 'a"b', "it's"]}, LX_FILES),
    "lx-fc-initrd": (
        dict(LX, hypervisor="firecracker", cmdline="/urunit /bin/app"),
        {"Cmd": ["/urunit", "/bin/app", "-p", "80"], "Env": ["A=1"]},
        LX_FILES,
    ),
    "lx-block-root": (
        dict(LX_NO_INITRD, block="/rootfs.ext4", blkMntPoint="/", cmdline="/urunit /bin/app"),
        {"Cmd": ["/urunit", "/bin/app", "x"], "Env": ["A=1"]},
        ["/kernel", "/rootfs.ext4"],
    ),
    "lx-fc-block-root": (
        dict(
            LX_NO_INITRD,
            hypervisor="firecracker",
            block="/rootfs.ext4",
            blkMntPoint="/",
            cmdline="/urunit /bin/app",
        ),
        {"Cmd": ["/urunit", "/bin/app"]},
        ["/kernel", "/rootfs.ext4"],
    ),
    "lx-mountrootfs-qemu": (
        dict(LX_NO_INITRD, mountRootfs="true", cmdline="/urunit /bin/app"),
        {"Cmd": ["/urunit", "/bin/app"], "Env": ["A=1"]},
        ["/kernel", "/urunit", "/bin/app"],
    ),
    "lx-norootfs": (
        dict(LX_NO_INITRD, cmdline="/urunit /bin/app"),
        {"Cmd": ["/urunit", "/bin/app"]},
        ["/kernel", "/urunit", "/bin/app"],
    ),
    "lx-hvt": (dict(LX, hypervisor="hvt", cmdline="/urunit /bin/app"), {"Cmd": ["/urunit", "/bin/app"]}, LX_FILES),
    "lx-no-cmdline": ({k: v for k, v in LX.items()}, {"Cmd": ["/urunit", "/bin/app"]}, LX_FILES),
    "lx-clh-initrd": (
        dict(LX, hypervisor="cloud-hypervisor", cmdline="/urunit /bin/app"),
        {"Cmd": ["/urunit", "/bin/app", "x"], "Env": ["A=1"]},
        LX_FILES,
    ),
    "lx-fc-mountrootfs-block": (
        dict(
            LX_NO_INITRD,
            hypervisor="firecracker",
            mountRootfs="true",
            cmdline="/urunit /bin/app",
        ),
        {"Cmd": ["/urunit", "/bin/app"]},
        ["/kernel", "/urunit", "/bin/app"],
    ),
    "lx-user-uid-only": (dict(LX, cmdline="/urunit /bin/app"), {"Cmd": ["/urunit", "/bin/app"], "User": "1000"}, LX_FILES),
    "lx-user-name": (dict(LX, cmdline="/urunit /bin/app"), {"Cmd": ["/urunit", "/bin/app"], "User": "app"}, LX_FILES),
    "mi-no-cmd": (dict(MI, cmdline=""), {}, ["/unikernel/app.hvt"]),
    # other guests
    "mewz-qemu": (
        {"unikernelType": "mewz", "hypervisor": "qemu", "binary": "/unikernel/app.qemu", "cmdline": "app"},
        {"Cmd": ["app", "-x"], "Env": ["A=1"]},
        ["/unikernel/app.qemu"],
    ),
    "hermit-qemu": (
        {"unikernelType": "hermit", "hypervisor": "qemu", "binary": "/unikernel/app", "cmdline": "app"},
        {"Cmd": ["app", "-x", "two words"], "Env": ["A=1"]},
        ["/unikernel/app"],
    ),
    "uk-old-9p": (
        dict({k: v for k, v in UK.items() if k != "initrd"}, unikernelVersion="0.15.0", mountRootfs="true", cmdline="app"),
        {"Cmd": [""], "Env": ["A=1"]},
        ["/unikernel/kernel"],
    ),
    "uk-old-noinitrd": (
        dict({k: v for k, v in UK.items() if k != "initrd"}, unikernelVersion="0.15.0", cmdline="app x"),
        {"Cmd": ["x"]},
        ["/unikernel/kernel"],
    ),
}


def blob(name: str, size: int = 512) -> bytes:
    seed, out = hashlib.sha256(name.encode()).digest(), bytearray()
    while len(out) < size:
        seed = hashlib.sha256(seed).digest()
        out += seed
    return bytes(out[:size])


def _add(t: tarfile.TarFile, name: str, data: bytes | None, mode: int) -> None:
    ti = tarfile.TarInfo(name)
    ti.mode = mode
    if data is None:
        ti.type = tarfile.DIRTYPE
        t.addfile(ti)
    else:
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))


def image(name: str, annots: dict, cfg: dict, files: list) -> bytes:
    """A docker-archive: one layer with the files and a base64 /urunc.json,
    the same values as plain labels (the shape urunix writes)."""
    uj = {P + k: base64.b64encode(v.encode()).decode() for k, v in annots.items()}
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as t:
        dirs: set[str] = set()
        for f in files:
            parts = f.strip("/").split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    _add(t, d, None, 0o755)
        for f in files:
            _add(t, f.strip("/"), blob(f), 0o755)
        _add(t, "urunc.json", json.dumps(uj).encode(), 0o644)
    lb = layer.getvalue()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": dict(cfg, Labels={P + k: v for k, v in annots.items()}),
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(lb).hexdigest()]},
    }
    cb = json.dumps(config).encode()
    cname = hashlib.sha256(cb).hexdigest() + ".json"
    manifest = [{"Config": cname, "RepoTags": [f"case/{name}:latest"], "Layers": ["layer.tar"]}]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as t:
        for n, d in ((cname, cb), ("layer.tar", lb), ("manifest.json", json.dumps(manifest).encode())):
            _add(t, n, d, 0o644)
    return out.getvalue()


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, (annots, cfg, files) in CASES.items():
        (out / f"case-{name}.tar").write_bytes(image(name, annots, cfg, files))
    print(f"{len(CASES)} case images -> {out}")


if __name__ == "__main__":
    main()
