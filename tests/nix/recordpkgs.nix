# A recording stand-in for nixpkgs: dockerTools.buildImage returns its
# arguments as data, so tests can assert what urunix hands to dockerTools
# without building anything.
{
  system ? "x86_64-linux",
}:
{
  inherit system;
  stdenv.hostPlatform.system = system;
  python3 = "/recorded/python3";
  e2fsprogs = "/recorded/e2fsprogs";
  dockerTools.buildImage = args: args // { recordedBuildImage = true; };
}
