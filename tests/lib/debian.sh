# shellcheck shell=bash
# debian.sh - sourced by the tests that need a real Debian system: the one
# debootstrap --variant=minbase tree the tests and examples share
# (scripts/debian-tree.sh: made once under flock, network the first time,
# then /var/cache/cairn-debian).
#
# debian_tree: sets DEBIAN to the tree's path (making it if it is missing),
# or skips the test saying why. Call after setup (it needs $WORK).
debian_tree() {
	local err=$WORK/debian-tree.err
	if ! DEBIAN=$(bash "$TESTLIB/../../scripts/debian-tree.sh" 2>"$err"); then
		show_file "$err"
		skip "no Debian minbase tree: $(tail -n 1 "$err")"
	fi
	[ ! -s "$err" ] || show_file "$err"
	info "Debian tree: $DEBIAN"
}
