"""Our model of urunc: what each release hands the monitor and the guest.

Written from ../shared/urunc-releases.md and the harness observations in
tests/urunc_facts/*.json (urunc's own code run over images), never from
urunc's code. tests/unit/test_urunc_model.py replays every recorded row.
stdlib only."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field

from .helpers.urunc_json import PREFIX

RELEASES = ("v0.5.0", "v0.6.0", "v0.7.0", "main")
COMMITS = {"v0.5.0": "c755088df8f3", "v0.6.0": "54466f08b299", "v0.7.0": "6e5ea5efe2c8", "main": "f6ddb034acd3"}


def release_of_ref(ref: str) -> str:
    """Harness ref -> release name (main-f6ddb03 -> main)."""
    return "main" if ref.startswith("main") else ref


def classify_error(outcome: str, error: str) -> str | None:
    """A short reason code for an outcome other than started."""
    if outcome == "started":
        return None
    if outcome == "runc-fallback":
        return "not-a-unikernel"
    if outcome == "engine-refuses":
        return "no-command" if "neither Entrypoint nor Cmd" in error else "user-not-found"
    e = error.lower()
    if "unikernel is not supported" in e:
        return "guest-not-supported"
    if "without a mountpoint" in e:
        return "block-without-mountpoint"
    if "can not use the container rootfs" in e:
        return "no-rootfs-path"
    if e.startswith("exec: vmm") and "is not supported" in e:
        return "monitor-not-supported"
    return "other: " + error


def _pairs(opt: str, value: str | None) -> dict[str, str]:
    """A monitor option's value of comma-separated key=value pairs."""
    if value is None:
        raise ValueError(f"the monitor's argv ends with {opt}, which takes a value")
    return dict(p.split("=", 1) for p in value.split(",") if "=" in p)


def monitor_view(monitor: str, argv: list[str], fc_config: dict | None) -> dict:
    """The image-dependent part of a monitor's argv: kernel, initrd, block
    devices, shared directory, and the guest command line it carries."""
    view: dict = {"kernel": None, "initrd": None, "blocks": [], "share": None, "cmdline": None}
    if monitor == "firecracker":
        fc = fc_config or {}
        boot = fc.get("boot-source") or {}
        view["kernel"] = boot.get("kernel_image_path")
        view["initrd"] = boot.get("initrd_path") or None
        view["blocks"] = [d.get("path_on_host") for d in fc.get("drives") or []]
        view["cmdline"] = boot.get("boot_args")
        return view
    if monitor == "cloud-hypervisor":
        opts = dict(zip(argv[::2], argv[1::2]))
        view.update(kernel=opts.get("--kernel"), initrd=opts.get("--initramfs"), cmdline=opts.get("--cmdline"))
        if "--disk" in opts:
            view["blocks"].append(_pairs("--disk", opts["--disk"]).get("path"))
        return view
    if monitor.startswith("qemu"):
        for i, a in enumerate(argv):
            nxt = argv[i + 1] if i + 1 < len(argv) else None
            if a == "-kernel":
                view["kernel"] = nxt
            elif a == "-initrd":
                view["initrd"] = nxt
            elif a == "-append":
                view["cmdline"] = nxt
            elif a == "-drive":
                view["blocks"].append(_pairs(a, nxt).get("file"))
            elif a == "-device" and nxt and nxt.startswith("vhost-user-fs-pci"):
                view["share"] = "virtiofs"
            elif a == "-fsdev":
                view["share"] = _pairs(a, nxt).get("path")
        return view
    # solo5 hvt/spt: --opts, then the kernel, then the guest's arguments;
    # the device names (--net:NAME, --block:NAME) are the guest's own
    view["devices"] = []
    rest = list(argv)
    while rest and rest[0].startswith("--"):
        opt = rest.pop(0)
        if opt.startswith(("--net:", "--block:")):
            view["devices"].append(opt[2:].split("=", 1)[0])
        if opt.startswith("--block:"):
            view["blocks"].append(opt.split("=", 1)[1])
    if rest:
        view["kernel"] = rest.pop(0)
        view["cmdline"] = " ".join(rest)
    return view


