#!/usr/bin/env bash
# Writable-layer benchmark: one Debian image as the lower layer, with a fresh upper directory per
# measurement, served side by side in the same run by: cairn (imported once, cairn mount --upper),
# fuse-overlayfs, kernel overlayfs with the kernel's default options, and kernel overlayfs with
# metacopy=on (metadata-only copy-up, the peer for chown).
#
# The lower (built once, cached): debootstrap --variant=minbase bookworm (the import benchmark's
# rootfs-v1) after apt-get update and upgrade, its package lists kept (so apt works offline) and
# a policy-rc.d that keeps services from starting, plus /big100m (100 MB random, for the append)
# and /bigfile (1 GiB semi-compressible, the mount benchmark's, for random reads). The .debs of
# the apt and dpkg rows are downloaded once (apt-get install -d) into the cache beside it.
#
# Rows (median of BENCH_RUNS runs; each on a fresh mount with a fresh upper, caches dropped just
# before it is timed; every timed command ends with `sync -f MNT; sync -f UPPERDIR`: on a FUSE
# mount syncfs writes back the mount's dirty pages but never reaches the upper's filesystem, so
# the second sync is what puts the data on the upper's disk):
#   apt        chroot MNT apt-get install -y python3 curl nginx-light debsums, then nginx -t,
#              with /dev, /proc and the downloaded .debs (as /var/cache/apt/archives) mounted in
#              the chroot: no network
#   dpkg       chroot MNT dpkg of the .debs python3 needs (its dependencies included), in the
#              calls apt would make (dpkg --unpack and --configure, in its order: dpkg -i of
#              them all at once fails on pre-dependencies), then python3 -c pass
#   untar      tar -xf of the import benchmark's rootfs-v2 (a tar made once, outside the mount)
#              into a new directory of the mount
#   write      dd if=/dev/zero bs=1M count=1024 conv=fsync to a new file
#   append     printf x >> /big100m: one byte appended to a 100 MB image file (its copy-up)
#   chown      chown -R 1234:1234 of the whole mount (every image entry: metadata copy-up)
#   cpa        cp -a MNT/usr MNT/usr.copy (image files read cold, new files written)
#   rand       fio 4 KiB psync random reads of /bigfile for BENCH_FIO_RUNTIME seconds, IOPS; then
#              the daemon's RssAnon (cairn: --cache-size BENCH_CAIRN_CACHE_SIZE)
# Targets (issue 15): apt and dpkg within 1.2x of kernel overlayfs; untar within 2.5x; write 1G
# within 1.1x; chown -R no slower than overlayfs with metacopy=on; cold random reads no fewer
# IOPS than fuse-overlayfs; RssAnon no more than the cache budget + 16 MiB; the append no slower
# than kernel overlayfs's copy-up.
#
# Environment:
#   CAIRN              cairn binary (default: <repo>/build/tools/cairn)
#   CAIRN_BENCH_CACHE  where the trees are built once and kept (/var/cache/cairn-bench)
#   BENCH_RUNS         runs (3); the tool order rotates from run to run
#   BENCH_TOOLS        among: cairn fuse-overlayfs overlay overlay-metacopy (all), and the
#                      variants cairn-NAME below
#   BENCH_CAIRN_VARIANTS  'NAME=BINARY ...': more cairn builds, the tools cairn-NAME (in
#                      BENCH_TOOLS by default): changes measured against the builds before
#                      them, in the same run, each on a store of its own (imported by it:
#                      one daemon per store, so a store shared would serve every variant's
#                      mounts from whichever daemon still ran)
#   BENCH_CAIRN_B      BINARY: the same as BENCH_CAIRN_VARIANTS=b=BINARY
#   BENCH_ROWS         among: apt dpkg untar write append chown cpa rand (all)
#   BENCH_MD           also write the results as markdown to this file
#   BENCH_TIMEOUT      seconds allowed to any one command that touches a mount (600)
#   BENCH_FIO_RUNTIME  seconds of random reads (10)
#   BENCH_CAIRN_CACHE_SIZE  cairn mount --cache-size (256M); the RssAnon target is this + 16 MiB
#   BENCH_CAIRN_MOUNT_OPTS  more options for cairn mount
#   BENCH_PROFILE      words among: requests (fuse-overlayfs runs with libfuse's -d and each
#                      row's requests are counted by opcode; not for cairn, whose daemon has no
#                      such output), strace (strace -c -f of each FUSE daemon over each timed
#                      command: a cairn daemon's read calls are its FUSE requests), fuse (the
#                      kernel's fuse_request_send/_end tracepoints of the mount's connection,
#                      recorded by perf: every FUSE tool's requests by opcode with their round
#                      trips, total and mean, and the daemon's CPU time; cheap enough that the
#                      times stay near the unprofiled ones), client (strace -f -w -c of the timed
#                      command, every tool: the seconds its processes spent inside each system
#                      call, kernel overlayfs included); the counts go to the report and to
#                      WORK/profile (kept); cpu (perf record -g of each FUSE daemon: where
#                      its CPU time goes, by symbol, WORK/profile/*.cpu.perf kept for perf
#                      report). Timings under strace are not comparable.
#   BENCH_KEEP         1: keep the work directory (logs, uppers) for a look afterwards
#   BENCH_PREPARE_ONLY 1: build the cache and exit
#   BENCH_MIRROR, BENCH_SECURITY_MIRROR, BENCH_SUITE  as for import.sh
#   TMPDIR             work directory parent (/tmp): the store, upper dirs, mounts
# Needs root (mounts, chroot, drop_caches), /dev/fuse, and the network once, for the cache.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"

