#!/usr/bin/env bash
# Diff benchmark (issue 6): does `cairn diff` cost the change, not the tree?
#
# For N in BENCH_DIFF_SIZES (10^3 10^4 10^5 files): a generated tree of small files (100 per
# directory, distinct content, DIR/dAAA/dBBB/fCC.txt) is a-N, and a full copy of it (cp -a) with
# one file's bytes rewritten in place is b-N. Both are imported into one cairn store and committed
# into one ostree repository (bare-user-only; commits with --fsync=false: setup, not timed).
# Then BENCH_DIFF_RUNS (11) rounds, each timing every tool at every size in turn, warm:
#   cairn diff a-N b-N          the one-file change
#   cairn diff a-N a-N          the floor: process start, store open, two names resolved
#   ostree diff a-N b-N         a peer that also diffs content-addressed trees
#   diff -rq A B                the plain way, over the two trees on disk
# Figures are wall-clock medians (process start to exit, bash EPOCHREALTIME). The ratio of each
# tool's time at the largest size to its time at the smallest says how flat it is (target for
# cairn: about 1). cairn diff --stats gives the nodes it read and the time the diff itself took
# in the process (without process start and store open, which dominate the wall time).
#
# Environment: CAIRN (binary), BENCH_DIFF_SIZES, BENCH_DIFF_RUNS, BENCH_MD (also write markdown
# there), TMPDIR (work directory parent). ostree is optional (apt-get install ostree).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"

CAIRN=${CAIRN:-$repo/build/tools/cairn}
SIZES=${BENCH_DIFF_SIZES:-1000 10000 100000}
RUNS=${BENCH_DIFF_RUNS:-11}

[[ -x $CAIRN ]] || bench_die "no cairn binary at $CAIRN"
[[ -n ${EPOCHREALTIME:-} ]] || bench_die "needs bash >= 5 (EPOCHREALTIME)"
have_ostree=0
command -v ostree > /dev/null 2>&1 && have_ostree=1

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cairn-diff.XXXXXX")
STORE=$WORK/store
OREPO=$WORK/ostree
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	bench_rm_tree "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cairn() { "$CAIRN" --store "$STORE" "$@"; }

# gen_tree DIR N: N small files with distinct content, 100 per directory.
gen_tree() {
	local dir=$1 n=$2 i
	for ((i = 0; i < (n + 99) / 100; i++)); do
		printf '%s/d%03d/d%03d\n' "$dir" $((i / 100)) $((i % 100))
	done | xargs mkdir -p
	awk -v dir="$dir" -v n="$n" 'BEGIN {
		for (i = 0; i < n; i++) {
			d = int(i / 100)
			f = sprintf("%s/d%03d/d%03d/f%02d.txt", dir, int(d / 100), d % 100, i % 100)
			printf "file %d of %d\nsome small content, line two of file %d\n", i, n, i > f
			close(f)
		}
	}'
}

# the one file b-N changes: in the middle of the tree
changed_path() {
	local n=$1 i d
	i=$((n / 2 + 37))
	d=$((i / 100))
	printf 'd%03d/d%03d/f%02d.txt' $((d / 100)) $((d % 100)) $((i % 100))
}

# time_once CMD...: runs CMD (output discarded), prints its wall time in ms.
time_once() {
	local t0=$EPOCHREALTIME
	"$@" > /dev/null 2>&1 || [[ $1 == diff ]] || bench_die "'$*' failed"
	bench_ms_since "$t0"
}

if ((have_ostree)); then
	ostree --repo="$OREPO" init --mode=bare-user-only
fi

declare -A T_CAIRN T_ENGINE T_SAME T_OSTREE T_DIFF NODES
for n in $SIZES; do
	bench_log "generating a-$n ($n files) and b-$n (a copy, one file rewritten)"
	gen_tree "$WORK/a-$n" "$n"
	cp -a "$WORK/a-$n" "$WORK/b-$n"
	f=$(changed_path "$n")
	printf 'file rewritten in b\n' > "$WORK/b-$n/$f"
	bench_log "importing and committing a-$n and b-$n"
	cairn import "$WORK/a-$n" --tag "a-$n" > /dev/null
	cairn import "$WORK/b-$n" --tag "b-$n" > /dev/null
	if ((have_ostree)); then
		ostree --repo="$OREPO" commit --fsync=false -b "a-$n" --tree=dir="$WORK/a-$n" > /dev/null
		ostree --repo="$OREPO" commit --fsync=false -b "b-$n" --tree=dir="$WORK/b-$n" > /dev/null
	fi

	# every tool must see exactly the one change
	out=$(cairn diff --stats "a-$n" "b-$n" 2> "$WORK/stats")
	[[ $out == "M /$f (content, mtime)" ]] || bench_die "cairn diff a-$n b-$n printed: $out"
	NODES[$n]=$(sed -n 's/^cairn: diff read \([0-9]*\) nodes.*/\1/p' "$WORK/stats")
	[[ -z $(cairn diff "a-$n" "a-$n") ]] || bench_die "cairn diff a-$n a-$n is not empty"
	out=$(diff -rq "$WORK/a-$n" "$WORK/b-$n" || true)
	[[ $(wc -l <<< "$out") == 1 && $out == *"$f"* ]] || bench_die "diff -rq printed: $out"
	if ((have_ostree)); then
		out=$(ostree --repo="$OREPO" diff "a-$n" "b-$n")
		[[ $out == "M    /$f" ]] || bench_die "ostree diff printed: $out"
	fi
