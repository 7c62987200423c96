# shellcheck shell=bash
# mount.sh - sourced after common.sh by the mount_* integration tests.
#
# Mounts images with 'cairn mount' and guarantees that nothing is left
# behind: the exit trap (also on failure or SIGTERM from meson) kills the
# helper processes the test started, runs 'cairn umount' on every mount the
# test made (falling back to 'fusermount3 -uz' and 'umount -l'), kills each
# daemon by pid, and lazily detaches anything still mounted under $WORK
# before common.sh removes $WORK.
#
# Every command that touches a mount runs under timeout(1): a hung daemon
# fails the test instead of hanging it.
#
#   mount_setup                 require root and /dev/fuse, setup, trap
#   mount_ok STORE IMAGE DIR [ARGS...]
#                               cairn mount (daemonizing); sets MPID
#   mount_fg STORE IMAGE DIR [ARGS...]
#                               cairn mount -f in the background; sets MPID
#   umount_ok STORE DIR [ARGS...]
#                               cairn umount; the mount and daemon are gone
#   umount_patient STORE DIR   cairn umount, then up to a minute for the daemon to end
#                               (a loaded machine, a daemon that knew thousands of inodes)
#   is_mounted DIR, mount_count DIR, mount_fstype DIR, mount_opts DIR
#                               from /proc/self/mountinfo (never touch DIR)
#   pid_alive PID               running and not a zombie
#   track_holder PID            a helper process killed first on exit
#   chunk_map STORE IMAGE:PATH  the file's extents and where their chunks are

# seconds allowed to one mount/umount/stats command
MOUNT_T=${CAIRN_MOUNT_TIMEOUT:-60}
# CAIRN_TEST_ISOLATED=1: every mount the tests make gets a daemon of its
# own (--isolated); by default they go to the store's shared daemon
MOUNT_MODE_ARGS=()
if [ "${CAIRN_TEST_ISOLATED:-0}" = 1 ]; then
	MOUNT_MODE_ARGS=(--isolated)
fi
_MNTS=()
_MSTORES=()
_DAEMONS=()
_HOLDERS=()
MPID=""

require_fuse() {
	[ "$(id -u)" -eq 0 ] || skip "needs root (FUSE mounts with allow_other, devices, chroot)"
	[ -c /dev/fuse ] || skip "/dev/fuse is missing: no FUSE in this machine or container"
}

mount_setup() {
	require_fuse
	setup
	trap _mount_cleanup EXIT
	command -v fusermount3 >/dev/null 2>&1 ||
		info "(fusermount3 is not installed: cleanup falls back to umount -l)"
}

# tcairn STORE ARGS...: cairn on STORE under timeout
tcairn() {
	local store=$1
	shift
	timeout -k 5 "$MOUNT_T" "$CAIRN" --store "$store" "$@"
}

# /proc/self/mountinfo: field 5 is the mount point, 6 the per-mount
# options, after ' - ' come fstype, source and the superblock options.
# Our paths have no spaces or escapes.
is_mounted() {
	awk -v d="$1" '$5 == d { f = 1 } END { exit !f }' /proc/self/mountinfo
}
mount_count() {
	awk -v d="$1" '$5 == d { n++ } END { print n + 0 }' /proc/self/mountinfo
}
mount_fstype() {
	awk -v d="$1" '$5 == d { for (i = 7; i <= NF; i++) if ($i == "-") { print $(i + 1); exit } }' \
		/proc/self/mountinfo
}
# per-mount options and superblock options, comma-separated, one line
mount_opts() {
	awk -v d="$1" '$5 == d { for (i = 7; i <= NF; i++) if ($i == "-") { print $6 "," $(i + 3); exit } }' \
		/proc/self/mountinfo
}
# every mount point at or below DIR
mounts_under() {
	awk -v d="$1" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo
}

pid_alive() {
	local s
	s=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[ -n "$s" ] && [ "$s" != Z ]
}

# wait_gone PID SECS: 0 once PID has exited
wait_gone() {
	local pid=$1 n=$(($2 * 10))
	while [ "$n" -gt 0 ]; do
		pid_alive "$pid" || return 0
		sleep 0.1
		n=$((n - 1))
	done
	! pid_alive "$pid"
}

# wait_unmounted DIR SECS
wait_unmounted() {
	local d=$1 n=$(($2 * 10))
	while [ "$n" -gt 0 ]; do
		is_mounted "$d" || return 0
		sleep 0.1
		n=$((n - 1))
	done
	! is_mounted "$d"
}

track_holder() { _HOLDERS+=("$1"); }