CACHE=${CAIRN_BENCH_CACHE:-/var/cache/cairn-bench}
CAIRN=${CAIRN:-$repo/build/tools/cairn}
RUNS=${BENCH_RUNS:-3}
declare -A VARIANT=() # NAME -> binary
VARIANTS=()           # the tools cairn-NAME, in the order given
for v in ${BENCH_CAIRN_B:+b=$BENCH_CAIRN_B} ${BENCH_CAIRN_VARIANTS:-}; do
	[[ $v =~ ^([a-z0-9]+)=(.+)$ ]] || bench_die "BENCH_CAIRN_VARIANTS: not NAME=BINARY: '$v'"
	[[ -x ${BASH_REMATCH[2]} ]] || bench_die "cairn-${BASH_REMATCH[1]}: no binary: '${BASH_REMATCH[2]}'"
	VARIANT[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
	VARIANTS+=("cairn-${BASH_REMATCH[1]}")
done
TOOLS=${BENCH_TOOLS:-cairn ${VARIANTS[*]} fuse-overlayfs overlay overlay-metacopy}
ROWS=${BENCH_ROWS:-apt dpkg untar write append chown cpa rand}
TO=${BENCH_TIMEOUT:-600}
PROFILE=${BENCH_PROFILE:-}
FIO_RUNTIME=${BENCH_FIO_RUNTIME:-10}
CAIRN_CACHE_SIZE=${BENCH_CAIRN_CACHE_SIZE:-256M}
SUITE=${BENCH_SUITE:-bookworm}
V1=$CACHE/rootfs-v1
V2=$CACHE/rootfs-v2
T=$CACHE/rootfs-upper
DEBS_APT=$CACHE/upper-debs-apt
DEBS_DPKG=$CACHE/upper-debs-dpkg
APT_PKGS="python3 curl nginx-light debsums"
DPKG_PKGS="python3"
BIG=big100m
BIG_BYTES=100000000
RBIG=bigfile
RBIG_MIB=1024

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || bench_die "BENCH_RUNS must be a positive integer, got '$RUNS'"
[[ $FIO_RUNTIME =~ ^[1-9][0-9]*$ ]] || bench_die "BENCH_FIO_RUNTIME must be a positive integer"
[[ $(id -u) == 0 ]] || bench_die "run as root (mounts, chroot, drop_caches)"
read -r -a tools <<< "$TOOLS"
for tool in "${tools[@]}"; do
	case $tool in
	cairn | fuse-overlayfs | overlay | overlay-metacopy) ;;
	cairn-*) [[ -n ${VARIANT[${tool#cairn-}]:-} ]] || bench_die "$tool: not in BENCH_CAIRN_VARIANTS" ;;
	*) bench_die "unknown tool in BENCH_TOOLS: $tool" ;;
	esac
done
read -r -a rows <<< "$ROWS"
for row in "${rows[@]}"; do
	case $row in
	apt | dpkg | untar | write | append | chown | cpa | rand) ;;
	*) bench_die "unknown row in BENCH_ROWS: $row" ;;
	esac
done
has_tool() { [[ " $TOOLS " == *" $1 "* ]]; }
has_cairn() { [[ " $TOOLS " == *" cairn "* || " $TOOLS " == *" cairn-"* ]]; }
has_row() { [[ " $ROWS " == *" $1 "* ]]; }
profiling() { [[ " $PROFILE " == *" $1 "* ]]; }
for p in $PROFILE; do
	[[ $p == requests || $p == strace || $p == fuse || $p == client || $p == cpu ]] ||
		bench_die "unknown word in BENCH_PROFILE: $p"
done
# cairn mounts through its daemon, which has no libfuse debug output (-o goes to the kernel)
if profiling requests && has_cairn; then
	bench_die "BENCH_PROFILE=requests: cairn's daemon prints no requests; BENCH_PROFILE=strace counts them (its read calls on /dev/fuse)"
fi
CAIRN_CACHE_BYTES=$(numfmt --from=iec "$CAIRN_CACHE_SIZE") ||
	bench_die "BENCH_CAIRN_CACHE_SIZE: not a size: $CAIRN_CACHE_SIZE"

WORK=
MOUNTED=()
cleanup() {
	local rc=$? m
	trap - EXIT INT TERM
	if [[ -n $WORK && -d $WORK ]]; then
		# the chroot's /dev, /proc and archives first: they sit on the mounts
		for m in "${MOUNTED[@]}"; do
			awk -v d="$(realpath -m "$m")" 'index($2, d "/") == 1 { print $2 }' /proc/self/mounts |
				sort -r | while read -r sub; do umount "$sub" 2> /dev/null || umount -l "$sub" || true; done
		done
	fi
	for m in "${MOUNTED[@]}"; do
		if [[ $m == */cairn || $m == */cairn-* ]] && bench_is_mounted "$m" && [[ -x $CAIRN ]]; then
			timeout 60 "$CAIRN" --store "$(store_of "${m##*/}")" umount "$m" > /dev/null 2>&1 || true
		fi
		bench_force_unmount "$m"
	done
	if [[ -n $WORK && -d $WORK ]]; then
		bench_unmount_under "$WORK"
		if [[ ${BENCH_KEEP:-0} == 1 ]]; then
			bench_log "kept $WORK"
		else
			rm -rf --one-file-system "$WORK" || true
		fi
	fi
	if [[ -d $CACHE ]]; then bench_unmount_under "$T"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# The lower tree and the .debs (cached)

MIRROR=${BENCH_MIRROR:-$(bench_host_uri '/debian$')}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${BENCH_SECURITY_MIRROR:-$(bench_host_uri '/debian-security$')}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}

tree_stamp_text() {
	cat "$V1.stamp"
	printf 'apt-get update + upgrade (%s %s, -updates, -security), lists kept, policy-rc.d 101\n' "$MIRROR" "$SUITE"
	printf 'debs: apt-get install -d %s | %s, with the dpkg steps of apt'"'"'s plan\n' "$APT_PKGS" "$DPKG_PKGS"
	printf '/%s: %d random bytes, generator v1 (seed 20261128)\n' "$BIG" "$BIG_BYTES"
	printf '/%s: %d MiB, generator v1 (1/5 raw random, 4/5 log text; seed 20261127)\n' "$RBIG" "$RBIG_MIB"
}

# download_debs DIR PKGS: apt-get install -d PKGS in the chroot of $T, the .debs moved to DIR
# shellcheck disable=SC2016 # PKGS is expanded in the chroot
download_debs() {
	local dir=$1 pkgs=$2
	rm -rf "$dir" "$T/debs"
	mkdir -p "$T/debs/partial"
	chroot "$T" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C \
		DEBIAN_FRONTEND=noninteractive PKGS="$pkgs" /bin/sh -ec '
			apt-get install -y -q -d -o Dir::Cache::Archives=/debs/ $PKGS
		' >> "$CACHE/upper-build.log" 2>&1 || return
	rm -rf "$T/debs/partial" "$T/debs/lock"
	mv "$T/debs" "$dir"
	ls "$dir"/*.deb > /dev/null
}

# dpkg_steps DIR PKGS: DIR/steps, the dpkg calls apt would make to install PKGS from the .debs of
# DIR (runs of "Inst" in its plan unpacked together, runs of "Conf" configured together: pre-
# dependencies must be configured before what needs them is unpacked)
dpkg_steps() {
	local dir=$1 pkgs=$2 f
	declare -A file=()
	for f in "$dir"/*.deb; do file[$(dpkg-deb -f "$f" Package)]=${f##*/}; done
	# shellcheck disable=SC2016 # PKGS is expanded in the chroot
	chroot "$T" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C PKGS="$pkgs" /bin/sh -ec '
			apt-get install -s -q $PKGS' > "$dir/plan" 2>> "$CACHE/upper-build.log" || return
	awk '$1 == "Inst" || $1 == "Conf" { print $1, $2 }' "$dir/plan" | {
		local verb pkg last='' line=''
		while read -r verb pkg; do
			if [[ $verb != "$last" && -n $line ]]; then echo "$line"; line=; fi
			if [[ $verb == Inst ]]; then
				[[ -n ${file[$pkg]:-} ]] || { echo "no .deb for $pkg" >&2; return 1; }
				line=${line:-dpkg --unpack}" ${file[$pkg]}"
			else
				line=${line:-dpkg --configure}" $pkg"
			fi
			last=$verb
		done
		[[ -z $line ]] || echo "$line"
	} > "$dir/steps" 2>> "$CACHE/upper-build.log"
	rm -f "$dir/plan"
	[[ -s $dir/steps ]]
}

build_tree() {
	local added_resolv=0
	bench_log "building $T (rootfs-v1 + apt-get upgrade, lists kept, .debs, /$BIG, /$RBIG; a few minutes)"
	rm -f "$T.stamp"
	bench_rm_tree "$T"
	: > "$CACHE/upper-build.log"
	cp -a "$V1" "$T"
	{
		printf 'deb %s %s main\n' "$MIRROR" "$SUITE"
		printf 'deb %s %s-updates main\n' "$MIRROR" "$SUITE"
		printf 'deb %s %s-security main\n' "$SECURITY_MIRROR" "$SUITE"
	} > "$T/etc/apt/sources.list"
	# invoke-rc.d asks policy-rc.d: 101 keeps nginx from starting in the chroot
	printf '#!/bin/sh\nexit 101\n' > "$T/usr/sbin/policy-rc.d"
	chmod 755 "$T/usr/sbin/policy-rc.d"
	if [[ ! -e $T/etc/resolv.conf && -f /etc/resolv.conf ]]; then
		cp /etc/resolv.conf "$T/etc/resolv.conf"
		added_resolv=1
	fi
	mount -t proc proc "$T/proc"
	# shellcheck disable=SC2015 # the || branch handles a failure of any step
	chroot "$T" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C \
		DEBIAN_FRONTEND=noninteractive /bin/sh -ec '
			apt-get update -q
			apt-get -y -q -o Dpkg::Options::=--force-confold upgrade
			rm -f /var/cache/apt/archives/*.deb
		' >> "$CACHE/upper-build.log" 2>&1 &&
		download_debs "$DEBS_APT" "$APT_PKGS" && download_debs "$DEBS_DPKG" "$DPKG_PKGS" &&
		dpkg_steps "$DEBS_DPKG" "$DPKG_PKGS" ||
		{ umount "$T/proc"; tail -n 20 "$CACHE/upper-build.log" >&2; bench_die "building $T failed (log: $CACHE/upper-build.log)"; }
	umount "$T/proc"
	if ((added_resolv)); then rm -f "$T/etc/resolv.conf"; fi
	python3 -c 'import random, sys
r, n, out = random.Random(20261128), int(sys.argv[1]), sys.stdout.buffer
while n > 0:
    k = min(n, 1 << 20)
    out.write(r.randbytes(k))
    n -= k' "$BIG_BYTES" > "$T/$BIG"
	bench_log "writing /$RBIG ($RBIG_MIB MiB, semi-compressible; about a minute)"
	# (the host's python3: minbase has none, and dpkg -i python3 needs it absent)
	python3 -c "$(bench_bigfile_py)" $((RBIG_MIB << 20)) > "$T/$RBIG" 2>> "$CACHE/upper-build.log" ||
		bench_die "generating /$RBIG failed"
	chmod 644 "$T/$BIG" "$T/$RBIG"
	touch -d '2026-01-01 00:00:00 UTC' "$T/$BIG" "$T/$RBIG"
	tree_stamp_text > "$T.stamp"
}

bench_need_pkgs flock:util-linux fusermount3:fuse3 fuse-overlayfs:fuse-overlayfs fio:fio numfmt:coreutils
if profiling strace || profiling client; then bench_need_pkgs strace:strace; fi
if profiling fuse || profiling cpu; then bench_need_pkgs perf:linux-perf; fi
if profiling fuse; then
	[[ $(perf list tracepoint 2> /dev/null) == *fuse:fuse_request_end* ]] ||
		bench_die "BENCH_PROFILE=fuse: this kernel has no fuse:fuse_request_send/_end tracepoints"
fi
[[ -c /dev/fuse ]] || bench_die "/dev/fuse is missing"
if [[ ! -f $V1.stamp || ! -f $V2.stamp ]]; then
	bench_log "building the import benchmark's trees (debootstrap; needs the network)"
	BENCH_PREPARE_ONLY=1 CAIRN_BENCH_CACHE=$CACHE "$here/import.sh" || bench_die "building rootfs-v1/v2 failed"
fi
mkdir -p "$CACHE"
exec 9> "$CACHE/.lock"
flock 9
# (not the mount benchmark's tree: dpkg -i python3 needs python3 absent)
if [[ ! -f $T.stamp || $(cat "$T.stamp") != "$(tree_stamp_text)" ]]; then build_tree; fi
exec 9>&-
if [[ ${BENCH_PREPARE_ONLY:-0} == 1 ]]; then
	bench_log "cache ready: $T"
	exit 0
fi

# ---------------------------------------------------------------------------------------------
# Setup

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cairn-bench-upper.XXXXXX")
mkdir -p "$WORK/mnt" "$WORK/profile"
[[ -z $PROFILE ]] || BENCH_KEEP=1
STORE=$WORK/store
# the store of a cairn tool: each variant has its own
store_of() { if [[ $1 == cairn ]]; then echo "$STORE"; else echo "$WORK/store-$1"; fi; }
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
if has_row untar; then
	tar -C "$V2" --numeric-owner -cf "$TAR" . || bench_die "tar of $V2 failed"
	TAR_BYTES=$(stat -c %s "$TAR")
	TAR_FILES=$(bench_tree_files "$V2")
fi
N_APT=$(find "$DEBS_APT" -name '*.deb' | wc -l)
N_DPKG=$(find "$DEBS_DPKG" -name '*.deb' | wc -l)
USR_FILES=$(bench_tree_files "$T/usr")
USR_BYTES=$(bench_tree_bytes "$T/usr")

if has_cairn; then
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
	for v in "${VARIANTS[@]}"; do
		has_tool "$v" || continue
		bench_log "$v: importing the tree into its own store"
		mkdir -p "$WORK/store-$v"
		"${VARIANT[${v#cairn-}]}" --store "$WORK/store-$v" import "$T" --tag upper > "$WORK/import-$v.log" 2>&1 ||
			fail "$v" "import failed" "$WORK/import-$v.log" || true
	done
fi

# mount_TOOL: a fresh upper, mounted on $WORK/mnt/TOOL; sets MNT, UPPER (a directory on the
# upper's filesystem) and PID (a FUSE daemon's)
MNT='' UPPER='' PID='' DEBUG_LOG=''
# debug_mount LOG CMD...: a FUSE daemon in the foreground with libfuse's debug output to LOG,
# in the background; waits for its mount (the last argument); sets PID
debug_mount() {
	local log=$1 i
	shift
	"$@" > /dev/null 2> "$log" &
	PID=$!
	for ((i = 0; i < 600; i++)); do
		bench_is_mounted "${*: -1}" && return 0
		kill -0 "$PID" 2> /dev/null || return 1
		sleep 0.1
	done
	return 1
}
fresh() { # NAME: fresh upper and work dirs
	rm -rf --one-file-system "${WORK:?}/up-$1"
	mkdir -p "$WORK/up-$1/tree" "$WORK/up-$1/work"
	UPPER=$WORK/up-$1/tree
}
# mount_cairn_as TOOL BINARY
mount_cairn_as() {
	local m=$WORK/mnt/$1 bin=$2
	local -a extra
	read -r -a extra <<< "${BENCH_CAIRN_MOUNT_OPTS:-}"
	mkdir -p "$m"
	rm -rf --one-file-system "${WORK:?}/up-$1"
	MOUNTED+=("$m")
	if [[ -n $DEBUG_LOG ]]; then
		debug_mount "$DEBUG_LOG" "$bin" --store "$(store_of "$1")" mount upper --upper "$WORK/up-$1" \
			--cache-size "$CAIRN_CACHE_SIZE" "${extra[@]}" -f "$m" || return
	else
		timeout 120 "$bin" --store "$(store_of "$1")" mount upper "$m" --upper "$WORK/up-$1" \
			--cache-size "$CAIRN_CACHE_SIZE" "${extra[@]}" > "$WORK/$1-mount.log" 2>&1 || return
		PID=$(bench_cairn_pid "$bin" "$(store_of "$1")" "$m")
	fi
	MNT=$m
	UPPER=$WORK/up-$1
}
umount_cairn_as() { # TOOL BINARY
	timeout "$TO" "$2" --store "$(store_of "$1")" umount "$WORK/mnt/$1" > /dev/null 2>&1 ||
		bench_force_unmount "$WORK/mnt/$1"
	[[ -z $DEBUG_LOG || -z $PID ]] || timeout 30 tail --pid="$PID" -f /dev/null || true
}
mount_cairn() { mount_cairn_as cairn "$CAIRN"; }
umount_cairn() { umount_cairn_as cairn "$CAIRN"; }
for v in "${!VARIANT[@]}"; do
	eval "mount_cairn-$v() { mount_cairn_as cairn-$v \"\${VARIANT[$v]}\"; }"
	eval "umount_cairn-$v() { umount_cairn_as cairn-$v \"\${VARIANT[$v]}\"; }"
done
mount_fuse-overlayfs() {
	local m=$WORK/mnt/fuse-overlayfs
	mkdir -p "$m"
	fresh fuse-overlayfs
	MOUNTED+=("$m")
	local o="lowerdir=$T,upperdir=$WORK/up-fuse-overlayfs/tree,workdir=$WORK/up-fuse-overlayfs/work"
	if [[ -n $DEBUG_LOG ]]; then
		debug_mount "$DEBUG_LOG" fuse-overlayfs -d -o "$o" "$m" || return
	else
		timeout 120 fuse-overlayfs -o "$o" "$m" > "$WORK/fuse-overlayfs-mount.log" 2>&1 || return
		PID=$(bench_pid_with_arg "$m")
	fi
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

# A chroot on the mount, for apt and dpkg: /dev and /proc, and a copy of the .debs of DIR as
# /var/cache/apt/archives (hard links where the filesystem allows; apt writes its lock there).
chroot_setup() { # DEBDIR
	rm -rf "$WORK/debs"
	cp -al "$1" "$WORK/debs" 2> /dev/null || { rm -rf "$WORK/debs"; cp -a "$1" "$WORK/debs"; }
	mkdir -p "$WORK/debs/partial"
	mount --bind /dev "$MNT/dev" &&
		mount -t proc proc "$MNT/proc" &&
		mount --bind "$WORK/debs" "$MNT/var/cache/apt/archives"
}
chroot_teardown() {
	local d
	for d in var/cache/apt/archives proc dev; do
		if bench_is_mounted "$MNT/$d"; then umount "$MNT/$d" || umount -l "$MNT/$d" || true; fi
	done
}

# The measured commands; each runs in a fresh bash with MNT, UPPER, TAR, BIG, ERR and PKGS set,
# and ends with the mount's and the upper's filesystems flushed.
flush() { sync -f "$MNT" && sync -f "$UPPER"; }
in_chroot() {
	chroot "$MNT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C \
		DEBIAN_FRONTEND=noninteractive /bin/sh -ec "$1"
}
# shellcheck disable=SC2153 # PKGS is set by measure() for the shell that runs this
do_apt() {
	in_chroot 'apt-get install -y -q -o Dpkg::Options::=--force-confold '"$PKGS"'; nginx -t' > "$ERR" 2>&1 &&
		flush
}
# shellcheck disable=SC2016 # expanded in the chroot
do_dpkg() { in_chroot 'cd /var/cache/apt/archives; . ./steps; python3 -c pass' > "$ERR" 2>&1 && flush; }
do_untar() { mkdir "$MNT/untar" && tar -xf "$TAR" -C "$MNT/untar" --numeric-owner && flush; }
do_write() { dd if=/dev/zero of="$MNT/big1g" bs=1M count=1024 conv=fsync status=none && flush; }
do_append() { printf x >> "$MNT/$BIG" && flush; }
# (chown errors on some entries are counted, not fatal: fuse-overlayfs cannot chown devices)
do_chown() { chown -R 1234:1234 "$MNT" 2> "$ERR" || true; flush; }
do_cpa() { cp -a "$MNT/usr" "$MNT/usr.copy" 2> "$ERR" && flush; }

# Profiles of the timed part: FUSE requests by opcode (from libfuse's debug output, which
# starts with the mount: what came before the timed part is cut off) and strace -c.
# daemon_cpu PID: its user + system CPU time so far, in clock ticks
daemon_cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2> /dev/null || echo 0; }
prof_start() { # TOOL ROW RUN
	PROF_STRACE='' PROF_MARK=0 PROF_PERF='' PROF_CPU='' PROF_CPUREC=''
	[[ -n $PID ]] || return 0
	if profiling cpu; then
		perf record -q -g -F 997 -p "$PID" -o "$WORK/profile/$1.$2.$3.cpu.perf" > /dev/null 2>&1 &
		PROF_CPUREC=$!
	fi
	if profiling fuse; then
		# the mount's FUSE connection is its anonymous device's minor number
		local conn
		conn=$(mountpoint -d "$MNT")
		conn=${conn#*:}
		perf record -q -a -o "$WORK/profile/$1.$2.$3.perf" \
			-e fuse:fuse_request_send --filter "connection == $conn" \
			-e fuse:fuse_request_end --filter "connection == $conn" > /dev/null 2>&1 &
		PROF_PERF=$!
		PROF_CPU=$(daemon_cpu "$PID")
		sleep 1 # recording before the clock starts
	fi
	if [[ -n $DEBUG_LOG ]]; then PROF_MARK=$(wc -l < "$DEBUG_LOG"); fi
	if profiling strace; then
		strace -f -c -o "$WORK/profile/$1.$2.$3.strace" -p "$PID" 2> /dev/null &
		PROF_STRACE=$!
		sleep 1 # attached to every thread before the clock starts
	fi
}
# fuse_summary PERFDATA: per opcode, the requests, their round trips in seconds (send to end:
# the time a caller waits for a synchronous one) and the mean in microseconds; FORGETs have no end
fuse_summary() {
	perf script -i "$1" -F time,event,trace 2> /dev/null | awk '
		{ t = $1; sub(/:$/, "", t)
		  for (i = 2; i < NF; i++) if ($i == "req") r = $(i + 1)
		  if ($2 ~ /fuse_request_send/) { match($0, /\(FUSE_[A-Z_0-9]+\)/)
			op = RSTART ? substr($0, RSTART + 6, RLENGTH - 7) : "other"; n[op]++; sent[r] = t; opof[r] = op }
		  else if (r in sent) { d = t - sent[r]; s[opof[r]] += d; ended[opof[r]]++; delete sent[r] } }
		END { for (op in n) { tot += s[op]; cnt += n[op]
			printf "%s %d %.3f %.0f\n", op, n[op], s[op], ended[op] ? s[op] / ended[op] * 1e6 : 0 }
		      printf "total %d %.3f %.0f\n", cnt, tot, cnt ? tot / cnt * 1e6 : 0 }' | sort -k3,3 -rn
}
prof_stop() { # TOOL ROW RUN
	if [[ -n $PROF_STRACE ]]; then
		kill -INT "$PROF_STRACE" 2> /dev/null || true
		wait "$PROF_STRACE" 2> /dev/null || true
	fi
	if [[ -n $PROF_CPUREC ]]; then
		kill -INT "$PROF_CPUREC" 2> /dev/null || true
		wait "$PROF_CPUREC" 2> /dev/null || true
		perf report -i "$WORK/profile/$1.$2.$3.cpu.perf" --no-children --sort dso,sym --stdio 2> /dev/null |
			awk '/^ +[0-9.]+%/ { print }' | head -n 40 > "$WORK/profile/$1.$2.$3.cpu.top"
	fi
	if [[ -n $PROF_PERF ]]; then
		echo "$(($(daemon_cpu "$PID") - PROF_CPU)) $(getconf CLK_TCK)" > "$WORK/profile/$1.$2.$3.cpu"
		kill -INT "$PROF_PERF" 2> /dev/null || true
		wait "$PROF_PERF" 2> /dev/null || true
		fuse_summary "$WORK/profile/$1.$2.$3.perf" > "$WORK/profile/$1.$2.$3.fuse"
		rm -f "$WORK/profile/$1.$2.$3.perf"
	fi
	if [[ -n $DEBUG_LOG && -f $DEBUG_LOG ]]; then
		tail -n +$((PROF_MARK + 1)) "$DEBUG_LOG" | grep -o 'opcode: [A-Z_0-9][A-Z_0-9]*' | cut -d' ' -f2 |
			sort | uniq -c | sort -rn > "$WORK/profile/$1.$2.$3.requests"
	fi
}

# measure TOOL ROW RUN: fresh mount, drop caches, time do_ROW (rand: fio); unmount
measure() {
	local tool=$1 row=$2 run=$3 t v pkgs=
	MNT='' UPPER='' PID='' DEBUG_LOG=''
	if profiling requests && [[ $tool == cairn* || $tool == fuse-overlayfs ]]; then
		DEBUG_LOG=$WORK/profile/$tool.$row.$run.debug
	fi
	"mount_$tool" || { fail "$tool" "mount failed" "${DEBUG_LOG:-$WORK/$tool-mount.log}"; return 1; }
	case $row in
	apt) pkgs=$APT_PKGS ;;
	dpkg) pkgs=$DPKG_PKGS ;;
	esac
	if [[ $row == apt || $row == dpkg ]]; then
		if [[ $row == apt ]]; then v=$DEBS_APT; else v=$DEBS_DPKG; fi
		chroot_setup "$v" || { fail "$tool" "$row: mounting /dev, /proc or the .debs in the chroot failed"; chroot_teardown; "umount_$tool" || true; return 1; }
	fi
	bench_drop_caches
	prof_start "$tool" "$row" "$run"
	PROF_WRAP=()
	if profiling client; then PROF_WRAP=(strace -f -w -c -o "$WORK/profile/$tool.$row.$run.client"); fi
	if [[ $row == rand ]]; then
		if v=$(bench_fio_randread "$MNT/$RBIG" "$FIO_RUNTIME" "$TO" "$WORK/fio.err"); then
			rec "$tool" rand "$v"
			[[ -n $PID ]] && rec "$tool" rss "$(bench_rss_anon "$PID")"
		else
			fail "$tool" "rand: fio failed" "$WORK/fio.err" || true
		fi
	elif bench_time t timeout "$TO" "${PROF_WRAP[@]}" bash -c "$(declare -f flush in_chroot "do_$row"); MNT='$MNT' UPPER='$UPPER' TAR='$TAR' BIG='$BIG' ERR='$WORK/$row.err' PKGS='$pkgs' do_$row"; then
		rec "$tool" "$row" "$t"
	else
		fail "$tool" "$row failed (exit $?)" "$WORK/$row.err" || true
	fi
	prof_stop "$tool" "$row" "$run"
	[[ $row == apt || $row == dpkg ]] && chroot_teardown
	if [[ $row == append && -z ${FAILED[$tool]:-} ]]; then
		# the byte is there, the rest is the image's
		[[ $(stat -c %s "$MNT/$BIG") == $((BIG_BYTES + 1)) ]] && cmp -s -n "$BIG_BYTES" "$MNT/$BIG" "$T/$BIG" ||
			fail "$tool" "append: /$BIG is not the image's bytes plus one" || true
	fi
	if [[ $row == cpa && -z ${FAILED[$tool]:-} ]]; then
		# the copy is the image's /usr, byte for byte
		diff -r --no-dereference "$T/usr" "$MNT/usr.copy" > "$WORK/cpa.diff" 2>&1 ||
			fail "$tool" "cp -a: the copy differs from the image's /usr" "$WORK/cpa.diff" || true
	fi
	if [[ $row == chown ]]; then
		rec "$tool" upper_du "$(bench_du "${UPPER%/tree}" 2> /dev/null || echo n/a)"
		if [[ -s $WORK/chown.err ]]; then
			INFO[$tool.chown_err]="chown -R failed on $(grep -c '' "$WORK/chown.err") entries, e.g. $(head -n 1 "$WORK/chown.err")"
		fi
	fi
	"umount_$tool" || true
	[[ -z $DEBUG_LOG ]] || rm -f "$DEBUG_LOG"
	[[ -z ${FAILED[$tool]:-} ]]
}

for ((run = 1; run <= RUNS; run++)); do
	n=${#tools[@]}
	for ((k = 0; k < n; k++)); do
		tool=${tools[$(((k + run - 1) % n))]}
		for row in "${rows[@]}"; do
			[[ -n ${FAILED[$tool]:-} ]] && break
			bench_log "run $run/$RUNS: $tool: $row"
			measure "$tool" "$row" "$run" || break
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
mib() { [[ $1 == n/a ]] && { echo n/a; return; }; awk -v v="$1" 'BEGIN { printf "%.1f\n", v / 1048576 }'; }
label() {
	case $1 in
	overlay) echo "overlayfs (kernel)" ;;
	overlay-metacopy) echo "overlayfs metacopy=on" ;;
	*) echo "$1" ;;
	esac
}
declare -A M=()
for tool in "${tools[@]}"; do
	for m in apt dpkg untar write append chown cpa rand rss upper_du; do M[$tool.$m]=$(med "$tool" "$m"); done
done
m_or_na() { [[ ${M[$1]+set} ]] && echo "${M[$1]}" || echo n/a; }
rss_mib() { [[ ${M[$1.rss]:-n/a} == n/a ]] && { echo n/a; return; }; mib "${M[$1.rss]}"; }

bench_table_reset
bench_table_row tool "apt-get install s" "dpkg -i s" "untar s" "write 1G s" "write MB/s" "append ms" \
	"chown -R s" "cp -a /usr s" "rand 4k cold IOPS" "RssAnon MiB" "upper after chown"
for tool in "${tools[@]}"; do
	bench_table_row "$(label "$tool")" "$(num 2 "${M[$tool.apt]}")" "$(num 2 "${M[$tool.dpkg]}")" \
		"$(num 2 "${M[$tool.untar]}")" "$(num 2 "${M[$tool.write]}")" \
		"$(bench_mbps $((1 << 30)) "${M[$tool.write]}")" "$(ms "${M[$tool.append]}")" \
		"$(num 2 "${M[$tool.chown]}")" "$(num 2 "${M[$tool.cpa]}")" "$(num 0 "${M[$tool.rand]}")" \
		"$(rss_mib "$tool")" "$(bench_human "${M[$tool.upper_du]}")"
done

TARGETS=()
target() { # LABEL VALUE OP TARGET [CAIRN PEERS]: a line here, a row for tests/bench/run.sh
	local verdict
	verdict=$(bench_verdict "$2" "$3" "$4")
	TARGETS+=("$1: $2 (target $3 $4: $verdict)")
	bench_result upper "$1" "${5:--}" "${6:--}" "$2" "$3 $4" "$verdict"
}
# time_target LABEL METRIC PEER LIMIT: cairn's time over PEER's, at most LIMIT
time_target() {
	target "$1, cairn / $(label "$3")" "$(bench_ratio "$(m_or_na "cairn.$2")" "$(m_or_na "$3.$2")")" "<=" "$4" \
		"$(m_or_na "cairn.$2") s" "$(label "$3") $(m_or_na "$3.$2") s"
}
time_target "apt-get install time" apt overlay 1.2
time_target "dpkg -i time" dpkg overlay 1.2
time_target "untar time" untar overlay 2.5
time_target "write 1G time" write overlay 1.1
time_target "chown -R time" chown overlay-metacopy 1
time_target "append (copy-up) time" append overlay 1
target "rand 4k cold IOPS, cairn / fuse-overlayfs" \
	"$(bench_ratio "$(m_or_na cairn.rand)" "$(m_or_na fuse-overlayfs.rand)")" ">=" 1 \
	"$(m_or_na cairn.rand)" "fuse-overlayfs $(m_or_na fuse-overlayfs.rand)"
target "cairn RssAnon MiB after the random reads (cache $CAIRN_CACHE_SIZE)" "$(rss_mib cairn)" "<=" \
	"$(awk -v b="$CAIRN_CACHE_BYTES" 'BEGIN { printf "%.1f", b / 1048576 + 16 }')"
# the rest, for context: cairn and the peers against fuse-overlayfs and kernel overlayfs
PEERS=()
for m in apt dpkg untar write chown cpa; do
	PEERS+=("$m time: cairn / fuse-overlayfs $(bench_ratio "$(m_or_na "cairn.$m")" "$(m_or_na "fuse-overlayfs.$m")"), fuse-overlayfs / overlayfs (kernel) $(bench_ratio "$(m_or_na "fuse-overlayfs.$m")" "$(m_or_na "overlay.$m")"), cairn / overlayfs (kernel) $(bench_ratio "$(m_or_na "cairn.$m")" "$(m_or_na "overlay.$m")")")
done
for v in "${VARIANTS[@]}"; do
	has_tool "$v" || continue
	for m in "${rows[@]}"; do
		[[ $m == rand ]] && continue
		PEERS+=("$m time: cairn / $v $(bench_ratio "$(m_or_na "cairn.$m")" "$(m_or_na "$v.$m")"), $v / overlayfs (kernel) $(bench_ratio "$(m_or_na "$v.$m")" "$(m_or_na "overlay.$m")")")
	done
	! has_row rand || PEERS+=("rand IOPS: cairn / $v $(bench_ratio "$(m_or_na cairn.rand)" "$(m_or_na "$v.rand")")")
done

# The profiles of the last run: each row's FUSE requests (total and by opcode) and the daemon's
# most frequent system calls.
profile_report() { # PREFIX
	local f tool row
	echo
	printf '%s\n' "${1}profiles (BENCH_PROFILE=$PROFILE, run $RUNS; the files in $WORK/profile):"
	for row in "${rows[@]}"; do
		for tool in cairn "${VARIANTS[@]}" fuse-overlayfs overlay overlay-metacopy; do
			f=$WORK/profile/$tool.$row.$RUNS.requests
			[[ -s $f ]] && printf '%s%s %s: %s requests: %s\n' "$1" "$row" "$tool" \
				"$(awk '{ s += $1 } END { print s }' "$f")" "$(awk '{ printf "%s%s %d", (NR > 1 ? ", " : ""), $2, $1 }' "$f")"
			f=$WORK/profile/$tool.$row.$RUNS.fuse
			[[ -s $f ]] && printf '%s%s %s: %s requests, %s s of round trips (mean %s us), daemon CPU %s s; by round-trip time: %s\n' "$1" "$row" "$tool" \
				"$(awk '$1 == "total" { print $2 }' "$f")" "$(awk '$1 == "total" { print $3 }' "$f")" \
				"$(awk '$1 == "total" { print $4 }' "$f")" \
				"$(awk '{ printf "%.2f", $1 / $2 }' "$WORK/profile/$tool.$row.$RUNS.cpu" 2> /dev/null)" \
				"$(awk '$1 != "total" { printf "%s%s %d %.2f s %d us", (n++ ? ", " : ""), $1, $2, $3, $4 }' "$f" | cut -d, -f1-12)"
			f=$WORK/profile/$tool.$row.$RUNS.strace
			[[ -s $f ]] && printf '%s%s %s: syscalls %s; by count: %s\n' "$1" "$row" "$tool" \
				"$(awk '$NF == "total" { print $4 }' "$f")" \
				"$(awk '$1 ~ /^[0-9.]+$/ && $NF != "total" { print $4, $NF }' "$f" |
					sort -rn | head -n 12 | awk '{ printf "%s%s %d", (NR > 1 ? ", " : ""), $2, $1 }')"
			f=$WORK/profile/$tool.$row.$RUNS.cpu.top
			[[ -s $f ]] && printf '%s%s %s: daemon CPU by symbol (perf, self): %s\n' "$1" "$row" "$tool" \
				"$(head -n 12 "$f" | awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $NF, $1 }')"
			f=$WORK/profile/$tool.$row.$RUNS.client
			[[ -s $f ]] && printf '%s%s %s: client in system calls %s s (%s calls); by seconds: %s\n' "$1" "$row" "$tool" \
				"$(awk '$NF == "total" { print $2 }' "$f")" "$(awk '$NF == "total" { print $4 }' "$f")" \
				"$(awk '$1 ~ /^[0-9.]+$/ && $NF != "total" { print $2, $4, $NF }' "$f" |
					sort -rn | head -n 12 | awk '{ printf "%s%s %.2f s %d", (NR > 1 ? ", " : ""), $3, $1, $2 }')"
		done
	done
	return 0
}

report() { # text|md
	local fmt=$1 pre='' tool
	[[ $fmt == md ]] && pre='- '
	printf '%s\n' "${pre}lower: debootstrap --variant=minbase $SUITE after apt-get upgrade (lists kept) + /$BIG (100 MB random) + /$RBIG ($RBIG_MIB MiB semi-compressible): $TREE_FILES files, $(bench_human "$TREE_BYTES") of file data; /usr: $USR_FILES entries, $(bench_human "$USR_BYTES")"
	printf '%s\n' "${pre}apt-get install $APT_PKGS: $N_APT .debs; dpkg -i: the $N_DPKG .debs of $DPKG_PKGS (in apt's order); in a chroot with /dev, /proc and the .debs mounted, no network${TAR_BYTES:+; untar source: rootfs-v2, $TAR_FILES files, $(bench_human "$TAR_BYTES") tar}"
	printf '%s\n' "${pre}median of $RUNS run(s), a fresh mount and upper and dropped caches for each figure, every time ends with sync -f of the mount and of the upper; rand: fio randread 4k psync ${FIO_RUNTIME}s; $(nproc) CPUs, $(uname -r), upper on $(df --output=fstype "$WORK" | tail -n 1), load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
	printf '%s\n' "${pre}$(fuse-overlayfs --version 2>&1 | grep -m1 '^fuse-overlayfs'); overlayfs (kernel): the module's defaults (redirect_dir=$(cat /sys/module/overlay/parameters/redirect_dir 2> /dev/null || echo ?), metacopy=$(cat /sys/module/overlay/parameters/metacopy 2> /dev/null || echo ?), index=$(cat /sys/module/overlay/parameters/index 2> /dev/null || echo ?))"
	[[ -n ${INFO[cairn.import]:-} ]] && printf '%s\n' "${pre}cairn: $CAIRN, --cache-size $CAIRN_CACHE_SIZE${BENCH_CAIRN_MOUNT_OPTS:+ $BENCH_CAIRN_MOUNT_OPTS}, import of the lower $(num 1 "${INFO[cairn.import]}") s"
	for v in "${!VARIANT[@]}"; do printf '%s\n' "${pre}cairn-$v: ${VARIANT[$v]}, on a store of its own"; done
	echo
	if [[ $fmt == md ]]; then bench_table_md; else bench_table_print; fi
	echo
	for l in "${TARGETS[@]}" "${PEERS[@]}"; do printf '%s%s\n' "$pre" "$l"; done
	[[ -z $PROFILE ]] || profile_report "$pre"
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
