#!/bin/bash
# example_debian.sh - examples/debian.sh run for real against a temporary
# store: a Debian minbase tree, a package installed with dpkg and tzdata
# purged with apt-get in a writable mount, committed, the platform upgraded
# to the commit (the package is there, tzdata is not) and rolled back (the
# other way round), with the commit storing about the package only. A second run without a package download (apt-get
# fails on the host) installs a package made with dpkg-deb; a run
# interrupted while /proc and /dev are mounted inside leaves nothing behind.
#
# Needs the minbase tree the tests and examples share (scripts/debian-
# tree.sh: made once, network to deb.debian.org the first time).
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
mount_setup

EXAMPLE=$TESTLIB/../../examples/debian.sh
# shellcheck source=../lib/debian.sh
source "$TESTLIB/debian.sh"
STORE=$WORK/store
MNT=$WORK/mnt/debian
TMP=$WORK/tmp
mkdir -p "$TMP"
_track_mount "$MNT" "$STORE"
debian_tree # made here once if missing; the example finds it in the cache

# example NAME [ENV...]: runs the example (20 min at most: debootstrap the
# first time), both streams in $WORK/NAME.out; sets RC
example() {
	local name=$1
	shift
	set +e
	timeout -k 10 1200 env CAIRN="$CAIRN" CAIRN_STORE="$STORE" DEBIAN_MNT="$MNT" TMPDIR="$TMP" \
		"$@" bash "$EXAMPLE" >"$WORK/$name.out" 2>&1
	RC=$?
	set -e
	if [ "$RC" -ne 0 ]; then
		tail -n 40 "$WORK/$name.out"
		fail "run $name exited $RC"
	fi
}

nothing_left() {
	local m
	m=$(mounts_under "$MNT")
	[ -z "$m" ] || soft_fail "$1: still mounted: $m"
	[ -z "$(ls -A "$TMP")" ] || soft_fail "$1: left in TMPDIR: $(ls -A "$TMP")"
	return 0
}

has() {
	grep -qxF -- "$2" "$WORK/$1.out" || soft_fail "run $1: no line '$2' in its output"
}

# installed_in IMAGE PKG: dpkg's status file in IMAGE lists PKG as installed
installed_in() {
	cairn_in "$STORE" cat "$1:var/lib/dpkg/status" >"$WORK/status" || fail "cat $1:var/lib/dpkg/status"
	[ "$(awk -v p="$2" '$0 == "Package: " p { f = 1; next } f && /^Status:/ { print; exit }' \
		"$WORK/status")" = "Status: install ok installed" ]
}

