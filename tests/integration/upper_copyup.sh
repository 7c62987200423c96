#!/bin/bash
# upper_copyup.sh - copy-up keeps every attribute and xattr. Every entry of
# a tree with every kind of object and attribute (tests/lib/treegen.sh:
# odd modes with setuid/setgid/sticky, many owners, nanosecond mtimes,
# user and trusted xattrs, file capabilities, access and default ACLs,
# hard links, devices, odd names) is copied up twice, by operations that
# change nothing visible: first a metadata-only one (chmod to the same
# mode; lchown to the same owner for symlinks, devices, fifos, sockets and
# directories), then for regular files a data copy-up (the first byte
# written back over itself, the mtime set back). The same operations run
# on a plain copy of the tree; the mount must equal it (treedump, mtimes
# included), the copied-up entries in UPPERDIR/tree must carry the same
# attributes, and a remount shows the same.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
# shellcheck source=../lib/upper.sh
source "$TESTLIB/upper.sh"
upper_setup

SRC=$WORK/src
REF=$WORK/ref
MNT=$WORK/mnt
UP=$WORK/upper

say "the image and a plain copy (treegen.sh)"
bash "$TREEGEN" --no-sparse "$SRC"
bash "$TREEGEN" --no-sparse "$REF"
if ! sut_is cairn; then
	# overlayfs keeps its own markers in trusted.overlay.*: one on an image
	# file would be hidden (and could mean something); cairn has no such
	# restriction on image xattrs
	for t in "$SRC" "$REF"; do setfattr -x trusted.overlay.opaque "$t/xattr/file"; done
fi
dump "$SRC" "$WORK/src.dump"
dump "$REF" "$WORK/ref0.dump"
same_dump "$WORK/src.dump" "$WORK/ref0.dump" "treegen.sh twice" || fail "treegen.sh is not deterministic"
upper_base "$SRC" base
upper_mount base "$MNT" "$UP"

# copyup ROOT PHASE: the operations, on one tree
copyup() {
	timeout -k 5 300 python3 - "$1" "$2" <<'EOF'
import os, stat, sys
root, phase = os.fsencode(sys.argv[1]), sys.argv[2]
n = 0
for d, dirs, files in os.walk(root):
    for name in sorted(dirs + files) + ([b"."] if d == root else []):
        p = os.path.join(d, name)
        st = os.lstat(p)
        mode = st.st_mode
        if phase == "meta":
            if stat.S_ISREG(mode):
                os.chmod(p, stat.S_IMODE(mode))
            else:
                os.chown(p, st.st_uid, st.st_gid, follow_symlinks=False)
            n += 1
        elif phase == "data" and stat.S_ISREG(mode) and st.st_size > 0:
            fd = os.open(p, os.O_RDWR)
            b = os.pread(fd, 1, 0)
            os.pwrite(fd, b, 0)
            os.close(fd)
            st2 = os.lstat(p)
            os.utime(p, ns=(st2.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
            n += 1
print("   %s copy-up: %d entries" % (phase, n))
EOF
}

for phase in meta data; do
	say "$phase copy-up of every entry, on the mount and on the plain copy"
	copyup "$REF" "$phase" >/dev/null
	copyup "$MNT" "$phase" || soft_fail "$phase copy-up operations failed on the mount"
	dump "$REF" "$WORK/ref.dump"
	dump "$MNT" "$WORK/mnt.dump"
	same_dump "$WORK/ref.dump" "$WORK/mnt.dump" "after the $phase copy-up: mount vs plain copy"
	timeout -k 5 300 python3 "$FSMODEL" upper --upper "$UP/tree" --ref "$REF" --priv "$U_PRIV" \
		--esc "$U_ESC" --need xattr/ping --need xattr/acl-dir --need hl/one/h1 --need dev/tty0 \
		--need links/relative --need "modes/f4755" ||
		soft_fail "after the $phase copy-up, entries in the upper lost attributes"
	if [ "$phase" = meta ]; then
		# (a write drops file capabilities, on any filesystem)
		getcap "$MNT/xattr/ping" | grep -q cap_net_raw ||
			soft_fail "getcap on the mount: xattr/ping lost its capability"
		getfacl -n "$MNT/xattr/acl-dir" 2>/dev/null | grep -q '^default:user:1234:rwx' ||
			soft_fail "getfacl on the mount: xattr/acl-dir lost its default ACL"
	fi
done

say "mounted again: the same"
upper_umount "$MNT"
drop_caches
upper_mount base "$MNT" "$UP"
dump "$MNT" "$WORK/mnt2.dump"
same_dump "$WORK/ref.dump" "$WORK/mnt2.dump" "after a remount: mount vs plain copy"
upper_umount "$MNT"

finish
