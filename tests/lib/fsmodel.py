#!/usr/bin/env python3
"""fsmodel.py - model-based tests of a writable (copy-on-write) filesystem.

The same seeded random sequence of filesystem operations runs on two trees
that start equal: the reference, a plain directory on a local filesystem,
and the system under test (SUT), for example a writable cairn mount of an
image of that same tree. Every operation's outcome (return value or errno)
must be the same on both, the entries it touched must look the same after
it, and the whole trees must be equal at checkpoints and at the end. The
first divergence stops the run with the seed, the operation, both outcomes
and the tail of the history: rerunning with the same seed on the same image
replays the same operations.

  fsmodel.py mkimage DIR
      make the base tree (deterministic: every kind of entry and attribute)
  fsmodel.py run --ref DIR --sut DIR [--seed N] [--ops N] [--priv PREFIX]
                 [--user UID] [--check-every N] [--t0 NS] [--verbose]
                 [--lax NAME,...] [--keep-going]
      the random operations (python3 stdlib only; runs as root). --priv is
      the SUT's private xattr prefix: the container sets xattrs named so
      too. --lax tolerates a peer's known differences (see LAX_NAMES);
      --keep-going runs every operation and only counts divergences
  fsmodel.py compare --ref DIR --sut DIR [--t0 NS] [--lax NAME,...]
      compare two trees as the run does at its checkpoints
  fsmodel.py upper --upper UPPERDIR/tree --ref DIR --priv P --esc E [--need PATH]
      every entry the upper holds (whiteouts aside) looks as in --ref
  fsmodel.py data --orig DIR --sut DIR [--seed N] [--ops N] --state FILE
      data integrity: random pread/pwrite/truncate/fallocate and mmap writes
      on files that start in the image (every hard-link group, sparse and
      large files), checked against an in-memory model of their bytes; the
      expected sizes and hashes are written to FILE
  fsmodel.py verify --sut DIR --state FILE
      the files hold what 'data' left (after a remount, say)

What is compared for an entry: its type, permission bits (setuid, setgid
and sticky included), uid, gid, size and link count (not for directories:
overlay filesystems report merged directories' st_nlink and st_size their
own way), device number, symlink target, every xattr name and value, the
bytes of regular files, hard-link groups, and mtime: a reference mtime
older than --t0 (from the image or set by utimensat) must match to the
nanosecond, a newer one ("now") only needs the SUT's to be newer than --t0
too. Never compared: st_ino, st_dev, st_blocks, atime, ctime.

Symlinks are followed only when they resolve inside the reference tree,
so no operation can touch anything outside the two trees; the root itself
is never renamed or removed.
"""

import argparse
import ctypes
import ctypes.util
import errno
import fcntl
import hashlib
import json
import mmap
import os
import random
import stat
import struct
import sys
import time

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
libc.fchmodat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint, ctypes.c_int]

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
FALLOC_FL_KEEP_SIZE = 1
FALLOC_FL_PUNCH_HOLE = 2
FALLOC_FL_ZERO_RANGE = 0x10
F_OFD_GETLK = getattr(fcntl, "F_OFD_GETLK", 36)
F_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", 37)
FLOCK_FMT = "=hh4xqqi4x"  # struct flock, x86_64 and aarch64 glibc

# relaxations for known differences of a SUT (peers only; --lax NAME,...):
#   dirmtime        a directory's mtime is not compared
#   unlinked-nlink  an unlinked file still open may show st_nlink > 0
LAX = set()
LAX_NAMES = {"dirmtime", "unlinked-nlink"}


def errname(e):
    return errno.errorcode.get(e, str(e))


