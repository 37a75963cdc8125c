"""validate.py's rootfs, kernel and init checks (Validator.storage, .rootfs,
.extract): what each guest may boot from, the defaults urunix fills in, and
the exact message, value, allowed and hint of every refusal. Table-driven;
mutation testing (tests/mutate) judges these checks by this file."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from urunix.errors import _UNSET, SpecError
from urunix.spec import FileEntry, Rootfs, Source, Spec
from urunix.validate import SIZE_FORMS, validate

GUESTS = {
    "unikraft": ("unikraft", "qemu"),
    "rumprun": ("rumprun", "hvt"),
    "linux": ("linux", "qemu"),
    "mewz": ("mewz", "qemu"),
    "mirage": ("mirage", "hvt"),
}
TYPE_HINT = "initrd: a cpio in memory; block: an ext2/ext4 disk image; raw: the image's own rootfs (devmapper)"


def image_tar(path: Path) -> None:
    """The smallest docker-archive sources.resolve takes for an image."""
    with tarfile.open(path, "w") as t:
        data = b"[]"
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))


def make(tmp_path: Path, guest: str, ann: dict | None = None, fmt: str = "args.nix", binary: bool = True, **kw) -> Spec:
    """A spec for `guest` with a kernel at /unikernel/kernel (unless
    binary=False), a directory ./tree, a plain file ./blob and an image
    archive ./img.tar beside it."""
    (tmp_path / "kernel").write_bytes(b"\x7fELF")
    (tmp_path / "tree").mkdir(exist_ok=True)
    (tmp_path / "tree" / "app").write_bytes(b"app")
    (tmp_path / "blob").write_bytes(b"blob")
    image_tar(tmp_path / "img.tar")
    kind, monitor = GUESTS[guest]
    files = [FileEntry("./kernel", tmp_path / "kernel", "/unikernel/kernel", 'files."./kernel"')] if binary else []
    base = {"unikernelType": kind, "hypervisor": monitor} | ({"binary": "/unikernel/kernel"} if binary else {})
    if guest == "linux":
        kw.setdefault("cmd", ["/sbin/init"])
    return Spec(file=tmp_path / "spec", format=fmt, name="t/x", tag="latest", files=files, annotations=base | (ann or {}), **kw)


def refused(spec: Spec) -> list[tuple]:
    with pytest.raises(SpecError) as e:
        validate(spec)
    return [(p.field, p.message, p.value, p.allowed, p.hint) for p in e.value.problems]


def problem(field: str, message: str, value=_UNSET, allowed=None, hint=None) -> tuple:
    return (field, message, value, allowed, hint)


# -- what is built: the defaults and what the spec sets -------------------------


@pytest.mark.parametrize(
    "guest,rootfs,want,ann",
    [
        pytest.param(
            "unikraft",
            Rootfs(origin="./tree"),
            {"type": "initrd", "target": "/.boot/rootfs", "compression": "none", "hardlinks": "copy", "size": "auto"},
            {"initrd": "/.boot/rootfs", "useDMBlock": "false", "mountRootfs": "false"},
            id="unikraft-default-initrd-copies-hardlinks",
        ),
        pytest.param(
            "linux",
            Rootfs(type="initrd", origin="./tree", compression="gzip"),
            {"type": "initrd", "target": "/.boot/rootfs", "compression": "gzip", "hardlinks": "link"},
            {"initrd": "/.boot/rootfs", "useDMBlock": "false", "mountRootfs": "false"},
            id="linux-gzip-initrd",
        ),
        pytest.param(
            "rumprun",
            Rootfs(type="block", origin="./tree"),
            {"type": "block", "target": "/.boot/rootfs.ext2", "fs_type": "ext2", "size": "auto", "compression": "none"},
            {"block": "/.boot/rootfs.ext2", "blkMntPoint": "/data", "useDMBlock": "false", "mountRootfs": "false"},
            id="rumprun-block-defaults",
        ),
        pytest.param(
            "linux",
            Rootfs(type="block", origin="./tree", fs_type="ext4", size="64M", path="/boot/disk"),
            {"type": "block", "target": "/boot/disk", "fs_type": "ext4", "size": "64M"},
            {"block": "/boot/disk", "blkMntPoint": "/", "useDMBlock": "false", "mountRootfs": "false"},
            id="linux-block-as-written",
        ),
        pytest.param(
            "linux",
            Rootfs(type="block", origin="scratch", fs_type="ext4"),
            {"type": "block", "target": "/.boot/rootfs.ext4", "fs_type": "ext4"},
            {"block": "/.boot/rootfs.ext4", "blkMntPoint": "/"},
            id="block-default-path-names-the-fs",
        ),
        pytest.param(
            "mirage",
            Rootfs(type="block", origin="./tree", size=1048576),
            {"type": "block", "size": "1048576", "fs_type": "ext2"},
            {"block": "/.boot/rootfs.ext2", "blkMntPoint": "/"},
            id="mirage-block-size-in-bytes",
        ),
        pytest.param(
            "linux",
            Rootfs(type="raw", origin="./tree"),
            {"type": "raw", "target": None},
            {"useDMBlock": "true", "mountRootfs": "true"},
            id="raw-is-devmapper",
        ),
        pytest.param(
            "unikraft",
            Rootfs(type="initrd", origin="./tree", path="/boot/initrd"),
            {"type": "initrd", "target": "/boot/initrd"},
            {"initrd": "/boot/initrd"},
            id="initrd-path",
        ),
        pytest.param(
            "unikraft",
            Rootfs(type="initrd", origin="./tree"),
            {"type": "initrd", "target": "/boot/initrd"},
            {"initrd": "/boot/initrd"},
            id="initrd-path-from-the-annotation",
        ),
    ],
)
def test_rootfs_built(tmp_path, guest, rootfs, want, ann):
    given = {"initrd": "/boot/initrd"} if rootfs.path is None and want.get("target") == "/boot/initrd" else None
    img, _ = validate(make(tmp_path, guest, given, rootfs=rootfs))
    assert img.rootfs is not None
    assert {k: getattr(img.rootfs, k) for k in want} == want
    assert img.rootfs.field == "rootfs" and img.rootfs.origin.kind == ("dir" if rootfs.origin == "./tree" else "scratch")
    assert {k: img.annotations.get(k) for k in ann} == ann


# -- what is refused -----------------------------------------------------------

PREBUILT = {
    "initrd": 'copy the prebuilt initrd into the image (add it to files: files."./rootfs" = "/.boot/rootfs";) '
    'and point at it: annotations.initrd = "/.boot/rootfs";',
    "block": 'copy the prebuilt block into the image (add it to files: files."./rootfs" = "/.boot/rootfs";) '
    'and point at it: annotations.block = "/.boot/rootfs";',
}


@pytest.mark.parametrize(
    "guest,rootfs,ann,want",
    [
        pytest.param(
            "rumprun",
            Rootfs(origin="./tree"),
            {},
            [problem("rootfs", "rootfs.type is needed for a rumprun guest", allowed="initrd, block, raw", hint=TYPE_HINT)],
            id="no-default-type",
        ),
        pytest.param(
            "unikraft",
            Rootfs(type="initrdd", origin="./tree"),
            {},
            [problem("rootfs.type", "is not a rootfs type", "initrdd", "initrd, block, raw", 'did you mean "initrd"?')],
            id="unknown-type",
        ),
        pytest.param(
            "rumprun",
            Rootfs(type="initrd", origin="./tree"),
            {},
            [
                problem(
                    "rootfs.type",
                    "a rumprun guest cannot boot from initrd storage",
                    "initrd",
                    "storage for rumprun: block, devmapper",
                )
            ],
            id="storage-of-the-guest",
        ),
        pytest.param(
            "unikraft",
            Rootfs(type="raw", origin="./tree"),
            {},
            [
                problem(
                    "rootfs.type", "a unikraft guest cannot boot from devmapper storage", "raw", "storage for unikraft: initrd"
                )
            ],
            id="raw-needs-devmapper",
        ),
        pytest.param(
            "mewz",
            Rootfs(type="block", origin="./tree"),
            {},
            [
                problem(
                    "rootfs.type", "a mewz guest cannot boot from block storage", "block", "storage for mewz: none (in-memory)"
                )
            ],
            id="in-memory-guest",
        ),
        pytest.param(
            "unikraft",
            Rootfs(type="initrd", origin="./blob"),
            {},
            [problem("rootfs.from", "a single file is not a rootfs tree", "./blob", hint=PREBUILT["initrd"])],
            id="file-is-no-tree-initrd",
        ),
        pytest.param(
            "rumprun",
            Rootfs(type="block", origin="./blob"),
            {},
            [problem("rootfs.from", "a single file is not a rootfs tree", "./blob", hint=PREBUILT["block"])],
            id="file-is-no-tree-block",
        ),
        pytest.param(
            "linux",
            Rootfs(type="raw", origin="./tree"),
            {"useDMBlock": "false"},
            [
                problem(
                    "annotations.useDMBlock",
                    "a raw rootfs is the container's own rootfs, handed to the guest by devmapper",
                    "false",
                    hint="remove it: urunix sets it to true for rootfs.type = raw",
                )
            ],
            id="raw-with-devmapper-off",
        ),
        pytest.param(
            "unikraft",
            Rootfs(type="initrd", origin="./tree"),
            {"mountRootfs": "true"},
            [problem("annotations.mountRootfs", "asks for the devmapper rootfs, but rootfs.type is initrd", "true")],
            id="initrd-with-devmapper-on",
        ),
        pytest.param(
            "rumprun",
            Rootfs(type="block", origin="./tree", fs_type="xfs"),
            {},
            [problem("rootfs.fsType", "is not a filesystem urunix builds", "xfs", "ext2, ext4")],
            id="unknown-fs-said-once",
        ),
        pytest.param(
            "rumprun",
            Rootfs(type="block", origin="./tree", fs_type="ext4"),
            {},
            [problem("rootfs.fsType", "a rumprun guest mounts only ext2", "ext4")],
            id="fs-of-the-guest",
        ),
        pytest.param(
            "linux",
            Rootfs(type="block", origin="./tree", size="lots"),
            {},
            [problem("rootfs.size", "is not a size", "lots", SIZE_FORMS)],
            id="bad-size",
        ),
        pytest.param(
            "linux",
            Rootfs(type="initrd", origin="./tree", compression="zstd"),
            {},
            [problem("rootfs.compression", "is not a compression urunix writes", "zstd", "none, gzip")],
            id="unknown-compression",
        ),
        pytest.param(
            "unikraft",
            Rootfs(type="initrd", origin="./tree", compression="gzip"),
            {},
            [problem("rootfs.compression", "a unikraft guest reads only an uncompressed cpio", "gzip")],
            id="gzip-for-a-unikernel",
        ),
        pytest.param(
            "unikraft",
            Rootfs(type="initrd", origin="./tree", size="1M"),
            {},
            [problem("rootfs.size", "applies to block images only", "1M")],
            id="size-of-an-initrd",
        ),
        pytest.param(
            "unikraft",
            Rootfs(type="initrd", origin="./tree", path="/boot/x"),
            {"initrd": "/other"},
            [
                problem(
                    "annotations.initrd",
                    "disagrees with rootfs.path ('/boot/x')",
                    "/other",
                    hint="set only rootfs.path; urunix writes the annotation",
                )
            ],
            id="path-and-annotation-disagree",
        ),
        pytest.param(
            "unikraft",
            Rootfs(type="initrd", origin="./tree", path="boot/x"),
            {},
            [problem("rootfs.path", "must be absolute; urunc refuses such a path", "boot/x")],
            id="relative-path",
        ),
        pytest.param(
            "unikraft",
            Rootfs(type="initrd", origin="./tree", path="/boot//x"),
            {},
            [problem("rootfs.path", "is not clean (urunc wants '/boot/x'); urunc refuses such a path", "/boot//x")],
            id="unclean-path",
        ),
    ],
)
def test_rootfs_refused(tmp_path, guest, rootfs, ann, want):
    assert refused(make(tmp_path, guest, ann, rootfs=rootfs)) == want


def test_rootfs_problems_all_in_one_run(tmp_path):
    """A bad `from` does not hide the other fields' problems."""
    s = make(tmp_path, "unikraft", rootfs=Rootfs(type="initrd", origin="./blob", compression="zstd", size="1M"))
    assert [p[:2] for p in refused(s)] == [
        ("rootfs.from", "a single file is not a rootfs tree"),
        ("rootfs.compression", "is not a compression urunix writes"),
        ("rootfs.size", "applies to block images only"),
    ]


