#!/bin/bash
# upper_busy.sh - a second mount of an upper directory that is mounted is
# refused (cairn: one clear error line), on another mountpoint and with
# another image alike, and the first mount keeps working; once it is
# unmounted the upper mounts again and shows its writes. Two mounts of one
# image with their own uppers run side by side and do not see each
# other's writes.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
# shellcheck source=../lib/upper.sh
source "$TESTLIB/upper.sh"
upper_setup

SRC=$WORK/src
SRC2=$WORK/src2
UP=$WORK/upper
mkdir -p "$SRC/d" "$SRC2"
printf 'image\n' >"$SRC/d/f"
printf 'other image\n' >"$SRC2/g"
upper_base "$SRC" base
upper_base "$SRC2" other
upper_mount base "$WORK/m1" "$UP"
printf 'written in m1\n' >"$WORK/m1/d/new"

say "a second mount of the mounted upper is refused"
for img in base other; do
	mkdir -p "$WORK/m2"
	if sut_is cairn; then
		expect_error "second mount of $UP ($img)" tcairn "$STORE" mount "$img" "$WORK/m2" --upper "$UP"
		_track_mount "$WORK/m2" "$STORE"
	else
		upper_mount_try "$img" "$WORK/m2" "$UP"
		if [ "$RC" -eq 0 ]; then
			soft_fail "$UPPER_SUT: a second mount of a mounted upper ($img) succeeded"
			timeout 20 umount "$WORK/m2" 2>/dev/null || timeout 20 umount -l "$WORK/m2"
		else
			info "refused ($img): $(head -n 1 "$WORK/umnt.err")"
		fi
	fi
	! is_mounted "$WORK/m2" || soft_fail "$WORK/m2 is mounted after the refused mount ($img)"
done
[ "$(cat "$WORK/m1/d/new" 2>&1)" = "written in m1" ] || soft_fail "the first mount stopped working"
printf 'more\n' >>"$WORK/m1/d/new" || soft_fail "the first mount no longer takes writes"

say "unmounted, the upper mounts again and shows its writes"
upper_umount "$WORK/m1"
upper_mount base "$WORK/m2" "$UP"
[ "$(cat "$WORK/m2/d/new" 2>&1)" = "$(printf 'written in m1\nmore')" ] ||
	soft_fail "the upper mounted again does not show the first mount's writes"
upper_umount "$WORK/m2"

say "two mounts of one image with their own uppers, side by side"
upper_mount base "$WORK/a" "$WORK/upper-a"
upper_mount base "$WORK/b" "$WORK/upper-b"
printf 'a\n' >"$WORK/a/d/f"
rm "$WORK/b/d/f"
printf 'only in a\n' >"$WORK/a/only-a"
[ "$(cat "$WORK/a/d/f")" = a ] || soft_fail "mount a does not show its own write"
[ ! -e "$WORK/b/d/f" ] || soft_fail "mount b still shows the file it removed"
[ ! -e "$WORK/b/only-a" ] || soft_fail "mount b shows mount a's new file"
[ "$(ls -A "$WORK/a/d" | tr '\n' ' ')" = "f " ] || soft_fail "mount a lost d/f to mount b's rm"
upper_umount "$WORK/a"
upper_umount "$WORK/b"

finish
