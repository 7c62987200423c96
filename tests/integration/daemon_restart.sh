#!/bin/bash
# daemon_restart.sh - 'cairn daemon restart' under load: ten mounts (writable
# and read-only, a platform and pinned images) with readers checking every
# byte they read against the image and writers checking every byte they
# wrote, a process holding a working directory, an open file and an open
# directory listing on a mount, and two restarts meanwhile: no error, no
# wrong byte, the same inode numbers, the same processes, the listing goes
# on, and a live switch and umount afterwards work as before.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
mount_setup
chmod 0711 "$WORK"
[ "${CAIRN_TEST_ISOLATED:-0}" = 1 ] && skip "an --isolated daemon is not restarted"

REPO=$(cd "$(dirname "$0")/../.." && pwd)
STORE=$WORK/store
"$REPO/examples/mkrootfs.sh" "$WORK/r1" 1 >/dev/null
"$REPO/examples/mkrootfs.sh" "$WORK/r2" 2 >/dev/null
mkdir -p "$WORK/r1/srv"
for i in $(seq 1 20); do head -c $((i * 37000)) /dev/urandom >"$WORK/r1/srv/f$i"; done
cp -a "$WORK/r1/srv" "$WORK/r2/srv"
import_ok "$STORE" "$WORK/r1" --tag v1
import_ok "$STORE" "$WORK/r2" --tag v2
cairn_in "$STORE" upgrade pa v1 >/dev/null
(cd "$WORK/r1" && sha256sum srv/* bin/busybox) >"$WORK/sums"

cat >"$WORK/worker.py" <<'EOF'
# worker.py MODE DIR SUMS STOP OUT: reads (files against SUMS) or writes
# (its own files, read back) in DIR until STOP exists; OUT gets
# "iterations errors" and the first errors.
import hashlib, os, sys, time
mode, d, sums, stop, out = sys.argv[1:6]
want = [l.split() for l in open(sums)]
it = errors = 0
first = []
def bad(msg):
    global errors
    errors += 1
    if len(first) < 5:
        first.append(msg)
while not os.path.exists(stop):
    try:
        if mode == "read":
            for h, name in want:
                with open(os.path.join(d, name), "rb") as f:
                    got = hashlib.sha256(f.read()).hexdigest()
                if got != h:
                    bad("%s: wrong bytes" % name)
        else:
            name = os.path.join(d, "root", "w%d" % (it % 7))
            data = (b"%d:" % it) * (1000 + it % 5000)
            with open(name + ".tmp", "wb") as f:
                f.write(data)
            os.rename(name + ".tmp", name)
            with open(name, "rb") as f:
                if f.read() != data:
                    bad("%s: read back wrong" % name)
            os.listdir(os.path.join(d, "root"))
    except OSError as e:
        bad("%s" % e)
    it += 1
open(out, "w").write("%d %d\n%s\n" % (it, errors, "\n".join(first)))
EOF

say "ten mounts with readers and writers"
SPECS=("m1 pa rw" "m2 pa rw" "m3 pa ro" "m4 v1 rw" "m5 v1 ro" "m6 v1 ro" "m7 pa rw" "m8 v2 ro" "m9 pa rw" "m10 v1 rw")
for spec in "${SPECS[@]}"; do
	read -r name src kind <<<"$spec"
	mkdir -p "$WORK/$name"
	if [ "$kind" = rw ]; then
		mount_ok "$STORE" "$src" "$WORK/$name" --upper "$WORK/up-$name"
	else
		mount_ok "$STORE" "$src" "$WORK/$name" --ro
	fi
done
D0=$MPID
inodes() {
	local spec name
	for spec in "${SPECS[@]}"; do
		read -r name _ _ <<<"$spec"
		stat -c "$name %n %i" "$WORK/$name" "$WORK/$name/etc" "$WORK/$name/srv/f3" "$WORK/$name/bin/busybox"
	done
}
inodes >"$WORK/ino.before"
STOP=$WORK/stop
PIDS=()
for spec in "${SPECS[@]}"; do
	read -r name _ kind <<<"$spec"
	python3 "$WORK/worker.py" read "$WORK/$name" "$WORK/sums" "$STOP" "$WORK/$name.read" &
	PIDS+=($!)
	track_holder "$!"
	if [ "$kind" = rw ]; then
		python3 "$WORK/worker.py" write "$WORK/$name" "$WORK/sums" "$STOP" "$WORK/$name.write" &
		PIDS+=($!)
		track_holder "$!"
	fi
done
# a container-like process: cwd, an open file and a listing in progress on m1
python3 - "$WORK/m1" "$WORK/holder.out" "$STOP" <<'EOF' &
import os, sys, time
d, out, stop = sys.argv[1:4]
os.chdir(os.path.join(d, "usr"))
f = open(os.path.join(d, "srv", "f5"), "rb")
it = os.scandir(os.path.join(d, "bin"))
names = [next(it).name for _ in range(3)]
while not os.path.exists(stop):
    time.sleep(0.1)
names += [e.name for e in it]
ok = os.getcwd() == os.path.join(d, "usr") and len(f.read()) == 5 * 37000
open(out, "w").write("%d %s %d\n" % (os.getpid(), ok, len(names)))
EOF
HOLDER=$!
track_holder "$HOLDER"
sleep 2

say "two restarts under load"
for round in 1 2; do
	before=$(tcairn "$STORE" daemon status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
	run_capture restart tcairn "$STORE" daemon restart
	[ "$RC" -eq 0 ] || fail "daemon restart $round exited $RC: $(cat "$WORK/restart.err")"
	info "$(cat "$WORK/restart.out")"
	after=$(tcairn "$STORE" daemon status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
	[ "$after" != "$before" ] || soft_fail "restart $round: the daemon pid did not change ($after)"
	wait_gone "$before" 10 || soft_fail "restart $round: the old daemon $before still runs"
	_track_daemon "$after"
	grep -q "handed 10 mounts (9 FUSE sessions)" "$WORK/restart.out" ||
		soft_fail "restart $round: expected 10 mounts, 9 sessions handed over (m5 and m6 share one)"
	sleep 2
done
D2=$after
[ "$(tcairn "$STORE" mounts --json | python3 -c '
import json, sys
j = json.load(sys.stdin)
print(len(j), len({m["pid"] for m in j}), all(m["state"] == "serving" for m in j))')" = "10 1 True" ] ||
	soft_fail "after the restarts cairn mounts does not list ten mounts of one serving daemon"

say "nothing noticed it"
touch "$STOP"
for p in "${PIDS[@]}" "$HOLDER"; do wait "$p" || soft_fail "a worker ($p) failed"; done
for f in "$WORK"/*.read "$WORK"/*.write; do
	read -r its errs <"$f"
	name=$(basename "$f")
	[ "$errs" = 0 ] || { soft_fail "$name: $errs errors"; sed -n '2,6p' "$f" | sed 's/^/   | /'; }
	[ "$its" -ge 2 ] || soft_fail "$name: only $its iterations"
done
info "$(cat "$WORK"/*.read "$WORK"/*.write | awk 'NF == 2 { n++; i += $1; e += $2 } END { print n " workers, " i " iterations, " e " errors" }')"
read -r hpid hok hnames <"$WORK/holder.out"
[ "$hpid" = "$HOLDER" ] && [ "$hok" = True ] ||
	soft_fail "the holder lost its working directory or open file: $(cat "$WORK/holder.out")"
[ "$hnames" = "$(ls -A "$WORK/r1/bin" | wc -l)" ] ||
	soft_fail "the listing begun before the restarts read $hnames of $(ls -A "$WORK/r1/bin" | wc -l) names"
inodes >"$WORK/ino.after"
diff -u "$WORK/ino.before" "$WORK/ino.after" >/dev/null ||
	soft_fail "inode numbers changed: $(diff "$WORK/ino.before" "$WORK/ino.after" | head -n 4 | tr '\n' ' ')"
info "ok: same inode numbers, same holder (pid $HOLDER), listing complete"

say "after the restarts: a live switch, umount, fsck"
run_capture up tcairn "$STORE" upgrade pa v2
n=$(grep -c ': switched ' "$WORK/up.out" || true)
[ "$n" = 5 ] || soft_fail "the upgrade after the restarts switched $n of pa's 5 mounts"
grep -q 'VERSION_ID="2"' "$WORK/m1/etc/os-release" || soft_fail "m1 does not show v2 after the upgrade"
for spec in "${SPECS[@]}"; do
	read -r name _ _ <<<"$spec"
	umount_ok "$STORE" "$WORK/$name"
done
wait_gone "$D2" 10 || soft_fail "the restarted daemon did not exit after its last mount"
run_capture fsck tcairn "$STORE" fsck
[ "$RC" -eq 0 ] || soft_fail "fsck after the restarts: $(tail -n 3 "$WORK/fsck.out")"
[ "$D0" != "$D2" ] || soft_fail "the daemon was never replaced"

finish
