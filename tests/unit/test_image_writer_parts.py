"""The parts of helpers/image_writer.py a plain build does not reach: layers
whose bytes exist already (the layer cache, `nix-build -A stream`) copied
into files, pipes and layouts with and without the kernel's copy calls; a
layer written alone; the script's entry point; the output's replacement.
Judged by independent readers: hashlib over the bytes, tarfile, json."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tarfile
from pathlib import Path

import pytest

from test_image_writer import plan_for
from urunix.helpers import image_writer as iw


def big_plan(tmp_path: Path, fmt: str) -> dict:
    """plan_for with a kernel over two copy buffers (CHUNK) long."""
    plan = plan_for(tmp_path, fmt)
    (tmp_path / "kernel").write_bytes(os.urandom(2 * iw.CHUNK + 1234))
    return plan


def blobs(out: Path, fmt: str) -> dict[str, bytes]:
    """Every file of an archive or layout, by name."""
    if fmt == "oci":
        return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    with tarfile.open(out) as t:
        return {m.name: t.extractfile(m).read() for m in t.getmembers()}


def no_syscall(monkeypatch, name: str) -> None:
    monkeypatch.delattr(os, name)


def refusing(monkeypatch, name: str, err: int = errno.EINVAL) -> None:
    def refuse(*a):
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(os, name, refuse)


COPY_MODES = {
    "kernel": lambda mp: None,
    "no copy_file_range, no sendfile": lambda mp: (no_syscall(mp, "copy_file_range"), no_syscall(mp, "sendfile")),
    "both refused": lambda mp: (refusing(mp, "copy_file_range", errno.EXDEV), refusing(mp, "sendfile")),
}


def reference(tmp_path: Path, fmt: str) -> tuple[dict, Path, list]:
    """The plan written from its entries, with where on_layer says each
    layer's bytes lie."""
    plan = big_plan(tmp_path, fmt)
    ref = tmp_path / "ref"
    done = []
    got = []
    digest = iw.write(plan, str(ref), got.append, on_layer=lambda *a: done.append(a))
    assert digest.startswith("sha256:")
    sizes = [layer.size for layer, *_ in done]
    assert sum(got) == iw.total_bytes(plan) == sum(sizes) and len(done) == len(plan["layers"])
    for (layer, hexdigest, path, offset), name in zip(done, [x["name"] for x in plan["layers"]]):
        with open(path, "rb") as f:
            f.seek(offset)
            assert hashlib.sha256(f.read(layer.size)).hexdigest() == hexdigest
        assert layer.name == name
        assert (Path(path), offset) == ((ref / "blobs" / "sha256" / hexdigest, 0) if fmt == "oci" else (ref, offset))
    return plan, ref, done


@pytest.mark.parametrize("mode", COPY_MODES)
@pytest.mark.parametrize("fmt", iw.FORMATS)
@pytest.mark.parametrize("where", ["in the archive", "alone", "open file"])
def test_ready_layers_give_the_same_image(tmp_path, monkeypatch, fmt, mode, where):
    """Layers taken from where a build left them (on_layer), or written
    alone by write_layer, make the image byte for byte again; an archive
    also through a stream (a file object: no seek)."""
    plan, ref, done = reference(tmp_path, fmt)
    ready = []
    for i, (layer, digest, path, offset) in enumerate(done):
        if where == "alone":
            path, offset = str(tmp_path / f"layer{i}"), 0
            assert iw.write_layer(plan["layers"][i], plan["created"], path) == (digest, layer.size)
        if where == "open file":
            path = open(path, "rb")  # noqa: SIM115 -- closed below
        ready.append(iw.ready_layer(layer.name, path, offset, layer.size, digest, key=f"k{i}"))
    assert [(x.name, x.key, x.digest, x.blob[1]) for x in ready] == [
        (x[0].name, f"k{i}", x[1], x[3] if where != "alone" else 0) for i, x in enumerate(done)
    ]
    COPY_MODES[mode](monkeypatch)
    seen, staged = [], set()
    out = tmp_path / "out"

    def progress(n):
        seen.append(n)
        if fmt == "oci":  # a copied blob lies under a temporary name beside the others until it is whole
            staged.update(p.name[:5] for p in (out / "blobs" / "sha256").iterdir() if len(p.name) != 64)

    assert iw.write(plan, str(out), progress, layers=ready) == iw.write(plan, str(tmp_path / "again"))
    assert sum(seen) == sum(x.size for x in ready)
    assert staged == ({".tmp-"} if fmt == "oci" else set())
    assert blobs(out, fmt) == blobs(ref, fmt)
    if fmt == "oci":
        assert not [p for p in out.rglob(".tmp-*")]
    else:
        seen.clear()
        with open(tmp_path / "streamed", "wb") as f:
            iw.write(plan, f, seen.append, layers=ready)
        assert sum(seen) == sum(x.size for x in ready)
        assert (tmp_path / "streamed").read_bytes() == ref.read_bytes()
    for x in ready:
        if not isinstance(x.blob[0], str):
            x.blob[0].close()


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("mode", COPY_MODES)
@pytest.mark.parametrize("missing", [0, 100])
def test_a_ready_layer_is_copied_whole_or_refused_when_short(tmp_path, monkeypatch, mode, stream, missing):
    """Any length (here a buffer and one byte, from an offset); a source
    shorter than the layer says is refused, naming the bytes missing."""
    data = os.urandom(100 + iw.CHUNK + 1)
    src = tmp_path / "blob"
    src.write_bytes(data)
    plan = {"format": "docker-archive", "created": "1970-01-01T00:00:01Z", "architecture": "amd64", "layers": []}
    layer = iw.ready_layer("l", str(src), 100, iw.CHUNK + 1 + missing, hashlib.sha256(data[100:]).hexdigest())
    assert iw.total_bytes(plan, [layer]) == layer.size  # the layers given, not the plan's (none)
    COPY_MODES[mode](monkeypatch)
    out = tmp_path / "out"
    with open(out, "wb") if stream else contextlib.nullcontext(str(out)) as f:
        if missing:
            with pytest.raises(iw.PlanError) as e:
                iw.write(plan, f, layers=[layer])
            assert str(e.value) == f"{src} ended {missing} bytes early"
            return
        iw.write(plan, f, layers=[layer])
    with tarfile.open(out) as t:
        assert t.extractfile("blobs/sha256/" + layer.digest).read() == data[100:]


