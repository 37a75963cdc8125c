"""Image -> a standalone Nix expression directory, and `nix-build` of it.

`generate(image, source_spec_path, out_dir)` renders templates/*.nix.j2 into

    OUT/default.nix        the image, as a call to the urunix Nix library
    OUT/nix/               a copy of the library (nix/*.nix), with
                           its own sources.nix, helpers/tree.py and
                           contract.json, and nix/package/, a copy of the urunix
                           package (*.py, *.json) that helpers/nix_check.py
                           (the validator, in the metadata derivation) and
                           helpers/build_rootfs.py run: the directory needs
                           nothing else
    OUT/files/             copies of the files the spec names, and of the
                           rootfs/kernel/init sources (directories, files,
                           image archives, OCI layouts)

so `nix-build OUT` builds an image with the content and config of
`urunix build`'s, on any machine,
without Python on the host (python3 from pkgs runs inside derivations only).
The output names its source spec by base name only and holds no absolute path
of this machine.

Every user string reaches the Nix text through one function, `nix_string`
(registered as the jinja2 filter `nix`): a Nix string literal that evaluates
to exactly the input bytes, never interpolated.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterable, Protocol

from . import __version__
from .errors import BuildError, MissingTool
from .resources import CONTRACT, HELPERS, nix_dir, templates_dir
from .errors import SpecError
from .spec import Extract, Image, Origin

INDENT = "  "
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_'-]*$")
_KEYWORDS = {"if", "then", "else", "assert", "with", "let", "in", "rec", "inherit", "or"}
_ESCAPES = {"\\": "\\\\", '"': '\\"', "$": "\\$", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def nix_string(value: Any) -> str:
    """A Nix double-quoted string literal that evaluates to `value`, byte for byte.

    Escapes backslash, double quote, newline, carriage return and tab, and
    every `$` (as `\\$`), so neither `${...}` nor `$${` can ever interpolate.
    Nix strings cannot hold NUL: that is an error, not a silent change."""
    if not isinstance(value, str):
        raise TypeError(f"nix_string takes a str, not {type(value).__name__}")
    if "\0" in value:
        raise ValueError("a Nix string cannot hold a NUL byte")
    return '"' + "".join(_ESCAPES.get(c, c) for c in value) + '"'


def nix_attr_name(name: str) -> str:
    """An attribute name: bare when it is a plain identifier, else quoted."""
    if _IDENT.match(name) and name not in _KEYWORDS:
        return name
    return nix_string(name)


def _pad(level: int) -> str:
    return INDENT * level


def nix_value(value: Any, level: int = 0) -> str:
    """Plain data (str, bool, int, None, list, dict) as Nix text, laid out
    the way nixfmt does: empty `[ ]` / `{ }`, a one-element list of a scalar
    on one line, everything else one item per line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return nix_string(value)
    if isinstance(value, (list, tuple)):
        return nix_list(value, level)
    if isinstance(value, dict):
        return nix_attrs(value, level)
    raise TypeError(f"cannot write {type(value).__name__} as Nix")


def nix_list(items: Iterable[Any] | None, level: int = 0) -> str:
    if items is None:
        return "null"
    items = list(items)
    if not items:
        return "[ ]"
    if len(items) == 1 and not isinstance(items[0], (list, tuple, dict)):
        return f"[ {nix_value(items[0], level)} ]"
    inner = "".join(f"{_pad(level + 1)}{nix_value(x, level + 1)}\n" for x in items)
    return f"[\n{inner}{_pad(level)}]"


def nix_attrs(attrs: dict[str, Any] | None, level: int = 0) -> str:
    if attrs is None:
        return "null"
    if not attrs:
        return "{ }"
    inner = "".join(f"{_pad(level + 1)}{nix_attr_name(k)} = {nix_value(v, level + 1)};\n" for k, v in sorted(attrs.items()))
    return f"{{\n{inner}{_pad(level)}}}"


