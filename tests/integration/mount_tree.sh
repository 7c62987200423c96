#!/bin/bash
# mount_tree.sh - a mounted image shows exactly the imported tree: every
# kind of entry and attribute (treedump of the mount == treedump of the
# source, the root included), hard links as one inode with the right
# st_nlink, stable inode numbers, ACLs and capabilities, ENAMETOOLONG for
# names over 255 bytes, statfs, a read-only mount, sensible st_blocks, a
# directory of 100000 entries listed completely, in a stable order, and
# resumable at a telldir offset, and SEEK_DATA/SEEK_HOLE on sparse files.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
mount_setup

SRC=$WORK/src
STORE=$WORK/store
MNT=$WORK/mnt
BIG=bigdir
NBIG=100000
mkdir -p "$MNT"

# drop the kernel's dentry, inode and page caches: the next walk asks the
# daemon again (FORGET, then fresh LOOKUPs). This is machine-wide:
# CAIRN_TEST_NO_DROP_CACHES=1 skips it (e.g. beside a running benchmark).
drop_caches() {
	if [ "${CAIRN_TEST_NO_DROP_CACHES:-0}" = 1 ]; then
		info "(CAIRN_TEST_NO_DROP_CACHES=1: kernel caches stay warm)"
		return 0
	fi
	sync
	if ! echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then
		info "(cannot write /proc/sys/vm/drop_caches: kernel caches stay warm)"
	fi
}

say "generate the source tree, and a directory of $NBIG entries"
bash "$TREEGEN" "$SRC"
python3 - "$SRC/$BIG" "$NBIG" <<'EOF'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
os.mkdir(d)
for i in range(n):
    # names of varying length, so readdir buffers hold varying counts
    name = os.path.join(d, "e%06d%s" % (i, "x" * (i % 23)))
    if i % 997 == 0:
        os.mkdir(name)
        continue
    fd = os.open(name, os.O_CREAT | os.O_WRONLY, 0o644)
    if i % 1000 == 1:
        os.write(fd, b"%d\n" % i)
    os.close(fd)
    os.utime(name, ns=(1700000000 * 10**9 + i, 1700000000 * 10**9 + i))
EOF
touch -d '2020-02-02 02:02:02.020202020 UTC' "$SRC/$BIG" "$SRC"
dump "$SRC" "$WORK/src.dump"
info "$(wc -l <"$WORK/src.dump") entries"

say "import and mount"
import_ok "$STORE" "$SRC" --tag v1
info "image $ID"
mount_ok "$STORE" v1 "$MNT"

say "treedump of the mount equals treedump of the source"
t0=$(date +%s%N)
if ! timeout 900 python3 "$TREEDUMP" "$MNT" >"$WORK/mnt.dump" 2>"$WORK/mnt.dump.err"; then
	show_file "$WORK/mnt.dump.err" >&2
	soft_fail "treedump of the mount failed"
fi
info "walked the mount in $((($(date +%s%N) - t0) / 1000000)) ms"
if ! same_dump "$WORK/src.dump" "$WORK/mnt.dump" "source vs mount"; then
	# name the root apart: its own attributes come from the image's root
	# node, not from the mountpoint
	if [ "$(head -n 1 "$WORK/src.dump")" != "$(head -n 1 "$WORK/mnt.dump")" ]; then
		info "root of the source: $(head -n 1 "$WORK/src.dump")"
		info "root of the mount:  $(head -n 1 "$WORK/mnt.dump")"
		soft_fail "the mount's root does not show the source root's own attributes"
	fi
	info "$(grep -c '^[-+][^-+]' "$WORK/dump.diff" || true) differing lines"
fi

say "hard links share st_ino with the right st_nlink; other entries have their own"
timeout 600 python3 - "$SRC" "$MNT" <<'EOF' || soft_fail "inode numbers or link counts are wrong"
import os, stat, sys
src, mnt = (os.fsencode(x) for x in sys.argv[1:3])
bad = []
groups = {}   # source inode -> mount inodes
owner = {}    # mount inode -> source inode
n = 0
for d, dirs, files in os.walk(src):
    for name in dirs + files:
        sp = os.path.join(d, name)
        mp = mnt + sp[len(src):]
        s, m = os.lstat(sp), os.lstat(mp)
        n += 1
        isdir = stat.S_ISDIR(s.st_mode)
        if not isdir and s.st_nlink != m.st_nlink:
            bad.append("%r: st_nlink %d, source %d" % (mp, m.st_nlink, s.st_nlink))
        if isdir and m.st_nlink < 1:
            bad.append("%r: directory st_nlink %d" % (mp, m.st_nlink))
        groups.setdefault((s.st_ino, isdir), set()).add(m.st_ino)
        o = owner.setdefault(m.st_ino, s.st_ino)
        if o != s.st_ino:
            bad.append("%r: st_ino %d is also another entry's" % (mp, m.st_ino))
        if m.st_ino == 0:
            bad.append("%r: st_ino 0" % mp)
