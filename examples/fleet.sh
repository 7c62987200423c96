#!/bin/bash
# fleet.sh - a fleet upgrade through an S3 object store: a build host pushes
# a platform to Ceph's radosgw (started here on loopback by
# scripts/ceph-rgw.sh), two hosts follow it with a running mount each, an
# upgrade and then a rollback are pushed, signed, and both hosts switch live.
#
#   ./examples/fleet.sh [WORKDIR]     (root; WORKDIR defaults to a new temporary directory)
#
# The "hosts" are three stores on this machine; everything it makes (the
# Ceph cluster, the stores, the mounts) is in WORKDIR, which is stopped and
# removed at the end, also on failure or Ctrl-C. CAIRN=build/tools/cairn
# skips the install and build.
set -euo pipefail
# shellcheck source=examples/lib.sh
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || die "run as root (mounts)"
cairn_ready
work=${1:-$(mktemp -d "${TMPDIR:-/tmp}/cairn-fleet.XXXXXX")}
mkdir -p "$work"
work=$(cd "$work" && pwd)
chmod 700 "$work"
cleanup() {
	local m
	for m in $(mounts_under "$work"); do
		"$cairn" --store "$work/${m##*/}" umount "$m" >/dev/null 2>&1 || umount -l "$m" 2>/dev/null || true
	done
	"$example_repo/scripts/ceph-rgw.sh" stop "$work/ceph" >/dev/null 2>&1 || true
	rm -rf --one-file-system "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "an S3 object store: one mon, one OSD, one radosgw on loopback"
show "$example_repo/scripts/ceph-rgw.sh" start "$work/ceph"
"$example_repo/scripts/ceph-rgw.sh" start "$work/ceph" >"$work/ceph.env"
eval "$(cat "$work/ceph.env")"
export CAIRN_S3_ENDPOINT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
echo "S3 at $CAIRN_S3_ENDPOINT"

step "the build host: two versions of a root filesystem, platform web on v1"
build=$work/build
"$example_repo/examples/mkrootfs.sh" "$work/rootfs-v1" 1 >/dev/null
"$example_repo/examples/mkrootfs.sh" "$work/rootfs-v2" 2 >/dev/null
run "$cairn" --store "$build" import "$work/rootfs-v1" --tag web-v1
run "$cairn" --store "$build" import "$work/rootfs-v2" --tag web-v2
run "$cairn" --store "$build" upgrade web web-v1
run "$cairn" --store "$build" remote add fleet s3://images/prod
pub=$("$cairn" --store "$build" remote keygen "$work/fleet.key")
show "$cairn" --store "$build" remote keygen "$work/fleet.key"
echo "$pub"
run "$cairn" --store "$build" push web fleet --sign "$work/fleet.key"

step "two hosts trust the key, follow web and mount it"
for h in host1 host2; do
	run "$cairn" --store "$work/$h" remote add fleet s3://images/prod --trust "$pub"
	run "$cairn" --store "$work/$h" follow fleet web
	mkdir -p "$work/mnt/$h"
	run "$cairn" --store "$work/$h" mount web "$work/mnt/$h"
	grep PRETTY_NAME "$work/mnt/$h/etc/os-release"
done

step "upgrade on the build host, push: generation 2; the hosts follow, live"
run "$cairn" --store "$build" upgrade web web-v2
run "$cairn" --store "$build" push web fleet --sign "$work/fleet.key"
for h in host1 host2; do
	run "$cairn" --store "$work/$h" follow fleet web
	grep PRETTY_NAME "$work/mnt/$h/etc/os-release"
done

step "a bad release: roll back on the build host, push: generation 3; the hosts follow"
run "$cairn" --store "$build" rollback web
run "$cairn" --store "$build" push web fleet --sign "$work/fleet.key"
for h in host1 host2; do
	run "$cairn" --store "$work/$h" follow fleet web
	grep PRETTY_NAME "$work/mnt/$h/etc/os-release"
done
run "$cairn" --store "$work/host1" history web

step "the bucket: keep the newest generation only"
run "$cairn" --store "$build" gc --remote fleet --keep 1
for h in host1 host2; do
	run "$cairn" --store "$work/$h" umount "$work/mnt/$h"
done
echo "fleet example done"
