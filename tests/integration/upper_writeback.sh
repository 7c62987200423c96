#!/bin/bash
# upper_writeback.sh - what the writable mount's kernel caches could break
# (issue 15: no OPEN, so no copy-up at open; the writeback cache where the
# kernel has it on; negative entries), done by the container's unprivileged
# user (uid 1000) through the mount:
#   - O_APPEND from two descriptors at once on an image file (not copied up
#     before the first write reaches the daemon), every append in order;
#   - MAP_SHARED writes and pwrite()s on one file, each seen at once by the
#     other (no msync) and by a third descriptor;
#   - a one-byte append to a 3 MiB image file (a writeback cache writes its
#     whole last page, the image's bytes included): nothing of the image's
#     data is copied into the upper;
#   - a live switch while files are open: one written (not synced, its
#     pages dirty in the kernel) keeps its name with the written bytes, as
#     had the write reached the daemon first; one opened for writing and
#     written only after the switch is the new image's at its name, and the
#     late write stays with the open file, as for a replaced file;
#   - sizes seen by stat while pages are dirty, and every byte again after a
#     remount (new inodes: the bytes come from the upper).
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
mount_setup
require_cmd setpriv
chmod 0711 "$WORK"

STORE=$WORK/store
M=$WORK/m
UP=$WORK/upper
SYNC=$WORK/sync
mkdir -p "$M" "$SYNC"
chmod 0777 "$SYNC"

# A and B: the same files but rep and rep2, which B changes
for v in A B; do
	mkdir -p "$WORK/$v/data"
	head -c 200000 /dev/urandom >"$WORK/$v/data/log"
	head -c 65536 /dev/urandom >"$WORK/$v/data/mm"
	head -c 3145728 /dev/urandom >"$WORK/$v/big"
	printf 'rep of %s, long enough to see a partial overwrite\n' "$v" >"$WORK/$v/data/rep"
	printf 'rep2 of %s\n' "$v" >"$WORK/$v/data/rep2"
done
for f in data/log data/mm big; do cp "$WORK/A/$f" "$WORK/B/$f"; done
for v in A B; do
	chown -R 1000:1000 "$WORK/$v/data" "$WORK/$v/big"
	import_ok "$STORE" "$WORK/$v" --tag "$v"
done
cairn_in "$STORE" upgrade pw A >/dev/null || fail "upgrade pw A"
mount_ok "$STORE" pw "$M" --upper "$UP"

say "uid 1000: appends, mmap, a page-sized write-back into an image file, a live switch"
cat >"$WORK/user.py" <<'PY'
import mmap, os, random, sys, time

m, work, sync = sys.argv[1], sys.argv[2], sys.argv[3]
rnd = random.Random(15)
bad = []

def check(what, got, want):
    if got != want:
        bad.append(what)
        print("FAIL " + what, flush=True)

def orig(v, p):
    with open(os.path.join(work, v, p), "rb") as f:
        return f.read()

# two O_APPEND descriptors, interleaved: every append lands at the end
want = bytearray(orig("A", "data/log"))
a = os.open(m + "/data/log", os.O_WRONLY | os.O_APPEND)
b = os.open(m + "/data/log", os.O_WRONLY | os.O_APPEND)
for i in range(600):
    chunk = bytes([rnd.randrange(256)]) * rnd.randrange(1, 700)
    os.write(a if i % 2 else b, chunk)
    want += chunk
    if i % 97 == 0:
        check("stat size after append %d" % i, os.stat(m + "/data/log").st_size, len(want))
os.close(a)
os.close(b)
check("data/log after the appends", open(m + "/data/log", "rb").read(), bytes(want))
open(os.path.join(sync, "want.log"), "wb").write(want)

# mmap and pwrite on one file, each seen at once by the other and by a reader
mm_want = bytearray(orig("A", "data/mm"))
fd = os.open(m + "/data/mm", os.O_RDWR)
rd = os.open(m + "/data/mm", os.O_RDONLY)
mp = mmap.mmap(fd, len(mm_want))
for i in range(400):
    off = rnd.randrange(len(mm_want) - 64)
    data = os.urandom(rnd.randrange(1, 64))
    if i % 2:
        mp[off:off + len(data)] = data
    else:
        os.pwrite(fd, data, off)
    mm_want[off:off + len(data)] = data
    if i % 50 == 0:
        check("mmap view at %d" % i, mp[:], bytes(mm_want))
        check("reader at %d" % i, os.pread(rd, len(mm_want), 0), bytes(mm_want))
