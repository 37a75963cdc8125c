"""The `urunix` command: a thin shell over load -> validate -> plan -> build.

Exit codes: 0 success, 1 the build failed, 2 the spec or the usage is wrong.
No traceback unless --debug."""

from __future__ import annotations

import os
import shutil
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from . import __version__
from .envflags import flag
from .errors import SpecError, UrunixError

app = typer.Typer(
    name="urunix",
    help="Package unikernels and Linux guests as OCI images for urunc.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},  # inherited by every subcommand
)


class OutFormat(str, Enum):
    docker_archive = "docker-archive"
    oci_archive = "oci-archive"
    oci = "oci"


class SpecFormat(str, Enum):
    argsnix = "args.nix"
    yaml = "yaml"
    bunnyfile = "bunnyfile"
    containerfile = "containerfile"


class Backend(str, Enum):
    auto = "auto"
    native = "native"
    nix = "nix"


def _console(stderr: bool = True):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _say(text: str) -> None:
    """A message on stderr, exactly as given: plain print, not rich (which
    would turn a ':smile:' in a user's value into an emoji, and costs its
    import on every command)."""
    print(text, file=sys.stderr, flush=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"urunix {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and the commands run."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    del debug  # read from sys.argv by main() before typer runs


def _from_map(pairs: Optional[list[str]]) -> Optional[dict[str, str]]:
    """--from NAME=PATH: a Containerfile's FROM NAME is the archive at PATH."""
    if not pairs:
        return None
    out = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise SpecError(
                "must be NAME=PATH",
                field="--from",
                value=pair,
                hint="e.g. --from unikraft.org/nginx:1.15=./nginx.tar (an archive from docker save)",
            )
        out[name] = str(Path(path).absolute())
    return out


SPEC_HELP = (
    "args.nix, a YAML spec, a bunnyfile or a Containerfile; or a directory holding exactly one (default: the current directory)."
)
FILE_HELP = "The spec file, as in `docker build -f` (then SPEC, if given, is its directory)."
SPEC_NAMES = ("args.nix", "bunnyfile", "Containerfile", "Dockerfile")
SPEC_GLOBS = ("*.yaml", "*.yml", "*.bunnyfile", "*.Containerfile", "*.Dockerfile")


def _spec_file(spec: Optional[Path], file: Optional[Path]) -> Path:
    """The spec to read: `-f FILE` (docker build's habit), else SPEC, where
    a directory stands for the one spec in it."""
    if file is not None:
        if spec is not None and not (spec.is_dir() and spec.resolve() == file.absolute().parent.resolve()):
            raise SpecError(
                "-f names the spec file; SPEC may then only be the directory it is in",
                field="-f",
                value=str(file),
                hint=f"drop {spec}: paths in the spec are relative to its own directory",
            )
        return file
    spec = Path(".") if spec is None else spec
    if not spec.is_dir():
        return spec
    found = sorted(
        {p for n in SPEC_NAMES if (p := spec / n).is_file()} | {p for g in SPEC_GLOBS for p in spec.glob(g) if p.is_file()}
    )
    shown = str(spec) if str(spec) != "." else "the current directory"
    if len(found) == 1:
        return found[0]
    if not found:
        raise SpecError(
            f"no spec in {shown}",
            field="SPEC",
            value=str(spec),
            allowed="args.nix, *.yaml, *.yml, bunnyfile, Containerfile, Dockerfile",
            hint="name the spec file itself, e.g. -f path/to/args.nix",
        )
    raise SpecError(
        f"{shown} holds {len(found)} specs: {', '.join(p.name for p in found)}",
        field="SPEC",
        value=str(spec),
        hint=f"name one with -f, e.g. -f {found[0]}",
    )


_URUNC_HELP = (
    "urunc releases the image must work on, comma-separated (v0.5.0, v0.6.0, v0.7.0, main, next); "
    "overrides the spec's `urunc`. Default: v0.6.0,v0.7.0,main."
)


def _load(
    spec: Path,
    spec_format: Optional[SpecFormat],
    tag: Optional[str],
    from_pairs: Optional[list[str]] = None,
    urunc: Optional[str] = None,
    read_images: str = "local",
):
    from .loaders import load
    from .validate import validate

    if not spec.exists():
        raise SpecError(
            "no such file", file=str(spec), hint="give the path of an args.nix, a YAML spec, a bunnyfile or a Containerfile"
        )
    s = load(spec, spec_format.value if spec_format else None, from_map=_from_map(from_pairs), keep_problems=True)
    if tag:
        name, sep, t = tag.rpartition(":")
        if not sep or "/" in t:
            name, t = tag, s.tag or "latest"
        s.name, s.tag = name, t
        s.lines.pop("name", None)
        s.lines.pop("tag", None)
    if urunc is not None:
        s.urunc = urunc
        s.lines.pop("urunc", None)
    for note in s.notes:
        _say(note)
    image, diag = validate(s, read_images)
    for w in diag.warnings:
        _say(w.render("warning"))
    return image


def _progress(image, output: Path):
    """Steps and bytes on stderr (progress.py): a status line on a terminal,
    one line per step otherwise."""
    from .progress import BuildProgress

    r = image.rootfs
    tool = "cpio" if r is not None and r.type == "initrd" else None
    return BuildProgress(str(output), rootfs_tool=tool)


def _nix_available(pkgs_expr: Optional[str]) -> bool:
    """nix-build is there and has a nixpkgs to build with."""
    if not shutil.which("nix-build") or flag("URUNIX_NO_NIX"):
        return False
    if pkgs_expr:
        return True
    from .nixenv import has_nixpkgs

    return has_nixpkgs()


@app.command()
def build(
    spec: Optional[Path] = typer.Argument(None, metavar="[SPEC]", show_default=False, help=SPEC_HELP),
    file: Optional[Path] = typer.Option(None, "--file", "-f", metavar="FILE", help=FILE_HELP),
    output: Path = typer.Option(Path("result"), "--output", "-o", metavar="PATH", help="Where to write the image."),
    out_format: OutFormat = typer.Option(
        OutFormat.docker_archive, "--format", metavar="FORMAT", help="Output format: docker-archive, oci-archive or oci."
    ),
    backend: Backend = typer.Option(
        Backend.auto, "--backend", help="native, nix, or auto (nix when nix-build and <nixpkgs> are available)."
    ),
    tag: Optional[str] = typer.Option(None, "--tag", "-t", metavar="NAME[:TAG]", help="Image name[:tag], overriding the spec's."),
    spec_format: Optional[SpecFormat] = typer.Option(None, "--spec-format", help="Input format (default: from the file name)."),
    from_: Optional[list[str]] = typer.Option(
        None, "--from", metavar="NAME=PATH", help="Containerfile: take FROM NAME from a local archive: NAME=PATH (repeatable)."
    ),
    nix_pkgs: Optional[str] = typer.Option(
        None, "--nix-pkgs", metavar="EXPR", help="Nix expression for pkgs (default: import <nixpkgs> {})."
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither use nor fill the layer cache ($XDG_CACHE_HOME/urunix)."),
    fsync: bool = typer.Option(False, "--fsync", help="Flush the image to disk before renaming it into place."),
    urunc: Optional[str] = typer.Option(None, "--urunc", help=_URUNC_HELP),
) -> None:
    """Build an image that `docker load < result` accepts and urunc boots.
    `-o -` streams the archive to stdout (`urunix build s.yaml -o - | docker load`)."""
    spec = _spec_file(spec, file)
    image = _load(spec, spec_format, tag, from_, urunc, read_images="all")  # the build fetches them anyway
    from .native import output as outputs

    dest = outputs.resolve(str(output), out_format.value, image.name, str(spec))
    chosen = backend
    if backend == Backend.auto:
        chosen = Backend.native
        if out_format == OutFormat.docker_archive and _nix_available(nix_pkgs):
            from . import nixgen

            why = nixgen.unsupported(image)
            if why:
                _say(f"using the native builder: {why}")
            else:
                chosen = Backend.nix
    if chosen == Backend.nix and backend == Backend.nix:
        from . import nixgen

        why = nixgen.unsupported(image)
        if why:
            raise SpecError(why, field="--backend", value="nix", hint="use --backend native (or auto)")
    if chosen == Backend.nix:
        if out_format != OutFormat.docker_archive:
            raise SpecError(
                "the nix backend writes docker-archive only",
                field="--format",
                value=out_format.value,
                hint="use --backend native for oci-archive and oci",
            )
        from . import nixgen

        if dest.path is None:  # dest.stream
            import tempfile

            with tempfile.TemporaryDirectory(prefix="urunix-nix-out-") as tmp:
                nixgen.build_with_nix(image, spec, Path(tmp) / "result", nix_pkgs)
                outputs.stream(str(Path(tmp) / "result"))
        else:
            nixgen.build_with_nix(image, spec, dest.path, nix_pkgs)
        digest = None
    else:
        from .native.build import build as native_build

        digest = native_build(
            image, str(output), out_format.value, _progress(image, output), cache=False if no_cache else None, fsync=fsync
        )
    shown = "stdout" if dest.stream else (str(output) if dest.path == os.path.abspath(output) else dest.path)
    _say(
        f"built {image.name}:{image.tag} ({out_format.value}, {chosen.value} backend) -> {shown}"
        + (f"  {digest}" if digest else "")
    )


@app.command()
def validate(
    spec: Optional[Path] = typer.Argument(None, metavar="[SPEC]", show_default=False, help=SPEC_HELP),
    file: Optional[Path] = typer.Option(None, "--file", "-f", metavar="FILE", help=FILE_HELP),
    tag: Optional[str] = typer.Option(None, "--tag", "-t", metavar="NAME[:TAG]", help="Image name[:tag], overriding the spec's."),
    spec_format: Optional[SpecFormat] = typer.Option(None, "--spec-format", help="Input format (default: from the file name)."),
    from_: Optional[list[str]] = typer.Option(
        None, "--from", metavar="NAME=PATH", help="Containerfile: take FROM NAME from a local archive: NAME=PATH (repeatable)."
    ),
    show: bool = typer.Option(False, "--json", help="Print the normalized spec (what the Nix library builds) as JSON."),
    urunc: Optional[str] = typer.Option(None, "--urunc", help=_URUNC_HELP),
) -> None:
    """Check a spec against urunc's contract, without building."""
    spec = _spec_file(spec, file)
    image = _load(spec, spec_format, tag, from_, urunc)
    if show:
        import json

        from .nixgen import resolved_json

        typer.echo(json.dumps(resolved_json(image), indent=2, ensure_ascii=False))
    else:
        _say(
            f"{spec}: ok ({image.annotations.get('unikernelType')} on {image.annotations.get('hypervisor')}, "
            f"{image.name}:{image.tag}, {image.architecture}; urunc {', '.join(image.targets) or 'none targeted'})"
        )


@app.command()
def inspect(
    image: str = typer.Argument(
        ...,
        metavar="IMAGE",
        help="An image archive (docker-archive, oci-archive), an OCI "
        "layout DIR or oci:DIR[:TAG], or docker-daemon:NAME:TAG (an image loaded into Docker).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
    guest: bool = typer.Option(False, "--guest", help="Show what each urunc release hands the monitor and the guest."),
    annotations: bool = typer.Option(False, "--annotations", help="Print the pod annotations a urunc release needs."),
    release: Optional[list[str]] = typer.Option(
        None,
        "--release",
        help="urunc release(s): v0.5.0, v0.6.0, v0.7.0, main (default: v0.6.0 v0.7.0 main; --annotations: main).",
    ),
) -> None:
    """Show the urunc metadata of an image: labels, urunc.json, and any disagreement."""
    if guest or annotations:
        from .guest_view import inspect_command

        raise typer.Exit(inspect_command(str(image), guest, annotations, release or [], as_json, typer.echo))
    from .image_report import exit_code, inspect_image

    report = inspect_image(image)
    if as_json:
        import json

        typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        from .image_report import render

        render(report, _console(stderr=False))
    if exit_code(report):
        raise typer.Exit(exit_code(report))


@app.command()
def generate(
    spec: Optional[Path] = typer.Argument(None, metavar="[SPEC]", show_default=False, help=SPEC_HELP),
    file: Optional[Path] = typer.Option(None, "--file", "-f", metavar="FILE", help=FILE_HELP),
    output: Path = typer.Option(..., "--output", "-o", metavar="DIR", help="Directory to write the Nix expression into."),
    tag: Optional[str] = typer.Option(None, "--tag", "-t", metavar="NAME[:TAG]", help="Image name[:tag], overriding the spec's."),
    spec_format: Optional[SpecFormat] = typer.Option(None, "--spec-format", help="Input format (default: from the file name)."),
    from_: Optional[list[str]] = typer.Option(
        None, "--from", metavar="NAME=PATH", help="Containerfile: take FROM NAME from a local archive: NAME=PATH (repeatable)."
    ),
    urunc: Optional[str] = typer.Option(None, "--urunc", help=_URUNC_HELP),
    force: bool = typer.Option(False, "--force", help="Overwrite files in the output directory that urunix did not generate."),
) -> None:
    """Write a standalone Nix expression that builds the same image (`nix-build DIR`)."""
    spec = _spec_file(spec, file)
    image = _load(spec, spec_format, tag, from_, urunc)
    from . import generated, nixgen

    generated.check(output, force, str(output))
    nixgen.generate(image, spec, output)
    generated.record(output)
    _say(f"wrote {output}/default.nix; build it with: nix-build {output}")


cache_app = typer.Typer(help="The layer cache that makes rebuilds fast.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")


@cache_app.command("prune")
def cache_prune(
    max_size: Optional[str] = typer.Option(
        None, "--max-size", metavar="SIZE", help="Keep at most this much (e.g. 5G); default: empty it."
    ),
) -> None:
    """Remove the least recently used cached layers."""
    from .native import cache

    try:
        limit = cache.parse_bytes(max_size, 0)
    except ValueError as e:
        raise SpecError(str(e), field="--max-size", value=max_size)
    files, freed = cache.prune(limit)
    _say(f"removed {files} files ({freed / (1 << 20):.1f} MiB) from {cache.cache_dir()}")


def _whole_first_lines(typer_app: typer.Typer) -> None:
    """The command list shows each command's whole first line (click would
    cut it at about 45 characters)."""
    import inspect as _inspect

    for c in typer_app.registered_commands:
        c.short_help = c.short_help or (_inspect.getdoc(c.callback) or "").split("\n")[0]


_whole_first_lines(app)
_whole_first_lines(cache_app)

_main_running = [False]  # set while main() runs: a signal then unwinds
_interrupted = [False]  # a SIGINT/SIGTERM arrived (typer turns KeyboardInterrupt into a silent exit 130)


def _on_sigterm() -> None:
    """SIGTERM (timeout, docker stop, systemd) unwinds like Ctrl-C, so the
    temporary files beside the output are removed; Python's default would
    die on the spot and leave them."""
    import signal

    def interrupt(signum, frame):
        if _main_running[0]:
            _interrupted[0] = True
            raise KeyboardInterrupt
        # main() has returned: nothing to unwind; die of the signal as the
        # default would, rather than a KeyboardInterrupt in shutdown code
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    try:
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, interrupt)
        now = signal.getsignal(signal.SIGINT)
        if now is signal.default_int_handler or getattr(now, "urunix_early", False):
            signal.signal(signal.SIGINT, interrupt)
    except ValueError:  # not the main thread (the CLI called from a test)
        pass


def _say_interrupted() -> int:
    if sys.stderr.isatty():
        print("\r\x1b[K", end="", file=sys.stderr)  # off a progress line (progress.py), if one is drawn
    print(
        "interrupted; no partial result was written (the output is as it was, or complete if the build had already finished)",
        file=sys.stderr,
    )
    return 130


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; our errors become one message and an exit code. Usage
    errors, --help and --version are typer's (exit 2 and 0)."""
    args = list(sys.argv[1:] if argv is None else argv)
    # --debug anywhere before `--` (also after the subcommand, as with docker)
    end = args.index("--") if "--" in args else len(args)
    if "--debug" in args[:end]:
        args = ["--debug"] + [a for a in args[:end] if a != "--debug"] + args[end:]
    _on_sigterm()
    _interrupted[0] = False
    _main_running[0] = True
    try:
        return _run(args)
    except KeyboardInterrupt:  # one that came while an exit code or a message was being worked out
        return _say_interrupted()
    finally:
        _stop_unwinding()


def _run(args: list[str]) -> int:
    try:
        app(args=args, prog_name="urunix")
    except SystemExit as e:
        if _interrupted[0]:
            return _say_interrupted()
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except UrunixError as e:
        if "--debug" in args:
            import traceback

            traceback.print_exc()
        _say(e.render())
        return e.exit_code
    except KeyboardInterrupt:
        return _say_interrupted()
    return 0


def _stop_unwinding() -> None:
    """main() is done: from now on a SIGINT/SIGTERM kills the process as it
    would without us. The flag flips with both signals held, so one cannot
    raise a KeyboardInterrupt in between (outside any handler)."""
    import signal

    sigs = {signal.SIGINT, signal.SIGTERM}
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    except (AttributeError, OSError, ValueError):
        old = None
    _main_running[0] = False
    if old is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


if __name__ == "__main__":
    sys.exit(main())
