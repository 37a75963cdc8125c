# traefik/whoami as a Linux VM on Firecracker, its rootfs an initrd.
#   docker save traefik/whoami -o whoami.tar
#   docker save harbor.nbfc.io/nubificus/urunc/linux-kernel-firecracker:v6.14 -o linux-kernel-firecracker.tar
#   curl -Lo urunit https://github.com/nubificus/urunit/releases/download/v0.1.0/urunit_x86_64
{
  name = "whoami/linux/firecracker";
  tag = "initrd";
  rootfs = {
    type = "initrd";
    from = "./whoami.tar";
  };
  kernel = {
    from = "./linux-kernel-firecracker.tar";
    path = "/kernel";
  };
  init = "./urunit";
  annotations = {
    unikernelType = "linux";
    hypervisor = "firecracker";
  };
}
