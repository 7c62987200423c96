#!/bin/bash
# crash.sh - kill -9 at any moment of an import leaves the store readable
# and fsck-clean, with every published image intact.
#
# A first tree is imported as v1. Then a bigger import (about 300 MiB,
# thousands of files) is killed with SIGKILL after delays from "right
# away" to "nearly done" (fractions of a measured full import), each time
# on a fresh copy of the v1 store, and then a few times in a row on the
# same store. After every kill: fsck exits 0, images still lists v1 with
# the same id and nothing half-made, and the export of v1 equals the
# source. A last import completes and gives the reproducible id.
#
# CAIRN_CRASH_SEED picks the random delays (printed, to replay a failure);
# CAIRN_CRASH_MB sets the size of the big tree.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
require_root
setup

SEED=${CAIRN_CRASH_SEED:-$(( $(date +%s) % 100000 ))}
MB=${CAIRN_CRASH_MB:-300}
RANDOM=$SEED
info "seed $SEED (CAIRN_CRASH_SEED=$SEED to replay), big tree $MB MiB"

SMALL=$WORK/small
BIG=$WORK/big
STORE0=$WORK/store0
STORE=$WORK/store

say "generate the trees"
bash "$TREEGEN" --no-sparse "$SMALL"
python3 "$BULKGEN" --mb "$MB" "$BIG" | sed 's/^/   /'
dump "$SMALL" "$WORK/small.dump" --ignore-root --exclude-type sock

say "import v1"
import_ok "$STORE0" "$SMALL" --tag v1
V1=$ID
info "v1 = $V1"

say "time one full import of the big tree (fresh copy of the v1 store)"
rm -rf "$STORE" && cp -a "$STORE0" "$STORE"
t0=$(date +%s%N)
import_ok "$STORE" "$BIG" --tag big
BIGID=$ID
t1=$(date +%s%N)
T_MS=$(( (t1 - t0) / 1000000 ))
info "full import: $T_MS ms, id $BIGID"
[ "$T_MS" -ge 200 ] || info "(very fast: early kills may land after the end)"

KILLED=0
FINISHED=0

# check_store STORE WHAT [ALLOWED_ID]: the store is fine after a crash
check_store() {
	local store=$1 what=$2 allowed=${3:-}
	run_capture fsck cairn_in "$store" fsck
	if [ "$RC" -ne 0 ]; then
		soft_fail "$what: fsck exited $RC"
		show_file "$WORK/fsck.out" >&2
		show_file "$WORK/fsck.err" >&2
	fi
	run_capture images cairn_in "$store" images --json
	if [ "$RC" -ne 0 ]; then
		soft_fail "$what: images exited $RC"
		show_file "$WORK/images.err" >&2
		return
	fi
	python3 - "$WORK/images.out" "$V1" "$allowed" <<'EOF' || soft_fail "$what: images are wrong"
import json, sys
j = json.load(open(sys.argv[1]))
v1, allowed = sys.argv[2], sys.argv[3]
ids = {im["id"]: im for im in j}
assert v1 in ids, "v1 (%s) is gone: %r" % (v1, list(ids))
assert "v1" in ids[v1]["tags"], "tag v1 is gone: %r" % (ids[v1]["tags"],)
extra = set(ids) - {v1} - ({allowed} if allowed else set())
assert not extra, "unexpected images after a killed import: %r" % (extra,)
EOF
	if export_extract "$store" v1 "$WORK/out"; then
		dump "$WORK/out" "$WORK/out.dump" --ignore-root --exclude-type sock
		same_dump "$WORK/small.dump" "$WORK/out.dump" "$what: v1 exported" || true
	fi
	rm -rf "$WORK/out"
}

# kill_import STORE DELAY_MS WHAT: start the big import, SIGKILL it after
# DELAY_MS, then check the store.
kill_import() {
	local store=$1 delay=$2 what=$3
	"$CAIRN" --store "$store" import "$BIG" --tag big >"$WORK/bg.out" 2>"$WORK/bg.err" &
	local pid=$!
	track_pid "$pid"
	sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
	kill -9 "$pid" 2>/dev/null || true
	local rc=0
	wait "$pid" 2>/dev/null || rc=$? # (no "Killed" notice from bash)
	local how
	if [ "$rc" -eq 137 ]; then
		KILLED=$((KILLED + 1))
		how="killed"
	elif [ "$rc" -eq 0 ]; then
		FINISHED=$((FINISHED + 1))
		how="finished before the kill"
	else
		soft_fail "$what: import exited $rc before the kill"
		show_file "$WORK/bg.err" >&2
		how="failed ($rc)"
	fi
	info "$what: after ${delay} ms: $how"
	check_store "$store" "$what (${delay} ms, $how)" "$BIGID"
}

say "kill -9 at different moments, each on a fresh copy of the v1 store"
fractions="0 2 10 30 50 70 80 85 90 95 98" # late ones may hit the publish
for f in $fractions; do
	delay=$(( T_MS * f / 100 ))
	[ "$f" -ne 0 ] || delay=$(( RANDOM % 20 )) # right away
	rm -rf "$STORE" && cp -a "$STORE0" "$STORE"
	kill_import "$STORE" "$delay" "kill at ${f}%"
done
for i in 1 2; do
	delay=$(( RANDOM % (T_MS + 1) ))
	rm -rf "$STORE" && cp -a "$STORE0" "$STORE"
	kill_import "$STORE" "$delay" "kill at random #$i"
done

say "kill -9 several times in a row on one store"
rm -rf "$STORE" && cp -a "$STORE0" "$STORE"
for i in 1 2 3 4; do
	# what the killed imports wrote is deduplicated: later runs go faster
	delay=$(( T_MS * (3 + RANDOM % 30) / 100 ))
	kill_import "$STORE" "$delay" "repeated kill #$i"
done

say "then a complete import works and gives the same id"
import_ok "$STORE" "$BIG" --tag big
[ "$ID" = "$BIGID" ] || soft_fail "import after crashes: $ID, want $BIGID"
check_store "$STORE" "after the complete import" "$BIGID"
dump "$BIG" "$WORK/big.dump" --ignore-root
if export_extract "$STORE" big "$WORK/out"; then
	dump "$WORK/out" "$WORK/out.dump" --ignore-root
	same_dump "$WORK/big.dump" "$WORK/out.dump" "big tree exported after the crashes" || true
fi
rm -rf "$WORK/out"

info "$KILLED imports killed, $FINISHED finished before their kill"
total=$((KILLED + FINISHED))
[ "$KILLED" -ge $((total / 2)) ] ||
	soft_fail "only $KILLED of $total imports were killed mid-way: the test did not test much"

finish
