#!/bin/bash
# remote_transfer.sh - push and pull through a real radosgw: round trip
# (same ids, same listing, fsck clean on both sides), a second push sends
# nothing, v2 after v1 moves exactly the objects v2 adds (both ways), a
# tampered, a truncated and a substituted pack and a tampered image object
# are refused with one line and nothing published, kill -9 during push and
# pull then a re-run completes, and a missing bucket is one clear line.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/remote.sh
source "$(dirname "$0")/../lib/remote.sh"
require_root
setup
require_rgw
rgw_start
export CAIRN_S3_ENDPOINT
A=$WORK/a
B=$WORK/b

# jget FILE KEY: a number from a --json summary
jget() { json_get "$1" "j['$2']"; }

say "trees: every kind of object (treegen), then v2 = v1 + 8 MiB and an edit"
bash "$TREEGEN" --no-sparse "$WORK/t1" >/dev/null
cp -a "$WORK/t1" "$WORK/t2"
python3 - "$WORK/t2" <<'PY'
import os, random, sys
r = random.Random(2)
os.makedirs(sys.argv[1] + "/v2", exist_ok=True)
for i in range(8):
    open(sys.argv[1] + "/v2/blob%d" % i, "wb").write(r.randbytes(1 << 20))
PY
echo "changed in v2" >>"$WORK/t2/v2/blob0"
import_ok "$A" "$WORK/t1" --tag v1
V1=$ID
import_ok "$A" "$WORK/t2" --tag v2
V2=$ID
cairn_in "$A" remote add origin s3://xfer/site >/dev/null || fail "remote add"
cairn_in "$B" remote add origin s3://xfer/site >/dev/null || fail "remote add (b)"

say "push v1, pull it into an empty store"
cairn_in "$A" push v1 origin --json >"$WORK/p1.json" || fail "push v1"
info "push v1: $(jget "$WORK/p1.json" objects_sent) objects, $(jget "$WORK/p1.json" bytes_sent) bytes"
[ "$(jget "$WORK/p1.json" objects_sent)" -gt 0 ] || soft_fail "push v1 sent no object"
cairn_in "$B" pull origin v1 --json >"$WORK/l1.json" || fail "pull v1"
[ "$(jget "$WORK/l1.json" image)" = "$V1" ] || soft_fail "pull v1 reports another image"
[ "$(jget "$WORK/l1.json" objects_received)" = "$(jget "$WORK/p1.json" objects_sent)" ] ||
	soft_fail "pull v1 received $(jget "$WORK/l1.json" objects_received) objects, push sent $(jget "$WORK/p1.json" objects_sent)"
cairn_in "$A" ls -R -l v1 >"$WORK/ls.a" || fail "ls a"
cairn_in "$B" ls -R -l v1 >"$WORK/ls.b" || fail "ls b: tag v1 is not there"
same_dump "$WORK/ls.a" "$WORK/ls.b" "v1 listed in both stores"
cmp -s <(cairn_in "$A" cat v1:bigrand 2>/dev/null) <(cairn_in "$B" cat v1:bigrand 2>/dev/null) ||
	cmp -s <(cairn_in "$A" export v1) <(cairn_in "$B" export v1) || soft_fail "v1's bytes differ"
cairn_in "$B" fsck >/dev/null || soft_fail "fsck of the pulling store"
cairn_in "$A" fsck >/dev/null || soft_fail "fsck of the pushing store"

say "a second push sends nothing, a second pull receives nothing"
cairn_in "$A" push v1 origin --json >"$WORK/p1b.json" || fail "second push"
[ "$(jget "$WORK/p1b.json" objects_sent)" = 0 ] && [ "$(jget "$WORK/p1b.json" bytes_sent)" = 0 ] ||
	soft_fail "second push sent $(jget "$WORK/p1b.json" objects_sent) objects, $(jget "$WORK/p1b.json" bytes_sent) bytes"
cairn_in "$B" pull origin v1 --json >"$WORK/l1b.json" || fail "second pull"
[ "$(jget "$WORK/l1b.json" bytes_received)" -lt 4096 ] || soft_fail "second pull received $(jget "$WORK/l1b.json" bytes_received) bytes"

