"""Containerfiles and Dockerfiles (the bima / pun / bunny Dockerfile-mode
syntax), read with Docker's own grammar and mapped onto a Spec.

The parser follows moby/buildkit's `frontend/dockerfile/parser` and
`shell/lex.go` (the code Docker's classic builder and BuildKit share), and
the tests compare it with a real Docker Engine (classic builder,
DOCKER_BUILDKIT=0). Stdlib only.

Syntax, as Docker reads it
- Lines end at "\\n" (a trailing "\\r" is dropped); a line ending in the
  escape character (then only spaces/tabs) continues on the next one.
  Comment lines and empty lines inside a continuation are skipped;
  leading whitespace of a continued line is kept (it is part of the value).
- Parser directives at the very top: `# escape=\\` or `` # escape=` ``
  (changes the escape character) and `#syntax=...` (ignored: bunny's and
  pun's frontends are replaced by urunix itself).
- Instruction names are case-insensitive; `--flag=value` words follow.
- LABEL and ENV take `key=value ...` (several pairs, double quotes, single
  quotes or none) or the legacy `KEY value with spaces`. Values are kept
  byte for byte: runs of spaces, the word LABEL, `'` inside `"..."`.
  Quotes and escapes follow Docker's shell-word rules: in "..." only \\",
  \\$ and \\\\ are escapes (any other backslash stays); '...' is literal;
  outside quotes a backslash escapes the next character.
- Variables: $VAR, ${VAR}, ${VAR:-word}, ${VAR-word}, ${VAR:+word},
  ${VAR+word}, ${VAR:?msg}, ${VAR?msg} are substituted, as in Docker, in
  FROM (with ARGs declared before it), LABEL, ENV, COPY/ADD, WORKDIR and
  ARG defaults, from ARG defaults and ENV. One deliberate difference:
  Docker silently turns an unset variable into "" (so `LABEL x="costs $5"`
  loses "$5"); urunix refuses it and says to escape it (\\$) or define it.
  A `$` not followed by a name is literal, as in Docker. There is no
  --build-arg: an ARG takes its default. ${VAR#..}, ${VAR%..}, ${VAR/../..}
  are refused. CMD and ENTRYPOINT (JSON form) are never substituted.

Instructions -> Spec
- FROM scratch: the image holds only what COPY puts there.
  FROM ./image.tar | ./oci-layout-dir | /abs/path (a local docker-archive,
  oci-archive or OCI layout) and FROM name@sha256:<digest> -> Spec.rootfs =
  Rootfs(type="base", origin=the path or reference, field="FROM"): the
  image's files are the base of the image's rootfs, as in Docker; the
  labels alone decide the storage urunc uses. As Docker does, a local base
  gives its labels (urunc's too; later LABELs win), Env, WorkingDir and
  directories (COPY file /dir then writes /dir/file). Any image without a
  PATH gets Docker's default one.
  FROM name:tag (no digest) is refused unless `from_map` maps the name to a
  local archive (the CLI's `--from NAME=PATH`). `--platform=linux/ARCH` sets
  the architecture. A second FROM (multi-stage) is refused.
- LABEL com.urunc.unikernel.KEY=V -> Spec.annotations[KEY] (short name);
  other labels -> Spec.labels. A later LABEL of the same key wins (Docker).
  Line numbers go to Spec.lines ("annotations.binary", "labels.KEY").
- COPY src... dst (and ADD of local, non-archive files) -> Spec.files:
  source as written, resolved inside the Containerfile's directory (the
  build context; `..` out of it is refused) as Docker's classic builder
  does (loaders/buildcontext.py): .dockerignore applies, and symlinks are
  followed as if the context were `/`, so none leads out of it. The
  target is dst, or
  dst/<basename> when dst ends in "/" (or is "." or a directory made
  earlier), and a directory's contents go to dst, as Docker copies them.
  Relative destinations follow WORKDIR. Wildcards are Go's filepath.Match
  (loaders/gomatch.py). A later COPY replaces what an earlier one wrote
  (loaders/copyorder.py). Several
  sources need a dst ending in "/". `--chown` must be root (0:0): urunix
  writes every file as root. `--chmod` is accepted when it is the mode
  urunix writes anyway (0755 for a file with an exec bit, else 0644);
  other modes are "not supported yet". `--link` has no effect. `--from`
  (a multi-stage copy) is refused with the line.
- CMD / ENTRYPOINT in JSON form -> Spec.cmd / Spec.entrypoint. The shell
  form is refused: Docker would make it ["/bin/sh", "-c", "..."], which
  no unikernel can run; the error shows the JSON form to write instead.
- ENV -> Spec.env; setting a variable again replaces it in place (Docker's
  order). ARG -> variables for later lines (its default).
- WORKDIR -> Spec.workdir (the image's WorkingDir), relative COPY
  destinations, and the directory itself, as Docker makes it.
- EXPOSE, STOPSIGNAL, MAINTAINER, HEALTHCHECK NONE, USER root/0 -> no
  effect on a unikernel image; ignored with a note (Spec.notes).
- RUN, ONBUILD, HEALTHCHECK CMD, SHELL, VOLUME, USER other than root, ADD
  of a URL or an archive, heredocs -> refused, naming the line and saying
  what to do instead (build the artifact beforehand, copy a local file).
- Unknown instructions -> refused with a did-you-mean.
- No name or tag (like a bunnyfile): the user passes -t name:tag.

Every problem found is reported at once, each with its line. Things worth
a warning that are not errors (e.g. an unbalanced single quote in the
cmdline, kept byte for byte) go to Spec.notes as rendered warnings.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import _UNSET, NotSupportedYet, Problem, SpecError, did_you_mean
from ..helpers.urunc_json import PREFIX
from ..spec import FileEntry, Rootfs, Spec, display_path
from . import dockerignore
from ._common import read_text
from .buildcontext import BuildContext, ContextError, Resolved
from .copyorder import CannotSplit, children, later_wins
from .gomatch import BadPattern, has_wildcards

#: The PATH Docker puts in an image that has none (system.DefaultPathEnv).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

INSTRUCTIONS = (
    "FROM",
    "LABEL",
    "COPY",
    "ADD",
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "ARG",
    "WORKDIR",
    "RUN",
    "EXPOSE",
    "VOLUME",
    "USER",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
    "ONBUILD",
    "MAINTAINER",
)

#: Flags each instruction accepts (Docker's BFlags): name -> "bool" | "string".
FLAGS: dict[str, dict[str, str]] = {
    "from": {"platform": "string"},
    "copy": {"from": "string", "chown": "string", "chmod": "string", "link": "bool", "parents": "bool", "exclude": "string"},
    "add": {
        "chown": "string",
        "chmod": "string",
        "link": "bool",
        "checksum": "string",
        "keep-git-dir": "bool",
        "exclude": "string",
    },
    "run": {"mount": "string", "network": "string", "security": "string"},
    "healthcheck": {
        "interval": "string",
        "timeout": "string",
        "start-period": "string",
        "start-interval": "string",
        "retries": "string",
    },
}

# Go's unicode.IsSpace, and the parser's narrower reWhitespace.
_GO_SPACES = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_RE_WS = re.compile(r"[\t\v\f\r ]+")
_RE_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*\Z")
_DIRECTIVES = ("escape", "syntax", "check")
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}\Z")
_ARG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_ROOT_USERS = ("0", "root", "0:0", "root:root", "root:0", "0:root")


def _isspace(ch: str) -> bool:
    return ch in _GO_SPACES


def _trim_left(s: str) -> str:
    return s.lstrip(_GO_SPACES)


def _trim(s: str) -> str:
    return s.strip(_GO_SPACES)


class DockerfileSyntaxError(Exception):
    """A syntax error inside one instruction (the caller adds the line)."""


# -- lines -> instructions -----------------------------------------------------


@dataclass
class Instruction:
    """One instruction, its continuation lines joined, as Docker's parser sees it."""

    word: str  # the instruction as written ("Label")
    cmd: str  # lower case ("label")
    flags: list[str]  # ["--chmod=0755", ...]
    rest: str  # the arguments, trimmed
    line: int  # first line (1-based)
    end_line: int
    original: str  # the joined line

    @property
    def name(self) -> str:
        return self.word.upper()


