"""6. Data safety (SECURITY.md): urunix never deletes or overwrites what it
did not make, never ships a cache entry that changed, never lets one spec
entry hide another silently. One test (or more) per item of issue 11; each
failed on 66aca80.

- the output: `--format oci -o DIR` into a project, its parent, a foreign
  OCI layout (skopeo reads every tag back); `-o DIR` with an archive;
  `-o -` to a pipe; `urunix generate -o .` over a checkout; urunix's own
  output and temporaries under a copied directory;
- the cache: 50 rounds of parallel builds of different specs into one
  output, every output and every cache entry checked; a result edited in
  place with its mtime put back; a cache entry edited the same way;
- spec semantics: a directory copy over an explicit kernel / initrd, in
  every format and both Containerfile orders; overlaps as spec errors that
  name both entries and lines; `//` targets; member path lengths; the
  growth of validation work from 1,000 to 2,000 entries (counted calls,
  not time); hints that repeat the value; empty kernels."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hostile import read_archive, snapshot
from hsupport import run_cli

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "generator"), "URUNIX_NO_NIX": "1"}
ENV.pop("COLUMNS", None)
ENV.pop("URUNIX_NO_CACHE", None)

ANN = "annotations:\n  unikernelType: rumprun\n  hypervisor: hvt\n  binary: /unikernel/k.hvt\n"


def cli(*args: str, cwd: Path | None = None, env: dict | None = None, text: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "urunix", *args], cwd=cwd, env={**ENV, **(env or {})}, capture_output=True, text=text, timeout=300
    )


def project(d: Path, name: str = "t/safe", kernel: bytes = b"\x7fELF kernel") -> Path:
    """A project directory as a user has it: sources, a .git, the spec."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "k.hvt").write_bytes(kernel)
    (d / ".git").mkdir(exist_ok=True)
    (d / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (d / "src").mkdir(exist_ok=True)
    (d / "src" / "main.c").write_text("int main(void) { return 0; }\n")
    spec = d / "s.yaml"
    spec.write_text(f"name: {name}\nfiles:\n  ./k.hvt: /unikernel/k.hvt\n" + ANN)
    return spec


# ------------------------------------------------------------------ 1. -o DIR with --format oci


@pytest.mark.parametrize("where", [".", ".."])
def test_oci_output_never_deletes_a_project(tmp_path, where):
    """`--format oci -o .` (and `-o ..`) in a project exited 0 and left only
    blobs/ index.json oci-layout: sources, .git and the spec were gone."""
    proj = project(tmp_path / "outer" / "proj").parent
    (tmp_path / "outer" / "sibling.txt").write_text("keep me\n")
    before = snapshot(tmp_path / "outer")
    r = run_cli("build", "s.yaml", "--backend", "native", "--format", "oci", "-o", where, cwd=proj, env={"URUNIX_NO_CACHE": "1"})
    assert r.returncode == 2, r.stderr
    assert "--output" in r.stderr and "hint:" in r.stderr and "Traceback" not in r.stderr
    assert snapshot(tmp_path / "outer") == before


def test_oci_output_refuses_a_directory_with_other_files(tmp_path):
    spec = project(tmp_path / "p")
    out = tmp_path / "notes"
    out.mkdir()
    (out / "todo.txt").write_text("mine\n")
    r = run_cli("build", str(spec), "--backend", "native", "--format", "oci", "-o", str(out), env={"URUNIX_NO_CACHE": "1"})
    assert r.returncode == 2 and str(out) in r.stderr, r.stderr
    assert os.listdir(out) == ["todo.txt"] and (out / "todo.txt").read_text() == "mine\n"


@pytest.mark.skipif(not shutil.which("skopeo"), reason="skopeo is the judge of OCI layouts")
def test_oci_output_adds_to_an_existing_layout_as_skopeo_does(tmp_path):
    """An OCI layout that holds another image (written by skopeo) keeps it,
    its tag and any other file; ours is added under its tag; a rebuild
    under the same tag replaces only our image; skopeo reads every tag."""
    a = project(tmp_path / "a", "t/a")
    b = project(tmp_path / "b", "t/b", b"\x7fELF other kernel")
    other = tmp_path / "other.tar"
    assert run_cli("build", str(b), "--backend", "native", "-o", str(other), env={"URUNIX_NO_CACHE": "1"}).returncode == 0
    lay = tmp_path / "layout"
    r = subprocess.run(
        ["skopeo", "copy", "--quiet", f"docker-archive:{other}", f"oci:{lay}:theirs"], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    (lay / "README").write_text("a layout of ours\n")
    theirs = snapshot(lay)
    for cmdline in ("one", "two"):
        spec = a.parent / f"{cmdline}.yaml"
        spec.write_text(a.read_text().replace("binary:", f"cmdline: {cmdline}\n  binary:"))
        r = run_cli(
            "build",
            str(spec),
            "--backend",
            "native",
            "--format",
            "oci",
            "-o",
            str(lay),
            "-t",
            "t/a:ours",
            env={"URUNIX_NO_CACHE": "1"},
        )
        assert r.returncode == 0, r.stderr
        refs = [
            m["annotations"]["org.opencontainers.image.ref.name"]
            for m in json.loads((lay / "index.json").read_text())["manifests"]
        ]
        assert sorted(refs) == ["ours", "theirs"], refs
        for tag in ("theirs", "ours"):
            r = subprocess.run(["skopeo", "inspect", "--config", f"oci:{lay}:{tag}"], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
        config = json.loads(r.stdout)
        assert config["config"]["Cmd"] == [cmdline]
        # every file that was there is there, unchanged (index.json aside)
        now = snapshot(lay)
        assert all(now.get(k) == v for k, v in theirs.items() if k != "index.json")
    # the first build's own blobs are gone with its tag; nothing unreferenced is left of ours
    r = subprocess.run(
        ["skopeo", "copy", "--quiet", f"oci:{lay}:ours", f"docker-archive:{tmp_path / 'back.tar'}"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr


# ------------------------------------------------------------------ 2. -o EXISTING_DIR, archive


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_archive_into_an_existing_directory(tmp_path, fmt):
    """Failed with '.../.urunix-tmp-.../out: Is a directory', exit 1."""
    spec = project(tmp_path / "p", "urunc/safe-one")
    out = tmp_path / "images"
    out.mkdir()
    (out / "old.tar").write_bytes(b"someone else's")
    r = run_cli("build", str(spec), "--backend", "native", "--format", fmt, "-o", str(out), env={"URUNIX_NO_CACHE": "1"})
    assert r.returncode == 0, r.stderr
    assert ".urunix-tmp" not in r.stderr and str(out / "safe-one.tar") in r.stderr
    assert sorted(os.listdir(out)) == ["old.tar", "safe-one.tar"]
    assert (out / "old.tar").read_bytes() == b"someone else's"
    config, _, files = read_archive(out / "safe-one.tar")
    assert files["unikernel/k.hvt"] == b"\x7fELF kernel"


# ------------------------------------------------------------------ 3. -o -


def test_stdout_streams_the_archive_and_nothing_else(tmp_path):
    spec = project(tmp_path / "p")
    ref = tmp_path / "ref.tar"
    assert cli("build", str(spec), "--backend", "native", "-o", str(ref), env={"URUNIX_NO_CACHE": "1"}).returncode == 0
    r = cli("build", str(spec), "--backend", "native", "-o", "-", cwd=spec.parent, text=False, env={"URUNIX_NO_CACHE": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout == ref.read_bytes()  # the archive, and nothing else, on stdout
    assert b"built" in r.stderr  # the messages on stderr
    assert not (spec.parent / "-").exists() and not [n for n in os.listdir(spec.parent) if n.startswith(".urunix-tmp")]
    # a failed build: non-zero, nothing on stdout
    (spec.parent / "k.hvt").unlink()
    r = cli("build", str(spec), "--backend", "native", "-o", "-", cwd=spec.parent, text=False)
    assert r.returncode == 2 and r.stdout == b"", r.stderr
    # an OCI layout cannot be streamed: said so, exit 2
    (spec.parent / "k.hvt").write_bytes(b"k")
    r = cli("build", str(spec), "--backend", "native", "--format", "oci", "-o", "-", cwd=spec.parent, text=False)
    assert r.returncode == 2 and r.stdout == b"" and b"oci-archive" in r.stderr


def test_stdout_piped_into_docker_load(tmp_path, docker):
    """`urunix build args.nix -o - | docker load`: the real reader."""
    spec = project(tmp_path / "p", "urunix-test/piped")
    build = subprocess.Popen(
        [sys.executable, "-m", "urunix", "build", str(spec), "--backend", "native", "-o", "-"],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    load = subprocess.run(["docker", "load"], stdin=build.stdout, capture_output=True, env=docker.env, timeout=300)
    build.stdout.close()
    err = build.stderr.read().decode()
    assert build.wait(60) == 0, err
    assert load.returncode == 0 and b"urunix-test/piped:latest" in load.stdout, load.stderr
    labels = docker.inspect("urunix-test/piped:latest")["Config"]["Labels"]
    assert labels["com.urunc.unikernel.binary"] == "/unikernel/k.hvt"


def test_stdout_into_a_reader_that_stops(tmp_path):
    """`urunix build -o - | head -c 10`: exit 1 with a message, no traceback."""
    spec = project(tmp_path / "p", kernel=os.urandom(4 << 20))
    p = subprocess.Popen(
        [sys.executable, "-m", "urunix", "build", str(spec), "--backend", "native", "-o", "-"],
        env={**ENV, "URUNIX_NO_CACHE": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    p.stdout.read(10)
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(60) == 1 and "Traceback" not in err and "stdout" in err, err


# ------------------------------------------------------------------ 4. generate -o .


def test_generate_refuses_to_overwrite_files_it_did_not_write(tmp_path):
    """`urunix generate -o .` in a checkout overwrote its default.nix and
    nix/sources.nix."""
    spec = project(tmp_path / "checkout")
    d = spec.parent
    (d / "default.nix").write_text("{ pkgs ? import <nixpkgs> {} }: pkgs.hello\n")
    (d / "nix").mkdir()
    (d / "nix" / "sources.nix").write_text("{ mine = true; }\n")
    (d / "files").mkdir()
    (d / "files" / "data").write_text("mine\n")
    before = snapshot(d)
    r = run_cli("generate", "s.yaml", "-o", ".", cwd=d)
    assert r.returncode == 2 and "--force" in r.stderr and "default.nix" in r.stderr, r.stderr
    assert snapshot(d) == before
    # its own output is regenerated freely; a file a user adds there is protected again
    out = tmp_path / "gen"
    for _ in range(2):
        r = run_cli("generate", str(spec), "-o", str(out))
        assert r.returncode == 0, r.stderr
    (out / "files" / "notes").write_text("mine\n")
    assert run_cli("generate", str(spec), "-o", str(out)).returncode == 2
    assert (out / "files" / "notes").read_text() == "mine\n"
    r = run_cli("generate", "s.yaml", "-o", ".", "--force", cwd=d)
    assert r.returncode == 0, r.stderr
    assert (d / "default.nix").read_text().startswith("# Generated by urunix")


# ------------------------------------------------------------------ 5. own output inside a copied dir


@pytest.mark.parametrize("form", ["yaml", "containerfile"])
def test_own_output_and_temporaries_never_enter_the_image(tmp_path, form):
    """`COPY . /app/` or `./: /app` with the default -o result put the last
    result and .urunix-tmp-*/.lock in the image: it grew on every build."""
    d = tmp_path / "p"
    project(d)
    if form == "yaml":
        spec = d / "all.yaml"
        spec.write_text("name: t/all\nfiles:\n  ./k.hvt: /unikernel/k.hvt\n  ./: /app\n" + ANN)
        args = [spec.name]
    else:
        spec = d / "Containerfile"
        spec.write_text(
            "FROM scratch\nCOPY k.hvt /unikernel/k.hvt\nCOPY . /app/\n"
            "LABEL com.urunc.unikernel.unikernelType=rumprun com.urunc.unikernel.hypervisor=hvt "
            "com.urunc.unikernel.binary=/unikernel/k.hvt\n"
        )
        args = [spec.name, "-t", "t/all"]
    (d / ".urunix-tmp-dead").mkdir()  # what a SIGKILLed build leaves
    (d / ".urunix-tmp-dead" / ".lock").write_text("")
    digests = []
    for _ in range(3):
        r = run_cli("build", *args, "--backend", "native", cwd=d, env={"URUNIX_NO_CACHE": "1"})
        assert r.returncode == 0, r.stderr
        digests.append(hashlib.sha256((d / "result").read_bytes()).hexdigest())
        _, entries, _ = read_archive(d / "result")
        assert not [n for n in entries if n.startswith("app/result") or ".urunix-tmp" in n], sorted(entries)
        assert "app/src/main.c" in entries
    assert len(set(digests)) == 1, "the same inputs gave different images"


# ------------------------------------------------------------------ 6. parallel builds, one output, the cache

ROUNDS = 50


def _entries_whole(cache_home: Path) -> list[str]:
    """Every key whose blob range does not hash to its digest."""
    bad = []
    for version in (cache_home / "urunix").glob("v*"):
        for key in (version / "keys").glob("*.json"):
            e = json.loads(key.read_text())
            with open(version / "blobs" / e["file"], "rb") as f:
                f.seek(e["offset"])
                if hashlib.sha256(f.read(e["size"])).hexdigest() != e["digest"]:
                    bad.append(key.name)
    return bad


# A delay right after an output is renamed into place, as a loaded machine
# gives one: the window between that rename and whatever a build does next,
# made wide enough that 50 rounds hit it. Nothing else is changed.
SLOW_RENAME = """
import os, time
_replace, _rename = os.replace, os.rename
def _slow(real):
    def call(src, dst, *a, **k):
        r = real(src, dst, *a, **k)
        if os.path.basename(os.fspath(dst)) == "result":
            time.sleep(0.05)
        return r
    return call
os.replace, os.rename = _slow(_replace), _slow(_rename)
"""


def test_parallel_builds_of_different_specs_never_poison_the_cache(tmp_path):
    """`make -j` with the default ./result: two builds of different specs
    into one output at once, 50 rounds, each with an empty cache (so both
    store). The output is always one of the two right images, no cache
    entry ever holds another layer's bytes (the key of one build used to be
    linked to the other's file), and cached rebuilds give the right images."""
    specs, refs = [], []
    for i in range(2):
        spec = project(tmp_path / f"s{i}", f"t/par{i}", os.urandom(1 << 20) + bytes([i]) * 4096)
        ref = tmp_path / f"ref{i}.tar"
        assert cli("build", str(spec), "--backend", "native", "-o", str(ref), env={"URUNIX_NO_CACHE": "1"}).returncode == 0
        specs.append(spec)
        refs.append(ref.read_bytes())
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SLOW_RENAME)
    out = tmp_path / "result"
    home = tmp_path / "cache"
    for round_ in range(ROUNDS):
        shutil.rmtree(home, ignore_errors=True)
        env = {**ENV, "XDG_CACHE_HOME": str(home), "PYTHONPATH": f"{site}:{ENV['PYTHONPATH']}"}
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "urunix", "build", str(s), "--backend", "native", "-o", str(out)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for s in specs
        ]
        for p in procs:
            _, err = p.communicate(timeout=300)
            assert p.returncode == 0, err.decode()
        assert out.read_bytes() in refs, f"round {round_}: the output is neither image"
        assert _entries_whole(home) == [], f"round {round_}: a cache entry holds the wrong bytes"
        if round_ % 10 == 9:  # what the next cached build ships
            for spec, ref in zip(specs, refs):
                mine = tmp_path / "mine.tar"
                r = cli("build", str(spec), "--backend", "native", "-o", str(mine), env={"XDG_CACHE_HOME": str(home)})
                assert r.returncode == 0 and mine.read_bytes() == ref, f"round {round_}: a cached build shipped another image"


# ------------------------------------------------------------------ 7. a changed entry never ships


def _flip(path: Path, marker: bytes) -> None:
    """Flip 4 bytes of `marker`'s first occurrence in place, and put the
    times back (`touch -r`): size, inode and mtime as they were."""
    st = os.stat(path)
    mode = st.st_mode
    os.chmod(path, mode | 0o200)
    data = path.read_bytes()
    at = data.index(marker) + 100
    with open(path, "r+b") as f:
        f.seek(at)
        f.write(bytes(b ^ 0xFF for b in data[at : at + 4]))
    os.chmod(path, mode)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.parametrize("fmt", ["docker-archive", "oci"])
def test_a_result_edited_in_place_never_reaches_the_next_build(tmp_path, fmt):
    kernel = os.urandom(2 << 20)
    spec = project(tmp_path / "p", kernel=kernel)
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    ref = tmp_path / "ref"
    assert (
        cli("build", str(spec), "--backend", "native", "--format", fmt, "-o", str(ref), env={"URUNIX_NO_CACHE": "1"}).returncode
        == 0
    )
    first, second = tmp_path / "first", tmp_path / "second"
    assert cli("build", str(spec), "--backend", "native", "--format", fmt, "-o", str(first), env=env).returncode == 0
    if fmt == "oci":  # an OCI layout filled from the cache: edit that one
        assert cli("build", str(spec), "--backend", "native", "--format", fmt, "-o", str(second), env=env).returncode == 0
        edited = second
    else:
        edited = first
    victims = [p for p in edited.rglob("*") if p.is_file() and kernel[:64] in p.read_bytes()] if fmt == "oci" else [edited]
    for v in victims:
        _flip(v, kernel[:64])
    again = tmp_path / "again"
    r = cli("build", str(spec), "--backend", "native", "--format", fmt, "-o", str(again), env=env)
    assert r.returncode == 0, r.stderr
    assert snapshot(again) == snapshot(ref) if fmt == "oci" else again.read_bytes() == ref.read_bytes(), (
        "a layer edited in the user's result was shipped by the next build"
    )


def test_a_cache_entry_edited_in_place_is_caught(tmp_path):
    kernel = os.urandom(2 << 20)
    spec = project(tmp_path / "p", kernel=kernel)
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    ref = tmp_path / "ref.tar"
    assert cli("build", str(spec), "--backend", "native", "-o", str(ref), env={"URUNIX_NO_CACHE": "1"}).returncode == 0
    assert cli("build", str(spec), "--backend", "native", "-o", str(tmp_path / "a.tar"), env=env).returncode == 0
    blobs = [p for p in (tmp_path / "cache").rglob("blobs/*") if p.is_file() and kernel[:64] in p.read_bytes()]
    assert blobs
    for b in blobs:
        _flip(b, kernel[:64])
    r = cli("build", str(spec), "--backend", "native", "-o", str(tmp_path / "b.tar"), env=env)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "b.tar").read_bytes() == ref.read_bytes(), "an edited cache entry was shipped"


# ------------------------------------------------------------------ 8. overlapping entries


def _overlap_dir(d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / "unikernel").mkdir(exist_ok=True)
    (d / "unikernel" / "k.hvt").write_bytes(b"OLD kernel from the directory")
    (d / "unikernel" / "initrd").write_bytes(b"OLD initrd from the directory")
    (d / "unikernel" / "conf").write_text("conf\n")
    (d / "new.hvt").write_bytes(b"NEW kernel, named explicitly")
    (d / "new.initrd").write_bytes(b"NEW initrd, named explicitly")


@pytest.mark.parametrize("form", ["args.nix", "yaml", "containerfile"])
def test_an_explicit_entry_beats_the_directory_copy_around_it(tmp_path, form):
    """The directory's old k.hvt was in the image: the files layer is
    written after the kernel layer."""
    d = tmp_path / "p"
    _overlap_dir(d)
    if form == "args.nix":
        spec = d / "args.nix"
        spec.write_text(
            '{ name = "t/ov"; files = { "./unikernel" = "/unikernel"; "./new.hvt" = "/unikernel/k.hvt";\n'
            '  "./new.initrd" = "/unikernel/initrd"; };\n'
            '  annotations = { unikernelType = "unikraft"; hypervisor = "qemu"; binary = "/unikernel/k.hvt";\n'
            '    initrd = "/unikernel/initrd"; }; }\n'
        )
    elif form == "yaml":
        spec = d / "s.yaml"
        spec.write_text(
            "name: t/ov\nfiles:\n  ./unikernel: /unikernel\n  ./new.hvt: /unikernel/k.hvt\n"
            "  ./new.initrd: /unikernel/initrd\nannotations:\n  unikernelType: unikraft\n  hypervisor: qemu\n"
            "  binary: /unikernel/k.hvt\n  initrd: /unikernel/initrd\n"
        )
    else:
        spec = d / "Containerfile"
        spec.write_text(
            "FROM scratch\nCOPY unikernel /unikernel\nCOPY new.hvt /unikernel/k.hvt\n"
            "COPY new.initrd /unikernel/initrd\n"
            "LABEL com.urunc.unikernel.unikernelType=unikraft com.urunc.unikernel.hypervisor=qemu "
            "com.urunc.unikernel.binary=/unikernel/k.hvt com.urunc.unikernel.initrd=/unikernel/initrd\n"
        )
    files = _built_files(tmp_path, spec)
    assert files["unikernel/k.hvt"] == b"NEW kernel, named explicitly"
    assert files["unikernel/initrd"] == b"NEW initrd, named explicitly"
    assert files["unikernel/conf"] == b"conf\n"


def _built_files(tmp_path: Path, spec: Path) -> dict:
    """The files of `spec`'s image built natively, as Docker unpacks it
    (later layers win)."""
    out = tmp_path / "out.tar"
    r = run_cli("build", str(spec), "--backend", "native", "-t", "t/ov", "-o", str(out), env={"URUNIX_NO_CACHE": "1"})
    assert r.returncode == 0, r.stderr
    return read_archive(out)[2]


def test_containerfile_later_copy_wins_as_in_docker(tmp_path):
    """COPY new.hvt first, then the directory: Docker gives the
    directory's file."""
    d = tmp_path / "p"
    _overlap_dir(d)
    spec = d / "Containerfile"
    spec.write_text(
        "FROM scratch\nCOPY new.hvt /unikernel/k.hvt\nCOPY unikernel /unikernel\n"
        "LABEL com.urunc.unikernel.unikernelType=rumprun com.urunc.unikernel.hypervisor=hvt "
        "com.urunc.unikernel.binary=/unikernel/k.hvt\n"
    )
    files = _built_files(tmp_path, spec)
    assert files["unikernel/k.hvt"] == b"OLD kernel from the directory"


# ------------------------------------------------------------------ 9. overlaps are spec matters


def test_copy_into_a_copied_directory_is_no_build_failure(tmp_path):
    """`COPY dir /x` then `COPY f /x/one` gave exit 1, "two entries for
    /x/one in one layer"; Docker gives f."""
    d = tmp_path / "p"
    project(d)
    (d / "dir").mkdir()
    (d / "dir" / "one").write_text("from dir\n")
    (d / "f").write_text("from f\n")
    spec = d / "Containerfile"
    spec.write_text(
        "FROM scratch\nCOPY k.hvt /unikernel/k.hvt\nCOPY dir /x\nCOPY f /x/one\n"
        "LABEL com.urunc.unikernel.unikernelType=rumprun com.urunc.unikernel.hypervisor=hvt "
        "com.urunc.unikernel.binary=/unikernel/k.hvt\n"
    )
    r = run_cli(
        "build", str(spec), "--backend", "native", "-t", "t/x", "-o", str(tmp_path / "o.tar"), env={"URUNIX_NO_CACHE": "1"}
    )
    assert r.returncode == 0, r.stderr
    assert read_archive(tmp_path / "o.tar")[2]["x/one"] == b"from f\n"


def test_duplicate_and_unhonourable_targets_are_spec_errors_naming_both(tmp_path):
    d = tmp_path / "p"
    project(d)
    (d / "a").write_text("a\n")
    spec = d / "dup.yaml"
    spec.write_text("name: t/dup\nfiles:\n  ./k.hvt: /unikernel/k.hvt\n  ./a: /etc/x\n  ./s.yaml: //etc/x\n" + ANN)
    r = run_cli("build", str(spec), "--backend", "native", "-o", str(tmp_path / "o.tar"))
    assert r.returncode == 2, r.stderr
    assert 'files."./s.yaml"' in r.stderr and 'files."./a"' in r.stderr and "line 4" in r.stderr and "dup.yaml:5" in r.stderr
    (d / "tree" / "one").mkdir(parents=True)
    (d / "tree" / "one" / "deep").write_text("deep\n")
    spec = d / "Containerfile"
    spec.write_text(
        "FROM scratch\nCOPY k.hvt /unikernel/k.hvt\nCOPY tree /x\nCOPY a /x/one\n"
        "LABEL com.urunc.unikernel.unikernelType=rumprun com.urunc.unikernel.hypervisor=hvt "
        "com.urunc.unikernel.binary=/unikernel/k.hvt\n"
    )
    r = run_cli("build", str(spec), "--backend", "native", "-t", "t/x", "-o", str(tmp_path / "o.tar"))
    assert r.returncode == 2, r.stderr
    assert "COPY a" in r.stderr and "COPY tree" in r.stderr and "Containerfile:4" in r.stderr and "line 3" in r.stderr


# ------------------------------------------------------------------ 10. leading //


def test_double_slash_urunc_json_is_refused(tmp_path):
    d = tmp_path / "p"
    project(d)
    spec = d / "j.yaml"
    spec.write_text("name: t/j\nfiles:\n  ./k.hvt: /unikernel/k.hvt\n  ./s.yaml: //urunc.json\n" + ANN)
    r = run_cli("build", str(spec), "--backend", "native", "-o", str(tmp_path / "o.tar"))
    assert r.returncode == 2 and "/urunc.json" in r.stderr and '"//urunc.json"' in r.stderr, r.stderr
    assert not (tmp_path / "o.tar").exists()


# ------------------------------------------------------------------ 11. member path length


def test_a_member_path_too_long_for_docker_is_refused_with_its_name(tmp_path):
    """A 4,407-byte path built with exit 0; docker load then failed with
    'file name too long'."""
    d = tmp_path / "p"
    project(d)
    deep = d / "tree" / ("d" * 200) / ("e" * 200)
    deep.mkdir(parents=True)
    (deep / "leaf").write_text("x\n")
    target = "/" + "/".join(["t" * 250] * 15)  # 3,765 bytes: fine alone; with the member, 4,175
    spec = d / "long.yaml"
    spec.write_text(f"name: t/long\nfiles:\n  ./k.hvt: /unikernel/k.hvt\n  ./tree: {target}\n" + ANN)
    r = run_cli("build", str(spec), "--backend", "native", "-o", str(tmp_path / "o.tar"), env={"URUNIX_NO_CACHE": "1"})
    assert r.returncode == 2, r.stderr
    assert "4095" in r.stderr and 'files."./tree"' in r.stderr
    assert str(deep) in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o.tar").exists()


# ------------------------------------------------------------------ 12. validation work grows n log n


def _calls_to_validate(d: Path, n: int) -> int:
    """Python and C calls made by load + validate of a spec with n files
    (counted, not timed: the same on any machine)."""
    from urunix.loaders import load
    from urunix.validate import validate

    src = d / f"src{n}"
    src.mkdir()
    lines = ["name: t/big\nfiles:\n  ./k.hvt: /unikernel/k.hvt\n"]
    for i in range(n):
        (src / f"f{i}").write_text(str(i))
        lines.append(f"  ./src{n}/f{i}: /data/d{i % 50}/f{i}\n")
    spec = d / f"big{n}.yaml"
    spec.write_text("".join(lines) + ANN)
    count = 0

    def prof(frame, event, arg):
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(prof)
    try:
        validate(load(spec))
    finally:
        sys.setprofile(None)
    return count


def test_validation_work_grows_n_log_n(tmp_path):
    """10,000 entries took 50 s (args.nix) and 114 s (YAML): every entry
    was compared with every other. The benchmark case `validate_10k`
    (python -m benchmarks) times the real thing."""
    project(tmp_path)
    small, big = _calls_to_validate(tmp_path, 1000), _calls_to_validate(tmp_path, 2000)
    assert big / small < 2.5, f"doubling the entries multiplied the work by {big / small:.2f}"


# ------------------------------------------------------------------ 13. hints and empty files


def test_hint_never_repeats_the_value_given(tmp_path):
    d = tmp_path / "p"
    project(d)
    (d / "kdir").mkdir()
    (d / "kdir" / "real.hvt").write_bytes(b"\x7fELF")
    spec = d / "dir.yaml"
    spec.write_text("name: t/dir\nfiles:\n  ./kdir: /unikernel/k.hvt\n" + ANN)
    r = run_cli("validate", str(spec))
    assert r.returncode == 2, r.stderr
    assert 'did you mean "/unikernel/k.hvt"' not in r.stderr
    assert "directory" in r.stderr and "/unikernel/k.hvt/real.hvt" in r.stderr, r.stderr


@pytest.mark.parametrize("key", ["binary", "initrd", "block"])
def test_an_empty_kernel_initrd_or_block_gets_a_warning(tmp_path, key):
    d = tmp_path / "p"
    project(d)
    (d / "empty").write_bytes(b"")
    guest = {"binary": ("rumprun", "hvt"), "initrd": ("unikraft", "qemu"), "block": ("rumprun", "hvt")}[key]
    files = "  ./k.hvt: /unikernel/k.hvt\n" if key != "binary" else ""
    spec = d / "e.yaml"
    spec.write_text(
        f"name: t/e\nfiles:\n{files}  ./empty: /unikernel/{key}\n"
        f"annotations:\n  unikernelType: {guest[0]}\n  hypervisor: {guest[1]}\n"
        + (f"  binary: /unikernel/k.hvt\n  {key}: /unikernel/{key}\n" if key != "binary" else "  binary: /unikernel/binary\n")
    )
    r = run_cli("validate", str(spec))
    assert r.returncode == 0, r.stderr
    assert "warning:" in r.stderr and "empty" in r.stderr and f"annotations.{key}" in r.stderr, r.stderr
