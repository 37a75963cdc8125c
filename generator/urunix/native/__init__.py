"""The native backend: builds images with no Nix, from the same plan and the
same helpers the Nix derivations run."""
