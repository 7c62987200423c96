#!/bin/bash
# vm.sh - a VM whose root filesystem is a cairn platform, upgraded and
# rolled back under the running VM.
#
#   1. a bootable Debian image, the cairn way: a debootstrap minbase tree is
#      imported, 'apt-get install systemd-sysv' runs in a writable mount of
#      it and the upper is committed; then two versions of a package built
#      here (cairn-release 1 and 2: /usr/bin/cairn-hello and a pair of files
#      that every version changes together) are installed with dpkg, each
#      committed as an image: vm-v1 and vm-v2;
#   2. a Debian kernel (apt-get download + dpkg-deb -x, never installed on
#      the host) and a busybox initramfs that mounts the root through 9p or
#      virtiofs and starts systemd;
#   3. platform vm-demo on vm-v1, mounted with an upper directory (--nosuid:
#      the guest enforces setuid itself) and booted with qemu (KVM when a
#      bounded probe boots with it, else TCG);
#   4. through the guest's serial ports: systemd reaches multi-user, the
#      image's owners, modes, setuid bits, devices and xattrs are what
#      'cairn stat' says, su and passwd work, a write lands in the upper
#      ('cairn changes'); 'cairn upgrade vm-demo vm-v2' shows version 2
#      inside without a reboot, while a guest loop reading the pair of files
#      counts mixed pairs over repeated upgrades and rollbacks (0 expected);
#      'cairn rollback' brings version 1 back;
#   5. systemd powers the VM off, the mount is unmounted and the upper
#      committed.
# On success, failure or Ctrl-C the VM is stopped and everything unmounted.
#
# Run as root on Debian 12. Network: the first time, for debootstrap, apt-get
# inside the mount and the kernel (all cached: the tree under
# /var/cache/cairn-debian (scripts/debian-tree.sh), the kernel under /var/cache/cairn-vm, the images
# in the store).
#
# Environment:
#   TRANSPORT       9p (default) or virtiofs
#   VM_CHECK=1      exit 0 only when every check passed (default: report and go on)
#   VM_ROOTFS       debian (default) or busybox: examples/mkrootfs.sh's small
#                   tree with the agent shell as PID 1 instead of systemd (fast,
#                   what the CI test runs)
#   VM_CACHE_MODE   the transport's cache mode: 9p cache= (default none),
#                   virtiofsd cache= (default none); see the README's "VMs"
#   VM_9P_SECURITY  qemu's 9p security_model (default passthrough)
#   VM_SWITCHES     switches made while the guest probes (default 10)
#   VM_BUILD_ONLY=1 make the images and stop (tests/bench/vm.sh uses them)
#   VM_REBUILD=1    make the Debian images again even when the store has them
#   VM_ACCEL        kvm or tcg instead of the probe; VM_MEM, VM_SMP
#   CAIRN_STORE     the store (default /var/lib/cairn)
#   CAIRN           a cairn binary already built: skips installing and building
#   VM_MNT          the mountpoint (default /run/cairn/mnt/vm-demo)
#   TMPDIR          where the upper, the VM's logs and fifos are made
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=examples/lib.sh
. examples/lib.sh
# shellcheck source=examples/vmlib.sh
. examples/vmlib.sh

[ "$(id -u)" -eq 0 ] || die "run as root (FUSE mounts with allow_other, chroot, qemu)"
transport=${TRANSPORT:-9p}
rootfs_kind=${VM_ROOTFS:-debian}
case $transport in 9p | virtiofs) ;; *) die "TRANSPORT must be 9p or virtiofs, not '$transport'" ;; esac
case $rootfs_kind in debian | busybox) ;; *) die "VM_ROOTFS must be debian or busybox, not '$rootfs_kind'" ;; esac
cairn_ready
export CAIRN_STORE=${CAIRN_STORE:-/var/lib/cairn}
echo "cairn: $cairn; store: $CAIRN_STORE; transport: $transport; root: $rootfs_kind"
for c in "$vm_qemu" cpio busybox; do
	command -v "$c" >/dev/null || die "'$c' is not installed (scripts/install-deps.sh --test)"
done
[ "$transport" != virtiofs ] || [ -x "$vm_virtiofsd" ] || die "$vm_virtiofsd is missing (qemu-system-common)"

