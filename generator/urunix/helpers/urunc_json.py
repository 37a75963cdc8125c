"""Write urunc's metadata: `/urunc.json` and the image labels.

stdlib only: runs as `python3 urunc_json.py ANNOTATIONS.json OUT_DIR` inside a
Nix derivation (writes OUT_DIR/urunc.json and OUT_DIR/labels.json) and is
imported by the native builder.

ANNOTATIONS.json is a JSON object of short key names to plain-text values
(`{"binary": "/unikernel/kernel", ...}`), already validated. urunc wants the
full key names, and each value as base64 (standard alphabet, padded, like Go's
base64.StdEncoding) of its UTF-8 bytes; labels carry the same values as
plain text.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from typing import Mapping

try:
    from . import script
except ImportError:  # run by path, also as `python3 -I` (no directory on sys.path)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import script  # type: ignore[no-redef]

PREFIX = "com.urunc.unikernel."


def full_key(key: str) -> str:
    return key if key.startswith(PREFIX) else PREFIX + key


def urunc_json(annotations: Mapping[str, str]) -> bytes:
    """The bytes of /urunc.json: sorted full keys, padded base64 values."""
    doc = {
        full_key(k): base64.standard_b64encode(v.encode("utf-8", "surrogateescape")).decode("ascii")
        for k, v in annotations.items()
    }
    return (json.dumps(doc, sort_keys=True, indent=2) + "\n").encode("ascii")


def labels(annotations: Mapping[str, str]) -> dict[str, str]:
    """Image config labels: full keys, plain-text values."""
    return {full_key(k): v for k, v in sorted(annotations.items())}


def decode(data: bytes) -> dict[str, str]:
    """Read a urunc.json back to short keys and plain values (for `inspect`).

    Strict like urunc: values must be padded standard base64."""
    doc = json.loads(data)
    if not isinstance(doc, dict):
        raise ValueError("urunc.json is not a JSON object")
    out = {}
    for key, value in doc.items():
        if not isinstance(value, str):
            raise ValueError(f"{key}: value is not a string")
        raw = base64.b64decode(value.encode("ascii"), validate=True)
        short = key[len(PREFIX) :] if key.startswith(PREFIX) else key
        out[short] = raw.decode("utf-8", "surrogateescape")
    return out


def _write(path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write(out_dir: str, annotations: dict[str, str]) -> None:
    """OUT_DIR/urunc.json and OUT_DIR/labels.json (the labels as JSON)."""
    os.makedirs(out_dir, exist_ok=True)
    _write(os.path.join(out_dir, "urunc.json"), urunc_json(annotations))
    _write(
        os.path.join(out_dir, "labels.json"),
        (json.dumps(labels(annotations), sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8", "surrogateescape"),
    )


def main(argv: list[str]) -> int:
    return script.run(argv, "ANNOTATIONS.json OUT_DIR", lambda annotations, out: write(out, annotations))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
