"""rootfs/flatten.py: real images from a private Docker Engine (docker save,
then skopeo to OCI forms) compared with `docker export`; hand-made hostile
layers (escapes, symlink tricks, whiteouts, hard links) that must stay inside
the tree."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from support import need
from urunix.helpers.image_writer import Member
from urunix.rootfs import flatten as F


# ----------------------------------------------------------- hand-made images


def tar_bytes(entries: list[tuple]) -> bytes:
    """entries: (name, kind, extra) with kind file|dir|sym|link|chr|fifo."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, *rest in entries:
            info = tarfile.TarInfo(name)
            data = None
            if kind == "file":
                data = rest[0] if rest else b""
                info.size = len(data)
                info.mode = rest[1] if len(rest) > 1 else 0o644
            elif kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, (rest[0] if rest else 0o755)
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, rest[0]
            elif kind == "link":
                info.type, info.linkname = tarfile.LNKTYPE, rest[0]
            elif kind == "chr":
                info.type, info.devmajor, info.devminor, info.mode = tarfile.CHRTYPE, rest[0], rest[1], 0o600
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def make_archive(
    path: Path,
    layers: list[bytes],
    config: dict | None = None,
    compress: set[int] = frozenset(),
    layer_names: list[str] | None = None,
) -> Path:
    """A docker-archive in the pre-25 form (`<id>/layer.tar`)."""
    cfg = {"architecture": "amd64", "os": "linux", "config": config or {}, "rootfs": {"type": "layers", "diff_ids": []}}
    names = layer_names or [f"l{i}/layer.tar" for i in range(len(layers))]
    with tarfile.open(path, "w") as t:

        def add(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))

        add("config.json", json.dumps(cfg).encode())
        for i, (name, data) in enumerate(zip(names, layers)):
            add(name, gzip.compress(data, mtime=0) if i in compress else data)
        add("manifest.json", json.dumps([{"Config": "config.json", "RepoTags": ["t/x:1"], "Layers": names}]).encode())
    return path


def tree(members: list[Member]) -> dict[str, Member]:
    return {m.path: m for m in members}


def content(m: Member) -> bytes:
    with open(m.source, "rb") as f:
        f.seek(m.offset)
        return f.read(m.size)


def test_whiteouts_and_opaque_dirs(tmp_path):
    low = tar_bytes(
        [
            ("gone", "file", b"g"),
            ("gonedir/", "dir"),
            ("gonedir/x", "file", b"x"),
            ("dir/", "dir"),
            ("dir/old1", "file", b"1"),
            ("dir/sub/", "dir"),
            ("dir/sub/old2", "file", b"2"),
            ("keep", "file", b"k"),
        ]
    )
    up = tar_bytes(
        [
            (".wh.gone", "file"),
            (".wh.gonedir", "file"),
            ("dir/new", "file", b"n"),
            ("dir/.wh..wh..opq", "file"),
            (".wh..wh.plnk", "file"),
            (".wh.never-existed", "file"),
        ]
    )
    with F.flatten(str(make_archive(tmp_path / "i.tar", [low, up]))) as flat:
        t = tree(flat.members)
        assert sorted(t) == ["dir", "dir/new", "keep"]
        assert content(t["dir/new"]) == b"n" and content(t["keep"]) == b"k"


def test_same_layer_whiteout_only_hits_lower_layers(tmp_path):
    low = tar_bytes([("dir/", "dir"), ("dir/a", "file", b"a")])
    up = tar_bytes([("dir/b", "file", b"b"), ("dir/.wh..wh..opq", "file"), ("c", "file", b"c"), (".wh.c", "file")])
    with F.flatten(str(make_archive(tmp_path / "i.tar", [low, up]))) as flat:
        assert sorted(tree(flat.members)) == ["c", "dir", "dir/b"]


def test_hard_links_survive_their_first_name(tmp_path):
    l1 = tar_bytes([("a", "file", b"data", 0o750), ("b", "link", "a"), ("c", "link", "b")])
    l2 = tar_bytes([(".wh.a", "file")])
    with F.flatten(str(make_archive(tmp_path / "i.tar", [l1, l2]))) as flat:
        t = tree(flat.members)
        assert t["b"].kind == "file" and content(t["b"]) == b"data" and t["b"].mode == 0o750
        assert t["c"].kind == "hardlink" and t["c"].target == "b"
    l3 = tar_bytes([("b", "file", b"new")])  # replacing one name leaves the other
    with F.flatten(str(make_archive(tmp_path / "j.tar", [l1, l3]))) as flat:
        t = tree(flat.members)
        assert content(t["b"]) == b"new"
        assert t["a"].kind == "file" and t["c"] == Member("c", "hardlink", 0o750, target="a")


