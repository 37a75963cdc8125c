# Build a urunc image from a normalized spec with pkgs.dockerTools.
#
# What this file needs from `pkgs`: `python3` (for the stdlib-only helpers,
# run inside derivations only), `dockerTools.buildImage`, the system
# (`stdenv.hostPlatform.system`), and `e2fsprogs` for a block rootfs only.
# The rootfs, kernel and other files are one docker-archive written by the
# native writer (helpers/base_image.py); dockerTools adds /urunc.json.
# Nothing else: derivations here are plain `derivation`s, so a small
# stand-in `pkgs` is enough for tests.
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

  # The system to build for is pkgs' own: a flake's aarch64-linux output or
  # `--arg pkgs` for another system gets that system's architecture.
  system =
    pkgs.stdenv.hostPlatform.system or pkgs.system
      or (throw "urunix: `pkgs` has neither stdenv.hostPlatform.system nor system");
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

  # The urunix Python package, for the rootfs helper (helpers/build_rootfs.py
  # imports the very code `urunix build` runs: cpio, ext, flatten). Only
  # *.py and *.json enter the store.
  package =
    if (sources.package or null) == null then
      throw "urunix: this copy of the Nix library has no Python package (sources.nix `package`); it is needed for rootfs, kernel and init"
    else
      builtins.path {
        path = sources.package;
        name = "urunix-package";
        filter =
          path: type:
          if type == "directory" then
            baseNameOf path != "__pycache__"
          else
            type == "regular" && (util.hasSuffix ".py" path || util.hasSuffix ".json" path);
      };
  # The base archive's helper: with the package when it builds a rootfs or
  # takes a file out of an image; else the three helpers it needs suffice
  # (a `urunix generate` directory without a rootfs has no package).
  baseHelpers = builtins.path {
    path = sources.helpers;
    name = "urunix-base-helpers";
    filter =
      path: type:
      builtins.elem (baseNameOf path) [
        "base_image.py"
        "image_writer.py"
        "build_rootfs.py"
      ];
  };
  baseImagePy =
    needsPackage: if needsPackage then "${package}/helpers/base_image.py" else "${baseHelpers}/base_image.py";

  # A resolved origin (nix/rootfs.nix `resolve`) as the helper reads it:
  # { kind; location; } with the source copied into the store.
  originData =
    o:
    {
      inherit (o) kind;
    }
    // (
      if o.path == null then
        { location = ""; }
      else
        {
          location = builtins.path {
            path = o.path;
            name = util.safeName (toString o.path);
          };
        }
    );

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
  # (passAsFile), never through a shell. It may not refer to any store path:
  # dockerTools.buildImage would copy that path's closure into the image.
  mkTree =
    name: entries:
    derivation {
      inherit name system;
      builder = python;
      args = [ treePy ];
      entries = toJSON entries;
      passAsFile = [ "entries" ];
      allowedReferences = [ ];
    };

  # mkBase base layers -> derivation: a docker-archive of the big layers
  # (kernel, rootfs, other files), made by helpers/base_image.py with the
  # native image writer, for dockerTools.buildImage's `fromImage`. The rootfs
  # is built inside it, so its bytes enter the store once. Nothing here
  # depends on the cmdline, labels or config: changing them rebuilds only
  # the urunc.json layer on top.
  mkBase =
    base: s: layers: needsE2fs:
    derivation (
      {
        name = "${base}-base.tar";
        inherit system;
        builder = python;
        args = [
          (baseImagePy (builtins.any (l: builtins.any (e: !(e ? source)) l.entries) layers))
          (builtins.toFile "base.json" (toJSON {
            repoTags = [ "${s.name}-base:${s.tag}" ];
            inherit (s) created architecture;
            storeDir = builtins.storeDir;
            layers = map (l: { inherit (l) name entries; }) layers;
          }))
          (builtins.placeholder "out")
        ];
      }
      // (if needsE2fs then { PATH = "${pkgs.e2fsprogs}/bin"; } else { })
    );

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

  # plan { spec; src; } -> { spec; config; layers; base; top; metadata; }
  #
  # Everything the image step needs, as data: the normalized spec, the image
  # config (Cmd, Entrypoint, Env, WorkingDir, Labels) and the layers in
  # order, each { name; entries; }. One layer per artifact, in the order they
  # change least to most, like the native builder (plan.py): the kernel (the
  # `files` entry that is `binary`, or the `kernel` taken from a file or an
  # image), the rootfs (a prebuilt `initrd`/`block` from `files`, or the one
  # urunix builds: a cpio, an ext2/ext4 image, or for `raw` the tree itself),
  # the other files (and the init when there is no rootfs to put it in), and
  # last /urunc.json. All but the last are `base` (one derivation); the last
  # is `top`, the tree dockerTools.buildImage adds. A metadata change then
  # rebuilds and re-pushes only the last, tiny layer.
  plan =
    {
      spec,
      src ? null,
      specName ? "spec",
    }:
    let
      s = validate.normalize {
        inherit
          spec
          src
          specName
          system
          ;
      };
      R = validate.rootfs;
      base = util.safeName s.name;
      ann = s.annotations;
      guest = ann.unikernelType;
      entry = f: {
        source = storeSource src f;
        inherit (f) target;
      };
      isKernel = f: f.target == ann.binary;
      isRootfs = f: !(isKernel f) && (f.target == (ann.initrd or null) || f.target == (ann.block or null));
      kernelFiles = filter isKernel s.files;
      rootfsFiles = filter isRootfs s.files;
      others = filter (f: !(isKernel f) && !(isRootfs f)) s.files;
      metadata = mkMetadata base s.annotations;

      # kernel / init: a file (copied as is) or one file out of an image.
      extracted =
        field: shape: default:
        let
          x = R.extract src field (R.sourceShape field shape) default;
          desc = {
            origin = originData x.origin;
            inherit (x) inner target;
          };
        in
        x
        // {
          inherit desc;
          entry =
            if x.origin.kind == "file" then
              {
                source = desc.origin.location;
                inherit (x) target;
              }
            else
              {
                extract = desc;
                inherit (x) target;
              };
        };
      kernel = if s.kernel == null then null else extracted "kernel" s.kernel "/kernel";
      init = if s.init == null then null else extracted "init" s.init "/urunit";

      # The guest rootfs urunix builds (initrd / block / raw), if any.
      r = s.rootfs;
      rootfsOrigin = R.resolve {
        inherit src;
        text = r.from;
        field = "rootfs.from";
        fileIsImage = true;
      };
      rootfsDesc = {
        inherit (r) type;
        origin = originData rootfsOrigin;
        include = map (f: {
          source = storeSource src f;
          inherit (f) target;
        }) r.include;
        init = if init == null then null else init.desc;
        size = r.size or "auto";
        fsType = r.fsType or "ext2";
        compression = r.compression or "none";
        hardlinks = if r.type == "initrd" && guest == "unikraft" then "copy" else "link";
      };
      rootfsEntries =
        if r == null then
          [ ]
        else if r.type == "raw" && rootfsOrigin.kind == "image" then
          throw "urunix: ${specName}: rootfs.type = \"raw\" from an image (${r.from}) is not supported by the Nix backend yet; use a directory, or build with `urunix build`"
        else
          [
            {
              build = rootfsDesc;
              target = if r.type == "raw" then "/" else r.path;
            }
          ];
      kernelEntries = optional (kernel != null) (kernel.entry // { target = ann.binary; });
      initEntries = optional (init != null && r == null) init.entry;

      # The image config: Cmd, Entrypoint, Env, WorkingDir and Labels, computed
      # here only. String context is dropped: a label or an Env value naming
      # "${pkgs.bash}" must not make bash a reference of the layer (the real
      # buildImage copies the layer's references into the image).
      config = builtins.fromJSON (
        unsafeDiscardStringContext (
          toJSON (
            {
              Cmd = s.cmd;
              Labels = s.labels // validate.uruncLabels s.annotations;
            }
            // (if s.env == [ ] then { } else { Env = s.env; })
            // (if s.entrypoint == null then { } else { Entrypoint = s.entrypoint; })
            // (if (s.workdir or null) == null then { } else { WorkingDir = s.workdir; })
          )
        )
      );
      kernelLayer = map entry kernelFiles ++ kernelEntries;
      rootfsLayer = map entry rootfsFiles ++ rootfsEntries;
      filesLayer = map entry others ++ initEntries;
      layer = name: entries: { inherit name entries; };
      baseLayers =
        optional (kernelLayer != [ ]) (layer "kernel" kernelLayer)
        ++ optional (rootfsLayer != [ ]) (layer "rootfs" rootfsLayer)
        ++ optional (filesLayer != [ ]) (layer "files" filesLayer);
      topEntries = [
        {
          source = "${metadata}/urunc.json";
          target = "/urunc.json";
        }
      ];
      needsSrc = s.files != [ ] || r != null || s.kernel != null || s.init != null;
    in
    if needsSrc && src == null then
      throw "urunix: ${specName}: `src` (the directory `files`, rootfs, kernel and init sources are relative to) is required"
    else
      {
        spec = s;
        inherit config metadata;
        layers = baseLayers ++ [ (layer "urunc.json" topEntries) ];
        base = if baseLayers == [ ] then null else mkBase base s baseLayers (r != null && r.type == "block");
        top = mkTree "${base}-urunc.json" topEntries;
      };

  # Arguments a `buildImage` takes (nixpkgs wraps it with makeOverridable,
  # which keeps them in __functionArgs).
  buildImageArgs =
    f:
    f.__functionArgs or (if builtins.isFunction f then builtins.functionArgs f else { });

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
  # One dockerTools.buildImage: `fromImage` is the base archive (kernel,
  # rootfs, files; see mkBase), `copyToRoot` the urunc.json tree, `config`
  # the whole config (given once, so Env is not repeated: buildImage
  # prepends the base image's Env). Uncompressed where the nixpkgs in use
  # has `compressor`: these layers compress poorly and `docker load` does
  # not need it. Not buildLayeredImage: that one keeps files in /nix/store
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
      dockerBuildImage = pkgs.dockerTools.buildImage;
      image = dockerBuildImage (
        {
          inherit (s)
            name
            tag
            architecture
            created
            ;
          inherit (p) config;
          copyToRoot = [ p.top ];
          # buildImage runs `chmod ug+w` on the layer root and the store
          # dropped write bits (0444/0555): give the image the modes the
          # native builder writes (0644/0755, `/` 0755).
          extraCommands = "chmod -R u+w,go-w .";
        }
        // (if p.base == null then { } else { fromImage = p.base; })
        // (if (buildImageArgs dockerBuildImage) ? compressor then { compressor = "none"; } else { })
      );
    in
    image
    // {
      urunix = {
        inherit (p)
          spec
          config
          metadata
          layers
          base
          top
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
