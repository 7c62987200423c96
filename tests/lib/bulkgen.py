#!/usr/bin/env python3
"""bulkgen.py DIR [--mb N] [--seed S] - a big deterministic tree.

Many directories of files whose sizes spread from a few bytes to several
MiB, about a third random (incompressible), the rest text-like and
compressible, with some files repeated across directories (dedup): roughly
what a root filesystem's /usr looks like to an importer, about N MiB in all
(default 300). Same arguments, same bytes and metadata.
"""

import argparse
import os
import random

WORDS = (
    b"the quick brown fox jumps over lazy dog lorem ipsum dolor sit amet "
    b"consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore "
    b"libc.so.6 /usr/lib/x86_64-linux-gnu GLIBC_2.34 ELF .text .data .bss "
).split()


def text_bytes(r, pool, n):
    out = b"".join(r.choices(pool, k=n // 40 + 1))
    while len(out) < n:
        out += r.choice(pool)
    return out[:n]


def file_bytes(r, pool, n):
    kind = r.random()
    if kind < 0.35:
        return r.randbytes(n)
    if kind < 0.45:  # binary-ish: random runs mixed with zero runs
        out = bytearray()
        while len(out) < n:
            out += r.randbytes(r.randint(64, 4096))
            out += bytes(r.randint(0, 8192))
        return bytes(out[:n])
    return text_bytes(r, pool, n)


def size_for(r):
    x = r.random()
    if x < 0.70:
        return r.randint(0, 4096)
    if x < 0.95:
        return r.randint(4096, 128 * 1024)
    if x < 0.995:
        return r.randint(128 * 1024, 2 * 1024 * 1024)
    return r.randint(2 * 1024 * 1024, 12 * 1024 * 1024)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--mb", type=int, default=300)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()

    r = random.Random(a.seed)
    pool = [
        b" ".join(r.choice(WORDS) for _ in range(r.randint(3, 14))) + b"\n"
        for _ in range(5000)
    ]
    target = a.mb * 1024 * 1024
    total = 0
    os.makedirs(a.dir, exist_ok=True)
    made = []  # (path, bytes) kept for a few repeats
    i = 0
    t = 1600000000
    while total < target:
        d = os.path.join(a.dir, "d%03d" % (i // 60), "s%02d" % (i % 60 // 12))
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, "f%05d" % i)
        if made and r.random() < 0.08:
            data = r.choice(made)
        else:
            data = file_bytes(r, pool, size_for(r))
            if len(data) < 256 * 1024 and len(made) < 200:
                made.append(data)
        with open(p, "wb") as f:
            f.write(data)
        os.chmod(p, r.choice((0o644, 0o644, 0o755, 0o600)))
        os.utime(p, ns=(t * 10**9 + i, t * 10**9 + i))
        total += len(data)
        i += 1
    # directory times last, deepest first
    for dirpath, _, _ in sorted(os.walk(a.dir), key=lambda w: -w[0].count(os.sep)):
        os.utime(dirpath, ns=(t * 10**9, t * 10**9))
    print("%d files, %d bytes" % (i, total))


if __name__ == "__main__":
    main()
