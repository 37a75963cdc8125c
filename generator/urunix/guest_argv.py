"""The image's Entrypoint/Cmd per guest, so that every urunc release from
v0.6.0 (which read process.args = Entrypoint + Cmd) hands the guest what the
spec meant, and the `cmdline` annotation for v0.5.0 (which reads only it).
Facts: ../shared/urunc-releases.md section 4 and 7."""

from __future__ import annotations

from . import urunc_rules


def _fields(text: str) -> list[str]:
    from .validate import fields

    return fields(text)


def unikraft(
    ann: dict[str, str], entrypoint: list[str] | None, cmd: list[str] | None, cmdline: str | None
) -> tuple[list[str] | None, list[str], tuple[str, str] | None]:
    """urunc v0.6.0+ write argv0 `Unikraft` and put all of Entrypoint+Cmd
    after `--`: Cmd holds the app's arguments only (`[""]` for none), so
    `docker run IMAGE ARGS` replaces them. The cmdline annotation keeps
    v0.5.0's form (argv0 first): given, it is kept and Cmd is its arguments;
    else it is written as `Unikraft ARGS`. Returns (entrypoint, cmd,
    (message, hint) when cmd and cmdline disagree)."""
    from .validate import join_args

    from_line = None if cmdline is None else urunc_rules.unikraft_args(cmdline, _fields)
    wrong = None
    if cmd is None:
        args = from_line or []
        ep = entrypoint or []
        if ep and args[: len(ep)] == ep:
            args = args[len(ep) :]
        cmd = args
    elif from_line is not None and from_line != [a for a in (entrypoint or []) + cmd if a]:
        wrong = (
            "and annotations.cmdline disagree: for Unikraft, cmd holds the app's arguments only and "
            "cmdline is argv0 (the program's name) followed by them",
            f"give one of them; cmdline {cmdline!r} means cmd = {from_line!r}",
        )
    args = [a for a in (entrypoint or []) + cmd if a]
    if cmdline is None and args:
        ann["cmdline"] = join_args(["Unikraft"] + args, "unikraft")
    return entrypoint, with_a_command(entrypoint, cmd), wrong


def with_a_command(entrypoint: list[str] | None, cmd: list[str]) -> list[str]:
    """`cmd`, or `[""]` when neither it nor `entrypoint` holds anything:
    Docker refuses to create a container of an image without a command ("No
    command specified"), and urunc reads one empty argument as none."""
    return cmd if (entrypoint or []) + cmd else [""]


def linux_split(argv: list[str], has_init: bool) -> tuple[list[str] | None, list[str]]:
    """Docker's entrypoint convention for a Linux guest: the init and the
    program in Entrypoint, the program's arguments in Cmd, so `docker run
    IMAGE ARGS` and Kubernetes `args:` replace only the arguments. Without
    an init of urunix's, argv[0] is the init (urunc's init=); urunit there
    is followed by the program too."""
    if not argv:
        return None, []
    n = 2 if (has_init or urunc_rules.is_urunit(argv[0])) else 1
    return argv[:n], argv[n:]
