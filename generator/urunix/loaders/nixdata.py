"""A reader for the DATA SUBSET of the Nix language, so that a plain args.nix
loads without Nix installed, and so that line numbers exist at all (Nix's
evaluator reports none for values).

Accepted: attribute sets (nested, dotted keys `a.b = 1;` that merge like
Nix's, quoted keys), lists, double-quoted strings with Nix's escapes,
indented `''` strings with Nix's exact indentation stripping, integers,
floats, `-` before a number, true/false/null, `#` and `/* */` comments, and
path literals (`./x`, `../x`, `a/b`, `/abs`, `~/x`), which become `NixPath`.

Refused, with the line and column and a hint to install Nix: `let`, `rec`,
`with`, `inherit`, `if`, `assert`, functions, `import` and any other
variable, function application, `${...}` interpolation, operators, `<...>`
search paths and URL literals.

The reference for every rule is Nix 2.8's lexer.l/parser.y; the tests compare
this reader with `nix-instantiate --eval --strict --json` on tricky inputs.
Tokens are matched with small anchored regular expressions that cannot
backtrack catastrophically (no nested ambiguous repetition); strings are
scanned by hand."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..spec import display_path

NIX_HINT = (
    "the built-in reader understands only plain data (attribute sets, lists, strings, "
    "numbers, booleans, null, paths); install Nix to evaluate full Nix "
    "(apt-get install nix-bin, or any Nix), or write the value out as plain data"
)

MAX_DEPTH = 100
INT_MAX = 2**63 - 1

KEYWORDS = {"if", "then", "else", "assert", "with", "let", "in", "rec", "inherit", "or"}
REFUSED_KEYWORDS = {
    "let": "`let ... in` (local variables)",
    "rec": "`rec` (recursive attribute sets)",
    "with": "`with`",
    "inherit": "`inherit`",
    "if": "`if ... then ... else`",
    "assert": "`assert`",
    "then": "`then`",
    "else": "`else`",
    "in": "`in`",
    "or": "`or`",
}

_PC = r"[a-zA-Z0-9._\-+]"
_RULES = [  # in flex's order: on equal length the earlier rule wins
    ("id", re.compile(r"[a-zA-Z_][a-zA-Z0-9_'\-]*")),
    ("int", re.compile(r"[0-9]+")),
    ("float", re.compile(r"(?:[1-9][0-9]*\.[0-9]*|0?\.[0-9]+)(?:[Ee][+-]?[0-9]+)?")),
    ("path", re.compile(_PC + r"*(?:/" + _PC + r"+)+/?")),
    ("hpath", re.compile(r"~(?:/" + _PC + r"+)+/?")),
    ("spath", re.compile(r"<" + _PC + r"+(?:/" + _PC + r"+)*>")),
    ("uri", re.compile(r"[a-zA-Z][a-zA-Z0-9+\-.]*:[a-zA-Z0-9%/?:@&=+$,\-_.!~*']+")),
]
_PATH_INTERP = re.compile(r"(?:" + _PC + r"*|~)(?:/" + _PC + r"+)*/\$\{")
_OPS = [
    "...",
    "//",
    "++",
    "==",
    "!=",
    "<=",
    ">=",
    "&&",
    "||",
    "->",
    "(",
    ")",
    ":",
    ",",
    "?",
    "@",
    "+",
    "*",
    "/",
    "!",
    "<",
    ">",
    "$",
    "&",
    "|",
]
_PUNCT = set("{}[]=;.-")
_NOT_A_WORD = set("{}[]=;(),")  # no _RULES pattern (nor _PATH_INTERP) starts with one of these


class NixPath(str):
    """A Nix path literal, already made absolute the way Nix does (lexically,
    relative to the file's directory, symlinks untouched)."""

    def __repr__(self) -> str:
        return f"NixPath({str.__repr__(self)})"


@dataclass
class Token:
    kind: str
    value: Any
    line: int
    col: int
    text: str = ""
    end: tuple[int, int] = (0, 0)  # (line, column) just after the token


AttrPath = list[tuple[str, Token]]  # `a."b".c`: each name with its token (named here: _Reader has a list method)

_IDENT = re.compile(r"[a-zA-Z_][a-zA-Z0-9_'\-]*")


def ident_ok(name: str) -> bool:
    """Whether `name` can be written bare as a Nix attribute name (called
    for every key of every spec: compiled once, no set built per call)."""
    return _IDENT.fullmatch(name) is not None and (name == "or" or name not in KEYWORDS)


def dotted(parts: list[str | int] | tuple[str | int, ...]) -> str:
    """The field name of a key path: `files."./x"`, `annotations.binary`, `cmd.0`
    (an int part is a list index; a key that is not an identifier is quoted)."""
    out = []
    for p in parts:
        if isinstance(p, int) or ident_ok(p):
            out.append(str(p))
        else:
            out.append('"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return ".".join(out)


class _Reader:
    def __init__(self, text: str, file: Path | None, base_dir: Path):
        self.src = text
        self.file = file
        self.base_dir = base_dir
        self.pos = 0
        self.line = 1
        self.col = 1
        self.tokens: list[Token] = []
        self.i = 0
        self.lines: dict[str, int] = {}

    # -- errors ------------------------------------------------------------
    def fail(
        self, message: str, line: int, col: int, *, refused: bool = False, field: str | None = None, hint: str | None = None
    ) -> SpecError:
        where = f"column {col}" if self.file else f"line {line}, column {col}"
        return SpecError(
            f"{message} ({where})",
            file=display_path(self.file) if self.file else None,
            line=line,
            field=field,
            hint=NIX_HINT if refused else hint,
        )

    # -- lexer -------------------------------------------------------------
    def _advance(self, n: int) -> None:
        chunk = self.src[self.pos : self.pos + n]
        nl = chunk.count("\n")
        if nl:
            self.line += nl
            self.col = n - chunk.rfind("\n")
        else:
            self.col += n
        self.pos += n

    def lex(self) -> list[Token]:
        src = self.src
        if "\0" in src:
            line = src.count("\n", 0, src.index("\0")) + 1
            raise self.fail("the file contains a NUL byte", line, 1)
        while True:
            if self.tokens:
                self.tokens[-1].end = (self.line, self.col)
            self._skip_space()
            line, col = self.line, self.col
            if self.pos >= len(src):
                self.tokens.append(Token("eof", None, line, col, "end of file"))
                return self.tokens
            c = src[self.pos]
            if c == '"':
                value = self._string()
                self.tokens.append(Token("str", value, line, col, "a string"))
            elif src.startswith("''", self.pos):
                value = self._ind_string()
                self.tokens.append(Token("indstr", value, line, col, "a string"))
            else:
                self.tokens.append(self._word(line, col))

    def _skip_space(self) -> None:
        src = self.src
        while self.pos < len(src):
            c = src[self.pos]
            if c in " \t\r\n":
                self._advance(1)
            elif c == "#":
                end = self.pos
                while end < len(src) and src[end] not in "\r\n":
                    end += 1
                self._advance(end - self.pos)
            elif src.startswith("/*", self.pos):
                end = src.find("*/", self.pos + 2)
                if end < 0:
                    raise self.fail("unterminated /* comment", self.line, self.col)
                self._advance(end + 2 - self.pos)
            else:
                return

    def _word(self, line: int, col: int) -> Token:
        src, pos = self.src, self.pos
        if src[pos] in _NOT_A_WORD:  # `=` `;` `{` ...: no rule can start here (one of every few tokens)
            return self._op(line, col)
        m = _PATH_INTERP.match(src, pos)
        if m:
            raise self.fail("a path with ${...} interpolation is not plain data", line, col, refused=True)
        best: tuple[int, str] | None = None
        for kind, rx in _RULES:
            m = rx.match(src, pos)
            if m and (best is None or len(m.group()) > best[0]):
                best = (len(m.group()), kind)
        if best:
            n, kind = best
            text = src[pos : pos + n]
            self._advance(n)
            if kind in ("path", "hpath") and text.endswith("/"):
                raise self.fail(f"path '{text}' has a trailing slash", line, col)
            if kind in ("path", "hpath") and src.startswith("${", self.pos):
                raise self.fail("a path with ${...} interpolation is not plain data", line, col, refused=True)
            value: Any = text
            if kind == "int":
                value = int(text)
            elif kind == "float":
                value = float(text)
            return Token(kind, value, line, col, text)
        return self._op(line, col)

    def _op(self, line: int, col: int) -> Token:
        src, pos = self.src, self.pos
        for op in _OPS:
            if len(op) > 1 and src.startswith(op, pos):
                self._advance(len(op))
                return Token("op", op, line, col, op)
        if src[pos] in _PUNCT:
            self._advance(1)
            return Token(src[pos], src[pos], line, col, src[pos])
        if src[pos] in _OPS:
            self._advance(1)
            return Token("op", src[pos], line, col, src[pos])
        raise self.fail(f"unexpected character {src[pos]!r}", line, col)

    def _string(self) -> str:
        """A "..." string. The raw run is delimited like Nix's lexer does (a
        `$` always pairs with the next character, so `$${` is the literal
        `$${`), then unescaped like Nix's unescapeStr (CR and CRLF -> LF)."""
        src = self.src
        line, col = self.line, self.col
        i = self.pos + 1
        n = len(src)
        while True:
            if i >= n:
                raise self.fail("unterminated string", line, col)
            c = src[i]
            if c == '"':
                break
            if c == "\\":
                if i + 1 >= n:
                    raise self.fail("unterminated string", line, col)
                i += 2
            elif c == "$":
                nxt = src[i + 1] if i + 1 < n else ""
                if nxt == "{":
                    ln = line + src.count("\n", self.pos, i)
                    raise self.fail(
                        "${...} interpolation is not plain data", ln, i - max(src.rfind("\n", 0, i), -1), refused=True
                    )
                i += 1 if nxt in ('"', "\\", "") else 2
            else:
                i += 1
        raw = src[self.pos + 1 : i]
        self._advance(i + 1 - self.pos)
        return _unescape(raw)

    def _ind_string(self) -> str:
        """An indented ''...'' string: split into Nix's tokens, then stripped."""
        src = self.src
        line, col = self.line, self.col
        n = len(src)
        i = self.pos + 2
        j = i
        while j < n and src[j] == " ":
            j += 1
        if j < n and src[j] == "\n":
            i = j + 1
        parts: list[tuple[str, bool]] = []  # (text, has_indentation)
        while True:
            if i >= n:
                raise self.fail("unterminated '' string", line, col)
            if src.startswith("''", i):
                if src.startswith("'''", i):
                    parts.append(("''", False))
                    i += 3
                elif src.startswith("''$", i):
                    parts.append(("$", False))
                    i += 3
                elif src.startswith("''\\", i):
                    if i + 3 >= n:
                        raise self.fail("unterminated '' string", line, col)
                    parts.append((_unescape("\\" + src[i + 3]), False))
                    i += 4
                else:
                    i += 2
                    break
                continue
            j = _ind_text_run(src, i)
            if j > i:
                parts.append((src[i:j], True))
                i = j
            elif src.startswith("${", i):
                ln = line + src.count("\n", self.pos, i)
                raise self.fail("${...} interpolation is not plain data", ln, i - max(src.rfind("\n", 0, i), -1), refused=True)
            else:  # a lone `$` or `'` that the text rule cannot take
                parts.append((src[i], False))
                i += 1
        self._advance(i - self.pos)
        return _strip_indentation(parts)

    # -- parser ------------------------------------------------------------
    def peek(self, k: int = 0) -> Token:
        return self.tokens[min(self.i + k, len(self.tokens) - 1)]

    def take(self) -> Token:
        t = self.tokens[self.i]
        if t.kind != "eof":
            self.i += 1
        return t

    def parse(self) -> Any:
        self.lex()
        value = self.value((), 0)
        t = self.peek()
        if t.kind != "eof":
            raise self.after_value(t, "the end of the file")
        return value

    def after_value(self, t: Token, expected: str) -> SpecError:
        """What to say about a token that follows a complete value."""
        if t.kind == "op" and t.value in (":", "@"):
            return self.fail("a function is not plain data", t.line, t.col, refused=True)
        if t.kind == "op" or t.kind == "-":
            return self.fail(f"the operator {t.text} is not plain data", t.line, t.col, refused=True)
        if t.kind == ".":
            return self.fail("attribute selection (x.y) is not plain data", t.line, t.col, refused=True)
        if t.kind in ("{", "[", "str", "indstr", "int", "float", "path", "hpath", "id"):
            return self.fail("function application is not plain data", t.line, t.col, refused=True)
        return self.fail(f"expected {expected}, found {t.text}", t.line, t.col)

    def missing_semicolon(self, t: Token, full: tuple[str | int, ...]) -> SpecError:
        """What follows a binding's value is not `;`. When it is the next
        binding (`b = ...`) or the closing `}`, the `;` was forgotten: say
        that, where it belongs, rather than "function application"."""
        nxt = self.peek()
        starts_binding = t.kind in ("id", "str") and nxt.kind in ("=", ".")
        if t.kind in ("}", "eof") or starts_binding:
            k = self.i - (1 if t.kind == "eof" else 2)  # the value's last token (take() stops at eof)
            prev = self.tokens[k] if k >= 0 else t
            line, col = prev.end if prev.end != (0, 0) else (t.line, t.col)
            return self.fail(
                f"expected `;` after the value of {dotted(full)}", line, col, hint=f"add `;` at line {line}, column {col}"
            )
        return self.after_value(t, f"`;` after the value of {dotted(full)}")

    def value(self, path: tuple[str | int, ...], depth: int, in_list: bool = False) -> Any:
        if depth > MAX_DEPTH:
            t = self.peek()
            raise self.fail(f"values are nested more than {MAX_DEPTH} levels deep", t.line, t.col)
        t = self.take()
        k = t.kind
        if k == "{":
            return self.attrs(t, path, depth)
        if k == "[":
            return self.list(path, depth)
        if k in ("str", "indstr"):
            return t.value
        if k in ("int", "float"):
            return self.number(t, negative=False)
        if k == "-" and not in_list:
            num = self.take()
            if num.kind not in ("int", "float"):
                raise self.fail("the operator - is not plain data (only before a number)", t.line, t.col, refused=True)
            return self.number(num, negative=True)
        if k in ("path", "hpath"):
            return self.nix_path(t)
        if k == "id":
            return self.identifier(t)
        if k == "spath":
            raise self.fail(f"the search path {t.text} is not plain data", t.line, t.col, refused=True)
        if k == "uri":
            raise self.fail(
                f"an unquoted URL ({t.text}) is not supported; quote it",
                t.line,
                t.col,
                hint='write it as a string: "' + t.text + '"',
            )
        if k == "op" and t.value == "(":
            raise self.fail("parenthesised expressions are not plain data", t.line, t.col, refused=True)
        if k == "op" and t.value == "...":
            raise self.fail("a function is not plain data", t.line, t.col, refused=True)
        raise self.fail(f"expected a value, found {t.text}", t.line, t.col)

    def number(self, t: Token, negative: bool) -> int | float:
        if t.kind == "int" and t.value > INT_MAX:
            raise self.fail(f"invalid integer '{t.text}'", t.line, t.col)
        return -t.value if negative else t.value

    def nix_path(self, t: Token) -> NixPath:
        text = t.text
        if t.kind == "hpath":
            full = os.environ.get("HOME") or str(Path.home())
            full = full + text[1:]
        elif text.startswith("/"):
            full = text
        else:
            full = os.path.join(os.path.abspath(self.base_dir), text)
        full = os.path.normpath(full)
        if full.startswith("//"):
            full = "/" + full.lstrip("/")
        return NixPath(full)

    def identifier(self, t: Token) -> Any:
        name = t.value
        if name in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[name]
        if name in REFUSED_KEYWORDS:
            raise self.fail(f"{REFUSED_KEYWORDS[name]} is not plain data", t.line, t.col, refused=True)
        nxt = self.peek()
        if nxt.kind == "op" and nxt.value in (":", "@"):
            raise self.fail("a function is not plain data", t.line, t.col, refused=True)
        if name == "import":
            raise self.fail("`import` is not plain data", t.line, t.col, refused=True)
        raise self.fail(f"the variable `{name}` is not plain data", t.line, t.col, refused=True)

    def list(self, path: tuple[str | int, ...], depth: int) -> list[Any]:
        items: list[Any] = []
        while True:
            t = self.peek()
            if t.kind == "]":
                self.take()
                return items
            if t.kind == "eof":
                raise self.fail("unterminated list: expected ]", t.line, t.col)
            if t.kind == "-":
                raise self.fail(
                    "a negative number in a list must be parenthesised in Nix, and parentheses are not plain data",
                    t.line,
                    t.col,
                    refused=True,
                )
            self.record(path + (len(items),), t.line)
            items.append(self.value(path + (len(items),), depth + 1, in_list=True))
            nxt = self.peek()
            if nxt.kind in ("op", "."):
                raise self.after_value(nxt, "]")

    def attrs(self, open_tok: Token, path: tuple[str | int, ...], depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first = True
        while True:
            t = self.peek()
            if t.kind == "}":
                self.take()
                return result
            if t.kind == "eof":
                raise self.fail("unterminated attribute set: expected }", open_tok.line, open_tok.col)
            if t.kind == "op" and t.value == "...":
                raise self.fail("a function ({ ... }: ...) is not plain data", t.line, t.col, refused=True)
            if t.kind == "id" and t.value == "inherit":
                raise self.fail("`inherit` is not plain data", t.line, t.col, refused=True)
            attrpath = self.attrpath()
            eq = self.take()
            if eq.kind != "=":
                if first and len(attrpath) == 1 and (eq.kind == "}" or (eq.kind == "op" and eq.value in (",", "?"))):
                    raise self.fail("a function ({ a, b }: ...) is not plain data", t.line, t.col, refused=True)
                raise self.fail(f"expected = after {dotted([p for p, _ in attrpath])}, found {eq.text}", eq.line, eq.col)
            names = tuple(p for p, _ in attrpath)
            full = path + names
            for k in range(1, len(names) + 1):
                self.record(path + names[:k], attrpath[k - 1][1].line)
            val = self.value(full, depth + 1)
            semi = self.take()
            if semi.kind != ";":
                raise self.missing_semicolon(semi, full)
            self.add_attr(result, path, attrpath, val)
            first = False

    def attrpath(self) -> AttrPath:
        parts: AttrPath = []
        while True:
            t = self.take()
            if t.kind == "id":
                if t.value in KEYWORDS and t.value != "or":
                    raise self.fail(f"{REFUSED_KEYWORDS[t.value]} is not plain data", t.line, t.col, refused=True)
                parts.append((t.value, t))
            elif t.kind == "str":
                parts.append((t.value, t))
            elif t.kind == "op" and t.value == "$":
                raise self.fail("a ${...} attribute name is not plain data", t.line, t.col, refused=True)
            else:
                raise self.fail(f"expected an attribute name, found {t.text}", t.line, t.col)
            if self.peek().kind != ".":
                return parts
            self.take()

    def add_attr(self, target: dict[str, Any], path: tuple[str | int, ...], attrpath: AttrPath, val: Any) -> None:
        """Insert like Nix's addAttr: dotted paths create or extend attribute
        sets; `a = {..}; a = {..};` merges one level; anything else twice is
        "already defined"."""
        names = [p for p, _ in attrpath]
        tok = attrpath[-1][1]
        cur = target
        for k, name in enumerate(names[:-1]):
            if name in cur:
                if not isinstance(cur[name], dict):
                    raise self.dup(path + tuple(names[: k + 1]), tok)
                cur = cur[name]
            else:
                cur[name] = {}
                cur = cur[name]
        last = names[-1]
        if last not in cur:
            cur[last] = val
            return
        if isinstance(cur[last], dict) and isinstance(val, dict):
            for key, sub in val.items():
                if key in cur[last]:
                    raise self.dup(path + tuple(names) + (key,), tok)
                cur[last][key] = sub
            return
        raise self.dup(path + tuple(names), tok)

    def dup(self, full: tuple[str | int, ...], tok: Token) -> SpecError:
        where = self.lines.get(dotted(full))
        first = f" (first defined on line {where})" if where else ""
        return self.fail(
            f"attribute {dotted(full)} already defined{first}",
            tok.line,
            tok.col,
            field=dotted(full),
            hint="each attribute may be set only once",
        )

    def record(self, full: tuple[str | int, ...], line: int) -> None:
        self.lines.setdefault(dotted(full), line)


def _ind_text_run(src: str, i: int) -> int:
    """End of the longest IND_STR text run at i: ([^$']|$[^{']|'[^'$])+."""
    n = len(src)
    j = i
    while j < n:
        c = src[j]
        if c != "$" and c != "'":
            j += 1
        elif j + 1 < n and ((c == "$" and src[j + 1] not in "{'") or (c == "'" and src[j + 1] not in "'$")):
            j += 2
        else:
            break
    return j


def _unescape(raw: str) -> str:
    """Nix's unescapeStr: \\n \\r \\t, backslash + any other char = that char,
    a raw CR or CRLF becomes LF."""
    out = []
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c == "\\" and i + 1 < n:
            e = raw[i + 1]
            out.append({"n": "\n", "r": "\r", "t": "\t"}.get(e, e))
            i += 2
        elif c == "\r":
            out.append("\n")
            i += 2 if raw.startswith("\n", i + 1) else 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _strip_indentation(parts: list[tuple[str, bool]]) -> str:
    """Nix's stripIndentation for a ''-string without interpolation."""
    if not parts:
        return ""
    at_start, min_indent, cur = True, 1_000_000, 0
    for text, has_ind in parts:
        if not has_ind:  # escapes end the start-of-line whitespace
            if at_start:
                at_start = False
                min_indent = min(min_indent, cur)
            continue
        for ch in text:
            if at_start:
                if ch == " ":
                    cur += 1
                elif ch == "\n":
                    cur = 0
                else:
                    at_start = False
                    min_indent = min(min_indent, cur)
            elif ch == "\n":
                at_start, cur = True, 0
    out = []
    at_start, dropped = True, 0
    for k, (text, _) in enumerate(parts):
        s2 = []
        for ch in text:
            if at_start:
                if ch == " ":
                    if dropped >= min_indent:
                        s2.append(ch)
                    dropped += 1
                elif ch == "\n":
                    dropped = 0
                    s2.append(ch)
                else:
                    at_start, dropped = False, 0
                    s2.append(ch)
            else:
                s2.append(ch)
                if ch == "\n":
                    at_start = True
        piece = "".join(s2)
        if k == len(parts) - 1:  # drop a last line made only of spaces
            p = piece.rfind("\n")
            if p >= 0 and piece[p + 1 :].strip(" ") == "":
                piece = piece[: p + 1]
        out.append(piece)
    return "".join(out)


def read(text: str, *, file: Path | None = None, base_dir: Path | None = None) -> tuple[Any, dict[str, int]]:
    """Parse plain-data Nix `text`. Returns (value, {dotted key path: line}).
    Paths resolve against `base_dir` (default: the file's directory, else cwd)."""
    if base_dir is None:
        base_dir = file.parent if file is not None else Path.cwd()
    reader = _Reader(text, file, base_dir)
    value = reader.parse()
    return _sorted(value), reader.lines


def _sorted(value: Any) -> Any:
    """Attribute sets in Nix's order (by name), as `nix-instantiate --json` gives them."""
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value
