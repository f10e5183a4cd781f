#!/usr/bin/python3
"""`make demo` with the binaries of the built image: proof that the image runs the system.

    /usr/bin/python3 scripts/image_demo.py [--archive build/image/tasklease_0.1.0.tar] [--build build]

Unpacks the image saved by scripts/image.sh (a docker-archive tarball, whichever tool built it)
into a root filesystem, layer by layer with OCI whiteouts applied, and runs scripts/demo.py with
tasklease-webhook and tasklease-operator started from that filesystem: each through a wrapper
that enters a private mount namespace, binds the host's /tmp (where the demo keeps kubeconfigs,
certificates and evidence) and chroots into the image. The binaries therefore run with the
image's own shared libraries and nothing of the host's. kubectl-tasklease, the client the story
uses, comes from the host build (--build).

They run as root inside the chroot, because the demo's temporary directories are the host
user's; the image's user (65532:65532) is checked by scripts/image.sh. Linux and root only.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WHITEOUT, OPAQUE = ".wh.", ".wh..wh..opq"


def app_version():
    with open(os.path.join(ROOT, "helm", "tasklease", "Chart.yaml")) as f:
        for line in f:
            if line.startswith("appVersion:"):
                return line.split(":", 1)[1].strip().strip('"')
    raise SystemExit("helm/tasklease/Chart.yaml has no appVersion")


def remove(path):
    if os.path.islink(path) or not os.path.isdir(path):
        if os.path.lexists(path):
            os.unlink(path)
    else:
        shutil.rmtree(path)


def apply_layer(layer, rootfs):
    """Extracts one layer tar into rootfs, honouring whiteouts: `.wh.NAME` deletes NAME from the
    layers below, `.wh..wh..opq` empties its directory of what the layers below put there."""
    real_root = os.path.realpath(rootfs)
    for m in layer.getmembers():
        name = os.path.normpath(m.name[2:] if m.name.startswith("./") else m.name)
        if name.startswith("..") or os.path.isabs(name):
            raise SystemExit(f"layer entry {m.name!r} points outside the image")
        d, base = os.path.split(name)
        parent = os.path.realpath(os.path.join(rootfs, d))
        if os.path.commonpath([parent, real_root]) != real_root:
            raise SystemExit(f"layer entry {m.name!r} resolves outside the image")
        if base == OPAQUE:
            for entry in os.listdir(parent) if os.path.isdir(parent) else []:
                remove(os.path.join(parent, entry))
        elif base.startswith(WHITEOUT):
            remove(os.path.join(parent, base[len(WHITEOUT):]))
        else:
            # A lower layer's file or symlink at this path is replaced, never written through.
            target = os.path.join(parent, base)
            if os.path.lexists(target) and not (m.isdir() and os.path.isdir(target)
                                                 and not os.path.islink(target)):
                remove(target)
            layer.extract(m, rootfs, numeric_owner=True)


def unpack(archive, rootfs):
    """The image's root filesystem and its config (docker-archive: manifest.json lists the config
    and the layer tars, lowest first)."""
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))
        if len(manifest) != 1:
            raise SystemExit(f"{archive}: expected one image, found {len(manifest)}")
        config = json.load(outer.extractfile(manifest[0]["Config"]))
        for name in manifest[0]["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(name)) as layer:
                apply_layer(layer, rootfs)
    return config


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archive", default=os.path.join(ROOT, "build", "image",
                                                      f"tasklease_{app_version()}.tar"))
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    args = ap.parse_args()
    if not os.path.exists(args.archive):
        raise SystemExit(f"{args.archive} does not exist: run `make image` first")
    cli = os.path.join(os.path.abspath(args.build), "bin", "kubectl-tasklease")
    if not os.path.exists(cli):
        raise SystemExit(f"{cli} does not exist: run `make build` first")

    work = tempfile.mkdtemp(prefix="tasklease-image-demo-")
    try:
        rootfs = os.path.join(work, "rootfs")
        os.makedirs(rootfs)
        config = unpack(args.archive, rootfs)
        print(f"image {args.archive}: user {config['config'].get('User')}, "
              f"{len(config.get('rootfs', {}).get('diff_ids', []))} layers, unpacked in {rootfs}")
        bindir = os.path.join(work, "build", "bin")
        os.makedirs(bindir)
        os.symlink(cli, os.path.join(bindir, "kubectl-tasklease"))
        for name in ("tasklease-webhook", "tasklease-operator"):
            if not os.path.exists(os.path.join(rootfs, "usr", "local", "bin", name)):
                raise SystemExit(f"the image has no /usr/local/bin/{name}")
            wrapper = os.path.join(bindir, name)
            with open(wrapper, "w") as f:
                # exec all the way down: the demo's signals reach the binary itself.
                f.write("#!/bin/sh\n"
                        f"exec unshare --mount sh -c 'mount --bind /tmp \"$0\"/tmp && "
                        f"exec chroot \"$0\" /usr/local/bin/{name} \"$@\"' {rootfs} \"$@\"\n")
            os.chmod(wrapper, 0o755)
        rc = subprocess.call([sys.executable, os.path.join(ROOT, "scripts", "demo.py"),
                              "--build", os.path.join(work, "build")])
        if rc == 0:
            print("The demo ran on the image's tasklease-webhook and tasklease-operator.")
        return rc
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