def test_a_stream_error_other_than_unsupported_is_raised(tmp_path, monkeypatch):
    plan, ref, done = reference(tmp_path, "docker-archive")
    layer, digest, path, offset = done[0]
    refusing(monkeypatch, "sendfile", errno.EIO)
    with open(tmp_path / "out", "wb") as f, pytest.raises(OSError) as e:
        iw.write(plan, f, layers=[iw.ready_layer(layer.name, path, offset, layer.size, digest)])
    assert e.value.errno == errno.EIO


class Pipe:
    """A writer that takes at most 1000 bytes a call (a full pipe), and
    says nothing (None) when it took them all."""

    def __init__(self, f):
        self.f, self.name = f, f.name

    def write(self, data):
        n = self.f.write(bytes(data[:1000]))
        return None if n == len(data) else n

    def fileno(self):
        return self.f.fileno()

    def flush(self):
        self.f.flush()


def test_a_stream_takes_short_writes(tmp_path):
    plan, ref, done = reference(tmp_path, "docker-archive")
    ready = [iw.ready_layer(x.name, p, o, x.size, d) for x, d, p, o in done]
    with open(tmp_path / "out", "wb") as f:
        iw.write(plan, Pipe(f), layers=ready)
        assert not f.closed  # the caller's to close
    assert (tmp_path / "out").read_bytes() == ref.read_bytes()


def test_an_oci_layout_cannot_be_streamed(tmp_path):
    with open(tmp_path / "out", "wb") as f, pytest.raises(iw.PlanError, match="^an OCI layout is a directory"):
        iw.write(plan_for(tmp_path, "oci"), f)


@pytest.mark.parametrize("exists", [False, True])
@pytest.mark.parametrize("fmt", ["docker-archive", "oci"])
def test_main_writes_the_image_and_prints_its_digest(tmp_path, capsys, fmt, exists):
    plan = plan_for(tmp_path, fmt)
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    out = tmp_path / "out"
    if exists:
        iw.write(dict(plan, repoTags=["old:1"]), str(out))
    assert iw.main(["image_writer.py", str(tmp_path / "plan.json"), str(out)]) == 0
    printed = capsys.readouterr().out
    iw.write(plan, str(tmp_path / "ref"))
    assert blobs(out, fmt) == blobs(tmp_path / "ref", fmt)
    index = json.loads(blobs(out, fmt)["index.json"])
    assert printed == index["manifests"][0]["digest"] + "\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(iw.TEMP_PREFIX)) == []


@pytest.mark.parametrize(
    ("args", "entry", "code", "message"),
    [
        ([], None, 2, "usage: x PLAN.json OUT\n"),
        (["a", "b", "c"], None, 2, "usage: x PLAN.json OUT\n"),
        (
            ["out"],
            {"type": "file", "path": "/../x", "data": ""},
            1,
            "image_writer.py: PlanError: path escapes the image root: '/../x'\n",
        ),
        (
            ["out"],
            {"type": "file", "path": "/x", "source": "/nonexistent"},
            1,
            "image_writer.py: FileNotFoundError: [Errno 2] No such file",
        ),
    ],
)
def test_main_refuses_with_one_message(tmp_path, capsys, args, entry, code, message):
    plan = {"created": "1970-01-01T00:00:01Z", "architecture": "amd64", "layers": [{"entries": [entry]}]}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    argv = ["image_writer.py", str(tmp_path / "plan.json"), *[str(tmp_path / a) for a in args]] if entry else ["x", *args]
    assert iw.main(argv) == code
    err = capsys.readouterr().err
    assert err.startswith(message)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("relative", [False, True])
