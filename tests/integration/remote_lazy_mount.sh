#!/bin/bash
# remote_lazy_mount.sh - mounts of lazily pulled images through a real
# radosgw: the store's daemon (started from cairn-remote) serves a
# pull --lazy image at once and fetches each chunk on first read: every
# file reads back through the mount with the source's bytes (treedump);
# a container's unprivileged user (uid 1000) reads through a writable
# mount; readers of one chunk in four mounts at once cost radosgw one GET
# (one per daemon: four with CAIRN_TEST_ISOLATED=1, the isolated suite);
# radosgw hung or stopped in the middle of a read makes it fail with EIO
# within the remote's --timeout, logged with why, while what is local keeps
# reading, and reads work again once it is back; a tampered pack gives EIO,
# never wrong bytes; kill -9 of the daemon during lazy reads leaves the
# store fsck-clean and a new mount reads on; follow --lazy switches a
# running mount to a lazily pulled generation, whose files then read.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
# shellcheck source=../lib/remote.sh
source "$TESTLIB/remote.sh"
mount_setup
require_rgw
require_cmd setpriv
rgw_start
chmod 0711 "$WORK" # uid 1000 reaches the mountpoints
A=$WORK/a
CRED=$WORK/cred
# seconds a read may take against a remote that hangs (--timeout 2, plus slack)
BOUND=${CAIRN_LAZY_BOUND:-15}
RGW_LOG=$RGW_DIR/log/client.rgw.log

# gets: how many ranged GETs of packs radosgw has answered so far (its access log)
gets() { grep -c '"GET /lazy/site/packs/' "$RGW_LOG" || true; }
# gets_settled: the count once radosgw's log (written a moment after each answer) is still
gets_settled() {
	local a b
	a=$(gets)
	for _ in $(seq 1 20); do
		sleep 0.5
		b=$(gets)
		[ "$a" = "$b" ] && break
		a=$b
	done
	echo "$a"
}
# lazy_store NAME [ARGS...]: a store that pulled v1 lazily (remote --timeout 2)
lazy_store() {
	local st=$WORK/$1
	shift
	cairn_in "$st" remote add origin s3://lazy/site --credentials "$CRED" --timeout 2 "$@" >/dev/null ||
		fail "remote add in $st"
	cairn_in "$st" pull origin v1 --lazy >/dev/null || fail "pull --lazy into $st"
}
# stat_of STORE MNT KEY: a figure of cairn stats
stat_of() { tcairn "$1" stats "$2" --json | json_get /dev/stdin "j['$3']"; }

say "an image with every kind of file and big random files, pushed"
bash "$TREEGEN" --no-sparse "$WORK/t1" >/dev/null
python3 - "$WORK/t1" <<'PY'
import os, random, sys
r = random.Random(15)
os.makedirs(sys.argv[1] + "/big", exist_ok=True)
for i in range(3):
    open(sys.argv[1] + "/big/r%d" % i, "wb").write(r.randbytes(6 << 20))
for i in range(4):
    open(sys.argv[1] + "/big/small%d" % i, "wb").write(r.randbytes(5000 + i))
os.chmod(sys.argv[1] + "/big", 0o755)
for f in os.listdir(sys.argv[1] + "/big"):
    os.chmod(sys.argv[1] + "/big/" + f, 0o644)
PY
import_ok "$A" "$WORK/t1" --tag v1
cairn_in "$A" remote add origin s3://lazy/site >/dev/null || fail "remote add"
cairn_in "$A" push v1 origin >/dev/null || fail "push v1"
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
	"$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$CRED"
chmod 600 "$CRED"
dump "$WORK/t1" "$WORK/src.dump"
# radosgw's access log (one line per request): how many GETs a read cost
ceph --admin-daemon "$RGW_DIR/run/client.rgw.asok" config set debug_rgw 1/1 >/dev/null ||
	fail "cannot raise radosgw's log level"

say "pull --lazy, mount at once, every file reads back with the source's bytes"
lazy_store b
nf=$(cairn_in "$WORK/b" fsck --json | json_get /dev/stdin "j['not_fetched']")
info "$nf chunks not fetched"
MNT=$WORK/mnt
mkdir -p "$MNT"
mount_ok "$WORK/b" v1 "$MNT" --ro
exe=$(readlink "/proc/$MPID/exe" || true)
[ "$(basename "$exe")" = cairn-remote ] || soft_fail "the store's daemon runs '$exe', not cairn-remote"
if ! timeout 300 python3 "$TREEDUMP" "$MNT" >"$WORK/mnt.dump" 2>"$WORK/mnt.dump.err"; then
	show_file "$WORK/mnt.dump.err" >&2
	soft_fail "treedump of the lazy mount failed"
