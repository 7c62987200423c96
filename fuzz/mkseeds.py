#!/usr/bin/python3
"""mkseeds.py CAIRN DIR - (re)write the checked-in seed corpora of the fuzz
harnesses into DIR (fuzz/corpus): DIR/values, DIR/store, DIR/tar, DIR/oci.

Builds two small trees that hold every kind of node (directories with
xattrs and an ACL, a hard-link pair, a symlink, a fifo, a device, an empty
file, a compressible file, a sparse one whose content list has a hole),
imports them with CAIRN into a fresh store, moves a platform across them
(upgrade, upgrade, rollback), then writes:
  values/  each value of the store, prefixed with its fuzz_values kind byte
  store/   whole stores as fuzz_store records (see fuzz/fuzz_store.c)
  tar/     the first tree as tar streams: pax with xattrs and ACLs (GNU tar
           and bsdtar), GNU
           with a sparse file and a long name, ustar with a device and a
           fifo, the whole tree gzip and zstd compressed
  oci/     OCI layouts in fuzz_oci's form (see fuzz/fuzz_oci.c): layers
           with whiteouts and an opaque directory, plain, gzip and zstd,
           two manifests sharing a layer, Docker media types
Needs root (device nodes, trusted.* xattrs), python3-lmdb and GNU tar.
The hostile tars come from tests/lib/mkhostile.py at run time instead.
"""

import gzip
import hashlib
import io
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile

import lmdb

# enum cairn_db, in order
DBS = ["meta", "chunks", "contents", "nodes", "layers", "images", "tags", "platforms",
       "history", "packs"]
# enum kind of fuzz_values.c
KIND_NODE, KIND_CONTENT, KIND_IMAGE, KIND_CHUNK_INDEX, KIND_PACK_ENTRY = range(5)
OP_PACK = 10
MAX_SEED = 16384


