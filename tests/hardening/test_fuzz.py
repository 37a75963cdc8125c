"""4. Bad input never crashes.

hypothesis fuzzes each reader -- the args.nix data reader, the YAML and
bunnyfile loaders (and validate() on what they give), the image-archive
reader (imagefile + flatten: random tars, truncations, byte flips, random
JSON in manifest/index/config) and `urunix inspect` -- and the only
outcomes allowed are a result or a SpecError (exit code 2 via the CLI). Each
input is time-bounded (hypothesis' deadline off, a SIGALRM guard instead:
a slow CI machine must not turn into flaky deadlines, a hang still fails).

Crashers found are kept in corpus/ (see corpus/make_corpus.py and
expect.json) and replayed through the CLI. Resource bounds: a gzip bomb
layer, a million-entry layer, a million-entry archive, deep YAML and deep
Nix: refused or handled within bounded memory (peak RSS of a subprocess)
and time."""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostile import Hang, docker_archive, layer, oci_archive, oci_layout, time_limit
from hsupport import run_cli
from urunix.errors import SpecError

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
ROOT = HERE.parents[1]
EXAMPLES = int(os.environ.get("URUNIX_FUZZ_EXAMPLES", "1000"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
FUZZ_IMAGES = settings(FUZZ, max_examples=max(1, EXAMPLES // 2))
BOUND = 10.0  # seconds per input


def only_spec_errors(fn, *args):
    """fn(*args) returns, or raises SpecError; anything else fails the test."""
    try:
        with time_limit(BOUND):
            return fn(*args)
    except SpecError:
        return None
    except Hang:
        pytest.fail(f"no answer within {BOUND} s for {args!r:.300}")


# ------------------------------------------------------------------ Nix data

NIX_TOKENS = [
    "{",
    "}",
    "[",
    "]",
    "=",
    ";",
    ".",
    " ",
    "\n",
    "\t",
    "a",
    "b.c",
    '"',
    '"x"',
    "''",
    "''x''",
    "'''",
    "''$",
    "''\\",
    "${",
    "$",
    "\\",
    "\\n",
    "#",
    "/*",
    "*/",
    "./p",
    "../q",
    "/abs",
    "~/h",
    "<nixpkgs>",
    "http://x",
    "1",
    "-",
    "-1",
    "1.5",
    "1e3",
    "9" * 25,
    "true",
    "null",
    "let",
    "in",
    "rec",
    "with",
    "inherit",
    "import",
    ":",
    "@",
    "...",
    "?",
    "//",
    "++",
    "or",
    "\r\n",
    "\0",
    "é",
    "\ud800",
]


@st.composite
def nix_text(draw):
    return "".join(draw(st.lists(st.sampled_from(NIX_TOKENS), max_size=60)))


@FUZZ
@given(st.one_of(nix_text(), st.text(max_size=300)))
def test_nix_data_reader(text):
    from urunix.loaders import nixdata

    only_spec_errors(nixdata.read, text)


# ------------------------------------------------------------------ YAML, bunnyfile

# spec field names, in the YAML tokens and the generated JSON-like keys alike
SPEC_WORDS = [
    "name",
    "tag",
    "files",
    "annotations",
    "rootfs",
    "kernel",
    "init",
    "cmd",
    "env",
    "labels",
    "include",
    "type",
    "from",
    "path",
]

YAML_TOKENS = [
    "a",
    "b",
    ":",
    ": ",
    " ",
    "  ",
    "\n",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&x ",
    "*x",
    "<<: ",
    "!!str ",
    "!!python/object:os.system ",
    "!!binary ",
    "!!set ",
    "!!omap ",
    "!!timestamp ",
    '"',
    "'",
    "? ",
    "| ",
    "> ",
    "#",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "\t",
    *SPEC_WORDS,
    "initrd",
    "block",
    "raw",
    "./k",
    "/k",
    "unikernelType",
    "hypervisor",
    "binary",
    "linux",
    "unikraft",
    "rumprun",
    "qemu",
    "hvt",
    "version",
    "platforms",
    "framework",
    "monitor",
    "v0.1",
    "local",
    "scratch",
    "true",
    "1",
    "1.0",
    "null",
    "~",
    "2001-12-14",
    "\\0",
    "\\ud800",
    "é",
    "\x85",
    "\ufeff",
]


@st.composite
def yaml_text(draw):
    return "".join(draw(st.lists(st.sampled_from(YAML_TOKENS), max_size=80)))


json_data = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.text(max_size=20),
        st.sampled_from(
            [
                "./k",
                "/k",
                "scratch",
                "initrd",
                "block",
                "raw",
                "linux",
                "qemu",
                "rumprun",
                "hvt",
                "./img.tar",
                "oci:./k",
                "docker://x@sha256:" + "0" * 64,
                "v0.1",
                "local",
            ]
        ),
    ),
    lambda kids: st.one_of(
        st.lists(kids, max_size=4),
        st.dictionaries(
            st.sampled_from(
                [
                    *SPEC_WORDS,
                    "size",
                    "fsType",
                    "compression",
                    "./k",
                    "/k",
                    "unikernelType",
                    "hypervisor",
                    "binary",
                    "cmdline",
                    "version",
                    "platforms",
                    "framework",
                    "monitor",
                    "envs",
                    "source",
                    "destination",
                    "x",
                ]
            ),
            kids,
            max_size=5,
        ),
    ),
    max_leaves=25,
)


def _load_and_validate(path: Path, fmt: str):
    from urunix.loaders import load
    from urunix.validate import validate

    return validate(load(path, fmt, keep_problems=True))  # as the CLI: partial specs reach validate


@pytest.fixture(scope="module")
def specdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzzspec")
    (d / "k").write_bytes(b"\x7fELF")
    return d


@FUZZ
@given(st.one_of(yaml_text(), st.text(max_size=300)), st.sampled_from(["yaml", "bunnyfile"]))
def test_yaml_and_bunnyfile_loaders(specdir, text, fmt):
    p = specdir / ("spec.yaml" if fmt == "yaml" else "bunnyfile")
    p.write_text(text, encoding="utf-8", errors="surrogatepass")
    only_spec_errors(_load_and_validate, p, fmt)


@FUZZ
@given(json_data, st.sampled_from(["yaml", "bunnyfile", "args.nix"]))
def test_structured_specs_through_validate(specdir, data, fmt):
    """Plain data in every shape the schema has names for, through each
    loader and validate(): a result or a SpecError."""
    import yaml

    if fmt == "args.nix":
        from urunix.nixgen import nix_value

        try:
            text = nix_value(data)
        except (TypeError, ValueError):
            return
        p = specdir / "spec.nix"
    else:
        text = yaml.safe_dump(data)
        p = specdir / ("spec.yaml" if fmt == "yaml" else "bunnyfile")
    p.write_text(text, encoding="utf-8", errors="surrogatepass")
    os.environ["URUNIX_NO_NIX"] = "1"
    try:
        only_spec_errors(_load_and_validate, p, fmt)
    finally:
        del os.environ["URUNIX_NO_NIX"]


# ------------------------------------------------------------------ image archives

NAMES = [
    "a",
    "b",
    "a/b",
    "./a",
    "/a",
    "../a",
    "a/../b",
    "..",
    ".",
    "",
    "a/",
    ".wh.a",
    "a/.wh.b",
    ".wh..wh..opq",
    "a/.wh..wh..opq",
    ".wh..wh.plnk",
    "dev/x",
    "x" * 120,
    "ü",
    "a\\b",
    "l",
    "l/x",
    "kernel",
    "urunc.json",
]
KINDS = ["file", "dir", "symlink", "hardlink", "char", "fifo"]


@st.composite
def layer_bytes(draw):
    entries = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(KINDS))
        name = draw(st.sampled_from(NAMES))
        if kind in ("symlink", "hardlink"):
            entries.append((name, kind, draw(st.sampled_from(NAMES + ["/", "/etc/passwd", "../../x"]))))
        elif kind == "file":
            entries.append((name, kind, draw(st.binary(max_size=64))))
        else:
            entries.append((name, kind))
    try:
        data = layer(entries, draw(st.sampled_from([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])))
    except (ValueError, UnicodeError):
        data = layer([])
    if draw(st.booleans()):
        data = gzip.compress(data, 1)
    return data


json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10)),
    lambda k: st.one_of(
        st.lists(k, max_size=3),
        st.dictionaries(
            st.sampled_from(
                [
                    "Config",
                    "Layers",
                    "RepoTags",
                    "manifests",
                    "digest",
                    "config",
                    "layers",
                    "mediaType",
                    "annotations",
                    "Labels",
                    "Cmd",
                    "Env",
                ]
            ),
            k,
            max_size=4,
        ),
    ),
    max_leaves=10,
)


