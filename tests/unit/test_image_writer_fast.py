"""image_writer's tar headers (its fast ustar path, and tarfile for what
needs pax records) read back by tarfile, an independent reader, as exactly
the member they were made from."""

from __future__ import annotations

import io
import random
import tarfile

from urunix.helpers import image_writer as iw


def read_back(header: bytes) -> tarfile.TarInfo:
    """The member tarfile's reader finds in a header (pax records included)."""
    assert len(header) % 512 == 0
    with tarfile.open(fileobj=io.BytesIO(header + bytes(1024)), mode="r:") as t:
        info = t.next()
    assert info is not None
    return info


def random_member(rng: random.Random) -> iw.Member:
    """Mostly members the fast path takes (ASCII names up to 100 bytes,
    numbers in range, no devices), some that need pax records or tarfile."""
    common = rng.random() < 0.85
    kind = rng.choice(
        ["file", "dir", "symlink", "hardlink", "fifo"]
        if common
        else ["file", "dir", "symlink", "hardlink", "fifo", "char", "block"]
    )
    n = rng.choice([1, 5, 50, 99, 100] if common else [101, 150, 300])
    alphabet = "abcxyz/_-.0" if common else "abé/_-. "
    path = "".join(rng.choice(alphabet) for _ in range(n)).strip("/") or "x"
    path = "/".join(p for p in path.split("/") if p not in ("", ".", "..")) or "x"
    big = not common and rng.random() < 0.5
    return iw.Member(
        path,
        kind,
        rng.choice([0, 0o644, 0o755, 0o4755, 0o777, 0o1777, 0o7777]),
        (rng.choice([8**11, 10**12]) if big else rng.choice([0, 1, 511, 512, 10**6, 8**11 - 1])) if kind == "file" else 0,
        target=(rng.choice(["t" * 5, "t" * 100] if common else ["t" * 101, "é"])) if kind in ("symlink", "hardlink") else "",
        uid=rng.choice([8**7, 2**21 + 3]) if big else rng.choice([0, 1000, 8**7 - 1]),
        gid=rng.choice([0, 5, 8**7 - 1]),
        devmajor=rng.choice([0, 1, 259]) if kind in ("char", "block") else 0,
        devminor=rng.choice([0, 3, 4096]) if kind in ("char", "block") else 0,
    )


def test_headers_read_back_as_the_member():
    rng = random.Random(5)
    fast = 0
    for _ in range(5000):
        m = random_member(rng)
        mtime = rng.choice([0, 1, 8**11 - 1]) if rng.random() < 0.9 else 8**11
        header = m.header(mtime)
        fast += iw._ustar_header(m, mtime) is not None
        info = read_back(header)
        assert info.name == m.path, m
        assert info.type == iw.TAR_TYPES[m.kind], m
        assert info.mode == m.mode, m
        assert info.size == (m.size if m.kind == "file" else 0), m
        assert info.linkname == m.target, m
        assert info.mtime == mtime, m
        assert (info.uid, info.gid) == (m.uid, m.gid), m
        assert info.uname == info.gname == "", m
        if m.kind in ("char", "block"):
            assert (info.devmajor, info.devminor) == (m.devmajor, m.devminor), m
    assert fast > 3500  # the path under test is the one taken


def test_fast_path_only_where_no_pax_record_is_needed():
    base = iw.Member("a", "file", 0o644, 1)
    assert iw._ustar_header(base, 0) is not None
    slow = [
        iw.Member("a" * 101, "file", 0o644, 1),
        iw.Member("é", "file", 0o644, 1),
        iw.Member("a", "file", 0o644, 8**11),
        iw.Member("a", "file", 0o644, 1, uid=8**7),
        iw.Member("a", "file", 0o644, 1, gid=8**7),
        iw.Member("l", "symlink", 0o777, target="t" * 101),
        iw.Member("c", "char", 0o600, devmajor=5, devminor=1),
    ]
    for m in slow:
        assert iw._ustar_header(m, 0) is None, m
        assert read_back(m.header(0)).name == m.path
    assert iw._ustar_header(base, 8**11) is None
    assert read_back(base.header(8**11)).mtime == 8**11
