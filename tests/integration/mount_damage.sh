#!/bin/bash
# mount_damage.sh - a damaged chunk reads as EIO through the mount, never
# as wrong bytes: one flipped byte in the pack payload of a raw chunk, of a
# zstd chunk, and of one chunk in the middle of a larger file. Other files
# (and the undamaged parts of the larger file) read fine, and the mount
# keeps working afterwards.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
mount_setup

SRC=$WORK/src
STORE=$WORK/store
MNT=$WORK/mnt
mkdir -p "$MNT"

say "source files and import"
python3 - "$SRC" <<'EOF'
import os, random, sys
root = sys.argv[1]
r = random.Random(11)
for d in ("bad", "ok"):
    os.makedirs(os.path.join(root, d))
def text(n):
    out = bytearray()
    i = 0
    while len(out) < n:
        out += b"%06d %s\n" % (i, b" ".join(r.choice((b"red", b"green", b"blue", b"cyan"))
                                           for _ in range(6)))
        i += 1
    return bytes(out[:n])
files = {
    "bad/raw-12K.bin": r.randbytes(12 * 1024),     # one chunk, stored raw
    "bad/text-12K.txt": text(12 * 1024),          # one chunk, zstd
    "bad/multi-1M.bin": r.randbytes(1 << 20),     # several chunks, one damaged
    "ok/raw-12K.bin": r.randbytes(12 * 1024),
    "ok/text-200K.txt": text(200 * 1024),
    "ok/random-3M.bin": r.randbytes(3 << 20),
    "ok/tiny": b"tiny\n",
}
for p, b in files.items():
    with open(os.path.join(root, p), "wb") as f:
        f.write(b)
EOF
import_ok "$STORE" "$SRC" --tag v1

say "damage three chunks in their pack files"
# damage.py STORE PACK OFFSET LEN CHUNKID: flips the middle byte of the
# entry's payload after checking the entry header names the chunk
cat >"$WORK/damage.py" <<'EOF'
import os, struct, sys
store, pack, off, ln, cid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
path = os.path.join(store, "packs", "%08x.pack" % pack)
with open(path, "r+b") as f:
    f.seek(off)
    hdr = f.read(32)
    ver, codec, flags, _, dict_id, raw_len, plen, eid = struct.unpack("<BBBBIII16s", hdr)
    if eid.hex() != cid or plen != ln:
        sys.exit("pack entry at %s:%d is not chunk %s (id %s, len %d)" % (path, off, cid, eid.hex(), plen))
    pos = off + 32 + ln // 2
    f.seek(pos)
    b = f.read(1)
    f.seek(pos)
    f.write(bytes([b[0] ^ 0x5A]))
    f.flush()
    os.fsync(f.fileno())
print("flipped byte %d of %s (codec %d, %d -> %d bytes)" % (pos, os.path.basename(path), codec, raw_len, plen))
EOF
# damage_chunk FILE WHICH CODEC: damages extent WHICH (first|middle) of
# FILE, which must be stored with CODEC; sets DSTART DEND
damage_chunk() {
	local f=$1 which=$2 codec=$3 line
	chunk_map "$STORE" "v1:$f" >"$WORK/map.txt" || fail "cannot map the chunks of $f"
	local n
	n=$(grep -c ' data ' "$WORK/map.txt" || true)
	[ "$n" -ge 1 ] || { show_file "$WORK/map.txt"; fail "$f has no data chunk"; }
	if [ "$which" = middle ]; then
		[ "$n" -ge 3 ] || { show_file "$WORK/map.txt"; fail "$f has $n chunks, want 3 or more"; }
		line=$(grep ' data ' "$WORK/map.txt" | sed -n "$(((n + 1) / 2))p")
	else
		line=$(grep ' data ' "$WORK/map.txt" | head -n 1)
	fi
	# START END data ID CODEC RAW_LEN LEN PACK OFFSET
	read -r DSTART DEND _ cid c _ len pack off <<<"$line"
	[ "$c" = "$codec" ] || info "(note: $f chunk has codec $c, expected $codec)"
	local out
	out=$(python3 "$WORK/damage.py" "$STORE" "$pack" "$off" "$len" "$cid") || fail "could not damage $f"
	info "$f: $n chunk(s); damaging [$DSTART, $DEND): $out"
}
damage_chunk bad/raw-12K.bin first 0
damage_chunk bad/text-12K.txt first 1
damage_chunk bad/multi-1M.bin middle 0
MSTART=$DSTART MEND=$DEND
cp "$WORK/map.txt" "$WORK/multi.map"

run_capture fsck cairn_in "$STORE" fsck
info "(fsck now exits $RC: $(head -n 1 "$WORK/fsck.out" "$WORK/fsck.err" 2>/dev/null | grep -v '^==' | head -n 1 | cut -c1-150))"

say "mount; damaged reads are EIO, everything else reads right"
mount_ok "$STORE" v1 "$MNT"

# check.py SRC MNT MSTART MEND: the reads; run twice (the second time
# nothing must have been cached as good)
cat >"$WORK/check.py" <<'EOF'
import errno, os, sys
src, mnt, ms, me = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
bad = []
def read_all(p):
    with open(p, "rb") as f:
        return f.read()
