#!/usr/bin/env bash
# Density benchmark (issue 13): many writable container roots on one platform.
#
# The tree is mount.sh's Debian minbase + python3 (without its /bigfile). For each system and
# each count N in BENCH_DENSITY_COUNTS (1 10 100), side by side in one run:
#   overlay          kernel overlayfs, one lowerdir (the plain tree), N upper/work dirs
#   fuse-overlayfs   N fuse-overlayfs processes over the same lowerdir
#   cairn-isolated   N 'cairn mount --isolated --upper' (a daemon each)
#   cairn            N 'cairn mount --upper' (the store's one daemon)
#   cairn-ro         N 'cairn mount --ro' (one daemon, and one FUSE session: binds of the first)
# all N mounted writable on platform 'dens' (cairn) or the tree (the peers). Then the page,
# dentry and inode caches are dropped and each mount's /usr is read whole (tar | cat), mount 1
# first, then 2..N. Figures:
#   rss        the daemons' RssAnon summed, MiB, after the reads (overlay: none)
#   pagecache  page cache held for the mounts' /usr after the reads, MiB (fincore): each mount's
#              own pages, plus the lower's (overlay, fuse-overlayfs) or the store's packs (cairn)
#   procs, threads   the daemons and their threads
#   first      seconds to read mount 1's /usr (cold); others: the median of mounts 2..N
#   more       ms to mount one more container (the command's wall time, usable when it returns)
#   upgrade    ms of 'cairn upgrade dens v2' with the N+1 mounts (cairn systems only): the
#              wall time of the command, its synced commit and every mount's switch included
# Targets (cairn): one process; rss <= cache + 64 MiB at 10 mounts, + 200 MiB at 100; threads
# <= 32 at 100; mounts 2..10 read /usr >= 2x faster than mount 1; one more mount <= 10 ms.
# (The upgrade target, 10 mounts of 10^5 files <= 15 ms, is switch.sh's 10-mount row.)
# A row during which another process dropped the caches (drop_pagecache in /proc/vmstat: a
# benchmark running beside this one) is measured again, up to three times, and marked when it
# never ran undisturbed (BENCH_DENSITY_TRIES, 3, bounds the tries: 1 at 100 mounts keeps a run
# under half an hour on two cores).
#
# Environment: CAIRN, CAIRN_BENCH_CACHE (/var/cache/cairn-bench), BENCH_DENSITY_COUNTS,
# BENCH_SYSTEMS (overlay fuse-overlayfs cairn-isolated cairn cairn-ro), BENCH_DENSITY_TRIES (3),
# BENCH_CAIRN_CACHE_SIZE (256M),
# BENCH_TIMEOUT (600 s per command), BENCH_MD, TMPDIR. cairn-isolated at a count whose caches
# could not fit in MemAvailable (N x (cache + 64 MiB)) is skipped and says so. Needs root.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"

CACHE=${CAIRN_BENCH_CACHE:-/var/cache/cairn-bench}
CAIRN=${CAIRN:-$repo/build/tools/cairn}
COUNTS=${BENCH_DENSITY_COUNTS:-1 10 100}
SYSTEMS=${BENCH_SYSTEMS:-overlay fuse-overlayfs cairn-isolated cairn cairn-ro}
CSIZE=${BENCH_CAIRN_CACHE_SIZE:-256M}
TO=${BENCH_TIMEOUT:-600}
TRIES=${BENCH_DENSITY_TRIES:-3}
SRC=$CACHE/rootfs-mount
T=$CACHE/rootfs-density

[[ -x $CAIRN ]] || bench_die "no cairn binary at $CAIRN"
[[ $(id -u) == 0 ]] || bench_die "run as root (mounts, drop_caches)"
[[ -n ${EPOCHREALTIME:-} ]] || bench_die "needs bash >= 5 (EPOCHREALTIME)"
bench_need_pkgs fuse-overlayfs:fuse-overlayfs fusermount3:fuse3 flock:util-linux fincore:util-linux
case $CSIZE in
*G) CBYTES=$((${CSIZE%G} << 30)) ;; *M) CBYTES=$((${CSIZE%M} << 20)) ;; *) CBYTES=$CSIZE ;;
esac

