# shellcheck shell=bash
# shellcheck disable=SC2034 # U_*, FSMODEL: for the tests that source this
# upper.sh - sourced after common.sh and mount.sh by the upper_* tests.
#
# The writable layer under test is pluggable, so the same tests run today
# against the kernel's overlayfs and fuse-overlayfs (to validate the tests)
# and against cairn once 'cairn mount --upper' exists:
#
#   UPPER_SUT=cairn            cairn mount IMAGE DIR --upper UPPERDIR (default)
#   UPPER_SUT=overlayfs        mount -t overlay, lowerdir = the image's source
#                              directory, options $UPPER_OVL_OPTS
#                              (index=on,redirect_dir=on,metacopy=on)
#   UPPER_SUT=fuse-overlayfs   fuse-overlayfs, the same directories
#
# An upper directory UPPER has cairn's layout for every SUT: UPPER/tree is
# the upper tree (overlayfs upperdir style), UPPER/work the work directory.
# The markers differ by SUT; the tests read them from these variables:
#   U_PRIV      private xattr prefix (trusted.cairn. / trusted.overlay.)
#   U_ESC       where a container's own xattr of that prefix is stored
#   U_OPAQUE    the opaque-directory xattr
#   U_METACOPY  the metadata-only copy-up xattr
#
#   upper_setup                 mount_setup, and the SUT's prerequisites
#   upper_base SRC NAME         SRC (a directory the test never changes
#                               afterwards) becomes base image NAME: imported
#                               into $STORE for every SUT (commit checks use
#                               the store), the lower directory for peers
#   upper_mount NAME DIR UPPER  a writable merged view of NAME + UPPER on DIR
#   upper_mount_try NAME DIR UPPER
#                               the same, returning the status (RC) instead
#                               of failing; output in $WORK/umnt.out/.err
#   upper_umount DIR            unmount; the daemon (if any) is gone
#   upper_daemon DIR            the FUSE daemon's pid (nothing for overlayfs)
#   upper_commit UPPER NAME TAG the upper on NAME becomes image TAG; sets ID.
#                               Peers have no commit: their merged view is
#                               imported (the same tree, so the same checks)
#   upper_changes UPPER NAME    'A /p', 'C /p', 'D /p' lines on stdout
#   cairn_only WHAT             skip (77) unless UPPER_SUT=cairn
#   sut_is NAME...              true when UPPER_SUT is one of NAME...

UPPER_SUT=${UPPER_SUT:-cairn}
# kernel overlayfs options: the features cairn has (no EXDEV on directory
# renames, hard links kept together on copy-up, metadata-only copy-up)
UPPER_OVL_OPTS=${UPPER_OVL_OPTS:-index=on,redirect_dir=on,metacopy=on}
STORE=${STORE:-}
declare -A _U_LOWER=()
_U_PEERMNTS=()
UPPERCHANGES=$TESTLIB/upperchanges.py
FSMODEL=$TESTLIB/fsmodel.py

case $UPPER_SUT in
cairn)
	U_PRIV=trusted.cairn.
	U_ESC=trusted.cairn.x.
	U_OPAQUE=trusted.cairn.opaque
	U_METACOPY=trusted.cairn.metacopy
	;;
overlayfs | fuse-overlayfs)
	U_PRIV=trusted.overlay.
	U_ESC=trusted.overlay.overlay.
	U_OPAQUE=trusted.overlay.opaque
	U_METACOPY=trusted.overlay.metacopy
	;;
*)
	printf 'FAIL: UPPER_SUT=%s: want cairn, overlayfs or fuse-overlayfs\n' "$UPPER_SUT" >&2
	exit 1
	;;
esac

sut_is() {
	local s
	for s in "$@"; do [ "$UPPER_SUT" = "$s" ] && return 0; done
	return 1
}

cairn_only() {
	sut_is cairn || skip "$1: cairn only (UPPER_SUT=$UPPER_SUT)"
}

upper_setup() {
	mount_setup
	STORE=${STORE:-$WORK/store}
	case $UPPER_SUT in
	fuse-overlayfs) require_cmd fuse-overlayfs fusermount3 ;;
	overlayfs) grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null ||
		skip "the kernel has no overlayfs" ;;
	esac
	# the trees are reached by other uids in some tests: WORK itself is 0700
	chmod 0711 "$WORK"
	trap _upper_cleanup EXIT
	info "system under test: $UPPER_SUT"
}

_upper_cleanup() {
	local rc=$? m
	set +e
	for m in "${_U_PEERMNTS[@]}"; do
		is_mounted "$m" || continue
		timeout -k 2 10 umount "$m" 2>/dev/null || timeout -k 2 10 umount -l "$m" 2>/dev/null
	done
	(exit "$rc")
	_mount_cleanup
}

upper_base() {
	local src=$1 name=$2
	src=$(cd "$src" && pwd)
	import_ok "$STORE" "$src" --tag "$name"
	_U_LOWER[$name]=$src
	info "base $name: $src (image $ID)"
}

