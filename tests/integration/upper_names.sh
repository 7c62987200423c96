#!/bin/bash
# upper_names.sh - long names and long paths on the writable layer. Names
# over 255 bytes give ENAMETOOLONG for every call that makes or looks up an
# entry; 255-byte names work everywhere (create, mkdir, symlink, link,
# rename to and from, whiteout of an image entry with such a name). Paths
# near PATH_MAX work: an image file at the bottom of a 3.6 KB deep chain is
# copied up, renamed and deleted, and new entries are made until the path
# (relative to the mount) is 4095 bytes; 4096 bytes gives ENAMETOOLONG.
# The upper's own paths are longer than PATH_MAX there: the daemon must
# work from directory fds. Everything is still there after a remount.
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

say "an image with 255-byte names and a deep chain of 200-byte directory names"
python3 - "$SRC" <<'EOF'
import os, sys
root = sys.argv[1]
os.makedirs(os.path.join(root, "names"))
for c in "ABC":
    with open(os.path.join(root, "names", c * 255), "w") as f:
        f.write(c + "\n")
os.mkdir(os.path.join(root, "names", "D" * 255))
with open(os.path.join(root, "names", "D" * 255, "inside"), "w") as f:
    f.write("inside\n")
deep = os.path.join(root, *(["%02d" % i + "d" * 198 for i in range(18)]))
os.makedirs(deep)
with open(os.path.join(deep, "f"), "w") as f:
    f.write("deep file\n")
with open(os.path.join(deep, "g"), "w") as f:
    f.write("another\n")
EOF
upper_base "$SRC" base
upper_mount base "$MNT" "$UP"

say "names over 255 bytes: ENAMETOOLONG; 255 bytes: fine"
timeout -k 5 120 python3 - "$MNT" <<'EOF' || soft_fail "long names"
import errno, os, sys
mnt = sys.argv[1]
os.chdir(mnt)
bad = []
def expect(what, call, err):
    try:
        r = call()
        if isinstance(r, int):
            os.close(r)
        if err:
            bad.append("%s: succeeded, want %s" % (what, errno.errorcode[err]))
    except OSError as e:
        if e.errno != err:
            bad.append("%s: %s, want %s" % (what, errno.errorcode.get(e.errno), errno.errorcode.get(err, "success")))
os.mkdir("new")
for d in ("names", "new", "."):          # an image dir, a new dir, the root
    for n in (256, 300, 1000, 4000):
        p = os.path.join(d, "x" * n)
        E = errno.ENAMETOOLONG
        expect("create %d in %s" % (n, d), lambda: os.open(p, os.O_CREAT | os.O_WRONLY, 0o644), E)
        expect("mkdir %d in %s" % (n, d), lambda: os.mkdir(p), E)
        expect("symlink %d in %s" % (n, d), lambda: os.symlink("t", p), E)
        expect("mkfifo %d in %s" % (n, d), lambda: os.mkfifo(p), E)
        expect("link to %d in %s" % (n, d), lambda: os.link("names/" + "A" * 255, p), E)
        expect("rename to %d in %s" % (n, d), lambda: os.rename("names/" + "A" * 255, p), E)
        expect("stat %d in %s" % (n, d), lambda: os.lstat(p), E)
        expect("unlink %d in %s" % (n, d), lambda: os.unlink(p), E)
    L = os.path.join(d, "L" * 255)
    expect("create 255 in %s" % d, lambda: os.open(L, os.O_CREAT | os.O_WRONLY, 0o644), 0)
    expect("rename 255 -> 255 in %s" % d, lambda: os.rename(L, os.path.join(d, "M" * 255)), 0)
    expect("link 255 in %s" % d, lambda: os.link(os.path.join(d, "M" * 255), os.path.join(d, "N" * 255)), 0)
    expect("mkdir 255 in %s" % d, lambda: os.mkdir(os.path.join(d, "P" * 255)), 0)
    expect("symlink 255 in %s" % d, lambda: os.symlink("Q" * 255, os.path.join(d, "Q" * 255)), 0)
    expect("setxattr on 255 in %s" % d, lambda: os.setxattr(os.path.join(d, "M" * 255), "user.k", b"v"), 0)
# image entries with 255-byte names: rename away, delete (whiteouts), rename a dir
expect("rename an image file to a 255-byte name", lambda: os.rename("names/" + "A" * 255, "new/" + "R" * 255), 0)
expect("unlink an image file with a 255-byte name", lambda: os.unlink("names/" + "B" * 255), 0)
expect("rename an image dir with a 255-byte name", lambda: os.rename("names/" + "D" * 255, "new/" + "S" * 255), 0)
expect("the moved dir's content", lambda: os.stat("new/" + "S" * 255 + "/inside"), 0)
# symlink targets up to PATH_MAX - 1
expect("symlink with a 4095-byte target", lambda: os.symlink("t" * 4095, "new/tlong"), 0)
expect("symlink with a 4096-byte target", lambda: os.symlink("t" * 4096, "new/ttoolong"), errno.ENAMETOOLONG)
if os.path.exists("new/tlong") and os.readlink("new/tlong") != "t" * 4095:
    bad.append("readlink of the 4095-byte target differs")