# The tree: mount.sh's, without /bigfile (built once, under the cache's lock)
prepare() {
	mkdir -p "$CACHE"
	if [[ ! -f $SRC.stamp ]]; then
		bench_log "building mount.sh's tree first"
		BENCH_PREPARE_ONLY=1 bash "$here/mount.sh" >&2
	fi
	exec 9> "$CACHE/.lock"
	flock 9
	if [[ ! -f $T.stamp || $(cat "$T.stamp") != "$(cat "$SRC.stamp") minus /bigfile" ]]; then
		bench_log "copying $SRC to $T without /bigfile"
		bench_rm_tree "$T"
		mkdir -p "$T"
		tar -C "$SRC" --exclude=./bigfile -cf - . | tar -C "$T" -xpf -
		printf '%s minus /bigfile\n' "$(cat "$SRC.stamp")" > "$T.stamp"
	fi
	exec 9>&-
}
prepare
USR_BYTES=$(bench_tree_bytes "$T/usr")
USR_FILES=$(bench_tree_files "$T/usr")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cairn-density.XXXXXX")
STORE=$WORK/store
MNTS=() # every mountpoint this run made, for cleanup
cleanup() {
	local rc=$? m p
	set +e
	for ((i = ${#MNTS[@]} - 1; i >= 0; i--)); do
		m=${MNTS[i]}
		bench_is_mounted "$m" || continue
		timeout 30 "$CAIRN" --store "$STORE" umount "$m" > /dev/null 2>&1
		bench_force_unmount "$m"
	done
	for p in $(pgrep -f -- "--store $STORE " || true); do kill "$p" 2> /dev/null; done
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

bench_log "store: importing $T (v1) and a one-file layer on it (v2)"
"$CAIRN" --store "$STORE" import "$T" --tag v1 > /dev/null
mkdir -p "$WORK/layer/usr/share/doc/cairn-density"
echo "version 2" > "$WORK/layer/usr/share/doc/cairn-density/VERSION"
"$CAIRN" --store "$STORE" import "$WORK/layer" --on v1 --tag v2 > /dev/null
cairn() { timeout "$TO" "$CAIRN" --store "$STORE" "$@"; }

# mount_one SYSTEM DIR UPPER: one writable mount of the tree (v1 / platform dens)
mount_one() {
	local sys=$1 d=$2 u=$3
	mkdir -p "$d"
	MNTS+=("$d")
	case $sys in
	overlay)
		mkdir -p "$u/upper" "$u/work"
		timeout "$TO" mount -t overlay overlay -o "lowerdir=$T,upperdir=$u/upper,workdir=$u/work" "$d"
		;;
	fuse-overlayfs)
		mkdir -p "$u/upper" "$u/work"
		timeout "$TO" fuse-overlayfs -o "lowerdir=$T,upperdir=$u/upper,workdir=$u/work,allow_other" "$d"
		;;
	cairn-isolated) cairn mount dens "$d" --upper "$u" --isolated --cache-size "$CSIZE" ;;
	cairn) cairn mount dens "$d" --upper "$u" --cache-size "$CSIZE" ;;
	cairn-ro) cairn mount dens "$d" --ro --cache-size "$CSIZE" ;;
	esac
}

umount_one() {
	case $1 in
	cairn*) cairn umount "$2" > /dev/null 2>&1 || bench_force_unmount "$2" ;;
	*) timeout "$TO" umount "$2" 2> /dev/null || bench_force_unmount "$2" ;;
	esac
}

# daemon pids of the system's mounts under DIR
daemons() {
	case $1 in
	overlay) ;;
	fuse-overlayfs) for d in "$2"/m*; do bench_pid_with_arg "$d"; done | sort -u ;;
	cairn*) cairn mounts --json | python3 -c '
import json, sys
print("\n".join(sorted({str(m["pid"]) for m in json.load(sys.stdin) if m["state"] == "serving"})))' ;;
	esac
}

# Page cache held for the mounts' /usr, from fincore after the reads (the machine's Cached
# would count other work too): each mount's own pages (a FUSE mount has its own page cache)
# plus what its files come from: the lower /usr (overlay, whose mounts share the lower's pages;
# fuse-overlayfs) or the store's pack files (cairn).
resident_mib() { # FILE...: resident bytes summed, MiB
	xargs -0 -r fincore -b -n -o RES 2> /dev/null | awk '{ s += $1 } END { printf "%d\n", s / 1048576 }'
}
pagecache_mib() { # SYSTEM DIR N
	local sys=$1 dir=$2 n=$3 total=0 i
	case $sys in
	overlay) find "$T/usr" -type f -print0 | resident_mib ;;
	cairn-ro) # one session: mount 1's pages are every mount's
		echo $(($(find "$dir/m1/usr" -type f -print0 | resident_mib) +
			$(find "$STORE/packs" -type f -print0 | resident_mib))) ;;
	*)
		for i in $(seq 1 "$n"); do
			total=$((total + $(find "$dir/m$i/usr" -type f -print0 | resident_mib)))
		done
		if [[ $sys == fuse-overlayfs ]]; then
			total=$((total + $(find "$T/usr" -type f -print0 | resident_mib)))
		else
			total=$((total + $(find "$STORE/packs" -type f -print0 | resident_mib)))
		fi
		echo "$total"
		;;
	esac
}
drops() { awk '$1 == "drop_pagecache" { print $2 }' /proc/vmstat; } # drop_caches writes so far
mem_avail_mib() { awk '$1 == "MemAvailable:" { print int($2 / 1024) }' /proc/meminfo; }
read_usr() { tar -C "$1/usr" -cf - . | cat > /dev/null; }

