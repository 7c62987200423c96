#!/bin/bash
# example_quickstart.sh - examples/quickstart.sh, the README's main job, run
# for real against a temporary store (CAIRN set: no install, no build):
# the shell it leaves running inside the mount survives the live upgrade and
# rollback with one pid, what the container wrote stays on top and is what
# 'cairn changes' lists and 'cairn commit' keeps; a second run on the same
# store passes and unmounts a mount left on its mountpoint; an interrupted
# run leaves no mount, no process and no work directory behind.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
mount_setup

QUICKSTART=$TESTLIB/../../examples/quickstart.sh
STORE=$WORK/store
MNT=$WORK/mnt/quickstart
TMP=$WORK/tmp
mkdir -p "$TMP"
# the script's mount: cleaned up by mount.sh's trap if a run leaves it
_track_mount "$MNT" "$STORE"

# quickstart NAME: runs the example (5 min at most), its output (both
# streams, in order) in $WORK/NAME.out; sets RC
quickstart() {
	set +e
	timeout -k 10 300 env CAIRN="$CAIRN" CAIRN_STORE="$STORE" QUICKSTART_MNT="$MNT" \
		TMPDIR="$TMP" bash "$QUICKSTART" >"$WORK/$1.out" 2>&1
	RC=$?
	set -e
}

# in_root_procs: processes whose root directory is the mountpoint (one
# find over /proc, not a readlink per process: on a loaded machine with
# a thousand processes that took longer than the quickstart keeps its shell)
in_root_procs() {
	find /proc/[0-9]*/root -maxdepth 0 -lname "$MNT" -printf '%h\n' 2>/dev/null | sed 's|^/proc/||'
	return 0
}

# nothing_left WHAT: no mount, no process inside, no work directory
nothing_left() {
	is_mounted "$MNT" && soft_fail "$1: $MNT is still mounted"
	local procs
	procs=$(in_root_procs)
	[ -z "$procs" ] || soft_fail "$1: processes still run inside the mount: $procs"
	[ -z "$(ls -A "$TMP")" ] || soft_fail "$1: left in TMPDIR: $(ls -A "$TMP")"
	return 0
}

# has OUT LINE: the output has this exact line
has() {
	grep -qxF -- "$2" "$WORK/$1.out" || soft_fail "run $1: no line '$2' in its output"
}

say "first run on an empty store"
quickstart run1
show_file "$WORK/run1.out" 12
[ "$RC" -eq 0 ] || { tail -n 30 "$WORK/run1.out"; fail "quickstart exited $RC"; }
nothing_left "run 1"

say "the output tells what happened"
for l in "inside: cairn demo 1 (busybox)" "written inside the container" "quickstart" \
	"hello from version 2" "ls: /usr/bin/hello: No such file or directory" \
	"A /root/note" "D /bin/wget" "C /etc/hostname" "A /var/lib/app/state" "cairn-demo"; do
	has run1 "$l"
done
grep -q "switched 2$" "$WORK/run1.out" || soft_fail "the upgrade did not report the mount switched"
grep -q "switched 3$" "$WORK/run1.out" || soft_fail "the rollback did not report the mount switched"
# after 'uniq -c', the running shell's lines: one pid, one cwd, versions 1, 2, 1
# (a line whose os-release and README disagree read them on either side of
# a switch: it says nothing wrong, and is left out)
sed -n 's/^ *[0-9]\+ \[sh \([0-9]\+\) in \([^]]*\)\] cairn demo \([0-9]\) .*, version \([0-9]\)$/\1 \2 \3\4/p' \
	"$WORK/run1.out" | awk '{ v = $3; if (substr(v, 1, 1) == substr(v, 2, 1)) print }' | uniq \
	>"$WORK/shell"
info "the shell inside: $(tr '\n' '|' <"$WORK/shell")"
[ "$(wc -l <"$WORK/shell")" = 3 ] || soft_fail "expected 3 runs of the shell's lines, got $(wc -l <"$WORK/shell")"
[ "$(cut -d' ' -f1 "$WORK/shell" | sort -u | wc -l)" = 1 ] ||
	soft_fail "the shell inside changed pid across the switches"
[ "$(cut -d' ' -f2,3 "$WORK/shell" | tr '\n' ' ')" = "/usr/share/doc 11 /usr/share/doc 22 /usr/share/doc 11 " ] ||
	soft_fail "the shell inside did not see version 1, 2, 1 from /usr/share/doc"

say "the store: demo-v3 is demo-v1 plus what the container wrote, and the platform is on it"
cairn_in "$STORE" history demo --json >"$WORK/hist.json" || fail "history demo"
[ "$(json_get "$WORK/hist.json" '" ".join(g["action"] for g in j)')" = "upgrade upgrade rollback upgrade" ] ||
	soft_fail "history: $(json_get "$WORK/hist.json" '[g["action"] for g in j]')"
