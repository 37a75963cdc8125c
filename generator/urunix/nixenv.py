"""What `nix-build` needs on this machine, and what to tell the user when it
is missing. Debian/Ubuntu's nix-bin comes with no channel (so no
`<nixpkgs>`), and as root it wants a `nixbld` group that the package does not
create; Nix's own messages for both name neither cause nor fix. The
wording for `<nixpkgs>` matches nix/nixpkgs.nix, which says the same to
`nix-build default.nix` users."""

from __future__ import annotations

import shutil
import subprocess

NIXPKGS_MISSING = "<nixpkgs> is not on the Nix search path"
NIXPKGS_HINT = (
    "pass --nix-pkgs 'import /path/to/nixpkgs { }', or make <nixpkgs> findable: "
    "export NIX_PATH=nixpkgs=/path/to/nixpkgs (a checkout or an unpacked release tarball), or "
    "nix-channel --add https://nixos.org/channels/nixos-25.05 nixpkgs && nix-channel --update; "
    "or use --backend native"
)
BUILD_USERS_HINT = (
    "Debian's nix-bin without a daemon: run Nix with NIX_CONFIG=$'build-users-group =\\nsandbox = false' "
    "(or in /etc/nix/nix.conf), or create the nixbld group and build users (groupadd nixbld ...)"
)


def has_nixpkgs() -> bool:
    """`<nixpkgs>` resolves (NIX_PATH, -I in NIX_CONFIG, or a channel)."""
    exe = shutil.which("nix-instantiate")
    if exe is None:
        return False
    return subprocess.run([exe, "--find-file", "nixpkgs"], capture_output=True).returncode == 0


def explain_failure(stderr: str, scratch: str | None = None) -> str:
    """nix-build's error, with the scratch directory (deleted by the time the
    user reads this) named as such, and the fix for failures whose cause is
    this machine's Nix set-up rather than the spec."""
    text = stderr.strip()
    if scratch:
        text = text.replace(scratch, "<generated expression>")
    hints = []
    if "build-users-group" in text or "nixbld" in text:
        hints.append(BUILD_USERS_HINT)
    if "'nixpkgs' was not found" in text or NIXPKGS_MISSING in text:
        hints.append(NIXPKGS_HINT)
    if scratch:
        hints.append("to keep the generated expression, run `urunix generate SPEC -o DIR` and `nix-build DIR`")
    return text + "".join(f"\n  hint: {h}" for h in hints)