declare -A R=() # R[sys,n,figure]
declare -A B=() # a row's figures from its least disturbed try
for n in $COUNTS; do
	for sys in $SYSTEMS; do
		if [[ $sys == cairn-isolated ]] &&
			(($(mem_avail_mib) < n * ((CBYTES >> 20) + 64) + 2048)); then
			bench_log "$sys x $n: skipped ($n caches of $CSIZE do not fit in $(mem_avail_mib) MiB available)"
			R[$sys,$n,skip]="needs $((n * ((CBYTES >> 20) + 64))) MiB"
			continue
		fi
		best=-1
		for try in $(seq 1 "$TRIES"); do
			dir=$WORK/$sys-$n
			mkdir -p "$dir"
			"$CAIRN" --store "$STORE" upgrade dens v1 > /dev/null
			bench_log "$sys x $n: mounting"
			for i in $(seq 1 "$n"); do mount_one "$sys" "$dir/m$i" "$dir/u$i"; done
			bench_drop_caches
			drops0=$(drops)
			bench_log "$sys x $n: reading /usr of mount 1 (cold)"
			t0=$EPOCHREALTIME
			read_usr "$dir/m1"
			R[$sys,$n,first]=$(awk -v ms="$(bench_ms_since "$t0")" 'BEGIN { printf "%.2f", ms / 1000 }')
			others=()
			for i in $(seq 2 "$n"); do
				t0=$EPOCHREALTIME
				read_usr "$dir/m$i"
				others+=("$(awk -v ms="$(bench_ms_since "$t0")" 'BEGIN { printf "%.2f", ms / 1000 }')")
			done
			R[$sys,$n,others]=$(bench_median "${others[@]}")
			R[$sys,$n,pagecache]=$(pagecache_mib "$sys" "$dir" "$n")
			# another process's drop_caches (a benchmark beside this one) makes the later reads
			# cold again and empties what is counted: such a row is measured again
			disturbed=$(($(drops) - drops0))
			rss=0 thr=0 procs=0
			for p in $(daemons "$sys" "$dir"); do
				r=$(bench_rss_anon "$p")
				[[ $r == n/a ]] || rss=$((rss + r))
				thr=$((thr + $(awk '/^Threads:/ { print $2 }' "/proc/$p/status")))
				procs=$((procs + 1))
			done
			R[$sys,$n,rss]=$((rss >> 20))
			R[$sys,$n,threads]=$thr
			R[$sys,$n,procs]=$procs
			t0=$EPOCHREALTIME
			mount_one "$sys" "$dir/m$((n + 1))" "$dir/u$((n + 1))"
			stat "$dir/m$((n + 1))/usr" > /dev/null
			R[$sys,$n,more]=$(bench_ms_since "$t0")
			if [[ $sys == cairn* ]]; then
				t0=$EPOCHREALTIME
				cairn upgrade dens v2 > "$WORK/up.out"
				R[$sys,$n,upgrade]=$(bench_ms_since "$t0")
				sw=$(grep -c ': switched ' "$WORK/up.out" || true)
				[[ $sw == $((n + 1)) ]] || bench_log "$sys x $n: the upgrade switched $sw of $((n + 1)) mounts"
			fi
			bench_log "$sys x $n: first ${R[$sys,$n,first]} s, others ${R[$sys,$n,others]} s," \
				"rss ${R[$sys,$n,rss]} MiB, page cache +${R[$sys,$n,pagecache]} MiB," \
				"$procs procs, $thr threads, one more ${R[$sys,$n,more]} ms, upgrade ${R[$sys,$n,upgrade]:-n/a} ms"
			for i in $(seq "$((n + 1))" -1 1); do umount_one "$sys" "$dir/m$i"; done
			if [[ $sys == cairn* ]]; then
				for _ in $(seq 1 50); do [[ -z $(daemons cairn "$dir") ]] && break; sleep 0.1; done
			fi
			rm -rf "$dir"
			if ((disturbed == 0)); then
				unset "R[$sys,$n,disturbed]"
				break
			fi
			bench_log "$sys x $n: the caches were dropped $disturbed time(s) by another process" \
				"during the reads$( ((try < TRIES)) && echo ': measuring again')"
			R[$sys,$n,disturbed]=1
			# the figures kept are those of the least disturbed try
			if ((best < 0 || disturbed < best)); then
				best=$disturbed
				for f in first others pagecache rss threads procs more upgrade; do
					B[$f]=${R[$sys,$n,$f]:-}
				done
			else
				for f in first others pagecache rss threads procs more upgrade; do
					R[$sys,$n,$f]=${B[$f]}
				done
			fi
		done
	done
