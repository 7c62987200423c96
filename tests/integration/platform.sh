#!/bin/bash
# platform.sh - upgrade, rollback (default and --to), history, PLATFORM and
# PLATFORM@GEN names, rmi refusing an image a generation names, and crash
# safety: kill -9 at random moments of upgrade/rollback loops leaves every
# platform on its old image or its new one with fsck clean.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
require_root
setup

STORE=$WORK/store
REPO=$(cd "$(dirname "$0")/../.." && pwd)

say "two versions of a busybox root filesystem"
"$REPO/examples/mkrootfs.sh" "$WORK/r1" 1 >/dev/null
"$REPO/examples/mkrootfs.sh" "$WORK/r2" 2 >/dev/null
"$REPO/examples/mkrootfs.sh" "$WORK/r3" 3 >/dev/null
import_ok "$STORE" "$WORK/r1" --tag v1
V1=$ID
import_ok "$STORE" "$WORK/r2" --tag v2
V2=$ID
import_ok "$STORE" "$WORK/r3" --tag v3
V3=$ID

# current IMAGE: the id the platform name resolves to, via stat of the root
current() { cairn_in "$STORE" cat "$1:etc/os-release" | sed -n 's/^VERSION_ID="\(.*\)"/\1/p'; }

say "upgrade creates and moves the platform"
cairn_in "$STORE" upgrade demo v1 >/dev/null || fail "first upgrade failed"
[ "$(current demo)" = 1 ] || fail "demo is not on v1"
cairn_in "$STORE" upgrade demo v2 >/dev/null || fail "upgrade to v2 failed"
cairn_in "$STORE" upgrade demo "$V3" >/dev/null || fail "upgrade to v3 by id failed"
[ "$(current demo)" = 3 ] || fail "demo is not on v3"
run_capture same cairn_in "$STORE" upgrade demo v3
grep -q "already" "$WORK/same.out" || fail "upgrading to the current image should say so"

say "PLATFORM@GEN names each generation's image"
for g in 1 2 3; do
	[ "$(current "demo@$g")" = "$g" ] || fail "demo@$g is not v$g"
done
expect_error "a generation that does not exist" cairn_in "$STORE" ls demo@9

say "rollback walks back one generation at a time"
cairn_in "$STORE" rollback demo >/dev/null || fail "rollback failed"
[ "$(current demo)" = 2 ] || fail "after one rollback demo should be on v2"
cairn_in "$STORE" rollback demo >/dev/null || fail "second rollback failed"
[ "$(current demo)" = 1 ] || fail "after two rollbacks demo should be on v1"
expect_error "no generation before the first" cairn_in "$STORE" rollback demo
expect_error "rollback --to the current generation" cairn_in "$STORE" rollback demo --to 5
expect_error "rollback --to a generation not made yet" cairn_in "$STORE" rollback demo --to 9
cairn_in "$STORE" rollback demo --to 2 >/dev/null || fail "rollback --to 2 failed"
[ "$(current demo)" = 2 ] || fail "rollback --to 2 should bring v2"

say "history lists every generation, the current one marked"
cairn_in "$STORE" history demo >"$WORK/history"
show_file "$WORK/history"
[ "$(grep -c . "$WORK/history")" -eq 7 ] || fail "history should list 6 generations"
grep -q '^\*   6 .*rollback to 2' "$WORK/history" || fail "generation 6 should be current"
cairn_in "$STORE" history demo --json | /usr/bin/python3 -c '
import json, sys
h = json.load(sys.stdin)
assert [g["generation"] for g in h] == [1, 2, 3, 4, 5, 6], h
assert [g["action"] for g in h] == ["upgrade"] * 3 + ["rollback"] * 3, h
assert sum(g["current"] for g in h) == 1 and h[-1]["current"], h
' || fail "history --json is wrong"

say "an image a generation names cannot be removed; its tag can"
expect_error "rmi of an image in the history" cairn_in "$STORE" rmi "$V1"
cairn_in "$STORE" rmi v1 || fail "removing the tag v1 failed"
[ "$(current demo@1)" = 1 ] || fail "demo@1 must still read after its tag went"

say "errors"
expect_error "upgrade to a missing image" cairn_in "$STORE" upgrade demo nope
expect_error "rollback of a missing platform" cairn_in "$STORE" rollback nope
expect_error "a bad platform name" cairn_in "$STORE" upgrade 'a/b' v2
expect_error "history of a missing platform" cairn_in "$STORE" history nope

say "kill -9 during switches: each platform is on an image of its history, fsck clean"
for round in $(seq 1 12); do
	(
		for i in $(seq 1 200); do
			"$CAIRN" --store "$STORE" upgrade crash v2 >/dev/null
			"$CAIRN" --store "$STORE" upgrade crash v3 >/dev/null
			"$CAIRN" --store "$STORE" rollback crash >/dev/null 2>&1
		done
	) &
	loop=$!
	sleep "0.0$((RANDOM % 9 + 1))"
	pkill -9 -P "$loop" 2>/dev/null || true
	kill -9 "$loop" 2>/dev/null || true
	wait "$loop" 2>/dev/null || true
	run_capture fsck cairn_in "$STORE" fsck
	[ "$RC" -eq 0 ] || { show_file "$WORK/fsck.out"; fail "fsck after kill round $round"; }
	if cairn_in "$STORE" platforms --json | grep -q '"crash"'; then
		v=$(current crash)
		[ "$v" = 2 ] || [ "$v" = 3 ] || fail "crash platform on '$v' after round $round"
	fi
done
info "12 kill rounds: fsck clean, platform on v2 or v3 each time"
[ "$(current demo)" = 2 ] || fail "demo moved during the kill rounds"

finish
