#!/usr/bin/python3
"""tarbomb.py N - writes a ustar archive of N empty regular files to stdout
(d%04d/f%07d: a thousand to a directory), fast: one header template. A
reader that stops early (a refused import) ends it quietly."""
import signal
import sys

signal.signal(signal.SIGPIPE, signal.SIG_DFL)
n = int(sys.argv[1])
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
base = sum(hdr)
buf = []
for i in range(n):
    name = b"d%04d/f%07d" % (i // 1000, i)
    hdr[0:len(name)] = name
    s = base + sum(name)
    hdr[148:156] = b"%06o\0 " % s
    buf.append(bytes(hdr))
    if len(buf) == 4096:
        out.write(b"".join(buf))
        buf = []
out.write(b"".join(buf))
out.write(b"\0" * 1024)
