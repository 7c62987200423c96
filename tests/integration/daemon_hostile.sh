#!/bin/bash
# daemon_hostile.sh - what a container's unprivileged user (uid 1000) can
# hold open on its writable mount must not take what the store's one daemon
# needs to serve every other mount. One daemon (under prlimit --nofile=1024,
# without CAP_SYS_RESOURCE) serves two writable mounts, m1 (the hostile
# container) and m2 (its neighbour, on a platform):
#   - uid 1000 makes 1500 files on m1 and holds them all open: every
#     create succeeds (a file made by CREATE pinned its fds until its
#     RELEASE, so the container took every fd of the daemon: m2's lookups
#     and creates failed with EMFILE), and meanwhile m2 creates, looks up
#     and reads, and 'cairn stats' answers;
#   - uid 1000 holds open 1000 files and 500 directories it made and
#     removed (unlink, rmdir, a rename over a directory): each keeps a
#     name in UPPERDIR/work while the kernel holds it
#     (an fd kept open for each took every fd of the daemon), every one
#     still reads and writes right with st_nlink 0, m2 serves meanwhile,
#     and work/ is empty once they are closed;
#   - the daemon runs out of fds for a moment (its soft limit lowered to
#     what it holds, by root, as a container pinning fds would do): its
#     control socket answers again once fds are back ('cairn stats', a live
#     upgrade reaching m2; the accept loop ended for good on EMFILE);
#   - uid 1000 nests 3000 directories on m2 and keeps its cwd at the bottom;
#     a live upgrade re-binds every directory the kernel holds, each from
#     its parent's place: the daemon lives (it resolved them recursively on
#     a control thread's 256 KiB stack, and died of it: every mount gone);
#   - uid 1000 opens a directory of 3000 long names 400 times: each open
#     directory holds a snapshot of its listing in the daemon (860 KiB
#     here), so past the mount's budget (CAIRN_DIR_BUDGET, 4 MiB here)
#     opendir fails with ENFILE, the daemon's memory stays bounded (it grew
#     by 340 MiB, and by any amount with more opens), m2 lists its
#     directories meanwhile; a daemon restart hands the listings over (a
#     part of 1000 long names was past what the socket carries, and the
#     restart failed), they list to the end, and once closed they open
#     again.
# fsck is clean at the end.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
# shellcheck source=../lib/upper.sh
source "$TESTLIB/upper.sh"
cairn_only "the shared daemon's limits"
upper_setup
require_cmd prlimit setpriv

LIMIT=1024
NFILES=1500
RSS_MAX_KB=$((64 * 1024))
# AddressSanitizer (tests/run.sh --sanitize): redzones cost 2-3x, and its
# quarantine of freed blocks (256 MiB) would hold every refused snapshot:
# the daemon runs without the quarantine and the bound grows
DAEMON_ENV=()
if grep -q __asan_init "$CAIRN" 2>/dev/null; then
	RSS_MAX_KB=$((RSS_MAX_KB * 3))
	DAEMON_ENV=("ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0")
fi
SRC=$WORK/src
SRC2=$WORK/src2
M1=$WORK/m1
M2=$WORK/m2
mkdir -p "$SRC/etc" "$M1" "$M2"
printf 'image\n' >"$SRC/etc/image"
head -c 1048576 /dev/urandom >"$SRC/etc/blob"
mkdir -m 0777 "$SRC/d"
cp -a "$SRC" "$SRC2"
printf 'v2\n' >"$SRC2/etc/v2"
upper_base "$SRC" base
import_ok "$STORE" "$SRC2" --tag v2
cairn_in "$STORE" upgrade plat base >/dev/null || fail "cairn upgrade plat base failed"

say "one daemon under prlimit --nofile=$LIMIT serves m1 and m2"
_track_mount "$M1" "$STORE"
env "${DAEMON_ENV[@]}" CAIRN_DIR_BUDGET=4194304 setpriv --inh-caps=-sys_resource --bounding-set=-sys_resource \
	prlimit --nofile="$LIMIT" -- "$CAIRN" --store "$STORE" mount base "$M1" --upper "$WORK/u1" ||
	fail "the mount under prlimit failed"