def nix_files(files: list[dict[str, str]], level: int = 0) -> str:
    """The `files` list: [ { source = "./files/x"; target = "/y"; } ... ]."""
    if not files:
        return "[ ]"
    out = "[\n"
    for f in files:
        out += f"{_pad(level + 1)}{{\n"
        out += f"{_pad(level + 2)}source = {nix_string(f['source'])};\n"
        out += f"{_pad(level + 2)}target = {nix_string(f['target'])};\n"
        out += f"{_pad(level + 1)}}}\n"
    return out + f"{_pad(level)}]"


def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["nix"] = nix_string
    env.filters["nix_list"] = nix_list
    env.filters["nix_attrs"] = nix_attrs
    env.filters["nix_files"] = nix_files
    env.filters["nix_value"] = nix_value
    return env


def _copy_file_entry(
    path: Path, dest_dir: Path, used: set[str], base: str | None = None, exclude: frozenset[str] = frozenset()
) -> str:
    """Copy a spec file (or directory, without `exclude`: paths relative to
    it) into dest_dir under a unique, readable name; returns that name."""
    base = base or path.name or "file"
    name, n = base, 1
    while name in used:
        n += 1
        name = f"{n}-{base}"
    used.add(name)
    dest = dest_dir / name
    if path.is_dir():
        # never urunix's own files: build temporaries, nor the generated
        # directory itself when the spec copies a directory holding it; nor
        # what the entry excludes (.dockerignore)
        own = os.path.realpath(dest_dir.parent)

        def ignore(d: str, names: list[str]) -> list[str]:
            rel = os.path.relpath(d, path)
            return [
                n
                for n in names
                if n.startswith(".urunix-tmp-")
                or os.path.realpath(os.path.join(d, n)) == own
                or (n if rel == "." else f"{rel}/{n}") in exclude
            ]

        shutil.copytree(path, dest, symlinks=True, ignore=ignore)
    else:
        shutil.copyfile(path, dest)
        os.chmod(dest, 0o755 if os.stat(path).st_mode & 0o111 else 0o644)
    return name


def _copy_package(dest: Path) -> None:
    """The urunix package's *.py and *.json (not _data/, not caches)."""
    pkg = HELPERS.parent
    for p in sorted(pkg.rglob("*")):
        rel = p.relative_to(pkg)
        if p.is_file() and p.suffix in (".py", ".json") and "__pycache__" not in rel.parts and rel.parts[0] != "_data":
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, dest / rel)


def _copy_library(out_dir: Path, package: bool = False) -> None:
    lib = out_dir / "nix"
    lib.mkdir(parents=True, exist_ok=True)
    src = nix_dir()
    for p in sorted(src.iterdir()):
        if p.is_file() and p.suffix == ".nix" and p.name != "sources.nix":
            shutil.copyfile(p, lib / p.name)
    (lib / "helpers").mkdir(exist_ok=True)
    for helper in ("tree.py", "base_image.py", "image_writer.py", "build_rootfs.py", "stream_image.py", "script.py"):
        shutil.copyfile(HELPERS / helper, lib / "helpers" / helper)
    shutil.copyfile(CONTRACT, lib / "contract.json")
    if (lib / "package").exists():
        shutil.rmtree(lib / "package")
    if package:
        _copy_package(lib / "package")
    (lib / "sources.nix").write_text(_environment().get_template("sources.nix.j2").render(package=package), encoding="utf-8")


