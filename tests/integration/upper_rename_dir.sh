#!/bin/bash
# upper_rename_dir.sh - renaming directories of the image works (no EXDEV):
# within their parent, across directories, twice in a row, over an empty
# image directory, with RENAME_EXCHANGE against another image directory,
# a directory whose content is partly copied up, and a parent of an
# already renamed directory. The moved subtrees keep every entry and
# attribute (treedump against the source), the old names are gone, a new
# directory made under an old name is empty (it does not show the image's
# old content), and a remount shows the same tree.
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

say "an image of nested directories"
python3 - "$SRC" <<'EOF'
import os, sys
root = sys.argv[1]
def tree(d, depth, tag):
    os.makedirs(d)
    for i in range(3):
        with open(os.path.join(d, "f%d" % i), "w") as f:
            f.write("%s %d\n" % (tag, i))
    os.symlink("f0", os.path.join(d, "l"))
    os.setxattr(os.path.join(d, "f1"), "user.t", tag.encode())
    os.chmod(os.path.join(d, "f2"), 0o4750)
    if depth:
        for s in ("x", "y"):
            tree(os.path.join(d, s), depth - 1, tag + "/" + s)
for t in ("alpha", "beta", "gamma", "delta", "eps", "zeta", "eta"):
    tree(os.path.join(root, "top", t), 2, t)
os.makedirs(os.path.join(root, "other/empty"))
os.makedirs(os.path.join(root, "other/deeper/still"))
os.mkdir(os.path.join(root, "top/alpha/x/emptydir"))
EOF
upper_base "$SRC" base
upper_mount base "$MNT" "$UP"

# subtree_is MNTPATH SRCPATH WHAT: the moved subtree equals the source's
subtree_is() {
	dump "$MNT/$1" "$WORK/got.dump" --ignore-root
	dump "$SRC/$2" "$WORK/want.dump" --ignore-root
	same_dump "$WORK/want.dump" "$WORK/got.dump" "$3"
}

say "renames of image directories"
timeout -k 5 60 python3 - "$MNT" <<'EOF' || soft_fail "directory renames failed"
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
os.chdir(sys.argv[1])
bad = []
def do(what, call):
    try:
        call()
    except OSError as e:
        bad.append("%s: %s" % (what, errno.errorcode.get(e.errno, e.errno)))
def exchange(a, b):
    if libc.renameat2(-100, a.encode(), -100, b.encode(), 2) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
do("within the parent", lambda: os.rename("top/alpha", "top/alpha2"))
do("across directories", lambda: os.rename("top/beta", "other/beta"))
do("deeper, across", lambda: os.rename("top/gamma/x", "other/deeper/still/gx"))
do("twice: first", lambda: os.rename("top/delta", "top/delta1"))
do("twice: second", lambda: os.rename("top/delta1", "other/delta2"))
do("over an empty image directory", lambda: os.rename("top/eps", "other/empty"))
do("RENAME_EXCHANGE with another image directory", lambda: exchange("top/zeta", "top/eta"))
# partly copied up, then moved
with open("top/gamma/y/f0", "a") as f:
    f.write("copied up\n")
os.chmod("top/gamma/y/x", 0o700)
do("partly copied up", lambda: os.rename("top/gamma/y", "gy"))
# the parent of a renamed directory
do("the parent of a renamed directory", lambda: os.rename("other", "other2"))
# a new directory under an old name is empty
do("mkdir top/alpha after its rename", lambda: os.mkdir("top/alpha"))
if os.path.isdir("top/alpha") and os.listdir("top/alpha"):
    bad.append("a new directory named like a renamed image directory shows %r" % os.listdir("top/alpha"))
do("mkdir top/beta after its rename", lambda: os.mkdir("top/beta"))
do("create top/beta/new", lambda: open("top/beta/new", "w").close())
if os.path.isdir("top/beta") and os.listdir("top/beta") != ["new"]:
    bad.append("top/beta (new) lists %r" % os.listdir("top/beta"))
for gone in ("top/delta", "top/delta1", "top/eps", "top/gamma/x", "top/gamma/y"):
    if os.path.lexists(gone):
        bad.append("%s still exists" % gone)
for b in bad:
    print("   " + b)
if bad:
    sys.exit(1)
print("   ok: 9 renames, no EXDEV")
EOF

check_all() {
	subtree_is top/alpha2 top/alpha "top/alpha -> top/alpha2 ($1)"
	subtree_is other2/beta top/beta "top/beta -> other/beta ($1)"
	subtree_is other2/deeper/still/gx top/gamma/x "top/gamma/x -> other/deeper/still/gx ($1)"
	subtree_is other2/delta2 top/delta "top/delta -> top/delta1 -> other/delta2 ($1)"
	subtree_is other2/empty top/eps "top/eps -> over other/empty ($1)"
	subtree_is top/zeta top/eta "exchange: top/zeta shows eta ($1)"
	subtree_is top/eta top/zeta "exchange: top/eta shows zeta ($1)"
	[ "$(cat "$MNT/gy/f0")" = "$(printf 'gamma/y 0\ncopied up')" ] || soft_fail "gy/f0 lost its write ($1)"
	[ "$(stat -c %a "$MNT/gy/x")" = 700 ] || soft_fail "gy/x lost its chmod ($1)"
	[ -z "$(ls -A "$MNT/top/alpha")" ] || soft_fail "top/alpha (new) is not empty ($1)"
	[ "$(ls -A "$MNT/top/beta")" = new ] || soft_fail "top/beta (new) lists $(ls -A "$MNT/top/beta" | tr '\n' ' ') ($1)"
	dump "$MNT" "$WORK/all-$1.dump"
}
check_all mounted
say "mounted again: the same tree"
upper_umount "$MNT"
drop_caches
upper_mount base "$MNT" "$UP"
check_all remounted
same_dump "$WORK/all-mounted.dump" "$WORK/all-remounted.dump" "before and after the remount"
upper_umount "$MNT"

finish
