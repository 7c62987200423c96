#!/usr/bin/python3
"""tarbomb.py N [--distinct] - writes a ustar archive of N empty regular
files to stdout (d%04d/f%07d: a thousand to a directory), fast: one header
template. With --distinct each file gets its own mtime, so each is a node
of its own in a store (a tree that takes gc a while to mark). A reader that
stops early (a refused import) ends it quietly."""
import signal
import sys

signal.signal(signal.SIGPIPE, signal.SIG_DFL)
n = int(sys.argv[1])
distinct = "--distinct" in sys.argv[2:]
out = sys.stdout.buffer
hdr = bytearray(512)


def field(off, width, val):
    hdr[off:off + width] = val.ljust(width, b"\0")


field(100, 8, b"0000644")
field(108, 8, b"0000000")
field(116, 8, b"0000000")
field(124, 12, b"00000000000")
field(136, 12, b"14000000000")
hdr[156] = ord("0")
field(257, 6, b"ustar")
field(263, 2, b"00")
hdr[148:156] = b" " * 8
base = sum(hdr) - sum(hdr[136:148])
buf = []
for i in range(n):
    name = b"d%04d/f%07d" % (i // 1000, i)
    hdr[0:len(name)] = name
    mtime = b"%011o\0" % (0o14000000000 + (i if distinct else 0))
    hdr[136:148] = mtime
    hdr[148:156] = b"%06o\0 " % (base + sum(name) + sum(mtime))
    buf.append(bytes(hdr))
    if len(buf) == 4096:
        out.write(b"".join(buf))
        buf = []
out.write(b"".join(buf))
out.write(b"\0" * 1024)
