#!/bin/bash
# upper_format.sh - the upper directory's format. Deleting an image file, a
# symlink, a device or a whole image directory leaves a whiteout in
# UPPERDIR/tree: a char device 0/0 of the same name; a directory removed
# and made again (and an image directory replaced by a new one through a
# rename) is opaque (the opaque xattr "y"); deleting what only the upper
# had leaves nothing; a new file over a whiteout replaces it. The mount
# never shows whiteouts or markers, and a container's own mknod c 0 0 is
# refused with EPERM or kept as a real device (never taken for a
# whiteout). cairn: UPPERDIR/work exists and UPPERDIR/upper.json names the
# format and the base image.
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
mkdir -p "$SRC"/{files,dirs/gone/sub,dirs/again/sub,dirs/replaced,dirs/keep,dev}
for f in a b c d; do printf '%s\n' "$f" >"$SRC/files/$f"; done
printf 'x\n' >"$SRC/dirs/gone/sub/x"
printf 'y\n' >"$SRC/dirs/again/y"
printf 'z\n' >"$SRC/dirs/again/sub/z"
printf 'r\n' >"$SRC/dirs/replaced/r"
printf 'k\n' >"$SRC/dirs/keep/k"
ln -s a "$SRC/files/link"
mknod "$SRC/dev/null" c 1 3
mkfifo "$SRC/dev/fifo"
upper_base "$SRC" base
upper_mount base "$MNT" "$UP"

say "deletions, opaque directories, upper-only entries"
(
	set -e
	cd "$MNT"
	rm files/a files/link dev/null dev/fifo
	rm -r dirs/gone
	rm -r dirs/again
	mkdir dirs/again
	printf 'new\n' >dirs/again/new
	mkdir dirs/fresh
	printf 'tmp\n' >dirs/fresh/tmp
	rm -r dirs/fresh
	printf 'tmp\n' >files/tmp
	rm files/tmp
	rm files/b
	printf 'B\n' >files/b
	mkdir dirs/new
	printf 'n\n' >dirs/new/n
	mv dirs/new dirs/replaced2
	rm -r dirs/replaced
	mv dirs/replaced2 dirs/replaced
) || soft_fail "the operations on the mount failed"

# view_is: what the container sees
view_is() {
	local got want
	got=$(cd "$MNT" && find . -mindepth 1 | LC_ALL=C sort | tr '\n' ' ')
	want="./dev ./dirs ./dirs/again ./dirs/again/new ./dirs/keep ./dirs/keep/k ./dirs/replaced ./dirs/replaced/n ./files ./files/b ./files/c ./files/d "
	[ "$got" = "$want" ] || soft_fail "the mount shows: $got; want: $want ($1)"
	[ "$(cat "$MNT/files/b")" = B ] || soft_fail "files/b is not the new file ($1)"
	getfattr -d -m - -R "$MNT" 2>/dev/null | grep -E "^${U_PRIV//./\\.}" &&
		soft_fail "the mount shows $U_PRIV* markers ($1)"
	info "the mount shows what the container made ($1)"
}
view_is mounted

say "UPPERDIR/tree: whiteouts, opaque directories, nothing for upper-only entries"
upper_umount "$MNT"
python3 - "$UP/tree" "$U_OPAQUE" <<'EOF' || soft_fail "the upper's format"
import os, stat, sys
tree, opaque = sys.argv[1:3]
bad = []
def wh(rel):
    p = os.path.join(tree, rel)
    try:
        st = os.lstat(p)
    except OSError:
        bad.append("%s: no whiteout" % rel)
        return
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != 0:
        bad.append("%s: a whiteout must be a char device 0/0, is mode %o rdev %d:%d" % (
            rel, st.st_mode, os.major(st.st_rdev), os.minor(st.st_rdev)))
def opq(rel, want=True):
    p = os.path.join(tree, rel)
    if not os.path.isdir(p):
        bad.append("%s: not a directory in the upper" % rel)
        return
    try:
        v = os.getxattr(p, opaque, follow_symlinks=False)
    except OSError:
        v = None
    if want and v != b"y":
        bad.append("%s: %s is %r, want b'y'" % (rel, opaque, v))
    if not want and v is not None:
        bad.append("%s: opaque (%s=%r), want not" % (rel, opaque, v))
def absent(rel):
    if os.path.lexists(os.path.join(tree, rel)):
        bad.append("%s: in the upper, but the image never had it" % rel)
for rel in ("files/a", "files/link", "dev/null", "dev/fifo", "dirs/gone"):
    wh(rel)
opq("dirs/again")
opq("dirs/replaced")
for rel in ("dirs/fresh", "files/tmp", "dirs/new", "dirs/replaced2", "dirs/gone/sub", "dirs/again/sub",
            "dirs/keep", "files/c"):
    absent(rel)
b = os.path.join(tree, "files/b")
if not (os.path.isfile(b) and open(b).read() == "B\n"):
    bad.append("files/b: not the new regular file")
listing = []
for d, dirs, files in os.walk(tree):
    for n in sorted(dirs + files):
        p = os.path.join(d, n)
        st = os.lstat(p)
        kind = "whiteout" if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0 else stat.filemode(st.st_mode)[0]
        listing.append("%s(%s)" % (os.path.relpath(p, tree), kind))
print("   upper tree: " + " ".join(sorted(listing)))
for x in bad:
    print("   " + x)
sys.exit(1 if bad else 0)
EOF
[ -d "$UP/work" ] || soft_fail "no UPPERDIR/work"
if sut_is cairn; then
	python3 - "$UP/upper.json" <<'EOF' || soft_fail "UPPERDIR/upper.json"
import json, sys
j = json.load(open(sys.argv[1]))
print("   upper.json: %s" % json.dumps(j, sort_keys=True)[:300])
text = json.dumps(j)
if not any(k in j for k in ("format", "version")):
    sys.exit("   upper.json names no format")
if "image" not in text and "base" not in text:
    sys.exit("   upper.json names no base image")
EOF
fi

say "mounted again: the same view; a container's mknod c 0 0"
upper_mount base "$MNT" "$UP"
view_is remounted
if mknod "$MNT/dirs/keep/zero" c 0 0 2>"$WORK/mknod.err"; then
	upper_umount "$MNT"
	upper_mount base "$MNT" "$UP"
	[ "$(stat -c '%F %t:%T' "$MNT/dirs/keep/zero" 2>&1)" = "character special file 0:0" ] ||
		soft_fail "a container's char 0/0 device did not survive a remount as itself"
	[ -e "$MNT/dirs/keep/k" ] || soft_fail "a container's char 0/0 device hides entries"
	info "mknod c 0 0: kept as a device"
else
	if grep -q 'Operation not permitted' "$WORK/mknod.err"; then
		info "mknod c 0 0: EPERM"
	else
		soft_fail "mknod c 0 0: $(cat "$WORK/mknod.err"), want EPERM or success"
	fi
fi
upper_umount "$MNT"

finish
