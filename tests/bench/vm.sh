#!/usr/bin/env bash
# vm.sh - a VM's root on cairn against the same tree in a plain directory,
# through the same transport, for 9p and virtiofs; and what each guest cache
# mode costs and whether a live switch stays atomic inside the guest with it.
#
#   BENCH_MD=out.md tests/bench/vm.sh
#
# The images are examples/vm.sh's (a debootstrap minbase with systemd and
# the cairn-release package, vm-v1 and vm-v2), made in the bench's own store
# by 'VM_BUILD_ONLY=1 examples/vm.sh'; the plain directory is 'cairn export
# vm-v1' unpacked. Each VM is qemu with the Debian kernel of examples/vmlib.sh
# (KVM when it boots, else TCG), host caches dropped before each boot.
#
# Table 1 (root on cairn vs plain, each transport with its recommended cache
# mode, none): boot to multi-user (qemu start to 'systemctl
# is-system-running --wait'), then inside the guest a metadata walk
# (find / -xdev -printf '%s %m %U %G %T@': numeric owners, so no
# /etc/passwd read per entry) and reading every file of /usr. The
# boots are interleaved (each run boots cairn and plain through 9p and
# through virtiofs, which of cairn and plain goes first alternating) so
# that a change in the machine's load falls on both sides; each boot gets a
# fresh upper (cairn) or a fresh copy of the plain tree (what the guest
# wrote last time is gone).
# Table 2 (cairn, each cache mode): the same walk and read twice in one
# boot, with the agent shell as PID 1 (no systemd), then the atomicity probe
# over BENCH_SWITCHES upgrades and rollbacks (mixed pairs: 0 required).
#
# Environment: BENCH_RUNS (boots per cell of table 1, default 3), BENCH_SWITCHES
# (default 10), BENCH_MODES_9P (default "none mmap loose fscache"),
# BENCH_MODES_VIRTIOFS (default "none auto always"), BENCH_TABLES (default
# "1 2"), BENCH_STORE (default a store in the work directory), CAIRN, TMPDIR,
# and examples/vmlib.sh's VM_ACCEL, VM_MEM, VM_SMP.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"
# shellcheck source=examples/vmlib.sh
. "$repo/examples/vmlib.sh"

CAIRN=${CAIRN:-$repo/build/tools/cairn}
[[ -x $CAIRN ]] || bench_die "no cairn binary at $CAIRN (meson compile -C build, or set CAIRN)"
[[ $(id -u) == 0 ]] || bench_die "run as root (mounts, qemu, drop_caches)"
RUNS=${BENCH_RUNS:-3}
SWITCHES=${BENCH_SWITCHES:-10}
MODES_9P=${BENCH_MODES_9P:-none mmap loose fscache}
TABLES=${BENCH_TABLES:-1 2}
MODES_VIRTIOFS=${BENCH_MODES_VIRTIOFS:-none auto always}

work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-bench-vm.XXXXXX")
chmod 700 "$work"
store=${BENCH_STORE:-$work/store}
mnt=$work/mnt/root
plain=$work/plain
mkdir -p "$mnt"
cairn() { "$CAIRN" --store "$store" "$@"; }

