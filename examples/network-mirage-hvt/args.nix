{
name = "urunc/prebuilt/network-mirage-hvt";
tag = "test";
files = {
"./network.hvt" = "/unikernel/network.hvt";
};
annotations = {
unikernelType = "mirage";
hypervisor = "hvt";
binary = "/unikernel/network.hvt";
cmdline = "";
unikernelVersion = "";
initrd = "";
block = "";
blkMntPoint = "";
useDMBlock = "false";
};
}
