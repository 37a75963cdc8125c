"""What each targeted urunc release makes of an image, as refusals and warnings.

The facts are data: contract.json `releases` (from ../shared/urunc-releases.md,
urunc's own code run by tools/urunc-harness). An image is built for a set of
releases (`urunc` in the spec, `--urunc` on the CLI; default v0.6.0, v0.7.0,
main) and must be read as the spec meant by every one of them: where a
targeted release would fail or mangle the guest's input, the spec is refused
(exit 2) naming the release, the field and what urunc does; where it only
might (it depends on the snapshotter), a warning says so.

Pure functions over plain values. The validator judges with them the spec's
values and what a rootfs image gives (its command, Env and WorkingDir, read
before validation by rootfs_image_config.py)."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, replace
from typing import Any, Iterable

from . import syntax
from .resources import contract

#: rumprun's JSON command line comes from Go's json.Marshal: these reach the
#: guest as \u003c-style or backslash escapes, literally.
RUMPRUN_BAD = re.compile(r'[&<>"\\\n]')
_WS = re.compile(r"\s")


@dataclass(frozen=True)
class Finding:
    """One refusal ("error") or warning about one field, on some releases."""

    level: str  # error | warning
    field: str
    message: str  # what urunc does, without the release
    releases: tuple[str, ...]
    value: Any = None
    hint: str | None = None

    def text(self) -> str:
        return f"urunc {join_releases(self.releases)}: {self.message}"


def join_releases(names: Iterable[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def releases() -> dict[str, dict[str, Any]]:
    return contract()["releases"]


def default_targets() -> tuple[str, ...]:
    return tuple(contract()["defaultTargets"])


def parse_targets(value: Any) -> tuple[tuple[str, ...] | None, str | None]:
    """`urunc` as written (a list, or one comma-separated string) -> the
    releases in contract order, or (None, what is wrong). An empty list
    targets no release: only what no urunc can run is checked (the
    guest/monitor pairs and path rules), for a urunc urunix does not know."""
    if value is None:
        return default_targets(), None
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")] if value.strip() else []
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value]
    else:
        return None, "must be a list of urunc releases"
    known = releases()
    bad = [v for v in items if v not in known]
    if bad:
        return None, f"names {', '.join(repr(b) for b in bad)}, not a urunc release urunix knows"
    return tuple(r for r in known if r in items), None


def targets_hint(fmt: str, names: Iterable[str]) -> str:
    """How to write a target list in the user's own syntax."""
    names = list(names)
    if fmt == "args.nix":
        return "urunc = [ " + " ".join(f'"{n}"' for n in names) + " ];"
    if fmt == "containerfile":
        return f'LABEL urunix.urunc="{",".join(names)}"'
    return "urunc: [" + ", ".join(names) + "]"


def is_urunit(path: str | None) -> bool:
    """urunc v0.7.0+ treat args[0] as urunit when its name says so (linux.go)."""
    return path is not None and "urunit" in posixpath.basename(path)


def _version_before(version: str | None, floor: tuple[int, ...]) -> bool:
    """unikernelVersion older than `floor`; unset or unparseable is not (urunc)."""
    if not version:
        return False
    m = re.match(r"^v?(\d+)\.(\d+)\.(\d+)", version)
    return m is not None and tuple(int(x) for x in m.groups()) < floor


_SCHEMA = type("Schema", (), {"format": "yaml", "names": {}})()