MPID=$(daemon_pid "$STORE" "$M1")
[ -n "$MPID" ] || fail "no daemon for $M1"
_track_daemon "$MPID"
upper_mount plat "$M2" "$WORK/u2"
[ "$(daemon_pid "$STORE" "$M2")" = "$MPID" ] || fail "m2 is not served by m1's daemon $MPID"
grep -q "^Max open files *$LIMIT *$LIMIT" "/proc/$MPID/limits" ||
	fail "the daemon's fd limit is not $LIMIT: $(grep 'Max open files' "/proc/$MPID/limits")"
info "daemon $MPID"

# m2_serves WHAT: m2 creates, looks up, lists and reads; its stats answer
m2_serves() {
	local what=$1 i
	for i in 1 2 3 4 5; do
		(printf 'neighbour %s\n' "$i" >"$M2/d/$what.$i") 2>"$WORK/m2.err" ||
			{ soft_fail "$what: m2 cannot create a file: $(cat "$WORK/m2.err")"; return; }
	done
	[ "$(cat "$M2/d/$what.5" 2>&1)" = "neighbour 5" ] || soft_fail "$what: m2's new file reads wrong"
	cmp -s "$SRC/etc/blob" "$M2/etc/blob" || soft_fail "$what: m2's image file reads wrong"
	ls "$M2/etc" >/dev/null 2>"$WORK/m2.err" || soft_fail "$what: m2 cannot list etc: $(cat "$WORK/m2.err")"
	tcairn "$STORE" stats "$M2" >/dev/null 2>"$WORK/m2.err" ||
		soft_fail "$what: cairn stats of m2 fails: $(cat "$WORK/m2.err")"
}

# hold ARGS...: a uid-1000 python3 holding what tests/lib-style code below
# opens until $WORK/sig/go is removed; its report in $WORK/hold.out
mkdir -m 0777 "$WORK/sig"
hold() {
	rm -f "$WORK/sig/held" "$WORK/hold.out"
	: >"$WORK/sig/go"
	setpriv --reuid=1000 --regid=1000 --clear-groups python3 - "$@" >"$WORK/hold.out" 2>&1 <<'EOF' &
import os, resource, sys, time
what, d, n, sig = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
fds, errs = [], {}
for i in range(n):
    try:
        if what == "files":
            fds.append(os.open("%s/f%d" % (d, i), os.O_CREAT | os.O_RDWR, 0o644))
        elif what == "unlinked":
            # a file made, written and removed, and a directory made and
            # removed, both held open
            p = "%s/u%d" % (d, i)
            fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
            os.write(fd, b"unlinked %d" % i)
            fds.append(fd)
            os.unlink(p)
            if i % 4 == 0:
                os.mkdir(p)
                fds.append(os.open(p, os.O_RDONLY | os.O_DIRECTORY))
                os.rmdir(p)
            if i % 4 == 1:
                # a directory replaced by a rename over it
                os.mkdir(p + "a")
                os.mkdir(p + "b")
                fds.append(os.open(p + "b", os.O_RDONLY | os.O_DIRECTORY))
                os.rename(p + "a", p + "b")
                os.rmdir(p + "b")
        else:
            fds.append(os.open(d, os.O_RDONLY | os.O_DIRECTORY))
    except OSError as e:
        errs[e.strerror] = errs.get(e.strerror, 0) + 1
print("held %d errors %s" % (len(fds), errs), flush=True)
open(sig + "/held", "w").close()
t = time.time() + 120
while os.path.exists(sig + "/go") and time.time() < t:
    time.sleep(0.1)
if what == "unlinked":
    # every one still works: the files read and write their bytes, nameless
    bad = 0
    for fd in fds:
        try:
            st = os.fstat(fd)
            if st.st_nlink != 0:
                bad += 1
            elif os.path.stat.S_ISDIR(st.st_mode):
                bad += os.listdir(fd) != []
            else:
                want = os.pread(fd, 100, 0) + b"+"
                os.write(fd, b"+")
                bad += not want.startswith(b"unlinked ") or os.pread(fd, 100, 0) != want
        except OSError as e:
            bad += 1
    print("afterwards %d of them wrong" % bad, flush=True)
elif what == "dirs":
    print("listed %s" % sorted(set(len(os.listdir(fd)) for fd in fds)), flush=True)
EOF
	HOLDER=$!
	track_holder "$HOLDER"
	local n=600
	while [ ! -e "$WORK/sig/held" ]; do
		pid_alive "$HOLDER" || { show_file "$WORK/hold.out" >&2; fail "the holder ended early"; }
		n=$((n - 1))
		[ "$n" -gt 0 ] || fail "the holder did not open its $2 in 60 s"
		sleep 0.1
	done
	info "uid 1000: $(cat "$WORK/hold.out")"
}
release() {
	rm -f "$WORK/sig/go"
	wait "$HOLDER" 2>/dev/null || true
}
nfds() { ls "/proc/$MPID/fd" | wc -l; }
# held_ok N WHAT: the holder holds N without an error, the daemon's fds stay
# within 3/4 of its limit, and m2 serves meanwhile
held_ok() {
	local n=$1 what=$2 used
	grep -q "^held $n errors {}$" "$WORK/hold.out" ||
		soft_fail "$what: uid 1000 could not hold $n: $(cat "$WORK/hold.out")"
	used=$(nfds)
	info "the daemon holds $used fds"
	[ "$used" -le $((LIMIT * 3 / 4)) ] || soft_fail "$what: the daemon holds $used of its $LIMIT fds"
	m2_serves "$what"
}