root = os.lstat(mnt).st_ino
if root in owner:
    bad.append("the root's st_ino %d is also another entry's" % root)
for (ino, isdir), inos in groups.items():
    if len(inos) != 1:
        bad.append("one source inode shows as %d inodes: %s" % (len(inos), sorted(inos)[:5]))
hl = [os.lstat(os.path.join(mnt, p)) for p in (b"hl/one/h1", b"hl/two/h2", b"hl/h3")]
if len({x.st_ino for x in hl}) != 1 or any(x.st_nlink != 3 for x in hl):
    bad.append("hl/one/h1, hl/two/h2, hl/h3: st_ino %s, st_nlink %s (want one inode, 3 links)"
               % ([x.st_ino for x in hl], [x.st_nlink for x in hl]))
sl = [os.lstat(os.path.join(mnt, p)) for p in (b"hl/sym1", b"hl/two/sym2")]
if sl[0].st_ino != sl[1].st_ino or any(x.st_nlink != 2 for x in sl):
    bad.append("hard-linked symlinks: st_ino %s, st_nlink %s"
               % ([x.st_ino for x in sl], [x.st_nlink for x in sl]))
sa, sb = (os.lstat(os.path.join(mnt, p)) for p in (b"files/same-a", b"files/same-b"))
if sa.st_ino == sb.st_ino:
    bad.append("identical unlinked files/same-a and same-b share st_ino %d" % sa.st_ino)
for b in bad[:20]:
    print("   " + b)
if bad:
    print("   %d problems" % len(bad))
    sys.exit(1)
print("   ok: %d entries, %d inodes, hard links and link counts right" % (n, len(owner)))
EOF

say "find twice gives the same inode numbers (kernel caches dropped between)"
timeout 600 find "$MNT" -printf '%i %P\0' >"$WORK/find1" || soft_fail "find on the mount failed"
drop_caches
timeout 600 find "$MNT" -printf '%i %P\0' >"$WORK/find2" || soft_fail "find on the mount failed"
if cmp -s "$WORK/find1" "$WORK/find2"; then
	info "ok: $(tr -cd '\0' <"$WORK/find1" | wc -c) entries, same inode numbers"
else
	soft_fail "inode numbers changed between two walks"
	diff <(tr '\0' '\n' <"$WORK/find1") <(tr '\0' '\n' <"$WORK/find2") | head -n 10 >&2
fi

say "getfacl and getcap show what the source shows"
# every top-level entry but the big directory, recursively (-P: no symlinks)
acl_of() {
	local top=$1 e
	cd "$top" || return 1
	getfacl -n -P . 2>&1
	for e in *; do
		[ "$e" = "$BIG" ] && continue
		timeout 120 getfacl -R -n -P -- "$e" 2>&1
	done
	getfacl -n -P -- "$BIG" 2>&1
}
# getfacl -R lists in readdir order, which is the filesystem's own: compare
# the per-file blocks sorted
sort_blocks() {
	python3 -c 'import sys
blocks = sys.stdin.buffer.read().split(b"\n\n")
sys.stdout.buffer.write(b"\n\n".join(sorted(b.strip(b"\n") for b in blocks if b.strip())) + b"\n")'
}
(acl_of "$SRC") | sort_blocks >"$WORK/src.acl"
(acl_of "$MNT") | sort_blocks >"$WORK/mnt.acl" || soft_fail "getfacl on the mount failed"
if diff -u "$WORK/src.acl" "$WORK/mnt.acl" >"$WORK/acl.diff"; then
	info "ok: getfacl: $(grep -c '^# file:' "$WORK/src.acl") entries, $(grep -c '^default:' "$WORK/src.acl") default ACL lines"
else
	soft_fail "getfacl differs"
	head -n 30 "$WORK/acl.diff" >&2
