"""Build an Image natively: plan it, then stream it with helpers/image_writer."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from contextlib import ExitStack, nullcontext
from typing import Callable, ContextManager

from ..errors import BuildError, SpecError
from ..helpers import image_writer
from ..plan import plan
from ..spec import Image
from .artifacts import materialize

ProgressFactory = Callable[[int], ContextManager[Callable[[int], None] | None]]


def build(image: Image, out: str, fmt: str = "docker-archive",
          progress: ProgressFactory | None = None) -> str:
    """Write the image to `out` atomically; return its manifest digest."""
    if fmt not in image_writer.FORMATS:
        raise SpecError("is not an output format urunix writes", field="--format", value=fmt,
                        allowed=", ".join(image_writer.FORMATS))
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise SpecError("the output's directory does not exist", field="--output", value=out)
    try:
        with ExitStack() as stack:
            scratch = tempfile.mkdtemp(dir=parent, prefix=".urunix-tmp-")
            stack.callback(shutil.rmtree, scratch, True)
            made = materialize(image, scratch, stack) if (image.rootfs or image.kernel or image.init) else None
            p = plan(image, fmt, made)
            layers = image_writer.plan_members(p)
            total = image_writer.total_bytes(p, layers)
            with (progress(total) if progress else nullcontext(None)) as advance:
                return image_writer.write_atomic(p, out, advance, layers)
    except image_writer.PlanError as e:
        raise BuildError(str(e)) from e
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise BuildError(f"the disk is full while writing {out}; the previous result (if any) is untouched") from e
        raise BuildError(f"{e.filename or out}: {e.strerror or e}") from e
