#!/bin/bash
# mount_chroot.sh - a busybox root filesystem, imported and mounted, runs:
# chroot MNT /bin/sh executes commands (exec and mmap of a binary from the
# mount, symlinked applets, reads, a shell loop) with the same output as
# chroot into the source tree, and writes fail on the read-only mount.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
mount_setup

ROOTFS=$WORK/rootfs
STORE=$WORK/store
MNT=$WORK/mnt
mkdir -p "$MNT"

say "build a busybox root filesystem"
MKROOTFS=$TESTLIB/../../examples/mkrootfs.sh
run_capture mkrootfs bash "$MKROOTFS" "$ROOTFS" 1
if [ "$RC" -ne 0 ]; then
	show_file "$WORK/mkrootfs.err"
	# busybox-static is one of the project's dependencies
	fail "examples/mkrootfs.sh failed (busybox-static missing? scripts/install-deps.sh)"
fi
info "$(find "$ROOTFS" | wc -l) entries, busybox $(stat -c %s "$ROOTFS/bin/busybox") bytes"

say "import and mount"
import_ok "$STORE" "$ROOTFS" --tag rootfs-v1
mount_ok "$STORE" rootfs-v1 "$MNT"

# in_root ROOT NAME SCRIPT: chroot ROOT /bin/sh -c SCRIPT, output in
# $WORK/NAME.out/.err, status in RC
in_root() {
	local root=$1 name=$2 script=$3
	run_capture "$name" timeout -k 5 60 chroot "$root" /bin/sh -c "$script"
}

# same_in_both NAME SCRIPT: the script gives the same status and output in
# the source tree and in the mount
same_in_both() {
	local name=$1 script=$2
	in_root "$ROOTFS" "$name-src" "$script"
	local rc_src=$RC
	in_root "$MNT" "$name-mnt" "$script"
	if [ "$RC" -ne "$rc_src" ]; then
		soft_fail "$name: exit $RC in the mount, $rc_src in the source tree"
		show_file "$WORK/$name-mnt.err" >&2
		return 1
	fi
	if ! cmp -s "$WORK/$name-src.out" "$WORK/$name-mnt.out"; then
		soft_fail "$name: output differs from the source tree's"
		diff "$WORK/$name-src.out" "$WORK/$name-mnt.out" | head -n 20 >&2
		return 1
	fi
	info "ok: $name ($(wc -l <"$WORK/$name-mnt.out") lines, same as in the source tree)"
}

say "commands in chroot: output checked"
in_root "$MNT" hello 'echo hello from $(basename $0); id -u'
if [ "$RC" -ne 0 ] || [ "$(cat "$WORK/hello.out")" != "$(printf 'hello from sh\n0')" ]; then
	show_file "$WORK/hello.out"
	show_file "$WORK/hello.err"
	fail "chroot $MNT /bin/sh does not run (exit $RC)"
fi
info "ok: /bin/sh runs from the mount"

in_root "$MNT" osrel 'cat /etc/os-release'
if [ "$RC" -eq 0 ] && cmp -s "$WORK/osrel.out" "$ROOTFS/etc/os-release" &&
	grep -qx 'VERSION_ID="1"' "$WORK/osrel.out"; then
	info "ok: cat /etc/os-release: $(grep PRETTY "$WORK/osrel.out")"
else
	soft_fail "cat /etc/os-release in chroot (exit $RC)"
	show_file "$WORK/osrel.out"
fi

in_root "$MNT" sha 'sha256sum /bin/busybox /etc/passwd /usr/share/doc/README'
(cd "$ROOTFS" && sha256sum bin/busybox etc/passwd usr/share/doc/README | sed 's|  |  /|') >"$WORK/sha.want"
if [ "$RC" -eq 0 ] && cmp -s "$WORK/sha.out" "$WORK/sha.want"; then
	info "ok: sha256sum of busybox, passwd, README"
else
	soft_fail "sha256sum in chroot (exit $RC)"
	diff "$WORK/sha.want" "$WORK/sha.out" | head >&2
fi

in_root "$MNT" loop 'i=0; s=0; while [ $i -lt 2000 ]; do i=$((i + 1)); s=$((s + i)); done; echo $s
n=0; for f in /etc/*; do x=$(/bin/cat "$f") && n=$((n + 1)); done; echo $n
for a in ls cat wc head tail sort uniq grep sed awk tr; do x=$(/bin/$a --help 2>&1); echo "$a $?"; done | /bin/sort | /bin/md5sum'
want_sum=$((2000 * 2001 / 2))
want_n=$(find "$ROOTFS/etc" -mindepth 1 -maxdepth 1 | wc -l)
if [ "$RC" -eq 0 ] && [ "$(sed -n 1p "$WORK/loop.out")" = "$want_sum" ] &&
	[ "$(sed -n 2p "$WORK/loop.out")" = "$want_n" ]; then
	info "ok: a shell loop ($want_sum) and $want_n execs of /bin/cat from the mount"
else
	soft_fail "shell loop in chroot (exit $RC, want $want_sum and $want_n)"
	show_file "$WORK/loop.out"
	show_file "$WORK/loop.err"
fi

say "the same commands in the source tree and in the mount"
# the image has no /dev/null: no command here may redirect to it. Not
# compared: directories' st_size and st_nlink, and the 'total' of ls -l
# (st_blocks: allocation is the filesystem's own)
same_in_both ls 'ls -a /; ls -ln --full-time /etc /usr/share/doc | grep -v "^total"; ls -ln --full-time /bin | head -n 40 | grep -v "^total"; ls /bin | wc -l'
same_in_both find 'find / -xdev | sort'
same_in_both stat 'stat -c "%n %a %u %g %F %Y" / /tmp /root /etc; stat -c "%n %a %u %g %s %h %F %Y" /etc/passwd /bin/sh /bin/busybox'
same_in_both readlink 'readlink /bin/sh; readlink /bin/ls; [ -L /bin/sh ] && echo symlink'
same_in_both pipes 'cat /etc/passwd | sed s/:/\ /g | awk "{print \$1, \$3}" | sort -r'
same_in_both wc 'wc -c /bin/busybox /etc/group; head -c 64 /bin/busybox | od -A x -t x1 | head -n 2'
same_in_both mtimes 'date -u -r /etc/os-release +%s; date -u -r /bin +%s'

say "writes fail on the read-only mount"
in_root "$MNT" write 'echo x >/tmp/new-file'
if [ "$RC" -ne 0 ] && grep -qi 'read-only' "$WORK/write.err"; then
	info "ok: $(head -n 1 "$WORK/write.err")"
else
	soft_fail "a write in chroot: exit $RC, want a read-only error"
	show_file "$WORK/write.err"
fi
in_root "$MNT" rm 'rm /etc/hostname'
[ "$RC" -ne 0 ] || soft_fail "rm /etc/hostname in chroot succeeded"
[ -e "$ROOTFS/etc/hostname" ] || fail "the source tree changed"

say "unmount"
umount_ok "$STORE" "$MNT" && info "ok: unmounted, daemon gone"

finish
