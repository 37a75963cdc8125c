"""Stdlib-only helpers. Each runs as `python3 helper.py ...` inside a Nix
derivation and is imported by the native builder: one truth for both."""
