#!/bin/bash
# mount_shared.sh - one daemon per store serves every mount: ten mounts
# (read-only and writable, two platforms, pinned images) in one process,
# each serving its own tree; an upgrade moves only its platform's mounts in
# one request; umount of one leaves the others; the thread count does not
# grow with the mounts; kill -9 of the daemon leaves ENOTCONN, dead records
# that umount cleans and a clean store, and the next mount starts a new
# daemon; two first mounts at once start one daemon; a mount made inside
# 'unshare -m' lands in that namespace only (and ends with it); a mount
# whose upper directory hangs (a FUSE filesystem stopped with SIGSTOP)
# holds only its own share of the workers while the others keep serving.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
mount_setup
require_cmd unshare
chmod 0711 "$WORK"
[ "${CAIRN_TEST_ISOLATED:-0}" = 1 ] && skip "this test is about the shared daemon"

REPO=$(cd "$(dirname "$0")/../.." && pwd)
STORE=$WORK/store
"$REPO/examples/mkrootfs.sh" "$WORK/r1" 1 >/dev/null
"$REPO/examples/mkrootfs.sh" "$WORK/r2" 2 >/dev/null
mkdir -p "$WORK/r3/etc" "$WORK/r3/srv/data"
echo "platform b" >"$WORK/r3/etc/motd"
for i in $(seq 1 50); do head -c $((i * 1000)) /dev/urandom >"$WORK/r3/srv/data/f$i"; done

say "images and two platforms"
import_ok "$STORE" "$WORK/r1" --tag v1
import_ok "$STORE" "$WORK/r2" --tag v2
import_ok "$STORE" "$WORK/r3" --tag b1
cairn_in "$STORE" upgrade pa v1 >/dev/null
cairn_in "$STORE" upgrade pb b1 >/dev/null
for r in r1 r2 r3; do dump "$WORK/$r" "$WORK/$r.dump"; done

# status_field FIELD: from 'cairn daemon status --json'
status_field() {
	tcairn "$STORE" daemon status --json | python3 -c \
		'import json, sys; print(json.load(sys.stdin).get(sys.argv[1], ""))' "$1"
}
threads_of() { awk '/^Threads:/ { print $2 }' "/proc/$1/status"; }
# pids_serving: the distinct pids 'cairn mounts --json' lists as serving
pids_serving() {
	tcairn "$STORE" mounts --json | python3 -c '
import json, sys
print(" ".join(sorted({str(m["pid"]) for m in json.load(sys.stdin) if m["state"] == "serving"})))'
}

say "ten mounts, one daemon"
# name source kind (ro | rw) expected-tree
SPECS=(
	"m1 pa rw r1" "m2 pa ro r1" "m3 pa rw r1" "m4 pb rw r3" "m5 pb ro r3"
	"m6 v2 ro r2" "m7 pa rw r1" "m8 pb rw r3" "m9 v1 rw r1" "m10 pa ro r1"
)
T1=""
for spec in "${SPECS[@]}"; do
	read -r name src kind _ <<<"$spec"
	mkdir -p "$WORK/$name"
	if [ "$kind" = rw ]; then
		mount_ok "$STORE" "$src" "$WORK/$name" --upper "$WORK/up-$name"
	else
		mount_ok "$STORE" "$src" "$WORK/$name" --ro
	fi
	[ -n "$T1" ] || T1=$(threads_of "$MPID")
done
DAEMON=$MPID
[ "$(pids_serving)" = "$DAEMON" ] || fail "the ten mounts are served by '$(pids_serving)', not one daemon"
[ "$(status_field mounts)" = 10 ] || soft_fail "daemon status says $(status_field mounts) mounts"
T10=$(threads_of "$DAEMON")
info "one daemon ($DAEMON): $T1 threads with one mount, $T10 with ten"
[ "$T10" = "$T1" ] || soft_fail "the daemon's threads grew with the mounts: $T1 -> $T10"
[ "$T10" -le 32 ] || soft_fail "the daemon runs $T10 threads"

