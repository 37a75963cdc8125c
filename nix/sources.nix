# Where the Nix library finds the two files it shares with the Python side:
# the stdlib-only helpers and urunc's contract. This is the only file that
# knows the repository's layout; `urunix generate` writes its own copy of it
# next to copies of these files, so a generated directory is self-contained.
{
  helpers = ../generator/urunix/helpers;
  contract = ../generator/urunix/contract.json;
}
