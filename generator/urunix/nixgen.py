"""Image -> a standalone Nix expression directory, and `nix-build` of it.

`generate(image, source_spec_path, out_dir)` renders templates/*.nix.j2 into

    OUT/default.nix        the image, as a call to the urunix Nix library
    OUT/nix/               a copy of the library (nix/*.nix), with
                           its own sources.nix, helpers/{urunc_json,tree}.py and
                           contract.json: the directory needs nothing else
    OUT/files/             copies of the files the spec names

so `nix-build OUT` builds the same image as `urunix build`, on any machine,
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
from typing import Any, Iterable

from . import __version__
from .errors import BuildError, MissingTool
from .resources import CONTRACT, HELPERS, nix_dir, templates_dir
from .spec import Image

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
    inner = "".join(
        f"{_pad(level + 1)}{nix_attr_name(k)} = {nix_value(v, level + 1)};\n" for k, v in sorted(attrs.items())
    )
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
    return env


def _copy_file_entry(path: Path, dest_dir: Path, used: set[str]) -> str:
    """Copy a spec file (or directory) into dest_dir under a unique, readable
    name; returns that name."""
    base = path.name or "file"
    name, n = base, 1
    while name in used:
        n += 1
        name = f"{n}-{base}"
    used.add(name)
    dest = dest_dir / name
    if path.is_dir():
        shutil.copytree(path, dest, symlinks=True)
    else:
        shutil.copyfile(path, dest)
        os.chmod(dest, 0o755 if os.stat(path).st_mode & 0o111 else 0o644)
    return name


def _copy_library(out_dir: Path) -> None:
    lib = out_dir / "nix"
    lib.mkdir(parents=True, exist_ok=True)
    src = nix_dir()
    for p in sorted(src.iterdir()):
        if p.is_file() and p.suffix == ".nix" and p.name != "sources.nix":
            shutil.copyfile(p, lib / p.name)
    (lib / "helpers").mkdir(exist_ok=True)
    for helper in ("urunc_json.py", "tree.py"):
        shutil.copyfile(HELPERS / helper, lib / "helpers" / helper)
    shutil.copyfile(CONTRACT, lib / "contract.json")
    (lib / "sources.nix").write_text(_environment().get_template("sources.nix.j2").render(), encoding="utf-8")


def generate(image: Image, source_spec_path: str | os.PathLike | None, out_dir: str | os.PathLike) -> Path:
    """Write a standalone Nix expression for `image` into out_dir.

    The files the spec names are copied into out_dir/files/ (so the directory
    builds anywhere and holds no path of this machine); the library, its
    helper and the contract into out_dir/nix/. Returns out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files_dir = out / "files"
    if files_dir.exists():
        shutil.rmtree(files_dir)
    files = []
    if image.files:
        files_dir.mkdir()
        used: set[str] = set()
        for f in image.files:
            name = _copy_file_entry(Path(f.path), files_dir, used)
            files.append({"source": f"./files/{name}", "target": f.target})
    _copy_library(out)
    source_name = Path(source_spec_path).name if source_spec_path else "spec"
    text = _environment().get_template("default.nix.j2").render(
        image=image, files=files, source_name=source_name, version=__version__
    )
    tmp = out / "default.nix.tmp"
    tmp.write_text(text, encoding="utf-8", errors="surrogateescape")
    os.replace(tmp, out / "default.nix")
    return out


def nix_build(out_dir: str | os.PathLike, result_path: str | os.PathLike, pkgs_expr: str | None = None,
              extra_args: Iterable[str] = ()) -> Path:
    """`nix-build OUT_DIR -o RESULT` (argv list, no substituters); returns the
    result path. `pkgs_expr` is passed as `--arg pkgs EXPR` (a Nix
    expression, e.g. "import <nixpkgs> { }")."""
    exe = shutil.which("nix-build")
    if exe is None:
        raise MissingTool("nix-build", "apt-get install nix-bin (or see https://nixos.org/download)",
                          "for --backend nix")
    argv = [exe, str(out_dir), "-o", str(result_path)]
    if os.environ.get("URUNIX_NIX_OFFLINE") == "1":
        argv += ["--option", "substituters", ""]   # no binary cache to wait for
    if pkgs_expr is not None:
        argv += ["--arg", "pkgs", pkgs_expr]
    argv += list(extra_args)
    r = subprocess.run(argv, capture_output=True, text=True, errors="replace")
    if r.returncode != 0:
        raise BuildError(f"nix-build failed (exit {r.returncode}):\n{r.stderr[-4000:]}")
    return Path(result_path)


def build_with_nix(image: Image, source_spec_path: str | os.PathLike, result_path: str | os.PathLike,
                   pkgs_expr: str | None = None) -> None:
    """`urunix build --backend nix`: generate into a scratch directory, then
    nix-build it; `result_path` becomes nix-build's result symlink."""
    import tempfile
    with tempfile.TemporaryDirectory(prefix="urunix-nix-") as tmp:
        generate(image, source_spec_path, tmp)
        nix_build(tmp, result_path, pkgs_expr)