def test_symlinks_are_never_followed_on_the_host(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    rel_escape = os.path.relpath(outside, "/")
    l1 = tar_bytes(
        [
            ("evil", "sym", "../../../../../../" + rel_escape),
            ("abs", "sym", str(outside)),
            ("etc", "sym", "/"),
            ("loop1", "sym", "loop2"),
            ("loop2", "sym", "loop1"),
        ]
    )
    l2 = tar_bytes([("evil/pwned", "file", b"x"), ("abs/pwned2", "file", b"y"), ("etc/passwd", "file", b"p"), ("same/", "dir")])
    with F.flatten(str(make_archive(tmp_path / "i.tar", [l1, l2]))) as flat:
        t = tree(flat.members)
        # resolved inside the tree, as a chroot would
        assert content(t[rel_escape + "/pwned"]) == b"x"
        assert content(t[str(outside).lstrip("/") + "/pwned2"]) == b"y"
        assert content(t["passwd"]) == b"p"
        assert t["evil"].kind == "symlink" and t["evil"].target.endswith(rel_escape)
    assert list(outside.iterdir()) == []
    # the same trick inside one layer
    l3 = tar_bytes([("x", "sym", str(outside)), ("x/inner", "file", b"z")])
    with F.flatten(str(make_archive(tmp_path / "j.tar", [l3]))) as flat:
        assert content(tree(flat.members)[str(outside).lstrip("/") + "/inner"]) == b"z"
    assert list(outside.iterdir()) == []
    l4 = tar_bytes([("loop1", "sym", "loop2"), ("loop2", "sym", "loop1"), ("loop1/x", "file", b"")])
    with pytest.raises(F.FlattenError, match="symlinks"):
        F.flatten(str(make_archive(tmp_path / "k.tar", [l4])))


@pytest.mark.parametrize("name", ["../escape", "a/../../escape", "./../x"])
def test_dotdot_names_are_refused(tmp_path, name):
    with pytest.raises(F.FlattenError, match=r"\.\."):
        F.flatten(str(make_archive(tmp_path / "i.tar", [tar_bytes([(name, "file", b"x")])])))


def test_bad_hard_links_are_refused(tmp_path):
    for i, (target, msg) in enumerate([("nope", "no such file"), ("../etc/passwd", r"\.\."), ("d", "directory")]):
        layer = tar_bytes([("d/", "dir"), ("l", "link", target)])
        with pytest.raises(F.FlattenError, match=msg):
            F.flatten(str(make_archive(tmp_path / f"i{i}.tar", [layer])))


def test_absolute_names_and_replacements(tmp_path):
    l1 = tar_bytes(
        [
            ("/abs/file", "file", b"a"),
            ("./dot/file", "file", b"d"),
            ("f2d", "file", b"x"),
            ("d2f/", "dir"),
            ("d2f/child", "file", b"c"),
            ("dev/", "dir"),
            ("dev/null", "chr", 1, 3),
            ("dev/fifo", "fifo"),
            ("modes/", "dir", 0o700),
        ]
    )
    l2 = tar_bytes([("f2d/", "dir"), ("f2d/in", "file", b"i"), ("d2f", "file", b"now a file"), ("modes/", "dir", 0o1777)])
    with F.flatten(str(make_archive(tmp_path / "i.tar", [l1, l2]))) as flat:
        t = tree(flat.members)
        assert sorted(t) == ["abs", "abs/file", "d2f", "dev", "dev/fifo", "dev/null", "dot", "dot/file", "f2d", "f2d/in", "modes"]
        assert t["d2f"].kind == "file" and t["f2d"].kind == "dir"
        assert (t["dev/null"].kind, t["dev/null"].devmajor, t["dev/null"].devminor) == ("char", 1, 3)
        assert t["dev/fifo"].kind == "fifo" and t["modes"].mode == 0o1777
        assert [m.path for m in flat.members] == sorted(t, key=lambda p: p.split("/"))


def test_content_points_into_the_archive_or_a_decompressed_temp(tmp_path):
    l0 = tar_bytes([("plain", "file", b"P" * 5000)])
    l1 = tar_bytes([("zipped", "file", b"Z" * 7000)])
    img = make_archive(tmp_path / "i.tar", [l0, l1], compress={1})
    with F.flatten(str(img)) as flat:
        t = tree(flat.members)
        assert t["plain"].source == str(img) and t["plain"].offset > 0  # read in place
        assert content(t["plain"]) == b"P" * 5000
        assert t["zipped"].source.startswith(flat.scratch) and content(t["zipped"]) == b"Z" * 7000
        scratch = flat.scratch
    assert not os.path.exists(scratch)


def test_zstd_layers_get_a_clear_error(tmp_path):
    img = make_archive(tmp_path / "i.tar", [b"\x28\xb5\x2f\xfd" + bytes(600)])
    with pytest.raises(F.FlattenError, match="zstd"):
        F.flatten(str(img))


def test_linked_layer_tar_of_old_docker_save(tmp_path):
    """Old `docker save` stores an identical layer once and symlinks the other."""
    layer = tar_bytes([("f", "file", b"same")])
    img = tmp_path / "i.tar"
    cfg = {"architecture": "amd64", "os": "linux", "config": {}}
    with tarfile.open(img, "w") as t:
        for name, data in (("c.json", json.dumps(cfg).encode()), ("a/layer.tar", layer)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("b/layer.tar")
        info.type, info.linkname = tarfile.SYMTYPE, "../a/layer.tar"
        t.addfile(info)
        data = json.dumps([{"Config": "c.json", "Layers": ["a/layer.tar", "b/layer.tar"]}]).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    with F.flatten(str(img)) as flat:
        assert content(tree(flat.members)["f"]) == b"same"


def read(img: Path, path: str, limit: int = 16 << 20) -> bytes | None:
    from urunix.imagefile import open_image

    with open_image(str(img)) as (info, store):
        return F.read_file(store, info, path, limit, image=str(img))


def test_a_file_is_found_through_symlinks_inside(tmp_path):
    layer = tar_bytes(
        [("boot/", "dir"), ("boot/vmlinuz-6", "file", b"KERNEL"), ("kernel", "sym", "/boot/vmlinuz-6"), ("dir/", "dir")]
    )
    img = make_archive(
        tmp_path / "i.tar", [layer], config={"Entrypoint": ["/init"], "Cmd": ["a b"], "Env": ["A=1"], "WorkingDir": "/w"}
    )
    with F.flatten(str(img)) as flat:
        m = flat.find("/kernel")
        assert m is not None and m.kind == "file"
        assert Path(F.copy_member(m, str(tmp_path / "k"))).read_bytes() == b"KERNEL"
        assert flat.find("kernel", follow=False).kind == "symlink"
        assert flat.find("/nope") is None and flat.find("/dir").kind == "dir"
    assert read(img, "/kernel") == read(img, "/boot/vmlinuz-6") == b"KERNEL"
    assert read(img, "/nope") is None and read(img, "/dir") is None
    with pytest.raises(F.FlattenError, match="larger than 3 bytes"):
        read(img, "/kernel", limit=3)


# Layers where a reader that only looks for the name (and its whiteout)
# goes wrong; read_file must say what flatten() says.
TRICKY = {
    "hard link": [[("x", "file", b"DATA"), ("urunc.json", "link", "x")]],
    "hard link in a lower layer": [[("x", "file", b"DATA")], [("urunc.json", "link", "x")], [(".wh.x", "file")]],
    "whiteout": [[("urunc.json", "file", b"OLD")], [(".wh.urunc.json", "file")]],
    "opaque": [[("etc/", "dir"), ("etc/u.json", "file", b"OLD")], [("etc/", "dir"), ("etc/.wh..wh..opq", "file")]],
    "symlinked parent": [[("real/", "dir"), ("real/u.json", "file", b"DATA"), ("etc", "sym", "real")]],
    "symlink to a link": [[("a", "file", b"DATA"), ("b", "link", "a"), ("urunc.json", "sym", "/b")]],
    "replaced by a dir": [[("urunc.json", "file", b"OLD")], [("urunc.json/", "dir")]],
    "parent whited out": [[("etc/", "dir"), ("etc/u.json", "file", b"OLD")], [(".wh.etc", "file")], [("etc/", "dir")]],
}


@pytest.mark.parametrize("case", sorted(TRICKY))
@pytest.mark.parametrize("gz", [False, True])
def test_read_file_merges_as_flatten_does(tmp_path, case, gz):
    layers = [tar_bytes(entries) for entries in TRICKY[case]]
    img = make_archive(tmp_path / "i.tar", layers, compress=set(range(len(layers))) if gz else set())
    for path in ("/urunc.json", "/etc/u.json"):
        with F.flatten(str(img)) as flat:
            m = flat.find(path)
            want = content(m) if m is not None and m.kind in ("file", "hardlink") else None
        assert read(img, path) == want, (case, path)
    assert any(read(img, p) == b"DATA" for p in ("/urunc.json", "/etc/u.json")) == (
        case in ("hard link", "hard link in a lower layer", "symlinked parent", "symlink to a link")
    )


def test_inspect_reads_a_hard_linked_urunc_json(tmp_path):
    """An image whose /urunc.json is a hard link to another file: urunc
    (containerd's applier) sees the file, and so does `urunix inspect`."""
    from urunix.helpers.urunc_json import labels, urunc_json
    from urunix.image_report import exit_code, inspect_image

    ann = {"unikernelType": "unikraft", "hypervisor": "qemu", "binary": "/kernel", "cmdline": "k"}
    layer = tar_bytes([("kernel", "file", b"K"), (".urunc-meta", "file", urunc_json(ann)), ("urunc.json", "link", ".urunc-meta")])
    img = make_archive(tmp_path / "i.tar", [layer], config={"Labels": labels(ann)})
    report = inspect_image(str(img))
    assert report["uruncJson"] == ann and report["missing"] == [] and report["disagreements"] == []
    assert exit_code(report) == 0


def test_run_config_accessors(tmp_path):
    layer = tar_bytes([("dir/", "dir")])
    img = make_archive(
        tmp_path / "i.tar", [layer], config={"Entrypoint": ["/init"], "Cmd": ["a b"], "Env": ["A=1"], "WorkingDir": "/w"}
    )
    with F.flatten(str(img)) as flat:
        assert flat.argv() == ["/init", "a b"] and flat.env() == ["A=1"] and flat.workdir() == "/w"


# ------------------------------------------------------- real Docker images

DOCKERFILE = """FROM urunix-test/bb:1
COPY tree/ /app/
RUN rm /app/gone.txt && rm -rf /app/gonedir && ln /app/keep.txt /app/hard.txt && ln -s keep.txt /app/sym \\
 && rm -rf /app/redo && mkdir /app/redo && echo fresh > /app/redo/new && mkfifo /app/fifo \\
 && chmod 4711 /app/exe && chown 123:456 /app/keep.txt
COPY more.txt /app/more.txt
ENV A=1 B="two words"
WORKDIR /app
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo hi"]
"""


@pytest.fixture(scope="module")
def built(docker, tmp_path_factory):
    """A real image: a busybox base imported from a tar, then a Dockerfile
    with COPY and RUN layers (deletions become whiteouts), saved with
    `docker save` and converted by skopeo to an OCI layout (gzip layers) and
    an oci-archive."""
    need("skopeo")
    base = tmp_path_factory.mktemp("flat")
    bb = shutil.which("busybox") or "/bin/busybox"
    if not os.path.exists(bb):
        pytest.skip("busybox-static is not installed")
    rootfs = base / "bb-root"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy(bb, rootfs / "bin" / "busybox")
    for tool in ("sh", "rm", "ln", "mkdir", "mkfifo", "chmod", "chown", "echo"):
        os.symlink("busybox", rootfs / "bin" / tool)
    subprocess.run(["tar", "-cf", str(base / "bb.tar"), "-C", str(rootfs), "."], check=True)
    docker.run("import", str(base / "bb.tar"), "urunix-test/bb:1")
    ctx = base / "ctx"
    (ctx / "tree" / "gonedir").mkdir(parents=True)
    (ctx / "tree" / "redo").mkdir()
    (ctx / "tree" / "redo" / "old").write_text("old")
    (ctx / "tree" / "gone.txt").write_text("gone")
    (ctx / "tree" / "gonedir" / "x").write_text("x")
    (ctx / "tree" / "keep.txt").write_text("keep")
    (ctx / "tree" / "with space é").write_bytes(os.urandom(70_000))
    (ctx / "tree" / "exe").write_text("#!/bin/sh\n")
    (ctx / "more.txt").write_text("more")
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    env_builder = {"DOCKER_BUILDKIT": "0"}
    r = subprocess.run(
        ["docker", "build", "-q", "-t", "urunix-test/flat:1", str(ctx)],
        capture_output=True,
        env={**docker.env, **env_builder},
        timeout=300,
    )
    if r.returncode != 0:
        pytest.fail("docker build failed: " + r.stderr.decode(errors="replace")[-2000:])
    archive = base / "flat.tar"
    docker.run("save", "-o", str(archive), "urunix-test/flat:1")
    layout = base / "layout"
    subprocess.run(
        ["skopeo", "copy", "--dest-compress", f"docker-archive:{archive}", f"oci:{layout}:flat"], check=True, capture_output=True
    )
    ociarchive = base / "flat-oci.tar"
    subprocess.run(
        ["skopeo", "copy", f"docker-archive:{archive}", f"oci-archive:{ociarchive}:flat"], check=True, capture_output=True
    )
    exported = docker.export("urunix-test/flat:1", base / "exported")
    return {"docker-archive": archive, "oci": layout, "oci-archive": ociarchive, "exported": exported}


RUNTIME_ADDED = {
    ".dockerenv",
    "dev",
    "proc",
    "sys",
    "etc",
    "etc/hosts",
    "etc/hostname",
    "etc/resolv.conf",
    "etc/mtab",
    "dev/console",
    "dev/pts",
    "dev/shm",
}


def exported_tree(root: Path) -> dict[str, os.stat_result]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            out[os.path.relpath(p, root)] = os.lstat(p)
    return {k: v for k, v in out.items() if k not in RUNTIME_ADDED}


@pytest.mark.docker
@pytest.mark.parametrize("form", ["docker-archive", "oci", "oci-archive"])
def test_real_image_matches_docker_export(built, form):
    root = built["exported"]
    want = exported_tree(root)
    with F.flatten(str(built[form])) as flat:
        got = tree(flat.members)
        assert sorted(got) == sorted(want)
        for path, st in want.items():
            m = got[path]
            if m.kind == "hardlink":
                assert os.lstat(root / m.target).st_ino == st.st_ino
                m = got[m.target]
            kind = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink", stat.S_IFIFO: "fifo"}[
                stat.S_IFMT(st.st_mode)
            ]
            assert m.kind == kind, path
            if kind == "symlink":
                assert m.target == os.readlink(root / path)
                continue
            assert m.mode == stat.S_IMODE(st.st_mode), path
            assert (m.uid, m.gid) == (st.st_uid, st.st_gid), path
            if kind == "file":
                assert content(m) == (root / path).read_bytes(), path
        assert "app/gone.txt" not in got and "app/redo/old" not in got
        assert got["app/keep.txt"].uid == 123 and got["app/exe"].mode == 0o4711
        assert flat.entrypoint() == ["/bin/sh", "-c"] and flat.cmd() == ["echo hi"]
        assert "B=two words" in flat.env() and flat.workdir() == "/app"
        if form == "docker-archive":  # uncompressed layers: nothing was copied
            assert all(m.source == str(built[form]) for m in flat.members if m.kind == "file")


@pytest.mark.docker
def test_real_image_to_cpio_and_ext(built, tmp_path):
    """The flattened tree goes straight into the writers."""
    need("cpio")
    from urunix.helpers import cpio, ext

    with F.flatten(str(built["oci"])) as flat:
        cpio.write_file(flat.members, str(tmp_path / "r.cpio"))
        ext.write_ext(flat.members, str(tmp_path / "r.ext2"))
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(["cpio", "-idm", "--quiet"], stdin=open(tmp_path / "r.cpio", "rb"), cwd=out, check=True)
    assert (out / "app" / "hard.txt").read_text() == "keep"
    assert os.stat(out / "app" / "hard.txt").st_ino == os.stat(out / "app" / "keep.txt").st_ino
    assert (out / "app" / "redo" / "new").read_text() == "fresh\n"
    r = subprocess.run(["debugfs", "-R", "cat /app/more.txt", str(tmp_path / "r.ext2")], capture_output=True)
    assert r.stdout == b"more"
