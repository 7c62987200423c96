#!/bin/bash
# debian.sh - a Debian system in cairn, as a container engine would use it:
# a debootstrap --variant=minbase tree is imported and put on a platform,
# mounted with a writable upper directory, and a package is installed
# inside it with dpkg (chroot, /proc and /dev mounted inside the cairn
# mount) and one removed with apt-get, next to apt-get commands that need
# no network; the upper is committed as a new image, the platform upgraded
# to it and rolled back.
#
# Run as root on Debian 12. Network is needed only the first time, for
# debootstrap (the tree is cached), and for 'apt-get download hello' (when
# it fails, a small package is built with dpkg-deb instead). Safe to run
# again: the same tree imports to the same image, each run installs into a
# fresh upper directory, and mounts left by an interrupted run are undone.
#
# Environment:
#   CAIRN_STORE     the store (default /var/lib/cairn)
#   CAIRN           a cairn binary already built: skips installing and building
#   DEBIAN_MNT      the mountpoint (default /run/cairn/mnt/debian)
#   DEBIAN_ROOTFS   a minbase tree to import as it is, instead of the cache
#   CAIRN_DEBIAN_CACHE  where the minbase tree is made once (/var/cache/cairn-debian,
#                   shared with the tests: scripts/debian-tree.sh)
#   DEBIAN_SUITE    (bookworm), DEBIAN_MIRROR (http://deb.debian.org/debian)
#   TMPDIR          where the upper directory and the .deb are made
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=examples/lib.sh
. examples/lib.sh

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, FUSE mounts with allow_other, chroot)"
cairn_ready
export CAIRN_STORE=${CAIRN_STORE:-/var/lib/cairn}
echo "cairn: $cairn; store: $CAIRN_STORE"

suite=${DEBIAN_SUITE:-bookworm}
mnt=${DEBIAN_MNT:-/run/cairn/mnt/debian}
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-debian.XXXXXX")
upper=$work/upper