fi
same_dump "$WORK/src.dump" "$WORK/mnt.dump" "source vs lazy mount"
info "daemon: $(stat_of "$WORK/b" "$MNT" lazy_fetches) chunks fetched," \
	"$(stat_of "$WORK/b" "$MNT" lazy_prefetches) of them ahead of a read," \
	"$(stat_of "$WORK/b" "$MNT" lazy_fetch_bytes) bytes"
[ "$(stat_of "$WORK/b" "$MNT" io_errors)" = 0 ] || soft_fail "the daemon counted I/O errors"
umount_ok "$WORK/b" "$MNT"
[ "$(cairn_in "$WORK/b" fsck --json | json_get /dev/stdin "j['not_fetched']")" = 0 ] ||
	soft_fail "chunks are still not fetched after reading everything (not kept?)"

say "uid 1000 reads through a writable mount of a lazy image"
lazy_store c
MNT2=$WORK/mnt2
mkdir -p "$MNT2"
mount_ok "$WORK/c" v1 "$MNT2" --upper "$WORK/up2"
for f in big/r1 big/small1 files/random-1M; do
	timeout -k 5 60 setpriv --reuid 1000 --regid 1000 --clear-groups cat "$MNT2/$f" |
		cmp -s - "$WORK/t1/$f" || soft_fail "uid 1000 reads $f wrong"
done
umount_ok "$WORK/c" "$MNT2"

say "readers of one chunk in four mounts at once: one GET"
lazy_store d
for k in 1 2 3 4; do
	mkdir -p "$WORK/m4_$k"
	mount_ok "$WORK/d" v1 "$WORK/m4_$k" --upper "$WORK/up4_$k"
done
g0=$(gets_settled)
pids=()
for k in 1 2 3 4; do
	for i in 1 2; do
		timeout 60 cmp -s "$WORK/m4_$k/big/small2" "$WORK/t1/big/small2" &
		pids+=($!)
	done
done
bad=0
for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
[ "$bad" = 0 ] || soft_fail "$bad of 8 readers read wrong bytes"
# radosgw writes its log a moment after it answers (seen: 0 lines right after the fetch under
# ASan): wait for the GETs to show, then until no more come
want=1
[ "${CAIRN_TEST_ISOLATED:-0}" = 1 ] && want=4
for _ in $(seq 1 50); do
	[ "$(($(gets) - g0))" -ge "$want" ] && break
	sleep 0.2
done
g1=$(gets_settled)
info "8 readers in 4 mounts: $((g1 - g0)) GET(s), $(stat_of "$WORK/d" "$WORK/m4_1" lazy_fetches) chunk(s) fetched"
# one daemon for the store fetches once; --isolated mounts have a daemon each
[ "$((g1 - g0))" = "$want" ] || soft_fail "readers of one chunk cost $((g1 - g0)) GETs, not $want"
for k in 1 2 3 4; do umount_ok "$WORK/d" "$WORK/m4_$k"; done

say "radosgw hangs in the middle of a read: EIO within the bound, logged; local data reads on"
lazy_store e
MNT3=$WORK/mnt3
mkdir -p "$MNT3"
mount_fg "$WORK/e" v1 "$MNT3"
FG_LOG=$WORK/mount-fg.log
cmp -s "$MNT3/big/small0" "$WORK/t1/big/small0" || soft_fail "big/small0 reads wrong"
RGW_PID=$(cat "$RGW_DIR/run/client.rgw.pid")
track_cleanup "kill -CONT $RGW_PID 2>/dev/null"
# read the first MiB of r0, hang radosgw, read on: the bytes past what was fetched fail
python3 - "$MNT3/big/r0" "$WORK/t1/big/r0" "$RGW_PID" "$BOUND" <<'PY' || soft_fail "the read in the middle"
import errno, os, signal, sys, time
mnt, src, rgw, bound = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
want = open(src, "rb").read()
f = open(mnt, "rb", buffering=0)
got = f.read(1 << 20)
assert got == want[:1 << 20], "the first MiB differs"
os.kill(rgw, signal.SIGSTOP)
t0 = time.monotonic()
pos = len(got)
try:
    while pos < len(want):
        b = f.read(1 << 20)
        if not b:
            raise SystemExit("the file ended early at %d" % pos)
        if b != want[pos:pos + len(b)]:
            raise SystemExit("wrong bytes at %d" % pos)
        pos += len(b)
    raise SystemExit("the whole file read with radosgw hung (all fetched ahead?)")
