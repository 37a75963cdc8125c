"""helpers/image_writer.py: deterministic, streamed, atomic image archives,
read back with independent readers (tar, Python's tarfile)."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from urunix.helpers import image_writer as iw

HELPER = Path(iw.__file__)


def plan_for(tmp_path: Path, fmt: str = "docker-archive", **extra) -> dict:
    (tmp_path / "kernel").write_bytes(os.urandom(100_000))
    (tmp_path / "kernel").chmod(0o700)
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True, exist_ok=True)
    (tree / "sub" / "é file with spaces").write_text("x")
    (tree / ("long" * 40)).write_text("y")
    if not (tree / "link").is_symlink():
        os.symlink("/etc/passwd", tree / "link")
    return {
        "format": fmt, "repoTags": ["t/x:1"], "created": "1970-01-01T00:00:01Z", "architecture": "amd64",
        "config": {"Cmd": ["a"], "Labels": {"k": "v"}},
        "layers": [
            {"name": "kernel", "entries": [{"type": "file", "path": "/unikernel/kernel", "source": str(tmp_path / "kernel")}]},
            {"name": "files", "entries": [{"type": "tree", "path": "/data", "source": str(tree)}]},
            {"name": "urunc.json", "entries": [{"type": "file", "path": "/urunc.json", "data": "{}"}]},
        ],
        **extra,
    }


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def layer_members(archive: Path) -> list[list[tarfile.TarInfo]]:
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]
        out = []
        for name in manifest["Layers"]:
            data = outer.extractfile(name).read()
            assert "sha256:" + hashlib.sha256(data).hexdigest() == "sha256:" + name.rsplit("/", 1)[1]
            with tarfile.open(fileobj=__import__("io").BytesIO(data)) as t:
                out.append(t.getmembers())
        return out


def test_same_plan_same_bytes(tmp_path):
    p = plan_for(tmp_path)
    iw.write_atomic(p, str(tmp_path / "a.tar"))
    os.utime(tmp_path / "kernel", (12345, 12345))  # host mtimes never leak
    iw.write_atomic(p, str(tmp_path / "b.tar"))
    assert sha(tmp_path / "a.tar") == sha(tmp_path / "b.tar")


def test_entries_sorted_owned_by_root_fixed_time(tmp_path):
    iw.write_atomic(plan_for(tmp_path), str(tmp_path / "a.tar"))
    kernel, files, meta = layer_members(tmp_path / "a.tar")
    assert [m.name for m in kernel] == ["unikernel", "unikernel/kernel"]
    assert kernel[1].mode == 0o755 and kernel[0].mode == 0o755
    names = [m.name for m in files]
    assert names == sorted(names, key=lambda n: n.split("/"))
    assert "data/sub/é file with spaces" in names and "data/" + "long" * 40 in names
    link = next(m for m in files if m.name == "data/link")
    assert link.issym() and link.linkname == "/etc/passwd"   # kept, never followed
    for m in kernel + files + meta:
        assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "", "", 1)
    assert next(m for m in files if m.name.endswith("spaces")).mode == 0o644


def test_gnu_tar_reads_it(tmp_path):
    iw.write_atomic(plan_for(tmp_path), str(tmp_path / "a.tar"))
    listing = subprocess.run(["tar", "-tvf", str(tmp_path / "a.tar")], capture_output=True, text=True, check=True).stdout
    assert "manifest.json" in listing and "index.json" in listing and "oci-layout" in listing


def test_oci_layout_directory(tmp_path):
    iw.write_atomic(plan_for(tmp_path, "oci", manifestAnnotations={"com.urunc.unikernel.binary": "/k"}), str(tmp_path / "layout"))
    index = json.loads((tmp_path / "layout" / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((tmp_path / "layout" / "blobs" / "sha256" / digest).read_text())
    assert manifest["annotations"] == {"com.urunc.unikernel.binary": "/k"}
    for blob in (tmp_path / "layout" / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    assert not [p for p in (tmp_path / "layout").rglob(".tmp-*")]


def test_failed_build_keeps_the_previous_result(tmp_path):
    good = plan_for(tmp_path)
    out = tmp_path / "result"
    iw.write_atomic(good, str(out))
    before = sha(out)
    bad = plan_for(tmp_path)
    bad["layers"][0]["entries"].append({"type": "file", "path": "/x", "source": str(tmp_path / "nope")})
    with pytest.raises(OSError):
        iw.write_atomic(bad, str(out))
    assert sha(out) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".urunix-tmp")) == []


def test_conflicting_entries_refused(tmp_path):
    p = plan_for(tmp_path)
    p["layers"][0]["entries"].append({"type": "file", "path": "/unikernel/kernel/x", "data": ""})
    with pytest.raises(iw.PlanError, match="needs it to be a directory"):
        iw.write(p, str(tmp_path / "o"))


@pytest.mark.parametrize("path", ["../../etc/x", "/a/../../b", "a\0b"])
def test_paths_never_escape_the_root(tmp_path, path):
    with pytest.raises(iw.PlanError):
        iw.clean_path(path)


def test_fifo_in_a_tree_is_refused(tmp_path):
    p = plan_for(tmp_path)
    os.mkfifo(tmp_path / "tree" / "fifo")
    with pytest.raises(iw.PlanError, match="device nodes, fifos"):
        iw.plan_members(p)


def test_runs_as_a_script_like_in_a_derivation(tmp_path):
    p = plan_for(tmp_path)
    (tmp_path / "plan.json").write_text(json.dumps(p))
    env = {"PATH": "/usr/bin:/bin"}   # nothing of ours on the path: stdlib only
    r = subprocess.run([sys.executable, "-I", str(HELPER), str(tmp_path / "plan.json"), str(tmp_path / "out")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    iw.write_atomic(p, str(tmp_path / "ref"))
    assert sha(tmp_path / "out") == sha(tmp_path / "ref")


PEAK = """
import json, resource, sys
sys.path.insert(0, sys.argv[3])
from image_writer import write_atomic
write_atomic(json.load(open(sys.argv[1])), sys.argv[2])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_file_size(tmp_path):
    """A 2 GiB kernel costs no more memory than a 1 MiB one."""
    peaks = []
    for size in (1 << 20, 2 << 30):
        src = tmp_path / f"k{size}"
        with open(src, "wb") as f:
            f.truncate(size)
        p = {"format": "docker-archive", "repoTags": ["t/x:1"], "created": "1970-01-01T00:00:01Z",
             "architecture": "amd64", "config": {},
             "layers": [{"name": "kernel", "entries": [{"type": "file", "path": "/k", "source": str(src)}]}]}
        (tmp_path / "plan.json").write_text(json.dumps(p))
        r = subprocess.run([sys.executable, "-c", PEAK, str(tmp_path / "plan.json"), str(tmp_path / "out"),
                            str(HELPER.parent)], capture_output=True, text=True, check=True)
        peaks.append(int(r.stdout.strip()))
        (tmp_path / "out").unlink()
        src.unlink()
    assert peaks[1] - peaks[0] < 16 * 1024, peaks   # KiB
