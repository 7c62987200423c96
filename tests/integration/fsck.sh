#!/bin/bash
# fsck.sh - fsck passes a clean store and finds damage: a flipped byte in a
# compressed chunk, in a raw chunk, and a missing chunk. Reads of damaged
# content fail instead of returning wrong bytes.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
require_root
setup

# Two files of about 600 KiB, several chunks each: random bytes (stored
# raw: compression does not pay) and text (stored zstd-compressed).
SRC=$WORK/src
mkdir -p "$SRC/d"
python3 - "$SRC" <<'EOF'
import os, random, sys
r = random.Random(7)
with open(os.path.join(sys.argv[1], "d", "random.bin"), "wb") as f:
    f.write(r.randbytes(600 * 1024))
with open(os.path.join(sys.argv[1], "text.txt"), "wb") as f:
    for i in range(12000):
        f.write(b"%06d %s\n" % (i, b" ".join(r.choice((b"alpha", b"beta", b"gamma", b"delta"))
                                          for _ in range(8))))
EOF

# chunks.py STORE list|flip KEYHEX|delete KEYHEX
CHUNKS=$WORK/chunks.py
cat >"$CHUNKS" <<'EOF'
import lmdb, sys
env = lmdb.open(sys.argv[1], max_dbs=16, map_size=1 << 40)
db = env.open_db(b"chunks", create=False)
cmd = sys.argv[2]
if cmd == "list":  # key codec raw_len value_len
    with env.begin(db=db) as t:
        for k, v in t.cursor():
            print(k.hex(), v[1], int.from_bytes(v[8:12], "little"), len(v))
elif cmd == "flip":
    key = bytes.fromhex(sys.argv[3])
    with env.begin(db=db, write=True) as t:
        v = bytearray(t.get(key))
        i = 12 + (len(v) - 12) // 2  # the middle of the payload
        v[i] ^= 0x5A
        t.put(key, bytes(v))
    print("flipped byte %d of %d" % (i, len(v)))
elif cmd == "delete":
    with env.begin(db=db, write=True) as t:
        assert t.delete(bytes.fromhex(sys.argv[3]))
env.close()
EOF

# damage STORE KIND: picks a chunk and damages it; sets CHUNK.
damage() {
	local store=$1 kind=$2 codec
	python3 "$CHUNKS" "$store" list >"$WORK/chunks.list" || fail "cannot read the chunks db of $store"
	case $kind in
	zstd | delete) codec=1 ;;
	raw) codec=0 ;;
	esac
	CHUNK=$(awk -v c="$codec" '$2 == c && $3 > 10000 { print $1; exit }' "$WORK/chunks.list")
	if [ -z "$CHUNK" ]; then
		show_file "$WORK/chunks.list"
		fail "no chunk with codec $codec and more than 10000 bytes in $store"
	fi
	case $kind in
	delete) python3 "$CHUNKS" "$store" delete "$CHUNK" ;;
	*) info "$(python3 "$CHUNKS" "$store" flip "$CHUNK") of chunk $CHUNK" ;;
	esac
}

# fsck_finds STORE CHUNK WHAT: fsck exits 1 and names CHUNK.
fsck_finds() {
	local store=$1 chunk=$2 what=$3
	run_capture fsck cairn_in "$store" fsck
	cat "$WORK/fsck.out" "$WORK/fsck.err" >"$WORK/fsck.all"
	if [ "$RC" -ne 1 ]; then
		soft_fail "fsck after $what exited $RC, want 1"
	elif ! grep -qi "$chunk" "$WORK/fsck.all"; then
		soft_fail "fsck after $what does not name chunk $chunk"
	else
		info "ok: fsck exits 1 and names the chunk"
	fi
	show_file "$WORK/fsck.all" 10
}

# read_fails STORE PATH WHAT: cat of a damaged file must not succeed
read_fails() {
	local store=$1 path=$2 what=$3
	set +e
	cairn_in "$store" cat "v1:$path" 2>"$WORK/cat.err" | python3 "$CMPSTREAM" "$SRC/$path" >/dev/null
	local st=("${PIPESTATUS[@]}")
	set -e
	if [ "${st[0]}" -eq 0 ]; then
		soft_fail "cat of $path after $what exited 0 (compare: ${st[1]})"
	elif [ "${st[0]}" -ge 126 ]; then
		soft_fail "cat of $path after $what died (exit ${st[0]})"
	else
		info "ok: cat $path fails (${st[0]}): $(head -n 1 "$WORK/cat.err" | cut -c1-200)"
	fi
	run_capture export cairn_in "$store" export v1 -o "$WORK/x.tar"
	if [ "$RC" -eq 0 ]; then
		soft_fail "export after $what exited 0"
	else
		info "ok: export fails ($RC)"
	fi
	rm -f "$WORK/x.tar"
}

say "import into three stores, fsck clean"
for s in a b c; do
	import_ok "$WORK/$s" "$SRC" --tag v1
	run_capture fsck cairn_in "$WORK/$s" fsck
	if [ "$RC" -ne 0 ]; then
		show_file "$WORK/fsck.out"
		show_file "$WORK/fsck.err"
		fail "fsck of a fresh store exited $RC"
	fi
done
info "ok: $ID"
python3 "$CHUNKS" "$WORK/a" list >"$WORK/chunks.list"
info "$(wc -l <"$WORK/chunks.list") chunks: $(awk '{ n[$2]++ } END { for (c in n) printf "codec %s: %d  ", c, n[c] }' "$WORK/chunks.list")"

say "a flipped byte in a zstd chunk"
damage "$WORK/a" zstd
fsck_finds "$WORK/a" "$CHUNK" "a flipped byte in a zstd chunk"
read_fails "$WORK/a" text.txt "a flipped byte in a zstd chunk"
# the undamaged file still reads
cairn_in "$WORK/a" cat v1:d/random.bin | python3 "$CMPSTREAM" "$SRC/d/random.bin" ||
	soft_fail "the undamaged file no longer reads"

say "a flipped byte in a raw chunk"
damage "$WORK/b" raw
fsck_finds "$WORK/b" "$CHUNK" "a flipped byte in a raw chunk"
read_fails "$WORK/b" d/random.bin "a flipped byte in a raw chunk"

say "a missing chunk"
damage "$WORK/c" delete
fsck_finds "$WORK/c" "$CHUNK" "a deleted chunk"
read_fails "$WORK/c" text.txt "a deleted chunk"

finish
