"""image_writer's fast ustar header gives exactly tarfile's bytes."""

from __future__ import annotations

import random
import tarfile

from urunix.helpers import image_writer as iw


def reference(m: iw.Member, mtime: int) -> bytes:
    info = tarfile.TarInfo(m.path + ("/" if m.kind == "dir" else ""))
    info.type = iw.TAR_TYPES[m.kind]
    info.mode = m.mode
    info.size = m.size if m.kind == "file" else 0
    info.linkname = m.target
    info.mtime = mtime
    info.uid, info.gid = m.uid, m.gid
    info.uname = info.gname = ""
    info.devmajor, info.devminor = m.devmajor, m.devminor
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def test_fast_header_matches_tarfile():
    rng = random.Random(5)
    fast = 0
    for _ in range(5000):
        kind = rng.choice(["file", "dir", "symlink", "hardlink", "fifo", "char", "block"])
        n = rng.choice([1, 5, 50, 99, 100, 101, 150])
        path = "".join(rng.choice("abé/_-. ") if rng.random() < 0.02 else rng.choice("abcxyz/_-.0")
                       for _ in range(n)).strip("/") or "x"
        m = iw.Member(path, kind, rng.choice([0, 0o644, 0o755, 0o4755, 0o777, 0o1777, 0o107777]),
                      rng.choice([0, 1, 511, 512, 10**6, 8**11 - 1, 8**11]) if kind == "file" else 0,
                      target=rng.choice(["", "t" * 5, "t" * 100, "t" * 101, "é"]) if kind in ("symlink", "hardlink") else "",
                      uid=rng.choice([0, 1000, 8**7 - 1, 8**7]), gid=rng.choice([0, 5, 8**7]),
                      devmajor=rng.choice([0, 1]), devminor=3)
        mtime = rng.choice([0, 1, 8**11 - 1, 8**11])
        fast += iw._ustar_header(m, mtime) is not None
        assert m.header(mtime) == reference(m, mtime), m
    assert fast > 500
