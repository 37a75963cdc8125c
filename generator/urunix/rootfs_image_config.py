"""What a rootfs image gives the image urunix makes: its command
(Entrypoint+Cmd, when the spec gives none), its Env and its WorkingDir.

Read from the image's config JSON between parsing and validation (no layer
is read), so the validator judges the final command and environment like
any value the user wrote, and nothing changes the validated Image later."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

from .errors import MissingTool, BuildError, Problem, SpecError
from .rootfs.sources import IMAGE_KINDS
from .rootfs.sources import resolve as resolve_origin
from .spec import Origin, Spec


@dataclass(frozen=True)
class ImageConfig:
    """The run config of a rootfs image, as its config JSON says."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    workdir: str = ""

    @property
    def argv(self) -> tuple[str, ...]:
        """Entrypoint + Cmd: what a container runtime would run."""
        return self.entrypoint + self.cmd


def of_spec(spec: Spec, kinds: tuple[str, ...] = IMAGE_KINDS) -> tuple[ImageConfig | None, list[Problem]]:
    """The config of the spec's rootfs image when its origin is of one of
    `kinds` (else None), and the problems of an image that cannot be read.
    A `from` that names nothing usable is left to the validator to report."""
    r = spec.rootfs
    if r is None or not kinds or not isinstance(r.origin, str) or r.origin in ("local", "scratch"):
        return None, []
    try:
        origin = resolve_origin(r.origin, spec.base_dir, spec.where(f"{r.field or 'rootfs'}.from"))
    except SpecError:
        return None, []
    if origin.kind not in kinds:
        return None, []
    try:
        return read(origin), []
    except SpecError as e:
        return None, list(e.problems)


def read(origin: Origin) -> ImageConfig:
    """The run config of an image origin: an archive or layout on this host,
    a registry image (its config blob only), or the image a Dockerfile builds."""
    from .rootfs import fetch

    if origin.kind == "image":
        return _from_archive(origin.location)
    if origin.kind == "registry":
        skopeo = shutil.which("skopeo")
        if not skopeo:
            raise MissingTool("skopeo", "apt-get install skopeo", f"to read {origin.location}")
        r = subprocess.run([skopeo, "inspect", "--config", f"docker://{origin.location}"], capture_output=True, text=True)
        if r.returncode != 0:
            raise BuildError(f"skopeo could not read the config of {origin.location}: {r.stderr.strip()[-2000:]}")
        return _from_config(json.loads(r.stdout), origin.location)
    with tempfile.TemporaryDirectory(prefix="urunix-config-") as tmp:
        return _from_archive(fetch.docker_build(origin, tmp, 0))


def _from_archive(path: str) -> ImageConfig:
    from .imagefile import open_image

    with open_image(path) as (info, _store):
        return _from_config(info.config, path)


def _from_config(config: object, image: str) -> ImageConfig:
    """Checked as flatten.py checks it (lists of strings, a string)."""
    from .rootfs.flatten import _run_config

    cfg = _run_config(config.get("config") if isinstance(config, dict) else None, image)
    return ImageConfig(
        tuple(cfg.get("Entrypoint") or ()),
        tuple(cfg.get("Cmd") or ()),
        tuple(cfg.get("Env") or ()),
        cfg.get("WorkingDir") or "",
    )
