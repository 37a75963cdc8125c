"""args.nix (the bimanix/bunix schema): `{ name; tag; files; annotations; }`
plus urunix's optional fields.

With Nix installed (and URUNIX_NO_NIX unset or empty), the file is evaluated
by Nix itself, so any Nix works; the built-in data reader then runs only to
find line numbers (Nix reports none for values), when the file is plain data.
Without Nix, the built-in reader loads the data subset and refuses the rest.

Path literals (`kernel.from = ./vmlinux;`): `--json` would copy each one into
the Nix store. Instead a small wrapper turns every path value into its
absolute path string (`toString`, no copy, no store write) and urunix sees a
`NixPath`, exactly what the built-in reader yields for the same file.
Evaluation runs with `--readonly-mode` and no substituters, so it never
writes to the store or touches the network."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ..envflags import flag
from ..errors import SpecError
from ..spec import Spec, display_path
from . import nixdata
from ._common import build_spec, read_text

NIX_TIMEOUT = 120  # seconds

# Paths become {__urunixNixPath = "/abs";}; derivations (anything with an
# outPath) are left for --json to print as their store path; a top-level
# function is called with {} the way nix-instantiate auto-calls files.
_WRAPPER = """{ file }:
let
  conv = v:
    let t = builtins.typeOf v; in
    if t == "path" then { __urunixNixPath = toString v; }
    else if t == "set" then (if v ? outPath then v else builtins.mapAttrs (n: conv) v)
    else if t == "list" then map conv v
    else v;
  top = import (/. + file);
in conv (if builtins.isFunction top then top { } else top)
"""

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def nix_available() -> str | None:
    """The nix-instantiate to use, or None (absent, or URUNIX_NO_NIX set)."""
    if flag("URUNIX_NO_NIX"):
        return None
    return shutil.which("nix-instantiate")


def load(path: Path) -> Spec:
    text = read_text(path)
    nix = nix_available()
    data: Any = None
    if nix:
        data = evaluate(nix, path)
    if data is None:
        data, lines = nixdata.read(text, file=path)
    else:
        try:
            _, lines = nixdata.read(text, file=path)
        except SpecError:
            lines = {}  # full Nix: no line numbers, the values are still right
    return build_spec(data, lines, path, "args.nix")


def evaluate(nix: str, path: Path) -> Any:
    """The file's value as evaluated by Nix, or None if Nix cannot be run at all."""
    argv = [
        nix,
        "--eval",
        "--strict",
        "--json",
        "--readonly-mode",
        "--option",
        "substituters",
        "",
        "--argstr",
        "file",
        str(path.absolute()),
        "--expr",
        _WRAPPER,
    ]
    env = dict(os.environ, NO_COLOR="1", TERM="dumb")
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=NIX_TIMEOUT, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise SpecError(
            f"Nix did not finish evaluating the file within {NIX_TIMEOUT} s",
            file=display_path(path),
            hint="does it import something large? set URUNIX_NO_NIX=1 to use the built-in reader for a plain-data args.nix",
        ) from None
    except OSError:
        return None
    if proc.returncode != 0:
        if "syntax error" in proc.stderr:
            # Nix points at the token after a forgotten `;` (the next line);
            # the built-in reader says "expected `;`" where it belongs
            try:
                nixdata.read(read_text(path), file=path)
            except SpecError as e:
                if e.problem.message.startswith("expected"):
                    raise e from None
        raise nix_error(proc.stderr, path)
    try:
        value = json.loads(proc.stdout)
    except RecursionError:
        value = None
    except ValueError:
        raise SpecError("Nix printed something that is not JSON", file=display_path(path), value=proc.stdout[:200]) from None
    if value is None or _too_deep(value):
        # the built-in reader and the YAML loader refuse the same depth
        raise SpecError(
            f"values are nested more than {nixdata.MAX_DEPTH} levels deep",
            file=display_path(path),
            hint="a spec is a few levels of attribute sets and lists",
        )
    return _from_json(value)


def _too_deep(value: Any, limit: int = nixdata.MAX_DEPTH) -> bool:
    """Whether plain data nests more than `limit` levels (checked without recursion)."""
    todo = [(value, 0)]
    while todo:
        v, depth = todo.pop()
        if depth > limit:
            return True
        if isinstance(v, dict):
            todo.extend((x, depth + 1) for x in v.values())
        elif isinstance(v, list):
            todo.extend((x, depth + 1) for x in v)
    return False


def nix_error(stderr: str, path: Path) -> SpecError:
    """Nix's own message, without colours, pointing at our file's line if Nix named it."""
    text = _ANSI.sub("", stderr).strip()
    lines = [ln for ln in text.splitlines() if not ln.startswith("warning:")]
    text = "\n".join(lines).strip()
    if text.startswith("error: "):
        text = text[len("error: ") :]
    line = None
    target = str(path.absolute())
    for m in re.finditer(r"(?:at |^)(/[^\s:]+):(\d+):(\d+)", text, re.M):
        if m.group(1) == target:
            line = int(m.group(2))
            break
    return SpecError(
        f"Nix could not evaluate the file: {text}" if text else "Nix could not evaluate the file (no message)",
        file=display_path(path),
        line=line,
        hint="fix the Nix expression; set URUNIX_NO_NIX=1 to try the built-in plain-data reader instead",
    )


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__urunixNixPath"}:
            return nixdata.NixPath(value["__urunixNixPath"])
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value