def test_exchange_swaps_two_paths(tmp_path, monkeypatch, relative):
    monkeypatch.chdir(tmp_path)
    at = (lambda n: n) if relative else (lambda n: str(tmp_path / n))
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "in-a").write_text("")
    (tmp_path / "b").write_text("b")
    assert iw._exchange(at("a"), at("b")) is True
    assert (tmp_path / "a").read_text() == "b" and (tmp_path / "b" / "in-a").exists()
    assert iw._exchange(at("b"), at("b/in-a")) is False  # EINVAL: no swapping a directory into itself
    with pytest.raises(OSError) as e:
        iw._exchange(at("a"), at("missing"))
    assert (e.value.errno, e.value.strerror, e.value.filename) == (errno.ENOENT, os.strerror(errno.ENOENT), at("missing"))


@pytest.mark.parametrize("swap", [True, False])
@pytest.mark.parametrize("fsync", [False, True])
def test_a_layout_replaces_the_old_one_whole(tmp_path, monkeypatch, swap, fsync):
    """Swapped in one step where Linux can, else moved aside first; either
    way the old layout ends in the scratch directory, removed with it."""
    out = tmp_path / "layout"
    iw.write_atomic(plan_for(tmp_path, "oci", repoTags=["old:1"]), str(out))
    if not swap:
        monkeypatch.setattr(iw, "_exchange", lambda a, b: False)
    plan = plan_for(tmp_path, "oci")
    iw.write_atomic(plan, str(out), fsync=fsync)
    iw.write(plan, str(tmp_path / "ref"))
    assert blobs(out, "oci") == blobs(tmp_path / "ref", "oci")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kernel", "layout", "ref", "tree"]


@pytest.mark.parametrize(
    ("err", "raised"), [(errno.ENOTEMPTY, errno.EBUSY), (errno.EEXIST, errno.EBUSY), (errno.EXDEV, errno.EXDEV)]
)
def test_replacing_tries_three_times_while_others_write(tmp_path, monkeypatch, err, raised):
    """Each time the result is moved aside, another build puts its own
    there before ours lands: three tries, then EBUSY; other errors at once."""
    (tmp_path / "staged").mkdir()
    (tmp_path / "scratch").mkdir()
    real = os.rename

    def racing(a, b):
        if a != str(tmp_path / "staged"):
            return real(a, b)
        os.makedirs(b, exist_ok=True)
        raise OSError(err, os.strerror(err), b)

    monkeypatch.setattr(iw, "_exchange", lambda a, b: False)
    monkeypatch.setattr(os, "rename", racing)
    with pytest.raises(OSError) as e:
        iw.replace_dir(str(tmp_path / "staged"), str(tmp_path / "out"), str(tmp_path / "scratch"))
    assert e.value.errno == raised and e.value.filename == str(tmp_path / "out")
    assert e.value.strerror == ("other builds keep replacing the output" if raised == errno.EBUSY else os.strerror(err))
    moved = ["old-1", "old-2"] if raised == errno.EBUSY else []
    assert sorted(os.listdir(tmp_path / "scratch")) == moved


def test_fsync_dir_and_fsynced_archives(tmp_path):
    iw.fsync_dir(str(tmp_path))
    with pytest.raises(FileNotFoundError):
        iw.fsync_dir(str(tmp_path / "missing"))
    plan = plan_for(tmp_path)
    iw.write_atomic(plan, str(tmp_path / "a.tar"), fsync=True)
    iw.write(plan, str(tmp_path / "b.tar"))
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()


@pytest.mark.parametrize(
    ("path", "clean", "error"),
    [
        ("/a//b/", "a/b", None),
        ("./a/./b/.", "a/b", None),
        ("/", "", None),
        ("a\0b", None, "path contains a NUL byte: 'a\\x00b'"),
        ("/a/../../b", None, "path escapes the image root: '/a/../../b'"),
        ("..", None, "path escapes the image root: '..'"),
    ],
)
def test_clean_path(path, clean, error):
    if error is None:
        assert iw.clean_path(path) == clean
    else:
        with pytest.raises(iw.PlanError) as e:
            iw.clean_path(path)
        assert str(e.value) == error