def _mutate_member(path: Path, name: str, value) -> None:
    with tarfile.open(path) as t:
        members = [(m, t.extractfile(m).read() if m.isfile() else None) for m in t.getmembers()]
    with tarfile.open(path, "w") as t:
        for m, data in members:
            if m.name == name:
                data = json.dumps(value).encode()
                m.size = len(data)
            t.addfile(m, io.BytesIO(data) if data is not None else None)


def _inspect_and_flatten(path: str):
    from urunix.image_report import inspect_image
    from urunix.rootfs.flatten import flatten

    only_spec_errors(inspect_image, path)
    flat = only_spec_errors(flatten, path)
    if flat is not None:
        flat.close()


@FUZZ_IMAGES
@given(
    st.lists(layer_bytes(), min_size=0, max_size=3),
    st.sampled_from(["docker", "oci-archive", "layout"]),
    st.one_of(st.none(), st.tuples(st.sampled_from(["manifest.json", "index.json", "config.json"]), json_value)),
    st.one_of(st.none(), st.floats(0, 1)),
    st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=4),
    st.one_of(st.none(), json_value),
)
def test_image_reader(tmp_path_factory, layers, form, swap, cut, flips, config):
    d = tmp_path_factory.mktemp("img", numbered=True)
    cfg = config if isinstance(config, dict) else None
    if form == "layout":
        path = oci_layout(d / "layout", layers, cfg)
        if swap and swap[0] == "index.json":
            (path / "index.json").write_text(json.dumps(swap[1]))
        _inspect_and_flatten(str(path))
        return
    path = (docker_archive if form == "docker" else oci_archive)(d / "img.tar", layers, cfg)
    if swap:
        _mutate_member(path, swap[0], swap[1])
    data = bytearray(path.read_bytes())
    for where, byte in flips:
        if data:
            data[int(where * (len(data) - 1))] = byte
    if cut is not None:
        data = data[: int(cut * len(data))]
    path.write_bytes(bytes(data))
    _inspect_and_flatten(str(path))


