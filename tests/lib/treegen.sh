#!/bin/bash
# treegen.sh DIR - make a tree that holds every kind of object and attribute
# a root filesystem has, for round-trip tests.
#
# Regular files (empty, tiny, random, repeated, dense zeros, sparse up to
# 5 GiB with data past 4 GiB, all-hole), directories (nested, empty),
# symlinks (relative, absolute, dangling), hard links (a group of 3 across
# directories, a linked symlink) next to two identical unlinked files,
# char and block devices, a fifo, a unix socket, odd modes (0000, 4755,
# 2750, 1777, ...), many uid/gid, nanosecond mtimes on everything
# (symlinks too), xattrs (user.*, trusted.*, security.capability, POSIX
# ACLs access and default), and names that are long (255 bytes), spaced,
# with newlines, with non-UTF-8 bytes.
#
# Everything is deterministic: two runs give the same bytes, modes, owners,
# xattrs and mtimes (treedump.py shows the same listing). Must run as root
# on a filesystem with user and trusted xattrs and ACLs (ext4, tmpfs, xfs).
#
# Options: --no-sparse leaves out the big sparse files (for quick runs);
#          --no-socket leaves out the unix socket (tar cannot carry one).
set -euo pipefail

sparse=1
socket=1
while [ $# -gt 0 ]; do
	case "$1" in
	--no-sparse) sparse=0 ;;
	--no-socket) socket=0 ;;
	-*) echo "treegen: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
	shift
done
[ $# -eq 1 ] || { echo "usage: treegen.sh [--no-sparse] [--no-socket] DIR" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "treegen: needs root (devices, chown, trusted.* xattrs)" >&2; exit 2; }

root=$1
mkdir -p "$root"
[ -z "$(ls -A "$root")" ] || { echo "treegen: $root is not empty" >&2; exit 2; }
cd "$root"
umask 022

# gen SEED SIZE: SIZE deterministic pseudo-random bytes on stdout.
gen() {
	python3 -c 'import random, sys
r = random.Random(int(sys.argv[1]))
n = int(sys.argv[2])
while n > 0:
    k = min(n, 1 << 20)
    sys.stdout.buffer.write(r.randbytes(k))
    n -= k' "$1" "$2"
}

# --- regular files --------------------------------------------------------
mkdir -p files
: >files/empty
printf 'hello\n' >files/tiny
printf 'x' >files/one-byte
printf 'no newline at end' >files/no-eol
gen 1 1048576 >files/random-1M
gen 2 4097 >files/random-odd
# larger than a chunk (max 256 KiB by default), 96 KiB block repeated 40
# times: content-defined chunking should store it in few unique chunks
gen 3 98304 >files/block
for _ in $(seq 40); do cat files/block; done >files/repeated-3840K
rm files/block
# text that compresses well
python3 -c 'import sys
for i in range(20000):
    sys.stdout.write("line %06d: the quick brown fox jumps over the lazy dog\n" % i)' \
	>files/text
# dense zeros: written, not sparse, between data (zero runs become holes
# in the store whatever the source allocation was)
{ gen 4 100000; head -c 1048576 /dev/zero; gen 5 100000; } >files/dense-zeros

if [ "$sparse" = 1 ]; then
	mkdir -p sparse
	# 5 GiB with data at a few offsets, one past 4 GiB, ending in a hole
	truncate -s 5G sparse/big
	gen 6 4096 | dd of=sparse/big bs=4096 seek=0 conv=notrunc status=none
	gen 7 70000 | dd of=sparse/big bs=1 seek=123456789 conv=notrunc status=none
	gen 8 65536 | dd of=sparse/big bs=65536 seek=65536 conv=notrunc status=none # 4 GiB
	gen 9 1000 | dd of=sparse/big bs=1 seek=4500000000 conv=notrunc status=none
	# all hole
	truncate -s 1G sparse/all-hole
	# data at the very end
	truncate -s 300M sparse/tail-data
	printf 'tail' >>sparse/tail-data
fi

# identical but not linked: must stay two inodes
gen 10 5000 >files/same-a
cp files/same-a files/same-b

# --- directories ----------------------------------------------------------
mkdir -p dirs/a/b/c/d/e/f/g/h dirs/empty dirs/empty-nested/x/y
printf 'deep\n' >dirs/a/b/c/d/e/f/g/h/deep.txt
for i in $(seq 0 149); do printf 'entry %d\n' "$i" >"dirs/a/many-$i"; done

# --- symlinks -------------------------------------------------------------
mkdir -p links
ln -s ../files/tiny links/relative
ln -s /etc/passwd links/absolute
ln -s does/not/exist links/dangling
ln -s . links/self-dir
ln -s "$(printf 'x%.0s' $(seq 300))" links/long-target-dangling
ln -s ../dirs/a links/to-dir

# --- hard links -----------------------------------------------------------
mkdir -p hl/one hl/two
printf 'linked content\n' >hl/one/h1
ln hl/one/h1 hl/two/h2
ln hl/one/h1 hl/h3
ln -s target-of-linked-symlink hl/sym1
ln -P hl/sym1 hl/two/sym2

# --- special files --------------------------------------------------------
mkdir -p dev
mknod dev/null c 1 3
mknod dev/tty0 c 4 0
mknod dev/loop7 b 7 7
mknod dev/big-minor b 259 65537
mkfifo dev/fifo
if [ "$socket" = 1 ]; then
	python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])' dev/socket
