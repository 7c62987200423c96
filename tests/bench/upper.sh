#!/usr/bin/env bash
# Writable-layer benchmark: one Debian minbase image (debootstrap --variant=minbase bookworm, the
# import benchmark's rootfs-v1, plus a 100 MB file /big100m of random bytes) as the lower layer,
# with a fresh upper directory per measurement, served side by side in the same run by: cairn
# (imported once, cairn mount --upper), fuse-overlayfs, kernel overlayfs with the kernel's default
# options, and kernel overlayfs with metacopy=on (metadata-only copy-up, the peer for chown).
#
# Rows (median of BENCH_RUNS runs; caches dropped before each measurement; every figure
# includes a sync -f of the mount, so dirty data is on the upper's disk when the clock stops):
#   untar      tar -xf of the import benchmark's rootfs-v2 (a tar made once, outside the mount)
#              into a new directory of the mount
#   write 1G   dd if=/dev/zero bs=1M count=1024 conv=fsync to a new file
#   append     printf x >> /big100m: one byte appended to a 100 MB image file (its copy-up)
#   chown -R   chown -R 1234:1234 of the whole mount (every image entry: metadata copy-up)
# Targets: untar and write 1G within 1.2x of fuse-overlayfs; append no slower than kernel
# overlayfs's copy-up; chown -R at least 5x faster than fuse-overlayfs and no slower than
# overlayfs with metacopy=on.
#
# Environment:
#   CAIRN              cairn binary (default: <repo>/build/tools/cairn)
#   CAIRN_BENCH_CACHE  where the trees are built once and kept (/var/cache/cairn-bench)
#   BENCH_RUNS         runs (3); the tool order rotates from run to run
#   BENCH_TOOLS        among: cairn fuse-overlayfs overlay overlay-metacopy (all)
#   BENCH_MD           also write the results as markdown to this file
#   BENCH_TIMEOUT      seconds allowed to any one command that touches a mount (600)
#   BENCH_PREPARE_ONLY 1: build the cache and exit
#   TMPDIR             work directory parent (/tmp): the store, upper dirs, mounts
# Needs root (mounts, chroot for the cache, drop_caches) and /dev/fuse.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"

CACHE=${CAIRN_BENCH_CACHE:-/var/cache/cairn-bench}
CAIRN=${CAIRN:-$repo/build/tools/cairn}
RUNS=${BENCH_RUNS:-3}
TOOLS=${BENCH_TOOLS:-cairn fuse-overlayfs overlay overlay-metacopy}
TO=${BENCH_TIMEOUT:-600}
V1=$CACHE/rootfs-v1
V2=$CACHE/rootfs-v2
T=$CACHE/rootfs-upper
BIG=big100m
BIG_BYTES=100000000

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || bench_die "BENCH_RUNS must be a positive integer, got '$RUNS'"
[[ $(id -u) == 0 ]] || bench_die "run as root (mounts, drop_caches)"
read -r -a tools <<< "$TOOLS"
for tool in "${tools[@]}"; do
	case $tool in
	cairn | fuse-overlayfs | overlay | overlay-metacopy) ;;
	*) bench_die "unknown tool in BENCH_TOOLS: $tool" ;;
	esac
done
has_tool() { [[ " $TOOLS " == *" $1 "* ]]; }

WORK=
MOUNTED=()
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
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# Trees (cached): rootfs-v1 and rootfs-v2 come from the import benchmark; rootfs-upper is v1
# plus /big100m

tree_stamp_text() {
	cat "$V1.stamp"
	printf '/%s: %d random bytes, generator v1 (seed 20261128)\n' "$BIG" "$BIG_BYTES"
}

