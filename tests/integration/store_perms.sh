#!/bin/bash
# store_perms.sh - the store holds other people's files (an image's
# /etc/shadow): whatever the umask, the store directory and every directory
# in it are 0700 and every file 0600 (data.mdb, lock.mdb, gc.lock, packs,
# run/ with its records and sockets), and a uid-1000 process can read none
# of them, nor run cairn on the store. A store that is wider is narrowed by
# its owner's next command, and fsck run by someone else reports it. mount
# --upper makes the upper directory 0700 and warns when other users could
# reach what a container puts in an existing one, or replace it.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
mount_setup
require_cmd setpriv
# the other user must be able to walk down to the store: only its modes keep it out
chmod 0711 "$WORK"
umask 000
STORE=$WORK/store
as_user() { timeout -k 5 60 setpriv --reuid 1000 --regid 1000 --clear-groups -- "$@"; }

# private STORE WHEN: every entry 0700 (directories) or 0600 (the rest)
private() {
	local bad
	bad=$(find "$1" \( -type d ! -perm 0700 \) -o \( ! -type d ! -perm 0600 \) -printf '%m %y %p\n')
	if [ -n "$bad" ]; then
		printf '%s\n' "$bad" | head -n 20 | sed 's/^/   | /'
		soft_fail "$2: entries of the store are not private"
	else
		info "ok: $2: $(find "$1" | wc -l) entries, directories 0700, files 0600"
	fi
}

say "a store made under umask 000"
mkdir -p "$WORK/src/etc"
echo 'root:$6$secret:19000:0:99999:7:::' >"$WORK/src/etc/shadow"
chmod 0640 "$WORK/src/etc/shadow"
import_ok "$STORE" "$WORK/src" --tag base
cairn_in "$STORE" upgrade plat base >/dev/null
private "$STORE" "after import and upgrade"

say "while mounts run (run/: records and control sockets)"
mkdir -p "$WORK/m1" "$WORK/m2"
mount_ok "$STORE" plat "$WORK/m1" --ro
mount_ok "$STORE" base "$WORK/m2" --upper "$WORK/up"
[ "$(stat -c %a "$WORK/up")" = 700 ] || soft_fail "mount --upper made the upper directory $(stat -c %a "$WORK/up")"
[ -s "$WORK/mount.err" ] && { show_file "$WORK/mount.err"; soft_fail "a warning for an upper directory cairn made"; }
private "$STORE" "with two mounts"
ls "$STORE/run" | grep -q sock || soft_fail "no control socket in run/ to check"

say "uid 1000 cannot read any of it"
n=0
while IFS= read -r f; do
	n=$((n + 1))
	if as_user cat "$f" >/dev/null 2>&1; then
		soft_fail "uid 1000 read '$f'"
	fi
done < <(find "$STORE" ! -type d)
info "$n files tried"
as_user ls "$STORE" >/dev/null 2>&1 && soft_fail "uid 1000 listed the store"
expect_error "cairn cat of another user's store" as_user "$CAIRN" --store "$STORE" cat base:etc/shadow
tcairn "$STORE" umount "$WORK/m1" && tcairn "$STORE" umount "$WORK/m2" || fail "umount"

say "a wider store is narrowed by its owner's next command"
chmod -R go+rwX "$STORE"
cairn_in "$STORE" images >/dev/null
private "$STORE" "after 'cairn images' by its owner"

say "fsck by another user reports a wide store; its owner narrows it"
mkdir "$WORK/ustore"
chown 1000:1000 "$WORK/ustore"
mkdir -p "$WORK/usrc" && echo mine >"$WORK/usrc/f"
as_user "$CAIRN" --store "$WORK/ustore/s" import "$WORK/usrc" >/dev/null || fail "uid 1000 cannot make a store"
private "$WORK/ustore/s" "uid 1000's store"
chmod -R go+rX "$WORK/ustore/s"
run_capture fsck cairn_in "$WORK/ustore/s" fsck
[ "$RC" -ne 0 ] && grep -q "^store .*data.mdb: mode 0644 lets other users in" "$WORK/fsck.out" ||
	{ show_file "$WORK/fsck.out"; soft_fail "fsck (exit $RC) does not report the wide store"; }
as_user "$CAIRN" --store "$WORK/ustore/s" images >/dev/null || fail "uid 1000's images"
private "$WORK/ustore/s" "after its owner's next command"
run_capture fsck cairn_in "$WORK/ustore/s" fsck
[ "$RC" -eq 0 ] || { show_file "$WORK/fsck.out"; soft_fail "fsck of the narrowed store: exit $RC"; }

say "mount --upper warns about an upper other users can reach or replace"
mkdir -m 0755 "$WORK/wide"
mkdir -m 0777 "$WORK/open"
mkdir -p "$WORK/m3"
# warns UPPER WHAT: mounting with --upper UPPER warns that it is WHAT
warns() {
	_track_mount "$WORK/m3" "$STORE"
	run_capture umnt tcairn "$STORE" mount base "$WORK/m3" --upper "$1"
	[ "$RC" -eq 0 ] || { show_file "$WORK/umnt.err"; fail "mount --upper $1 exited $RC"; }
	if grep -q "^cairn: warning: .*$2" "$WORK/umnt.err"; then
		info "ok: $(head -n 1 "$WORK/umnt.err")"
	else
		show_file "$WORK/umnt.err"
		soft_fail "no warning that $1 is $2"
	fi
	tcairn "$STORE" umount "$WORK/m3" || fail "umount $WORK/m3"
}
warns "$WORK/wide" "reachable by other users"
warns "$WORK/open/u" "writable by other users"
finish
