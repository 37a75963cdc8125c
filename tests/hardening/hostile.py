"""Shared material of the hardening suite: the corpus of hostile strings,
builders of hostile image archives (docker-archive, oci-archive, OCI layout,
made with Python's tarfile, never with urunix itself), a file-system
snapshot to prove nothing was written outside the output, and a guard that
bounds the time of one input (SIGALRM)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import stat
import tarfile
from pathlib import Path

MARKER_DIR = "/tmp"
MARKER_PREFIX = "urunix-pwned-"


def marker(i: int) -> str:
    return f"{MARKER_DIR}/{MARKER_PREFIX}{i}"


def markers() -> list[str]:
    return sorted(str(p) for p in Path(MARKER_DIR).glob(MARKER_PREFIX + "*"))


def _payloads() -> list[str]:
    """Each payload tries, its own way, to run `touch <marker(i)>`: through a
    shell, Nix interpolation or builtins, jinja2, or by breaking out of a
    quoted string in Nix, JSON, YAML or a shell script."""
    raw = [
        "${builtins.readFile /etc/hostname}",
        "${import /tmp/x.nix}",
        "$" + '{(import <nixpkgs> {}).runCommand "p" {} "touch @M@"}',
        "''${touch @M@}",
        "''$ ''${x}",
        "'''",
        "''",
        "'' + builtins.toString (import /etc/passwd) + ''",
        '" + (builtins.readFile /etc/passwd) + "',
        '"; x = builtins.readFile /etc/passwd; y = "',
        "\\${x}",
        "\\\\${x}",
        "$${x}",
        "$$x",
        "$",
        "${",
        "}",
        "`touch @M@`",
        "$(touch @M@)",
        "; touch @M@",
        "&& touch @M@",
        "| touch @M@",
        "|| touch @M@ #",
        "\ntouch @M@\n",
        "\r\ntouch @M@\r\n",
        "'; touch @M@; echo '",
        '"; touch @M@; echo "',
        "a b\tc\nd",
        "\\",
        "\\\\",
        "\\n",
        '\\"',
        "\\$",
        '"',
        "'",
        "{{ 7 * 7 }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{% for x in range(3) %}x{% endfor %}",
        "{# comment #}",
        "{%- raw %}{{ x }}{% endraw -%}",
        "#",
        "/* not a comment */",
        '# \n builtins.abort "x"',
        "<nixpkgs>",
        "./relative/path",
        "/etc/passwd",
        "../../../../etc/shadow",
        "~/.ssh/id_rsa",
        "https://example.invalid/x",
        "{ a = 1; }",
        "[ 1 2 ]",
        "null",
        "true",
        "-1",
        "0x41",
        "1e400",
        "%s%n%x",
        "\x1b[31mred\x1b[0m\x1b]0;title\x07",
        "\t\v\f\x85\xa0\u2028\u2029",
        "\u202etxt.exe",
        "\ufeffbom",
        "ünïcödé ✓ 日本語 🦄",
        "\U0010ffff",
        "a" * 65536,
        "${" * 1000 + "}" * 1000,
        "[red]rich[/] [/] [bold",
        "--help",
        "-rf /",
        "*?[]!",
        "$HOME $PATH ${HOME}",
        "%(x)s {0} {x}",
        "=",
        "a=b=c",
    ]
    return [p.replace("@M@", marker(i)) for i, p in enumerate(raw)]


#: At least 50 hostile strings. None holds NUL or a lone surrogate: those
#: are refused (REFUSED below), everything here must arrive byte for byte.
CORPUS: list[str] = _payloads()

#: Strings urunix must refuse with a clear message (exit code 2).
REFUSED: list[str] = [
    "a\0b",
    "\0",
    "x\0" + "${touch " + marker(900) + "}",
    "\ud800",
    "a\udc80b",
    "\udfff" * 3,
]


def yaml_quote(s: str) -> str:
    """A YAML double-quoted scalar for any string (NUL and surrogates too, as
    \\x00 / \\uD800 escapes: YAML cannot carry them raw)."""
    out = []
    for c in s:
        o = ord(c)
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif o < 0x20 or o == 0x7F or 0x80 <= o <= 0x9F or 0xD800 <= o <= 0xDFFF or o in (0x2028, 0x2029, 0xFEFF):
            out.append(f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def nix_quote(s: str) -> str:
    """A Nix double-quoted string literal, written independently of
    urunix's nixgen.nix_string so one does not test itself."""
    esc = {"\\": "\\\\", '"': '\\"', "$": "\\$", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return '"' + "".join(esc.get(c, c) for c in s) + '"'


# ------------------------------------------------------------ archives


def tar_entry(
    t: tarfile.TarFile,
    name: str,
    kind: str = "file",
    data: bytes = b"",
    link: str = "",
    mode: int | None = None,
    dev: tuple[int, int] = (0, 0),
) -> None:
    ti = tarfile.TarInfo(name)
    ti.type = {
        "file": tarfile.REGTYPE,
        "dir": tarfile.DIRTYPE,
        "symlink": tarfile.SYMTYPE,
        "hardlink": tarfile.LNKTYPE,
        "char": tarfile.CHRTYPE,
        "block": tarfile.BLKTYPE,
        "fifo": tarfile.FIFOTYPE,
    }[kind]
    ti.mode = mode if mode is not None else (0o755 if kind == "dir" else 0o644)
    ti.linkname = link
    ti.devmajor, ti.devminor = dev
    if kind == "file":
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    else:
        t.addfile(ti)


def layer(entries: list[tuple], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """A layer tar from (name, kind, data-or-link) tuples, written verbatim
    (tarfile does not clean names: '../x' and '/x' go in as given)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for e in entries:
            name, kind = e[0], e[1]
            arg = e[2] if len(e) > 2 else b""
            if kind in ("symlink", "hardlink"):
                tar_entry(t, name, kind, link=arg)
            elif kind == "file":
                tar_entry(t, name, kind, data=arg if isinstance(arg, bytes) else arg.encode())
            elif kind in ("char", "block"):
                tar_entry(t, name, kind, dev=arg or (1, 3))
            else:
                tar_entry(t, name, kind)
    return buf.getvalue()


def _config(layers: list[bytes], config: dict | None) -> dict:
    # (diff_ids of gzip layers should hash the plain tar; urunix does not
    # check them, and a bomb is better not unpacked here)
    diff_ids = ["sha256:" + hashlib.sha256(b).hexdigest() for b in layers]
    return {
        "architecture": "amd64",
        "os": "linux",
        "config": config if config is not None else {"Cmd": ["/bin/app"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }


def _blobs(layers: list[bytes], config: dict | None) -> tuple[dict[str, bytes], bytes, bytes]:
    """(blobs by digest, manifest bytes, index bytes) of an OCI image."""
    blobs: dict[str, bytes] = {}

    def put(b: bytes) -> str:
        d = "sha256:" + hashlib.sha256(b).hexdigest()
        blobs[d] = b
        return d

    cfg = json.dumps(_config(layers, config)).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(cfg), "size": len(cfg)},
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if b[:2] == b"\x1f\x8b" else ""),
                "digest": put(b),
                "size": len(b),
            }
            for b in layers
        ],
    }
    mb = json.dumps(manifest).encode()
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": manifest["mediaType"],
                "digest": put(mb),
                "size": len(mb),
                "annotations": {"io.containerd.image.name": "hostile/img:latest"},
            }
        ],
    }
    return blobs, mb, json.dumps(index).encode()


def _add(t: tarfile.TarFile, name: str, data: bytes) -> None:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    t.addfile(ti, io.BytesIO(data))


def docker_archive(path: Path, layers: list[bytes], config: dict | None = None) -> Path:
    """An old-style `docker save` archive: NAME/layer.tar + manifest.json."""
    cfg = json.dumps(_config(layers, config)).encode()
    with tarfile.open(path, "w") as t:
        names = []
        for i, b in enumerate(layers):
            names.append(f"l{i}/layer.tar")
            _add(t, names[-1], b)
        _add(t, "config.json", cfg)
        _add(
            t,
            "manifest.json",
            json.dumps([{"Config": "config.json", "RepoTags": ["hostile/img:latest"], "Layers": names}]).encode(),
        )
    return path


def oci_layout(path: Path, layers: list[bytes], config: dict | None = None) -> Path:
    blobs, _, index = _blobs(layers, config)
    (path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    for d, b in blobs.items():
        (path / "blobs" / "sha256" / d[7:]).write_bytes(b)
    (path / "index.json").write_bytes(index)
    (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return path


def oci_archive(path: Path, layers: list[bytes], config: dict | None = None) -> Path:
    blobs, _, index = _blobs(layers, config)
    with tarfile.open(path, "w") as t:
        _add(t, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add(t, "index.json", index)
        for d, b in blobs.items():
            _add(t, "blobs/sha256/" + d[7:], b)
    return path


FORMS = {
    "docker-archive": (docker_archive, "img.tar", ""),
    "oci-archive": (oci_archive, "img.oci.tar", ""),
    "oci-layout": (oci_layout, "layout", "oci:"),
}


def make_image(form: str, where: Path, layers: list[bytes], config: dict | None = None) -> str:
    """Write the image in `form` under `where`; return the `from` text."""
    fn, name, prefix = FORMS[form]
    fn(where / name, layers, config)
    return f"{prefix}./{name}"


# ------------------------------------------------------------ snapshots


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under root with its kind, mode, size, content hash (files)
    or link target: what 'nothing changed here' means."""
    out: dict[str, tuple] = {}
    root = Path(root)
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    out[rel] = ("file", st.st_mode, st.st_size, hashlib.sha256(f.read()).hexdigest())
            else:
                out[rel] = ("other", st.st_mode)
    return out


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fingerprint(path: Path) -> object:
    """A result's identity: sha256 of a file, or the snapshot of a layout dir."""
    path = Path(path)
    if path.is_dir():
        return snapshot(path)
    return sha256_file(path)


# ------------------------------------------------------------ reading images back


def read_archive(path: Path) -> tuple[dict, dict[str, tarfile.TarInfo], dict[str, bytes]]:
    """(config, {path: TarInfo} of every layer entry, {path: bytes} of the
    files) of a docker-archive or oci-archive, read with tarfile alone."""
    with tarfile.open(path) as t:
        names = {m.name: m for m in t.getmembers()}
        if "manifest.json" in names:
            manifest = json.load(t.extractfile("manifest.json"))[0]
            config = json.load(t.extractfile(manifest["Config"]))
            layers = manifest["Layers"]
        else:
            index = json.load(t.extractfile("index.json"))
            m = json.load(t.extractfile("blobs/sha256/" + index["manifests"][0]["digest"][7:]))
            config = json.load(t.extractfile("blobs/sha256/" + m["config"]["digest"][7:]))
            layers = ["blobs/sha256/" + d["digest"][7:] for d in m["layers"]]
        entries: dict[str, tarfile.TarInfo] = {}
        files: dict[str, bytes] = {}
        for name in layers:
            with tarfile.open(fileobj=t.extractfile(name)) as lt:
                for m in lt.getmembers():
                    key = m.name.rstrip("/")
                    entries[key] = m
                    if m.isfile():
                        files[key] = lt.extractfile(m).read()
    return config, entries, files


def cpio_names(data: bytes) -> dict[str, tuple[int, bytes]]:
    """{name: (mode, data)} of a newc cpio (enough to check an initrd)."""
    out = {}
    pos = 0
    while pos + 110 <= len(data):
        h = data[pos : pos + 110]
        assert h[:6] == b"070701", h[:6]
        f = [int(h[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = f[1], f[6], f[11]
        name = data[pos + 110 : pos + 110 + namesize - 1].decode("utf-8", "surrogateescape")
        pos += 110 + namesize
        pos += -pos % 4
        body = data[pos : pos + size]
        pos += size
        pos += -pos % 4
        if name == "TRAILER!!!":
            break
        out[name] = (mode, body)
    return out


# ------------------------------------------------------------ time bound


class Hang(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise Hang if the block runs longer than `seconds` (main thread only)."""

    def on_alarm(signum, frame):
        raise Hang(f"no result within {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