def unsupported(image: Image) -> str | None:
    """Why the Nix backend cannot build `image`, or None. (`--backend auto`
    should then use the native builder.)"""
    for what, origin in (
        ("rootfs.from", image.rootfs.origin if image.rootfs is not None else None),
        ("kernel.from", image.kernel.origin if image.kernel is not None else None),
        ("init.from", image.init.origin if image.init is not None else None),
    ):
        if origin is not None and origin.kind == "registry":
            return f"{what}: a registry image ({origin.location}) is not supported by the Nix backend yet"
        if origin is not None and origin.kind == "dockerfile":
            return f"{what}: a rootfs built from a Dockerfile needs the Docker Engine, not Nix"
    r = image.rootfs
    if r is not None and r.type == "raw" and r.origin.kind == "image":
        return "rootfs: type raw from an image is not supported by the Nix backend yet"
    if r is not None and any(f.target == "/" for f in r.include):
        return "rootfs.include: a whole directory at / (bunny's `- dir:/`) is not supported by the Nix backend yet"
    if image.tag != image.tag.lower():
        return f"the tag {image.tag!r} has upper-case letters, which the Nix backend (as dockerTools) does not keep"
    from .overlap import parents

    trees = {f.target: f for f in image.files if f.path.is_dir()}
    for f in image.files:
        inside = next((trees[p] for p in parents(f.target) if p in trees), None)
        if inside is not None:
            # the Nix library writes the files layer after the kernel's and
            # has no precedence between overlapping entries (issue 11)
            return (
                f"files: {f.field} lies inside the directory that {inside.field} copies; "
                "overlapping entries are not supported by the Nix backend yet"
            )
    return None


class _Copy(Protocol):
    """How _resolved names a source: a copy's name in OUT/files/ (_Copier),
    or the host path itself (resolved_json)."""

    def __call__(self, path: str | Path, suffix: str | None = None, avoid: str | None = None) -> str: ...


class _Copier:
    """Copies sources into OUT/files/ under unique names, once each."""

    def __init__(self, files_dir: Path):
        self.dir = files_dir
        self.used: set[str] = set()
        self.done: dict[tuple[str, ...], str] = {}  # (path, suffix, *exclude) -> name

    def __call__(
        self, path: str | Path, suffix: str | None = None, avoid: str | None = None, exclude: frozenset[str] = frozenset()
    ) -> str:
        path = Path(path)
        key = (str(path.absolute()), suffix or "", *sorted(exclude))
        if key in self.done:
            return self.done[key]
        self.dir.mkdir(exist_ok=True)
        base = path.name or "file"
        if avoid and base.endswith(avoid):
            base += ".bin"  # a plain file named *.tar would read as an image archive in Nix
        if suffix and not base.endswith(suffix):
            base += suffix  # an image archive not named *.tar would read as a plain file in Nix
        name = _copy_file_entry(path, self.dir, self.used, base, exclude)
        self.done[key] = f"./files/{name}"
        return self.done[key]


def _origin_text(o: Origin, copy: _Copy) -> str:
    if o.kind == "scratch":
        return "scratch"
    if o.kind == "image" and os.path.isdir(o.location):
        return "oci:" + copy(o.location)
    if o.kind == "image":
        return copy(o.location, suffix=".tar")
    return copy(o.location)


def _source(x: Extract, copy: _Copy) -> dict[str, str]:
    """A kernel or init as the Nix library reads it: { from; path; }."""
    if x.origin.kind == "file":
        return {"from": copy(x.origin.location, avoid=".tar"), "path": x.target}
    return {"from": _origin_text(x.origin, copy), "path": x.inner or x.target}


def _resolved(image: Image, copy: _Copy) -> dict[str, Any]:
    """The rootfs/kernel/init fields of the normalized spec (with the
    defaults validate.py resolved), sources copied into OUT/files/."""
    out: dict[str, Any] = {}
    r = image.rootfs
    if r is not None:
        rootfs: dict[str, Any] = {
            "type": r.type,
            "from": _origin_text(r.origin, copy),
            "include": [{"source": copy(f.path), "target": f.target} for f in r.include],
        }
        if r.type != "raw":
            rootfs["path"] = r.target
        if r.type == "block":
            rootfs["size"], rootfs["fsType"] = r.size, r.fs_type
        if r.type == "initrd":
            rootfs["compression"] = r.compression
        out["rootfs"] = rootfs
    if image.kernel is not None:
        out["kernel"] = _source(image.kernel, copy)
    if image.init is not None:
        out["init"] = _source(image.init, copy)
    return out


