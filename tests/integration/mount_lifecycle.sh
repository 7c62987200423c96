#!/bin/bash
# mount_lifecycle.sh - mount and umount behave: bad mount requests get one
# clear error and leave no mount or daemon; mount options (read-only,
# allow_other, default_permissions, suid, nodev unless -o dev); 'mounts'
# lists running mounts; 'stats' counters grow (misses, hits, evictions
# within --cache-size); a daemon killed with -9 leaves ENOTCONN, 'mounts'
# says its mounts are dead, 'umount' cleans them; a busy umount names the holder and --lazy detaches;
# SIGTERM and SIGINT unmount cleanly; -f stays in the foreground.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
mount_setup
# other users must reach the mounts (allow_other, setuid checks)
chmod 0711 "$WORK"

SRC=$WORK/src
STORE=$WORK/store
M1=$WORK/m1
M2=$WORK/m2
mkdir -p "$M1" "$M2"

say "a small image"
mkdir -p "$SRC/data" "$SRC/bin" "$SRC/dev"
printf 'hello\n' >"$SRC/data/hello"
head -c 10240 /dev/urandom >"$SRC/data/small-10K"
head -c $((32 << 20)) /dev/urandom >"$SRC/data/big-32M"
printf 'secret\n' >"$SRC/data/secret"
chmod 0600 "$SRC/data/secret"
cp /usr/bin/id "$SRC/bin/id-suid"
chmod 4755 "$SRC/bin/id-suid"
mknod "$SRC/dev/null" c 1 3
chmod 0666 "$SRC/dev/null"
import_ok "$STORE" "$SRC" --tag v1
ID1=$ID

# mount_error WHAT IMAGE DIR [ARGS...]: one clear error, and nothing mounted
# or running for DIR afterwards
mount_error() {
	local what=$1 image=$2 dir=$3
	shift 3
	_track_mount "$dir" "$STORE"
	local before
	before=$(mount_count "$dir")
	expect_error "$what" tcairn "$STORE" mount "$image" "$dir" "${MOUNT_MODE_ARGS[@]}" "$@"
	sleep 0.5
	if [ "$(mount_count "$dir")" != "$before" ]; then
		soft_fail "$what: $dir has $(mount_count "$dir") mounts, had $before"
	fi
	local d
	d=$(fuse_daemons_for "$dir" | wc -l)
	if [ "$before" = 0 ] && [ "$d" -ne 0 ]; then
		soft_fail "$what: a daemon for $dir is still running"
	fi
}

say "bad mounts: one clear error, nothing left behind"
mount_error "mount on a missing directory" v1 "$WORK/missing"
[ ! -e "$WORK/missing" ] || soft_fail "mount on a missing directory created it"
: >"$WORK/a-file"
mount_error "mount on a regular file" v1 "$WORK/a-file"
mount_error "mount of an unknown image" no-such-image "$M1"
mount_error "mount of a bad id prefix" ffffffffffff "$M1"
[ -z "$(mounts_under "$WORK")" ] || soft_fail "mounts left after the bad mounts: $(mounts_under "$WORK")"

say "mount; a second mount on the same directory is refused"
mount_ok "$STORE" v1 "$M1"
P1=$MPID
mount_error "mount on a mounted directory" v1 "$M1"
[ "$(mount_count "$M1")" = 1 ] || soft_fail "$M1 is mounted $(mount_count "$M1") times"
timeout 10 cat "$M1/data/hello" | grep -qx hello || soft_fail "$M1 no longer reads after the refused mount"
[ -z "$P1" ] || pid_alive "$P1" || soft_fail "the first daemon died after the refused mount"

say "a second mount of the same image (by id prefix) beside it"
mount_ok "$STORE" "${ID1:0:10}" "$M2"
P2=$MPID
cmp -s "$M1/data/big-32M" "$M2/data/big-32M" || soft_fail "two mounts of one image differ"
info "ok: both read the same bytes"

say "mounts lists the running mounts"
run_capture mounts tcairn "$STORE" mounts
if [ "$RC" -ne 0 ]; then
	soft_fail "cairn mounts exited $RC"
	show_file "$WORK/mounts.err"
