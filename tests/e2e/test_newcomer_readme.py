"""The README a newcomer follows (issue 15, item 11): the PATH after the two
commands, one command that makes the examples' stand-in files, how to run
under urunc, every environment variable in one table, no "pinned" flake
without a lock."""

from __future__ import annotations

import re
import subprocess
import sys

from cli import ROOT, urunix

README = (ROOT / "README.md").read_text()


def test_standins_command_makes_a_buildable_example(tmp_path):
    line = next(ln for ln in README.splitlines() if "tests/standins.py" in ln)
    assert "python3 tests/standins.py redis-rumprun-hvt" in line
    dest = tmp_path / "redis"
    r = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "standins.py"), "redis-rumprun-hvt", str(dest)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    r = urunix("build", "args.nix", cwd=dest, env={"URUNIX_NO_NIX": "1"})
    assert r.returncode == 0 and (dest / "result").is_file(), r.stderr
    r = subprocess.run([sys.executable, str(ROOT / "tests" / "standins.py"), "nosuch", str(dest)], capture_output=True, text=True)
    assert r.returncode == 2 and "usage:" in r.stderr


def test_path_and_run_under_urunc_are_told():
    assert ". .venv/bin/activate" in README and "pipx install ." in README
    assert "io.containerd.urunc.v2" in README and "nerdctl run" in README and "ctr run" in README
    assert "runtimeClassName" in README


def test_every_environment_variable_is_in_the_table():
    code = "\n".join(p.read_text() for p in (ROOT / "generator" / "urunix").rglob("*.py"))
    used = set(re.findall(r"environ(?:\.get)?[\[(]\"(URUNIX_[A-Z_]+|SOURCE_DATE_EPOCH|XDG_CACHE_HOME)\"", code))
    table = README.split("### Environment variables", 1)[1].split("\n#", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", table, re.M))
    assert used and used <= documented, used - documented


def test_flake_is_pinned_only_with_a_lock():
    if not (ROOT / "flake.lock").exists():
        assert "pinned to a" not in README and "no `flake.lock` is committed" in README
