# nginx:alpine as a Linux VM on Firecracker, its rootfs an ext2 block image.
{
  name = "nginx/linux/firecracker";
  tag = "block";
  rootfs = {
    type = "block";
    from = "./nginx.tar";
    fsType = "ext2";
    size = "auto";
  };
  kernel = {
    from = "./linux-kernel-firecracker.tar";
    path = "/kernel";
  };
  init = "./urunit";
  cmd = [ "/usr/sbin/nginx" "-g" "daemon off;error_log stderr debug;" ];
  annotations = {
    unikernelType = "linux";
    hypervisor = "firecracker";
  };
}
