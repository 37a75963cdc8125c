# A drop-in for bimanix/bunix: build the image an args.nix describes.
#
#   nix-build default.nix                      # reads ./args.nix
#   nix-build default.nix --arg args ./other.nix
#   nix-build default.nix --arg pkgs 'import /path/to/nixpkgs {}'
#   nix-build default.nix -I nixpkgs=/path/to/nixpkgs
#   docker load < result
#   $(nix-build default.nix -A stream --no-out-link) | docker load   # large images
#
# `files` sources are relative to the args file's directory. Nothing here
# needs Python on the host: python3 from `pkgs` runs inside derivations.
{
  pkgs ? import ./nix/nixpkgs.nix,
  args ? ./args.nix,
}:
if (builtins.isPath args || builtins.isString args) && !(builtins.pathExists args) then
  throw "urunix: ${toString args} not found: copy args.nix.example to args.nix, or pass --arg args ./your-spec.nix"
else
  (import ./nix { inherit pkgs; }).fromArgs { inherit args; }
