"""The build context as Docker's classic builder sees it, for COPY/ADD.

- Only what `.dockerignore` keeps is there (loaders/dockerignore.py).
- A source path is resolved inside the context: every symlink on the way
  is followed as if the context were `/` (an absolute target starts again
  at the context, `..` stops at it), as moby's FollowSymlinkInScope does.
  A symlink can never lead out of the context: what it names outside is
  looked up inside, where it usually does not exist.
- Wildcards are Go's filepath.Match (loaders/gomatch.py), matched against
  every path of the context in lexical walk order, symlinks not followed.
Symlinks *inside* a copied directory stay symlinks, as in Docker."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from ..pathstep import dot_step
from . import dockerignore, gomatch

_MAX_LINKS = 255


class ContextError(Exception):
    """A source that Docker would refuse; the message says why."""


@dataclass(frozen=True)
class Resolved:
    """A COPY source after resolution: the path relative to the context
    (no symlink left in it), and what lies there."""

    rel: str  # "" is the context itself
    kind: str  # file | dir | missing | other
    via_symlink: bool  # a symlink was followed on the way
    exclude: frozenset[str] = field(default_factory=frozenset)  # paths below a dir that .dockerignore drops


class BuildContext:
    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self.ignore = dockerignore.load(self.root)
        self.kept = self.ignore.included(self.root) if self.ignore is not None else None

    def _lstat(self, rel: str) -> os.stat_result | None:
        if self.kept is not None and rel and rel not in self.kept:
            return None
        try:
            return os.lstat(os.path.join(self.root, rel) if rel else self.root)
        except (OSError, ValueError):  # missing, not a directory on the way, a NUL, too long
            return None

    def resolve(self, path: str) -> Resolved:
        """A source as written (after variable substitution) -> Resolved."""
        todo = [p for p in path.split("/")][::-1]
        done: list[str] = []
        links = 0
        missing = False
        while todo:
            part = todo.pop()
            if dot_step(done, part):
                continue
            if missing:
                done.append(part)
                continue
            rel = "/".join(done + [part])
            st = self._lstat(rel)
            if st is None:
                missing = True
                done.append(part)
                continue
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > _MAX_LINKS:
                    raise ContextError("too many levels of symbolic links")
                target = os.readlink(os.path.join(self.root, rel))
                if target.startswith("/"):
                    done = []
                todo.extend(target.split("/")[::-1])
                continue
            done.append(part)
        rel = "/".join(done)
        st = None if missing else self._lstat(rel)
        if st is None:
            kind = "missing"
        elif stat.S_ISREG(st.st_mode):
            kind = "file"
        elif stat.S_ISDIR(st.st_mode):
            kind = "dir"
        else:
            kind = "other"
        exclude = self._excluded_below(rel) if kind == "dir" else frozenset()
        return Resolved(rel, kind, links > 0, exclude)

    def _excluded_below(self, rel: str) -> frozenset[str]:
        """Paths (relative to `rel`) under a directory that the context lacks;
        an excluded directory stands for all it holds."""
        if self.kept is None:
            return frozenset()
        out: set[str] = set()
        top = os.path.join(self.root, rel) if rel else self.root
        stack = [""]
        while stack:
            sub = stack.pop()
            with os.scandir(os.path.join(top, sub) if sub else top) as it:
                entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
            for name, is_dir in entries:
                inner = f"{sub}/{name}" if sub else name
                full = f"{rel}/{inner}" if rel else inner
                if full not in self.kept:
                    out.add(inner)
                elif is_dir:
                    stack.append(inner)
        return frozenset(out)

    def glob(self, pattern: str) -> list[str]:
        """Context paths matching a wildcard source, in Docker's order.
        gomatch.BadPattern for a malformed pattern (Docker: no match)."""
        if pattern.startswith("/") and len(pattern) > 1:
            pattern = pattern[1:]
        pattern = pattern.removeprefix("./")
        out: list[str] = []

        def listing(rel_dir: str):
            with os.scandir(os.path.join(self.root, rel_dir) if rel_dir else self.root) as it:
                return iter(sorted((e.name, e.is_dir(follow_symlinks=False)) for e in it))

        stack = [("", listing(""))]  # depth first, in lexical order: Go's filepath.Walk
        while stack:
            rel_dir, entries = stack[-1]
            for name, is_dir in entries:
                rel = f"{rel_dir}/{name}" if rel_dir else name
                if self.kept is not None and rel not in self.kept:
                    continue
                if gomatch.match(pattern, rel):
                    out.append(rel)
                if is_dir:
                    stack.append((rel, listing(rel)))
                    break
            else:
                stack.pop()
        return out
