#!/usr/bin/env bash
# Mount benchmark: one real Debian root filesystem (debootstrap --variant=minbase bookworm, plus
# python3, plus a 1 GiB file of semi-compressible data at /bigfile), served side by side in the
# same run by: cairn (imported once into a store, then mounted), fuse-overlayfs and kernel
# overlayfs (lowerdir = the plain tree, fresh upper and work dirs), squashfuse_ll on a zstd
# squashfs of the tree, and the plain directory itself.
#
# Figures per tool (median of BENCH_RUNS runs):
#   mount      time of the mount command (after dropping the caches), every cold mount counted
#   walk       find MNT -printf '%s %m %u\n' > /dev/null
#   read-all   find MNT -type f -print0 | xargs -0 cat > /dev/null (every file, bigfile included)
#   seq        dd if=MNT/bigfile of=/dev/null bs=1M, MB/s (10^6 bytes)
#   rand       fio 4 KiB psync random reads of MNT/bigfile for BENCH_FIO_RUNTIME seconds, IOPS
#   RssAnon    of the FUSE daemon after the run (its last mount), from /proc/PID/status
# Cold = unmount, drop the page/dentry/inode caches (echo 3 > drop_caches), mount again, measure;
# warm = the same command again right after (rand warm: after cat bigfile, so the whole file has
# been read once). Each cold figure has its own fresh mount. fio runs with --invalidate=0 (its
# default would drop the page cache before every job).
#
# Environment:
#   CAIRN                  cairn binary (default: <repo>/build/tools/cairn)
#   CAIRN_BENCH_CACHE      where rootfs-mount is built once and kept (/var/cache/cairn-bench)
#   BENCH_RUNS             runs (3); the tool order rotates from run to run
#   BENCH_TOOLS            among: cairn fuse-overlayfs overlay squashfuse plain (all)
#   BENCH_MD               also write the results as markdown to this file
#   BENCH_CAIRN_CACHE_SIZE cairn mount --cache-size (256M); the RssAnon target is this + 16 MiB
#   BENCH_FIO_RUNTIME      seconds per fio job (10)
#   BENCH_TIMEOUT          seconds allowed to any one command that touches a mount (300)
#   BENCH_BIG_MIB          size of /bigfile in MiB (1024; changing it rebuilds the tree)
#   BENCH_PERF             a file: after the runs, perf record the cairn daemon during one more
#                          cold sequential read and write perf report's top there
#   BENCH_PREPARE_ONLY     1: build the cache and exit
#   BENCH_SUITE            Debian suite (bookworm); BENCH_MIRROR overrides the host's mirror
#   TMPDIR                 work directory parent (/tmp): the store, squashfs, upper dirs, mounts
# Needs root (debootstrap, chroot, mounts, drop_caches) and /dev/fuse.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"

CACHE=${CAIRN_BENCH_CACHE:-/var/cache/cairn-bench}
CAIRN=${CAIRN:-$repo/build/tools/cairn}
RUNS=${BENCH_RUNS:-3}
TOOLS=${BENCH_TOOLS:-cairn fuse-overlayfs overlay squashfuse plain}
SUITE=${BENCH_SUITE:-bookworm}
CAIRN_CACHE_SIZE=${BENCH_CAIRN_CACHE_SIZE:-256M}
FIO_RUNTIME=${BENCH_FIO_RUNTIME:-10}
TO=${BENCH_TIMEOUT:-300}
BIG_MIB=${BENCH_BIG_MIB:-1024}
T=$CACHE/rootfs-mount
BIG=bigfile

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || bench_die "BENCH_RUNS must be a positive integer, got '$RUNS'"
[[ $FIO_RUNTIME =~ ^[1-9][0-9]*$ ]] || bench_die "BENCH_FIO_RUNTIME must be a positive integer"
[[ $BIG_MIB =~ ^[1-9][0-9]*$ ]] || bench_die "BENCH_BIG_MIB must be a positive integer"
[[ $(id -u) == 0 ]] || bench_die "run as root (debootstrap, chroot, mounts, drop_caches)"

# bytes_of SIZE: 256M, 1G, 65536K or plain bytes -> bytes
bytes_of() {
	local s=$1 n
	n=${s%[KkMmGg]}
	[[ $n =~ ^[0-9]+$ ]] || bench_die "not a size: $s"
	case $s in
	*[Kk]) echo $((n << 10)) ;;
	*[Mm]) echo $((n << 20)) ;;
	*[Gg]) echo $((n << 30)) ;;
	*) echo "$n" ;;
	esac
}
CAIRN_CACHE_BYTES=$(bytes_of "$CAIRN_CACHE_SIZE")

