#!/bin/bash
# upper_owner.sh - entries made by a non-root caller belong to that caller:
# files, directories, symlinks, fifos and hard links made by uid 1000 gid
# 2000 (setpriv) in a sticky image directory and in its own image
# directory are 1000:2000 in the mount and in UPPERDIR/tree, with the
# caller's umask applied; in a setgid directory they take its group and new
# directories inherit the setgid bit; a copy-up caused by the caller keeps
# the image owner. The kernel's permission checks hold: the caller cannot
# write root's files, chown, chmod root's files, make devices, or remove
# root's file from a sticky directory. Root's new entries are 0:0.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
# shellcheck source=../lib/upper.sh
source "$TESTLIB/upper.sh"
upper_setup
require_cmd setpriv

SRC=$WORK/src
MNT=$WORK/mnt
UP=$WORK/upper
mkdir -p "$SRC"/{tmp,home/u,sgid,etc}
chmod 1777 "$SRC/tmp"
chown 1000:1000 "$SRC/home/u"
printf 'notes\n' >"$SRC/home/u/notes"
chown 1000:1000 "$SRC/home/u/notes"
chmod 0640 "$SRC/home/u/notes"
chown 0:50 "$SRC/sgid"
chmod 2777 "$SRC/sgid"
printf 'root file\n' >"$SRC/etc/conf"
printf 'root file in tmp\n' >"$SRC/tmp/rootfile"
chmod 0666 "$SRC/tmp/rootfile"
upper_base "$SRC" base
upper_mount base "$MNT" "$UP"

say "uid 1000 gid 2000 makes entries"
as_user() { setpriv --reuid 1000 --regid 2000 --clear-groups -- "$@"; }
as_user sh -ec '
	umask 027
	cd "$1"
	for d in tmp home/u sgid; do
		echo made-by-1000 >$d/file
		mkdir $d/dir
		ln -s file $d/link
		mkfifo $d/fifo
		ln $d/file $d/hardlink
	done
	echo appended >>home/u/notes
' _ "$MNT" || soft_fail "uid 1000 could not make its entries"
echo 'made by root' >"$MNT/tmp/byroot"
mkdir "$MNT/tmp/dirbyroot"

# owners ROOT WHERE: the owner and mode of each entry, one line
owners() {
	local root=$1
	(cd "$root" && stat -c '%n %u:%g %a' tmp/file tmp/dir tmp/link tmp/fifo tmp/hardlink \
		home/u/file home/u/dir home/u/link home/u/fifo home/u/notes \
		sgid/file sgid/dir sgid/link sgid/fifo tmp/byroot tmp/dirbyroot 2>&1)
}
want="tmp/file 1000:2000 640
tmp/dir 1000:2000 750
tmp/link 1000:2000 777
tmp/fifo 1000:2000 640
tmp/hardlink 1000:2000 640
home/u/file 1000:2000 640
home/u/dir 1000:2000 750
home/u/link 1000:2000 777
home/u/fifo 1000:2000 640
home/u/notes 1000:1000 640
sgid/file 1000:50 640
sgid/dir 1000:50 2750
sgid/link 1000:50 777
sgid/fifo 1000:50 640
tmp/byroot 0:0 644
tmp/dirbyroot 0:0 755"
got=$(owners "$MNT")
if [ "$got" = "$want" ]; then
	info "ok: owners and modes in the mount"
else
	soft_fail "owners in the mount differ"
	diff <(echo "$want") <(echo "$got") | sed 's/^/   /'
fi
[ "$(cat "$MNT/home/u/notes")" = "$(printf 'notes\nappended')" ] || soft_fail "uid 1000's append to its image file"

say "the kernel's permission checks"
check_denied() {
	local what=$1
	shift
	if as_user "$@" 2>/dev/null; then
		soft_fail "uid 1000 could $what"
	else
		info "ok: uid 1000 cannot $what"
	fi
}
check_denied "write root's file" sh -c 'echo x >>"$1/etc/conf"' _ "$MNT"
check_denied "chown its own file" chown 0 "$MNT/tmp/file"
check_denied "chmod root's file" chmod 777 "$MNT/etc/conf"
check_denied "make a device" mknod "$MNT/tmp/dev" c 1 3
check_denied "remove root's file from a sticky directory" rm -f "$MNT/tmp/rootfile"
check_denied "create in root's directory" touch "$MNT/etc/new"
[ "$(cat "$MNT/etc/conf")" = "root file" ] || soft_fail "etc/conf changed"
[ ! -e "$MNT/tmp/dev" ] && [ -e "$MNT/tmp/rootfile" ] && [ ! -e "$MNT/etc/new" ] ||
	soft_fail "a denied operation left a trace"

say "UPPERDIR/tree has the same owners; so has a remount"
upper_umount "$MNT"
got=$(owners "$UP/tree")
if [ "$got" = "$want" ]; then
	info "ok: owners and modes in the upper"
else
	soft_fail "owners in the upper differ"
	diff <(echo "$want") <(echo "$got") | sed 's/^/   /'
fi
upper_mount base "$MNT" "$UP"
[ "$(owners "$MNT")" = "$want" ] || soft_fail "owners after a remount differ"
upper_umount "$MNT"

finish
