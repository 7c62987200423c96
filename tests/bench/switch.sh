#!/usr/bin/env bash
# Switch benchmark (issue 5).
#
# (1) Switch latency. For N in BENCH_SWITCH_SIZES (10^3 10^4 10^5 files): a generated tree of
#     small files (100 per directory, distinct content) is imported as tag a-N, and a copy of it
#     (cp -al, then 100 files replaced by new content) as b-N, all into one store. Platform
#     plat-N starts on a-N; then `cairn upgrade plat-N b-N` and `cairn rollback plat-N` run
#     alternately, BENCH_SWITCH_RUNS (20) times each, and each one's wall time is taken (process
#     start to exit, the synced commit and the mount notifications included). Done with no
#     mount, with 1 running mount of plat-N and with 10; every mount is walked (ls -R) before
#     timing so the kernel holds its directories. Target: median <= 5 ms with no mount, flat in
#     tree size.
# (2) Churn. A copy of a real tree (CAIRN_BENCH_CACHE/rootfs-v1 if it exists, else a generated
#     10^4-file tree) gets BENCH_CHURN_VERSIONS (10) versions, each appending a version line to
#     ~5% of its regular files; each version is imported with a tag and platform churn is
#     upgraded to it; then the tags are removed (cairn rmi) and `cairn gc --keep 2` runs. That is
#     one round; BENCH_CHURN_ROUNDS (3) rounds on the same store. Per round: import time of the
#     versions (total and median) and the store's disk usage after gc (du -s --block-size=1).
#     Both should stay flat from round to round.
#
# Environment: CAIRN (binary), CAIRN_BENCH_CACHE (/var/cache/cairn-bench), BENCH_SWITCH_SIZES,
# BENCH_SWITCH_RUNS, BENCH_SWITCH_MOUNTS ("0 1 10"), BENCH_MOUNT_ARGS (--isolated: a daemon
# per mount; default the store's shared daemon), BENCH_CHURN_VERSIONS, BENCH_CHURN_ROUNDS,
# BENCH_MD (also write markdown there), TMPDIR (work directory parent).
# Mounts need /dev/fuse and fusermount3 (or root).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"

CACHE=${CAIRN_BENCH_CACHE:-/var/cache/cairn-bench}
CAIRN=${CAIRN:-$repo/build/tools/cairn}
SIZES=${BENCH_SWITCH_SIZES:-1000 10000 100000}
RUNS=${BENCH_SWITCH_RUNS:-20}
MOUNTS=${BENCH_SWITCH_MOUNTS:-0 1 10}
VERSIONS=${BENCH_CHURN_VERSIONS:-10}
ROUNDS=${BENCH_CHURN_ROUNDS:-3}
CHANGED=100 # paths that differ between a-N and b-N
TARGET_MS=5
TARGET_10_MS=15 # issue 13: an upgrade across 10 mounts of 10^5 files
# BENCH_MOUNT_ARGS: more 'cairn mount' arguments (--isolated: a daemon per mount)
read -r -a MOUNT_ARGS <<< "${BENCH_MOUNT_ARGS:-}"

[[ -x $CAIRN ]] || bench_die "no cairn binary at $CAIRN"
[[ -n ${EPOCHREALTIME:-} ]] || bench_die "needs bash >= 5 (EPOCHREALTIME)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cairn-switch.XXXXXX")
STORE=$WORK/store
MOUNTED=() # mountpoints this run made

umount_all() {
	local m
	for m in "${MOUNTED[@]}"; do
		bench_is_mounted "$m" || continue
		timeout 60 "$CAIRN" --store "$STORE" umount "$m" > /dev/null 2>&1 ||
			timeout 20 fusermount3 -uz "$m" > /dev/null 2>&1 || true
		bench_force_unmount "$m"
	done
	MOUNTED=()
}
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	umount_all
	bench_rm_tree "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cairn() { "$CAIRN" --store "$STORE" "$@"; }

# gen_tree DIR N: N small files with distinct content, 100 per directory
# (DIR/dAAA/dBBB/fCC.txt, file i in directory i / 100).
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

# change_tree DIR N K: replace K of the N files (spread over the tree) by new inodes with new
# content, so a hard-linked copy's originals stay as they were.
change_tree() {
	local dir=$1 n=$2 k=$3 j i d f
	for ((j = 0; j < k; j++)); do
		i=$((j * n / k))
		d=$((i / 100))
		f=$(printf '%s/d%03d/d%03d/f%02d.txt' "$dir" $((d / 100)) $((d % 100)) $((i % 100)))
		rm -f "$f"
		printf 'file %d of %d, version b\n' "$i" "$n" > "$f"
	done
}

# ---------------------------------------------------------------- (1) switch latency
for n in $SIZES; do
	bench_log "generating $n files and the changed copy"
	gen_tree "$WORK/a-$n" "$n"
	cp -al "$WORK/a-$n" "$WORK/b-$n"
	change_tree "$WORK/b-$n" "$n" "$CHANGED"
	bench_log "importing a-$n and b-$n"
	cairn import "$WORK/a-$n" --tag "a-$n" > /dev/null
	cairn import "$WORK/b-$n" --tag "b-$n" > /dev/null
	rm -rf "$WORK/a-$n" "$WORK/b-$n"
	cairn upgrade "plat-$n" "a-$n" > /dev/null
