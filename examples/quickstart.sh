#!/bin/bash
# quickstart.sh - the main job, from nothing: install what cairn needs,
# build it, import two versions of a small root filesystem, put a platform
# on the first, mount it with a writable upper directory and run commands
# inside it, upgrade it live to the second while a shell inside keeps
# running, roll it back, show the store's figures, unmount, and commit what
# the container wrote as a new image.
#
# Run as root on Debian 12. Safe to run again: the same trees import to the
# same image ids, each run writes into a fresh upper directory, and a mount
# left behind by an interrupted run is unmounted first.
#
# Environment:
#   CAIRN_STORE     the store (default /var/lib/cairn)
#   CAIRN           a cairn binary already built: skips installing and building
#   QUICKSTART_MNT  the mountpoint (default /run/cairn/mnt/quickstart)
#   TMPDIR          where the root filesystems and the upper directory are made
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=examples/lib.sh
. examples/lib.sh

[ "$(id -u)" -eq 0 ] || die "run as root (FUSE mounts with allow_other, chroot)"
cairn_ready
export CAIRN_STORE=${CAIRN_STORE:-/var/lib/cairn}
echo "cairn: $cairn; store: $CAIRN_STORE"

mnt=${QUICKSTART_MNT:-/run/cairn/mnt/quickstart}
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-quickstart.XXXXXX")
upper=$work/upper
watch_pid=""
# stop the shell left running inside, unmount, remove the work directory:
# also when a step fails or the script is interrupted
cleanup() {
	local rc=$?
	set +e
	if [ -n "$watch_pid" ]; then
		kill -TERM -- "-$watch_pid" 2>/dev/null
		wait "$watch_pid" 2>/dev/null
	fi
	if is_mounted "$mnt"; then
		"$cairn" umount "$mnt" >/dev/null 2>&1 || "$cairn" umount --lazy "$mnt"
	fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "making a small root filesystem from busybox-static, version 1 and version 2"
./examples/mkrootfs.sh "$work/rootfs-v1" 1
./examples/mkrootfs.sh "$work/rootfs-v2" 2
echo "$(find "$work/rootfs-v1" | wc -l) entries, $(du -sh "$work/rootfs-v1" | cut -f1)"
echo "version 2 adds /usr/bin/hello and /etc/motd and changes /etc/os-release and /usr/share/doc/README"

step "importing them as images 'demo-v1' and 'demo-v2'"
run "$cairn" import "$work/rootfs-v1" --tag demo-v1 -m "busybox demo, version 1"
run "$cairn" import "$work/rootfs-v2" --tag demo-v2 -m "busybox demo, version 2"
run "$cairn" images
run "$cairn" ls -l demo-v1:etc

step "a platform 'demo' on version 1, mounted with a writable upper directory"
run "$cairn" upgrade demo demo-v1
mkdir -p "$(dirname "$mnt")"
chmod 700 "$(dirname "$mnt")"
mkdir -p "$mnt"
if is_mounted "$mnt"; then
	echo "(unmounting $mnt, left mounted by an earlier run)"
	"$cairn" umount "$mnt" || "$cairn" umount --lazy "$mnt"
fi
run "$cairn" mount demo "$mnt" --upper "$upper"
run "$cairn" mounts

step "running commands inside it (chroot): the changes land in $upper/tree"
# shellcheck disable=SC2016 # expanded by the shell inside
run chroot "$mnt" /bin/sh -c '. /etc/os-release; echo "inside: $PRETTY_NAME"; ls /bin | wc -l'
run chroot "$mnt" /bin/sh -c 'echo "written inside the container" > /root/note;
	echo quickstart > /etc/hostname; rm /bin/wget; mkdir -p /var/lib/app; echo 1 > /var/lib/app/state'
run chroot "$mnt" /bin/sh -c 'cat /root/note /etc/hostname; ls /bin/wget || true'
run ls "$upper/tree" "$upper/tree/root"
echo "the image is unchanged:"
run "$cairn" cat demo:etc/hostname

step "a shell inside keeps running: its working directory is /usr/share/doc"
# a new session (setsid), so that cleanup stops the shell and its sleep together
watch_log=$work/watch.log
# shellcheck disable=SC2016 # expanded by the shell inside
watch_script='cd /usr/share/doc; while :; do . /etc/os-release;
	echo "[sh $$ in $PWD] $PRETTY_NAME; README: $(cat README)"; sleep 0.2; done'
printf '$ setsid chroot %s /bin/sh -c %s > %s &\n' "$mnt" "'$watch_script'" "$watch_log"
setsid chroot "$mnt" /bin/sh -c "$watch_script" >"$watch_log" 2>&1 &
watch_pid=$!
# wait_for_line TEXT: until the shell's last three lines have TEXT (10 s at most)
wait_for_line() {
	local n=100
	until [ "$(tail -n 3 "$watch_log" | grep -cF "$1")" = 3 ]; do
		kill -0 "$watch_pid" 2>/dev/null || { cat "$watch_log"; die "the shell inside stopped"; }
		n=$((n - 1))
		[ "$n" -gt 0 ] || { tail -n 5 "$watch_log"; die "the shell inside never printed '$1'"; }
		sleep 0.1
	done
	echo "the shell sees: $(tail -n 1 "$watch_log")"
}
wait_for_line "version 1"

step "upgrading the platform to version 2, live: the mount switches under the running shell"
run "$cairn" upgrade demo demo-v2
wait_for_line "version 2"
kill -0 "$watch_pid" || die "the shell inside did not survive the upgrade"
echo "same shell (pid $watch_pid), same working directory, now reading version 2"
echo "what the container wrote is still on top of the new image:"
run chroot "$mnt" /bin/sh -c 'cat /root/note /etc/hostname; ls /bin/wget || true; hello'

step "what the container changed (like docker diff)"
run "$cairn" changes "$upper"

step "rolling back to version 1, live"
run "$cairn" rollback demo
wait_for_line "version 1"
run chroot "$mnt" /bin/sh -c 'cat /root/note; ls /usr/bin/hello || true'

step "the store's figures"
run "$cairn" du
run "$cairn" history demo
run "$cairn" stats "$mnt"

step "stopping the shell and unmounting"
kill -TERM -- "-$watch_pid"
wait "$watch_pid" || true
watch_pid=""
echo "what the shell printed, one line per run of identical lines:"
uniq -c "$watch_log"
run "$cairn" umount "$mnt"

step "committing the upper directory as image 'demo-v3' and upgrading the platform to it"
run "$cairn" commit "$upper" --tag demo-v3 -m "demo-v1 with the container's changes"
run "$cairn" upgrade demo demo-v3
run "$cairn" cat demo:root/note
run "$cairn" ls demo:var/lib/app
run "$cairn" du demo-v3
run "$cairn" history demo

step "done"
echo "the store is $CAIRN_STORE: try '$cairn mount demo $mnt --upper UPPERDIR'"