v3=$(json_get "$WORK/hist.json" 'j[-1]["image"]')
[ "$(json_get "$WORK/hist.json" 'j[-1]["tags"]')" = demo-v3 ] || soft_fail "the platform is not on demo-v3"
[ "$(cairn_in "$STORE" cat demo-v3:root/note)" = "written inside the container" ] || soft_fail "demo-v3:root/note"
[ "$(cairn_in "$STORE" cat demo-v3:etc/hostname)" = quickstart ] || soft_fail "demo-v3:etc/hostname"
[ "$(cairn_in "$STORE" cat demo-v3:var/lib/app/state)" = 1 ] || soft_fail "demo-v3:var/lib/app/state"
cairn_in "$STORE" stat demo-v3:bin/wget >/dev/null 2>&1 && soft_fail "demo-v3 still has bin/wget"
# everything else is demo-v1's: compare the two trees minus the changed paths
export_extract "$STORE" demo-v1 "$WORK/t1" && export_extract "$STORE" demo-v3 "$WORK/t3" && {
	rm -rf "$WORK/t1/bin/wget" "$WORK/t1/etc/hostname" "$WORK/t3/etc/hostname" "$WORK/t3/root/note" \
		"$WORK/t3/var/lib"
	# the directories the container wrote in have new times, and
	# extraction gives the top directory its own
	touch -h -d @0 "$WORK/t1" "$WORK/t3" "$WORK/t1/bin" "$WORK/t1/etc" "$WORK/t1/root" "$WORK/t1/var" \
		"$WORK/t3/bin" "$WORK/t3/etc" "$WORK/t3/root" "$WORK/t3/var"
	dump "$WORK/t1" "$WORK/t1.dump"
	dump "$WORK/t3" "$WORK/t3.dump"
	same_dump "$WORK/t1.dump" "$WORK/t3.dump" "demo-v3 outside the container's changes is demo-v1"
}
store_fsck() {
	run_capture fsck cairn_in "$STORE" fsck
	[ "$RC" -eq 0 ] || { show_file "$WORK/fsck.out"; soft_fail "$1: fsck exited $RC"; }
}
store_fsck "after run 1"

say "second run on the same store, with a mount left on its mountpoint"
mount_ok "$STORE" demo-v1 "$MNT"
quickstart run2
[ "$RC" -eq 0 ] || { tail -n 30 "$WORK/run2.out"; fail "second run exited $RC"; }
grep -q "left mounted by an earlier run" "$WORK/run2.out" || soft_fail "run 2 did not say it unmounted the leftover"
nothing_left "run 2"
cairn_in "$STORE" history demo --json >"$WORK/hist2.json" || fail "history demo"
[ "$(json_get "$WORK/hist2.json" 'len(j)')" = 8 ] || soft_fail "after two runs the platform has 8 generations"
[ "$(json_get "$WORK/hist2.json" 'j[-1]["image"]')" != "$v3" ] ||
	soft_fail "the second commit made the same image (its note has a new time)"
store_fsck "after run 2"

say "an interrupted run (SIGTERM while the shell runs inside) cleans up"
env CAIRN="$CAIRN" CAIRN_STORE="$STORE" QUICKSTART_MNT="$MNT" TMPDIR="$TMP" \
	bash "$QUICKSTART" >"$WORK/run3.out" 2>&1 &
qpid=$!
track_holder "$qpid"
n=0
until grep -q "the shell sees" "$WORK/run3.out"; do
	n=$((n + 1))
	if [ "$n" -ge 1200 ] || ! pid_alive "$qpid"; then
		tail -n 20 "$WORK/run3.out"
		fail "run 3 never started its shell"
	fi
	sleep 0.1
done
# run 3 is held (SIGSTOP) while the test looks for its shell: left to go
# on, it stops that shell by itself a few seconds later (its last step)
kill -STOP "$qpid"
[ -n "$(in_root_procs)" ] || soft_fail "run 3: no process runs inside the mount"
# the TERM waits, pending, until the CONT lets the script run its trap
kill -TERM "$qpid"
kill -CONT "$qpid"
# its cleanup stops the shell inside, unmounts and returns: bounded
if wait_gone "$qpid" 60; then
	set +e
	wait "$qpid"
	RC=$?
	set -e
	[ "$RC" = 143 ] || soft_fail "run 3 exited $RC after SIGTERM, expected 143"
else
	tail -n 5 "$WORK/run3.out"
	soft_fail "run 3 still runs 60 s after SIGTERM"
	# the shell inside first, so that the mount can go
	for p in $(in_root_procs); do kill -9 "$p"; done
fi
nothing_left "run 3"
store_fsck "after run 3"

finish
