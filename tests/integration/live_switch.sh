#!/bin/bash
# live_switch.sh - a mount of a platform follows upgrade and rollback live:
# a file held open keeps reading what it opened, new opens and listings see
# the new image, names the new image adds appear even after a cached
# negative lookup, a changed file gets a new inode number while directories
# keep theirs, a bind mount and a working directory inside the mount
# survive with /proc/self/mountinfo unchanged, a pinned mount (IMAGE or
# PLATFORM@GEN) does not move, a stopped daemon does not fail upgrade, and
# with an upper directory the container's writes stay on top across both.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$(dirname "$0")/../lib/mount.sh"
mount_setup

STORE=$WORK/store
REPO=$(cd "$(dirname "$0")/../.." && pwd)
M=$WORK/m
P=$WORK/pinned
mkdir -p "$M" "$P" "$WORK/bindsrc"
echo "bound" >"$WORK/bindsrc/marker"

say "v1 and v2 of a small root filesystem; platform demo on v1"
"$REPO/examples/mkrootfs.sh" "$WORK/r1" 1 >/dev/null
"$REPO/examples/mkrootfs.sh" "$WORK/r2" 2 >/dev/null
import_ok "$STORE" "$WORK/r1" --tag v1
import_ok "$STORE" "$WORK/r2" --tag v2
cairn_in "$STORE" upgrade demo v1 >/dev/null || fail "upgrade demo v1"
mount_ok "$STORE" demo "$M"
DAEMON=$MPID
mount_ok "$STORE" demo@1 "$P"

version() { sed -n 's/^VERSION_ID="\(.*\)"/\1/p' "$1"; }

[ "$(version "$M/etc/os-release")" = 1 ] || fail "the mount does not serve v1"
stat "$M/usr/bin/hello" >/dev/null 2>&1 && fail "v1 has no usr/bin/hello"
# cached now: a negative entry for hello, inode numbers
ino_file=$(stat -c %i "$M/etc/os-release")
ino_dir=$(stat -c %i "$M/etc")
ls "$M/usr/bin" >"$WORK/ls1"

say "a container's view: an open file, a bind mount and a working directory inside"
exec 3<"$M/etc/os-release"
mount --bind "$WORK/bindsrc" "$M/tmp" || fail "bind mount into the cairn mount"
track_mount "$M/tmp"
(cd "$M/usr" && exec sleep 60) &
holder=$!
track_holder "$holder"
sleep 0.2
grep -F " $M" /proc/self/mountinfo | cut -d' ' -f1-6 >"$WORK/mountinfo.before"

say "upgrade: the mount answers and switches"
tcairn "$STORE" upgrade demo v2 >"$WORK/up.out" || fail "upgrade demo v2 failed"
show_file "$WORK/up.out"
grep -q "mount $M (pid $DAEMON, [^)]*): switched 2" "$WORK/up.out" || fail "upgrade did not report the mount switched"

[ "$(version "$M/etc/os-release")" = 2 ] || fail "a new open after the upgrade does not read v2"
[ "$(version /dev/stdin <&3)" = 1 ] || fail "the file opened before the upgrade does not read v1"
[ -x "$M/usr/bin/hello" ] || fail "usr/bin/hello (added by v2) does not appear after a cached negative lookup"
[ "$("$M/usr/bin/hello" 2>/dev/null || chroot "$M" /usr/bin/hello)" = "hello from version 2" ] ||
	fail "usr/bin/hello does not run"
ls "$M/usr/bin" >"$WORK/ls2"
grep -qx hello "$WORK/ls2" || fail "the listing of usr/bin does not show hello"
[ "$(stat -c %i "$M/etc/os-release")" != "$ino_file" ] || fail "a changed file kept its inode number"
[ "$(stat -c %i "$M/etc")" = "$ino_dir" ] || fail "a directory changed its inode number"
[ "$(cat "$M/tmp/marker")" = bound ] || fail "the bind mount inside is gone"
[ "$(readlink "/proc/$holder/cwd")" = "$M/usr" ] || fail "the holder's cwd moved"
grep -F " $M" /proc/self/mountinfo | cut -d' ' -f1-6 >"$WORK/mountinfo.after"
cmp -s "$WORK/mountinfo.before" "$WORK/mountinfo.after" || {
	diff "$WORK/mountinfo.before" "$WORK/mountinfo.after" >&2
	fail "mountinfo changed across the upgrade"
}
[ "$(version "$P/etc/os-release")" = 1 ] || fail "the pinned mount (demo@1) moved"
tcairn "$STORE" mounts --json | grep -q '"generation":2' || fail "mounts does not show generation 2"

