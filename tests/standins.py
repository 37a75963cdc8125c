"""Small stand-in binaries for the examples: deterministic bytes named after
the file, so a test can check that what comes out is what went in."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def standin_bytes(name: str, size: int = 4096) -> bytes:
    seed = hashlib.sha256(name.encode()).digest()
    out = bytearray()
    while len(out) < size:
        seed = hashlib.sha256(seed).digest()
        out += seed
    return b"\x7fELF" + bytes(out[: size - 4])


def example(name: str, dest: Path) -> Path:
    """Copy examples/NAME to dest and create the stand-in files its
    STANDINS list names (one host path per line)."""
    src = EXAMPLES / name
    shutil.copytree(src, dest, dirs_exist_ok=True)
    listing = src / "STANDINS"
    if listing.exists():
        for line in listing.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            path = dest / line
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(standin_bytes(line))
            if line.endswith((".hvt", ".spt")) or "qemu" in line or "kernel" in line:
                path.chmod(0o755)
    return dest


def all_examples() -> list[str]:
    return sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir())
