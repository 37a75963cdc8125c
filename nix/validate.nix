# The normalized spec, at evaluation time: what Nix needs to build the
# derivations (names, annotations, argv, where each artifact comes from).
#
# It judges nothing. The metadata derivation (image.nix `mkMetadata`) runs
# the Python validator (helpers/nix_check.py: validate.py, contract.json,
# the loaders) on the same spec in the first second of the build, fails with
# the messages `urunix validate` prints, and fails too if this file's result
# differs from Python's own plan. Here only what stops evaluation itself is
# refused (the spec not being an attribute set); a value of the wrong type is
# passed on to the validator, never interpolated. Constants come from
# contract.json.
{
  sources ? import ./sources.nix,
}:
let
  inherit (builtins)
    attrNames
    concatStringsSep
    filter
    foldl'
    head
    isAttrs
    isBool
    isList
    isString
    length
    listToAttrs
    stringLength
    substring
    ;
  util = import ./util.nix;
  inherit (util) fields hasInfix hasPrefix splitOn;
  R = import ./rootfs.nix { inherit contract sourcePath pathType; };

  contract = builtins.fromJSON (builtins.readFile sources.contract);
  kindOf = k: contract.keys.${k}.kind or null;

  # The architecture of a Nix system ("x86_64-linux" -> "x86_64").
  systemArch = system: head (splitOn "-" system);

  isStringList = l: isList l && builtins.all isString l;
  text = v: if isString v then v else "";
  # validate.py string_map: bools and numbers become text; others are dropped
  # (the validator refuses them).
  asText =
    x:
    if isString x then
      x
    else if isBool x then
      (if x then "true" else "false")
    else if builtins.isInt x || builtins.isFloat x then
      toString x
    else
      null;
  stringMap =
    v:
    if !(isAttrs v) then
      { }
    else
      builtins.mapAttrs (k: asText) (removeAttrs v (filter (k: asText v.${k} == null) (attrNames v)));

  # Short names, booleans of bool keys as text, unset ("" or null) dropped,
  # every name of a synonym group written when one is (validate.py
  # annotations() and contract_rules()).
  annotationsOf =
    raw:
    let
      prefix = contract.prefix;
      short = k: if hasPrefix prefix k then substring (stringLength prefix) (stringLength k) k else k;
      conv =
        k: v:
        if isBool v && kindOf k == "bool" then
          (if v then "true" else "false")
        else
          v;
      pairs = map (k: {
        name = short k;
        value = conv (short k) raw.${k};
      }) (attrNames raw);
      base = listToAttrs (
        filter (p: contract.keys ? ${p.name} && isString p.value && p.value != "") pairs
      );
    in
    foldl' (
      acc: group:
      let
        given = filter (k: acc ? ${k}) group;
      in
      if given == [ ] then acc else acc // listToAttrs (map (k: { name = k; value = acc.${head given}; }) group)
    ) base contract.synonyms;

  # `files` as a list of { source; target; }: from { "./src" = "/dst"; }
  # (bimanix) or the normalized list `urunix generate` writes. Entries that
  # are not strings are left out (the validator names them).
  fileList =
    files:
    filter (f: isString f.source && isString f.target && f.source != "" && hasPrefix "/" f.target) (
      if isAttrs files then
        map (s: {
          source = s;
          target = files.${s};
        }) (attrNames files)
      else if isList files then
        map (f: {
          source = f.source or null;
          target = f.target or null;
        }) (filter isAttrs files)
      else
        [ ]
    );

  # A target inside the image, cleaned like os.path.normpath ("/a/./b/" ->
  # "/a/b").
  cleanTarget = t: "/" + concatStringsSep "/" (filter (c: c != "" && c != ".") (splitOn "/" t));

  # Where a source lives on the host: relative to `src` unless absolute.
  sourcePath = src: s: if hasPrefix "/" s then /. + s else src + "/${s}";

  # "regular", "directory", "symlink", "unknown" or null (missing).
  pathType =
    p:
    if toString p == "/" then
      "directory"
    else if !(builtins.pathExists (dirOf p)) then
      null
    else
      (builtins.readDir (dirOf p)).${baseNameOf p} or null;

  # urunc/urunit's convention for Linux guests: an argument holding a space is
  # wrapped in single quotes (no escaping); other guests get plain words.
  joinArgs =
    guest: args:
    concatStringsSep " " (
      map (a: if guest == "linux" && hasInfix " " (util.strip a) then "'${util.strip a}'" else a) args
    );

  # validate.py argv(): Cmd is `cmd` when given; else the cmdline split like
  # Go's strings.Fields (how urunc v0.5 reads it); else [ "" ] for a
  # non-Linux guest without entrypoint. An init comes first (unless it
  # already is), in the annotation too; the cmdline is derived from the argv
  # when not given. Then per guest (guest_argv.py): Unikraft's Cmd holds the
  # app's arguments only; a Linux guest's init and program go in
  # Entrypoint, the program's arguments in Cmd.
  argvOf =
    args@{
      cmd,
      entrypoint,
      cmdline,
      guest,
      init,
    }:
    if guest == "unikraft" then
      unikraftArgv args
    else if guest == "linux" then
      linuxSplit init (flatArgv args)
    else
      flatArgv args;

  takeN = n: l: builtins.genList (i: builtins.elemAt l i) (if n < length l then n else length l);
  dropN = n: l: builtins.genList (i: builtins.elemAt l (i + n)) (if n < length l then length l - n else 0);
  nonEmpty = filter (a: a != "");

  # urunc_rules.unikraft_args(): a bunny/bima cmdline is argv0 then the
  # arguments; one word is the ELF loader's program (urunc v0.5.0 hands it
  # argv [w, w]): one argument.
  unikraftArgs =
    line:
    let
      w = fields line;
    in
    if length w > 1 then dropN 1 w else w;

  # guest_argv.unikraft(): urunc v0.6.0+ write argv0 `Unikraft` and put all
  # of Entrypoint+Cmd after `--`, so Cmd is the app's arguments (`[ "" ]`
  # for none); a given cmdline is kept (v0.5.0's form, argv0 first), else it
  # is written as `Unikraft ARGS`.
  unikraftArgv =
    {
      cmd,
      entrypoint,
      cmdline,
      guest,
      init,
    }:
    let
      fromLine = if cmdline == null then [ ] else unikraftArgs cmdline;
      ep = if entrypoint == null then [ ] else entrypoint;
      n = length ep;
      cmd0 =
        if cmd != null then
          cmd
        else if ep != [ ] && takeN n fromLine == ep then
          dropN n fromLine
        else
          fromLine;
      all = nonEmpty (ep ++ cmd0);
    in
    {
      inherit entrypoint;
      cmd = if cmd0 == [ ] && ep == [ ] then [ "" ] else cmd0;
      cmdline = if cmdline == null && all != [ ] then joinArgs guest ([ "Unikraft" ] ++ all) else cmdline;
    };

  # guest_argv.linux_split(): Docker's entrypoint convention for a Linux
  # guest, when the spec gives no entrypoint: the init and the program in
  # Entrypoint (2 items with an init of urunix's or a urunit argv[0], else
  # 1), the program's arguments in Cmd.
  isUrunit = p: hasInfix "urunit" (baseNameOf p);
  linuxSplit =
    init: a:
    let
      l = a.cmd;
      n = if init != null || (l != [ ] && isUrunit (head l)) then 2 else 1;
    in
    if a.entrypoint != null && a.entrypoint != [ ] then
      a
    else if l == [ ] then
      a // { entrypoint = null; }
    else
      a
      // {
        entrypoint = takeN n l;
        cmd = dropN n l;
      };

  flatArgv =
    {
      cmd,
      entrypoint,
      cmdline,
      guest,
      init,
    }:
    let
      firstOf = l: if l == [ ] then [ ] else [ (head l) ];
      # validate.py argv(): Docker refuses an image with neither Entrypoint
      # nor Cmd; one empty argument is none to urunc (Linux: refused instead)
      noneIsEmpty = ep: c: if (ep == null || ep == [ ]) && c == [ ] && guest != "linux" then [ "" ] else c;
      withInit =
        c: ep: toEntrypoint:
        if init != null && firstOf (if ep != null && ep != [ ] then ep else c) != [ init ] then
          (
            if toEntrypoint then
              {
                cmd = c;
                entrypoint = [ init ] ++ ep;
                changed = true;
              }
            else
              {
                cmd = [ init ] ++ c;
                entrypoint = ep;
                changed = true;
              }
          )
        else
          {
            cmd = c;
            entrypoint = ep;
            changed = false;
          };
    in
    if cmd == null then
      let
        w = withInit (if cmdline != null then fields cmdline else [ ]) entrypoint (
          entrypoint != null && entrypoint != [ ]
        );
        e = w.entrypoint;
      in
      {
        entrypoint = e;
        cmd = noneIsEmpty e w.cmd;
        cmdline = if w.changed then joinArgs guest ((if e == null then [ ] else e) ++ w.cmd) else cmdline;
      }
    else
      let
        w = withInit cmd entrypoint (entrypoint != null);
        all = (if w.entrypoint == null then [ ] else w.entrypoint) ++ w.cmd;
      in
      {
        inherit (w) entrypoint;
        cmd = noneIsEmpty w.entrypoint w.cmd;
        cmdline =
          # with the init put first, cmdline (which agrees with cmd) lacks it too
          if (cmdline == null || w.changed) && all != [ ] then
            joinArgs guest all
          else
            cmdline;
      };

  # normalize { spec; src ? null; specName ? "spec"; }
  #
  # A spec (a bimanix args.nix attrset, or the normalized form `urunix
  # generate` writes) as
  #   { name; tag; architecture; annotations; cmd; entrypoint; env; labels;
  #     files = [ { source; target; } ]; created; workdir;
  #     rootfs = null or { type; from; include = [ { source; target; } ];
  #                        path; size; fsType; compression; };
  #     kernel = null or { from; path; }; init = null or { from; path; };
  #     build = null or rootfs.nix `rootfs`'s build; kernelX, initX = null or
  #     rootfs.nix `extract`'s result (see its `ok`); rootfsOrigin; }
  # with the defaults resolved and their annotations set (initrd/block,
  # blkMntPoint, useDMBlock/mountRootfs, binary, cmdline) as validate.py
  # does. Normalizing twice gives the same result.
  normalize =
    {
      spec,
      src ? null,
      specName ? "spec",
      # The system images are built for: image.nix passes pkgs' own, so a
      # flake's aarch64-linux output is arm64 (pure evaluation has no
      # builtins.currentSystem).
      system ? builtins.currentSystem or "x86_64-linux",
    }:
    let
      hostArch = systemArch system;
      given = spec;
      name = text (given.name or null);
      tag = if isString (given.tag or null) && given.tag != "" then given.tag else contract.defaults.tag;
      archGiven = given.architecture or null;
      archKey = if archGiven == null || archGiven == "" then hostArch else util.toLower (text archGiven);
      architecture = contract.architectures.${archKey} or contract.architectures.${hostArch} or "amd64";

      ann0 = annotationsOf (if isAttrs (given.annotations or null) then given.annotations else { });
      guest = ann0.unikernelType or null;
      files = map (f: f // { target = cleanTarget f.target; }) (fileList (given.files or null));

      kernelShape = if (given.kernel or null) != null then R.sourceShape given.kernel else null;
      kernelX = if kernelShape == null then null else R.extract src kernelShape contract.defaults.kernel;
      kernelOk = kernelX != null && kernelX.ok;
      annKernel = if kernelOk && !(ann0 ? binary) then ann0 // { binary = kernelX.target; } else ann0;

      initShape = if (given.init or null) != null then R.sourceShape given.init else null;
      initX = if initShape == null then null else R.extract src initShape contract.defaults.init;
      init = if initX != null && initX.ok then initX else null;

      rootfsShape = if isAttrs (given.rootfs or null) then R.rootfsShape given.rootfs else null;
      rootfsR =
        if rootfsShape != null && R.wanted rootfsShape then
          R.rootfs {
            inherit src guest;
            r = rootfsShape;
            ann = annKernel;
            clean = cleanTarget;
          }
        else
          {
            build = null;
            origin = null;
            ann =
              if guest == "linux" && rootfsShape != null && rootfsShape.type != "raw" then
                {
                  useDMBlock = "false";
                  mountRootfs = "false";
                }
                // annKernel
              else
                annKernel;
          };
      build = rootfsR.build;
      # urunc_rules.spec_targets(): `urunc` (or the label urunix.urunc),
      # else contract.json defaultTargets. A value that names no release is
      # the validator's to refuse.
      uruncGiven =
        if (given.urunc or null) != null then
          given.urunc
        else if isAttrs (given.labels or null) then
          given.labels."urunix.urunc" or null
        else
          null;
      targets =
        if uruncGiven == null then
          contract.defaultTargets
        else if isString uruncGiven then
          (if util.strip uruncGiven == "" then [ ] else map util.strip (splitOn "," uruncGiven))
        else if isList uruncGiven then
          map (v: if isString v then util.strip v else v) uruncGiven
        else
          contract.defaultTargets;
      # urunc_rules.fill_defaults(): blkMntPoint with block (urunc v0.7.0+
      # stop without it; not for a Linux guest with an initrd, whose block
      # image is no rootfs), useDMBlock = mountRootfs = "false" when v0.5.0
      # is targeted (unset means true there).
      ann1 =
        let
          a = rootfsR.ann;
          mnt = if isString guest then contract.guests.${guest}.blkMntPoint or null else null;
          a2 =
            if a ? block && !(a ? blkMntPoint) && mnt != null && !(guest == "linux" && a ? initrd) then
              a // { blkMntPoint = mnt; }
            else
              a;
        in
        if builtins.elem "v0.5.0" targets && !(a2 ? useDMBlock) && !(a2 ? mountRootfs) then
          a2
          // {
            useDMBlock = "false";
            mountRootfs = "false";
          }
        else
          a2;
      imageArgv = build != null && build.origin.kind == "image";

      cmdGiven = if isStringList (given.cmd or null) then given.cmd else null;
      argv = argvOf {
        cmd = cmdGiven;
        entrypoint = if isStringList (given.entrypoint or null) then given.entrypoint else null;
        cmdline = ann1.cmdline or null;
        inherit guest;
        init = if init == null then null else init.target;
      };
      annotations =
        if argv.cmdline == null || argv.cmdline == "" then
          removeAttrs ann1 [ "cmdline" ]
        else
          ann1 // { inherit (argv) cmdline; };

      envGiven = given.env or null;
      env =
        if isStringList envGiven then
          envGiven
        else
          let
            m = stringMap envGiven;
          in
          map (k: "${k}=${m.${k}}") (attrNames m);

      # The normalized kernel / init: { from; path; } with the defaults filled in.
      normalSource = shape: x: {
        inherit (shape) from;
        path =
          if shape.from == "local" then
            shape.path
          else if x.origin.kind == "file" then
            x.target
          else
            x.inner;
      };
    in
    if !(isAttrs spec) then
      throw "urunix: ${specName}: the spec must be an attribute set"
    else
      {
        # What the Nix backend cannot build (yet), for a spec the validator
        # accepts: the check reports it after the validator's problems.
        limits =
          builtins.concatMap (o: if o ? limit then [ o.limit ] else [ ]) (
            filter (o: o != null) [
              rootfsR.origin
              (kernelX.origin or null)
              (initX.origin or null)
            ]
          )
          ++ (
            if build != null && build.type == "raw" && imageArgv then
              [
                "rootfs.from: rootfs.type = \"raw\" from an image (${build.origin.from}) is not supported by the Nix backend yet; use a directory, or build this spec with `urunix build`"
              ]
            else if
              # a cmdline of blanks gives no command (validate.py command_given)
              imageArgv && cmdGiven == null && (given.entrypoint or null) == null && (
                let
                  c = ann1.cmdline or null;
                in
                c == null || (builtins.isString c && fields c == [ ])
              )
            then
              [
                (
                  "cmd: rootfs.from is an image (${build.origin.from}) and the spec gives no command; "
                  + "the Nix backend cannot read the image's Entrypoint/Cmd at evaluation time (urunix build does): "
                  + "set cmd = [ ... ]; to the image's command (docker image inspect -f '{{json .Config.Cmd}}' IMAGE), "
                  + "or run `urunix generate`, which writes it in"
                )
              ]
            else
              [ ]
          );
        inherit
          name
          tag
          architecture
          annotations
          env
          files
          build
          kernelX
          ;
        inherit (argv) cmd entrypoint;
        labels = stringMap (given.labels or null);
        created = given.created or contract.defaults.created;
        workdir = given.workdir or null;
        rootfs = if build == null then null else R.normalized build;
        kernel = if kernelOk then normalSource kernelShape kernelX else null;
        inherit initX;
        rootfsOrigin = rootfsR.origin;
        init = if init == null then null else normalSource initShape init;
      };

  # uruncLabels annotations -> { "com.urunc.unikernel.<key>" = value; }
  # The image config labels for normalized annotations (plain text).
  uruncLabels =
    annotations:
    listToAttrs (
      map (k: {
        name = contract.prefix + k;
        value = annotations.${k};
      }) (attrNames annotations)
    );
in
{
  inherit
    contract
    normalize
    uruncLabels
    joinArgs
    sourcePath
    pathType
    ;
  rootfs = R;
}
