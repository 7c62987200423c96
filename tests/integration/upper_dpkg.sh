#!/bin/bash
# upper_dpkg.sh - a real workload: chroot into a writable mount of a
# Debian minbase image and install a package with dpkg (a .deb built here
# with dpkg-deb --build, with a maintainer script, so no network is
# needed), 'cairn commit' the upper, mount the new image read-only: dpkg -s
# shows the package installed, its program runs, its postinst's work is
# there, and dpkg's database is consistent (dpkg --audit); the old image
# does not have the package.
#
# The Debian tree is the one the tests and examples share
# (scripts/debian-tree.sh, made once: network the first time).
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
# shellcheck source=../lib/upper.sh
source "$TESTLIB/upper.sh"

# shellcheck source=../lib/debian.sh
source "$TESTLIB/debian.sh"

upper_setup
debian_tree
require_cmd dpkg-deb

MNT=$WORK/mnt
UP=$WORK/upper

say "a tiny package, built here"
PKG=$WORK/pkg
mkdir -p "$PKG/DEBIAN" "$PKG/usr/bin" "$PKG/usr/share/doc/cairn-hello"
cat >"$PKG/DEBIAN/control" <<'EOF'
Package: cairn-hello
Version: 1.0-1
Architecture: all
Maintainer: cairn tests <tests@cairn.invalid>
Section: misc
Priority: optional
Description: says hello from a committed layer
 A package built by cairn's upper_dpkg test.
EOF
cat >"$PKG/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
mkdir -p /var/lib/cairn-hello
echo "configured $1" >/var/lib/cairn-hello/state
EOF
chmod 755 "$PKG/DEBIAN/postinst"
printf '#!/bin/sh\necho "hello from cairn-hello"\n' >"$PKG/usr/bin/cairn-hello"
chmod 755 "$PKG/usr/bin/cairn-hello"
printf 'Public domain.\n' >"$PKG/usr/share/doc/cairn-hello/copyright"
run_capture debbuild dpkg-deb --root-owner-group --build "$PKG" "$WORK/cairn-hello.deb"
[ "$RC" -eq 0 ] || { show_file "$WORK/debbuild.err"; fail "dpkg-deb --build failed"; }

say "the Debian minbase image"
upper_base "$DEBIAN" v1

# in_chroot ROOT NAME SCRIPT: a shell in chroot with /proc, output in $WORK/NAME.*
in_chroot() {
	local root=$1 name=$2 script=$3
	mount -t proc proc "$root/proc"
	track_mount "$root/proc"
	run_capture "$name" timeout -k 5 300 chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root LC_ALL=C DEBIAN_FRONTEND=noninteractive /bin/sh -ec "$script"
	umount "$root/proc"
}

say "dpkg -i in a chroot on the writable mount"
upper_mount v1 "$MNT" "$UP"
cp "$WORK/cairn-hello.deb" "$MNT/tmp/"
in_chroot "$MNT" install 'dpkg -i /tmp/cairn-hello.deb; rm /tmp/cairn-hello.deb; cairn-hello'
if [ "$RC" -ne 0 ] || ! grep -q 'hello from cairn-hello' "$WORK/install.out"; then
	show_file "$WORK/install.out"
	show_file "$WORK/install.err"
	fail "dpkg -i in the chroot failed (exit $RC)"
fi
info "$(grep -c '' "$WORK/install.out") lines from dpkg; the program runs"
upper_umount "$MNT"
upper_changes "$UP" v1 >"$WORK/changes" || soft_fail "changes failed"
for p in /usr/bin/cairn-hello /var/lib/cairn-hello/state /var/lib/dpkg/status; do
	grep -q " $p\$" "$WORK/changes" || soft_fail "changes does not list $p"
done
info "$(wc -l <"$WORK/changes") changed paths"

say "commit, mount v2 read-only: the package is installed"
upper_commit "$UP" v1 v2 -m "dpkg -i cairn-hello"
mkdir -p "$WORK/ro"
mount_ok "$STORE" v2 "$WORK/ro" --ro
run_capture status timeout -k 5 60 chroot "$WORK/ro" /usr/bin/dpkg -s cairn-hello
grep -q '^Status: install ok installed$' "$WORK/status.out" ||
	{ show_file "$WORK/status.out"; show_file "$WORK/status.err"; soft_fail "dpkg -s cairn-hello in v2"; }
grep -q '^Version: 1.0-1$' "$WORK/status.out" || soft_fail "dpkg -s shows another version"
run_capture audit timeout -k 5 60 chroot "$WORK/ro" /usr/bin/dpkg --audit
[ "$RC" -eq 0 ] && [ ! -s "$WORK/audit.out" ] || { show_file "$WORK/audit.out"; soft_fail "dpkg --audit in v2"; }
[ "$(chroot "$WORK/ro" /usr/bin/cairn-hello 2>&1)" = "hello from cairn-hello" ] || soft_fail "cairn-hello does not run in v2"
[ "$(cat "$WORK/ro/var/lib/cairn-hello/state" 2>&1)" = "configured configure" ] || soft_fail "the postinst's state file in v2"
[ ! -e "$WORK/ro/tmp/cairn-hello.deb" ] || soft_fail "v2 has the deleted /tmp/cairn-hello.deb"
umount_ok "$STORE" "$WORK/ro"
cairn_in "$STORE" cat v1:var/lib/dpkg/status | grep -q '^Package: cairn-hello$' &&
	soft_fail "v1's dpkg status lists cairn-hello"
info "ok: v1 does not have the package"

finish
