"""COPY instructions in order, as Docker applies them: a later COPY replaces
what an earlier one wrote at the same path, and two directories copied to
the same place merge.

urunix writes all copies into one layer, where two entries for one path
are an error; so the earlier entries give way here: an earlier file that a
later copy covers is dropped, a path inside an earlier directory that a
later copy replaces is left out of it (FileEntry.exclude), and a directory
copied onto an earlier directory is split into its children."""

from __future__ import annotations

import dataclasses
import os
import stat

from ..spec import FileEntry


def _kind(path: str) -> str:
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return "missing"
    return "dir" if stat.S_ISDIR(mode) else "other"


def _below(target: str, inner: str) -> str | None:
    """`inner` relative to `target`, if it lies below it."""
    if target == "/":
        return inner[1:] if inner != "/" else None
    return inner[len(target) + 1 :] if inner.startswith(target + "/") else None


def _hidden(e: FileEntry, rel: str) -> bool:
    """Whether `rel` (or a parent of it) is excluded from directory entry e."""
    parts = rel.split("/")
    return any("/".join(parts[:i]) in e.exclude for i in range(1, len(parts) + 1))


def _sub_exclude(e: FileEntry, rel: str) -> frozenset[str]:
    prefix = rel + "/"
    return frozenset(x[len(prefix) :] for x in e.exclude if x.startswith(prefix))


class CannotSplit(Exception):
    """A directory that would have to be split into its children holds a
    symlink at its top, which a FileEntry of its own cannot carry (it would
    be followed)."""

    def __init__(self, entry: FileEntry, name: str):
        super().__init__(name)
        self.entry, self.name = entry, name


def children(e: FileEntry) -> list[FileEntry]:
    """A directory entry as one entry per child. A symlink child cannot be
    an entry of its own (its target would be copied): CannotSplit."""
    out = []
    for name in sorted(os.listdir(e.path)):
        if name in e.exclude:
            continue
        if os.path.islink(e.path / name):
            raise CannotSplit(e, name)
        out.append(
            dataclasses.replace(e, path=e.path / name, target=e.target.rstrip("/") + "/" + name, exclude=_sub_exclude(e, name))
        )
    return out


def _walk(root: str) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for n in dirnames + filenames:
            out.append(n if rel == "." else f"{rel}/{n}")
    return out


def _merge(out: list[FileEntry], new: FileEntry) -> list[FileEntry]:
    """A directory copied onto a directory an earlier entry makes: its
    children, each placed on its own."""
    for child in children(new):
        out = _place(out, child)
    return out


def _place(out: list[FileEntry], new: FileEntry) -> list[FileEntry]:
    new_dir = _kind(str(new.path)) == "dir"
    kept: list[FileEntry] = []
    for e in out:
        e_dir = _kind(str(e.path)) == "dir"
        if e.target == new.target:
            if new_dir and e_dir:
                return _merge(out, new)
            continue  # replaced by the later copy
        rel = _below(e.target, new.target) if e_dir else None
        if rel is not None and not _hidden(e, rel) and _kind(str(e.path / rel)) != "missing":
            if new_dir and _kind(str(e.path / rel)) == "dir":
                return _merge(out, new)
            e = dataclasses.replace(e, exclude=e.exclude | {rel})
        rel = _below(new.target, e.target) if new_dir else None
        if rel is not None and not _hidden(new, rel) and _kind(str(new.path / rel)) != "missing":
            if not (e_dir and _kind(str(new.path / rel)) == "dir"):
                continue  # the later copy replaces it whole
            clash = {
                p
                for p in _walk(str(new.path / rel))
                if not _hidden(new, f"{rel}/{p}")
                and _kind(str(e.path / p)) != "missing"
                and not (_kind(str(e.path / p)) == "dir" == _kind(str(new.path / rel / p)))
            }
            if clash:
                e = dataclasses.replace(e, exclude=e.exclude | clash)
        kept.append(e)
    kept.append(new)
    return kept


def later_wins(files: list[FileEntry]) -> list[FileEntry]:
    """The entries with Docker's "later COPY wins" applied (unchanged when
    no target lies at or below another)."""
    targets = [f.target for f in files]
    every = set(targets)

    def ancestors(t: str):
        parts = t.rstrip("/").split("/")
        return {"/".join(parts[:i]) or "/" for i in range(1, len(parts))}

    if len(every) == len(targets) and not any(ancestors(t) & every for t in targets):
        return files
    out: list[FileEntry] = []
    for f in files:
        out = _place(out, f)
    return out
