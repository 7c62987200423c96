#!/bin/bash
# remote_gc.sh - gc --remote against a real radosgw: generations beyond
# --keep go, with the images and packs only they needed; tagged and kept
# images still pull whole; gc run again and again beside a push loses
# nothing the push published (lock objects keep them apart); a push
# refuses to start while a gc holds the remote.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/remote.sh
source "$(dirname "$0")/../lib/remote.sh"
require_root
setup
require_rgw
rgw_start
export CAIRN_S3_ENDPOINT
REPO=$(cd "$(dirname "$0")/../.." && pwd)
A=$WORK/a
count() { s3 "$CAIRN_S3_ENDPOINT/gcb?list-type=2&prefix=$1" | grep -o '<Key>' | wc -l; }

say "three generations of web, v1 also tagged"
for v in 1 2 3; do
	"$REPO/examples/mkrootfs.sh" "$WORK/r$v" "$v" >/dev/null
	python3 -c 'import os, sys; open(sys.argv[1], "wb").write(os.urandom(3 << 20))' "$WORK/r$v/only$v"
	import_ok "$A" "$WORK/r$v" --tag "v$v"
	eval "V$v=$ID"
done
cairn_in "$A" remote add o s3://gcb >/dev/null || fail "remote add"
cairn_in "$A" push v1 o >/dev/null || fail "push v1"
for v in 1 2 3; do
	cairn_in "$A" upgrade web "v$v" >/dev/null
	cairn_in "$A" push web o >/dev/null || fail "push web v$v"
done
packs0=$(count packs%2F)
info "before: $(count images%2F) images, $packs0 pack objects, $(count platforms%2F) generations"

say "gc --remote --keep 1"
cairn_in "$A" gc --remote o --keep 1 >"$WORK/gc.out" || { show_file "$WORK/gc.out"; fail "gc --remote"; }
show_file "$WORK/gc.out"
[ "$(count platforms%2F)" = 1 ] || soft_fail "generations left: $(count platforms%2F), want 1"
[ "$(count images%2F)" = 2 ] || soft_fail "images left: $(count images%2F), want v1 (tagged) and v3"
[ "$(count packs%2F)" -lt "$packs0" ] || soft_fail "no pack was removed"
[ "$(count locks%2F)" = 0 ] || soft_fail "a lock object was left behind"
B=$WORK/b
cairn_in "$B" remote add o s3://gcb >/dev/null
cairn_in "$B" pull o web >/dev/null || soft_fail "pull web (generation 3) after gc"
cairn_in "$B" pull o v1 >/dev/null || soft_fail "pull the tagged v1 after gc"
cairn_in "$B" fsck >/dev/null || soft_fail "fsck after pulling what gc kept"
expect_error "an image only a dropped generation named" cairn_in "$B" pull o "$V2"

say "gc again and again beside a push: nothing the push published is lost"
python3 - "$WORK/r4" <<'PY'
import os, random, sys
r = random.Random(4)
for d in range(3):
    os.makedirs("%s/d%d" % (sys.argv[1], d))
    for i in range(10):
        open("%s/d%d/f%d" % (sys.argv[1], d, i), "wb").write(r.randbytes(1 << 20))
PY
import_ok "$A" "$WORK/r4" --tag v4
"$CAIRN" --store "$A" push v4 o >"$WORK/push.out" 2>&1 &
pid=$!
track_pid "$pid"
sleep 0.3 # the push holds its lock by now (it writes it first)
busy=0 ran=0
while kill -0 "$pid" 2>/dev/null; do
	if "$CAIRN" --store "$A" gc --remote o --keep 1 >"$WORK/g.out" 2>&1; then
		ran=$((ran + 1))
	elif grep -q "push is running" "$WORK/g.out"; then
		busy=$((busy + 1))
	else
		show_file "$WORK/g.out"
		soft_fail "gc --remote failed otherwise"
		break
	fi
done
push_rc=0
wait "$pid" || push_rc=$?
info "beside the push: gc refused $busy times, ran $ran times; push exited $push_rc"
if [ "$push_rc" -ne 0 ]; then
	grep -q "gc --remote is running" "$WORK/push.out" || { show_file "$WORK/push.out"; soft_fail "push failed otherwise"; }
	cairn_in "$A" push v4 o >/dev/null || fail "push v4 again"
fi
cairn_in "$A" gc --remote o --keep 1 >/dev/null || soft_fail "gc after the push"
C=$WORK/c
cairn_in "$C" remote add o s3://gcb >/dev/null
cairn_in "$C" pull o v4 >/dev/null || soft_fail "v4, pushed beside gc, does not pull whole"
cairn_in "$C" fsck >/dev/null || soft_fail "fsck of v4 pulled after gc"

say "a gc holding the remote: a push refuses to start"
python3 -c 'import struct, sys, time; sys.stdout.buffer.write(b"cairnlk\0" + struct.pack("<Q", time.time_ns()))' >"$WORK/lock"
s3 -o /dev/null -T "$WORK/lock" "$CAIRN_S3_ENDPOINT/gcb/locks/gc"
import_ok "$A" "$WORK/r1" --tag v5
expect_error "push while gc holds the remote" cairn_in "$A" push v2 o
grep -q "gc --remote is running" "$WORK/experr.err" || soft_fail "the message should name gc"
expect_error "a second gc" cairn_in "$A" gc --remote o
s3 -o /dev/null -X DELETE "$CAIRN_S3_ENDPOINT/gcb/locks/gc"
cairn_in "$A" push v2 o >/dev/null || soft_fail "push after the gc lock went"
finish
