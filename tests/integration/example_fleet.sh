#!/bin/bash
# example_fleet.sh - examples/fleet.sh runs as documented: both following
# hosts switch live to v2 and back to v1, and nothing is left behind.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/remote.sh
source "$(dirname "$0")/../lib/remote.sh"
require_root
setup
require_rgw
[ -c /dev/fuse ] || skip "/dev/fuse is missing"
REPO=$(cd "$(dirname "$0")/../.." && pwd)
CAIRN_ABS=$(cd "$(dirname "$CAIRN")" && pwd)/$(basename "$CAIRN")

say "examples/fleet.sh"
# its own clean-up stops the cluster; on a failure, the trap here too
track_cleanup "'$RGW_SCRIPT' stop '$WORK/ex/ceph' >/dev/null 2>&1; for m in \$(awk '\$5 ~ \"^$WORK/ex/mnt/\" {print \$5}' /proc/self/mountinfo); do umount -l \"\$m\"; done"
run_capture ex env CAIRN="$CAIRN_ABS" timeout -k 10 600 "$REPO/examples/fleet.sh" "$WORK/ex"
show_file "$WORK/ex.out" 200 | tail -n 30
[ "$RC" -eq 0 ] || { show_file "$WORK/ex.err"; fail "fleet.sh exited $RC"; }
[ "$(grep -c 'switched 2' "$WORK/ex.out")" = 2 ] || soft_fail "both mounts should switch to generation 2"
[ "$(grep -c 'switched 3' "$WORK/ex.out")" = 2 ] || soft_fail "both mounts should switch to generation 3"
[ "$(grep -c 'PRETTY_NAME="cairn demo 2' "$WORK/ex.out")" = 2 ] || soft_fail "both hosts should serve v2"
[ "$(grep -c 'PRETTY_NAME="cairn demo 1' "$WORK/ex.out")" = 4 ] || soft_fail "both hosts should serve v1 twice"
grep -q "fleet example done" "$WORK/ex.out" || soft_fail "the example did not finish"
awk -v d="$WORK/ex/" 'index($5, d) == 1 { f = 1 } END { exit !f }' /proc/self/mountinfo &&
	soft_fail "the example left a mount behind"
pgrep -f "$WORK/ex/ceph/ceph.conf" >/dev/null && soft_fail "the example left a Ceph daemon behind"
finish