build_tree() {
	bench_log "building $T (rootfs-v1 + /$BIG)"
	rm -f "$T.stamp"
	bench_rm_tree "$T"
	cp -a "$V1" "$T"
	python3 -c 'import random, sys
r, n, out = random.Random(20261128), int(sys.argv[1]), sys.stdout.buffer
while n > 0:
    k = min(n, 1 << 20)
    out.write(r.randbytes(k))
    n -= k' "$BIG_BYTES" > "$T/$BIG"
	chmod 644 "$T/$BIG"
	touch -d '2026-01-01 00:00:00 UTC' "$T/$BIG"
	tree_stamp_text > "$T.stamp"
}

bench_need_pkgs flock:util-linux fusermount3:fuse3 fuse-overlayfs:fuse-overlayfs
[[ -c /dev/fuse ]] || bench_die "/dev/fuse is missing"
if [[ ! -f $V1.stamp || ! -f $V2.stamp ]]; then
	bench_log "building the import benchmark's trees (debootstrap; needs the network)"
	BENCH_PREPARE_ONLY=1 CAIRN_BENCH_CACHE=$CACHE "$here/import.sh" || bench_die "building rootfs-v1/v2 failed"
fi
mkdir -p "$CACHE"
exec 9> "$CACHE/.lock"
flock 9
if [[ ! -f $T.stamp || $(cat "$T.stamp") != "$(tree_stamp_text)" ]]; then build_tree; fi
exec 9>&-
if [[ ${BENCH_PREPARE_ONLY:-0} == 1 ]]; then
	bench_log "cache ready: $T"
	exit 0
fi

# ---------------------------------------------------------------------------------------------
# Setup

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cairn-bench-upper.XXXXXX")
mkdir -p "$WORK/mnt"
STORE=$WORK/store
declare -A R=() FAILED=() INFO=()
rec() { R[$1.$2]+=" $3"; }
fail() { # TOOL WHAT [LOG]
	FAILED[$1]="$2${3:+: $(tail -n 3 "$3" 2> /dev/null | tr '\n' ' ')}"
	bench_log "$1: ${FAILED[$1]}"
	return 1
}

bench_log "measuring the trees; the untar source: a tar of $V2"
TREE_FILES=$(bench_tree_files "$T")
TREE_BYTES=$(bench_tree_bytes "$T")
TAR=$WORK/untar.tar
tar -C "$V2" --numeric-owner -cf "$TAR" . || bench_die "tar of $V2 failed"
TAR_BYTES=$(stat -c %s "$TAR")
TAR_FILES=$(bench_tree_files "$V2")

if has_tool cairn; then
	if [[ ! -x $CAIRN ]]; then
		FAILED[cairn]="binary not found: $CAIRN"
	else
		bench_log "cairn: importing the tree"
		mkdir -p "$STORE"
		sync
		if bench_time t "$CAIRN" --store "$STORE" import "$T" --tag upper > "$WORK/import.log" 2>&1; then
			INFO[cairn.import]=$t
		else
			fail cairn "import failed" "$WORK/import.log" || true
		fi
	fi
fi