# fuse_daemons_for DIR: pids that hold /dev/fuse open and have DIR as an
# argument: the daemon of a mount on DIR, whatever 'cairn mounts' says.
fuse_daemons_for() {
	python3 - "$1" <<'EOF'
import os, sys
d, me = os.fsencode(sys.argv[1]), str(os.getpid())
for pid in os.listdir("/proc"):
    if not pid.isdigit() or pid == me:
        continue
    try:
        args = open("/proc/%s/cmdline" % pid, "rb").read().split(b"\0")
        if d not in args:
            continue
        for f in os.listdir("/proc/%s/fd" % pid):
            try:
                if os.readlink("/proc/%s/fd/%s" % (pid, f)) == "/dev/fuse":
                    print(pid)
                    break
            except OSError:
                pass
    except OSError:
        pass
EOF
}

# daemon_pid STORE DIR: the daemon's pid from 'cairn mounts --json', else
# from /proc; empty when neither knows.
daemon_pid() {
	local store=$1 dir=$2 pid=""
	pid=$(tcairn "$store" mounts --json 2>/dev/null | python3 -c '
import json, sys
try:
    for m in json.load(sys.stdin):
        if m.get("mountpoint") == sys.argv[1]:
            print(m.get("pid")); break
except Exception:
    pass' "$dir" 2>/dev/null) || pid=""
	if ! [[ "$pid" =~ ^[0-9]+$ ]]; then
		pid=$(fuse_daemons_for "$dir" | head -n 1)
	fi
	echo "$pid"
}

_track_mount() {
	_MNTS+=("$1")
	_MSTORES+=("$2")
}
_track_daemon() {
	local p
	[ -n "$1" ] || return 0
	for p in "${_DAEMONS[@]}"; do [ "$p" = "$1" ] && return 0; done
	_DAEMONS+=("$1")
}

# mount_ok STORE IMAGE DIR [ARGS...]: mounts (cairn returns once the mount
# is usable); fails the test otherwise. Sets MPID to the daemon's pid.
mount_ok() {
	local store=$1 image=$2 dir=$3
	shift 3
	_track_mount "$dir" "$store"
	run_capture mount tcairn "$store" mount "$image" "$dir" "${MOUNT_MODE_ARGS[@]}" "$@"
	local p
	for p in $(fuse_daemons_for "$dir"); do _track_daemon "$p"; done
	if [ "$RC" -ne 0 ]; then
		show_file "$WORK/mount.out" >&2
		show_file "$WORK/mount.err" >&2
		fail "cairn mount $image $dir $* exited $RC"
	fi
	is_mounted "$dir" || fail "cairn mount $image $dir returned 0 but $dir is not mounted"
	MPID=$(daemon_pid "$store" "$dir")
	if [ -z "$MPID" ]; then
		soft_fail "cannot find the daemon of $dir (cairn mounts --json, /proc)"
	else
		_track_daemon "$MPID"
	fi
	# usable when cairn returns: the first stat answers at once
	timeout 10 stat "$dir" >/dev/null ||
		fail "$dir does not answer a stat right after cairn mount returned"
	info "mounted $image on $dir (daemon ${MPID:-?})"
}

# mount_fg STORE IMAGE DIR [ARGS...]: cairn mount -f in the background;
# waits (30 s at most) for the mount. Sets MPID to the foreground process.
mount_fg() {
	local store=$1 image=$2 dir=$3 log=$WORK/mount-fg.log n=300
	shift 3
	_track_mount "$dir" "$store"
	# bash starts background commands with SIGINT and SIGQUIT ignored, and
	# libfuse only handles signals that are at their default: reset them
	python3 -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
signal.signal(signal.SIGQUIT, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])' "$CAIRN" --store "$store" mount "$image" "$dir" -f "$@" >"$log" 2>&1 &
	MPID=$!
	_track_daemon "$MPID"
	while ! is_mounted "$dir"; do
		if ! pid_alive "$MPID"; then
			show_file "$log" >&2
			fail "cairn mount -f $image $dir exited before mounting"
		fi
		n=$((n - 1))
		[ "$n" -gt 0 ] || { show_file "$log" >&2; fail "cairn mount -f: $dir not mounted after 30 s"; }
		sleep 0.1
	done
	timeout 10 stat "$dir" >/dev/null || fail "$dir does not answer a stat after mount -f"
	info "mounted $image on $dir in the foreground (pid $MPID)"
}

# daemon_serves STORE PID: the daemon PID serves some mount of STORE still
daemon_serves() {
	tcairn "$1" mounts --json 2>/dev/null | python3 -c '
import json, sys
sys.exit(0 if any(m.get("pid") == int(sys.argv[1]) and m.get("state") == "serving"
                  for m in json.load(sys.stdin)) else 1)' "$2"
}