done

bench_table_reset
bench_table_row files mounts "upgrade median ms" "upgrade p90 ms" "rollback median ms" "rollback p90 ms"
declare -A MED0 MEDS
fail=0
for n in $SIZES; do
	for m in $MOUNTS; do
		for ((k = 0; k < m; k++)); do
			mp=$WORK/mnt/$n-$k
			mkdir -p "$mp"
			MOUNTED+=("$mp")
			cairn mount "plat-$n" "$mp" "${MOUNT_ARGS[@]}" > /dev/null
		done
		for ((k = 0; k < m; k++)); do ls -R "$WORK/mnt/$n-$k" > /dev/null; done
		bench_log "timing $n files, $m mount(s): $RUNS upgrades and $RUNS rollbacks"
		up=() rb=()
		for ((r = 0; r < RUNS; r++)); do
			t0=$EPOCHREALTIME
			cairn upgrade "plat-$n" "b-$n" > "$WORK/out" 2>&1 || { cat "$WORK/out" >&2; bench_die "upgrade failed"; }
			up+=("$(bench_ms_since "$t0")")
			t0=$EPOCHREALTIME
			cairn rollback "plat-$n" > "$WORK/out" 2>&1 || { cat "$WORK/out" >&2; bench_die "rollback failed"; }
			rb+=("$(bench_ms_since "$t0")")
		done
		# sanity: the platform is back on a-N, and a mount (if any) serves it
		cairn cat "plat-$n:/d000/d000/f00.txt" | grep -q 'some small content' ||
			{ bench_log "plat-$n is not on a-$n after rollback"; fail=1; }
		if ((m > 0)); then
			f=$WORK/mnt/$n-0/d000/d000/f00.txt
			grep -q 'some small content' "$f" || { bench_log "mount does not serve a-$n after rollback"; fail=1; }
		fi
		grep -c switched "$WORK/out" > /dev/null || ((m == 0)) || { cat "$WORK/out" >&2; bench_log "no 'switched' answer"; fail=1; }
		umed=$(bench_median "${up[@]}") rmed=$(bench_median "${rb[@]}")
		((m == 0)) && MED0[$n]="$umed $rmed"
		MEDS[$n.$m]="$umed $rmed"
		bench_table_row "$n" "$m" "$(printf '%.2f' "$umed")" "$(printf '%.2f' "$(bench_pct 90 "${up[@]}")")" \
			"$(printf '%.2f' "$rmed")" "$(printf '%.2f' "$(bench_pct 90 "${rb[@]}")")"
		umount_all
	done
done
switch_txt=$(bench_table_print)

# baseline: a read-only command (process start, store open, one read transaction)
base=()
for ((r = 0; r < RUNS; r++)); do
	t0=$EPOCHREALTIME
	cairn platforms > /dev/null
	base+=("$(bench_ms_since "$t0")")
done
base_med=$(printf '%.2f' "$(bench_median "${base[@]}")")
switch_md=$(bench_table_md)

verdict="met"
for n in $SIZES; do
	[[ -n ${MED0[$n]:-} ]] || continue
	for v in ${MED0[$n]}; do bench_le "$v" "$TARGET_MS" || verdict="not met"; done
done

# ---------------------------------------------------------------- (2) churn
if [[ -d $CACHE/rootfs-v1 ]]; then
	bench_log "churn: copying $CACHE/rootfs-v1"
	cp -a "$CACHE/rootfs-v1" "$WORK/churn"
	churn_src="$CACHE/rootfs-v1 (copy)"
else
	bench_log "churn: no $CACHE/rootfs-v1, generating 10^4 files"
	gen_tree "$WORK/churn" 10000
	churn_src="generated tree of 10^4 small files"
fi
find "$WORK/churn" -xdev -type f -print0 | sort -z > "$WORK/churn-files"
nfiles=$(tr -cd '\0' < "$WORK/churn-files" | wc -c)
nchange=$(((nfiles + 19) / 20))
cstore=$WORK/churn-store
churn_bytes=$(bench_tree_bytes "$WORK/churn")