WORK=
MOUNTED=() # every mountpoint this script may have mounted (cleanup unmounts what still is)
cleanup() {
	local rc=$? m
	trap - EXIT INT TERM
	for m in "${MOUNTED[@]}"; do
		if [[ $m == */cairn ]] && bench_is_mounted "$m" && [[ -x $CAIRN ]]; then
			timeout 60 "$CAIRN" --store "$WORK/store" umount "$m" > /dev/null 2>&1 || true
		fi
		bench_force_unmount "$m"
	done
	if [[ -n $WORK && -d $WORK ]]; then
		bench_unmount_under "$WORK"
		rm -rf --one-file-system "$WORK" || true
	fi
	# A chroot build interrupted half way may leave /proc mounted inside the cache.
	if [[ -d $CACHE ]]; then bench_unmount_under "$CACHE"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# Source tree (cached)

MIRROR=${BENCH_MIRROR:-$(bench_host_uri '/debian$')}
MIRROR=${MIRROR:-http://deb.debian.org/debian}

base_stamp_text() { printf 'debootstrap --variant=minbase %s %s apt-caches=cleaned\n' "$SUITE" "$MIRROR"; }
tree_stamp_text() {
	base_stamp_text
	printf 'python3 (apt-get install --no-install-recommends, %s main) apt-caches=cleaned\n' "$SUITE"
	printf '/%s: %d MiB, generator v1 (1/5 raw random, 4/5 log text; seed 20261127)\n' "$BIG" "$BIG_MIB"
}

clean_apt_caches() {
	find "$1/var/lib/apt/lists" "$1/var/cache/apt" -xdev -mindepth 1 -type f ! -name lock -delete
}

build_tree() {
	local added_resolv=0 v1=$CACHE/rootfs-v1
	rm -f "$T.stamp"
	bench_rm_tree "$T"
	if [[ -f $v1.stamp && $(cat "$v1.stamp") == "$(base_stamp_text)" ]]; then
		# import.sh's v1 is this very debootstrap: copying it saves the download
		bench_log "building $T from $v1 (the same debootstrap --variant=minbase $SUITE)"
		cp -a "$v1" "$T"
	else
		bench_log "building $T (debootstrap --variant=minbase $SUITE $MIRROR; a few minutes)"
		debootstrap --variant=minbase "$SUITE" "$T" "$MIRROR" > "$CACHE/mount-debootstrap.log" 2>&1 ||
			{ tail -n 20 "$CACHE/mount-debootstrap.log" >&2; bench_die "debootstrap failed (log: $CACHE/mount-debootstrap.log)"; }
		bench_unmount_under "$T"
	fi
	printf 'deb %s %s main\n' "$MIRROR" "$SUITE" > "$T/etc/apt/sources.list"
	printf '#!/bin/sh\nexit 101\n' > "$T/usr/sbin/policy-rc.d"
	chmod 755 "$T/usr/sbin/policy-rc.d"
	if [[ ! -e $T/etc/resolv.conf && -f /etc/resolv.conf ]]; then
		cp /etc/resolv.conf "$T/etc/resolv.conf"
		added_resolv=1
	fi
	bench_log "installing python3 in the tree"
	mount -t proc proc "$T/proc"
	chroot "$T" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C \
		DEBIAN_FRONTEND=noninteractive /bin/sh -ec '
			apt-get update -q
			apt-get -y -q --no-install-recommends install python3
			apt-get clean
		' > "$CACHE/mount-build.log" 2>&1 ||
		{ tail -n 20 "$CACHE/mount-build.log" >&2; bench_die "installing python3 failed (log: $CACHE/mount-build.log)"; }
	umount "$T/proc"
	rm -f "$T/usr/sbin/policy-rc.d"
	if ((added_resolv)); then rm -f "$T/etc/resolv.conf"; fi
	clean_apt_caches "$T"
	bench_log "writing /$BIG ($BIG_MIB MiB, semi-compressible; about a minute)"
	bench_bigfile_py > "$CACHE/bigfile-gen.py"
	chroot "$T" /usr/bin/env -i PATH=/usr/bin:/bin /usr/bin/python3 - $((BIG_MIB << 20)) \
		< "$CACHE/bigfile-gen.py" > "$T/$BIG" || bench_die "generating /$BIG failed"
	rm -f "$CACHE/bigfile-gen.py"
	chmod 644 "$T/$BIG"
	touch -d '2026-01-01 00:00:00 UTC' "$T/$BIG"
	tree_stamp_text > "$T.stamp"
}

prepare_cache() {
	mkdir -p "$CACHE"
	exec 9> "$CACHE/.lock"
	flock 9 # several benchmarks may start at once: one builds, the others wait
	if [[ ! -f $T.stamp || $(cat "$T.stamp") != "$(tree_stamp_text)" ]]; then build_tree; fi
	exec 9>&-
}

pkgs=(debootstrap:debootstrap flock:util-linux fusermount3:fuse3 fuse-overlayfs:fuse-overlayfs
	squashfuse_ll:squashfuse mksquashfs:squashfs-tools fio:fio)
[[ -n ${BENCH_PERF:-} ]] && pkgs+=(perf:linux-perf)
bench_need_pkgs "${pkgs[@]}"
[[ -c /dev/fuse ]] || bench_die "/dev/fuse is missing"
prepare_cache
if [[ ${BENCH_PREPARE_ONLY:-0} == 1 ]]; then
	bench_log "cache ready: $T"
	exit 0
fi

# ---------------------------------------------------------------------------------------------
# Setup: the cairn store and the squashfs image, made once per invocation

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cairn-bench-mount.XXXXXX")
mkdir -p "$WORK/mnt"
STORE=$WORK/store
SQFS=$WORK/tree.sqfs

declare -A R=()      # R[tool.metric] = values of every run, space separated
declare -A FAILED=() # FAILED[tool] = reason
declare -A INFO=()
rec() { R[$1.$2]+=" $3"; }
fail() { # TOOL WHAT [LOG]
	FAILED[$1]="$2${3:+: $(tail -n 3 "$3" 2> /dev/null | tr '\n' ' ')}"
	bench_log "$1: ${FAILED[$1]}"
	return 1
}

read -r -a tools <<< "$TOOLS"
for tool in "${tools[@]}"; do
	case $tool in
	cairn | fuse-overlayfs | overlay | squashfuse | plain) ;;
	*) bench_die "unknown tool in BENCH_TOOLS: $tool" ;;
	esac
