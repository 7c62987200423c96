#!/bin/bash
# upper_xattr.sh - a container's own xattrs named like the layer's private
# ones (trusted.cairn.*; trusted.overlay.* for the overlayfs peers)
# round-trip: set on image and new files, directories and symlinks they
# read back, list, replace, remove, and survive a remount; UPPERDIR/tree
# stores them escaped (trusted.cairn.x.*), never under the private name.
# A container's "opaque" or "metacopy" xattr means nothing to the layer
# (the image entries under such a directory stay visible), an already
# escaped-looking name round-trips too, and the layer's own markers never
# show through the mount. user.* xattrs, ACLs and file capabilities set on
# image files round-trip as well.
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
mkdir -p "$SRC/d/sub" "$SRC/opq"
printf 'image\n' >"$SRC/d/file"
printf 'image\n' >"$SRC/d/meta"
printf 'child\n' >"$SRC/opq/child"
ln -s file "$SRC/d/link"
printf '#!/bin/sh\n' >"$SRC/d/prog"
chmod 755 "$SRC/d/prog"
upper_base "$SRC" base
upper_mount base "$MNT" "$UP"
P=$U_PRIV
E=$U_ESC
info "private prefix $P, escaped as $E"

say "the container sets ${P}* xattrs"
mkdir "$MNT/d/newdir"
printf 'new\n' >"$MNT/d/newfile"
rm -r "$MNT/d/sub"
mkdir "$MNT/d/sub" # an opaque directory of the layer's own
(
	set -e
	setfattr -n "${P}foo" -v bar "$MNT/d/file"
	setfattr -n "${P}foo" -v bar2 "$MNT/d/newfile"
	setfattr -n "${P}foo" -v dir "$MNT/d"
	setfattr -n "${P}foo" -v newdir "$MNT/d/newdir"
	setfattr -h -n "${P}foo" -v link "$MNT/d/link"
	setfattr -n "${P}opaque" -v y "$MNT/opq"
	setfattr -n "${P}metacopy" -v x "$MNT/d/meta"
	setfattr -n "${E}nested" -v esc "$MNT/d/file"
	setfattr -n "${P}gone" -v 1 "$MNT/d/file"
	setfattr -x "${P}gone" "$MNT/d/file"
	setfattr -n user.plain -v u "$MNT/d/file"
	setfacl -m u:1234:r "$MNT/d/file"
	setcap cap_net_raw+ep "$MNT/d/prog"
) || soft_fail "setting the xattrs failed"
python3 - "$MNT/d/file" "${P}foo" <<'EOF' || soft_fail "XATTR_CREATE on an existing ${P}foo"
import errno, os, sys
try:
    os.setxattr(sys.argv[1], sys.argv[2], b"x", os.XATTR_CREATE)
    sys.exit("   XATTR_CREATE of an existing xattr succeeded")
except OSError as e:
    if e.errno != errno.EEXIST:
        sys.exit("   XATTR_CREATE of an existing xattr: %s, want EEXIST" % errno.errorcode[e.errno])
EOF