@dataclass
class Parsed:
    instructions: list[Instruction]
    escape: str = "\\"
    directives: dict[str, str] = field(default_factory=dict)


class _Directives:
    def __init__(self) -> None:
        self.escape = "\\"
        self.done = False
        self.seen: dict[str, str] = {}
        self._cont = re.compile(r"\\[ \t]*\Z")

    def check(self, line: str, lineno: int) -> None:
        """buildkit's possibleParserDirective."""
        if self.done:
            return
        m = _RE_DIRECTIVE.match(line)
        if not m or m.group(1).lower() not in _DIRECTIVES:
            self.done = True
            return
        key = m.group(1).lower()
        if key in self.seen:
            raise SpecError(
                f"only one {key} parser directive can be used", line=lineno, field=f"# {key}=", hint="remove the second one"
            )
        self.seen[key] = m.group(2)
        if key == "escape":
            if m.group(2) not in ("\\", "`"):
                raise SpecError(
                    "the escape directive takes \\ or `", line=lineno, field="# escape=", value=m.group(2), allowed="\\, `"
                )
            self.escape = m.group(2)
            self._cont = re.compile(re.escape(self.escape) + r"[ \t]*\Z")

    def continues(self, line: str) -> tuple[str, bool]:
        """(line without the continuation character, whether it ended)."""
        m = self._cont.search(line)
        if m:
            return line[: m.start()], False
        return line, True


def _is_comment(raw: str) -> bool:
    return _trim_left(raw).startswith("#")


def parse(text: str) -> Parsed:
    """Split a Dockerfile into instructions, exactly as buildkit's parser.Parse
    does (SpecErrors carry the line but no file; load() adds it)."""
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    lines = [l[:-1] if l.endswith("\r") else l for l in lines]
    d = _Directives()
    out: list[Instruction] = []
    i, n = 0, len(lines)
    while i < n:
        raw = _trim_left(lines[i])
        i += 1
        d.check(raw, i)
        processed = "" if raw.startswith("#") else raw
        start = i
        line, ended = d.continues(processed)
        if ended and line == "":
            continue
        while not ended and i < n:
            raw = lines[i]
            i += 1
            d.check(raw, i)
            if _is_comment(raw) or not _trim_left(raw):
                continue
            cont, ended = d.continues(raw)
            line += cont
        out.append(_instruction(line, start, i))
    return Parsed(out, d.escape, dict(d.seen))


def _instruction(line: str, start: int, end: int) -> Instruction:
    parts = _RE_WS.split(_trim(line), maxsplit=1)
    word = parts[0]
    rest = ""
    flags: list[str] = []
    if len(parts) == 2:
        rest, flags = _builder_flags(parts[1])
    return Instruction(word=word, cmd=word.lower(), flags=flags, rest=_trim(rest), line=start, end_line=end, original=line)


def _builder_flags(line: str) -> tuple[str, list[str]]:
    """buildkit's extractBuilderFlags: leading `--name[=value]` words.

    Not parse_words with a flag filter: buildkit has two tokenizers that
    disagree, and `docker build` is the judge. This one removes quotes and
    escapes, always escapes with a backslash (the `# escape=` directive does
    not apply), stops at the first word not starting with `--` and at `--`
    itself, and returns the rest of the line untouched; parse_words keeps
    quotes and escapes for the shell-word processor, uses the directive's
    escape character and takes no escape inside single quotes."""
    words: list[str] = []
    word: list[str] = []
    phase = "spaces"
    quote = ""
    blank_ok = False
    pos, n = 0, len(line)
    while pos <= n:
        ch = line[pos] if pos < n else ""
        if phase == "spaces":
            if pos == n:
                break
            if _isspace(ch):
                pos += 1
                continue
            if ch != "-" or pos + 1 == n or line[pos + 1] != "-":
                return line[pos:], words
            phase = "word"
        if phase in ("word", "quote") and pos == n:
            w = "".join(word)
            if w != "--" and (blank_ok or w):
                words.append(w)
            break
        if phase == "word":
            if _isspace(ch):
                phase = "spaces"
                w = "".join(word)
                if w == "--":
                    return line[pos:], words
                if blank_ok or w:
                    words.append(w)
                word, blank_ok = [], False
                pos += 1
                continue
            if ch in "'\"":
                quote, blank_ok, phase = ch, True, "quote"
                pos += 1
                continue
            if ch == "\\":
                if pos + 1 == n:
                    pos += 1
                    continue
                pos += 1
                ch = line[pos]
            word.append(ch)
            pos += 1
            continue
        # phase == "quote"
        if ch == quote:
            phase = "word"
            pos += 1
            continue
        if ch == "\\":
            if pos + 1 == n:
                phase = "word"
                pos += 1
                continue
            pos += 1
            ch = line[pos]
        word.append(ch)
        pos += 1
    return "", words


