"""helpers/image_writer.py: deterministic, streamed, atomic image archives,
read back with independent readers (tar, Python's tarfile)."""

from __future__ import annotations

import hashlib
import json
import os
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
        "format": fmt,
        "repoTags": ["t/x:1"],
        "created": "1970-01-01T00:00:01Z",
        "architecture": "amd64",
        "config": {"Cmd": ["a"], "Labels": {"k": "v"}},
        "layers": [
            {"name": "kernel", "entries": [{"type": "file", "path": "/unikernel/kernel", "source": str(tmp_path / "kernel")}]},
            {"name": "files", "entries": [{"type": "tree", "path": "/data", "source": str(tree)}]},
            {"name": "urunc.json", "entries": [{"type": "file", "path": "/urunc.json", "data": "{}"}]},
        ],
        **extra,
    }


def one_file_plan(layer: str, source: Path) -> dict:
    """A docker-archive plan of one layer holding `source` at /k."""
    return {
        "format": "docker-archive",
        "repoTags": ["t/x:1"],
        "created": "1970-01-01T00:00:01Z",
        "architecture": "amd64",
        "config": {},
        "layers": [{"name": layer, "entries": [{"type": "file", "path": "/k", "source": str(source)}]}],
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
    assert link.issym() and link.linkname == "/etc/passwd"  # kept, never followed
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
    env = {"PATH": "/usr/bin:/bin"}  # nothing of ours on the path: stdlib only
    r = subprocess.run(
        [sys.executable, "-I", str(HELPER), str(tmp_path / "plan.json"), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
    )
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
        p = one_file_plan("kernel", src)
        (tmp_path / "plan.json").write_text(json.dumps(p))
        r = subprocess.run(
            [sys.executable, "-c", PEAK, str(tmp_path / "plan.json"), str(tmp_path / "out"), str(HELPER.parent)],
            capture_output=True,
            text=True,
            check=True,
        )
        peaks.append(int(r.stdout.strip()))
        (tmp_path / "out").unlink()
        src.unlink()
    assert peaks[1] - peaks[0] < 16 * 1024, peaks  # KiB


# --------------------------------------------- the hasher thread (one pass, two cores)


def _mixed_members(tmp_path: Path) -> list:
    """Many small files (sizes around the 512-byte and 1 MiB boundaries),
    inline data, a made-while-streaming member written in odd-sized and
    over-1-MiB pieces, and one large file: a layer over THREAD_MIN."""
    import random

    rnd = random.Random(5)
    src = tmp_path / "src"
    src.mkdir()
    entries = []
    for i, size in enumerate(
        [0, 1, 511, 512, 513, iw.CHUNK - 1, iw.CHUNK, iw.CHUNK + 1] + [rnd.randrange(0, 40_000) for _ in range(300)]
    ):
        (src / f"f{i:04}").write_bytes(rnd.randbytes(size))
    (src / "big").write_bytes(rnd.randbytes(3 * iw.CHUNK + 12345))
    entries.append({"type": "tree", "path": "/t", "source": str(src)})
    entries.append({"type": "file", "path": "/inline", "data": "é" * 3000})
    made = rnd.randbytes(2 * iw.CHUNK + 777)

    def fill(write):
        view, at = memoryview(bytearray(made)), 0
        for n in (1, 700, iw.CHUNK + 3, 5000, len(made)):
            write(view[at : at + n])
            at += len(view[at : at + n])

    extra = [iw.Member("made", "file", 0o644, len(made), fill=fill)]
    members = iw.expand(entries, extra)
    assert iw.layer_size(members, 1) >= iw.THREAD_MIN
    return members, made


def _stream(members, threaded: bool, progress=None) -> tuple[bytes, str, int]:
    import io

    out = io.BytesIO()
    with iw.HashingWriter(out, progress, threaded) as w:
        iw.stream_layer(members, w, 1)
    return out.getvalue(), w.sha.hexdigest(), w.count


def _hasher_threads() -> list:
    import threading

    return [t for t in threading.enumerate() if t.name == "urunix-sha256"]


def test_threaded_hashing_gives_the_same_bytes_and_digest(tmp_path):
    members, made = _mixed_members(tmp_path)
    seen = []
    data, digest, count = _stream(members, True, seen.append)
    ref, ref_digest, _ = _stream(members, False)
    assert data == ref and digest == ref_digest == hashlib.sha256(data).hexdigest()
    assert count == len(data) == iw.layer_size(members, 1) == sum(seen)
    assert max(seen) <= iw.CHUNK
    import io

    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        assert t.extractfile("made").read() == made
        for m in members:
            if m.source:
                assert t.extractfile(m.path).read() == Path(m.source).read_bytes()
    assert not _hasher_threads()


@pytest.mark.parametrize("fmt", ["docker-archive", "oci"])
def test_large_layer_archive_matches_a_serial_hash(tmp_path, fmt, monkeypatch):
    """The same plan written with the hasher thread and with inline hashing
    (THREAD_MIN raised) gives the same archive."""
    p = plan_for(tmp_path, fmt)
    (tmp_path / "kernel").write_bytes(os.urandom(5 * iw.CHUNK + 3))
    iw.write_atomic(p, str(tmp_path / "a"))
    monkeypatch.setattr(iw, "THREAD_MIN", 1 << 62)
    iw.write_atomic(p, str(tmp_path / "b"))
    if fmt == "oci":
        blobs = lambda d: {f.name: f.read_bytes() for f in (tmp_path / d / "blobs" / "sha256").iterdir()}  # noqa: E731
        assert blobs("a") == blobs("b")
    else:
        assert sha(tmp_path / "a") == sha(tmp_path / "b")
        layer_members(tmp_path / "a")  # every layer's name is its digest


def test_failure_mid_stream_leaves_no_thread_and_no_file(tmp_path):
    """A source that grows after the plan was made: PlanError, the hasher
    thread is gone, and nothing is left beside the output."""
    big = tmp_path / "big"
    big.write_bytes(os.urandom(6 * iw.CHUNK))
    p = one_file_plan("k", big)
    layers = iw.plan_members(p)
    with open(big, "ab") as f:
        f.write(b"more")
    with pytest.raises(iw.PlanError, match="changed size"):
        iw.write_atomic(p, str(tmp_path / "out"), layers=layers)
    assert not _hasher_threads()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["big"]
    # and a source that shrank
    with open(big, "r+b") as f:
        f.truncate(2 * iw.CHUNK)
    layers = [
        (n, [m if m.kind != "file" else iw.Member(m.path, "file", m.mode, 6 * iw.CHUNK, source=m.source) for m in ms])
        for n, ms in layers
    ]
    with pytest.raises(iw.PlanError, match="changed size"):
        iw.write_atomic(p, str(tmp_path / "out"), layers=layers)
    assert not _hasher_threads()


def test_write_error_stops_the_thread(tmp_path):
    class Full:
        def __init__(self):
            self.n = 0

        def write(self, data):
            self.n += 1
            if self.n == 3:
                raise OSError(28, "No space left on device")

    members, _ = _mixed_members(tmp_path)
    with pytest.raises(OSError, match="No space"):
        with iw.HashingWriter(Full(), None, True) as w:
            iw.stream_layer(members, w, 1)
    assert not _hasher_threads()


def test_host_hard_links_stay_hard_links(tmp_path):
    """Like tar, cpio and mke2fs -d: the second name of a host file links to
    the first (in walk order), so its bytes are stored once."""
    (tmp_path / "d").mkdir()
    (tmp_path / "a").write_bytes(b"x" * 4096)
    os.link(tmp_path / "a", tmp_path / "d" / "b")
    os.link(tmp_path / "a", tmp_path / "z")
    ms = {m.path: m for m in iw.expand([{"type": "tree", "path": "root", "source": str(tmp_path)}])}
    assert ms["root/a"].kind == "file" and ms["root/a"].size == 4096
    assert (ms["root/d/b"].kind, ms["root/d/b"].target) == ("hardlink", "root/a")
    assert (ms["root/z"].kind, ms["root/z"].target) == ("hardlink", "root/a")
    assert iw.prepare("l", list(ms.values()), 0).size < 2 * 4096  # the bytes once, three headers
    # inside a Nix build: store paths
    apart = {m.path: m for m in iw.expand([{"type": "tree", "path": "", "source": str(tmp_path), "hardlinks": False}])}
    assert {m.kind for m in apart.values()} == {"file", "dir"}


def test_an_include_over_a_linked_name_keeps_the_other_names(tmp_path):
    from urunix.native.artifacts import relink

    orig = iw.Member("a", "file", 0o644, 5, source=str(tmp_path / "a"))
    merged = {
        "a": iw.Member("a", "file", 0o600, 3, data=b"new"),
        "b": iw.Member("b", "hardlink", 0o644, target="a"),
        "c": iw.Member("c", "hardlink", 0o644, target="a"),
    }
    relink(merged, {"a": orig})
    assert merged["a"].data == b"new"
    assert (merged["b"].kind, merged["b"].source, merged["b"].size) == ("file", orig.source, 5)
    assert (merged["c"].kind, merged["c"].target) == ("hardlink", "b")


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_layers_start_on_a_filesystem_block(tmp_path, fmt):
    """Every layer's bytes start at a multiple of 4096 in the archive (a
    pax comment header pads before them), so a rebuild's copy_file_range
    can share them on XFS/btrfs; readers see the same members as before."""
    iw.write_atomic(plan_for(tmp_path, fmt), str(tmp_path / "a.tar"))
    with tarfile.open(tmp_path / "a.tar") as outer:
        names = outer.getnames()
        index = json.load(outer.extractfile("index.json"))
        manifest = json.load(outer.extractfile("blobs/sha256/" + index["manifests"][0]["digest"][7:]))
        layers = [outer.getmember("blobs/sha256/" + d["digest"][7:]) for d in manifest["layers"]]
    assert len(layers) == 3 and all(m.offset_data % 4096 == 0 for m in layers)
    assert not any("PaxHeader" in n for n in names)
    gnu = subprocess.run(["tar", "-tf", str(tmp_path / "a.tar")], capture_output=True, text=True, check=True)
    assert sorted(gnu.stdout.split()) == sorted(names) and not gnu.stderr


def test_an_interrupt_while_the_temp_dir_is_made_leaves_nothing(tmp_path, monkeypatch):
    """SIGTERM right after mkdtemp (before anything could register its
    removal) waits until the removal is registered, then unwinds it."""
    import signal
    from contextlib import ExitStack

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    real = iw.tempfile.mkdtemp

    def mkdtemp_then_signal(*a, **kw):
        made = real(*a, **kw)
        os.kill(os.getpid(), signal.SIGTERM)
        return made

    old = signal.signal(signal.SIGTERM, interrupt)
    monkeypatch.setattr(iw.tempfile, "mkdtemp", mkdtemp_then_signal)
    try:
        with pytest.raises(KeyboardInterrupt):
            with ExitStack() as stack:
                iw.owned_temp_dir(str(tmp_path), stack)
                pytest.fail("the signal should have unwound before this")
    finally:
        signal.signal(signal.SIGTERM, old)
    assert os.listdir(tmp_path) == []