done

# --- report ---------------------------------------------------------------------------------
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
report() {
	printf 'Density: %s (/usr: %s files, %s), cache %s, %s, load %s\n\n' "$(cat "$T.stamp" | head -n 1)" \
		"$USR_FILES" "$(bench_human "$USR_BYTES")" "$CSIZE" "$(date -u '+%Y-%m-%d')" "$LOAD"
	printf '| mounts | system | procs | threads | RssAnon MiB | page cache MiB | first /usr s | others s (median) | first/others | one more ms | upgrade ms |\n'
	printf '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n'
	for n in $COUNTS; do
		for sys in $SYSTEMS; do
			if [[ -n ${R[$sys,$n,skip]:-} ]]; then
				printf '| %s | %s | skipped: %s |||||||||\n' "$n" "$sys" "${R[$sys,$n,skip]}"
				continue
			fi
			printf '| %s | %s%s | %s | %s | %s | %s | %s | %s | %s | %.1f | %s |\n' "$n" "$sys" \
				"${R[$sys,$n,disturbed]:+ (caches dropped by another process)}" \
				"${R[$sys,$n,procs]}" "${R[$sys,$n,threads]}" "${R[$sys,$n,rss]}" \
				"${R[$sys,$n,pagecache]}" "${R[$sys,$n,first]}" "${R[$sys,$n,others]}" \
				"$(bench_ratio "${R[$sys,$n,first]}" "${R[$sys,$n,others]}")" "${R[$sys,$n,more]}" \
				"$(if [[ -n ${R[$sys,$n,upgrade]:-} ]]; then printf '%.1f' "${R[$sys,$n,upgrade]}"; else echo -; fi)"
		done
	done
}
report | tee "${BENCH_MD:-/dev/null}"

# targets, for tests/bench/run.sh's table
target() { # metric value op target peers
	local v
	v=$(bench_verdict "$2" "$3" "$4")
	printf -- '- %s: %s (target %s %s: %s)\n' "$1" "$2" "$3" "$4" "$v"
	bench_result density "$1" "$2" "${5:--}" - "$3 $4" "$v"
}
{
	echo
	for n in $COUNTS; do
		[[ -n ${R[cairn,$n,procs]:-} ]] || continue
		target "cairn processes, $n mounts" "${R[cairn,$n,procs]}" "<=" 1 \
			"fuse-overlayfs ${R[fuse-overlayfs,$n,procs]:-n/a}; cairn-isolated ${R[cairn-isolated,$n,procs]:-n/a}"
		case $n in
		10) target "cairn RssAnon MiB, 10 mounts" "${R[cairn,$n,rss]}" "<=" $(((CBYTES >> 20) + 64)) \
			"cairn-isolated ${R[cairn-isolated,$n,rss]:-n/a}; fuse-overlayfs ${R[fuse-overlayfs,$n,rss]:-n/a}" ;;
		100) target "cairn RssAnon MiB, 100 mounts" "${R[cairn,$n,rss]}" "<=" $(((CBYTES >> 20) + 200)) \
			"cairn-isolated ${R[cairn-isolated,$n,rss]:-n/a}; fuse-overlayfs ${R[fuse-overlayfs,$n,rss]:-n/a}"
			target "cairn threads, 100 mounts" "${R[cairn,$n,threads]}" "<=" 32 \
				"fuse-overlayfs ${R[fuse-overlayfs,$n,threads]:-n/a}" ;;
		esac
		if ((n >= 10)); then
			target "cairn first / others /usr read time, $n mounts" \
				"$(bench_ratio "${R[cairn,$n,first]}" "${R[cairn,$n,others]}")" ">=" 2 \
				"overlay $(bench_ratio "${R[overlay,$n,first]:-n/a}" "${R[overlay,$n,others]:-n/a}"); fuse-overlayfs $(bench_ratio "${R[fuse-overlayfs,$n,first]:-n/a}" "${R[fuse-overlayfs,$n,others]:-n/a}")"
		fi
		target "cairn one more mount ms, $n mounts" "${R[cairn,$n,more]}" "<=" 10 \
			"overlay ${R[overlay,$n,more]:-n/a}; fuse-overlayfs ${R[fuse-overlayfs,$n,more]:-n/a}"
	done
} | tee -a "${BENCH_MD:-/dev/null}"
