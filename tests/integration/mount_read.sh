#!/bin/bash
# mount_read.sh - reads through the mount return the source's bytes:
# 8 threads reading random ranges (1 B .. 1 MiB, across chunk boundaries,
# hole edges, 4 GiB and EOF; cold, then through a small chunk cache that
# keeps evicting) for 20 s in all, sequential reads of whole files, mmap of
# whole files, and reads at high offsets of a 5 GiB sparse file with data
# past 4 GiB.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
mount_setup

SRC=$WORK/src
STORE=$WORK/store
MNT=$WORK/mnt
PREADER=$TESTLIB/preader.py
READ_SECONDS=${CAIRN_READ_SECONDS:-20}
mkdir -p "$MNT"

say "generate the source files"
python3 - "$SRC" <<'EOF'
import os, random, sys
root = sys.argv[1]
os.makedirs(os.path.join(root, "small"))
r = random.Random(42)

def write(path, chunks):
    with open(os.path.join(root, path), "wb") as f:
        for c in chunks:
            f.write(c)

def rand(n):
    while n > 0:
        k = min(n, 1 << 20)
        yield r.randbytes(k)
        n -= k

# 64 MiB of random bytes: stored raw, about 1000 chunks
write("random-64M", rand(64 << 20))
# 16 MiB of text: stored zstd-compressed
with open(os.path.join(root, "text-16M"), "wb") as f:
    i = 0
    while f.tell() < 16 << 20:
        f.write(b"%08d %s\n" % (i, b" ".join(r.choice((b"alpha", b"beta", b"gamma", b"delta",
                                                        b"epsilon")) for _ in range(r.randint(1, 12)))))
        i += 1
# 8 MiB: random runs and zero runs of every length, so holes (aligned
# zero blocks) and data alternate at odd offsets
with open(os.path.join(root, "holey-8M"), "wb") as f:
    while f.tell() < 8 << 20:
        n = r.choice((1, 100, 4095, 4096, 4097, 8192, 20000, 70000, 300000))
        f.write(bytes(n) if r.random() < 0.5 else r.randbytes(n))
# 5 GiB + 4099 bytes, sparse, data at unaligned offsets, across 1 GiB and
# 4 GiB, and up to EOF
G = 1 << 30
size = 5 * G + 4099
with open(os.path.join(root, "sparse-5G"), "wb") as f:
    f.truncate(size)
    for off, n in ((0, 3 << 20), (G - 100000, 400000), (4 * G - 65536 - 17, (2 << 20) + 65553),
                   (5 * G - (1 << 20), (1 << 20) + 4099)):
        f.seek(off)
        for c in rand(n):
            f.write(c)
    assert f.tell() == size
# small files around block and chunk sizes
for n in (0, 1, 2, 4095, 4096, 4097, 16383, 16384, 16385, 65535, 65536, 65537,
          262143, 262144, 262145, (1 << 20) + 1):
    write("small/f%d" % n, rand(n))
EOF
FILES=(random-64M text-16M holey-8M sparse-5G)
for f in "$SRC"/small/*; do FILES+=("small/${f##*/}"); done
info "${#FILES[@]} files, $(du -sh --apparent-size "$SRC" | cut -f1) apparent, $(du -sh "$SRC" | cut -f1) allocated"

say "import; chunk boundaries and hole edges from the store"
import_ok "$STORE" "$SRC" --tag v1
: >"$WORK/bounds.txt"
for f in "${FILES[@]}"; do
	chunk_map "$STORE" "v1:$f" >"$WORK/map.txt" || fail "cannot map the chunks of $f"
	awk -v f="$f" '{ print f, $2 }' "$WORK/map.txt" >>"$WORK/bounds.txt"
	info "$f: $(wc -l <"$WORK/map.txt") extents ($(grep -c ' hole' "$WORK/map.txt" || true) holes)"
done
python3 - "$WORK/bounds.txt" >"$WORK/bounds.json" <<'EOF'
import json, sys
b = {}
for line in open(sys.argv[1]):
    f, off = line.split()
    b.setdefault(f, []).append(int(off))
json.dump(b, sys.stdout)
EOF

# preader SECONDS: 8 threads of random-range reads
preader() {
	if ! timeout $(($1 + 300)) python3 "$PREADER" --threads 8 --seconds "$1" \
		--boundaries "$WORK/bounds.json" "$MNT" "$SRC" "${FILES[@]}"; then
		soft_fail "random-range reads through the mount"
	fi
}
T1=$((READ_SECONDS * 3 / 5))
T2=$((READ_SECONDS - T1))

say "mount; 8 threads read random ranges for $T1 s, from a cold start"
mount_ok "$STORE" v1 "$MNT"
preader "$T1"

say "sequential reads of whole files"
for f in "${FILES[@]}"; do
	t0=$(date +%s%N)
	if timeout 600 cmp "$SRC/$f" "$MNT/$f" >"$WORK/cmp.out" 2>&1; then
		ms=$((($(date +%s%N) - t0) / 1000000))
		size=$(stat -c %s "$SRC/$f")
		if [ "$size" -ge $((8 << 20)) ]; then
			info "ok: $f ($((size >> 20)) MiB in $ms ms, $((size / 1048576 * 1000 / (ms + 1))) MiB/s)"
		fi
	else
		soft_fail "cmp $f: $(head -c 300 "$WORK/cmp.out")"
	fi