# mount_TOOL: a fresh upper, mounted on $WORK/mnt/TOOL; sets MNT
MNT=
fresh() { # NAME: fresh upper and work dirs
	rm -rf --one-file-system "${WORK:?}/up-$1"
	mkdir -p "$WORK/up-$1/tree" "$WORK/up-$1/work"
}
mount_cairn() {
	local m=$WORK/mnt/cairn
	mkdir -p "$m"
	rm -rf --one-file-system "${WORK:?}/up-cairn"
	MOUNTED+=("$m")
	timeout 120 "$CAIRN" --store "$STORE" mount upper "$m" --upper "$WORK/up-cairn" \
		> "$WORK/cairn-mount.log" 2>&1 || return
	MNT=$m
}
umount_cairn() {
	timeout "$TO" "$CAIRN" --store "$STORE" umount "$WORK/mnt/cairn" > /dev/null 2>&1 ||
		bench_force_unmount "$WORK/mnt/cairn"
}
mount_fuse-overlayfs() {
	local m=$WORK/mnt/fuse-overlayfs
	mkdir -p "$m"
	fresh fuse-overlayfs
	MOUNTED+=("$m")
	timeout 120 fuse-overlayfs -o "lowerdir=$T,upperdir=$WORK/up-fuse-overlayfs/tree,workdir=$WORK/up-fuse-overlayfs/work" "$m" \
		> "$WORK/fuse-overlayfs-mount.log" 2>&1 || return
	MNT=$m
}
umount_fuse-overlayfs() {
	local pid
	pid=$(bench_pid_with_arg "$WORK/mnt/fuse-overlayfs")
	timeout "$TO" fusermount3 -u "$WORK/mnt/fuse-overlayfs" 2> /dev/null ||
		bench_force_unmount "$WORK/mnt/fuse-overlayfs"
	[[ -z $pid ]] || timeout 30 tail --pid="$pid" -f /dev/null || true
}
mount_overlay_opts() { # TOOL OPTS
	local m=$WORK/mnt/$1
	mkdir -p "$m"
	fresh "$1"
	MOUNTED+=("$m")
	timeout 120 mount -t overlay overlay \
		-o "lowerdir=$T,upperdir=$WORK/up-$1/tree,workdir=$WORK/up-$1/work${2:+,$2}" "$m" \
		> "$WORK/$1-mount.log" 2>&1 || return
	MNT=$m
}
mount_overlay() { mount_overlay_opts overlay ""; }
mount_overlay-metacopy() { mount_overlay_opts overlay-metacopy "redirect_dir=on,metacopy=on"; }
umount_overlay() { timeout "$TO" umount "$WORK/mnt/overlay" || bench_force_unmount "$WORK/mnt/overlay"; }
umount_overlay-metacopy() {
	timeout "$TO" umount "$WORK/mnt/overlay-metacopy" || bench_force_unmount "$WORK/mnt/overlay-metacopy"
}

# The measured commands (each ends with a sync of the mount's filesystem)
do_untar() { mkdir "$MNT/untar" && tar -xf "$TAR" -C "$MNT/untar" --numeric-owner && sync -f "$MNT"; }
do_write() { dd if=/dev/zero of="$MNT/big1g" bs=1M count=1024 conv=fsync status=none && sync -f "$MNT"; }
do_append() { printf x >> "$MNT/$BIG" && sync -f "$MNT"; }
# (chown errors on some entries are counted, not fatal: fuse-overlayfs cannot chown devices)
do_chown() { chown -R 1234:1234 "$MNT" 2> "$ERR" || true; sync -f "$MNT"; }

# measure TOOL ROW FN: fresh mount, drop caches, time FN; unmount
measure() {
	local tool=$1 row=$2 fn=$3 t
	MNT=
	"mount_$tool" || { fail "$tool" "mount failed" "$WORK/$tool-mount.log"; return 1; }
	bench_drop_caches
	if bench_time t timeout "$TO" bash -c "$(declare -f "$fn"); MNT='$MNT' TAR='$TAR' BIG='$BIG' ERR='$WORK/$row.err' $fn"; then
		rec "$tool" "$row" "$t"
	else
		fail "$tool" "$row failed (exit $?)" || true
	fi
	if [[ $row == append && -z ${FAILED[$tool]:-} ]]; then
		# the byte is there, the rest is the image's
		[[ $(stat -c %s "$MNT/$BIG") == $((BIG_BYTES + 1)) ]] && cmp -s -n "$BIG_BYTES" "$MNT/$BIG" "$T/$BIG" ||
			fail "$tool" "append: /$BIG is not the image's bytes plus one" || true
	fi
	if [[ $row == chown ]]; then
		rec "$tool" upper_du "$(bench_du "$WORK/up-$tool" 2> /dev/null || echo n/a)"
		if [[ -s $WORK/chown.err ]]; then
			INFO[$tool.chown_err]="chown -R failed on $(grep -c '' "$WORK/chown.err") entries, e.g. $(head -n 1 "$WORK/chown.err")"
		fi
	fi
	"umount_$tool" || true
	[[ -z ${FAILED[$tool]:-} ]]
}