def tree(root, second):
    def write(rel, data, mode=0o644):
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        os.chmod(p, mode)
        return p

    hostname = write("etc/hostname", b"cairn-v2\n" if second else b"cairn\n")
    os.link(hostname, os.path.join(root, "etc/hostname.link"))
    conf = write("etc/conf.d/a.conf", b"key=value\n" * 3, 0o600)
    os.setxattr(conf, "user.note", b"hello")
    os.setxattr(conf, "trusted.t", b"")
    os.setxattr(os.path.join(root, "etc"), "user.dir", b"x")
    subprocess.run(["setfacl", "-m", "u:1000:r", conf], check=False)
    subprocess.run(["setfacl", "-d", "-m", "g:100:rx", os.path.dirname(conf)], check=False)
    os.symlink("hostname", os.path.join(root, "etc/link"))
    write("empty", b"")
    write("usr/share/doc/lorem",
          b"Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 20)
    # a hole then a few bytes: a content list with a hole extent, a GNU sparse map
    sparse = write("var/sparse", b"")
    with open(sparse, "r+b") as f:
        f.seek(8192)
        f.write(b"tail\n")
    os.makedirs(os.path.join(root, "run"))
    os.mkfifo(os.path.join(root, "run/fifo"))
    os.makedirs(os.path.join(root, "dev"))
    os.mknod(os.path.join(root, "dev/null"), 0o666 | 0o020000, os.makedev(1, 3))
    home = os.path.join(root, "home/user")
    os.makedirs(home)
    os.chown(home, 1000, 1000)
    os.chmod(home, 0o700)
    if second:
        write("etc/new", b"added in v2\n")
    write("a" * 60 + "/" + "b" * 60, b"a long path\n")


def cairn(cmd, store, *args):
    subprocess.run([cmd, "--store", store, *args], check=True, stdout=subprocess.DEVNULL)


def save(dirname, data):
    if len(data) > MAX_SEED:
        return
    os.makedirs(dirname, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(dirname, name), "wb") as f:
        f.write(data)


def dump_values(env, store, out):
    packs = {}

    def pack(n):
        if n not in packs:
            with open(os.path.join(store, "packs", "%08x.pack" % n), "rb") as f:
                packs[n] = f.read()
        return packs[n]

    kinds = {"nodes": KIND_NODE, "contents": KIND_CONTENT, "images": KIND_IMAGE,
             "chunks": KIND_CHUNK_INDEX}
    with env.begin() as txn:
        for db, kind in kinds.items():
            for _, v in txn.cursor(env.open_db(db.encode(), txn=txn)):
                save(out, bytes([kind]) + v)
                if db != "chunks":
                    continue
                _, _, _, _, _, _, length, packno, off = struct.unpack("<BBBBIIIIQ", v)
                entry = pack(packno)[off:off + 32 + length]
                save(out, bytes([KIND_PACK_ENTRY, 1]) + entry)
                save(out, bytes([KIND_PACK_ENTRY, 0]) + entry)


def dump_store(env, store, out, with_meta):
    rec = bytearray()
    with env.begin() as txn:
        for i, db in enumerate(DBS):
            if db == "meta" and not with_meta:
                continue
            for k, v in txn.cursor(env.open_db(db.encode(), txn=txn)):
                rec += struct.pack("<BBH", i, len(k), len(v)) + k + v
    for name in sorted(os.listdir(os.path.join(store, "packs"))):
        with open(os.path.join(store, "packs", name), "rb") as f:
            data = f.read()
        for o in range(0, len(data), 4096):
            piece = data[o:o + 4096]
            rec += struct.pack("<BBH", OP_PACK, int(name[:8], 16), len(piece)) + piece
    save(out, bytes(rec))


def tars(src, out, tmp):
    pax = ["--format=pax", "--pax-option=delete=atime,delete=ctime", "--xattrs",
           "--xattrs-include=*", "--acls"]
    made = []
    for name, opts, paths in [
            ("pax.tar", pax, ["./etc", "./home"]),
            ("gnu.tar", ["--format=gnu", "--sparse"], ["./var", "./" + "a" * 60]),
            ("ustar.tar", ["--format=ustar"], ["./dev", "./run", "./empty"])]:
        p = os.path.join(tmp, name)
        subprocess.run(["tar", "-cf", p, *opts, "--sort=name", "--mtime=@1000000000", "-b1",
                        "-C", src, *paths], check=True)
        made.append(p)
    # GNU tar names ACL users and groups by name only, which cairn refuses; bsdtar
    # adds the ids
    for name, paths in [("bsd.tar", ["./etc", "./home"]), ("all.tar", ["."])]:
        p = os.path.join(tmp, name)
        subprocess.run(["bsdtar", "-cf", p, "--format=pax", "-b", "1", "--acls", "--xattrs",
                        "-C", src, *paths], check=True)
    made.append(os.path.join(tmp, "bsd.tar"))
    p = os.path.join(tmp, "all.tar")
    subprocess.run(["gzip", "-9nk", p], check=True)
    made.append(p + ".gz")
    if shutil.which("zstd"):
        subprocess.run(["zstd", "-q", "-19", "-k", p], check=True)
        made.append(p + ".zst")
    for p in made:
        with open(p, "rb") as f:
            save(out, f.read())

def layer(members):
    """A small tar (512-byte records) of (name, bytes or None for a directory)."""
    tarfile.RECORDSIZE = 512
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1000000000
            if data is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                t.addfile(ti)
            else:
                ti.size, ti.mode = len(data), 0o644
                t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def oci_seeds(out):
    oci = "application/vnd.oci.image."
    docker = "application/vnd.docker."

    def manifest(mt, cfg_mt, cfg, layers):
        ls = ",".join('{"mediaType":"%s","digest":"@D%d","size":@S%d}' % (t, k, k)
                      for t, k in layers)
        return ('{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s",'
                '"digest":"@D%d","size":@S%d},"layers":[%s]}' % (mt, cfg_mt, cfg, cfg, ls))

    def config(ks):
        return ('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers",'
                '"diff_ids":[%s]}}' % ",".join('"@U%d"' % k for k in ks))

    def index(entries):
        return ('{"schemaVersion":2,"manifests":[%s]}' % ",".join(
            '{"mediaType":"%s","digest":"@D%d","size":@S%d%s}' % (
                mt, k, k, ',"annotations":{"org.opencontainers.image.ref.name":"%s"}' % ref
                if ref else "") for mt, k, ref in entries))

    base = layer([("etc", None), ("etc/a", b"a\n"), ("etc/b", b"b\n"), ("opt", None),
                  ("opt/x", b"x\n")])
    top = gzip.compress(layer([("etc/.wh.a", b""), ("etc/c", b"c\n"),
                               ("opt/.wh..wh..opq", b""), ("opt/y", b"y\n")]), mtime=0)
    one = [index([(oci + "manifest.v1+json", 1, "v1")]),
           manifest(oci + "manifest.v1+json", oci + "config.v1+json", 2,
                    [(oci + "layer.v1.tar", 3), (oci + "layer.v1.tar+gzip", 4)]),
           config([3, 4]), base, top]
    docs = [one]
    if shutil.which("zstd"):
        z = subprocess.run(["zstd", "-q", "-c"], input=layer([("srv/z", b"z\n")]),
                           stdout=subprocess.PIPE, check=True).stdout
        docs.append([index([(oci + "manifest.v1+json", 1, "v1"),
                            (oci + "manifest.v1+json", 2, None)]),
                     manifest(oci + "manifest.v1+json", oci + "config.v1+json", 3,
                              [(oci + "layer.v1.tar", 5)]),
                     manifest(oci + "manifest.v1+json", oci + "config.v1+json", 4,
                              [(oci + "layer.v1.tar", 5), (oci + "layer.v1.tar+zstd", 6)]),
                     config([5]), config([5, 6]), base, z])
    docs.append([index([(docker + "distribution.manifest.v2+json", 1, "d")]),
                 manifest(docker + "distribution.manifest.v2+json",
                          docker + "container.image.v1+json", 2,
                          [(docker + "image.rootfs.diff.tar.gzip", 3)]),
                 config([3]), top])
    for parts in docs:
        save(out, b"\n@@\n".join(p.encode() if isinstance(p, str) else p for p in parts))


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: mkseeds.py CAIRN DIR")
    cmd, out = os.path.abspath(sys.argv[1]), sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="cairn-seeds-")
    try:
        t1, t2, store = (os.path.join(tmp, n) for n in ("t1", "t2", "store"))
        tree(t1, False)
        tree(t2, True)
        cairn(cmd, store, "import", t1, "--tag", "v1", "-m", "first")
        env = lmdb.open(store, max_dbs=16, readonly=True, lock=False)
        dump_store(env, store, os.path.join(out, "store"), False)
        dump_store(env, store, os.path.join(out, "store"), True)
        env.close()
        cairn(cmd, store, "import", t2, "--tag", "v2")
        cairn(cmd, store, "upgrade", "plat", "v1")
        cairn(cmd, store, "upgrade", "plat", "v2")
        cairn(cmd, store, "rollback", "plat")
        env = lmdb.open(store, max_dbs=16, readonly=True, lock=False)
        dump_store(env, store, os.path.join(out, "store"), False)
        dump_values(env, store, os.path.join(out, "values"))
        env.close()
        tars(t1, os.path.join(out, "tar"), tmp)
        oci_seeds(os.path.join(out, "oci"))
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