done
info "ok: the small files"
# warm: the second read comes from the page cache (keep_cache)
t0=$(date +%s%N)
timeout 120 cat "$MNT/random-64M" >/dev/null || soft_fail "second read of random-64M failed"
info "random-64M again (warm): $((($(date +%s%N) - t0) / 1000000)) ms"

say "mmap of whole files"
timeout 600 python3 - "$SRC" "$MNT" "${FILES[@]}" <<'EOF' || soft_fail "mmap reads"
import errno, mmap, os, sys
src, mnt, files = sys.argv[1], sys.argv[2], sys.argv[3:]
bad, n = [], 0
STEP = 1 << 20
for rel in files:
    sp, mp = os.path.join(src, rel), os.path.join(mnt, rel)
    size = os.stat(sp).st_size
    if size == 0:
        continue
    with open(sp, "rb") as sf, open(mp, "rb") as mf:
        mm = mmap.mmap(mf.fileno(), 0, prot=mmap.PROT_READ)
        if len(mm) != size:
            bad.append("%s: mmap of %d bytes, want %d" % (rel, len(mm), size))
            continue
        if size > 1 << 30:
            # sparse: the data regions (from the source) and a page in
            # every 64 MiB of the holes
            sfd = sf.fileno()
            spans, pos = [], 0
            while True:
                try:
                    d = os.lseek(sfd, pos, os.SEEK_DATA)
                except OSError as e:
                    if e.errno == errno.ENXIO:
                        break
                    raise
                h = os.lseek(sfd, d, os.SEEK_HOLE)
                spans.append((d, h))
                pos = h
            spans += [(o, min(o + 4096, size)) for o in range(12345, size, 64 << 20)]
            spans.append((size - 1, size))
        else:
            spans = [(0, size)]
        for a, b in spans:
            for off in range(a, b, STEP):
                end = min(b, off + STEP)
                if mm[off:end] != os.pread(sf.fileno(), end - off, off):
                    bad.append("%s: mmap bytes differ in [%d, %d)" % (rel, off, end))
                    break
        mm.close()
        n += 1
for b in bad[:20]:
    print("   " + b)
if bad:
    sys.exit(1)
print("   ok: %d files through mmap" % n)
EOF

say "reads at high offsets of the sparse file"
timeout 120 python3 - "$SRC/sparse-5G" "$MNT/sparse-5G" <<'EOF' || soft_fail "high-offset reads"
import os, sys
s, m = (os.open(p, os.O_RDONLY) for p in sys.argv[1:3])
size = os.fstat(s).st_size
G = 1 << 30
bad = []
cases = [(4 * G - 1, 2), (4 * G - 65536 - 18, 100), (4 * G - 65536 - 17, 1), (4 * G, 1 << 20),
         (4 * G + (2 << 20) - 10, 4096), (3 * G, 4096), (G - 100001, 3), (G + 299999, 10),
         (5 * G - (1 << 20) - 1, 2), (size - 4099, 4099), (size - 1, 1), (size - 1, 1 << 20),
         (size, 1), (size + 1, 100), (1 << 40, 10), (1 << 62, 10), (2 ** 32 + 2 ** 31, 65536)]
for off, n in cases:
    try:
        got = os.pread(m, n, off)
    except OSError as e:
        bad.append("pread(%d bytes at %d): %s" % (n, off, e))
        continue
    want = os.pread(s, n, off)
    if got != want:
        bad.append("pread(%d bytes at %d): %d bytes, want %d%s" % (
            n, off, len(got), len(want), "" if len(got) != len(want) else " (bytes differ)"))
for b in bad:
    print("   " + b)
if bad:
    sys.exit(1)
print("   ok: %d reads around 1 GiB, 4 GiB, EOF and far past it" % len(cases))
EOF

say "the daemon is still up; unmount"
[ -z "$MPID" ] || pid_alive "$MPID" || soft_fail "the daemon $MPID died during the reads"
umount_ok "$STORE" "$MNT" && info "ok: unmounted, daemon gone"

say "again through a 4 MiB chunk cache: 8 threads for $T2 s while it evicts"
mount_ok "$STORE" v1 "$MNT" --cache-size $((4 << 20))
preader "$T2"
run_capture stats tcairn "$STORE" stats "$MNT" --json
if [ "$RC" -eq 0 ]; then
	info "cache: $(python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); print(" ".join("%s=%s" % kv for kv in sorted(j.items())))' "$WORK/stats.out")"
	python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); sys.exit(not (j["evictions"] > 0 and j["bytes"] <= j["max_bytes"]))' "$WORK/stats.out" ||
		soft_fail "a 4 MiB cache after the reads: no evictions, or bytes over max_bytes"
else
	soft_fail "cairn stats exited $RC: $(head -n 1 "$WORK/stats.err")"
fi
[ -z "$MPID" ] || pid_alive "$MPID" || soft_fail "the daemon $MPID died during the reads"
umount_ok "$STORE" "$MNT" && info "ok: unmounted, daemon gone"

finish
