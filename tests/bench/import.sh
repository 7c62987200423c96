#!/usr/bin/env bash
# Import benchmark: a real Debian root filesystem (debootstrap --variant=minbase) as v1 and the same
# tree after `apt-get upgrade` plus a few packages as v2, imported into one store by cairn and,
# side by side in the same run, by its peers: ostree (archive-mode repo), casync (one chunk store)
# and tar | zstd -3. Sizes are compared like for like: disk usage (du --block-size=1) of each
# store directory. Timings are warm (the source trees are read once before timing), median of
# BENCH_RUNS runs, each with fresh stores.
#
# Environment:
#   CAIRN              cairn binary (default: <repo>/build/tools/cairn); missing or failing -> n/a
#   CAIRN_BENCH_CACHE  where rootfs-v1/rootfs-v2 are built once and kept (/var/cache/cairn-bench)
#   BENCH_RUNS         timing runs per tool (3)
#   BENCH_TOOLS        tools to run, among: cairn ostree casync tar (all)
#   BENCH_MD           also write the results as markdown to this file
#   BENCH_V2_PACKAGES  packages added in v2 ("less vim-tiny iproute2 procps")
#   BENCH_V2_UPGRADE   1: v2 also runs apt-get upgrade from -updates and -security (1)
#   BENCH_PREPARE_ONLY 1: build the cache and exit
#   BENCH_SUITE        Debian suite (bookworm); BENCH_MIRROR, BENCH_SECURITY_MIRROR override the
#                      mirrors read from the host's apt sources
#   TMPDIR             work directory parent (/tmp)
# Needs root (debootstrap, chroot, and reading every file of the trees).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"

CACHE=${CAIRN_BENCH_CACHE:-/var/cache/cairn-bench}
CAIRN=${CAIRN:-$repo/build/tools/cairn}
RUNS=${BENCH_RUNS:-3}
TOOLS=${BENCH_TOOLS:-cairn ostree casync tar}
SUITE=${BENCH_SUITE:-bookworm}
V2_PACKAGES=${BENCH_V2_PACKAGES:-less vim-tiny iproute2 procps}
V2_UPGRADE=${BENCH_V2_UPGRADE:-1}
V1=$CACHE/rootfs-v1
V2=$CACHE/rootfs-v2

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || bench_die "BENCH_RUNS must be a positive integer, got '$RUNS'"
[[ $(id -u) == 0 ]] || bench_die "run as root (debootstrap, chroot, reading every file of the trees)"

WORK=
cleanup() {
	local rc=$?
	# A chroot build interrupted half way may leave /proc mounted inside the cache.
	if [[ -d $CACHE ]]; then bench_unmount_under "$CACHE"; fi
	if [[ -n $WORK && -d $WORK ]]; then rm -rf --one-file-system "$WORK"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# Source trees (cached)

MIRROR=${BENCH_MIRROR:-$(bench_host_uri '/debian$')}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${BENCH_SECURITY_MIRROR:-$(bench_host_uri '/debian-security$')}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}

v1_stamp_text() { printf 'debootstrap --variant=minbase %s %s apt-caches=cleaned\n' "$SUITE" "$MIRROR"; }
v2_stamp_text() { printf 'upgrade=%s packages=%s apt-caches=cleaned\n' "$V2_UPGRADE" "$V2_PACKAGES"; }

# clean_apt_caches ROOT: drop apt's package lists (85 MB of text after an update) and downloaded
# .debs (debootstrap leaves 31 MB of them), as image builders do (debuerreotype, Debian's
# container images): they are caches, not the system.
clean_apt_caches() {
	find "$1/var/lib/apt/lists" "$1/var/cache/apt" -xdev -mindepth 1 -type f ! -name lock -delete
}

