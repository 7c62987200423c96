#!/bin/bash
# remote_fleet.sh - fleet upgrades through a real radosgw: a pushed platform
# becomes the remote's next generation; two followers (two stores, standing
# for two hosts), each with a running mount of the platform, switch live
# after one push and back after a pushed rollback; a replayed older
# generation and a concurrent pusher's generation are handled; a local
# rollback pauses following until --resume; with --trust, unsigned and
# wrongly signed pointers are refused and signed ones accepted.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$(dirname "$0")/../lib/mount.sh"
# shellcheck source=../lib/remote.sh
source "$(dirname "$0")/../lib/remote.sh"
mount_setup
require_rgw
rgw_start
export CAIRN_S3_ENDPOINT
REPO=$(cd "$(dirname "$0")/../.." && pwd)
A=$WORK/a   # the build host
H1=$WORK/h1 # two followers
H2=$WORK/h2
jget() { json_get "$1" "j['$2']"; }
version() { sed -n 's/^VERSION_ID="\(.*\)"/\1/p' "$1"; }

say "v1, v2 on the build host; platform web pushed as generation 1"
for v in 1 2 3; do "$REPO/examples/mkrootfs.sh" "$WORK/r$v" "$v" >/dev/null; done
import_ok "$A" "$WORK/r1" --tag v1
import_ok "$A" "$WORK/r2" --tag v2
for st in "$A" "$H1" "$H2"; do
	cairn_in "$st" remote add fleet s3://fleet >/dev/null || fail "remote add"
done
cairn_in "$A" upgrade web v1 >/dev/null
cairn_in "$A" push web fleet --json >"$WORK/push1.json" || fail "push web"
[ "$(jget "$WORK/push1.json" generation)" = 1 ] || soft_fail "the first push should be generation 1"
cairn_in "$A" push web fleet --json >"$WORK/push1b.json" || fail "push web again"
[ "$(jget "$WORK/push1b.json" generation)" = 1 ] || soft_fail "an unchanged platform must not add a generation"

say "two followers, each with a running mount of web"
for h in "$H1" "$H2"; do
	cairn_in "$h" follow fleet web >/dev/null || fail "first follow on $h"
	mkdir -p "$h.mnt"
	mount_ok "$h" web "$h.mnt"
	[ "$(version "$h.mnt/etc/os-release")" = 1 ] || soft_fail "$h does not serve v1"
done

say "one push of v2: both followers switch live"
cairn_in "$A" upgrade web v2 >/dev/null
cairn_in "$A" push web fleet >/dev/null || fail "push web v2"
for h in "$H1" "$H2"; do
	cairn_in "$h" follow fleet web --json >"$WORK/f.json" || fail "follow on $h"
	[ "$(jget "$WORK/f.json" remote_generation)" = 2 ] || soft_fail "$h: remote generation"
	[ "$(version "$h.mnt/etc/os-release")" = 2 ] || soft_fail "$h's mount does not serve v2 after follow"
	[ -x "$h.mnt/usr/bin/hello" ] || soft_fail "$h's mount lacks v2's hello"
done
cairn_in "$H1" follow fleet web >"$WORK/f2.out" || fail "follow again"
grep -q "up to date" "$WORK/f2.out" || soft_fail "a second follow should be up to date"

say "a rollback on the build host, pushed: a new, higher generation; followers go back"
cairn_in "$A" rollback web >/dev/null || fail "rollback"
cairn_in "$A" push web fleet --json >"$WORK/push3.json" || fail "push the rollback"
[ "$(jget "$WORK/push3.json" generation)" = 3 ] || soft_fail "the rollback should be generation 3"
for h in "$H1" "$H2"; do
	cairn_in "$h" follow fleet web >/dev/null || fail "follow the rollback on $h"
	[ "$(version "$h.mnt/etc/os-release")" = 1 ] || soft_fail "$h's mount is not back on v1"
done
cairn_in "$H1" history web | grep -c . >/dev/null

say "a replayed older generation is refused (the newest is hidden: generation 2 shows)"
s3 -o "$WORK/gen3" "$CAIRN_S3_ENDPOINT/fleet/platforms/web/00000000000000000003"
s3 -o /dev/null -X DELETE "$CAIRN_S3_ENDPOINT/fleet/platforms/web/00000000000000000003"
cairn_in "$H1" follow fleet web >"$WORK/replay.out" || soft_fail "follow with an older head should not fail"
grep -q "up to date" "$WORK/replay.out" || soft_fail "an older generation must not be applied"
[ "$(version "$H1.mnt/etc/os-release")" = 1 ] || soft_fail "H1 moved to a replayed generation"
s3 -o /dev/null -T "$WORK/gen3" "$CAIRN_S3_ENDPOINT/fleet/platforms/web/00000000000000000003"
# the same pointer under another generation's name is refused
s3 -o /dev/null -T "$WORK/gen3" "$CAIRN_S3_ENDPOINT/fleet/platforms/web/00000000000000000004"
expect_error "a generation whose pointer names another generation" cairn_in "$H2" follow fleet web
s3 -o /dev/null -X DELETE "$CAIRN_S3_ENDPOINT/fleet/platforms/web/00000000000000000004"

