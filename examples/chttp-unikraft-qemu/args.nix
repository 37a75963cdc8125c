{
  name = "urunc/prebuilt/chttp-unikraft-qemu";
  tag = "test";
  files = {
    "./app-elfloader-qemu-x86_64-initrd_qemu-x86_64" = "/unikernel/kernel";
    "./rootfs.cpio" = "/unikernel/rootfs.cpio";
  };
  annotations = {
    unikernelType = "unikraft";
    hypervisor = "qemu";
    binary = "/unikernel/kernel";
    cmdline = "/chttp";
    unikernelVersion = "";
    initrd = "/unikernel/rootfs.cpio";
    block = "";
    blkMntPoint = "";
    useDMBlock = "";
  };
}
