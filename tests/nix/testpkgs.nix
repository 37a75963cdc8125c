# A small stand-in for nixpkgs, made from the host's tools, for real
# `nix-build` runs in CI where there is no nixpkgs and no network.
#
#   python3                 the host's python (NIX_TEST_PYTHON or --arg python)
#   e2fsprogs               the host's /usr/sbin/{mke2fs,debugfs,e2fsck,dumpe2fs}
#   dockerTools.buildImage  writes a PLAN.json (the native builder's input)
#                           and runs helpers/image_writer.py on it; supports
#                           copyToRoot, fromImage (layers are chained through
#                           the `plan` output), config, architecture, created
#
# Everything else urunix's nix/ library needs is plain `derivation`.
{
  python ? builtins.getEnv "NIX_TEST_PYTHON",
  system ? builtins.currentSystem,
  helpers ? ../../generator/urunix/helpers,
}:
let
  py =
    if python == "" then
      throw "testpkgs.nix: set NIX_TEST_PYTHON or pass --arg python /usr/bin/python3"
    else
      python;
  hostPython = derivation {
    name = "host-python3";
    inherit system;
    builder = py;
    args = [
      "-c"
      "import os, sys; os.makedirs(os.environ['out'] + '/bin'); os.symlink(sys.argv[1], os.environ['out'] + '/bin/python3')"
      py
    ];
  };
  # e2fsprogs from the host (/usr/sbin): mke2fs, debugfs, e2fsck, dumpe2fs.
  e2fsprogs = derivation {
    name = "host-e2fsprogs";
    inherit system;
    builder = py;
    args = [
      "-c"
      "import os, sys; b = os.environ['out'] + '/bin'; os.makedirs(b); [os.symlink(os.path.join(d, t), os.path.join(b, t)) for t in sys.argv[1:] for d in ('/usr/sbin', '/sbin') if os.path.exists(os.path.join(d, t)) and not os.path.lexists(os.path.join(b, t))]"
      "mke2fs"
      "mkfs.ext2"
      "mkfs.ext4"
      "debugfs"
      "e2fsck"
      "dumpe2fs"
    ];
  };
  imageWriter = builtins.path {
    path = helpers + "/image_writer.py";
    name = "image_writer.py";
  };
  buildImage =
    args:
    derivation {
      name = "docker-image-${baseNameOf args.name}.tar";
      inherit system;
      builder = "${hostPython}/bin/python3";
      # Nix runs builders with argv[0] = "python3" and no PATH, so
      # sys.executable is empty: the script finds python here.
      python = "${hostPython}/bin/python3";
      args = [
        ./build_image.py
        imageWriter
      ];
      outputs = [
        "out"
        "plan"
      ];
      fromImagePlan = if args ? fromImage && args.fromImage != null then "${args.fromImage.plan}" else "";
      imageArgs = builtins.toJSON (
        removeAttrs args [ "fromImage" ]
        // {
          copyToRoot = map toString (args.copyToRoot or [ ]);
        }
      );
      passAsFile = [ "imageArgs" ];
    };
in
{
  inherit system;
  stdenv.hostPlatform.system = system;
  python3 = hostPython;
  inherit e2fsprogs;
  dockerTools = {
    inherit buildImage;
  };
}