KEYS = ("unikernelType", "unikernelVersion", "binary", "cmdline", "hypervisor", "initrd", "block", "blkMntPoint")
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
GUESTS = {
    "v0.5.0": ("rumprun", "unikraft", "mirage"),
    "v0.6.0": ("rumprun", "unikraft", "mirage", "mewz", "linux"),
    "v0.7.0": ("rumprun", "unikraft", "mirage", "mewz", "linux"),
    "main": ("rumprun", "unikraft", "mirage", "mewz", "linux", "hermit"),
}
MONITORS = {
    "qemu": "qemu-system-x86_64",
    "hvt": "solo5-hvt",
    "spt": "solo5-spt",
    "firecracker": "firecracker",
    "cloud-hypervisor": "cloud-hypervisor",
}
BLOCK_GUESTS = ("rumprun", "mirage", "linux")
MODES = ("docker", "nerdctl", "ctr", "annot-plain", "annot-b64")
SNAPSHOTTERS = ("overlayfs", "devmapper-ext2", "devmapper-ext4")
DM_DEVICE = "/dev/mapper/containerd-pool-snap-7"


@dataclass(frozen=True)
class Network:
    """The container's eth0 as urunc finds it (Docker's default bridge)."""

    ip: str = "172.17.0.2"
    prefix: int = 16
    gateway: str = "172.17.0.1"
    hostname: str = "c0ffee000001"

    @property
    def mask(self) -> str:
        bits = (0xFFFFFFFF << (32 - self.prefix)) & 0xFFFFFFFF
        return ".".join(str((bits >> s) & 255) for s in (24, 16, 8, 0))


@dataclass(frozen=True)
class Image:
    """What urunc can see of an image: its config and its /urunc.json."""

    entrypoint: tuple = ()
    cmd: tuple = ()
    env: tuple = ()
    workdir: str = ""
    user: str = ""
    labels: dict = field(default_factory=dict)
    urunc_json: str | None = None
    manifest_annotations: dict = field(default_factory=dict)
    passwd: str | None = None  # /etc/passwd and /etc/group of the rootfs, for User names
    group: str | None = None

    @classmethod
    def from_record(cls, rec: dict) -> "Image":
        c = rec.get("config") or {}
        return cls(
            tuple(c.get("Entrypoint") or ()),
            tuple(c.get("Cmd") or ()),
            tuple(c.get("Env") or ()),
            c.get("WorkingDir") or "",
            c.get("User") or "",
            dict(c.get("Labels") or {}),
            rec.get("urunc_json"),
            dict(rec.get("manifest_annotations") or {}),
        )


@dataclass
class Result:
    """What urunc hands the monitor and the guest (or why it does not)."""

    release: str
    outcome: str  # started | runc-fallback | start-error
    reason: str | None = None
    config_source: str | None = None
    process_args: list | None = field(default_factory=list)  # None: the engine refused (no command)
    config: dict = field(default_factory=dict)
    monitor: str | None = None
    view: dict | None = None  # monitor_view(): kernel, initrd, blocks, share, cmdline
    guest_cmdline: str | None = None
    urunit_conf: str | None = None
    urunit_conf_where: str | None = None
    rootfs: str | None = None  # initrd | block | devmapper-block | 9pfs | none
    monitor_missing: list = field(default_factory=list)
    env: list = field(default_factory=list)


def _b64(value: str) -> str:
    """Go's base64.StdEncoding.DecodeString: padded, strict."""
    raw = base64.b64decode(value.encode("ascii"), validate=True)
    return raw.decode("utf-8", "surrogateescape")


