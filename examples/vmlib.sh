# shellcheck shell=bash
# vmlib.sh - sourced by examples/vm.sh, its test and tests/bench/vm.sh:
# boot a qemu VM whose root filesystem is a host directory (a cairn mount,
# or a plain directory to compare with) shared through 9p or virtiofs, and
# run commands in it.
#
# Everything comes from Debian packages: qemu-system-x86 (and the legacy
# /usr/lib/qemu/virtiofsd of qemu-system-common), busybox-static for the
# initramfs, and a Debian kernel fetched with 'apt-get download' and
# unpacked with 'dpkg-deb -x' into a cache directory: it is never installed
# on the host nor booted as the host's kernel.
#
# The guest is driven through its second serial port (ttyS1): a root shell
# (the agent) reads commands there, and each answer ends with a marker line
# carrying its exit status. The first serial port (ttyS0) is the kernel's
# and systemd's console, kept in a log.
#
#   vm_kernel             fetch and unpack the kernel once (cached, under flock);
#                         sets vm_kernel_image, vm_kernel_modules, vm_kernel_release
#   vm_initramfs OUT      a busybox initramfs that loads the virtio, 9p and virtiofs
#                         modules, mounts the root named on the kernel command line
#                         and switches to it
#   vm_accel              kvm when a bounded probe boots with it, else tcg (cached per
#                         host boot; VM_ACCEL=kvm|tcg forces one); sets vm_accel
#   vm_start DIR TRANSPORT ROOT [CACHE]
#                         boot a VM (in the background) with ROOT as its root
#                         filesystem; DIR holds its logs, fifos and sockets;
#                         VM_INIT=agent (default: the agent is PID 1) or a path
#                         (/sbin/init: systemd, which starts the agent as a unit:
#                         vm_agent_unit; the initramfs leaves the agent in /run)
#   vm_wait_agent SECS    wait until the agent answers
#   vm_run [-t SECS] CMD  run CMD (sh syntax) in the guest, print its output,
#                         return its status (255: no answer in time)
#   vm_probe_start A B, vm_probe_stop
#                         the atomicity probe: a guest loop reading two files
#   vm_poweroff [SECS]    shut the guest down cleanly, wait for qemu to exit
#   vm_kill               stop qemu and virtiofsd (cleanup paths)
#   vm_agent_script       the agent's text
#   vm_agent_unit         a systemd unit that starts it (for an image that boots
#                         systemd), from /run/cairn-vm-agent, where the initramfs
#                         puts the agent of the vmlib.sh that boots the VM
#
# Environment: VM_CACHE (default /var/cache/cairn-vm), VM_ACCEL, VM_MEM (MiB,
# default 1024), VM_SMP (default 2), VM_KERNEL_PKG (default: what
# linux-image-amd64 depends on).

vm_cache=${VM_CACHE:-/var/cache/cairn-vm}
vm_qemu=qemu-system-x86_64
vm_virtiofsd=/usr/lib/qemu/virtiofsd
vm_pid=""
vm_virtiofsd_pid=""
vm_reader_pid=""
vm_dir=""
vm_fd=""

# the kernel's command line. no_timer_check: at boot the kernel checks that
# the timer interrupt ticks during a delay loop it calibrated a moment
# before; under TCG on a loaded host the loop runs faster than it was
# calibrated, too few ticks arrive and the kernel panics ("IO-APIC + timer
# doesn't work!") before it mounts anything, whatever the root's transport
vm_kernel_args="console=ttyS0 panic=-1 no_timer_check"

# the modules the initramfs loads, each after what it depends on
vm_root_modules="virtio_pci 9pnet_virtio 9p virtiofs"

_vm_say() { printf 'vm: %s\n' "$*" >&2; }