mp.close()
os.close(fd)
os.close(rd)
open(os.path.join(sync, "want.mm"), "wb").write(mm_want)

# one byte appended to a 3 MiB image file (its last page comes back whole)
fd = os.open(m + "/big", os.O_WRONLY | os.O_APPEND)
os.write(fd, b"!")
os.close(fd)
check("big after a one-byte append", open(m + "/big", "rb").read(), orig("A", "big") + b"!")

# files open across the switch: rep written (dirty), rep2 only opened
rep = os.open(m + "/data/rep", os.O_RDWR)
os.pwrite(rep, b"MINE", 0)
rep2 = os.open(m + "/data/rep2", os.O_RDWR)
open(os.path.join(sync, "ready"), "w").close()
for _ in range(600):
    if os.path.exists(os.path.join(sync, "switched")):
        break
    time.sleep(0.1)
else:
    print("FAIL no switch came", flush=True)
    sys.exit(1)
rep_want = b"MINE" + orig("A", "data/rep")[4:]
check("data/rep by its name after the switch (written before it)",
      open(m + "/data/rep", "rb").read(), rep_want)
check("data/rep through its descriptor", os.pread(rep, 4096, 0), rep_want)
os.close(rep)
check("data/rep2 by its name after the switch", open(m + "/data/rep2", "rb").read(), orig("B", "data/rep2"))
os.pwrite(rep2, b"LATE", 0)
os.fsync(rep2)
check("data/rep2's old descriptor reads its own write",
      os.pread(rep2, 4096, 0), b"LATE" + orig("A", "data/rep2")[4:])
check("data/rep2 by its name after a write to the replaced file",
      open(m + "/data/rep2", "rb").read(), orig("B", "data/rep2"))
os.close(rep2)
check("data/rep2 by its name after the close", open(m + "/data/rep2", "rb").read(), orig("B", "data/rep2"))
open(os.path.join(sync, "want.rep"), "wb").write(rep_want)
sys.exit(1 if bad else 0)
PY
chmod 0644 "$WORK/user.py"
timeout -k 5 300 setpriv --reuid 1000 --regid 1000 --clear-groups -- \
	python3 "$WORK/user.py" "$M" "$WORK" "$SYNC" >"$WORK/user.out" 2>&1 &
USER_PID=$!
track_pid "$USER_PID"
for _ in $(seq 600); do
	[ -e "$SYNC/ready" ] || ! kill -0 "$USER_PID" 2>/dev/null || { sleep 0.1; continue; }
	break
done
[ -e "$SYNC/ready" ] || { show_file "$WORK/user.out"; fail "uid 1000's writer did not get to the switch"; }
tcairn "$STORE" upgrade pw B >"$WORK/up.out" || fail "upgrade pw B failed"
grep -q "mount $M (pid .*): switched" "$WORK/up.out" || fail "the mount did not switch to B"
touch "$SYNC/switched"
wait "$USER_PID" || { show_file "$WORK/user.out"; fail "uid 1000's checks through the mount failed"; }

say "the one-byte append copied none of the image's 3 MiB"
used=$(du -k "$UP/tree/big" | cut -f1)
[ "$used" -lt 1024 ] || fail "the upper's big uses $used KiB after a one-byte append"
info "the upper's big: $used KiB on disk"

say "mounted again (new inodes: no page of the old mount): every byte"
umount_ok "$STORE" "$M"
mount_ok "$STORE" pw "$M" --upper "$UP"
cmp -s "$M/data/log" "$SYNC/want.log" || fail "data/log differs after the remount"
cmp -s "$M/data/mm" "$SYNC/want.mm" || fail "data/mm differs after the remount"
cmp -s "$M/data/rep" "$SYNC/want.rep" || fail "data/rep differs after the remount"
cmp -s "$M/data/rep2" "$WORK/B/data/rep2" || fail "data/rep2 is not B's after the remount"
{ cat "$WORK/A/big"; printf '!'; } | cmp -s "$M/big" - || fail "big differs after the remount"
umount_ok "$STORE" "$M"
finish