def test_inspect_cli_on_random_archives(tmp_path):
    """`urunix inspect` (in process, the real CLI path) on seeded random
    mutations of a valid archive: exit code 0, 1 (labels and urunc.json
    disagree) or 2, never a traceback."""
    rnd = random.Random(4)
    good = tmp_path / "good.tar"
    r = run_cli("build", "--backend", "native", "-o", str(good), str(_tiny_spec(tmp_path)))
    assert r.returncode == 0, r.stderr
    data = good.read_bytes()
    for i in range(150):
        d = bytearray(data)
        if i % 3 == 0:
            d = d[: rnd.randrange(len(d))]
        for _ in range(rnd.randint(1, 6)):
            d[rnd.randrange(len(d))] = rnd.randrange(256)
        p = tmp_path / "m.tar"
        p.write_bytes(bytes(d))
        for args in (["inspect", str(p)], ["inspect", "--json", str(p)]):
            with time_limit(BOUND):
                r = run_cli(*args)
            assert r.returncode in (0, 1, 2) and "Traceback" not in r.stderr, (i, r.returncode, r.stderr[-500:])


def _tiny_spec(d: Path) -> Path:
    (d / "k").write_bytes(b"\x7fELF")
    p = d / "tiny.yaml"
    p.write_text(
        "name: a/b\nfiles: {./k: /k}\nannotations: {unikernelType: rumprun, hypervisor: hvt, binary: /k, "
        "cmdline: x}\nlabels: {l: v}\n"
    )
    return p