say "uid 1000 holds $NFILES files it made open on m1; m2 serves meanwhile"
mkdir -m 0777 "$M1/d/files"
hold files "$M1/d/files" "$NFILES" "$WORK/sig"
held_ok "$NFILES" "files held"
release
n=$(ls "$M1/d/files" | wc -l) || n="(ls failed)"
[ "$n" = "$NFILES" ] || soft_fail "m1 lists $n files, want $NFILES"

say "uid 1000 holds files and directories it removed open on m1; m2 serves meanwhile"
NUNL=1000
hold unlinked "$M1/d/files" "$NUNL" "$WORK/sig"
held_ok $((NUNL + NUNL / 2)) "removed files held"
release
grep -q "^afterwards 0 of them wrong$" "$WORK/hold.out" ||
	soft_fail "what uid 1000 removed did not work to the end: $(tail -n 1 "$WORK/hold.out")"
n=$(ls -A "$M1/d/files" | grep -c '^u' || true)
[ "$n" = 0 ] || soft_fail "$n removed names show on m1"
# the kernel forgets them once closed, and their orphan names go
for _ in $(seq 50); do
	[ -z "$(ls -A "$WORK/u1/work")" ] && break
	sleep 0.1
done
n=$(ls -A "$WORK/u1/work" | wc -l)
[ "$n" = 0 ] || soft_fail "$n entries left in UPPERDIR/work after the close, e.g. $(ls -A "$WORK/u1/work" | head -n 3 | tr '\n' ' ')"

say "the daemon out of fds for a moment: its control socket answers afterwards"
# a soft limit of 0: no new fd at all, what is open stays
prlimit --pid "$MPID" --nofile="0:$LIMIT" || fail "cannot lower the daemon's fd limit"
! tcairn "$STORE" stats "$M2" >/dev/null 2>&1 || soft_fail "the daemon answered without a free fd"
prlimit --pid "$MPID" --nofile="$LIMIT:$LIMIT" || fail "cannot give the daemon its fd limit back"
ok=0
for _ in 1 2 3 4 5 6 7 8 9 10; do
	if tcairn "$STORE" stats "$M2" >/dev/null 2>"$WORK/stats.err"; then
		ok=1
		break
	fi
	sleep 1
done
[ "$ok" = 1 ] || soft_fail "the daemon's control socket no longer answers: $(cat "$WORK/stats.err")"
run_capture upgrade tcairn "$STORE" upgrade plat v2
[ "$RC" = 0 ] || soft_fail "cairn upgrade plat v2 exited $RC: $(cat "$WORK/upgrade.err")"
grep -q "mount $M2 .*switched" "$WORK/upgrade.out" ||
	soft_fail "the upgrade did not reach m2: $(cat "$WORK/upgrade.out" "$WORK/upgrade.err")"
[ "$(cat "$M2/etc/v2" 2>&1)" = v2 ] || soft_fail "m2 does not show v2 after the upgrade"
m2_serves "after the fd shortage"

say "uid 1000 nests 3000 directories on m2, its cwd at the bottom; a live upgrade"
rm -f "$WORK/sig/held"
: >"$WORK/sig/go"
setpriv --reuid=1000 --regid=1000 --clear-groups python3 - "$M2/d" "$WORK/sig" >"$WORK/nest.out" 2>&1 <<'EOF' &
import os, sys, time
os.chdir(sys.argv[1])
for i in range(3000):
    os.mkdir("n")
    os.chdir("n")