bench_table_reset
bench_table_row round "import s (${VERSIONS} versions)" "import median s" "gc s" "du after gc MiB" "du after gc bytes"
ver=0
CHURN_DU=() CHURN_T=()
for ((round = 1; round <= ROUNDS; round++)); do
	times=()
	tags=()
	for ((v = 1; v <= VERSIONS; v++)); do
		ver=$((ver + 1))
		# ~5% of the files
		# shellcheck disable=SC2016 # $0 and $f are the inner sh's, a different sample each version
		shuf -z -n "$nchange" --random-source=<(yes "$ver") "$WORK/churn-files" |
			xargs -0 sh -c 'for f; do printf "cairn churn version %s\n" "$0" >> "$f"; done' "$ver"
		t0=$EPOCHREALTIME
		"$CAIRN" --store "$cstore" import "$WORK/churn" --tag "v$ver" > /dev/null
		times+=("$(bench_ms_since "$t0")")
		"$CAIRN" --store "$cstore" upgrade churn "v$ver" > /dev/null
		tags+=("v$ver")
	done
	"$CAIRN" --store "$cstore" rmi "${tags[@]}" > /dev/null
	t0=$EPOCHREALTIME
	"$CAIRN" --store "$cstore" gc --keep 2 > "$WORK/gc-out" 2>&1 || { cat "$WORK/gc-out" >&2; bench_die "gc failed"; }
	gc_ms=$(bench_ms_since "$t0")
	du=$(bench_du "$cstore")
	total=$(awk -v s="$(printf '%s+' "${times[@]}")0" 'BEGIN { n = split(s, a, "+"); for (i = 1; i <= n; i++) t += a[i]; printf "%.2f\n", t / 1000 }')
	bench_table_row "$round" "$total" "$(awk -v m="$(bench_median "${times[@]}")" 'BEGIN { printf "%.3f", m / 1000 }')" \
		"$(awk -v m="$gc_ms" 'BEGIN { printf "%.2f", m / 1000 }')" \
		"$(awk -v b="$du" 'BEGIN { printf "%.1f", b / 1048576 }')" "$du"
	bench_log "churn round $round: imports ${total}s, du $(bench_human "$du")"
	CHURN_DU+=("$(awk -v b="$du" 'BEGIN { printf "%.1f", b / 1048576 }')")
	CHURN_T+=("$(awk -v m="$(bench_median "${times[@]}")" 'BEGIN { printf "%.3f", m / 1000 }')")
done
churn_txt=$(bench_table_print)
churn_md=$(bench_table_md)

# ---------------------------------------------------------------- report
cpus=$(nproc)
kernel=$(uname -r)
notes=(
	"switch: trees of N small files, 100 per directory; b-N = a-N with $CHANGED paths changed; $RUNS upgrades and $RUNS rollbacks alternately, wall time of the cairn process (start, synced commit, mount notifications); p90 = nearest rank"
	"baseline: cairn platforms (process start, store open, a read transaction), median of $RUNS: $base_med ms"
	"mounts: cairn mount of the platform, each walked with ls -R before timing"
	"churn: $churn_src, $nfiles regular files, $(bench_human "$churn_bytes") of file data; $VERSIONS versions per round, each appending a line to $nchange files (~5%); then rmi of the tags and gc --keep 2 (platform churn upgraded to every version)"
	"$cpus CPUs, kernel $kernel"
	"target: median <= $TARGET_MS ms with no mount, flat in tree size: $verdict"
)
# summary rows for tests/bench/run.sh (BENCH_RESULTS): no peer switches a platform
for n in $SIZES; do
	for m in $MOUNTS; do
		[[ -n ${MEDS[$n.$m]:-} ]] || continue
		read -r umed rmed <<< "${MEDS[$n.$m]}"
		for what in upgrade rollback; do
			v=$umed
			[[ $what == rollback ]] && v=$rmed
			if ((m == 0)); then
				bench_result switch "$what median ms, $n files, no mount" "$(printf '%.2f' "$v")" - - \
					"<= $TARGET_MS ms" "$(bench_verdict "$v" "<=" "$TARGET_MS")"
			elif [[ $what == upgrade && $n == 100000 && $m == 10 ]]; then
				bench_result switch "upgrade median ms, $n files, $m mount(s)${MOUNT_ARGS:+ ${MOUNT_ARGS[*]}}" \
					"$(printf '%.2f' "$v")" - - "<= $TARGET_10_MS ms" \
					"$(bench_verdict "$v" "<=" "$TARGET_10_MS")"
			elif [[ $what == upgrade ]]; then
				bench_result switch "upgrade median ms, $n files, $m mount(s)${MOUNT_ARGS:+ ${MOUNT_ARGS[*]}}" \
					"$(printf '%.2f' "$v")" - - - -
			fi
		done
	done
done
if ((${#CHURN_DU[@]} > 1)); then
	bench_result switch "churn: store du after gc MiB, round 1 -> $ROUNDS" "${CHURN_DU[0]} -> ${CHURN_DU[-1]}" - \
		"$(bench_ratio "${CHURN_DU[-1]}" "${CHURN_DU[0]}")" flat -
	bench_result switch "churn: import median s, round 1 -> $ROUNDS" "${CHURN_T[0]} -> ${CHURN_T[-1]}" - \
		"$(bench_ratio "${CHURN_T[-1]}" "${CHURN_T[0]}")" flat -
fi

{
	echo "Switch latency"
	echo "$switch_txt"
	echo
	echo "Churn"
	echo "$churn_txt"
	echo
	printf -- '- %s\n' "${notes[@]}"
}
if [[ -n ${BENCH_MD:-} ]]; then
	{
		echo "### Switch latency"
		echo
		echo "$switch_md"
		echo
		echo "### Churn"
		echo
		echo "$churn_md"
		echo
		printf -- '- %s\n' "${notes[@]}"
	} > "$BENCH_MD"
fi
((fail == 0)) || bench_die "a sanity check failed (see above)"
