"""Go's `path/filepath.Match`, which Docker's classic builder uses for COPY
wildcards. Python's fnmatch differs: `[!a]` is a negation there but a class
of "!" and "a" in Go (Go negates with `[^a]`), `\\` escapes, `*` and `?`
never match "/" in Go (a class can), and a malformed pattern is an error.

Written from Go's documented grammar:

    pattern:  { term }
    term:     '*'  any sequence of non-/ characters
              '?'  any single non-/ character
              '[' [ '^' ] { character-range } ']'   (non-empty)
              c    c itself (c != '*', '?', '\\\\', '[')
              '\\\\' c   c itself
    range:    c | '\\\\' c | lo '-' hi

A pattern that is malformed raises BadPattern, even where a match fails
before the bad part is reached (Go checks the rest of the pattern)."""

from __future__ import annotations


class BadPattern(ValueError):
    """Go's filepath.ErrBadPattern."""


def _scan_chunk(pattern: str) -> tuple[bool, str, str]:
    """(a leading star, the chunk up to the next star outside a class, rest)."""
    star = False
    while pattern.startswith("*"):
        pattern, star = pattern[1:], True
    in_class = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if i + 1 < len(pattern):
                i += 1
        elif c == "[":
            in_class = True
        elif c == "]":
            in_class = False
        elif c == "*" and not in_class:
            break
        i += 1
    return star, pattern[:i], pattern[i:]


def _class_char(chunk: str) -> tuple[str, str]:
    """One character of a class range (an escape taken), and what follows."""
    if not chunk or chunk[0] in "-]":
        raise BadPattern
    if chunk[0] == "\\":
        chunk = chunk[1:]
        if not chunk:
            raise BadPattern
    rest = chunk[1:]
    if not rest:
        raise BadPattern
    return chunk[0], rest


def _match_chunk(chunk: str, s: str) -> str | None:
    """What is left of `s` after `chunk` matched its start, or None. After a
    failure the chunk is still read to the end, to find a malformed one."""
    failed = False
    while chunk:
        if not failed and not s:
            failed = True
        c = chunk[0]
        if c == "[":
            r = ""
            if not failed:
                r, s = s[0], s[1:]
            chunk = chunk[1:]
            negated = chunk.startswith("^")
            if negated:
                chunk = chunk[1:]
            matched, ranges = False, 0
            while True:
                if chunk.startswith("]") and ranges:
                    chunk = chunk[1:]
                    break
                lo, chunk = _class_char(chunk)
                hi = lo
                if chunk[0] == "-":
                    hi, chunk = _class_char(chunk[1:])
                if not failed and lo <= r <= hi:
                    matched = True
                ranges += 1
            if matched == negated:
                failed = True
        elif c == "?":
            if not failed:
                if s[0] == "/":
                    failed = True
                s = s[1:]
            chunk = chunk[1:]
        else:
            if c == "\\":
                chunk = chunk[1:]
                if not chunk:
                    raise BadPattern
            if not failed:
                if chunk[0] != s[0]:
                    failed = True
                s = s[1:]
            chunk = chunk[1:]
    return None if failed else s


def match(pattern: str, name: str) -> bool:
    """Whether `name` matches the whole `pattern` (Go's filepath.Match on a
    "/" system); BadPattern if the pattern is malformed."""
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and not chunk:
            return "/" not in name  # a trailing * takes the rest, up to a /
        rest = _match_chunk(chunk, name)
        if rest is not None and (not rest or pattern):
            name = rest
            continue
        advanced = False
        if star:
            i = 0
            while i < len(name) and name[i] != "/":
                rest = _match_chunk(chunk, name[i + 1 :])
                if rest is not None:
                    if not pattern and rest:
                        i += 1
                        continue
                    name, advanced = rest, True
                    break
                i += 1
        if advanced:
            continue
        while pattern:  # Go reports a malformed rest even on a mismatch
            _, chunk, pattern = _scan_chunk(pattern)
            _match_chunk(chunk, "")
        return False
    return not name


def has_wildcards(path: str) -> bool:
    """Docker's containsWildcards: *, ? or [ not escaped by a backslash."""
    i = 0
    while i < len(path):
        if path[i] == "\\":
            i += 2
            continue
        if path[i] in "*?[":
            return True
        i += 1
    return False