fi

# --- names ----------------------------------------------------------------
mkdir -p names
printf 'a' >"names/with space"
printf 'b' >"names/ leading and trailing space "
printf 'c' >"names/$(printf 'new\nline')"
printf 'd' >"names/$(printf 'bad\xff\xfebytes')"
printf 'e' >"names/ünïcødé"
printf 'f' >"names/back\\slash"
printf 'g' >"names/-dash"
printf 'h' >"names/.hidden"
printf 'i' >"names/tab$(printf '\t')char"
printf 'j' >"names/$(printf 'L%.0s' $(seq 255))"
mkdir "names/$(printf 'D%.0s' $(seq 255))"
printf 'k' >"names/$(printf 'D%.0s' $(seq 255))/$(printf 'F%.0s' $(seq 255))"
mkdir "names/dir with space"
ln -s "with space" "names/dir with space/link with space"

# --- ownership (before modes and capabilities: chown clears them) ---------
mkdir -p own
for spec in 0:0 1:1 1234:5678 65534:65534 1000000:1000000 4294967294:12; do
	f="own/u${spec%%:*}-g${spec##*:}"
	printf '%s\n' "$spec" >"$f"
	chown "$spec" "$f"
done
chown 1234:5678 dirs/a
chown -h 4321:8765 links/relative
chown 2000:3000 dev/tty0
chown 0:5 dev/fifo

# --- modes ----------------------------------------------------------------
mkdir -p modes
for m in 0000 0400 0444 0600 0640 0755 0777 4755 2755 2750 6755 1755 4000 7777; do
	printf '%s\n' "$m" >"modes/f$m"
	chmod "$m" "modes/f$m"
done
for m in 0000 0700 0755 1777 2775 3777; do
	mkdir "modes/d$m"
	printf 'x' >"modes/d$m/inside"
	chmod "$m" "modes/d$m"
done
chmod 4755 hl/one/h1
chmod 0620 dev/tty0
chmod 0600 dev/loop7

# --- xattrs ---------------------------------------------------------------
mkdir -p xattr
printf 'xattrs\n' >xattr/file
setfattr -n user.text -v "plain value" xattr/file
setfattr -n user.binary -v 0x00ff10207f80 xattr/file
setfattr -n user.empty xattr/file
setfattr -n user.big -v "0x$(gen 11 2000 | od -An -v -tx1 | tr -d ' \n')" xattr/file
setfattr -n trusted.overlay.opaque -v y xattr/file
setfattr -n trusted.cairn-test -v "trusted value" xattr/file
mkdir xattr/dir
setfattr -n user.dir -v "on a directory" xattr/dir
setfattr -n trusted.dir -v "trusted on a directory" xattr/dir
ln -s file xattr/symlink
setfattr -h -n trusted.on-symlink -v "link xattr" xattr/symlink
setfattr -n user.linked -v "shared by the hard-link group" hl/two/h2
# file capabilities (setcap last on this file: chown/chmod would drop it)
printf '#!/bin/sh\n' >xattr/ping
chmod 0755 xattr/ping
setcap cap_net_raw+ep xattr/ping
printf 'x' >xattr/caps-many
setcap 'cap_net_admin,cap_sys_admin+ip cap_chown+p' xattr/caps-many
# POSIX ACLs
printf 'acl\n' >xattr/acl-file
setfacl -m u:1234:rwx,g:5678:r-x,m::rwx,o::r-- xattr/acl-file
mkdir xattr/acl-dir
setfacl -m u:1234:rwx,g:5678:rx xattr/acl-dir
setfacl -d -m u::rwx,g::rx,o::-,u:1234:rwx,g:5678:rx,m::rwx xattr/acl-dir
mkdir xattr/default-only
setfacl -d -m u::rwx,g::rwx,o::rx xattr/default-only

# --- mtimes: every entry, deepest first so directories keep theirs --------
# Deterministic per path; nanoseconds vary, including 0 and 999999999, the
# epoch, one before 1970 and one past 2038.
python3 - <<'EOF'
import os
paths = []
for dirpath, dirnames, filenames in os.walk(b".", topdown=False):
    for n in filenames + dirnames:
        paths.append(os.path.join(dirpath, n))
    paths.append(dirpath)
special = {
    b"./files/empty": 0,
    b"./files/tiny": -86400 * 365 * 10 * 10**9 - 1,
    b"./files/one-byte": 2**32 * 10**9 + 999999999,
    b"./files/no-eol": 1614834367 * 10**9 + 123456789,  # 2021-03-04 05:06:07.123456789 UTC
    # identical in every attribute, still two inodes
    b"./files/same-a": 1600000000 * 10**9 + 5,
    b"./files/same-b": 1600000000 * 10**9 + 5,
}
for i, p in enumerate(sorted(paths, key=lambda p: (-p.count(b"/"), p))):
    h = 0
    for b in p:
        h = (h * 131 + b) % 1000000007
    ns = special.get(p, (1500000000 + h % 100000000) * 10**9 + (h * 7919) % 10**9)
    os.utime(p, ns=(ns, ns), follow_symlinks=False)
EOF
# the example from the brief, with touch, on a file and a symlink
touch -h -d '2021-03-04 05:06:07.123456789 UTC' links/absolute files/random-odd