class Rules:
    """The findings for one image on its targets. Add findings with
    `refuse`/`warn` per release; `findings()` groups equal ones."""

    def __init__(self, targets: Iterable[str], spec: Any = None):
        self.targets = tuple(targets)
        # hints name fields and fixes in the user's own syntax (syntax.py);
        # without a spec at hand, in the spec schema's
        self.spec = spec if spec is not None else _SCHEMA
        self.rel = releases()
        self._out: list[tuple[str, str, str, str, Any, str | None]] = []

    def name(self, field: str) -> str:
        return syntax.name(self.spec, field)

    def say(self, field: str, value: Any, fallback: str = "") -> str:
        return syntax.example(self.spec, field, value, fallback or self.name(field))

    def refuse(self, release: str, field: str, message: str, value: Any = None, hint: str | None = None) -> None:
        self._out.append(("error", release, field, message, value, hint))

    def warn(self, release: str, field: str, message: str, value: Any = None, hint: str | None = None) -> None:
        self._out.append(("warning", release, field, message, value, hint))

    def findings(self) -> list[Finding]:
        grouped: dict[tuple, list[str]] = {}
        for level, release, field, message, value, hint in self._out:
            key = (level, field, message, repr(value), hint)
            if release not in grouped.setdefault(key, []):
                grouped[key].append(release)
        out = []
        for (level, field, message, _v, hint), rels in grouped.items():
            value = next(v for lv, r, f, m, v, h in self._out if (lv, f, m, h) == (level, field, message, hint))
            out.append(Finding(level, field, message, tuple(rels), value, hint))
        return out

    # -- the image's urunc metadata (spec time) ----------------------------

    def platform(self, guest: str | None, monitor: str | None) -> None:
        c = contract()
        for r in self.targets:
            rel = self.rel[r]
            if guest in c["guests"] and guest not in rel["guests"]:
                self.refuse(
                    r,
                    "annotations.unikernelType",
                    f"has no {guest} guest (it came in {c['guests'][guest]['since']}); urunc fails with "
                    "'unikernel is not supported'",
                    guest,
                )
            if monitor in c["monitors"] and monitor not in rel["monitors"]:
                self.refuse(
                    r,
                    "annotations.hypervisor",
                    f"has no {monitor} monitor (it came in {c['monitors'][monitor]['since']})",
                    monitor,
                )

    def metadata(self, ann: dict[str, str]) -> None:
        """Keys no release reads, block/blkMntPoint, initrd next to block,
        mountRootfs/useDMBlock."""
        guest = ann.get("unikernelType", "")
        monitor = ann.get("hypervisor", "")
        for key in ("solo5NetDev", "solo5BlkDev"):
            if key in ann:
                names = "rumprun --net:tap/--block:rootfs, Mirage --net:service/--block:storage"
                for r in self.targets:
                    self.refuse(
                        r,
                        f"annotations.{key}",
                        f"does not read {key}: the Solo5 device names are fixed ({names})",
                        ann[key],
                        hint=f"remove {self.name('annotations.' + key)}",
                    )
        block, initrd, mnt = ann.get("block"), ann.get("initrd"), ann.get("blkMntPoint")
        if guest == "rumprun" and mnt is not None and mnt != "/data":
            for r in self.targets:
                self.refuse(
                    r,
                    "annotations.blkMntPoint",
                    "rumprun mounts its block device at /data whatever blkMntPoint says",
                    mnt,
                    hint=f"set {self.say('annotations.blkMntPoint', '/data')} (or leave it out: urunix writes it)",
                )
        if block and not mnt:
            for r in self.targets:
                if self.rel[r]["blkMntPoint"] == "required":
                    self.refuse(
                        r,
                        "annotations.blkMntPoint",
                        "a block image without blkMntPoint stops the container at start (block.go:handleExplicitBlockImage)",
                        hint=f"set {self.say('annotations.blkMntPoint', '/')} for the guest's rootfs, or the path of an extra volume",
                    )
        if block and initrd:
            for r in self.targets:
                does = self.rel[r]["initrdWithBlock"]
                if does not in ("n/a",) and "extra volume" not in does:
                    self.refuse(
                        r,
                        "annotations.block",
                        f"a block image next to an initrd: urunc {does}",
                        block,
                        hint="use one of initrd and block for the guest's rootfs",
                    )
        if ann.get("mountRootfs", ann.get("useDMBlock")) == "true":
            self.snapshot(guest, monitor, block, initrd)

    def snapshot(self, guest: str, monitor: str, block: str | None, initrd: str | None) -> None:
        """mountRootfs / useDMBlock = true: where does each release find a path?"""
        field = "annotations.mountRootfs"
        for r in self.targets:
            rel = self.rel[r]
            key = rel["snapshotKey"]
            fs = rel["snapshotAsBlock"].get(guest)
            shared = monitor in rel["sharedFs"].get(guest, [])
            if key == "useDMBlock":
                # v0.5.0: ignored unless the guest takes block devices
                if fs and not block:
                    self.warn(
                        r,
                        "annotations.useDMBlock",
                        f"hands the container snapshot to {guest} as a block "
                        f"device only under containerd's devmapper snapshotter ({'/'.join(fs)}); elsewhere the "
                        "guest gets no rootfs",
                    )
                continue
            if initrd:
                if rel["appendsToInitrd"]:
                    self.warn(r, field, "ignores mountRootfs next to an initrd (the initrd wins)", "true")
                else:
                    self.refuse(
                        r,
                        field,
                        f"with an initrd, mountRootfs=true {rel['mountRootfsNoPath']}",
                        "true",
                        hint=f"remove {self.name('annotations.mountRootfs')} (or set {self.say('annotations.mountRootfs', 'false')}): "
                        "the initrd is the guest's rootfs",
                    )
                continue
            if block:
                continue  # the block image wins over mountRootfs on every release
            if shared:
                continue  # 9pfs / virtiofs on this monitor, any snapshotter
            if fs:
                self.warn(
                    r,
                    field,
                    f"can use the container rootfs of a {guest} guest on {monitor} only under "
                    f"containerd's devmapper snapshotter ({'/'.join(fs)}); elsewhere it "
                    f"{rel['mountRootfsNoPath']}",
                    "true",
                    hint="run with --snapshotter devmapper, or build the rootfs as a block image (rootfs.type = block)",
                )
            else:
                self.refuse(
                    r,
                    field,
                    f"has no way to hand the container rootfs to a {guest} guest on {monitor} "
                    f"(no block support for its snapshot, no shared fs): it {rel['mountRootfsNoPath']}",
                    "true",
                    hint="build the rootfs as an initrd or a block image, or remove " + self.name("annotations.mountRootfs"),
                )

    # -- the command and the environment (the spec's or the rootfs image's) ----

    def command(self, guest: str, argv: list[str], cmdline: str | None, names: list[str] | None = None) -> None:
        """`argv`: process.args as the image gives them (Entrypoint+Cmd);
        `cmdline`: the annotation (v0.5.0's only source); `names`: the
        field that holds each argument, for messages."""
        args = list(argv)
        names = names or [f"cmd.{i}" for i in range(len(args))]
        field = names[0].rsplit(".", 1)[0] if names else "cmd"
        for r in self.targets:
            rel = self.rel[r]
            if guest not in rel["guests"]:
                continue
            if rel["command"] == "cmdline" and guest == "unikraft" and not (cmdline or "").split():
                self.refuse(
                    r,
                    "annotations.cmdline",
                    "reads only the cmdline annotation; an empty one makes the "
                    "network parameter the Unikraft app's argv0 (unikraft.go:Init)",
                    cmdline or "",
                    hint="give the program name and its arguments, e.g. "
                    + self.say("annotations.cmdline", "redis-server /conf/redis.conf"),
                )
            if guest in ("unikraft", "rumprun", "mirage"):
                for i, a in enumerate(args):
                    if _WS.search(a):
                        how = {"unikraft": "Unikraft's argument parser", "rumprun": "rumprun's parser", "mirage": "the guest"}[
                            guest
                        ]
                        self.refuse(
                            r,
                            names[i],
                            f"joins the arguments with spaces and {how} splits them again: "
                            "an argument holding whitespace arrives as several",
                            a,
                            hint="split it into separate arguments, or drop the whitespace",
                        )
            if guest in ("unikraft", "rumprun"):
                for i, a in enumerate(args):
                    if ("'" in a or '"' in a) and not _WS.search(a) and not (guest == "rumprun" and '"' in a):
                        self.refuse(
                            r,
                            names[i],
                            f"joins the arguments with spaces and {guest}'s parser groups the "
                            "words between quote characters: a quote mark inside an argument regroups them",
                            a,
                            hint="avoid ' and \" in the arguments",
                        )
            if guest == "rumprun":
                for i, a in enumerate(args):
                    if RUMPRUN_BAD.search(a):
                        self.refuse(
                            r,
                            names[i],
                            "writes rumprun's command line with Go's json.Marshal: "
                            '& < > " \\ and newlines reach the guest as \\u0026-style escapes, literally',
                            a,
                            hint="avoid these characters in rumprun arguments (e.g. put them in a config file)",
                        )
            if guest == "mewz" and any(args):
                self.refuse(
                    r,
                    field,
                    "hands a Mewz guest only ip= and gateway=: its arguments are dropped",
                    args,
                    hint="remove the command: " + self.say("cmd", [""]),
                )
            if guest == "linux" and args:
                self.linux_command(r, args, names)

    def linux_command(self, r: str, args: list[str], names: list[str]) -> None:
        urunit = is_urunit(args[0])
        multi = 0
        for i, a in enumerate(args[1:], start=1):
            if '"' in a:
                self.refuse(
                    r,
                    names[i],
                    "puts the Linux arguments on the kernel command line, where a \" upsets the kernel's own parsing",
                    a,
                    hint='avoid " in Linux arguments',
                )
                continue
            if re.search(r"[^\S ]", a):
                self.refuse(
                    r,
                    names[i],
                    "puts the Linux arguments on the kernel command line: a tab or newline splits the argument",
                    a,
                    hint="use plain spaces",
                )
                continue
            if " " in a.strip():
                multi += 1
                if not urunit:
                    self.refuse(
                        r,
                        names[i],
                        f"wraps an argument holding a space in '...', which only urunit "
                        f"undoes; {args[0]} gets the pieces, quote marks included",
                        a,
                        hint="use urunit as the init ("
                        + self.say("init", "./urunit", "urunit first in the command")
                        + "), or split the argument",
                    )
                elif multi == 2:
                    self.refuse(
                        r,
                        names[i],
                        "passes the arguments through urunit, which drops every argument after the first one holding a space",
                        a,
                        hint='keep at most one argument with spaces, the last one (e.g. sh -c "...")',
                    )

    def env(self, guest: str, env: dict[str, str], argv0: str | None, version: str | None) -> None:
        """The spec's own environment (Docker's PATH/HOSTNAME are urunc's concern)."""
        if not env:
            return
        for r in self.targets:
            rel = self.rel[r]
            if guest not in rel["guests"]:
                continue
            if guest not in rel["env"]:
                self.refuse(
                    r,
                    "env",
                    f"does not hand the environment to a {guest} guest; it is dropped",
                    sorted(env),
                    hint=f"remove {self.name('env')}, or pass the values as arguments",
                )
                continue
            if guest == "unikraft" and _version_before(version, (0, 16, 1)):
                self.refuse(
                    r,
                    "env",
                    f"drops the environment of a Unikraft guest older than 0.16.1 (unikernelVersion {version})",
                    sorted(env),
                )
                continue
            on_kernel_line = guest == "linux" and not (rel["linuxEnv"].startswith("urunit.conf") and is_urunit(argv0))
            for k, v in env.items():
                if guest == "unikraft" and _WS.search(v):
                    self.refuse(
                        r,
                        f"env.{k}",
                        "writes the environment into Unikraft's env.vars=[ ... ], which splits a value at whitespace",
                        v,
                        hint="drop the whitespace from the value",
                    )
                elif on_kernel_line and (_WS.search(v) or '"' in v):
                    self.refuse(
                        r,
                        f"env.{k}",
                        "puts each K=V of a Linux guest on the kernel command line, where "
                        "whitespace or \" splits it and shifts the init's arguments",
                        v,
                        hint="drop the whitespace (urunc v0.7.0+ hand urunit the env in urunit.conf, intact)",
                    )
                elif guest == "rumprun" and RUMPRUN_BAD.search(k + "=" + v):
                    self.refuse(
                        r,
                        f"env.{k}",
                        "writes rumprun's env with Go's json.Marshal: & < > \" \\ and "
                        "newlines reach the guest as \\u0026-style escapes, literally",
                        v,
                        hint="avoid these characters in rumprun env values",
                    )

    def workdir_user(self, guest: str, argv0: str | None, workdir: str | None, user: str | None) -> None:
        for fieldname, value in (("WorkingDir", workdir), ("User", user)):
            if not value or (fieldname == "WorkingDir" and value == "/"):
                continue
            for r in self.targets:
                who = self.rel[r]["workdirUser"]
                if not ("linux+urunit" in who and guest == "linux" and is_urunit(argv0)):
                    self.warn(
                        r,
                        fieldname,
                        f"does not hand {fieldname} to the guest "
                        f"({'only Linux with urunit gets it, from v0.7.0' if guest == 'linux' else 'it is not Linux with urunit'})",
                        value,
                    )