cache_mode=${VM_CACHE_MODE:-none}
switches=${VM_SWITCHES:-10}
mnt=${VM_MNT:-/run/cairn/mnt/vm-demo}
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-vm.XXXXXX")
chmod 700 "$work"
upper=$work/upper
failed=0
passed=0

# check TEXT CMD...: run a check, say PASS or FAIL; VM_CHECK=1 makes any
# failure the script's exit status (at the end)
check() {
	local what=$1
	shift
	if "$@"; then
		echo "PASS: $what"
		passed=$((passed + 1))
	else
		echo "FAIL: $what"
		failed=$((failed + 1))
	fi
}

unmount_all() {
	local m
	for m in $(mounts_under "$mnt") $(mounts_under "$work"); do
		case $m in "$mnt" | "$work"/*mnt) continue ;; esac
		umount "$m" 2>/dev/null || umount -l "$m"
	done
	for m in "$mnt" $(mounts_under "$work"); do
		is_mounted "$m" || continue
		timeout 60 "$cairn" umount "$m" >/dev/null 2>&1 || timeout 10 "$cairn" umount --lazy "$m" ||
			umount -l "$m"
	done
}
cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	# (after Ctrl-C qemu may have gone already: it had the SIGINT too)
	if [ -n "$vm_pid" ]; then
		echo "(stopping the VM, pid $vm_pid)"
		vm_kill
	fi
	_vm_stop_helpers
	unmount_all
	rm -rf --one-file-system "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# in_mount DIR CMD...: run CMD chrooted in DIR with a clean environment
in_mount() {
	local dir=$1
	shift
	show chroot "$dir" "$@"
	chroot "$dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C \
		DEBIAN_FRONTEND=noninteractive "$@"
}

# in_vm CMD: show CMD as run inside the VM, run it there
in_vm() {
	printf 'vm# %s\n' "$*" >&2
	vm_run "$@"
}

# has_tag TAG: the store names an image TAG
has_tag() { "$cairn" images --json 2>/dev/null | grep -q "\"$1\""; }

# release_deb VERSION OUT: the package whose two files every version changes
# together (the probe reads them), and a program that says its version
release_deb() {
	local v=$1 d=$work/deb-$1
	mkdir -p "$d/DEBIAN" "$d/usr/bin" "$d/etc" "$d/usr/share/cairn-release"
	cat >"$d/DEBIAN/control" <<-EOF
		Package: cairn-release
		Version: $v
		Architecture: all
		Maintainer: cairn examples <root@localhost>
		Description: the version of the cairn VM example's platform
	EOF
	echo "$v" >"$d/etc/cairn-release"
	echo "$v" >"$d/usr/share/cairn-release/version"
	echo "a file the VM deletes" >"$d/usr/share/cairn-release/README"
	printf '#!/bin/sh\necho "hello from version %s"\n' "$v" >"$d/usr/bin/cairn-hello"
	chmod 0755 "$d/usr/bin/cairn-hello"
	dpkg-deb --root-owner-group --build "$d" "$2" >/dev/null
}

# a writable mount of IMAGE on $work/build-mnt with /proc and /dev inside
build_mount() {
	rm -rf "$work/build-upper"
	mkdir -p "$work/build-mnt"
	run "$cairn" mount "$1" "$work/build-mnt" --upper "$work/build-upper"
	mount -t proc proc "$work/build-mnt/proc"
	mount --bind /dev "$work/build-mnt/dev"
}
build_commit() {
	umount "$work/build-mnt/dev" "$work/build-mnt/proc"
	run "$cairn" umount "$work/build-mnt"
	run "$cairn" commit "$work/build-upper" --tag "$1" -m "$2"
}

step "the kernel and the accelerator"
vm_kernel || die "no kernel"
echo "kernel: $vm_kernel_pkg ($vm_kernel_image), unpacked in $vm_cache, not installed"
vm_accel || die "cannot probe the accelerator"
echo "accelerator: $vm_accel"

pair_a=/etc/cairn-release
pair_b=/usr/share/cairn-release/version
if [ "$rootfs_kind" = busybox ]; then
	step "two versions of a busybox root filesystem (the agent shell is PID 1)"
	for v in 1 2; do
		./examples/mkrootfs.sh "$work/rootfs-v$v" "$v"
		r=$work/rootfs-v$v
		# what the ownership check looks at, and the probe's pair
		mkdir -p "$r/usr/share/cairn-release" "$r/srv/shared"
		echo "$v" >"$r$pair_a"
		echo "$v" >"$r$pair_b"
		printf '#!/bin/sh\necho "hello from version %s"\n' "$v" >"$r/usr/bin/cairn-hello"
		chmod 0755 "$r/usr/bin/cairn-hello"
		install -m 4755 /bin/busybox "$r/usr/bin/suid-busybox"
		chown 1000:1000 "$r/srv/shared"
		chmod 2775 "$r/srv/shared"
		mknod -m 666 "$r/dev/null" c 1 3
		mknod -m 660 "$r/dev/sda" b 8 0
		mkfifo -m 600 "$r/srv/fifo"
		echo "a file the VM deletes" >"$r/usr/share/cairn-release/README"
		ln -s ../usr/share/cairn-release/version "$r/etc/version-link"
		find "$r" -exec touch -h -d "2026-01-0$v 00:00:00 UTC" {} +
		run "$cairn" import "$r" --tag "vm-busybox-v$v" -m "busybox VM root, version $v"
	done
	v1=vm-busybox-v1 v2=vm-busybox-v2
	sample_dirs=(/ /bin /usr/bin /dev /srv /etc)
	export VM_INIT=agent
else
	step "a Debian minbase tree"
	debian_minbase_tree || die "no Debian minbase tree"
	echo "$debian_tree"
	v1=vm-v1 v2=vm-v2
	if has_tag vm-v1 && has_tag vm-v2 && [ -z "${VM_REBUILD:-}" ] &&
		[ "$("$cairn" cat vm-v2:etc/systemd/system/cairn-vm-agent.service 2>/dev/null)" = "$(vm_agent_unit)" ]; then
		echo "(the store has vm-v1 and vm-v2 from an earlier run: reused; VM_REBUILD=1 makes them again)"
	else
		has_tag vm-v2 && [ -z "${VM_REBUILD:-}" ] && echo "(the store's vm-v2 has another agent unit than this script's: made again)"
		run "$cairn" import "$debian_tree" --tag vm-minbase -m "debootstrap --variant=minbase"

		step "a bootable image: systemd installed with apt-get in a writable mount, committed"
		build_mount vm-minbase
		b=$work/build-mnt
		in_mount "$b" apt-get update -q
		in_mount "$b" apt-get install -y -q -o Dpkg::Use-Pty=0 --no-install-recommends \
			systemd-sysv udev attr libcap2-bin
		in_mount "$b" apt-get clean
		rm -rf "$b"/var/lib/apt/lists/*
		echo "(the agent: a unit starting the root shell on ttyS1 the initramfs leaves in /run, for this script's checks)"
		vm_agent_unit >"$b/etc/systemd/system/cairn-vm-agent.service"
		in_mount "$b" systemctl enable cairn-vm-agent.service
		echo vm-demo >"$b/etc/hostname"
		echo "(a user for the su and passwd checks, and a file with a capability and an xattr)"
		in_mount "$b" useradd -m -s /bin/sh cairn
		in_mount "$b" sh -c 'echo cairn:Old-cairn-pw-1 | chpasswd'
		install -m 0755 "$b/usr/bin/true" "$b/usr/local/bin/cairn-cap"
		run setcap cap_net_raw+ep "$b/usr/local/bin/cairn-cap"
		run setfattr -n user.cairn.demo -v hello "$b/usr/local/bin/cairn-cap"
		build_commit vm-systemd "vm-minbase + systemd-sysv, the agent unit, user cairn"

		step "two versions of a package built here, each installed with dpkg and committed"
		release_deb 1 "$work/cairn-release_1_all.deb"
		release_deb 2 "$work/cairn-release_2_all.deb"
		build_mount vm-systemd
		cp "$work/cairn-release_1_all.deb" "$work/build-mnt/tmp/"
		in_mount "$work/build-mnt" dpkg -i /tmp/cairn-release_1_all.deb
		rm "$work/build-mnt/tmp/cairn-release_1_all.deb"
		build_commit vm-v1 "vm-systemd + cairn-release 1"
		build_mount vm-v1
		cp "$work/cairn-release_2_all.deb" "$work/build-mnt/tmp/"
		in_mount "$work/build-mnt" dpkg -i /tmp/cairn-release_2_all.deb
		rm "$work/build-mnt/tmp/cairn-release_2_all.deb"
		build_commit vm-v2 "vm-v1 + cairn-release 2"
	fi
	sample_dirs=(/ /usr/bin /usr/sbin /usr/local/bin /dev /etc /var /home)
	export VM_INIT=/sbin/init
fi
if [ "${VM_BUILD_ONLY:-0}" = 1 ]; then
	step "done: the images are $v1 and $v2 (VM_BUILD_ONLY=1)"
	exit 0
fi
run "$cairn" diff "$v1" "$v2" --ignore mtime

step "platform vm-demo on $v1, mounted with an upper directory (--nosuid)"
run "$cairn" upgrade vm-demo "$v1"
mkdir -p "$(dirname "$mnt")"
chmod 700 "$(dirname "$mnt")"
mkdir -p "$mnt"
if [ -n "$(mounts_under "$mnt")" ]; then
	echo "(unmounting what an earlier run left on $mnt)"
	unmount_all
fi
run "$cairn" mount vm-demo "$mnt" --upper "$upper" --nosuid

step "booting the VM: root on $mnt through $transport (cache=$cache_mode), $vm_accel"
case $transport in
9p) echo "qemu: -fsdev local,path=$mnt,security_model=${VM_9P_SECURITY:-passthrough}; guest: mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=$cache_mode" ;;
virtiofs) echo "$vm_virtiofsd -o source=$mnt -o cache=$cache_mode -o xattr; qemu: vhost-user-fs-pci; guest: mount -t virtiofs" ;;
esac
boot_start=$(date +%s.%N)
vm_start "$work/vm" "$transport" "$mnt" "$cache_mode" || die "qemu did not start"
echo "qemu pid $vm_pid; the console is logged in $work/vm/console.log"
boot_wait=300
[ "$vm_accel" = kvm ] || boot_wait=900
if ! vm_wait_agent "$boot_wait"; then
	tail -n 30 "$work/vm/console.log"
	die "the guest's agent did not start"
fi
if [ "$VM_INIT" = agent ]; then
	boot_s=$(echo "$(date +%s.%N) - $boot_start" | bc)
	echo "the agent answers $boot_s s after qemu started"
	check "the guest is up (busybox, the agent is PID 1)" true
else
	state=$(vm_run -t "$boot_wait" 'systemctl is-system-running --wait' || true)
	boot_s=$(echo "$(date +%s.%N) - $boot_start" | bc)
	echo "systemd: $state, $boot_s s after qemu started"
	vm_run 'systemd-analyze time; systemctl --failed --no-legend --plain' || true
	check "systemd reached multi-user.target" [ "$(vm_run 'systemctl is-active multi-user.target')" = active ]
fi
boot_id=$(vm_run 'cat /proc/sys/kernel/random/boot_id')
vm_run "uname -r; grep ' / ' /proc/mounts; cat $pair_a"

step "the image's owners, modes, setuid bits, devices and xattrs, seen inside"
# the guest's view of the root itself (its /dev is a devtmpfs over the image's)
vm_run 'mkdir -p /dev/shm/root && mount --bind / /dev/shm/root'
# 'cairn ls -l' of each directory of the sample against 'ls -lnA' of it in
# the guest (names unquoted), both as "MODE UID GID SIZE|MAJOR,MINOR MTIME PATH[ -> TARGET]"
# (sizes of regular files only; no link counts); entries the guest itself
# changed by then ('cairn changes': systemd writes /etc at boot) left out
ls_norm() {
	awk -v dir="$1" '$1 ~ /^[-dlcbps][-r][-w][-xsS][-r][-w][-xsS][-r][-w][-xtT][.+]?$/ {
		mode = $1; sub(/\.$/, "", mode)
		if (mode ~ /^[cb]/) { sz = $5 $6; i = 7 } else { sz = (mode ~ /^-/) ? $5 : "-"; i = 6 }
		# cairn: 2026-01-01T00:00:00Z; ls --full-time: 2026-01-01 00:00:00[.N] +0000
		if ($i ~ /Z$/) { t = $i; i++ } else { t = $i "T" substr($(i + 1), 1, 8) "Z"; i += 3 }
		name = $i; for (i++; i <= NF; i++) name = name " " $i
		print mode, $3, $4, sz, t, (dir == "/" ? "" : dir) "/" name }'
}
: >"$work/ls.guest"
: >"$work/ls.image"
for d in "${sample_dirs[@]}"; do
	{ vm_run "(cd /dev/shm/root$d && TZ=UTC QUOTING_STYLE=literal ls -lnA --full-time)" || true; } | ls_norm "$d" >>"$work/ls.guest"
	{ "$cairn" ls -l "vm-demo:${d#/}" || true; } | ls_norm "$d" >>"$work/ls.image"
done
"$cairn" changes "$upper" | awk '{ print $2 }' >"$work/ls.changed"
for f in image guest; do
	awk 'FILENAME == ARGV[1] { changed[$0] = 1; next } !($6 in changed)' \
		"$work/ls.changed" "$work/ls.$f" | LC_ALL=C sort -k 6 >"$work/ls.$f.cmp"
done
echo "$(wc -l <"$work/ls.image.cmp") entries of ${sample_dirs[*]} compared ($(wc -l <"$work/ls.changed") paths changed by the guest left out); setuid, setgid, sticky and devices among them:"
special() { awk '$1 ~ /^[cb]/ || $1 ~ /[sStT]/' "$1" | head -n 30; }
paste -d '\n' <(special "$work/ls.image.cmp") <(special "$work/ls.guest.cmp") |
	awk 'NR % 2 { print "  image: " $0; next } { print "  guest: " $0 }'
diff "$work/ls.image.cmp" "$work/ls.guest.cmp" | sed 's/^/  differs: /' | head -n 40 || true
check "'ls -l' inside is 'cairn ls -l' of the image (owners, modes, setuid bits, devices, mtimes, link targets)" \
	eval '[ -s "$work/ls.image.cmp" ] && cmp -s "$work/ls.image.cmp" "$work/ls.guest.cmp"'
if [ "$rootfs_kind" = debian ]; then
	caps=$(vm_run 'getcap /usr/local/bin/cairn-cap' || true)
	echo "inside: ${caps:-(getcap shows no capability)}"
	if [ "$transport" = 9p ] && [ -z "$caps" ]; then
		# qemu's 9p server passes user.* xattrs and ACLs, and no security.* or trusted.*
		echo "NOTE: 9p does not carry security.capability (qemu's local 9p backend serves user.* xattrs and ACLs only)"
	else
		check "a file capability is served (security.capability)" grep -q 'cap_net_raw=ep' <<<"$caps"
	fi
	check "a user xattr is served" [ "$(vm_run 'getfattr --absolute-names --only-values -n user.cairn.demo /usr/local/bin/cairn-cap')" = hello ]
	step "su and passwd inside (setuid, enforced by the guest; the host mount is nosuid)"
	in_vm "su -s /bin/sh cairn -c 'id -un; passwd -S cairn'" | tee "$work/su.out" || true
	check "su to a user, and passwd -S run by that user (setuid root)" grep -q '^cairn P ' "$work/su.out"
	shadow_before=$(vm_run "grep '^cairn:' /etc/shadow")
	in_vm "su -s /bin/sh cairn -c \"printf 'Old-cairn-pw-1\\nNew-cairn-pw-2\\nNew-cairn-pw-2\\n' | passwd\"" || true
	shadow_after=$(vm_run "grep '^cairn:' /etc/shadow")
	check "the user changed their password with passwd (setuid root writes /etc/shadow)" \
		[ "${shadow_before%%:[0-9]*}" != "${shadow_after%%:[0-9]*}" ]
else
	in_vm 'su -s /bin/sh nobody -c "id -u"' | tee "$work/su.out" || true
	check "su to nobody" [ "$(cat "$work/su.out")" = 65534 ]
	echo "(busybox drops a setuid bit itself: the setuid check that runs programs is VM_ROOTFS=debian's)"
fi
vm_run 'umount /dev/shm/root'

step "writing inside the VM: the changes land in the upper directory"
in_vm 'echo "written inside the VM" > /root/note && dd if=/dev/zero of=/root/8M bs=1M count=8 2>/dev/null &&
	rm /usr/share/cairn-release/README && chmod 600 /etc/hostname && sync && ls -l /root'
run "$cairn" changes "$upper" >"$work/changes"
grep -E ' /(root|etc/hostname|usr/share/cairn-release)' "$work/changes" | sed 's/^/  /'
check "a new file is in the upper (cairn changes: A /root/note)" grep -qx 'A /root/note' "$work/changes"
check "the 8 MiB file is in the upper" [ "$(stat -c %s "$upper/tree/root/8M" 2>/dev/null)" = 8388608 ]
check "the deletion is a whiteout (D /usr/share/cairn-release/README)" \
	grep -qx 'D /usr/share/cairn-release/README' "$work/changes"
check "the chmod is a metadata copy-up (C /etc/hostname, marked metacopy)" \
	eval 'grep -qx "C /etc/hostname" "$work/changes" && getfattr -n trusted.cairn.metacopy "$upper/tree/etc/hostname" >/dev/null 2>&1'
in_vm 'rm /root/8M'

step "cairn upgrade vm-demo $v2, under the running VM"
run "$cairn" upgrade vm-demo "$v2"
# how long until the guest sees it (0 expected with the recommended cache modes)
seen=$(vm_run "i=0; while [ \"\$(cat $pair_b)\" != 2 ] && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i+1)); done; echo \$((i*100))")
echo "the guest read version 2 after ${seen} ms"
in_vm 'cairn-hello; cat /root/note'
check "the new version shows inside at once, no reboot" [ "$seen" = 0 ]
check "the program of version 2 runs inside" [ "$(vm_run cairn-hello)" = "hello from version 2" ]
check "the write made inside is still on top" [ "$(vm_run 'cat /root/note')" = "written inside the VM" ]
check "same boot (boot_id)" [ "$(vm_run 'cat /proc/sys/kernel/random/boot_id')" = "$boot_id" ]
if [ "$rootfs_kind" = debian ]; then
	check "dpkg inside says cairn-release 2" [ "$(vm_run "dpkg-query -W -f='\${Version}' cairn-release")" = 2 ]
fi

step "the atomicity probe: $switches switches while the guest reads $pair_a and $pair_b"
vm_probe_start "$pair_a" "$pair_b"
# a pause between switches much longer than one sample (a few ms), so that
# no sample spans two switches
for i in $(seq "$switches"); do
	sleep 1.5
	if [ $((i % 2)) = 1 ]; then "$cairn" rollback vm-demo >/dev/null; else "$cairn" upgrade vm-demo "$v2" >/dev/null; fi
done
sleep 1.5
read -r samples mixed straddled < <(vm_probe_stop)
echo "$switches switches: $samples samples, $straddled straddled a switch, $mixed mixed"
[ "$mixed" = 0 ] || vm_run 'sort /dev/shm/probe.mixed | uniq -c'
check "every switch is atomic inside the guest (0 mixed pairs of $samples)" [ "$mixed" = 0 ]
check "the probe saw the switches" [ "$straddled" -gt 0 ]
[ "$(vm_run "cat $pair_b")" = 2 ] || run "$cairn" upgrade vm-demo "$v2"

step "cairn rollback vm-demo: version 1 again, same VM"
run "$cairn" rollback vm-demo
check "version 1 inside after the rollback" [ "$(vm_run 'cairn-hello')" = "hello from version 1" ]
check "the pair reads 1 1" [ "$(vm_run "cat $pair_a $pair_b" | tr '\n' ' ')" = "1 1 " ]
check "same boot (boot_id)" [ "$(vm_run 'cat /proc/sys/kernel/random/boot_id')" = "$boot_id" ]
run "$cairn" history vm-demo

step "shutting the VM down"
poweroff_start=$(date +%s.%N)
if vm_poweroff 300; then
	echo "qemu exited 0, $(echo "$(date +%s.%N) - $poweroff_start" | bc) s after the poweroff"
	check "clean shutdown" true
else
	check "clean shutdown" false
	vm_kill
fi
tail -n 2 "$work/vm/console.log" | tr -d '\r'

step "unmounting, and committing what the VM wrote"
run "$cairn" umount "$mnt"
run "$cairn" changes "$upper" | grep -v '^[AC] /var/' | head -n 20
run "$cairn" commit "$upper" --tag vm-demo-committed -m "what the VM wrote on $v1/$v2"
check "the committed image has the VM's note" [ "$("$cairn" cat vm-demo-committed:root/note)" = "written inside the VM" ]

step "done: $passed checks passed, $failed failed"
echo "boot: $boot_s s to $([ "$VM_INIT" = agent ] && echo 'the agent' || echo 'multi-user') ($vm_accel, $transport)"
if [ "$failed" -gt 0 ] && [ "${VM_CHECK:-0}" = 1 ]; then
	exit 1
fi
exit 0
