"""3. Nothing half-written.

- SIGKILL at >= 20 random points (fixed seed, real timing) per output
  format, on a spec with 128 MiB of files: the previous result is intact
  (same sha256 / same layout listing) or -- when the kill came after the
  rename -- the new, complete one; nothing but temporary directories
  (.urunix-tmp-*) beside it; and the next build is bit-identical to a clean
  one.
- SIGINT and SIGTERM at random points: as above, and the temporaries are
  gone too (the process unwinds).
- A full disk (a 20 MiB tmpfs): exit code 1 with "disk is full", the
  previous result intact, no temporaries, then a build that fits succeeds
  identically.
- Two builds of the same spec into the same output at once: both finish,
  one valid result.

The layer cache is turned off (URUNIX_NO_CACHE=1) except where noted: this
is the writer's promise; the cache's own corruption tests live with it."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hostile import fingerprint, read_archive, snapshot

ROOT = Path(__file__).resolve().parents[2]
FORMATS = ["docker-archive", "oci-archive", "oci"]
KILLS_PER_FORMAT = 20
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "generator"), "URUNIX_NO_CACHE": "1", "URUNIX_NO_NIX": "1"}
ENV.pop("COLUMNS", None)


def write_spec(d: Path, cmdline: str, mb: int = 128) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    data = d / "data"
    if not data.exists():
        data.mkdir()
        rnd = random.Random(7)
        chunk = rnd.randbytes(1 << 20)
        for i in range(4):
            with open(data / f"blob{i}", "wb") as f:
                for j in range(mb // 4):
                    f.write(chunk[j:] + chunk[:j])
        (d / "kernel.hvt").write_bytes(b"\x7fELF kernel")
    spec = d / "spec.yaml"
    spec.write_text(
        "name: atomic/test\nfiles:\n  ./kernel.hvt: /unikernel/kernel.hvt\n  ./data: /data\n"
        "annotations:\n  unikernelType: rumprun\n  hypervisor: hvt\n"
        f"  binary: /unikernel/kernel.hvt\n  cmdline: {cmdline}\n"
    )
    return spec


def start(spec: Path, out: Path, fmt: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "urunix", "build", "--backend", "native", "--format", fmt, "-o", str(out), str(spec)],
        env=env or ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def build(spec: Path, out: Path, fmt: str, env: dict | None = None) -> subprocess.CompletedProcess:
    p = start(spec, out, fmt, env)
    o, e = p.communicate(timeout=600)
    return subprocess.CompletedProcess(p.args, p.returncode, o, e)


def leftovers(d: Path, keep: set[str]) -> list[str]:
    return sorted(n for n in os.listdir(d) if n not in keep)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """The spec (v1 and v2 differ in cmdline only), 128 MiB of data, and a
    clean build of each version in each format, timed."""
    d = tmp_path_factory.mktemp("atomic")
    src = d / "src"
    v1 = write_spec(src, "v1")
    v2 = src / "spec2.yaml"
    v2.write_text(v1.read_text().replace("cmdline: v1", "cmdline: v2"))
    clean, timing = {}, {}
    for fmt in FORMATS:
        for name, spec in (("v1", v1), ("v2", v2)):
            out = d / f"clean-{fmt}-{name}"
            t = time.monotonic()
            r = build(spec, out, fmt)
            timing[fmt] = time.monotonic() - t
            assert r.returncode == 0, r.stderr
            clean[fmt, name] = fingerprint(out)
    return {"dir": d, "v1": v1, "v2": v2, "clean": clean, "time": timing}


def _outputs(d: Path, fmt: str) -> Path:
    out_dir = d / f"kill-{fmt}"
    out_dir.mkdir(exist_ok=True)
    return out_dir / "result"


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_sigkill_at_random_points(work, fmt):
    rnd = random.Random(20240 + FORMATS.index(fmt))
    out = _outputs(work["dir"], fmt)
    r = build(work["v1"], out, fmt)
    assert r.returncode == 0, r.stderr
    v1, v2 = work["clean"][fmt, "v1"], work["clean"][fmt, "v2"]
    assert fingerprint(out) == v1
    span = work["time"][fmt]  # a whole build, start-up included; shrinks when builds beat the kill
    killed = attempts = 0
    while killed < KILLS_PER_FORMAT:
        attempts += 1
        assert attempts < 3 * KILLS_PER_FORMAT, "the builds keep finishing before the kill"
        p = start(work["v2"], out, fmt)
        time.sleep(rnd.uniform(0.0, span))
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=60)
        fp = fingerprint(out)
        assert fp in (v1, v2), f"kill {attempts}: the result is neither the previous nor the new image"
        extra = leftovers(out.parent, {"result"})
        assert all(n.startswith(".urunix-tmp-") for n in extra), f"kill {attempts}: left {extra}"
        if p.returncode == -signal.SIGKILL:
            killed += 1
        else:  # it finished first (a warm page cache makes builds faster than the timed one)
            span *= 0.8
        if fp == v2:  # the kill came after the rename: start again from v1
            assert build(work["v1"], out, fmt).returncode == 0
        for n in extra:  # what a kill leaves; see test_stale_temporaries_are_swept
            subprocess.run(["rm", "-rf", str(out.parent / n)], check=True)
    r = build(work["v2"], out, fmt)
    assert r.returncode == 0, r.stderr
    assert fingerprint(out) == v2, "the build after the kills differs from a clean build"
    assert leftovers(out.parent, {"result"}) == []


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_unwinds_and_leaves_nothing(work, sig):
    fmt = "docker-archive"
    rnd = random.Random(int(sig))
    out = work["dir"] / f"int-{int(sig)}" / "result"
    out.parent.mkdir()
    assert build(work["v1"], out, fmt).returncode == 0
    v1, v2 = work["clean"][fmt, "v1"], work["clean"][fmt, "v2"]
    for i in range(8):
        p = start(work["v2"], out, fmt)
        time.sleep(rnd.uniform(0.3, work["time"][fmt]))
        p.send_signal(sig)
        _, err = p.communicate(timeout=60)
        assert "Traceback" not in err, err
        # -sig: the signal came before the handler was installed (start-up)
        # or after main() returned (shut-down): nothing was in progress
        assert p.returncode in (0, 130, -sig), (p.returncode, err)
        fp = fingerprint(out)
        assert fp in (v1, v2)
        if p.returncode == 130:  # the signal may come after the rename: then v2 is complete
            assert "interrupted" in err or not err, err
        assert leftovers(out.parent, {"result"}) == [], f"signal {i}: temporaries left behind"
        if fp == v2:
            assert build(work["v1"], out, fmt).returncode == 0


@pytest.mark.slow
def test_stale_temporaries_are_swept(work):
    fmt = "docker-archive"
    out = work["dir"] / "stale" / "result"
    out.parent.mkdir()
    p = start(work["v2"], out, fmt)
    deadline = time.monotonic() + 60
    while not [n for n in os.listdir(out.parent) if n.startswith(".urunix-tmp-")]:
        assert time.monotonic() < deadline and p.poll() is None, "the build made no temporary directory"
        time.sleep(0.01)
    time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.communicate(timeout=60)
    assert build(work["v1"], out, fmt).returncode == 0
    assert leftovers(out.parent, {"result"}) == [], "a killed build's temporaries are still there after the next build"


@pytest.mark.parametrize("fmt", FORMATS)
def test_two_builds_at_once(work, fmt):
    out = work["dir"] / f"concurrent-{fmt}" / "result"
    out.parent.mkdir()
    for round_ in range(3):
        a, b = start(work["v2"], out, fmt), start(work["v2"], out, fmt)
        ra, rb = a.communicate(timeout=600), b.communicate(timeout=600)
        assert a.returncode == 0 and b.returncode == 0, (ra[1], rb[1])
        assert fingerprint(out) == work["clean"][fmt, "v2"]
        assert leftovers(out.parent, {"result"}) == []


def test_oci_layout_swap_has_no_window_without_a_result(tmp_path, monkeypatch):
    """Replacing an OCI layout (a directory) swaps old and new in one step
    (renameat2 RENAME_EXCHANGE): a process dying at any rename leaves a
    whole result, the old one or the new one."""
    from urunix.helpers import image_writer

    plan = {
        "format": "oci",
        "repoTags": ["a/b:c"],
        "created": "1970-01-01T00:00:01Z",
        "architecture": "amd64",
        "config": {"Cmd": ["x"]},
        "layers": [{"name": "l", "entries": [{"type": "file", "path": "/f", "data": "1"}]}],
    }
    out = tmp_path / "result"
    image_writer.write_atomic(plan, str(out))
    before = snapshot(out)
    plan["layers"][0]["entries"][0]["data"] = "2"
    image_writer.write_atomic(plan, str(tmp_path / "fresh"))
    after = snapshot(tmp_path / "fresh")
    real = os.rename
    for die_at in (1, 2, 3):
        calls = []

        def crash_at(src, dst):
            calls.append((src, dst))
            if len(calls) == die_at:
                raise KeyboardInterrupt  # the process dies at this rename
            return real(src, dst)

        monkeypatch.setattr(image_writer.os, "rename", crash_at)
        try:
            image_writer.write_atomic(plan, str(out))
        except KeyboardInterrupt:
            pass
        monkeypatch.setattr(image_writer.os, "rename", real)
        assert out.exists() and snapshot(out) in (before, after), die_at


# ------------------------------------------------------------------ a full disk


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        if os.geteuid() == 0 and os.environ.get("URUNIX_REQUIRE_TOOLS") == "1":
            pytest.fail(f"cannot mount a tmpfs as root: {r.stderr}")
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _small_spec(d: Path, extra: str = "") -> Path:
    (d / "kernel.hvt").write_bytes(b"\x7fELF small kernel")
    spec = d / "small.yaml"
    spec.write_text(
        "name: atomic/small\nfiles:\n  ./kernel.hvt: /unikernel/kernel.hvt\n"
        + extra
        + "annotations:\n  unikernelType: rumprun\n  hypervisor: hvt\n  binary: /unikernel/kernel.hvt\n"
    )
    return spec


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("what", ["files", "rootfs-from-gzip-image", "block-rootfs"])
def test_disk_full(tmp_path, small_disk, fmt, what):
    src = tmp_path / "src"
    src.mkdir()
    small = _small_spec(src)
    big = src / "big.yaml"
    if what == "files":
        (src / "big.bin").write_bytes(os.urandom(30 << 20))
        big.write_text(small.read_text().replace("files:\n", "files:\n  ./big.bin: /big.bin\n"))
    else:
        import gzip

        from hostile import docker_archive, layer

        # 40 MiB of zeros: a small gzip layer that does not fit once unpacked
        docker_archive(
            src / "img.tar", [gzip.compress(layer([("bin/app", "file", b"x"), ("zeros", "file", bytes(40 << 20))]), 1)]
        )
        rtype = "initrd" if what.startswith("rootfs") else "block"
        (src / "vmlinux").write_bytes(b"k")
        big.write_text(
            "name: atomic/big\nannotations: {unikernelType: linux, hypervisor: qemu}\n"
            f"kernel: ./vmlinux\nrootfs: {{type: {rtype}, from: ./img.tar}}\ncmd: [/bin/app]\n"
        )
    out = small_disk / "result"
    r = build(small, out, fmt)
    assert r.returncode == 0, r.stderr
    before = fingerprint(out)
    r = build(big, out, fmt)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    assert "disk is full" in r.stderr or "No space left" in r.stderr, r.stderr
    assert fingerprint(out) == before
    assert leftovers(small_disk, {"result"}) == []
    r = build(small, out, fmt)
    assert r.returncode == 0, r.stderr
    assert fingerprint(out) == before


def test_result_after_kills_is_a_valid_image(work):
    """The clean builds the kill tests compare against are real images."""
    config, _, files = read_archive(work["dir"] / "clean-docker-archive-v2")
    assert config["config"]["Cmd"] == ["v2"] and len(files["data/blob0"]) == 32 << 20
