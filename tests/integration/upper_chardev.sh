#!/bin/bash
# upper_chardev.sh - a character device 0/0 that is part of an image (from a
# directory or a tar) survives copy-up (issue 11 item 10: made as itself in
# the upper it read as a whiteout, so a chmod deleted it). The upper keeps
# it escaped (an empty file marked trusted.cairn.device); the mount shows a
# char device 0/0 with the new mode, owner and xattr, also after a
# remount; `changes` says C, not D; commit stores it back as a device. A
# container still cannot mknod one (EPERM), nor forge the marker.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
# shellcheck source=../lib/upper.sh
source "$TESTLIB/upper.sh"
cairn_only "the device marker"
upper_setup

SRC=$WORK/src
MNT=$WORK/mnt
UP=$WORK/upper
mkdir -p "$SRC/dev" "$SRC/d"
mknod -m 0644 "$SRC/dev/zero0" c 0 0
mknod -m 0640 "$SRC/dev/other" c 0 0
mknod -m 0600 "$SRC/d/linked" c 0 0
ln "$SRC/d/linked" "$SRC/d/linked2"
mknod -m 0644 "$SRC/dev/null" c 1 3
upper_base "$SRC" base
upper_mount base "$MNT" "$UP"

# kind MODE PATH: "c 0 0 0600" for a char device 0/0 of mode 0600
kind() { stat -c '%F %t %T %a %u' "$1" 2>&1 | sed 's/character special file/c/'; }

say "metadata changes copy the device up; it stays a char device 0/0"
chmod 0600 "$MNT/dev/zero0" || soft_fail "chmod of an image char device 0/0 failed"
chown 1000 "$MNT/dev/other" || soft_fail "chown of an image char device 0/0 failed"
setfattr -n trusted.note -v kept "$MNT/dev/other" || soft_fail "setxattr (trusted.note) on an image char device 0/0 failed"
chmod 0604 "$MNT/d/linked" || soft_fail "chmod of a hard-linked char device 0/0 failed"
check_view() {
	local when=$1
	[ "$(kind "$MNT/dev/zero0")" = "c 0 0 600 0" ] ||
		soft_fail "$when: dev/zero0 is '$(kind "$MNT/dev/zero0")', want a char device 0/0 of mode 600"
	[ "$(kind "$MNT/dev/other")" = "c 0 0 640 1000" ] ||
		soft_fail "$when: dev/other is '$(kind "$MNT/dev/other")', want c 0 0 640 owned by 1000"
	[ "$(getfattr --absolute-names --only-values -n trusted.note "$MNT/dev/other" 2>&1)" = kept ] ||
		soft_fail "$when: dev/other lost its trusted.note"
	[ "$(kind "$MNT/d/linked")" = "c 0 0 604 0" ] && [ "$(kind "$MNT/d/linked2")" = "c 0 0 604 0" ] ||
		soft_fail "$when: the hard-linked pair is '$(kind "$MNT/d/linked")' / '$(kind "$MNT/d/linked2")'"
	[ "$(stat -c %i "$MNT/d/linked")" = "$(stat -c %i "$MNT/d/linked2")" ] ||
		soft_fail "$when: the hard-linked pair no longer shares an inode"
	ls "$MNT/dev" | grep -qx zero0 || soft_fail "$when: dev/zero0 is not listed"
	[ "$(kind "$MNT/dev/null")" = "c 1 3 644 0" ] || soft_fail "$when: dev/null changed"
}
check_view "mounted"
grep -q '^D ' <(upper_changes "$UP" base) && soft_fail "changes reports a deletion: $(upper_changes "$UP" base | tr '\n' ' ')"
upper_changes "$UP" base | grep -qx 'C /dev/zero0' || soft_fail "changes does not say C /dev/zero0"

say "a container cannot make one, nor forge the marker"
if setpriv --reuid=1000 --regid=1000 --clear-groups mknod "$MNT/d/mine" c 0 0 2>/dev/null ||
	mknod "$MNT/d/mine" c 0 0 2>/dev/null; then
	soft_fail "mknod c 0 0 through the mount succeeded"
fi
printf '' >"$MNT/d/plain"
setfattr -n trusted.cairn.device -v "c 0 0" "$MNT/d/plain" || soft_fail "setting trusted.cairn.device failed"
[ "$(stat -c %F "$MNT/d/plain")" = "regular empty file" ] || soft_fail "a container's trusted.cairn.device made a device"

say "after a remount"
upper_umount "$MNT"
upper_mount base "$MNT" "$UP"
check_view "remounted"
upper_umount "$MNT"

say "commit stores it back as a device"
upper_commit "$UP" base committed
while read -r path want; do
	got=$(cairn_in "$STORE" ls -l "committed:$path" | awk '{ print $1, $3, $5 $6 }')
	[ "$got" = "$want" ] || soft_fail "committed $path: '$got', want '$want'"
done <<'EOF'
dev/zero0 crw------- 0 0,0
dev/other crw-r----- 1000 0,0
d/linked crw----r-- 0 0,0
d/linked2 crw----r-- 0 0,0
EOF
[ "$(cairn_in "$STORE" ls -l committed:d/plain | cut -c1)" = - ] ||
	soft_fail "committed d/plain is not a regular file"
finish
