# urunix: package unikernels as OCI images for urunc, with Nix.
#
#   let urunix = import ./nix { inherit pkgs; }; in
#   urunix.fromArgs { args = ./args.nix; }
#
# Public functions (each documented where it is defined):
#   buildImage  normalized spec + src  -> docker-archive image    (image.nix)
#   fromArgs    bimanix args.nix       -> docker-archive image    (image.nix)
#               (both also have `.stream`: a script that streams the same
#               image, `./result | docker load`, one derivation per layer)
#   plan        spec -> config, layers, base archive, metadata    (image.nix)
#               (the metadata derivation runs the Python validator)
#   normalize   spec -> normalized spec (defaults, annotations)   (validate.nix)
#   contract    urunc's rules, read from contract.json
#
# Uses builtins only (no nixpkgs `lib`): it evaluates on Nix 2.8 and current
# Nix. From `pkgs` it needs python3, dockerTools.buildImage and the system.
{
  pkgs ? null,
  sources ? import ./sources.nix,
}:
let
  validate = import ./validate.nix { inherit sources; };
  image =
    if pkgs == null then
      throw "urunix: pass `pkgs` to build images: import ./nix { inherit pkgs; }"
    else
      import ./image.nix { inherit pkgs sources; };
in
{
  inherit (validate) normalize contract uruncLabels;
  inherit (image) buildImage fromArgs plan;
  util = import ./util.nix;
}
