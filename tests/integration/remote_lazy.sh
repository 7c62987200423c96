#!/bin/bash
# remote_lazy.sh - pull --lazy through a real radosgw, without mounts (the
# mounts are remote_lazy_mount.sh): the pull fetches metadata only; fsck
# counts the chunks not fetched yet as such (not damage), du says what is
# local; every file reads back (cat) with the source's bytes, fetched once
# and kept; gc keeps the lazy records a kept image needs and drops the
# rest; a tampered, truncated or substituted pack on the remote is an error
# and never wrong bytes; a stopped or hung radosgw makes a read fail within
# the remote's --timeout while local chunks keep reading, and reads work
# again once it is back; remote rm refuses while chunks are still to be
# fetched; a plain pull completes a lazy image; follow --lazy; a store that
# chunks otherwise is refused by the remote.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/remote.sh
source "$(dirname "$0")/../lib/remote.sh"
require_root
setup
require_rgw
rgw_start
A=$WORK/a
B=$WORK/b
CRED=$WORK/cred
# seconds a read may take against a remote that is down (--timeout 2, plus slack)
BOUND=${CAIRN_LAZY_BOUND:-15}

jget() { json_get "$1" "j['$2']"; }
# fsck_json STORE KEY: a figure of fsck --json (fsck must be clean)
fsck_json() {
	cairn_in "$1" fsck --json >"$WORK/fsck.json" || {
		show_file "$WORK/fsck.json" >&2
		soft_fail "fsck of $1 found problems"
	}
	jget "$WORK/fsck.json" "$2"
}