cleanup() {
	local rc=$?
	set +e
	vm_kill
	if bench_is_mounted "$mnt"; then
		timeout 60 "$CAIRN" --store "$store" umount "$mnt" >/dev/null 2>&1 || bench_force_unmount "$mnt"
	fi
	rm -rf --one-file-system "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# plain_fresh: $plain is vm-v1 as 'cairn export' writes it, nothing else
plain_fresh() {
	rm -rf --one-file-system "$plain"
	mkdir -p "$plain"
	bsdtar -x -p -S --acls --xattrs --numeric-owner --same-owner -f "$work/plain.tar" -C "$plain"
}

bench_log "the images: VM_BUILD_ONLY=1 examples/vm.sh into $store"
CAIRN=$CAIRN CAIRN_STORE=$store VM_BUILD_ONLY=1 TMPDIR=$work "$repo/examples/vm.sh" >"$work/build.log" 2>&1 ||
	{ tail -n 30 "$work/build.log"; bench_die "examples/vm.sh could not build the images"; }
cairn upgrade vm-bench vm-v1 >/dev/null
cairn export vm-v1 >"$work/plain.tar"
plain_fresh
nfiles=$(bench_tree_files "$plain")
bytes=$(bench_tree_bytes "$plain/usr")
vm_kernel >/dev/null
vm_accel
bench_log "tree: $nfiles entries, /usr $(bench_human "$bytes") of file data; $vm_accel"

# root_up KIND: the root to boot: a fresh writable cairn mount of vm-bench
# (cairn), or a fresh copy of the plain tree
root_up() {
	if [[ $1 == cairn ]]; then
		rm -rf "$work/upper"
		cairn mount vm-bench "$mnt" --upper "$work/upper" --nosuid >/dev/null
		root=$mnt
	else
		plain_fresh
		root=$plain
	fi
}
root_down() {
	if [[ $1 == cairn ]]; then cairn umount "$mnt" >/dev/null; fi
}

# guest_times: "WALK_S READ_S" measured inside the guest
guest_times() {
	vm_run -t 1800 's=$(date +%s.%N); find / -xdev -printf "%s %m %U %G %T@\n" >/dev/null; w=$(date +%s.%N)
		find /usr -xdev -type f -print0 | xargs -0 cat >/dev/null; r=$(date +%s.%N)
		echo "$s $w $r"' | awk '{ printf "%.3f %.3f\n", $2 - $1, $3 - $2 }'
}

# boot KIND TRANSPORT CACHE INIT: sets BOOT_S; the VM is up and answering
boot() {
	local t0
	root_up "$1"
	bench_drop_caches
	export VM_INIT=$4
	t0=$(bench_now)
	vm_start "$work/vm" "$2" "$root" "$3" || bench_die "qemu did not start"
	vm_wait_agent 1800 || { tail -n 20 "$work/vm/console.log" >&2; bench_die "no agent in the guest"; }
	if [[ $4 != agent ]]; then
		vm_run -t 1800 'systemctl is-system-running --wait' >/dev/null || true
		[[ $(vm_run 'systemctl is-active multi-user.target') == active ]] || bench_die "multi-user.target is not active"
	fi
	BOOT_S=$(awk -v a="$t0" -v b="$(bench_now)" 'BEGIN { printf "%.2f", b - a }')
}
shutdown() {
	vm_poweroff 600 || { vm_kill; bench_die "the guest did not power off"; }
	root_down "$1"
}

load() { cut -d' ' -f1 /proc/loadavg; }
loads=()
declare -A R
if [[ " $TABLES " == *" 1 "* ]]; then
	declare -A B W D
	for i in $(seq "$RUNS"); do
		kinds=(cairn plain)
		((i % 2)) || kinds=(plain cairn)
		for transport in 9p virtiofs; do
			for kind in "${kinds[@]}"; do
				loads+=("$(load)")
				boot "$kind" "$transport" none /sbin/init
				read -r ws rs < <(guest_times)
				shutdown "$kind"
				bench_log "run $i, $transport $kind: boot $BOOT_S s, walk $ws s, read /usr $rs s (load ${loads[-1]})"
				B[$transport.$kind]+=" $BOOT_S" W[$transport.$kind]+=" $ws" D[$transport.$kind]+=" $rs"
			done
		done
	done
	for transport in 9p virtiofs; do
		for kind in cairn plain; do
			# shellcheck disable=SC2086 # the lists of values
			R[$transport.$kind.boot]=$(bench_median ${B[$transport.$kind]})
			# shellcheck disable=SC2086
			R[$transport.$kind.walk]=$(bench_median ${W[$transport.$kind]})
			# shellcheck disable=SC2086
			R[$transport.$kind.read]=$(bench_median ${D[$transport.$kind]})
		done
	done
fi

# live_verdict MIXED STRADDLED: a switch is live and atomic inside the guest
# when it saw the switches (samples straddled them) and never a mixed pair;
# a guest that saw no switch at all kept reading what it had cached
live_verdict() {
	if (($1 > 0)); then echo "NO: mixed"
	elif (($2 == 0)); then echo "NO: never saw a switch (stale)"
	else echo yes; fi
}

declare -A M
for transport in 9p virtiofs; do
	[[ " $TABLES " == *" 2 "* ]] || break
	if [[ $transport == 9p ]]; then modes=$MODES_9P; else modes=$MODES_VIRTIOFS; fi
	for mode in $modes; do
		loads+=("$(load)")
		boot cairn "$transport" "$mode" agent
		read -r ws rs < <(guest_times)
		read -r ws2 rs2 < <(guest_times)
		vm_probe_start /etc/cairn-release /usr/share/cairn-release/version
		for i in $(seq "$SWITCHES"); do
			sleep 1.5
			if ((i % 2)); then cairn upgrade vm-bench vm-v2 >/dev/null; else cairn rollback vm-bench >/dev/null; fi
		done
		sleep 1.5
		read -r samples mixed straddled < <(vm_probe_stop)
		shutdown cairn
		cairn upgrade vm-bench vm-v1 >/dev/null
		bench_log "$transport cache=$mode: walk $ws/$ws2 s, read $rs/$rs2 s, probe $samples samples, $mixed mixed, $straddled straddled"
		M[$transport.$mode]="$BOOT_S $ws $ws2 $rs $rs2 $samples $mixed $straddled ${loads[-1]}"
	done
done

{
	echo "- $(date -u '+%Y-%m-%d'); tree: vm-v1 of examples/vm.sh (debootstrap minbase + systemd-sysv, udev): $nfiles entries, /usr $(bench_human "$bytes") of file data"
	echo "- $(nproc) CPUs, kernel $(uname -r); guest: $vm_kernel_pkg, qemu $($vm_qemu --version | head -n 1 | awk '{ print $4 }'), $vm_accel, ${VM_SMP:-2} vCPUs, ${VM_MEM:-1024} MiB; host caches dropped before each boot"
	echo "- load average (1 min) when each boot started: $(printf '%s\n' "${loads[@]}" | sort -n | head -n 1) to $(printf '%s\n' "${loads[@]}" | sort -n | tail -n 1), median $(bench_median "${loads[@]}") ($(nproc) CPUs)"
	if [[ " $TABLES " == *" 1 "* ]]; then
		echo "- cairn: a writable mount (--upper, --nosuid) of a platform on vm-v1; plain: 'cairn export vm-v1' unpacked on the host's disk (a fresh copy per boot)"
		echo "- 9p: -fsdev local,security_model=passthrough, guest msize=262144,cache=none; virtiofs: /usr/lib/qemu/virtiofsd -o cache=none -o xattr"
		echo "- median of $RUNS interleaved boot(s) per row"
		echo
		echo "| transport | root | boot to multi-user s | walk s | read /usr s | boot vs plain | walk vs plain | read vs plain |"
		echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
		for transport in 9p virtiofs; do
			for kind in cairn plain; do
				printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$transport" "$kind" \
					"${R[$transport.$kind.boot]}" "${R[$transport.$kind.walk]}" "${R[$transport.$kind.read]}" \
					"$(bench_ratio "${R[$transport.$kind.boot]}" "${R[$transport.plain.boot]}")" \
					"$(bench_ratio "${R[$transport.$kind.walk]}" "${R[$transport.plain.walk]}")" \
					"$(bench_ratio "${R[$transport.$kind.read]}" "${R[$transport.plain.read]}")"
			done
		done
		echo
		for transport in 9p virtiofs; do
			for m in boot walk read; do
				ratio=$(bench_ratio "${R[$transport.cairn.$m]}" "${R[$transport.plain.$m]}")
				echo "- $transport $m, cairn / plain: $ratio (target <= 1.2: $(bench_verdict "$ratio" "<=" 1.2))"
				bench_result vm "$transport $m s" "${R[$transport.cairn.$m]}" "plain ${R[$transport.plain.$m]}" \
					"$ratio" "<= 1.2" "$(bench_verdict "$ratio" "<=" 1.2)"
			done
		done
		echo
	fi
	if [[ " $TABLES " == *" 2 "* ]]; then
		echo "Guest cache modes (root on cairn, the agent shell as PID 1; walk and read twice in one boot: first, second; $SWITCHES switches while the guest reads /etc/cairn-release and /usr/share/cairn-release/version; straddled: samples that saw a switch happen; the modes boot one after another, so a change in the machine's load falls on one mode's figures: see the load column):"
		echo
		echo "| transport | cache | load at boot | walk s (1st / 2nd) | read /usr s (1st / 2nd) | 2nd walk, read vs none | probe samples | straddled | mixed pairs | live and atomic |"
		echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
		for transport in 9p virtiofs; do
			if [[ $transport == 9p ]]; then modes=$MODES_9P; else modes=$MODES_VIRTIOFS; fi
			# M: BOOT WALK1 WALK2 READ1 READ2 SAMPLES MIXED STRADDLED LOAD
			read -r _ _ nw _ nr _ <<<"${M[$transport.none]:-- - n/a - n/a -}"
			for mode in $modes; do
				read -r _ ws ws2 rs rs2 samples mixed straddled ld <<<"${M[$transport.$mode]}"
				printf '| %s | %s | %s | %s / %s | %s / %s | %s, %s | %s | %s | %s | %s |\n' "$transport" "$mode" "$ld" "$ws" "$ws2" "$rs" "$rs2" \
					"$(bench_ratio "$ws2" "$nw")" "$(bench_ratio "$rs2" "$nr")" \
					"$samples" "$straddled" "$mixed" "$(live_verdict "$mixed" "$straddled")"
			done
		done
	fi
} | tee "$work/report.md"
[[ -z ${BENCH_MD:-} ]] || cp "$work/report.md" "$BENCH_MD"
