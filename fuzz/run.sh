#!/bin/bash
# run.sh - build the libFuzzer harnesses with clang and run each for a while.
#
#   fuzz/run.sh [-b BUILD] [-t SECONDS] [-w WORK] [HARNESS...] [-- LIBFUZZER_ARGS...]
#
# BUILD    build directory of the harnesses (default: build-fuzz in the source
#          tree), set up on first use with CC=clang meson setup BUILD -Dfuzz=true
# SECONDS  how long each harness runs (default 60)
# WORK     grown corpora (WORK/corpus/NAME), crash artifacts (WORK/artifacts)
#          and logs (default: BUILD/fuzz-work; kept, so the next run goes on
#          from what this one found)
# HARNESS  values, store, tar, oci (default: all four, one after another)
#
# Each harness starts from its checked-in seeds (fuzz/corpus/NAME; for tar
# also the hostile archives of tests/lib/mkhostile.py) and its grown corpus.
# The stores the harnesses make go to a tmpfs (/dev/shm) when there is one.
# Prints one line per harness: executions, coverage (libFuzzer's cov and ft),
# corpus. Exits 1 if a harness crashed (the input is in WORK/artifacts).
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$SRC/build-fuzz
SECONDS_EACH=60
WORK=""
HARNESSES=()
EXTRA=()

while [ $# -gt 0 ]; do
	case $1 in
	-b) BUILD=$2; shift 2 ;;
	-t) SECONDS_EACH=$2; shift 2 ;;
	-w) WORK=$2; shift 2 ;;
	--) shift; EXTRA=("$@"); break ;;
	-h|--help) sed -n '2,/^set -/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	values|store|tar|oci) HARNESSES+=("$1"); shift ;;
	*) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done
[ ${#HARNESSES[@]} -gt 0 ] || HARNESSES=(values store tar oci)
BUILD=$(mkdir -p "$BUILD" && cd "$BUILD" && pwd)
: "${WORK:=$BUILD/fuzz-work}"
mkdir -p "$WORK/artifacts" "$WORK/logs"

if [ ! -f "$BUILD/build.ninja" ]; then
	CC=clang meson setup "$BUILD" "$SRC" -Dfuzz=true >"$WORK/logs/setup.log" 2>&1 || {
		cat "$WORK/logs/setup.log" >&2
		exit 2
	}
fi
targets=()
for h in "${HARNESSES[@]}"; do targets+=("fuzz/fuzz_$h"); done
meson compile -C "$BUILD" "${targets[@]}" >"$WORK/logs/build.log" 2>&1 || {
	tail -40 "$WORK/logs/build.log" >&2
	exit 2
}

tmp=$(mktemp -d "$( [ -w /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/cairn-fuzz.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

failed=0
for h in "${HARNESSES[@]}"; do
	corpus=$WORK/corpus/$h
	log=$WORK/logs/$h.log
	seeds=("$SRC/fuzz/corpus/$h")
	mkdir -p "$corpus"
	if [ "$h" = tar ]; then
		python3 "$SRC/tests/lib/mkhostile.py" "$tmp/hostile" && rm -f "$tmp/hostile/README"
		seeds+=("$tmp/hostile")
	fi
	# a store with a few images and their packs takes some KB to describe
	opts=()
	[ "$h" = store ] && opts+=(-max_len=16384)
	rc=0
	TMPDIR=$tmp nice -n 10 "$BUILD/fuzz/fuzz_$h" -max_total_time="$SECONDS_EACH" \
		-timeout=30 -rss_limit_mb=3072 -print_final_stats=1 \
		-artifact_prefix="$WORK/artifacts/$h-" "${opts[@]}" "${EXTRA[@]}" \
		"$corpus" "${seeds[@]}" >"$log" 2>&1 || rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	last=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -1 || true)
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
	corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$last")
	printf '%-7s %s runs in %s s, cov %s, ft %s, corpus %s\n' "$h:" "${runs:-?}" \
		"$SECONDS_EACH" "${cov:-?}" "${ft:-?}" "${corp:-?}"
	if [ "$rc" -ne 0 ]; then
		failed=1
		echo "$h: libFuzzer exited $rc; log: $log" >&2
		grep -E '^(==[0-9]+==|SUMMARY|fuzz_[a-z]+:|.*runtime error)' "$log" | head -5 >&2 || true
		grep 'Test unit written to' "$log" >&2 || true
	fi
done
exit "$failed"
