# redis:alpine as a Linux VM on QEMU; urunc hands it the container's own
# rootfs (devmapper snapshot) as a block device.
{
  name = "redis/alpine/linux/qemu";
  tag = "latest";
  rootfs = {
    type = "raw";
    from = "./redis.tar";
  };
  kernel = {
    from = "./linux-kernel-qemu.tar";
    path = "/kernel";
  };
  init = "./urunit";
  annotations = {
    unikernelType = "linux";
    hypervisor = "qemu";
  };
}
