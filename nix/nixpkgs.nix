# The nixpkgs to build with when the caller passed no `pkgs`: `<nixpkgs>`, or
# an error that says what is missing and how to supply it (Nix's own "file
# 'nixpkgs' was not found" names neither). A fresh Debian/Ubuntu machine with
# nix-bin has no channel, so this is the first thing such a user meets.
let
  found = builtins.tryEval <nixpkgs>;
in
if found.success then
  import found.value { }
else
  throw ''
    urunix: <nixpkgs> is not on the Nix search path, and no `pkgs` was given.
    Supply nixpkgs in one of these ways:
      nix-build default.nix -I nixpkgs=/path/to/nixpkgs           (a checkout or an unpacked release tarball)
      export NIX_PATH=nixpkgs=/path/to/nixpkgs                    (for every command)
      nix-channel --add https://nixos.org/channels/nixos-25.05 nixpkgs && nix-channel --update
      nix-build default.nix --arg pkgs 'import /path/to/nixpkgs { }'
    or use the flake (`nix build`), which pins its own nixpkgs.''
