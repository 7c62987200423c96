#!/bin/bash
# upper_unlinked.sh - a file unlinked (or renamed over) while open keeps
# working through its descriptors: fstat shows st_nlink 0, reads return
# its bytes, writes, ftruncate, fchmod, fsetxattr and fsync succeed and
# are seen through a second descriptor, mmap works; the name is gone from
# the directory at once, and a new file can take it. Files from the image
# and files created in the upper, both. After the last close and a
# remount, nothing of them is left: not in the view, not in UPPERDIR/tree.
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
mkdir -p "$SRC/d"
head -c 300000 /dev/urandom >"$SRC/d/image-a"
printf 'image file b\n' >"$SRC/d/image-b"
printf 'image file c\n' >"$SRC/d/image-c"
printf 'replacement\n' >"$SRC/d/other"
setfattr -n user.img -v 1 "$SRC/d/image-b"
upper_base "$SRC" base
upper_mount base "$MNT" "$UP"

say "unlinked while open: fstat nlink 0, I/O through the descriptors"
timeout -k 5 120 python3 - "$MNT" "$SRC" <<'EOF' || soft_fail "open unlinked files"
import errno, mmap, os, sys
mnt, src = sys.argv[1:3]
bad = []
os.chdir(mnt)
with open("d/new", "wb") as f:
    f.write(b"created in the upper\n" * 100)

def check(name, how, orig):
    p = "d/" + name
    fd = os.open(p, os.O_RDWR)
    ro = os.open(p, os.O_RDONLY)
    if how == "unlink":
        os.unlink(p)
    else:  # renamed over by another file
        os.rename("d/other", p)
    st = os.fstat(fd)
    if st.st_nlink != 0:
        bad.append("%s (%s): fstat st_nlink %d, want 0" % (name, how, st.st_nlink))
    if how == "unlink" and name in os.listdir("d"):
        bad.append("%s: still listed after unlink" % name)
    if how == "rename" and open(p, "rb").read() != b"replacement\n":
        bad.append("%s: the name does not show the file renamed over it" % name)
    if os.pread(ro, len(orig) + 10, 0) != orig:
        bad.append("%s (%s): reading the unlinked file gives other bytes" % (name, how))
    if os.pwrite(fd, b"WRITTEN", 3) != 7:
        bad.append("%s: short write" % name)
    want = orig[:3] + b"WRITTEN" + orig[10:]
    if os.pread(ro, len(want) + 10, 0) != want:
        bad.append("%s (%s): a write through one descriptor is not seen through the other" % (name, how))
    os.ftruncate(fd, 5000)
    want = (want + bytes(5000))[:5000]
    if os.fstat(ro).st_size != 5000 or os.pread(ro, 6000, 0) != want:
        bad.append("%s (%s): after ftruncate: size %d" % (name, how, os.fstat(ro).st_size))
    os.fchmod(fd, 0o600)
    if os.fstat(ro).st_mode & 0o7777 != 0o600:
        bad.append("%s (%s): fchmod not seen" % (name, how))
    os.setxattr(fd, "user.x", b"on an unlinked file")
    if os.getxattr(ro, "user.x") != b"on an unlinked file":
        bad.append("%s (%s): fsetxattr not seen" % (name, how))
    os.fsync(fd)
    m = mmap.mmap(fd, 4096)
    m[0:4] = b"MMAP"
    m.flush()
    m.close()
    if os.pread(ro, 4, 0) != b"MMAP":
        bad.append("%s (%s): an mmap write is not seen" % (name, how))
    if os.fstat(fd).st_nlink != 0:
        bad.append("%s (%s): st_nlink %d after the writes, want 0" % (name, how, os.fstat(fd).st_nlink))
    # the name is free again (unlink) and takes a new file
    if how == "unlink":
        with open(p, "wb") as f:
            f.write(b"a new file under the old name\n")
        if os.pread(ro, 4, 0) != b"MMAP":
            bad.append("%s: the new file under the name changed the unlinked one" % name)
        os.unlink(p)
    os.close(fd)
    os.close(ro)

check("image-a", "unlink", open(os.path.join(src, "d/image-a"), "rb").read())
check("image-b", "unlink", b"image file b\n")
check("new", "unlink", b"created in the upper\n" * 100)
check("image-c", "rename", b"image file c\n")
# a directory removed while it is the working directory
os.mkdir("d/cwd")
os.chdir("d/cwd")
os.rmdir("../cwd")
try:
    os.open("x", os.O_CREAT | os.O_WRONLY)
    bad.append("creating a file in a removed working directory succeeded")
except OSError as e:
    if e.errno != errno.ENOENT:
        bad.append("creating a file in a removed working directory: %s, want ENOENT" % errno.errorcode[e.errno])
if os.stat(".").st_nlink != 0:
    pass  # st_nlink of a removed directory varies by filesystem
os.chdir(mnt)
if sorted(os.listdir("d")) != ["image-c"]:
    bad.append("d/ lists %r, want ['image-c']" % sorted(os.listdir("d")))
for b in bad:
    print("   " + b)
if bad:
    sys.exit(1)
print("   ok: 3 unlinked and 1 renamed-over file kept working through their descriptors")
EOF

say "after the last close and a remount, nothing of them is left"
upper_umount "$MNT"
upper_mount base "$MNT" "$UP"
got=$(cd "$MNT/d" && ls -A | tr '\n' ' ')
[ "$got" = "image-c " ] || soft_fail "after a remount d/ lists '$got', want 'image-c'"
[ "$(cat "$MNT/d/image-c")" = replacement ] || soft_fail "after a remount d/image-c is not the file renamed over it"
upper_umount "$MNT"
python3 - "$UP/tree" <<'EOF' || soft_fail "the upper keeps what was unlinked"
import os, stat, sys
bad = []
for d, dirs, files in os.walk(sys.argv[1]):
    for n in files:
        p = os.path.join(d, n)
        st = os.lstat(p)
        whiteout = stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
        rel = os.path.relpath(p, sys.argv[1])
        if rel in ("d/image-a", "d/image-b", "d/other") and whiteout:
            continue
        if rel == "d/image-c" and stat.S_ISREG(st.st_mode):
            continue
        bad.append("%s (%s)" % (rel, "whiteout" if whiteout else oct(st.st_mode)))
print("   upper tree: " + " ".join(sorted(os.path.relpath(os.path.join(d, n), sys.argv[1])
                                         for d, _, fs in os.walk(sys.argv[1]) for n in fs)))
if bad:
    print("   unexpected in the upper: " + ", ".join(bad))
    sys.exit(1)
EOF

finish
