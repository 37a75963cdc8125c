{
  name = "urunc/prebuilt/redis-rumprun-hvt";
  tag = "test";
  files = {
    "./redis.hvt" = "/unikernel/redis.hvt";
  };
  # The docs' args.nix set useDMBlock = "true" (the container's own rootfs,
  # a devmapper snapshot, as Rumprun's block device). urunc v0.6.0+ refuse
  # or break that under any other snapshotter, so this example builds the
  # block image itself: Rumprun mounts it at /data on every urunc release.
  rootfs = {
    type = "block";
    include = {
      "./redis.conf" = "/conf/redis.conf";
    };
  };
  annotations = {
    unikernelType = "rumprun";
    hypervisor = "hvt";
    binary = "/unikernel/redis.hvt";
    cmdline = "hello";
    unikernelVersion = "";
    initrd = "";
    blkMntPoint = "";
  };
}
