"""What the helpers share when a Nix derivation runs them by path
(`python3 helper.py IN.json OUT`): the command line, loading the urunix
package they sit in, and a failure told to the derivation log.

stdlib only, and it must sit beside every helper that a derivation runs
(nix/image.nix copies it with them; so does `urunix generate`)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from typing import Any, Callable


def load_package() -> None:
    """Import urunix from the directory holding helpers/ (a store path with
    a hash in its name, so a plain sys.path entry would not do)."""
    if "urunix" in sys.modules:
        return
    pkg = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location("urunix", os.path.join(pkg, "__init__.py"), submodule_search_locations=[pkg])
    assert spec is not None and spec.loader is not None  # a .py path always gets a source loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["urunix"] = module
    spec.loader.exec_module(module)


def debug() -> bool:
    """URUNIX_DEBUG read as urunix/envflags.py reads it (this file cannot
    import the package: the base archive's helpers run without it)."""
    return os.environ.get("URUNIX_DEBUG", "").strip().lower() not in ("", "0", "false", "no", "off")


def run(argv: list[str], usage: str, work: Callable[[Any, str], int | None], path_var: str = "") -> int:
    """`helper.py IN.json OUT` -> work(IN's JSON, OUT), its exit code (None: 0).

    `path_var`: IN.json may instead come in that environment variable
    (passAsFile), with OUT alone on the command line. Nix strings are
    bytes, so IN's text that is not UTF-8 is kept (surrogateescape). A
    wrong command line exits 2; a failure exits 1 with one line, the
    reason: a derivation log wants it, not a traceback (URUNIX_DEBUG on:
    the traceback)."""
    name = os.path.basename(argv[0])
    if len(argv) == 2 and path_var and os.environ.get(path_var):
        argv = [argv[0], os.environ[path_var], argv[1]]
    if len(argv) != 3:
        print(f"usage: {name} {usage}", file=sys.stderr)
        return 2
    with open(argv[1], "rb") as f:
        doc = json.loads(f.read().decode("utf-8", "surrogateescape"))
    try:
        return work(doc, argv[2]) or 0
    except Exception as e:
        if debug():
            raise
        print(f"{name}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