fi
getcap -r "$SRC" 2>/dev/null | sed "s|^$SRC/||" | sort >"$WORK/src.cap"
timeout 300 getcap -r "$MNT" 2>/dev/null | sed "s|^$MNT/||" | sort >"$WORK/mnt.cap"
if [ -s "$WORK/src.cap" ] && cmp -s "$WORK/src.cap" "$WORK/mnt.cap"; then
	info "ok: getcap: $(tr '\n' ';' <"$WORK/mnt.cap")"
else
	soft_fail "getcap differs"
	diff "$WORK/src.cap" "$WORK/mnt.cap" | head -n 10 >&2
fi

say "names longer than 255 bytes give ENAMETOOLONG"
timeout 60 python3 - "$MNT" <<'EOF' || soft_fail "long names"
import errno, os, sys
mnt = sys.argv[1]
bad = []
for where in ("", "dirs", "names"):
    for n in (256, 300, 1000, 1024, 1025, 3000):
        p = os.path.join(mnt, where, "n" * n)
        for what, call in (("stat", lambda: os.stat(p)), ("lstat", lambda: os.lstat(p)),
                           ("open", lambda: os.close(os.open(p, os.O_RDONLY)))):
            try:
                call()
                bad.append("%s of a %d-byte name in /%s succeeded" % (what, n, where))
            except OSError as e:
                if e.errno != errno.ENAMETOOLONG:
                    bad.append("%s of a %d-byte name in /%s: %s, want ENAMETOOLONG"
                               % (what, n, where, errno.errorcode.get(e.errno, e.errno)))
# 255 bytes is a valid name: missing -> ENOENT, existing -> found
try:
    os.stat(os.path.join(mnt, "n" * 255))
    bad.append("a missing 255-byte name was found")
except OSError as e:
    if e.errno != errno.ENOENT:
        bad.append("missing 255-byte name: %s, want ENOENT" % errno.errorcode.get(e.errno))
try:
    os.stat(os.path.join(mnt, "names", "L" * 255))
except OSError as e:
    bad.append("the existing 255-byte name: %s" % e)
for b in bad:
    print("   " + b)
if bad:
    sys.exit(1)
print("   ok: 256..3000-byte names: ENAMETOOLONG; 255 bytes: ENOENT or found")
EOF

say "statfs works; the mount is read-only"
if timeout 10 stat -f "$MNT" >"$WORK/statf.out" 2>&1; then
	info "$(tr '\n' ' ' <"$WORK/statf.out" | tr -s ' ' | cut -c1-200)"
else
	show_file "$WORK/statf.out"
	soft_fail "stat -f on the mount failed"
fi
timeout 60 python3 - "$MNT" <<'EOF' || soft_fail "statvfs or read-only behaviour"
import errno, os, sys
mnt = sys.argv[1]
bad = []
v = os.statvfs(mnt)
print("   statvfs: bsize=%d frsize=%d blocks=%d bfree=%d files=%d namemax=%d flag=%#x"
      % (v.f_bsize, v.f_frsize, v.f_blocks, v.f_bfree, v.f_files, v.f_namemax, v.f_flag))
if v.f_bsize <= 0:
    bad.append("statvfs f_bsize %d" % v.f_bsize)
if v.f_namemax != 255:
    bad.append("statvfs f_namemax %d, want 255" % v.f_namemax)
if not v.f_flag & os.ST_RDONLY:
    bad.append("statvfs does not report ST_RDONLY")
p = lambda *x: os.path.join(mnt, *x)
ops = [
    ("create", lambda: os.open(p("newfile"), os.O_CREAT | os.O_WRONLY, 0o644)),
    ("open O_WRONLY", lambda: os.open(p("files/tiny"), os.O_WRONLY)),
    ("open O_RDWR", lambda: os.open(p("files/tiny"), os.O_RDWR)),
    ("open O_TRUNC", lambda: os.open(p("files/tiny"), os.O_RDONLY | os.O_TRUNC)),
    ("truncate", lambda: os.truncate(p("files/tiny"), 0)),
    ("mkdir", lambda: os.mkdir(p("newdir"))),
    ("rmdir", lambda: os.rmdir(p("dirs/empty"))),
    ("unlink", lambda: os.unlink(p("files/tiny"))),
    ("rename", lambda: os.rename(p("files/tiny"), p("files/tiny2"))),
    ("symlink", lambda: os.symlink("x", p("newlink"))),
    ("link", lambda: os.link(p("files/tiny"), p("newhard"))),
    ("mknod", lambda: os.mkfifo(p("newfifo"))),
    ("chmod", lambda: os.chmod(p("files/tiny"), 0o600)),
    ("chown", lambda: os.chown(p("files/tiny"), 1, 1)),
    ("utime", lambda: os.utime(p("files/tiny"), ns=(0, 0))),
    ("setxattr", lambda: os.setxattr(p("files/tiny"), "user.new", b"v")),
    ("removexattr", lambda: os.removexattr(p("xattr/file"), "user.text")),
]
for name, op in ops:
    try:
        r = op()
        if isinstance(r, int):
            os.close(r)
        bad.append("%s succeeded on a read-only mount" % name)
    except OSError as e:
        if e.errno != errno.EROFS:
            bad.append("%s: %s, want EROFS" % (name, errno.errorcode.get(e.errno, e.errno)))
