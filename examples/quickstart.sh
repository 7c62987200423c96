#!/bin/bash
# quickstart.sh - the main job, from nothing: install what cairn needs,
# build it, create a store and import a small root filesystem into it, then
# show what the store holds.
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

step "importing it as image 'demo-v1'"
run "$cairn" import "$work/rootfs-v1" --tag demo-v1 -m "busybox demo, version 1"

step "what the store holds"
run "$cairn" images
run "$cairn" ls -l demo-v1
run "$cairn" cat demo-v1:etc/os-release
run "$cairn" du demo-v1
