"""`urunix inspect --guest` and `--annotations`: the annotations printed for
a release are the form under which urunc's own code (recorded in
tests/urunc_facts) started every image that Docker starts; --guest shows
the model's view per targeted release."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import cases
from cli import urunix
from urunix import guest_view, urunc_model as M

FACTS = Path(__file__).resolve().parents[1] / "urunc_facts"

MODE_OF = {"v0.5.0": "annot-b64", "v0.6.0": "annot-b64", "v0.7.0": "annot-b64", "main": "annot-plain"}


@pytest.mark.parametrize("name", ["examples.json", "probes.json", "cases.json"])
def test_printed_annotations_start_what_docker_starts(name):
    doc = json.loads((FACTS / name).read_text())
    rows = {(r["case"], r["release"], r["mode"], r["snapshotter"]): r for r in doc["rows"] if r["run_args"] is None}
    checked = 0
    for (case, rel, mode, snap), r in rows.items():
        if mode != "docker" or r["outcome"] != "started":
            continue
        img = M.Image.from_record(doc["images"][case])
        ann = guest_view.pod_annotations(img, rel)
        assert ann == M.engine_view(img, MODE_OF[rel], None, rel, M.Network())[2]
        seen = rows[(case, rel, MODE_OF[rel], snap)]
        assert seen["config_source"] == "spec annotations" and seen["outcome"] == "started", (case, rel, seen["error"])
        # and the other form is the silent runc fallback / an error
        wrong = rows[(case, rel, "annot-plain" if rel != "main" else "annot-b64", snap)]
        assert wrong["outcome"] != "started" or rel == "v0.5.0", (case, rel)
        checked += 1
    assert checked


def test_inspect_guest_and_annotations(tmp_path):
    annots, cfg, files = cases.CASES["lx-urunit-multi"]
    img = tmp_path / "img.tar"
    img.write_bytes(cases.image("lx-urunit-multi", dict(annots), cfg, files))
    r = urunix("inspect", str(img), "--guest", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)["guest"]
    assert list(rep["releases"]) == ["v0.6.0", "v0.7.0", "main"]
    model = M.model(guest_view.load(str(img)), "main")
    assert rep["releases"]["main"]["any snapshotter"]["guest_cmdline"] == model.guest_cmdline
    assert "rdinit=/urunit -- /bin/app one 'two words'" in model.guest_cmdline
    r = urunix("inspect", str(img), "--guest")
    assert r.returncode == 0 and "urunc v0.7.0 (any snapshotter): started" in r.stdout, r.stdout + r.stderr
    r = urunix("inspect", str(img), "--annotations", "--release", "v0.7.0", "--json")
    ann = json.loads(r.stdout)["annotations"]["v0.7.0"]
    assert ann["com.urunc.unikernel.hypervisor"] == "cWVtdQ=="
    r = urunix("inspect", str(img), "--annotations")
    assert 'com.urunc.unikernel.hypervisor: "qemu"' in r.stdout
    r = urunix("inspect", str(img), "--guest", "--release", "v9")
    assert r.returncode == 2 and "not a urunc release" in r.stderr