build_v1() {
	bench_log "building $V1 (debootstrap --variant=minbase $SUITE $MIRROR; a few minutes)"
	rm -f "$V1.stamp" "$V2.stamp"
	bench_rm_tree "$V1"
	debootstrap --variant=minbase "$SUITE" "$V1" "$MIRROR" > "$CACHE/debootstrap.log" 2>&1 ||
		{ tail -n 20 "$CACHE/debootstrap.log" >&2; bench_die "debootstrap failed (log: $CACHE/debootstrap.log)"; }
	bench_unmount_under "$V1"
	clean_apt_caches "$V1"
	v1_stamp_text > "$V1.stamp"
}

build_v2() {
	local added_resolv=0
	bench_log "building $V2 (v1 + upgrade=$V2_UPGRADE + $V2_PACKAGES)"
	rm -f "$V2.stamp"
	bench_rm_tree "$V2"
	cp -a "$V1" "$V2"
	{
		printf 'deb %s %s main\n' "$MIRROR" "$SUITE"
		if [[ $V2_UPGRADE == 1 ]]; then
			printf 'deb %s %s-updates main\n' "$MIRROR" "$SUITE"
			printf 'deb %s %s-security main\n' "$SECURITY_MIRROR" "$SUITE"
		fi
	} > "$V2/etc/apt/sources.list"
	printf '#!/bin/sh\nexit 101\n' > "$V2/usr/sbin/policy-rc.d"
	chmod 755 "$V2/usr/sbin/policy-rc.d"
	if [[ ! -e $V2/etc/resolv.conf && -f /etc/resolv.conf ]]; then
		cp /etc/resolv.conf "$V2/etc/resolv.conf"
		added_resolv=1
	fi
	mount -t proc proc "$V2/proc"
	# shellcheck disable=SC2016 # expanded inside the chroot
	chroot "$V2" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C \
		DEBIAN_FRONTEND=noninteractive UPGRADE="$V2_UPGRADE" PKGS="$V2_PACKAGES" /bin/sh -ec '
			apt-get update -q
			if [ "$UPGRADE" = 1 ]; then apt-get -y -q -o Dpkg::Options::=--force-confold upgrade; fi
			# shellcheck disable=SC2086
			apt-get -y -q --no-install-recommends install $PKGS
			apt-get clean
		' > "$CACHE/v2-build.log" 2>&1 ||
		{ tail -n 20 "$CACHE/v2-build.log" >&2; bench_die "building v2 failed (log: $CACHE/v2-build.log)"; }
	umount "$V2/proc"
	rm -f "$V2/usr/sbin/policy-rc.d"
	if ((added_resolv)); then rm -f "$V2/etc/resolv.conf"; fi
	clean_apt_caches "$V2"
	v2_stamp_text > "$V2.stamp"
}

prepare_cache() {
	mkdir -p "$CACHE"
	exec 9> "$CACHE/.lock"
	flock 9 # several benchmarks may start at once: one builds, the others wait
	if [[ ! -f $V1.stamp || $(cat "$V1.stamp") != "$(v1_stamp_text)" ]]; then build_v1; fi
	if [[ ! -f $V2.stamp || $(cat "$V2.stamp") != "$(v2_stamp_text)" ]]; then build_v2; fi
	exec 9>&-
}

bench_need_pkgs debootstrap:debootstrap ostree:ostree casync:casync zstd:zstd flock:util-linux
prepare_cache
if [[ ${BENCH_PREPARE_ONLY:-0} == 1 ]]; then
	bench_log "cache ready: $V1 $V2"
	exit 0
fi

# ---------------------------------------------------------------------------------------------
# Measurements

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cairn-bench-import.XXXXXX")

bench_log "measuring the source trees"
V1_BYTES=$(bench_tree_bytes "$V1")
V2_BYTES=$(bench_tree_bytes "$V2")
V1_FILES=$(bench_tree_files "$V1")
V2_FILES=$(bench_tree_files "$V2")
bench_log "warming the page cache (tar of both trees)"
bench_warm "$V1"
bench_warm "$V2"

