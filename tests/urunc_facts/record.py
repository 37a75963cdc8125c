"""Record what urunc's own code does with our images, as test data.

Runs the urunc harness (../shared/tools/urunc-harness: urunc's config,
rootfs and command-line code of each release, built from urunc's source;
see its README) over every image of a directory, for every release,
engine presentation and snapshotter, plus `docker run IMAGE ARGS` runs, and
writes one JSON file of observations. urunc's code never enters this
repository: only these observations, with the release and commit each came
from. tests/unit/test_urunc_model.py replays every row against
urunix.urunc_model.

    HARNESS=/path/to/urunc-harness HARNESS_BUILD=... \\
      python3 tests/urunc_facts/record.py IMAGES_DIR OUT.json --about "..."

Not run in CI (it needs Go and urunc's source); CI only reads its output."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "generator"))
from urunix.urunc_model import classify_error, monitor_view, release_of_ref  # noqa: E402

MODES = "docker nerdctl ctr annot-plain annot-b64"
SNAPS = ("overlayfs", "devmapper-ext2")
RUN_ARGS = (["--port", "8080", "a b"],)
# --extra: Docker only, the other snapshot filesystem and a host with virtiofsd
EXTRA = (("devmapper-ext4", "absent"), ("overlayfs", "present"))
ETC = {"initrd:/etc/hostname", "initrd:/etc/hosts", "initrd:/etc/resolv.conf"}


def objects(text: str) -> list[dict]:
    dec, i, out = json.JSONDecoder(), 0, []
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return out
        o, i = dec.raw_decode(text, i)
        out.append(o)


def image_input(harness: Path, image: Path) -> dict:
    """What the model gets: the image config, its /urunc.json as stored, the
    manifest annotations and the rootfs's file list."""
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([sys.executable, str(harness / "unpack_image.py"), str(image), d + "/x"], check=True, capture_output=True)
        cfg = json.loads(Path(d, "x/image-config.json").read_text()).get("config") or {}
        ann = json.loads(Path(d, "x/manifest-annotations.json").read_text() or "{}")
        root = Path(d, "x/rootfs")
        uj = root / "urunc.json"
        files = sorted("/" + str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink())
        return {
            "config": {k: cfg[k] for k in ("Entrypoint", "Cmd", "Env", "WorkingDir", "User", "Labels") if cfg.get(k)},
            "urunc_json": uj.read_text(errors="replace") if uj.is_file() else None,
            "manifest_annotations": ann,
            "files": files,
        }


def normalize(o, work: re.Pattern):
    if isinstance(o, str):
        return work.sub("<W>", o)
    if isinstance(o, list):
        return [normalize(x, work) for x in o]
    if isinstance(o, dict):
        return {k: normalize(v, work) for k, v in o.items()}
    return o


def row(case: str, r: dict, run_args, work: re.Pattern) -> dict:
    ref, commit = r["urunc"].split(" ", 1)
    argv = normalize(r.get("monitor_argv") or [], work)
    mon = argv[0].rsplit("/", 1)[-1] if argv else None
    files = r.get("guest_files") or {}
    out = {
        "case": case,
        "release": release_of_ref(ref),
        "ref": ref,
        "commit": commit.strip("()"),
        "mode": r["mode"],
        "snapshotter": r["snapshotter"],
        "run_args": run_args,
        "process_args": r["process_args"],
        "config_source": r["config_source"],
        "outcome": r["outcome"],
        "error": normalize(r.get("error") or "", work),
        "reason": classify_error(r["outcome"], r.get("error") or ""),
        "monitor": mon,
        "monitor_argv": argv[1:],
        "firecracker_config": normalize(r.get("firecracker_config"), work),
        "guest_cmdline": r.get("guest_cmdline"),
        "guest_files": {k: v for k, v in files.items() if k not in ETC},
        "etc_files_in_initrd": sorted(k for k in files if k in ETC),
        "guest_rootfs": normalize(r.get("guest_rootfs"), work),
        "monitor_missing": sorted(k for k, v in (r.get("monitor_files") or {}).items() if v.startswith("MISSING")),
        "devmapper_as_block": normalize(r.get("devmapper_as_block") or [], work),
    }
    out["monitor_view"] = monitor_view(mon, out["monitor_argv"], out["firecracker_config"]) if mon else None
    return out


def dumps(doc: dict) -> str:
    """One image and one row per line: reviewable diffs."""
    j = lambda o: json.dumps(o, ensure_ascii=False, sort_keys=True)  # noqa: E731
    head = ",\n".join(f" {j(k)}: {j(doc[k])}" for k in ("about", "harness", "releases"))
    images = ",\n".join(f"  {j(k)}: {j(v)}" for k, v in sorted(doc["images"].items()))
    rows = ",\n".join("  " + j(r) for r in doc["rows"])
    return "{\n" + head + ',\n "images": {\n' + images + '\n },\n "rows": [\n' + rows + "\n ]\n}\n"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("images_dir")
    ap.add_argument("output")
    ap.add_argument("--about", default="")
    ap.add_argument("--only", default="")
    ap.add_argument("--extra", action="store_true", help="the EXTRA runs instead of the default ones")
    a = ap.parse_args()
    harness = Path(os.environ.get("HARNESS") or "/work/shared/tools/urunc-harness")
    tmp = os.environ.setdefault("HARNESS_TMP", tempfile.mkdtemp(prefix="urunc-facts-"))
    work = re.compile(re.escape(tmp) + r"/run\.\w+/[^/\s\"]+")
    images, rows, commits = {}, [], {}
    for p in sorted(Path(a.images_dir).glob("*.tar")):
        case = p.name[:-4]
        if a.only not in case:
            continue
        images[case] = image_input(harness, p)
        if a.extra:
            runs = [(s, None, v, "docker") for s, v in EXTRA]
        else:
            runs = [(s, None, "absent", MODES) for s in SNAPS] + [
                ("overlayfs", ra, "absent", "docker nerdctl") for ra in RUN_ARGS
            ]
        for snap, ra, vfsd, modes in runs:
            cmd = [str(harness / "run.sh"), str(p), "--json", "--snapshotter", snap, "--modes", modes, "--virtiofsd", vfsd]
            if ra is not None:
                cmd += ["--run-args", json.dumps(ra)]
            pr = subprocess.run(cmd, capture_output=True, text=True)
            if pr.returncode != 0:
                print(f"FAILED {case} {snap} {ra}: {pr.stderr[-400:]}", file=sys.stderr)
                return 1
            for o in objects(pr.stdout):
                rw = row(case, o, ra, work)
                rw["virtiofsd"] = vfsd
                commits[rw["release"]] = rw["commit"]
                rows.append(rw)
        print(f"{case}: {len(rows)} rows so far", file=sys.stderr)
    doc = {
        "about": a.about,
        "harness": "urunc-harness (../shared/tools/urunc-harness), net=docker; virtiofsd per row",
        "releases": commits,
        "images": images,
        "rows": rows,
    }
    tmp_out = Path(a.output + ".tmp")
    tmp_out.write_text(dumps(doc))
    tmp_out.replace(a.output)
    print(f"{len(rows)} rows of {len(images)} images -> {a.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