# vm_kernel: the kernel package is downloaded with apt (as root, into the
# cache) and unpacked there; a second run only reads the stamp
vm_kernel() {
	mkdir -p "$vm_cache"
	chmod 700 "$vm_cache"
	local pkg=${VM_KERNEL_PKG:-} dir
	(
		flock 9
		if [ -z "$pkg" ]; then
			pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n 1)
			if [ -z "$pkg" ]; then
				apt-get update -qq >&2 || true
				pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n 1)
			fi
			# no package lists at all: the kernel unpacked last time
			[ -n "$pkg" ] || pkg=$(cat "$vm_cache/kernel.pkg" 2>/dev/null) ||
				{ _vm_say "cannot tell which Debian kernel package to use (apt-cache depends linux-image-amd64)"; exit 1; }
		fi
		dir=$vm_cache/$pkg
		if ! [ -f "$dir.stamp" ]; then
			rm -rf "$dir" "$dir.tmp" "$vm_cache/debs"
			mkdir -p "$vm_cache/debs" "$dir.tmp"
			_vm_say "fetching $pkg (apt-get download, unpacked with dpkg-deb -x into $dir; not installed)"
			(cd "$vm_cache/debs" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2) ||
				{ _vm_say "apt-get download $pkg failed"; exit 1; }
			dpkg-deb -x "$vm_cache"/debs/"$pkg"_*.deb "$dir.tmp"
			rm -rf "$vm_cache/debs"
			mv "$dir.tmp" "$dir"
			echo "$pkg" >"$dir.stamp"
		fi
		echo "$pkg" >"$vm_cache/kernel.pkg"
	) 9>"$vm_cache/.lock" || return 1
	pkg=$(cat "$vm_cache/kernel.pkg")
	dir=$vm_cache/$pkg
	vm_kernel_image=$(ls "$dir"/boot/vmlinuz-* 2>/dev/null | head -n 1)
	[ -n "$vm_kernel_image" ] || { _vm_say "no vmlinuz in $dir/boot"; return 1; }
	vm_kernel_release=${vm_kernel_image##*/vmlinuz-}
	vm_kernel_modules=$dir/lib/modules/$vm_kernel_release
	vm_kernel_pkg=$pkg
}

# _vm_mod_deps FILE: the module names FILE depends on (its .modinfo section)
_vm_mod_deps() {
	tr '\0' '\n' <"$1" | sed -n 's/^depends=//p' | head -n 1 | tr ',' ' '
}

# vm_agent_script: the guest's agent. As PID 1 (no systemd) it first mounts
# what a shell needs; then it opens ttyS1, puts it in raw mode, says it is
# ready and reads commands from it. 'vm_run' sends a command followed by a
# marker line.
vm_agent_script() {
	cat <<'EOF'
if [ "$$" = 1 ]; then
	mount -t proc proc /proc
	mount -t sysfs sysfs /sys
	mount -t devtmpfs devtmpfs /dev
	mkdir -p /dev/shm /dev/pts
	mount -t tmpfs -o mode=1777 tmpfs /dev/shm
	mount -t devpts devpts /dev/pts
fi
# ttyS1 is opened once and kept open: each last close shuts the port down
# and its next open clears the UART's FIFO, dropping what the host sent
# in between (a command sent as soon as the ready line came, lost)
exec 0</dev/ttyS1 3>/dev/ttyS1
stty raw -echo
cd /
echo "@@cairn-vm 0 0" >&3
# a shell that is not interactive (its stdout is not a tty: no prompts,
# no line editing); vm_run sends each command's output to fd 3, the tty
exec /bin/sh >/dev/null 2>&1
EOF
}

vm_agent_unit() {
	cat <<'EOF'
[Unit]
Description=cairn examples/vmlib.sh: a root shell on ttyS1 for the host's checks
ConditionPathExists=/run/cairn-vm-agent
[Service]
ExecStart=/bin/sh /run/cairn-vm-agent
[Install]
WantedBy=multi-user.target
EOF
}

# vm_initramfs OUT: busybox-static, the modules, and an init that mounts
# the root the command line names:
#   cairn.transport=9p|virtiofs  cairn.rootflags=OPTS  cairn.init=agent|probe|PATH
vm_initramfs() {
	local out=$1 d m loaded=" "
	[ -n "${vm_kernel_modules:-}" ] || vm_kernel || return 1
	d=$(mktemp -d "${TMPDIR:-/tmp}/cairn-initramfs.XXXXXX")
	mkdir -p "$d"/{bin,dev,proc,sys,newroot,lib/modules}
	install -m 0755 /bin/busybox "$d/bin/busybox"
	# load order: dependencies first
	_vm_add_mod() {
		local name=$1 file dep
		case $loaded in *" $name "*) return 0 ;; esac
		file=$(find "$vm_kernel_modules/kernel" -name "$name.ko" -o -name "${name//_/-}.ko" | head -n 1)
		[ -n "$file" ] || { _vm_say "module $name not found in $vm_kernel_modules"; return 1; }
		for dep in $(_vm_mod_deps "$file"); do _vm_add_mod "$dep" || return 1; done
		loaded+="$name "
		cp "$file" "$d/lib/modules/$name.ko"
		echo "$name" >>"$d/lib/modules/order"
	}
	for m in $vm_root_modules; do _vm_add_mod "$m" || { rm -rf "$d"; return 1; }; done
	vm_agent_script >"$d/agent.sh"
	cat >"$d/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() { echo "cairn-initramfs: $*"; sleep 1; poweroff -f; }
