#!/usr/bin/env python3
"""preader.py - concurrent random-range reads of a mounted tree, each
compared with the same range of the source tree.

  preader.py [--threads N] [--seconds S] [--seed N] [--max-len BYTES]
             [--boundaries FILE] MOUNT SOURCE REL...

N threads (default 8) share the files REL (paths relative to MOUNT and
SOURCE) and, until S seconds (default 20) have passed, each picks a file
and a range and preads it from both trees (one pread on the mount, looping
only if it comes back short, so short reads are counted), then compares
length and bytes. Ranges are 1 byte .. --max-len (default 1 MiB, log-
uniform, so small and large reads both occur) and start:
  - anywhere in the file,
  - just before a boundary so the range crosses it (boundaries: multiples
    of 4 KiB and 64 KiB, 4 GiB, and whatever --boundaries lists: a JSON
    object {REL: [offsets]}, e.g. chunk ends and hole edges),
  - across EOF, at EOF, or far past it (must read 0 bytes).
Threads keep their own descriptors of the mount and reopen them every few
reads (open/release churn under load); the source is read through shared
descriptors. --drop N: one read in N first drops the file's pages from the
kernel's page cache (POSIX_FADV_DONTNEED), so reads keep reaching the
daemon instead of being answered by the kernel (default 32; 0: never).

Exit 0 when every read matched; 1 otherwise, with the first mismatches
(file, offset, length, first differing byte). Prints one summary line.
"""

import argparse
import errno
import json
import os
import random
import sys
import threading
import time

MAX_REPORT = 10


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-len", type=int, default=1 << 20)
    ap.add_argument("--boundaries")
    ap.add_argument("--drop", type=int, default=32)
    ap.add_argument("mount")
    ap.add_argument("source")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()

    bounds = {}
    if a.boundaries:
        bounds = json.load(open(a.boundaries))
    files = []
    for rel in a.files:
        spath = os.path.join(a.source, rel)
        size = os.stat(spath).st_size
        b = set(int(x) for x in bounds.get(rel, []))
        b.update({4 << 30, size})
        for step in (4096, 65536):
            if size // step < 2000:
                b.update(range(step, size, step))
        b = sorted(x for x in b if 0 < x <= size)
        files.append({
            "rel": rel,
            "size": size,
            "sfd": os.open(spath, os.O_RDONLY),
            "mpath": os.path.join(a.mount, rel),
            "bounds": b,
        })

    lock = threading.Lock()
    problems = []
    totals = {"ops": 0, "bytes": 0, "short": 0, "eof": 0, "cross": 0, "errors": 0,
              "mismatch": 0, "opens": 0, "drops": 0}
    deadline = time.monotonic() + a.seconds

    def report(msg):
        with lock:
            if len(problems) < MAX_REPORT:
                problems.append(msg)

    def worker(tid):
        r = random.Random(a.seed * 1000 + tid)
        fds = {}
        n = {k: 0 for k in totals}
        try:
            while time.monotonic() < deadline:
                f = r.choice(files)
                size = f["size"]
                ln = max(1, min(a.max_len, int(2 ** r.uniform(0, 20.0001))))
                kind = r.random()
                if kind < 0.40 or size == 0:
                    off = r.randrange(0, max(1, size))
                elif kind < 0.75 and f["bounds"]:
                    bnd = r.choice(f["bounds"])
                    off = max(0, bnd - r.randint(1, ln))
                    n["cross"] += 1
                elif kind < 0.92:
                    off = max(0, size - r.randint(0, ln))
                    n["eof"] += 1
                else:
                    off = size + r.choice((0, 1, 4095, 1 << 20, 1 << 32, r.randrange(1 << 40)))
                    n["eof"] += 1
                key = f["rel"]
                if key not in fds or r.random() < 1 / 16:
                    if key in fds:
                        os.close(fds.pop(key))
                    fds[key] = os.open(f["mpath"], os.O_RDONLY)
                    n["opens"] += 1
                mfd = fds[key]
                if a.drop and r.randrange(a.drop) == 0:
                    os.posix_fadvise(mfd, 0, 0, os.POSIX_FADV_DONTNEED)
                    n["drops"] += 1
                want = max(0, min(ln, size - off))
                try:
                    got = os.pread(mfd, ln, off)
                    while 0 < len(got) < want:  # short: go on
                        n["short"] += 1
                        more = os.pread(mfd, ln - len(got), off + len(got))
                        if not more:
                            break
                        got += more
                except OSError as e:
                    n["errors"] += 1
                    report("%s: pread(%d bytes at %d) failed: %s" % (key, ln, off, e))
                    continue
                exp = os.pread(f["sfd"], ln, off)
                n["ops"] += 1
                n["bytes"] += len(got)
                if got != exp:
                    n["mismatch"] += 1
                    if len(got) != len(exp):
                        report("%s: %d bytes at %d: got %d bytes, want %d" %
                               (key, ln, off, len(got), len(exp)))
                    else:
                        i = next(i for i in range(len(got)) if got[i] != exp[i])
                        report("%s: %d bytes at %d: differ first at byte %d (offset %d): "
                               "%02x != %02x" % (key, ln, off, i, off + i, got[i], exp[i]))
        except Exception as e:  # a bug here must not look like a pass
            n["errors"] += 1
            report("thread %d: %r" % (tid, e))
        finally:
            for fd in fds.values():
                os.close(fd)
            with lock:
                for k in n:
                    totals[k] += n[k]

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(a.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.monotonic() - t0
    print("   preader: %d threads, %.1f s: %d reads (%d crossing a boundary, %d at/after EOF), "
          "%.1f MiB, %.0f MiB/s, %d opens, %d page cache drops, %d short, %d errors, %d mismatches" %
          (a.threads, dt, totals["ops"], totals["cross"], totals["eof"], totals["bytes"] / 2**20,
           totals["bytes"] / 2**20 / dt, totals["opens"], totals["drops"], totals["short"], totals["errors"],
           totals["mismatch"]))
    for p in problems:
        print("   preader: " + p)
    if totals["ops"] == 0:
        print("   preader: no read completed")
        return 1
    return 1 if problems or totals["errors"] or totals["mismatch"] else 0


if __name__ == "__main__":
    sys.exit(main())
