"""The `urunix` command: a thin shell over load -> validate -> plan -> build.

Exit codes: 0 success, 1 the build failed, 2 the spec or the usage is wrong.
No traceback unless --debug."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from . import __version__
from .errors import SpecError, UrunixError

app = typer.Typer(
    name="urunix",
    help="Package unikernels and Linux guests as OCI images for urunc.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_state = {"debug": False}


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
    _state["debug"] = debug


def _from_map(pairs: Optional[list[str]]) -> Optional[dict[str, str]]:
    """--from NAME=PATH: a Containerfile's FROM NAME is the archive at PATH."""
    if not pairs:
        return None
    out = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise SpecError("must be NAME=PATH", field="--from", value=pair,
                            hint="e.g. --from unikraft.org/nginx:1.15=./nginx.tar (an archive from docker save)")
        out[name] = str(Path(path).absolute())
    return out


_URUNC_HELP = ("urunc releases the image must work on, comma-separated (v0.5.0, v0.6.0, v0.7.0, main, next); "
               "overrides the spec's `urunc`. Default: v0.6.0,v0.7.0,main.")


def _load(spec: Path, spec_format: Optional[SpecFormat], tag: Optional[str], from_pairs: Optional[list[str]] = None,
          urunc: Optional[str] = None):
    from .loaders import load
    from .validate import validate

    if not spec.exists():
        raise SpecError("no such file", file=str(spec),
                        hint="give the path of an args.nix, a YAML spec, a bunnyfile or a Containerfile")
    s = load(spec, spec_format.value if spec_format else None, from_map=_from_map(from_pairs))
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
    image, diag = validate(s)
    for w in diag.warnings:
        _say(w.render("warning"))
    return image


def _progress_factory(label: str):
    """A rich progress bar on a terminal; nothing otherwise."""
    from contextlib import contextmanager

    @contextmanager
    def factory(total: int):
        if not sys.stderr.isatty() or os.environ.get("CI"):
            yield None
            return
        console = _console()
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
        with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                      TimeRemainingColumn(), console=console, transient=True) as bar:
            task = bar.add_task(label, total=total)
            yield lambda n: bar.advance(task, n)

    return factory


def _nix_available(pkgs_expr: Optional[str]) -> bool:
    """nix-build is there and has a nixpkgs to build with."""
    if not shutil.which("nix-build") or os.environ.get("URUNIX_NO_NIX"):
        return False
    if pkgs_expr:
        return True
    r = subprocess.run(["nix-instantiate", "--find-file", "nixpkgs"], capture_output=True, text=True)
    return r.returncode == 0