for b in bad:
    print("   " + b)
if bad:
    sys.exit(1)
print("   ok: statvfs sane and read-only; %d kinds of write fail with EROFS" % len(ops))
EOF

say "st_blocks is sensible"
timeout 300 python3 - "$SRC" "$MNT" "$BIG" <<'EOF' || soft_fail "st_blocks"
import os, stat, sys
src, mnt, big = sys.argv[1:4]
bad, n = [], 0
for d, dirs, files in os.walk(src):
    if d == os.path.join(src, big):
        files = files[:200]
    for f in files:
        sp = os.path.join(d, f)
        s = os.lstat(sp)
        if not stat.S_ISREG(s.st_mode):
            continue
        m = os.lstat(mnt + sp[len(src):])
        rel = sp[len(src) + 1:]
        n += 1
        alloc = m.st_blocks * 512
        if s.st_size == 0 and m.st_blocks != 0:
            bad.append("%s: empty, st_blocks %d" % (rel, m.st_blocks))
        if alloc > (s.st_size + 4095) // 4096 * 4096:
            bad.append("%s: st_blocks %d (%d bytes) for %d bytes" % (rel, m.st_blocks, alloc, s.st_size))
        if s.st_blocks > 0 and s.st_size > 0 and m.st_blocks == 0:
            # a file of zeros only may be all hole
            with open(sp, "rb") as fh:
                if fh.read(1 << 20).strip(b"\0"):
                    bad.append("%s: has data but st_blocks 0" % rel)
for rel, limit in (("sparse/big", 64 << 20), ("sparse/all-hole", 1 << 20), ("sparse/tail-data", 1 << 20)):
    p = os.path.join(mnt, rel)
    if os.path.exists(p):
        m = os.lstat(p)
        print("   %s: size %d, st_blocks %d (%d bytes)" % (rel, m.st_size, m.st_blocks, m.st_blocks * 512))
        if m.st_blocks * 512 > limit:
            bad.append("%s: st_blocks %d counts its holes (%d bytes allocated)"
                       % (rel, m.st_blocks, m.st_blocks * 512))
for b in bad[:20]:
    print("   " + b)
if bad:
    sys.exit(1)
print("   ok: %d regular files" % n)
EOF

say "a directory of $NBIG entries: complete, same order twice, resumable with seekdir"
cat >"$WORK/readdir.py" <<'EOF'
# readdir.py SRCDIR MNTDIR: libc opendir/readdir/telldir/seekdir through ctypes
import ctypes, ctypes.util, errno, os, random, stat, sys

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)

class Dirent(ctypes.Structure):  # struct dirent64, glibc, 64-bit
    _fields_ = [("d_ino", ctypes.c_uint64), ("d_off", ctypes.c_int64),
                ("d_reclen", ctypes.c_ushort), ("d_type", ctypes.c_ubyte),
                ("d_name", ctypes.c_char * 256)]

libc.opendir.restype = ctypes.c_void_p
libc.opendir.argtypes = [ctypes.c_char_p]
libc.readdir64.restype = ctypes.POINTER(Dirent)
libc.readdir64.argtypes = [ctypes.c_void_p]
libc.telldir.restype = ctypes.c_long
libc.telldir.argtypes = [ctypes.c_void_p]
libc.seekdir.restype = None
libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
libc.closedir.argtypes = [ctypes.c_void_p]

def opendir(p):
    d = libc.opendir(os.fsencode(p))
    if not d:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), p)
    return d

def read(d, n=None, tells=None):
    out = []
    while n is None or len(out) < n:
        ctypes.set_errno(0)
        e = libc.readdir64(d)
        if not e:
            err = ctypes.get_errno()
            if err:
                raise OSError(err, "readdir: " + os.strerror(err))
            break
        out.append((e.contents.d_name, e.contents.d_ino, e.contents.d_type))
        if tells is not None:
            tells.append(libc.telldir(d))
    return out

