#!/usr/bin/env bash
# OCI benchmark: the Debian trees of import.sh (rootfs-v1, and rootfs-v2 as a second layer made
# by 'umoci repack') in an umoci layout. Side by side in one run, median of BENCH_RUNS:
#   import: cairn import oci:DIR:v2 (both layers, every digest checked, into a fresh store)
#           vs umoci unpack (the same layers applied to a directory)
#   export: cairn export v2 --oci (one gzip layer of the flattened tree)
#           vs tar -c | gzip -6 of the same tree from disk (what one gzip layer costs)
# Timings are warm (the layout's blobs and the trees are read once before timing).
#
# Environment:
#   CAIRN              cairn binary (default: <repo>/build/tools/cairn)
#   CAIRN_BENCH_CACHE  where import.sh keeps rootfs-v1 and rootfs-v2 (/var/cache/cairn-bench);
#                      build them with: BENCH_PREPARE_ONLY=1 tests/bench/import.sh
#   BENCH_RUNS         timing runs (3)
#   TMPDIR             work directory parent (/tmp)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"

CACHE=${CAIRN_BENCH_CACHE:-/var/cache/cairn-bench}
CAIRN=${CAIRN:-$repo/build/tools/cairn}
RUNS=${BENCH_RUNS:-3}
V1=$CACHE/rootfs-v1
V2=$CACHE/rootfs-v2

[[ $(id -u) == 0 ]] || bench_die "run as root (the trees hold root-only files)"
[[ -d $V1 && -d $V2 ]] || bench_die "no $V1 or $V2: run BENCH_PREPARE_ONLY=1 tests/bench/import.sh"
command -v umoci >/dev/null || bench_die "umoci is not installed (scripts/install-deps.sh --test)"
[[ -x $CAIRN ]] || bench_die "no cairn at $CAIRN"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cairn-bench-oci.XXXXXX")
trap 'rm -rf --one-file-system "$WORK"' EXIT

bench_log "building the layout: v1, then v2 as a second layer (umoci repack)"
L=$WORK/layout
umoci init --layout "$L"
umoci new --image "$L:v1"
umoci unpack --image "$L:v1" "$WORK/b" >/dev/null
cp -a "$V1/." "$WORK/b/rootfs/"
umoci repack --image "$L:v1" "$WORK/b"
find "$WORK/b/rootfs" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
cp -a "$V2/." "$WORK/b/rootfs/"
umoci repack --image "$L:v2" "$WORK/b"
rm -rf "$WORK/b"
blobs=$(bench_du "$L/blobs")
bench_log "layout: $(bench_human "$blobs") of blobs; tree v2: $(bench_tree_files "$V2") entries, $(bench_human "$(bench_tree_bytes "$V2")")"
cat "$L"/blobs/sha256/* >/dev/null
bench_warm "$V2"

imp=() unp=() exp=() tgz=()
for ((r = 1; r <= RUNS; r++)); do
	rm -rf "$WORK/store" "$WORK/unpack" "$WORK/export" "$WORK/tree.tar.gz"
	bench_time t "$CAIRN" --store "$WORK/store" import "oci:$L:v2" >/dev/null
	imp+=("$t")
	bench_time t umoci unpack --image "$L:v2" "$WORK/unpack" >/dev/null
	unp+=("$t")
	bench_time t "$CAIRN" --store "$WORK/store" export v2 --oci "$WORK/export"
	exp+=("$t")
	bench_time t bash -c 'tar -C "$1" --numeric-owner --xattrs -cf - . | gzip -6 >"$2"' _ \
		"$V2" "$WORK/tree.tar.gz"
	tgz+=("$t")
	bench_log "run $r: import ${imp[-1]}s, umoci unpack ${unp[-1]}s, export ${exp[-1]}s, tar|gzip ${tgz[-1]}s"
done

mi=$(bench_median "${imp[@]}") mu=$(bench_median "${unp[@]}")
me=$(bench_median "${exp[@]}") mt=$(bench_median "${tgz[@]}")
layer=$(bench_du "$WORK/export/blobs")
printf '\nOCI, Debian minbase v1 + v2 layer (median of %d runs, warm)\n' "$RUNS"
printf '%-44s %9s %9s\n' "" seconds "vs peer"
printf '%-44s %9s %9s\n' "cairn import oci:DIR:v2 (2 layers)" "$mi" "$(bench_ratio "$mi" "$mu")"
printf '%-44s %9s %9s\n' "umoci unpack DIR:v2" "$mu" 1.00
printf '%-44s %9s %9s\n' "cairn export v2 --oci (1 gzip layer)" "$me" "$(bench_ratio "$me" "$mt")"
printf '%-44s %9s %9s\n' "tar -c | gzip -6 of the tree" "$mt" 1.00
printf 'exported layout: %s; store after import: %s\n' "$(bench_human "$layer")" \
	"$(bench_human "$(bench_du "$WORK/store")")"