def test_prepare_makes_each_header_once():
    members = iw.expand([{"type": "file", "path": "/a/b", "data": "xyz"}, {"type": "symlink", "path": "/l", "target": "a"}])
    layer = iw.prepare("n", members, 7)
    assert (layer.name, layer.members, layer.blob, layer.digest) == ("n", members, None, None)
    assert layer.headers == [m.header(7) for m in members]
    assert layer.size == sum(map(len, layer.headers)) + 512 + 1024


@pytest.mark.parametrize("offset", range(0, 2 * iw.ALIGN, iw.BLOCK))
def test_align_pad_puts_the_next_members_data_on_a_block(offset):
    """Whatever the offset, the padding is a tar member readers skip, and the
    data of the member after it starts at a multiple of 4096."""
    pad = iw.align_pad(offset, 5)
    assert (offset + len(pad) + iw.BLOCK) % iw.ALIGN == 0 and len(pad) < iw.ALIGN
    member = tarfile.TarInfo("m")
    member.size = 3
    with tarfile.open(fileobj=__import__("io").BytesIO(pad + member.tobuf() + b"abc".ljust(512, b"\0") + bytes(1024))) as t:
        (info,) = t.getmembers()
        assert (info.name, t.extractfile(info).read()) == ("m", b"abc")


def test_a_hashing_error_reaches_the_writer(monkeypatch):
    class Broken:
        def update(self, data):
            raise MemoryError("no")

        def hexdigest(self):
            return ""

    monkeypatch.setattr(iw.hashlib, "sha256", Broken)
    with pytest.raises(MemoryError, match="no"):
        with iw.HashingWriter(open(os.devnull, "wb"), None, True) as w:
            for _ in range(iw.RING + 2):
                w.write(bytes(iw.CHUNK))


def test_a_blob_of_another_size_than_planned_is_refused(tmp_path):
    sink = iw.Sink("oci", str(tmp_path / "o"), 1)
    with pytest.raises(iw.PlanError) as e:
        sink.blob(10, lambda w: w.write(b"12345"))
    assert str(e.value) == "blob size 5 differs from the computed 10"
    with open(tmp_path / "s", "wb") as f, pytest.raises(iw.PlanError) as e:
        iw.Sink("docker-archive", f, 1).blob(10, lambda w: w.write(b"12345"))
    assert str(e.value) == "a layer whose digest is not known yet cannot be streamed"


def test_user_strings_reach_the_config_byte_for_byte(tmp_path):
    """Non-ASCII text stays UTF-8 (no \\u escapes), and bytes that are no
    UTF-8 (surrogate-escaped) come out as the same bytes."""
    plan = plan_for(tmp_path)
    plan["config"] = {"Labels": {"k": "é \udcff"}, "Entrypoint": None}
    iw.write(plan, str(tmp_path / "o"))
    config = blobs(tmp_path / "o", "docker-archive")
    config = config[json.loads(config["manifest.json"])[0]["Config"]]
    assert b'"Labels":{"k":"\xc3\xa9 \xff"}' in config and b"Entrypoint" not in config


