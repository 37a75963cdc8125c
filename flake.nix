{
  description = "urunix: package unikernels as OCI images for the urunc container runtime";

  # A release channel, so `nix build` gives the same image next month.
  # Tests override it offline: --override-input nixpkgs path:...
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";

  outputs =
    { self, nixpkgs }:
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
            value = f system nixpkgs.legacyPackages.${system};
          }) systems
        );
      pyproject = builtins.fromTOML (builtins.readFile ./pyproject.toml);

      # The library for a given pkgs: lib.forPkgs pkgs -> { buildImage; fromArgs; ... }
      forPkgs = pkgs: import ./nix { inherit pkgs; };
    in
    {
      # Call from another flake with its own pkgs:
      #   urunix.lib.fromArgs { inherit pkgs; args = ./args.nix; }
      #   urunix.lib.buildImage { inherit pkgs; src = ./.; name = ...; annotations = ...; }
      lib = {
        inherit forPkgs;
        fromArgs = a: (forPkgs a.pkgs).fromArgs (removeAttrs a [ "pkgs" ]);
        buildImage = a: (forPkgs a.pkgs).buildImage (removeAttrs a [ "pkgs" ]);
        inherit ((import ./nix { })) normalize contract;
      };

      packages = forAllSystems (
        system: pkgs: {
          # The example image: args.nix.example (its stand-in kernel sits in the template).
          default = (forPkgs pkgs).fromArgs {
            args = ./args.nix.example;
            src = ./.;
          };
          # The same image as a script for large images: `nix build .#stream && ./result | docker load`.
          stream = self.packages.${system}.default.stream;
          urunix = pkgs.python3Packages.buildPythonApplication {
            pname = "urunix";
            inherit (pyproject.project) version;
            pyproject = true;
            src = ./.;
            build-system = [ pkgs.python3Packages.hatchling ];
            dependencies = with pkgs.python3Packages; [
              typer
              rich
              jinja2
              pyyaml
            ];
            meta.mainProgram = "urunix";
          };
        }
      );

      apps = forAllSystems (
        system: pkgs: {
          default = {
            type = "app";
            program = "${self.packages.${system}.urunix}/bin/urunix";
          };
        }
      );

      checks = forAllSystems (
        system: pkgs: {
          example = self.packages.${system}.default;
        }
      );

      templates.default = {
        path = ./templates/flake;
        description = "A unikernel image for urunc: flake.nix + args.nix";
      };

      formatter = forAllSystems (system: pkgs: pkgs.nixfmt-rfc-style or pkgs.nixfmt);
    };
}
