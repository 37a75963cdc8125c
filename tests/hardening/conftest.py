"""Fixtures of the hardening suite (the helpers live in hsupport.py and
hostile.py, named so that they never clash with tests/conftest.py)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hsupport import Guard  # noqa: E402


@pytest.fixture
def guard(tmp_path) -> Guard:
    g = Guard(tmp_path)
    yield g
    tempfile.tempdir = None