done
has_tool() { [[ " $TOOLS " == *" $1 "* ]]; }

bench_log "measuring the tree"
TREE_FILES=$(bench_tree_files "$T")
TREE_BYTES=$(bench_tree_bytes "$T")
BIG_BYTES=$(stat -c %s "$T/$BIG")

if has_tool cairn; then
	if [[ ! -x $CAIRN ]]; then
		FAILED[cairn]="binary not found: $CAIRN"
	else
		bench_log "cairn: importing the tree"
		mkdir -p "$STORE"
		sync
		if bench_time t "$CAIRN" --store "$STORE" import "$T" --tag mount > "$WORK/import.log" 2>&1; then
			INFO[cairn.import]=$t
			INFO[cairn.store]=$(bench_du "$STORE")
		else
			fail cairn "import failed" "$WORK/import.log" || true
		fi
	fi
fi
if has_tool squashfuse; then
	bench_log "squashfuse: mksquashfs -comp zstd -Xcompression-level 3"
	sync
	if bench_time t mksquashfs "$T" "$SQFS" -comp zstd -Xcompression-level 3 -noappend -no-progress \
		-quiet > "$WORK/mksquashfs.log" 2>&1; then
		INFO[squashfuse.build]=$t
		INFO[squashfuse.image]=$(stat -c %s "$SQFS")
	else
		fail squashfuse "mksquashfs failed" "$WORK/mksquashfs.log" || true
	fi
fi

# ---------------------------------------------------------------------------------------------
# Mounting: mount_TOOL sets MNT (and PID for FUSE daemons); umount_TOOL undoes it.

MNT=
PID=

