# The guest's rootfs, a kernel taken from an image, and a Linux init: the
# Nix mirror of validate.py's storage(), rootfs() and extract(). Same rules,
# same defaults, same annotations, read from the same contract.json.
#
#   rootfs = { type; from; path; include; size; fsType; compression; };
#   kernel = "./vmlinux";   or   { from = "./kernel.tar"; path = "/kernel"; };
#   init   = "./urunit";    or   { from = "./urunit-image.tar"; path = "/urunit"; };
#
# Where a `from` points is decided at evaluation time, without reading any
# file's content (Nix cannot look inside a tar then):
#   "scratch"                   nothing
#   "docker://ref@sha256:..."   a registry image: not supported by the Nix
#                               backend yet (an eval-time error)
#   "oci:./dir", or a directory holding index.json and oci-layout
#                               an OCI layout (an image)
#   another directory           a tree (rootfs only)
#   a file, for `rootfs`        an image archive (docker-archive or
#                               oci-archive): a single plain file is never a
#                               rootfs tree
#   a file, for `kernel`/`init` an image archive when its name ends in
#                               ".tar", else the file itself
# The Python side decides by content; both agree whenever image archives are
# named *.tar and plain kernels/inits are not (`urunix generate` names its
# copies so).
{
  contract,
  util,
  sourcePath,
  pathType,
  pathProblems,
}:
let
  inherit (builtins)
    attrNames
    concatLists
    concatStringsSep
    elem
    filter
    isAttrs
    isList
    isString
    match
    substring
    stringLength
    ;
  inherit (util)
    didYouMean
    hasPrefix
    hasSuffix
    show
    ;
  optional = cond: x: if cond then [ x ] else [ ];

  rootfsFields = [
    "type"
    "from"
    "path"
    "include"
    "size"
    "fsType"
    "compression"
  ];
  sourceFields = [
    "from"
    "path"
  ];
  rootfsTypes = [
    "initrd"
    "block"
    "raw"
  ];

  unknownKeys =
    field: v: allowed:
    map (
      k:
      let
        hint = didYouMean k allowed;
      in
      "${field}.${k}: unknown field in ${field}; allowed: ${concatStringsSep ", " allowed}"
      + (if hint == null then "" else "; ${hint}")
    ) (filter (k: !(elem k allowed)) (attrNames v));

  digestRe = ".*@sha256:[0-9a-f]{64}";
  refRe = "[a-z0-9][a-z0-9._/:-]*";