say "v2 after v1: only what v2 adds, both ways"
cairn_in "$A" push v2 origin --json >"$WORK/p2.json" || fail "push v2"
cairn_in "$B" pull origin v2 --json >"$WORK/l2.json" || fail "pull v2"
info "v2: pushed $(jget "$WORK/p2.json" objects_sent) objects ($(jget "$WORK/p2.json" bytes_sent) B), pulled $(jget "$WORK/l2.json" objects_received) ($(jget "$WORK/l2.json" bytes_received) B)"
[ "$(jget "$WORK/l2.json" objects_received)" = "$(jget "$WORK/p2.json" objects_sent)" ] ||
	soft_fail "pull of v2 onto v1 received other objects than v2 added"
added=$(jget "$WORK/p2.json" bytes_sent)
got=$(jget "$WORK/l2.json" bytes_received)
[ "$got" -le $((added * 11 / 10 + 65536)) ] || soft_fail "pull of v2 received $got bytes for $added pushed"
[ "$(cairn_in "$B" images --json | json_get /dev/stdin '" ".join(sorted(i["id"] for i in j))')" = \
	"$(printf '%s\n' "$V1" "$V2" | sort | tr '\n' ' ' | sed 's/ $//')" ] || soft_fail "b should hold v1 and v2"
cairn_in "$B" fsck >/dev/null || soft_fail "fsck after v2"

say "an image by id, with --tag; a name the remote lacks"
C=$WORK/c
cairn_in "$C" remote add origin s3://xfer/site >/dev/null
cairn_in "$C" pull origin "$V2" --tag mine >/dev/null || soft_fail "pull by id with --tag"
cairn_in "$C" ls mine >/dev/null || soft_fail "--tag mine"
expect_error "a name the remote lacks" cairn_in "$C" pull origin nosuch
expect_error "an unknown remote" cairn_in "$C" pull nosuchremote v1

