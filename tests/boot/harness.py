"""Boot Linux guests for real under qemu (TCG), for tests.

Reusable pieces:
- debian_kernel(): Debian's cloud kernel (ext4, ext2 through ext4, NVMe built
  in; virtio-blk only as a module), fetched with `apt-get download` + `dpkg -x`
  into a cache directory, never installed;
- ensure_qemu() / busybox_path(): qemu-system-x86 and busybox-static,
  installed with apt-get when missing and running as root;
- init_entries(): an image_writer plan-entry tree with busybox and an /init
  script that prints MARKER, its argv and an environment variable, then
  powers off;
- urunc_cmdline(): the kernel command line a urunc release builds for a
  Linux guest (from urunix.urunc_model);
- boot(): run qemu, return the serial console output;
- URUNIT_STANDIN / URUNIT_APP: the urunit stand-in and the program it runs
  in the urunit boot tests;
- layer_tar(): a tar of files, symlinks and devices (a layer, or what
  `docker import` takes).

KVM hangs on the machines these tests run on: always -accel tcg.
"""

from __future__ import annotations

import glob
import io
import os
import re
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

MARKER = "URUNIX-BOOT-OK"
KERNEL_META = "linux-image-cloud-amd64"

# The init: /bin/busybox sh runs it with the kernel's leftover arguments as
# $@. The kernel splits its command line on spaces (it knows double quotes,
# not single ones), so urunc's 'two words' arrives as two words "'two" and
# "words'"; urunit regroups them, this init prints them as they came.
INIT_SCRIPT = """#!/bin/busybox sh
/bin/busybox mkdir -p /proc
/bin/busybox mount -t proc proc /proc
echo "{marker} argc=$# pid=$$"
for a in "$@"; do echo "URUNIX-ARG[$a]"; done
echo "URUNIX-ENV[URUNIX_TEST=$URUNIX_TEST]"
echo "URUNIX-ROOT[$(/bin/busybox awk '$2=="/"{{print $1" "$3}}' /proc/mounts | /bin/busybox tail -n 1)]"
/bin/busybox poweroff -f
""".format(marker=MARKER)


URUNIT_STANDIN = Path(__file__).resolve().parent / "urunit_standin.sh"
# the program under the urunit stand-in: prints its args, pid, parent, PID 1's
# command, env, cwd; exits (the init then reboots the machine)
URUNIT_APP = """#!/bin/sh
[ -r /proc/1/cmdline ] || /bin/busybox mount -t proc proc /proc
echo 1 > /proc/sys/kernel/printk  # no kernel message inside the lines below (one serial console)
echo "URUNIX-APP pid=$$ ppid=$PPID"
for a in "$@"; do echo "URUNIX-ARG[$a]"; done
echo "URUNIX-ENV[URUNIX_TEST=$URUNIX_TEST]"
echo "URUNIX-PWD[$(/bin/busybox pwd)]"
echo "URUNIX-INIT[$(/bin/busybox tr '\\0' ' ' < /proc/1/cmdline)]"
"""


