# Build a urunc image from a normalized spec with pkgs.dockerTools.
#
# What this file needs from `pkgs`: `python3` (for the stdlib-only helpers,
# run inside derivations only), `dockerTools.buildImage`, the system
# (`stdenv.hostPlatform.system`), and `e2fsprogs` for a block rootfs only.
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
  buildRootfsPy = "${package}/helpers/build_rootfs.py";

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

  # mkRootfsStep base name desc -> derivation running build_rootfs.py on
  # `desc` (JSON written by builtins.toJSON into a file; it names store
  # paths, which become inputs). `$out` is the artifact (a file), or a tree
  # for a raw rootfs.
  mkRootfsStep =
    name: desc: extra:
    derivation (
      {
        inherit name system;
        builder = python;
        args = [
          buildRootfsPy
          (builtins.toFile "rootfs.json" (toJSON desc))
          (builtins.placeholder "out")
        ];
      }
      // extra
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
  # config (Cmd, Entrypoint, Env, WorkingDir, Labels) and the layers in
  # order, each { name; tree; entries; }. One layer per artifact, in the
  # order they change least to most, like the native builder (plan.py): the
  # kernel (the `files` entry that is `binary`, or the `kernel` taken from a
  # file or an image), the rootfs (a prebuilt `initrd`/`block` from `files`,
  # or the one urunix builds: a cpio, an ext2/ext4 image, or for `raw` the
  # tree itself), the other files (and the init when there is no rootfs to
  # put it in), and last /urunc.json. A metadata change then rebuilds and
  # re-pushes only the last, tiny layer.
  plan =
    {
      spec,
      src ? null,
      specName ? "spec",
    }:
    let
      s = validate.normalize { inherit spec src specName; };
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
        name: field: shape: default:
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
          file =
            if x.origin.kind == "file" then
              desc.origin.location
            else
              mkRootfsStep "${base}-${name}" { extract = desc; } { };
        };
      kernel = if s.kernel == null then null else extracted "kernel" "kernel" s.kernel "/kernel";
      init = if s.init == null then null else extracted "init" "init" s.init "/urunit";

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
      suffix =
        if r.type == "initrd" then
          (if rootfsDesc.compression == "gzip" then "cpio.gz" else "cpio")
        else
          rootfsDesc.fsType;
      rootfsArtifact = mkRootfsStep "${base}-rootfs.${suffix}" rootfsDesc (
        if r.type == "block" then { PATH = "${pkgs.e2fsprogs}/bin"; } else { }
      );
      rootfsEntries =
        if r == null then
          [ ]
        else if r.type == "raw" then
          if rootfsOrigin.kind == "image" then
            throw "urunix: ${specName}: rootfs.type = \"raw\" from an image (${r.from}) is not supported by the Nix backend yet; use a directory, or build with `urunix build`"
          else
            [
              {
                source = mkRootfsStep "${base}-rootfs-tree" rootfsDesc { };
                target = "/";
              }
            ]
        else
          [
            {
              source = rootfsArtifact;
              target = r.path;
            }
          ];
      kernelEntries = optional (kernel != null) {
        source = kernel.file;
        target = ann.binary;
      };
      initEntries = optional (init != null && r == null) {
        source = init.file;
        inherit (init) target;
      };

      layer = name: entries: {
        inherit name entries;
        tree = mkTree "${base}-${name}" entries;
      };
      config = {
        Cmd = s.cmd;
        Labels = s.labels // validate.uruncLabels s.annotations;
      }
      // (if s.env == [ ] then { } else { Env = s.env; })
      // (if s.entrypoint == null then { } else { Entrypoint = s.entrypoint; })
      // (if (s.workdir or null) == null then { } else { WorkingDir = s.workdir; });
      kernelLayer = map entry kernelFiles ++ kernelEntries;
      rootfsLayer = map entry rootfsFiles ++ rootfsEntries;
      filesLayer = map entry others ++ initEntries;
      needsSrc = s.files != [ ] || r != null || s.kernel != null || s.init != null;
    in
    if needsSrc && src == null then
      throw "urunix: ${specName}: `src` (the directory `files`, rootfs, kernel and init sources are relative to) is required"
    else
      {
        spec = s;
        inherit config metadata;
        layers =
          optional (kernelLayer != [ ]) (layer "kernel" kernelLayer)
          ++ optional (rootfsLayer != [ ]) (layer "rootfs" rootfsLayer)
          ++ optional (filesLayer != [ ]) (layer "files" filesLayer)
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