mount_cairn() {
	local m=$WORK/mnt/cairn
	mkdir -p "$m"
	MOUNTED+=("$m")
	timeout 120 "$CAIRN" --store "$STORE" mount mount "$m" --cache-size "$CAIRN_CACHE_SIZE" \
		> "$WORK/cairn-mount.log" 2>&1 || return
	MNT=$m
}
cairn_pid() { bench_cairn_pid "$CAIRN" "$STORE" "$1"; }
umount_cairn() {
	timeout 120 "$CAIRN" --store "$STORE" umount "$WORK/mnt/cairn" > "$WORK/cairn-umount.log" 2>&1 ||
		bench_force_unmount "$WORK/mnt/cairn"
}

fresh_overlay_dirs() { # NAME: fresh upper and work dirs under $WORK/NAME
	rm -rf --one-file-system "${WORK:?}/$1"
	mkdir -p "$WORK/$1/upper" "$WORK/$1/work"
}

mount_fuse-overlayfs() {
	local m=$WORK/mnt/fuse-overlayfs
	mkdir -p "$m"
	fresh_overlay_dirs fo
	MOUNTED+=("$m")
	timeout 120 fuse-overlayfs -o "lowerdir=$T,upperdir=$WORK/fo/upper,workdir=$WORK/fo/work" "$m" \
		> "$WORK/fo-mount.log" 2>&1 || return
	MNT=$m
}
umount_fuse-overlayfs() { umount_fuse "$WORK/mnt/fuse-overlayfs"; }

mount_overlay() {
	local m=$WORK/mnt/overlay
	mkdir -p "$m"
	fresh_overlay_dirs ovl
	MOUNTED+=("$m")
	timeout 120 mount -t overlay overlay -o "lowerdir=$T,upperdir=$WORK/ovl/upper,workdir=$WORK/ovl/work" \
		"$m" > "$WORK/ovl-mount.log" 2>&1 || return
	MNT=$m
}
umount_overlay() { timeout 60 umount "$WORK/mnt/overlay" || bench_force_unmount "$WORK/mnt/overlay"; }

mount_squashfuse() {
	local m=$WORK/mnt/squashfuse
	mkdir -p "$m"
	MOUNTED+=("$m")
	timeout 120 squashfuse_ll "$SQFS" "$m" > "$WORK/sq-mount.log" 2>&1 || return
	MNT=$m
}
umount_squashfuse() { umount_fuse "$WORK/mnt/squashfuse"; }

mount_plain() { MNT=$T; }
umount_plain() { :; }

# umount_fuse DIR: fusermount3 -u, then wait (10 s at most) for the daemon we saw to exit.
umount_fuse() {
	local i
	timeout 60 fusermount3 -u "$1" 2> /dev/null || bench_force_unmount "$1"
	if [[ -n $PID ]]; then
		for ((i = 0; i < 100; i++)); do
			[[ -d /proc/$PID ]] || break
			sleep 0.1
		done
	fi
}

find_pid() { # TOOL: the FUSE daemon's pid for $MNT, or nothing
	case $1 in
	cairn) cairn_pid "$MNT" ;;
	fuse-overlayfs | squashfuse) bench_pid_with_arg "$MNT" ;;
	esac
}

MOUNT_TOOL=
# cold_mount TOOL: unmount (if mounted), drop caches, mount (timed, recorded as mount).
cold_mount() {
	local tool=$1 t
	unmount_current
	bench_drop_caches
	PID=
	bench_time t "mount_$tool" || { fail "$tool" "mount failed" "$(mount_log "$tool")"; return 1; }
	MOUNT_TOOL=$tool
	[[ $tool == plain ]] || rec "$tool" mount "$(awk -v s="$t" 'BEGIN { printf "%.1f", s * 1000 }')"
	PID=$(find_pid "$tool")
	return 0
}
unmount_current() {
	[[ -n $MOUNT_TOOL ]] || return 0
	"umount_$MOUNT_TOOL" || true
	MOUNT_TOOL=
}
mount_log() {
	case $1 in
	cairn) echo "$WORK/cairn-mount.log" ;;
	fuse-overlayfs) echo "$WORK/fo-mount.log" ;;
	overlay) echo "$WORK/ovl-mount.log" ;;
	squashfuse) echo "$WORK/sq-mount.log" ;;
	esac
}

# ---------------------------------------------------------------------------------------------
# Measurements (every command that touches a mount runs under timeout)

