#!/bin/sh
# install-deps.sh - install cairn's build and test dependencies (Debian 12).
#
# Installs only what is missing, so a second run is quick and silent.
# Runs apt-get update only when something has to be installed.
set -eu

BUILD_DEPS="meson ninja-build pkg-config gcc libfuse3-dev fuse3 libxxhash-dev
liblmdb-dev lmdb-utils libzstd-dev libcriterion-dev libarchive-dev libjson-c-dev
nettle-dev libcurl4-openssl-dev"
TEST_DEPS="python3 python3-lmdb libarchive-tools attr acl libcap2-bin
busybox-static e2fsprogs util-linux umoci skopeo runc crun debootstrap
clang libclang-rt-dev
ceph-mon ceph-osd radosgw ceph-common python3-rados openssl curl
qemu-system-x86 cpio"

missing=""
for pkg in $BUILD_DEPS $TEST_DEPS; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
	if [ "$status" != "installed" ]; then
		missing="$missing $pkg"
	fi
done

[ -z "$missing" ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo"
	else
		echo "install-deps: missing packages:$missing (run as root to install)" >&2
		exit 1
	fi
fi

echo "install-deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	$missing >&2
