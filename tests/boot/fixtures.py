"""Session fixtures for real boots: Debian's cloud kernel and a static
busybox, obtained once (see harness.py). Missing prerequisites skip, or fail
under URUNIX_REQUIRE_TOOLS=1.

Not a conftest.py: a second module named `conftest` would shadow the
top-level one that tests import `need` from. Use them with
`from boot.fixtures import boot_kernel, boot_busybox` (tests/ is on sys.path)
or, inside tests/boot, `from fixtures import ...`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import harness


def _get(fn):
    try:
        return fn()
    except harness.HarnessError as e:
        if os.environ.get("URUNIX_REQUIRE_TOOLS") == "1":
            pytest.fail(f"{e} (URUNIX_REQUIRE_TOOLS=1)")
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def boot_kernel() -> Path:
    _get(harness.ensure_qemu)
    return _get(harness.debian_kernel)


@pytest.fixture(scope="session")
def boot_busybox() -> str:
    return _get(harness.busybox_path)
