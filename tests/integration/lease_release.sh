#!/bin/bash
# lease_release.sh - a mount leases every image its users still read, with
# no cap, and lets go of an image once nothing reads it (issue 11 item 2:
# the daemon recorded only the first 64 images it switched away from, so a
# file opened after that read EIO once gc had run; and it never let go).
#
# A read-only and a writable mount follow platform p through 100 switches
# (untagged images, so only the platform's history and the leases keep
# them), reading a file after each. A file opened at the 70th stays open,
# unread (nothing of it in the page cache): after the 100th, `gc --keep 1`
# keeps its image and the file reads it.
# Once it is closed, the mounts let go of that image (the record lists
# only what is served) and gc collects it.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
mount_setup
chmod 0711 "$WORK"

STORE=$WORK/store
RO=$WORK/ro
RW=$WORK/rw
N=100
OPEN_AT=70
mkdir -p "$RO" "$RW" "$WORK/src/etc"
printf 'the same in every version\n' >"$WORK/src/etc/same"
IDS=()
for i in $(seq 0 "$N"); do
	printf 'version %d\n' "$i" >"$WORK/src/etc/version"
	printf 'held %d\n' "$i" >"$WORK/src/etc/held" # opened once, never read before gc
	IDS[i]=$(cairn_in "$STORE" import "$WORK/src" 2>/dev/null) || fail "import of version $i failed"
done
info "imported $((N + 1)) untagged images"
cairn_in "$STORE" upgrade p "${IDS[0]}" >/dev/null || fail "upgrade p to version 0"
mount_ok "$STORE" p "$RO"
mount_ok "$STORE" p "$RW" --upper "$WORK/upper"

# leases MOUNTPOINT: how many images the mount's record lists
leases() {
	python3 - "$STORE/run" "$1" <<'EOF'
import glob, json, sys
for f in glob.glob(sys.argv[1] + "/*.json"):
    try:
        r = json.load(open(f))
    except (OSError, ValueError):
        continue
    if r.get("mountpoint") == sys.argv[2]:
        print(len(r.get("leases", [])))
        break
EOF
}

say "$N switches, each read through both mounts"
for i in $(seq 1 "$N"); do
	tcairn "$STORE" upgrade p "${IDS[i]}" >"$WORK/up.out" || fail "upgrade to version $i failed"
	[ "$(grep -c ': switched' "$WORK/up.out")" = 2 ] || fail "version $i: not both mounts switched: $(cat "$WORK/up.out")"
	for m in "$RO" "$RW"; do
		[ "$(cat "$m/etc/version")" = "version $i" ] || fail "$m reads '$(cat "$m/etc/version")' on version $i"
	done
	if [ "$i" = "$OPEN_AT" ]; then
		exec 3<"$RO/etc/held" 4<"$RW/etc/held"
		info "etc/held of version $i held open (not read) on both mounts"
	fi
done
info "leases after $N switches: ro $(leases "$RO"), rw $(leases "$RW")"

say "gc --keep 1 keeps what the open files read"
cairn_in "$STORE" gc --keep 1 >"$WORK/gc1.out" || fail "gc --keep 1 failed"
show_file "$WORK/gc1.out" 2
got_ro=$(cat <&3 2>&1) || true
got_rw=$(cat <&4 2>&1) || true
[ "$got_ro" = "held $OPEN_AT" ] || soft_fail "the file opened at version $OPEN_AT on the read-only mount reads '$got_ro' after gc"
[ "$got_rw" = "held $OPEN_AT" ] || soft_fail "the file opened at version $OPEN_AT on the writable mount reads '$got_rw' after gc"
cairn_in "$STORE" ls "${IDS[OPEN_AT]}" >/dev/null 2>&1 || soft_fail "gc collected version $OPEN_AT while files read it"

say "closed, the image is let go of and collected"
exec 3<&- 4<&-
ok=0
for _ in $(seq 1 100); do
	if [ "$(leases "$RO")" = 1 ] && [ "$(leases "$RW")" = 1 ]; then
		ok=1
		break
	fi
	sleep 0.1
done
[ "$ok" = 1 ] || soft_fail "after the close the mounts still lease $(leases "$RO") (ro) and $(leases "$RW") (rw) images, want 1"
cairn_in "$STORE" gc --keep 1 >"$WORK/gc2.out" || fail "the second gc failed"
show_file "$WORK/gc2.out" 2
cairn_in "$STORE" ls "${IDS[OPEN_AT]}" >/dev/null 2>&1 && soft_fail "gc kept version $OPEN_AT after the files were closed"
for m in "$RO" "$RW"; do
	[ "$(cat "$m/etc/version")" = "version $N" ] || soft_fail "$m no longer reads version $N"
	[ "$(cat "$m/etc/same")" = "the same in every version" ] || soft_fail "$m no longer reads etc/same"
done
cairn_in "$STORE" fsck >/dev/null || soft_fail "fsck after the gc"
umount_ok "$STORE" "$RW"
umount_ok "$STORE" "$RO"
finish