# ------------------------------------------------------------------ the corpus


def _corpus() -> list[str]:
    return sorted(json.loads((CORPUS / "expect.json").read_text()))


@pytest.mark.parametrize("name", _corpus())
def test_corpus(tmp_path, name):
    """Every kept crasher, through the CLI as a user would run it."""
    case = json.loads((CORPUS / "expect.json").read_text())[name]
    path = CORPUS / name
    cmd = [a.replace("{tmp}", str(tmp_path)) for a in case["cmd"]]
    if cmd[0].startswith("rootfs-"):
        (tmp_path / "vmlinux").write_bytes(b"k")
        spec = tmp_path / "spec.yaml"
        spec.write_text(
            "name: a/b\nannotations: {unikernelType: linux, hypervisor: qemu}\nkernel: ./vmlinux\n"
            f"rootfs: {{type: {cmd[0].split('-')[1]}, from: {path}}}\n"
        )
        args = ["build", "--backend", "native", "-o", str(tmp_path / "out"), str(spec)]
    elif cmd[0] == "inspect":
        args = ["inspect", str(path)]
    else:
        args = [cmd[0], *cmd[1:], str(path)]
    env = {"URUNIX_NO_NIX": "1"} if not name.endswith(".nix") else {}
    for extra in ([], ["--debug"]):
        r = subprocess.run(
            [sys.executable, "-m", "urunix", *extra, *args],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT / "generator"), **env},
            timeout=120,
        )
        assert r.returncode == case["exit"], (case["why"], r.returncode, r.stderr[-1500:])
        if r.returncode == 2 and not extra:
            # after the build's step lines ("urunix: ...", one per step off a terminal), the message
            msg = "".join(ln for ln in r.stderr.splitlines(True) if not ln.startswith("urunix: "))
            assert "Traceback" not in r.stderr and msg.startswith("error:"), r.stderr[-1500:]
        if r.returncode == 2 and extra:
            assert "Traceback" in r.stderr  # --debug shows where
    assert not (tmp_path / "out").exists() or case["exit"] == 0


# ------------------------------------------------------------------ resource bounds

PEAK = (
    "import atexit, os, sys\n"
    "def _peak():\n"
    "    with open('/proc/self/status') as f:\n"
    "        hwm = [l.split()[1] for l in f if l.startswith('VmHWM:')][0]\n"
    "    with open(os.environ['URUNIX_PEAK_FILE'], 'w') as f:\n"
    "        f.write(hwm)\n"
    "atexit.register(_peak)\n"
)
URUNIX = PEAK + "from urunix.cli import main\nsys.exit(main(sys.argv[1:]))\n"


def measured(argv: list[str], env: dict | None = None, timeout: float = 300) -> tuple[int, float, float, str]:
    """(exit code, seconds, peak RSS in MiB, stderr) of a Python subprocess
    (`-c` code that starts with PEAK), killed after `timeout` s: a guard
    against hangs, not a speed target (those are `python -m benchmarks`'s,
    never a test's, whose wall time depends on the machine). The peak is the process's own VmHWM:
    wait4's ru_maxrss would report the forking pytest's size (Linux keeps the
    parent's high-water mark across a vfork+exec)."""
    import tempfile

    fd, peak = tempfile.mkstemp(prefix="peak-")
    os.close(fd)
    t = time.monotonic()
    try:
        r = subprocess.run(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
            env={**os.environ, "PYTHONPATH": str(ROOT / "generator"), "URUNIX_PEAK_FILE": peak, **(env or {})},
        )
        secs = time.monotonic() - t
        kib = int(Path(peak).read_text() or 0)
    finally:
        os.unlink(peak)
    return r.returncode, secs, kib / 1024, r.stderr


