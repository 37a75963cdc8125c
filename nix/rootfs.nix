# The guest's rootfs, a kernel taken from an image, and a Linux init, as
# evaluation needs them: where each `from` points, the defaults, and the
# annotations they imply (validate.py storage(), rootfs(), extract()). The
# metadata derivation checks the result against Python's own plan.
#
#   rootfs = { type; from; path; include; size; fsType; compression; };
#   kernel = "./vmlinux";   or   { from = "./kernel.tar"; path = "/kernel"; };
#   init   = "./urunit";    or   { from = "./urunit-image.tar"; path = "/urunit"; };
#
# Where a `from` points is decided without reading any file's content (Nix
# cannot look inside a tar then): "scratch"; an OCI layout ("oci:./dir", or a
# directory holding index.json and oci-layout); another directory (a tree);
# a file, which for `rootfs` is an image archive and for `kernel`/`init` one
# when its name ends in ".tar". The Python side decides by content; a
# disagreement fails the build (nix_check.py compares the two plans).
{
  contract,
  sourcePath,
  pathType,
}:
let
  inherit (builtins)
    attrNames
    isAttrs
    isList
    isString
    match
    substring
    stringLength
    ;
  util = import ./util.nix;
  inherit (util) hasPrefix hasSuffix;
in
rec {
  # resolve { src; text; fileIsImage; } -> { kind; path; from; }
  #
  # kind: scratch | dir | file | image, or null when it names nothing usable
  # (the validator says why). A registry image is a limit of the Nix backend
  # (`limit`, reported by the check); a symbolic link is refused here.
  resolve =
    {
      src,
      text,
      fileIsImage,
    }:
    let
      it = kind: path: {
        inherit kind path;
        from = text;
      };
      layout = isString text && hasPrefix "oci:" text;
      rel = if layout then substring 4 (stringLength text) text else text;
      p = sourcePath src rel;
      t = pathType p;
      isLayout = d: pathType (d + "/index.json") == "regular" && pathType (d + "/oci-layout") == "regular";
    in
    if !(isString text) || text == "" then
      it null null
    else if text == "scratch" then
      it "scratch" null
    else if hasPrefix "docker://" text || match ".*@sha256:[0-9a-f]{64}" text != null then
      if match ".*@sha256:[0-9a-f]{64}" text == null then
        it null null
      else
        it null null
        // {
          limit = "a registry image (${text}) is not supported by the Nix backend yet; save it next to the spec (skopeo copy docker://... docker-archive:./image.tar) and write from = \"./image.tar\"; or build with `urunix build`";
        }
    else if src == null then
      it null null
    else if t == "directory" then
      if isLayout p then
        it "image" p
      else if layout then
        it null p
      else
        it "dir" p
    else if t == "regular" then
      if fileIsImage || layout || hasSuffix ".tar" rel then it "image" p else it "file" p
    else if t == "symlink" then
      throw "urunix: ${text} is a symbolic link; Nix would copy the link, not what it points to: name the file or directory itself"
    else
      it null null;

  # sourceShape value -> { from; path; }
  # `kernel`/`init`: a bare string is a local file; else { from; path; }.
  sourceShape =
    v:
    if isAttrs v then
      {
        from = v.from or "local";
        path = v.path or null;
      }
    else
      {
        from = "local";
        path = v;
      };

  # extract src shape default -> { origin; inner; target; ok; }
  # A kernel or an init: a host file, or one file inside an image.
  extract =
    src: shape: default:
    let
      local = shape.from == "local";
      origin = resolve {
        inherit src;
        text = if local then shape.path else shape.from;
        fileIsImage = false;
      };
      isImage = origin.kind == "image";
      inner = if isImage then (if shape.path == null || local then default else shape.path) else null;
      target =
        if origin.kind != "file" then
          inner
        else if !local && shape.path != null then
          shape.path
        else
          default;
    in
    {
      inherit origin inner;
      target = if isString target then target else default;
      ok = (origin.kind == "file" || isImage) && (!isImage || (isString inner && hasPrefix "/" inner));
    };

  # rootfsShape attrset -> { type; from; path; include; size; fsType; compression; }
  rootfsShape = v: {
    type = v.type or null;
    from = v.from or "scratch";
    path = v.path or null;
    include = v.include or null;
    size = v.size or null;
    fsType = v.fsType or null;
    compression = v.compression or null;
  };

  # includeList value -> [ { source; target; } ]
  # { "./src" = "/dst"; }, [ "src:dst" ... ] (YAML/bunny style), or the
  # normalized [ { source; target; } ]. What is not a string is left out.
  includeList =
    v:
    let
      one =
        x:
        let
          parts = match "([^:]*)(:(.*))?" x;
          source = builtins.elemAt parts 0;
          dst = builtins.elemAt parts 2;
        in
        if isAttrs x then
          [
            {
              source = x.source or null;
              target = x.target or null;
            }
          ]
        else if isString x && parts != null && source != "" then
          [
            {
              inherit source;
              target = if dst == null || dst == "" then source else dst;
            }
          ]
        else
          [ ];
      all =
        if isAttrs v then
          map (s: {
            source = s;
            target = v.${s};
          }) (attrNames v)
        else if isList v then
          builtins.concatMap one v
        else
          [ ];
    in
    builtins.filter (e: isString e.source && isString e.target && hasPrefix "/" e.target) all;

  # Does the spec ask urunix to build a rootfs? (validate.py storage():
  # not for a bunnyfile's prebuilt "local" one, not for an empty raw one.)
  wanted =
    r:
    !(r.from == "local" || (r.type == "raw" && r.from == "scratch" && (r.include == null || r.include == [ ] || r.include == { })));

  # rootfs { src; r; ann; guest; clean; } -> { build; ann; origin; }
  #
  # `r` is a rootfsShape, `ann` the annotations so far (short names, both
  # synonyms set). `build` = { type; origin; include; target; size; fsType;
  # compression; hardlinks; }, or null when there is nothing to build from
  # (the validator refuses the spec then). A type or storage urunc refuses is
  # planned all the same: the check fails before anything is built.
  rootfs =
    {
      src,
      r,
      ann,
      guest,
      clean,
    }:
    let
      d = contract.defaults;
      g = toString guest;
      rtype = if r.type != null then r.type else d.rootfsType.${g} or null;
      origin = resolve {
        inherit src;
        text = r.from;
        fileIsImage = true;
      };
      isBlock = rtype == "block";
      fsType = if r.fsType == null then d.fsType else r.fsType;
      default =
        if isBlock then builtins.replaceStrings [ "{fsType}" ] [ (toString fsType) ] d.blockPath else d.initrdPath;
      target = if r.path != null then r.path else ann.${rtype} or default;
      mnt = contract.guests.${g}.blkMntPoint or null;
      dm = v: {
        useDMBlock = v;
        mountRootfs = v;
      };
    in
    if !(isString rtype) || origin.kind == null || origin.kind == "file" then
      {
        build = null;
        inherit ann origin;
      }
    else
      {
        inherit origin;
        ann =
          if rtype == "raw" then
            ann // dm "true"
          else
            ann
            // dm "false"
            // { ${rtype} = target; }
            // (if isBlock && mnt != null && !(ann ? blkMntPoint) then { blkMntPoint = mnt; } else { });
        build = {
          type = rtype;
          inherit origin fsType;
          include = map (e: e // { target = clean e.target; }) (includeList r.include);
          target = if rtype == "raw" then null else target;
          size = if r.size == null then d.size else toString r.size;
          compression = if r.compression == null then d.compression else r.compression;
          hardlinks = if rtype == "initrd" then d.cpioHardlinks.${g} or "link" else "link";
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
    // (if b.type == "block" then { inherit (b) size fsType; } else { })
    // (if b.type == "initrd" then { inherit (b) compression; } else { });
}