rows=(untar write append chown)
for ((run = 1; run <= RUNS; run++)); do
	n=${#tools[@]}
	for ((k = 0; k < n; k++)); do
		tool=${tools[$(((k + run - 1) % n))]}
		for row in "${rows[@]}"; do
			[[ -n ${FAILED[$tool]:-} ]] && break
			bench_log "run $run/$RUNS: $tool: $row"
			measure "$tool" "$row" "do_$row" || break
		done
	done
done

# ---------------------------------------------------------------------------------------------
# Report

med() { # TOOL METRIC
	local -a v
	read -r -a v <<< "${R[$1.$2]:-}"
	if [[ -n ${FAILED[$1]:-} || ${#v[@]} == 0 ]]; then echo n/a; else bench_median "${v[@]}"; fi
}
num() { [[ $2 == n/a || -z $2 ]] && { echo n/a; return; }; awk -v d="$1" -v v="$2" 'BEGIN { printf "%.*f\n", d, v }'; }
ms() { [[ $1 == n/a ]] && { echo n/a; return; }; awk -v v="$1" 'BEGIN { printf "%.0f\n", v * 1000 }'; }
label() {
	case $1 in
	overlay) echo "overlayfs (kernel)" ;;
	overlay-metacopy) echo "overlayfs metacopy=on" ;;
	*) echo "$1" ;;
	esac
}
declare -A M=()
for tool in "${tools[@]}"; do
	for m in untar write append chown upper_du; do M[$tool.$m]=$(med "$tool" "$m"); done
done
m_or_na() { [[ ${M[$1]+set} ]] && echo "${M[$1]}" || echo n/a; }

bench_table_reset
bench_table_row tool "untar s" "untar MB/s" "write 1G s" "write MB/s" "append ms" "chown -R s" "upper after chown"
for tool in "${tools[@]}"; do
	bench_table_row "$(label "$tool")" "$(num 2 "${M[$tool.untar]}")" "$(bench_mbps "$TAR_BYTES" "${M[$tool.untar]}")" \
		"$(num 2 "${M[$tool.write]}")" "$(bench_mbps $((1 << 30)) "${M[$tool.write]}")" \
		"$(ms "${M[$tool.append]}")" "$(num 2 "${M[$tool.chown]}")" "$(bench_human "${M[$tool.upper_du]}")"
done

TARGETS=()
target() { # LABEL VALUE OP TARGET [CAIRN PEERS]: a line here, a row for tests/bench/run.sh
	local verdict=n/a
	if [[ $2 != n/a && -n $2 ]]; then
		if awk -v a="$2" -v b="$4" -v op="$3" 'BEGIN { exit !((op == "<=" && a <= b) || (op == ">=" && a >= b)) }'; then
			verdict=met
		else
			verdict=MISSED
		fi
	fi
	TARGETS+=("$1: $2 (target $3 $4: $verdict)")
	bench_result upper "$1" "${5:--}" "${6:--}" "$2" "$3 $4" "$verdict"
}
target "untar time, cairn / fuse-overlayfs" "$(bench_ratio "$(m_or_na cairn.untar)" "$(m_or_na fuse-overlayfs.untar)")" "<=" 1.2 \
	"$(m_or_na cairn.untar) s" "fuse-overlayfs $(m_or_na fuse-overlayfs.untar) s"
target "write 1G time, cairn / fuse-overlayfs" "$(bench_ratio "$(m_or_na cairn.write)" "$(m_or_na fuse-overlayfs.write)")" "<=" 1.2 \
	"$(m_or_na cairn.write) s" "fuse-overlayfs $(m_or_na fuse-overlayfs.write) s"
target "append (copy-up) time, cairn / overlayfs (kernel)" "$(bench_ratio "$(m_or_na cairn.append)" "$(m_or_na overlay.append)")" "<=" 1 \
	"$(m_or_na cairn.append) s" "overlayfs $(m_or_na overlay.append) s"
target "chown -R speed-up, fuse-overlayfs time / cairn time" "$(bench_ratio "$(m_or_na fuse-overlayfs.chown)" "$(m_or_na cairn.chown)")" ">=" 5 \
	"$(m_or_na cairn.chown) s" "fuse-overlayfs $(m_or_na fuse-overlayfs.chown) s"
target "chown -R time, cairn / overlayfs metacopy=on" "$(bench_ratio "$(m_or_na cairn.chown)" "$(m_or_na overlay-metacopy.chown)")" "<=" 1 \
	"$(m_or_na cairn.chown) s" "overlayfs metacopy=on $(m_or_na overlay-metacopy.chown) s"
# the peers among themselves, for context
PEERS=()
PEERS+=("untar time, overlayfs (kernel) / fuse-overlayfs: $(bench_ratio "$(m_or_na overlay.untar)" "$(m_or_na fuse-overlayfs.untar)")")
PEERS+=("chown -R time, fuse-overlayfs / overlayfs metacopy=on: $(bench_ratio "$(m_or_na fuse-overlayfs.chown)" "$(m_or_na overlay-metacopy.chown)")")
PEERS+=("append time, fuse-overlayfs / overlayfs (kernel): $(bench_ratio "$(m_or_na fuse-overlayfs.append)" "$(m_or_na overlay.append)")")

report() { # text|md
	local fmt=$1 pre='' tool
	[[ $fmt == md ]] && pre='- '
	printf '%s\n' "${pre}lower: debootstrap --variant=minbase + /$BIG (100 MB random): $TREE_FILES files, $(bench_human "$TREE_BYTES") of file data; untar source: rootfs-v2, $TAR_FILES files, $(bench_human "$TAR_BYTES") tar"
	printf '%s\n' "${pre}median of $RUNS run(s), a fresh upper and dropped caches for each figure, every figure includes sync -f; $(nproc) CPUs, $(uname -r), upper on $(df --output=fstype "$WORK" | tail -n 1)"
	printf '%s\n' "${pre}$(fuse-overlayfs --version 2>&1 | grep -m1 '^fuse-overlayfs'); overlayfs (kernel): the module's defaults (redirect_dir=$(cat /sys/module/overlay/parameters/redirect_dir 2> /dev/null || echo ?), metacopy=$(cat /sys/module/overlay/parameters/metacopy 2> /dev/null || echo ?), index=$(cat /sys/module/overlay/parameters/index 2> /dev/null || echo ?))"
	[[ -n ${INFO[cairn.import]:-} ]] && printf '%s\n' "${pre}cairn: $CAIRN, import of the lower $(num 1 "${INFO[cairn.import]}") s"
	echo
	if [[ $fmt == md ]]; then bench_table_md; else bench_table_print; fi
	echo
	for l in "${TARGETS[@]}" "${PEERS[@]}"; do printf '%s%s\n' "$pre" "$l"; done
	for tool in "${tools[@]}"; do
		[[ -n ${FAILED[$tool]:-} ]] && printf '%s%s: n/a (%s)\n' "$pre" "$(label "$tool")" "${FAILED[$tool]}"
		[[ -n ${INFO[$tool.chown_err]:-} ]] && printf '%s%s: %s\n' "$pre" "$(label "$tool")" "${INFO[$tool.chown_err]}"
	done
	return 0
}
echo
report text
if [[ -n ${BENCH_MD:-} ]]; then
	{
		echo "### Writable layer benchmark ($(date -u +%Y-%m-%d))"
		echo
		report md
	} > "$BENCH_MD"
	bench_log "markdown written to $BENCH_MD"
fi
