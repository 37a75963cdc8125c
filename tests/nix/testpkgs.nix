# A small stand-in for nixpkgs, made from the host's tools, for real
# `nix-build` runs in CI where there is no nixpkgs and no network.
#
#   python3                 the host's python (NIX_TEST_PYTHON or --arg python)
#   e2fsprogs               the host's /usr/sbin/{mke2fs,debugfs,e2fsck,dumpe2fs}
#   dockerTools.buildImage  behaves like nixpkgs' (24.05-25.05) in every way
#                           that can change an image: a layer derivation and
#                           an image derivation (see build_image.py); base Env
#                           concatenated across fromImage, `chmod ug+w` of the
#                           layer root, 1980 mtimes, a `./` entry, owner names
#                           root, the layer's runtime closure appended, config
#                           from this call only, gzip unless `compressor`.
#                           No runAsRoot (a VM there).
#
# Everything else urunix's nix/ library needs is plain `derivation`.
{
  python ? builtins.getEnv "NIX_TEST_PYTHON",
  system ? builtins.currentSystem,
  # false: a nixpkgs whose buildImage has no `compressor` (always gzip)
  withCompressor ? true,
  # kept for callers that pass it (flake test)
  helpers ? null,
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
  chars = s: builtins.genList (i: builtins.substring i 1 s) (builtins.stringLength s);
  lower = builtins.replaceStrings (chars "ABCDEFGHIJKLMNOPQRSTUVWXYZ") (chars "abcdefghijklmnopqrstuvwxyz");
  # GOARCH of the system, as nixpkgs' go.GOARCH gives it.
  defaultArch =
    {
      "x86_64-linux" = "amd64";
      "aarch64-linux" = "arm64";
    }
    .${system} or (throw "testpkgs.nix: no GOARCH for ${system}");
  compressors = {
    none = "";
    gz = ".gz";
    zstd = ".zst";
  };
  step =
    name: what: attrs:
    derivation (
      {
        inherit name system;
        builder = "${hostPython}/bin/python3";
        args = [
          ./build_image.py
          what
        ];
        # stdenv's value: every file in a layer gets mtime 1980-01-01.
        SOURCE_DATE_EPOCH = "315532800";
        passAsFile = [ "stepArgs" ];
      }
      // attrs
    );
  writeText =
    name: text:
    derivation {
      inherit name system;
      builder = "${hostPython}/bin/python3";
      args = [
        "-c"
        "import os; open(os.environ['out'], 'w').write(open(os.environ['textPath']).read())"
      ];
      inherit text;
      passAsFile = [ "text" ];
    };

  # buildImage without runAsRoot (a VM in nixpkgs): the arguments and defaults
  # of nixpkgs 24.05-25.05. An unknown argument is an error, as there.
  build =
    {
      name,
      tag ? null,
      fromImage ? null,
      copyToRoot ? null,
      config ? null,
      architecture ? defaultArch,
      extraCommands ? "",
      created ? "1970-01-01T00:00:01Z",
      compressor ? "gz",
      runAsRoot ? null,
      ...
    }:
    let
      baseName = baseNameOf name;
      ext = compressors.${compressor} or (throw "in docker image ${name}: compressor must be one of: [${toString (builtins.attrNames compressors)}]");
      baseJson = writeText "${baseName}-config.json" (
        builtins.toJSON {
          inherit created config architecture;
          preferLocalBuild = true;
          os = "linux";
        }
      );
      layer = step "docker-layer-${baseName}" "layer" {
        inherit baseJson;
        stepArgs = builtins.toJSON {
          copyToRoot = map toString (if copyToRoot == null then [ ] else if builtins.isList copyToRoot then copyToRoot else [ copyToRoot ]);
          inherit extraCommands;
        };
      };
      result = step "docker-image-${baseName}.tar${ext}" "image" {
        inherit baseJson layer;
        fromImage = if fromImage == null then "" else fromImage;
        exportReferencesGraph = [
          "layer-closure"
          layer
        ];
        stepArgs = builtins.toJSON {
          imageName = lower name;
          imageTag = if tag == null then "" else tag;
          inherit compressor;
        };
      };
    in
    if runAsRoot != null then
      throw "testpkgs.nix: runAsRoot needs a VM; not in this stand-in"
    else if created == "now" then
      throw "testpkgs.nix: created = \"now\" is not in this stand-in"
    else if tag == null then
      throw "testpkgs.nix: tag = null (the output hash as tag) is not in this stand-in"
    else
      result
      // {
        inherit layer;
        imageTag = tag;
      };
  buildImage =
    {
      name,
      tag ? null,
      fromImage ? null,
      fromImageName ? null,
      fromImageTag ? null,
      copyToRoot ? null,
      keepContentsDirlinks ? false,
      config ? null,
      architecture ? defaultArch,
      extraCommands ? "",
      uid ? 0,
      gid ? 0,
      runAsRoot ? null,
      diskSize ? 1024,
      buildVMMemorySize ? 512,
      created ? "1970-01-01T00:00:01Z",
      compressor ? "gz",
      includeNixDB ? false,
      contents ? null,
    }@args:
    build args;
  # nixpkgs before `compressor` (23.05 and older): always gzip. The same
  # formals less `compressor`, as makeOverridable keeps them (a functor with
  # __functionArgs); an unknown argument is an error, as there.
  buildImageGzOnly = rec {
    __functionArgs = builtins.removeAttrs (builtins.functionArgs buildImage) [ "compressor" ];
    __functor =
      _: args:
      let
        unknown = builtins.filter (n: !(__functionArgs ? ${n})) (builtins.attrNames args);
      in
      if unknown != [ ] then
        throw "buildImage called with unexpected argument '${builtins.head unknown}'"
      else
        build args;
  };
in
{
  inherit system;
  stdenv.hostPlatform.system = system;
  python3 = hostPython;
  inherit e2fsprogs;
  dockerTools.buildImage = if withCompressor then buildImage else buildImageGzOnly;
}