src, mnt = sys.argv[1], sys.argv[2]
bad = []
want = set(os.listdir(os.fsencode(src))) | {b".", b".."}

d = opendir(mnt)
tells = []
full = read(d, tells=tells)
libc.closedir(d)
names = [x[0] for x in full]
print("   readdir: %d entries" % len(names))
if len(set(names)) != len(names):
    bad.append("readdir returned %d duplicates" % (len(names) - len(set(names))))
if set(names) != want:
    miss, extra = want - set(names), set(names) - want
    bad.append("readdir: %d missing (e.g. %r), %d extra (e.g. %r)"
               % (len(miss), sorted(miss)[:3], len(extra), sorted(extra)[:3]))

d = opendir(mnt)
again = [x[0] for x in read(d)]
libc.closedir(d)
if again != names:
    bad.append("a second readdir gives another order or set (%d vs %d entries)"
               % (len(again), len(names)))

def compare(what, got, exp):
    if got == exp:
        return
    g = set(got)
    dup = len(got) - len(g)
    gap = len(set(exp) - g)
    bad.append("%s: %d entries, want %d: %d duplicates, %d missing, %d out of place"
               % (what, len(got), len(exp), dup, gap, sum(1 for a, b in zip(got, exp) if a != b)))

N = len(names)
cuts = sorted({1, 2, 3, 100, 1000, 4095, 33333, N // 2, N - 2, N - 1, N} & set(range(1, N + 1)))
for k in cuts:
    # a new stream resumes where an interrupted one stopped
    d = opendir(mnt)
    head = [x[0] for x in read(d, k)]
    pos = libc.telldir(d)
    libc.closedir(d)
    d = opendir(mnt)
    libc.seekdir(d, pos)
    rest = [x[0] for x in read(d)]
    libc.closedir(d)
    compare("stop after %d, resume in a new stream at telldir %d" % (k, pos), head + rest, names)
    # the same stream, read ahead, then back to the saved offset
    d = opendir(mnt)
    read(d, k)
    pos = libc.telldir(d)
    read(d, 777)
    libc.seekdir(d, pos)
    rest = [x[0] for x in read(d)]
    libc.closedir(d)
    compare("read %d, 777 more, seekdir back" % k, rest, names[k:])

# telldir after entry i, in a fresh stream: the next entry is i + 1
r = random.Random(5)
for i in [r.randrange(N) for _ in range(300)]:
    d = opendir(mnt)
    libc.seekdir(d, tells[i])
    nxt = read(d, 1)
    libc.closedir(d)
    exp = names[i + 1:i + 2]
    if [x[0] for x in nxt] != exp:
        bad.append("seekdir(telldir after entry %d) gives %r, want %r"
                   % (i, nxt[0][0] if nxt else None, exp[0] if exp else None))
        if len(bad) > 30:
            break

# d_ino and d_type agree with lstat
DT = {stat.S_IFREG: 8, stat.S_IFDIR: 4, stat.S_IFLNK: 10}
for name, ino, dtype in r.sample(full, min(300, N)):
    if name in (b".", b".."):
        continue
    st = os.lstat(os.path.join(os.fsencode(mnt), name))
    if ino != st.st_ino:
        bad.append("%r: d_ino %d, st_ino %d" % (name, ino, st.st_ino))
    if dtype not in (0, DT.get(stat.S_IFMT(st.st_mode))):
        bad.append("%r: d_type %d for mode %o" % (name, dtype, st.st_mode))
    if len(bad) > 40:
        break

for b in bad[:40]:
    print("   " + b)
if bad:
    sys.exit(1)
print("   ok: complete, stable order, %d resume points and 300 seekdirs right" % len(cuts))
EOF
timeout 600 python3 "$WORK/readdir.py" "$SRC/$BIG" "$MNT/$BIG" || soft_fail "readdir of $BIG"
drop_caches
timeout 600 python3 - "$SRC/$BIG" "$MNT/$BIG" <<'EOF' || soft_fail "listing of $BIG after dropping caches"
import os, sys
a = os.listdir(sys.argv[2])
b = os.listdir(sys.argv[2])
want = set(os.listdir(sys.argv[1]))
if a != b or set(a) != want or len(a) != len(want):
    print("   listdir twice: %d and %d entries (want %d), same order: %s" % (len(a), len(b), len(want), a == b))
    sys.exit(1)
print("   ok: os.listdir twice: %d entries, same order" % len(a))
EOF

say "SEEK_DATA and SEEK_HOLE find the data of sparse files"
timeout 600 python3 - "$SRC" "$MNT" <<'EOF' || soft_fail "SEEK_DATA/SEEK_HOLE"
import errno, os, sys
src, mnt = sys.argv[1:3]
B = 4096
bad = []

def regions_of(fd, size):
    out, pos = [], 0
    while pos < size:
        try:
            data = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:
                break
            raise
        hole = os.lseek(fd, data, os.SEEK_HOLE)
        if hole <= data:
            raise RuntimeError("SEEK_HOLE(%d) = %d" % (data, hole))
        out.append((data, hole))
        pos = hole
    return out

def expected(path):
    """runs of 4 KiB-aligned blocks that are not all zeros (the store's holes)"""
    fd = os.open(path, os.O_RDONLY)
    size = os.fstat(fd).st_size
    out = []
    for a, b in regions_of(fd, size):
        off = a - a % B
        while off < b:
            blk = os.pread(fd, B, off)
            if blk.strip(b"\0"):
                end = min(off + B, size)
                if out and out[-1][1] == off:
                    out[-1] = (out[-1][0], end)
                else:
                    out.append((off, end))
            off += B
    os.close(fd)
    return out, size

for rel, exact in (("sparse/big", True), ("sparse/all-hole", True), ("sparse/tail-data", True),
                   ("files/dense-zeros", False), ("files/random-1M", True), ("files/tiny", True)):
    want, size = expected(os.path.join(src, rel))
    fd = os.open(os.path.join(mnt, rel), os.O_RDONLY)
    try:
        got = regions_of(fd, size)
    except (OSError, RuntimeError) as e:
        bad.append("%s: %s" % (rel, e))
        os.close(fd)
        continue
    show = lambda rs: ", ".join("[%d, %d)" % r for r in rs[:8]) or "none"
    print("   %s: data at %s" % (rel, show(got)))
    if exact and got != want:
        bad.append("%s: data reported at %s, want %s" % (rel, show(got), show(want)))
    if not exact:
        # every non-zero block must lie in a reported data region
        for a, b in want:
            if not any(x <= a and b <= y for x, y in got):
                bad.append("%s: data [%d, %d) is not inside a reported data region" % (rel, a, b))
        if got != want:
            print("   (%s: written zeros are not reported as holes: allowed)" % rel)
    # edge cases
    try:
        r = os.lseek(fd, size, os.SEEK_DATA)
        bad.append("%s: SEEK_DATA at EOF gives %d, want ENXIO" % (rel, r))
    except OSError as e:
        if e.errno != errno.ENXIO:
            bad.append("%s: SEEK_DATA at EOF: %s, want ENXIO" % (rel, e))
    try:
        r = os.lseek(fd, size + 12345, os.SEEK_HOLE)
        bad.append("%s: SEEK_HOLE past EOF gives %d, want ENXIO" % (rel, r))
    except OSError as e:
        if e.errno != errno.ENXIO:
            bad.append("%s: SEEK_HOLE past EOF: %s, want ENXIO" % (rel, e))
    if size:
        # from the last byte: size when it is data, else the offset itself
        exp = size if any(a <= size - 1 < b for a, b in want) else size - 1
        r = os.lseek(fd, size - 1, os.SEEK_HOLE)
        if exact and r != exp:
            bad.append("%s: SEEK_HOLE at size-1 gives %d, want %d" % (rel, r, exp))
    for a, b in want[:20]:
        mid = (a + b) // 2
        if os.lseek(fd, mid, os.SEEK_DATA) != mid:
            bad.append("%s: SEEK_DATA inside data at %d moved" % (rel, mid))
        if exact and os.lseek(fd, mid, os.SEEK_HOLE) != b:
            bad.append("%s: SEEK_HOLE from %d gives %d, want %d"
                       % (rel, mid, os.lseek(fd, mid, os.SEEK_HOLE), b))
    # data reads where SEEK_DATA points
    sfd = os.open(os.path.join(src, rel), os.O_RDONLY)
    for a, b in got[:20]:
        n = min(b - a, 1 << 16)
        if os.pread(fd, n, a) != os.pread(sfd, n, a):
            bad.append("%s: bytes at %d differ" % (rel, a))
    os.close(sfd)
    os.close(fd)
for b in bad[:20]:
    print("   " + b)
if bad:
    sys.exit(1)
print("   ok")
EOF

say "unmount"
umount_ok "$STORE" "$MNT" && info "ok: unmounted, daemon gone"

finish
