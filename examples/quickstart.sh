#!/bin/bash
# quickstart.sh - the main job, from nothing: install what cairn needs,
# build it, create a store, import two versions of a small root filesystem,
# put a platform on one, upgrade and roll it back, mount it and run a
# command inside.
#
# The store is $CAIRN_STORE, else /var/lib/cairn (root). Run as root on
# Debian 12. Safe to run again: the same tree imports to the same image id.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$PWD
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "installing dependencies (only what is missing)"
./scripts/install-deps.sh

step "building"
if [ -f build/build.ninja ]; then
	meson setup --reconfigure build >/dev/null
else
	meson setup build >/dev/null
fi
meson compile -C build >/dev/null
cairn=$repo/build/tools/cairn
export CAIRN_STORE=${CAIRN_STORE:-/var/lib/cairn}
echo "cairn built at $cairn; store: $CAIRN_STORE"

work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-quickstart.XXXXXX")
trap 'rm -rf "$work"' EXIT

step "making a small root filesystem from busybox-static"
./examples/mkrootfs.sh "$work/rootfs-v1" 1
echo "$(find "$work/rootfs-v1" | wc -l) entries, $(du -sh "$work/rootfs-v1" | cut -f1)"

step "importing it as image 'demo-v1', and a changed version 2 as 'demo-v2'"
run "$cairn" import "$work/rootfs-v1" --tag demo-v1 -m "busybox demo, version 1"
./examples/mkrootfs.sh "$work/rootfs-v2" 2
run "$cairn" import "$work/rootfs-v2" --tag demo-v2 -m "busybox demo, version 2"

step "what the store holds"
run "$cairn" images
run "$cairn" ls -l demo-v1
run "$cairn" du

step "a platform 'demo' on v1, upgraded to v2, rolled back"
run "$cairn" upgrade demo demo-v1
run "$cairn" upgrade demo demo-v2
run "$cairn" cat demo:etc/os-release
run "$cairn" rollback demo
run "$cairn" history demo

step "mounting the platform (read-only) and running a command inside it"
mnt=/run/cairn/mnt/quickstart
mkdir -p /run/cairn && chmod 700 /run/cairn && mkdir -p "$mnt"
mountpoint -q "$mnt" && "$cairn" umount "$mnt"
trap '"$cairn" umount "$mnt" 2>/dev/null || true; rm -rf "$work"' EXIT
run "$cairn" mount demo "$mnt"
run chroot "$mnt" /bin/sh -c '. /etc/os-release; echo "inside: $PRETTY_NAME"; ls /bin | wc -l'
run "$cairn" mounts
run "$cairn" stats "$mnt"
run "$cairn" umount "$mnt"