@pytest.mark.parametrize("lines,field", [({}, "rootfs"), ({"rootfs.from": 3}, "rootfs.from")])
def test_rootfs_from_is_named_where_the_user_wrote_it(tmp_path, lines, field):
    s = make(tmp_path, "unikraft", rootfs=Rootfs(type="initrd", origin="./nothere"), lines=lines)
    ((f, message, value, _, _),) = refused(s)
    assert (f, message, value) == (field, "does not exist", "./nothere")


def test_prebuilt_hint_in_a_bunnyfile(tmp_path):
    s = make(tmp_path, "unikraft", fmt="bunnyfile", rootfs=Rootfs(type="initrd", origin="./blob"))
    (p,) = refused(s)
    assert p == (
        "rootfs.from",
        "a single file is not a rootfs tree",
        "./blob",
        None,
        "a prebuilt initrd or block image is from: local with path: FILE",
    )


@pytest.mark.parametrize(
    "guest,rootfs,ann",
    [
        ("linux", Rootfs(type="initrd", origin="local", path="./blob"), {"useDMBlock": "false", "mountRootfs": "false"}),
        ("linux", Rootfs(type="raw", origin="scratch"), {"useDMBlock": None, "mountRootfs": None}),
        ("unikraft", Rootfs(type="initrd", origin="local", path="./blob"), {"useDMBlock": None, "mountRootfs": None}),
    ],
)
def test_rootfs_urunix_does_not_build(tmp_path, guest, rootfs, ann):
    """A local (prebuilt) rootfs, or a raw one from scratch: nothing to build;
    a Linux guest's snapshot settings are still written (off) for a prebuilt one."""
    img, _ = validate(make(tmp_path, guest, rootfs=rootfs))
    assert img.rootfs is None
    assert {k: img.annotations.get(k) for k in ann} == ann


