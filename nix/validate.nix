# Validation and normalization of an image spec, at evaluation time.
#
# The rules come from contract.json (the one copy of urunc's rules, shared
# with the Python validator); this file only reads them. Messages name the
# field, show the value, list what is allowed and suggest a near miss, like
# the Python side does:
#
#   annotations.unikernelType: "unikrafft" is not one of unikraft, rumprun,
#   mirage, mewz, linux, hermit, freebsd; did you mean "unikraft"?
{
  sources ? import ./sources.nix,
}:
let
  inherit (builtins)
    attrNames
    concatLists
    concatStringsSep
    elem
    filter
    foldl'
    hasAttr
    head
    isAttrs
    isBool
    isList
    isString
    length
    listToAttrs
    match
    stringLength
    substring
    typeOf
    ;
  util = import ./util.nix;
  R = import ./rootfs.nix {
    inherit
      contract
      util
      sourcePath
      pathType
      pathProblems
      ;
  };
  inherit (util)
    didYouMean
    fields
    hasInfix
    hasPrefix
    show
    splitOn
    ;

  contract = builtins.fromJSON (builtins.readFile sources.contract);

  guests = attrNames contract.guests;
  monitors = attrNames contract.monitors;
  keys = attrNames contract.keys;
  kindOf = k: contract.keys.${k}.kind;

  # Order guests and monitors the way contract.json lists the pairs (v0.5
  # names first) for messages; attrNames sorts them alphabetically.
  guestOrder = [
    "unikraft"
    "rumprun"
    "mirage"
    "mewz"
    "linux"
    "hermit"
    "freebsd"
  ];
  ordered = preferred: all: filter (x: elem x all) preferred ++ filter (x: !(elem x preferred)) all;
  guestList = ordered guestOrder guests;
  monitorList = ordered [
    "qemu"
    "firecracker"
    "hvt"
    "spt"
    "cloud-hypervisor"
    "hyperlight"
  ] monitors;

  # Fields of the spec this library knows: the Python model's (spec.py
  # TOP_LEVEL_FIELDS), plus `created` and `workdir`, which the normalized
  # spec written by `urunix generate` may carry.
  knownFields = [
    "name"
    "tag"
    "files"
    "annotations"
    "architecture"
    "cmd"
    "entrypoint"
    "env"
    "labels"
    "rootfs"
    "kernel"
    "init"
    "urunc"
    "created"
    "workdir"
  ];

  notOneOf =
    field: value: choices:
    let
      hint = didYouMean value choices;
    in
    "${field}: ${show value} is not one of ${concatStringsSep ", " choices}"
    + (if hint == null then "" else "; ${hint}");

  optional = cond: x: if cond then [ x ] else [ ];

  # The architecture of a Nix system ("x86_64-linux" -> "x86_64").
  systemArch = system: head (splitOn "-" system);

  # --- path rules (contract.json "paths") -----------------------------------
  # `binary`, `initrd`, `block`, `blkMntPoint`: urunc main refuses anything
  # else when the container starts, so refuse it here first.
  pathProblems =
    field: p: allowRoot:
    let
      comps = splitOn "/" p;
      inner = if hasPrefix "/" p then builtins.tail comps else comps;
      clean =
        p == "/"
        || (
          !(elem "" inner)
          && !(elem "." inner)
          && !(elem ".." inner)
        );
    in
    if match contract.paths.pattern p == null then
      [
        "${field}: ${show p} may only use the characters A-Z a-z 0-9 . _ / - (urunc refuses other paths)"
      ]
    else if stringLength p > contract.paths.maxBytes then
      [ "${field}: path is longer than ${toString contract.paths.maxBytes} bytes" ]
    else if p == "." then
      [ "${field}: ${show p} is not a path inside the image" ]
    else if hasPrefix ".." p || hasPrefix "-" p then
      [ "${field}: ${show p} must not start with \"..\" or \"-\"" ]
    else if p == "/" && !allowRoot then
      [ "${field}: \"/\" is not a file" ]
    else if !(hasPrefix "/" p) then
      [ "${field}: ${show p} must be an absolute path inside the image; did you mean \"/${p}\"?" ]
    else if !clean then
      [
        "${field}: ${show p} is not a clean path (no \"//\", \"/./\", \"/../\" or trailing \"/\")"
      ]
    else
      [ ];

  # --- annotations ----------------------------------------------------------
  annotationValue =
    k: v:
    if isString v then
      {
        value = v;
        problems = [ ];
      }
    else if isBool v && kindOf k == "bool" then
      {
        value = if v then "true" else "false";
        problems = [ ];
      }
    else if v == null then
      {
        value = "";
        problems = [ ];
      }
    else
      {
        value = "";
        problems = [ "annotations.${k}: must be a string (got ${show v}); write it in quotes" ];
      };

  normalizeAnnotations =
    raw:
    let
      # Full names (com.urunc.unikernel.binary) are accepted as short ones.
      short = k: if hasPrefix contract.prefix k then substring (stringLength contract.prefix) 1000 k else k;
      names = attrNames raw;
      unknown = filter (k: !(elem (short k) keys)) names;
      unknownProblems = map (
        k:
        let
          hint = didYouMean (short k) keys;
        in
        "annotations.${k}: is not an annotation urunc reads; known: ${concatStringsSep ", " keys}"
        + (if hint == null then "" else "; ${hint}")
      ) unknown;
      known = filter (k: elem (short k) keys) names;
      converted = map (k: { name = short k; } // annotationValue (short k) raw.${k}) known;
      valueProblems = concatLists (map (x: x.problems) converted);
      set = filter (x: x.value != "") converted;
      base = listToAttrs (
        map (x: {
          inherit (x) name value;
        }) set
      );
      # contract.json "synonyms": write every name of a group when one is set.
      withSynonyms = foldl' (
        acc: group:
        let
          given = filter (k: hasAttr k acc) group;
          values = map (k: acc.${k}) given;
          value = head values;
        in
        if given == [ ] then
          acc
        else
          acc // listToAttrs (map (k: { name = k; inherit value; }) group)
      ) base contract.synonyms;
      synonymProblems = concatLists (
        map (
          group:
          let
            given = filter (k: hasAttr k base) group;
            values = map (k: base.${k}) given;
          in
          optional (length given > 1 && filter (v: v != head values) values != [ ]) (
            "annotations: ${concatStringsSep " and " group} are the same setting and disagree ("
            + concatStringsSep ", " (map (k: "${k} = ${show base.${k}}") given)
            + ")"
          )
        ) contract.synonyms
      );
    in
    {
      value = withSynonyms;
      given = base;
      problems = unknownProblems ++ valueProblems ++ synonymProblems;
    };

  checkAnnotation =
    k: v:
    let
      kind = kindOf k;
      field = "annotations.${k}";
    in
    if kind == "guest" then
      optional (!(elem v guests)) (notOneOf field v guestList)
    else if kind == "monitor" then
      optional (!(elem v monitors)) (notOneOf field v monitorList)
    else if kind == "path" then
      pathProblems field v false
    else if kind == "mountpoint" then
      pathProblems field v true
    else if kind == "bool" then
      optional (!(elem v contract.bool)) (notOneOf field v contract.bool)
    else if kind == "devname" then
      optional (match contract.devname.pattern v == null) (
        "${field}: ${show v} must be 1 to 67 letters or digits"
      )
    else
      [ ];

  # --- files ----------------------------------------------------------------
  # `files` is an attrset { "./src" = "/target"; } (bimanix) or a list of
  # { source; target; } (the normalized form written by `urunix generate`).
  fileList =
    files:
    if files == null then
      {
        value = [ ];
        problems = [ ];
      }
    else if isAttrs files then
      {
        value = map (s: {
          source = s;
          target = files.${s};
        }) (attrNames files);
        problems = [ ];
      }
    else if isList files then
      {
        value = files;
        problems = concatLists (
          map (
            f:
            optional (!(isAttrs f && f ? source && f ? target)) (
              "files: each entry must be { source = \"./x\"; target = \"/y\"; } (got ${show f})"
            )
          ) files
        );
      }
    else
      {
        value = [ ];
        problems = [ "files: must be an attribute set { \"./src\" = \"/target\"; } (got ${show files})" ];
      };

  # A target inside the image, cleaned ("/a/./b/" -> "/a/b"); problems when
  # it is unusable: relative, "/", holding "..", or /urunc.json.
  normalizeTarget =
    field: t: reserved:
    if !(isString t) || t == "" then
      {
        value = "/";
        problems = [ "${field}: needs a target path inside the image (got ${show t})" ];
      }
    else
      let
        comps = filter (c: c != "" && c != ".") (splitOn "/" t);
        value = "/" + concatStringsSep "/" comps;
      in
      {
        inherit value;
        problems =
          if !(hasPrefix "/" t) then
            [ "${field}: target must be an absolute path inside the image (got ${show t}); did you mean \"/${t}\"?" ]
          else if elem ".." comps || comps == [ ] then
            [ "${field}: target must name a path below / without \"..\" (got ${show t})" ]
          else if reserved && value == contract.uruncJson then
            [ "${field}: target /urunc.json is written by urunix itself; put urunc metadata in `annotations`" ]
          else
            [ ];
      };

  # Where a `files` source lives on the host: relative to `src` (the spec's
  # directory) unless absolute. "./x", "x", "dir/with space/x" all work.
  sourcePath =
    src: s:
    if hasPrefix "/" s then
      /. + s
    else
      src + "/${s}";

  # "regular", "directory", "symlink", "unknown" or null (missing).
  pathType =
    p:
    let
      parent = dirOf p;
      base = baseNameOf p;
    in
    if toString p == "/" then
      "directory"
    else if !(builtins.pathExists parent) then
      null
    else
      (builtins.readDir parent).${base} or null;

  # Does the image get a regular file at `target` (absolute, clean)?
  # Either a `files` entry targets it, or it sits inside a copied directory.
  imageHasFile =
    src: files: planned: target:
    let
      direct = filter (
        f: f.target == target && (src == null || pathType (sourcePath src f.source) == "regular")
      ) files;
      inDir = filter (
        f: f.target != target && (f.target == "/" || hasPrefix (f.target + "/") target)
      ) files;
      underDir =
        f:
        let
          rest = if f.target == "/" then substring 1 10000 target else substring (stringLength f.target + 1) 10000 target;
          t = pathType (sourcePath src f.source + "/${rest}");
        in
        src != null && pathType (sourcePath src f.source) == "directory" && t == "regular";
    in
    elem target planned || direct != [ ] || builtins.any underDir inDir;

  # --- argv -----------------------------------------------------------------
  isStringList = l: isList l && builtins.all isString l;

  # urunc/urunit's convention for Linux guests: an argument holding a space is
  # wrapped in single quotes (no escaping); other guests get plain words.
  joinArgs =
    guest: args:
    concatStringsSep " " (
      map (a: if guest == "linux" && hasInfix " " (util.strip a) then "'${util.strip a}'" else a) args
    );

  # --- the whole spec -------------------------------------------------------
  # normalize { spec; src ? null; specName ? "spec"; system ? current; }
  #
  # Checks a spec (a bimanix args.nix attrset, or the normalized form that
  # `urunix generate` writes) against contract.json and returns the
  # normalized spec:
  #   { name; tag; architecture; annotations; cmd; entrypoint; env; labels;
  #     files = [ { source; target; } ]; created; workdir;
  #     rootfs = null or { type; from; include = [ { source; target; } ];
  #                        path; size; fsType; compression; };
  #     kernel = null or { from; path; }; init = null or { from; path; }; }
  # with the rootfs/kernel/init defaults resolved and their annotations set
  # (initrd/block, blkMntPoint, useDMBlock/mountRootfs, binary, cmdline),
  # exactly as validate.py does.
  # or throws one error listing every problem. Normalizing twice gives the
  # same result. `src` (a path) is where `files` sources are looked up; when
  # null, file existence is not checked.
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
      given = if isAttrs spec then spec else { };
      topProblems =
        optional (!(isAttrs spec)) "the spec must be an attribute set (got ${show spec})"
        ++ concatLists (
          map (
            k:
            if elem k knownFields then
              [ ]
            else
              [
                (
                  let
                    hint = didYouMean k knownFields;
                  in
                  "${k}: unknown field; known: ${concatStringsSep ", " knownFields}"
                  + (if hint == null then "" else "; ${hint}")
                )
              ]
          ) (attrNames given)
        );

      # name and tag ------------------------------------------------------
      name = given.name or null;
      tag = if (given.tag or null) == null || given.tag == "" then "latest" else given.tag;
      nameProblems =
        if !(isString name) || name == "" then
          [ "name: required: the image name, e.g. \"urunc/hello-rumprun\" (got ${show name})" ]
        else
          optional (
            match "([a-z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*" name == null
          ) "name: ${show name} is not a valid image name (lowercase letters, digits, \".\", \"_\", \"-\" and \"/\")";
      tagProblems =
        if !(isString tag) then
          [ "tag: must be a string (got ${show tag})" ]
        else
          optional (match "[a-z0-9_][a-z0-9_.-]{0,127}" tag == null) (
            "tag: ${show tag} is not a valid tag for this backend (lowercase letters, digits, \"_\", \".\", \"-\"; at most 128; dockerTools lowercases tags)"
          );

      # architecture ------------------------------------------------------
      archGiven = given.architecture or null;
      archKey = if archGiven == null || archGiven == "" then hostArch else util.toLower archGiven;
      archProblems =
        if !(isString archKey) then
          [ "architecture: must be a string (got ${show archKey})" ]
        else
          optional (!(contract.architectures ? ${archKey})) (
            notOneOf "architecture" archKey (attrNames contract.architectures)
          );
      architecture = if archProblems == [ ] then contract.architectures.${archKey} else "amd64";

      # annotations -------------------------------------------------------
      rawAnnotations = given.annotations or { };
      annotationsIn =
        if isAttrs rawAnnotations then
          normalizeAnnotations rawAnnotations
        else
          {
            value = { };
            given = { };
            problems = [ "annotations: must be an attribute set (got ${show rawAnnotations})" ];
          };
      ann0 = annotationsIn.value;
      requiredProblems = map (
        k: "annotations.${k}: required (${contract.keys.${k}.doc})"
      ) (filter (k: !(ann1 ? ${k})) contract.required);
      valueProblems = concatLists (
        map (k: checkAnnotation k annotationsIn.given.${k}) (attrNames annotationsIn.given)
      );
      guest = ann0.unikernelType or null;
      monitor = ann0.hypervisor or null;
      pairProblems = optional (
        elem guest guests && elem monitor monitors && !(elem guest (contract.pairs.${monitor} or [ ]))
      ) (
        "annotations.hypervisor: urunc cannot run a ${guest} guest on ${monitor}; "
        + "${guest} runs on ${concatStringsSep ", " (filter (m: elem guest contract.pairs.${m}) monitorList)}; "
        + "${monitor} runs ${concatStringsSep ", " (contract.pairs.${monitor} or [ ])}"
      );

      storage = if elem guest guests then contract.guests.${guest}.storage or null else null;
      storageProblems = concatLists (
        map (
          k:
          optional (ann0 ? ${k} && storage != null && !(elem k storage)) (
            "annotations.${k}: a ${guest} guest cannot boot from ${k} storage (got ${show ann0.${k}}); "
            + "storage for ${guest}: ${if storage == [ ] then "none (in-memory)" else concatStringsSep ", " storage}"
          )
        ) [
          "initrd"
          "block"
        ]
      );

      # files -------------------------------------------------------------
      # checkEntries: copies into a tree (the image's `files`, or a rootfs's
      # include), each { source; target; field; } -> { value; problems; }.
      checkEntries =
        reserved: entries:
        let
          checked = map (
            f:
            let
              field = f.field;
              t = normalizeTarget field (f.target or null) reserved;
              sourceOk = isString (f.source or null) && f.source != "";
              p = if src != null && sourceOk then sourcePath src f.source else null;
            in
            {
              value = {
                source = f.source or "";
                target = t.value;
              };
              problems =
                t.problems
                ++ optional (!sourceOk) "${field}: the source must be a non-empty string (got ${show (f.source or null)})"
                ++ optional (p != null && pathType p == null) "${field}: no such file or directory: ${toString p}"
                ++ optional (p != null && pathType p == "symlink") (
                  "${field}: is a symbolic link; Nix would copy the link, not the file: name the file it points to"
                );
            }
          ) entries;
          value = map (x: x.value) checked;
          ts = map (f: f.target) value;
          duplicates = filter (t: length (filter (x: x == t) ts) > 1) ts;
        in
        {
          inherit value;
          problems =
            concatLists (map (x: x.problems) checked)
            ++ optional (duplicates != [ ]) (
              "${if reserved then "files" else "rootfs.include"}: more than one file goes to ${show (head duplicates)}"
            );
        };
      filesIn = fileList (given.files or null);
      filesChecked = checkEntries true (
        map (
          f:
          f
          // {
            field = if isString (f.source or null) then "files.${show f.source}" else "files";
          }
        ) (if filesIn.problems == [ ] then filesIn.value else [ ])
      );
      files = filesChecked.value;
      fileProblems = filesIn.problems ++ filesChecked.problems;

      # kernel, init, rootfs (nix/rootfs.nix; validate.py storage()) ----------
      kernelShape = if (given.kernel or null) != null then R.sourceShape "kernel" given.kernel else null;
      kernelX = if kernelShape == null then null else R.extract src "kernel" kernelShape "/kernel";
      kernelOk = kernelX != null && kernelShape.problems == [ ] && kernelX.ok;
      kernelTarget = if ann0 ? binary then ann0.binary else kernelX.target;
      kernelProblems =
        if kernelShape == null then
          [ ]
        else
          kernelShape.problems
          ++ kernelX.problems
          ++ (
            if kernelOk then
              map (p: builtins.replaceStrings [ "annotations.binary" ] [ "kernel.path" ] p) (
                pathProblems "annotations.binary" kernelTarget false
              )
            else
              [ ]
          );
      annKernel = if kernelOk && !(ann0 ? binary) then ann0 // { binary = kernelX.target; } else ann0;

      initShape = if (given.init or null) != null then R.sourceShape "init" given.init else null;
      initX = if initShape == null then null else R.extract src "init" initShape "/urunit";
      initOk = initX != null && initShape.problems == [ ] && initX.ok;
      initProblems' =
        if initShape == null then
          [ ]
        else
          initShape.problems
          ++ initX.problems
          ++ optional (initOk && guest != null && guest != "linux") (
            "init: only Linux guests run an init; a ${guest} guest is the application itself; remove init, or set unikernelType = \"linux\""
          );
      init = if initOk then initX else null;

      rootfsShape = if (given.rootfs or null) != null then R.rootfsShape given.rootfs else null;
      rootfsWanted = rootfsShape != null && rootfsShape.problems == [ ] && R.wanted rootfsShape;
      rootfsR =
        if rootfsWanted then
          R.rootfs {
            inherit src guest storage;
            r = rootfsShape;
            ann = annKernel;
            given = annotationsIn.given;
            checkEntries = checkEntries false;
          }
        else
          {
            build = null;
            problems = [ ];
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
      rootfsProblems = (if rootfsShape == null then [ ] else rootfsShape.problems) ++ rootfsR.problems;
      rootfs = rootfsR.build;
      # urunc_rules.fill_defaults(): blkMntPoint with block (urunc v0.7.0+
      # stop without it), useDMBlock = "false" when v0.5.0 is targeted
      # (unset means true there). Targets: `urunc`, else contract.defaultTargets.
      uruncGiven = given.urunc or null;
      targets =
        if uruncGiven == null then
          contract.defaultTargets
        else if isString uruncGiven then
          map util.strip (splitOn "," uruncGiven)
        else
          uruncGiven;
      ann1 =
        let
          a = rootfsR.ann;
          mnt = if isString guest then (contract.guests.${guest} or { }).blkMntPoint or null else null;
          a2 =
            if (a.block or "") != "" && !(a ? blkMntPoint) && mnt != null && !(guest == "linux" && a ? initrd) then
              a // { blkMntPoint = mnt; }
            else
              a;
        in
        if isList targets && elem "v0.5.0" targets && !(a2 ? useDMBlock) && !(a2 ? mountRootfs) then
          a2
          // {
            useDMBlock = "false";
            mountRootfs = "false";
          }
        else
          a2;
      planned =
        optional (kernelShape != null) kernelTarget
        ++ optional (rootfs != null && rootfs.target != null) rootfs.target;

      containsProblems = concatLists (
        map (
          k:
          let
            v = ann1.${k};
            abs = if hasPrefix "/" v then v else "/" + v;
          in
          optional (
            ann1 ? ${k} && (checkAnnotation k v) == [ ] && fileProblems == [ ] && !(imageHasFile src files planned abs)
          ) "annotations.${k}: ${show v} is not a file in the image; add it to `files` (targets: ${concatStringsSep ", " (map (f: f.target) files)})"
        ) [
          "binary"
          "initrd"
          "block"
        ]
      );

      # argv --------------------------------------------------------------
      # Mirrors validate.py argv(). Cmd is `cmd` when given; else the
      # cmdline split like Go's strings.Fields (how urunc v0.5 reads it);
      # else [ "" ] for a non-Linux guest without entrypoint (Docker refuses
      # an image with neither Entrypoint nor Cmd; urunc takes one empty
      # argument as none). When only `cmd` is given, the cmdline annotation
      # is derived from it. An init comes first (unless it already is).
      cmdGiven = given.cmd or null;
      entrypointGiven = given.entrypoint or null;
      cmdOk = isStringList cmdGiven;
      entrypoint0 = if isStringList entrypointGiven then entrypointGiven else null;
      ep0 = if entrypoint0 == null then [ ] else entrypoint0;
      cmdline = ann1.cmdline or null;
      imageArgv = rootfs != null && rootfs.origin.kind == "image";
      argvGiven = cmdGiven != null || entrypointGiven != null || cmdline != null;
      argvProblems =
        optional (cmdGiven != null && !cmdOk) "cmd: must be a list of strings (got ${show cmdGiven}); e.g. cmd = [ \"redis-server\" \"/conf/redis.conf\" ];"
        ++ optional (
          entrypointGiven != null && entrypoint0 == null
        ) "entrypoint: must be a list of strings (got ${show entrypointGiven})"
        ++ optional (
          guest != "unikraft" && cmdOk && cmdline != null && fields cmdline != ep0 ++ cmdGiven && joinArgs guest (ep0 ++ cmdGiven) != cmdline
        ) "cmd: and annotations.cmdline are both given and disagree (got ${show cmdGiven}); give one of them: urunix derives the other"
        ++ optional (
          guest == "unikraft" && cmdOk && cmdline != null && unikraftArgs cmdline != filter (a: a != "") (ep0 ++ cmdGiven)
        ) "cmd: and annotations.cmdline disagree: for Unikraft, cmd holds the app's arguments only and cmdline is argv0 (the program's name) followed by them (got ${show cmdGiven})"
        ++ optional (imageArgv && !argvGiven) (
          "cmd: rootfs.from is an image (${show rootfs.origin.from}) and the spec gives no command; "
          + "the Nix backend cannot read the image's Entrypoint/Cmd at evaluation time (urunix build does): "
          + "set cmd = [ ... ]; to the image's command (docker image inspect -f '{{json .Config.Cmd}}' IMAGE), "
          + "or run `urunix generate`, which writes it in"
        );
      # Python's `(entrypoint or cmd)[:1]`: the first word of the argv.
      firstOf = l: if l == [ ] then [ ] else [ (head l) ];
      withInit =
        cmd: ep: prependToEntrypoint:
        if init != null && firstOf (if ep != null && ep != [ ] then ep else cmd) != [ init.target ] then
          (
            if prependToEntrypoint then
              {
                inherit cmd;
                entrypoint = [ init.target ] ++ ep;
                changed = true;
              }
            else
              {
                cmd = [ init.target ] ++ cmd;
                entrypoint = ep;
                changed = true;
              }
          )
        else
          {
            inherit cmd;
            entrypoint = ep;
            changed = false;
          };
      # Per guest (validate.py unikraft_argv(), linux_split()): Unikraft's
      # Cmd holds the app's arguments only (urunc v0.6.0+ write argv0
      # `Unikraft` and put all of Entrypoint+Cmd after `--`); a Linux
      # guest's init and program go in Entrypoint, the program's arguments
      # in Cmd, so `docker run IMAGE ARGS` replaces only the arguments.
      argv =
        if guest == "unikraft" then
          unikraftArgv
        else if guest == "linux" then
          linuxSplit argvFlat
        else
          argvFlat;
      takeN = n: l: builtins.genList (i: builtins.elemAt l i) (if n < length l then n else length l);
      dropN = n: l: builtins.genList (i: builtins.elemAt l (i + n)) (if n < length l then length l - n else 0);
      # a bunny/bima cmdline: argv0 then the arguments; one word is the ELF
      # loader's program (urunc v0.5.0 hands it argv [w, w]): one argument.
      unikraftArgs =
        line:
        let
          w = fields line;
        in
        if length w > 1 then dropN 1 w else w;
      unikraftArgv =
        let
          args0 = if cmdline == null then [ ] else unikraftArgs cmdline;
          n = length ep0;
          cmd0 =
            if cmdOk then
              cmdGiven
            else if ep0 != [ ] && takeN n args0 == ep0 then
              dropN n args0
            else
              args0;
          all = ep0 ++ cmd0;
        in
        {
          entrypoint = entrypoint0;
          cmd = if cmd0 == [ ] && ep0 == [ ] then [ "" ] else cmd0;
          cmdline =
            if cmdline == null && filter (a: a != "") all != [ ] then
              joinArgs guest ([ "Unikraft" ] ++ filter (a: a != "") all)
            else
              cmdline;
        };
      isUrunit = p: hasInfix "urunit" (builtins.baseNameOf p);
      linuxSplit =
        a:
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
      argvFlat =
        if !cmdOk then
          let
            fromLine = if cmdline != null then fields cmdline else [ ];
            w = withInit fromLine entrypoint0 (entrypoint0 != null && entrypoint0 != [ ]);
            e = w.entrypoint;
          in
          {
            entrypoint = e;
            cmd = if e == null && w.cmd == [ ] && guest != "linux" then [ "" ] else w.cmd;
            cmdline = if w.changed then joinArgs guest ((if e == null then [ ] else e) ++ w.cmd) else cmdline;
          }
        else
          let
            w = withInit cmdGiven entrypoint0 (entrypoint0 != null);
            all = (if w.entrypoint == null then [ ] else w.entrypoint) ++ w.cmd;
          in
          {
            inherit (w) entrypoint cmd;
            # The init goes first in the annotation too (validate.py argv()).
            cmdline =
              if (cmdline == null || (w.changed && firstOf (fields cmdline) != [ init.target ])) && all != [ ] then
                joinArgs guest all
              else
                cmdline;
          };
      entrypoint = argv.entrypoint;
      cmd = argv.cmd;
      ep = if entrypoint == null then [ ] else entrypoint;
      initProblems = optional (
        guest == "linux" && ep ++ filter (a: a != "") cmd == [ ] && !imageArgv
      ) "annotations.cmdline: a Linux guest needs an init: urunc passes argv[0] as init= and fails with 'No init was specified'; set cmdline = \"/urunit /usr/bin/app\"; or cmd = [ \"/urunit\" \"/usr/bin/app\" ];";
      annotations = if argv.cmdline == null || argv.cmdline == "" then removeAttrs ann1 [ "cmdline" ] else ann1 // { cmdline = argv.cmdline; };

      # env and labels: { KEY = "value"; } (bools and numbers become text);
      # env may also be the normalized list [ "KEY=VALUE" ].
      stringMap =
        field: v:
        if v == null then
          {
            value = { };
            problems = [ ];
          }
        else if !(isAttrs v) then
          {
            value = { };
            problems = [ "${field}: must be an attribute set of strings (got ${show v})" ];
          }
        else
          let
            conv =
              x:
              if isString x then
                x
              else if isBool x then
                (if x then "true" else "false")
              else if builtins.isInt x || builtins.isFloat x then
                toString x
              else
                null;
            bad = filter (k: conv v.${k} == null) (attrNames v);
          in
          {
            value = builtins.mapAttrs (k: x: conv x) (removeAttrs v bad);
            problems = map (k: "${field}.${k}: must be a string (got ${show v.${k}})") bad;
          };
      envGiven = given.env or null;
      envIn =
        if isStringList envGiven then
          {
            value = envGiven;
            problems = concatLists (
              map (e: optional (match "[^=]+=.*" e == null) "env: ${show e} is not KEY=VALUE") envGiven
            );
          }
        else
          let
            m = stringMap "env" envGiven;
          in
          {
            value = map (k: "${k}=${m.value.${k}}") (attrNames m.value);
            problems = m.problems;
          };
      env = envIn.value;
      envProblems = envIn.problems;
      labelsIn = stringMap "labels" (given.labels or null);
      labels = labelsIn.value;
      labelProblems =
        labelsIn.problems
        ++ concatLists (
          map (
            k:
            optional (hasPrefix contract.prefix k) "labels.${k}: is a urunc annotation; urunix writes those labels itself; move it to annotations.${substring (stringLength contract.prefix) 1000 k}"
          ) (attrNames labels)
        );

      workdir = given.workdir or null;
      workdirProblems = optional (
        workdir != null && !(isString workdir && hasPrefix "/" workdir)
      ) "workdir: must be an absolute path inside the guest (got ${show workdir})";

      # The normalized kernel / init: { from; path; } with the defaults filled in.
      normalSource =
        shape: x:
        {
          inherit (shape) from;
          path =
            if shape.from == "local" then
              shape.path
            else if x.origin.kind == "file" then
              x.target
            else
              x.inner;
        };

      created = given.created or "1970-01-01T00:00:01Z";
      createdProblems = optional (
        !(isString created) || created == "now"
      ) "created: must be a fixed RFC 3339 time such as \"1970-01-01T00:00:01Z\"; \"now\" makes builds irreproducible";

      problems =
        topProblems
        ++ nameProblems
        ++ tagProblems
        ++ archProblems
        ++ annotationsIn.problems
        ++ requiredProblems
        ++ valueProblems
        ++ pairProblems
        ++ storageProblems
        ++ kernelProblems
        ++ initProblems'
        ++ rootfsProblems
        ++ fileProblems
        ++ containsProblems
        ++ argvProblems
        ++ initProblems
        ++ envProblems
        ++ labelProblems
        ++ createdProblems
        ++ workdirProblems;
    in
    if problems != [ ] then
      throw (
        "urunix: ${specName}: ${toString (length problems)} problem${
          if length problems == 1 then "" else "s"
        }:\n"
        + concatStringsSep "\n" (map (p: "  ${p}") problems)
      )
    else
      {
        inherit
          name
          tag
          architecture
          annotations
          cmd
          entrypoint
          env
          labels
          files
          created
          workdir
          ;
        rootfs = if rootfs == null then null else R.normalized rootfs;
        kernel = if kernelOk then normalSource kernelShape kernelX else null;
        init = if init == null then null else normalSource initShape initX;
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