walk() { timeout "$TO" find "$1" -printf '%s %m %u\n' > /dev/null; }
read_all() {
	# shellcheck disable=SC2016 # expanded by the inner shell
	timeout "$TO" bash -c 'set -o pipefail; find "$1" -type f -print0 | xargs -0 cat > /dev/null' _ "$1"
}
seq_read() { timeout "$TO" dd if="$1/$BIG" of=/dev/null bs=1M status=none; }
# rand_read MNT VAR: fio random 4 KiB reads; IOPS in VAR
rand_read() {
	local iops
	iops=$(bench_fio_randread "$1/$BIG" "$FIO_RUNTIME" "$TO" "$WORK/fio.err") || return
	printf -v "$2" '%s' "$iops"
}

# After each phase of a FUSE tool: its daemon's RssAnon (the last one is "after the run"), and
# for cairn the mount's counters.
after_phase() { # TOOL RUN PHASE
	local rss
	[[ -n $PID ]] || return 0
	rss=$(bench_rss_anon "$PID")
	R[$1.rss_last]=$rss
	rec "$1" rss_phase "$rss"
	if [[ $1 == cairn ]]; then
		timeout 30 "$CAIRN" --store "$STORE" stats "$MNT" --json > "$WORK/stats.$2.$3.json" 2> /dev/null || true
	fi
}

# listing DIR OUT: what a walk sees, in a stable order, into OUT (for the correctness check;
# a directory's size is the filesystem's business: left out)
listing() {
	timeout "$TO" find "$1" -printf '%P\t%y\t%s\t%m\t%u\t%g\t%l\n' |
		awk -F '\t' -v OFS='\t' '$2 == "d" { $3 = "-" } { print }' | LC_ALL=C sort > "$2"
}

run_tool() { # TOOL RUN
	local tool=$1 run=$2 t iops
	# walk
	cold_mount "$tool" || return
	if [[ $run == 1 && $tool != plain ]]; then
		listing "$MNT" "$WORK/listing.$tool" || echo "listing failed" > "$WORK/listing.$tool"
		cold_mount "$tool" || return
	fi
	bench_time t walk "$MNT" || { fail "$tool" "cold walk failed (exit $?)"; return 1; }
	rec "$tool" walk_cold "$t"
	bench_time t walk "$MNT" || { fail "$tool" "warm walk failed (exit $?)"; return 1; }
	rec "$tool" walk_warm "$t"
	after_phase "$tool" "$run" walk
	# read every file
	cold_mount "$tool" || return
	bench_time t read_all "$MNT" || { fail "$tool" "cold read-all failed (exit $?)"; return 1; }
	rec "$tool" all_cold "$t"
	bench_time t read_all "$MNT" || { fail "$tool" "warm read-all failed (exit $?)"; return 1; }
	rec "$tool" all_warm "$t"
	after_phase "$tool" "$run" readall
	# sequential
	cold_mount "$tool" || return
	bench_time t seq_read "$MNT" || { fail "$tool" "cold sequential read failed (exit $?)"; return 1; }
	rec "$tool" seq_cold "$(bench_mbps "$BIG_BYTES" "$t")"
	after_phase "$tool" "$run" seq_cold
	bench_time t seq_read "$MNT" || { fail "$tool" "warm sequential read failed (exit $?)"; return 1; }
	rec "$tool" seq_warm "$(bench_mbps "$BIG_BYTES" "$t")"
	after_phase "$tool" "$run" seq
	# random
	cold_mount "$tool" || return
	rand_read "$MNT" iops || { fail "$tool" "cold fio failed" "$WORK/fio.err"; return 1; }
	rec "$tool" rand_cold "$iops"
	seq_read "$MNT" || { fail "$tool" "reading $BIG before warm fio failed"; return 1; }
	rand_read "$MNT" iops || { fail "$tool" "warm fio failed" "$WORK/fio.err"; return 1; }
	rec "$tool" rand_warm "$iops"
	after_phase "$tool" "$run" rand
	unmount_current
}

