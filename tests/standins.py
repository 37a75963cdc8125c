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


def standin_image(path: Path, kernel: bool = False) -> None:
    """A small image archive, as `docker save` would give: a kernel image
    (/kernel) or an application image (an app with a Cmd, an Env, a
    WorkingDir), written with urunix's own image writer (no Docker needed)."""
    from urunix.helpers import image_writer

    if kernel:
        entries = [{"type": "file", "path": "/kernel", "data": f"stand-in kernel from {path.name}\\n"}]
        config = {}
    else:
        entries = [
            {"type": "file", "path": "/bin/app", "data": '#!/bin/sh\necho app "$@"\n', "mode": 0o755},
            {"type": "symlink", "path": "/bin/sh", "target": "busybox"},
            {"type": "file", "path": "/etc/app.conf", "data": f"name = {path.stem}\n"},
            {"type": "dir", "path": "/data"},
        ]
        config = {"Entrypoint": ["/bin/app"], "Cmd": ["--port", "80"], "Env": ["APP_MODE=prod"], "WorkingDir": "/data"}
    plan = {
        "format": "docker-archive",
        "repoTags": [f"standin/{path.stem}:latest"],
        "created": "1970-01-01T00:00:01Z",
        "architecture": "amd64",
        "config": config,
        "layers": [{"name": "base", "entries": entries}],
    }
    image_writer.write_atomic(plan, str(path))


def example(name: str, dest: Path) -> Path:
    """Copy examples/NAME to dest and create the stand-in files its
    STANDINS list names (one host path per line; `image:NAME.tar` and
    `kernel-image:NAME.tar` make small image archives)."""
    src = EXAMPLES / name
    shutil.copytree(src, dest, dirs_exist_ok=True)
    listing = src / "STANDINS"
    if listing.exists():
        for line in listing.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            kind, _, rest = line.partition(":") if line.startswith(("image:", "kernel-image:")) else ("", "", line)
            path = dest / rest
            path.parent.mkdir(parents=True, exist_ok=True)
            if kind:
                standin_image(path, kernel=kind == "kernel-image")
                continue
            path.write_bytes(standin_bytes(line))
            if line.endswith((".hvt", ".spt")) or "qemu" in line or "kernel" in line:
                path.chmod(0o755)
    return dest


def all_examples() -> list[str]:
    return sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir())


if __name__ == "__main__":
    # python3 tests/standins.py EXAMPLE DEST: the example plus stand-ins for
    # the files it names but does not ship (its STANDINS list), ready to build
    import sys

    sys.path.insert(0, str(ROOT / "generator"))
    if len(sys.argv) != 3 or sys.argv[1] not in all_examples():
        print(f"usage: python3 tests/standins.py EXAMPLE DEST\n  EXAMPLE: {', '.join(all_examples())}", file=sys.stderr)
        sys.exit(2)
    dest = example(sys.argv[1], Path(sys.argv[2]))
    print(f"{dest}: ready; e.g. cd {dest} && urunix build args.nix")
