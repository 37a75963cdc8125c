"""Entries whose targets overlap (a directory copy and a file inside it),
decided once, the same way for every input format and layer:

- a Containerfile's instructions are ordered: the later COPY wins, as in
  `docker build`;
- the other formats are not (an args.nix attrset is sorted by its keys):
  the more specific target wins (`/unikernel/k.hvt` over the directory
  copied to `/unikernel`).

validate.py puts `files` in that order (`by_precedence`); plan.py then
lets a later entry win whatever layer it lands in. What cannot be honoured
is a spec error naming both entries (`conflicts`). Everything here is
O(n log n) in the number of entries (a dict of targets, walked up each
target's parents): no pair of entries is ever compared."""

from __future__ import annotations

import bisect
import os
import posixpath
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from .spec import FileEntry


def normalize(target: str) -> str:
    """An absolute image path, clean: `//urunc.json` and `/a//b/` are
    `/urunc.json` and `/a/b` (posixpath.normpath keeps two leading slashes)."""
    return "/" + posixpath.normpath("/" + target.lstrip("/")).lstrip("/")


def parents(target: str) -> Iterable[str]:
    """'/a/b/c' -> '/a/b', '/a'."""
    while True:
        target = target.rsplit("/", 1)[0]
        if not target:
            return
        yield target


def by_precedence(files: list[FileEntry], ordered: bool) -> list[FileEntry]:
    """`files` so that an entry comes after every entry it overrides. In
    an ordered format (a Containerfile) that is the order given; otherwise
    an entry inside another's directory comes after it (stable: entries
    that do not overlap keep their order)."""
    if ordered:
        return files
    targets = {f.target for f in files}
    if not any(p in targets for f in files for p in parents(f.target)):
        return files
    return sorted(files, key=lambda f: f.target.count("/"))


def conflicts(files: list[FileEntry]) -> list[tuple[FileEntry, FileEntry, str]]:
    """(entry, other entry, what is wrong) for overlaps no order can
    honour: a file copied *into* a path another entry makes a file, or a
    file placed over a directory of a directory copy that it outranks
    (the directory's contents would lose their parent)."""
    at = {f.target: (i, f) for i, f in enumerate(files)}
    out = []
    for i, f in enumerate(files):
        for p in parents(f.target):
            hit = at.get(p)
            if hit is None:
                continue
            j, g = hit
            if g.path.is_file():
                out.append((f, g, f"would go inside {g.target}, which {g.field} makes a file"))
                break
            if j < i and not f.path.is_dir():
                inner = g.path / f.target[len(p) + 1 :]
                if inner.is_dir() and not inner.is_symlink():
                    out.append(
                        (
                            f,
                            g,
                            f"would replace the directory {f.target} that {g.field} copies, "
                            "and the files in it would have no parent",
                        )
                    )
                    break
    return out


def index_earlier(entries: list[tuple[str, int]]) -> tuple[list[str], dict[str, int]]:
    """Targets in earlier layers with their ranks, for outranked()."""
    ranks: dict[str, int] = {}
    for target, rank in entries:
        ranks[target] = max(rank, ranks.get(target, rank))
    return sorted(ranks), ranks


def outranked(tree_target: str, tree_rank: int, index: tuple[list[str], dict[str, int]]) -> list[str]:
    """Image paths inside the directory copy at `tree_target` that an
    entry of higher rank puts in an earlier layer: the copy leaves them out
    (it would otherwise cover them, being written later)."""
    keys, ranks = index
    prefix = tree_target.rstrip("/") + "/"
    i = bisect.bisect_left(keys, prefix)
    out = []
    while i < len(keys) and keys[i].startswith(prefix):
        if ranks[keys[i]] > tree_rank:
            out.append(keys[i])
        i += 1
    return out


def real_paths(paths: Iterable[str]) -> list[str]:
    return [os.path.realpath(p) for p in paths if p]


def inside(source: str, target: str, excluded: list[str]) -> list[str]:
    """The image paths that the host paths `excluded` (urunix's own output
    and scratch) would get if the directory `source`, copied to `target`,
    holds them."""
    if not excluded:
        return []
    root = os.path.realpath(source).rstrip("/") + "/"
    return [target.rstrip("/") + "/" + x[len(root) :] for x in excluded if x.startswith(root)]
