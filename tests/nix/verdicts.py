"""The two ways a spec is judged, for tests that compare them: `urunix
validate` (loader + validator, in this process, run from the spec's
directory) and the Nix path (nix/ evaluates the spec against the recording
pkgs, then the metadata derivation's script, helpers/nix_check.py, runs on
exactly the JSON Nix wrote for it). A few tests run real nix-builds too.

A verdict is (ok, text): text is what a user reads -- the problems (or the
warnings of a spec that passes) in `urunix validate`'s words, or Nix's
evaluation error for what Nix refuses by itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from nixhelp import HERE, NIX_OPTS, ROOT, env, host_python

RECORD = f"import {HERE / 'recordpkgs.nix'} {{ }}"
NIX_CHECK = ROOT / "generator" / "urunix" / "helpers" / "nix_check.py"


def python_verdict(args: Path) -> tuple[bool, str]:
    """What `urunix validate ARGS` says, run in ARGS's directory."""
    from urunix.errors import SpecError
    from urunix.loaders import load
    from urunix.validate import validate

    cwd = os.getcwd()
    os.chdir(args.parent)
    try:
        image, diag = validate(load(Path(args.name), keep_problems=True))  # as the CLI (all problems in one run)
    except SpecError as e:
        return False, e.render()
    finally:
        os.chdir(cwd)
    return True, "\n".join(w.render("warning") for w in diag.warnings)


def check_json(args: Path, lib: Path = ROOT / "nix") -> tuple[str | None, str]:
    """(the metadata derivation's CHECK.json text, or None; Nix's error)."""
    expr = f"(import {lib} {{ pkgs = {RECORD}; }}).fromArgs {{ args = {args}; }}"
    # --read-write-mode: --eval alone names store paths without copying into them
    r = subprocess.run(
        [
            "nix-instantiate",
            "--eval",
            "--strict",
            "--json",
            "--read-write-mode",
            "--expr",
            f"({expr}).urunix.metadata.check",
            *NIX_OPTS,
        ],
        capture_output=True,
        text=True,
        errors="surrogateescape",
        env=env(),
        timeout=300,
    )
    if r.returncode != 0:
        return None, r.stderr
    return json.loads(r.stdout), ""


def run_check(check: str, out: Path) -> subprocess.CompletedProcess:
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = out.parent / (out.name + ".check.json")
    doc.write_bytes(check.encode("utf-8", "surrogateescape"))  # Nix strings are bytes
    return subprocess.run(
        [host_python(), str(NIX_CHECK), str(doc), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin"},
    )


def nix_verdict(args: Path, scratch: Path) -> tuple[bool, str]:
    """What the Nix path says: an evaluation error, or nix_check.py's verdict."""
    check, err = check_json(args)
    if check is None:
        return False, err
    r = run_check(check, scratch)
    assert r.returncode in (0, 2), f"nix_check.py exited {r.returncode}:\n{r.stderr}"
    return r.returncode == 0, r.stderr.rstrip("\n")


def build_messages(stderr: str) -> str:
    """The builder's own lines out of nix-build's output (Nix adds its
    `building ...` and `error: builder for ...` lines around them)."""
    keep = []
    for line in stderr.splitlines():
        if line.startswith(("building '", "these ", "  /nix/store/", "sha256:", "warning: the group")):
            continue
        if (
            line.startswith("error: builder for")
            or line.startswith("error: 1 dependencies")
            or (line.startswith("error: ") and "dependencies of derivation" in line)
        ):
            continue
        keep.append(line)
    return "\n".join(keep).strip("\n")


if __name__ == "__main__":  # handy by hand: python verdicts.py ARGS.nix
    print(python_verdict(Path(sys.argv[1]).absolute()))