def urunix_argv(*args: str) -> list[str]:
    return [sys.executable, "-c", URUNIX, *args]


def _gzip_zeros(path: Path, nbytes: int) -> None:
    """A layer holding one file of `nbytes` zeros, gzip'd, streamed (tiny on disk)."""
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as gz:
        ti = tarfile.TarInfo("zeros")
        ti.size = nbytes
        gz.write(ti.tobuf(tarfile.PAX_FORMAT))
        block = bytes(1 << 20)
        for _ in range(nbytes >> 20):
            gz.write(block)
        gz.write(bytes(1024))


def _archive_with_layer_file(d: Path, layer_file: Path) -> Path:
    import hashlib

    h = hashlib.sha256()
    with open(layer_file, "rb") as f:
        for c in iter(lambda: f.read(1 << 20), b""):
            h.update(c)
    cfg = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/x"]},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + h.hexdigest()]},
        }
    ).encode()
    out = d / "img.tar"
    with tarfile.open(out, "w") as t:
        t.add(layer_file, arcname="layer.tar")
        for n, b in (
            ("config.json", cfg),
            ("manifest.json", json.dumps([{"Config": "config.json", "Layers": ["layer.tar"]}]).encode()),
        ):
            ti = tarfile.TarInfo(n)
            ti.size = len(b)
            t.addfile(ti, io.BytesIO(b))
    return out


FLATTEN = PEAK + (
    "from urunix.rootfs.flatten import flatten\n"
    "from urunix.errors import SpecError\n"
    "try:\n    f = flatten(sys.argv[1], sys.argv[2]); print(len(f.members)); f.close()\n"
    "except SpecError as e:\n    print(e.render(), file=sys.stderr); sys.exit(2)\n"
)


@pytest.mark.slow
def test_gzip_bomb_layer(tmp_path):
    """256 MiB of zeros in a ~0.25 MiB gzip layer: inspect streams it, flatten
    unpacks it to its scratch directory (then removes it), both with a small
    peak RSS."""
    _gzip_zeros(tmp_path / "layer.tgz", 256 << 20)
    assert (tmp_path / "layer.tgz").stat().st_size < 1 << 20
    img = _archive_with_layer_file(tmp_path, tmp_path / "layer.tgz")
    code, secs, rss, err = measured(urunix_argv("inspect", str(img)))
    assert code == 1 and "Traceback" not in err and rss < 150, (code, secs, rss, err[-500:])
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    code, secs, rss, err = measured([sys.executable, "-c", FLATTEN, str(img), str(scratch)])
    assert code == 0 and rss < 150, (code, secs, rss, err[-500:])
    assert os.listdir(scratch) == [], "flatten left its unpacked layer behind"


def _million_entry_layer(path: Path, n: int) -> None:
    """n empty files in 1000 directories, as a gzip'd tar, headers written
    directly (tarfile.TarInfo.tobuf is too slow for a million)."""

    def header(name: bytes) -> bytes:
        h = bytearray(512)
        h[0 : len(name)] = name
        h[100:108] = b"0000644\0"
        h[108:116] = b"0000000\0"
        h[116:124] = b"0000000\0"
        h[124:136] = b"00000000000\0"
        h[136:148] = b"00000000001\0"
        h[148:156] = b" " * 8
        h[156:157] = b"0"
        h[257:265] = b"ustar\x0000"
        h[148:156] = b"%06o\0 " % sum(h)
        return bytes(h)

    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as gz:
        buf = []
        for i in range(n):
            buf.append(header(b"d%d/f%d" % (i % 1000, i)))
            if len(buf) == 4096:
                gz.write(b"".join(buf))
                buf = []
        gz.write(b"".join(buf) + bytes(1024))


