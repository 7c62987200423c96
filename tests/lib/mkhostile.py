#!/usr/bin/python3
"""mkhostile.py DIR - build the corpus of bad tar archives into DIR.

Each file is one way a tar stream can be hostile or broken; `cairn import`
must refuse every one of them with one clear error and leave the store as
it was. Written with Python's tarfile module, byte by byte where tarfile
refuses to write what an attacker would. Deterministic: same bytes every
run (mtime 0, no user or group names).

Also writes DIR/README listing the files and what each one holds, and
DIR/ok-*.tar: odd but valid archives that must import.

DIR/layer-*.tar hold OCI whiteouts, so they are refused without --on like
any archive here. With --on IMAGE, layer-bad-* must still be refused (each
one a whiteout that cannot mean anything) and layer-ok-* must import.
"""

import gzip
import io
import os
import sys
import tarfile

BIG = 10 * 1024**3  # a declared size far past the data that follows


def info(name, kind=tarfile.REGTYPE, size=0, mode=0o644, link=""):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.size = size
    ti.mode = mode
    ti.mtime = 0
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    ti.linkname = link
    return ti


def pax_tar(members):
    """A pax tar of (TarInfo, bytes or None) pairs, as bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for ti, data in members:
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def f(name, data=b"x\n", **kw):
    return (info(name, size=len(data), **kw), data)


def d(name, mode=0o755):
    return (info(name, tarfile.DIRTYPE, mode=mode), None)


def sym(name, target):
    return (info(name, tarfile.SYMTYPE, mode=0o777, link=target), None)


def hard(name, target):
    return (info(name, tarfile.LNKTYPE, link=target), None)


def raw_header(ti):
    """One ustar header block for ti (GNU encoding for big numbers)."""
    return ti.tobuf(format=tarfile.GNU_FORMAT)


def pax_record(key, value):
    """One pax record: 'LEN key=value\\n' with LEN counting itself."""
    body = b" " + key + b"=" + value + b"\n"
    n = len(body) + 1
    while len(str(n).encode()) + len(body) != n:
        n += 1
    return str(n).encode() + body


def pax_block(records):
    """An 'x' header with the given raw record bytes, padded."""
    ti = info("PaxHeader/x", tarfile.XHDTYPE, size=len(records))
    data = records + b"\0" * (-len(records) % 512)
    return ti.tobuf(format=tarfile.USTAR_FORMAT) + data


END = b"\0" * 1024


def corpus():
    c = {}
    c["abs-path.tar"] = ("an absolute path (/etc/cairn-evil)",
                         pax_tar([f("/etc/cairn-evil")]))
    c["dotdot.tar"] = ("a '..' component (a/../../cairn-evil)",
                       pax_tar([d("a"), f("a/../../cairn-evil")]))
    c["dotdot-only.tar"] = ("a path that is just '..'", pax_tar([d("..")]))
    c["through-symlink.tar"] = (
        "a symlink to /etc, then a file written through it (lnk/passwd)",
        pax_tar([sym("lnk", "/etc"), f("lnk/passwd", b"root::0:0::/:/bin/sh\n")]))
    c["through-symlink-dir.tar"] = (
        "a symlink to '.', then a directory entry through it",
        pax_tar([sym("s", "."), d("s/sub")]))
    c["hardlink-missing.tar"] = ("a hard link to a path not in the archive",
                                 pax_tar([f("a"), hard("b", "no-such-file")]))
    c["hardlink-later.tar"] = ("a hard link to an entry that only comes later",
                               pax_tar([hard("b", "a"), f("a")]))
    c["hardlink-outside.tar"] = ("a hard link to ../../etc/shadow",
                                 pax_tar([f("a"), hard("b", "../../etc/shadow")]))
    c["hardlink-absolute.tar"] = ("a hard link to /etc/shadow",
                                  pax_tar([hard("b", "/etc/shadow")]))
    c["hardlink-dir.tar"] = ("a hard link to a directory",
                             pax_tar([d("dir"), hard("b", "dir")]))
    c["hardlink-via-symlink.tar"] = (
        "a hard link whose target lies through a symlink of the archive",
        pax_tar([sym("etc", "/etc"), hard("b", "etc/shadow")]))

    good = pax_tar([d("dir"), f("dir/file", b"y" * 20000), f("tail")])
    c["truncated.tar"] = ("a valid archive cut in the middle of a file's data",
                          good[:512 * 4 + 700])
    c["truncated-header.tar"] = ("a valid archive cut in the middle of a header",
                                 good[:512 * 2 + 100])

    gz = gzip.compress(good, mtime=0)
    g = bytearray(gz)
    for i in range(len(g) // 3, len(g) // 3 + 64):
        g[i] ^= 0x5A
    c["garbled.tar.gz"] = ("a gzip stream with 64 garbled bytes in the middle", bytes(g))
    c["truncated.tar.gz"] = ("a gzip stream cut short", gz[:len(gz) // 2])

    huge = raw_header(info("huge", size=BIG)) + b"z" * 4096
    c["huge-size.tar"] = ("a header declaring 10 GiB followed by 4 KiB (truncated)", huge)
    enormous = raw_header(info("enormous", size=2**62)) + b"z" * 4096
    c["enormous-size.tar"] = ("a header declaring 4 EiB (past --max-bytes)", enormous)
    neg = bytearray(raw_header(info("neg", size=0)))
    neg[124:136] = b"\xff" * 12  # base-256 size field: -1
    neg[148:156] = b"        "
    neg[148:155] = ("%06o\0" % sum(neg)).encode()
    c["negative-size.tar"] = ("a header with a negative (base-256) size", bytes(neg) + END)
    c["bad-pax.tar"] = ("a pax header with a malformed record",
                        pax_block(b"12 path=x\n9 garbage\n") +
                        raw_header(info("file")) + END)
    c["bad-pax-length.tar"] = ("a pax record whose length runs past the header",
                               pax_block(b"999 path=x\n") + raw_header(info("file")) + END)

    c["long-name.tar"] = ("a name of 256 bytes", pax_tar([f("n" * 256)]))
    deep = "/".join(["d" * 100] * 42)  # 4241 bytes
    c["long-path.tar"] = ("a path of %d bytes (past PATH_MAX)" % len(deep), pax_tar([f(deep)]))
    c["empty-component.tar"] = ("a path with an empty name in it (a//b)",
                                pax_tar([f("a//b")]))
    c["whiteout.tar"] = ("an OCI whiteout (dir/.wh.gone)",
                         pax_tar([d("dir"), f("dir/.wh.gone", b"")]))
    c["opaque.tar"] = ("an OCI opaque marker (dir/.wh..wh..opq)",
                       pax_tar([d("dir"), f("dir/.wh..wh..opq", b"")]))
    c["dir-to-file.tar"] = ("a directory with entries, then a file of the same name",
                            pax_tar([d("d"), f("d/inner"), f("d")]))
    c["root-not-dir.tar"] = ("'.' as a regular file", pax_tar([f(".")]))
    c["bad-xattr-ns.tar"] = ("an xattr outside user/trusted/security",
                             pax_block(pax_record(b"SCHILY.xattr.system.evil", b"1")) +
                             raw_header(info("file")) + END)
    c["bad-acl-xattr.tar"] = ("a system.posix_acl_access xattr that is not an ACL",
                              pax_block(pax_record(b"SCHILY.xattr.system.posix_acl_access",
                                                   b"garbage")) +
                              raw_header(info("file")) + END)
    c["bad-acl.tar"] = ("an access ACL with a named user and no mask",
                        pax_block(pax_record(b"SCHILY.acl.access",
                                             b"user::rw-,user:1234:rwx,group::r--,other::r--")) +
                        raw_header(info("file")) + END)
    c["empty-symlink.tar"] = ("a symlink with an empty target",
                              pax_tar([sym("s", "")]))
    c["not-a-tar.bin"] = ("64 KiB of pseudo-random bytes",
                          bytes((i * 2654435761 >> 13) & 0xFF for i in range(65536)))
    c["empty.tar"] = ("an empty file (0 bytes)", b"")
    c["xz.tar.xz"] = ("xz magic bytes: a compression cairn does not take",
                      b"\xfd7zXZ\0" + b"\0" * 200)
    c["bzip2.tar.bz2"] = ("bzip2 magic bytes", b"BZh91AY&SY" + b"\0" * 200)

    # valid, if odd: these import
    ok = {}
    ok["ok-dup.tar"] = ("the same path three times: the last one wins",
                        pax_tar([f("dup", b"first\n"), f("dup", b"second\n"),
                                 f("dup", b"third\n", mode=0o600)]))
    ok["ok-devices.tar"] = ("device nodes and a fifo: stored, never made on the host",
                            pax_tar([(_dev("dev/sda", tarfile.BLKTYPE, 8, 0), None),
                                     (_dev("dev/mem", tarfile.CHRTYPE, 1, 1), None),
                                     (info("dev/fifo", tarfile.FIFOTYPE), None)]))
    ok["ok-implied.tar"] = ("only a deep file: its directories are implied",
                            pax_tar([f("a/b/c/file")]))
    ok["ok-relink.tar"] = ("a hard link, then its target replaced: the link keeps the old "
                           "file", pax_tar([f("a", b"old\n"), hard("b", "a"),
                                            f("a", b"new\n")]))
    ok["ok-symlink-anywhere.tar"] = ("symlinks to absolute and '..' targets (data only)",
                                     pax_tar([sym("abs", "/etc/shadow"),
                                              sym("up", "../../../../etc")]))
    ok["ok-dotslash.tar"] = ("'./' prefixes and a '.' entry with its own attributes",
                             pax_tar([d(".", 0o700), d("./x"), f("./x/y")]))
    ok["ok-bomb.tar.gz"] = ("64 MiB of zeros in a small gzip (import with --max-bytes 1M to "
                            "see it refused)", _bomb(64 << 20))
    return c, ok


def layer_corpus():
    """Whiteout cases: (bad, ok) dicts of name -> (what, bytes)."""
    bad, ok = {}, {}
    bad["layer-bad-wh-dotdot.tar"] = ("a whiteout of '..' (dir/.wh...)",
                                      pax_tar([d("dir"), f("dir/.wh...", b"")]))
    bad["layer-bad-wh-dot.tar"] = ("a whiteout of '.' (dir/.wh..)",
                                   pax_tar([d("dir"), f("dir/.wh..", b"")]))
    bad["layer-bad-wh-empty.tar"] = ("a whiteout that names nothing (dir/.wh.)",
                                     pax_tar([d("dir"), f("dir/.wh.", b"")]))
    bad["layer-bad-wh-is-dir.tar"] = ("a whiteout that is a directory",
                                      pax_tar([d("dir/.wh.gone")]))
    bad["layer-bad-wh-in-path.tar"] = ("a whiteout name used as a directory (.wh.x/file)",
                                       pax_tar([f(".wh.x/file")]))
    bad["layer-bad-wh-symlink.tar"] = ("a whiteout that is a symlink",
                                       pax_tar([sym(".wh.etc", "/etc")]))
    bad["layer-bad-wh-hardlink.tar"] = ("a whiteout that is a hard link",
                                        pax_tar([f("a"), hard(".wh.b", "a")]))
    bad["layer-bad-wh-reserved.tar"] = ("a reserved whiteout name (.wh..wh.plnk)",
                                        pax_tar([f(".wh..wh.plnk", b"")]))
    bad["layer-bad-opaque-in-file.tar"] = ("an opaque marker inside a regular file",
                                           pax_tar([f("file"), f("file/.wh..wh..opq", b"")]))
    bad["layer-bad-link-to-whiteout.tar"] = ("a hard link to a path this layer whites out",
                                             pax_tar([f(".wh.gone", b""), hard("b", "gone")]))
    ok["layer-ok-wh-then-dir.tar"] = (
        "a whiteout and a directory of the same name: the directory is opaque",
        pax_tar([f(".wh.dir", b""), d("dir"), f("dir/new")]))
    ok["layer-ok-dir-then-wh.tar"] = (
        "a directory, then a whiteout of it: the same (a whiteout hides only layers below)",
        pax_tar([d("dir"), f("dir/new"), f(".wh.dir", b"")]))
    ok["layer-ok-file-then-wh.tar"] = ("a file, then a whiteout of it: the file stays",
                                       pax_tar([f("keep", b"kept\n"), f(".wh.keep", b"")]))
    ok["layer-ok-wh-then-deeper.tar"] = (
        "a whiteout, then an entry below the same name: an opaque implied directory",
        pax_tar([f(".wh.dir", b""), f("dir/sub/x")]))
    ok["layer-ok-opaque.tar"] = ("an opaque marker with a new entry beside it",
                                 pax_tar([d("dir"), f("dir/.wh..wh..opq", b""),
                                          f("dir/only")]))
    ok["layer-ok-wh-missing.tar"] = ("a whiteout of a name the base does not have",
                                     pax_tar([f(".wh.never-there", b"")]))
    return bad, ok


def _dev(name, kind, major, minor):
    ti = info(name, kind, mode=0o600)
    ti.devmajor, ti.devminor = major, minor
    return ti


def _bomb(n):
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as z:
        z.write(raw_header(info("zeros", size=n)))
        chunk = b"\0" * (1 << 20)
        for _ in range(n >> 20):
            z.write(chunk)
        z.write(END)
    return buf.getvalue()


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: mkhostile.py DIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    bad, ok = corpus()
    lbad, lok = layer_corpus()
    bad.update(lbad)
    ok.update(lok)
    lines = []
    for name, (what, data) in sorted(bad.items()) + sorted(ok.items()):
        with open(os.path.join(out, name), "wb") as fh:
            fh.write(data)
        lines.append("%-28s %s\n" % (name, what))
    with open(os.path.join(out, "README"), "w") as fh:
        fh.write("bad tar archives: each must fail to import with one clear error;\n"
                 "ok-*: valid ones that must import; layer-*: whiteouts, refused\n"
                 "without --on; with --on, layer-bad-* fail and layer-ok-* import\n\n")
        fh.writelines(lines)


if __name__ == "__main__":
    main()