in
rec {
  # resolve { src; text; field; fileIsImage; } -> { kind; path; from; problems; }
  #
  # kind: scratch | dir | file | image | registry (null when unusable).
  # `path` is the host path (a Nix path) for dir, file and image.
  # `fileIsImage`: true for a rootfs (a file there is always an image
  # archive), false for a kernel or init (then only a name ending in .tar).
  resolve =
    {
      src,
      text,
      field,
      fileIsImage,
    }:
    let
      bad = msg: {
        kind = null;
        path = null;
        from = text;
        problems = [ "${field}: ${msg}" ];
      };
      ok = kind: path: {
        inherit kind path;
        from = text;
        problems = [ ];
      };
      layout = isString text && hasPrefix "oci:" text;
      rel = if layout then substring 4 (stringLength text) text else text;
      p = sourcePath src rel;
      t = pathType p;
      isLayout = d: pathType (d + "/index.json") == "regular" && pathType (d + "/oci-layout") == "regular";
    in
    if !(isString text) || text == "" then
      bad "must name a source (got ${show text}); allowed: \"scratch\", a directory, a file, an image archive, \"oci:./layout\", \"docker://ref@sha256:...\""
    else if text == "scratch" then
      ok "scratch" null
    else if hasPrefix "docker://" text || match digestRe text != null then
      if match digestRe text == null then
        bad "a registry reference must be pinned by digest (got ${show text}); write ${text}@sha256:<digest>, so the build is reproducible"
      else
        bad "a registry image (${show text}) is not supported by the Nix backend yet; save it next to the spec (skopeo copy docker://... docker-archive:./image.tar) and write from = \"./image.tar\"; or build with `urunix build`"
    else if src == null then
      bad "needs `src` (the spec's directory) to find ${show text}"
    else if t == "directory" then
      if isLayout p then
        ok "image" p
      else if layout then
        bad "${show text} is not an OCI layout (no index.json and oci-layout)"
      else
        ok "dir" p
    else if t == "regular" then
      if fileIsImage || layout || hasSuffix ".tar" rel then ok "image" p else ok "file" p
    else if t == "symlink" then
      bad "${show text} is a symbolic link; Nix would copy the link, not what it points to: name the file or directory itself"
    else if t != null then
      bad "${show text} is neither a file nor a directory"
    else if
      !(hasPrefix "." text || hasPrefix "/" text || hasPrefix "~" text)
      && match refRe text != null
      && (util.hasInfix "/" text || util.hasInfix ":" text)
    then
      bad "${show text} names a registry image that is not pinned by digest; pin it (docker://...@sha256:...) or save it locally: docker save ${text} -o image.tar, then from = \"./image.tar\""
    else
      bad "${show text} does not exist (paths are relative to the spec's directory${
        if src == null then "" else ", ${toString src}"
      })";

  # sourceShape field value -> { from; path; problems; }
  # `kernel`/`init`: a bare string is a local file; else { from; path; }.
  sourceShape =
    field: v:
    if isString v then
      {
        from = "local";
        path = v;
        problems = [ ];
      }
    else if isAttrs v then
      {
        from = v.from or "local";
        path = v.path or null;
        problems = unknownKeys field v sourceFields;
      }
    else
      {
        from = "local";
        path = null;
        problems = [
          "${field}: must be a path string or { from = \"./${field}-image.tar\"; path = \"/${field}\"; } (got ${show v})"
        ];
      };

  # extract src field shape default -> { origin; inner; target; problems; } or null origin
  #
  # A kernel or an init: a host file, or one file inside an image.
  # Mirrors validate.py Validator.extract.
  extract =
    src: field: shape: default:
    let
      local = shape.from == "local";
      origin = resolve {
        inherit src;
        text = if local then shape.path else shape.from;
        field = if local then "${field}.path" else "${field}.from";
        fileIsImage = false;
      };
      isImage = elem origin.kind [
        "image"
        "registry"
      ];
      inner = if isImage then (if shape.path == null || local then default else shape.path) else null;
      target =
        if origin.kind != "file" then
          inner
        else if !local && shape.path != null then
          shape.path
        else
          default;
      problems =
        origin.problems
        ++ optional (isImage && !(isString inner && hasPrefix "/" inner)) (
          "${field}.path: must be an absolute path inside the image (got ${show inner})"
        )
        ++ optional (origin.kind != null && !isImage && origin.kind != "file") (
          "${field}.from: must be a file or an image, not a ${origin.kind} (got ${show shape.from}); "
          + "e.g. ${field} = { from = \"./${field}-image.tar\"; path = \"${default}\"; };"
        );
    in
    {
      inherit
        origin
        inner
        problems
        ;
      target = if isString target then target else default;
      ok = problems == [ ];
    };

  # rootfsShape value -> { type; from; path; include; size; fsType; compression; problems; }
  rootfsShape =
    v:
    if !(isAttrs v) then
      {
        type = null;
        from = "scratch";
        path = null;
        include = null;
        size = null;
        fsType = null;
        compression = null;
        problems = [
          "rootfs: must be an attribute set, e.g. rootfs = { type = \"initrd\"; include = { \"./conf\" = \"/conf\"; }; }; (got ${show v})"
        ];
      }
    else
      {
        type = v.type or null;
        from = v.from or "scratch";
        path = v.path or null;
        include = v.include or null;
        size = v.size or null;
        fsType = v.fsType or null;
        compression = v.compression or null;
        problems = unknownKeys "rootfs" v rootfsFields;
      };

  # includeList value -> { value = [ { source; target; field; } ]; problems; }
  # { "./src" = "/dst"; }, [ "src:dst" ... ] (YAML/bunny style), or the
  # normalized [ { source; target; } ].
  includeList =
    v:
    if v == null then
      {
        value = [ ];
        problems = [ ];
      }
    else if isAttrs v then
      {
        value = map (s: {
          source = s;
          target = v.${s};
          field = "rootfs.include.${show s}";
        }) (attrNames v);
        problems = [ ];
      }
    else if isList v then
      let
        indexed = builtins.genList (i: {
          inherit i;
          x = builtins.elemAt v i;
        }) (builtins.length v);
        one =
          { i, x }:
          let
            field = "rootfs.include.${toString i}";
            parts = builtins.match "([^:]*)(:(.*))?" x;
            source = builtins.elemAt parts 0;
            dst = builtins.elemAt parts 2;
          in
          if isAttrs x && x ? source && x ? target then
            {
              value = [
                {
                  inherit (x) source target;
                  inherit field;
                }
              ];
              problems = [ ];
            }
          else if isString x && parts != null && source != "" then
            {
              value = [
                {
                  inherit source field;
                  target = if dst == null || dst == "" then source else dst;
                }
              ];
              problems = [ ];
            }
          else
            {
              value = [ ];
              problems = [ "${field}: an include must be a \"source:target\" string (got ${show x})" ];
            };
        all = map one indexed;
      in
      {
        value = concatLists (map (r: r.value) all);
        problems = concatLists (map (r: r.problems) all);
      }
    else
      {
        value = [ ];
        problems = [ "rootfs.include: must be { \"./src\" = \"/target\"; } (got ${show v})" ];
      };

  # Does the spec ask urunix to build a rootfs? (validate.py storage():
  # not for a bunnyfile's prebuilt "local" one, not for an empty raw one.)
  wanted =
    r:
    r != null
    && !(r.from == "local" || (r.type == "raw" && r.from == "scratch" && (r.include == null || r.include == [ ] || r.include == { })));

  # rootfs { src; r; ann; given; guest; storage; checkEntries; }
  #   -> { build; ann; problems; }
  #
  # `r` is a rootfsShape, `ann` the annotations so far (short names, both
  # synonyms set), `given` the annotations as the user wrote them.
  # `build` = { type; origin; include; target; size; fsType; compression;
  # hardlinks; } or null. Mirrors validate.py Validator.rootfs.
  rootfs =
    {
      src,
      r,
      ann,
      given,
      guest,
      storage,
      checkEntries,
    }:
    let
      rtype =
        if r.type != null then
          r.type
        else if guest == "unikraft" then
          "initrd"
        else
          null;
      typeProblems =
        if rtype == null then
          [
            (
              "rootfs: rootfs.type is needed for a ${toString guest} guest; allowed: initrd, block, raw "
              + "(initrd: a cpio in memory; block: an ext2/ext4 disk image; raw: the image's own rootfs, devmapper)"
            )
          ]
        else if !(isString rtype) || !(elem rtype rootfsTypes) then
          [
            (
              let
                hint = didYouMean rtype rootfsTypes;
              in
              "rootfs.type: ${show rtype} is not a rootfs type; allowed: ${concatStringsSep ", " rootfsTypes}"
              + (if hint == null then "" else "; ${hint}")
            )
          ]
        else
          let
            need = if rtype == "raw" then "devmapper" else rtype;
          in
          optional (storage != null && !(elem need storage)) (
            "rootfs.type: a ${guest} guest cannot boot from ${need} storage (got ${show rtype}); "
            + "storage for ${guest}: ${if storage == [ ] then "none (in-memory)" else concatStringsSep ", " storage}"
          );
      origin = resolve {
        inherit src;
        text = r.from;
        field = "rootfs.from";
        fileIsImage = true;
      };
      inc = includeList r.include;
      entries = checkEntries inc.value;
      isRaw = rtype == "raw";
      isBlock = rtype == "block";
      fsType = if r.fsType == null then "ext2" else r.fsType;
      guestSpec = if isString guest then contract.guests.${guest} or { } else { };
      blockFs = guestSpec.blockFs or null;
      size = if r.size == null then "auto" else toString r.size;
      compression = if r.compression == null then "none" else r.compression;
      default = if isBlock then "/.boot/rootfs.${fsType}" else "/.boot/rootfs";
      target =
        if r.path != null then
          r.path
        else if ann ? ${rtype} then
          ann.${rtype}
        else
          default;
      dmKeys = [
        "useDMBlock"
        "mountRootfs"
      ];
      dmProblems =
        if isRaw then
          concatLists (
            map (
              k:
              optional ((given.${k} or null) == "false") (
                "annotations.${k}: a raw rootfs is the container's own rootfs, handed to the guest by devmapper (got \"false\"); "
                + "remove it: urunix sets it to true for rootfs.type = raw"
              )
            ) dmKeys
          )
        else
          concatLists (
            map (
              k:
              optional ((given.${k} or null) == "true") (
                "annotations.${k}: asks for the devmapper rootfs, but rootfs.type is ${rtype} (got \"true\")"
              )
            ) dmKeys
          );
      kindProblems =
        optional (isBlock && !(elem fsType [
          "ext2"
          "ext4"
        ])) "rootfs.fsType: ${show fsType} is not a filesystem urunix builds; allowed: ext2, ext4"
        ++ optional (
          isBlock && blockFs != null && elem fsType [
            "ext2"
            "ext4"
          ] && !(elem fsType blockFs)
        ) "rootfs.fsType: a ${guest} guest mounts only ${concatStringsSep ", " blockFs} (got ${show fsType})"
        ++ optional (isBlock && (!(isString size) || match "auto|[ ]*[0-9]+[ ]*([KMGTkmgt]([iI]?[bB])?|[bB])?[ ]*" size == null)) (
          "rootfs.size: ${show r.size} is not a size; allowed: \"auto\", bytes, or a number with K, M, G, T or KiB... (powers of 1024) or KB... (powers of 1000), e.g. \"64M\""
        )
        ++ optional (rtype == "initrd" && !(elem compression [
          "none"
          "gzip"
        ])) "rootfs.compression: ${show compression} is not a compression urunix writes; allowed: none, gzip"
        ++ optional (rtype == "initrd" && compression == "gzip" && guest != "linux") (
          "rootfs.compression: a ${toString guest} guest reads only an uncompressed cpio (got \"gzip\")"
        )
        ++ optional (r.size != null && !isBlock) "rootfs.size: applies to block images only (got ${show r.size})"
        ++ optional (ann ? ${rtype} && ann.${rtype} != target) (
          "annotations.${rtype}: ${show ann.${rtype}} disagrees with rootfs.path (${show target}); set only rootfs.path; urunix writes the annotation"
        )
        ++ (if isString target then pathProblems "rootfs.path" target false else [ "rootfs.path: must be a string (got ${show target})" ]);
      early = typeProblems != [ ] || origin.problems != [ ] || origin.kind == "file";
      problems =
        if typeProblems != [ ] then
          typeProblems
        else if origin.problems != [ ] then
          origin.problems
        else
          inc.problems
          ++ entries.problems
          ++ dmProblems
          ++ (if isRaw then [ ] else kindProblems)
          ++ optional (isRaw && origin.kind == "image") (
            "rootfs.from: rootfs.type = \"raw\" from an image (${show r.from}) is not supported by the Nix backend yet; "
            + "use a directory, or build this spec with `urunix build`"
          );
      mnt = guestSpec.blkMntPoint or (if guest == "linux" then "/" else null);
      dm = v: builtins.listToAttrs (map (k: { name = k; value = v; }) dmKeys);
      annOut =
        if early then
          ann
        else if isRaw then
          ann // dm "true"
        else
          ann
          // dm "false"
          // { ${rtype} = target; }
          // (if isBlock && mnt != null && !(ann ? blkMntPoint) then { blkMntPoint = mnt; } else { });
    in
    {
      inherit problems;
      ann = annOut;
      build =
        if early then
          null
        else
          {
            type = rtype;
            inherit origin;
            include = entries.value;
            target = if isRaw then null else target;
            inherit size fsType compression;
            hardlinks = if rtype == "initrd" && guest == "unikraft" then "copy" else "link";
          };
    };

  # The normalized `rootfs` (what normalize returns; normalizing it again
  # gives the same): the resolved type, path and defaults, include as a list.
  normalized =
    b:
    {
      inherit (b) type;
      from = b.origin.from;
      include = map (e: { inherit (e) source target; }) b.include;
    }
    // (if b.type == "raw" then { } else { path = b.target; })
    // (
      if b.type == "block" then
        {
          inherit (b) size fsType;
        }
      else
        { }
    )
    // (if b.type == "initrd" then { inherit (b) compression; } else { });
}