def fill_defaults(ann: dict[str, str], targets: Iterable[str]) -> None:
    """What every targeted release needs written: blkMntPoint with block
    (v0.7.0+ stop without it; rumprun mounts at /data, a Linux block image
    is its rootfs), and for v0.5.0 useDMBlock = "false" unless asked (unset
    means true there)."""
    guest = ann.get("unikernelType", "")
    if ann.get("block") and not ann.get("blkMntPoint") and not (guest == "linux" and ann.get("initrd")):
        mnt = contract()["guests"].get(guest, {}).get("blkMntPoint")
        if mnt:
            ann["blkMntPoint"] = mnt
    if "v0.5.0" in targets and "useDMBlock" not in ann and "mountRootfs" not in ann:
        ann["useDMBlock"] = ann["mountRootfs"] = "false"


def unikraft_args(cmdline: str | None, split) -> list[str]:
    """The app arguments a bunny/bima style Unikraft `cmdline` means: its
    first word is argv0 (what urunc v0.5.0 uses as argv0; v0.6.0+ write the
    constant `Unikraft`), the rest are the arguments. A one-word cmdline is
    the ELF loader's program (v0.5.0 hands it argv [w, w]): one argument."""
    words = split(cmdline or "")
    return words[1:] if len(words) > 1 else words