# the packs of the remote, largest first
packs() { s3 "$CAIRN_S3_ENDPOINT/xfer?list-type=2&prefix=site%2Fpacks%2F" |
	python3 -c 'import re, sys
d = sys.stdin.read()
items = re.findall(r"<Key>([^<]*\.pack)</Key>.*?<Size>(\d+)</Size>", d)
for k, s in sorted(items, key=lambda x: -int(x[1])): print(k)'; }
fresh_pull() { # fresh_pull WHAT: pull v2 into an empty store; one line, nothing published
	local st=$WORK/fresh.$RANDOM
	cairn_in "$st" remote add origin s3://xfer/site >/dev/null
	expect_error "$1" cairn_in "$st" pull origin v2
	[ -z "$(cairn_in "$st" images --json | json_get /dev/stdin '",".join(i["id"] for i in j)')" ] ||
		soft_fail "$1: an image was published"
	cairn_in "$st" fsck >/dev/null || soft_fail "$1: fsck after the refused pull"
}
put_obj() { s3 -o /dev/null -T "$1" "$CAIRN_S3_ENDPOINT/xfer/$2"; }
get_obj() { s3 -o "$2" "$CAIRN_S3_ENDPOINT/xfer/$1"; }

say "the remote is untrusted: tampered, truncated, substituted objects"
mapfile -t PK < <(packs)
[ "${#PK[@]}" -ge 2 ] || fail "expected at least 2 packs, got ${#PK[@]}"
BIG=${PK[0]}
get_obj "$BIG" "$WORK/big.orig"
python3 - "$WORK/big.orig" "$WORK/big.bad" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[len(b) // 2] ^= 0x40          # one bit, in the middle of some chunk
open(sys.argv[2], "wb").write(b)
PY
put_obj "$WORK/big.bad" "$BIG"
fresh_pull "a pack with one bit flipped"
grep -q "does not match its id" "$WORK/experr.err" || soft_fail "the message should say what did not match"
head -c $(($(stat -c %s "$WORK/big.orig") / 3)) "$WORK/big.orig" >"$WORK/big.short"
put_obj "$WORK/big.short" "$BIG"
fresh_pull "a truncated pack"
get_obj "${PK[1]}" "$WORK/other"
put_obj "$WORK/other" "$BIG"
fresh_pull "another pack's bytes under a pack's name"
put_obj "$WORK/big.orig" "$BIG"
IMG=site/images/$V2
get_obj "$IMG" "$WORK/img.orig"
python3 - "$WORK/img.orig" "$WORK/img.bad" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[24 + 8] ^= 1                  # the record's flattened root
open(sys.argv[2], "wb").write(b)
PY
put_obj "$WORK/img.bad" "$IMG"
fresh_pull "an image object whose root was changed"
put_obj "$WORK/img.orig" "$IMG"
D=$WORK/d
cairn_in "$D" remote add origin s3://xfer/site >/dev/null
cairn_in "$D" pull origin v2 >/dev/null || soft_fail "the restored remote should pull again"

say "kill -9 during push and pull, then a re-run completes"
python3 - "$WORK/t3" <<'PY'
import os, random, sys
r = random.Random(3)
for d in range(4):
    os.makedirs("%s/d%d" % (sys.argv[1], d))
    for i in range(12):
        open("%s/d%d/f%d" % (sys.argv[1], d, i), "wb").write(r.randbytes(r.randrange(1, 1 << 20)))
PY
import_ok "$A" "$WORK/t3" --tag v3
V3=$ID
for delay in 0.05 0.15 0.3; do
	"$CAIRN" --store "$A" push v3 origin >/dev/null 2>&1 &
	pid=$!
	sleep "$delay"
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	# an image object on the remote only once all it names is there
	if [ "$(s3 -o /dev/null -w '%{http_code}' -I "$CAIRN_S3_ENDPOINT/xfer/site/images/$V3")" = 200 ]; then
		info "push killed after $delay s: it had finished"
	fi
done
for k in $(s3 "$CAIRN_S3_ENDPOINT/xfer?list-type=2&prefix=site%2Fpacks%2F" | grep -o '<Key>[^<]*\.idx</Key>' | sed 's/<[^>]*>//g'); do
	[ "$(s3 -o /dev/null -w '%{http_code}' -I "$CAIRN_S3_ENDPOINT/xfer/${k%.idx}.pack")" = 200 ] ||
		soft_fail "an index without its pack: $k"
done
cairn_in "$A" push v3 origin --json >"$WORK/p3.json" || fail "push v3 after kills"
E=$WORK/e
cairn_in "$E" remote add origin s3://xfer/site >/dev/null
for delay in 0.05 0.2 0.4; do
	"$CAIRN" --store "$E" pull origin v3 >/dev/null 2>&1 &
	pid=$!
	sleep "$delay"
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	cairn_in "$E" fsck >/dev/null || soft_fail "fsck after a pull killed at $delay s"
done
cairn_in "$E" pull origin v3 --json >"$WORK/l3.json" || fail "pull v3 after kills"
info "the completing pull received $(jget "$WORK/l3.json" objects_received) of $(jget "$WORK/p3.json" objects_sent) objects"
[ "$(cairn_in "$E" ls -R -l v3 | md5sum)" = "$(cairn_in "$A" ls -R -l v3 | md5sum)" ] ||
	soft_fail "v3 differs after the interrupted pulls"
cairn_in "$E" fsck >/dev/null || soft_fail "fsck after the completed pull"
cmp -s <(cairn_in "$E" cat v3:d2/f5) "$WORK/t3/d2/f5" || soft_fail "a file's bytes after the interrupted pulls"

say "a bucket that went away: one clear line"
cairn_in "$A" remote add gone s3://vanishing >/dev/null || fail "remote add gone"
s3 -o /dev/null -X DELETE "$CAIRN_S3_ENDPOINT/vanishing/cairn-remote"
s3 -o /dev/null -X DELETE "$CAIRN_S3_ENDPOINT/vanishing"
expect_error "push to a missing bucket" cairn_in "$A" push v1 gone
grep -q "no such bucket" "$WORK/experr.err" || soft_fail "the message should say the bucket is missing"
finish