# check_run NAME PKG BANNER GENS: what the run shows and what it left in the store
check_run() {
	local name=$1 pkg=$2 banner=$3 gens=$4
	nothing_left "run $name"
	has "$name" "Setting up $pkg ($(sed -n "s/^Version: //p" "$WORK/$name.out" | head -n 1)) ..."
	has "$name" "$banner"
	grep -q "^ii  $pkg " "$WORK/$name.out" || soft_fail "run $name: dpkg -l does not show $pkg installed"
	has "$name" "Status: install ok installed"
	has "$name" "Remv $pkg [$(sed -n "s/^Version: //p" "$WORK/$name.out" | head -n 1)]"
	has "$name" "dpkg-query: package '$pkg' is not installed and no information is available"
	grep -q "switched $gens$" "$WORK/$name.out" || soft_fail "run $name: the rollback did not switch the mount"

	cairn_in "$STORE" history debian --json >"$WORK/hist.json" || fail "history debian"
	[ "$(json_get "$WORK/hist.json" 'len(j)')" = "$gens" ] ||
		soft_fail "run $name: the platform has $(json_get "$WORK/hist.json" 'len(j)') generations, expected $gens"
	# upgraded to the commit, rolled back
	[ "$(json_get "$WORK/hist.json" '" ".join(g["action"] for g in j[-2:])')" = "upgrade rollback" ] ||
		soft_fail "run $name: history $(json_get "$WORK/hist.json" '[g["action"] for g in j]')"
	[ "$(json_get "$WORK/hist.json" 'j[-2]["tags"]')" = "debian-$pkg" ] ||
		soft_fail "run $name: the platform was not upgraded to debian-$pkg"
	[ "$(json_get "$WORK/hist.json" 'j[-1]["tags"]')" = debian-minbase ] ||
		soft_fail "run $name: the platform is not back on debian-minbase"

	installed_in "debian-$pkg" "$pkg" || soft_fail "run $name: debian-$pkg's dpkg status has no $pkg installed"
	installed_in debian-minbase "$pkg" && soft_fail "run $name: debian-minbase has $pkg installed"
	# tzdata, purged: its files are gone from the commit, not from the image below
	installed_in "debian-$pkg" tzdata && soft_fail "run $name: debian-$pkg still has tzdata installed"
	installed_in debian-minbase tzdata || soft_fail "run $name: debian-minbase lost tzdata"
	cairn_in "$STORE" stat "debian-$pkg:usr/share/zoneinfo" >/dev/null 2>&1 &&
		soft_fail "run $name: debian-$pkg still has usr/share/zoneinfo"
	cairn_in "$STORE" stat "debian-$pkg:etc/timezone" >/dev/null 2>&1 &&
		soft_fail "run $name: debian-$pkg still has etc/timezone"
	cairn_in "$STORE" stat debian-minbase:usr/share/zoneinfo/UTC >/dev/null ||
		soft_fail "run $name: debian-minbase lost usr/share/zoneinfo/UTC"
	has "$name" "dpkg-query: no packages found matching tzdata"
	grep -q "^tzdata	" "$WORK/$name.out" || soft_fail "run $name: tzdata is not back after the rollback"
	cairn_in "$STORE" stat "debian-$pkg:var/lib/dpkg/info/$pkg.list" >/dev/null ||
		soft_fail "run $name: debian-$pkg has no var/lib/dpkg/info/$pkg.list"
	cairn_in "$STORE" stat "debian-$pkg:tmp/$(basename "$(sed -n 's/^\$ cp \([^ ]*\) .*/\1/p' "$WORK/$name.out")")" \
		>/dev/null 2>&1 && soft_fail "run $name: the .deb copied into /tmp was committed"
	# the commit stores about the package: far less than the tree
	cairn_in "$STORE" du "debian-$pkg" --json >"$WORK/du.json" || fail "du debian-$pkg"
	local unique logical
	unique=$(json_get "$WORK/du.json" 'j["unique_bytes"]')
	logical=$(json_get "$WORK/du.json" 'j["logical_bytes"]')
	info "debian-$pkg: $unique bytes of its own out of $logical"
	[ "$unique" -lt $((4 << 20)) ] || soft_fail "run $name: the commit stores $unique bytes of its own"
	run_capture fsck cairn_in "$STORE" fsck
	[ "$RC" -eq 0 ] || { show_file "$WORK/fsck.out"; soft_fail "run $name: fsck exited $RC"; }
}

say "run 1: the example as it is"
example run1
show_file "$WORK/run1.out" 8
if grep -qx "Package: hello" "$WORK/run1.out"; then
	check_run run1 hello "Hello, world!" 3
else
	info "(no download of hello on this host: the example made cairn-hello)"
	check_run run1 cairn-hello "Hello from cairn-hello" 3
fi

say "run 2, same store, no package download: a package made with dpkg-deb"
mkdir -p "$WORK/bin"
printf '#!/bin/sh\necho "apt-get: offline (test)" >&2\nexit 100\n' >"$WORK/bin/apt-get"
chmod 755 "$WORK/bin/apt-get"
example run2 PATH="$WORK/bin:$PATH"
grep -q "making the package cairn-hello with dpkg-deb" "$WORK/run2.out" || soft_fail "run 2 did not make cairn-hello"
check_run run2 cairn-hello "Hello from cairn-hello" 5

say "run 3, interrupted while /proc and /dev are mounted inside"
env CAIRN="$CAIRN" CAIRN_STORE="$STORE" DEBIAN_MNT="$MNT" TMPDIR="$TMP" \
	bash "$EXAMPLE" >"$WORK/run3.out" 2>&1 &
qpid=$!
track_holder "$qpid"
n=0
until grep -q '^\$ mount --bind /dev' "$WORK/run3.out"; do
	n=$((n + 1))
	if [ "$n" -ge 3000 ] || ! pid_alive "$qpid"; then
		tail -n 20 "$WORK/run3.out"
		fail "run 3 never mounted /dev"
	fi
	sleep 0.1
done
kill -TERM "$qpid"
if wait_gone "$qpid" 120; then
	set +e
	wait "$qpid"
	RC=$?
	set -e
	[ "$RC" = 143 ] || soft_fail "run 3 exited $RC after SIGTERM, expected 143"
else
	soft_fail "run 3 still runs 120 s after SIGTERM"
fi
nothing_left "run 3"

finish
