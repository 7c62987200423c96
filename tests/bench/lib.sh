# shellcheck shell=bash
# Shared helpers for cairn benchmarks. Source it: . "$(dirname "$0")/lib.sh"
# Every function is prefixed bench_; nothing here runs at source time.

# bench_log MSG...: progress line on stderr.
bench_log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# bench_die MSG...: error line on stderr, exit 1.
bench_die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

# bench_now: wall clock seconds with nanoseconds.
bench_now() { date +%s.%N; }

# bench_time VAR CMD...: run CMD (stdout/stderr untouched), store elapsed seconds in VAR.
# Returns CMD's exit status (VAR is set either way).
bench_time() {
	local __var=$1 __t0 __t1 __rc=0
	shift
	__t0=$(bench_now)
	"$@" || __rc=$?
	__t1=$(bench_now)
	printf -v "$__var" '%s' "$(awk -v a="$__t0" -v b="$__t1" 'BEGIN { printf "%.3f", b - a }')"
	return "$__rc"
}

# bench_median V...: median of numeric values; "n/a" values are ignored; prints n/a if none.
bench_median() {
	local v
	for v in "$@"; do
		[[ $v == n/a || -z $v ]] || printf '%s\n' "$v"
	done | sort -g | awk '{ a[NR] = $1 }
		END {
			if (NR == 0) { print "n/a"; exit }
			if (NR % 2) m = a[(NR + 1) / 2]; else m = (a[NR / 2] + a[NR / 2 + 1]) / 2
			if (m == int(m)) printf "%d\n", m; else printf "%.3f\n", m
		}'
}

# bench_du PATH...: disk usage in bytes (allocated blocks, hard links counted once).
bench_du() { du -s -c --block-size=1 "$@" | tail -n 1 | cut -f 1; }

# bench_tree_bytes DIR: logical bytes of regular file content, each inode once.
bench_tree_bytes() {
	find "$1" -xdev -type f -printf '%i %s\n' | sort -u -k1,1n | awk '{ s += $2 } END { printf "%d\n", s }'
}

# bench_tree_files DIR: number of filesystem objects (all types, the root included).
bench_tree_files() { find "$1" -xdev -printf '.' | wc -c; }

# bench_warm DIR: read every file once so timings are warm-cache for every tool.
# (Piped through cat: GNU tar skips reading file data when its output is /dev/null.)
bench_warm() { tar -C "$1" -cf - . | cat > /dev/null; }

# bench_mbps BYTES SECONDS: MB/s (10^6 bytes), or n/a.
bench_mbps() {
	[[ $1 == n/a || $2 == n/a || -z $1 || -z $2 ]] && { echo n/a; return; }
	awk -v b="$1" -v s="$2" 'BEGIN { if (s <= 0) print "n/a"; else printf "%.1f\n", b / s / 1e6 }'
}

# bench_ratio A B: A / B with two decimals, or n/a.
bench_ratio() {
	[[ $1 == n/a || $2 == n/a || -z $1 || -z $2 ]] && { echo n/a; return; }
	awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f\n", a / b }'
}

# bench_le A B: true if A <= B numerically (false if either is n/a).
bench_le() {
	[[ $1 == n/a || $2 == n/a ]] && return 1
	awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'
}

# bench_sub A B: A - B, or n/a.
bench_sub() {
	[[ $1 == n/a || $2 == n/a || -z $1 || -z $2 ]] && { echo n/a; return; }
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%d\n", a - b }'
}

# bench_human BYTES: e.g. 123.4 MiB; n/a passes through.
bench_human() {
	[[ $1 == n/a || -z $1 ]] && { echo n/a; return; }
	awk -v b="$1" 'BEGIN {
		split("B KiB MiB GiB TiB", u, " "); i = 1; neg = b < 0; if (neg) b = -b
		while (b >= 1024 && i < 5) { b /= 1024; i++ }
		printf "%s%s %s\n", neg ? "-" : "", (i == 1 ? sprintf("%d", b) : sprintf("%.1f", b)), u[i]
	}'
}

# bench_json_int FIELD < JSON: first integer value of "FIELD" in a JSON text, or n/a.
bench_json_int() {
	local v
	v=$(tr -d '\n' | grep -o "\"$1\"[[:space:]]*:[[:space:]]*[0-9][0-9]*" | head -n 1 | grep -o '[0-9]*$' || true)
	echo "${v:-n/a}"
}

