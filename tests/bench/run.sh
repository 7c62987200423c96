#!/usr/bin/env bash
# run.sh - every benchmark, one after another, and one table of what each measured against its
# peers and its target.
#
#   tests/bench/run.sh [NAME...]
#
# NAME is a benchmark of tests/bench (default, in this order: import mount switch chunking
# diff upper remote density; one that is not in this tree is skipped with a note). Each runs as it
# would alone,
# with BENCH_RESULTS pointing at a file where it appends its summary rows (lib.sh: bench_result)
# and BENCH_MD at its own markdown report; its output goes to a log. Then one table:
# benchmark, metric, cairn, peer(s), ratio, target, met.
#
# Environment: BENCH_OUT (directory for the logs and reports, kept; default a new
# directory under TMPDIR), BENCH_MD (also write the summary there as markdown), CAIRN,
# and whatever the benchmarks read (BENCH_RUNS, CAIRN_BENCH_CACHE, ...). Needs root, as the
# benchmarks do. Build first (meson compile -C build). The full run takes 30-60 minutes.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"

KNOWN=(import mount switch chunking diff upper remote density)
CAIRN=${CAIRN:-$repo/build/tools/cairn}
export CAIRN
[[ -x $CAIRN ]] || bench_die "no cairn binary at $CAIRN (meson compile -C build, or set CAIRN)"
[[ $(id -u) == 0 ]] || bench_die "run as root (the benchmarks mount, debootstrap and drop caches)"

if (($#)); then names=("$@"); else names=("${KNOWN[@]}"); fi
OUT=${BENCH_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/cairn-bench-run.XXXXXX")}
mkdir -p "$OUT"

# the machine, for the table's heading
machine() {
	local disk dev
	dev=$(findmnt -no SOURCE -T "${TMPDIR:-/tmp}" 2> /dev/null | head -n 1)
	disk=$(lsblk -dno SIZE "$dev" 2> /dev/null | tr -d ' ')
	printf '%s CPUs (%s), %s RAM, kernel %s, %s disk %s (%s)' "$(nproc)" \
		"$(awk -F ': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
		"$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)" "$(uname -r)" \
		"${disk:-?}" "${dev:-?}" "$(findmnt -no FSTYPE -T "${TMPDIR:-/tmp}" 2> /dev/null | head -n 1)"
}
START=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

declare -A STATUS=()
for name in "${names[@]}"; do
	script=$here/$name.sh
	if [[ ! -f $script ]]; then
		STATUS[$name]="not in this tree: skipped"
		bench_log "$name: not in this tree, skipped"
		continue
	fi
	rm -f "$OUT/$name.results"
	bench_log "$name: running (log: $OUT/$name.log)"
	rc=0 t=
	bench_time t env BENCH_RESULTS="$OUT/$name.results" BENCH_MD="$OUT/$name.md" \
		bash "$script" > "$OUT/$name.log" 2>&1 || rc=$?
	if ((rc)); then
		STATUS[$name]="FAILED (exit $rc, ${t} s): $(grep -v '^\[bench' "$OUT/$name.log" | tail -n 1 | cut -c1-120)"
	else
		STATUS[$name]="ok, ${t} s"
	fi
	bench_log "$name: ${STATUS[$name]}"
done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

bench_table_reset
bench_table_row benchmark metric cairn "peer(s)" ratio target met
met=0 missed=0
for name in "${names[@]}"; do
	f=$OUT/$name.results
	if [[ ! -s $f ]]; then
		bench_table_row "$name" "(no rows: ${STATUS[$name]:-?})" - - - - -
		continue
	fi
	# rows of one metric together, metrics in the order they first appear
	while IFS=$'\t' read -r b m c p r tg v; do
		bench_table_row "$b" "$m" "$c" "$p" "$r" "$tg" "$v"
		case $v in met) met=$((met + 1)) ;; MISSED) missed=$((missed + 1)) ;; esac
	done < <(awk -F '\t' '!($2 in first) { first[$2] = NR } { print first[$2] "\t" NR "\t" $0 }' "$f" |
		sort -t $'\t' -k1,1n -k2,2n | cut -f 3-)
done

notes() { # PREFIX
	printf '%s%s\n' "$1" "run: $START; $(machine)"
	printf '%s%s\n' "$1" "load average before $LOAD0, after $LOAD1 (a shared machine: compare ratios, not seconds)"
	for name in "${names[@]}"; do printf '%s%s: %s\n' "$1" "$name" "${STATUS[$name]}"; done
	printf '%s%s\n' "$1" "targets: $met met, $missed missed; ratio = cairn / the first peer named (or as the target says)"
	printf '%s%s\n' "$1" "logs and each benchmark's full report: $OUT"
}

# the table, every column left-aligned (text) or as markdown
table_text() {
	printf '%s\n' "${BENCH_TABLE[@]}" | awk -F '\t' '
		{ for (i = 1; i <= NF; i++) { c[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } if (NF > n) n = NF }
		END {
			for (r = 1; r <= NR; r++) {
				line = ""
				for (i = 1; i <= n; i++) line = line sprintf(i < n ? "%-" w[i] "s  " : "%s", c[r, i])
				print line
				if (r == 1) { line = ""; for (i = 1; i <= n; i++) { s = sprintf("%" w[i] "s", ""); gsub(/ /, "-", s); line = line s (i < n ? "  " : "") } print line }
			}
		}'
}
table_md() {
	printf '%s\n' "${BENCH_TABLE[@]}" | awk -F '\t' '
		{ line = "|"; for (i = 1; i <= NF; i++) { c = $i; gsub(/\|/, "\\|", c); line = line " " c " |" } print line
		  if (NR == 1) { line = "|"; for (i = 1; i <= NF; i++) line = line " --- |"; print line } }'
}

echo
table_text
echo
notes ''
if [[ -n ${BENCH_MD:-} ]]; then
	{
		table_md
		echo
		notes '- '
	} > "$BENCH_MD"
	bench_log "markdown written to $BENCH_MD"
fi
