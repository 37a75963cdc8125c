"""Errors and warnings that name the file, the field, the line, the value,
what is allowed, and a hint -- the one shape every user-facing problem takes."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Iterable

_UNSET: Any = object()


def did_you_mean(value: object, choices: Iterable[str]) -> str | None:
    """A 'did you mean "x"?' hint for a near miss, else None."""
    if not isinstance(value, str):
        return None
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f'did you mean "{close[0]}"?' if close else None


def show(value: object) -> str:
    """A value as the user would recognise it, quoted and escaped, kept short."""
    if isinstance(value, str):
        text = value.encode("unicode_escape").decode("ascii").replace('"', '\\"')
        text = '"' + text + '"'
    else:
        text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


@dataclass
class Problem:
    """One diagnostic about a spec: where it is, what is wrong, what would be right."""

    message: str
    file: str | None = None
    field: str | None = None
    line: int | None = None
    value: Any = _UNSET
    allowed: str | None = None
    hint: str | None = None
    key: str | None = None  # the spec model's name for the field (`field` is the user's); not shown

    def render(self, level: str = "error") -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        head = f"{level}: {where}"
        if self.field:
            head += f"{self.field}: "
        head += self.message
        if self.value is not _UNSET:
            head += f" (got {show(self.value)})"
        lines = [head]
        if self.allowed:
            lines.append(f"  allowed: {self.allowed}")
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


class UrunixError(Exception):
    """Base for errors the CLI reports without a traceback."""

    exit_code = 1

    def render(self) -> str:
        return f"error: {self}"


class SpecError(UrunixError):
    """The spec (or the command line) is wrong: exit code 2."""

    exit_code = 2

    def __init__(self, message: str = "", *, problems: list[Problem] | None = None, **where: Any):
        self.problems = problems if problems is not None else [Problem(message, **where)]
        super().__init__(self.problems[0].message if self.problems else message)

    @property
    def problem(self) -> Problem:
        return self.problems[0]

    def render(self) -> str:
        return "\n".join(p.render() for p in self.problems)


class NotSupportedYet(SpecError):
    """A valid request that this version does not build: say so, never pretend."""

    def __init__(self, what: str, **where: Any):
        where.setdefault("hint", "see the README's 'Status' section for what is supported")
        super().__init__(f"{what} is not supported yet", **where)


class BuildError(UrunixError):
    """The build itself failed (a tool failed, the disk filled): exit code 1."""

    exit_code = 1


class MissingTool(BuildError):
    """An external program is needed and absent; say how to install it."""

    def __init__(self, tool: str, install: str, why: str = ""):
        self.tool = tool
        super().__init__(f"{tool} is needed{(' ' + why) if why else ''} but was not found on PATH; install it with: {install}")


class Problems:
    """The one place every stage puts what is wrong with a spec, so that a
    run reports all of it at once: the loader's shape checks, validate's
    values, files on disk and cross-field rules (and any later rule module).

        problems.add(Problem("must be a list", field="cmd", ...))
        problems.add(p, after=("cmd",))   # dropped when cmd already failed
        problems.failed("rootfs.size")    # True if rootfs or rootfs.size failed
        problems.raise_if_any()           # SpecError listing each once

    A problem marks its field (and with `marks=`, other fields) as failed;
    a problem that is only a consequence of an earlier one names that field
    in `after=` and is left out, since fixing the first fixes it. The same
    (field, message) is never reported twice. Problems keep the spec's field
    names; Spec.where() turns them into the user's own (a bunnyfile key, a
    LABEL) before they get here."""

    def __init__(self, items: Iterable[Problem] = ()):
        self.items: list[Problem] = []
        self.bad: set[str] = set(items.bad) if isinstance(items, Problems) else set()
        for p in items:
            self.add(p)

    def add(self, problem: Problem, *, after: Iterable[str] = (), marks: Iterable[str] = ()) -> bool:
        """Record `problem` unless a field in `after` already failed or it is
        a repeat; returns whether it was recorded."""
        if any(self.failed(f) for f in after):
            return False
        key = (problem.field, problem.message, problem.line)
        if any((p.field, p.message, p.line) == key for p in self.items):
            return False
        self.items.append(problem)
        for f in (problem.key or problem.field, *marks):
            if f:
                self.bad.add(f)
        return True

    def extend(self, problems: Iterable[Problem], *, marks: Iterable[str] = ()) -> None:
        for p in problems:
            self.add(p, marks=marks)

    def mark(self, *fields: str) -> None:
        """Say that `fields` are broken without a message of their own (their
        problem was reported under another name)."""
        self.bad.update(f for f in fields if f)

    def failed(self, field: str) -> bool:
        """Whether `field`, a field that contains it, or a field inside it
        failed (`rootfs` holds `rootfs.size`; an instruction `LABEL` holds
        `LABEL com.urunc.unikernel.binary`)."""
        return any(
            b == field or field.startswith((b + ".", b + " ")) or b.startswith((field + ".", field + " ")) for b in self.bad
        )

    def __bool__(self) -> bool:
        return bool(self.items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Problems) and (self.items, self.bad) == (other.items, other.bad)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise SpecError(problems=sorted(self.items, key=lambda p: (p.line is None, p.line or 0)))


@dataclass
class Diagnostics:
    """Warnings gathered along the way; errors are raised, warnings are kept."""

    warnings: list[Problem] = field(default_factory=list)

    def warn(self, message: str, **where: Any) -> None:
        self.warnings.append(Problem(message, **where))
