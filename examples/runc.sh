#!/bin/bash
# runc.sh - an OCI container whose root filesystem is a cairn mount, upgraded
# and rolled back under the running container.
#
#   1. two versions of a small busybox root filesystem (examples/mkrootfs.sh)
#      are imported into a store; platform 'runc-demo' is put on v1;
#   2. an OCI bundle is made with 'runc spec'; its rootfs/ is a cairn mount of
#      the platform, /tmp is a tmpfs and /var/log a bind mount of a host
#      directory (the container's only writable places while the root is
#      read-only);
#   3. 'runc run -d' starts a long-running container: a loop that reads
#      /etc/os-release every 0.1 s and appends its VERSION_ID to /var/log;
#      'runc exec' runs commands in it;
#   4. 'cairn upgrade runc-demo v2' under the running container: the same
#      container keeps running, its mounts (/proc, /dev, /tmp, the bind
#      mount: /proc/PID/mountinfo) are the same before and after, the loop
#      reads v2 from then on, and a new 'runc exec' sees v2's files;
#   5. 'cairn rollback runc-demo' brings v1 back the same way.
# Every step is checked; the script exits non-zero at the first surprise.
#
# Run as root on Debian 12. Everything lives in a fresh directory under
# $TMPDIR (mode 0700: mountpoints belong under a root-only directory), with
# its own store and runc state, removed at the end. CAIRN=path/to/cairn uses
# that binary; otherwise the script installs what is missing and builds, as
# quickstart.sh does. RUNTIME=crun runs the same steps with crun (which
# refuses hybrid cgroup v1/v2 hosts whose cgroup2 has controllers; the script
# says so and starts it from a mount namespace without the cgroup2 mount).
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$PWD
RUNTIME=${RUNTIME:-runc}
step() { printf '\n==> %s\n' "$*"; }
# run CMD...: show the command (rt as the runtime's name, arguments with spaces quoted), run it
run() {
	local a shown=()
	for a in "$@"; do
		case $a in *[[:space:]]*) shown+=("'$a'") ;; *) shown+=("$a") ;; esac
	done
	[ "$1" = rt ] && shown[0]=$RUNTIME
	printf '$ %s\n' "${shown[*]}"
	"$@"
}
die() { printf 'runc.sh: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (FUSE mounts with allow_other, containers)"
if [ -z "${CAIRN:-}" ]; then
	step "installing dependencies (only what is missing) and building"
	./scripts/install-deps.sh runc crun python3
	if [ -f build/build.ninja ]; then meson setup --reconfigure build >/dev/null; else meson setup build >/dev/null; fi
	meson compile -C build >/dev/null
	CAIRN=$repo/build/tools/cairn
fi
for c in "$RUNTIME" python3 fusermount3; do
	command -v "$c" >/dev/null || die "'$c' is not installed (scripts/install-deps.sh runc crun python3)"
done
[ -c /dev/fuse ] || die "/dev/fuse is missing"

work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-runc.XXXXXX")
store=$work/store
bundle=$work/bundle
rootfs=$bundle/rootfs
state=$work/runtime-state # the runtime's --root: this run's containers only
hostlog=$work/log         # bind-mounted at /var/log in the container
id=cairn-demo-$$
# The writable layer: the container writes into $work/upper (UPPER= in the environment
# runs it read-only); the mount, config.json (root.readonly) and the write checks follow it.
UPPER=${UPPER-$work/upper}

cairn() { "$CAIRN" --store "$store" "$@"; }
rt() { timeout 60 "$RUNTIME" --root "$state" "$@"; }

cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	if [ -d "$state" ]; then
		rt kill "$id" KILL >/dev/null 2>&1
		rt delete -f "$id" >/dev/null 2>&1
	fi
	if mountpoint -q "$rootfs" 2>/dev/null; then
		timeout 30 "$CAIRN" --store "$store" umount "$rootfs" >/dev/null 2>&1 ||
			timeout 10 fusermount3 -uz "$rootfs" 2>/dev/null || umount -l "$rootfs"
	fi
	rm -rf --one-file-system "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# shellcheck disable=SC2016 # the container's shell expands these
# container_version: the VERSION_ID a new 'runtime exec' reads in the container
container_version() { rt exec "$id" /bin/sh -c '. /etc/os-release && echo "$VERSION_ID"'; }
# wait_loop_reads V: the container's loop has appended V (5 s at most)
wait_loop_reads() {
	local n=50
	while [ "$n" -gt 0 ]; do
		[ "$(tail -n 1 "$hostlog/versions" 2>/dev/null)" = "$1" ] && return 0
		sleep 0.1
		n=$((n - 1))
	done
	die "the container's loop did not read version $1 (last: $(tail -n 1 "$hostlog/versions"))"
}
# the container's own view of its mounts, from the host
mountinfo() { cat "/proc/$pid/mountinfo"; }

step "two versions of a busybox root filesystem; platform runc-demo on v1"
./examples/mkrootfs.sh "$work/v1" 1
./examples/mkrootfs.sh "$work/v2" 2
run cairn import "$work/v1" --tag v1
run cairn import "$work/v2" --tag v2
run cairn upgrade runc-demo v1

step "an OCI bundle whose rootfs is a cairn mount of the platform"
mkdir -p "$rootfs" "$hostlog" "$state"
# MOUNT_ARGS=--isolated gives the mount a daemon of its own (default: the store's shared one)
read -r -a mount_args <<<"${MOUNT_ARGS:-}"
if [ -n "$UPPER" ]; then
	mkdir -p "$UPPER"
	mount_args+=(--upper "$UPPER")
fi
run cairn mount runc-demo "$rootfs" "${mount_args[@]}"
(cd "$bundle" && run "$RUNTIME" spec)
# runc spec's defaults, changed for a long-running, non-interactive container
python3 - "$bundle/config.json" "$hostlog" "${UPPER:+writable}" <<'EOF'
import json, sys
path, hostlog, writable = sys.argv[1], sys.argv[2], sys.argv[3] == "writable"
c = json.load(open(path))
c["root"]["readonly"] = not writable
c["hostname"] = "cairn-demo"
p = c["process"]
p["terminal"] = False
p["args"] = ["/bin/sh", "-c",
             "while :; do . /etc/os-release; echo $VERSION_ID >> /var/log/versions; sleep 0.1; done"]
c["mounts"] += [
    {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "nodev", "mode=1777", "size=16m"]},
    {"destination": "/var/log", "type": "bind", "source": hostlog, "options": ["rbind", "rw"]},
]
json.dump(c, open(path, "w"), indent=2)
EOF
echo "config.json: root.readonly=$([ -n "$UPPER" ] && echo false || echo true), /tmp tmpfs, /var/log bind mount of $hostlog"