else
	show_file "$WORK/mounts.out" 5
	grep -qF "$M1" "$WORK/mounts.out" || soft_fail "cairn mounts does not show $M1"
	[ -z "$P1" ] || grep -qw "$P1" "$WORK/mounts.out" || soft_fail "cairn mounts does not show pid $P1"
fi
run_capture mountsj tcairn "$STORE" mounts --json
if [ "$RC" -ne 0 ]; then
	soft_fail "cairn mounts --json exited $RC"
else
	python3 - "$WORK/mountsj.out" "$M1" "$M2" "$ID1" "${ID1:0:10}" <<'EOF' || soft_fail "cairn mounts --json is wrong"
import json, os, sys
j = json.load(open(sys.argv[1]))
m1, m2, image, prefix = sys.argv[2:6]
assert isinstance(j, list), "not an array"
by = {m.get("mountpoint"): m for m in j}
for mp, source in ((m1, "v1"), (m2, prefix)):
    assert mp in by, "%s is not listed: %r" % (mp, j)
    m = by[mp]
    for k in ("pid", "mountpoint", "source", "image"):
        assert k in m, "%s: field %r missing" % (mp, k)
    assert isinstance(m["pid"], int) and os.path.exists("/proc/%d" % m["pid"]), \
        "%s: pid %r is not running" % (mp, m["pid"])
    assert m["source"] == source, "%s: source %r, want %r (as given)" % (mp, m["source"], source)
    assert m["image"] == image, "%s: image %r, want %r" % (mp, m["image"], image)
print("   ok: mounts --json: %d mounts, pid, mountpoint, source, image" % len(j))
EOF
fi

say "mount options: read-only, allow_other, default_permissions, suid, nodev"
opts=$(mount_opts "$M1")
info "$(mount_fstype "$M1") $opts"
[[ "$(mount_fstype "$M1")" == fuse* ]] || soft_fail "fstype $(mount_fstype "$M1") is not fuse"
for o in ro nodev allow_other default_permissions; do
	[[ ",$opts," == *",$o,"* ]] || soft_fail "mount option $o missing: $opts"
done
[[ ",$opts," != *",nosuid,"* ]] || soft_fail "the mount is nosuid: setuid must be honoured"
run_capture nodev timeout 10 python3 -c 'import errno, os, sys
try:
    os.close(os.open(sys.argv[1], os.O_RDONLY)); print("opened")
except OSError as e:
    print(errno.errorcode[e.errno])' "$M1/dev/null"
[ "$(cat "$WORK/nodev.out")" = EACCES ] && info "ok: device node not usable (nodev): EACCES" ||
	soft_fail "open of a device node on the default mount: $(cat "$WORK/nodev.out" "$WORK/nodev.err")"
# as nobody: allow_other lets it in, default_permissions keeps 0600 out,
# the setuid-root binary runs as root
run_capture nobody1 timeout 10 setpriv --reuid=65534 --regid=65534 --clear-groups cat "$M1/data/hello"
[ "$RC" -eq 0 ] && info "ok: nobody reads a 0644 file (allow_other)" ||
	soft_fail "nobody cannot read $M1/data/hello: $(cat "$WORK/nobody1.err")"
run_capture nobody2 timeout 10 setpriv --reuid=65534 --regid=65534 --clear-groups cat "$M1/data/secret"
if [ "$RC" -ne 0 ] && grep -qi 'permission denied' "$WORK/nobody2.err"; then
	info "ok: nobody cannot read a 0600 file (default_permissions)"
else
	soft_fail "nobody reading a 0600 root file: exit $RC: $(cat "$WORK/nobody2.out" "$WORK/nobody2.err")"
fi
run_capture nobody3 timeout 10 setpriv --reuid=65534 --regid=65534 --clear-groups "$M1/bin/id-suid" -u
if [ "$RC" -eq 0 ] && [ "$(cat "$WORK/nobody3.out")" = 0 ]; then
	info "ok: a setuid-root binary run by nobody has euid 0 (suid honoured)"
