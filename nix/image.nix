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
    filter
    foldl'
    map
    substring
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
  buildRootfsPy = "${package}/helpers/build_rootfs.py";
  nixCheckPy = "${package}/helpers/nix_check.py";

  # mkRootfsStep base name desc -> derivation running build_rootfs.py on
  # `desc` (JSON written by builtins.toJSON into a file; it names store
  # paths, which become inputs). `$out` is the artifact (a file), or a tree
  # for a raw rootfs.
  mkRootfsStep =
    checked: name: desc: extra:
    gated checked (
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

  # A derivation holding one layer's root tree: each entry's source copied to
  # its target, modes 0644/0755. Entries travel as JSON in a file
  # (passAsFile), never through a shell.
  mkTree =
    checked: name: entries:
    gated checked {
      inherit name system;
      builder = python;
      args = [ treePy ];
      entries = toJSON entries;
      passAsFile = [ "entries" ];
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

  # plan { spec; src; specName; specFile; } -> { spec; config; layers; metadata; }
  #
  # Everything the image step needs, as data: the normalized spec, the
  # metadata derivation (which judges the spec and writes urunc.json), the image
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
      specFile ? null,
    }:
    let
      s = validate.normalize { inherit spec src specName; };
      base = util.safeName (if s.name == "" then "image" else s.name);
      ann = s.annotations;
      binary = ann.binary or null;

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
      entries = fs: map (f: {
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
      source = x: if x == null || !x.ok then null else { inherit (x.origin) kind; inherit (x) inner target; };
      b = s.build;
      nixPlan = {
        inherit (s) name tag architecture annotations;
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
        sources = builtins.listToAttrs (copies ++ origins);
        inherit (s) limits;
        nix = nixPlan;
      };

      # kernel / init: a file (copied as is) or one file out of an image.
      extracted =
        name: x:
        let
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
              mkRootfsStep metadata "${base}-${name}" { extract = desc; } { };
        };
      kernel = if s.kernelX == null || !s.kernelX.ok then null else extracted "kernel" s.kernelX;
      init = if s.initX == null || !s.initX.ok then null else extracted "init" s.initX;

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
      suffix =
        if b.type == "initrd" then
          (if b.compression == "gzip" then "cpio.gz" else "cpio")
        else
          util.safeName b.fsType;
      rootfsArtifact = mkRootfsStep metadata "${base}-rootfs.${suffix}" rootfsDesc (
        if b.type == "block" then { PATH = "${pkgs.e2fsprogs}/bin"; } else { }
      );
      rootfsEntries =
        if b == null then
          [ ]
        else if b.type == "raw" && b.origin.kind == "image" then
          [ ] # a limit of the Nix backend: the check refuses it
        else if b.type == "raw" then
          [
            {
              source = mkRootfsStep metadata "${base}-rootfs-tree" rootfsDesc { };
              target = "/";
            }
          ]
        else
          [
            {
              source = rootfsArtifact;
              target = b.target;
            }
          ];
      kernelEntries = optional (kernel != null) {
        source = kernel.file;
        target = if binary != null then binary else kernel.target;
      };
      initEntries = optional (init != null && b == null) {
        source = init.file;
        inherit (init) target;
      };

      layer = name: entries: {
        inherit name entries;
        tree = mkTree metadata "${base}-${name}" entries;
      };
      config = {
        Cmd = s.cmd;
        Labels = s.labels // validate.uruncLabels s.annotations;
      }
      // (if s.env == [ ] then { } else { Env = s.env; })
      // (if s.entrypoint == null then { } else { Entrypoint = s.entrypoint; })
      // (if (s.workdir or null) == null then { } else { WorkingDir = s.workdir; });
      kernelLayer = entries kernelFiles ++ kernelEntries;
      rootfsLayer = entries rootfsFiles ++ rootfsEntries;
      filesLayer = entries others ++ initEntries;
      needsSrc = s.files != [ ] || b != null || s.kernelX != null || s.initX != null;
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
            {
              name = "urunc.json";
              entries = [
                {
                  source = "${metadata}/urunc.json";
                  target = "/urunc.json";
                }
              ];
              # made from the metadata itself: it needs no stamp
              tree = mkTree null "${base}-urunc.json" [
                {
                  source = "${metadata}/urunc.json";
                  target = "/urunc.json";
                }
              ];
            }
          ];
      };

  # buildImage { src; specName ? "spec"; name; tag; annotations; files; ... }
  #
  # The main function: a docker-archive (`docker load < result`) of the image
  # a spec describes. The spec fields are the normalized ones (see
  # validate.nix `normalize`; a bimanix args.nix attrset is accepted too):
  #   name, tag, architecture, annotations, files, cmd, entrypoint, env,
  #   labels, created
  # plus `src`, the directory `files` sources are relative to, `specName`,
  # used in messages, and `specFile`, the args.nix read as `urunix validate`
  # reads it (fromArgs sets it; without it the normalized form is expected,
  # with `created` and `workdir`). The spec is judged by the Python validator
  # in the first derivation built (see mkMetadata).
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
      step =
        prev: l:
        pkgs.dockerTools.buildImage (
          {
            inherit name tag;
            inherit (s) architecture created;
            inherit (p) config;
            copyToRoot = [ l.tree ];
            # The store drops write bits (0444/0555); give the image the
            # modes the native builder writes (0644/0755). The comment makes
            # the step wait for the check: it carries the spec's config, which
            # is not judged until the metadata derivation has run.
            extraCommands = "chmod -R u+w .\n# judged by ${p.metadata}\n";
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
