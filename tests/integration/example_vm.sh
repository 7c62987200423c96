#!/bin/bash
# example_vm.sh - examples/vm.sh boots a VM (qemu, a Debian kernel, KVM when
# it works here, else TCG) whose root is a writable cairn platform mount,
# through 9p and through virtiofs: the guest comes up, its view of owners,
# modes, setuid bits and devices is the image's, a write inside lands in the
# upper, 'cairn upgrade' shows version 2 inside without a reboot, a guest loop
# sees no mixed pair over repeated upgrades and rollbacks, 'cairn rollback'
# brings version 1 back, the guest powers off cleanly and the upper commits.
# The lean root (VM_ROOTFS=busybox: the agent shell is PID 1) keeps each run
# under a minute of TCG; the Debian root with systemd is the example's default
# (README "VMs"). A run interrupted while the VM runs (SIGINT to its process
# group, what Ctrl-C sends) leaves no qemu, no virtiofsd and no mount behind.
#
# Skips only where no VM can run: no qemu, or no Debian kernel to boot (none
# cached in /var/cache/cairn-vm and the archive unreachable).
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
mount_setup
require_cmd qemu-system-x86_64 cpio busybox
[ -x /usr/lib/qemu/virtiofsd ] || skip "/usr/lib/qemu/virtiofsd is missing (qemu-system-common)"

REPO=$(cd "$TESTLIB/../.." && pwd)
EXAMPLE=$REPO/examples/vm.sh
STORE=$WORK/store
MNT=$WORK/mnt/vm
TMP=$WORK/tmp
mkdir -p "$TMP" "$WORK/mnt"
chmod 700 "$WORK/mnt"
_track_mount "$MNT" "$STORE"

# the kernel: fetched once into the shared cache (flock), or a skip
# shellcheck source=../../examples/vmlib.sh
source "$REPO/examples/vmlib.sh"
run_capture kernel vm_kernel
if [ "$RC" -ne 0 ]; then
	show_file "$WORK/kernel.err"
	skip "no Debian kernel to boot: none in $vm_cache and 'apt-get download' failed"
fi
info "kernel: $(cat "$vm_cache/kernel.pkg")"

# qemu_left: qemu or virtiofsd processes started for this test's mount
qemu_left() {
	local p
	for p in $(pgrep -f "$TMP/cairn-vm" || true); do
		tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qE 'qemu-system|virtiofsd' && echo "$p"
	done
	return 0
}

nothing_left() {
	local m q
	m=$(mounts_under "$WORK/mnt")
	[ -z "$m" ] || soft_fail "$1: still mounted: $m"
	q=$(qemu_left)
	[ -z "$q" ] || soft_fail "$1: qemu or virtiofsd still running: $q"
	[ -z "$(ls -A "$TMP")" ] || soft_fail "$1: left in TMPDIR: $(ls -A "$TMP")"
	return 0
}

for transport in 9p virtiofs; do
	say "examples/vm.sh, TRANSPORT=$transport VM_ROOTFS=busybox VM_CHECK=1"
	set +e
	timeout -k 10 600 env CAIRN="$CAIRN" CAIRN_STORE="$STORE" VM_MNT="$MNT" TMPDIR="$TMP" \
		TRANSPORT="$transport" VM_ROOTFS=busybox VM_CHECK=1 VM_SWITCHES=6 \
		bash "$EXAMPLE" >"$WORK/$transport.out" 2>&1
	RC=$?
	set -e
	out=$WORK/$transport.out
	grep -E '^(PASS|FAIL): ' "$out" | sed 's/^/   /'
	if [ "$RC" -ne 0 ]; then
		show_file "$out" 200
		soft_fail "$transport: examples/vm.sh exited $RC"
		continue
	fi
	grep -q '^FAIL: ' "$out" && soft_fail "$transport: a check failed, yet the example exited 0"
	[ "$(grep -c '^PASS: ' "$out")" -ge 17 ] || soft_fail "$transport: fewer checks passed than the example makes"
	grep -q 'switched [0-9]*$' "$out" || soft_fail "$transport: the upgrade did not switch the mount"
	grep -qE '^6 switches: [0-9]+ samples, [1-9][0-9]* straddled a switch, 0 mixed$' "$out" ||
		soft_fail "$transport: the atomicity probe: $(grep ' switches: ' "$out")"
	grep -q 'reboot: Power down' "$out" || soft_fail "$transport: no clean power-down on the console"
	info "$(grep '^boot: ' "$out")"
	nothing_left "$transport"
	run_capture fsck cairn_in "$STORE" fsck
	[ "$RC" -eq 0 ] || soft_fail "$transport: fsck exited $RC"
done

# Ctrl-C: SIGINT to the terminal's foreground process group, the example and
# everything it started (qemu, virtiofsd, cairn) alike. A background job of a
# script starts with SIGINT ignored, which a shell cannot trap: env resets it.
say "interrupted while the VM runs (SIGINT to its process group, as Ctrl-C sends): nothing left behind"
setsid env --default-signal=INT CAIRN="$CAIRN" CAIRN_STORE="$STORE" VM_MNT="$MNT" TMPDIR="$TMP" TRANSPORT=virtiofs \
	VM_ROOTFS=busybox bash "$EXAMPLE" >"$WORK/int.out" 2>&1 &
xpid=$!
track_holder "$xpid"
n=0
until grep -q '^PASS: the guest is up' "$WORK/int.out"; do
	n=$((n + 1))
	if [ "$n" -ge 3000 ] || ! pid_alive "$xpid"; then
		show_file "$WORK/int.out" 60
		fail "the interrupted run never booted"
	fi
	sleep 0.1
done
qpid=$(sed -n 's/^qemu pid \([0-9]*\);.*/\1/p' "$WORK/int.out")
pid_alive "${qpid:-0}" || soft_fail "no running qemu reported (qemu pid '$qpid')"
kill -INT -- "-$xpid"
if wait_gone "$xpid" 60; then
	set +e
	wait "$xpid"
	RC=$?
	set -e
	[ "$RC" = 130 ] || soft_fail "the interrupted run exited $RC, expected 130"
else
	soft_fail "the interrupted run still runs 60 s after SIGINT"
fi
[ -z "$qpid" ] || ! pid_alive "$qpid" || soft_fail "qemu $qpid still runs after the example exited"
nothing_left "interrupted run"
grep -q '(stopping the VM, pid' "$WORK/int.out" || soft_fail "the interrupted run did not say it stopped the VM"

finish