# -- the validator's entry points ------------------------------------------------


def spec_targets(spec) -> tuple[tuple[str, ...], dict[str, Any] | None]:
    """The spec's `urunc` (a Containerfile: LABEL urunix.urunc), else the
    default; and the problem's keywords when it names no known release."""
    fieldname, value = "urunc", spec.urunc
    if value is None and isinstance(spec.labels, dict) and "urunix.urunc" in spec.labels:
        fieldname, value = "labels.urunix.urunc", spec.labels["urunix.urunc"]
    targets, wrong = parse_targets(value)
    if wrong:
        return default_targets(), {
            "fieldname": fieldname,
            "message": wrong,
            "value": value,
            "allowed": ", ".join(releases()),
            "hint": targets_hint(spec.format, default_targets()),
        }
    return targets or (), None


def argv_fields(spec, argv: list[str]) -> list[str]:
    """The spec field that gave each argument of the image's argv."""
    ep = spec.entrypoint if isinstance(spec.entrypoint, list) else []
    cmd = spec.cmd if isinstance(spec.cmd, list) else None
    if cmd is None and not ep:
        return ["annotations.cmdline"] * len(argv)
    names = [f"entrypoint.{i}" for i in range(len(ep))] + [f"cmd.{i}" for i in range(len(cmd or []))]
    extra = len(argv) - len(names)  # an init urunix put first
    return (["init"] * extra + names)[: len(argv)] if extra >= 0 else names[-len(argv) :]