for m in $(cat /lib/modules/order); do insmod "/lib/modules/$m.ko" || fail "insmod $m"; done
transport=9p flags="" init=agent
for a in $(cat /proc/cmdline); do
	case $a in
	cairn.transport=*) transport=${a#*=} ;;
	cairn.rootflags=*) flags=${a#*=} ;;
	cairn.init=*) init=${a#*=} ;;
	esac
done
if [ "$init" = probe ]; then
	echo "@@cairn-vm probe ok"
	poweroff -f
fi
case $transport in
9p) mount -t 9p -o "trans=virtio,version=9p2000.L${flags:+,$flags}" root /newroot || fail "cannot mount the 9p root" ;;
virtiofs) mount -t virtiofs ${flags:+-o "$flags"} root /newroot || fail "cannot mount the virtiofs root" ;;
*) fail "unknown cairn.transport '$transport'" ;;
esac
echo "cairn-initramfs: root on $transport${flags:+ ($flags)}, starting $init"
umount /proc /sys /dev
if [ "$init" = agent ]; then
	exec switch_root /newroot /bin/sh -c "$(cat /agent.sh)"
fi
# for an init that starts the agent itself (a unit running
# /run/cairn-vm-agent): /run, which systemd keeps when it is mounted
mount -t tmpfs -o mode=0755,nosuid,nodev,size=20% tmpfs /newroot/run || fail "cannot mount /run"
cp /agent.sh /newroot/run/cairn-vm-agent
exec switch_root /newroot "$init"
EOF
	chmod 0755 "$d/init"
	(cd "$d" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -1) >"$out.tmp" &&
		mv "$out.tmp" "$out"
	local rc=$?
	rm -rf "$d"
	return "$rc"
}

# vm_accel: KVM when /dev/kvm boots our kernel within a bound, else TCG.
# Some /dev/kvm devices (nested ones among them) take the ioctls but hang
# the guest: only a real boot tells. The answer is kept for this host boot.
vm_accel() {
	if [ -n "${VM_ACCEL:-}" ]; then
		vm_accel=$VM_ACCEL
		return 0
	fi
	vm_accel=tcg
	[ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ] || return 0
	local boot key d rc
	boot=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null || echo unknown)
	[ -n "${vm_kernel_image:-}" ] || vm_kernel || return 1
	key=$vm_cache/accel.$boot.$vm_kernel_release
	if [ -f "$key" ]; then
		vm_accel=$(cat "$key")
		return 0
	fi
	d=$(mktemp -d "${TMPDIR:-/tmp}/cairn-kvm-probe.XXXXXX")
	vm_initramfs "$d/initrd" || { rm -rf "$d"; return 1; }
	_vm_say "probing KVM: booting the kernel with -accel kvm (20 s at most)"
	timeout -k 2 20 "$vm_qemu" -nodefaults -no-user-config -display none -no-reboot -nic none \
		-accel kvm -cpu host -m 256 -kernel "$vm_kernel_image" -initrd "$d/initrd" \
		-append "$vm_kernel_args cairn.init=probe" -serial "file:$d/console" >"$d/qemu.log" 2>&1
	rc=$?
	if [ "$rc" = 0 ] && grep -q '@@cairn-vm probe ok' "$d/console"; then
		vm_accel=kvm
	else
		_vm_say "KVM does not boot this kernel here (qemu exited $rc: $(tail -n 1 "$d/qemu.log" | cut -c1-120)): TCG"
	fi
	echo "$vm_accel" >"$key"
	rm -rf "$d"
}