else
	soft_fail "setuid-root binary run by nobody: exit $RC, euid '$(cat "$WORK/nobody3.out")' $(cat "$WORK/nobody3.err")"
fi

say "-o dev allows device nodes; --ro is accepted"
M3=$WORK/m3
mkdir -p "$M3"
mount_ok "$STORE" v1 "$M3" --ro -o dev
opts=$(mount_opts "$M3")
[[ ",$opts," != *",nodev,"* ]] || soft_fail "-o dev: the mount is still nodev: $opts"
run_capture dev timeout 10 python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY); print(len(os.read(fd, 100)))' "$M3/dev/null"
[ "$RC" -eq 0 ] && [ "$(cat "$WORK/dev.out")" = 0 ] && info "ok: dev/null opens and reads empty" ||
	soft_fail "-o dev: dev/null: exit $RC $(cat "$WORK/dev.out" "$WORK/dev.err")"
umount_ok "$STORE" "$M3" || true

say "stats: misses, then hits, evictions within --cache-size"
M4=$WORK/m4
mkdir -p "$M4"
CACHE=$((8 << 20))
# --cache-size is the budget of the daemon the mount starts: its own here
# (the shared daemon, already running for M1 and M2, keeps the one it has)
mount_ok "$STORE" v1 "$M4" --cache-size "$CACHE" --isolated
# stats_json NAME: cairn stats M4 --json into $WORK/NAME.out
stats_json() {
	run_capture "$1" tcairn "$STORE" stats "$M4" --json
	if [ "$RC" -ne 0 ]; then
		show_file "$WORK/$1.err"
		soft_fail "cairn stats $M4 --json exited $RC"
		echo '{}' >"$WORK/$1.out"
	fi
}
stats_json st0
timeout 10 cat "$M4/data/small-10K" >/dev/null
stats_json st1
# drop the file's pages from the kernel cache: the next read asks the daemon
timeout 10 python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
os.read(fd, 1 << 20)' "$M4/data/small-10K"
stats_json st2
timeout 60 cat "$M4/data/big-32M" >/dev/null
stats_json st3
python3 - "$CACHE" "$WORK"/st{0,1,2,3}.out <<'EOF' || soft_fail "stats counters"
import json, sys
cache = int(sys.argv[1])
s = [json.load(open(p)) for p in sys.argv[2:]]
bad = []
F = ("hits", "misses", "evictions", "bytes", "entries", "max_bytes")
for i, x in enumerate(s):
    for k in F:
        if not isinstance(x.get(k), int):
            bad.append("stats %d: field %r is %r" % (i, k, x.get(k)))
if bad:
    print("\n".join("   " + b for b in bad))
    sys.exit(1)
for i, x in enumerate(s):
    print("   %d: %s" % (i, " ".join("%s=%d" % (k, x[k]) for k in F)))
if s[0]["max_bytes"] != cache:
    bad.append("max_bytes %d, want --cache-size %d" % (s[0]["max_bytes"], cache))
if not s[1]["misses"] > s[0]["misses"]:
    bad.append("a first read did not add a miss")
if not s[2]["hits"] > s[1]["hits"]:
    bad.append("re-reading the file (page cache dropped) did not add a hit")
if s[2]["misses"] != s[1]["misses"]:
    bad.append("re-reading a cached chunk added %d misses" % (s[2]["misses"] - s[1]["misses"]))
if not s[3]["evictions"] > 0:
    bad.append("reading 32 MiB through an 8 MiB cache evicted nothing")
for i, x in enumerate(s):
    if x["bytes"] > x["max_bytes"]:
        bad.append("stats %d: bytes %d over max_bytes %d" % (i, x["bytes"], x["max_bytes"]))
if not s[3]["entries"] > 0:
    bad.append("no cache entries after reads")
for b in bad:
    print("   " + b)
sys.exit(1 if bad else 0)
EOF
run_capture stxt tcairn "$STORE" stats "$M4"
[ "$RC" -eq 0 ] && [ -s "$WORK/stxt.out" ] || soft_fail "cairn stats (text) exited $RC or printed nothing"
expect_error "stats of a directory that is not a mount" tcairn "$STORE" stats "$SRC"
umount_ok "$STORE" "$M4" || true

