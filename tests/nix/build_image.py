"""The two build steps of tests/nix/testpkgs.nix `dockerTools.buildImage`.

Written by us from nixpkgs' documented behaviour and from reading its
pkgs/build-support/docker/default.nix (24.05-25.05) as reference: every step
that can change an image is done the same way, with the host's GNU tar for
the archives, so a test sees what a user of the real function gets.

    python3 build_image.py layer   (derivation "docker-layer-NAME")
      copy each copyToRoot path into layer/ like `rsync -ak --chown=0:0`
      (symlinks to directories become directories), `chmod ug+w layer`, run
      extraCommands in layer/ with bash, then
      `tar --sort=name --mtime=@$SOURCE_DATE_EPOCH --owner=0 --group=0 .`
      (a `./` entry, user and group name root, mtime 1980-01-01).
    python3 build_image.py image   (derivation "docker-image-NAME.tar[.gz]")
      unpack fromImage, keep its layers and its config's Env only, append the
      runtime closure of the layer derivation (exportReferencesGraph) to the
      layer, write config = baseJson with Env = base Env + config.Env (so an
      absent Env becomes []), one history entry per layer, manifest.json and
      repositories, and compress the archive (gz, zstd or none).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys

HOST_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"


def tar(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["tar", *args], check=True, **kw)


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def rsync_ak(src: str, dst: str) -> None:
    """`rsync -ak --chown=0:0 SRC/ DST/`: merge SRC's contents into DST,
    keeping modes and symlinks; a symlink to a directory is copied as the
    directory it points to (-k, keepContentsDirlinks = false)."""
    os.makedirs(dst, exist_ok=True)
    for name in sorted(os.listdir(src)):
        s, d = os.path.join(src, name), os.path.join(dst, name)
        if os.path.isdir(s):  # follows symlinks, as -k does
            if os.path.lexists(d) and not os.path.isdir(d):
                os.unlink(d)
            os.makedirs(d, exist_ok=True)
            rsync_ak(s, d)
            continue
        if os.path.lexists(d):
            if os.path.isdir(d) and not os.path.islink(d):
                shutil.rmtree(d)
            else:
                os.unlink(d)
        if os.path.islink(s):
            os.symlink(os.readlink(s), d)
        else:
            shutil.copyfile(s, d)
            os.chmod(d, stat.S_IMODE(os.stat(s).st_mode))
    # the directory's own mode last, as rsync sets it: a read-only source
    # directory (a store path) must not stop its contents being copied in
    # where the builder has no CAP_DAC_OVERRIDE (the sandbox)
    os.chmod(dst, stat.S_IMODE(os.stat(src).st_mode))


def layer() -> int:
    args = json.load(open(os.environ["stepArgsPath"], encoding="utf-8"))
    os.mkdir("layer")
    for item in args["copyToRoot"]:
        rsync_ak(item, "layer")
    os.chmod("layer", stat.S_IMODE(os.stat("layer").st_mode) | 0o660)  # chmod ug+w layer
    if args["extraCommands"]:
        subprocess.run(["bash", "-c", args["extraCommands"]], cwd="layer", check=True)
    out = os.environ["out"]
    os.mkdir(out)
    epoch = os.environ["SOURCE_DATE_EPOCH"]
    tar(
        "-C",
        "layer",
        "--hard-dereference",
        "--sort=name",
        f"--mtime=@{epoch}",
        "--owner=0",
        "--group=0",
        "-cf",
        os.path.join(out, "layer.tar"),
        ".",
    )
    checksum = sha256_file(os.path.join(out, "layer.tar"))
    base = json.load(open(os.environ["baseJson"], encoding="utf-8"))
    with open(os.path.join(out, "json"), "w", encoding="utf-8") as f:
        json.dump({**base, "checksum": "tarsum.v1+sha256:" + checksum}, f)
    with open(os.path.join(out, "VERSION"), "w") as f:
        f.write("1.0")
    return 0


def ls_tar(path: str) -> list[str]:
    """Members of a tar as absolute paths without trailing slashes ("." dropped)."""
    names = tar("-tf", path, capture_output=True, text=True).stdout.splitlines()
    out = []
    for n in names:
        p = os.path.normpath("/" + n)
        if p != "/":
            out.append(p)
    return out


def closure(graph: str) -> list[str]:
    """Store paths of an exportReferencesGraph file (path, deriver, count, refs...)."""
    lines = open(graph, encoding="utf-8").read().splitlines()
    paths, i = [], 0
    while i < len(lines):
        paths.append(lines[i])
        i += 3 + int(lines[i + 2])
    return sorted(set(paths))


def image() -> int:
    args = json.load(open(os.environ["stepArgsPath"], encoding="utf-8"))
    layer_out = os.environ["layer"]
    epoch = os.environ["SOURCE_DATE_EPOCH"]
    os.mkdir("image")
    base_files: set[str] = set()
    layer_list: list[str] = []
    base_envs: list = []
    parent = ""
    if os.environ.get("fromImage"):
        tar("-C", "image", "-xpf", os.environ["fromImage"])
        manifest = json.load(open("image/manifest.json", encoding="utf-8"))
        layer_list = list(manifest[0]["Layers"])
        config_name = manifest[0]["Config"]
        base_envs = (json.load(open(os.path.join("image", config_name), encoding="utf-8")).get("config") or {}).get("Env") or []
        parent = config_name[:-5] if config_name.endswith(".json") else config_name
        for name in os.listdir("image"):  # rm -f image/*.json
            if name.endswith(".json") and os.path.isfile(os.path.join("image", name)):
                os.chmod(os.path.join("image", name), 0o644)
                os.unlink(os.path.join("image", name))
        for d in sorted(os.listdir("image")):
            if os.path.isfile(os.path.join("image", d, "layer.tar")):
                base_files.update(ls_tar(os.path.join("image", d, "layer.tar")))
    subprocess.run(["chmod", "-R", "ug+rw", "image"], check=True)

    os.mkdir("temp")
    for name in os.listdir(layer_out):
        shutil.copyfile(os.path.join(layer_out, name), os.path.join("temp", name))
        os.chmod(os.path.join("temp", name), 0o644)
    deps = closure("layer-closure")
    layer_files: list[str] = []
    for dep in deps:
        layer_files.append(dep)
        for root, dirs, files in os.walk(dep):
            dirs.sort()
            for n in sorted(dirs + files):
                layer_files.append(os.path.join(root, n))
    base_files.update(ls_tar("temp/layer.tar"))
    # The layer's runtime closure (its references, found by Nix's scan of
    # layer.tar) goes into the layer, with /nix/store made readable.
    if len(deps) > 1 and "/nix/store" not in base_files:
        os.makedirs("nix/store")
        os.makedirs("nix/var/nix")
        subprocess.run(["chmod", "-R", "555", "nix"], check=True)
        layer_files += ["./nix", "./nix/store", "./nix/var", "./nix/var/nix"]
    new_files = sorted(set(f for f in layer_files if layer_out not in f) - base_files)
    if new_files:
        with open("newFiles", "w", encoding="utf-8") as f:
            f.write("".join(n + "\n" for n in new_files))
        tar(
            "-rpf",
            "temp/layer.tar",
            "--hard-dereference",
            "--sort=name",
            f"--mtime=@{epoch}",
            "--owner=1000",
            "--group=100",
            "--mode=u+w",
            "--no-recursion",
            "--verbatim-files-from",
            "--files-from",
            "newFiles",
            stderr=subprocess.DEVNULL,
        )

    layer_json = json.load(open("temp/json", encoding="utf-8"))
    if parent:
        layer_json["parent"] = parent
    layer_id = hashlib.sha256(json.dumps(layer_json).encode() + b"\n").hexdigest()
    layer_json.update(id=layer_id, Size=os.path.getsize("temp/layer.tar"))
    with open("temp/json", "w", encoding="utf-8") as f:
        json.dump(layer_json, f)
    os.rename("temp", os.path.join("image", layer_id))
    layer_list.append(f"{layer_id}/layer.tar")

    image_json = json.load(open(os.environ["baseJson"], encoding="utf-8"))
    config = image_json.get("config") or {}
    config["Env"] = base_envs + (config.get("Env") or [])
    image_json["config"] = config
    image_json["rootfs"] = {"diff_ids": [], "type": "layers"}
    image_json["history"] = []
    for layer_tar in layer_list:
        image_json["history"].append({"created": image_json["created"]})
        image_json["rootfs"]["diff_ids"].append("sha256:" + sha256_file(os.path.join("image", layer_tar)))
    text = json.dumps(image_json, indent=2) + "\n"
    config_sum = hashlib.sha256(text.encode()).hexdigest()
    with open(f"image/{config_sum}.json", "w", encoding="utf-8") as f:
        f.write(text)
    repo_tag = f"{args['imageName']}:{args['imageTag']}"
    with open("image/manifest.json", "w", encoding="utf-8") as f:
        json.dump([{"RepoTags": [repo_tag], "Layers": layer_list, "Config": f"{config_sum}.json"}], f, indent=2)
    with open("image/repositories", "w", encoding="utf-8") as f:
        json.dump({args["imageName"]: {args["imageTag"]: layer_id}}, f)
    subprocess.run(["chmod", "-R", "a-w", "image"], check=True)

    out = os.environ["out"]
    p = subprocess.Popen(
        [
            "tar",
            "-C",
            "image",
            "--hard-dereference",
            "--sort=name",
            f"--mtime=@{epoch}",
            "--owner=0",
            "--group=0",
            "--xform",
            "s:^./::",
            "-c",
            ".",
        ],
        stdout=subprocess.PIPE,
    )
    compressor = args["compressor"]
    with open(out, "wb") as f:
        if compressor == "gz":
            with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="", compresslevel=6) as g:  # pigz -n: level 6
                shutil.copyfileobj(p.stdout, g, 1 << 20)
        elif compressor == "zstd":
            subprocess.run(["zstd", "-q", "-c"], stdin=p.stdout, stdout=f, check=True)
        else:
            shutil.copyfileobj(p.stdout, f, 1 << 20)
    if p.wait() != 0:
        raise SystemExit("tar failed")
    return 0


if __name__ == "__main__":
    os.environ["PATH"] = HOST_PATH
    sys.exit(layer() if sys.argv[1] == "layer" else image())