# vm_start DIR TRANSPORT ROOT [CACHE]: DIR is made (0700) and holds
# console.log, agent.log, qemu.log, virtiofsd.log and the fifos.
#   9p:       CACHE is the guest's 9p cache= mode (default none)
#   virtiofs: CACHE is virtiofsd's cache= (default none)
# VM_9P_SECURITY: qemu's 9p security_model (default passthrough)
vm_start() {
	local dir=$1 transport=$2 root=$3 cache=${4:-none} initrd flags="" append
	local dev=() mem=${VM_MEM:-1024} accel=()
	vm_dir=$dir
	mkdir -p "$dir"
	chmod 700 "$dir"
	[ -n "${vm_kernel_image:-}" ] || vm_kernel || return 1
	[ -n "${vm_accel:-}" ] || vm_accel || return 1
	initrd=$dir/initrd.img
	vm_initramfs "$initrd" || return 1
	case $transport in
	9p)
		flags="msize=262144,cache=$cache"
		dev=(-fsdev "local,id=root,path=$root,security_model=${VM_9P_SECURITY:-passthrough}"
			-device virtio-9p-pci,fsdev=root,mount_tag=root)
		;;
	virtiofs)
		rm -f "$dir/virtiofs.sock"
		"$vm_virtiofsd" --socket-path="$dir/virtiofs.sock" -o source="$root" -o cache="$cache" \
			-o xattr -o log_level=warn >"$dir/virtiofsd.log" 2>&1 &
		vm_virtiofsd_pid=$!
		local n=100
		until [ -S "$dir/virtiofs.sock" ]; do
			kill -0 "$vm_virtiofsd_pid" 2>/dev/null || { cat "$dir/virtiofsd.log" >&2; _vm_say "virtiofsd exited"; return 1; }
			n=$((n - 1))
			[ "$n" -gt 0 ] || { _vm_say "virtiofsd made no socket in 10 s"; return 1; }
			sleep 0.1
		done
		dev=(-object "memory-backend-memfd,id=mem,size=${mem}M,share=on" -numa node,memdev=mem
			-chardev "socket,id=vfs,path=$dir/virtiofs.sock"
			-device vhost-user-fs-pci,chardev=vfs,tag=root)
		;;
	*) _vm_say "unknown transport '$transport' (9p or virtiofs)"; return 1 ;;
	esac
	if [ "$vm_accel" = kvm ]; then accel=(-accel kvm -cpu host); else accel=(-accel tcg); fi
	append="$vm_kernel_args cairn.transport=$transport cairn.init=${VM_INIT:-agent}"
	[ -n "$flags" ] && append+=" cairn.rootflags=$flags"
	[ -n "${VM_APPEND:-}" ] && append+=" $VM_APPEND"
	rm -f "$dir/agent.in" "$dir/agent.out"
	mkfifo -m 600 "$dir/agent.in" "$dir/agent.out"
	: >"$dir/agent.log"
	# both ends opened read-write: neither side ever blocks in open()
	cat 0<>"$dir/agent.out" >"$dir/agent.log" &
	vm_reader_pid=$!
	exec {vm_fd}<>"$dir/agent.in"
	echo 0 >"$dir/seq"
	"$vm_qemu" -nodefaults -no-user-config -display none -no-reboot -nic none \
		"${accel[@]}" -m "$mem" -smp "${VM_SMP:-2}" \
		-kernel "$vm_kernel_image" -initrd "$initrd" -append "$append" \
		-serial "file:$dir/console.log" -serial "pipe:$dir/agent" \
		"${dev[@]}" </dev/null >"$dir/qemu.log" 2>&1 &
	vm_pid=$!
}

# _vm_marker N: the line that ends the answer to command N (N=0: ready)
# (after output that does not end in a newline, the marker ends that line)
_vm_has_marker() { grep -qE "@@cairn-vm $1 [0-9]+\$" "$vm_dir/agent.log"; }

vm_alive() { [ -n "$vm_pid" ] && kill -0 "$vm_pid" 2>/dev/null; }

# vm_wait_agent SECS: 0 once the agent said it is ready
vm_wait_agent() {
	local end=$((SECONDS + $1))
	until _vm_has_marker 0; do
		vm_alive || { _vm_say "qemu exited before the guest was up (see $vm_dir/console.log)"; return 1; }
		[ "$SECONDS" -lt "$end" ] || { _vm_say "no agent in the guest after $1 s"; return 1; }
		sleep 0.1
	done
	echo 0 >"$vm_dir/seq"
}