# check_view WHEN
check_view() {
	local got
	x() { getfattr -h --only-values -n "$1" "$2" 2>/dev/null; }
	[ "$(x "${P}foo" "$MNT/d/file")" = bar ] || soft_fail "d/file: ${P}foo ($1)"
	[ "$(x "${P}foo" "$MNT/d/newfile")" = bar2 ] || soft_fail "d/newfile: ${P}foo ($1)"
	[ "$(x "${P}foo" "$MNT/d")" = dir ] || soft_fail "d: ${P}foo ($1)"
	[ "$(x "${P}foo" "$MNT/d/newdir")" = newdir ] || soft_fail "d/newdir: ${P}foo ($1)"
	[ "$(x "${P}foo" "$MNT/d/link")" = link ] || soft_fail "d/link: ${P}foo ($1)"
	[ "$(x "${P}opaque" "$MNT/opq")" = y ] || soft_fail "opq: ${P}opaque ($1)"
	[ "$(x "${P}metacopy" "$MNT/d/meta")" = x ] || soft_fail "d/meta: ${P}metacopy ($1)"
	[ "$(x "${E}nested" "$MNT/d/file")" = esc ] || soft_fail "d/file: ${E}nested ($1)"
	[ -z "$(x "${P}gone" "$MNT/d/file")" ] || soft_fail "d/file: the removed ${P}gone is back ($1)"
	[ "$(x user.plain "$MNT/d/file")" = u ] || soft_fail "d/file: user.plain ($1)"
	[ "$(cat "$MNT/opq/child" 2>&1)" = child ] || soft_fail "opq/child is hidden by the container's ${P}opaque ($1)"
	[ "$(cat "$MNT/d/meta" 2>&1)" = image ] || soft_fail "d/meta's bytes after the container's ${P}metacopy ($1)"
	getfacl -n "$MNT/d/file" 2>/dev/null | grep -q '^user:1234:r--' || soft_fail "d/file: the ACL ($1)"
	getcap "$MNT/d/prog" | grep -q cap_net_raw || soft_fail "d/prog: the capability ($1)"
	# the layer's own markers never show: d/sub is opaque in the upper
	got=$(getfattr -h -d -m - "$MNT/d/sub" 2>/dev/null | grep -v '^#' | grep . || true)
	[ -z "$got" ] || soft_fail "d/sub (opaque in the upper) shows xattrs: $got ($1)"
	got=$(getfattr -h -d -m - "$MNT/d/file" 2>/dev/null | grep "^$P" | cut -d= -f1 | sort | tr '\n' ' ')
	[ "$got" = "$(printf '%s\n' "${P}foo" "${E}nested" | sort | tr '\n' ' ')" ] ||
		soft_fail "d/file lists the ${P}* names '$got' ($1)"
	info "checked the view ($1)"
}
check_view mounted

say "UPPERDIR/tree stores them escaped"
upper_umount "$MNT"
python3 - "$UP/tree" "$P" "$E" <<'EOF' || soft_fail "the upper's xattr names"
import os, sys
tree, P, E = sys.argv[1:4]
bad = []
def xs(rel):
    p = os.path.join(tree, rel)
    return {n: os.getxattr(p, n, follow_symlinks=False) for n in os.listxattr(p, follow_symlinks=False)}
want = {"d/file": {E + "foo": b"bar", E + E[len(P):] + "nested": b"esc"},
        "d/newfile": {E + "foo": b"bar2"}, "d": {E + "foo": b"dir"}, "d/newdir": {E + "foo": b"newdir"},
        "d/link": {E + "foo": b"link"}, "opq": {E + "opaque": b"y"}, "d/meta": {E + "metacopy": b"x"}}
for rel, w in want.items():
    got = xs(rel)
    for n, v in w.items():
        if got.get(n) != v:
            bad.append("%s: %s is %r, want %r" % (rel, n, got.get(n), v))
    if P + "foo" in got:
        bad.append("%s: stores %sfoo unescaped" % (rel, P))
    if E + "gone" in got:
        bad.append("%s: still stores the removed %sgone" % (rel, E))
    print("   %s: %s" % (rel, " ".join(sorted(n for n in got if n.startswith(P)))))
if xs("opq").get(P + "opaque") is not None:
    bad.append("opq: the container's xattr made it opaque")
for b in bad:
    print("   " + b)
sys.exit(1 if bad else 0)
EOF

say "mounted again: the same"
upper_mount base "$MNT" "$UP"
check_view remounted
setfattr -x "${P}foo" "$MNT/d/file" || soft_fail "removing ${P}foo failed"
upper_umount "$MNT"
upper_mount base "$MNT" "$UP"
[ -z "$(getfattr -h --only-values -n "${P}foo" "$MNT/d/file" 2>/dev/null)" ] ||
	soft_fail "the removed ${P}foo is back after a remount"
upper_umount "$MNT"
getfattr -n "${E}foo" "$UP/tree/d/file" >/dev/null 2>&1 && soft_fail "the upper still stores the removed ${E}foo"

finish
