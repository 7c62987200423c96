#!/bin/bash
# upper_security.sh - the daemon is root and the container writes the
# upper, so no upper operation may follow a symlink the container planted.
# While worker threads run every kind of operation (create, write, copy-up
# of image files, mkdir, rmdir, unlink, rename, link, symlink, mkfifo,
# chmod, chown, utimens, setxattr, truncate, readdir, stat) relative to
# directory fds held on the mount, a swapper loop replaces those
# directories by symlinks to an outside canary directory: first behind the
# daemon's back, directly in UPPERDIR/tree, then through the mount itself
# (rename the directory away, plant the symlink under its name). The
# symlinks are relative ("../../canary"): followed from inside
# UPPERDIR/tree they reach the canary, followed by the kernel from the
# mount they do not. Afterwards the canary has had no inotify event at
# all (nothing opened, read, listed, written, created or changed there)
# and its treedump, mtimes included, is unchanged.
#
#   UPPER_RACE_SECONDS  seconds per phase (6)
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
# shellcheck source=../lib/upper.sh
source "$TESTLIB/upper.sh"
upper_setup

SECS=${UPPER_RACE_SECONDS:-6}
SRC=$WORK/src
MNT=$WORK/m/n/t # ../../canary from the mount's root is $WORK/m/canary: nothing
UP=$WORK/upper
CANARY=$WORK/canary # ../../canary from UPPERDIR/tree/*

# the same names in the image and in the canary, so a followed symlink
# would find something to change
mk() {
	local d=$1 s
	for s in a b; do
		mkdir -p "$d/$s/sub/deeper"
		for f in 0 1 2 3 img; do printf '%s %s\n' "$d" "$f" >"$d/$s/f$f"; done
		printf 'image file\n' >"$d/$s/img"
		printf 'deep image file\n' >"$d/$s/sub/img"
		printf 'deeper\n' >"$d/$s/sub/deeper/img"
		mkdir -p "$d/$s/m0" "$d/$s/m1"
	done
}
mk "$SRC"
mk "$CANARY"
printf 'secret\n' >"$CANARY/secret"
chmod -R go-w "$CANARY"
upper_base "$SRC" base
upper_mount base "$MNT" "$UP"
dump "$CANARY" "$WORK/canary.before"

cat >"$WORK/race.py" <<'EOF'
# race.py MNT UPPERTREE CANARY SECONDS PHASE
import ctypes, errno, os, random, struct, sys, threading, time
mnt, tree, canary, secs, phase = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5]
libc = ctypes.CDLL(None, use_errno=True)

# inotify on every directory of the canary: any event is a failure
IN_ALL = 0xFFF  # access, modify, attrib, close, open, moved, create, delete, delete_self, move_self
ino = libc.inotify_init1(os.O_NONBLOCK)
assert ino >= 0
wd = {}
for d in [d for d, _, _ in os.walk(canary)]:  # listed before any watch
    w = libc.inotify_add_watch(ino, d.encode(), IN_ALL)
    assert w >= 0
    wd[w] = d
watched = time.time()

stop = threading.Event()
counts = {"ok": 0, "err": 0, "swaps": 0, "swap_err": 0}
lock = threading.Lock()

def held(rel):
    return os.open(os.path.join(mnt, rel), os.O_RDONLY | os.O_DIRECTORY)

swap_lock = threading.Lock()  # one swap at a time: nested ones would tangle

def worker(seed, fds):
    r = random.Random(seed)
    while not stop.is_set():
        dfd = r.choice(fds)
        n = "f%d" % r.randrange(4)
        m = "m%d" % r.randrange(2)
        op = r.randrange(16)
        try:
            if op == 0:
                fd = os.open(n, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o644, dir_fd=dfd)
                os.write(fd, b"race\n")
                os.close(fd)
            elif op == 1:
                fd = os.open("img", os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW, dir_fd=dfd)  # copy-up
                os.write(fd, b"+")
                os.setxattr(fd, "user.race", b"1")
                os.ftruncate(fd, 20)
                os.close(fd)
            elif op == 2:
                os.mkdir(m, dir_fd=dfd)
            elif op == 3:
                os.rmdir(m, dir_fd=dfd)
            elif op == 4:
                os.unlink(n, dir_fd=dfd)
            elif op == 5:
                os.rename(n, "f%d" % r.randrange(4), src_dir_fd=dfd, dst_dir_fd=dfd)
            elif op == 6:
                os.link(n, "l" + n, src_dir_fd=dfd, dst_dir_fd=dfd, follow_symlinks=False)
            elif op == 7:
                os.symlink("target", "s" + n, dir_fd=dfd)
            elif op == 8:
                os.mkfifo("p" + n, dir_fd=dfd)
            elif op == 9:
                os.chmod(n, 0o600 | r.randrange(0o100), dir_fd=dfd, follow_symlinks=True)
            elif op == 10:
                os.chown(n, r.randrange(3), r.randrange(3), dir_fd=dfd, follow_symlinks=False)
            elif op == 11:
                os.utime(n, ns=(5, 5), dir_fd=dfd, follow_symlinks=False)
            elif op == 12:
                os.listdir(dfd)
            elif op == 13:
                os.stat(r.choice(["img", n, m, "sub"]), dir_fd=dfd, follow_symlinks=False)
            elif op == 14:
                for x in ("l", "s", "p"):
                    try:
                        os.unlink(x + n, dir_fd=dfd)
                    except FileNotFoundError:
                        pass
            else:
                fd = os.open("img", os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dfd)
                os.read(fd, 100)
                os.close(fd)
            with lock:
                counts["ok"] += 1
        except OSError:
            with lock:
                counts["err"] += 1
    for fd in fds:
        os.close(fd)