step "$RUNTIME run -d: the container starts on v1"
start=(rt run -d "$id")
if [ "$RUNTIME" = crun ] && [ "$(stat -fc %T /sys/fs/cgroup)" = tmpfs ] &&
	[ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]; then
	# crun refuses hybrid cgroups (v1 controllers, cgroup2 at /sys/fs/cgroup/unified)
	# when cgroup2 has controllers. Without that mount it sees a plain v1 host: start
	# the container from a private mount namespace that does not have it.
	echo "hybrid cgroups with controllers on cgroup2: crun starts from a mount namespace without /sys/fs/cgroup/unified"
	start=(unshare -m /bin/sh -c 'umount /sys/fs/cgroup/unified && exec "$@"' sh "$RUNTIME" --root "$state" run -d "$id")
fi
(cd "$bundle" && "${start[@]}" </dev/null >"$work/container.out" 2>&1) ||
	{ cat "$work/container.out" >&2; die "$RUNTIME run failed"; }
pid=$(rt state "$id" | python3 -c 'import json, sys; print(json.load(sys.stdin)["pid"])')
echo "container $id running, pid $pid"
wait_loop_reads 1
run rt exec "$id" cat /etc/os-release
[ "$(container_version)" = 1 ] || die "runc exec does not read v1"
rt exec "$id" test -e /usr/bin/hello && die "v1 has no /usr/bin/hello"
run rt exec "$id" /bin/sh -c 'hostname; id; ls /bin | wc -l; grep -c . /proc/mounts'
run rt exec "$id" /bin/sh -c 'echo scratch > /tmp/scratch && cat /tmp/scratch'
if [ -z "$UPPER" ]; then
	rt exec "$id" touch /etc/made-in-container 2>/dev/null && die "the read-only root took a write"
	echo "a write to /etc is refused: the root is read-only (no --upper)"
else
	run rt exec "$id" /bin/sh -c 'echo written > /root/made-in-container'
	find "$UPPER" -name made-in-container | grep -q . || die "the write did not land in $UPPER"
	echo "the write landed in the upper directory: $(find "$UPPER" -name made-in-container)"
fi
mountinfo >"$work/mountinfo.before"
echo "the container has $(wc -l <"$work/mountinfo.before") mounts (/proc/$pid/mountinfo)"

step "cairn upgrade runc-demo v2, under the running container"
run cairn upgrade runc-demo v2
[ "$(rt state "$id" | python3 -c 'import json, sys; s = json.load(sys.stdin); print(s["status"], s["pid"])')" = "running $pid" ] ||
	die "the container is not the same running container after the upgrade"
mountinfo >"$work/mountinfo.after"
diff "$work/mountinfo.before" "$work/mountinfo.after" || die "the container's mounts changed across the upgrade"
echo "same container (pid $pid), same mounts"
wait_loop_reads 2
echo "the running loop now reads version 2"
run rt exec "$id" cat /etc/os-release
[ "$(container_version)" = 2 ] || die "a new runc exec does not read v2"
run rt exec "$id" /usr/bin/hello
[ "$(rt exec "$id" /usr/bin/hello)" = "hello from version 2" ] || die "v2's /usr/bin/hello does not run"
# shellcheck disable=SC2016 # the container's shell expands it
rt exec "$id" /bin/sh -c 'test -c /dev/null && test -r /proc/1/status && test "$(cat /tmp/scratch)" = scratch && test -s /var/log/versions' ||
	die "/dev, /proc, /tmp or /var/log lost across the upgrade"
[ -z "$UPPER" ] || [ "$(rt exec "$id" cat /root/made-in-container)" = written ] ||
	die "the container's write is gone after the upgrade (the upper stays on top)"

step "cairn rollback runc-demo: v1 again, same container"
run cairn rollback runc-demo
mountinfo >"$work/mountinfo.after2"
diff "$work/mountinfo.before" "$work/mountinfo.after2" || die "the container's mounts changed across the rollback"
wait_loop_reads 1
[ "$(container_version)" = 1 ] || die "runc exec does not read v1 after the rollback"
rt exec "$id" test -e /usr/bin/hello && die "/usr/bin/hello is still there after the rollback"
echo "v1 is back: no /usr/bin/hello, os-release says 1; same container, same mounts"
run cairn history runc-demo
echo "versions the loop read, in order: $(uniq "$hostlog/versions" | paste -sd ' ')"

step "stopping the container and unmounting"
rt kill "$id" KILL
for _ in $(seq 50); do
	[ "$(rt state "$id" 2>/dev/null | python3 -c 'import json, sys; print(json.load(sys.stdin)["status"])')" = stopped ] && break
	sleep 0.1
done
run rt delete "$id"
run cairn umount "$rootfs"
echo "done"
