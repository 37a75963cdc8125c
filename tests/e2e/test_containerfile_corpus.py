"""Differential suite: every build context under tests/containerfiles/ is
built by the Docker Engine (`docker build`, classic builder,
DOCKER_BUILDKIT=0) and by `urunix build --backend native`, and the two
images must agree on Labels, Env, Entrypoint, Cmd, WorkingDir and the file
tree (names, types, bytes, link targets, hard links, modes, owners).

The differences urunix makes on purpose are listed once, in DELIBERATE
below (and summarised in the README); any other difference fails.

A case is a directory: its Containerfile and files are the build context.
What git cannot hold (hard links, empty directories, odd modes, big binary
files, symlinks that point at this machine's temporary directory) is made
at test time by SETUP. A case with a `_base/` directory is built FROM the
image Docker builds from `_base/` (loaded into the engine as
corpus-base/<case>, handed to urunix as a `docker save` archive with
--from). BOTH_REFUSE cases must fail in both; REFUSED cases are ones urunix
refuses on purpose (exit 2, a message naming the line), Docker not asked.

One dockerd serves the whole session (tests/conftest.py); the cases are
built a few at a time in threads (the engine mostly waits on its per-step
commits). A file that a later COPY replaces differs in size from the one
it replaces: with the vfs driver, the classic builder's layer diff misses
a file whose size and (second-precision) mtime are unchanged -- a quirk of
that engine, not a behaviour to copy."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli import urunix

CORPUS = Path(__file__).resolve().parent.parent / "containerfiles"
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "Containerfile").is_file())
PREFIX = "com.urunc.unikernel."

#: Every way urunix's image may differ from Docker's, each with its reason.
#: The comparison below names the entry a difference falls under; one that
#: falls under none fails the case.
DELIBERATE = {
    "modes": "modes as Nix stores files: a copied file is 0644, or 0755 when it has any exec bit; a copied "
    "directory is 0755 (Docker keeps the host's mode bits). A Nix store path cannot hold other "
    "modes, and the native and Nix backends make the same image.",
    "times": "fixed times: every file and the image are dated 1970-01-01T00:00:01Z (or SOURCE_DATE_EPOCH), "
    "so that the same inputs give a bit-identical image; Docker stamps the build time and the "
    "host's mtimes. Times are not compared.",
    "cmd": "Cmd from the cmdline label: without a CMD, urunix writes the argv urunc runs, the "
    'com.urunc.unikernel.cmdline annotation split into words ([""] when there is none) where '
    "Docker leaves Cmd empty (or the base image's); a base image's Cmd/Entrypoint are not inherited, "
    "since urunc boots what the cmdline annotation says. For Unikraft, whose argv0 urunc v0.6.0+ "
    "write as `Unikraft`, Cmd holds the arguments only (the cmdline's words after the first), and "
    "without a cmdline label urunix writes one, `Unikraft ARGS`, for urunc v0.5.0.",
    "urunc-metadata": "the added urunc metadata: /urunc.json (the annotations urunc reads) and the "
    "com.urunc.unikernel.* labels urunix derives from those given (mountRootfs next to "
    "useDMBlock), which Docker cannot know about.",
}


def _cmd_from_cmdline(guest: str | None, cmdline: str | None) -> list[str]:
    """The Cmd that DELIBERATE["cmd"] describes, from the cmdline label."""
    words = cmdline.split() if cmdline is not None else []
    if guest == "unikraft" and len(words) > 1:
        words = words[1:]
    return words or [""]


#: The urunc labels urunix derives from others (validate.py: mountRootfs
#: goes with useDMBlock).
DERIVED = {"mountRootfs", "useDMBlock"}


# What git cannot hold, made in the copied context before either build.
def _hardlinks(ctx: Path, tmp: Path) -> None:
    os.link(ctx / "data" / "one.txt", ctx / "data" / "two.txt")
    os.link(ctx / "data" / "one.txt", ctx / "data" / "sub" / "three.txt")


def _empty_dirs(ctx: Path, tmp: Path) -> None:
    (ctx / "tree" / "empty").mkdir(parents=True)
    (ctx / "tree" / "full" / "inner-empty").mkdir(parents=True)


def _modes(ctx: Path, tmp: Path) -> None:
    (ctx / "data" / "private.txt").chmod(0o600)
    (ctx / "data" / "script.sh").chmod(0o750)
    (ctx / "data" / "locked").chmod(0o700)


def _big_binary(ctx: Path, tmp: Path) -> None:
    block = hashlib.sha256(b"urunix").digest() + bytes(range(256))
    with open(ctx / "blob.bin", "wb") as f:
        for i in range(12 << 10):  # 3.4 MiB, every byte value
            f.write(block)
            f.write(i.to_bytes(4, "little"))
    (ctx / "zeros.img").write_bytes(bytes(1 << 20))


def _outside(ctx: Path, tmp: Path) -> None:
    """A secret next to the context, which a symlink must not reach."""
    (tmp / "outside").mkdir(exist_ok=True)
    (tmp / "outside" / "secret").write_text("HOST SECRET\n")


def _host_dir_link(ctx: Path, tmp: Path) -> None:
    _outside(ctx, tmp)
    (tmp / "outside" / "conf.d").mkdir()
    (tmp / "outside" / "conf.d" / "host.conf").write_text("HOST CONF\n")
    (ctx / "conf.d").symlink_to(tmp / "outside" / "conf.d")


def _abs_link_to_tmp(ctx: Path, tmp: Path) -> None:
    _outside(ctx, tmp)
    (ctx / "abs").symlink_to(tmp / "outside" / "secret")
    inside = ctx / str(tmp / "outside").lstrip("/")
    inside.mkdir(parents=True)
    (inside / "secret").write_text("inside the context\n")


def _git_dir(ctx: Path, tmp: Path) -> None:
    (ctx / ".git" / "objects").mkdir(parents=True)
    (ctx / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (ctx / ".git" / "config").write_text("[core]\n")


SETUP = {
    "copy-hardlinks": _hardlinks,
    "copy-empty-dirs": _empty_dirs,
    "copy-modes": _modes,
    "copy-big-binary": _big_binary,
    "symlink-rel-escape-clamped": _outside,
    "symlink-escape-refused": _outside,
    "symlink-glob-host-dir": _host_dir_link,
    "symlink-abs-to-host-tmp": _abs_link_to_tmp,
    "dockerignore-basic": _git_dir,
}

#: Both refuse: (what Docker says, what urunix says).
BOTH_REFUSE = {
    "symlink-escape-refused": ("file not found in build context", ["leaks is a symlink that leads outside the build context"]),
    "symlink-glob-host-dir": ("file not found in build context", ["conf.d is a symlink that leads outside the build context"]),
    "dockerignore-copy-excluded": ("file not found in build context", ["secret.key is excluded by .dockerignore"]),
    "glob-bad-pattern": ("no source files were specified", ["no file in the build context matches"]),
    "glob-no-match": ("no source files were specified", ["no file in the build context matches"]),
}

#: urunix refuses on purpose (exit 2): the messages.
REFUSED = {
    "refuse-run": ["Containerfile:4: RUN: runs a command at build time", "build the artifact beforehand"],
    "refuse-multi-stage": [
        "Containerfile:4: FROM: a second FROM starts a multi-stage build",
        "Containerfile:5: COPY --from=build: copies from another build stage",
    ],
    "refuse-shell-cmd": ["Containerfile:4: CMD: CMD in shell form", 'CMD ["/kernel", "-v"]'],
    "refuse-volume": ["Containerfile:4: VOLUME:", "block or initrd annotations"],
}


# -- reading an image archive (`docker save`, or urunix's result) ------------------


def _clean(name: str) -> str:
    while name.startswith(("./", "/")):
        name = name[2:] if name.startswith("./") else name[1:]
    return "" if name == "." else name.rstrip("/")


def read_image(archive: Path) -> tuple[dict, dict, set]:
    """(config, tree, hard-link groups) of a docker-archive: the layers
    applied in order, whiteouts included. tree: path -> (type, mode, uid,
    gid, sha256 of the bytes or the link target)."""
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]
        config = json.load(outer.extractfile(manifest["Config"]))
        tree: dict[str, tuple] = {}
        links: dict[str, str] = {}
        for layer in manifest["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(layer)) as t:
                for m in t:
                    name = _clean(m.name)
                    if not name:
                        continue
                    head, _, base = name.rpartition("/")
                    if base == ".wh..wh..opq":
                        for p in [p for p in tree if p.startswith(head + "/")]:
                            del tree[p]
                        continue
                    if base.startswith(".wh."):
                        gone = f"{head}/{base[4:]}" if head else base[4:]
                        for p in [p for p in tree if p == gone or p.startswith(gone + "/")]:
                            del tree[p]
                        continue
                    if not m.isdir():
                        for p in [p for p in tree if p.startswith(name + "/")]:
                            del tree[p]
                    links.pop(name, None)
                    if m.isreg():
                        entry = ("file", hashlib.sha256(t.extractfile(m).read()).hexdigest())
                    elif m.islnk():
                        target = _clean(m.linkname)
                        entry = tree[target][4:5] and ("file", tree[target][4])
                        links[name] = links.get(target, target)
                    elif m.issym():
                        entry = ("symlink", m.linkname)
                    elif m.isdir():
                        entry = ("dir", "")
                    else:
                        entry = ("other", str(m.type))
                    mode = 0 if entry[0] == "symlink" else m.mode & 0o7777
                    tree[name] = (entry[0], mode, m.uid, m.gid, entry[1])
    groups: dict[str, set] = {}
    for name, first in links.items():
        if name in tree and first in tree:
            groups.setdefault(first, {first}).add(name)
    return config.get("config") or {}, tree, {frozenset(g) for g in groups.values()}


def nix_mode(kind: str, mode: int) -> int:
    return 0o755 if kind == "dir" or mode & 0o111 else 0o644


def compare(case: str, theirs: tuple, ours: tuple) -> tuple[list[str], set[str]]:
    """(differences that no DELIBERATE entry covers, the entries used)."""
    (tc, tt, tl), (oc, ot, ol) = theirs, ours
    bad: list[str] = []
    used: set[str] = set()

    tlabels, olabels = tc.get("Labels") or {}, oc.get("Labels") or {}
    for k in sorted(set(tlabels) | set(olabels)):
        if tlabels.get(k) == olabels.get(k):
            continue
        if k not in tlabels and k[len(PREFIX) :] in DERIVED and k.startswith(PREFIX):
            used.add("urunc-metadata")
            continue
        argv = (tc.get("Entrypoint") or []) + (tc.get("Cmd") or [])
        if (
            k == PREFIX + "cmdline"
            and k not in tlabels
            and olabels[k] in (" ".join(argv), " ".join(["Unikraft"] + [a for a in argv if a]))
        ):
            used.add("cmd")  # the argv, as the cmdline urunc v0.5.0 reads
            continue
        bad.append(f"label {k}: docker {tlabels.get(k)!r}, urunix {olabels.get(k)!r}")
    for key in ("Env", "Entrypoint", "WorkingDir"):
        t, o = tc.get(key) or None, oc.get(key) or None
        if t != o:
            bad.append(f"{key}: docker {t!r}, urunix {o!r}")
    tcmd, ocmd = tc.get("Cmd") or None, oc.get("Cmd")
    if tcmd != ocmd:
        if ocmd == _cmd_from_cmdline(olabels.get(PREFIX + "unikernelType"), olabels.get(PREFIX + "cmdline")):
            used.add("cmd")
        else:
            bad.append(f"Cmd: docker {tcmd!r}, urunix {ocmd!r}")

    for path in sorted(set(tt) | set(ot)):
        t, o = tt.get(path), ot.get(path)
        if t == o:
            continue
        if t is None and path == "urunc.json":
            used.add("urunc-metadata")
            continue
        if t is None or o is None:
            bad.append(f"/{path}: only in {'urunix' if t is None else 'docker'}'s image: {t or o}")
            continue
        if t[0] == o[0] and t[2:] == o[2:] and o[1] == nix_mode(t[0], t[1]):
            used.add("modes")
            continue
        bad.append(f"/{path}: docker {t}, urunix {o}")
    if tl != ol:
        bad.append(f"hard links: docker {sorted(map(sorted, tl))}, urunix {sorted(map(sorted, ol))}")
    return bad, used


# -- the suite -------------------------------------------------------------------


def _context(case: str, tmp: Path) -> Path:
    ctx = tmp / "ctx"
    shutil.copytree(CORPUS / case, ctx, symlinks=True, ignore=shutil.ignore_patterns("_base"))
    if case in SETUP:
        SETUP[case](ctx, tmp)
    return ctx


def docker_build(docker, context: Path, tag: str, dockerfile: str = "Containerfile") -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", "build", "-q", "-f", str(context / dockerfile), "-t", tag, str(context)],
        capture_output=True,
        text=True,
        env={**docker.env, "DOCKER_BUILDKIT": "0"},
        timeout=300,
    )


def _base(docker, case: str, tmp: Path) -> list[str]:
    """Build the case's base with Docker; the --from argument for urunix."""
    src = CORPUS / case / "_base"
    if not src.is_dir():
        return []
    name = f"corpus-base/{case}:latest"
    r = docker_build(docker, src, name)
    assert r.returncode == 0, r.stderr
    docker.run("save", "-o", str(tmp / "base.tar"), name)
    return ["--from", f"{name}={tmp / 'base.tar'}"]