done

# Timing, interleaved: each round times every tool at every size, so load from other processes
# on the machine falls on all sizes alike, and the store holds every size's images throughout.
# Each timed run follows an untimed one of the same command, so it is warm even when something
# else on the machine dropped the page cache in between.
declare -A MS
bench_log "timing: $RUNS rounds over sizes $SIZES"
for ((r = 0; r < RUNS; r++)); do
	for n in $SIZES; do
		cairn diff "a-$n" "b-$n" > /dev/null
		t0=$EPOCHREALTIME
		cairn diff --stats "a-$n" "b-$n" > /dev/null 2> "$WORK/stats" || bench_die "cairn diff failed"
		MS[cairn $n]+=" $(bench_ms_since "$t0")"
		MS[engine $n]+=" $(sed -n 's/^cairn: diff read .* in \([0-9]*\) us$/\1/p' "$WORK/stats")"
		time_once cairn diff "a-$n" "a-$n" > /dev/null
		MS[same $n]+=" $(time_once cairn diff "a-$n" "a-$n")"
		if ((have_ostree)); then
			time_once ostree --repo="$OREPO" diff "a-$n" "b-$n" > /dev/null
			MS[ostree $n]+=" $(time_once ostree --repo="$OREPO" diff "a-$n" "b-$n")"
		fi
		time_once diff -rq "$WORK/a-$n" "$WORK/b-$n" > /dev/null
		MS[diff $n]+=" $(time_once diff -rq "$WORK/a-$n" "$WORK/b-$n")"
	done
done
med() {
	# shellcheck disable=SC2086 # a list of numbers
	[[ -n ${MS[$1 $2]:-} ]] && printf '%.2f' "$(bench_median ${MS[$1 $2]})" || echo n/a
}
for n in $SIZES; do
	T_CAIRN[$n]=$(med cairn "$n")
	T_ENGINE[$n]=$(med engine "$n")
	T_SAME[$n]=$(med same "$n")
	T_OSTREE[$n]=$(med ostree "$n")
	T_DIFF[$n]=$(med diff "$n")
done

# ratio3 A B: A / B to three significant digits (diff -rq is hundreds of times slower), or n/a.
ratio3() {
	[[ $1 == n/a || $2 == n/a || -z $1 || -z $2 ]] && { echo n/a; return; }
	awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.3g\n", a / b }'
}

bench_table_reset
bench_table_row files "cairn diff ms" "cairn same-image ms" "diff engine us" "nodes read" \
	"ostree diff ms" "diff -rq ms" "cairn / ostree" "cairn / diff -rq"
for n in $SIZES; do
	bench_table_row "$n" "${T_CAIRN[$n]}" "${T_SAME[$n]}" "${T_ENGINE[$n]}" "${NODES[$n]}" "${T_OSTREE[$n]}" \
		"${T_DIFF[$n]}" "$(ratio3 "${T_CAIRN[$n]}" "${T_OSTREE[$n]}")" \
		"$(ratio3 "${T_CAIRN[$n]}" "${T_DIFF[$n]}")"
done
read -r -a sz <<< "$SIZES"
lo=${sz[0]} hi=${sz[${#sz[@]} - 1]}
flat() { printf -- '- %s time at %s files / at %s files: %s\n' "$1" "$hi" "$lo" "$(bench_ratio "$2" "$3")"; }
notes=$(
	printf -- '- median of %s runs, warm, wall clock per process; %s CPUs, %s\n' "$RUNS" "$(nproc)" "$(uname -r)"
	printf -- '- same-image: cairn diff of an image with itself (no node read): process start, store open, names\n'
	printf -- '- diff engine: the time cairn_diff_trees() took inside the process (cairn diff --stats)\n'
	if ((have_ostree)); then
		printf -- '- %s\n' "$(ostree --version | awk '/Version:/ { print "ostree " $2 }' | tr -d "'")"
	else
		printf -- '- ostree is not installed: no ostree figures\n'
	fi
	flat "cairn diff" "${T_CAIRN[$hi]}" "${T_CAIRN[$lo]}"
	flat "cairn diff engine" "${T_ENGINE[$hi]}" "${T_ENGINE[$lo]}"
	((have_ostree)) && flat "ostree diff" "${T_OSTREE[$hi]}" "${T_OSTREE[$lo]}"
	flat "diff -rq" "${T_DIFF[$hi]}" "${T_DIFF[$lo]}"
)
bench_table_print
printf '\n%s\n' "$notes"
if [[ -n ${BENCH_MD:-} ]]; then
	{
		bench_table_md
		printf '\n%s\n' "$notes"
	} > "$BENCH_MD"
fi
