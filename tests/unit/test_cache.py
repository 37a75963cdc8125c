"""native/cache.py: the layer cache behind fast rebuilds. Hits give
byte-identical images; any metadata change misses; a corrupted entry is
caught by its digest and rebuilt; concurrent builds and interrupted writes
leave only whole entries; prune bounds it."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from pathlib import Path

import pytest

from urunix.loaders import load
from urunix.native import build as native_build
from urunix.native import cache
from urunix.validate import validate


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("URUNIX_NO_CACHE", raising=False)
    monkeypatch.delenv("URUNIX_CACHE_VERIFY", raising=False)
    monkeypatch.setattr(cache, "MIN_BYTES", 0)  # cache even tiny layers
    return tmp_path / "xdg"


def make_spec(d: Path, rtype: str = "raw", cmdline: str = "/init") -> Path:
    tree = d / "tree"
    if not tree.exists():
        (tree / "etc").mkdir(parents=True)
        (tree / "etc" / "hostname").write_text("guest\n")
        (tree / "bin").mkdir()
        (tree / "bin" / "app").write_bytes(os.urandom(300_000))
        (tree / "bin" / "app").chmod(0o755)
        (tree / "link").symlink_to("bin/app")
        (d / "kernel").write_bytes(b"\x7fELF" + os.urandom(50_000))
    spec = d / f"spec-{rtype}-{abs(hash(cmdline))}.yaml"
    spec.write_text(f"""name: t/cache
tag: x
files:
  ./kernel: /kernel
rootfs:
  type: {rtype}
  from: ./tree
annotations:
  unikernelType: linux
  hypervisor: qemu
  binary: /kernel
  cmdline: "{cmdline}"
