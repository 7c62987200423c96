#!/usr/bin/python3
"""ocimut.py SRC DST CASE [REF] - copy the OCI layout SRC to DST and break it.

Each CASE is one way a layout can be hostile or broken; `cairn import
oci:DST[:REF]` must refuse every one with one clear error and leave the
store as it was. Where the break is inside a document, the digests above it
(manifest, index.json) are recomputed, so the case tests what it names and
not a digest mismatch further up. REF (default: the first manifest) picks
the manifest to break. `ocimut.py --list` prints the cases.
"""

import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile


def blob_path(root, digest):
    return os.path.join(root, "blobs", "sha256", digest.split(":", 1)[1])


def put_blob(root, data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(blob_path(root, d), "wb") as f:
        f.write(data)
    return d


def load(path):
    with open(path, "rb") as f:
        return json.load(f)


class Layout:
    def __init__(self, root, ref):
        self.root = root
        self.index = load(os.path.join(root, "index.json"))
        ms = self.index["manifests"]
        self.mi = 0
        if ref:
            self.mi = [m.get("annotations", {}).get("org.opencontainers.image.ref.name")
                       for m in ms].index(ref)
        self.mdesc = ms[self.mi]
        self.manifest = load(blob_path(root, self.mdesc["digest"]))
        self.config = load(blob_path(root, self.manifest["config"]["digest"]))

    def save_index(self, raw=None):
        data = raw if raw is not None else json.dumps(self.index).encode()
        with open(os.path.join(self.root, "index.json"), "wb") as f:
            f.write(data)

    def save_manifest(self, raw=None):
        data = raw if raw is not None else json.dumps(self.manifest).encode()
        self.mdesc["digest"] = put_blob(self.root, data)
        self.mdesc["size"] = len(data)
        self.save_index()

    def save_config(self, raw=None):
        data = raw if raw is not None else json.dumps(self.config).encode()
        self.manifest["config"]["digest"] = put_blob(self.root, data)
        self.manifest["config"]["size"] = len(data)
        self.save_manifest()

    def set_layer(self, i, data, media_type=None, diff=None):
        """Layer i becomes data (its digest, size and diff_id follow)."""
        l = self.manifest["layers"][i]
        l["digest"] = put_blob(self.root, data)
        l["size"] = len(data)
        if media_type:
            l["mediaType"] = media_type
        self.config["rootfs"]["diff_ids"][i] = "sha256:" + hashlib.sha256(
            diff if diff is not None else data).hexdigest()
        self.save_config()

    def layer_bytes(self, i):
        with open(blob_path(self.root, self.manifest["layers"][i]["digest"]), "rb") as f:
            return f.read()


def tar_of(members):
    """A pax tar of (name, bytes or None for a directory)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.mtime = 0
            if data is None:
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                t.addfile(ti)
            else:
                ti.size = len(data)
                ti.mode = 0o644
                t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def top(L):
    return len(L.manifest["layers"]) - 1


def c_layer_digest(L):
    """a layer blob's bytes changed: it no longer matches the manifest's digest"""
    p = blob_path(L.root, L.manifest["layers"][top(L)]["digest"])
    data = bytearray(open(p, "rb").read())
    data[len(data) // 2] ^= 0x01
    open(p, "wb").write(bytes(data))


def c_layer_other_blob(L):
    """the manifest names the config blob as a layer (wrong size)"""
    L.manifest["layers"][top(L)]["digest"] = L.manifest["config"]["digest"]
    L.save_manifest()


def c_missing_layer(L):
    """a layer blob is missing"""
    os.unlink(blob_path(L.root, L.manifest["layers"][top(L)]["digest"]))


def c_missing_config(L):
    """the config blob is missing"""
    os.unlink(blob_path(L.root, L.manifest["config"]["digest"]))


def c_missing_manifest(L):
    """the manifest blob is missing"""
    os.unlink(blob_path(L.root, L.mdesc["digest"]))


def c_bad_index_json(L):
    """index.json is not JSON"""
    L.save_index(b'{"schemaVersion": 2, "manifests": [ {"mediaType": ')


def c_bad_manifest_json(L):
    """the manifest is not JSON (its digest is right)"""
    L.save_manifest(b'{"schemaVersion": 2, "config": }')


def c_bad_config_json(L):
    """the config is not JSON (its digest is right)"""
    L.save_config(b"\xff\xfe not json")


def c_trailing_json(L):
    """the manifest has a second document after the first"""
    L.save_manifest(json.dumps(L.manifest).encode() + b" {}")


def c_unknown_layer_type(L):
    """a layer with an unknown media type"""
    L.manifest["layers"][top(L)]["mediaType"] = "application/vnd.example.layer.v1.squashfs"
    L.save_manifest()


def c_unknown_manifest_type(L):
    """index.json names a manifest of an unknown media type"""
    L.mdesc["mediaType"] = "application/vnd.example.manifest.v9+json"
    L.save_index()


def c_nested_index(L):
    """index.json names an image index (several platforms)"""
    L.mdesc["mediaType"] = "application/vnd.oci.image.index.v1+json"
    L.save_index()


def c_mislabelled_zstd(L):
    """a gzip layer whose media type says zstd"""
    L.manifest["layers"][top(L)]["mediaType"] = "application/vnd.oci.image.layer.v1.tar+zstd"
    L.save_manifest()


def c_diff_id(L):
    """the config's diff_id does not match the layer's tar"""
    L.config["rootfs"]["diff_ids"][top(L)] = "sha256:" + "ab" * 32
    L.save_config()


def c_diff_count(L):
    """the config lists fewer diff_ids than the manifest has layers"""
    L.config["rootfs"]["diff_ids"].pop()
    L.save_config()


def c_digest_path(L):
    """a digest that is a path (sha256:../../../etc/passwd)"""
    L.manifest["layers"][top(L)]["digest"] = "sha256:../../../../../../etc/passwd"
    L.save_manifest()


def c_digest_algo(L):
    """a digest of an algorithm cairn does not check (md5)"""
    L.manifest["layers"][top(L)]["digest"] = "md5:" + "0" * 32
    L.save_manifest()


def c_negative_size(L):
    """a descriptor with a negative size"""
    L.manifest["layers"][top(L)]["size"] = -1
    L.save_manifest()


def c_huge_manifest(L):
    """index.json says the manifest is 1 GiB"""
    L.mdesc["size"] = 1 << 30
    L.save_index()


def c_blob_fifo(L):
    """a layer blob that is a fifo"""
    p = blob_path(L.root, L.manifest["layers"][top(L)]["digest"])
    os.unlink(p)
    os.mkfifo(p)


def c_no_layout(L):
    """no oci-layout file"""
    os.unlink(os.path.join(L.root, "oci-layout"))


def c_layout_version(L):
    """oci-layout of another version"""
    with open(os.path.join(L.root, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion": "9.9.9"}')


def c_not_tar(L):
    """a layer (digests right) that is not a tar"""
    L.set_layer(top(L), gzip.compress(b"\x01" * 3000, mtime=0), diff=b"\x01" * 3000)


def c_layer_dotdot(L):
    """a layer (digests right) with a '..' path"""
    t = tar_of([("etc/../../evil", b"x")])
    L.set_layer(top(L), t, "application/vnd.oci.image.layer.v1.tar")


def c_whiteout_dotdot(L):
    """a layer (digests right) with a whiteout of '..' (etc/.wh...)"""
    t = tar_of([("etc/.wh..", b"")])
    L.set_layer(top(L), t, "application/vnd.oci.image.layer.v1.tar")


def c_whiteout_dir(L):
    """a layer (digests right) whose whiteout is a directory"""
    t = tar_of([("etc/.wh.passwd", None)])
    L.set_layer(top(L), t, "application/vnd.oci.image.layer.v1.tar")


def c_no_layers(L):
    """a manifest with no layers"""
    L.manifest["layers"] = []
    L.config["rootfs"]["diff_ids"] = []
    L.save_config()


CASES = {k[2:].replace("_", "-"): v for k, v in sorted(globals().items())
         if k.startswith("c_")}


def main():
    if sys.argv[1:] == ["--list"]:
        for k, v in CASES.items():
            print("%-20s %s" % (k, v.__doc__))
        return
    if len(sys.argv) not in (4, 5):
        sys.exit("usage: ocimut.py SRC DST CASE [REF] | --list")
    src, dst, case = sys.argv[1:4]
    ref = sys.argv[4] if len(sys.argv) == 5 else None
    shutil.copytree(src, dst, symlinks=True)
    CASES[case](Layout(dst, ref))


if __name__ == "__main__":
    main()