def layer_tar(files: dict[str, tuple[int, bytes] | str], devices: dict[str, tuple[int, int]] = {}) -> bytes:
    """A tar of `files` (name -> (mode, bytes), or a symlink's target) and
    character `devices` (name -> (major, minor)), in name order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, spec in sorted(files.items()):
            info = tarfile.TarInfo(name)
            if isinstance(spec, str):
                info.type, info.linkname = tarfile.SYMTYPE, spec
                t.addfile(info)
            else:
                info.mode, info.size = spec[0], len(spec[1])
                t.addfile(info, io.BytesIO(spec[1]))
        for name, (major, minor) in devices.items():
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.devmajor, info.devminor = tarfile.CHRTYPE, 0o600, major, minor
            t.addfile(info)
    return buf.getvalue()


class HarnessError(Exception):
    """A prerequisite (kernel, qemu, busybox) could not be obtained."""


def cache_dir() -> Path:
    d = Path(os.environ.get("URUNIX_TEST_CACHE") or Path.home() / ".cache" / "urunix-tests")
    d.mkdir(parents=True, exist_ok=True)
    return d


def _apt(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(["apt-get", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=900)


def _is_root() -> bool:
    return os.geteuid() == 0


def _apt_install(*packages: str) -> None:
    if not _is_root() or not shutil.which("apt-get"):
        raise HarnessError(f"{' '.join(packages)} missing and cannot be installed (needs root and apt-get)")
    r = _apt("install", "-y", "-q", "--no-install-recommends", *packages)
    if r.returncode != 0:
        _apt("update", "-q")
        r = _apt("install", "-y", "-q", "--no-install-recommends", *packages)
    if r.returncode != 0:
        raise HarnessError(f"apt-get install {' '.join(packages)} failed: {r.stderr[-2000:]}")


def ensure_qemu() -> str:
    path = shutil.which("qemu-system-x86_64")
    if not path:
        _apt_install("qemu-system-x86")
        path = shutil.which("qemu-system-x86_64")
    if not path:
        raise HarnessError("qemu-system-x86_64 not found after installing qemu-system-x86")
    return path


def _is_static(path: str) -> bool:
    r = subprocess.run(["file", "-L", path], capture_output=True, text=True) if shutil.which("file") else None
    if r is not None and r.returncode == 0:
        return "statically linked" in r.stdout or "static-pie" in r.stdout
    with open(path, "rb") as f:
        return b"/lib64/ld-linux" not in f.read(4096)


def busybox_path() -> str:
    """A static busybox (Debian's busybox-static puts it at /bin/busybox)."""
    for cand in ("/bin/busybox", "/usr/bin/busybox"):
        if os.path.exists(cand) and _is_static(cand):
            return cand
    _apt_install("busybox-static")
    for cand in ("/bin/busybox", "/usr/bin/busybox"):
        if os.path.exists(cand) and _is_static(cand):
            return cand
    raise HarnessError("no static busybox after installing busybox-static")


def _kernel_package() -> str:
    """The versioned package linux-image-cloud-amd64 depends on."""
    for attempt in range(2):
        r = subprocess.run(["apt-cache", "depends", KERNEL_META], capture_output=True, text=True)
        for line in r.stdout.splitlines():
            line = line.strip()
            if line.startswith("Depends:"):
                name = line.split(":", 1)[1].strip()
                if name.startswith("linux-image-") and name != KERNEL_META:
                    return name.strip("<>")
        if attempt == 0:
            _apt("update", "-q")
    raise HarnessError(f"apt-cache depends {KERNEL_META} names no kernel package (is the Debian archive configured?)")


def debian_kernel() -> Path:
    """Path of Debian's cloud vmlinuz, downloaded and unpacked once per cache."""
    pkg = _kernel_package()
    dest = cache_dir() / pkg
    found = sorted(glob.glob(str(dest / "boot" / "vmlinuz-*")))
    if found:
        return Path(found[-1])
    tmp = Path(str(dest) + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "deb").mkdir(parents=True)
    # _apt runs downloads as root without sandbox: make the directory reachable for _apt anyway
    os.chmod(tmp / "deb", 0o777)
    r = _apt("download", pkg, cwd=str(tmp / "deb"))
    debs = glob.glob(str(tmp / "deb" / "*.deb"))
    if r.returncode != 0 or not debs:
        raise HarnessError(f"apt-get download {pkg} failed: {r.stderr[-2000:]}")
    x = tmp / "x"
    subprocess.run(["dpkg-deb", "-x", debs[0], str(x)], check=True, capture_output=True)
    (tmp / "deb" / os.path.basename(debs[0])).unlink()
    shutil.rmtree(dest, ignore_errors=True)
    # keep only /boot: the modules are not needed (initramfs-free boots)
    dest.mkdir(parents=True)
    shutil.move(str(x / "boot"), str(dest / "boot"))
    shutil.rmtree(tmp, ignore_errors=True)
    found = sorted(glob.glob(str(dest / "boot" / "vmlinuz-*")))
    if not found:
        raise HarnessError(f"{pkg} holds no /boot/vmlinuz-*")
    return Path(found[-1])


def init_entries(busybox: str | None = None, init_path: str = "/init") -> list[dict]:
    """Plan entries (image_writer format) of a minimal guest: /bin/busybox,
    the init script at init_path, and empty /proc, /dev, /sys directories."""
    busybox = busybox or busybox_path()
    return [
        {"type": "file", "path": "/bin/busybox", "source": busybox, "mode": 0o755},
        {"type": "symlink", "path": "/bin/sh", "target": "busybox"},
        {"type": "file", "path": init_path, "data": INIT_SCRIPT, "mode": 0o755},
        {"type": "dir", "path": "/proc"},
        {"type": "dir", "path": "/sys"},
        {"type": "dir", "path": "/dev"},
    ]


def console_member():
    """/dev/console (char 5:1): the kernel opens it in the new root for init's
    stdout. Debian's kernel does not mount devtmpfs on the root by itself."""
    from urunix.helpers.image_writer import Member

    return Member("dev/console", "char", 0o600, devmajor=5, devminor=1)


def init_members(busybox: str | None = None, init_path: str = "/init") -> list:
    """The same guest as a sorted Member list, with what plan entries cannot
    say: /bin/sh is a HARD link to /bin/busybox (so a boot also proves the
    kernel reads our hard-link convention: the data travels with the last
    name), the init's shebang goes through it, and /dev/console exists."""
    from urunix.helpers.image_writer import Member, expand

    entries = [e for e in init_entries(busybox, init_path) if e["path"] != "/bin/sh"]
    for e in entries:
        if e["path"] == init_path:
            e["data"] = e["data"].replace("#!/bin/busybox sh", "#!/bin/sh", 1)
    members = expand(entries) + [Member("bin/sh", "hardlink", 0o755, target="bin/busybox"), console_member()]
    return sorted(members, key=lambda m: m.path.split("/"))


def quote_arg(a: str) -> str:
    """urunc's quoting: an argument with a space is wrapped in single quotes."""
    return f"'{a}'" if " " in a else a


def urunc_cmdline(
    argv: list[str], *, initrd: bool, env: list[str] = (), block_dev: str = "/dev/vda", release: str = "v0.6.0"
) -> str:
    """The kernel command line urunc `release` builds for a Linux guest on
    qemu run by Docker with process.args `argv` and image env `env` (root
    from the initrd, or from a block image at /), from our urunc model
    (urunix.urunc_model, checked against urunc's own code); urunc's
    /dev/vda is renamed `block_dev` (Debian's kernel sees NVMe)."""
    import base64
    import json

    from urunix import urunc_model as M

    ann = {"unikernelType": "linux", "hypervisor": "qemu", "binary": "/kernel"}
    ann.update({"initrd": "/initrd"} if initrd else {"block": "/rootfs.img", "blkMntPoint": "/"})
    doc = {M.PREFIX + k: base64.b64encode(v.encode()).decode() for k, v in ann.items()}
    r = M.model(M.Image(cmd=tuple(argv), env=tuple(env), urunc_json=json.dumps(doc)), release)
    if r.outcome != "started" or r.guest_cmdline is None:
        raise ValueError(f"urunc {release} does not start this guest: {r.reason}")
    return r.guest_cmdline.replace("root=/dev/vda ", f"root={block_dev} ")


@dataclass
class BootResult:
    output: str
    returncode: int | None
    seconds: float
    timed_out: bool

    def args(self) -> list[str]:
        return [line[len("URUNIX-ARG[") : -1] for line in self.lines() if line.startswith("URUNIX-ARG[")]

    def pids(self) -> tuple[int, int] | None:
        """The app's (pid, ppid), wherever its line landed on the console."""
        m = re.search(r"URUNIX-APP pid=(\d+) ppid=(\d+)", self.output)
        return (int(m.group(1)), int(m.group(2))) if m else None

    def lines(self) -> list[str]:
        return [line.rstrip("\r") for line in self.output.splitlines()]

    def value(self, tag: str) -> str | None:
        for line in self.lines():
            if line.startswith(tag + "[") and line.endswith("]"):
                return line[len(tag) + 1 : -1]
        return None

    @property
    def ok(self) -> bool:
        return any(line.startswith(MARKER) for line in self.lines())


def boot(
    kernel: Path | str,
    append: str,
    *,
    initrd: Path | str | None = None,
    disk: Path | str | None = None,
    memory: str = "256",
    timeout: float = 60,
    extra: list[str] = (),
) -> BootResult:
    """Boot under qemu TCG with the serial console on stdout; the disk (raw)
    is attached as NVMe (/dev/nvme0n1). The guest is expected to power off."""
    qemu = ensure_qemu()
    cmd = [
        qemu,
        "-accel",
        "tcg",
        "-m",
        memory,
        "-nodefaults",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-no-reboot",
        "-kernel",
        str(kernel),
        "-append",
        append,
    ]
    if initrd is not None:
        cmd += ["-initrd", str(initrd)]
    if disk is not None:
        cmd += ["-drive", f"file={disk},format=raw,if=none,id=d0", "-device", "nvme,drive=d0,serial=urunix"]
    cmd += list(extra)
    start = time.monotonic()
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        out, rc, timed_out = r.stdout + r.stderr, r.returncode, False
    except subprocess.TimeoutExpired as e:
        out, rc, timed_out = (e.stdout or b"") + (e.stderr or b""), None, True
    return BootResult(out.decode("utf-8", "replace"), rc, time.monotonic() - start, timed_out)
