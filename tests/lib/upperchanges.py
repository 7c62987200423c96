#!/usr/bin/env python3
"""upperchanges.py [--prefix P] UPPERTREE LOWER - what 'cairn changes'
prints, computed from an overlayfs-style upper directory and its lower
tree, for running the changes tests against the overlayfs peers.

Like 'docker diff': one line per path, sorted: 'A /p' for an entry the
lower does not have, 'C /p' for one it has (content, metadata or, for a
directory, something below changed), 'D /p' for a whiteout. Below a
deleted directory nothing more is listed, below an added one everything
is 'A'; an opaque directory
(P + 'opaque' = 'y') replaces the lower's: it is 'C', and the lower
entries it hides are 'D'. fuse-overlayfs's '.wh.' files are read as
whiteouts too.
"""
import argparse
import os
import stat


def whiteout(st, name):
    return (stat.S_ISCHR(st.st_mode) and st.st_rdev == 0) or name.startswith(b".wh.")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prefix", default="trusted.overlay.")
    ap.add_argument("upper")
    ap.add_argument("lower")
    a = ap.parse_args()
    upper, lower = os.fsencode(a.upper), os.fsencode(a.lower)
    out = []

    def walk(rel):
        ud = os.path.join(upper, rel) if rel else upper
        for name in sorted(os.listdir(ud)):
            if name in (b".wh..wh..opq", b".wh..opq"):
                continue
            r = os.path.join(rel, name) if rel else name
            st = os.lstat(os.path.join(ud, name))
            if whiteout(st, name):
                real = name[4:] if name.startswith(b".wh.") else name
                rr = os.path.join(rel, real) if rel else real
                if os.path.lexists(os.path.join(lower, rr)):
                    out.append((rr, "D"))
                continue
            lp = os.path.join(lower, r)
            if not os.path.lexists(lp):
                out.append((r, "A"))
                if stat.S_ISDIR(st.st_mode):  # everything below is added too
                    for d, dirs, files in os.walk(os.path.join(ud, name)):
                        for n in dirs + files:
                            out.append((os.path.relpath(os.path.join(d, n), upper), "A"))
                continue
            out.append((r, "C"))
            if stat.S_ISDIR(st.st_mode) and os.path.isdir(lp) and not os.path.islink(lp):
                try:
                    opaque = os.getxattr(os.path.join(ud, name), a.prefix + "opaque") == b"y"
                except OSError:
                    opaque = False
                if opaque:
                    here = set(os.listdir(os.path.join(ud, name)))
                    for n in sorted(os.listdir(lp)):
                        if n not in here:
                            out.append((os.path.join(r, n), "D"))
                walk(r)
    walk(b"")
    for r, kind in sorted(out):
        print("%s /%s" % (kind, os.fsdecode(r)))


if __name__ == "__main__":
    main()
