#!/bin/sh
# install-deps.sh - install what cairn needs from Debian 12, only what is
# missing (a second run is quick and silent; apt-get update runs only when
# something has to be installed).
#
#   scripts/install-deps.sh          build and run cairn, and examples/quickstart.sh
#   scripts/install-deps.sh --test   that, and what ./tests/run.sh adds (CI)
#   scripts/install-deps.sh PKG...   that, and the named packages (an example's own)
#
# What it installs stays installed: remove it with apt-get remove (the lists
# below) when you no longer want it.
set -eu

# building cairn (compiler, meson, the libraries' headers; libcurl for remote
# stores), running it
# (fuse3 for fusermount3 and /etc/fuse.conf), and the quickstart's small
# root filesystem (busybox-static)
BUILD_DEPS="meson ninja-build pkg-config gcc libfuse3-dev fuse3 libxxhash-dev
liblmdb-dev libzstd-dev libarchive-dev libjson-c-dev nettle-dev libcurl4-openssl-dev
busybox-static"
# what the tests add: unit tests (criterion), tree comparison and tar/OCI
# tools, container runtimes, debootstrap, the fuzzers' compiler, a one-node
# Ceph with radosgw for the remote store, qemu for the VM example
TEST_DEPS="libcriterion-dev lmdb-utils python3 python3-lmdb libarchive-tools zstd
attr acl libcap2-bin e2fsprogs util-linux umoci skopeo runc crun debootstrap
clang libclang-rt-dev
ceph-mon ceph-osd radosgw ceph-common python3-rados openssl curl
qemu-system-x86 cpio"

want=$BUILD_DEPS
for a in "$@"; do
	case $a in
	--test) want="$want $TEST_DEPS" ;;
	-*)
		echo "install-deps: unknown option '$a' (--test, or package names)" >&2
		exit 2
		;;
	*) want="$want $a" ;;
	esac
done

missing=""
for pkg in $want; do
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
