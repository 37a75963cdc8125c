# Where the Nix library finds what it shares with the Python side: the
# stdlib-only helpers, urunc's contract, and the package the validator and
# the rootfs helper run. This is the only file that knows the repository's layout; `urunix
# generate` writes its own copy of it next to copies of these files, so a
# generated directory is self-contained.
{
  helpers = ../generator/urunix/helpers;
  contract = ../generator/urunix/contract.json;
  # The whole Python package (only its *.py and *.json enter the store): the
  # metadata derivation runs helpers/nix_check.py (the validator) and the
  # rootfs derivations helpers/build_rootfs.py, which import it.
  package = ../generator/urunix;
}