# ostree cannot store device nodes, sockets or fifos, and its --skip-list only takes effect on
# the directories holding them: skip those directories (minbase: /dev, as on an ostree system).
find "$V1" "$V2" -xdev \( -type b -o -type c -o -type p -o -type s \) -printf '%h\n' |
	sed -e "s:^$V1::" -e "s:^$V2::" | grep -v '^$' | sort -u > "$WORK/ostree-skip" || true
OSTREE_SKIPPED=$(sed "s:^:$V1:" "$WORK/ostree-skip" | xargs -r -I{} find {} -xdev 2> /dev/null | wc -l || true)

declare -A R=()        # R[tool.metric] = values of every run, space separated
declare -A FAILED=()   # FAILED[tool] = reason
rec() { R[$1.$2]+=" $3"; }

fail() { # TOOL STEP LOG (called right after the failing command: $? is its status)
	local rc=$?
	FAILED[$1]="$2 failed, exit $rc: $(tail -n 3 "$3" 2> /dev/null | tr '\n' ' ')"
	bench_log "$1: ${FAILED[$1]}"
	return 1
}

# Each tool_X RUN performs v1 then v2 into fresh storage under $WORK/X and records
# t1 t2 (seconds), du1 du2 (bytes); returns non-zero (after fail) if the tool failed.

tool_cairn() {
	local s=$WORK/cairn/store log=$WORK/cairn.log t1 t2 json
	if [[ ! -x $CAIRN ]]; then
		FAILED[cairn]="binary not found: $CAIRN"
		return 1
	fi
	rm -rf "$WORK/cairn"
	mkdir -p "$s"
	sync
	bench_time t1 "$CAIRN" --store "$s" import "$V1" --tag v1 > "$log" 2>&1 || fail cairn "import v1" "$log" || return
	rec cairn t1 "$t1"
	rec cairn du1 "$(bench_du "$s")"
	json=$("$CAIRN" --store "$s" du --json 2> /dev/null || true)
	rec cairn used1 "$(bench_json_int store_used_bytes <<< "$json")"
	rec cairn file1 "$(bench_json_int store_file_bytes <<< "$json")"
	sync
	bench_time t2 "$CAIRN" --store "$s" import "$V2" --tag v2 > "$log" 2>&1 || fail cairn "import v2" "$log" || return
	rec cairn t2 "$t2"
	rec cairn du2 "$(bench_du "$s")"
	json=$("$CAIRN" --store "$s" du --json 2> /dev/null || true)
	rec cairn used2 "$(bench_json_int store_used_bytes <<< "$json")"
	rec cairn file2 "$(bench_json_int store_file_bytes <<< "$json")"
}

tool_ostree() {
	local r=$WORK/ostree/repo log=$WORK/ostree.log t1 t2
	rm -rf "$WORK/ostree"
	mkdir -p "$r"
	ostree --repo="$r" init --mode=archive > "$log" 2>&1 || fail ostree init "$log" || return
	sync
	bench_time t1 ostree --repo="$r" commit --branch=bench --subject=v1 --skip-list="$WORK/ostree-skip" \
		--tree=dir="$V1" > "$log" 2>&1 || fail ostree "commit v1" "$log" || return
	rec ostree t1 "$t1"
	rec ostree du1 "$(bench_du "$r")"
	sync
	bench_time t2 ostree --repo="$r" commit --branch=bench --subject=v2 --skip-list="$WORK/ostree-skip" \
		--tree=dir="$V2" > "$log" 2>&1 || fail ostree "commit v2" "$log" || return
	rec ostree t2 "$t2"
	rec ostree du2 "$(bench_du "$r")"
}

