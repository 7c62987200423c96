#!/bin/bash
# upper_commit_lock.sh - a commit holds the upper's lock from its first look
# at the upper to its last: a mount of that upper while the commit runs is
# refused with one clear line (issue 11 item 9: the lock was dropped right
# after the check, so a mount could change the tree under the import), and
# the commit then completes with what the upper held when it started.
#
# The commit is caught while it reads the upper's big file (its fd shows in
# /proc/PID/fd) and stopped there with SIGSTOP, so the mount is tried
# while the commit is surely in the middle of its work.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
# shellcheck source=../lib/upper.sh
source "$TESTLIB/upper.sh"
cairn_only "commit"
upper_setup

SRC=$WORK/src
MNT=$WORK/mnt
UP=$WORK/upper
mkdir -p "$SRC/etc"
printf 'v1\n' >"$SRC/etc/version"
upper_base "$SRC" base
upper_mount base "$MNT" "$UP"
# enough bytes that the commit reads for a while: it is stopped there anyway
head -c $((96 << 20)) /dev/urandom >"$MNT/big"
printf 'before the commit\n' >"$MNT/etc/note"
upper_umount "$MNT"

say "a mount while the commit runs is refused"
"$CAIRN" --store "$STORE" commit "$UP" --tag committed >"$WORK/commit.out" 2>"$WORK/commit.err" &
CPID=$!
track_pid "$CPID"
caught=0
for _ in $(seq 1 3000); do
	if ls -l "/proc/$CPID/fd" 2>/dev/null | grep -q -- "$UP/tree/big"; then
		kill -STOP "$CPID"
		caught=1
		break
	fi
	pid_alive "$CPID" || break
	sleep 0.01
done
[ "$caught" = 1 ] || fail "the commit was never seen reading $UP/tree/big (it exited or never started)"
info "commit $CPID stopped while it reads the upper"
mkdir -p "$MNT"
expect_error "mount of an upper being committed" tcairn "$STORE" mount base "$MNT" --upper "$UP"
_track_mount "$MNT" "$STORE"
grep -q 'in use' "$WORK/experr.err" || soft_fail "the refusal does not say the upper is in use"
if is_mounted "$MNT"; then
	soft_fail "the upper was mounted while a commit read it"
	printf 'written during the commit\n' >"$MNT/etc/note" 2>/dev/null || true
	umount_ok "$STORE" "$MNT" || true
fi
kill -CONT "$CPID"
wait "$CPID" || { show_file "$WORK/commit.err" >&2; fail "the commit failed after it was resumed"; }

say "the commit holds what the upper held when it started"
[ "$(cairn_in "$STORE" cat committed:etc/note)" = "before the commit" ] ||
	soft_fail "the committed image's etc/note is not the upper's before the commit"
cmp <(cairn_in "$STORE" cat committed:big) "$UP/tree/big" || soft_fail "the committed big file differs"

say "after the commit the upper mounts again"
upper_mount base "$MNT" "$UP"
[ "$(cat "$MNT/etc/note")" = "before the commit" ] || soft_fail "the upper lost its note"
upper_umount "$MNT"
finish
