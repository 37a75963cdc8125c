"""Root filesystems for guests: trees (sorted lists of image_writer.Member)
taken from images (rootfs.flatten), and the writers that turn a tree into an
initrd (helpers/cpio.py) or a block image (helpers/ext.py).

Import the module, not a re-exported function (the module and its main
function share the name): `from urunix.rootfs import flatten as F;
F.flatten(path)`."""
