#!/bin/bash
# upper_hardlinks.sh - hard-link groups from the image stay together on the
# writable layer: after a write, a truncate, a chmod, a chown, a utimens or
# a setxattr through one name, every name of the group shows it, with one
# st_ino and the right st_nlink; new links to an image file join its group
# (st_nlink grows on every name), unlinking one name lowers it; a renamed
# name stays in the group. The same after a remount. Groups of regular
# files and of symlinks.
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
mkdir -p "$SRC/a" "$SRC/b/c" "$SRC/s"
for g in 1 2 3 4 5 6; do
	printf 'group %d\n' "$g" >"$SRC/a/g$g"
	ln "$SRC/a/g$g" "$SRC/b/g$g-two"
	ln "$SRC/a/g$g" "$SRC/b/c/g$g-three"
done
head -c 1000000 /dev/urandom >"$SRC/a/big"
ln "$SRC/a/big" "$SRC/b/big2"
ln -s target "$SRC/s/l1"
ln -P "$SRC/s/l1" "$SRC/s/l2"
upper_base "$SRC" base
upper_mount base "$MNT" "$UP"

# check_groups: every group's names share st_ino, st_nlink, mode, owner,
# times, xattrs and bytes; with the expected names and link counts
cat >"$WORK/groups.py" <<'EOF'
import hashlib, os, sys
mnt = sys.argv[1]
want = {  # group -> names
    "g1": ["a/g1", "b/g1-two", "b/c/g1-three"],
    "g2": ["a/g2", "b/g2-two", "b/c/g2-three"],
    "g3": ["a/g3", "b/g3-two", "b/c/g3-three"],
    "g4": ["a/g4", "b/g4-two", "b/c/g4-three", "new-link", "b/new-link2"],
    "g5": ["b/g5-two", "b/c/g5-three"],
    "g6": ["a/g6-renamed", "b/g6-two", "b/c/g6-three"],
    "big": ["a/big", "b/big2"],
    "sym": ["s/l1", "s/l2"],
}
bad = []
for g, names in sorted(want.items()):
    sts = []
    for n in names:
        p = os.path.join(mnt, n)
        st = os.lstat(p)
        data = os.readlink(p) if os.path.islink(p) else hashlib.sha256(open(p, "rb").read()).hexdigest()
        xs = sorted((x, os.getxattr(p, x, follow_symlinks=False)) for x in os.listxattr(p, follow_symlinks=False))
        sts.append((n, st.st_ino, st.st_nlink, st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, st.st_size, data, xs))
    ref = sts[0]
    for s in sts:
        if s[1:] != ref[1:]:
            bad.append("%s: %s differs from %s: %s vs %s" % (g, s[0], ref[0], s[1:], ref[1:]))
    if ref[2] != len(names):
        bad.append("%s: st_nlink %d, want %d" % (g, ref[2], len(names)))
for n in ("a/g5", "a/g6"):
    if os.path.lexists(os.path.join(mnt, n)):
        bad.append("%s still exists" % n)
for b in bad:
    print("   " + b[:400])
if bad:
    sys.exit(1)
print("   ok: %d groups: one inode each, same attributes and bytes on every name" % len(want))
EOF

say "change each group through one name"
timeout -k 5 60 python3 - "$MNT" <<'EOF' || soft_fail "the operations on the groups failed"
import os, sys
os.chdir(sys.argv[1])
with open("b/g1-two", "a") as f:          # a write
    f.write("appended through b/g1-two\n")
os.truncate("b/c/g2-three", 3)            # a truncate
os.chmod("a/g3", 0o600)                    # metadata only
os.chown("a/g3", 1234, 5678)
os.utime("a/g3", ns=(1, 1_000_000_000_123))
os.setxattr("b/g3-two", "user.k", b"v")
os.link("a/g4", "new-link")                # new links to an image file
os.link("b/c/g4-three", "b/new-link2")
os.unlink("a/g5")                          # one name less
os.rename("a/g6", "a/g6-renamed")          # a renamed name
with open("a/g6-renamed", "r+") as f:
    f.write("G")
fd = os.open("b/big2", os.O_RDWR)         # a write in the middle of a big file
os.pwrite(fd, b"X" * 10000, 500000)
os.close(fd)
os.lchown("s/l2", 42, 43)                  # symlinks
EOF
timeout -k 5 60 python3 "$WORK/groups.py" "$MNT" || soft_fail "hard-link groups split on the mount"

say "mounted again, caches dropped: still together"
upper_umount "$MNT"
drop_caches
upper_mount base "$MNT" "$UP"
timeout -k 5 60 python3 "$WORK/groups.py" "$MNT" || soft_fail "hard-link groups split after a remount"
upper_umount "$MNT"

finish