say "kill -9 the daemon: ENOTCONN, then umount cleans it"
[ -n "$P1" ] || fail "no daemon pid for $M1"
kill -9 "$P1"
wait_gone "$P1" 10 || fail "daemon $P1 survives kill -9"
# A plain 'stat M1' may be answered from the kernel's attribute cache
# (long attribute timeouts) without asking the dead daemon: force the
# kernel to ask (statx AT_STATX_FORCE_SYNC, a name never looked up, a file
# never read)
for cmd in "stat --cached=never $M1" "stat $M1/never-looked-up" "cat $M1/data/secret"; do
	# shellcheck disable=SC2086
	run_capture enotconn timeout 10 $cmd
	# ENOTCONN once the kernel has aborted the connection; a request caught
	# in flight by the abort sees ECONNABORTED instead
	if [ "$RC" -ne 0 ] && grep -Eq 'Transport endpoint is not connected|Software caused connection abort' "$WORK/enotconn.err"; then
		info "ok: $(head -n 1 "$WORK/enotconn.err")"
	else
		soft_fail "$cmd on a mount whose daemon died: exit $RC: $(cat "$WORK/enotconn.err")"
	fi
done
is_mounted "$M1" || soft_fail "$M1 vanished from mountinfo by itself"
run_capture mountsk tcairn "$STORE" mounts --json
if [ "$RC" -ne 0 ]; then
	soft_fail "cairn mounts --json with a dead daemon exited $RC: $(head -n 1 "$WORK/mountsk.err")"
else
	python3 - "$WORK/mountsk.out" "$M1" "$P1" <<'EOF' || soft_fail "cairn mounts --json after kill -9 of daemon $P1"
import json, sys
by = {m["mountpoint"]: m for m in json.load(open(sys.argv[1]))}
m = by.get(sys.argv[2])
assert m, "%s is not listed at all" % sys.argv[2]
assert m["state"] == "dead" and m["pid"] == int(sys.argv[3]), "listed as %r" % m
print("   ok: mounts --json lists %s as dead (pid %s)" % (sys.argv[2], sys.argv[3]))
EOF
fi
umount_ok "$STORE" "$M1" && info "ok: cairn umount cleaned the dead mount"
run_capture mountsk2 tcairn "$STORE" mounts --json
! grep -qF "\"$M1\"" "$WORK/mountsk2.out" || soft_fail "cairn mounts --json lists $M1 after umount"
timeout 10 stat "$M1" >/dev/null || soft_fail "$M1 is not usable as a directory after cleanup"

say "busy umount names the holder; --lazy detaches"
mount_ok "$STORE" v1 "$M1"
P1=$MPID
(cd "$M1/data" && exec sleep 600) &
HOLDER=$!
track_holder "$HOLDER"
sleep 0.5
pid_alive "$HOLDER" || fail "could not start a process inside $M1"
expect_error "umount of a busy mount" tcairn "$STORE" umount "$M1"
if grep -qw "$HOLDER" "$WORK/experr.err" && grep -qw sleep "$WORK/experr.err"; then
	info "ok: names pid $HOLDER and sleep"
else
	soft_fail "the busy error does not name the holder (pid $HOLDER, sleep): $(cat "$WORK/experr.err")"
fi
is_mounted "$M1" || soft_fail "a failed busy umount unmounted anyway"
timeout 10 cat "$M1/data/hello" >/dev/null || soft_fail "$M1 does not work after a refused umount"
[ -z "$P1" ] || pid_alive "$P1" || soft_fail "the daemon died on a refused umount"
umount_ok "$STORE" "$M1" --lazy && info "ok: --lazy detached $M1"
run_capture cwd timeout 10 ls "/proc/$HOLDER/cwd/"
grep -qx hello "$WORK/cwd.out" || soft_fail "the holder lost its working directory after --lazy: $(cat "$WORK/cwd.err")"
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null || true
if [ -n "$P1" ]; then
	wait_gone "$P1" 15 && info "ok: the daemon exited once the holder went" ||
		soft_fail "daemon $P1 still runs 15 s after the lazily detached mount was released"