open(sys.argv[2] + "/held", "w").close()
t = time.time() + 120
while os.path.exists(sys.argv[2] + "/go") and time.time() < t:
    time.sleep(0.1)
os.mkdir("after")
print("cwd", os.listdir("."))
EOF
HOLDER=$!
track_holder "$HOLDER"
for _ in $(seq 600); do
	[ ! -e "$WORK/sig/held" ] && pid_alive "$HOLDER" || break
	sleep 0.1
done
[ -e "$WORK/sig/held" ] || fail "uid 1000 could not nest its directories: $(cat "$WORK/nest.out")"
# the switch re-binds every directory the kernel holds, each from its parent's place
run_capture upgrade tcairn "$STORE" upgrade plat base
[ "$RC" = 0 ] || soft_fail "cairn upgrade plat base exited $RC: $(cat "$WORK/upgrade.err")"
pid_alive "$MPID" || fail "the daemon died in the live switch"
grep -q "mount $M2 .*switched" "$WORK/upgrade.out" ||
	soft_fail "the upgrade did not reach m2: $(cat "$WORK/upgrade.out" "$WORK/upgrade.err")"
[ ! -e "$M2/etc/v2" ] || soft_fail "m2 still shows v2 after the upgrade to base"
release
grep -q "^cwd " "$WORK/nest.out" || soft_fail "the nested cwd did not survive: $(cat "$WORK/nest.out")"
m2_serves "after the deep switch"

say "uid 1000 opens a directory of 3000 long names 400 times on m1"
mkdir -m 0777 "$M1/d/long"
setpriv --reuid=1000 --regid=1000 --clear-groups python3 - "$M1/d/long" <<'EOF' || soft_fail "uid 1000 could not make the directory"
import os, sys
for i in range(3000):
    os.close(os.open("%s/%05d%s" % (sys.argv[1], i, "x" * 245), os.O_CREAT | os.O_WRONLY, 0o644))
EOF
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$MPID/status"; }
before=$(rss)
hold dirs "$M1/d/long" 400 "$WORK/sig"
grew=$(($(rss) - before))
info "the daemon's memory grew by $((grew / 1024)) MiB"
[ "$grew" -le "$RSS_MAX_KB" ] || soft_fail "400 open directories took $((grew / 1024)) MiB of the daemon's memory"
grep -q "Too many open files in system" "$WORK/hold.out" ||
	soft_fail "no opendir was refused (ENFILE) past the mount's budget: $(cat "$WORK/hold.out")"
held=$(sed -n 's/^held \([0-9]*\) .*/\1/p' "$WORK/hold.out")
[ "${held:-0}" -ge 2 ] || soft_fail "uid 1000 could hold only ${held:-0} open directories"
m2_serves "directories held"
# their listings travel with a daemon restart (in messages the socket can carry: a part of
# 1000 names of 250 bytes did not fit, and the restart failed)
run_capture restart tcairn "$STORE" daemon restart
[ "$RC" = 0 ] || soft_fail "cairn daemon restart with the directories open exited $RC: $(cat "$WORK/restart.err")"
NEWPID=$(daemon_pid "$STORE" "$M1")
[ -n "$NEWPID" ] && _track_daemon "$NEWPID"
[ "$RC" != 0 ] || [ "$NEWPID" != "$MPID" ] || soft_fail "the daemon restart left daemon $MPID serving"
release
grep -q "^listed \[3000\]$" "$WORK/hold.out" ||
	soft_fail "the open directories did not list their 3000 names to the end: $(tail -n 1 "$WORK/hold.out")"
n=$(setpriv --reuid=1000 --regid=1000 --clear-groups ls "$M1/d/long" | wc -l)
[ "$n" = 3000 ] || soft_fail "after the close, m1's directory lists $n names, want 3000"
m2_serves "after the restart"

say "fsck is clean; both mounts end"
tcairn "$STORE" fsck >"$WORK/fsck.out" 2>&1 || { show_file "$WORK/fsck.out" >&2; soft_fail "fsck is not clean"; }
umount_ok "$STORE" "$M2" || true
umount_ok "$STORE" "$M1" || true
finish
