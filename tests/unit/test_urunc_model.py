"""Our model of urunc (urunix.urunc_model) reproduces every row recorded by
running urunc's own code (the urunc harness) over our images, per release:
outcome and reason, where the config came from, process.args, the monitor
and its image-dependent arguments, the guest command line, urunit.conf and
the files the monitor could not find. Data: tests/urunc_facts/*.json
(written by tests/urunc_facts/record.py; each row names its urunc commit)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from urunix import urunc_model as M
from urunix.guest_args import app_view

FACTS = Path(__file__).resolve().parents[1] / "urunc_facts"
FILES = sorted(FACTS.glob("*.json"))
DOCS = {p.name: json.loads(p.read_text()) for p in FILES}


def _rows():
    for name, doc in DOCS.items():
        for i, r in enumerate(doc["rows"]):
            ra = ("" if r["run_args"] is None else "+args") + ("+virtiofsd" if r.get("virtiofsd") == "present" else "")
            yield pytest.param(name, i, id=f"{name[:-5]}:{r['case']}:{r['release']}:{r['mode']}:{r['snapshotter']}{ra}")


def test_facts_are_there():
    assert {p.name for p in FILES} >= {"examples.json", "probes.json", "cases.json", "extra.json"}
    for name, doc in DOCS.items():
        assert doc["rows"], name
        for r in doc["rows"]:
            assert r["commit"] == M.COMMITS[r["release"]], (name, r["case"], r["release"], r["commit"])


@pytest.mark.parametrize("name,i", list(_rows()))
def test_model_reproduces_row(name, i):
    doc = DOCS[name]
    r = doc["rows"][i]
    img = M.Image.from_record(doc["images"][r["case"]])
    m = M.model(
        img, r["release"], r["mode"], r["snapshotter"], r["run_args"], virtiofsd=r.get("virtiofsd", "absent") == "present"
    )
    assert (m.outcome, m.reason) == (r["outcome"], r["reason"]), r["error"]
    assert m.config_source == r["config_source"]
    assert m.process_args == r["process_args"]
    if r["outcome"] != "started":
        return
    assert m.monitor == r["monitor"]
    # the recorded view is what monitor_view() makes of the recorded argv
    assert M.monitor_view(r["monitor"], r["monitor_argv"], r["firecracker_config"]) == r["monitor_view"]
    # (the harness names no guest command line for cloud-hypervisor: its argv has it)
    assert m.guest_cmdline == (r["guest_cmdline"] if r["guest_cmdline"] is not None else r["monitor_view"]["cmdline"])
    assert m.view == r["monitor_view"]
    assert m.monitor_missing == r["monitor_missing"]
    conf = [v for k, v in r["guest_files"].items() if k.endswith("/urunit.conf")]
    assert m.urunit_conf == (conf[0] if conf else None)
    if r["release"] == "main" and r["guest_rootfs"]:
        assert M.ROOTFS_TYPE_MAIN.get(m.rootfs, m.rootfs) == (r["guest_rootfs"]["rootfs_type"] or "none")


def _row(name, case, release, mode="docker", snap="overlayfs", run_args=None):
    doc = DOCS[name]
    r = next(
        r
        for r in doc["rows"]
        if (r["case"], r["release"], r["mode"], r["snapshotter"], r["run_args"]) == (case, release, mode, snap, run_args)
    )
    img = M.Image.from_record(doc["images"][case])
    m = M.model(img, release, mode, snap, run_args)
    assert m.guest_cmdline == r["guest_cmdline"]  # emulated from what urunc really built
    return app_view(img, m)


def test_app_view_shows_the_known_manglings():
    """What the program gets (emulated guest parsing; Linux + urunit checked
    by real boots in tests/boot) for the cases the facts page names."""
    # Unikraft since v0.6.0: argv0 "Unikraft", then all of Entrypoint+Cmd
    assert _row("examples.json", "nginx-unikraft-pun--Containerfile", "main")["argv"] == [
        "Unikraft",
        "nginx",
        "-c",
        "/nginx/conf/nginx.conf",
    ]
    assert _row("examples.json", "nginx-unikraft-pun--Containerfile", "v0.5.0")["argv"] == [
        "nginx",
        "-c",
        "/nginx/conf/nginx.conf",
    ]
    # Unikraft: an env value with a space splits
    assert "GREETING=hello" in _row("probes.json", "probe-unikraft-env-space", "v0.7.0")["env"]
    # rumprun: an argument with a space becomes two; Go's escapes arrive mangled
    assert _row("cases.json", "case-rr-env-space", "main")["argv"] == ["app", "two", "words"]
    assert _row("cases.json", "case-rr-specials", "v0.7.0")["argv"][1:3] == ["au0026b", "u003cxu003e"]
    # Linux + urunit: one multi-word argument, the rest dropped; v0.7.0+ env/WD from urunit.conf
    v = _row("cases.json", "case-lx-urunit-multi", "main")
    assert v["argv"] == ["/bin/app", "one", "two words"] and "B=x y" in v["env"] and v["wd"] == "/srv"
    v = _row("cases.json", "case-lx-urunit-multi", "v0.6.0")
    assert "B=x" in v["env"] and v["wd"] == "/"
    # docker run ARGS replace the init when it sits in Cmd
    v = _row("examples.json", "whoami-linux-initrd--args.nix", "main", run_args=["--port", "8080", "a b"])
    assert v["argv"][0] == "--port"