# bench_need_pkgs CMD:PKG...: apt-get install -y the packages whose command is missing.
bench_need_pkgs() {
	local spec missing=()
	for spec in "$@"; do
		command -v "${spec%%:*}" > /dev/null 2>&1 || missing+=("${spec#*:}")
	done
	((${#missing[@]})) || return 0
	bench_log "installing ${missing[*]}"
	[[ $(id -u) == 0 ]] || bench_die "need root to install ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" > /dev/null ||
		{ apt-get update > /dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" > /dev/null; } ||
		bench_die "apt-get install ${missing[*]} failed"
}

# bench_unmount_under DIR: unmount everything mounted at or below DIR, deepest first.
bench_unmount_under() {
	local dir m
	dir=$(realpath -m "$1")
	# /proc/self/mounts escapes spaces as \040; cache paths have none, so plain compare.
	awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r |
		while read -r m; do
			umount "$m" 2> /dev/null || umount -l "$m" || true
		done
}

# bench_rm_tree DIR: unmount anything below DIR, then remove it without crossing filesystems.
bench_rm_tree() {
	[[ -e $1 ]] || return 0
	bench_unmount_under "$1"
	rm -rf --one-file-system "$1"
}

# Table output. bench_table_row CELL...: append a row to the pending table
# (first row = header). bench_table_print: aligned text on stdout.
# bench_table_md: GitHub markdown table on stdout. bench_table_reset: forget rows.
BENCH_TABLE=()
bench_table_reset() { BENCH_TABLE=(); }
bench_table_row() {
	local IFS=$'\t'
	BENCH_TABLE+=("$*")
}
bench_table_print() {
	printf '%s\n' "${BENCH_TABLE[@]}" | awk -F '\t' '
		{ for (i = 1; i <= NF; i++) { c[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } if (NF > n) n = NF }
		END {
			for (r = 1; r <= NR; r++) {
				line = ""
				for (i = 1; i <= n; i++) line = line (i == 1 ? sprintf("%-" w[i] "s", c[r, i]) : sprintf("  %" w[i] "s", c[r, i]))
				print line
				if (r == 1) { line = ""; for (i = 1; i <= n; i++) { s = sprintf("%" w[i] "s", ""); gsub(/ /, "-", s); line = line (i == 1 ? s : "  " s) } print line }
			}
		}'
}
bench_table_md() {
	printf '%s\n' "${BENCH_TABLE[@]}" | awk -F '\t' '
		{ line = "|"; for (i = 1; i <= NF; i++) { c = $i; gsub(/\|/, "\\|", c); line = line " " c " |" } print line
		  if (NR == 1) { line = "|"; for (i = 1; i <= NF; i++) line = line (i == 1 ? " --- |" : " ---: |"); print line } }'
}

# bench_host_uri REGEX: first apt source URI on this host matching REGEX (one-line and deb822
# formats), or nothing.
bench_host_uri() {
	local f files=()
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[[ -f $f ]] && files+=("$f")
	done
	((${#files[@]})) || return 0
	awk '/^[[:space:]]*deb[[:space:]]/ || /^URIs:/ {
			for (i = 2; i <= NF; i++) if ($i ~ /^[a-z+]+:\/\//) print $i
		}' "${files[@]}" | sed 's:/*$::' | grep -E "$1" | head -n 1 || true
}

# bench_is_mounted DIR: true if DIR (canonical path, no spaces) is a mount point now.
bench_is_mounted() {
	local d
	d=$(realpath -m "$1")
	awk -v d="$d" '$2 == d { f = 1 } END { exit !f }' /proc/self/mounts
}

# bench_force_unmount DIR: unmount DIR by every means, politest first (fusermount3 -u, umount,
# then lazily: fusermount3 -uz, umount -l), each under timeout. Never fails.
bench_force_unmount() {
	local d=$1 cmd
	for cmd in "fusermount3 -u" "umount" "fusermount3 -uz" "umount -l"; do
		bench_is_mounted "$d" || return 0
		# shellcheck disable=SC2086 # cmd is a command and its options
		timeout 20 $cmd "$d" > /dev/null 2>&1 || true
	done
	return 0
}

# bench_drop_caches: write back dirty data, then drop the page, dentry and inode caches.
bench_drop_caches() {
	sync
	echo 3 > /proc/sys/vm/drop_caches
}

# bench_pid_with_arg ARG: pid of the process (not this shell) whose argument list contains ARG
# exactly, e.g. a FUSE daemon's mountpoint; nothing if none.
bench_pid_with_arg() {
	local p a
	for p in /proc/[0-9]*; do
		[[ ${p#/proc/} == "$$" || ${p#/proc/} == "$BASHPID" ]] && continue
		while IFS= read -r -d '' a; do
			if [[ $a == "$1" ]]; then
				echo "${p#/proc/}"
				return 0
			fi
		done 2> /dev/null < "$p/cmdline"
	done
	return 0
}

# bench_rss_anon PID: the process's RssAnon in bytes (from /proc/PID/status), or n/a.
bench_rss_anon() {
	local kb
	kb=$(awk '$1 == "RssAnon:" { print $2 }' "/proc/$1/status" 2> /dev/null || true)
	if [[ -n $kb ]]; then echo $((kb * 1024)); else echo n/a; fi
}

# bench_pct P V...: P-th percentile (nearest rank) of numeric values; n/a values are ignored;
# prints n/a if none. bench_pct 50 is the lower median for an even count.
bench_pct() {
	local p=$1 v
	shift
	for v in "$@"; do
		[[ $v == n/a || -z $v ]] || printf '%s\n' "$v"
	done | sort -g | awk -v p="$p" '{ a[NR] = $1 }
		END {
			if (NR == 0) { print "n/a"; exit }
			r = p / 100 * NR; k = int(r); if (k < r) k++; if (k < 1) k = 1
			print a[k]
		}'
}

# bench_ms_since T0: milliseconds (3 decimals) from T0 (an $EPOCHREALTIME value) to now.
# Uses bash's EPOCHREALTIME, so timing a command costs no extra fork.
bench_ms_since() {
	local t1=$EPOCHREALTIME
	awk -v a="$1" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) * 1000 }'
}

# Summary rows for tests/bench/run.sh. A benchmark that compares against a target calls
# bench_result once per target; nothing happens unless BENCH_RESULTS names a file.
# bench_result BENCH METRIC CAIRN PEERS RATIO TARGET VERDICT: one tab-separated row appended
# to $BENCH_RESULTS. PEERS is free text ("casync 3.413; ostree 14.124"), the peer the ratio
# is taken against first; "-" where a cell does not apply.
bench_result() {
	[[ -n ${BENCH_RESULTS:-} ]] || return 0
	local IFS=$'\t'
	printf '%s\n' "$*" >> "$BENCH_RESULTS"
}

# bench_verdict VALUE OP TARGET: met, MISSED, or n/a when VALUE is not a number.
# OP is one of < <= > >=.
bench_verdict() {
	[[ $1 == n/a || -z $1 ]] && { echo n/a; return; }
	if awk -v a="$1" -v b="$3" -v op="$2" 'BEGIN {
			exit !((op == "<" && a < b) || (op == "<=" && a <= b) || (op == ">" && a > b) || (op == ">=" && a >= b)) }'; then
		echo met
	else
		echo MISSED
	fi
}

# bench_bigfile_py: a python3 program whose output (argv[1] bytes) is the benchmarks' /bigfile,
# deterministic: 1 MiB segments in a seeded order, 1/5 random bytes (incompressible) and 4/5
# log-like text lines with random numbers and hex words (zstd -3 gets about 2.9:1 on those):
# about 2.2:1 overall with zstd -3, and no two segments alike, so nothing deduplicates. Run it
# under a tree's own python3, so the bytes do not depend on the host.
bench_bigfile_py() {
	cat << 'EOF'
import random, sys
size = int(sys.argv[1]); r = random.Random(20261127); out = sys.stdout.buffer
words = [r.randbytes(r.randint(3, 9)).hex() for _ in range(2000)]
SEG = 1 << 20
done = 0
while done < size:
    if r.randrange(5) == 2:
        seg = r.randbytes(SEG)
    else:
        parts = []; n = 0
        while n < SEG:
            line = "%d.%06d host%d %s: %s %s id=%d\n" % (r.randrange(1 << 31), r.randrange(10**6),
                r.randrange(64), r.choice(words), r.choice(words), r.choice(words), r.randrange(1 << 20))
            parts.append(line); n += len(line)
        seg = "".join(parts).encode()[:SEG]
    seg = seg[:size - done]
    out.write(seg); done += len(seg)
EOF
}

# bench_fio_randread FILE SECONDS TIMEOUT ERRFILE: fio 4 KiB psync random reads of FILE for
# SECONDS (page cache kept: --invalidate=0, so a cold figure needs caches dropped before), given
# SECONDS + TIMEOUT to finish; prints the IOPS. Fails when fio does.
bench_fio_randread() {
	local out iops
	out=$(timeout $(($3 + $2)) fio --name=r --filename="$1" --readonly \
		--rw=randread --bs=4k --direct=0 --ioengine=psync --invalidate=0 --runtime="$2" \
		--time_based --numjobs=1 --output-format=terse --terse-version=3 2> "$4") || return
	# terse v3: field 8 is the read IOPS
	iops=$(awk -F ';' 'NR == 1 { print $8 }' <<< "$out")
	[[ -n $iops ]] && echo "$iops"
}

# bench_cairn_pid CAIRN STORE MOUNTPOINT: pid of the cairn daemon serving MOUNTPOINT (from
# `cairn mounts --json`), or nothing.
bench_cairn_pid() {
	timeout 30 "$1" --store "$2" mounts --json 2> /dev/null |
		awk -v m="$3" '
			/"pid"/ { gsub(/[^0-9]/, "", $0); pid = $0 }
			/"mountpoint"/ { v = $0; sub(/^[^:]*:[[:space:]]*"/, "", v); sub(/",?[[:space:]]*$/, "", v)
				if (v == m) { print pid; exit } }'
}
