"""One reading of urunix's on/off environment variables (URUNIX_NO_NIX,
URUNIX_NO_CACHE, URUNIX_CACHE_VERIFY, URUNIX_DEBUG), so
that `=0` means the same everywhere: off.

Off: unset, empty, or (any case, spaces around ignored) 0, false, no, off.
On: any other value (1, yes, true, ...). The stdlib-only helpers that run
inside Nix derivations cannot import the package; helpers/script.py repeats
this rule for URUNIX_DEBUG only."""

from __future__ import annotations

import os

OFF = frozenset({"", "0", "false", "no", "off"})


def flag(name: str) -> bool:
    """Whether the environment variable `name` is set to an "on" value."""
    return os.environ.get(name, "").strip().lower() not in OFF