for ((run = 1; run <= RUNS; run++)); do
	n=${#tools[@]}
	for ((k = 0; k < n; k++)); do
		tool=${tools[$(((k + run - 1) % n))]}
		[[ -n ${FAILED[$tool]:-} ]] && continue
		bench_log "run $run/$RUNS: $tool"
		run_tool "$tool" "$run" || true
		unmount_current
	done
done

# Optional: where the cairn daemon spends a cold sequential read.
if [[ -n ${BENCH_PERF:-} ]] && has_tool cairn && [[ -z ${FAILED[cairn]:-} ]]; then
	bench_log "perf: cairn daemon during a cold sequential read"
	if cold_mount cairn && [[ -n $PID ]]; then
		perf record -F 999 -g -p "$PID" -o "$WORK/perf.data" > "$WORK/perf.log" 2>&1 &
		perf_pid=$!
		sleep 1
		ticks0=$(awk '{ print $14 + $15 }' "/proc/$PID/stat")
		bench_time t seq_read "$MNT" || true
		ticks1=$(awk '{ print $14 + $15 }' "/proc/$PID/stat")
		kill -INT "$perf_pid" 2> /dev/null || true
		wait "$perf_pid" || true
		{
			echo "# perf of the cairn daemon (pid $PID) during a cold dd of /$BIG: $(bench_mbps "$BIG_BYTES" "$t") MB/s in $t s;"
			echo "# the daemon used $(awk -v d=$((ticks1 - ticks0)) -v h="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", d / h }') s of CPU (user + system)"
			echo "# by shared object:"
			timeout 120 perf report -i "$WORK/perf.data" --stdio --no-children --sort dso \
				--percent-limit 0.5 -g none 2> /dev/null | grep -v '^#' | grep -v '^$' | head -n 12
			echo "# by symbol:"
			timeout 120 perf report -i "$WORK/perf.data" --stdio --no-children --sort dso,symbol \
				--percent-limit 0.5 -g none 2> /dev/null | grep -v '^#' | grep -v '^$' | head -n 40
		} > "$BENCH_PERF" || true
		timeout 30 "$CAIRN" --store "$STORE" stats "$MNT" --json > "$BENCH_PERF.stats.json" 2> /dev/null || true
		bench_log "perf report written to $BENCH_PERF"
	fi
	unmount_current
fi

# ---------------------------------------------------------------------------------------------
# Report

med() { # TOOL METRIC
	local -a v
	read -r -a v <<< "${R[$1.$2]:-}"
	if [[ -n ${FAILED[$1]:-} || ${#v[@]} == 0 ]]; then echo n/a; else bench_median "${v[@]}"; fi
}
mib() { [[ $1 == n/a || -z $1 ]] && { echo n/a; return; }; awk -v b="$1" 'BEGIN { printf "%.1f\n", b / 1048576 }'; }
maxof() { # VALUES...: the largest, or n/a
	local v
	for v in "$@"; do [[ $v == n/a || -z $v ]] || echo "$v"; done | sort -g | tail -n 1 | grep . || echo n/a
}

# num DECIMALS VALUE: VALUE rounded, or n/a
num() { [[ $2 == n/a || -z $2 ]] && { echo n/a; return; }; awk -v d="$1" -v v="$2" 'BEGIN { printf "%.*f\n", d, v }'; }

declare -A M=()
metrics=(mount walk_cold walk_warm all_cold all_warm seq_cold seq_warm rand_cold rand_warm)
for tool in "${tools[@]}"; do
	for m in "${metrics[@]}"; do M[$tool.$m]=$(med "$tool" "$m"); done
	M[$tool.rss]=n/a
	M[$tool.rss_max]=n/a
	if [[ -z ${FAILED[$tool]:-} && -n ${R[$tool.rss_last]:-} ]]; then
		M[$tool.rss]=${R[$tool.rss_last]}
		read -r -a v <<< "${R[$tool.rss_phase]}"
		M[$tool.rss_max]=$(maxof "${v[@]}")
	fi
done
label() {
	case $1 in
	overlay) echo "overlayfs (kernel)" ;;
	squashfuse) echo "squashfuse_ll" ;;
	*) echo "$1" ;;
	esac
}

bench_table_reset
bench_table_row tool "mount ms" "walk cold s" "walk warm s" "read-all cold s" "read-all warm s" \
	"seq cold MB/s" "seq warm MB/s" "rand cold IOPS" "rand warm IOPS" "RssAnon MiB"
for tool in "${tools[@]}"; do
	bench_table_row "$(label "$tool")" "$(num 0 "${M[$tool.mount]}")" \
		"$(num 3 "${M[$tool.walk_cold]}")" "$(num 3 "${M[$tool.walk_warm]}")" \
		"$(num 3 "${M[$tool.all_cold]}")" "$(num 3 "${M[$tool.all_warm]}")" \
		"$(num 0 "${M[$tool.seq_cold]}")" "$(num 0 "${M[$tool.seq_warm]}")" \
		"$(num 0 "${M[$tool.rand_cold]}")" "$(num 0 "${M[$tool.rand_warm]}")" "$(mib "${M[$tool.rss]}")"
done

m_or_na() { [[ ${M[$1]+set} ]] && echo "${M[$1]}" || echo n/a; }

# target LABEL VALUE OP TARGET: one "label: value (target OP target: met|MISSED)" line
target() {
	local verdict=n/a
	if [[ $2 != n/a && -n $2 ]]; then
		if awk -v a="$2" -v b="$4" -v op="$3" 'BEGIN {
				exit !((op == "<" && a < b) || (op == "<=" && a <= b) || (op == ">" && a > b) || (op == ">=" && a >= b)) }'; then
			verdict=met
		else
			verdict=MISSED
		fi
	fi
	TARGETS+=("$1: $2 (target $3 $4: $verdict)")
	# the same as a summary row for tests/bench/run.sh, when METRIC is given
	[[ -n ${5:-} ]] || return 0
	local peer=- cell="$3 $4"
	if [[ ${6:--} != - ]]; then
		peer="$(label "$6") $(fmtv "$5" "$(m_or_na "$6.$5")")"
		cell="$3 $4 x $(label "$6")"
	fi
	bench_result mount "$(mname "$5")" "$(fmtv "$5" "$(m_or_na "cairn.$5")")" "$peer" \
		"$([[ ${6:--} == - ]] && echo - || echo "$2")" "$cell" "$verdict"
}
# mname METRIC, fmtv METRIC VALUE: a metric's name with its unit, a value as the table shows it
mname() {
	case $1 in
	walk_cold) echo "walk cold s" ;; walk_warm) echo "walk warm s" ;;
	all_cold) echo "read-all cold s" ;; all_warm) echo "read-all warm s" ;;
	seq_cold) echo "seq read cold MB/s" ;; rand_cold) echo "rand 4k read cold IOPS" ;;
	rss) echo "daemon RssAnon MiB (cache $CAIRN_CACHE_SIZE)" ;; *) echo "$1" ;;
	esac
}
fmtv() {
	case $1 in
	seq_* | rand_* | mount) num 0 "$2" ;;
	rss) mib "$2" ;;
	*) num 3 "$2" ;;
	esac
}

