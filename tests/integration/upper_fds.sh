#!/bin/bash
# upper_fds.sh - a container cannot exhaust a writable mount's fds (issue
# 11 item 5: the daemon kept an fd or two per upper object the kernel held;
# a uid-1000 loop creating files hit EMFILE, and then root's ls failed with
# EMFILE and cat with EIO).
#
# The daemon starts under `prlimit --nofile=4096` without CAP_SYS_RESOURCE
# (so it cannot raise the limit): its budget is half of it. After a read of
# an image file (from then on the kernel sends no OPEN, nor a RELEASE for
# the files it creates), four uid-1000 processes create 100,000 files (writing some bytes to every 100th) and the
# daemon's open fds, sampled all along, stay within the budget; then root
# lists and stats them all and reads those with bytes through the mount,
# the daemon's stats say fds were closed and reopened by handle, and after
# a remount every file is there.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
# shellcheck source=../lib/upper.sh
source "$TESTLIB/upper.sh"
cairn_only "the daemon's fd budget"
upper_setup
require_cmd prlimit setpriv

SRC=$WORK/src
MNT=$WORK/mnt
UP=$WORK/upper
N=${UPPER_FDS_FILES:-100000}
LIMIT=4096
mkdir -p "$SRC/etc" "$MNT"
printf 'image\n' >"$SRC/etc/image"
upper_base "$SRC" base

say "the daemon under prlimit --nofile=$LIMIT, without CAP_SYS_RESOURCE"
_track_mount "$MNT" "$STORE"
setpriv --inh-caps=-sys_resource --bounding-set=-sys_resource \
	prlimit --nofile="$LIMIT" -- "$CAIRN" --store "$STORE" mount base "$MNT" --upper "$UP" ||
	fail "the mount under prlimit failed"
MPID=$(daemon_pid "$STORE" "$MNT")
[ -n "$MPID" ] || fail "no daemon for $MNT"
_track_daemon "$MPID"
grep -q "^Max open files *$LIMIT *$LIMIT" "/proc/$MPID/limits" ||
	fail "the daemon's fd limit is not $LIMIT: $(grep 'Max open files' "/proc/$MPID/limits")"
stats() { tcairn "$STORE" stats "$MNT" --json; }
jget() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
BUDGET=$(stats | jget fd_budget 2>/dev/null) || BUDGET=""
if [ -z "$BUDGET" ]; then
	soft_fail "the daemon reports no fd budget"
	BUDGET=$((LIMIT / 2))
fi
info "daemon $MPID, fd budget $BUDGET"
[ "$BUDGET" -le $((LIMIT / 2)) ] || fail "the fd budget $BUDGET is over half the limit"
mkdir -m 0777 "$MNT/d"
# an image file read first, as in any container: its OPEN is answered ENOSYS, and from then on
# the kernel sends no OPEN, nor (6.18) a RELEASE for the files it creates: a daemon that pinned
# a created file's fds until its RELEASE held them all (EMFILE after ~2000 files here)
cat "$MNT/etc/image" >/dev/null || fail "cannot read etc/image"

say "uid 1000 creates $N files"
: >"$WORK/fdcount"
(
	while pid_alive "$MPID"; do
		ls "/proc/$MPID/fd" 2>/dev/null | wc -l >>"$WORK/fdcount"
		sleep 0.5
	done
) &
SAMPLER=$!
track_holder "$SAMPLER"
t=$(date +%s)
# four processes at once (the daemon serves them in parallel; one would take twice as long)
setpriv --reuid=1000 --regid=1000 --clear-groups python3 - "$MNT/d" "$N" <<'EOF' || soft_fail "uid 1000 could not create its files"
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
kids = []
for w in range(4):
    pid = os.fork()
    if pid == 0:
        try:
            for i in range(w, n, 4):
                fd = os.open("%s/f%d" % (d, i), os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)
                if i % 100 == 0:
                    os.write(fd, b"file %d\n" % i)
                os.close(fd)
        except OSError as e:
            print("uid 1000:", e, file=sys.stderr)
            os._exit(1)
        os._exit(0)
    kids.append(pid)
sys.exit(max(os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in kids))
EOF
info "$(($(date +%s) - t)) s"
kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
most=$(sort -n "$WORK/fdcount" | tail -n 1)
info "daemon fds: at most $most in $(wc -l <"$WORK/fdcount") samples (budget $BUDGET)"
# the budget is for upper objects; the daemon's own (store, packs, FUSE, sockets) come on top
[ "$most" -le $((BUDGET + 64)) ] || soft_fail "the daemon held $most fds, over its budget $BUDGET (+64 of its own)"

say "root reads everything back through the mount"
t=$(date +%s)
[ "$(ls -f "$MNT/d" | wc -l)" = $((N + 2)) ] || soft_fail "ls of d/ lists $(ls -f "$MNT/d" | wc -l) entries, want $((N + 2))"
# every file stat'ed (owner, size), every one with bytes read
bad=$(python3 - "$MNT/d" "$N" <<'EOF'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
bad = 0
for i in range(n):
    p = "%s/f%d" % (d, i)
    st = os.stat(p)
    want = b"file %d\n" % i if i % 100 == 0 else b""
    if st.st_uid != 1000 or st.st_size != len(want) or (want and open(p, "rb").read() != want):
        bad += 1
print(bad)
EOF
) || bad="(failed)"
[ "$bad" = 0 ] || soft_fail "$bad files read back wrong as root"
[ "$(cat "$MNT/etc/image")" = image ] || soft_fail "an image file no longer reads"
info "$(($(date +%s) - t)) s"
S=$(stats)
jget fds <<<"$S" >/dev/null 2>&1 || S='{"fds": -1, "fd_reopens": 0, "fd_closes": 0}'
info "stats: fds $(jget fds <<<"$S"), reopens $(jget fd_reopens <<<"$S"), closes $(jget fd_closes <<<"$S")"
[ "$(jget fds <<<"$S")" -le "$BUDGET" ] || soft_fail "the mount holds $(jget fds <<<"$S") upper fds, over its budget $BUDGET"
[ "$(jget fd_closes <<<"$S")" -gt 0 ] || soft_fail "the daemon never closed an fd: the budget was not at work"
[ "$(ls "/proc/$MPID/fd" | wc -l)" -le $((BUDGET + 64)) ] || soft_fail "the daemon holds $(ls "/proc/$MPID/fd" | wc -l) fds after the reads"

say "after a remount, everything is there"
t=$(date +%s)
umount_ok "$STORE" "$MNT"
upper_mount base "$MNT" "$UP"
[ "$(ls -f "$MNT/d" | wc -l)" = $((N + 2)) ] || soft_fail "after a remount d/ lists $(ls -f "$MNT/d" | wc -l) entries"
[ "$(cat "$MNT/d/f$((N - 100))")" = "file $((N - 100))" ] || soft_fail "after a remount f$((N - 100)) reads wrong"
upper_umount "$MNT"
info "$(($(date +%s) - t)) s"
finish
