"""`.dockerignore`, with the semantics of the Docker CLI that sends the build
context (docs.docker.com "Dockerignore files", moby's patternmatcher):

- One pattern a line; a line starting with `#` is a comment; spaces around
  a pattern are dropped; `!` before a pattern makes it an exception. Each
  pattern is cleaned like a path (`./a/../b` -> `b`, a leading `/` dropped).
- `*` is any run of non-/ characters, `?` one non-/ character, `[...]` a
  class, `\\` escapes; `**` is any number of directories (zero included).
- A path is excluded when the last pattern that matches it, or one of its
  parent directories, is not an exception.
- The context walk skips an excluded directory unless an exception pattern
  starts with its path (then its contents are looked at one by one; the
  directory itself is made again only if something inside is kept).
- The file's own rules about itself and the Dockerfile: both still reach
  the builder, but a `COPY` sees them only when they are not excluded.

`Ignore.included(root)` gives what Docker's context holds: the relative
paths of the files, symlinks and directories COPY can see."""

from __future__ import annotations

import os
import posixpath
import re
import stat
from dataclasses import dataclass

from . import gomatch

FILE = ".dockerignore"
_REGEX_SPECIAL = ".+()|{}$"


@dataclass(frozen=True)
class Pattern:
    text: str  # cleaned, without the "!"
    exception: bool
    kind: str  # exact | prefix | suffix | regex
    regex: re.Pattern | None

    def matches(self, path: str) -> bool:
        if self.kind == "exact":
            return path == self.text
        if self.kind == "prefix":
            return path.startswith(self.text[:-2])
        if self.kind == "suffix":
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix.startswith("/") and path == suffix[1:])
        assert self.regex is not None
        return self.regex.match(path) is not None


def _clean(p: str) -> str:
    """Go's filepath.Clean on a relative or absolute slash path."""
    c = posixpath.normpath(p)
    if c.startswith("//"):
        c = "/" + c.lstrip("/")
    return c


def compile_pattern(text: str) -> Pattern:
    """One cleaned pattern (with its "!") -> Pattern; gomatch.BadPattern if
    Go's filepath.Match would refuse it, ValueError for a lone "!"."""
    exception = text.startswith("!")
    if exception:
        text = text[1:]
        if not text:
            raise ValueError('"!" alone is not a pattern')
    text = _clean(text)
    gomatch.match(text, ".")  # Docker refuses what filepath.Match refuses
    out, kind, i, n = ["^"], "exact", 0, len(text)
    while i < n:
        c, start = text[i], i
        if c == "*" and i + 1 < n and text[i + 1] == "*":
            i += 1
            if i + 1 < n and text[i + 1] == "/":
                i += 1  # "**/" is read as "**"
            if i + 1 >= n:  # "**" at the end: everything below
                if kind == "exact":
                    kind = "prefix"
                else:
                    out.append(".*")
                    kind = "regex"
            else:
                out.append("(.*/)?")
                kind = "regex"
            if start == 0:
                kind = "suffix"
        elif c == "*":
            out.append("[^/]*")
            kind = "regex"
        elif c == "?":
            out.append("[^/]")
            kind = "regex"
        elif c in _REGEX_SPECIAL:
            out.append("\\" + c)
        elif c == "\\":
            if i + 1 < n:
                i += 1
                out.append("\\" + text[i])
            else:
                out.append("\\\\")
        elif c in "[]":
            out.append(c)
            kind = "regex"
        else:
            out.append(c)
        i += 1
    regex = None
    if kind == "regex":
        try:
            regex = re.compile("".join(out) + r"\Z", re.DOTALL)
        except re.error as e:
            raise gomatch.BadPattern(str(e)) from None
    return Pattern(text, exception, kind, regex)


def read_patterns(text: str) -> list[str]:
    """The lines of a .dockerignore as Docker's ReadAll returns them."""
    out = []
    for lineno, line in enumerate(text.split("\n")):
        if lineno == 0:
            line = line.removeprefix("\ufeff")
        if line.startswith("#"):
            continue
        line = line.strip(" \t\r\n\v\f")
        if not line:
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip(" \t\r\n\v\f")
        if line:
            line = _clean(line)
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]
        out.append("!" + line if invert else line)
    return out


class Ignore:
    """The patterns of one .dockerignore."""

    def __init__(self, lines: list[str]):
        self.patterns = [compile_pattern(p) for p in lines]

    def excluded(self, path: str) -> bool:
        """Docker's MatchesOrParentMatches: the last pattern matching the
        path or a parent of it decides."""
        parents = []
        p = posixpath.dirname(path)
        while p and p != ".":
            parents.append(p)
            p = posixpath.dirname(p)
        out = False
        for pat in self.patterns:
            if pat.exception and not out:
                continue
            if pat.matches(path) or any(pat.matches(q) for q in parents):
                out = not pat.exception
        return out

    def may_keep_below(self, directory: str) -> bool:
        """Whether an exception could keep something inside an excluded
        directory (the CLI's walk then looks inside it)."""
        prefix = directory + "/"
        return any(p.exception and (p.text + "/").startswith(prefix) for p in self.patterns)

    def included(self, root: str) -> set[str]:
        """The context Docker sends: kept paths relative to `root`, with the
        parent directories the daemon makes for them."""
        kept: set[str] = set()
        stack = [""]
        while stack:
            rel_dir = stack.pop()
            with os.scandir(os.path.join(root, rel_dir) if rel_dir else root) as it:
                names = sorted(e.name for e in it)
            for name in names:
                rel = f"{rel_dir}/{name}" if rel_dir else name
                is_dir = stat.S_ISDIR(os.lstat(os.path.join(root, rel)).st_mode)
                if self.excluded(rel):
                    if is_dir and self.may_keep_below(rel):
                        stack.append(rel)
                    continue
                kept.add(rel)
                if is_dir:
                    stack.append(rel)
        for rel in list(kept):
            parent = posixpath.dirname(rel)
            while parent and parent not in kept:
                kept.add(parent)
                parent = posixpath.dirname(parent)
        return kept


def load(root: str) -> Ignore | None:
    """The context's .dockerignore, or None when there is none. Raises
    ValueError / gomatch.BadPattern for a pattern Docker refuses."""
    path = os.path.join(root, FILE)
    if not os.path.isfile(path):
        return None
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", "surrogateescape")
    return Ignore(read_patterns(text))
