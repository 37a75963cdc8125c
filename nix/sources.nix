# Where the Nix library finds what it shares with the Python side: the
# stdlib-only helpers, urunc's contract, and the package the rootfs helper
# runs. This is the only file that knows the repository's layout; `urunix
# generate` writes its own copy of it next to copies of these files, so a
# generated directory is self-contained.
{
  helpers = ../generator/urunix/helpers;
  contract = ../generator/urunix/contract.json;
  # The whole Python package (only its *.py and *.json enter the store): the
  # rootfs derivations run helpers/build_rootfs.py, which imports it.
  package = ../generator/urunix;
}