# upper_mount_try NAME DIR UPPER [ARGS...]: sets RC; output in $WORK/umnt.*
upper_mount_try() {
	local name=$1 dir=$2 upper=$3
	shift 3
	mkdir -p "$dir"
	case $UPPER_SUT in
	cairn)
		_track_mount "$dir" "$STORE"
		run_capture umnt tcairn "$STORE" mount "$name" "$dir" --upper "$upper" \
			"${MOUNT_MODE_ARGS[@]}" "$@"
		local p
		for p in $(fuse_daemons_for "$dir"); do _track_daemon "$p"; done
		;;
	overlayfs)
		local low=${_U_LOWER[$name]:?upper_base $name first}
		_peer_upper "$low" "$upper"
		_U_PEERMNTS+=("$dir")
		run_capture umnt timeout -k 5 "$MOUNT_T" mount -t overlay overlay \
			-o "lowerdir=$low,upperdir=$upper/tree,workdir=$upper/work,$UPPER_OVL_OPTS" "$dir"
		;;
	fuse-overlayfs)
		local low=${_U_LOWER[$name]:?upper_base $name first}
		_peer_upper "$low" "$upper"
		_track_mount "$dir" "$STORE"
		run_capture umnt timeout -k 5 "$MOUNT_T" fuse-overlayfs \
			-o "lowerdir=$low,upperdir=$upper/tree,workdir=$upper/work,allow_other" "$dir"
		local p
		for p in $(fuse_daemons_for "$dir"); do _track_daemon "$p"; done
		;;
	esac
}

# _peer_upper LOWER UPPER: a new upper tree's root starts with the image
# root's owner, mode and mtime: overlayfs shows the upper root's own (cairn
# shows the image's until the container changes them)
_peer_upper() {
	local low=$1 upper=$2
	[ -d "$upper/tree" ] || {
		mkdir -p "$upper/tree"
		chown --reference="$low" "$upper/tree"
		chmod --reference="$low" "$upper/tree"
		touch -r "$low" "$upper/tree"
	}
	mkdir -p "$upper/work"
}

upper_mount() {
	local name=$1 dir=$2 upper=$3
	upper_mount_try "$@"
	if [ "$RC" -ne 0 ] || ! is_mounted "$dir"; then
		show_file "$WORK/umnt.out" >&2
		show_file "$WORK/umnt.err" >&2
		fail "$UPPER_SUT: writable mount of $name on $dir (upper $upper) failed (exit $RC)"
	fi
	timeout 10 stat "$dir" >/dev/null || fail "$dir does not answer a stat after the mount"
	MPID=$(upper_daemon "$dir")
	[ -z "$MPID" ] || _track_daemon "$MPID"
	info "mounted $name + $upper on $dir ($UPPER_SUT${MPID:+, pid $MPID})"
}

upper_daemon() {
	case $UPPER_SUT in
	cairn) daemon_pid "$STORE" "$1" ;;
	fuse-overlayfs) fuse_daemons_for "$1" | head -n 1 ;;
	overlayfs) ;;
	esac
}

upper_umount() {
	local dir=$1 pid
	case $UPPER_SUT in
	cairn) umount_ok "$STORE" "$dir" || fail "cairn umount $dir failed" ;;
	overlayfs)
		timeout -k 5 "$MOUNT_T" umount "$dir" || fail "umount $dir failed"
		;;
	fuse-overlayfs)
		pid=$(upper_daemon "$dir")
		timeout -k 5 "$MOUNT_T" fusermount3 -u "$dir" || fail "fusermount3 -u $dir failed"
		[ -z "$pid" ] || wait_gone "$pid" 10 || fail "fuse-overlayfs $pid still runs after the unmount"
		;;
	esac
	! is_mounted "$dir" || fail "$dir is still mounted after the unmount"
}

# upper_commit UPPER NAME TAG [-m MSG]: the upper (unmounted) on image NAME
# becomes image TAG; sets ID. For peers the merged view is imported instead.
upper_commit() {
	local upper=$1 name=$2 tag=$3
	shift 3
	if sut_is cairn; then
		run_capture commit cairn_in "$STORE" commit "$upper" --on "$name" --tag "$tag" "$@"
		if [ "$RC" -ne 0 ]; then
			show_file "$WORK/commit.err" >&2
			fail "cairn commit $upper --on $name exited $RC"
		fi
		ID=$(cairn_in "$STORE" images --json | python3 -c '
import json, sys
for i in json.load(sys.stdin):
    if sys.argv[1] in i.get("tags", []):
        print(i["id"]); break' "$tag")
		[ -n "$ID" ] || fail "after cairn commit, no image is tagged $tag"
	else
		local m=$WORK/commit-view
		upper_mount "$name" "$m" "$upper"
		import_ok "$STORE" "$m" --tag "$tag" "$@"
		upper_umount "$m"
	fi
	info "committed $upper on $name as $tag ($ID)"
}

upper_changes() {
	local upper=$1 name=$2
	if sut_is cairn; then
		cairn_in "$STORE" changes "$upper"
	else
		python3 "$UPPERCHANGES" --prefix "$U_PRIV" "$upper/tree" "${_U_LOWER[$name]}"
	fi
}

# drop_caches: the kernel's dentry, inode and page caches (machine-wide;
# CAIRN_TEST_NO_DROP_CACHES=1 skips it)
drop_caches() {
	[ "${CAIRN_TEST_NO_DROP_CACHES:-0}" = 1 ] && return 0
	sync
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
}