@pytest.mark.parametrize("fmt", ["docker-archive", "oci"])
def test_while_writing_all_lies_in_one_locked_temp_dir_beside_the_output(tmp_path, fmt):
    """Looked at from the progress callback, mid-write: one .urunix-tmp-*
    directory beside the output, holding a `.lock` (0600) that a build
    holds, and the archive being written (a layout's blobs under .tmp-
    names in blobs/sha256 until each is complete)."""
    import fcntl

    out = tmp_path / "out" / "image"
    out.parent.mkdir()
    looks = []

    def look(n):
        (tmp,) = [p for p in out.parent.iterdir() if p.name.startswith(iw.TEMP_PREFIX)]
        lock = tmp / iw.LOCK
        fd = os.open(lock, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        assert lock.stat().st_mode & 0o777 == 0o600
        staged = [p.name for p in (tmp / "out" / "blobs" / "sha256").iterdir()] if fmt == "oci" else []
        looks.append((sorted(os.listdir(tmp)), [s[:5] for s in staged if not s.startswith(tuple("0123456789abcdef"))]))

    done = []
    iw.write_atomic(plan_for(tmp_path, fmt), str(out), look, on_layer=lambda *a: done.append(a))
    assert looks and all(names == [iw.LOCK, "out"] for names, _ in looks)
    assert all(staged == [".tmp-"] for _, staged in looks) if fmt == "oci" else True
    assert len(done) == 3 and os.listdir(out.parent) == ["image"]


def test_stale_temp_dirs_are_swept(tmp_path, monkeypatch):
    """A temp dir whose lock nobody holds (a killed build) goes; a live
    build's stays; one without a lock goes once older than an hour. The
    sweep goes on past those it leaves (listed first here)."""
    import fcntl

    real = os.listdir
    monkeypatch.setattr(os, "listdir", lambda p: sorted(real(p), key=lambda n: ("young" not in n, "live" not in n)))

    dead, live, young, old = (tmp_path / (iw.TEMP_PREFIX + n) for n in ("dead", "live", "young", "old"))
    for d in (dead, live, young, old):
        d.mkdir()
    for d in (dead, live):
        (d / iw.LOCK).write_text("")
    os.utime(old, (0, 0))
    fd = os.open(live / iw.LOCK, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        iw.write_atomic(plan_for(tmp_path), str(tmp_path / "a.tar"))
    finally:
        os.close(fd)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(iw.TEMP_PREFIX)) == [live.name, young.name]


def test_a_lock_that_cannot_be_taken_leaves_no_temp_dir(tmp_path, monkeypatch):
    import fcntl

    def refuse(fd, op):
        raise OSError(errno.ENOLCK, "no locks")

    monkeypatch.setattr(fcntl, "flock", refuse)
    with pytest.raises(OSError) as e:
        iw.write_atomic(plan_for(tmp_path), str(tmp_path / "a.tar"))
    assert e.value.errno == errno.ENOLCK
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kernel", "tree"]


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


PLAN_VARIANTS = {
    "defaults": ({}, ["index.json", "manifest.json", "oci-layout"]),
    "tags, os, annotations": (
        {"repoTags": ["reg.io/a/b:v1", "b:2"], "os": "plan9", "manifestAnnotations": {"z": "1", "a": "2"}},
        ["index.json", "manifest.json", "oci-layout"],
    ),
    "no tags": ({"repoTags": []}, ["index.json", "manifest.json", "oci-layout"]),
    "no OCI layout": ({"ociLayout": False}, ["manifest.json"]),
}


@pytest.mark.parametrize("variant", PLAN_VARIANTS)
@pytest.mark.parametrize("fmt", [None, *iw.FORMATS])
def test_the_image_is_an_oci_layout_docker_loads(tmp_path, fmt, variant):
    """Every descriptor against the bytes it names (hashlib), every field
    the OCI image spec and `docker load` read."""
    extra, files = PLAN_VARIANTS[variant]
    plan = plan_for(tmp_path, fmt or "x", **extra)
    if fmt is None:
        del plan["format"]  # a docker-archive
    if "os" not in extra:
        plan.pop("os", None)
    if "repoTags" not in extra:
        plan.pop("repoTags")
    out = tmp_path / "out"
    got = iw.write(plan, str(out))
    b = blobs(out, fmt or "docker-archive")
    names = sorted(n for n in b if not n.startswith("blobs/"))
    if fmt in ("oci", "oci-archive"):
        files = ["index.json", "oci-layout"]
    assert names == files
    assert all(n == "blobs/sha256/" + digest_of(d)[7:] for n, d in b.items() if n.startswith("blobs/"))
    if "oci-layout" in b:
        assert b["oci-layout"] == b'{"imageLayoutVersion":"1.0.0"}'
    tags = plan.get("repoTags", [])
    os_name = extra.get("os", "linux")
    layers = [b[n] for n in sorted(b) if n.startswith("blobs/") and b[n][:1] != b"{"]
    manifest_bytes = b["blobs/sha256/" + got[7:]]
    manifest = json.loads(manifest_bytes)
    config_bytes = b["blobs/sha256/" + manifest["config"]["digest"][7:]]
    config = json.loads(config_bytes)
    assert manifest == {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digest_of(config_bytes),
            "size": len(config_bytes),
        },
        "layers": manifest["layers"],
        **({"annotations": {"a": "2", "z": "1"}} if "manifestAnnotations" in extra else {}),
    }
    assert sorted(d["digest"] for d in manifest["layers"]) == sorted(map(digest_of, layers))
    for d in manifest["layers"]:
        data = b["blobs/sha256/" + d["digest"][7:]]
        assert d == {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest_of(data), "size": len(data)}
    assert config == {
        "architecture": "amd64",
        "os": os_name,
        "created": "1970-01-01T00:00:01Z",
        "config": {"Cmd": ["a"], "Labels": {"k": "v"}},
        "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in manifest["layers"]]},
        "history": [{"created": "1970-01-01T00:00:01Z", "created_by": f"urunix: {n}"} for n in ("kernel", "files", "urunc.json")],
    }
    assert config_bytes == json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    if "index.json" in b:
        annotations = (
            {"annotations": {"io.containerd.image.name": tags[0], "org.opencontainers.image.ref.name": tags[0].split(":")[-1]}}
            if tags
            else {}
        )
        assert json.loads(b["index.json"]) == {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": got,
                    "size": len(manifest_bytes),
                    "platform": {"architecture": "amd64", "os": os_name},
                    **annotations,
                }
            ],
        }
    if "manifest.json" in b:
        assert json.loads(b["manifest.json"]) == [
            {
                "Config": "blobs/sha256/" + manifest["config"]["digest"][7:],
                "RepoTags": tags,
                "Layers": ["blobs/sha256/" + d["digest"][7:] for d in manifest["layers"]],
            }
        ]