@dataclass
class Outcome:
    """One case built both ways (in a worker thread)."""

    docker: subprocess.CompletedProcess | None
    urunix: subprocess.CompletedProcess
    theirs: tuple | None = None
    ours: tuple | None = None


def run_case(docker, case: str, tmp: Path) -> Outcome:
    ctx = _context(case, tmp)
    out = tmp / "ours.tar"
    if case in REFUSED:
        return Outcome(
            None, urunix("build", "Containerfile", "-t", f"corpus/{case}:test", "-o", str(out), "--backend", "native", cwd=ctx)
        )
    tag = f"corpus/{case}:docker"
    from_args = _base(docker, case, tmp)
    d = docker_build(docker, ctx, tag)
    r = urunix(
        "build", "Containerfile", "-t", f"corpus/{case}:urunix", "-o", str(out), "--backend", "native", *from_args, cwd=ctx
    )
    result = Outcome(d, r)
    if d.returncode == 0:
        docker.run("save", "-o", str(tmp / "theirs.tar"), tag)
        result.theirs = read_image(tmp / "theirs.tar")
    if r.returncode == 0:
        result.ours = read_image(out)
    return result


#: Cases built at once: `docker build` mostly waits on the daemon's
#: per-step container commits, so a few in flight use 2 cores well.
WORKERS = 4