def resolved_json(image: Image) -> dict[str, Any]:
    """Image.to_json() plus the resolved rootfs/kernel/init (with the host
    paths the Python side resolved, nothing copied) and workdir: the
    normalized spec, as `urunix validate --json` prints it."""
    data = image.to_json()
    data["workdir"] = image.workdir
    data["urunc"] = list(image.targets)  # the releases it was judged for
    data.update(_resolved(image, lambda path, suffix=None, avoid=None: str(path)))
    return data


def generate(image: Image, source_spec_path: str | os.PathLike | None, out_dir: str | os.PathLike) -> Path:
    """Write a standalone Nix expression for `image` into out_dir.

    The files the spec names are copied into out_dir/files/ (so the directory
    builds anywhere and holds no path of this machine); the library, its
    helper and the contract into out_dir/nix/. Returns out_dir."""
    why = unsupported(image)
    if why:
        raise SpecError(why, hint="build this spec with `urunix build --backend native`")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files_dir = out / "files"
    if files_dir.exists():
        shutil.rmtree(files_dir)
    copy = _Copier(files_dir)
    files = [{"source": copy(f.path, exclude=f.exclude), "target": f.target} for f in image.files]
    resolved = _resolved(image, copy)
    _copy_library(out, package=True)  # the metadata derivation runs the validator
    # The name lands in a Nix comment: escaped, a newline in it cannot end
    # the comment and start code.
    source_name = Path(source_spec_path).name if source_spec_path else "spec"
    source_name = source_name.encode("unicode_escape", "backslashreplace").decode("ascii")
    text = (
        _environment()
        .get_template("default.nix.j2")
        .render(image=image, files=files, source_name=source_name, version=__version__, resolved=resolved)
    )
    tmp = out / "default.nix.tmp"
    tmp.write_text(text, encoding="utf-8", errors="surrogateescape")
    os.replace(tmp, out / "default.nix")
    return out


def _nix_build_exe() -> str:
    exe = shutil.which("nix-build")
    if exe is None:
        raise MissingTool("nix-build", "apt-get install nix-bin (or see https://nixos.org/download)", "for --backend nix")
    return exe


def nix_build(
    out_dir: str | os.PathLike,
    result_path: str | os.PathLike,
    pkgs_expr: str | None = None,
    extra_args: Iterable[str] = (),
    scratch: str | None = None,
) -> Path:
    """`nix-build OUT_DIR -o RESULT` (argv list, no substituters); returns the
    result path. `pkgs_expr` is passed as `--arg pkgs EXPR` (a Nix
    expression, e.g. "import <nixpkgs> { }")."""
    exe = _nix_build_exe()
    argv = [exe, str(out_dir), "-o", str(result_path)]
    if os.environ.get("URUNIX_NIX_OFFLINE") == "1":
        argv += ["--option", "substituters", ""]  # no binary cache to wait for
    if pkgs_expr is not None:
        argv += ["--arg", "pkgs", pkgs_expr]
    argv += list(extra_args)
    r = subprocess.run(argv, capture_output=True, text=True, errors="replace")
    if r.returncode != 0:
        from .nixenv import explain_failure

        raise BuildError(f"nix-build failed (exit {r.returncode}):\n" + explain_failure(r.stderr[-4000:], scratch))
    return Path(result_path)


def build_with_nix(
    image: Image, source_spec_path: str | os.PathLike, result_path: str | os.PathLike, pkgs_expr: str | None = None
) -> None:
    """`urunix build --backend nix`: generate into a scratch directory, then
    nix-build it; `result_path` becomes nix-build's result symlink."""
    import tempfile

    _nix_build_exe()  # first: without Nix, <nixpkgs> is moot
    if pkgs_expr is None:
        from .nixenv import NIXPKGS_HINT, NIXPKGS_MISSING, has_nixpkgs

        if not has_nixpkgs():
            raise SpecError(f"--backend nix: {NIXPKGS_MISSING}", field="--backend", value="nix", hint=NIXPKGS_HINT)
    with tempfile.TemporaryDirectory(prefix="urunix-nix-") as tmp:
        generate(image, source_spec_path, tmp)
        nix_build(tmp, result_path, pkgs_expr, scratch=tmp)
