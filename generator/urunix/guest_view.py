"""`urunix inspect --guest` and `--annotations`: what each urunc release
hands the monitor and the guest for an image, from our model of urunc
(urunc_model), and the pod annotations each release needs."""

from __future__ import annotations

import base64

from . import urunc_model as M
from .guest_args import app_view
from .imagefile import open_image
from .rootfs.flatten import read_file

DEFAULT_TARGETS = ("v0.6.0", "v0.7.0", "main")


def load(path: str) -> M.Image:
    """The parts of an image urunc reads: config and /urunc.json."""
    with open_image(path) as (info, store):
        cfg = info.config.get("config") or {}
        raw = read_file(store, info, "/urunc.json")
        ann = dict(info.manifest_annotations)
        user = cfg.get("User") or ""
        names = user and not all(p.isdigit() for p in user.split(":") if p)
        passwd = read_file(store, info, "/etc/passwd") if names else None
        group = read_file(store, info, "/etc/group") if names else None
    text = lambda b: b.decode("utf-8", "replace") if b is not None else None  # noqa: E731
    return M.Image(
        tuple(cfg.get("Entrypoint") or ()),
        tuple(cfg.get("Cmd") or ()),
        tuple(cfg.get("Env") or ()),
        cfg.get("WorkingDir") or "",
        user,
        dict(cfg.get("Labels") or {}),
        text(raw),
        ann,
        text(passwd),
        text(group),
    )


def _one(img: M.Image, r: M.Result) -> dict:
    out: dict[str, object] = {"outcome": r.outcome}
    if r.reason:
        out["reason"] = r.reason
    if r.outcome != "started":
        return out
    assert r.view is not None  # model() sets the view of every started result
    out.update(
        monitor=r.monitor,
        kernel=r.view["kernel"],
        initrd=r.view["initrd"],
        blocks=r.view["blocks"],
        share=r.view["share"],
        rootfs=r.rootfs,
        guest_cmdline=r.guest_cmdline,
    )
    if "devices" in r.view:
        out["solo5_devices"] = r.view["devices"]
    if r.urunit_conf is not None:
        out["urunit_conf"] = r.urunit_conf
    if r.monitor_missing:
        out["monitor_cannot_open"] = r.monitor_missing
    app = app_view(img, r)
    if app is not None:
        out["app"] = app
    return out


def guest_report(img: M.Image, releases=DEFAULT_TARGETS, run_args=None) -> dict:
    """Per release, under Docker with overlayfs and with a devmapper (ext2)
    snapshot: outcome, monitor and its image-dependent arguments, the guest
    command line (Unikraft/rumprun argv inside it), env file, rootfs."""
    rep: dict = {"process_args": None, "env": None, "releases": {}}
    for rel in releases:
        per = {}
        for snap in ("overlayfs", "devmapper-ext2"):
            r = M.model(img, rel, "docker", snap, run_args)
            rep["process_args"], rep["env"] = r.process_args, r.env
            per[snap] = _one(img, r)
        if per["overlayfs"] == per["devmapper-ext2"]:
            per = {"any snapshotter": per["overlayfs"]}
        rep["releases"][rel] = per
    return rep


def pod_annotations(img: M.Image, release: str) -> dict:
    """The com.urunc.unikernel.* annotations for a pod (or --annotation) in
    the form `release` reads: base64 up to v0.7.0, plain on main."""
    labels = {k: v for k, v in sorted(img.labels.items()) if k.startswith(M.PREFIX)}
    if release == "main":
        return labels
    return {k: base64.b64encode(v.encode("utf-8", "surrogateescape")).decode("ascii") for k, v in labels.items()}


def render_guest(rep: dict, echo) -> None:
    import json

    echo(f"process.args (docker run IMAGE): {json.dumps(rep['process_args'], ensure_ascii=False)}")
    echo(f"env: {json.dumps(rep['env'], ensure_ascii=False)}")
    for rel, per in rep["releases"].items():
        for snap, o in per.items():
            echo(f"urunc {rel} ({snap}): {o['outcome']}" + (f" ({o['reason']})" if o.get("reason") else ""))
            if o["outcome"] != "started":
                continue
            echo(
                f"  monitor  {o['monitor']}  kernel {o['kernel']}"
                + (f"  initrd {o['initrd']}" if o["initrd"] else "")
                + (f"  blocks {' '.join(o['blocks'])}" if o["blocks"] else "")
                + (f"  share {o['share']}" if o["share"] else "")
            )
            echo(
                f"  rootfs   {o['rootfs']}"
                + (f"  solo5 devices {' '.join(o['solo5_devices'])}" if o.get("solo5_devices") else "")
            )
            echo(f"  guest    {json.dumps(o['guest_cmdline'], ensure_ascii=False)}")
            if "app" in o:
                a = o["app"]
                echo(f"  app      argv {json.dumps(a['argv'], ensure_ascii=False)}  cwd {a['wd']}")
                echo(f"           env {json.dumps(a['env'], ensure_ascii=False)}")
            if "urunit_conf" in o:
                echo(f"  urunit.conf {json.dumps(o['urunit_conf'], ensure_ascii=False)}")
            if o.get("monitor_cannot_open"):
                echo(f"  monitor cannot open {', '.join(o['monitor_cannot_open'])}")


def render_annotations(ann: dict, release: str, echo) -> None:
    import json

    echo(f"# pod annotations for urunc {release} ({'plain' if release == 'main' else 'base64'} values)")
    echo("metadata:")
    echo("  annotations:")
    for k, v in ann.items():
        echo(f"    {k}: {json.dumps(v, ensure_ascii=False)}")


def inspect_command(path: str, guest: bool, annotations: bool, releases: list, as_json: bool, echo) -> int:
    """The logic behind `urunix inspect --guest/--annotations`; returns the
    exit code (2: an unknown release)."""
    import json

    bad = [r for r in releases if r not in M.RELEASES]
    if bad:
        import sys

        print(f"--release {bad[0]!r}: not a urunc release; use one of {', '.join(M.RELEASES)}", file=sys.stderr)
        return 2
    img = load(path)
    out: dict = {}
    if guest:
        out["guest"] = guest_report(img, tuple(releases) or DEFAULT_TARGETS)
    if annotations:
        out["annotations"] = {r: pod_annotations(img, r) for r in (releases or ["main"])}
    if as_json:
        echo(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    if guest:
        render_guest(out["guest"], echo)
    if annotations:
        for r, ann in out["annotations"].items():
            render_annotations(ann, r, echo)
    return 0