except OSError as e:
    dt = time.monotonic() - t0
    print("   EIO at %d after %.2f s: %s" % (pos, dt, e))
    if e.errno != errno.EIO:
        raise SystemExit("errno %d, not EIO" % e.errno)
    if dt > bound:
        raise SystemExit("the read failed after %.2f s (bound %s)" % (dt, bound))
PY
timeout 20 cmp -s "$MNT3/big/small0" "$WORK/t1/big/small0" || soft_fail "a fetched file does not read while radosgw hangs"
timeout 20 ls -lR "$MNT3/dirs" >/dev/null || soft_fail "listing a directory while radosgw hangs"
t0=$(date +%s.%N)
timeout 60 cat "$MNT3/big/r2" >/dev/null 2>"$WORK/r2.err" && soft_fail "big/r2 read with radosgw hung"
t1=$(date +%s.%N)
grep -q "Input/output error" "$WORK/r2.err" || soft_fail "big/r2: not EIO: $(cat "$WORK/r2.err")"
python3 -c "import sys; sys.exit(not ($t1 - $t0 < $BOUND))" || soft_fail "big/r2 failed after $t1 - $t0 s"
info "big/r2 failed after $(python3 -c "print('%.2f' % ($t1 - $t0))") s"
grep -q "from remote 'origin'" "$FG_LOG" || soft_fail "the daemon did not log why the read failed"
info "log: $(grep -m1 "from remote 'origin'" "$FG_LOG" | cut -c1-200)"
kill -CONT "$RGW_PID"
sleep 1.5 # past the second a failure is held for the reads right behind it
timeout 60 cmp -s "$MNT3/big/r0" "$WORK/t1/big/r0" || soft_fail "big/r0 does not read once radosgw is back"
say "radosgw stopped: EIO within the bound; started again: reads work"
"$RGW_SCRIPT" rgw-stop "$RGW_DIR" || fail "rgw-stop"
t0=$(date +%s.%N)
timeout 60 cat "$MNT3/big/r2" >/dev/null 2>"$WORK/r2.err" && soft_fail "big/r2 read with radosgw stopped"
t1=$(date +%s.%N)
python3 -c "import sys; sys.exit(not ($t1 - $t0 < $BOUND))" || soft_fail "big/r2 failed after $t1 - $t0 s"
timeout 20 cmp -s "$MNT3/big/r0" "$WORK/t1/big/r0" || soft_fail "a fetched file does not read while radosgw is stopped"
"$RGW_SCRIPT" rgw-start "$RGW_DIR" >/dev/null || fail "rgw-start"
ceph --admin-daemon "$RGW_DIR/run/client.rgw.asok" config set debug_rgw 1/1 >/dev/null || true
sleep 1.5
timeout 60 cmp -s "$MNT3/big/r2" "$WORK/t1/big/r2" || soft_fail "big/r2 does not read once radosgw is started again"
umount_ok "$WORK/e" "$MNT3"