# -- argument shapes (buildkit's line_parsers.go) ------------------------------


def parse_words(rest: str, escape: str = "\\") -> list[str]:
    """Words split on whitespace, quotes and escapes KEPT (removed later by
    the shell-word processor), as buildkit's parseWords."""
    words: list[str] = []
    phase = "spaces"
    quote = ""
    blank_ok = False
    word: list[str] = []
    pos, n = 0, len(rest)
    while pos <= n:
        ch = rest[pos] if pos < n else ""
        if phase == "spaces":
            if pos == n:
                break
            if _isspace(ch):
                pos += 1
                continue
            phase = "word"
        if phase in ("word", "quote") and pos == n:
            if blank_ok or word:
                words.append("".join(word))
            break
        if phase == "word":
            if _isspace(ch):
                phase = "spaces"
                if blank_ok or word:
                    words.append("".join(word))
                word, blank_ok = [], False
                pos += 1
                continue
            if ch in "'\"":
                quote, blank_ok, phase = ch, True, "quote"
            if ch == escape:
                if pos + 1 == n:
                    pos += 1
                    continue
                word.append(ch)
                pos += 1
                ch = rest[pos]
            word.append(ch)
            pos += 1
            continue
        # phase == "quote"
        if ch == quote:
            phase = "word"
        if ch == escape and quote != "'":
            if pos + 1 == n:
                phase = "word"
                pos += 1
                continue
            pos += 1
            word.append(ch)
            ch = rest[pos]
        word.append(ch)
        pos += 1
    return words


def parse_name_val(rest: str, what: str, escape: str = "\\") -> list[tuple[str, str]]:
    """LABEL/ENV arguments as raw (key, value) pairs, quotes still in place:
    `k=v k2="v 2"`, or the legacy `KEY value with spaces`."""
    words = parse_words(rest, escape)
    if not words:
        raise DockerfileSyntaxError(f"{what} needs at least one key=value")
    if "=" not in words[0]:
        parts = _RE_WS.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise DockerfileSyntaxError(f"{what} needs a value: write {what} {parts[0]}=VALUE")
        return [(parts[0], parts[1])]
    pairs = []
    for w in words:
        if "=" not in w:
            raise DockerfileSyntaxError(f"can't find = in {w!r}; write it as name=value")
        k, _, v = w.partition("=")
        if not k:
            raise DockerfileSyntaxError(f"{what} names can not be blank")
        pairs.append((k, v))
    return pairs


class _NotStrings(Exception):
    pass


def parse_json(rest: str) -> list[str] | None:
    """A JSON array of strings, or None when `rest` is not JSON (shell form);
    a JSON array holding non-strings is an error, as in Docker."""
    text = rest.lstrip(_GO_SPACES)
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text, parse_constant=lambda c: _fail_json(c))
    except (ValueError, _NotStrings):
        return None
    if not isinstance(value, list):
        return None
    out = []
    for item in value:
        if not isinstance(item, str):
            raise DockerfileSyntaxError("when using the JSON array form, every element must be a string")
        # Go turns unpaired surrogate escapes into U+FFFD.
        out.append(item.encode("utf-16", "surrogatepass").decode("utf-16", "replace"))
    return out


def _fail_json(c: str) -> Any:
    raise _NotStrings(c)


# -- shell words (buildkit's shell/lex.go) -------------------------------------


class _Undefined(Exception):
    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