vm_run() {
	local t=120 end
	if [ "$1" = -t ]; then t=$2; shift 2; fi
	# the count lives in a file: vm_run is often called in a $(...) subshell
	vm_seq=$(($(cat "$vm_dir/seq") + 1))
	echo "$vm_seq" >"$vm_dir/seq"
	# stdin /dev/null: a command never reads the commands that follow it
	printf '{\n%s\n} </dev/null >&3 2>&3\necho "@@cairn-vm %s $?" >&3\n' "$*" "$vm_seq" >&"$vm_fd"
	end=$((SECONDS + t))
	until _vm_has_marker "$vm_seq"; do
		vm_alive || { _vm_say "qemu exited while running: $*"; return 255; }
		[ "$SECONDS" -lt "$end" ] || { _vm_say "no answer from the guest in $t s to: $*"; return 255; }
		sleep 0.05
	done
	awk -v a="$((vm_seq - 1))" -v b="$vm_seq" '
		function marker(n) { return match($0, "@@cairn-vm " n " [0-9]+$") }
		on && marker(b) {
			if (RSTART > 1) print substr($0, 1, RSTART - 1)
			split(substr($0, RSTART), f, " ")
			exit f[3]
		}
		on { print }
		!on && marker(a) { on = 1 }' "$vm_dir/agent.log"
}

# vm_probe_start A B: a guest loop reads files A, B and A again, over and
# over, until vm_probe_stop. A sample whose two reads of A differ straddled
# a switch; one whose reads of A agree while B differs saw a mixed state
# (a read that fails counts as a differing value). Switches must be spaced
# further apart than one sample lasts (a few ms), so none spans two.
vm_probe_start() {
	vm_run "rm -f /dev/shm/probe.*; ( n=0 m=0 s=0; while [ ! -e /dev/shm/probe.stop ]; do
	{ read a <$1; } 2>/dev/null || a=E; { read b <$2; } 2>/dev/null || b=E
	{ read c <$1; } 2>/dev/null || c=E; n=\$((n+1))
	if [ \"\$a\" != \"\$c\" ]; then s=\$((s+1)); elif [ \"\$a\" != \"\$b\" ]; then m=\$((m+1)); echo \"\$a \$b\" >>/dev/shm/probe.mixed; fi
	done; echo \"\$n \$m \$s\" >/dev/shm/probe.out ) >/dev/null 2>&1 &"
}

# vm_probe_stop: prints 'SAMPLES MIXED STRADDLED'
vm_probe_stop() {
	vm_run 'touch /dev/shm/probe.stop; while [ ! -e /dev/shm/probe.out ]; do sleep 0.1; done; cat /dev/shm/probe.out'
}

# vm_poweroff [SECS]: a clean shutdown (systemd's when it is PID 1), then
# wait for qemu to exit; 1 when it did not within SECS (default 120)
vm_poweroff() {
	local t=${1:-120} end
	vm_alive || return 1
	if [ "${VM_INIT:-agent}" = agent ]; then
		printf 'sync; poweroff -f\n' >&"$vm_fd"
	else
		printf 'systemctl poweroff\n' >&"$vm_fd"
	fi
	end=$((SECONDS + t))
	while vm_alive; do
		[ "$SECONDS" -lt "$end" ] || { _vm_say "the guest did not power off in $t s"; return 1; }
		sleep 0.1
	done
	wait "$vm_pid" 2>/dev/null
	local rc=$?
	vm_pid=""
	_vm_stop_helpers
	[ "$rc" = 0 ] || { _vm_say "qemu exited $rc"; return 1; }
}

_vm_stop_helpers() {
	local p
	if [ -n "$vm_virtiofsd_pid" ]; then
		# virtiofsd exits when qemu disconnects; give it a moment
		for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$vm_virtiofsd_pid" 2>/dev/null || break; sleep 0.1; done
		kill "$vm_virtiofsd_pid" 2>/dev/null
		wait "$vm_virtiofsd_pid" 2>/dev/null
		vm_virtiofsd_pid=""
	fi
	for p in $vm_reader_pid; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	vm_reader_pid=""
	if [ -n "$vm_fd" ]; then
		exec {vm_fd}>&-
		vm_fd=""
	fi
}

# vm_kill: qemu and virtiofsd stopped, whatever state they are in
vm_kill() {
	if [ -n "$vm_pid" ]; then
		kill -TERM "$vm_pid" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$vm_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$vm_pid" 2>/dev/null
		wait "$vm_pid" 2>/dev/null
		vm_pid=""
	fi
	_vm_stop_helpers
}