""")
    return spec


def build(spec: Path, out: Path, fmt: str = "docker-archive", use_cache=None) -> bytes:
    """use_cache: None (as the environment says), a bool, or a
    cache.LayerCache whose `stats` the test reads."""
    image, _ = validate(load(spec))
    native_build.build(image, str(out), fmt, cache=use_cache)
    return out.read_bytes() if out.is_file() else b""


def counted() -> cache.LayerCache:
    """A fresh cache object (same directory) with its counters at zero."""
    return cache.LayerCache()


def set_mtime(path: Path, seconds: int) -> None:
    """A fixed mtime, so that a later write moves it without a sleep."""
    os.utime(path, ns=(seconds * 10**9, seconds * 10**9))


def entries(root: Path) -> list[Path]:
    return sorted((root / "urunix" / cache.VERSION / "keys").glob("*.json"))


@pytest.mark.parametrize("rtype", ["raw", "initrd", "block"])
def test_hit_gives_the_same_bytes(tmp_path, cache_home, rtype):
    spec = make_spec(tmp_path, rtype)
    ref = build(spec, tmp_path / "nocache.tar", use_cache=False)
    assert not entries(cache_home)
    c1, c2 = counted(), counted()
    first = build(spec, tmp_path / "a.tar", use_cache=c1)
    assert c1.stats["stores"] >= 2 and c1.stats["hits"] == 0
    second = build(spec, tmp_path / "b.tar", use_cache=c2)
    assert c2.stats["hits"] >= 2  # kernel and rootfs (and urunc.json)
    assert ref == first == second


def test_cmdline_change_reuses_the_big_layers(tmp_path, cache_home):
    a = make_spec(tmp_path, "initrd", "/init")
    b = make_spec(tmp_path, "initrd", "/init quiet")
    build(a, tmp_path / "a.tar")
    c = counted()
    got = build(b, tmp_path / "b.tar", use_cache=c)
    assert c.stats["hits"] == 2 and c.stats["misses"] == 1  # only urunc.json is new
    assert got == build(b, tmp_path / "ref.tar", use_cache=False)


@pytest.mark.parametrize("change", ["content", "mode", "touch", "new file", "rename"])
def test_any_metadata_change_misses(tmp_path, cache_home, change):
    spec = make_spec(tmp_path, "raw")
    app = tmp_path / "tree" / "bin" / "app"
    set_mtime(app, 1000)  # a write below moves it, however fast it comes
    build(spec, tmp_path / "a.tar")
    if change == "content":
        data = bytearray(app.read_bytes())
        data[0] ^= 1
        app.write_bytes(bytes(data))
    elif change == "mode":
        app.chmod(0o644)
    elif change == "touch":
        os.utime(app, ns=(1, 1))
    elif change == "new file":
        (tmp_path / "tree" / "etc" / "new").write_text("x")
    else:
        (tmp_path / "tree" / "etc" / "hostname").rename(tmp_path / "tree" / "etc" / "hostname2")
    c = counted()
    got = build(spec, tmp_path / "b.tar", use_cache=c)
    assert c.stats["misses"] == 1  # the rootfs layer
    assert c.stats["hits"] == 2  # the kernel and urunc.json
    assert got == build(spec, tmp_path / "ref.tar", use_cache=False)


def test_corrupted_entry_is_detected_and_rebuilt(tmp_path, cache_home):
    spec = make_spec(tmp_path, "raw")
    good = build(spec, tmp_path / "a.tar")
    blobs = list((cache_home / "urunix" / cache.VERSION / "blobs").iterdir())
    assert blobs
    for k in entries(cache_home):  # flip a byte in the middle of each cached layer
        e = json.loads(k.read_text())
        blob = cache_home / "urunix" / cache.VERSION / "blobs" / e["file"]
        with open(blob, "r+b") as f:
            f.seek(e["offset"] + e["size"] // 2)
            c = f.read(1)
            f.seek(e["offset"] + e["size"] // 2)
            f.write(bytes([c[0] ^ 0xFF]))
        set_mtime(blob, 1)  # the fingerprint differs even within one clock tick
    os.unlink(tmp_path / "a.tar")
    c1, c2 = counted(), counted()
    got = build(spec, tmp_path / "b.tar", use_cache=c1)
    assert c1.stats["corrupt"] >= 1
    assert got == good
    assert build(spec, tmp_path / "c.tar", use_cache=c2) == good  # and the rebuilt entry is good again
    assert c2.stats["corrupt"] == 0 and c2.stats["hits"] >= 2


def test_verify_always_hashes(tmp_path, cache_home, monkeypatch):
    spec = make_spec(tmp_path, "raw")
    good = build(spec, tmp_path / "a.tar")
    monkeypatch.setenv("URUNIX_CACHE_VERIFY", "1")
    c = counted()
    assert c.verify
    assert build(spec, tmp_path / "b.tar", use_cache=c) == good
    assert c.stats["rehashed"] >= 2


def test_oci_layout_hits(tmp_path, cache_home):
    spec = make_spec(tmp_path, "raw")
    build(spec, tmp_path / "a", "oci")
    c = counted()
    build(spec, tmp_path / "b", "oci", use_cache=c)
    assert c.stats["hits"] >= 2
    for p in (tmp_path / "a").rglob("*"):
        if p.is_file():
            assert p.read_bytes() == (tmp_path / "b" / p.relative_to(tmp_path / "a")).read_bytes()


def test_oci_layout_rebuild_copies_the_cached_blobs(tmp_path, cache_home):
    """A cmdline-only rebuild into an OCI layout takes the big layers from
    the cache by copy (a reflink on XFS/btrfs), never by a hard link: no
    output blob shares an inode with the cache or with another output, so
    editing one cannot change the others; the layout still verifies."""
    build(make_spec(tmp_path, "raw"), tmp_path / "a", "oci")
    c = counted()
    build(make_spec(tmp_path, "raw", "/init quiet"), tmp_path / "b", "oci", use_cache=c)
    assert c.stats["hits"] >= 2  # the kernel's and the rootfs' layers
    a = {p.name: p.stat() for p in (tmp_path / "a" / "blobs" / "sha256").iterdir()}
    b = {p.name: p.stat() for p in (tmp_path / "b" / "blobs" / "sha256").iterdir()}
    assert len(a.keys() & b.keys()) >= 2
    root = cache_home / "urunix" / cache.VERSION / "blobs"
    cached = {(st.st_dev, st.st_ino) for st in (p.stat() for p in root.iterdir())}
    for st in list(a.values()) + list(b.values()):
        assert st.st_nlink == 1 and (st.st_dev, st.st_ino) not in cached
    for n, st in b.items():  # and every blob is what its name says
        assert hashlib.sha256((tmp_path / "b" / "blobs" / "sha256" / n).read_bytes()).hexdigest() == n


def _concurrent(spec: str, out: str, xdg: str) -> None:
    os.environ["XDG_CACHE_HOME"] = xdg
    cache.MIN_BYTES = 0
    build(Path(spec), Path(out))


def test_two_concurrent_builds_both_finish_with_one_valid_result(tmp_path, cache_home):
    spec = make_spec(tmp_path, "initrd")
    ref = build(spec, tmp_path / "ref.tar", use_cache=False)
    ctx = multiprocessing.get_context("fork")
    for round_ in range(2):  # empty cache, then a full one
        out = tmp_path / f"out{round_}.tar"
        procs = [ctx.Process(target=_concurrent, args=(str(spec), str(out), str(cache_home))) for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
        assert out.read_bytes() == ref
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".urunix-tmp-")]
    c = counted()
    assert build(spec, tmp_path / "after.tar", use_cache=c) == ref
    assert c.stats["corrupt"] == 0 and c.stats["hits"] >= 2


def test_interrupted_write_leaves_no_partial_entry(tmp_path, cache_home, monkeypatch):
    spec = make_spec(tmp_path, "raw")
    real = cache.LayerCache._write_key
    calls = []

    def dying(self, key, entry):
        calls.append(key)
        raise KeyboardInterrupt  # interrupted between the link and the key

    monkeypatch.setattr(cache.LayerCache, "_write_key", dying)
    with pytest.raises(KeyboardInterrupt):
        build(spec, tmp_path / "a.tar")
    assert calls and not entries(cache_home)
    monkeypatch.setattr(cache.LayerCache, "_write_key", real)
    # an interrupted copy leaves only a tmp file, no key: the next build misses and works
    c = counted()
    good = build(spec, tmp_path / "b.tar", use_cache=c)
    assert c.stats["hits"] == 0 and good == build(spec, tmp_path / "ref.tar", use_cache=False)
    assert entries(cache_home)
    # nothing named by no key survives a prune once stale
    monkeypatch.setattr(cache, "STALE_TMP", 0)
    cache.prune(1 << 40)
    root = cache_home / "urunix" / cache.VERSION
    named = {json.loads(k.read_text())["file"] for k in entries(cache_home)}
    assert {p.name for p in (root / "blobs").iterdir()} == named
    assert not list((root / "tmp").iterdir())


def test_prune_bounds_the_cache(tmp_path, cache_home):
    root = cache_home / "urunix" / cache.VERSION
    seen: set[str] = set()
    for i in range(3):
        d = tmp_path / f"t{i}"
        d.mkdir()
        spec = make_spec(d, "raw")
        build(spec, d / "a.tar")
        for k in entries(cache_home):  # last use: build i, in order without a sleep
            if json.loads(k.read_text())["file"] not in seen:
                set_mtime(k, 1000 + i)
        names = {p.name for p in (root / "blobs").iterdir()}
        last, seen = names - seen, names
    sizes = {p.name: p.stat().st_size for p in (root / "blobs").iterdir()}
    assert len(sizes) >= 6  # each build's kernel and rootfs layers
    limit = sum(sizes[n] for n in last) + max(sizes.values())
    files, freed = cache.prune(limit)
    left = {p.name: p.stat().st_size for p in (root / "blobs").iterdir()}
    assert sum(left.values()) <= limit and 1 <= len(left) < len(sizes)
    assert files >= 2 and freed >= sum(sizes.values()) - sum(left.values())
    # the newest entries are the ones kept, and they still hit
    c = counted()
    build(tmp_path / "t2" / next(p.name for p in (tmp_path / "t2").glob("spec-*")), tmp_path / "t2" / "b.tar", use_cache=c)
    assert c.stats["hits"] >= 2
    files, freed = cache.prune()
    assert not list((root / "blobs").iterdir()) and not entries(cache_home)
    assert cache.prune() == (0, 0)


def test_no_cache_env(tmp_path, cache_home, monkeypatch):
    monkeypatch.setenv("URUNIX_NO_CACHE", "1")
    build(make_spec(tmp_path, "raw"), tmp_path / "a.tar")
    assert not (cache_home / "urunix").exists()


def test_parse_bytes():
    assert cache.parse_bytes("10G", 0) == 10 << 30
    assert cache.parse_bytes("512", 0) == 512
    assert cache.parse_bytes(None, 7) == 7
    with pytest.raises(ValueError):
        cache.parse_bytes("lots", 0)
