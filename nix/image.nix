# Build a urunc image from a normalized spec with pkgs.dockerTools.
#
# What this file needs from `pkgs`: `python3` (for the stdlib-only helpers,
# run inside derivations only), `dockerTools.buildImage`, the system
# (`stdenv.hostPlatform.system`), and `e2fsprogs` for a block rootfs only.
# The spec is judged first, by the Python validator in the metadata
# derivation (helpers/nix_check.py); nothing else is built before it has
# passed. The rootfs, kernel and other files are then one docker-archive
# written by the native writer (helpers/base_image.py); dockerTools adds
# /urunc.json. Derivations here are plain `derivation`s, so a small stand-in
# `pkgs` is enough for tests.
{
  pkgs,
  sources ? import ./sources.nix,
}:
let
  inherit (builtins)
    filter
    map
    substring
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
  optional = cond: x: if cond then [ x ] else [ ];

  # The urunix Python package, for the validator (helpers/nix_check.py runs
  # validate.py) and the rootfs helper (helpers/build_rootfs.py imports the
  # very code `urunix build` runs: cpio, ext, flatten). Only *.py and *.json
  # enter the store.
  package =
    if (sources.package or null) == null then
      throw "urunix: this copy of the Nix library has no Python package (sources.nix `package`); the metadata derivation runs its validator"
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
  nixCheckPy = "${package}/helpers/nix_check.py";
  # The base archive's helper: with the package when it builds a rootfs or
  # takes a file out of an image; else the four helpers it needs suffice,
  # so a change elsewhere in the package does not rebuild the base.
  # helpersNamed name files -> store path: these helpers (and what they
  # share, script.py) alone, so a change to another leaves it alone.
  helpersNamed =
    name: files:
    builtins.path {
      path = sources.helpers;
      inherit name;
      filter = path: type: builtins.elem (baseNameOf path) (files ++ [ "script.py" ]);
    };
  baseHelpers = helpersNamed "urunix-base-helpers" [
    "base_image.py"
    "image_writer.py"
    "build_rootfs.py"
  ];
  baseImagePy =
    needsPackage: if needsPackage then "${package}/helpers/base_image.py" else "${baseHelpers}/base_image.py";

  # A derivation holding one layer's root tree: each entry's source copied to
  # its target, modes 0644/0755. Entries travel as JSON in a file
  # (passAsFile), never through a shell. It may not refer to any store path:
  # dockerTools.buildImage would copy that path's closure into the image.
  mkTree =
    checked: name: entries:
    gated checked {
      inherit name system;
      builder = python;
      args = [ treePy ];
      entries = toJSON entries;
      passAsFile = [ "entries" ];
      allowedReferences = [ ];
    };

  # mkBase checked base s layers needsE2fs -> derivation: a docker-archive
  # of the big layers (kernel, rootfs, other files), made by
  # helpers/base_image.py with the native image writer, for
  # dockerTools.buildImage's `fromImage`. The rootfs is built inside it, so
  # its bytes enter the store once. Nothing here depends on the cmdline,
  # labels or config: changing them rebuilds only the urunc.json layer on
  # top. It waits for the check (`gated`).
  mkBase =
    checked: base: s: layers: needsE2fs:
    gated checked (
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

  # mkLayer checked base s layer needsE2fs -> derivation: one layer alone,
  # $out/layer.tar with $out/layer.json ({ name; digest; size; }), made by
  # `base_image.py --layer` (the same bytes as that layer in the base
  # archive), for the streamed image. One derivation per layer: a change to
  # one rebuilds it alone. The description travels by passAsFile (the
  # urunc.json layer's description names the metadata's output, which toFile refuses).
  # `checked` null: no stamp (the urunc.json layer waits for the check by
  # being made from its output).
  mkLayer =
    checked: base: s: layer: needsE2fs:
    let
      attrs = {
        name = "${base}-layer-${util.safeName layer.name}";
        inherit system;
        builder = python;
        args = [
          (baseImagePy (builtins.any (e: !(e ? source)) layer.entries))
          "--layer"
          (builtins.placeholder "out")
        ];
        layer = toJSON {
          inherit (s) created;
          storeDir = builtins.storeDir;
          layers = [ { inherit (layer) name entries; } ];
        };
        passAsFile = [ "layer" ];
      }
      // (if needsE2fs then { PATH = "${pkgs.e2fsprogs}/bin"; } else { });
    in
    if checked == null then derivation attrs else gated checked attrs;

  # The stream script's helpers: the writer, the script's own module and
  # what the helpers share (script.py).
  streamHelpers = helpersNamed "urunix-stream-helpers" [
    "image_writer.py"
    "stream_image.py"
  ];

  # mkStream base name tag s config layers -> derivation: an executable
  # script (helpers/stream_image.py) that writes the image's docker-archive
  # to stdout, assembled from the layer derivations (mkLayer) as it goes:
  # `$(nix-build -A stream) | docker load`. It refers to the layers, so
  # they are its closure; it needs the urunc.json layer, so it waits for
  # the check.
  mkStream =
    base: name: tag: s: config: layers:
    derivation {
      name = "${base}-stream";
      inherit system;
      builder = python;
      args = [
        "${streamHelpers}/stream_image.py"
        "--make"
        "-"
        (builtins.placeholder "out")
      ];
      desc = toJSON {
        inherit python config layers;
        helpers = "${streamHelpers}";
        repoTags = [ "${name}:${tag}" ];
        inherit (s) created architecture;
      };
      passAsFile = [ "desc" ];
    };

  # mkMetadata base check -> derivation with urunc.json and labels.json
  #
  # The spec's judge: runs the Python validator (helpers/nix_check.py) with
  # pkgs.python3 on `check` (the spec as Nix evaluated it, the store copies
  # of its sources, and what Nix planned), written as JSON by builtins.toJSON
  # into a file (passAsFile). It fails with the messages of `urunix validate`
  # when the spec is wrong, and when Nix's plan differs from Python's.
  mkMetadata =
    base: check:
    derivation {
      name = "${base}-urunc-metadata";
      inherit system;
      builder = python;
      args = [
        nixCheckPy
        (builtins.placeholder "out")
      ];
      check = toJSON check;
      passAsFile = [ "check" ];
    };

  # gated metadata attrs -> derivation `attrs` that builds only after
  # `metadata` has judged the spec, so a wrong spec fails in the check, not
  # in a layer. The link is a fixed-output stamp named after `attrs`
  # themselves: a change elsewhere in the spec (a cmdline) changes the
  # metadata but not this layer, which is not rebuilt.
  gated =
    metadata: attrs:
    let
      key = builtins.hashString "sha256" (unsafeDiscardStringContext (toJSON attrs));
      stamp = derivation {
        name = "urunix-checked-${substring 0 32 key}";
        inherit system;
        builder = python;
        args = [
          "-c"
          "import os; open(os.environ['out'], 'w').write('checked\\n')"
        ];
        checked = metadata;
        outputHashMode = "flat";
        outputHashAlgo = "sha256";
        outputHash = builtins.hashString "sha256" "checked\n";
      };
    in
    if metadata == null then derivation attrs else derivation (attrs // { urunixChecked = stamp; });

  # plan { spec; src; specName; specFile; } -> { spec; config; layers; base; top; metadata; }
  #
  # Everything the image step needs, as data: the normalized spec, the
  # metadata derivation (which judges the spec and writes urunc.json), the
  # image config (Cmd, Entrypoint, Env, WorkingDir, Labels) and the layers in
  # order, each { name; entries; }. One layer per artifact, in the order they
  # change least to most, like the native builder (plan.py): the kernel (the
  # `files` entry that is `binary`, or the `kernel` taken from a file or an
  # image), the rootfs (a prebuilt `initrd`/`block` from `files`, or the one
  # urunix builds: a cpio, an ext2/ext4 image, or for `raw` the tree itself),
  # the other files (and the init when there is no rootfs to put it in), and
  # last /urunc.json. All but the last are `base` (one derivation, waiting
  # for the check); the last is `top`, the tree dockerTools.buildImage adds,
  # made from the metadata's own output. A metadata change then rebuilds and
  # re-pushes only the last, tiny layer.
  plan =
    {
      spec,
      src ? null,
      specName ? "spec",
      specFile ? null,
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
      base = util.safeName (if s.name == "" then "image" else s.name);
      ann = s.annotations;
      binary = ann.binary or null;

      # A path inside the Nix store, where builtins.storePath may name it:
      # not in pure evaluation (flakes), which hides currentTime and refuses
      # storePath; there the path is copied like any other.
      inStore = p: builtins ? currentTime && util.hasPrefix (builtins.storeDir + "/") p;

      # Every host path the spec names, as the store copy Nix makes of it
      # (null when it does not exist): the validator looks at these, the
      # layers take them.
      copy =
        p:
        let
          t = validate.pathType p;
        in
        if t == null then
          null
        else if t == "symlink" then
          throw "urunix: ${specName}: ${toString p} is a symbolic link; Nix would copy the link, not the file: name the file it points to"
        else if inStore (toString p) then
          # Already in the store (a derivation's output, a fetched tree):
          # used where it is. builtins.path would copy it again under another
          # name, and re-read all of it at every evaluation.
          builtins.storePath (toString p)
        else
          builtins.path {
            path = p;
            name = util.safeName (toString p);
          };
      copies = map (f: {
        name = toString (validate.sourcePath src f.source);
        value = copy (validate.sourcePath src f.source);
      }) (if src == null then [ ] else s.files ++ (if s.build == null then [ ] else s.build.include));
      stored = builtins.listToAttrs copies;
      storeOf = f: stored.${toString (validate.sourcePath src f.source)};
      entries =
        fs:
        map (f: {
          source = storeOf f;
          inherit (f) target;
        }) (filter (f: storeOf f != null) fs);

      isKernel = f: f.target == binary;
      isRootfs = f: !(isKernel f) && (f.target == (ann.initrd or null) || f.target == (ann.block or null));
      kernelFiles = filter isKernel s.files;
      rootfsFiles = filter isRootfs s.files;
      others = filter (f: !(isKernel f) && !(isRootfs f)) s.files;

      # A resolved origin (nix/rootfs.nix `resolve`) as the helper reads it.
      originData = o: {
        inherit (o) kind;
        location = if o.path == null then "" else allStored.${toString o.path};
      };
      # The `from`s: copied when a layer uses them; a directory no layer
      # uses (a kernel `from` a directory, an `oci:` that is no layout) is
      # refused by the validator, which only needs to see a directory there.
      usedRootfs = if b == null then null else b.origin.path;
      origins = map (o: {
        name = toString o.path;
        value =
          if (o.kind == "dir" && o.path != usedRootfs) || (o.kind == null && validate.pathType o.path == "directory") then
            "directory"
          else
            copy o.path;
      }) (filter (o: o != null && o.path != null) [
        s.rootfsOrigin
        (s.kernelX.origin or null)
        (s.initX.origin or null)
      ]);

      # What the metadata derivation checks: the spec as evaluated (path
      # literals as { __urunixNixPath = "/abs"; }, like `urunix validate`
      # reads them), the store copies, and this plan.
      asData =
        v:
        let
          t = builtins.typeOf v;
        in
        if t == "path" then
          { __urunixNixPath = toString v; }
        else if t == "set" then
          (if v ? outPath then v else builtins.mapAttrs (n: asData) v)
        else if t == "list" then
          map asData v
        else
          v;
      # [ target source ] pairs, sorted like Python sorts them
      pairLess =
        a: b:
        let
          first = builtins.head;
          second = x: builtins.elemAt x 1;
        in
        first a < first b || (first a == first b && second a < second b);
      copyPairs =
        l:
        builtins.sort pairLess (
          map (f: [
            f.target
            f.source
          ]) l
        );
      source =
        x:
        if x == null || !x.ok then
          null
        else
          {
            inherit (x.origin) kind;
            inherit (x) inner target;
          };
      b = s.build;
      nixPlan = {
        inherit (s)
          name
          tag
          architecture
          annotations
          ;
        config = {
          inherit (config) Cmd Labels;
          Entrypoint = s.entrypoint;
          Env = s.env;
        };
        files = copyPairs s.files;
        rootfs =
          if b == null then
            null
          else
            {
              inherit (b) type target;
              inherit (b.origin) kind;
              include = copyPairs b.include;
            }
            // (if b.type == "block" then { inherit (b) size fsType; } else { })
            // (if b.type == "initrd" then { inherit (b) compression hardlinks; } else { });
        kernel =
          let
            k = source s.kernelX;
          in
          if k == null then null else k // { target = if binary != null then binary else k.target; };
        init = source s.initX;
      };
      allStored = builtins.listToAttrs (copies ++ origins);
      metadata = mkMetadata base {
        inherit specName;
        form = if specFile == null then "normalized" else "args";
        specFile = if specFile == null then null else toString specFile;
        src = if src == null then null else toString src;
        specText =
          if specFile == null then
            null
          else
            builtins.path {
              path = specFile;
              name = "urunix-spec";
            };
        spec = asData spec;
        sources = allStored;
        inherit (s) limits;
        nix = nixPlan;
      };

      # kernel / init: a file (copied as is) or one file out of an image
      # (base_image.py takes it out).
      extracted =
        x:
        let
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
      kernel = if s.kernelX == null || !s.kernelX.ok then null else extracted s.kernelX;
      init = if s.initX == null || !s.initX.ok then null else extracted s.initX;

      # The guest rootfs urunix builds (initrd / block / raw), if any.
      rootfsDesc = {
        inherit (b) type;
        origin = originData b.origin;
        include = entries b.include;
        init = if init == null then null else init.desc;
        inherit (b)
          size
          fsType
          compression
          hardlinks
          ;
      };
      rootfsEntries =
        if b == null then
          [ ]
        else if b.type == "raw" && b.origin.kind == "image" then
          [ ] # a limit of the Nix backend: the check refuses it
        else
          [
            {
              build = rootfsDesc;
              target = if b.type == "raw" then "/" else b.target;
            }
          ];
      kernelEntries = optional (kernel != null) (
        kernel.entry // { target = if binary != null then binary else kernel.target; }
      );
      initEntries = optional (init != null && b == null) init.entry;

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
      kernelLayer = entries kernelFiles ++ kernelEntries;
      rootfsLayer = entries rootfsFiles ++ rootfsEntries;
      filesLayer = entries others ++ initEntries;
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
      needsSrc = s.files != [ ] || b != null || s.kernelX != null || s.initX != null;
    in
    if needsSrc && src == null then
      throw "urunix: ${specName}: `src` (the directory `files`, rootfs, kernel and init sources are relative to) is required"
    else
      {
        spec = s;
        inherit config metadata;
        layers = baseLayers ++ [ (layer "urunc.json" topEntries) ];
        base =
          if baseLayers == [ ] then null else mkBase metadata base s baseLayers (b != null && b.type == "block");
        # made from the metadata's output itself: it needs no stamp
        top = mkTree null "${base}-urunc.json" topEntries;
        # the same layers one derivation each, for the streamed image
        layerDrvs =
          map (l: mkLayer metadata base s l (l.name == "rootfs" && b != null && b.type == "block")) baseLayers
          ++ [ (mkLayer null base s (layer "urunc.json" topEntries) false) ];
      };

  # Arguments a `buildImage` takes (nixpkgs wraps it with makeOverridable,
  # which keeps them in __functionArgs).
  buildImageArgs =
    f: f.__functionArgs or (if builtins.isFunction f then builtins.functionArgs f else { });

  # buildImage { src; specName ? "spec"; name; tag; annotations; files; ... }
  #
  # The main function: a docker-archive (`docker load < result`) of the image
  # a spec describes. The spec fields are the normalized ones (see
  # validate.nix `normalize`; a bimanix args.nix attrset is accepted too):
  #   name, tag, architecture, annotations, files, cmd, entrypoint, env,
  #   labels, created, urunc
  # plus `src`, the directory `files` sources are relative to, `specName`,
  # used in messages, and `specFile`, the args.nix read as `urunix validate`
  # reads it (fromArgs sets it; without it the normalized form is expected,
  # with `created` and `workdir`). The spec is judged by the Python validator
  # in the first derivation built (see mkMetadata).
  #
  # One dockerTools.buildImage: `fromImage` is the base archive (kernel,
  # rootfs, files; see mkBase), `copyToRoot` the urunc.json tree, `config`
  # the whole config (given once, so Env is not repeated: buildImage
  # prepends the base image's Env). Both wait for the check: the base
  # through its stamp, the tree because it is made from the metadata's
  # urunc.json; so does the step carrying the config. Uncompressed where the
  # nixpkgs in use has `compressor`: these layers compress poorly and
  # `docker load` does not need it. Not buildLayeredImage: that one keeps
  # files in /nix/store inside the image and puts symlinks at their targets,
  # and urunc cannot use a symlink into /nix/store as binary, initrd or
  # block.
  buildImage =
    args:
    let
      p = plan {
        spec = removeAttrs args [
          "src"
          "specName"
          "specFile"
        ];
        src = args.src or null;
        specName = args.specName or "spec";
        specFile = args.specFile or null;
      };
      s = p.spec;
      # A name the validator refuses may hold characters a store path
      # cannot; the build fails in the check before it matters.
      name = if builtins.match "[A-Za-z0-9+._?=/:-]+" s.name != null then s.name else "invalid-name";
      tag = if builtins.match "[A-Za-z0-9+._?=-]+" s.tag != null then s.tag else "invalid-tag";
      dockerBuildImage = pkgs.dockerTools.buildImage;
      image = dockerBuildImage (
        {
          inherit name tag;
          inherit (s) architecture created;
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
      # `nix-build -A stream`: the same image as a script that streams it
      # (`./result | docker load`); see mkStream. For large images: a
      # rebuild stores only the layers that changed.
      stream = mkStream (util.safeName name) name tag s p.config p.layerDrvs;
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
      specName = if isPath then baseNameOf (toString args) else "args";
    in
    if !(builtins.isAttrs spec) then
      throw "urunix: ${specName}: the spec must be an attribute set"
    else
      buildImage (
        spec
        // {
          src = dir;
          inherit specName;
          specFile = if isPath then /. + toString args else null;
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
