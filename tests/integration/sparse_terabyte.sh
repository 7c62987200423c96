#!/bin/bash
# sparse_terabyte.sh - holes cost no reads and no hashing: files of 1 TiB
# apparent size (a few bytes of data) go through import, a writable mount,
# copy-up, commit and fsck in seconds (the content id hashes a hole as its
# length, store/format.h). A container's unprivileged user (uid 1000) makes
# them through the mount: 'truncate -s 1; truncate -s 1T' on a new file and
# on an image file (a metacopy that keeps the image's byte), and a write into
# the image's sparse terabyte (a data copy-up that must skip its holes).
# Each step must finish within $SPARSE_BOUND seconds (default 20; the format-1
# id hashed every zero, and commit read them all: minutes to hours).
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
# shellcheck source=../lib/upper.sh
source "$TESTLIB/upper.sh"
upper_setup
cairn_only "a commit of sparse terabytes"
require_cmd setpriv truncate

BOUND=${SPARSE_BOUND:-20}
TIB=$((1 << 40))
SRC=$WORK/src
MNT=$WORK/mnt
UP=$WORK/upper
as_user() { timeout -k 5 120 setpriv --reuid 1000 --regid 1000 --clear-groups -- "$@"; }

# timed SECONDS_VAR CMD...: runs CMD under a timeout, sets the variable to
# the seconds it took; a failure fails the test
timed() {
	local var=$1 t0 rc
	shift
	t0=$(date +%s%N)
	set +e
	timeout -k 5 300 "$@" >"$WORK/timed.out" 2>"$WORK/timed.err"
	rc=$?
	set -e
	printf -v "$var" '%s' "$((($(date +%s%N) - t0) / 1000000))"
	if [ "$rc" -ne 0 ]; then
		show_file "$WORK/timed.err" >&2
		fail "'$*' exited $rc"
	fi
}

within() {
	local what=$1 ms=$2
	if [ "$ms" -gt $((BOUND * 1000)) ]; then
		soft_fail "$what took $ms ms (bound ${BOUND}s)"
	else
		info "ok: $what in $ms ms"
	fi
}

say "an image with a sparse terabyte and a one-byte file, both uid 1000's"
mkdir -p "$SRC/home/u"
printf 'head' >"$SRC/home/u/huge"
truncate -s "$TIB" "$SRC/home/u/huge"
printf 'tail' >>"$SRC/home/u/huge"
printf 'x' >"$SRC/home/u/one"
chown -R 1000:1000 "$SRC/home/u"
timed ms "$CAIRN" --store "$STORE" import "$SRC" --tag base
within "import of a directory holding a 1 TiB sparse file" "$ms"

upper_mount base "$MNT" "$UP"
say "uid 1000 makes terabytes through the mount"
t0=$(date +%s%N)
as_user truncate -s 1 "$MNT/home/u/new"
as_user truncate -s 1T "$MNT/home/u/new"
as_user truncate -s 1T "$MNT/home/u/one"
# a data copy-up of the image's terabyte: only its data is copied
as_user dd of="$MNT/home/u/huge" bs=1 seek=2 count=1 conv=notrunc status=none <<<"A"
within "truncates and a copy-up through the mount" "$((($(date +%s%N) - t0) / 1000000))"
for f in new:$TIB one:$TIB huge:$((TIB + 4)); do
	sz=$(stat -c %s "$MNT/home/u/${f%%:*}")
	[ "$sz" = "${f#*:}" ] || soft_fail "${f%%:*}: size $sz through the mount, want ${f#*:}"
done
[ "$(head -c 4 "$MNT/home/u/huge")" = heAd ] || soft_fail "huge: the write did not land"
[ "$(tail -c 4 "$MNT/home/u/huge")" = tail ] || soft_fail "huge: its last bytes changed"
[ "$(head -c 1 "$MNT/home/u/one")" = x ] || soft_fail "one: lost the image's byte"
umount_patient "$STORE" "$MNT"

say "commit"
timed ms "$CAIRN" --store "$STORE" commit "$UP" --tag next
within "commit of three 1 TiB files" "$ms"

say "what was committed"
check_file() {
	local path=$1 size=$2 head=$3 got
	run_capture stat cairn_in "$STORE" stat --json "next:$path"
	got=$(json_get "$WORK/stat.out" 'j["size"]')
	[ "$got" = "$size" ] || soft_fail "$path: size $got, want $size"
	got=$(timeout 60 "$CAIRN" --store "$STORE" cat "next:$path" | head -c "${#head}" || true)
	[ "$got" = "$head" ] || soft_fail "$path: starts '$got', want '$head'"
}
check_file home/u/new "$TIB" ''
check_file home/u/one "$TIB" x
check_file home/u/huge $((TIB + 4)) heAd

say "the same bytes made another way name the same content"
# 'one' is 'x' then zeros to 1 TiB however it came to be; a file made so on
# the host and imported must have its content id
mkdir -p "$WORK/src2"
printf 'x' >"$WORK/src2/one"
truncate -s "$TIB" "$WORK/src2/one"
dd if=/dev/zero of="$WORK/src2/one" bs=4096 count=16 seek=1 conv=notrunc status=none # written zeros
timed ms "$CAIRN" --store "$STORE" import "$WORK/src2" --tag other
content() {
	cairn_in "$STORE" stat --json "$1" >"$WORK/c.json"
	json_get "$WORK/c.json" 'j["content"]'
}
[ "$(content next:home/u/one)" = "$(content other:one)" ] ||
	soft_fail "the same terabyte has two content ids"

say "fsck checks every content id, holes included, quickly"
timed ms "$CAIRN" --store "$STORE" fsck
within "fsck" "$ms"

say "stores of formats 1 and 2 (whose content ids differ) are refused with one line"
mkdir -p "$WORK/tiny" && echo hi >"$WORK/tiny/f"
for fmt in 1 2; do
	OLD=$WORK/old$fmt
	import_ok "$OLD" "$WORK/tiny"
	/usr/bin/python3 - "$OLD" "$fmt" <<'PY'
import lmdb, struct, sys
env = lmdb.open(sys.argv[1], max_dbs=16, subdir=True)
db = env.open_db(b"meta", create=False)
with env.begin(write=True, db=db) as t:
    v = bytearray(t.get(b"store"))
    v[4:8] = struct.pack("<I", int(sys.argv[2]))
    t.put(b"store", bytes(v))
PY
	for cmd in images fsck "import $WORK/tiny"; do
		# shellcheck disable=SC2086 # the command's words
		expect_error "$cmd on a format-$fmt store" cairn_in "$OLD" $cmd
		grep -q "older cairn (store format $fmt;" "$WORK/experr.err" ||
			soft_fail "$cmd: the message does not say why"
	done
done
finish
