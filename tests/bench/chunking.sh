#!/usr/bin/env bash
# Chunk sizes and zstd level: imports the cached Debian v1 and v2 trees (built by import.sh)
# into fresh stores for each setting and prints v1 import time, store disk usage after v1+v2,
# bytes v2 added, and the chunk count. This is how the store's defaults were chosen (README).
#
# Environment: CAIRN (binary), CAIRN_BENCH_CACHE (trees), BENCH_RUNS (timing runs, 3),
# CHUNKING_SIZES and CHUNKING_LEVELS (the settings swept).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"

CACHE=${CAIRN_BENCH_CACHE:-/var/cache/cairn-bench}
CAIRN=${CAIRN:-$repo/build/tools/cairn}
RUNS=${BENCH_RUNS:-3}
SIZES=${CHUNKING_SIZES:-4K:16K:64K 8K:32K:128K 16K:64K:256K 32K:128K:512K 64K:256K:1M}
LEVELS=${CHUNKING_LEVELS:-1 3 6 9}

[[ -f $CACHE/rootfs-v1.stamp && -f $CACHE/rootfs-v2.stamp ]] ||
	bench_die "no cached trees in $CACHE: run tests/bench/import.sh (or BENCH_PREPARE_ONLY=1) first"
[[ -x $CAIRN ]] || bench_die "no cairn binary at $CAIRN"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cairn-chunking.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
bench_warm "$CACHE/rootfs-v1"
bench_warm "$CACHE/rootfs-v2"

printf '%-16s %5s  %9s  %14s  %12s  %7s\n' sizes level "v1 time s" "du v1+v2 MiB" "v2 added MiB" chunks
for sizes in $SIZES; do
	for level in $LEVELS; do
		times=()
		for ((run = 1; run <= RUNS; run++)); do
			rm -rf "$WORK/s"
			sync
			t0=$(bench_now)
			CAIRN_CHUNK_SIZES=$sizes CAIRN_ZSTD_LEVEL=$level \
				"$CAIRN" --store "$WORK/s" import "$CACHE/rootfs-v1" >/dev/null
			t1=$(bench_now)
			times+=("$(echo "$t1 - $t0" | bc)")
		done
		du1=$(bench_du "$WORK/s")
		CAIRN_CHUNK_SIZES=$sizes CAIRN_ZSTD_LEVEL=$level \
			"$CAIRN" --store "$WORK/s" import "$CACHE/rootfs-v2" >/dev/null
		du2=$(bench_du "$WORK/s")
		chunks=$("$CAIRN" --store "$WORK/s" du --json | bench_json_int chunks)
		printf '%-16s %5s  %9.2f  %14.1f  %12.1f  %7s\n' "$sizes" "$level" \
			"$(bench_median "${times[@]}")" "$(echo "$du2 / 1048576" | bc -l)" \
			"$(echo "($du2 - $du1) / 1048576" | bc -l)" "$chunks"
		printf '%s %s %s %s\n' "$sizes" "$level" "$(bench_median "${times[@]}")" \
			"$(awk -v b="$du2" 'BEGIN { printf "%.1f", b / 1048576 }')" >> "$WORK/sweep"
	done
done

# summary rows for tests/bench/run.sh (BENCH_RESULTS): the defaults against the best setting
# of the sweep, each way (no target: this is how the defaults were chosen)
DEFAULT="16K:64K:256K 3" # the store's defaults (README: Choosing chunk sizes)
def=$(awk -v d="$DEFAULT" '$1 " " $2 == d' "$WORK/sweep")
if [[ -n $def ]]; then
	read -r _ _ def_t def_du <<< "$def"
	read -r bs bl bt _ < <(sort -g -k3 "$WORK/sweep" | head -n 1)
	bench_result chunking "v1 import s, defaults ($DEFAULT)" "$def_t" "fastest: $bs zstd $bl $bt" \
		"$(bench_ratio "$def_t" "$bt")" - -
	read -r bs bl _ bd < <(sort -g -k4 "$WORK/sweep" | head -n 1)
	bench_result chunking "store du v1+v2 MiB, defaults ($DEFAULT)" "$def_du" "smallest: $bs zstd $bl $bd" \
		"$(bench_ratio "$def_du" "$bd")" - -
fi