say "rollback brings the old view back"
tcairn "$STORE" rollback demo >"$WORK/rb.out" || fail "rollback failed"
grep -q "switched 3" "$WORK/rb.out" || fail "rollback did not report the mount switched"
[ "$(version "$M/etc/os-release")" = 1 ] || fail "after rollback the mount does not read v1"
stat "$M/usr/bin/hello" >/dev/null 2>&1 && fail "usr/bin/hello is still there after rollback"
[ "$(stat -c %i "$M/etc/os-release")" = "$ino_file" ] || fail "v1's file did not get its v1 inode number back"
grep -F " $M" /proc/self/mountinfo | cut -d' ' -f1-6 >"$WORK/mountinfo.after2"
cmp -s "$WORK/mountinfo.before" "$WORK/mountinfo.after2" || fail "mountinfo changed across the rollback"
[ "$(readlink "/proc/$holder/cwd")" = "$M/usr" ] || fail "the holder's cwd moved on rollback"
exec 3<&-

say "a stopped daemon does not fail an upgrade; it catches up when it wakes"
kill -STOP "$DAEMON"
start=$(date +%s)
tcairn "$STORE" upgrade demo v2 >"$WORK/up2.out" || fail "upgrade with a stopped daemon failed"
took=$(($(date +%s) - start))
grep -q "not answering" "$WORK/up2.out" || fail "upgrade did not report the stopped mount"
[ "$took" -le 15 ] || fail "upgrade waited $took s for a stopped daemon"
kill -CONT "$DAEMON"
for _ in $(seq 1 50); do
	[ "$(version "$M/etc/os-release")" = 2 ] && break
	sleep 0.1
done
[ "$(version "$M/etc/os-release")" = 2 ] || fail "the woken daemon did not catch up with the upgrade"
info "upgrade took ${took}s with the daemon stopped; it switched once woken"

umount "$M/tmp"
kill "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
umount_ok "$STORE" "$M"
umount_ok "$STORE" "$P"

say "with an upper directory: what the container wrote stays on top of each image"
W=$WORK/w
mkdir -p "$W"
tcairn "$STORE" rollback demo --to 1 >/dev/null || fail "rollback to generation 1"
mount_ok "$STORE" demo "$W" --upper "$WORK/upper"
echo "written before the upgrade" >"$W/etc/mine" || fail "cannot write into the writable mount"
echo "appended" >>"$W/etc/hostname" || fail "cannot append to an image file"
rm "$W/etc/group" || fail "cannot remove an image file"
exec 4<"$W/etc/os-release"
tcairn "$STORE" upgrade demo v2 >"$WORK/up3.out" || fail "upgrade under a writable mount failed"
grep -q "mount $W (pid [0-9]*, [^)]*): switched" "$WORK/up3.out" || fail "the writable mount did not switch"
[ "$(version "$W/etc/os-release")" = 2 ] || fail "the writable mount does not read v2 after the upgrade"
[ "$(version /dev/stdin <&4)" = 1 ] || fail "a file opened on the writable mount before the upgrade does not read v1"
[ -x "$W/usr/bin/hello" ] || fail "v2's usr/bin/hello does not appear in the writable mount"
[ "$(cat "$W/etc/mine")" = "written before the upgrade" ] || fail "a file written before the upgrade is gone after it"
tail -n1 "$W/etc/hostname" | grep -qx appended || fail "an appended image file lost its change across the upgrade"
[ -e "$W/etc/group" ] && fail "a file deleted before the upgrade came back after it"
tcairn "$STORE" rollback demo >/dev/null || fail "rollback under a writable mount failed"
[ "$(version "$W/etc/os-release")" = 1 ] || fail "the writable mount does not read v1 after rollback"
[ "$(cat "$W/etc/mine")" = "written before the upgrade" ] || fail "a file written before is gone after rollback"
stat "$W/usr/bin/hello" >/dev/null 2>&1 && fail "usr/bin/hello is still in the writable mount after rollback"
exec 4<&-
umount_ok "$STORE" "$W"
finish
