#!/bin/bash
# gc.sh - gc drops history beyond --keep, images nothing names and what no
# kept image reaches; what running mounts serve (or served to files still
# open) stays and reads byte-exact while gc runs; --compact gives disk space
# back; fsck is clean after each step; gc refuses to run beside an import.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$(dirname "$0")/../lib/mount.sh"
mount_setup

STORE=$WORK/store
REPO=$(cd "$(dirname "$0")/../.." && pwd)
M=$WORK/m
mkdir -p "$M"

say "v1 and v2, each with 8 MiB of data of its own; platform demo on v1, mounted"
"$REPO/examples/mkrootfs.sh" "$WORK/r1" 1 >/dev/null
"$REPO/examples/mkrootfs.sh" "$WORK/r2" 2 >/dev/null
head -c $((8 << 20)) /dev/urandom >"$WORK/r1/usr/share/doc/blob"
head -c $((8 << 20)) /dev/urandom >"$WORK/r2/usr/share/doc/blob"
import_ok "$STORE" "$WORK/r1" --tag v1
import_ok "$STORE" "$WORK/r2" --tag v2
cairn_in "$STORE" upgrade demo v1 >/dev/null || fail "upgrade demo v1"
mount_ok "$STORE" demo "$M"

fsck_clean() {
	run_capture fsck cairn_in "$STORE" fsck
	[ "$RC" -eq 0 ] || { show_file "$WORK/fsck.out"; fail "fsck after $1"; }
}
store_bytes() { du -s --block-size=1 "$STORE" | cut -f1; }

say "a file opened on v1, then the platform moves to v2 and the tags go"
exec 3<"$M/usr/share/doc/blob"
tcairn "$STORE" upgrade demo v2 >/dev/null || fail "upgrade demo v2"
cairn_in "$STORE" rmi v1 v2 || fail "rmi of the tags"

say "gc --keep 1 while the mount is read: v1 stays (the open file's lease)"
tcairn "$STORE" mounts --json >"$WORK/mounts.json"
show_file "$WORK/mounts.json" 40
cat "$STORE"/run/*.json 2>/dev/null | cut -c1-400
(
	for _ in $(seq 1 40); do
		cmp -s "$M/usr/share/doc/blob" "$WORK/r2/usr/share/doc/blob" || { echo BAD; exit 1; }
	done
) >"$WORK/reader.out" 2>&1 &
reader=$!
track_holder "$reader"
tcairn "$STORE" gc --keep 1 >"$WORK/gc1.out" || { show_file "$WORK/gc1.out"; fail "gc --keep 1 failed"; }
show_file "$WORK/gc1.out"
wait "$reader" || fail "reads through the mount went wrong while gc ran: $(cat "$WORK/reader.out")"
cmp -s /dev/stdin "$WORK/r1/usr/share/doc/blob" <&3 || fail "the file opened on v1 no longer reads v1"
exec 3<&-
[ "$(cairn_in "$STORE" images --json | grep -c '"id"')" -eq 2 ] || fail "gc dropped v1 while a mount leases it"
grep -q "removed 1 generations" "$WORK/gc1.out" || fail "gc --keep 1 should drop generation 1"
[ "$(cairn_in "$STORE" history demo --json | grep -c '"generation"')" -eq 1 ] ||
	fail "history should keep one generation"
fsck_clean "gc with a mount"

say "unmounted, gc drops v1 and what only it reached; --compact gives the space back"
umount_ok "$STORE" "$M"
before=$(store_bytes)
cairn_in "$STORE" du --json >"$WORK/du.before"
tcairn "$STORE" gc >"$WORK/gc2.out" || { show_file "$WORK/gc2.out"; fail "gc failed"; }
show_file "$WORK/gc2.out"
[ "$(cairn_in "$STORE" images --json | grep -c '"id"')" -eq 1 ] || fail "v1 should be gone"
grep -Eq "removed 0 generations, 1 images, 1 layers, [1-9][0-9]* nodes" "$WORK/gc2.out" ||
	fail "gc should report v1's image, layer and nodes"
cairn_in "$STORE" du --json >"$WORK/du.after"
used_before=$(json_get "$WORK/du.before" 'j["stored_bytes"]')
used_after=$(json_get "$WORK/du.after" 'j["stored_bytes"]')
info "stored bytes: $used_before -> $used_after"
[ "$used_after" -lt $((used_before - (7 << 20))) ] || fail "du's stored bytes did not drop by v1's blob"
fsck_clean "gc"
tcairn "$STORE" gc --compact >"$WORK/gc3.out" || { show_file "$WORK/gc3.out"; fail "gc --compact failed"; }
show_file "$WORK/gc3.out"
after=$(store_bytes)
info "store disk usage: $before -> $after bytes"
[ "$after" -lt $((before - (7 << 20))) ] || fail "disk usage did not drop by v1's blob after --compact"
fsck_clean "gc --compact"
cairn_in "$STORE" cat demo:usr/share/doc/blob | cmp -s - "$WORK/r2/usr/share/doc/blob" ||
	fail "demo's blob does not read back after gc --compact"

say "kill -9 at random points of gc: fsck clean each time, demo intact"
for round in $(seq 1 8); do
	mkdir -p "$WORK/junk$round"
	head -c $((4 << 20)) /dev/urandom >"$WORK/junk$round/a"
	cairn_in "$STORE" import "$WORK/junk$round" --tag junk >/dev/null || fail "junk import"
	cairn_in "$STORE" rmi junk || fail "rmi junk"
	"$CAIRN" --store "$STORE" gc --compact >/dev/null 2>&1 &
	pid=$!
	sleep "0.0$((RANDOM % 9))"
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	fsck_clean "gc killed in round $round"
done
tcairn "$STORE" gc --compact >/dev/null || fail "a gc after the killed ones failed"
fsck_clean "the final gc"
[ "$(cairn_in "$STORE" images --json | grep -c '"id"')" -eq 1 ] || fail "junk images survived gc"
cairn_in "$STORE" cat demo:usr/share/doc/blob | cmp -s - "$WORK/r2/usr/share/doc/blob" ||
	fail "demo's blob does not read back after killed gcs"
info "8 kill rounds: fsck clean each time"

say "gc refuses to run beside an import"
flock -s "$STORE/gc.lock" sleep 5 &
track_holder $!
sleep 0.3
expect_error "gc during an import" cairn_in "$STORE" gc
finish
