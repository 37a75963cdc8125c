"""The built-in Nix data reader: it must agree with Nix itself on everything it
accepts, refuse the rest with a line, a column and a hint, and give lines."""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from urunix.errors import SpecError
from urunix.loaders.nixdata import NixPath, dotted, ident_ok, read

NIX = shutil.which("nix-instantiate")
# skipped without Nix, except under URUNIX_REQUIRE_TOOLS=1 (CI), where they fail
needs_nix = pytest.mark.skipif(
    NIX is None and os.environ.get("URUNIX_REQUIRE_TOOLS") != "1", reason="nix-instantiate is not installed"
)


def nix_eval(tmp_path: Path, source: str):
    f = tmp_path / "expr.nix"
    f.write_text(source, encoding="utf-8")
    proc = subprocess.run(
        [NIX, "--eval", "--strict", "--json", "--readonly-mode", "--option", "substituters", "", str(f)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# Inputs the reader accepts; each must evaluate to the same value under Nix.
AGREES = [
    "{ a = 1; }",
    '"tab\\there \\n newline \\r cr \\\\ backslash \\" quote \\$ dollar \\q other"',
    '"a$${x}b$\\{y}c$d$"',  # $${ is the literal $${, as in Nix
    '"line one\nline two\r\nline three\rfour"',  # raw CR and CRLF become LF
    '"unicode: é ☃ 𝄞 \\u00e9"',
    "''\n  a\n    b\n  c\n''",
    "''\n    deep\n  shallow\n      deeper\n  ''",
    "''  first line kept\n  second''",
    "''\n  a\n   ''",  # a last line of spaces is dropped
    "''\n\n  after blank\n\n  x\n''",
    "''\n  ''' ''$ ''\\n ''\\t ''\\\\ ''\\x $$ $ 'q' ''",
    "''\n  x ''\\\n  y\n''",  # an escaped newline restarts the line
    "''\n  ''\\ a\n    b\n''",  # an escaped space is not indentation
    "''\r\n  crlf\r\n''",  # '' strings keep CR as is
    "''a'b'$c$$d$'e''",
    "''\n\tTab\n  is not indentation\n''",
    '{ a.b.c = 1; a.b.d = 2; a.e = "x"; }',
    "{ a = { b = 1; }; a.c = 2; }",
    "{ a.c = 2; a = { b = 1; }; }",
    "{ a = { b = 1; }; a = { c = 1; }; }",
    '{ "./redis.hvt" = "/unikernel/redis.hvt"; "with space" = 1; "" = 2; }',
    '{ a."b.c" = 1; "d"."e" = 2; }',
    "{ a-b'c_d = 1; or = 2; x.or = 3; }",
    '[ 1 "two" [ 3 ] { four = 4; } true false null ]',
    "{ neg = -1; negf = - 2.5; f = 1.5; g = .5; h = 1.; i = 3.0e2; j = 1.5e-3; k = 00012; }",
    "9223372036854775807",
    "{ # comment\n  a = /* inline */ 1; # trailing\n  /* multi\n  line */ b = [ ];\n}",
    "{ }",
    "[ ]",
    '""',
    "''''",
    "{ a = 1; } # final comment without newline",
]


@needs_nix
@pytest.mark.parametrize("source", AGREES)
def test_reader_agrees_with_nix(tmp_path, source):
    value, _ = read(source, file=tmp_path / "expr.nix")
    assert value == nix_eval(tmp_path, source)


@needs_nix
def test_random_strings_agree_with_nix(tmp_path):
    """Hundreds of random '' and "" strings full of quotes, dollars, escapes and
    odd indentation, checked against Nix in one evaluation."""
    rng = random.Random(1234)
    ind = [
        " ",
        "  ",
        "    ",
        "\n",
        "\n",
        "a",
        "b c",
        "'",
        "'''",
        "''$",
        "$",
        "$$",
        "\\",
        "''\\n",
        "''\\ ",
        "''\\t",
        "''\\\\",
        "\t",
        "\r",
        "{",
        '"',
        "#",
        "é",
    ]
    dq = ["a", "\\n", "\\\\", '\\"', "$", "$$", "\\$", "\n", "\r\n", "\r", "\\t", "\\x", "{", "'", " ", "☃"]
    items = []
    for _ in range(400):
        body = "".join(rng.choice(ind) for _ in range(rng.randint(0, 14)))
        if (
            "${" not in body
            and not body.endswith("'")
            and "''" not in body.replace("'''", "").replace("''$", "").replace("''\\", "")
        ):
            items.append("''" + body + "''")
        body = "".join(rng.choice(dq) for _ in range(rng.randint(0, 10)))
        if "${" not in body and not body.endswith("$"):
            items.append('"' + body + '"')
    source = "[\n" + "\n".join(items) + "\n]"
    value, _ = read(source, file=tmp_path / "expr.nix")
    assert value == nix_eval(tmp_path, source)


@needs_nix
def test_dict_order_is_nixs(tmp_path):
    source = '{ zeta = 1; alpha = 2; "Beta" = 3; "./b" = 4; "./a" = 5; }'
    value, _ = read(source, file=tmp_path / "expr.nix")
    assert list(value) == list(nix_eval(tmp_path, source)) == ["./a", "./b", "Beta", "alpha", "zeta"]


def test_path_literals_resolve_like_nix(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", "/home/me")
    value, _ = read("{ a = ./x; b = ../up/y; c = /abs/z; d = ~/k; e = sub/dir; f = ./.; }", file=tmp_path / "dir" / "args.nix")
    base = tmp_path / "dir"
    assert value == {
        "a": str(base / "x"),
        "b": str(tmp_path / "up" / "y"),
        "c": "/abs/z",
        "d": "/home/me/k",
        "e": str(base / "sub" / "dir"),
        "f": str(base),
    }
    assert all(isinstance(v, NixPath) for v in value.values())


def test_lines_of_every_key(tmp_path):
    source = """{
  name = "redis";
  files = {
    "./redis.hvt" = "/unikernel/redis.hvt";
  };
  annotations.unikernelType = "rumprun";
  annotations = { hypervisor = "hvt"; };
  cmd = [
    "a"
    "b"
  ];
}"""
    _, lines = read(source, file=tmp_path / "args.nix")
    assert lines == {
        "name": 2,
        "files": 3,
        'files."./redis.hvt"': 4,
        "annotations": 6,
        "annotations.unikernelType": 6,
        "annotations.hypervisor": 7,
        "cmd": 8,
        "cmd.0": 9,
        "cmd.1": 10,
    }


@pytest.mark.parametrize(
    "source, line, words",
    [
        ("{ a = 1; a = 2; }", 1, "attribute a already defined"),
        ("{\n  a.b = 1;\n  a.b.c = 2;\n}", 3, "attribute a.b already defined (first defined on line 2)"),
        ("{ a = { b = {x=1;}; }; a = { b = {y=1;}; }; }", 1, "attribute a.b already defined"),
        ("{ a = 1 }", 1, "expected `;` after the value of a"),
        ("{ a = 1;\n", 1, "unterminated attribute set"),
        ("[ 1 2", 1, "unterminated list"),
        ('"abc', 1, "unterminated string"),
        ("''abc", 1, "unterminated '' string"),
        ("/* open", 1, "unterminated /* comment"),
        ("9223372036854775808", 1, "invalid integer"),
        ("{ a = ./x/; }", 1, "trailing slash"),
        ("{ a = 1;; }", 1, "expected an attribute name"),
    ],
)
def test_malformed_nix(tmp_path, source, line, words):
    with pytest.raises(SpecError) as e:
        read(source, file=tmp_path / "args.nix")
    assert e.value.problem.line == line
    assert words in e.value.problem.message


@pytest.mark.parametrize(
    "source, line, col, words",
    [
        ("let a = 1; in { inherit a; }", 1, 1, "`let ... in`"),
        ("rec { a = 1; b = a; }", 1, 1, "`rec`"),
        ("with import <nixpkgs> {}; { }", 1, 1, "`with`"),
        ("{\n  inherit x;\n}", 2, 3, "`inherit`"),
        ("{ pkgs }: { }", 1, 3, "a function"),
        ("{ pkgs ? null, ... }: { }", 1, 3, "a function"),
        ("x: { }", 1, 1, "a function"),
        ("{ }: { }", 1, 4, "a function"),
        ("{ a = import ./x.nix; }", 1, 7, "`import`"),
        ("{ a = builtins.toString 1; }", 1, 7, "the variable `builtins`"),
        ('{ a = "x-${name}"; }', 1, 10, "interpolation"),
        ("{ a = ''\n  x ${y}\n''; }", 2, 5, "interpolation"),
        ('{ a = "x" + "y"; }', 1, 11, "the operator +"),
        ("{ a = { } // { }; }", 1, 11, "the operator //"),
        ("[ 1 ] ++ [ 2 ]", 1, 7, "the operator ++"),
        ("{ a = <nixpkgs>; }", 1, 7, "the search path <nixpkgs>"),
        ("{ a = ./dir/${x}; }", 1, 7, "path with ${...}"),
        ("{ a = (1); }", 1, 7, "parenthesised"),
        ("{ a = { b = 1; }.b; }", 1, 17, "attribute selection"),
        ("{ a = [ 1 -2 ]; }", 1, 11, "negative number in a list"),
        ("{ a = 1e3; }", 1, 8, "function application"),
        ('{ ${"a"} = 1; }', 1, 3, "${...} attribute name"),
        ("{ a = if true then 1 else 2; }", 1, 7, "`if"),
    ],
)
def test_refuses_full_nix_with_a_hint(tmp_path, source, line, col, words):
    with pytest.raises(SpecError) as e:
        read(source, file=tmp_path / "args.nix")
    p = e.value.problem
    assert (p.line, words in p.message, f"column {col}" in p.message) == (line, True, True), p.message
    assert "install Nix" in p.hint and "nix-bin" in p.hint
    assert p.file and p.file.endswith("args.nix")


def test_depth_limit(tmp_path):
    with pytest.raises(SpecError, match="nested more than"):
        read("[" * 500 + "]" * 500, file=tmp_path / "x.nix")


def test_dotted_names():
    assert dotted(["files", "./redis.hvt"]) == 'files."./redis.hvt"'
    assert dotted(["annotations", "unikernelType"]) == "annotations.unikernelType"
    assert dotted(["cmd", 0]) == "cmd.0"
    assert dotted(["env", "0"]) == 'env."0"'
    assert dotted(["a", 'q"b']) == 'a."q\\"b"'
    assert ident_ok("or") and not ident_ok("let") and not ident_ok("a b")


# -- property test: print random data as Nix, read it back ---------------------


def _nix_string(s: str, indented: bool) -> str:
    if indented:  # every awkward character as a ''\ escape, on one line
        out = []
        for c in s:
            if c in "\n\r\t":
                out.append("''\\" + {"\n": "n", "\r": "r", "\t": "t"}[c])
            elif c in "'$\\ ":
                out.append("''\\" + c)
            else:
                out.append(c)
        return "''" + "".join(out) + "''"
    esc = {"\\": "\\\\", '"': '\\"', "$": "\\$", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return '"' + "".join(esc.get(c, c) for c in s) + '"'


def to_nix(value, draw_style, in_list=False) -> str:
    sep = draw_style()
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        mant, e, exp = text.partition("e")
        if "." not in mant:
            mant += ".0"
        return mant + e + exp
    if isinstance(value, str):
        return _nix_string(value, indented=draw_style() == " ")
    if isinstance(value, list):
        return "[" + sep + sep.join(to_nix(v, draw_style, True) for v in value) + sep + "]"
    parts = []
    for k, v in value.items():
        key = k if ident_ok(k) else _nix_string(k, indented=False)
        parts.append(f"{key}{sep}={sep}{to_nix(v, draw_style)};")
    return "{" + sep + sep.join(parts) + sep + "}"


text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)
leaves = (
    st.none() | st.booleans() | st.integers(0, 2**63 - 1) | text | st.floats(min_value=0, allow_nan=False, allow_infinity=False)
)
data = st.recursive(leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4), max_leaves=25)
styles = st.sampled_from([" ", "\n", "\n  ", " # comment\n", " /* c */ ", "\t"])


@settings(max_examples=300, deadline=None)
@given(value=data, style=st.data())
def test_printed_data_reads_back(value, style):
    source = to_nix(value, lambda: style.draw(styles))
    parsed, _ = read(source, file=Path("/nowhere/x.nix"))
    assert _normal(parsed) == _normal(value)


def _normal(v):
    if isinstance(v, float) and math.isfinite(v) and v == int(v) and abs(v) < 2**53:
        return v
    if isinstance(v, dict):
        return {k: _normal(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_normal(x) for x in v]
    return v