say "each mount serves its own tree; writes stay in their own upper"
for spec in "${SPECS[@]}"; do
	read -r name src kind tree <<<"$spec"
	dump "$WORK/$name" "$WORK/$name.dump"
	same_dump "$WORK/$tree.dump" "$WORK/$name.dump" "$name ($src, $kind)" || true
done
for spec in "${SPECS[@]}"; do
	read -r name _ kind tree <<<"$spec"
	[ "$kind" = rw ] || continue
	mkdir -p "$WORK/$name/etc"
	echo "$name" >"$WORK/$name/etc/note-$name"
done
for spec in "${SPECS[@]}"; do
	read -r name _ kind _ <<<"$spec"
	found=$(cd "$WORK/$name/etc" && { ls note-* 2>/dev/null || true; } | tr "\n" " ")
	want=""
	[ "$kind" = rw ] && want="note-$name "
	[ "$found" = "$want" ] || soft_fail "$name sees notes '$found', want '$want'"
done
info "ok: each writable mount sees its own note only"

say "an upgrade of pa moves only pa's mounts, in one request"
run_capture up tcairn "$STORE" upgrade pa v2
[ "$RC" -eq 0 ] || fail "upgrade pa v2 exited $RC: $(cat "$WORK/up.err")"
show_file "$WORK/up.out" 12
n=$(grep -c ": switched " "$WORK/up.out" || true)
[ "$n" = 5 ] || soft_fail "the upgrade switched $n mounts, pa has 5"
grep -q "5 mounts switched in" "$WORK/up.out" || soft_fail "the upgrade did not report one switch of 5 mounts"
for spec in "${SPECS[@]}"; do
	read -r name src kind tree <<<"$spec"
	[ "$src" = pa ] && tree=r2
	# a writable mount's /etc changed with its note: compare the rest
	dump "$WORK/$name" "$WORK/$name.dump2"
	# (and its root shows the upper's root, made from the first image's)
	grep -v -e '^\. dir ' -e '^etc dir ' -e '^etc/note-' "$WORK/$name.dump2" >"$WORK/$name.dump3"
	grep -v -e '^\. dir ' -e '^etc dir ' "$WORK/$tree.dump" >"$WORK/$tree.dump3"
	same_dump "$WORK/$tree.dump3" "$WORK/$name.dump3" "$name after the upgrade of pa" || true
	if [ "$kind" = rw ]; then
		[ "$(cat "$WORK/$name/etc/note-$name")" = "$name" ] ||
			soft_fail "$name lost its note across the upgrade"
	fi
done

say "read-only mounts of one source share one session (and one page cache)"
mkdir -p "$WORK/s1" "$WORK/s2"
mount_ok "$STORE" v1 "$WORK/s1" --ro
mount_ok "$STORE" v1 "$WORK/s2" --ro
[ "$(stat -c %d "$WORK/s1")" = "$(stat -c %d "$WORK/s2")" ] ||
	soft_fail "two read-only mounts of v1 are two filesystems ($(stat -c %d "$WORK/s1") and $(stat -c %d "$WORK/s2"))"
[ "$(stat -c %d "$WORK/s1")" != "$(stat -c %d "$WORK/m9")" ] ||
	soft_fail "a read-only mount shares the session of a writable one"
