"""helpers/ext.py: ext2/ext4 images read back with debugfs (rdump, stat,
cat), checked with e2fsck -fn, deterministic, sparse-friendly."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from support import need, special_members
from urunix.helpers import ext as E
from urunix.helpers.image_writer import Member, expand

HELPER = Path(E.__file__)


@pytest.fixture(autouse=True)
def _tools():
    for t in ("mke2fs", "debugfs", "e2fsck", "dumpe2fs"):
        need(t)


def make_tree(root: Path) -> Path:
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "dir" / "sub" / "deep.bin").write_bytes(os.urandom(300_001))
    for n in ("with space", "new\nline", "é ü 日本", 'quote"d'):
        (root / n).write_bytes(n.encode() * 3)
    (root / "empty").write_bytes(b"")
    (root / "exe").write_bytes(b"#!/bin/sh\n")
    (root / "exe").chmod(0o755)
    os.symlink("/etc/passwd", root / "abs-link")
    os.symlink("x" * 100, root / "long-link")  # does not fit in the inode
    p = root
    for i in range(30):  # a deep tree
        p = p / f"d{i}"
    p.mkdir(parents=True)
    (p / "leaf").write_text("leaf")
    return root


def members_of(root: Path, extra: bool = True, hardlinks: bool = True) -> list[Member]:
    ms = expand([{"type": "tree", "path": "", "source": str(root), "hardlinks": hardlinks}])
    if extra:
        ms += [
            Member("hl", "hardlink", 0, target="dir/sub/deep.bin"),
            *special_members(),
            Member("locked", "dir", 0o500),
            Member("locked/in", "file", 0o400, 2, data=b"in"),
        ]
    return sorted(ms, key=lambda m: m.path.split("/"))


def debugfs(img: Path, cmd: str) -> str:
    r = subprocess.run(["debugfs", "-R", cmd, str(img)], capture_output=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode("utf-8", "surrogateescape")


def stat_of(img: Path, path: str) -> dict:
    q = path.replace('"', '""')
    out = debugfs(img, f'stat "/{q}"')
    d = {}
    m = re.search(r"Inode: (\d+)\s+Type: ([\w ]+?)\s+Mode:\s+(\d+)", out)
    d["ino"], d["type"], d["mode"] = int(m.group(1)), m.group(2), int(m.group(3), 8)
    m = re.search(r"User:\s+(\d+)\s+Group:\s+(\d+)", out)
    d["uid"], d["gid"] = int(m.group(1)), int(m.group(2))
    d["links"] = int(re.search(r"Links: (\d+)", out).group(1))
    d["size"] = int(re.search(r"Size: (\d+)", out).group(1))
    d["times"] = re.findall(r"(\w?time): (0x[0-9a-f]+)", out)
    dev = re.search(r"Device major/minor number: (\d+):(\d+)", out)
    d["dev"] = (int(dev.group(1)), int(dev.group(2))) if dev else None
    return d


def fsck(img: Path) -> None:
    r = subprocess.run(["e2fsck", "-fn", str(img)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_roundtrip_with_debugfs(tmp_path):
    src = make_tree(tmp_path / "t")
    ms = members_of(src)
    img = tmp_path / "root.ext2"
    info = E.write_ext(ms, str(img), mtime=86400)
    assert info["fs"] == "ext2" and img.stat().st_size == info["size"] >= E.FLOOR
    fsck(img)
    # everything, whatever its name, through rdump (which walks directories itself)
    out = tmp_path / "dump"
    out.mkdir()
    debugfs(img, f"rdump / {out}")
    root = out / ""
    for m in ms:
        if m.kind in ("char", "block", "fifo"):  # rdump skips them: checked with stat below
            continue
        p = root / m.path
        st = os.lstat(p)
        if m.kind == "file":
            want = m.data if m.data is not None else Path(m.source).read_bytes()
            assert p.read_bytes() == want, m.path
        elif m.kind == "symlink":
            assert os.readlink(p) == m.target
        elif m.kind == "dir":
            assert stat.S_ISDIR(st.st_mode)
    listing = debugfs(img, "ls -l /")
    for name in ("with space", "abs-link", "exe", "owned", "dev", "dir"):
        assert name in listing
    assert debugfs(img, 'cat "/with space"').encode() == b"with space" * 3
    assert debugfs(img, 'cat "/dir/sub/deep.bin"').encode("utf-8", "surrogateescape") == (src / "dir/sub/deep.bin").read_bytes()
    # metadata from the inodes
    s = stat_of(img, "owned")
    assert (s["mode"], s["uid"], s["gid"]) == (0o4750, 1000, 1001)
    assert stat_of(img, "exe")["mode"] == 0o755 and stat_of(img, "with space")["mode"] == 0o644
    assert stat_of(img, "locked")["mode"] == 0o500
    a, b = stat_of(img, "hl"), stat_of(img, "dir/sub/deep.bin")
    assert a["ino"] == b["ino"] and a["links"] == 2
    assert stat_of(img, "dev/console")["dev"] == (5, 1) and stat_of(img, "dev/console")["type"] == "character special"
    assert stat_of(img, "dev/sda")["dev"] == (8, 0) and stat_of(img, "dev/sda")["gid"] == 6
    assert stat_of(img, "dev/fifo")["type"] == "FIFO"
    assert stat_of(img, "long-link")["size"] == 100
    for p in ("", "exe", "dev/console", "lost+found", "hl"):
        st = stat_of(img, p)
        assert (st["uid"], st["gid"]) == (0, 0) or p == "owned"
        assert {int(t, 16) for _, t in st["times"]} == {86400}, (p, st["times"])


def test_same_tree_same_bytes(tmp_path):
    src = make_tree(tmp_path / "t")
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    E.write_ext(members_of(src), str(a))
    E.write_ext(members_of(src), str(b))
    assert a.read_bytes() == b.read_bytes()
    # a copy of the tree made at another time, in another order
    t2 = tmp_path / "t2"
    t2.mkdir()
    (t2 / "exe").write_bytes(b"#!/bin/sh\n")
    subprocess.run(["cp", "-a", str(src) + "/.", str(t2)], check=True)
    os.utime(t2 / "exe", (5, 5))
    E.write_ext(members_of(t2), str(c))
    assert a.read_bytes() == c.read_bytes()
    # the UUID follows the listing
    d = tmp_path / "d"
    E.write_ext(members_of(src)[:-1], str(d))
    assert E.write_ext(members_of(src), str(d))["uuid"] != E.write_ext(members_of(src)[:-1], str(d))["uuid"]


def test_ext4_without_journal(tmp_path):
    src = make_tree(tmp_path / "t")
    img = tmp_path / "root.ext4"
    E.write_ext(members_of(src), str(img), fs="ext4", label="rootfs")
    fsck(img)
    head = subprocess.run(["dumpe2fs", "-h", str(img)], capture_output=True, text=True, check=True).stdout
    features = re.search(r"Filesystem features:\s+(.*)", head).group(1).split()
    assert "extent" in features and "metadata_csum" in features and "has_journal" not in features
    assert re.search(r"Filesystem volume name:\s+rootfs", head)
    assert debugfs(img, 'cat "/dir/sub/deep.bin"').encode("utf-8", "surrogateescape") == (src / "dir/sub/deep.bin").read_bytes()
    img2 = tmp_path / "again.ext4"
    E.write_ext(members_of(src), str(img2), fs="ext4", label="rootfs")
    assert img.read_bytes() == img2.read_bytes()


def test_not_root_path_gives_same_tree(tmp_path):
    """Owners and device nodes fixed by debugfs instead of lchown/mknod (what
    a build as an ordinary user does)."""
    src = make_tree(tmp_path / "t")
    ms = [m for m in members_of(src) if "\n" not in m.path]
    img = tmp_path / "user.ext2"
    E.write_ext(ms, str(img), as_root=False)
    fsck(img)
    s = stat_of(img, "owned")
    assert (s["mode"], s["uid"], s["gid"]) == (0o4750, 1000, 1001)
    assert stat_of(img, "dev/console")["dev"] == (5, 1)
    assert stat_of(img, "dev/console")["mode"] == 0o600
    assert stat_of(img, 'quote"d')["uid"] == 0
    with pytest.raises(E.ExtError, match="newline"):
        E.write_ext(members_of(src), str(tmp_path / "nl.ext2"), as_root=False)


def test_sparse_2gib_file(tmp_path):
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.truncate(2 << 30)
        f.seek(1 << 30)
        f.write(b"middle")
    # staging copies data only: a few KiB on disk, not 2 GiB
    staged = tmp_path / "staged"
    E._stage_file(Member("big", "file", 0o644, 2 << 30, source=str(big)), str(staged))
    assert staged.stat().st_size == 2 << 30 and staged.stat().st_blocks * 512 < 1 << 20
    img = tmp_path / "sparse.ext2"
    info = E.write_ext(expand([{"type": "file", "path": "/data/big", "source": str(big)}]), str(img))
    assert info["size"] < 64 << 20
    fsck(img)
    s = stat_of(img, "data/big")
    assert s["size"] == 2 << 30
    phys = int(debugfs(img, f"bmap /data/big {(1 << 30) // 4096}").strip())
    with open(img, "rb") as f:
        f.seek(phys * 4096)
        assert f.read(6) == b"middle"


def test_content_at_an_offset(tmp_path):
    """Members that point into an archive (source + offset), as flatten makes."""
    blob = tmp_path / "blob"
    blob.write_bytes(b"HEADER" + b"payload" + b"TRAILER")
    img = tmp_path / "o.ext2"
    E.write_ext([Member("p", "file", 0o644, 7, source=str(blob), offset=6)], str(img))
    assert debugfs(img, "cat /p") == "payload"


def test_sizes(tmp_path):
    src = make_tree(tmp_path / "t")
    img = tmp_path / "fixed.ext2"
    E.write_ext(members_of(src), str(img), size="64M")
    assert img.stat().st_size == 64 << 20
    fsck(img)
    (tmp_path / "blob").write_bytes(os.urandom(3 << 20))
    with pytest.raises(E.ExtError, match=r"does not fit in 2M"):
        E.write_ext(
            expand([{"type": "file", "path": "/b", "source": str(tmp_path / "blob")}]), str(tmp_path / "small.ext2"), size="2M"
        )
    assert not (tmp_path / "small.ext2").exists()
    assert E.parse_size("64M") == 64 << 20 and E.parse_size("1G") == 1 << 30 and E.parse_size("4096") == 4096
    assert E.parse_size("10MiB") == 10 << 20
    with pytest.raises(E.ExtError, match="auto"):
        E.parse_size("big")


def test_auto_size_fits_many_files_and_big_ones(tmp_path):
    root = tmp_path / "many"
    for i in range(40):
        d = root / f"d{i:02}"
        d.mkdir(parents=True)
        for j in range(100):
            (d / f"file-with-a-longish-name-{j:03}").write_bytes(b"x" * (j * 37))
    (root / "blob").write_bytes(os.urandom(20 << 20))
    ms = expand([{"type": "tree", "path": "", "source": str(root)}])
    img = tmp_path / "many.ext4"
    info = E.write_ext(ms, str(img), fs="ext4")
    fsck(img)
    assert info["size"] <= 2 * (24 << 20) + (8 << 20)  # not wildly oversized
    assert len(debugfs(img, "ls /d39").split()) >= 100


def test_missing_e2fsprogs_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(E, "SBIN", [])
    with pytest.raises(E.ExtError, match="e2fsprogs"):
        E.write_ext([], str(tmp_path / "x.img"))


def test_cli_standalone(tmp_path):
    src = make_tree(tmp_path / "t")
    tree = {
        "entries": [{"type": "tree", "path": "/", "source": str(src)}, {"type": "file", "path": "/etc/conf", "data": "k=v\n"}]
    }
    (tmp_path / "tree.json").write_text(json.dumps(tree))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = tmp_path / "o.ext4"
    r = subprocess.run(
        [sys.executable, str(HELPER), str(tmp_path / "tree.json"), str(out), "--fs", "ext4", "--size", "32M"],
        cwd="/",
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["size"] == 32 << 20
    assert debugfs(out, "cat /etc/conf") == "k=v\n"
    ref = tmp_path / "ref.ext4"
    E.write_ext(expand(tree["entries"]), str(ref), fs="ext4", size="32M")
    assert ref.read_bytes() == out.read_bytes()


def host_tree(root: Path) -> Path:
    """A plain host directory (what `rootfs.from = ./dir` reads): odd modes,
    an owner, hard links, symlinks, a sparse file, names with quotes."""
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "x").write_bytes(b"x" * 5000)
    (root / "a" / "b" / "x").chmod(0o600)
    os.link(root / "a" / "b" / "x", root / "a" / "hl")
    os.link(root / "a" / "b" / "x", root / "z-hl")
    (root / "a").chmod(0o700)
    os.symlink("../b/x", root / "a" / "rel")
    with open(root / "sparse", "wb") as f:
        f.truncate(20 << 20)
        f.write(b"head")
    (root / 'we ird"name').write_bytes(b"q")
    (root / 'we ird"name').chmod(0o4755)
    if os.geteuid() == 0:
        os.chown(root / "a" / "b" / "x", 1234, 5678)
    return root


@pytest.mark.parametrize("as_root", [True, False], ids=["root", "not-root"])
def test_a_host_directory_is_read_in_place_with_the_same_bytes(tmp_path, monkeypatch, as_root):
    """mke2fs -d reads the user's directory itself (no staging copy); the
    image is byte for byte the one a staged copy gives, and the user's
    files are untouched (not even their ctime)."""
    if as_root and os.geteuid() != 0:
        pytest.skip("as root only")
    src = host_tree(tmp_path / "t")
    ms = members_of(src, extra=False)
    assert [m.kind for m in ms if m.path in ("a/hl", "z-hl")] == ["hardlink", "hardlink"]
    direct = E.direct_source(ms)
    assert direct is not None and direct[0] == str(src)
    before = {p: os.lstat(p) for p in src.rglob("*")}
    E.write_ext(ms, str(tmp_path / "direct.img"), mtime=86400, as_root=as_root)
    after = {p: os.lstat(p) for p in src.rglob("*")}
    assert {p: (s.st_ctime_ns, s.st_mode, s.st_nlink) for p, s in before.items()} == {
        p: (s.st_ctime_ns, s.st_mode, s.st_nlink) for p, s in after.items()
    }
    monkeypatch.setattr(E, "direct_source", lambda members: None)
    E.write_ext(ms, str(tmp_path / "staged.img"), mtime=86400, as_root=as_root)
    assert (tmp_path / "direct.img").read_bytes() == (tmp_path / "staged.img").read_bytes()
    img = tmp_path / "direct.img"
    fsck(img)
    s = stat_of(img, 'we ird"name')  # host modes are normalized as Nix stores them
    assert (s["mode"], s["uid"], s["gid"]) == (0o755, 0, 0)
    assert stat_of(img, "a")["mode"] == 0o755 and stat_of(img, "a/b/x")["mode"] == 0o644
    x, hl = stat_of(img, "a/b/x"), stat_of(img, "z-hl")
    assert x["ino"] == hl["ino"] and x["links"] == 3 and (x["uid"], x["gid"]) == (0, 0)


def test_read_in_place_only_when_the_directory_is_the_plan(tmp_path):
    src = host_tree(tmp_path / "t")
    ms = members_of(src, extra=False)
    assert E.direct_source(ms) is not None
    (src / "late").write_text("not in the plan")
    assert E.direct_source(ms) is None
    (src / "late").unlink()
    # the plan keeps the names apart, the host shares their inode: mke2fs would link them
    apart = members_of(src, extra=False, hardlinks=False)  # as inside a Nix build
    assert "hardlink" not in {m.kind for m in apart}
    assert E.direct_source(apart) is None
    # a member from elsewhere (an include) or inline data: staged
    assert E.direct_source(ms + [Member("zz", "file", 0o644, 2, data=b"hi")]) is None
    other = tmp_path / "other"
    other.write_text("o")
    assert (
        E.direct_source(sorted(ms + [Member("zz", "file", 0o644, 1, source=str(other))], key=lambda m: m.path.split("/"))) is None
    )


def test_a_tree_that_changes_during_the_build_is_an_error(tmp_path, monkeypatch):
    src = host_tree(tmp_path / "t")
    ms = members_of(src, extra=False)
    real = E.direct_source

    def racing(members):
        got = real(members)
        (src / "late").write_text("appeared after the check")
        return got

    monkeypatch.setattr(E, "direct_source", racing)
    with pytest.raises(E.ExtError, match="changed while"):
        E.write_ext(ms, str(tmp_path / "x.img"))
    assert not (tmp_path / "x.img").exists()
