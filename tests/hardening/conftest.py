"""Fixtures of the hardening suite (the helpers live in hsupport.py and
hostile.py, named so that they never clash with tests/conftest.py)."""

from __future__ import annotations

import tempfile

import pytest

from hsupport import Guard


@pytest.fixture
def guard(tmp_path) -> Guard:
    g = Guard(tmp_path)
    yield g
    tempfile.tempdir = None