class ShellWord:
    """Quote removal and variable substitution of one word, as Docker's
    ProcessWord, except that an unset variable is an error (see module doc)."""

    def __init__(self, text: str, env: dict[str, str], escape: str = "\\"):
        self.s = text
        self.i = 0
        self.env = env
        self.esc = escape
        self.missing: list[str] = []

    def peek(self) -> str | None:
        return self.s[self.i] if self.i < len(self.s) else None

    def next(self) -> str | None:
        ch = self.peek()
        if ch is not None:
            self.i += 1
        return ch

    def process(self) -> str:
        out = self.stop_on(None)
        if self.missing:
            raise _Undefined(self.missing[0])
        return out

    def stop_on(self, stop: str | None, raw_escapes: bool = False) -> str:
        out: list[str] = []
        while self.peek() is not None:
            ch = self.peek()
            if stop is not None and ch == stop:
                self.next()
                return "".join(out)
            if ch == "'":
                out.append(self.single())
            elif ch == '"':
                out.append(self.double())
            elif ch == "$":
                out.append(self.dollar())
            else:
                ch = self.next()
                if ch == self.esc:
                    if raw_escapes:
                        out.append(ch)
                    ch = self.next()
                    if ch is None:
                        break
                out.append(ch)  # type: ignore[arg-type]
        if stop is not None:
            raise DockerfileSyntaxError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(out)

    def single(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.next()
            if ch is None:
                raise DockerfileSyntaxError("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                return "".join(out)
            out.append(ch)

    def double(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.peek()
            if ch is None:
                raise DockerfileSyntaxError("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self.next()
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.esc:
                nxt = self.peek()
                if nxt is None:
                    continue
                if nxt in ('"', "$", self.esc):
                    ch = self.next()
            out.append(ch)  # type: ignore[arg-type]

    def lookup(self, name: str) -> tuple[str, bool]:
        if name in self.env:
            return self.env[name], True
        return "", False

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            if name == "":
                return "$"
            value, found = self.lookup(name)
            if not found:
                self.missing.append(name)
            return value
        self.next()
        first = self.peek()
        if first is None:
            raise DockerfileSyntaxError("syntax error: missing '}'")
        if first in "{}:":
            raise DockerfileSyntaxError("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        if ch is None:
            raise DockerfileSyntaxError("syntax error: missing '}'")
        if ch == "}":
            value, found = self.lookup(name)
            if not found:
                self.missing.append(name)
            return value
        null_is_unset = False
        modifier = ch or ""
        if ch == ":":
            null_is_unset = True
            ch = self.next()
            modifier += ch or ""
        if ch in ("+", "-", "?"):
            outer, self.missing = self.missing, []
            try:
                word = self.stop_on("}")
            except DockerfileSyntaxError:
                if self.peek() is None:
                    raise DockerfileSyntaxError("syntax error: missing '}'") from None
                raise
            inner, self.missing = self.missing, outer
            value, found = self.lookup(name)
            empty = not found or (null_is_unset and value == "")
            if ch == "-":
                if empty:
                    self.missing.extend(inner)
                    return word
                return value
            if ch == "+":
                if empty:
                    return ""
                self.missing.extend(inner)
                return word
            if not found or (null_is_unset and value == ""):  # "?"
                self.missing.extend(inner)
                why = word or ("is not allowed to be unset" if not found else "is not allowed to be empty")
                raise DockerfileSyntaxError(f"{name}: {why}")
            return value
        if ch in ("#", "%", "/"):
            raise DockerfileSyntaxError(
                f"the ${{{name}{modifier}...}} substitution is not supported by urunix; compute the value beforehand"
            )
        raise DockerfileSyntaxError(f"unsupported modifier ({modifier}) in substitution")

    def name(self) -> str:
        out: list[str] = []
        while self.peek() is not None:
            ch = self.peek()
            assert ch is not None
            if not out and ch.isdecimal():
                while self.peek() is not None and self.peek().isdecimal():  # type: ignore[union-attr]
                    out.append(self.next())  # type: ignore[arg-type]
                return "".join(out)
            if not out and ch in "@*#?-$!0":
                self.next()
                return ch
            if not (ch.isalpha() or ch.isdecimal() or ch == "_"):
                break
            out.append(self.next())  # type: ignore[arg-type]
        return "".join(out)


def process_word(text: str, env: dict[str, str], escape: str = "\\") -> str:
    """Docker's ProcessWord (quotes removed, escapes applied, variables
    substituted); raises DockerfileSyntaxError, or _Undefined for an unset
    variable."""
    return ShellWord(text, env, escape).process()


# -- the mapping onto a Spec -----------------------------------------------------


def load(path: Path, from_map: dict[str, str] | None = None) -> Spec:
    """Read a Containerfile into a Spec. `from_map` maps a `FROM name:tag` to
    a local image archive or OCI layout (the CLI's `--from NAME=PATH`)."""
    text = read_text(path)
    try:
        parsed = parse(text)
    except SpecError as e:
        for p in e.problems:
            p.file = display_path(path)
        raise
    return _Mapper(path, parsed, from_map or {}).run()


class _Mapper:
    def __init__(self, path: Path, parsed: Parsed, from_map: dict[str, str]):
        self.spec = Spec(file=path, format="containerfile")
        self.parsed = parsed
        self.esc = parsed.escape
        self.from_map = from_map
        self.problems: list[Problem] = []
        self.file = display_path(path)
        self.meta_args: dict[str, str | None] = {}
        self.args: dict[str, str | None] = {}
        self.stages = 0
        self.workdir = "/"
        self.dirs: set[str] = {"/"}
        self.base_dirs: set[str] = set()  # directories of the FROM image
        self.workdirs: list[tuple[Instruction, str]] = []
        self.context: BuildContext | None | Literal[False] = None  # False: it cannot be read
        self.label_lines: dict[str, int] = {}
        self.unsupported: list[NotSupportedYet] = []

    # -- helpers -------------------------------------------------------------
    def problem(
        self,
        ins: Instruction | None,
        message: str,
        *,
        field: str | None = None,
        value: Any = _UNSET,
        allowed: str | None = None,
        hint: str | None = None,
    ) -> Problem:
        return Problem(
            message,
            file=self.file,
            line=ins.line if ins else None,
            field=field or (ins.name if ins else None),
            value=value,
            allowed=allowed,
            hint=hint,
        )

    def fail(self, ins: Instruction | None, message: str, **kw: Any) -> None:
        self.problems.append(self.problem(ins, message, **kw))

    def not_yet(self, ins: Instruction, what: str, **kw: Any) -> None:
        e = NotSupportedYet(what, file=self.file, line=ins.line, field=kw.pop("field", ins.name), **kw)
        self.unsupported.append(e)
        self.problems.append(e.problem)

    def note(self, ins: Instruction, message: str, *, field: str | None = None, hint: str | None = None) -> None:
        self.spec.notes.append(self.problem(ins, message, field=field, hint=hint).render("warning"))

    def env(self) -> dict[str, str]:
        """What $VAR sees: ARGs with a value, then ENV (ENV wins, as in Docker)."""
        out = {k: v for k, v in self.args.items() if v is not None}
        out.update(self.spec.env)
        return out

    def word(self, ins: Instruction, text: str, env: dict[str, str] | None = None, field: str | None = None) -> str | None:
        """process_word, turning its errors into problems on this line."""
        try:
            return process_word(text, self.env() if env is None else env, self.esc)
        except _Undefined as e:
            if e.name in self.args or (self.stages == 0 and e.name in self.meta_args):
                hint = f"give the ARG a default (ARG {e.name}=...); urunix has no --build-arg"
            elif e.name in self.meta_args:
                hint = f"an ARG before FROM is seen by FROM only: declare it again after FROM (ARG {e.name})"
            else:
                hint = (
                    f"define it first (ARG {e.name}=... or ENV {e.name}=...), or write \\${e.name} "
                    "(or use single quotes) for a literal $"
                )
            self.fail(
                ins,
                f"${e.name} is not set here; Docker would silently put an empty string in its place",
                field=field,
                value=text,
                hint=hint,
            )
        except DockerfileSyntaxError as e:
            self.fail(ins, str(e), field=field, value=text)
        return None

    # -- the walk ------------------------------------------------------------
    def run(self) -> Spec:
        if not self.parsed.instructions:
            raise SpecError(
                "the Containerfile has no instructions",
                file=self.file,
                hint="start it with FROM scratch, then COPY the kernel and LABEL the urunc annotations",
            )
        for ins in self.parsed.instructions:
            handler = getattr(self, "do_" + ins.cmd, None)
            if handler is None:
                self.fail(
                    ins,
                    "is not a Dockerfile instruction",
                    field=ins.word,
                    allowed=", ".join(INSTRUCTIONS),
                    hint=did_you_mean(ins.name, INSTRUCTIONS),
                )
                continue
            if self.stages == 0 and ins.cmd not in ("from", "arg"):
                self.fail(ins, "comes before FROM; only ARG may", hint="start the Containerfile with FROM scratch")
                continue
            flags = self.flags(ins)
            if flags is None:
                continue
            try:
                handler(ins, flags)
            except DockerfileSyntaxError as e:
                self.fail(ins, str(e))
        if self.stages == 0:
            self.fail(
                self.parsed.instructions[0], "the Containerfile has no FROM", field="FROM", hint="start it with FROM scratch"
            )
        try:
            self.spec.files = later_wins(self.spec.files)
        except CannotSplit as e:
            self.problems.append(
                Problem(
                    "copies a directory onto one an earlier COPY made, and a symlink lies at its top "
                    f"({e.name}); urunix cannot merge those yet",
                    file=self.file,
                    line=self.spec.lines.get(e.entry.field),
                    field=e.entry.field,
                    hint="copy the two directories to different places, or move the symlink one level down",
                )
            )
        self.make_workdirs()
        if self.problems:
            self.problems.sort(key=lambda p: p.line or 0)
            if len(self.unsupported) == len(self.problems):  # only "not supported yet": say so by type too
                first = self.unsupported[0]
                first.problems = self.problems
                raise first
            # kept for validate, which adds its own: all of them in one run
            self.spec.problems.extend(self.problems)
        return self.spec

    def make_workdirs(self) -> None:
        """Docker's WORKDIR makes its directory. One that no COPY fills and
        the FROM image lacks is added as an empty directory: the build
        context's own directory with everything in it left out."""
        done: set[str] = set()
        for ins, path in self.workdirs:
            if path in done or path == "/" or path in self.base_dirs:
                continue
            done.add(path)
            if any(f.target == path or f.target.startswith(path + "/") for f in self.spec.files):
                continue
            root = self.spec.base_dir
            try:
                everything = frozenset(os.listdir(root))
            except OSError:
                continue
            entry_field = f"WORKDIR {path}"
            self.spec.files.append(FileEntry(source=".", path=root, target=path, field=entry_field, exclude=everything))
            self.spec.lines[entry_field] = ins.line

    def flags(self, ins: Instruction) -> dict[str, str] | None:
        """buildkit's BFlags.Parse for this instruction."""
        known = FLAGS.get(ins.cmd, {})
        out: dict[str, str] = {}
        for arg in ins.flags:
            if arg == "--":
                break
            name, has_value, value = arg[2:].partition("=")
            if name not in known:
                self.fail(
                    ins,
                    f"unknown flag --{name}",
                    field=f"{ins.name} --{name}",
                    allowed=", ".join("--" + k for k in known) or f"{ins.name} takes no flags",
                    hint=did_you_mean(name, known),
                )
                return None
            if name in out:
                self.fail(ins, f"the flag --{name} is given twice", field=f"{ins.name} --{name}")
                return None
            if known[name] == "bool":
                if has_value and value.lower() not in ("true", "false"):
                    self.fail(ins, f"--{name} takes true or false", field=f"{ins.name} --{name}", value=value)
                    return None
                out[name] = value.lower() if has_value else "true"
            else:
                if not has_value:
                    self.fail(ins, f"--{name} needs a value: write --{name}=VALUE", field=f"{ins.name} --{name}")
                    return None
                out[name] = value
        return out

    # -- instructions --------------------------------------------------------
    def do_arg(self, ins: Instruction, flags: dict[str, str]) -> None:
        words = parse_words(ins.rest, self.esc)
        if not words:
            raise DockerfileSyntaxError("ARG needs a name")
        for w in words:
            name, eq, default = w.partition("=")
            if not _ARG_NAME.match(name):
                self.fail(ins, "is not a valid ARG name", value=name, allowed="letters, digits and _, not starting with a digit")
                continue
            value: str | None = None
            if eq:
                env = self.meta_env() if self.stages == 0 else self.env()
                value = self.word(ins, default, env=env, field=f"ARG {name}")
                if value is None:
                    continue
            elif self.stages:
                value = self.meta_args.get(name)  # ARG NAME in a stage: the global default
            (self.meta_args if self.stages == 0 else self.args)[name] = value

    def meta_env(self) -> dict[str, str]:
        return {k: v for k, v in self.meta_args.items() if v is not None}

    def do_from(self, ins: Instruction, flags: dict[str, str]) -> None:
        self.stages += 1
        args = _RE_WS.split(ins.rest) if ins.rest else []
        if self.stages > 1:
            self.fail(
                ins,
                "a second FROM starts a multi-stage build, which urunix does not run",
                hint="build the earlier stages beforehand (docker build), take the files out "
                "(docker create + docker cp), and COPY them from the build context",
            )
            return
        if len(args) == 3 and args[1].lower() == "as":
            args = args[:1]
        if len(args) != 1:
            raise DockerfileSyntaxError("FROM takes an image and optionally AS NAME")
        meta = self.meta_env()
        ref = self.word(ins, args[0], env=meta, field="FROM")
        if "platform" in flags:
            platform = self.word(ins, flags["platform"], env=meta, field="FROM --platform")
            if platform is not None:
                self.platform(ins, platform)
        if ref is None:
            return
        self.spec.lines["FROM"] = ins.line
        if ref == "scratch":
            self.default_path()
            return
        if ref in self.from_map:
            origin = str(Path(self.from_map[ref]).absolute())
        elif ref.startswith(("./", "../", "/")) or ref in (".", ".."):
            origin = ref
        elif _DIGEST.search(ref):
            origin = ref
        else:
            hint = (
                "pin it by digest (FROM name@sha256:...), name a local image archive or OCI layout "
                "(FROM ./image.tar), or map the name to one with --from NAME=PATH"
            )
            local = self.spec.base_dir / ref
            if os.path.lexists(local):
                hint = f"to use the local file, write FROM ./{ref}"
            elif self.from_map:
                close = did_you_mean(ref, self.from_map)
                hint = close + " (a --from name)" if close else hint
            self.fail(
                ins,
                "a registry image needs a digest: a tag can move, and urunix does not pull",
                value=ref,
                field="FROM",
                hint=hint,
            )
            return
        self.spec.rootfs = Rootfs(type="base", origin=origin, field="FROM")
        self.dirs.clear()
        self.inherit(ins, origin)
        self.default_path()

    def default_path(self) -> None:
        """Docker gives every stage a PATH when its image has none."""
        if "PATH" not in self.spec.env:
            self.spec.env["PATH"] = DEFAULT_PATH

    def inherit(self, ins: Instruction, origin: str) -> None:
        """What Docker takes from the FROM image: its labels (urunc's
        included; later LABELs win), Env (ENV replaces in place), WorkingDir,
        and which paths are directories (COPY file /dir writes /dir/file).
        An image urunix cannot read here is left to validate to report."""
        from ..rootfs import flatten as F
        from ..rootfs.sources import resolve as resolve_origin

        try:
            o = resolve_origin(origin, self.spec.base_dir, {"field": "FROM"})
            if o.kind != "image":
                return
            with F.flatten(o.location) as flat:
                labels = flat.config.get("Labels") or {}
                env = flat.env()
                workdir = flat.workdir()
                self.base_dirs = {"/" + m.path for m in flat.members if m.kind == "dir"}
        except (SpecError, OSError, ValueError):
            return
        if isinstance(labels, dict):
            for key, value in labels.items():
                if not isinstance(key, str) or not isinstance(value, str):
                    continue
                if key.startswith(PREFIX):
                    self.spec.annotations[key[len(PREFIX) :]] = value
                    self.spec.lines[f"annotations.{key[len(PREFIX) :]}"] = ins.line
                else:
                    self.spec.labels[key] = value
                    self.spec.lines[f"labels.{key}"] = ins.line
        for e in env:
            k, _, v = e.partition("=")
            self.spec.env[k] = v
        if workdir:
            self.workdir = self.spec.workdir = workdir

    def platform(self, ins: Instruction, platform: str) -> None:
        parts = platform.split("/")
        if len(parts) < 2 or parts[0] != "linux" or not parts[1]:
            self.fail(
                ins,
                "urunix builds linux images only",
                field="FROM --platform",
                value=platform,
                allowed="linux/amd64, linux/arm64",
            )
            return
        self.spec.architecture = parts[1]
        self.spec.lines["architecture"] = ins.line

    def do_label(self, ins: Instruction, flags: dict[str, str]) -> None:
        env = self.env()
        for rawkey, rawvalue in parse_name_val(ins.rest, "LABEL", self.esc):
            key = self.word(ins, rawkey, env=env, field="LABEL")
            if key is None:
                continue
            value = self.word(ins, rawvalue, env=env, field=f"LABEL {key}")
            if value is None:
                continue
            if not key:
                self.fail(ins, "a label needs a name", value=rawkey)
                continue
            if key.startswith(PREFIX):
                short = key[len(PREFIX) :]
                fieldname = f"annotations.{short}"
                self.spec.annotations[short] = value
                if short == "cmdline" and value.count("'") % 2:
                    self.note(
                        ins,
                        "has an unbalanced single quote; it is kept byte for byte, but urunc and "
                        "urunit group a Linux guest's multi-word arguments by single quotes",
                        field=f"LABEL {key}",
                        hint="check the quoting of the command line",
                    )
            else:
                fieldname = f"labels.{key}"
                self.spec.labels[key] = value
            if fieldname in self.label_lines and fieldname.startswith("annotations."):
                self.note(
                    ins,
                    f"is set again (first on line {self.label_lines[fieldname]}); the last one wins, as in Docker",
                    field=f"LABEL {key}",
                )
            self.label_lines[fieldname] = ins.line
            self.spec.lines[fieldname] = ins.line

    def do_env(self, ins: Instruction, flags: dict[str, str]) -> None:
        env = self.env()  # values in one ENV see the env before it, as in Docker
        for rawkey, rawvalue in parse_name_val(ins.rest, "ENV", self.esc):
            key = self.word(ins, rawkey, env=env, field="ENV")
            value = self.word(ins, rawvalue, env=env, field=f"ENV {key}") if key is not None else None
            if key is None or value is None:
                continue
            if not key or "=" in key:
                self.fail(ins, "is not a valid environment variable name", value=key)
                continue
            self.spec.env[key] = value  # a re-set keeps its place, as in Docker
            self.spec.lines[f"env.{key}"] = ins.line
        self.spec.lines.setdefault("env", ins.line)

    def argv(self, ins: Instruction, what: str) -> list[str] | None:
        if not ins.rest:
            raise DockerfileSyntaxError(f'{ins.name} needs arguments, in JSON form: {ins.name} ["/app", "--flag"]')
        argv = parse_json(ins.rest)
        if argv is None and ins.rest.startswith("["):
            self.fail(
                ins,
                'is not a valid JSON array, so Docker would read it in shell form (/bin/sh -c "...")',
                value=ins.rest,
                hint='write a JSON array of double-quoted strings: ["/app", "--flag"]',
            )
            return None
        if argv is None:
            try:
                guess = shlex.split(ins.rest)
            except ValueError:
                guess = ins.rest.split()
            self.fail(
                ins,
                f'{ins.name} in shell form would run /bin/sh -c "...", which a unikernel does not have',
                value=ins.rest,
                hint=f"write the {what} in JSON form: {ins.name} {json.dumps(guess, ensure_ascii=False)}",
            )
            return None
        return argv

    def do_cmd(self, ins: Instruction, flags: dict[str, str]) -> None:
        argv = self.argv(ins, "command")
        if argv is None:
            return
        if self.spec.cmd is not None:
            self.note(ins, f"CMD is given again (first on line {self.spec.lines['cmd']}); the last one wins, as in Docker")
        self.spec.cmd = argv
        self.spec.lines["cmd"] = ins.line

    def do_entrypoint(self, ins: Instruction, flags: dict[str, str]) -> None:
        argv = self.argv(ins, "entrypoint")
        if argv is None:
            return
        if self.spec.entrypoint is not None:
            self.note(
                ins, f"ENTRYPOINT is given again (first on line {self.spec.lines['entrypoint']}); the last one wins, as in Docker"
            )
        self.spec.entrypoint = argv or None  # Docker: ENTRYPOINT [] means none
        self.spec.lines["entrypoint"] = ins.line

    def do_workdir(self, ins: Instruction, flags: dict[str, str]) -> None:
        if not ins.rest:
            raise DockerfileSyntaxError("WORKDIR needs a path")
        path = self.word(ins, ins.rest)
        if path is None:
            return
        self.workdir = posixpath.normpath(posixpath.join(self.workdir, path))
        if self.workdir.startswith("//"):
            self.workdir = "/" + self.workdir.lstrip("/")
        self.dirs.add(self.workdir)
        self.spec.workdir = self.workdir
        self.workdirs.append((ins, self.workdir))

    def do_copy(self, ins: Instruction, flags: dict[str, str]) -> None:
        self.copy(ins, flags)

    def do_add(self, ins: Instruction, flags: dict[str, str]) -> None:
        self.copy(ins, flags)

    def copy(self, ins: Instruction, flags: dict[str, str]) -> None:
        name = ins.name
        if "from" in flags:
            self.fail(
                ins,
                "copies from another build stage or image (a multi-stage build), which urunix does not run",
                field=f"{name} --from={flags['from']}",
                hint="take the file out beforehand (docker create IMAGE, then docker cp) and COPY it from the build context",
            )
            return
        for unsupported in ("parents", "exclude", "checksum", "keep-git-dir"):
            if unsupported in flags and flags[unsupported] != "false":
                self.not_yet(ins, f"{name} --{unsupported}", field=f"{name} --{unsupported}")
                return
        if "chown" in flags:
            owner = self.word(ins, flags["chown"], field=f"{name} --chown")
            if owner is None:
                return
            if owner not in _ROOT_USERS:
                self.fail(
                    ins,
                    "urunix writes every file owned by root (0:0)",
                    field=f"{name} --chown",
                    value=owner,
                    allowed="0:0, root",
                    hint="drop --chown, or write --chown=0:0",
                )
                return
        args = parse_json(ins.rest)
        if args is None:
            args = _RE_WS.split(ins.rest) if ins.rest else []
        if len(args) < 2:
            raise DockerfileSyntaxError(f"{name} needs a source and a destination: {name} SRC... DEST")
        words = [self.word(ins, a) for a in args]
        if any(w is None for w in words):
            return
        *sources, dest = [w for w in words if w is not None]
        if any(s.startswith("<<") for s in sources):
            self.not_yet(ins, f"a heredoc in {name}", hint="put the content in a file and COPY it")
            return
        matches: list[tuple[str, Resolved]] = []
        for src in sources:
            pairs = self.sources(ins, name, src)
            if pairs is None:
                return
            matches.extend(pairs)
        dir_like = dest.endswith("/") or dest == "." or dest.endswith("/.")
        target_base = posixpath.normpath(posixpath.join(self.workdir, dest)) if dest else ""
        if target_base.startswith("//"):
            target_base = "/" + target_base.lstrip("/")
        if len(matches) > 1 and not dir_like:
            self.fail(
                ins, "with several sources, the destination must be a directory ending in /", value=dest, hint=f"write {dest}/"
            )
            return
        into = dir_like or target_base in self.dirs or target_base in self.base_dirs
        mode = None
        if "chmod" in flags:
            text = self.word(ins, flags["chmod"], field=f"{name} --chmod")
            if text is None:
                return
            try:
                mode = int(text, 8)
            except ValueError:
                self.fail(ins, "--chmod takes an octal mode", field=f"{name} --chmod", value=text, hint="e.g. --chmod=0755")
                return
        for src, found in matches:
            path = self.spec.base_dir / found.rel if found.rel else self.spec.base_dir
            if name == "ADD" and not self.add_ok(ins, src, path):
                return
            is_dir = found.kind == "dir"
            if is_dir or not into:
                target = target_base
            else:
                target = posixpath.join(target_base, posixpath.basename(posixpath.normpath(src.lstrip("/") or ".")))
            if mode is not None and not self.mode_ok(ins, name, path, mode):
                return
            entry_field = f"{name} {src}"
            if entry_field in self.spec.lines:
                entry_field = f"{name} {src} -> {target}"
            entry = FileEntry(source=src, path=path, target=target, field=entry_field, exclude=found.exclude)
            try:
                # a directory copied to / (COPY rootfs/ /): its children, each below /
                self.spec.files.extend(children(entry) if is_dir and target == "/" else [entry])
            except CannotSplit as e:
                self.not_yet(
                    ins,
                    f"{name} of a directory to / when a symlink lies at its top ({e.name})",
                    field=entry_field,
                    hint="copy the directory's contents one by one, or put the symlink one level down",
                )
                return
            self.spec.lines[entry_field] = ins.line
            if is_dir:
                self.dirs.add(target)
            parent = posixpath.dirname(target)
            while parent and parent not in self.dirs:
                self.dirs.add(parent)
                parent = posixpath.dirname(parent)

    def sources(self, ins: Instruction, name: str, src: str) -> list[tuple[str, Resolved]] | None:
        """One COPY source as (as written or matched, where it resolves in the
        build context): wildcards expanded, symlinks followed inside the
        context only (loaders/buildcontext.py), .dockerignore applied."""
        if "://" in src or src.startswith("git@"):
            if name == "ADD":
                self.fail(
                    ins,
                    "ADD from a URL is not supported: urunix does not download",
                    value=src,
                    hint="download the file beforehand and COPY it from the build context",
                )
            else:
                self.fail(ins, "COPY takes files from the build context, not URLs", value=src)
            return None
        rel = posixpath.normpath(posixpath.join(".", src.lstrip("/") or "."))
        if rel == ".." or rel.startswith("../"):
            self.fail(
                ins,
                "the source is outside the build context (the Containerfile's directory)",
                value=src,
                field=f"{name} {src}",
                hint="move the file next to the Containerfile, or below it",
            )
            return None
        context = self.build_context(ins)
        if context is None:
            return None
        try:
            if has_wildcards(src):
                try:
                    names = context.glob(src)
                except BadPattern:
                    names = []  # Docker: a malformed pattern matches nothing
                if not names:
                    self.fail(
                        ins,
                        "no file in the build context matches",
                        value=src,
                        field=f"{name} {src}",
                        hint="Docker matches wildcards as Go's filepath.Match: [^a] negates, [!a] is "
                        '"!" or "a"; files .dockerignore excludes are not there'
                        if "[" in src
                        else "files .dockerignore excludes are not in the build context",
                    )
                    return None
                pairs = [(n, context.resolve(n)) for n in names]
            else:
                pairs = [(src, context.resolve(rel))]
        except ContextError as e:
            self.fail(ins, str(e), value=src, field=f"{name} {src}")
            return None
        except OSError as e:
            self.fail(ins, f"cannot read the build context: {e.strerror or e}", value=src, field=f"{name} {src}")
            return None
        for shown, found in pairs:
            if found.kind != "missing":
                continue
            if found.via_symlink:
                self.fail(
                    ins,
                    f"{shown} is a symlink that leads outside the build context, or to nothing in it: "
                    f"Docker follows it inside the context only, where /{found.rel} does not exist",
                    value=src,
                    field=f"{name} {src}",
                    hint="copy the file itself into the build context (cp -L), or point the symlink at a file inside the context",
                )
                return None
            if context.ignore is not None and os.path.lexists(self.spec.base_dir / found.rel):
                self.fail(
                    ins,
                    f"{shown} is excluded by .dockerignore, so it is not in the build context",
                    value=src,
                    field=f"{name} {src}",
                    hint="remove its pattern from .dockerignore, or add an exception (!pattern)",
                )
                return None
        return pairs

    def build_context(self, ins: Instruction) -> BuildContext | None:
        if self.context is None:
            try:
                self.context = BuildContext(str(self.spec.base_dir))
            except (ValueError, OSError) as e:
                self.fail(
                    None,
                    f"{dockerignore.FILE}: {e}",
                    field=dockerignore.FILE,
                    hint="Docker refuses the same pattern; fix or remove it",
                )
                self.context = False
        return self.context or None

    def add_ok(self, ins: Instruction, src: str, path: Path) -> bool:
        """ADD of a local file is COPY, except that Docker unpacks archives."""
        if not path.is_file():
            return True
        try:
            with open(path, "rb") as f:
                head = f.read(512)
        except OSError:
            return True
        archive = head[257:262] == b"ustar" or head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"(\xb5/\xfd"))
        if archive:
            self.not_yet(
                ins,
                "ADD of an archive (Docker would unpack it)",
                field=f"ADD {src}",
                hint="unpack it beforehand and COPY the directory, or COPY the archive to keep it whole",
            )
            return False
        return True

    def mode_ok(self, ins: Instruction, name: str, path: Path, mode: int) -> bool:
        if not path.exists():
            return True  # validate reports the missing source
        if path.is_file():
            writes = 0o755 if path.stat().st_mode & 0o111 else 0o644
            if mode == writes:
                return True
            self.not_yet(
                ins,
                f"{name} --chmod={mode:04o} (urunix writes 0755 for a file with an exec bit, "
                f"else 0644; this file gets {writes:04o})",
                field=f"{name} --chmod",
                hint=f"set the mode on the host file (chmod {'+x' if mode & 0o111 else '-x'} {path.name}) and drop --chmod",
            )
            return False
        self.not_yet(
            ins,
            f"{name} --chmod of a directory",
            field=f"{name} --chmod",
            hint="set the modes on the host files (chmod) and drop --chmod",
        )
        return False

    # -- what a unikernel image cannot do, or does not need ----------------------
    def do_run(self, ins: Instruction, flags: dict[str, str]) -> None:
        self.fail(
            ins,
            "runs a command at build time, which urunix does not do (there is no shell in a unikernel image)",
            hint="build the artifact beforehand (on the host, or with docker build) and COPY the result",
        )

    def do_onbuild(self, ins: Instruction, flags: dict[str, str]) -> None:
        self.fail(ins, "ONBUILD runs instructions in later builds, which urunix does not do", hint="remove it")

    def do_healthcheck(self, ins: Instruction, flags: dict[str, str]) -> None:
        if ins.rest.upper() == "NONE":
            self.note(ins, "HEALTHCHECK NONE has no effect on a unikernel image; ignored")
            return
        self.fail(
            ins,
            "a health check runs a command inside the container, which a unikernel guest cannot do",
            hint="remove it; check the service from outside (its network port)",
        )

    def do_shell(self, ins: Instruction, flags: dict[str, str]) -> None:
        self.fail(
            ins,
            "SHELL only matters for shell-form RUN/CMD/ENTRYPOINT, which urunix refuses",
            hint="remove it, and write CMD/ENTRYPOINT in JSON form",
        )

    def do_volume(self, ins: Instruction, flags: dict[str, str]) -> None:
        self.fail(
            ins,
            "a container volume is not visible to a unikernel guest the way VOLUME promises",
            hint="remove it; give the guest storage with the block or initrd annotations, "
            "or mount volumes when running the container",
        )

    def do_user(self, ins: Instruction, flags: dict[str, str]) -> None:
        user = self.word(ins, ins.rest)
        if user is None:
            return
        if user in _ROOT_USERS:
            self.note(ins, "USER root has no effect on a unikernel image; ignored")
            return
        self.fail(ins, "a unikernel guest has no users to switch to", value=user, allowed="root, 0, 0:0", hint="remove it")

    def do_expose(self, ins: Instruction, flags: dict[str, str]) -> None:
        self.note(ins, "EXPOSE is ignored: urunc gives the guest the container's network as is")

    def do_stopsignal(self, ins: Instruction, flags: dict[str, str]) -> None:
        self.note(ins, "STOPSIGNAL is ignored: urunc stops the guest by stopping its monitor")

    def do_maintainer(self, ins: Instruction, flags: dict[str, str]) -> None:
        self.note(
            ins,
            "MAINTAINER is deprecated and ignored",
            hint=f"write LABEL org.opencontainers.image.authors={json.dumps(ins.rest)}",
        )