python3 - "$(tcairn "$STORE" mounts --json)" "$WORK/s1" "$WORK/s2" <<'EOF' || soft_fail "cairn mounts does not list the bind"
import json, sys
by = {m["mountpoint"]: m for m in json.loads(sys.argv[1])}
a, b = by[sys.argv[2]], by[sys.argv[3]]
assert b["shares"] == a["id"] and b["pid"] == a["pid"], (a, b)
print("   ok: %s is listed, sharing %s" % (sys.argv[3], a["id"]))
EOF
stats_reads() { tcairn "$STORE" stats "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["reads"])'; }
r0=$(stats_reads "$WORK/s1")
cat "$WORK/s1/bin/busybox" >/dev/null
r1=$(stats_reads "$WORK/s1")
cat "$WORK/s2/bin/busybox" >/dev/null
r2=$(stats_reads "$WORK/s2")
info "reads the daemon answered: $r0, after reading through s1 $r1, then through s2 $r2"
[ "$r1" -gt "$r0" ] || soft_fail "reading through s1 asked the daemon nothing"
[ "$r2" = "$r1" ] || soft_fail "reading the same file through s2 asked the daemon again (two page caches)"
umount_ok "$STORE" "$WORK/s1"
timeout 10 cat "$WORK/s2/etc/hostname" >/dev/null || soft_fail "s2 stopped serving after umount of s1"
run_capture s2m tcairn "$STORE" mounts --json
grep -qF "\"$WORK/s1\"" "$WORK/s2m.out" && soft_fail "s1 is still listed after its umount"
grep -qF "\"$WORK/s2\"" "$WORK/s2m.out" || soft_fail "s2 is no longer listed after the umount of s1"
umount_ok "$STORE" "$WORK/s2"

say "umount of one leaves the others serving"
umount_ok "$STORE" "$WORK/m3"
pid_alive "$DAEMON" || fail "the daemon exited after one umount"
for spec in "${SPECS[@]}"; do
	read -r name _ _ _ <<<"$spec"
	[ "$name" = m3 ] && continue
	read -r name _ _ tree <<<"$spec"
	f=etc/hostname
	[ "$tree" = r3 ] && f=etc/motd
	timeout 10 cat "$WORK/$name/$f" >/dev/null || soft_fail "$name stopped serving after umount of m3"
done
[ "$(status_field mounts)" = 9 ] || soft_fail "daemon status says $(status_field mounts) mounts after one umount"

say "kill -9 of the daemon: ENOTCONN everywhere, dead records, umount cleans, fsck is clean"
kill -9 "$DAEMON"
wait_gone "$DAEMON" 10 || fail "daemon $DAEMON survives kill -9"
for spec in "${SPECS[@]}"; do
	read -r name _ _ _ <<<"$spec"
	[ "$name" = m3 ] && continue
	run_capture nc timeout 10 stat --cached=never "$WORK/$name/etc/never-looked-up"
	grep -Eq 'Transport endpoint is not connected|Software caused connection abort' "$WORK/nc.err" ||
		soft_fail "$name after kill -9: exit $RC: $(cat "$WORK/nc.err")"
done
run_capture dead tcairn "$STORE" mounts --json
python3 - "$WORK/dead.out" <<'EOF' || soft_fail "cairn mounts after kill -9"
import json, sys
j = json.load(open(sys.argv[1]))
assert len(j) == 9, "%d mounts listed, want 9" % len(j)
assert all(m["state"] == "dead" for m in j), [m["state"] for m in j]
print("   ok: 9 mounts listed as dead")
EOF
for spec in "${SPECS[@]}"; do
	read -r name _ _ _ <<<"$spec"
	[ "$name" = m3 ] && continue
	run_capture um tcairn "$STORE" umount "$WORK/$name"
	[ "$RC" -eq 0 ] || soft_fail "umount of dead $name exited $RC: $(cat "$WORK/um.err")"
	is_mounted "$WORK/$name" && soft_fail "$name still mounted after umount"
done
[ "$(tcairn "$STORE" mounts --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 0 ] ||
	soft_fail "records left after umount of every dead mount"
run_capture fsck tcairn "$STORE" fsck
[ "$RC" -eq 0 ] || soft_fail "fsck after kill -9 of the daemon exited $RC: $(head -n 3 "$WORK/fsck.out")"
mount_ok "$STORE" pa "$WORK/m1" --upper "$WORK/up-m1"
[ "$MPID" != "$DAEMON" ] || soft_fail "the next mount did not start a new daemon"
[ "$(cat "$WORK/m1/etc/note-m1")" = m1 ] || soft_fail "m1's upper lost its note"
umount_ok "$STORE" "$WORK/m1"
wait_gone "$MPID" 10 || soft_fail "the daemon did not exit after its last mount"

say "two first mounts at once start one daemon"
for round in 1 2 3; do
	tcairn "$STORE" mount v1 "$WORK/m1" --ro >"$WORK/c1.out" 2>&1 &
	a=$!
	tcairn "$STORE" mount v2 "$WORK/m2" --ro >"$WORK/c2.out" 2>&1 &
	b=$!
	_track_mount "$WORK/m1" "$STORE"
	_track_mount "$WORK/m2" "$STORE"
	wait "$a" || soft_fail "round $round: first concurrent mount failed: $(cat "$WORK/c1.out")"
	wait "$b" || soft_fail "round $round: second concurrent mount failed: $(cat "$WORK/c2.out")"
	p=$(pids_serving)
	[[ "$p" =~ ^[0-9]+$ ]] || soft_fail "round $round: two first mounts are served by '$p'"
	n=$(pgrep -fc -- "--store $STORE daemon serve" || true)
	[ "$n" = 1 ] || soft_fail "round $round: $n daemons run for the store"
	for pp in $p; do _track_daemon "$pp"; done
	umount_ok "$STORE" "$WORK/m1"
	umount_ok "$STORE" "$WORK/m2"
	for pp in $p; do wait_gone "$pp" 10 || soft_fail "round $round: daemon $pp did not exit"; done
done
info "ok: three rounds, one daemon each"

say "a mount made inside 'unshare -m' is in that namespace only, and ends with it"
mkdir -p "$WORK/ns"
cat >"$WORK/ns.sh" <<EOF
set -e
mount --make-rprivate /
"$CAIRN" --store "$STORE" mount v2 "$WORK/ns" --ro
cat "$WORK/ns/etc/os-release" >"$WORK/ns.read"
touch "$WORK/ns.ready"
while [ ! -e "$WORK/ns.go" ]; do sleep 0.1; done
EOF
timeout 60 unshare -m bash "$WORK/ns.sh" >"$WORK/ns.out" 2>&1 &
NSPID=$!
track_holder "$NSPID"
for _ in $(seq 1 300); do [ -e "$WORK/ns.ready" ] && break; sleep 0.1; done
[ -e "$WORK/ns.ready" ] || { show_file "$WORK/ns.out"; fail "the mount inside unshare -m did not come up"; }
grep -q 'VERSION_ID="2"' "$WORK/ns.read" || soft_fail "inside the namespace the mount reads: $(cat "$WORK/ns.read")"
is_mounted "$WORK/ns" && soft_fail "the namespace's mount shows in the test's namespace"
run_capture nsm tcairn "$STORE" mounts --json
grep -qF "\"$WORK/ns\"" "$WORK/nsm.out" || soft_fail "cairn mounts does not list the namespace's mount"
NSD=$(pids_serving)
info "ok: mounted in the namespace only (daemon $NSD)"
touch "$WORK/ns.go"
wait "$NSPID" || soft_fail "the unshare script failed: $(cat "$WORK/ns.out")"
# the namespace is gone, and with it its mount: the daemon sees the connection end
for _ in $(seq 1 100); do
	[ "$(tcairn "$STORE" mounts --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 0 ] && break
	sleep 0.1
done
[ "$(tcairn "$STORE" mounts --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 0 ] ||
	soft_fail "the mount's record outlived its namespace"
for pp in $NSD; do wait_gone "$pp" 10 || soft_fail "daemon $pp outlived its last mount's namespace"; done

say "a hung upper directory holds only its own mount's share of the workers"
require_cmd fuse-overlayfs
mkdir -p "$WORK/slow" "$WORK/slow-lower" "$WORK/slow-upper" "$WORK/slow-work"
fuse-overlayfs -o "lowerdir=$WORK/slow-lower,upperdir=$WORK/slow-upper,workdir=$WORK/slow-work" \
	"$WORK/slow" || fail "fuse-overlayfs would not mount"
track_mount "$WORK/slow"
FOVL=$(fuse_daemons_for "$WORK/slow" | head -n 1)
[ -n "$FOVL" ] || fail "no fuse-overlayfs process for $WORK/slow"
mount_ok "$STORE" v1 "$WORK/m1" --upper "$WORK/slow/up"
mount_ok "$STORE" v2 "$WORK/m2" --ro
mount_ok "$STORE" b1 "$WORK/m4" --upper "$WORK/up-m4b"
D=$MPID
echo before >"$WORK/m1/root/before" || fail "cannot write through the mount whose upper is on fuse-overlayfs"
kill -STOP "$FOVL"
track_cleanup "kill -CONT $FOVL 2>/dev/null"
# more writers on the hung mount than the daemon has workers
STUCK=()
for i in $(seq 1 40); do
	(echo "$i" >"$WORK/m1/root/stuck-$i") 2>/dev/null &
	STUCK+=($!)
done
sleep 1
ok=0
want=0
start=$(date +%s%N)
# (each a first lookup and read: the kernel must ask the daemon)
for f in $(cd "$WORK/r2" && find . -type f); do
	want=$((want + 1))
	timeout 10 cat "$WORK/m2/$f" >/dev/null && ok=$((ok + 1))
done
for i in $(seq 1 30); do
	want=$((want + 1))
	timeout 10 sh -c "cat '$WORK/m4/srv/data/f$i' >/dev/null && echo x >'$WORK/m4/srv/new-$i'" &&
		ok=$((ok + 1))
done
ms=$((($(date +%s%N) - start) / 1000000))
[ "$ok" = "$want" ] ||
	soft_fail "with one mount's upper hung, $ok of $want operations on the other mounts worked"
info "while m1's upper hangs (40 writers stuck): $ok operations on two other mounts in $ms ms"
[ "$(threads_of "$D")" -le 32 ] || soft_fail "the daemon grew to $(threads_of "$D") threads"
kill -CONT "$FOVL"
for p in "${STUCK[@]}"; do wait "$p" || true; done
n=$(ls "$WORK/m1/root" | grep -c '^stuck-' || true)
[ "$n" = 40 ] || soft_fail "after the upper came back, $n of 40 stuck writes landed"
info "ok: the 40 stuck writes landed once the upper came back"
umount_ok "$STORE" "$WORK/m1"
umount_ok "$STORE" "$WORK/m2"
umount_ok "$STORE" "$WORK/m4"
umount "$WORK/slow"

say "a uid-1000 loop making files on one mount neither starves another nor takes its fds"
# a new daemon (the last one ended with its last mount), with a small fd budget per mount
export CAIRN_FD_BUDGET=300
mount_ok "$STORE" v1 "$WORK/m1" --upper "$WORK/up-busy"
mount_ok "$STORE" b1 "$WORK/m4" --ro
unset CAIRN_FD_BUDGET
D=$MPID
fds0=$(ls "/proc/$D/fd" | wc -l)
BUSY=()
for k in 1 2 3 4; do
	timeout 60 setpriv --reuid=1000 --regid=1000 --clear-groups sh -c \
		'mkdir -p "$1" || exit 1; i=0; while [ ! -e "$2" ]; do : >"$1/f$i" || exit 1; i=$((i + 1)); done; echo "$i"' \
		sh "$WORK/m1/tmp/u$k" "$WORK/busy.stop" >"$WORK/busy$k.out" 2>&1 &
	BUSY+=($!)
	track_holder "$!"
done
sleep 1
worst=0
for i in $(seq 1 50); do
	t0=$EPOCHREALTIME
	timeout 10 cat "$WORK/m4/srv/data/f$i" >/dev/null || soft_fail "reading m4 failed while m1 was flooded"
	ms=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
	[ "$ms" -le "$worst" ] || worst=$ms
done
touch "$WORK/busy.stop"
made=0
for p in "${BUSY[@]}"; do wait "$p" || true; done
for k in 1 2 3 4; do made=$((made + $(tail -n 1 "$WORK/busy$k.out" 2>/dev/null | grep -E '^[0-9]+$' || echo 0))); done
info "m1 took $made files from four uid-1000 loops; 50 first reads on m4 meanwhile, the slowest $worst ms; daemon fds $fds0 -> $(ls "/proc/$D/fd" | wc -l)"
[ "$worst" -le 3000 ] || soft_fail "a read on m4 took $worst ms while m1 was flooded"
[ "$made" -gt 600 ] || soft_fail "the uid-1000 loops made only $made files on m1 (set-up)"
budget=$(tcairn "$STORE" stats "$WORK/m1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["fd_budget"])')
fds1=$(ls "/proc/$D/fd" | wc -l)
[ "$budget" = 300 ] || soft_fail "m1's fd budget is $budget, not the 300 asked for"
[ "$fds1" -le $((fds0 + 300 + 64)) ] ||
	soft_fail "the daemon holds $fds1 fds after $made files on m1 (budget 300, $fds0 before)"
umount_ok "$STORE" "$WORK/m1"
umount_ok "$STORE" "$WORK/m4"


say "one more mount writes only what changed"
# a bind writes its own record, not every bind's of the session again (a rename: a new inode)
mkdir -p "$WORK/b1" "$WORK/b2" "$WORK/b3"
mount_ok "$STORE" v2 "$WORK/b1" --ro
mount_ok "$STORE" v2 "$WORK/b2" --ro
rec_of() { # MOUNTPOINT: its record file in STORE/run
	tcairn "$STORE" mounts --json | python3 -c '
import json, sys
print([m["id"] for m in json.load(sys.stdin) if m["mountpoint"] == sys.argv[1]][0])' "$1" |
		sed "s|^|$STORE/run/mount-|; s|\$|.json|"
}
r1=$(rec_of "$WORK/b1") r2=$(rec_of "$WORK/b2")
i1=$(stat -c %i "$r1") i2=$(stat -c %i "$r2")
mount_ok "$STORE" v2 "$WORK/b3" --ro
r3=$(rec_of "$WORK/b3")
[ -f "$r3" ] || soft_fail "the third bind has no record ($r3)"
[ "$(stat -c %i "$r1")" = "$i1" ] && [ "$(stat -c %i "$r2")" = "$i2" ] ||
	soft_fail "a third bind rewrote the records of the first two"
# a writable mount of a platform on an upper that names its image already: no rewrite of upper.json
mkdir -p "$WORK/q1"
mount_ok "$STORE" pb "$WORK/q1" --upper "$WORK/uq"
umount_ok "$STORE" "$WORK/q1"
iq=$(stat -c %i "$WORK/uq/upper.json")
mount_ok "$STORE" pb "$WORK/q1" --upper "$WORK/uq"
[ "$(stat -c %i "$WORK/uq/upper.json")" = "$iq" ] ||
	soft_fail "mounting an upper again on the image it names rewrote its upper.json"
# and a switch to another image does write it, naming the new image
cairn_in "$STORE" upgrade pb v1 >/dev/null
want=$(tcairn "$STORE" images --json | python3 -c '
import json, sys
print([i["id"] for i in json.load(sys.stdin) if "v1" in i.get("tags", [])][0])')
python3 - "$WORK/uq/upper.json" "$want" <<'PY' || soft_fail "upper.json does not name the image switched to"
import json, sys
got = json.load(open(sys.argv[1]))["image"]
assert sys.argv[2].startswith(got) or got.startswith(sys.argv[2]), (got, sys.argv[2])
print("   ok: upper.json names %s after the switch" % got[:12])
PY
cairn_in "$STORE" upgrade pb b1 >/dev/null
for m in q1 b3 b2 b1; do umount_ok "$STORE" "$WORK/$m"; done

finish