# cat_all STORE IMAGE SRC [SUB]: every regular file of SRC (under SUB) read
# with cairn cat and compared with the source; the number that differ or fail
cat_all() {
	python3 - "$CAIRN" "$1" "$2" "$3" "${4:-.}" <<'PY'
import os, subprocess, sys
cairn, store, image, src, sub = sys.argv[1:6]
bad = 0
for d, dirs, files in os.walk(os.path.join(src, sub)):
    for f in files:
        p = os.path.join(d, f)
        if not os.path.isfile(p) or os.path.islink(p):
            continue
        rel = os.path.relpath(p, src)
        r = subprocess.run([cairn, "--store", store, "cat", image.encode() + b":" + os.fsencode(rel)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if r.returncode != 0 or r.stdout != open(p, "rb").read():
            bad += 1
            if bad <= 3:
                print("   differs: %r (exit %d) %s" % (rel, r.returncode, r.stderr.decode(errors="replace").strip()),
                      file=sys.stderr)
print(bad)
PY
}

say "an image with every kind of file, big random files and a sparse one"
bash "$TREEGEN" --no-sparse "$WORK/t1" >/dev/null
python3 - "$WORK/t1" <<'PY'
import os, random, sys
r = random.Random(14)
os.makedirs(sys.argv[1] + "/big", exist_ok=True)
for i in range(3):
    open(sys.argv[1] + "/big/r%d" % i, "wb").write(r.randbytes(6 << 20))
with open(sys.argv[1] + "/big/sparse", "wb") as f:
    f.write(r.randbytes(300000))
    f.seek(8 << 20)
    f.write(r.randbytes(300000))
PY
import_ok "$A" "$WORK/t1" --tag v1
V1=$ID
cairn_in "$A" remote add origin s3://lazy/site >/dev/null || fail "remote add"
cairn_in "$A" push v1 origin >/dev/null || fail "push v1"
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
	"$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$CRED"
chmod 600 "$CRED"

say "a lazy pull needs a credentials file: whoever reads later never uses this environment"
cairn_in "$B" remote add noenv s3://lazy/site >/dev/null || fail "remote add noenv"
expect_error "pull --lazy from a remote without --credentials" cairn_in "$B" pull noenv v1 --lazy
cairn_in "$B" remote rm noenv || soft_fail "remote rm noenv"
cairn_in "$B" remote add origin s3://lazy/site --credentials "$CRED" --timeout 2 >/dev/null ||
	fail "remote add --credentials"

say "pull --lazy: metadata only"
cairn_in "$B" pull origin v1 --lazy --json >"$WORK/l1.json" || fail "pull --lazy"
[ "$(jget "$WORK/l1.json" image)" = "$V1" ] || soft_fail "pull --lazy reports another image"
lazy_chunks=$(jget "$WORK/l1.json" lazy_chunks)
info "lazy: $lazy_chunks chunks ($(jget "$WORK/l1.json" lazy_bytes) bytes) left on the remote," \
	"$(jget "$WORK/l1.json" bytes_received) bytes received"
[ "$lazy_chunks" -gt 100 ] || soft_fail "pull --lazy left only $lazy_chunks chunks on the remote"
[ "$(jget "$WORK/l1.json" bytes_received)" -lt $((1 << 20)) ] ||
	soft_fail "pull --lazy received $(jget "$WORK/l1.json" bytes_received) bytes"
cairn_in "$A" ls -R -l v1 >"$WORK/ls.a"
cairn_in "$B" ls -R -l v1 >"$WORK/ls.b" || fail "ls of the lazy image"
same_dump "$WORK/ls.a" "$WORK/ls.b" "v1 listed in both stores"

say "fsck: not fetched yet is no problem; du says what is local"
[ "$(fsck_json "$B" not_fetched)" = "$lazy_chunks" ] ||
	soft_fail "fsck counts $(jget "$WORK/fsck.json" not_fetched) chunks not fetched, pull left $lazy_chunks"
[ "$(jget "$WORK/fsck.json" lazy)" = "$lazy_chunks" ] || soft_fail "fsck counts other lazy records"
cairn_in "$B" fsck | grep -q "$lazy_chunks chunks not fetched yet (lazy), no problems" ||
	soft_fail "fsck's summary does not say how many chunks are not fetched yet"
cairn_in "$B" du v1 --json >"$WORK/du.json" || soft_fail "du v1"
[ "$(jget "$WORK/du.json" remote_chunks)" = "$lazy_chunks" ] || soft_fail "du counts other remote chunks"
[ "$(jget "$WORK/du.json" "local_share")" = 0.0 ] || soft_fail "du: local share $(jget "$WORK/du.json" local_share) before any read"
cairn_in "$B" du v1 | grep -q "^lazy .* not fetched yet" || soft_fail "du v1 does not say what is not fetched"
expect_error "export of a lazy image (cairn-archive cannot fetch)" cairn_in "$B" export v1 -o "$WORK/x.tar"
grep -q "not fetched yet" "$WORK/experr.err" || soft_fail "export: the message should say why"

say "gc keeps the lazy records a kept image needs"
cairn_in "$B" gc >/dev/null || soft_fail "gc"
[ "$(fsck_json "$B" not_fetched)" = "$lazy_chunks" ] || soft_fail "gc dropped lazy records a kept image needs"

say "a stopped radosgw: a read fails within the bound, with why; nothing hangs"
"$RGW_SCRIPT" rgw-stop "$RGW_DIR" || fail "rgw-stop"
t0=$(date +%s.%N)
expect_error "cat with radosgw stopped" timeout -k 5 60 "$CAIRN" --store "$B" cat v1:big/r0
t1=$(date +%s.%N)
info "failed after $(python3 -c "print('%.2f' % ($t1 - $t0))") s"
python3 -c "import sys; sys.exit(not ($t1 - $t0 < $BOUND))" || soft_fail "the read took $t1 - $t0 s (bound $BOUND)"
grep -q "origin" "$WORK/experr.err" || soft_fail "the message should name the remote"
"$RGW_SCRIPT" rgw-start "$RGW_DIR" >/dev/null || fail "rgw-start"

say "every file reads back with the source's bytes (cat), fetched and kept"
bad=$(cat_all "$B" v1 "$WORK/t1")
[ "$bad" = 0 ] || soft_fail "$bad files read back wrong"
[ "$(fsck_json "$B" not_fetched)" = 0 ] || soft_fail "$(jget "$WORK/fsck.json" not_fetched) chunks still not fetched after reading everything"
[ "$(jget "$WORK/fsck.json" lazy)" = "$lazy_chunks" ] || soft_fail "the records went before gc"
cairn_in "$B" du v1 --json >"$WORK/du.json"
{ [ "$(jget "$WORK/du.json" remote_chunks)" = 0 ] && [ "$(jget "$WORK/du.json" local_share)" = 1.0 ]; } ||
	soft_fail "du after reading everything: $(jget "$WORK/du.json" remote_chunks) remote chunks"
cairn_in "$B" gc >"$WORK/gc.out" || soft_fail "gc"
grep -q "$lazy_chunks lazy records" "$WORK/gc.out" || soft_fail "gc should drop the $lazy_chunks fetched records: $(head -1 "$WORK/gc.out")"
[ "$(fsck_json "$B" lazy)" = 0 ] || soft_fail "lazy records left after gc"

say "local chunks keep reading while radosgw hangs (SIGSTOP); a lazy one fails in time"
C=$WORK/c
cairn_in "$C" remote add origin s3://lazy/site --credentials "$CRED" --timeout 2 >/dev/null
cairn_in "$C" pull origin v1 --lazy >/dev/null || fail "pull --lazy into c"
cairn_in "$C" cat v1:big/r1 | cmp -s - "$WORK/t1/big/r1" || soft_fail "big/r1 reads wrong"
RGW_PID=$(cat "$RGW_DIR/run/client.rgw.pid")
kill -STOP "$RGW_PID"
track_cleanup "kill -CONT $RGW_PID 2>/dev/null"
timeout -k 5 30 "$CAIRN" --store "$C" cat v1:big/r1 | cmp -s - "$WORK/t1/big/r1" ||
	soft_fail "a fetched file does not read while radosgw hangs"
t0=$(date +%s.%N)
expect_error "cat with radosgw hung" timeout -k 5 60 "$CAIRN" --store "$C" cat v1:big/r2
t1=$(date +%s.%N)
info "failed after $(python3 -c "print('%.2f' % ($t1 - $t0))") s"
python3 -c "import sys; sys.exit(not (1.5 < $t1 - $t0 < $BOUND))" ||
	soft_fail "the read gave up after $t1 - $t0 s (the remote's timeout is 2 s, bound $BOUND)"
kill -CONT "$RGW_PID"
cairn_in "$C" cat v1:big/r2 | cmp -s - "$WORK/t1/big/r2" || soft_fail "big/r2 does not read once radosgw is back"

say "remote rm refuses while chunks are still to be fetched from it"
expect_error "remote rm with lazy chunks" cairn_in "$C" remote rm origin
cairn_in "$C" remote ls | grep -q origin || soft_fail "remote rm removed it all the same"

say "a plain pull completes the lazy image; gc then drops the records"
cairn_in "$C" pull origin v1 --json >"$WORK/full.json" || soft_fail "pull after pull --lazy"
[ "$(fsck_json "$C" not_fetched)" = 0 ] || soft_fail "the plain pull left chunks on the remote"
cairn_in "$C" gc >/dev/null
[ "$(fsck_json "$C" lazy)" = 0 ] || soft_fail "lazy records left after the pull and gc"
cairn_in "$C" remote rm origin || soft_fail "remote rm once everything is local"

say "the remote is untrusted: tampered, truncated, substituted packs are errors, never bytes"
packs() { s3 "$CAIRN_S3_ENDPOINT/lazy?list-type=2&prefix=site%2Fpacks%2F" |
	python3 -c 'import re, sys
d = sys.stdin.read()
items = re.findall(r"<Key>([^<]*\.pack)</Key>.*?<Size>(\d+)</Size>", d)
for k, s in sorted(items, key=lambda x: -int(x[1])): print(k)'; }
put_obj() { s3 -o /dev/null -T "$1" "$CAIRN_S3_ENDPOINT/lazy/$2"; }
get_obj() { s3 -o "$2" "$CAIRN_S3_ENDPOINT/lazy/$1"; }
mapfile -t PK < <(packs)
# another image's pack: a valid object to substitute
mkdir -p "$WORK/t9" && head -c 3000000 /dev/urandom >"$WORK/t9/other"
import_ok "$A" "$WORK/t9" --tag other
cairn_in "$A" push other origin >/dev/null || fail "push other"
OTHER=$(packs | grep -vxF -f <(printf '%s\n' "${PK[@]}") | head -n 1)
[ -n "$OTHER" ] || fail "no pack of the other image"
get_obj "${PK[0]}" "$WORK/big.orig"
get_obj "$OTHER" "$WORK/other"
python3 - "$WORK/big.orig" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
for i in range(64, len(b), 4096):      # a bit in every page: every entry of the pack
    b[i] ^= 0x10
open(sys.argv[1] + ".bad", "wb").write(b)
open(sys.argv[1] + ".short", "wb").write(b[:len(b) // 3])
PY
n=0
for bad in "$WORK/big.orig.bad" "$WORK/big.orig.short" "$WORK/other"; do
	n=$((n + 1))
	D=$WORK/d$n
	cairn_in "$D" remote add origin s3://lazy/site --credentials "$CRED" --timeout 5 >/dev/null
	cairn_in "$D" pull origin v1 --lazy >/dev/null || fail "pull --lazy ($bad)"
	put_obj "$bad" "${PK[0]}"
	# every file: what was written before an error must be the file's first bytes
	# (the files of big/ and files/: each at least one chunk)
	read -r wrong failed < <(python3 - "$CAIRN" "$D" v1 "$WORK/t1" <<'PY'
import os, subprocess, sys
cairn, store, image, src = sys.argv[1:5]
wrong = failed = 0
for d, dirs, files in list(os.walk(src + "/big")) + list(os.walk(src + "/files")):
    for f in files:
        p = os.path.join(d, f)
        if not os.path.isfile(p) or os.path.islink(p):
            continue
        rel = os.path.relpath(p, src)
        r = subprocess.run(["timeout", "-k", "5", "60", cairn, "--store", store, "cat",
                            image.encode() + b":" + os.fsencode(rel)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        want = open(p, "rb").read()
        if want[:len(r.stdout)] != r.stdout or (r.returncode == 0 and r.stdout != want):
            wrong += 1
            print("   WRONG BYTES: %r: exit %d, %d of %d bytes" % (rel, r.returncode, len(r.stdout), len(want)),
                  file=sys.stderr)
        if r.returncode != 0:
            failed += 1
            err = r.stderr.decode(errors="replace")
            if failed == 1:
                print("   %s: %s" % (rel, err.strip()[:200]), file=sys.stderr)
            # (a name with a newline in it is quoted as it is)
            if err.count("\n") != 1 + rel.count("\n") or not err.startswith("cairn: "):
                wrong += 1
                print("   NOT ONE LINE: %r: %r" % (rel, err[:400]), file=sys.stderr)
print(wrong, failed)
PY
)
	info "$(basename "$bad"): $failed files failed, $wrong wrong"
	[ "$wrong" = 0 ] || soft_fail "$(basename "$bad"): $wrong files served wrong bytes (or not one line of error)"
	[ "$failed" -ge 1 ] || soft_fail "$(basename "$bad"): no read failed"
	put_obj "$WORK/big.orig" "${PK[0]}"
	bad=$(cat_all "$D" v1 "$WORK/t1" big)
	[ "$bad" = 0 ] || soft_fail "$bad files read wrong once the pack is restored"
done

say "follow --lazy switches a platform to a lazily pulled image"
cairn_in "$A" upgrade web v1 >/dev/null
cairn_in "$A" push web origin >/dev/null || fail "push web"
F=$WORK/f
cairn_in "$F" remote add origin s3://lazy/site --credentials "$CRED" >/dev/null
cairn_in "$F" follow origin web --lazy >/dev/null || soft_fail "follow --lazy"
[ "$(cairn_in "$F" platforms --json | json_get /dev/stdin 'j[0]["image"]')" = "$V1" ] ||
	soft_fail "the platform is not on v1 after follow --lazy"
[ "$(fsck_json "$F" not_fetched)" = "$lazy_chunks" ] || soft_fail "follow --lazy fetched chunks"
cairn_in "$F" cat web:big/r0 | cmp -s - "$WORK/t1/big/r0" || soft_fail "web:big/r0 reads wrong"

say "a store that chunks otherwise is refused by the remote (ids would differ)"
CAIRN_CHUNK_SIZES=32K:128K:512K expect_error "remote add from a store with other chunking" \
	cairn_in "$WORK/g" remote add origin s3://lazy/site
finish