want = {"names": {"C" * 255, "L" * 255 if False else None}}
names = set(os.listdir("names"))
for n in ("C" * 255, "M" * 255, "N" * 255, "P" * 255, "Q" * 255):
    if n not in names:
        bad.append("names/ lacks %s... after the operations" % n[:5])
for n in ("A" * 255, "B" * 255, "D" * 255, "L" * 255):
    if n in names:
        bad.append("names/ still lists %s..." % n[:5])
for b in bad:
    print("   " + b)
if bad:
    sys.exit(1)
print("   ok: ENAMETOOLONG over 255 bytes for 8 calls in 3 kinds of directory; 255-byte names work")
EOF

say "paths up to PATH_MAX - 1 (4095 bytes from the mount's root)"
timeout -k 5 120 python3 - "$MNT" <<'EOF' || soft_fail "long paths"
import errno, os, sys
os.chdir(sys.argv[1])
bad = []
deep = "/".join("%02d" % i + "d" * 198 for i in range(18))
f = deep + "/f"
# copy-up of an image file whose upper path is longer than PATH_MAX
with open(f, "a") as fh:
    fh.write("appended\n")
if open(f).read() != "deep file\nappended\n":
    bad.append("the deep image file after an append: %r" % open(f).read())
os.chmod(deep + "/g", 0o600)
os.rename(deep + "/g", deep + "/g2")
os.unlink(deep + "/g2")
if os.listdir(deep) != ["f"]:
    bad.append("the deep directory lists %r, want ['f']" % os.listdir(deep))
# new directories down to 4095 bytes
p = deep
while len(p) + 1 + 200 < 4095 - 10:
    p += "/" + "e" * 200
    os.mkdir(p)
last = p + "/" + "z" * (4095 - len(p) - 1)
assert len(last) == 4095, len(last)
fd = os.open(last, os.O_CREAT | os.O_RDWR, 0o644)
os.write(fd, b"at PATH_MAX - 1\n")
os.close(fd)
if open(last, "rb").read() != b"at PATH_MAX - 1\n":
    bad.append("the 4095-byte path does not read back")
st = os.stat(last)
os.chmod(last, 0o640)
os.setxattr(last, "user.deep", b"1")
try:
    os.stat(last + "x")
    bad.append("stat of a 4096-byte path succeeded")
except OSError as e:
    if e.errno != errno.ENAMETOOLONG:
        bad.append("stat of a 4096-byte path: %s, want ENAMETOOLONG" % errno.errorcode.get(e.errno))
try:
    os.close(os.open(last + "x", os.O_CREAT | os.O_WRONLY))
    bad.append("create of a 4096-byte path succeeded")
except OSError as e:
    if e.errno != errno.ENAMETOOLONG:
        bad.append("create of a 4096-byte path: %s, want ENAMETOOLONG" % errno.errorcode.get(e.errno))
for b in bad:
    print("   " + b)
if bad:
    sys.exit(1)
print("   ok: a deep image file copied up, renamed, deleted; a file at a 4095-byte path; 4096 bytes: ENAMETOOLONG")
EOF

# fdump DIR OUT: a listing that works below PATH_MAX (treedump.py uses
# whole paths): os.fwalk and calls relative to directory fds
fdump() {
	timeout -k 5 120 python3 - "$1" >"$2" <<'EOF'
import hashlib, os, stat, sys
for d, dirs, files, dfd in os.fwalk(sys.argv[1]):
    dirs.sort()
    for n in sorted(dirs + files):
        st = os.lstat(n, dir_fd=dfd)
        extra = ""
        if stat.S_ISREG(st.st_mode):
            fd = os.open(n, os.O_RDONLY, dir_fd=dfd)
            extra = hashlib.sha256(os.read(fd, 1 << 20)).hexdigest()
            os.close(fd)
        elif stat.S_ISLNK(st.st_mode):
            extra = os.readlink(n, dir_fd=dfd)
        p = "/proc/self/fd/%d/%s" % (dfd, n)  # short, whatever the depth
        x = sorted((a, os.getxattr(p, a, follow_symlinks=False))
                   for a in os.listxattr(p, follow_symlinks=False))
        print(os.path.relpath(os.path.join(d, n), sys.argv[1]), oct(st.st_mode), st.st_uid, st.st_gid,
              st.st_size, st.st_mtime_ns, extra, x)
EOF
}

say "mounted again: the long names and paths are there"
fdump "$MNT" "$WORK/before.dump" || soft_fail "listing the mount failed"
upper_umount "$MNT"
upper_mount base "$MNT" "$UP"
fdump "$MNT" "$WORK/after.dump" || soft_fail "listing the mount after the remount failed"
[ "$(wc -l <"$WORK/before.dump")" -gt 40 ] || soft_fail "the listing of the mount is too short"
same_dump "$WORK/before.dump" "$WORK/after.dump" "before and after the remount"
upper_umount "$MNT"

finish