def test_an_unknown_format_is_refused(tmp_path):
    with pytest.raises(iw.PlanError) as e:
        iw.write(plan_for(tmp_path, "tar"), str(tmp_path / "o"))
    assert str(e.value) == "unknown format 'tar'; allowed: docker-archive, oci-archive, oci"
    assert not (tmp_path / "o").exists()


def members_of(ms: list) -> list[tuple]:
    return [(m.path, m.kind, oct(m.mode), m.size, m.target, m.data) for m in ms]


EXPANDED = {
    "inline data, modes, parents": (
        [
            {"type": "file", "path": "/a/b/c", "data": "é\udcff"},
            {"type": "file", "path": "x", "data": "", "mode": 0o600},
            {"type": "dir", "path": "/d/"},
            {"type": "dir", "path": "e", "mode": 0o700},
            {"type": "symlink", "path": "/a/l", "target": "../x"},
        ],
        [
            ("a", "dir", "0o755", 0, "", None),
            ("a/b", "dir", "0o755", 0, "", None),
            ("a/b/c", "file", "0o644", 3, "", b"\xc3\xa9\xff"),
            ("a/l", "symlink", "0o777", 0, "../x", None),
            ("d", "dir", "0o755", 0, "", None),
            ("e", "dir", "0o700", 0, "", None),
            ("x", "file", "0o600", 0, "", b""),
        ],
    ),
    "a dir given twice, the later rank wins, a lower rank loses": (
        [
            {"type": "dir", "path": "/d"},
            {"type": "dir", "path": "/d/"},
            {"type": "file", "path": "/f", "data": "one", "rank": 1},
            {"type": "file", "path": "/f", "data": "two!", "rank": 2},
            {"type": "file", "path": "/f", "data": "three", "rank": 0},
            {"type": "file", "path": "/g", "data": "a", "rank": 5},
            {"type": "symlink", "path": "/g", "target": "f", "rank": 6},
        ],
        [
            ("d", "dir", "0o755", 0, "", None),
            ("f", "file", "0o644", 4, "", b"two!"),
            ("g", "symlink", "0o777", 0, "f", None),
        ],
    ),
    "sorted by path components": (
        [{"type": "file", "path": p, "data": ""} for p in ("a-b", "a/b", "a.b", "a0")],
        [
            ("a", "dir", "0o755", 0, "", None),
            ("a/b", "file", "0o644", 0, "", b""),
            ("a-b", "file", "0o644", 0, "", b""),
            ("a.b", "file", "0o644", 0, "", b""),
            ("a0", "file", "0o644", 0, "", b""),
        ],
    ),
}


@pytest.mark.parametrize("case", EXPANDED)
def test_expand(case):
    entries, want = EXPANDED[case]
    assert members_of(iw.expand(entries)) == want


EXPAND_ERRORS = {
    "an empty path": (
        [{"type": "file", "path": "/", "data": ""}],
        "entry {'type': 'file', 'path': '/', 'data': ''} has an empty path",
    ),
    "no path": ([{"type": "dir"}], "entry {'type': 'dir'} has an empty path"),
    "an unknown type": ([{"type": "fifo", "path": "p"}], "unknown entry type 'fifo'"),
    "no type": ([{"path": "p"}], "unknown entry type None"),
    "twice": ([{"type": "dir", "path": "a"}, {"type": "file", "path": "a/", "data": ""}], "two entries for /a in one layer"),
    "twice, one ranked": (
        [{"type": "file", "path": "a", "data": "", "rank": 1}, {"type": "file", "path": "a", "data": ""}],
        "two entries for /a in one layer",
    ),
    "twice, the other ranked": (
        [{"type": "file", "path": "a", "data": ""}, {"type": "file", "path": "a", "data": "", "rank": 1}],
        "two entries for /a in one layer",
    ),
    "twice, same rank": (
        [{"type": "file", "path": "a", "data": "", "rank": 3}, {"type": "file", "path": "a", "data": "", "rank": 3}],
        "two entries for /a in one layer",
    ),
    "a file as a parent": (
        [{"type": "symlink", "path": "a/b", "target": "x"}, {"type": "file", "path": "a/b/c/d", "data": ""}],
        "/a/b is a symlink in the image but /a/b/c/d needs it to be a directory",
    ),
}


@pytest.mark.parametrize("case", EXPAND_ERRORS)
def test_expand_refuses(case):
    entries, message = EXPAND_ERRORS[case]
    with pytest.raises(iw.PlanError) as e:
        iw.expand(entries)
    assert str(e.value) == message