@app.command()
def build(
    spec: Path = typer.Argument(..., help="args.nix, spec.yaml, bunnyfile or Containerfile"),
    output: Path = typer.Option(Path("result"), "--output", "-o", help="Where to write the image."),
    out_format: OutFormat = typer.Option(OutFormat.docker_archive, "--format", "-f", help="Output format."),
    backend: Backend = typer.Option(Backend.auto, "--backend", help="native, nix, or auto (nix when nix-build and <nixpkgs> are available)."),
    tag: Optional[str] = typer.Option(None, "--tag", "-t", help="Image name[:tag], overriding the spec's."),
    spec_format: Optional[SpecFormat] = typer.Option(None, "--spec-format", help="Input format (default: from the file name)."),
    from_: Optional[list[str]] = typer.Option(None, "--from", help="Containerfile: take FROM NAME from a local archive: NAME=PATH (repeatable)."),
    nix_pkgs: Optional[str] = typer.Option(None, "--nix-pkgs", help="Nix expression for pkgs (default: import <nixpkgs> {})."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither use nor fill the layer cache ($XDG_CACHE_HOME/urunix)."),
    fsync: bool = typer.Option(False, "--fsync", help="Flush the image to disk before renaming it into place."),
    urunc: Optional[str] = typer.Option(None, "--urunc", help=_URUNC_HELP),
) -> None:
    """Build an image that `docker load < result` accepts and urunc boots."""
    image = _load(spec, spec_format, tag, from_, urunc)
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
    if chosen == Backend.nix:
        if out_format != OutFormat.docker_archive:
            raise SpecError("the nix backend writes docker-archive only", field="--format", value=out_format.value,
                            hint="use --backend native for oci-archive and oci")
        from . import nixgen
        nixgen.build_with_nix(image, spec, output, nix_pkgs)
        digest = None
    else:
        from .native.build import build as native_build
        digest = native_build(image, str(output), out_format.value, _progress_factory(f"building {image.name}:{image.tag}"),
                              cache=False if no_cache else None, fsync=fsync)
    _say(f"built {image.name}:{image.tag} ({out_format.value}, {chosen.value} backend) -> {output}"
         + (f"  {digest}" if digest else ""))


@app.command()
def validate(
    spec: Path = typer.Argument(..., help="args.nix, spec.yaml, bunnyfile or Containerfile"),
    tag: Optional[str] = typer.Option(None, "--tag", "-t", help="Image name[:tag], overriding the spec's."),
    spec_format: Optional[SpecFormat] = typer.Option(None, "--spec-format", help="Input format (default: from the file name)."),
    from_: Optional[list[str]] = typer.Option(None, "--from", help="Containerfile: take FROM NAME from a local archive: NAME=PATH (repeatable)."),
    show: bool = typer.Option(False, "--json", help="Print the normalized spec (what the Nix library builds) as JSON."),
    urunc: Optional[str] = typer.Option(None, "--urunc", help=_URUNC_HELP),
) -> None:
    """Check a spec against urunc's contract, without building."""
    image = _load(spec, spec_format, tag, from_, urunc)
    if show:
        import json

        from .nixgen import resolved_json
        typer.echo(json.dumps(resolved_json(image), indent=2, ensure_ascii=False))
    else:
        _say(f"{spec}: ok ({image.annotations.get('unikernelType')} on {image.annotations.get('hypervisor')}, "
             f"{image.name}:{image.tag}, {image.architecture}; urunc {', '.join(image.targets)})")


@app.command()
def inspect(
    image: Path = typer.Argument(..., help="docker-archive, oci-archive or OCI layout directory"),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Show the urunc metadata of an image: labels, urunc.json, and any disagreement."""
    from .inspect import inspect_image
    report = inspect_image(str(image))
    if as_json:
        import json
        typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        from .inspect import render
        render(report, _console(stderr=False))
    if report["disagreements"]:
        raise typer.Exit(1)


@app.command()
def generate(
    spec: Path = typer.Argument(..., help="args.nix, spec.yaml, bunnyfile or Containerfile"),
    output: Path = typer.Option(..., "--output", "-o", help="Directory to write the Nix expression into."),
    tag: Optional[str] = typer.Option(None, "--tag", "-t", help="Image name[:tag], overriding the spec's."),
    spec_format: Optional[SpecFormat] = typer.Option(None, "--spec-format", help="Input format (default: from the file name)."),
    from_: Optional[list[str]] = typer.Option(None, "--from", help="Containerfile: take FROM NAME from a local archive: NAME=PATH (repeatable)."),
    urunc: Optional[str] = typer.Option(None, "--urunc", help=_URUNC_HELP),
) -> None:
    """Write a standalone Nix expression that builds the same image (`nix-build DIR`)."""
    image = _load(spec, spec_format, tag, from_, urunc)
    from . import nixgen
    nixgen.generate(image, spec, output)
    _say(f"wrote {output}/default.nix; build it with: nix-build {output}")


cache_app = typer.Typer(help="The layer cache that makes rebuilds fast.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")


@cache_app.command("prune")
def cache_prune(
    max_size: Optional[str] = typer.Option(None, "--max-size", help="Keep at most this much (e.g. 5G); default: empty it."),
) -> None:
    """Remove the least recently used cached layers."""
    from .native import cache
    try:
        limit = cache.parse_bytes(max_size, 0)
    except ValueError as e:
        raise SpecError(str(e), field="--max-size", value=max_size)
    files, freed = cache.prune(limit)
    _say(f"removed {files} files ({freed / (1 << 20):.1f} MiB) from {cache.cache_dir()}")


_main_running = [False]   # set while main() runs: a signal then unwinds


def _on_sigterm() -> None:
    """SIGTERM (timeout, docker stop, systemd) unwinds like Ctrl-C, so the
    temporary files beside the output are removed; Python's default would
    die on the spot and leave them."""
    import signal

    def interrupt(signum, frame):
        if _main_running[0]:
            raise KeyboardInterrupt
        # main() has returned: nothing to unwind; die of the signal as the
        # default would, rather than a KeyboardInterrupt in shutdown code
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    try:
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, interrupt)
    except ValueError:   # not the main thread (the CLI called from a test)
        pass


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; our errors become one message and an exit code. Usage
    errors, --help and --version are typer's (exit 2 and 0)."""
    args = sys.argv[1:] if argv is None else argv
    _on_sigterm()
    _main_running[0] = True
    try:
        app(args=args, prog_name="urunix")
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except UrunixError as e:
        if "--debug" in args:
            import traceback
            traceback.print_exc()
        _say(e.render())
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted; no partial result was written (the output is as it was, or complete if the "
              "build had already finished)", file=sys.stderr)
        return 130
    finally:
        _main_running[0] = False
    return 0


if __name__ == "__main__":
    sys.exit(main())
