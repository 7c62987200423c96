#!/bin/bash
# upper_crash.sh - kill -9 of the daemon during heavy writes. A writer
# creates files and fsyncs them, replaces files the atomic way (write a
# temporary file, fsync, rename, fsync the directory), appends to an image
# file with fdatasync, and meanwhile copies up 32 MiB image files by
# writing one byte into each; it logs every completed fsync outside the
# mount. The daemon is killed with SIGKILL at a random moment, the dead
# mount is cleaned up and the upper mounted again: everything the log
# says was fsync'd is there with its bytes, and the tree is consistent:
# every entry reads completely, each copied-up image file is either the
# image's bytes or the image's bytes with its one byte written, never
# partial. Three rounds on one upper.
#
#   UPPER_CRASH_ROUNDS (3), UPPER_CRASH_SEED (1)
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
# shellcheck source=../lib/upper.sh
source "$TESTLIB/upper.sh"
sut_is overlayfs && skip "kernel overlayfs has no daemon to kill"
upper_setup

ROUNDS=${UPPER_CRASH_ROUNDS:-3}
SEED=${UPPER_CRASH_SEED:-1}
SRC=$WORK/src
MNT=$WORK/mnt
UP=$WORK/upper
mkdir -p "$SRC/big" "$SRC/d"
for i in 0 1 2 3 4 5 6 7; do
	head -c $((32 << 20)) /dev/urandom >"$SRC/big/b$i"
done
printf 'log start\n' >"$SRC/d/applog"
upper_base "$SRC" base

cat >"$WORK/writer.py" <<'EOF'
# writer.py MNT LOG ROUND SEED: writes until the mount dies
import os, random, sys
mnt, log, rnd, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
r = random.Random(seed * 1000 + rnd)
lf = open(log, "a", buffering=1)
d = os.path.join(mnt, "w%d" % rnd)
os.mkdir(d)
dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
os.fsync(dfd)
os.fsync(os.open(mnt, os.O_RDONLY | os.O_DIRECTORY))
lf.write("dir w%d\n" % rnd)
def data(i, n):
    return random.Random(i).randbytes(n)
i = 0
try:
    while True:
        i += 1
        k = r.randrange(6)
        if k <= 1:  # a new file, fsync'd
            name = "f%d" % i
            n = r.choice([1, 4096, 100000, 1 << 20])
            fd = os.open(os.path.join(d, name), os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)
            os.write(fd, data(i, n))
            os.fsync(fd)
            os.close(fd)
            os.fsync(dfd)
            lf.write("file w%d/%s %d %d\n" % (rnd, name, i, n))
        elif k == 2:  # atomic replace
            tmp = os.path.join(d, "tmp")
            n = r.choice([10, 50000])
            fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
            os.write(fd, data(i, n))
            os.fsync(fd)
            os.close(fd)
            os.rename(tmp, os.path.join(d, "current"))
            os.fsync(dfd)
            lf.write("current w%d/current %d %d\n" % (rnd, i, n))
        elif k == 3:  # append to an image file
            fd = os.open(os.path.join(mnt, "d/applog"), os.O_WRONLY | os.O_APPEND)
            line = b"round %d entry %d\n" % (rnd, i)
            os.write(fd, line)
            os.fdatasync(fd)
            os.close(fd)
            lf.write("append %s\n" % line.decode().strip())
        else:  # copy-up of a big image file, not synced
            b = r.randrange(8)
            fd = os.open(os.path.join(mnt, "big/b%d" % b), os.O_WRONLY)
            os.pwrite(fd, b"%c" % (65 + b), 1000 + b)
            os.close(fd)
except OSError as e:
    lf.write("writer stopped at %d: %s\n" % (i, e))
EOF

cat >"$WORK/check.py" <<'EOF'
# check.py MNT SRC LOG: the fsync'd data is there, the tree is consistent
import hashlib, os, random, sys
mnt, src, log = sys.argv[1:4]
bad = []
def data(i, n):
    return random.Random(i).randbytes(n)
files, current, appends, stop = 0, {}, [], 0
for line in open(log):
    w = line.split()
    if w[0] == "file":
        files += 1
        p = os.path.join(mnt, w[1])
        try:
            b = open(p, "rb").read()
        except OSError as e:
            bad.append("%s: fsync'd, now %s" % (w[1], e.strerror))
            continue
        if b != data(int(w[2]), int(w[3])):
            bad.append("%s: fsync'd with %s bytes, now %d other bytes" % (w[1], w[3], len(b)))
    elif w[0] == "current":
        current.setdefault(w[1], []).append((int(w[2]), int(w[3])))
    elif w[0] == "append":
        appends.append(" ".join(w[1:]))
    elif w[0] == "writer" and len(w) > 3 and w[3].rstrip(":").isdigit():
        stop = max(stop, int(w[3].rstrip(":")))