@pytest.mark.parametrize(("mode", "want"), [(0o600, 0o644), (0o700, 0o755), (0o610, 0o755), (0o601, 0o755), (0o644, 0o644)])
def test_host_files_get_the_mode_nix_gives(tmp_path, mode, want):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "f").write_text("abc")
    (tmp_path / "t" / "f").chmod(mode)
    (tmp_path / "t" / "d").mkdir(mode=0o700)
    from_file = iw.expand([{"type": "file", "path": "f", "source": str(tmp_path / "t" / "f")}])
    from_tree = iw.expand([{"type": "tree", "path": "", "source": str(tmp_path / "t")}])
    assert members_of(from_file) == [("f", "file", oct(want), 3, "", None)]
    assert [(m.path, m.kind, oct(m.mode)) for m in from_tree] == [("d", "dir", "0o755"), ("f", "file", oct(want))]
    st = os.stat(tmp_path / "t" / "f")
    assert from_tree[1].ident == f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"
    assert from_tree[1].source == str(tmp_path / "t" / "f") == from_file[0].source
    given = iw.expand([{"type": "file", "path": "f", "source": str(tmp_path / "t" / "f"), "mode": 0o4711}])
    assert given[0].mode == 0o4711


def test_a_source_that_is_no_regular_file_is_refused(tmp_path):
    with pytest.raises(iw.PlanError) as e:
        iw.expand([{"type": "file", "path": "f", "source": str(tmp_path)}])
    assert str(e.value) == f"{tmp_path}: not a regular file"


def test_a_tree_leaves_out_what_it_is_told_to(tmp_path):
    """exclude: paths relative to the tree (a directory with its
    contents); skip: image paths; never urunix's temporary directories."""
    src = tmp_path / "src"
    for p in ("a/x", "a/y", "b/x", "c", iw.TEMP_PREFIX + "1/z", "d/" + iw.TEMP_PREFIX + "2"):
        (src / p).parent.mkdir(parents=True, exist_ok=True)
        (src / p).write_text(p)
    entry = {"type": "tree", "source": str(src), "exclude": ["a/x", "b"], "skip": ["/in/c/", "in/d"]}
    for path, prefix in (("/in", "in/"), ("", "")):
        got = [m.path for m in iw.expand([dict(entry, path=path)])]
        want = ["a", "a/y"] + (["c", "d"] if not path else [])
        assert got == ([path[1:]] if path else []) + [prefix + w for w in want], path


def test_what_a_tree_may_not_hold_is_named(tmp_path):
    import socket

    (tmp_path / "t").mkdir()
    os.mkfifo(tmp_path / "t" / "fifo")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(tmp_path / "t" / "sock"))
        for name, what, other in (("fifo", "a fifo", "sock"), ("sock", "a socket", "fifo")):
            with pytest.raises(iw.UnsupportedFile) as e:
                iw.expand([{"type": "tree", "path": "", "source": str(tmp_path / "t"), "exclude": [other]}])
            src = str(tmp_path / "t" / name)
            assert (e.value.source, e.value.what) == (src, what)
            assert str(e.value) == f"{src}: {what} (device nodes, fifos and sockets are refused)"


@pytest.mark.parametrize("length", [4094, 4095])
def test_a_path_linux_cannot_create_is_refused(tmp_path, length):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "f").write_text("")
    prefix = "/".join(["d" * 200] * 20)
    prefix = prefix[: length - 2] + "/" * (length - 2 - len(prefix[: length - 2]))
    entry = {
        "type": "tree",
        "path": prefix.rstrip("/") + "x" * (length - 2 - len(prefix.rstrip("/"))),
        "source": str(tmp_path / "t"),
    }
    path = iw.clean_path(entry["path"]) + "/f"
    assert len(path) == length
    if length < iw.PATH_MAX:
        assert iw.expand([entry])[-1].path == path
    else:
        with pytest.raises(iw.UnsupportedFile) as e:
            iw.expand([entry])
        assert str(e.value) == (
            f"{tmp_path / 't' / 'f'}: a path of 4096 bytes in the image (/{path[:40]}...), over the 4095 bytes "
            "Linux and docker load take (device nodes, fifos and sockets are refused)"
        )


@pytest.mark.parametrize(
    ("created", "seconds"),
    [("1970-01-01T00:00:01Z", 1), ("2024-02-29T23:59:59+02:00", 1709243999), ("2001-09-09T01:46:40Z", 10**9)],
)
def test_epoch(created, seconds):
    assert iw.epoch(created) == seconds