TARGETS=()
for peer in fuse-overlayfs squashfuse; do
	for m in walk_cold walk_warm all_cold all_warm; do
		case $m in
		walk_cold) what="cold walk" ;; walk_warm) what="warm walk" ;;
		all_cold) what="cold read-all" ;; all_warm) what="warm read-all" ;;
		esac
		target "$what time, cairn / $(label $peer)" \
			"$(bench_ratio "$(m_or_na cairn.$m)" "$(m_or_na $peer.$m)")" "<" 1 "$m" "$peer"
	done
	target "cold sequential MB/s, cairn / $(label $peer)" \
		"$(bench_ratio "$(m_or_na cairn.seq_cold)" "$(m_or_na $peer.seq_cold)")" ">" 1 seq_cold "$peer"
	# vs fuse-overlayfs the target is 2x (below); > 1 is listed but not summarized twice
	target "cold random IOPS, cairn / $(label $peer)" \
		"$(bench_ratio "$(m_or_na cairn.rand_cold)" "$(m_or_na $peer.rand_cold)")" ">" 1 \
		"$([[ $peer == squashfuse ]] && echo rand_cold)" "$peer"
done
target "warm walk time, cairn / overlayfs (kernel)" \
	"$(bench_ratio "$(m_or_na cairn.walk_warm)" "$(m_or_na overlay.walk_warm)")" "<=" 1.1 walk_warm overlay
target "warm read-all time, cairn / overlayfs (kernel)" \
	"$(bench_ratio "$(m_or_na cairn.all_warm)" "$(m_or_na overlay.all_warm)")" "<=" 1.1 all_warm overlay
target "cold sequential MB/s, cairn" "$(num 0 "$(m_or_na cairn.seq_cold)")" ">=" 1000 seq_cold -
target "cold random IOPS, cairn / fuse-overlayfs" \
	"$(bench_ratio "$(m_or_na cairn.rand_cold)" "$(m_or_na fuse-overlayfs.rand_cold)")" ">=" 2 rand_cold fuse-overlayfs
