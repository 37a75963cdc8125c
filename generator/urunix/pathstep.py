"""One step of a path walk that follows symlinks inside a root.

The walks that resolve a path as a chroot would (the build context's
FollowSymlinkInScope, the flattened rootfs tree and its finished members)
handle `.` and `..` the same way; this is that step, kept in one place."""

from __future__ import annotations


def dot_step(cur: list[str], name: str) -> bool:
    """Apply `name` to the resolved components `cur` when it is empty, `.`
    or `..` (which stops at the root) and return True; False for a real name,
    which the walk then looks up itself."""
    if name in ("", "."):
        return True
    if name == "..":
        if cur:
            cur.pop()
        return True
    return False
