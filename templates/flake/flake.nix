{
  description = "A unikernel image for urunc, built with urunix";

  # Replace with where you get urunix from.
  inputs.urunix.url = "github:urunix/urunix";
  inputs.nixpkgs.follows = "urunix/nixpkgs";

  outputs =
    {
      self,
      nixpkgs,
      urunix,
    }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems =
        f:
        builtins.listToAttrs (
          map (system: {
            name = system;
            value = f nixpkgs.legacyPackages.${system};
          }) systems
        );
    in
    {
      # nix build && docker load < result
      # nix build .#stream && ./result | docker load    (large images: only changed layers are stored)
      packages = forAllSystems (pkgs: rec {
        default = urunix.lib.fromArgs {
          inherit pkgs;
          args = ./args.nix;
        };
        stream = default.stream;
      });
    };
}