def renameat2(old, new, flags):
    if libc.renameat2(AT_FDCWD, old, AT_FDCWD, new, flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def fallocate(fd, mode, off, length):
    if libc.fallocate(fd, mode, off, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def esc(b):
    if isinstance(b, str):
        b = os.fsencode(b)
    return "".join(chr(c) if 0x21 <= c <= 0x7E and c != 0x5C else "\\x%02x" % c for c in b)


def short(b, n=40):
    if isinstance(b, (bytes, bytearray)) and len(b) > n:
        return "%d bytes sha %s" % (len(b), hashlib.sha256(b).hexdigest()[:12])
    return b


# ---------------------------------------------------------------------------
# What an entry looks like

TYPES = ((stat.S_ISREG, "reg"), (stat.S_ISDIR, "dir"), (stat.S_ISLNK, "lnk"), (stat.S_ISCHR, "chr"),
         (stat.S_ISBLK, "blk"), (stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "sock"))


def ftype(mode):
    for test, name in TYPES:
        if test(mode):
            return name
    return "?"


def content_hash(fd, size):
    """sha256 of the bytes, reading only data regions (holes hash as zeros)"""
    h = hashlib.sha256()
    pos = 0
    zero = bytes(1 << 20)
    while pos < size:
        try:
            data = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as e:
            if e.errno != errno.ENXIO:
                raise
            data = size
        data = min(data, size)
        while pos < data:  # a hole: zeros
            n = min(len(zero), data - pos)
            h.update(zero[:n])
            pos += n
        if pos >= size:
            break
        try:
            hole = min(os.lseek(fd, pos, os.SEEK_HOLE), size)
        except OSError:
            hole = size
        while pos < hole:
            b = os.pread(fd, min(1 << 20, hole - pos), pos)
            if not b:
                raise OSError(errno.EIO, "short read at %d of %d" % (pos, size))
            h.update(b)
            pos += len(b)
    return h.hexdigest()


def xattrs_of(path, follow=False):
    try:
        names = os.listxattr(path, follow_symlinks=follow)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return ()
        raise
    out = []
    for n in sorted(names):
        try:
            out.append((n, os.getxattr(path, n, follow_symlinks=follow)))
        except OSError as e:
            out.append((n, "<%s>" % errname(e.errno)))
    return tuple(out)


def st_info(st):
    t = ftype(st.st_mode)
    d = {"type": t, "mode": "%04o" % stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid,
         "mtime": st.st_mtime_ns}
    if t != "dir":
        d["nlink"] = st.st_nlink
    if t in ("reg", "lnk"):
        d["size"] = st.st_size
    if t in ("chr", "blk"):
        d["rdev"] = "%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
    return d


def info(path, content=False):
    """an entry's comparable description, or ('absent', errno)"""
    try:
        st = os.lstat(path)
    except OSError as e:
        return {"absent": errname(e.errno)}
    d = st_info(st)
    if d["type"] == "lnk":
        d["target"] = os.readlink(path)
    d["xattrs"] = xattrs_of(path)
    if content and d["type"] == "reg":
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            d["data"] = content_hash(fd, st.st_size)
        finally:
            os.close(fd)
    return d


def same_mtime(a, b, t0):
    if a < t0 or a > t0 + 10 * 86400 * 10**9:
        return a == b
    return t0 <= b <= t0 + 10 * 86400 * 10**9


def diff_info(a, b, t0):
    """the fields where two descriptions differ, as text; '' if none"""
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if k == "mtime" and va is not None and vb is not None:
            if "dirmtime" in LAX and a.get("type") == "dir":
                continue
            if not same_mtime(va, vb, t0):
                out.append("mtime ref %d sut %d" % (va, vb))
            continue
        if k == "nlink" and va == 0 and "unlinked-nlink" in LAX:
            continue
        if va != vb:
            if k == "xattrs":
                da, db = dict(va or ()), dict(vb or ())
                for n in sorted(set(da) | set(db)):
                    if da.get(n) != db.get(n):
                        out.append("xattr %s ref %r sut %r" % (n, short(da.get(n)), short(db.get(n))))
            else:
                out.append("%s ref %r sut %r" % (k, short(va), short(vb)))
    return "; ".join(out)


def walk(root):
    """(relpath, abspath, lstat) of every entry, sorted, root first as b''"""
    st = os.lstat(root)
    yield b"", root, st
    stack = [b""]
    while stack:
        rel = stack.pop()
        d = root + b"/" + rel if rel else root
        for n in sorted(os.listdir(d), reverse=True):
            r = rel + b"/" + n if rel else n
            a = d + b"/" + n
            s = os.lstat(a)
            yield r, a, s
            if stat.S_ISDIR(s.st_mode):
                stack.append(r)


def tree_state(root):
    """{rel: info} with content, and the hard-link partition"""
    entries, groups = {}, {}
    for rel, path, st in walk(root):
        entries[rel] = info(path, content=True)
        if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
            groups.setdefault((st.st_dev, st.st_ino), []).append(rel)
    part = {}
    for g in groups.values():
        for rel in g:
            part[rel] = tuple(sorted(g))
    return entries, part


def compare_trees(ref, sut, t0, limit=30):
    """differences between two trees, as lines"""
    ea, pa = tree_state(ref)
    eb, pb = tree_state(sut)
    out = []
    for rel in sorted(set(ea) | set(eb)):
        name = esc(rel) or "."
        if rel not in eb:
            out.append("%s: only in the reference (%s)" % (name, ea[rel]["type"]))
        elif rel not in ea:
            out.append("%s: only in the SUT (%s)" % (name, eb[rel]["type"]))
        else:
            d = diff_info(ea[rel], eb[rel], t0)
            if d:
                out.append("%s: %s" % (name, d))
            ga, gb = pa.get(rel, (rel,)), pb.get(rel, (rel,))
            if ga != gb:
                out.append("%s: hard-link group ref %s sut %s" % (
                    name, [esc(x) for x in ga], [esc(x) for x in gb]))
        if len(out) >= limit:
            out.append("...")
            break
    return out, len(ea)


# ---------------------------------------------------------------------------
# The base image

def mkimage(root):
    """A deterministic tree with every kind of entry and attribute."""
    r = random.Random(20261201)
    root = os.fsencode(root)
    os.makedirs(root, exist_ok=True)
    if os.listdir(root):
        sys.exit("fsmodel: %s is not empty" % root.decode())
    os.umask(0)
    mt = []  # (path, mtime ns) set at the end, deepest first

    def p(rel):
        return os.path.join(root, rel)

    def d(rel, mode=0o755, uid=0, gid=0):
        os.makedirs(p(rel), exist_ok=True)
        os.chmod(p(rel), mode)
        os.chown(p(rel), uid, gid)
        mt.append((rel, True))

    def f(rel, data=b"", mode=0o644, uid=0, gid=0, size=None):
        with open(p(rel), "wb") as fh:
            fh.write(data)
            if size is not None:
                fh.truncate(size)
        os.chown(p(rel), uid, gid)
        os.chmod(p(rel), mode)
        mt.append((rel, False))

    def rnd(n):
        return r.randbytes(n)

    def text(n):
        words = [b"alpha", b"beta", b"gamma", b"delta", b"cairn", b"layer", b"\n"]
        out = bytearray()
        while len(out) < n:
            out += r.choice(words) + b" "
        return bytes(out[:n])

    d(b"", 0o755)
    d(b"etc")
    f(b"etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n")
    f(b"etc/shadow", text(300), 0o640, 0, 42)
    f(b"etc/hostname", b"model\n")
    f(b"etc/big.conf", text(200_000))
    f(b"etc/empty")
    d(b"bin")
    f(b"bin/prog", rnd(300_000), 0o4755)
    f(b"bin/sgid", rnd(5000), 0o2755, 0, 50)
    f(b"bin/noperm", b"secret\n", 0o000)
    d(b"usr/lib/deep/a/b/c")
    for x in (b"usr", b"usr/lib", b"usr/lib/deep", b"usr/lib/deep/a", b"usr/lib/deep/a/b"):
        mt.append((x, True))
    f(b"usr/lib/deep/a/b/c/lib.so", rnd(1_500_000))
    f(b"usr/lib/deep/a/b/c/empty")
    f(b"usr/lib/libx.so", rnd(70_001), 0o755)
    d(b"home", 0o755)
    d(b"home/user", 0o755, 1000, 1000)
    f(b"home/user/notes", text(5000), 0o600, 1000, 1000)
    f(b"home/user/shared", text(100), 0o666, 1000, 1000)
    d(b"home/user/dir2", 0o775, 1000, 1000)
    f(b"home/user/dir2/x", b"x", 0o644, 1000, 1000)
    d(b"tmp", 0o1777)
    f(b"tmp/rootfile", b"owned by root in a sticky dir\n", 0o666)
    d(b"var/data")
    mt.append((b"var", True))
    f(b"var/data/sparse", size=8 << 20)
    with open(p(b"var/data/sparse"), "r+b") as fh:
        fh.write(rnd(4096))
        fh.seek(5 << 20)
        fh.write(rnd(10000))
    f(b"var/data/zeros", bytes(65536))
    f(b"var/data/odd", rnd(4097))
    f(b"var/data/page", rnd(4096))
    f(b"var/data/one", b"1")
    d(b"hl")
    d(b"hl/a")
    f(b"hl/h1", b"linked content\n")
    os.link(p(b"hl/h1"), p(b"hl/a/h2"))
    os.link(p(b"hl/h1"), p(b"hl/h3"))
    f(b"hl/big1", rnd(200_000))
    os.link(p(b"hl/big1"), p(b"hl/a/big2"))
    os.symlink(b"h1", p(b"hl/s1"))
    os.link(p(b"hl/s1"), p(b"hl/a/s2"), follow_symlinks=False)
    mt.append((b"hl/s1", False))
    d(b"dev")
    os.mknod(p(b"dev/null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(p(b"dev/loop"), 0o660 | stat.S_IFBLK, os.makedev(7, 7))
    os.mknod(p(b"dev/fifo"), 0o644 | stat.S_IFIFO)
    os.mknod(p(b"dev/sock"), 0o755 | stat.S_IFSOCK)
    for x in (b"dev/null", b"dev/loop", b"dev/fifo", b"dev/sock"):
        mt.append((x, False))
    d(b"links")
    for name, target in ((b"rel", b"../etc/passwd"), (b"abs", b"/etc/passwd"), (b"dangling", b"nope/x"),
                         (b"dir", b"../usr"), (b"self", b"."), (b"sib", b"other"), (b"out", b"../../..")):
        os.symlink(target, p(b"links/" + name))
        mt.append((b"links/" + name, False))
    f(b"links/other", b"other\n")
    d(b"xattr")
    f(b"xattr/file", b"has xattrs\n")
    os.setxattr(p(b"xattr/file"), "user.a", b"1")
    os.setxattr(p(b"xattr/file"), "user.b", rnd(100))
    os.setxattr(p(b"xattr/file"), "trusted.t", b"trusted value")
    d(b"xattr/dir")
    os.setxattr(p(b"xattr/dir"), "user.d", b"dir value")
    os.symlink(b"file", p(b"xattr/link"))
    os.setxattr(p(b"xattr/link"), "trusted.s", b"on a symlink", follow_symlinks=False)
    mt.append((b"xattr/link", False))
    d(b"opq")
    d(b"opq/sub1")
    f(b"opq/sub1/f1", b"f1")
    f(b"opq/sub1/f2", b"f2")
    d(b"opq/sub1/inner")
    f(b"opq/sub1/inner/f3", b"f3")
    d(b"opq/sub2")
    d(b"many")
    for i in range(40):
        f(b"many/m%02d" % i, text(r.randrange(0, 3000)))
    d(b"names")
    f(b"names/" + b"L" * 255, b"long name")
    f(b"names/\xff\xfebad", b"not utf-8")
    f(b"names/with space", b"space")
    f(b"names/.hidden", b"hidden")
    # fixed times, deepest first so a directory's own time is last
    base = 1_300_000_000 * 10**9
    for i, (rel, _) in enumerate(sorted(set(mt), key=lambda x: (-x[0].count(b"/"), x[0]))):
        t = base + i * 1_000_003_007
        os.utime(p(rel) if rel else root, ns=(t, t), follow_symlinks=False)
    os.utime(root, ns=(base - 7, base - 7))


# ---------------------------------------------------------------------------
# The random operations

NAMES = [b"a", b"b", b"c", b"dd", b"e.txt", b"f", b"sub", b"n1", b"n2", b".h", b"x y", b"\xe9t\xe9"]
RARE_NAMES = [b"L" * 255, b"M" * 256, b"N" * 300, b"\xff\xfe", b".wh.x", b"-", b"..."]
MODES = [0o644, 0o600, 0o755, 0o777, 0o000, 0o4755, 0o2750, 0o1777, 0o444, 0o640]
IDS = [0, 0, 1000, 1000, 65534, 123456]
TIMES = [0, 1, 946684800 * 10**9 + 123456789, 1_200_000_000 * 10**9 + 999_999_999,
         4_102_444_800 * 10**9 + 5]  # 1970, 2000, 2008, 2100


class Side:
    def __init__(self, name, root):
        self.name = name
        self.root = os.fsencode(os.path.abspath(root))
        self.fds = {}

    def p(self, rel):
        return self.root + b"/" + rel if rel else self.root


class Divergence(Exception):
    pass


def run_op(side, op):
    """(ok, value) or (err, ERRNO) of one operation on one side"""
    name, args = op[0], op[1:]
    try:
        return ("ok", OPS[name](side, *args))
    except OSError as e:
        return ("err", errname(e.errno))


def fd_of(side, h):
    fd = side.fds.get(h)
    if fd is None:
        raise OSError(errno.EBADF, "no handle %d" % h)
    return fd


def op_open(s, rel, flags, mode, h):
    fd = os.open(s.p(rel), flags, mode)
    s.fds[h] = fd
    return "fd"


def op_close(s, h):
    os.close(s.fds.pop(h))


def op_write(s, h, seed, n):
    return os.write(fd_of(s, h), random.Random(seed).randbytes(n))


def op_pwrite(s, h, seed, n, off):
    return os.pwrite(fd_of(s, h), random.Random(seed).randbytes(n), off)


def op_read(s, h, n):
    return os.read(fd_of(s, h), n)


def op_pread(s, h, n, off):
    return os.pread(fd_of(s, h), n, off)


def op_lseek(s, h, off, whence):
    return os.lseek(fd_of(s, h), off, whence)


def op_ftruncate(s, h, size):
    os.ftruncate(fd_of(s, h), size)


def op_fallocate(s, h, mode, off, n):
    fallocate(fd_of(s, h), mode, off, n)


def op_fsync(s, h):
    os.fsync(fd_of(s, h))


def op_fdatasync(s, h):
    os.fdatasync(fd_of(s, h))


def op_fstat(s, h):
    return st_info(os.fstat(fd_of(s, h)))


def op_fchmod(s, h, mode):
    os.fchmod(fd_of(s, h), mode)


def op_flock(s, h, how):
    fcntl.flock(fd_of(s, h), how)


def op_ofdlock(s, h, cmd, typ, start, n):
    arg = struct.pack(FLOCK_FMT, typ, os.SEEK_SET, start, n, 0)
    r = fcntl.fcntl(fd_of(s, h), cmd, arg)
    if cmd == F_OFD_GETLK:
        t, _, st, ln, _ = struct.unpack(FLOCK_FMT, r)
        return (t, st, ln) if t != fcntl.F_UNLCK else (t,)
    return None


def op_lockf(s, h, cmd, n, start):
    fcntl.lockf(fd_of(s, h), cmd, n, start)


def op_fgetxattr(s, h, name):
    return os.getxattr(fd_of(s, h), name)


def op_fsetxattr(s, h, name, value, flags):
    os.setxattr(fd_of(s, h), name, value, flags)


def op_mkdir(s, rel, mode):
    os.mkdir(s.p(rel), mode)


def op_mknod(s, rel, mode, dev):
    os.mknod(s.p(rel), mode, dev)


def op_symlink(s, target, rel):
    os.symlink(target, s.p(rel))


def op_link(s, src, dst, follow):
    os.link(s.p(src), s.p(dst), follow_symlinks=follow)


def op_unlink(s, rel):
    os.unlink(s.p(rel))


def op_rmdir(s, rel):
    os.rmdir(s.p(rel))


def op_rename(s, src, dst, flags):
    if flags:
        renameat2(s.p(src), s.p(dst), flags)
    else:
        os.rename(s.p(src), s.p(dst))


def op_truncate(s, rel, size):
    os.truncate(s.p(rel), size)


def op_chmod(s, rel, mode, follow):
    if follow:
        os.chmod(s.p(rel), mode)
    elif libc.fchmodat(AT_FDCWD, s.p(rel), mode, AT_SYMLINK_NOFOLLOW) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def op_chown(s, rel, uid, gid, follow):
    os.chown(s.p(rel), uid, gid, follow_symlinks=follow)


def op_utime(s, rel, ns, follow):
    os.utime(s.p(rel), ns=ns, follow_symlinks=follow) if ns else os.utime(s.p(rel), follow_symlinks=follow)


def op_setxattr(s, rel, name, value, flags, follow):
    os.setxattr(s.p(rel), name, value, flags, follow_symlinks=follow)


def op_getxattr(s, rel, name, follow):
    return os.getxattr(s.p(rel), name, follow_symlinks=follow)


def op_listxattr(s, rel, follow):
    return sorted(os.listxattr(s.p(rel), follow_symlinks=follow))


def op_removexattr(s, rel, name, follow):
    os.removexattr(s.p(rel), name, follow_symlinks=follow)


def op_stat(s, rel, follow):
    st = os.stat(s.p(rel)) if follow else os.lstat(s.p(rel))
    return st_info(st)


def op_readlink(s, rel):
    return os.readlink(s.p(rel))


def op_listdir(s, rel):
    names = os.listdir(s.p(rel))
    return (len(names), sorted(names))


def op_access(s, rel, mode):
    return os.access(s.p(rel), mode, effective_ids=True)


def op_statfs(s, rel):
    v = os.statvfs(s.p(rel))
    return v.f_bsize > 0


def op_readfile(s, rel):
    fd = os.open(s.p(rel), os.O_RDONLY | os.O_NONBLOCK)
    try:
        return os.read(fd, 1 << 20)
    finally:
        os.close(fd)


OPS = {k[3:]: v for k, v in globals().items() if k.startswith("op_")}

# which arguments of an operation are paths (index in the op tuple)
PATH_ARGS = {"open": (1,), "mkdir": (1,), "mknod": (1,), "symlink": (2,), "link": (1, 2), "unlink": (1,),
             "rmdir": (1,), "rename": (1, 2), "truncate": (1,), "chmod": (1,), "chown": (1,), "utime": (1,),
             "setxattr": (1,), "getxattr": (1,), "listxattr": (1,), "removexattr": (1,), "stat": (1,),
             "readlink": (1,), "listdir": (1,), "access": (1,), "statfs": (1,), "readfile": (1,)}


def lexists_type(path):
    try:
        return ftype(os.lstat(path).st_mode)
    except OSError as e:
        return errname(e.errno)


class Runner:
    def __init__(self, a):
        self.seed = a.seed
        self.r = random.Random(a.seed)
        self.ref = Side("ref", a.ref)
        self.sut = Side("sut", a.sut)
        self.priv = a.priv
        self.user = a.user
        self.t0 = a.t0 if a.t0 is not None else time.time_ns() - 2 * 10**9
        self.verbose = a.verbose
        self.keep_going = a.keep_going
        self.history = []
        self.handles = {}  # handle -> (rel at open, flags)
        self.next_h = 1
        self.pool = {}  # rel -> type, from the reference
        self.counts = {}
        self.errs = 0
        self.cur_user = 0
        self.rescan(b"")

    # -- the reference's entries, kept up to date incrementally ------------
    def rescan(self, rel):
        pre = rel + b"/"
        for k in [k for k in self.pool if k == rel or k.startswith(pre)] if rel else list(self.pool):
            del self.pool[k]
        path = self.ref.p(rel)
        try:
            st = os.lstat(path)
        except OSError:
            return
        self.pool[rel] = ftype(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            for r2, _, s2 in walk(path):
                if r2:
                    self.pool[rel + b"/" + r2 if rel else r2] = ftype(s2.st_mode)

    def entries(self, types=None, root=False):
        return [k for k, t in self.pool.items() if (root or k) and (types is None or t in types)]

    def pick(self, types=None, root=False):
        c = self.entries(types, root)
        return self.r.choice(sorted(c)) if c else None

    def new_name(self):
        if self.r.random() < 0.04:
            return self.r.choice(RARE_NAMES)
        return self.r.choice(NAMES)

    def depth_ok(self, rel):
        return rel.count(b"/") < 6

    def target_path(self):
        """a path for a new entry: mostly free names in existing dirs, often
        existing entries, sometimes under a missing or non-directory parent"""
        x = self.r.random()
        if x < 0.55:
            d = self.pick(("dir",), root=True)
            if d is not None and self.depth_ok(d):
                return (d + b"/" if d else b"") + self.new_name()
        if x < 0.85:
            e = self.pick()
            if e is not None:
                return e
        if x < 0.93:
            e = self.pick(("reg", "lnk", "fifo"))
            if e is not None:
                return e + b"/" + self.new_name()  # ENOTDIR (or via a symlink)
        return b"missing-dir/" + self.new_name()

    def existing(self, types=None):
        e = self.pick(types)
        if e is None or self.r.random() < 0.05:
            return self.target_path()
        return e

    def inside(self, rel):
        """True if following the entry's symlinks stays inside the reference"""
        real = os.path.realpath(self.ref.p(rel))
        return real == self.ref.root or real.startswith(self.ref.root + b"/")

    def follow_ok(self, rel):
        return self.inside(rel) and (b"/" not in rel or self.inside(rel.rsplit(b"/", 1)[0]))

    def followed_type(self, rel, follow):
        try:
            st = os.stat(self.ref.p(rel)) if follow else os.lstat(self.ref.p(rel))
        except OSError:
            return None
        return ftype(st.st_mode)

    def xattr_name(self):
        return self.r.choice(["user.a", "user.b", "user.new", "user.x" * 3, "trusted.t", "trusted.new",
                              self.priv + "zz", self.priv + "opaque", "user." + "q" * 250, "bogus.ns"])

    def xattr_value(self):
        # small: one inode's xattrs must fit one 4 KiB block on the
        # reference, with room for the SUT's own markers beside them
        return self.r.choice([b"", b"v", b"y", self.r.randbytes(self.r.randrange(1, 160))])

    def handle(self):
        if not self.handles:
            return None
        return self.r.choice(sorted(self.handles))

    def size(self):
        return self.r.choice([0, 1, 100, 4095, 4096, 4097, 65536, 200_000, 1 << 20,
                              self.r.randrange(0, 3 << 20), (9 << 20) + 3])

    def offset(self):
        return self.r.choice([0, 0, 1, 4095, 4096, 100_000, self.r.randrange(0, 2 << 20), 5 << 20,
                              self.r.randrange(0, 64 << 20)])

    # -- generation ----------------------------------------------------------
    def gen(self):
        """one operation (a tuple), and the reference paths it may change"""
        r = self.r
        kind = r.choices(
            ["create", "open", "close", "write", "read", "lseek", "ftruncate", "fallocate", "fsync",
             "fstat", "lock", "fxattr", "mkdir", "mknod", "symlink", "link", "unlink", "rmdir",
             "rename", "truncate", "chmod", "chown", "utime", "setxattr", "getxattr", "removexattr",
             "stat", "readdir", "readfile", "statfs"],
            [6, 8, 5, 12, 6, 2, 3, 2, 2, 2, 4, 1, 5, 2, 3, 4, 5, 3, 9, 2, 3, 2, 3, 4, 2, 2, 3, 2, 2, 1])[0]
        if len(self.pool) > 700 and kind in ("create", "mkdir", "mknod", "symlink", "link"):
            kind = r.choice(["unlink", "rmdir", "rename"])
        h = self.handle()
        if kind in ("close", "write", "read", "lseek", "ftruncate", "fallocate", "fsync", "fstat",
                    "lock", "fxattr") and h is None:
            kind = "open"
        if kind in ("open", "create") and len(self.handles) >= 12:
            kind = "close"
        if kind == "write" and self.handles[h][2] == "fifo":
            # the kernel keeps a fifo's times where its inode is: a
            # filesystem stacked on another need not write them through
            kind = "read"
        follow = r.random() < 0.5
        if kind == "create":
            rel = self.target_path()
            flags = os.O_CREAT | r.choice([os.O_WRONLY, os.O_RDWR])
            flags |= r.choice([0, 0, os.O_EXCL, os.O_TRUNC, os.O_APPEND, os.O_EXCL | os.O_NOFOLLOW])
            if not self.follow_ok(rel):
                flags |= os.O_NOFOLLOW | os.O_EXCL
            if self.followed_type(rel, not flags & os.O_NOFOLLOW) in ("chr", "blk"):
                flags = os.O_PATH
            return ("open", rel, flags | os.O_NONBLOCK, r.choice(MODES), self.take_h()), [rel]
        if kind == "open":
            rel = self.existing()
            acc = r.choice([os.O_RDONLY, os.O_RDONLY, os.O_WRONLY, os.O_RDWR])
            flags = acc | r.choice([0, 0, 0, os.O_TRUNC, os.O_APPEND, os.O_NOFOLLOW, os.O_DIRECTORY,
                                    os.O_CREAT, os.O_CREAT | os.O_EXCL, os.O_APPEND | os.O_TRUNC])
            if not self.follow_ok(rel):
                flags = (flags | os.O_NOFOLLOW) & ~(os.O_CREAT | os.O_TRUNC)
            if self.followed_type(rel, not flags & os.O_NOFOLLOW) in ("chr", "blk"):
                flags |= os.O_PATH  # devices: the mount may be nodev
            # O_NONBLOCK: a fifo never blocks the run (no effect on files)
            return ("open", rel, flags | os.O_NONBLOCK, 0o644, self.take_h()), [rel]
        if kind == "close":
            return ("close", h), []
        if kind == "write":
            if r.random() < 0.5:
                return ("write", h, r.randrange(1 << 30), r.choice([0, 1, 10, 4096, 5000, 70_000])), []
            return ("pwrite", h, r.randrange(1 << 30), r.choice([1, 100, 4096, 9000, 100_000]), self.offset()), []
        if kind == "read":
            if r.random() < 0.4:
                return ("read", h, r.choice([0, 1, 100, 4096, 100_000])), []
            return ("pread", h, r.choice([1, 100, 4096, 70_000, 300_000]), self.offset()), []
        if kind == "lseek":
            if self.handles[h][2] == "dir":  # directory offsets are the filesystem's own
                return ("lseek", h, 0, os.SEEK_SET), []
            return ("lseek", h, r.choice([0, 1, 4096, -1, 1 << 20]), r.choice([os.SEEK_SET, os.SEEK_CUR, os.SEEK_END])), []
        if kind == "ftruncate":
            return ("ftruncate", h, self.size()), []
        if kind == "fallocate":
            mode = r.choice([0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE])
            return ("fallocate", h, mode, self.offset(), r.choice([1, 4096, 100_000, 1 << 20])), []
        if kind == "fsync":
            return (r.choice(["fsync", "fdatasync"]), h), []
        if kind == "fstat":
            return ("fstat", h), []
        if kind == "lock":
            x = r.random()
            if x < 0.4:
                how = r.choice([fcntl.LOCK_SH, fcntl.LOCK_EX, fcntl.LOCK_UN]) | fcntl.LOCK_NB
                return ("flock", h, how), []
            if x < 0.8:
                cmd = r.choice([F_OFD_SETLK, F_OFD_SETLK, F_OFD_GETLK])
                typ = r.choice([fcntl.F_RDLCK, fcntl.F_WRLCK, fcntl.F_UNLCK])
                if cmd == F_OFD_GETLK and typ == fcntl.F_UNLCK:
                    typ = fcntl.F_WRLCK
                return ("ofdlock", h, cmd, typ, r.choice([0, 10, 100]), r.choice([0, 1, 50])), []
            cmd = r.choice([fcntl.LOCK_EX | fcntl.LOCK_NB, fcntl.LOCK_SH | fcntl.LOCK_NB, fcntl.LOCK_UN])
            return ("lockf", h, cmd, r.choice([0, 10]), r.choice([0, 5])), []
        if kind == "fxattr":
            if r.random() < 0.5:
                return ("fgetxattr", h, self.xattr_name()), []
            hrel = self.handles[h][0]
            return ("fsetxattr", h, self.xattr_name(), self.xattr_value(), 0), [hrel]
        if kind == "mkdir":
            rel = self.target_path()
            return ("mkdir", rel, r.choice(MODES + [0o755] * 4)), [rel]
        if kind == "mknod":
            rel = self.target_path()
            t = r.choice([(stat.S_IFIFO, 0), (stat.S_IFSOCK, 0), (stat.S_IFCHR, os.makedev(1, 3)),
                          (stat.S_IFCHR, os.makedev(5, 0)), (stat.S_IFBLK, os.makedev(8, 1)),
                          (stat.S_IFREG, 0)])
            return ("mknod", rel, t[0] | r.choice([0o644, 0o600, 0o666]), t[1]), [rel]
        if kind == "symlink":
            rel = self.target_path()
            x = r.random()
            if x < 0.5:
                e = self.pick() or b"x"
                d = rel.rsplit(b"/", 1)[0] if b"/" in rel else b""
                target = os.path.relpath(e, d or b".")
            elif x < 0.8:
                target = self.new_name()
            else:
                target = r.choice([b"/etc/passwd", b"/nonexistent-fsmodel/x", b"../" * 9 + b"etc",
                                   b"T" * 1000, b".", b"a/b/../c"])
            return ("symlink", target, rel), [rel]
        if kind == "link":
            src = self.existing(("reg", "lnk", "fifo", "sock", "chr", "dir"))
            dst = self.target_path()
            f = follow and self.follow_ok(src)
            return ("link", src, dst, f), [src, dst]
        if kind == "unlink":
            rel = self.existing(("reg", "lnk", "fifo", "sock", "chr", "blk") if r.random() < 0.9 else None)
            return ("unlink", rel), [rel]
        if kind == "rmdir":
            rel = self.existing(("dir",))
            return ("rmdir", rel), [rel]
        if kind == "rename":
            src = self.existing(("dir",) if r.random() < 0.35 else None)
            x = r.random()
            if x < 0.4:
                dst = self.target_path()
            elif x < 0.6:
                dst = self.existing(("dir",))
            elif x < 0.7 and src:
                dst = src + b"/" + self.new_name()  # into itself: EINVAL
            else:
                dst = self.existing()
            flags = r.choice([0, 0, 0, RENAME_NOREPLACE, RENAME_EXCHANGE])
            return ("rename", src, dst, flags), [src, dst]
        if kind == "truncate":
            rel = self.existing(("reg",))
            if not self.follow_ok(rel):
                rel = self.existing(("reg",))
                if not self.follow_ok(rel):
                    return ("stat", rel, False), []
            return ("truncate", rel, self.size()), [rel]
        if kind == "chmod":
            rel = self.existing()
            return ("chmod", rel, r.choice(MODES), follow and self.follow_ok(rel)), [rel]
        if kind == "chown":
            rel = self.existing()
            return ("chown", rel, r.choice(IDS + [-1]), r.choice(IDS + [-1]), follow and self.follow_ok(rel)), [rel]
        if kind == "utime":
            rel = self.existing()
            ns = None if r.random() < 0.25 else (r.choice(TIMES), r.choice(TIMES))
            return ("utime", rel, ns, follow and self.follow_ok(rel)), [rel]
        if kind == "setxattr":
            rel = self.existing()
            flags = r.choice([0, 0, os.XATTR_CREATE, os.XATTR_REPLACE])
            return ("setxattr", rel, self.xattr_name(), self.xattr_value(), flags,
                    follow and self.follow_ok(rel)), [rel]
        if kind == "getxattr":
            rel = self.existing()
            if r.random() < 0.5:
                return ("listxattr", rel, follow and self.follow_ok(rel)), []
            return ("getxattr", rel, self.xattr_name(), follow and self.follow_ok(rel)), []
        if kind == "removexattr":
            rel = self.existing()
            return ("removexattr", rel, self.xattr_name(), follow and self.follow_ok(rel)), [rel]
        if kind == "stat":
            rel = self.existing()
            if r.random() < 0.2:
                return ("readlink", rel), []
            if r.random() < 0.2 and self.follow_ok(rel):
                return ("access", rel, r.choice([os.R_OK, os.W_OK, os.X_OK, os.F_OK])), []
            return ("stat", rel, follow and self.follow_ok(rel)), []
        if kind == "readdir":
            rel = self.existing(("dir",)) if r.random() < 0.9 else self.existing()
            return ("listdir", rel) if self.follow_ok(rel) else ("readlink", rel), []
        if kind == "readfile":
            rel = self.existing(("reg",))
            if not self.follow_ok(rel) or self.pool.get(rel) not in ("reg", "dir", None):
                return ("stat", rel, False), []
            return ("readfile", rel), []
        rel = self.existing(("dir",))
        return ("statfs", rel) if self.follow_ok(rel) else ("readlink", rel), []

    def take_h(self):
        h = self.next_h
        self.next_h += 1
        return h

    # -- running -------------------------------------------------------------
    def as_user(self, uid):
        if uid == self.cur_user:
            return
        if uid:
            os.setegid(uid)
            os.seteuid(uid)
        else:
            os.seteuid(0)
            os.setegid(0)
        self.cur_user = uid

    def safe(self, op):
        """every path's parent resolves inside the reference, and has the
        same types along the way on both sides"""
        for k in PATH_ARGS.get(op[0], ()):
            rel = op[k]
            if b"/" not in rel:
                continue
            parent = rel.rsplit(b"/", 1)[0]
            if not self.inside(parent):
                return False
            parts = parent.split(b"/")
            for n in range(1, len(parts) + 1):
                pre = b"/".join(parts[:n])
                ta, tb = lexists_type(self.ref.p(pre)), lexists_type(self.sut.p(pre))
                if ta != tb:
                    if self.keep_going:
                        return False
                    raise Divergence("before %s: %s is %s in the reference, %s in the SUT"
                                     % (fmt_op(op), esc(pre), ta, tb))
                if ta != "dir":
                    break
        return True

    def step(self, i):
        for _ in range(100):
            op, touched = self.gen()
            if self.safe(op):
                break
        else:
            raise RuntimeError("no safe operation in 100 tries")
        uid = self.user if self.user and self.r.random() < 0.12 else 0
        # parents change too (mtime, link counts)
        paths = set()
        for t in touched:
            paths.add(t)
            paths.add(t.rsplit(b"/", 1)[0] if b"/" in t else b"")
        text = "%5d %s%s" % (i, "uid %d: " % uid if uid else "", fmt_op(op))
        self.history.append(text)
        self.as_user(uid)
        try:
            ra = run_op(self.ref, op)
            rb = run_op(self.sut, op)
        finally:
            self.as_user(0)
        # a failed open on one side leaves a stray fd on the other
        if op[0] == "open" and ra[0] != rb[0]:
            for s in (self.ref, self.sut):
                fd = s.fds.pop(op[4], None)
                if fd is not None:
                    os.close(fd)
        if not self.same_result(ra, rb):
            raise Divergence("outcome differs:\n     ref: %s\n     sut: %s" % (fmt_res(ra), fmt_res(rb)))
        self.counts[op[0]] = self.counts.get(op[0], 0) + 1
        if ra[0] == "err":
            self.errs += 1
        if self.verbose:
            print("   %s -> %s" % (text, fmt_res(ra)))
        if op[0] == "open" and ra[0] == "ok":
            self.handles[op[4]] = (op[1], op[2], ftype(os.fstat(self.ref.fds[op[4]]).st_mode))
        if op[0] == "close":
            self.handles.pop(op[1], None)
        if ra[0] == "ok":
            for t in touched:
                self.rescan(t)
        # the touched entries and their parents look the same now
        for rel in sorted(paths):
            if not rel.startswith(b"missing-dir"):
                self.check_entry(rel)
        # and so does what a touched handle sees
        if len(op) > 1 and isinstance(op[1], int) and op[1] in self.handles:
            a, b = run_op(self.ref, ("fstat", op[1])), run_op(self.sut, ("fstat", op[1]))
            if a != b:
                d = diff_info(a[1], b[1], self.t0) if a[0] == b[0] == "ok" else "%s / %s" % (a, b)
                if d:
                    raise Divergence("fstat of handle %d (opened as %s) differs: %s"
                                     % (op[1], esc(self.handles[op[1]][0]), d))

    def same_result(self, a, b):
        if a[0] == b[0] == "ok" and isinstance(a[1], dict) and isinstance(b[1], dict):
            return not diff_info(a[1], b[1], self.t0)
        return a == b

    def check_entry(self, rel):
        a = info(self.ref.p(rel), content=True)
        b = info(self.sut.p(rel), content=True)
        d = diff_info(a, b, self.t0)
        if d:
            raise Divergence("after it, %s differs: %s" % (esc(rel) or ".", d))

    def checkpoint(self):
        out, n = compare_trees(self.ref.root, self.sut.root, self.t0)
        if out:
            raise Divergence("the trees differ:\n     " + "\n     ".join(out))
        return n

    def close_all(self):
        for s in (self.ref, self.sut):
            for fd in s.fds.values():
                os.close(fd)
            s.fds.clear()
        self.handles.clear()

    def run_on(self, nops):
        """--keep-going: every operation runs whatever the outcomes; the
        divergences are only counted (for tests that need the operations,
        not the verdict)"""
        diverged = 0
        for i in range(1, nops + 1):
            try:
                self.step(i)
            except Divergence as e:
                diverged += 1
                if diverged <= 3:
                    print("   (divergence at %d: %s: %s)" % (i, self.history[-1].strip(), str(e).split("\n")[0]))
        self.close_all()
        print("   seed %d: %d operations, %d diverged from the model" % (self.seed, nops, diverged))
        return 0

    def run(self, nops, every):
        i = 0
        try:
            for i in range(1, nops + 1):
                self.step(i)
                if i % every == 0:
                    self.checkpoint()
            self.close_all()
            n = self.checkpoint()
        except Divergence as e:
            print("FAIL seed %d: divergence at operation %d of %d" % (self.seed, i, nops))
            print("   %s" % self.history[-1].strip() if self.history else "")
            print("   %s" % e)
            print("   last operations (replay: --seed %d):" % self.seed)
            for h in self.history[-25:]:
                print("    " + h)
            return 1
        ok = sum(self.counts.values())
        print("   seed %d: %d operations (%d failed with the same errno on both), trees equal (%d entries)"
              % (self.seed, ok, self.errs, n))
        print("   " + " ".join("%s=%d" % kv for kv in sorted(self.counts.items())))
        return 0


def fmt_op(op):
    parts = []
    for x in op[1:]:
        if isinstance(x, bytes):
            parts.append(esc(x) if len(x) <= 64 else "%s...(%d bytes)" % (esc(x[:20]), len(x)))
        else:
            parts.append(repr(x))
    if op[0] == "open":
        parts[1] = oflags(op[2])
    return "%s(%s)" % (op[0], ", ".join(parts))


def oflags(f):
    names = [n for n in ("O_WRONLY", "O_RDWR", "O_CREAT", "O_EXCL", "O_TRUNC", "O_APPEND", "O_NOFOLLOW",
                         "O_DIRECTORY", "O_NONBLOCK", "O_PATH") if f & getattr(os, n)]
    return "|".join(names) or "O_RDONLY"


def fmt_res(r):
    if r[0] == "err":
        return r[1]
    v = r[1]
    if isinstance(v, (bytes, bytearray)):
        v = short(bytes(v))
    return "ok %r" % (v,) if v is not None else "ok"


# ---------------------------------------------------------------------------
# Data integrity

def data_files(orig):
    """groups of names of one inode: regular files of the image"""
    groups = {}
    for rel, _, st in walk(os.fsencode(orig)):
        if stat.S_ISREG(st.st_mode):
            groups.setdefault(st.st_ino, []).append(rel)
    return [sorted(g) for _, g in sorted(groups.items(), key=lambda kv: sorted(kv[1]))]


def data_run(a):
    r = random.Random(a.seed)
    orig, sut = os.fsencode(a.orig), os.fsencode(a.sut)
    groups = [g for g in data_files(orig) if not any(x in esc(n) for n in g for x in a.skip)]
    model = []
    for g in groups:
        with open(orig + b"/" + g[0], "rb") as fh:
            model.append(bytearray(fh.read()))
    fds = {}  # (group, name index) -> fd
    old = {}  # read-only fds opened before any write: they must see the writes
    for gi, g in enumerate(groups):
        old[gi] = os.open(sut + b"/" + g[-1], os.O_RDONLY)
    stats = {}

    def fd_for(gi):
        k = (gi, r.randrange(len(groups[gi])))
        if k not in fds:
            fds[k] = os.open(sut + b"/" + groups[gi][k[1]], os.O_RDWR)
        return fds[k]

    def fail(msg):
        print("FAIL seed %d: %s" % (a.seed, msg))
        sys.exit(1)

    def check_range(gi, fd, off, n, how):
        m = model[gi]
        want = bytes(m[off:off + n])
        got = os.pread(fd, n, off)
        if got != want:
            first = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]), min(len(got), len(want)))
            fail("%s of %s [%d, +%d): %d bytes, want %d; first difference at %d"
                 % (how, esc(groups[gi][0]), off, n, len(got), len(want), off + first))

    try:
        data_ops(a, r, sut, groups, model, fds, old, stats, fd_for, fail, check_range)
    except OSError as e:
        fail("%s: %s" % (e.filename or "", e.strerror))
    for fd in list(fds.values()) + list(old.values()):
        os.close(fd)
    state = {}
    for gi, g in enumerate(groups):
        for name in g:
            state[esc(name)] = [len(model[gi]), hashlib.sha256(model[gi]).hexdigest()]
        check_range(gi, os.open(sut + b"/" + g[0], os.O_RDONLY), 0, len(model[gi]) + 1, "final read")
    with open(a.state, "w") as fh:
        json.dump(state, fh, indent=0, sort_keys=True)
    print("   seed %d: %d operations on %d files (%d names): %s; every read matched the model"
          % (a.seed, a.ops, len(groups), sum(len(g) for g in groups),
             " ".join("%s=%d" % kv for kv in sorted(stats.items()))))
    return 0


def data_ops(a, r, sut, groups, model, fds, old, stats, fd_for, fail, check_range):
    for i in range(a.ops):
        gi = r.randrange(len(groups))
        m = model[gi]
        kind = r.choices(["pwrite", "pread", "truncate", "mmap", "reopen", "sync", "old", "fallocate"],
                         [10, 10, 2, 4, 2, 2, 3, 1])[0]
        stats[kind] = stats.get(kind, 0) + 1
        size = len(m)
        if kind == "pwrite":
            off = r.choice([0, r.randrange(0, size + 1), size, r.randrange(0, size + 100_000), size + 4096 * r.randrange(1, 40)])
            n = r.choice([1, 7, 4096, r.randrange(1, 200_000)])
            data = r.randbytes(n)
            if os.pwrite(fd_for(gi), data, off) != n:
                fail("short pwrite")
            if off > len(m):
                m.extend(bytes(off - len(m)))
            m[off:off + n] = data
        elif kind == "pread":
            off = r.randrange(0, size + 10) if size else 0
            check_range(gi, fd_for(gi), off, r.choice([1, 4096, 100_000, size]), "pread")
        elif kind == "truncate":
            n = r.choice([0, size // 2, size + 1, size + 100_000, r.randrange(0, size + 2)])
            if r.random() < 0.5:
                os.ftruncate(fd_for(gi), n)
            else:
                os.truncate(sut + b"/" + r.choice(groups[gi]), n)
            if n < len(m):
                del m[n:]
            else:
                m.extend(bytes(n - len(m)))
        elif kind == "fallocate":
            off, n = r.randrange(0, size + 1), r.randrange(1, 100_000)
            mode = r.choice([0, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE])
            try:
                fallocate(fd_for(gi), mode, off, n)
            except OSError as e:
                if e.errno not in (errno.EOPNOTSUPP,):
                    raise
                stats["fallocate-unsupported"] = stats.get("fallocate-unsupported", 0) + 1
                continue
            if mode:
                end = min(off + n, len(m))
                m[off:end] = bytes(max(0, end - off))
            elif off + n > len(m):
                m.extend(bytes(off + n - len(m)))
        elif kind == "mmap":
            if size == 0:
                continue
            fd = fd_for(gi)
            off = r.randrange(0, size) // mmap.PAGESIZE * mmap.PAGESIZE
            n = min(size - off, r.choice([1, 100, 4096, 10_000, 300_000]))
            mm = mmap.mmap(fd, n, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=off)
            try:
                if bytes(mm[:n]) != bytes(m[off:off + n]):
                    fail("mmap read of %s at %d, %d bytes: differs from the model" % (esc(groups[gi][0]), off, n))
                w = r.randrange(0, n)
                k = min(n - w, r.choice([1, 50, 5000]))
                data = r.randbytes(k)
                mm[w:w + k] = data
                m[off + w:off + w + k] = data
                if r.random() < 0.5:
                    mm.flush()
            finally:
                mm.close()
        elif kind == "reopen":
            for k in [k for k in fds if k[0] == gi]:
                os.close(fds.pop(k))
            fd = os.open(sut + b"/" + r.choice(groups[gi]), os.O_RDONLY)
            check_range(gi, fd, 0, len(m) + 1, "read after reopen")
            os.close(fd)
        elif kind == "sync":
            fd = fd_for(gi)
            os.fsync(fd)
            # drop this file's cached pages: the next read asks the filesystem
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            check_range(gi, fd, 0, len(m) + 1, "read after fsync and FADV_DONTNEED")
        elif kind == "old":
            off = r.randrange(0, size + 1)
            check_range(gi, old[gi], off, r.choice([1, 4096, 100_000]), "read through a fd opened before the writes")
            if os.fstat(old[gi]).st_size != len(m):
                fail("fstat of a fd opened before the writes: size %d, want %d" % (os.fstat(old[gi]).st_size, len(m)))
        if os.fstat(fd_for(gi)).st_size != len(m):
            fail("after %s of %s, st_size %d, want %d" % (kind, esc(groups[gi][0]), os.fstat(fd_for(gi)).st_size, len(m)))


def unesc(s):
    out, i = bytearray(), 0
    while i < len(s):
        if s[i] == "\\":
            out.append(int(s[i + 2:i + 4], 16))
            i += 4
        else:
            out.append(ord(s[i]))
            i += 1
    return bytes(out)


def data_verify(a):
    with open(a.state) as fh:
        state = json.load(fh)
    sut = os.fsencode(a.sut)
    bad = []
    for name, (size, sha) in sorted(state.items()):
        path = sut + b"/" + unesc(name)
        with open(path, "rb") as fh:
            b = fh.read()
        if len(b) != size or hashlib.sha256(b).hexdigest() != sha:
            bad.append("%s: %d bytes sha %s, want %d bytes sha %s" % (name, len(b), hashlib.sha256(b).hexdigest()[:12], size, sha[:12]))
    for b in bad[:20]:
        print("   " + b)
    if bad:
        print("FAIL: %d of %d files differ from the model" % (len(bad), len(state)))
        return 1
    print("   ok: %d files hold the model's bytes" % len(state))
    return 0


def upper_view(tree, priv, escp):
    """{rel: info} of an upper tree as the container sees its entries:
    whiteouts left out, private xattrs dropped, escaped ones unescaped"""
    out = {}
    for rel, path, st in walk(os.fsencode(tree)):
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            out[rel] = {"whiteout": True}
            continue
        d = info(path, content=True)
        d.pop("nlink", None)  # an index or work-dir link may count
        xs = []
        if any(n == priv + "metacopy" for n, _ in d["xattrs"]):
            d["metacopy"] = True
        for n, v in d["xattrs"]:
            if n.startswith(escp):
                xs.append((priv + n[len(escp):], v))
            elif not n.startswith(priv):
                xs.append((n, v))
        d["xattrs"] = tuple(sorted(xs))
        out[rel] = d
    return out


def upper_check(a):
    """every entry the upper holds (but whiteouts) looks as in the reference"""
    view = upper_view(a.upper, a.priv, a.esc)
    ref = os.fsencode(a.ref)
    bad, n = [], 0
    for rel, d in sorted(view.items()):
        if d.get("whiteout") or not rel:
            continue
        n += 1
        r = info(ref + b"/" + rel, content=True)
        r.pop("nlink", None)
        if d.pop("metacopy", False):  # metadata only: its bytes are the image's
            for k in ("data", "size"):
                r.pop(k, None)
                d.pop(k, None)
        x = diff_info(r, d, a.t0)
        if x:
            bad.append("%s: %s" % (esc(rel), x))
    need = [os.fsencode(x) for x in a.need]
    for rel in need:
        if rel not in view:
            bad.append("%s: not in the upper" % esc(rel))
    for b in bad[:30]:
        print("   " + b)
    if bad:
        print("FAIL: %d entries of the upper differ from the reference" % len(bad))
        return 1
    print("   ok: %d entries in the upper look as in the reference" % n)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("mkimage")
    m.add_argument("dir")
    for name in ("run", "compare"):
        x = sub.add_parser(name)
        x.add_argument("--ref", required=True)
        x.add_argument("--sut", required=True)
        x.add_argument("--t0", type=int)
        x.add_argument("--seed", type=int, default=1)
        x.add_argument("--ops", type=int, default=3000)
        x.add_argument("--priv", default="trusted.cairn.")
        x.add_argument("--user", type=int, default=1000)
        x.add_argument("--check-every", type=int, default=500)
        x.add_argument("--verbose", action="store_true")
        x.add_argument("--keep-going", action="store_true", help="run every operation; count divergences")
        x.add_argument("--lax", default="", help="known differences to tolerate: " +
                       ", ".join(sorted(LAX_NAMES)))
    d = sub.add_parser("data")
    d.add_argument("--orig", required=True)
    d.add_argument("--sut", required=True)
    d.add_argument("--seed", type=int, default=1)
    d.add_argument("--ops", type=int, default=3000)
    d.add_argument("--state", required=True)
    d.add_argument("--skip", action="append", default=[], help="leave out files whose name contains this")
    v = sub.add_parser("verify")
    v.add_argument("--sut", required=True)
    v.add_argument("--state", required=True)
    u = sub.add_parser("upper", help="the upper's entries (whiteouts aside) look as in --ref")
    u.add_argument("--upper", required=True, help="UPPERDIR/tree")
    u.add_argument("--ref", required=True)
    u.add_argument("--priv", required=True)
    u.add_argument("--esc", required=True)
    u.add_argument("--t0", type=int, default=0)
    u.add_argument("--need", action="append", default=[], help="a path the upper must hold")
    a = ap.parse_args()
    if a.cmd == "upper":
        return upper_check(a)
    if a.cmd == "mkimage":
        mkimage(a.dir)
        return 0
    if a.cmd == "data":
        return data_run(a)
    if a.cmd == "verify":
        return data_verify(a)
    for name in filter(None, a.lax.split(",")):
        if name not in LAX_NAMES:
            ap.error("--lax: unknown relaxation %r" % name)
        LAX.add(name)
    os.umask(0o022)
    os.setgroups([])
    if a.cmd == "compare":
        t0 = a.t0 if a.t0 is not None else 0
        out, n = compare_trees(os.fsencode(a.ref), os.fsencode(a.sut), t0)
        for line in out:
            print("   " + line)
        if out:
            print("FAIL: the trees differ")
            return 1
        print("   ok: trees equal (%d entries)" % n)
        return 0
    if a.keep_going:
        return Runner(a).run_on(a.ops)
    return Runner(a).run(a.ops, a.check_every)


if __name__ == "__main__":
    sys.exit(main())
