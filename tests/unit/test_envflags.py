"""envflags.py: every on/off variable reads one way; `=0` is off everywhere."""

from __future__ import annotations

import pytest

from urunix.envflags import flag
from urunix.loaders import argsnix
from urunix.native import cache


@pytest.mark.parametrize("value", ["", "0", "false", "No", " off ", "FALSE"])
def test_off_values(monkeypatch, value):
    monkeypatch.setenv("URUNIX_X", value)
    assert flag("URUNIX_X") is False


@pytest.mark.parametrize("value", ["1", "yes", "true", "on", "anything"])
def test_on_values(monkeypatch, value):
    monkeypatch.setenv("URUNIX_X", value)
    assert flag("URUNIX_X") is True


def test_unset_is_off(monkeypatch):
    monkeypatch.delenv("URUNIX_X", raising=False)
    assert flag("URUNIX_X") is False


def test_zero_means_off_for_nix_and_cache_alike(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    (tmp_path / "nix-instantiate").write_text("#!/bin/sh\n")
    (tmp_path / "nix-instantiate").chmod(0o755)
    monkeypatch.setenv("URUNIX_NO_NIX", "0")
    assert argsnix.nix_available() == str(tmp_path / "nix-instantiate")  # Nix stays on
    monkeypatch.setenv("URUNIX_NO_NIX", "1")
    assert argsnix.nix_available() is None
    monkeypatch.setenv("URUNIX_NO_CACHE", "0")
    assert cache.enabled()  # the cache stays on
    monkeypatch.setenv("URUNIX_NO_CACHE", "1")
    assert not cache.enabled()
    monkeypatch.setenv("URUNIX_CACHE_VERIFY", "0")
    assert not cache.LayerCache(str(tmp_path)).verify
