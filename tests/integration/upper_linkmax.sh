#!/bin/bash
# upper_linkmax.sh - a hard-link group larger than the upper filesystem's
# link limit (65000 on ext4; the image comes from a tar, which has none)
# (issue 11 item 11). A copy-up of a member used to link 65000 names, fail
# with EMLINK and leave them; a retry then split the group. Now, where the
# upper's limit is known, the copy-up is refused before anything is linked
# (EMLINK, one log line), the upper holds nothing of the group, and every
# name still shows one file; where the filesystem holds the group, it is
# copied up whole (every name one inode). A group copy-up that fails half
# way for any other reason (here: a tmpfs upper out of inodes when it makes
# the directories on the way) takes back the links it made.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
# shellcheck source=../lib/upper.sh
source "$TESTLIB/upper.sh"
cairn_only "the daemon's log"
upper_setup

MNT=$WORK/mnt
UP=$WORK/upper
NAMES=65100
python3 - "$WORK/group.tar" "$NAMES" <<'EOF'
import io, sys, tarfile
path, n = sys.argv[1], int(sys.argv[2])
with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as t:
    for d in range(10):
        ti = tarfile.TarInfo("d%d" % d)
        ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 1700000000
        t.addfile(ti)
    data = b"one file, many names\n"
    ti = tarfile.TarInfo("d0/m0")
    ti.size, ti.mode, ti.mtime = len(data), 0o644, 1700000000
    t.addfile(ti, io.BytesIO(data))
    for i in range(1, n):
        ti = tarfile.TarInfo("d%d/m%d" % (i % 10, i))
        ti.type, ti.linkname, ti.mode, ti.mtime = tarfile.LNKTYPE, "d0/m0", 0o644, 1700000000
        t.addfile(ti)
    # a small group, one name in each directory
    data = b"small group\n"
    ti = tarfile.TarInfo("d0/g0")
    ti.size, ti.mode, ti.mtime = len(data), 0o644, 1700000000
    t.addfile(ti, io.BytesIO(data))
    for i in range(1, 10):
        ti = tarfile.TarInfo("d%d/g%d" % (i, i))
        ti.type, ti.linkname, ti.mode, ti.mtime = tarfile.LNKTYPE, "d0/g0", 0o644, 1700000000
        t.addfile(ti)
EOF
import_ok "$STORE" "$WORK/group.tar" --tag base
mkdir -p "$MNT"
mount_fg "$STORE" base "$MNT" --upper "$UP"
LOG=$WORK/mount-fg.log
[ "$(stat -c %h "$MNT/d3/m3")" = "$NAMES" ] || soft_fail "d3/m3 has $(stat -c %h "$MNT/d3/m3") links, want $NAMES"

say "a copy-up of a member: the whole group, or nothing"
set +e
chmod 600 "$MNT/d3/m3" 2>"$WORK/chmod.err"
rc=$?
set -e
in_upper=$(find "$UP/tree" -name 'm*' | wc -l)
if [ "$rc" -eq 0 ]; then
	info "copied up: the upper's filesystem holds $NAMES links"
	[ "$in_upper" = "$NAMES" ] || soft_fail "the upper holds $in_upper names of the group, want $NAMES"
	for p in d0/m0 d3/m3 d9/m65099; do
		[ "$(stat -c '%i %a %h' "$MNT/$p")" = "$(stat -c '%i %a %h' "$MNT/d3/m3")" ] ||
			soft_fail "$p is not the same file as d3/m3 after the copy-up"
	done
else
	info "refused: $(cat "$WORK/chmod.err")"
	grep -q 'Too many links' "$WORK/chmod.err" || soft_fail "the refusal is not EMLINK"
	[ "$in_upper" = 0 ] || soft_fail "the refused copy-up left $in_upper names of the group in the upper"
	[ -z "$(ls -A "$UP/work")" ] || soft_fail "the refused copy-up left something in work/"
	grep -q "cannot copy up 'm3'.*hard-link group.*$NAMES" "$LOG" ||
		soft_fail "no line in the daemon's log says why the copy-up was refused"
	for p in d0/m0 d3/m3 d9/m65099; do
		[ "$(stat -c '%a %h' "$MNT/$p")" = "644 $NAMES" ] || soft_fail "$p changed: $(stat -c '%a %h' "$MNT/$p")"
	done
	[ "$(cat "$MNT/d9/m65099")" = "one file, many names" ] || soft_fail "a member no longer reads"
	printf 'x' >>"$MNT/d5/m5" 2>/dev/null && soft_fail "a write to a member went through although the group cannot be copied up"
	[ "$(find "$UP/tree" -name 'm*' | wc -l)" = 0 ] || soft_fail "a second try left names in the upper"
fi
show_file "$LOG" 4
umount_ok "$STORE" "$MNT"

say "a group copy-up that fails half way takes back what it linked"
T=$WORK/tmpfs
mkdir -p "$T"
mount -t tmpfs -o size=64m,nr_inodes=4096,mode=0700 cairn-test "$T"
track_mount "$T"
UP2=$T/upper
mount_fg "$STORE" base "$MNT" --upper "$UP2"
stat "$MNT/d0/g0" >/dev/null
# room for the file and two of the directories on the way, not more
used=$(df --output=iused "$T" | tail -n 1)
mount -o remount,nr_inodes=$((used + 3)) "$T"
set +e
chmod 600 "$MNT/d0/g0" 2>"$WORK/chmod2.err"
rc=$?
set -e
mount -o remount,nr_inodes=4096 "$T"
if [ "$rc" -eq 0 ]; then
	soft_fail "the group copied up on an upper with room for 3 inodes"
else
	info "failed half way: $(cat "$WORK/chmod2.err")"
	left=$(find "$UP2/tree" -name 'g*' | wc -l)
	[ "$left" = 0 ] || soft_fail "the failed group copy-up left $left names in the upper"
	for i in 0 5 9; do
		[ "$(stat -c '%a %h' "$MNT/d$i/g$i")" = "644 10" ] || soft_fail "d$i/g$i changed: $(stat -c '%a %h' "$MNT/d$i/g$i")"
	done
	grep -q "cannot copy up 'g0'.*taken back" "$LOG" || soft_fail "the log does not say the links were taken back"
fi
chmod 600 "$MNT/d0/g0" || soft_fail "with room again, the group does not copy up"
for i in 0 5 9; do
	[ "$(stat -c '%a %h %i' "$MNT/d$i/g$i")" = "$(stat -c '%a %h %i' "$MNT/d0/g0")" ] ||
		soft_fail "after the retry d$i/g$i is not the group's one file"
done
[ "$(stat -c '%a %h' "$MNT/d0/g0")" = "600 10" ] || soft_fail "after the retry: $(stat -c '%a %h' "$MNT/d0/g0")"
umount_ok "$STORE" "$MNT"
umount "$T"
finish