# umount_ok STORE DIR [ARGS...]: cairn umount succeeds, the mount is gone,
# and (without --lazy) its daemon has exited when the command returns,
# unless it still serves other mounts (the store's shared daemon).
umount_ok() {
	local store=$1 dir=$2
	shift 2
	local pid
	pid=$(daemon_pid "$store" "$dir")
	run_capture umount tcairn "$store" umount "$dir" "$@"
	if [ "$RC" -ne 0 ]; then
		show_file "$WORK/umount.err" >&2
		soft_fail "cairn umount $dir $* exited $RC"
		return 1
	fi
	if is_mounted "$dir"; then
		soft_fail "cairn umount $dir $* returned 0 but $dir is still mounted"
		return 1
	fi
	if [ -n "$pid" ] && [[ " $* " != *" --lazy "* ]] && pid_alive "$pid" &&
		! daemon_serves "$store" "$pid"; then
		# a daemon we started with -f is our child: reaped by wait, give
		# it a moment
		if ! wait_gone "$pid" 2; then
			soft_fail "cairn umount $dir returned while its daemon $pid still runs"
			return 1
		fi
	fi
	return 0
}

umount_patient() {
	local store=$1 dir=$2 pid
	pid=$(daemon_pid "$store" "$dir")
	tcairn "$store" umount "$dir" || fail "cairn umount $dir failed"
	[ -z "$pid" ] || wait_gone "$pid" 60 || fail "the daemon of $dir still runs a minute after umount"
	! is_mounted "$dir" || fail "$dir is still mounted after the unmount"
}

_mount_cleanup() {
	local rc=$? i m p
	set +e
	for p in "${_HOLDERS[@]}"; do
		kill -9 "$p" 2>/dev/null
	done
	for p in "${_HOLDERS[@]}"; do
		wait_gone "$p" 5
	done
	for ((i = ${#_MNTS[@]} - 1; i >= 0; i--)); do
		m=${_MNTS[i]}
		for p in $(fuse_daemons_for "$m"); do _track_daemon "$p"; done
		is_mounted "$m" || continue
		timeout -k 2 20 "$CAIRN" --store "${_MSTORES[i]}" umount "$m" >/dev/null 2>&1
		is_mounted "$m" || continue
		printf '   cleanup: cairn umount %s failed, detaching\n' "$m"
		timeout -k 2 10 fusermount3 -uz "$m" >/dev/null 2>&1
		is_mounted "$m" && timeout -k 2 10 umount -l "$m" >/dev/null 2>&1
	done
	for p in "${_DAEMONS[@]}"; do
		pid_alive "$p" && kill -TERM "$p" 2>/dev/null
	done
	for p in "${_DAEMONS[@]}"; do
		wait_gone "$p" 5 && continue
		printf '   cleanup: daemon %s ignores SIGTERM, killing it\n' "$p"
		kill -9 "$p" 2>/dev/null
		wait_gone "$p" 5
	done
	if [ -n "$WORK" ]; then
		for m in $(mounts_under "$WORK" | sort -r); do
			printf '   cleanup: %s is still mounted, detaching\n' "$m"
			umount -l "$m" 2>/dev/null || timeout -k 2 10 fusermount3 -uz "$m" 2>/dev/null
		done
	fi
	(exit "$rc")
	_cleanup
}

# chunk_map STORE IMAGE:PATH: the regular file's extents, one per line,
# from 'cairn stat --json' (content id) and the store's databases:
#   START END data CHUNKID CODEC RAW_LEN LEN PACK OFFSET
#   START END hole
# A one-chunk file has no content record: its content id is the chunk id.
# Prints nothing for an empty or inlined file.
chunk_map() {
	local store=$1 spec=$2
	"$CAIRN" --store "$store" stat --json "$spec" >"$WORK/chunk_map.json" || return 1
	/usr/bin/python3 - "$store" "$WORK/chunk_map.json" <<'EOF'
import json, lmdb, struct, sys
st = json.load(open(sys.argv[2]))
if not st.get("content") or not st.get("size"):
    sys.exit(0)
cid = bytes.fromhex(st["content"])
env = lmdb.open(sys.argv[1], readonly=True, max_dbs=16, map_size=1 << 40)
chunks = env.open_db(b"chunks", create=False)
contents = env.open_db(b"contents", create=False)
with env.begin() as t:
    v = t.get(cid, db=contents)
    if v is not None:
        _, count, size = struct.unpack_from("<B3xIQ", v, 0)
        ext, start = [], 0
        for i in range(count):
            end, eid = struct.unpack_from("<Q16s", v, 16 + 24 * i)
            ext.append((start, end, eid))
            start = end
    else:
        ext = [(0, st["size"], cid)]
    for start, end, eid in ext:
        if eid == bytes(16):
            print(start, end, "hole")
            continue
        c = t.get(eid, db=chunks)
        if c is None:
            print(start, end, "data", eid.hex(), "missing")
            continue
        ver, codec, flags, _, dict_id, raw_len, ln, pack, off = struct.unpack("<BBBBIIIIQ", c)
        print(start, end, "data", eid.hex(), codec, raw_len, ln, pack, off)
env.close()
EOF
}