def engine_view(img: Image, mode: str, run_args, release: str, net: Network) -> tuple[list, list, dict]:
    """process.args, process.env and the spec annotations, as the engine
    builds them (Docker and nerdctl alike; ctr and Kubernetes differ in env
    and annotations)."""
    args = list(img.entrypoint) + (list(run_args) if run_args is not None else list(img.cmd))
    # Docker: PATH, HOSTNAME, the image's; containerd (nerdctl, Kubernetes):
    # PATH, the image's, HOSTNAME; plain ctr sets no HOSTNAME
    env = [] if any(e.startswith("PATH=") for e in img.env) else [DEFAULT_PATH]
    host = ["HOSTNAME=" + net.hostname]
    if mode == "docker":
        env += host + list(img.env)
    else:
        env += list(img.env) + (host if mode != "ctr" else [])
    labels = {k: v for k, v in img.labels.items() if k.startswith(PREFIX)}
    ann: dict = {}
    if mode == "ctr" and release == "main":
        ann = dict(labels)
        ann.update({k: v for k, v in img.manifest_annotations.items() if k.startswith(PREFIX)})
    elif mode == "annot-plain":
        ann = labels
    elif mode == "annot-b64":
        ann = {k: base64.b64encode(v.encode()).decode() for k, v in labels.items()}
    return args, env, ann


def _config(img: Image, ann: dict, release: str) -> tuple[str, dict | None]:
    """(where the config came from, the config) or (source, None) = runc."""
    dm_key = "useDMBlock" if release == "v0.5.0" else "mountRootfs"
    keys = KEYS + (dm_key,)
    short = {k[len(PREFIX) :]: v for k, v in ann.items() if k.startswith(PREFIX)}
    if release in ("v0.5.0", "v0.6.0"):
        use_ann = any(short.get(k) for k in KEYS)
    else:
        use_ann = all(short.get(k) for k in ("unikernelType", "hypervisor", "binary"))
    if use_ann:
        src, raw = "spec annotations", {k: short[k] for k in keys if k in short}
        if release != "main":
            try:
                raw = {k: _b64(v) for k, v in raw.items()}
            except (ValueError, binascii.Error):
                return src, None
        return src, raw
    src = "/urunc.json"
    if img.urunc_json is None:
        return src, None
    try:
        doc = json.loads(img.urunc_json)
        raw = {k[len(PREFIX) :]: _b64(v) for k, v in doc.items() if k.startswith(PREFIX) and k[len(PREFIX) :] in keys}
    except (ValueError, binascii.Error, AttributeError, TypeError):
        return src, None
    if release not in ("v0.5.0", "v0.6.0") and not all(raw.get(k) for k in ("unikernelType", "hypervisor", "binary")):
        return src, None
    return src, raw


def _version_ge(v: str, want: tuple) -> bool:
    """Unikraft: unikernelVersion >= want, or unset/unparseable (new style)."""
    try:
        parts = tuple(int(x) for x in v.lstrip("v").split("."))
    except ValueError:
        return True
    return parts >= want


def _parse_bool(s: str) -> bool | None:
    return {
        "1": True,
        "t": True,
        "T": True,
        "TRUE": True,
        "true": True,
        "True": True,
        "0": False,
        "f": False,
        "F": False,
        "FALSE": False,
        "false": False,
        "False": False,
    }.get(s)


