#!/usr/bin/env python3
"""treedump.py DIR - canonical listing of a tree, independent of cairn.

One line per entry, depth first, names sorted by bytes, the root first as
".". Fields are separated by one space; paths and other byte strings are
escaped so every line is printable ASCII (bytes outside 0x21..0x7e and the
backslash become \\xNN):

  PATH TYPE mode=MMMM uid=U gid=G mtime=NS [size=N data=SHA256]
      [rdev=MAJ:MIN] [target=T] [xattr:NAME=HEX ...] [link=FIRST nlink=N]

TYPE is reg, dir, lnk, chr, blk, fifo or sock; mode is the permission bits
in octal; mtime is st_mtime_ns (directories and symlinks too).

data= hashes a canonical form of the content that does not depend on how
the file is allocated: the file is cut into aligned 64 KiB blocks and every
block that is not all zeros feeds (offset as 8 bytes little endian, block
bytes) into a SHA-256. Only data regions (SEEK_DATA/SEEK_HOLE) are read, so
a 5 GiB sparse file takes no time; written zeros and holes hash the same.
Two files have the same data= exactly when they have the same size and
bytes.

Hard links: entries that share an inode with another entry inside the tree
get link= (the first path of the group in listing order) and nlink= (the
group's size inside the tree).

Options:
  --ignore-root   leave out the root entry's own attributes
  --exclude-type TYPE
                  leave out entries of TYPE (repeatable), e.g. sock, which
                  tar cannot carry
"""

import argparse
import errno
import hashlib
import os
import stat
import sys

BLOCK = 64 * 1024
ZERO = bytes(BLOCK)


def esc(b):
    if isinstance(b, str):
        b = os.fsencode(b)
    out = []
    for c in b:
        if 0x21 <= c <= 0x7E and c != 0x5C:
            out.append(chr(c))
        else:
            out.append("\\x%02x" % c)
    return "".join(out)


def content_hash(path, size):
    h = hashlib.sha256()
    h.update(size.to_bytes(8, "little"))
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NOCTTY)
    try:
        pos = 0
        while pos < size:
            try:
                data = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as e:
                if e.errno == errno.ENXIO:  # only a hole from pos to the end
                    break
                raise
            hole = os.lseek(fd, data, os.SEEK_HOLE)
            start = data - data % BLOCK
            end = min(size, -(-hole // BLOCK) * BLOCK)
            off = start
            while off < end:
                n = min(BLOCK, end - off)
                block = os.pread(fd, n, off)
                if len(block) != n:
                    raise OSError(errno.EIO, "short read", path)
                if block != ZERO[:n]:
                    h.update(off.to_bytes(8, "little"))
                    h.update(block)
                off += n
            pos = end
    finally:
        os.close(fd)
    return h.hexdigest()


TYPES = [
    (stat.S_ISREG, "reg"),
    (stat.S_ISDIR, "dir"),
    (stat.S_ISLNK, "lnk"),
    (stat.S_ISCHR, "chr"),
    (stat.S_ISBLK, "blk"),
    (stat.S_ISFIFO, "fifo"),
    (stat.S_ISSOCK, "sock"),
]


def ftype(mode):
    for test, name in TYPES:
        if test(mode):
            return name
    return "unknown"


def walk(root):
    """Yield (relpath bytes, abspath bytes, lstat) depth first, sorted by bytes."""
    st = os.lstat(root)
    yield b".", root, st
    if not stat.S_ISDIR(st.st_mode):
        return
    # a directory, then its children, recursively
    def rec(absdir, reldir):
        names = sorted(os.listdir(absdir))
        for n in names:
            a = os.path.join(absdir, n)
            r = n if not reldir else reldir + b"/" + n
            s = os.lstat(a)
            yield r, a, s
            if stat.S_ISDIR(s.st_mode):
                yield from rec(a, r)

    yield from rec(root, b"")


def xattrs(path):
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return []
        raise
    out = []
    for n in sorted(names, key=os.fsencode):
        v = os.getxattr(path, n, follow_symlinks=False)
        out.append("xattr:%s=%s" % (esc(n), v.hex()))
    return out


def main():
    ap = argparse.ArgumentParser(description="canonical listing of a tree")
    ap.add_argument("dir")
    ap.add_argument("--ignore-root", action="store_true")
    ap.add_argument("--exclude-type", action="append", default=[])
    args = ap.parse_args()

    root = os.fsencode(args.dir)
    entries = list(walk(root))

    # hard-link groups inside the tree
    groups = {}
    for rel, _, st in entries:
        if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
            groups.setdefault((st.st_dev, st.st_ino), []).append(rel)

    out = sys.stdout
    for rel, path, st in entries:
        t = ftype(st.st_mode)
        if t in args.exclude_type:
            continue
        if rel == b"." and args.ignore_root:
            continue
        f = [
            esc(rel),
            t,
            "mode=%04o" % stat.S_IMODE(st.st_mode),
            "uid=%d" % st.st_uid,
            "gid=%d" % st.st_gid,
            "mtime=%d" % st.st_mtime_ns,
        ]
        if t == "reg":
            f.append("size=%d" % st.st_size)
            f.append("data=%s" % content_hash(path, st.st_size))
        elif t in ("chr", "blk"):
            f.append("rdev=%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev)))
        elif t == "lnk":
            f.append("target=%s" % esc(os.readlink(path)))
        f.extend(xattrs(path))
        g = groups.get((st.st_dev, st.st_ino))
        if g and len(g) > 1:
            f.append("link=%s" % esc(g[0]))
            f.append("nlink=%d" % len(g))
        out.write(" ".join(f) + "\n")


if __name__ == "__main__":
    main()