for rel in ("bad/raw-12K.bin", "bad/text-12K.txt", "bad/multi-1M.bin"):
    try:
        data = read_all(os.path.join(mnt, rel))
        same = data == read_all(os.path.join(src, rel))
        bad.append("%s: read returned %d bytes (%s), want EIO"
                   % (rel, len(data), "correct?!" if same else "WRONG BYTES"))
    except OSError as e:
        if e.errno != errno.EIO:
            bad.append("%s: %s, want EIO" % (rel, e))
        else:
            print("   ok: %s: EIO" % rel)
    try:
        os.stat(os.path.join(mnt, rel))
    except OSError as e:
        bad.append("%s: stat fails: %s" % (rel, e))
# the damaged extent of the larger file, and its undamaged first and last 64 KiB
m = os.open(os.path.join(mnt, "bad/multi-1M.bin"), os.O_RDONLY)
s = os.open(os.path.join(src, "bad/multi-1M.bin"), os.O_RDONLY)
for off, n in ((ms, 1), (ms, me - ms), (max(0, ms - 10), 20), ((ms + me) // 2, 100)):
    try:
        got = os.pread(m, n, off)
        bad.append("multi-1M.bin: pread(%d at %d) inside the damaged chunk returned %d bytes (%s)"
                   % (n, off, len(got), "WRONG" if got != os.pread(s, n, off) else "correct?!"))
    except OSError as e:
        if e.errno != errno.EIO:
            bad.append("multi-1M.bin: pread(%d at %d): %s, want EIO" % (n, off, e))
size = os.fstat(s).st_size
for off, n in ((0, 4096), (0, 65536), (size - 65536, 65536), (size - 1, 1)):
    if ms - 4096 < off + n and off < me + 4096:
        continue
    try:
        got = os.pread(m, n, off)
        if got != os.pread(s, n, off):
            bad.append("multi-1M.bin: undamaged %d bytes at %d: WRONG BYTES" % (n, off))
    except OSError as e:
        bad.append("multi-1M.bin: undamaged %d bytes at %d: %s" % (n, off, e))
os.close(m)
os.close(s)
n = 0
for d, dirs, files in os.walk(os.path.join(src, "ok")):
    for f in files:
        sp = os.path.join(d, f)
        mp = os.path.join(mnt, os.path.relpath(sp, src))
        try:
            if read_all(mp) != read_all(sp):
                bad.append("%s: wrong bytes" % mp)
            n += 1
        except OSError as e:
            bad.append("%s: %s" % (mp, e))
for b in bad:
    print("   " + b)
if bad:
    sys.exit(1)
print("   ok: %d undamaged files and the undamaged ends of multi-1M.bin read right" % n)
EOF
timeout 120 python3 "$WORK/check.py" "$SRC" "$MNT" "$MSTART" "$MEND" || soft_fail "reads of a damaged store"

say "mmap of the damaged file: SIGBUS or an error, never bytes"
# in a child process: its SIGBUS must not kill the check
run_capture mmap timeout 60 python3 -c 'import subprocess, sys
code = """
import mmap, sys
with open(sys.argv[1], "rb") as f:
    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    b = m[:]
print("read %d bytes through mmap" % len(b))
"""
p = subprocess.run([sys.executable, "-c", code, sys.argv[1]], capture_output=True, text=True)
print(p.returncode, (p.stdout + p.stderr).strip().splitlines()[-1:] or "")' "$MNT/bad/raw-12K.bin"
read -r rc rest <"$WORK/mmap.out" || rc=none
if [ "$rc" = -7 ]; then
	info "ok: mmap read of the damaged chunk: SIGBUS"
elif [ "$rc" != 0 ] && [ "$rc" != none ] && [[ "$rest" == *Error* ]]; then
	info "ok: mmap read of the damaged chunk failed: $rc $rest"
else
	soft_fail "mmap read of a damaged chunk: $(cat "$WORK/mmap.out" "$WORK/mmap.err" | head -c 300)"
fi

say "the mount keeps working"
[ -z "$MPID" ] || pid_alive "$MPID" || fail "the daemon $MPID died"
if timeout 120 python3 "$WORK/check.py" "$SRC" "$MNT" "$MSTART" "$MEND" >"$WORK/check2.out"; then
	info "ok: the same results a second time"
else
	soft_fail "the second round of reads is wrong too"
	grep -v '^   ok' "$WORK/check2.out" | head -n 10
fi
if timeout 60 ls -laR "$MNT" >"$WORK/ls.out" 2>&1; then
	info "ok: ls -laR ($(wc -l <"$WORK/ls.out") lines)"
else
	soft_fail "ls -laR of the mount failed after the EIOs"
	show_file "$WORK/ls.out"
fi
timeout 60 cat "$MNT/ok/tiny" | grep -qx tiny || soft_fail "ok/tiny does not read after the EIOs"

say "unmount"
umount_ok "$STORE" "$MNT" && info "ok: unmounted, daemon gone"

finish
