#!/usr/bin/env python3
"""cmpstream.py FILE - does stdin hold exactly FILE's bytes?

Like `cmp - FILE`, but holes of FILE (SEEK_DATA/SEEK_HOLE) are compared
against zeros without reading them, so a 5 GiB sparse file is checked at
pipe speed. Exit 0 when equal, 1 with the first differing offset.
"""
import os
import sys

BUF = 1 << 20
ZERO = bytes(BUF)


def regions(fd, size):
    """(start, end, is_data) covering [0, size)."""
    pos = 0
    while pos < size:
        try:
            d = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:
            d = size
        if d > pos:
            yield pos, d, False
        if d >= size:
            return
        e = min(os.lseek(fd, d, os.SEEK_HOLE), size)
        yield d, e, True
        pos = e


def main():
    fd = os.open(sys.argv[1], os.O_RDONLY)
    size = os.fstat(fd).st_size
    inp = sys.stdin.buffer.raw
    buf = bytearray(BUF)
    view = memoryview(buf)
    for start, end, data in regions(fd, size):
        pos = start
        while pos < end:
            want = min(BUF, end - pos)
            got = 0
            while got < want:
                n = inp.readinto(view[got:want])
                if not n:
                    print("cmpstream: EOF at %d, want %d bytes" % (pos + got, size))
                    return 1
                got += n
            ref = os.pread(fd, want, pos) if data else ZERO[:want]
            if (buf if want == BUF else buf[:want]) != ref:
                i = next(k for k in range(want) if buf[k] != ref[k])
                print("cmpstream: differ at offset %d" % (pos + i))
                return 1
            pos += want
    if inp.read(1):
        print("cmpstream: more than %d bytes" % size)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