@pytest.fixture(scope="module")
def corpus(request, docker, tmp_path_factory):
    """The selected cases, all submitted at once to a small thread pool;
    each test waits for its own."""
    selected = [
        item.callspec.params["case"]
        for item in request.session.items
        if getattr(item, "originalname", "") == "test_builds_as_docker_does"
    ]
    pool = ThreadPoolExecutor(WORKERS)
    try:
        yield {case: pool.submit(run_case, docker, case, tmp_path_factory.mktemp(case)) for case in selected}
    finally:
        pool.shutdown(cancel_futures=True)
        # only now: concurrent builds share cached parent images
        tags = [f"corpus/{c}:docker" for c in selected] + [f"corpus-base/{c}:latest" for c in selected]
        docker.run("rmi", "-f", *tags, check=False)


@pytest.mark.docker
@pytest.mark.parametrize("case", CASES)
def test_builds_as_docker_does(corpus, case):
    got: Outcome = corpus[case].result()
    r, d = got.urunix, got.docker
    assert "Traceback" not in r.stderr, r.stderr
    if case in REFUSED:
        assert r.returncode == 2, r.stderr
        for want in REFUSED[case]:
            assert want in r.stderr, r.stderr
        return
    if case in BOTH_REFUSE:
        docker_says, urunix_says = BOTH_REFUSE[case]
        assert d.returncode != 0, "docker built it"
        assert docker_says in d.stderr, d.stderr
        assert r.returncode == 2, r.stderr
        for want in urunix_says:
            assert want in r.stderr, r.stderr
        return
    assert d.returncode == 0, d.stderr
    assert r.returncode == 0, r.stderr
    bad, used = compare(case, got.theirs, got.ours)
    assert not bad, "\n".join(bad)
    assert used <= set(DELIBERATE)


def test_corpus_size_and_lists():
    """At least 60 contexts; every special case names a context that exists."""
    assert len(CASES) >= 60, len(CASES)
    for table in (SETUP, BOTH_REFUSE, REFUSED):
        assert set(table) <= set(CASES), set(table) - set(CASES)
    assert not set(BOTH_REFUSE) & set(REFUSED)