def _own_env(spec, env: dict[str, str]) -> dict[str, str]:
    """The spec's own environment: not the PATH Docker gives a Containerfile
    stage that has none (the user did not write it; a release that drops
    the env loses nothing)."""
    if spec.format != "containerfile":
        return env
    from .loaders.containerfile import DEFAULT_PATH

    return {k: v for k, v in env.items() if not (k == "PATH" and v == DEFAULT_PATH)}


@dataclass(frozen=True)
class FromImage:
    """What the image takes from its rootfs image (rootfs_image_config.py),
    judged under the image's names: `image Entrypoint/Cmd`, `image Env`."""

    argv: bool  # the command is the image's (the spec gives none)
    env: list[str]  # the image's Env the spec does not set
    workdir: str | None


def judge(
    spec,
    targets: tuple[str, ...],
    ann: dict[str, str],
    entrypoint: list[str] | None,
    cmd: list[str],
    env: dict[str, str],
    argv_from_image: bool,
    image: FromImage | None = None,
) -> list[tuple[str, str, str, dict[str, Any]]]:
    """Every finding for a validated spec: (level, field, message, keywords
    for Problem). argv_from_image: the rootfs image's command was not read,
    so it is not judged."""
    guest, monitor = ann.get("unikernelType", ""), ann.get("hypervisor", "")
    rules = Rules(targets, spec)
    rules.platform(guest, monitor)
    rules.metadata(ann)
    argv = (entrypoint or []) + cmd
    argv0 = argv[0] if argv else None
    if not argv_from_image:
        names = ["image Entrypoint/Cmd"] * len(argv) if image and image.argv else argv_fields(spec, argv)
        rules.command(guest, argv, ann.get("cmdline"), names)
    rules.env(guest, _own_env(spec, env), argv0, ann.get("unikernelVersion"))
    found = rules.findings()
    if image is not None:
        base = Rules(targets, spec)
        base.env(guest, dict(e.split("=", 1) for e in image.env if "=" in e), argv0, ann.get("unikernelVersion"))
        base.workdir_user(guest, argv0, image.workdir, None)
        for f in base.findings():
            found.append(replace(f, field="image Env" + f.field[3:]) if f.field.startswith("env") else f)
    raw = spec.annotations if isinstance(spec.annotations, dict) else {}
    written = {str(k).rsplit(".", 1)[-1] for k in raw}
    out = []
    for f in found:
        where = f.field
        if where == "annotations.mountRootfs" and "useDMBlock" in written and "mountRootfs" not in written:
            where = "annotations.useDMBlock"  # the name the user wrote
        hint = f.hint
        if f.level == "error" and f.field in ("annotations.unikernelType", "annotations.hypervisor"):
            ok = [r for r, rel in releases().items() if guest in rel["guests"] and monitor in rel["monitors"]]
            hint = f"target the releases that run it: {targets_hint(spec.format, ok)} (or --urunc {','.join(ok)})"
        kw: dict[str, Any] = {"hint": hint}
        if f.value is not None:
            kw["value"] = f.value
        out.append((f.level, where, f.text(), kw))
    return out
