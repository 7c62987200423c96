# shellcheck shell=bash
# lib.sh - sourced by the example scripts: print each step and command as
# it runs, and get a cairn binary (the one in $CAIRN, else install the
# dependencies and build it).
#
#   step TEXT           a heading
#   show CMD...         print a command, shell-quoted where needed, cairn's path shortened
#   run CMD...          show it, then run it
#   die TEXT            an error line, exit 1
#   is_mounted DIR      DIR is a mount point (from the mount table: never touches DIR)
#   mounts_under DIR    DIR and every mount point below it, deepest first
#   cairn_ready         sets $cairn: $CAIRN as is, else installs what is missing and builds
#   debian_minbase_tree sets $debian_tree: a cached debootstrap minbase tree (below)

example_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
example_name=$(basename "$0" .sh)

if [ -t 1 ]; then
	step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
else
	step() { printf '\n==> %s\n' "$*"; }
fi

show() {
	local a shown=""
	for a; do
		[ "$a" = "${cairn:-}" ] && a=cairn
		case $a in
		'' | *[[:space:]\;\$\'\"\|\&\<\>\(\)\*]*) a="'${a//\'/\'\\\'\'}'" ;;
		esac
		shown+=" $a"
	done
	printf '$%s\n' "$shown"
}
run() {
	show "$@"
	"$@"
}

die() {
	printf '%s: %s\n' "$example_name" "$*" >&2
	exit 1
}

# /proc/self/mountinfo: field 5 is the mount point (octal escapes for
# spaces, which our paths do not have); a dead daemon's mount cannot be
# stat'ed, so never look at DIR itself
is_mounted() { awk -v d="$1" '$5 == d { f = 1 } END { exit !f }' /proc/self/mountinfo; }
mounts_under() {
	awk -v d="$1" '$5 == d || index($5, d "/") == 1 { print length($5), $5 }' /proc/self/mountinfo |
		sort -rn | cut -d' ' -f2-
}

cairn_ready() {
	if [ -n "${CAIRN:-}" ]; then
		cairn=$CAIRN
		[ -x "$cairn" ] || die "CAIRN='$cairn' is not an executable"
		step "using $cairn (CAIRN is set: not installing or building)"
		return
	fi
	step "installing dependencies (only what is missing)"
	"$example_repo/scripts/install-deps.sh"

	step "building"
	if [ -f "$example_repo/build/build.ninja" ]; then
		meson setup --reconfigure "$example_repo/build" "$example_repo" >/dev/null
	else
		meson setup "$example_repo/build" "$example_repo" >/dev/null
	fi
	meson compile -C "$example_repo/build" >/dev/null
	cairn=$example_repo/build/tools/cairn
}

# debian_minbase_tree: sets $debian_tree to a debootstrap --variant=minbase
# tree: $DEBIAN_ROOTFS as is, else the one cached tree the examples and
# tests share (scripts/debian-tree.sh: /var/cache/cairn-debian, made once
# under flock, network the first time). DEBIAN_SUITE (bookworm),
# DEBIAN_MIRROR (http://deb.debian.org/debian), CAIRN_DEBIAN_CACHE.
debian_minbase_tree() {
	if [ -n "${DEBIAN_ROOTFS:-}" ]; then
		[ -x "$DEBIAN_ROOTFS/usr/bin/dpkg" ] || die "DEBIAN_ROOTFS='$DEBIAN_ROOTFS' has no usr/bin/dpkg"
		debian_tree=$DEBIAN_ROOTFS
		return 0
	fi
	show "$example_repo/scripts/debian-tree.sh"
	debian_tree=$("$example_repo/scripts/debian-tree.sh") || die "no Debian minbase tree"
}
