# Small string helpers, written with builtins only (no nixpkgs `lib`), so the
# library evaluates the same on Nix 2.8 and on current Nix.
let
  inherit (builtins)
    concatStringsSep
    filter
    genList
    head
    isString
    length
    split
    stringLength
    substring
    ;

  # A UTF-8 string from a JSON escape, so this file stays plain ASCII.
  u = code: builtins.fromJSON "\"\\u${code}\"";
in
rec {
  # The characters (bytes) of a string, as a list of one-byte strings.
  chars = s: genList (i: substring i 1 s) (stringLength s);

  # Characters Go's unicode.IsSpace accepts; strings.Fields splits on runs of
  # them. (urunc v0.5 splits the cmdline annotation this way.)
  goSpaces = [
    " "
    "\t"
    "\n"
    "\r"
    (u "000b")
    (u "000c")
    (u "0085")
    (u "00a0")
    (u "1680")
    (u "2000")
    (u "2001")
    (u "2002")
    (u "2003")
    (u "2004")
    (u "2005")
    (u "2006")
    (u "2007")
    (u "2008")
    (u "2009")
    (u "200a")
    (u "2028")
    (u "2029")
    (u "202f")
    (u "205f")
    (u "3000")
  ];

  # Go's strings.Fields: split on runs of white space, drop empty fields.
  fields =
    s:
    filter (x: isString x && x != "") (split "(${concatStringsSep "|" goSpaces})+" s);

  # True when `s` contains `needle`.
  hasInfix = needle: s: length (split (escapeRegex needle) s) > 1;

  # Quote every regex metacharacter of a literal string.
  escapeRegex =
    s:
    concatStringsSep "" (
      map (
        c:
        if builtins.match "[].[*+?(){}|^$\\\\]" c != null then "\\${c}" else c
      ) (chars s)
    );

  # ASCII lower case.
  toLower = builtins.replaceStrings (chars "ABCDEFGHIJKLMNOPQRSTUVWXYZ") (chars "abcdefghijklmnopqrstuvwxyz");

  # Strip leading and trailing white space (the characters in goSpaces),
  # like Python's str.strip().
  strip =
    s:
    let
      lead = filter (sp: hasPrefix sp s) goSpaces;
      trail = filter (sp: hasSuffix sp s) goSpaces;
      n = stringLength s;
    in
    if lead != [ ] then
      strip (substring (stringLength (head lead)) n s)
    else if trail != [ ] then
      strip (substring 0 (n - stringLength (head trail)) s)
    else
      s;

  hasPrefix = p: s: substring 0 (stringLength p) s == p;
  hasSuffix =
    p: s:
    let
      ls = stringLength s;
      lp = stringLength p;
    in
    lp <= ls && substring (ls - lp) lp s == p;

  # The pieces of `s` between occurrences of the literal `sep`.
  splitOn = sep: s: filter isString (split (escapeRegex sep) s);

  # A name Nix accepts for a store path, derived from a file's base name:
  # characters outside [A-Za-z0-9+._?=-] become "_", a leading "." becomes
  # "_", and an empty name becomes "file".
  safeName =
    s:
    let
      base = baseNameOf s;
      mapped = concatStringsSep "" (
        map (c: if builtins.match "[A-Za-z0-9+._?=-]" c != null then c else "_") (chars base)
      );
      noDot = if hasPrefix "." mapped then "_" + substring 1 (stringLength mapped) mapped else mapped;
      short = substring 0 200 noDot;
    in
    if short == "" then "file" else short;
}
