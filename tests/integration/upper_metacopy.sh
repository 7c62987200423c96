#!/bin/bash
# upper_metacopy.sh - metadata-only changes copy no data: after chmod,
# chown, utimens or setxattr on 32 MiB image files, UPPERDIR/tree holds
# each as a metadata-only copy (the metacopy xattr, no data blocks:
# SEEK_DATA finds none, st_blocks at most one xattr block), the whole upper
# stays small, and the mount serves the image's bytes with the new
# metadata, also after a remount. The first write then copies the data: the
# upper file has the bytes and no metacopy marker any more.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
# shellcheck source=../lib/upper.sh
source "$TESTLIB/upper.sh"
upper_setup

SRC=$WORK/src
MNT=$WORK/mnt
UP=$WORK/upper
mkdir -p "$SRC/big"
for f in chmod chown utime xattr all; do
	head -c $((32 << 20)) /dev/urandom >"$SRC/big/$f"
done
upper_base "$SRC" base
upper_mount base "$MNT" "$UP"

say "metadata changes on five 32 MiB image files"
t0=$(date +%s%N)
chmod 0600 "$MNT/big/chmod"
chown 1000:1000 "$MNT/big/chown"
# utimensat on the path (plain touch opens the file for writing first)
python3 -c 'import os, sys; os.utime(sys.argv[1], ns=(981173106789000000, 981173106789000000))' "$MNT/big/utime"
setfattr -n user.meta -v only "$MNT/big/xattr"
chmod 4700 "$MNT/big/all"
chown 12:34 "$MNT/big/all"
chmod 4700 "$MNT/big/all" # (chown drops setuid)
setfattr -n user.meta -v all "$MNT/big/all"
python3 -c 'import os, sys; os.utime(sys.argv[1], ns=(1012709106 * 10**9, 1012709106 * 10**9))' "$MNT/big/all"
info "$((($(date +%s%N) - t0) / 1000000)) ms for 9 metadata changes"

# check_view WHEN: attributes changed, bytes as in the image
check_view() {
	local f
	for f in chmod chown utime xattr all; do
		cmp -s "$SRC/big/$f" "$MNT/big/$f" || soft_fail "big/$f: the bytes differ from the image's ($1)"
	done
	[ "$(stat -c %a "$MNT/big/chmod")" = 600 ] || soft_fail "big/chmod: mode $(stat -c %a "$MNT/big/chmod") ($1)"
	[ "$(stat -c %u:%g "$MNT/big/chown")" = 1000:1000 ] || soft_fail "big/chown: owner $(stat -c %u:%g "$MNT/big/chown") ($1)"
	[ "$(stat -c %Y "$MNT/big/utime")" = 981173106 ] || soft_fail "big/utime: mtime $(stat -c %Y "$MNT/big/utime") ($1)"
	[ "$(getfattr --only-values -n user.meta "$MNT/big/xattr" 2>/dev/null)" = only ] || soft_fail "big/xattr: user.meta lost ($1)"
	[ "$(stat -c %a:%u:%g:%Y "$MNT/big/all")" = 4700:12:34:1012709106 ] ||
		soft_fail "big/all: $(stat -c %a:%u:%g:%Y "$MNT/big/all"), want 4700:12:34:1012709106 ($1)"
	[ "$(getfattr --only-values -n user.meta "$MNT/big/all" 2>/dev/null)" = all ] || soft_fail "big/all: user.meta lost ($1)"
	info "checked the view ($1)"
}

# no_data UPPERFILE...: metadata-only copies
no_data() {
	python3 - "$U_METACOPY" "$@" <<'EOF'
import errno, os, sys
marker, bad = sys.argv[1], []
for p in sys.argv[2:]:
    st = os.lstat(p)
    try:
        has = os.getxattr(p, marker, follow_symlinks=False) is not None
    except OSError:
        has = False
    fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        data = os.lseek(fd, 0, os.SEEK_DATA)
    except OSError as e:
        data = None if e.errno == errno.ENXIO else "error %s" % errno.errorcode[e.errno]
    os.close(fd)
    print("   %s: st_size %d, st_blocks %d, SEEK_DATA %s, %s %s" % (
        os.path.basename(p), st.st_size, st.st_blocks, data, marker, "set" if has else "missing"))
    if not has:
        bad.append("%s: no %s xattr" % (p, marker))
    if data is not None or st.st_blocks * 512 > 8192:
        bad.append("%s: has data (st_blocks %d, SEEK_DATA %s)" % (p, st.st_blocks, data))
if bad:
    print("\n".join("   " + b for b in bad))
    sys.exit(1)
EOF
}

check_view mounted
say "the upper holds metadata-only copies"
no_data "$UP"/tree/big/{chmod,chown,utime,xattr,all} || soft_fail "a metadata change copied data"
used=$(du -s --block-size=1 "$UP" | cut -f1)
info "the upper uses $used bytes on disk"
[ "$used" -lt $((1 << 20)) ] || soft_fail "the upper uses $used bytes after metadata changes to 160 MiB of files"

say "mounted again: the same"
upper_umount "$MNT"
drop_caches
upper_mount base "$MNT" "$UP"
check_view remounted

say "a write copies the data"
printf 'W' | dd of="$MNT/big/chmod" bs=1 seek=1000 conv=notrunc status=none
python3 - "$SRC/big/chmod" "$MNT/big/chmod" <<'EOF' || soft_fail "big/chmod after the write"
import sys
a = bytearray(open(sys.argv[1], "rb").read())
a[1000:1001] = b"W"
if open(sys.argv[2], "rb").read() != bytes(a):
    sys.exit("   the bytes after a one-byte write differ")
print("   ok: the image's bytes with one byte written")
EOF
upper_umount "$MNT"
u=$UP/tree/big/chmod
if getfattr -n "$U_METACOPY" "$u" >/dev/null 2>&1; then
	soft_fail "the upper's big/chmod still carries $U_METACOPY after a write"
fi
[ "$(stat -c %s "$u")" = $((32 << 20)) ] && [ "$(stat -c %b "$u")" -ge $((32 << 11)) ] ||
	soft_fail "the upper's big/chmod: size $(stat -c %s "$u"), $(stat -c %b "$u") blocks after a write (want the data)"
no_data "$UP"/tree/big/{chown,utime,xattr,all} >/dev/null || soft_fail "the other files got data"

finish
