#!/bin/bash
# debian-tree.sh - the one cached Debian tree the examples and tests share:
# a debootstrap --variant=minbase tree, made once (network the first time,
# a few minutes) and reused by every later run, under flock so two runs at
# once make it once. Prints the tree's path on stdout.
#
#   scripts/debian-tree.sh            make it if missing, print its path
#   scripts/debian-tree.sh --cached   print its path only if it is made (exit 1 if not)
#
#   CAIRN_DEBIAN_CACHE  where it lives (default /var/cache/cairn-debian)
#   DEBIAN_SUITE        bookworm
#   DEBIAN_MIRROR       http://deb.debian.org/debian
#
# The tree is CACHE/SUITE-minbase with CACHE/SUITE-minbase.stamp naming how
# it was made; apt's downloaded .debs and package lists are removed (caches,
# not the system). Remove the directory to get rid of it.
set -euo pipefail

suite=${DEBIAN_SUITE:-bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=${CAIRN_DEBIAN_CACHE:-/var/cache/cairn-debian}
tree=$cache/$suite-minbase
stamp="debootstrap --variant=minbase $suite $mirror apt-caches=cleaned"

made() { [ -f "$tree.stamp" ] && [ "$(cat "$tree.stamp")" = "$stamp" ] && [ -x "$tree/usr/bin/dpkg" ]; }

if [ "${1:-}" = --cached ]; then
	made || exit 1
	echo "$tree"
	exit 0
fi
made && { echo "$tree"; exit 0; }

[ "$(id -u)" -eq 0 ] || { echo "debian-tree: debootstrap needs root" >&2; exit 1; }
mkdir -p "$cache"
chmod 0700 "$cache" # it holds a root filesystem: root's alone
exec 9>"$cache/.lock"
flock 9 # two runs at once: one makes the tree, the other waits for it
if ! made; then
	if ! command -v debootstrap >/dev/null; then
		echo "debian-tree: installing debootstrap" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			debootstrap >&2
	fi
	rm -rf --one-file-system "$tree" "$tree.tmp" "$tree.stamp"
	echo "debian-tree: debootstrap --variant=minbase $suite into $tree (once: a few minutes," \
		"the log is $cache/debootstrap.log)" >&2
	if ! debootstrap --variant=minbase "$suite" "$tree.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1; then
		tail -n 20 "$cache/debootstrap.log" >&2
		echo "debian-tree: debootstrap failed (is $mirror reachable?)" >&2
		exit 1
	fi
	find "$tree.tmp/var/cache/apt" "$tree.tmp/var/lib/apt/lists" -xdev -type f ! -name lock -delete
	mv "$tree.tmp" "$tree"
	echo "$stamp" >"$tree.stamp"
fi
echo "$tree"