fi

say "SIGTERM to the daemon unmounts cleanly"
mount_ok "$STORE" v1 "$M1"
P1=$MPID
[ -n "$P1" ] || fail "no daemon pid"
kill -TERM "$P1"
wait_unmounted "$M1" 10 && info "ok: unmounted" || soft_fail "$M1 still mounted 10 s after SIGTERM"
wait_gone "$P1" 10 || soft_fail "daemon $P1 still runs 10 s after SIGTERM"

say "-f stays in the foreground; SIGINT unmounts and exits 0"
mount_fg "$STORE" v1 "$M1"
FG=$MPID
timeout 10 cat "$M1/data/hello" >/dev/null || soft_fail "-f mount does not read"
sleep 0.3
pid_alive "$FG" || soft_fail "cairn mount -f did not stay in the foreground"
kill -INT "$FG"
set +e
timeout 20 tail --pid="$FG" -f /dev/null
wait "$FG"
rc=$?
set -e
[ "$rc" -eq 0 ] || soft_fail "cairn mount -f exited $rc after SIGINT"
is_mounted "$M1" && soft_fail "$M1 still mounted after SIGINT to mount -f"
info "ok: exit $rc, unmounted"
mount_fg "$STORE" v1 "$M1"
FG=$MPID
umount_ok "$STORE" "$M1" && info "ok: cairn umount of a -f mount"
set +e
timeout 20 tail --pid="$FG" -f /dev/null
wait "$FG"
rc=$?
set -e
[ "$rc" -eq 0 ] || soft_fail "cairn mount -f exited $rc after cairn umount"

say "umount returns as soon as the daemon exits, however late it is reaped"
# the daemon is reparented to a subreaper that reaps it only at the end: a
# zombie for the whole umount, as under an init that reaps late
python3 - "$CAIRN" "$STORE" "$M1" >"$WORK/reap.out" 2>&1 <<'PY' || soft_fail "umount waited on a zombie: $(cat "$WORK/reap.out")"
import ctypes, json, os, select, subprocess, sys, threading, time
cairn, store, mnt = sys.argv[1:]
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
run = lambda *a: subprocess.run([cairn, "--store", store, *a], check=True, timeout=60,
                                capture_output=True, text=True).stdout
run("mount", "v1", mnt)
pid = [m["pid"] for m in json.loads(run("mounts", "--json")) if m["mountpoint"] == mnt][0]
fd = os.pidfd_open(pid)
exited = []
threading.Thread(target=lambda: (select.select([fd], [], []),
                                 exited.append(time.monotonic()))).start()
run("umount", mnt)
returned = time.monotonic()
time.sleep(0.2)
os.waitpid(pid, 0)
if not exited:
    sys.exit("umount returned before daemon %d exited" % pid)
late = returned - exited[0]
print("umount returned %.3f s after daemon %d exited" % (late, pid))
sys.exit(0 if late < 1.0 else 1)
PY
info "$(cat "$WORK/reap.out")"

say "bad umounts"
expect_error "umount of a directory that is not mounted" tcairn "$STORE" umount "$M1"
expect_error "umount of a missing directory" tcairn "$STORE" umount "$WORK/missing"

say "everything is gone"
umount_ok "$STORE" "$M2" || true
[ -z "$P2" ] || ! pid_alive "$P2" || soft_fail "daemon $P2 still runs"
[ -z "$(mounts_under "$WORK")" ] || soft_fail "mounts left: $(mounts_under "$WORK")"
run_capture mountse tcairn "$STORE" mounts --json
if [ "$RC" -ne 0 ] || [ "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$WORK/mountse.out" 2>&1)" != 0 ]; then
	soft_fail "cairn mounts --json after everything was unmounted: exit $RC: $(head -c 300 "$WORK/mountse.out")"
else
	info "ok: cairn mounts --json: []"
fi

finish
