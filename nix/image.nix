# Build a urunc image from a normalized spec with pkgs.dockerTools.
#
# What this file needs from `pkgs`: `python3` (for the stdlib-only helpers,
# run inside derivations only), `dockerTools.buildImage`, and the system
# (`stdenv.hostPlatform.system`). Nothing else: derivations here are plain
# `derivation`s, so a small stand-in `pkgs` is enough for tests.
{
  pkgs,
  sources ? import ./sources.nix,
}:
let
  inherit (builtins)
    attrNames
    filter
    foldl'
    map
    substring
    stringLength
    toJSON
    unsafeDiscardStringContext
    ;
  util = import ./util.nix;
  validate = import ./validate.nix { inherit sources; };

  system = pkgs.stdenv.hostPlatform.system or pkgs.system or builtins.currentSystem;
  python = "${pkgs.python3}/bin/python3";

  # The helper scripts enter the store by themselves (not their directory),
  # so an unrelated change next to them does not rebuild images.
  treePy = builtins.path {
    path = sources.helpers + "/tree.py";
    name = "urunix-tree.py";
  };
  uruncJsonPy = builtins.path {
    path = sources.helpers + "/urunc_json.py";
    name = "urunix-urunc_json.py";
  };

  optional = cond: x: if cond then [ x ] else [ ];

  # One `files` source as a store path. The name comes from the base name
  # with unsafe characters replaced, so "./my kernel", "dir/x.hvt" and
  # "./" all work (bunix named it after the whole path and failed).
  storeSource =
    src: f:
    builtins.path {
      path = validate.sourcePath src f.source;
      name = util.safeName f.source;
    };

  # A derivation holding one layer's root tree: each entry's source copied to
  # its target, modes 0644/0755. Entries travel as JSON in a file
  # (passAsFile), never through a shell.
  mkTree =
    name: entries:
    derivation {
      inherit name system;
      builder = python;
      args = [ treePy ];
      entries = toJSON entries;
      passAsFile = [ "entries" ];
    };

  # mkMetadata base annotations -> derivation with urunc.json and labels.json
  #
  # Runs the project's helper (helpers/urunc_json.py) with pkgs.python3 on the
  # normalized annotations, written as JSON by builtins.toJSON.
  mkMetadata =
    base: annotations:
    derivation {
      name = "${base}-urunc-metadata";
      inherit system;
      builder = python;
      args = [
        uruncJsonPy
        (builtins.toFile "annotations.json" (unsafeDiscardStringContext (toJSON annotations)))
        (builtins.placeholder "out")
      ];
    };

  # plan { spec; src; } -> { spec; config; layers; metadata; }
  #
  # Everything the image step needs, as data: the normalized spec, the image
  # config (Cmd, Entrypoint, Env, Labels) and the layers in order, each
  # { name; tree; entries; }. One layer per artifact, in the order they
  # change least to most, like the native builder: the kernel (the `files`
  # entry that is `binary`), the rootfs artifact (`initrd` / `block`), the
  # other files, and last /urunc.json. A metadata change then rebuilds and
  # re-pushes only the last, tiny layer.
  plan =
    {
      spec,
      src ? null,
      specName ? "spec",
    }:
    let
      s = validate.normalize { inherit spec src specName; };
      base = util.safeName s.name;
      ann = s.annotations;
      entry = f: {
        source = storeSource src f;
        inherit (f) target;
      };
      isKernel = f: f.target == ann.binary;
      isRootfs = f: !(isKernel f) && (f.target == (ann.initrd or null) || f.target == (ann.block or null));
      kernel = filter isKernel s.files;
      rootfs = filter isRootfs s.files;
      others = filter (f: !(isKernel f) && !(isRootfs f)) s.files;
      metadata = mkMetadata base s.annotations;
      layer = name: entries: {
        inherit name entries;
        tree = mkTree "${base}-${name}" entries;
      };
      config = {
        Cmd = s.cmd;
        Labels = s.labels // validate.uruncLabels s.annotations;
      }
      // (if s.env == [ ] then { } else { Env = s.env; })
      // (if s.entrypoint == null then { } else { Entrypoint = s.entrypoint; });
    in
    if s.files != [ ] && src == null then
      throw "urunix: ${specName}: `src` (the directory `files` are relative to) is required"
    else
      {
        spec = s;
        inherit config metadata;
        layers =
          optional (kernel != [ ]) (layer "kernel" (map entry kernel))
          ++ optional (rootfs != [ ]) (layer "rootfs" (map entry rootfs))
          ++ optional (others != [ ]) (layer "files" (map entry others))
          ++ [
            (layer "urunc.json" [
              {
                source = "${metadata}/urunc.json";
                target = "/urunc.json";
              }
            ])
          ];
      };

  # buildImage { src; specName ? "spec"; name; tag; annotations; files; ... }
  #
  # The main function: a docker-archive (`docker load < result`) of the image
  # a spec describes. The spec fields are the normalized ones (see
  # validate.nix `normalize`; a bimanix args.nix attrset is accepted too):
  #   name, tag, architecture, annotations, files, cmd, entrypoint, env,
  #   labels, created
  # plus `src`, the directory `files` sources are relative to, and
  # `specName`, used in messages. Validation happens at evaluation time.
  #
  # Built with dockerTools.buildImage + copyToRoot, one call per layer chained
  # with fromImage. Not buildLayeredImage: that one keeps files in /nix/store
  # inside the image and puts symlinks at their targets, and urunc cannot
  # use a symlink into /nix/store as binary, initrd or block.
  buildImage =
    args:
    let
      p = plan {
        spec = removeAttrs args [
          "src"
          "specName"
        ];
        src = args.src or null;
        specName = args.specName or "spec";
      };
      s = p.spec;
      step =
        prev: l:
        pkgs.dockerTools.buildImage (
          {
            inherit (s)
              name
              tag
              architecture
              created
              ;
            inherit (p) config;
            copyToRoot = [ l.tree ];
            # The store drops write bits (0444/0555); give the image the
            # modes the native builder writes (0644/0755).
            extraCommands = "chmod -R u+w .";
          }
          // (if prev == null then { } else { fromImage = prev; })
        );
      image = foldl' step null p.layers;
    in
    image
    // {
      urunix = {
        inherit (p)
          spec
          config
          metadata
          layers
          ;
      };
    };

  # fromArgs { args; src ? dirOf args; }
  #
  # Build from a bimanix-style args.nix: `args` is a path to the file (its
  # directory is then where `files` are found) or an attrset (give `src`).
  fromArgs =
    {
      args,
      src ? null,
    }:
    let
      isPath = builtins.isPath args || builtins.isString args;
      spec = if isPath then import args else args;
      dir =
        if src != null then
          src
        else if isPath then
          dirOf args
        else
          null;
    in
    buildImage (
      spec
      // {
        src = dir;
        specName = if isPath then baseNameOf (toString args) else "args";
      }
    );
in
{
  inherit
    buildImage
    fromArgs
    plan
    mkMetadata
    ;
}