@pytest.mark.parametrize("include", [False, True])
def test_base_rootfs_is_an_image_tree(tmp_path, include):
    """A Containerfile's FROM: the base's tree under ours, so a binary that
    is only in the base is not reported missing."""
    (tmp_path / "conf").write_bytes(b"c")
    entries = [FileEntry("./conf", tmp_path / "conf", "/etc/conf", "COPY")] if include else []
    s = make(
        tmp_path, "rumprun", {"binary": "/bin/app"}, binary=False, rootfs=Rootfs(type="base", origin="./img.tar", include=entries)
    )
    img, _ = validate(s)
    assert img.rootfs is not None and (img.rootfs.type, img.rootfs.origin.kind, img.rootfs.field) == ("raw", "image", "rootfs")
    assert [(f.target, f.field) for f in img.rootfs.include] == ([("/etc/conf", "COPY")] if include else [])


def test_base_rootfs_that_does_not_exist(tmp_path):
    s = make(tmp_path, "rumprun", rootfs=Rootfs(type="base", origin="./nothere"))
    assert [p[:3] for p in refused(s)] == [("rootfs", "does not exist", "./nothere")]


# -- kernel and init -------------------------------------------------------------


@pytest.mark.parametrize(
    "kernel,binary,want",
    [
        pytest.param(Source("local", "./kernel", "kernel"), None, ("file", None, "/kernel"), id="local-default-target"),
        pytest.param(Source("local", "./kernel", "kernel"), "/boot/k", ("file", None, "/boot/k"), id="local-at-the-binary"),
        pytest.param(
            Source("local", "./kernel", "kernel", target="/.boot/kernel"),
            None,
            ("file", None, "/.boot/kernel"),
            id="local-target",
        ),
        pytest.param(Source("./img.tar", None, "kernel"), None, ("image", "/kernel", "/kernel"), id="image-default-path"),
        pytest.param(
            Source("./img.tar", "/boot/vmlinuz", "kernel"), None, ("image", "/boot/vmlinuz", "/boot/vmlinuz"), id="image-path"
        ),
        pytest.param(Source("./blob", "/k", "kernel"), None, ("file", "/k", "/k"), id="file-from-with-path"),
        pytest.param(Source("./blob", None, "kernel"), None, ("file", None, "/kernel"), id="file-from"),
    ],
)
def test_kernel_extracted(tmp_path, kernel, binary, want):
    s = make(tmp_path, "rumprun", {"binary": binary} if binary else {}, binary=False, kernel=kernel)
    img, _ = validate(s)
    assert img.kernel is not None
    assert (img.kernel.origin.kind, img.kernel.inner, img.kernel.target, img.kernel.field) == (*want, "kernel")
    assert img.annotations["binary"] == want[2]


