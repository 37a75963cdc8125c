"""An image origin as a path rootfs/flatten.py reads: an archive or layout
on this host as it is, a registry image copied with skopeo, or the image a
Dockerfile builds (kraft's way), saved from the Docker Engine."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess

from ..errors import BuildError, MissingTool
from ..spec import Origin


def local_image(origin: Origin, scratch: str, n: int) -> str:
    """A path flatten() reads; `n` numbers the copies made in `scratch`."""
    if origin.kind == "image":
        return origin.location
    if origin.kind == "dockerfile":
        return docker_build(origin, scratch, n)
    if origin.kind != "registry":
        raise AssertionError(origin)
    skopeo = shutil.which("skopeo")
    if not skopeo:
        raise MissingTool("skopeo", "apt-get install skopeo", f"to fetch {origin.location}")
    dest = os.path.join(scratch, f"pull-{n}")
    r = subprocess.run(
        [skopeo, "copy", "--quiet", f"docker://{origin.location}", f"oci:{dest}:image"], capture_output=True, text=True
    )
    if r.returncode != 0:
        raise BuildError(f"skopeo could not fetch {origin.location}: {r.stderr.strip()[-2000:]}")
    return dest


def docker_build(origin: Origin, scratch: str, n: int) -> str:
    """Build the Dockerfile with the Docker Engine (its directory is the
    context), save the image, and return that archive. The image is removed
    from the engine again; the build's own cache stays, as with any docker build."""
    docker = shutil.which("docker")
    if not docker:
        raise MissingTool("docker", "apt-get install docker.io (and start dockerd)", f"to build {origin.location}")
    tag = "urunix-rootfs/" + hashlib.sha256(f"{origin.location}:{scratch}".encode()).hexdigest()[:16]
    dest = os.path.join(scratch, f"dockerfile-{n}.tar")
    context = os.path.dirname(origin.location)
    steps = ([docker, "build", "-q", "-f", origin.location, "-t", tag, context], [docker, "save", "-o", dest, tag])
    try:
        for argv in steps:
            r = subprocess.run(argv, capture_output=True, text=True)
            if r.returncode != 0:
                if "Cannot connect to the Docker daemon" in r.stderr or "daemon running" in r.stderr:
                    raise BuildError(
                        f"{origin.location}: a rootfs from a Dockerfile needs a running Docker "
                        f"Engine (dockerd, or DOCKER_HOST): {r.stderr.strip()[-500:]}"
                    )
                raise BuildError(f"docker {argv[1]} of {origin.location} failed: {r.stderr.strip()[-2000:]}")
    finally:
        subprocess.run([docker, "rmi", "-f", tag], capture_output=True)
    return dest