say "two pushers: one generation each, none shared"
import_ok "$A" "$WORK/r3" --tag v3
B=$WORK/b
cairn_in "$B" remote add fleet s3://fleet >/dev/null
cairn_in "$B" pull fleet v1 >/dev/null 2>&1 || true
cairn_in "$A" upgrade web v3 >/dev/null
cairn_in "$A" push v2 fleet >/dev/null
cairn_in "$B" pull fleet v2 >/dev/null || fail "pull v2 on the second builder"
cairn_in "$B" upgrade web v2 >/dev/null
cairn_in "$A" push web fleet --json >"$WORK/pa.json" &
pa=$!
cairn_in "$B" push web fleet --json >"$WORK/pb.json" &
pb=$!
wait "$pa" || soft_fail "pusher a"
wait "$pb" || soft_fail "pusher b"
ga=$(jget "$WORK/pa.json" generation)
gb=$(jget "$WORK/pb.json" generation)
info "pusher a made generation $ga, pusher b $gb"
[ "$ga" != "$gb" ] && [ "$((ga + gb))" = 9 ] || soft_fail "concurrent pushers got generations $ga and $gb (want 4 and 5)"

say "a local rollback pauses following until --resume"
cairn_in "$H1" follow fleet web >/dev/null || fail "follow to the newest"
cairn_in "$H1" rollback web >"$WORK/rb.out" || fail "local rollback"
grep -q "following is paused" "$WORK/rb.out" || soft_fail "rollback should say following is paused"
cairn_in "$A" push web fleet >/dev/null
cairn_in "$A" upgrade web v1 >/dev/null
cairn_in "$A" push web fleet >/dev/null || fail "push v1 again"
expect_error "follow while paused" cairn_in "$H1" follow fleet web
grep -q -- "--resume" "$WORK/experr.err" || soft_fail "the message should name --resume"
cairn_in "$H1" follow fleet web --resume >/dev/null || soft_fail "follow --resume"
[ "$(version "$H1.mnt/etc/os-release")" = 1 ] || soft_fail "H1 after resume"

say "signed pointers: a trusting host accepts only the key's signatures"
pub=$(cairn_in "$A" remote keygen "$WORK/key") || fail "keygen"
[ "$(stat -c %a "$WORK/key")" = 600 ] || soft_fail "the private key is not 0600"
cairn_in "$A" remote keygen "$WORK/other" >/dev/null
T=$WORK/t
cairn_in "$T" remote add fleet s3://fleet --trust "$pub" >/dev/null || fail "remote add --trust"
expect_error "an unsigned generation on a trusting host" cairn_in "$T" follow fleet web
grep -q "not signed" "$WORK/experr.err" || soft_fail "the message should say it is not signed"
expect_error "an unsigned tag on a trusting host" cairn_in "$T" pull fleet v2
cairn_in "$A" upgrade web v2 >/dev/null
cairn_in "$A" push web fleet --sign "$WORK/key" >/dev/null || fail "signed push"
cairn_in "$T" follow fleet web >/dev/null || soft_fail "a signed generation should be followed"
cairn_in "$A" upgrade web v3 >/dev/null
cairn_in "$A" push web fleet --sign "$WORK/other" >/dev/null || fail "push signed by another key"
expect_error "a generation signed by another key" cairn_in "$T" follow fleet web
grep -q "not signed by the trusted key" "$WORK/experr.err" || soft_fail "the message should name the key"
cairn_in "$A" push v3 fleet --sign "$WORK/key" >/dev/null || fail "signed tag push"
cairn_in "$T" pull fleet v3 >/dev/null || soft_fail "a signed tag should be pulled"
cairn_in "$T" pull fleet "$(cairn_in "$A" images --json | json_get /dev/stdin '[i["id"] for i in j if "v1" in i["tags"]][0]')" >/dev/null ||
	soft_fail "an image by id needs no signature"
chmod 644 "$WORK/key"
expect_error "a private key readable by others" cairn_in "$A" push web fleet --sign "$WORK/key"

for h in "$H1" "$H2"; do umount_ok "$h" "$h.mnt"; done
for st in "$A" "$H1" "$H2" "$T"; do cairn_in "$st" fsck >/dev/null || soft_fail "fsck of $st"; done
finish