@pytest.mark.slow
def test_a_million_entries(tmp_path):
    """A layer of 1,000,000 entries (a few MiB on disk): flattened in bounded
    time, with memory that grows with the entries' count (the tree must be
    held) but not with tarfile's bookkeeping: under 900 MiB."""
    _million_entry_layer(tmp_path / "layer.tgz", 1_000_000)
    assert (tmp_path / "layer.tgz").stat().st_size < 32 << 20
    img = _archive_with_layer_file(tmp_path, tmp_path / "layer.tgz")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    code, secs, rss, err = measured([sys.executable, "-c", FLATTEN, str(img), str(scratch)], timeout=900)
    assert code == 0 and rss < 900, (code, secs, rss, err[-500:])
    assert os.listdir(scratch) == []


def test_inspect_memory_does_not_grow_with_entries(tmp_path):
    """`urunix inspect` streams layers: 200,000 entries cost no more memory
    than 2,000 (tarfile keeps every TarInfo unless told not to)."""
    rss = {}
    for n in (2_000, 200_000):
        d = tmp_path / str(n)
        d.mkdir()
        _million_entry_layer(d / "layer.tgz", n)
        img = _archive_with_layer_file(d, d / "layer.tgz")
        code, secs, rss[n], err = measured(urunix_argv("inspect", str(img)))
        assert code == 1 and "Traceback" not in err, err
    assert rss[200_000] < rss[2_000] + 30, rss


def test_a_million_members_in_the_archive_itself(tmp_path):
    """The outer archive (not a layer) with a million members is refused
    early: an image archive holds a few files per layer."""
    p = tmp_path / "outer.tar"
    with open(p, "wb") as f:
        f.write(b"")
    _million_entry_layer(tmp_path / "outer.tgz", 1_000_000)
    with gzip.open(tmp_path / "outer.tgz") as src, open(p, "wb") as out:
        while chunk := src.read(1 << 20):
            out.write(chunk)
    code, secs, rss, err = measured(urunix_argv("inspect", str(p)))
    assert code == 2 and "more than" in err and rss < 200, (code, secs, rss, err[-300:])


@pytest.mark.parametrize(
    "kind,text,env",
    [
        ("yaml-flow", "name: " + "[" * 100_000 + "]" * 100_000 + "\n", {}),
        ("yaml-map", "name: " + "{a: " * 50_000 + "1" + "}" * 50_000 + "\n", {}),
        (
            "yaml-aliases",
            "a: &a ["
            + ",".join(["x"] * 50)
            + "]\n"
            + "".join(f"{c}: &{c} [" + ",".join([f"*{p}"] * 50) + "]\n" for p, c in zip("abcdefgh", "bcdefghi"))
            + "name: *i\n",
            {},
        ),
        ("nix-sets-builtin", "{ name = " + "{ a = " * 100_000 + "1;" + " };" * 99_999 + " }; }\n", {"URUNIX_NO_NIX": "1"}),
        ("nix-lists-builtin", "{ name = " + "[ " * 100_000 + "]" * 100_000 + "; }\n", {"URUNIX_NO_NIX": "1"}),
        ("nix-lists-nix", "{ name = " + "[ " * 2_000 + "]" * 2_000 + "; }\n", {}),
        ("nix-sets-nix", "{ name = " + "{ a = " * 100_000 + "1;" + " };" * 99_999 + " }; }\n", {}),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 30 else "",
)
def test_deep_specs_are_refused_within_bounds(tmp_path, kind, text, env):
    if kind.endswith("-nix"):
        import shutil

        if not shutil.which("nix-instantiate"):
            pytest.skip("nix is not installed")
    p = tmp_path / ("spec.nix" if "nix" in kind else "spec.yaml")
    p.write_text(text)
    code, secs, rss, err = measured(urunix_argv("validate", str(p)), env=env)
    assert code == 2 and "Traceback" not in err, (code, err[-800:])
    assert rss < 400, (secs, rss)