target "cairn RssAnon MiB after the run" "$(mib "$(m_or_na cairn.rss)")" "<=" \
	"$(awk -v b="$CAIRN_CACHE_BYTES" 'BEGIN { printf "%.1f", b / 1048576 + 16 }')" rss -

# cairn's counters per phase, last run
cairn_counters() {
	local f p
	for p in walk readall seq_cold seq rand; do
		f=$WORK/stats.$RUNS.$p.json
		[[ -s $f ]] || continue
		printf '%s: ' "$p"
		tr -d '\n' < "$f" | grep -o '"\(hits\|misses\|evictions\|inserts\|bytes\|entries\|reads\|prefetches\|io_errors\|inodes\)":[0-9]*' |
			tr -d '"' | tr '\n' ' '
		echo
	done
}

report() { # text|md
	local fmt=$1 pre='' tool
	[[ $fmt == md ]] && pre='- '
	printf '%s\n' "${pre}tree: debootstrap --variant=minbase $SUITE + python3 + /$BIG ($(bench_human "$BIG_BYTES"), semi-compressible): $TREE_FILES files, $(bench_human "$TREE_BYTES") of file data"
	printf '%s\n' "${pre}median of $RUNS run(s); $(nproc) CPUs, $(uname -r), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); cold = unmount, drop_caches, mount; warm = again"
	printf '%s\n' "${pre}walk: find -printf '%s %m %u'; read-all: find -type f | xargs cat (bigfile included); seq: dd bs=1M of /$BIG; rand: fio randread 4k psync ${FIO_RUNTIME}s, invalidate=0 (warm: after one full read)"
	if has_tool cairn; then
		printf '%s\n' "${pre}cairn: $CAIRN, --cache-size $CAIRN_CACHE_SIZE; import $(m_or_na_info cairn.import) s, store $(bench_human "$(m_or_na_info cairn.store)")"
	fi
	if has_tool squashfuse; then
		printf '%s\n' "${pre}squashfs: mksquashfs -comp zstd -Xcompression-level 3 (128 KiB blocks) $(m_or_na_info squashfuse.build) s, $(bench_human "$(m_or_na_info squashfuse.image)"); $(squashfuse_ll --version 2>&1 | head -n 1)"
	fi
	printf '%s\n' "${pre}$(fio --version)$(has_tool fuse-overlayfs && echo ", $(fuse-overlayfs --version 2>&1 | grep -m1 '^fuse-overlayfs')")"
	echo
	if [[ $fmt == md ]]; then bench_table_md; else bench_table_print; fi
	echo
	for l in "${TARGETS[@]}"; do printf '%s%s\n' "$pre" "$l"; done
	for tool in "${tools[@]}"; do
		[[ ${M[$tool.rss_max]} == n/a ]] && continue
		printf '%s%s RssAnon: %s MiB after the run, %s MiB at most after any phase\n' "$pre" "$(label "$tool")" \
			"$(mib "${M[$tool.rss]}")" "$(mib "${M[$tool.rss_max]}")"
	done
	for tool in "${tools[@]}"; do
		[[ -f $WORK/listing.$tool ]] || continue
		if ! cmp -s "$WORK/listing.$tool" "$WORK/listing.plain"; then
			printf '%s%s: what a walk sees (path type size mode owner group link) differs from the plain tree: %s\n' \
				"$pre" "$(label "$tool")" "$(diff "$WORK/listing.plain" "$WORK/listing.$tool" |
					grep '^[<>]' | head -n 4 | tr '\t\n' ' |' || true)"
		fi
	done
	for tool in "${tools[@]}"; do
		[[ -n ${FAILED[$tool]:-} ]] && printf '%s%s: n/a (%s)\n' "$pre" "$(label "$tool")" "${FAILED[$tool]}"
	done
	if [[ $fmt == text ]] && has_tool cairn && [[ -z ${FAILED[cairn]:-} ]]; then
		echo
		echo "cairn stats --json at the end of each phase (run $RUNS):"
		cairn_counters
	fi
	return 0
}
m_or_na_info() { [[ ${INFO[$1]+set} ]] && echo "${INFO[$1]}" || echo n/a; }
listing "$T" "$WORK/listing.plain"

echo
report text
if [[ -n ${BENCH_MD:-} ]]; then
	{
		echo "### Mount benchmark ($(date -u +%Y-%m-%d))"
		echo
		report md
	} > "$BENCH_MD"
	bench_log "markdown written to $BENCH_MD"
fi