def test_bunnyfile_local_kernel_already_in_files(tmp_path):
    s = make(tmp_path, "rumprun", kernel=Source("local", "./kernel", "kernel", target="/unikernel/kernel"))
    img, _ = validate(s)
    assert img.kernel is None and [f.target for f in img.files] == ["/unikernel/kernel"]


@pytest.mark.parametrize(
    "kernel,want",
    [
        pytest.param(
            Source("./img.tar", "boot/vmlinuz", ""),
            [problem("kernel.path", "must be an absolute path inside the image", "boot/vmlinuz")],
            id="relative-inner-path",
        ),
        pytest.param(
            Source("./tree", None, "kernel"),
            [
                problem(
                    "kernel.from",
                    "must be a file or an image, not a dir",
                    "./tree",
                    hint='e.g. kernel.from = "./kernel-image.tar";',
                )
            ],
            id="dir-is-no-kernel",
        ),
        pytest.param(
            Source("./blob", "/boot//k", "kernel"),
            [problem("kernel.path", "is not clean (urunc wants '/boot/k'); urunc refuses such a binary path", "/boot//k")],
            id="unclean-target",
        ),
    ],
)
def test_kernel_refused(tmp_path, kernel, want):
    assert refused(make(tmp_path, "rumprun", binary=False, kernel=kernel)) == want


@pytest.mark.parametrize("binary", [None, "/unikernel/kernel"])
def test_kernel_that_does_not_exist_is_said_once(tmp_path, binary):
    """Its `from` is wrong: no "binary is missing" or "not in the image" on top."""
    s = make(tmp_path, "rumprun", {"binary": binary} if binary else {}, binary=False, kernel=Source("./nothere", None, "kernel"))
    assert [p[:3] for p in refused(s)] == [("kernel.from", "does not exist", "./nothere")]


@pytest.mark.parametrize("guest", ["rumprun", "linux"])
def test_init_only_for_linux(tmp_path, guest):
    (tmp_path / "urunit").write_bytes(b"\x7fELF")
    s = make(tmp_path, guest, init=Source("local", "./urunit", "init"))
    if guest == "linux":
        img, _ = validate(s)
        assert img.init is not None and (img.init.origin.kind, img.init.target) == ("file", "/urunit")
        return
    assert refused(s) == [
        problem(
            "init",
            "only Linux guests run an init; a rumprun guest is the application itself",
            hint='remove init, or set annotations.unikernelType = "linux";',
        )
    ]
