#!/bin/bash
# example_runc.sh - examples/runc.sh runs end to end: an OCI container whose
# root is a cairn mount keeps running across 'cairn upgrade' and 'rollback'
# with the same mounts, its loop and new 'runc exec's read each version in
# turn, and nothing is left mounted or running afterwards. With runc, and
# with crun when it is installed.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$(dirname "$0")/../lib/mount.sh"
mount_setup
require_cmd runc unshare

REPO=$(cd "$(dirname "$0")/../.." && pwd)
runtimes=(runc)
command -v crun >/dev/null 2>&1 && runtimes+=(crun)

for rt in "${runtimes[@]}"; do
	say "examples/runc.sh with RUNTIME=$rt"
	mkdir -p "$WORK/$rt"
	run_capture "$rt" env RUNTIME="$rt" CAIRN="$CAIRN" TMPDIR="$WORK/$rt" MOUNT_ARGS="${MOUNT_MODE_ARGS[*]}" \
		timeout -k 10 240 "$REPO/examples/runc.sh"
	out=$WORK/$rt.out
	if [ "$RC" -ne 0 ]; then
		show_file "$out" 80
		show_file "$WORK/$rt.err" 20
		soft_fail "examples/runc.sh with $rt exited $RC"
		continue
	fi
	grep -q '^container cairn-demo-[0-9]* running, pid [0-9]*$' "$out" ||
		soft_fail "$rt: no running container reported"
	grep -q 'switched 2$' "$out" || soft_fail "$rt: the upgrade did not switch the container's mount"
	grep -q 'switched 3$' "$out" || soft_fail "$rt: the rollback did not switch the container's mount"
	grep -q '^same container (pid [0-9]*), same mounts$' "$out" ||
		soft_fail "$rt: the container did not keep its pid and mounts"
	grep -qx 'hello from version 2' "$out" || soft_fail "$rt: v2's /usr/bin/hello did not run in the container"
	grep -q '^the write landed in the upper directory: .*/tree/root/made-in-container$' "$out" ||
		soft_fail "$rt: the container's write did not land in the upper directory"
	# the loop's reads, consecutive repeats folded: v1, then v2 after the upgrade, then v1 again
	grep -qx 'versions the loop read, in order: 1 2 1' "$out" ||
		soft_fail "$rt: the running loop did not read 1, 2, 1 ($(grep 'versions the loop' "$out"))"
	left=$(mounts_under "$WORK/$rt")
	[ -z "$left" ] || soft_fail "$rt: still mounted after the example: $left"
	[ -z "$(ls -A "$WORK/$rt")" ] || soft_fail "$rt: the example left $(ls -A "$WORK/$rt") behind"
	info "ok: $rt ran v1, v2 and v1 again in one container"
done
finish