# an atomically replaced file holds the last fsync'd version, or a later one
for rel, versions in current.items():
    b = open(os.path.join(mnt, rel), "rb").read()
    last = versions[-1]
    if b != data(*last):
        # a later replace may have completed without its log line
        # (any iteration up to where a writer stopped: its log line names it)
        if not any(b == data(i, n) for i in range(last[0], max(stop, last[0]) + 1)
                   for n in (10, 50000) if len(b) == n):
            bad.append("%s: neither the last fsync'd version (%d) nor a later one" % (rel, last[0]))
text = open(os.path.join(mnt, "d/applog")).read().splitlines()
if text[:1] != ["log start"]:
    bad.append("d/applog lost its image content")
missing = [a for a in appends if a not in text]
if missing:
    bad.append("d/applog lost %d fdatasync'd lines, e.g. %r" % (len(missing), missing[:2]))
# consistency: every entry reads; copy-ups are all or nothing
n = 0
for d, dirs, fs in os.walk(mnt):
    for f in fs:
        p = os.path.join(d, f)
        if not os.path.islink(p):
            with open(p, "rb") as fh:
                while fh.read(1 << 20):
                    pass
        n += 1
for b in range(8):
    orig = open(os.path.join(src, "big/b%d" % b), "rb").read()
    got = open(os.path.join(mnt, "big/b%d" % b), "rb").read()
    mod = bytearray(orig)
    mod[1000 + b] = 65 + b
    if got not in (orig, bytes(mod)):
        diff = next((i for i in range(min(len(got), len(orig))) if got[i] != mod[i]), None)
        bad.append("big/b%d: %d bytes, neither the image's nor the written version (first difference at %s)"
                   % (b, len(got), diff))
for x in bad[:20]:
    print("   " + x)
if bad:
    sys.exit(1)
print("   ok: %d fsync'd files, %d replaced files, %d fdatasync'd appends there; %d entries read; copy-ups whole"
      % (files, len(current), len(appends), n))
EOF

# kill_daemon WRITER: SIGKILL the daemon; the writer stops (its calls fail
# on the dead mount); then the dead mount is cleaned up
kill_daemon() {
	local pid=$MPID wpid=$1
	[ -n "$pid" ] || fail "no daemon pid for $MNT"
	kill -9 "$pid"
	wait_gone "$pid" 10 || fail "the daemon $pid survived SIGKILL"
	wait_gone "$wpid" 30 || { soft_fail "the writer still runs 30 s after the kill"; kill -9 "$wpid"; }
	wait "$wpid" 2>/dev/null || true
	if sut_is cairn; then
		# 'cairn umount' cleans up a mount whose daemon died
		run_capture deadumount tcairn "$STORE" umount "$MNT"
		[ "$RC" -eq 0 ] || { show_file "$WORK/deadumount.err"; soft_fail "cairn umount of a dead mount exited $RC"; }
	fi
	is_mounted "$MNT" && timeout 20 fusermount3 -uz "$MNT"
	! is_mounted "$MNT" || fail "the dead mount $MNT is still mounted"
}

: >"$WORK/log"
r=$((SEED * 7919))
for round in $(seq 1 "$ROUNDS"); do
	say "round $round: heavy writes, then kill -9 of the daemon"
	upper_mount base "$MNT" "$UP"
	python3 "$WORK/writer.py" "$MNT" "$WORK/log" "$round" "$SEED" &
	wpid=$!
	track_holder "$wpid"
	r=$(((r * 1103515245 + 12345) % 2147483648))
	ms=$((800 + r % 2500))
	sleep "$(printf '0.%03d' $((ms % 1000)))"
	sleep $((ms / 1000))
	pid_alive "$wpid" || soft_fail "the writer stopped before the kill"
	kill_daemon "$wpid"
	info "killed after $ms ms; $(grep -c '' "$WORK/log") log lines"
	tail -n 1 "$WORK/log" | sed 's/^/   writer: /'

	say "round $round: mounted again, the fsync'd data is there"
	upper_mount base "$MNT" "$UP"
	timeout -k 5 300 python3 "$WORK/check.py" "$MNT" "$SRC" "$WORK/log" ||
		soft_fail "round $round: data or consistency lost by the kill"
	upper_umount "$MNT"
done

finish