def test_plan_members_names_and_takes_expanded_layers_as_they_are(tmp_path):
    odd = [iw.Member("z", "file", 0o600, 0, data=b""), iw.Member("a/b", "dir", 0o700)]  # unsorted, no parent
    plan = {
        "layers": [
            {"entries": [{"type": "file", "path": "x", "data": "1"}]},
            {"name": "given", "members": odd, "expanded": True},
            {"name": "both", "entries": [{"type": "dir", "path": "a"}], "members": odd, "expanded": True},
            {"name": "extra", "members": odd},
        ]
    }
    got = iw.plan_members(plan)
    assert [n for n, _ in got] == ["layer0", "given", "both", "extra"]
    assert members_of(got[0][1]) == [("x", "file", "0o644", 1, "", b"1")]
    assert got[1][1] == odd
    assert [m.path for m in got[2][1]] == ["a", "a/b", "z"] == [m.path for m in got[3][1]]


@pytest.mark.parametrize("threaded", [False, True])
def test_hashing_writer_counts_hashes_and_writes_every_byte(tmp_path, threaded):
    """Writes and file copies of every size around the buffer's end, from
    an offset: the bytes, their count, their digest and the progress."""
    import io
    import random

    rnd = random.Random(3)
    src = tmp_path / "src"
    src.write_bytes(rnd.randbytes(3 * iw.CHUNK))
    import threading

    out, want, seen, hashers = io.BytesIO(), bytearray(), [], set()

    def progress(n):
        seen.append(n)
        hashers.update((t.name, t.daemon) for t in threading.enumerate() if t is not threading.current_thread())

    with iw.HashingWriter(out, progress, threaded) as w:
        for size in (0, 1, iw.CHUNK - 2, 1, 1, iw.CHUNK, 2 * iw.CHUNK + 5, 7):
            data = rnd.randbytes(size)
            w.write(data)
            want += data
            off = rnd.randrange(0, iw.CHUNK)
            w.copy_file(str(src), off, size)
            want += src.read_bytes()[off : off + size]
        w.copy_file(str(src), 0, 3 * iw.CHUNK)
        want += src.read_bytes()
    assert out.getvalue() == want and w.count == len(want) == sum(seen)
    assert w.sha.hexdigest() == hashlib.sha256(want).hexdigest()
    assert max(seen) == iw.CHUNK
    assert (("urunix-sha256", True) in hashers) == threaded  # a daemon: an error never leaves the process hanging
    assert "urunix-sha256" not in {t.name for t in threading.enumerate()}
    with pytest.raises(iw.PlanError) as e:
        with iw.HashingWriter(io.BytesIO(), None, threaded) as w:
            w.copy_file(str(src), 10, 3 * iw.CHUNK)
    assert str(e.value) == f"{src} changed size while it was being read"


@pytest.mark.parametrize("made", [9, 11])
def test_content_made_while_streaming_must_be_as_long_as_planned(made):
    import io

    m = iw.Member("a/i", "file", 0o644, 10, fill=lambda write: write(b"x" * made))
    with pytest.raises(iw.PlanError) as e:
        with iw.HashingWriter(io.BytesIO()) as w:
            iw.stream_layer([m], w, 0)
    assert str(e.value) == f"/a/i: {made} bytes were made, not the 10 planned"


def tarfile_header(m: iw.Member, mtime) -> bytes:
    """The header Python's tarfile makes for a member (the reference)."""
    info = tarfile.TarInfo(m.path + ("/" if m.kind == "dir" else ""))
    info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE}.get(
        m.kind, tarfile.FIFOTYPE
    )
    info.mode, info.size, info.linkname, info.mtime = m.mode, m.size if m.kind == "file" else 0, m.target, mtime
    info.uid, info.gid, info.uname, info.gname = m.uid, m.gid, "", ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


@pytest.mark.parametrize(
    ("member", "mtime"),
    [
        (iw.Member("a" * 100, "file", 0o644, 8**11 - 1, uid=8**7 - 1, gid=8**7 - 1), 8**11 - 1),
        (iw.Member("d" * 99, "dir", 0o7777), 0),
        (iw.Member("l", "symlink", 0o777, target="t" * 100), 1),
        (iw.Member("h", "hardlink", 0o644, 5, target="a/b"), 1),
        (iw.Member("p", "fifo", 0o600), 1),
        (iw.Member("m", "file", 0o100644, 0), 1),
    ],
)
def test_the_fast_header_covers_every_member_without_pax_records(member, mtime):
    fast = iw._ustar_header(member, mtime)
    assert fast is not None and fast == tarfile_header(member, mtime) == member.header(mtime)


@pytest.mark.parametrize("mtime", [1.5, -1, 8**11])
def test_times_a_ustar_header_cannot_hold_take_tarfile(mtime):
    m = iw.Member("f", "file", 0o644, 1)
    assert iw._ustar_header(m, mtime) is None
    assert m.header(mtime) == tarfile_header(m, mtime)


def test_removing_what_is_gone_already_is_no_error(tmp_path):
    iw.remove_tree(str(tmp_path / "gone"))
    (tmp_path / "d" / "e").mkdir(parents=True)
    iw.remove_tree(str(tmp_path / "d"))
    assert os.listdir(tmp_path) == []