tool_casync() {
	# The store and the indexes (both needed to get a tree back) count as casync's disk usage.
	local d=$WORK/casync log=$WORK/casync.log t1 t2
	rm -rf "$d"
	mkdir -p "$d"
	sync
	bench_time t1 casync make --store="$d/store" "$d/v1.caidx" "$V1" > "$log" 2>&1 || fail casync "make v1" "$log" || return
	rec casync t1 "$t1"
	rec casync du1 "$(bench_du "$d")"
	sync
	bench_time t2 casync make --store="$d/store" "$d/v2.caidx" "$V2" > "$log" 2>&1 || fail casync "make v2" "$log" || return
	rec casync t2 "$t2"
	rec casync du2 "$(bench_du "$d")"
}

tar_zstd() { # SRC OUT
	tar -C "$1" --numeric-owner --xattrs --xattrs-include='*' --acls -cf - . | zstd -3 -q -o "$2"
}

tool_tar() {
	local d=$WORK/tar log=$WORK/tar.log t1 t2
	rm -rf "$d"
	mkdir -p "$d"
	sync
	bench_time t1 tar_zstd "$V1" "$d/v1.tar.zst" > "$log" 2>&1 || fail tar "tar v1" "$log" || return
	rec tar t1 "$t1"
	rec tar du1 "$(bench_du "$d")"
	sync
	bench_time t2 tar_zstd "$V2" "$d/v2.tar.zst" > "$log" 2>&1 || fail tar "tar v2" "$log" || return
	rec tar t2 "$t2"
	rec tar du2 "$(bench_du "$d")"
}

read -r -a tools <<< "$TOOLS"
for tool in "${tools[@]}"; do
	declare -F "tool_$tool" > /dev/null || bench_die "unknown tool in BENCH_TOOLS: $tool"
done

for ((run = 1; run <= RUNS; run++)); do
	for tool in "${tools[@]}"; do
		[[ -n ${FAILED[$tool]:-} ]] && continue
		bench_log "run $run/$RUNS: $tool"
		"tool_$tool" "$run" || true
		rm -rf "${WORK:?}/$tool"
	done
done

# ---------------------------------------------------------------------------------------------
# Report