# undo the mounts inside the cairn mount, then the cairn mount, then the
# work directory: also when a step fails or the script is interrupted
unmount_all() {
	local m
	for m in $(mounts_under "$mnt"); do
		[ "$m" = "$mnt" ] && continue
		umount "$m" 2>/dev/null || umount -l "$m"
	done
	if is_mounted "$mnt"; then
		"$cairn" umount "$mnt" >/dev/null 2>&1 || "$cairn" umount --lazy "$mnt"
	fi
}
cleanup() {
	local rc=$?
	set +e
	unmount_all
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# in_debian CMD...: run CMD in the mount with a clean environment (shown
# as 'chroot MNT CMD')
in_debian() {
	show chroot "$mnt" "$@"
	chroot "$mnt" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C \
		DEBIAN_FRONTEND=noninteractive "$@"
}

step "a Debian $suite minbase tree"
debian_minbase_tree
rootfs=$debian_tree
echo "$rootfs: $(find "$rootfs" -xdev | wc -l) entries, $(du -sh --one-file-system "$rootfs" | cut -f1)"

step "importing it as 'debian-minbase' and putting the platform 'debian' on it"
run "$cairn" import "$rootfs" --tag debian-minbase -m "debootstrap --variant=minbase $suite"
run "$cairn" upgrade debian debian-minbase

step "a package to install: apt-get download on the host, else one made with dpkg-deb"
# apt downloads as the user _apt: let it reach and write debs/ (and
# nothing else: the upper directory stays root's alone)
chmod 711 "$work"
mkdir -m 700 "$upper"
mkdir "$work/debs"
chown _apt "$work/debs" 2>/dev/null || true
if (cd "$work/debs" && run apt-get download -q hello); then
	deb=$(ls "$work"/debs/hello_*.deb)
else
	echo "(no download: making the package cairn-hello with dpkg-deb)"
	pkgdir=$work/cairn-hello
	mkdir -p "$pkgdir/DEBIAN" "$pkgdir/usr/bin"
	cat >"$pkgdir/DEBIAN/control" <<-EOF
		Package: cairn-hello
		Version: 1.0
		Architecture: all
		Maintainer: cairn examples <root@localhost>
		Description: says hello from a package installed in a cairn mount
	EOF
	printf '#!/bin/sh\necho "Hello from cairn-hello"\n' >"$pkgdir/usr/bin/cairn-hello"
	chmod 0755 "$pkgdir/usr/bin/cairn-hello"
	deb=$work/debs/cairn-hello_1.0_all.deb
	run dpkg-deb --root-owner-group --build "$pkgdir" "$deb"
fi
pkg=$(dpkg-deb -f "$deb" Package)
run dpkg-deb -f "$deb" Package Version Depends Installed-Size

step "mounting the platform with an upper directory, /proc and /dev inside it"
mkdir -p "$(dirname "$mnt")"
chmod 700 "$(dirname "$mnt")"
mkdir -p "$mnt"
if [ -n "$(mounts_under "$mnt")" ]; then
	echo "(unmounting what an earlier run left on $mnt)"
	unmount_all
fi
run "$cairn" mount debian "$mnt" --upper "$upper"
run mount -t proc proc "$mnt/proc"
run mount --bind /dev "$mnt/dev"
run mount --bind /dev/pts "$mnt/dev/pts"

step "installing $pkg with dpkg inside it, and apt-get commands that need no network"
echo "(each command runs inside with a clean environment: env -i PATH HOME LC_ALL=C DEBIAN_FRONTEND=noninteractive)"
run cp "$deb" "$mnt/tmp/"
in_debian dpkg -i "/tmp/$(basename "$deb")"
in_debian "$pkg"
in_debian dpkg -l "$pkg"
in_debian apt-cache policy "$pkg"
in_debian apt-get check
in_debian apt-get remove --simulate "$pkg"
echo "(and a removal: tzdata's files, which are the image's, become whiteouts in the upper)"
in_debian apt-get purge -y -o Dpkg::Use-Pty=0 tzdata
in_debian apt-get clean
in_debian rm "/tmp/$(basename "$deb")"

step "unmounting, and what the container changed"
run umount "$mnt/dev/pts"
run umount "$mnt/dev"
run umount "$mnt/proc"
run "$cairn" umount "$mnt"
"$cairn" changes "$upper" >"$work/changes"
echo "\$ cairn changes $upper   ($(awk '{ n[$1]++ } END { printf "%d added, %d changed, %d deleted", n["A"], n["C"], n["D"] }' "$work/changes"); outside /usr/share:)"
grep -v ' /usr/share/.' "$work/changes" || true
echo "the upper directory holds $(du -sh "$upper" | cut -f1)"

step "committing the upper as image 'debian-$pkg' and upgrading the platform to it"
run "$cairn" commit "$upper" --tag "debian-$pkg" -m "debian-minbase with $pkg installed by dpkg"
run "$cairn" upgrade debian "debian-$pkg"
run "$cairn" du "debian-$pkg"

step "the platform mounted read-only: $pkg is installed, tzdata is not"
run "$cairn" mount debian "$mnt"
in_debian dpkg -s "$pkg"
in_debian "$pkg"
in_debian dpkg-query -W tzdata || echo "(dpkg-query exited $?: tzdata is not installed)"

step "rolling back, live: the same mount no longer has $pkg, and has tzdata again"
run "$cairn" rollback debian
in_debian dpkg -s "$pkg" || echo "(dpkg -s exited $?: not installed)"
in_debian /bin/sh -c "command -v $pkg" || echo "(no $pkg in PATH)"
in_debian dpkg-query -W tzdata
run "$cairn" history debian
run "$cairn" umount "$mnt"

step "done"
echo "the store is $CAIRN_STORE; the platform 'debian' is on debian-minbase, 'debian-$pkg' has $pkg"
