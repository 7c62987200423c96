#!/bin/bash
# upper_fallocate.sh - what kernel filesystems do with chown(-1, -1) and
# fallocate, the writable mount does too, without copying image data it
# does not need: chown(path, -1, -1) updates ctime (image files, upper
# files, symlinks); fallocate punch-hole and zero-range (the modes besides
# keep-size that FUSE passes) on image files not yet copied up, on a
# range reaching the end of the image part or in the file's own appended
# part, read back right and leave the upper file a metadata-only copy
# without data blocks; a hole strictly inside the image part copies the
# data, as it must. Every result is compared with the same operations on a
# plain file.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
# shellcheck source=../lib/upper.sh
source "$TESTLIB/upper.sh"
upper_setup
require_cmd fallocate

SRC=$WORK/src
MNT=$WORK/mnt
UP=$WORK/upper
REF=$WORK/ref
mkdir -p "$SRC" "$REF"
for f in ctime tail zero own inside; do
	head -c $((4 << 20)) /dev/urandom >"$SRC/$f"
done
upper_base "$SRC" base
upper_mount base "$MNT" "$UP"

say "chown(path, -1, -1) updates ctime"
python3 - "$MNT" <<'PY' || soft_fail "chown -1 -1 left ctime as it was"
import os, sys, time
m = sys.argv[1]
open(m + "/new", "w").close()
os.symlink("target", m + "/link")
bad = []
for p in ("ctime", "new", "link"):
    p = os.path.join(m, p)
    before = os.lstat(p).st_ctime_ns
    time.sleep(0.02)
    os.chown(p, -1, -1, follow_symlinks=False)
    if os.lstat(p).st_ctime_ns <= before:
        bad.append(p)
print("   ctime updated on the image file, a new file and a symlink" if not bad else
      "   not updated: %s" % bad)
sys.exit(1 if bad else 0)
PY

say "fallocate punch-hole and zero-range"
cp "$SRC"/{tail,zero,own,inside} "$REF/"
MiB=$((1 << 20))
# the same operations on the mount and on plain copies
for d in "$MNT" "$REF"; do
	fallocate --punch-hole --offset $((2 * MiB)) --length $((4 * MiB)) "$d/tail"
	fallocate --zero-range --offset $((3 * MiB)) --length $((2 * MiB)) "$d/zero"
	head -c 100000 /dev/zero | tr '\0' x >>"$d/own"
	fallocate --punch-hole --offset $((4 * MiB + 4096)) --length 8192 "$d/own"
	fallocate --punch-hole --offset $MiB --length 4096 "$d/inside"
done
for f in tail zero own inside; do
	cmp "$MNT/$f" "$REF/$f" || soft_fail "$f reads differently from a plain file after fallocate"
	[ "$(stat -c %s "$MNT/$f")" = "$(stat -c %s "$REF/$f")" ] || soft_fail "$f: size differs"
done
info "the mount reads what a plain file reads"
upper_umount "$MNT"

if sut_is cairn; then
	# image data kept by reference: the marker says how much, and the upper
	# has no data where the image part was (zero-range allocates, but
	# copies nothing)
	for f in tail zero own; do
		m=$(getfattr --only-values -n "$U_METACOPY" "$UP/tree/$f" 2>/dev/null || true)
		case $f in
		tail) want=$((2 * MiB)) ;;
		zero) want=$((3 * MiB)) ;;
		own) want=$((4 * MiB)) ;;
		esac
		[ "$m" = "$want" ] || [ "$f.$m" = own.y ] ||
			soft_fail "$f: metacopy marker '$m', want $want (the image part kept by reference)"
		d=$(python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
try:
    print(os.lseek(fd, 0, os.SEEK_DATA))
except OSError:
    print(os.fstat(fd).st_size)' "$UP/tree/$f")
		[ "$d" -ge "$want" ] || soft_fail "$f: the upper has data at $d, inside the image part: it was copied"
		info "$f: metacopy $m, first data at $d"
	done
	getfattr -n "$U_METACOPY" "$UP/tree/inside" >/dev/null 2>&1 &&
		soft_fail "inside: a hole inside the image part must copy the data"
	upper_mount base "$MNT" "$UP"
	for f in tail zero own inside; do
		cmp "$MNT/$f" "$REF/$f" || soft_fail "$f reads differently after a remount"
	done
	upper_umount "$MNT"
fi
finish