med() { # TOOL METRIC
	local -a v
	read -r -a v <<< "${R[$1.$2]:-}"
	if [[ -n ${FAILED[$1]:-} || ${#v[@]} == 0 ]]; then echo n/a; else bench_median "${v[@]}"; fi
}
mib() { # BYTES -> MiB with one decimal
	[[ $1 == n/a ]] && { echo n/a; return; }
	awk -v b="$1" 'BEGIN { printf "%.1f\n", b / 1048576 }'
}

declare -A M=()
for tool in "${tools[@]}"; do
	for m in t1 t2 du1 du2 used1 used2 file1 file2; do M[$tool.$m]=$(med "$tool" "$m"); done
	M[$tool.add]=$(bench_sub "${M[$tool.du2]}" "${M[$tool.du1]}")
done

bench_table_reset
bench_table_row tool "v1 time s" "v1 MB/s" "v2 time s" "v2 MB/s" "du after v1 MiB" "du after v1+v2 MiB" "v2 added MiB"
for tool in "${tools[@]}"; do
	label=$tool
	case $tool in
	ostree) label="ostree (archive)" ;;
	tar) label="tar | zstd -3" ;;
	esac
	bench_table_row "$label" "${M[$tool.t1]}" "$(bench_mbps "$V1_BYTES" "${M[$tool.t1]}")" \
		"${M[$tool.t2]}" "$(bench_mbps "$V2_BYTES" "${M[$tool.t2]}")" \
		"$(mib "${M[$tool.du1]}")" "$(mib "${M[$tool.du2]}")" "$(mib "${M[$tool.add]}")"
done

target_line() { # LABEL VALUE TARGET
	local verdict=n/a
	if [[ $2 != n/a ]]; then
		if bench_le "$2" "$3"; then verdict=met; else verdict=MISSED; fi
	fi
	printf '%s: %s (target <= %s: %s)\n' "$1" "$2" "$3" "$verdict"
}

m_or_na() { [[ ${M[$1]+set} ]] && echo "${M[$1]}" || echo n/a; }

report() { # text|md
	local fmt=$1 pre='' tool
	[[ $fmt == md ]] && pre='- '
	printf '%s\n' "${pre}source v1: debootstrap --variant=minbase $SUITE: $V1_FILES files, $(bench_human "$V1_BYTES") of file data"
	printf '%s\n' "${pre}source v2: v1 + $( [[ $V2_UPGRADE == 1 ]] && echo 'apt-get upgrade + ')$V2_PACKAGES: $V2_FILES files, $(bench_human "$V2_BYTES") of file data"
	printf '%s\n' "${pre}median of $RUNS run(s), warm page cache, fresh stores per run; $(nproc) CPUs, $(uname -r); MB/s = file data / time"
	printf '%s\n' "${pre}du = du -s --block-size=1 of the store directory (casync: store + indexes; tar: the .tar.zst files)"
	[[ " $TOOLS " == *" cairn "* ]] && printf '%s\n' "${pre}cairn: $CAIRN"
	[[ " $TOOLS " == *" ostree "* ]] && ((OSTREE_SKIPPED)) && printf '%s\n' "${pre}ostree skips $(paste -sd, "$WORK/ostree-skip") ($OSTREE_SKIPPED objects of v1): it cannot store device nodes"
	echo
	if [[ $fmt == md ]]; then bench_table_md; else bench_table_print; fi
	echo
	if [[ " $TOOLS " == *" cairn "* ]]; then
		printf '%s' "$pre"
		printf 'cairn LMDB (cairn du --json): used %s after v1, %s after v1+v2; file %s after v1, %s after v1+v2\n' \
			"$(bench_human "${M[cairn.used1]}")" "$(bench_human "${M[cairn.used2]}")" \
			"$(bench_human "${M[cairn.file1]}")" "$(bench_human "${M[cairn.file2]}")"
	fi
	printf '%s' "$pre"
	target_line "ratio import v1 time, cairn / casync" \
		"$(bench_ratio "$(m_or_na cairn.t1)" "$(m_or_na casync.t1)")" 0.5
	printf '%s' "$pre"
	target_line "ratio du after v1+v2, cairn / ostree archive" \
		"$(bench_ratio "$(m_or_na cairn.du2)" "$(m_or_na ostree.du2)")" 0.9
	for tool in "${tools[@]}"; do
		[[ -n ${FAILED[$tool]:-} ]] && printf '%s%s: n/a (%s)\n' "$pre" "$tool" "${FAILED[$tool]}"
	done
	return 0
}

# summary rows for tests/bench/run.sh (BENCH_RESULTS)
peers_of() { # METRIC CONVERT PEER...: "peer value; ..." for the peers that ran
	local m=$1 conv=$2 p out=
	shift 2
	for p in "$@"; do
		[[ " $TOOLS " == *" $p "* ]] && out+="${out:+; }$p $("$conv" "$(m_or_na "$p.$m")")"
	done
	echo "${out:--}"
}
r=$(bench_ratio "$(m_or_na cairn.t1)" "$(m_or_na casync.t1)")
bench_result import "import v1 time s (debootstrap minbase, warm)" "$(m_or_na cairn.t1)" \
	"$(peers_of t1 echo casync ostree tar)" "$r" "<= 0.5 x casync" "$(bench_verdict "$r" "<=" 0.5)"
r=$(bench_ratio "$(m_or_na cairn.du2)" "$(m_or_na ostree.du2)")
bench_result import "store du after v1+v2 MiB" "$(mib "$(m_or_na cairn.du2)")" \
	"$(peers_of du2 mib ostree casync tar)" "$r" "<= 0.9 x ostree" "$(bench_verdict "$r" "<=" 0.9)"

echo
report text
if [[ -n ${BENCH_MD:-} ]]; then
	{
		echo "### Import benchmark ($(date -u +%Y-%m-%d))"
		echo
		report md
	} > "$BENCH_MD"
	bench_log "markdown written to $BENCH_MD"
fi