say "a tampered pack: EIO through the mount, never wrong bytes"
packs() { s3 "$CAIRN_S3_ENDPOINT/lazy?list-type=2&prefix=site%2Fpacks%2F" |
	python3 -c 'import re, sys
d = sys.stdin.read()
items = re.findall(r"<Key>([^<]*\.pack)</Key>.*?<Size>(\d+)</Size>", d)
for k, s in sorted(items, key=lambda x: -int(x[1])): print(k)'; }
mapfile -t PK < <(packs)
s3 -o "$WORK/pack.orig" "$CAIRN_S3_ENDPOINT/lazy/${PK[0]}"
python3 - "$WORK/pack.orig" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
for i in range(64, len(b), 4096):
    b[i] ^= 0x08
open(sys.argv[1] + ".bad", "wb").write(b)
PY
lazy_store f
MNT4=$WORK/mnt4
mkdir -p "$MNT4"
mount_ok "$WORK/f" v1 "$MNT4" --ro
s3 -o /dev/null -T "$WORK/pack.orig.bad" "$CAIRN_S3_ENDPOINT/lazy/${PK[0]}"
python3 - "$MNT4" "$WORK/t1" <<'PY' || soft_fail "the tampered pack"
import errno, os, sys
mnt, src = sys.argv[1], sys.argv[2]
failed = 0
for d in ("big", "files"):
    for n in sorted(os.listdir(os.path.join(src, d))):
        want = open(os.path.join(src, d, n), "rb").read()
        try:
            got = open(os.path.join(mnt, d, n), "rb").read()
        except OSError as e:
            if e.errno != errno.EIO:
                raise SystemExit("%s/%s: errno %d, not EIO" % (d, n, e.errno))
            failed += 1
            continue
        if got != want:
            raise SystemExit("%s/%s: WRONG BYTES through the mount" % (d, n))
print("   %d files failed with EIO, the rest read right" % failed)
if not failed:
    raise SystemExit("no read failed")
PY
s3 -o /dev/null -T "$WORK/pack.orig" "$CAIRN_S3_ENDPOINT/lazy/${PK[0]}"
sleep 1.5
timeout 60 cmp -s "$MNT4/big/r1" "$WORK/t1/big/r1" || soft_fail "big/r1 does not read once the pack is restored"
umount_ok "$WORK/f" "$MNT4"

say "kill -9 of the daemon during lazy reads: fsck clean, a new mount reads on"
lazy_store g
MNT5=$WORK/mnt5
mkdir -p "$MNT5"
mount_ok "$WORK/g" v1 "$MNT5" --ro
for f in big/r0 big/r1 big/r2 files/random-1M; do
	timeout 60 cat "$MNT5/$f" >/dev/null 2>&1 &
done
sleep 0.5
kill -9 "$MPID"
wait || true
tcairn "$WORK/g" umount "$MNT5" >/dev/null 2>&1 || fusermount3 -uz "$MNT5" 2>/dev/null || umount -l "$MNT5" || true
cairn_in "$WORK/g" fsck >"$WORK/fsck.out" || { show_file "$WORK/fsck.out" >&2; soft_fail "fsck after kill -9 of the daemon"; }
info "$(tail -n 1 "$WORK/fsck.out")"
mount_ok "$WORK/g" v1 "$MNT5" --ro
for f in big/r0 big/r1 big/r2 files/random-1M; do
	timeout 60 cmp -s "$MNT5/$f" "$WORK/t1/$f" || soft_fail "$f reads wrong after the kill"
done
umount_ok "$WORK/g" "$MNT5"
cairn_in "$WORK/g" fsck >/dev/null || soft_fail "fsck at the end"

say "follow --lazy switches a running mount to a lazily pulled generation"
mkdir -p "$WORK/t2"
head -c 3000000 /dev/urandom >"$WORK/t2/newfile"
echo v2 >"$WORK/t2/ver"
import_ok "$A" "$WORK/t2" --tag w2
{ cairn_in "$A" upgrade web v1 >/dev/null && cairn_in "$A" push web origin >/dev/null; } || fail "push web 1"
H=$WORK/h
cairn_in "$H" remote add origin s3://lazy/site --credentials "$CRED" >/dev/null
cairn_in "$H" follow origin web --lazy >/dev/null || fail "follow --lazy (generation 1)"
MNT6=$WORK/mnt6
mkdir -p "$MNT6"
mount_ok "$H" web "$MNT6" --ro
cmp -s "$MNT6/big/small3" "$WORK/t1/big/small3" || soft_fail "generation 1 reads wrong"
{ cairn_in "$A" upgrade web w2 >/dev/null && cairn_in "$A" push web origin >/dev/null; } || fail "push web 2"
cairn_in "$H" follow origin web --lazy >"$WORK/follow.out" || soft_fail "follow --lazy (generation 2)"
grep -q "1 mount switched" "$WORK/follow.out" || soft_fail "the running mount was not switched: $(cat "$WORK/follow.out")"
timeout 60 cmp -s "$MNT6/newfile" "$WORK/t2/newfile" || soft_fail "the new generation's file reads wrong through the switched mount"
[ "$(cat "$MNT6/ver" 2>/dev/null)" = v2 ] || soft_fail "the mount does not show generation 2"
umount_ok "$H" "$MNT6"
cairn_in "$H" fsck >/dev/null || soft_fail "fsck of the follower"
finish
