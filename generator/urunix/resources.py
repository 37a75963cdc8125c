"""Find the files urunix ships besides its Python code: the contract, the
helpers, the Nix library and the templates. In a source checkout they sit at
the repository's top level; in an installed wheel, under urunix/_data."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
HELPERS = PACKAGE / "helpers"
CONTRACT = PACKAGE / "contract.json"


def _data_dir(name: str) -> Path:
    installed = PACKAGE / "_data" / name
    if installed.is_dir():
        return installed
    checkout = PACKAGE.parent.parent / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"urunix data directory {name!r} not found (looked in {installed} and {checkout})")


def nix_dir() -> Path:
    return _data_dir("nix")


def templates_dir() -> Path:
    return _data_dir("templates")


@lru_cache(maxsize=None)
def contract() -> dict:
    with open(CONTRACT, encoding="utf-8") as f:
        return json.load(f)