def swapper(seed, base, names, up):
    """rename a directory away, plant a symlink to the canary, put it back"""
    r = random.Random(seed)
    target = "../" * up + "canary"
    while not stop.is_set():
        name = r.choice(names)
        d = os.path.join(base, name)
        away = d + ".away"
        try:
            with swap_lock:
                os.rename(d, away)
                try:
                    os.symlink(target, d)
                    time.sleep(r.choice([0, 0.0005, 0.002]))
                    os.unlink(d)
                finally:
                    os.rename(away, d)
            with lock:
                counts["swaps"] += 1
            time.sleep(r.choice([0, 0.0002]))
        except OSError:
            with lock:
                counts["swap_err"] += 1
            time.sleep(0.001)

rels = ["a", "a/sub", "a/sub/deeper", "b", "b/sub"]
# behind the daemon's back: UPPERDIR/tree/<dir> is made to exist first
# (copied up by a write below it), then swapped there; through the mount:
# the swapper renames and symlinks on the mount itself
for x in rels:
    try:
        fd = os.open(os.path.join(mnt, x, "f0"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as e:
        print("   cannot set up %s: %s" % (x, e))
        sys.exit(2)  # not a finding about the canary: the race did not run
    os.write(fd, b"copy up the directory\n")
    os.close(fd)
base = tree if phase == "upper" else mnt
threads = [threading.Thread(target=worker, args=(i, [held(x) for x in rels])) for i in range(3)]
# a symlink in UPPERDIR/tree/PARENT climbs len(PARENT) + 2 levels to WORK
threads += [threading.Thread(target=swapper, args=(10, base, ["a", "b"], 2)),
            threading.Thread(target=swapper, args=(11, os.path.join(base, "a"), ["sub"], 3)),
            threading.Thread(target=swapper, args=(12, os.path.join(base, "a", "sub"), ["deeper"], 4))]
for t in threads:
    t.start()
time.sleep(secs)
stop.set()
for t in threads:
    t.join()
time.sleep(0.2)
# events
buf = b""
while True:
    try:
        chunk = os.read(ino, 65536)
    except BlockingIOError:
        break
    if not chunk:
        break
    buf += chunk
events = []
off = 0
while off < len(buf):
    w, mask, cookie, ln = struct.unpack_from("iIII", buf, off)
    name = buf[off + 16:off + 16 + ln].rstrip(b"\0").decode(errors="replace")
    events.append("%s/%s mask=%#x" % (wd.get(w, "?"), name, mask))
    off += 16 + ln
os.close(ino)
print("   phase %s: %d operations (%d failed), %d swaps (%d failed) in %.0f s"
      % (phase, counts["ok"] + counts["err"], counts["err"], counts["swaps"], counts["swap_err"], secs))
if counts["swaps"] < 10 or counts["ok"] < 100:
    print("   too little happened to judge anything")
    sys.exit(2)
if events:
    print("   the canary saw %d inotify events, e.g.:" % len(events))
    for e in events[:15]:
        print("     " + e)
    sys.exit(1)
print("   ok: no inotify event in the canary")
EOF

for phase in upper mount; do
	say "phase $phase: directories swapped for symlinks to the canary (in $([ "$phase" = upper ] && echo UPPERDIR/tree || echo the mount))"
	rc=0
	timeout -k 10 $((SECS + 120)) python3 "$WORK/race.py" "$MNT" "$UP/tree" "$CANARY" "$SECS" "$phase" || rc=$?
	case $rc in
	0) ;;
	1) soft_fail "phase $phase: something outside the upper was touched" ;;
	*) soft_fail "phase $phase: the race did not run" ;;
	esac
	is_mounted "$MNT" || fail "the mount went away during phase $phase"
	# put the upper back in order for the next phase: no symlink left behind
	for d in "$UP/tree/a" "$UP/tree/b" "$UP/tree/a/sub" "$UP/tree/a/sub/deeper"; do
		[ -L "$d" ] && soft_fail "a planted symlink is left at $d"
	done
	# the upper was changed behind the daemon's back (as with overlayfs, not a supported state
	# for a running mount): the kernel may still hold entries it saw mid-swap, so remount
	if [ "$phase" = upper ]; then
		upper_umount "$MNT"
		upper_mount base "$MNT" "$UP"
	fi
done

say "the canary is unchanged"
upper_umount "$MNT"
dump "$CANARY" "$WORK/canary.after"
same_dump "$WORK/canary.before" "$WORK/canary.after" "the canary before and after"
[ ! -e "$WORK/m/canary" ] || soft_fail "something was made at $WORK/m/canary"

finish
