"""What a `from` names: nothing (scratch), a host directory, a host file, an
image on this host (docker-archive, oci-archive, OCI layout), or a registry
reference pinned by digest. Decided once, here, for the rootfs, the kernel
and the init alike."""

from __future__ import annotations

import os
import re
import tarfile
from pathlib import Path

from ..errors import SpecError
from ..spec import Origin

_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
_REF = re.compile(r"^[a-z0-9][a-z0-9._/:-]*(@sha256:[0-9a-f]{64})?$")


def is_image_file(path: str) -> bool:
    """A tar holding manifest.json (docker-archive) or index.json (OCI)."""
    try:
        if not tarfile.is_tarfile(path):
            return False
        with tarfile.open(path, "r:") as t:
            for m in t:
                name = m.name[2:] if m.name.startswith("./") else m.name
                if name in ("manifest.json", "index.json"):
                    return True
    except (tarfile.TarError, OSError, EOFError):
        return False
    return False


def is_dockerfile(name: str) -> bool:
    """kraft's way: a rootfs `from` a Dockerfile is the image it builds."""
    return name in ("Dockerfile", "Containerfile") or name.endswith((".Dockerfile", ".Containerfile", ".dockerfile"))


#: Origins whose tree is an image's (read by rootfs/flatten.py).
IMAGE_KINDS = ("image", "registry", "dockerfile")


def is_layout(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "index.json")) and os.path.isfile(os.path.join(path, "oci-layout"))


def resolve(text: object, base_dir: Path, where: dict) -> Origin:
    """An Origin for a `from` value; a SpecError (with `where`) if it names
    nothing usable."""
    field = where.get("key") or where.get("field") or ""
    if not isinstance(text, str) or not text:
        raise SpecError(
            "must name a source",
            value=text,
            **where,
            allowed='"scratch", a directory, a file, an image archive, "oci:./layout", "docker://ref@sha256:..."',
        )
    if text == "scratch":
        return Origin("scratch", "", field)
    if text.startswith("docker://") or _DIGEST.search(text):
        ref = text[len("docker://") :] if text.startswith("docker://") else text
        if not _DIGEST.search(ref):
            raise SpecError(
                "a registry reference must be pinned by digest",
                value=text,
                **where,
                hint=f"write {ref.split('@')[0]}@sha256:<digest>, so the build is reproducible",
            )
        return Origin("registry", ref, field)
    layout = text[len("oci:") :] if text.startswith("oci:") else None
    path = base_dir / (layout if layout is not None else text)
    if os.path.isdir(path):
        if is_layout(str(path)):
            return Origin("image", str(path.absolute()), field)
        if layout is not None:
            raise SpecError("is not an OCI layout (no index.json and oci-layout)", value=text, **where)
        return Origin("dir", str(path.absolute()), field)
    if os.path.isfile(path):
        if is_dockerfile(path.name):
            return Origin("dockerfile", str(path.absolute()), field)
        kind = "image" if is_image_file(str(path)) else "file"
        return Origin(kind, str(path.absolute()), field)
    if not text.startswith((".", "/", "~")) and _REF.match(text) and ("/" in text or ":" in text):
        name = text.rsplit("/", 1)[-1].split(":")[0]
        raise SpecError(
            "names a registry image that is not pinned by digest",
            value=text,
            **where,
            hint=f"pin it (docker://{text.split(':')[0] if ':' in text.rsplit('/', 1)[-1] else text}@sha256:...) "
            f'or save it locally: docker save {text} -o {name}.tar, then from = "./{name}.tar"',
        )
    raise SpecError(
        "does not exist",
        value=text,
        **where,
        hint=_near_miss(text, base_dir) or f"paths are relative to the spec's directory ({base_dir})",
    )


def _near_miss(text: str, base_dir: Path) -> str | None:
    """did you mean "local"/"scratch", or a name that is there, beside the one given?"""
    from ..errors import did_you_mean

    close = did_you_mean(text, ("local", "scratch"))
    if close:
        return close
    head, _, tail = text.rstrip("/").rpartition("/")
    try:
        names = os.listdir(base_dir / head) if tail else []
    except OSError:
        return None
    close = did_you_mean(tail, names)
    if close:
        name = close[len('did you mean "') : -2]
        return f'did you mean "{head + "/" if head or text.startswith("/") else ""}{name}"? (paths are relative to {base_dir})'
    return None