def _go_json_string(s: str) -> str:
    """A string as Go's json.Marshal writes it (HTML-safe escapes)."""
    out = json.dumps(s, ensure_ascii=False)
    return (
        out.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _uses_urunit(args: list) -> bool:
    return bool(args) and "urunit" in args[0]


def _unikraft(release: str, cfg: dict, args: list, env: list, net: Network, vfs: str | None) -> str:
    new = _version_ge(cfg.get("unikernelVersion", ""), (0, 16, 1))
    if new:
        netp = f"netdev.ip={net.ip}/24:{net.gateway}:8.8.8.8"
        fs = {"initrd": 'vfs.fstab=[ "initrd0:/:extract:::" ]', "9pfs": 'vfs.fstab=[ "fs0:/:9pfs:::" ]'}.get(vfs or "", "")
        tail = f"{netp}   {fs}"
    else:
        netp = f"netdev.ipv4_addr={net.ip} netdev.ipv4_gw_addr={net.gateway} netdev.ipv4_subnet_mask={net.mask}"
        fs = "vfs.rootfs=initrd" if vfs == "initrd" else ""  # no 9pfs parameter in the old style
        tail = f"{netp} {fs}"
    if release == "v0.5.0":
        cmdline = cfg.get("cmdline", "")
        i = cmdline.find(" ")
        argv0, rest = (cmdline, cmdline) if i < 0 else (cmdline[:i], cmdline[i:])
        return f"{argv0} {tail} -- {rest}"
    envp = ("env.vars=[ " + " ".join(env) + " ]") if new else ""
    return f"Unikraft  {envp} {tail} -- {' '.join(args)}"


def _rumprun(release: str, args: list, env: list, net: Network, blk: bool, cfg: dict, mnt: str = "/data") -> str:
    cmd = cfg.get("cmdline", "") if release == "v0.5.0" else " ".join(args)
    parts = ['"cmdline":' + _go_json_string(cmd)]
    if release not in ("v0.5.0", "v0.6.0"):
        parts += ['"env":' + _go_json_string(e) for e in env]
    parts.append(
        '"net":{"if":"ukvmif0","cloner":"True","type":"inet","method":"static",'
        f'"addr":"{net.ip}","mask":"{str(net.prefix)[0]}","gw":"{net.gateway}"}}'
    )
    if blk:
        parts.append('"blk":{"source":"etfs","path":"/dev/ld0a","fstype":"blk","mountpoint":' + _go_json_string(mnt) + "}")
    return "{" + ",".join(parts) + "}"


def _mirage(release: str, args: list, net: Network, cfg: dict) -> str:
    prefix = net.prefix if release == "main" else 24
    cmd = cfg.get("cmdline", "") if release == "v0.5.0" else " ".join(args)
    return f"--ipv4={net.ip}/{prefix} --ipv4-gateway={net.gateway} {cmd}"


def _linux(release: str, args: list, env: list, net: Network, root: str, conf_where: str | None) -> str:
    parts = ["panic=-1", "console=ttyS0"]
    parts += {
        "initrd": ["root=/dev/ram0", "rw"],
        "block": ["root=/dev/vda", "rw"],
        "devmapper-block": ["root=/dev/vda", "rw"],
        "9pfs": ["root=fs0", "rw", "rootfstype=9p", "rootflags=trans=virtio,version=9p2000.L,msize=5000000,cache=mmap,posixacl"],
        "virtiofs": ["root=fs0", "rw", "rootfstype=virtiofs"],
    }.get(root, [])
    parts.append(f"ip={net.ip}::{net.gateway}:{net.mask}:urunc:eth0:off")
    if conf_where == "initrd":
        parts.append("URUNIT_CONFIG=/urunit.conf")
    elif conf_where is not None:
        parts += ["retain_initrd", "URUNIT_CONFIG=/sys/firmware/initrd"]
    else:
        parts += env
    init = "rdinit=" if root == "initrd" else "init="
    parts.append(init + (args[0] if args else ""))
    if len(args) > 1:
        parts.append("--")
        parts += [f"'{a}'" if " " in a else a for a in args[1:]]
    return " ".join(parts)


def _lookup(text: str | None, key: str, is_group: bool) -> tuple[int, int] | None:
    """(id, gid) of a passwd/group entry named or numbered `key`."""
    for line in (text or "").split("\n"):
        f = line.split(":")
        if len(f) >= 4 and key in (f[0], f[2]) and f[2].isdigit() and (is_group or f[3].isdigit()):
            return int(f[2]), int(f[2] if is_group else f[3])
    return None


def resolve_user(img: Image) -> tuple[int, int] | None:
    """process.user as the engine sets it from the image's User (a number,
    or a name looked up in the rootfs's /etc/passwd, /etc/group); None: the
    engine refuses to create the container."""
    name, _, group = img.user.partition(":")
    if not name:
        return 0, 0
    if name.isdigit():
        uid, gid = int(name), (_lookup(img.passwd, name, False) or (0, 0))[1]
    else:
        found = _lookup(img.passwd, name, False)
        if found is None:
            return None
        uid, gid = found
    if group:
        g = int(group) if group.isdigit() else (_lookup(img.group, group, True) or (None,))[0]
        if g is None:
            return None
        gid = g
    return uid, gid


def _urunit_conf(env: list, img: Image, volumes: list) -> str:
    uid, gid = resolve_user(img) or (0, 0)
    lines = ["UES", *env, "UEE", "UCS", f"UID:{uid}", f"GID:{gid}", f"WD:{img.workdir or '/'}", "UCE", "UBS", *volumes, "UBE"]
    return "\n".join(lines) + "\n"


def _rootfs(
    release: str, cfg: dict, guest: str, monitor: str, snapshotter: str, virtiofsd: bool = False
) -> tuple[str, str | None]:
    """(rootfs kind, error reason): initrd | block | devmapper-block |
    virtiofs | 9pfs | none | unreachable (v0.6.0: chrooted into an empty
    monitor rootfs)."""
    devmapper = snapshotter.startswith("devmapper")
    dm_fs_ok = devmapper and (guest == "linux" or (guest == "rumprun" and snapshotter == "devmapper-ext2"))
    block, mnt, initrd = cfg.get("block", ""), cfg.get("blkMntPoint", ""), cfg.get("initrd", "")
    if release == "v0.5.0":
        use_dm = _parse_bool(cfg.get("useDMBlock", ""))
        if initrd:
            return "initrd", None
        if block and guest in BLOCK_GUESTS:
            return "block", None
        if (use_dm is None or use_dm) and guest == "rumprun" and snapshotter == "devmapper-ext2":
            return "devmapper-block", None
        return "none", None
    mount_rootfs = _parse_bool(cfg.get("mountRootfs", "")) is True
    shared = guest in ("linux", "unikraft") and monitor == "qemu"
    if release == "v0.6.0":
        if block and guest in BLOCK_GUESTS:
            return "block", None
        if initrd and not mount_rootfs:
            return "initrd", None
        if mount_rootfs:
            if dm_fs_ok:
                return "devmapper-block", None
            if shared and not initrd:
                return "9pfs", None
            return "unreachable", None
        return "none", None
    if block and not mnt and guest in BLOCK_GUESTS:
        return "none", "block-without-mountpoint"
    if initrd:
        return "initrd", None
    if block and mnt == "/" and guest in BLOCK_GUESTS:
        return "block", None
    if mount_rootfs:
        if dm_fs_ok:
            return "devmapper-block", None
        vfs_monitors = ("qemu", "cloud-hypervisor") if release == "main" else ("qemu",)
        if virtiofsd and guest == "linux" and monitor in vfs_monitors:
            return "virtiofs", None
        if shared:
            return "9pfs", None
        return "none", "no-rootfs-path"
    return "none", None


def model(
    img: Image,
    release: str,
    mode: str = "docker",
    snapshotter: str = "overlayfs",
    run_args=None,
    net: Network = Network(),
    virtiofsd: bool = False,
) -> Result:
    """What `release` of urunc does with `img` run as `mode` presents it."""
    args, env, ann = engine_view(img, mode, run_args, release, net)
    if not args:
        return Result(release, "engine-refuses", "no-command", config_source="", process_args=None, env=env)
    if resolve_user(img) is None:
        return Result(release, "engine-refuses", "user-not-found", config_source="", process_args=args, env=env)
    src, cfg = _config(img, ann, release)
    res = Result(release, "started", config_source=src, process_args=args, env=env)
    if cfg is None:
        res.outcome, res.reason = "runc-fallback", "not-a-unikernel"
        return res
    res.config = cfg
    guest, hyp = cfg.get("unikernelType", ""), cfg.get("hypervisor", "")
    if guest not in GUESTS[release]:
        res.outcome, res.reason = "start-error", "guest-not-supported"
        return res
    if release != "v0.5.0" and not args:
        args = cfg.get("cmdline", "").split()
    monitor = MONITORS.get(hyp)
    if hyp == "cloud-hypervisor" and release != "main":
        res.outcome, res.reason = "start-error", "monitor-not-supported"
        return res
    kind, err = _rootfs(release, cfg, guest, hyp, snapshotter, virtiofsd)
    if err:
        res.outcome, res.reason = "start-error", err
        return res
    res.monitor, res.rootfs = monitor, kind
    rel = (lambda p: p.lstrip("/")) if release == "v0.5.0" else (lambda p: p)
    binary, initrd, block = cfg.get("binary", ""), cfg.get("initrd", ""), cfg.get("block", "")
    mnt = cfg.get("blkMntPoint", "")
    kernel = rel(binary)
    view = {"kernel": kernel, "initrd": None, "blocks": [], "share": None, "cmdline": None}
    if kind in ("9pfs", "virtiofs"):
        view["kernel"] = "/cntrRootfs" + binary
        view["share"] = "/cntrRootfs" if kind == "9pfs" else "virtiofs"
    if kind == "unreachable":
        res.monitor_missing = sorted({binary} | ({initrd} if initrd else set()))
    if initrd and (kind in ("initrd", "unreachable") or release == "v0.6.0" and kind == "block"):
        view["initrd"] = rel(initrd)
    if kind == "block":
        view["blocks"].append(rel(block))
    elif kind == "devmapper-block":
        view["blocks"].append(DM_DEVICE)
    volumes: list = []
    if block and mnt not in ("", "/") and release in ("v0.7.0", "main") and guest in BLOCK_GUESTS:
        if release == "v0.7.0" or kind == "none":
            view["blocks"].append(block)
            volumes = ["ID:annot_vol", f"MP:{mnt}"]
    conf_where = None
    if guest == "linux" and release in ("v0.7.0", "main") and _uses_urunit(args):
        conf_where = "initrd" if kind == "initrd" else "file"
        res.urunit_conf = _urunit_conf(env, img, volumes)
        if conf_where == "file" and not (hyp == "firecracker" and view["initrd"]):
            view["initrd"] = "/urunit.conf"
        res.urunit_conf_where = conf_where
    if guest == "unikraft":
        # up to v0.6.0 the initrd is named whenever it is set (v0.6.0: even
        # when the monitor is chrooted where it cannot find it)
        old_initrd = release in ("v0.5.0", "v0.6.0") and initrd and kind != "9pfs"
        vfs = "initrd" if kind == "initrd" or old_initrd else ("9pfs" if kind == "9pfs" else None)
        cmd = _unikraft(release, cfg, args, env, net, vfs)
    elif guest == "rumprun":
        blk = release in ("v0.5.0", "v0.6.0") or bool(view["blocks"])
        # v0.7.0+: an image's block volume mounts at its blkMntPoint; the
        # container snapshot (and everything up to v0.6.0) at /data
        at = mnt if release in ("v0.7.0", "main") and block and kind != "devmapper-block" else "/data"
        cmd = _rumprun(release, args, env, net, blk, cfg, at)
    elif guest == "mirage":
        cmd = _mirage(release, args, net, cfg)
    elif guest == "linux":
        cmd = _linux(release, args, env, net, kind, conf_where)
    elif guest == "mewz":
        # the args are dropped; up to v0.7.0 a trailing space remains
        cmd = f"ip={net.ip}/{net.prefix} gateway={net.gateway}" + ("" if release == "main" else " ")
    elif guest == "hermit":
        cmd = f"ip={net.ip}/{net.prefix} gateway={net.gateway} -- {' '.join(args)}"
    else:
        cmd = None
    res.guest_cmdline = cmd
    view["cmdline"] = cmd
    if hyp in ("hvt", "spt"):
        names = {"rumprun": ("net:tap", "block:rootfs"), "mirage": ("net:service", "block:storage")}.get(guest)
        view["devices"] = [names[0]] + [names[1]] * len(view["blocks"]) if names else []
    if guest == "linux" and hyp in ("hvt", "spt"):
        # no such pair: urunc still starts Solo5, with Linux's network
        # option where the kernel goes (v0.6.0: the tap name, later: "")
        net_opt = "tap0_urunc" if release == "v0.6.0" else ""
        view.update(kernel=net_opt, initrd=None, cmdline=f"{kernel} {cmd}")
        res.monitor_missing = [net_opt] if net_opt else []
    res.view = view
    return res


# main logs its rootfs choice; our kinds in its words
ROOTFS_TYPE_MAIN = {"devmapper-block": "block"}
