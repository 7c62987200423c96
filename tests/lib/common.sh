# common.sh - sourced by the integration tests (bash).
#
# Gives each test a private work directory, removed on exit (also on
# failure; CAIRN_TEST_KEEP=1 keeps it for a post-mortem), helpers to run
# cairn against a store, to check its error contract, and to compare trees
# through treedump.py.
#
# Exit codes: 0 pass, 1 fail, 77 skip (a real prerequisite is missing).

set -euo pipefail
export LC_ALL=C
# Debian's tools first: python3-lmdb is installed for /usr/bin/python3, not
# for a python3 that a version manager may put earlier in PATH
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

TESTLIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TREEGEN=$TESTLIB/treegen.sh
TREEDUMP=$TESTLIB/treedump.py
BULKGEN=$TESTLIB/bulkgen.py
CMPSTREAM=$TESTLIB/cmpstream.py
: "${CAIRN:=$TESTLIB/../../build/tools/cairn}"
TEST_NAME=$(basename "$0" .sh)
FAILURES=0
WORK=""
_MOUNTS=()
_PIDS=()
_CLEANUPS=()

say() { printf '== %s\n' "$*"; }
info() { printf '   %s\n' "$*"; }
skip() { printf 'SKIP %s: %s\n' "$TEST_NAME" "$*"; exit 77; }

# fail MSG: stop the test now.
fail() {
	printf 'FAIL %s: %s\n' "$TEST_NAME" "$*" >&2
	exit 1
}

# soft_fail MSG: record a failure, keep going (the test fails at finish).
soft_fail() {
	printf 'FAIL %s: %s\n' "$TEST_NAME" "$*" >&2
	FAILURES=$((FAILURES + 1))
}

finish() {
	if [ "$FAILURES" -gt 0 ]; then
		printf 'FAIL %s: %d check(s) failed\n' "$TEST_NAME" "$FAILURES" >&2
		exit 1
	fi
	printf 'PASS %s\n' "$TEST_NAME"
	exit 0
}

_cleanup() {
	local rc=$?
	set +e
	local p m
	for p in "${_PIDS[@]}"; do
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	for ((i = ${#_MOUNTS[@]} - 1; i >= 0; i--)); do
		m=${_MOUNTS[i]}
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	for ((i = ${#_CLEANUPS[@]} - 1; i >= 0; i--)); do
		eval "${_CLEANUPS[i]}"
	done
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		if [ "${CAIRN_TEST_KEEP:-0}" = 1 ]; then
			printf '   (kept %s)\n' "$WORK" >&2
		else
			rm -rf "$WORK"
		fi
	fi
	exit "$rc"
}

# track_mount DIR / track_pid PID: undone by the exit trap.
track_mount() { _MOUNTS+=("$1"); }
track_pid() { _PIDS+=("$1"); }
# track_cleanup 'SHELL COMMAND': run by the exit trap, after the mounts are
# gone and before WORK is removed (last registered, first run).
track_cleanup() { _CLEANUPS+=("$1"); }

require_root() {
	[ "$(id -u)" -eq 0 ] || skip "needs root (devices, ownership, trusted.* xattrs)"
}

require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "'$c' is not installed (scripts/install-deps.sh --test)"
	done
}

# setup: checks prerequisites, makes $WORK, installs the trap.
setup() {
	# one stream: meson shows stdout and stderr apart, which loses the order
	exec 2>&1
	[ -x "$CAIRN" ] || fail "cairn binary not found at '$CAIRN' (set CAIRN)"
	require_cmd python3 bsdtar setfattr getfattr setfacl setcap
	python3 -c 'import lmdb' 2>/dev/null || skip "python3-lmdb is not installed"
	local base=${CAIRN_TEST_TMPDIR:-${TMPDIR:-/var/tmp}}
	WORK=$(mktemp -d "$base/cairn-$TEST_NAME.XXXXXX")
	trap _cleanup EXIT
	trap 'exit 130' INT TERM
	# the tree generator needs user and trusted xattrs and ACLs where WORK is
	local probe=$WORK/.probe
	: >"$probe"
	setfattr -n user.probe -v 1 "$probe" 2>/dev/null &&
		setfattr -n trusted.probe -v 1 "$probe" 2>/dev/null &&
		setfacl -m u:1234:r "$probe" 2>/dev/null ||
		skip "$base does not support user/trusted xattrs and ACLs (set CAIRN_TEST_TMPDIR)"
	rm -f "$probe"
	info "cairn: $CAIRN"
	info "work:  $WORK"
}

# cairn_in STORE ARGS...: run cairn on STORE.
cairn_in() {
	local store=$1
	shift
	"$CAIRN" --store "$store" "$@"
}

# run_capture NAME CMD...: runs CMD with stdout in $WORK/NAME.out, stderr in
# $WORK/NAME.err; sets RC. Never fails by itself.
run_capture() {
	local name=$1
	shift
	set +e
	"$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
	RC=$?
	set -e
}

show_file() {
	local f=$1 n=${2:-20}
	[ -s "$f" ] || { info "($(basename "$f") is empty)"; return; }
	head -n "$n" "$f" | cut -c1-300 | sed 's/^/   | /'
	local total
	total=$(wc -l <"$f")
	[ "$total" -le "$n" ] || info "... ($total lines)"
}

# import_ok STORE SRC [ARGS...]: imports, checks the output contract, and
# sets ID to the new image id. Fails the test when the import fails.
import_ok() {
	local store=$1 src=$2
	shift 2
	run_capture import cairn_in "$store" import "$src" "$@"
	if [ "$RC" -ne 0 ]; then
		show_file "$WORK/import.err" >&2
		fail "import of '$src' exited $RC"
	fi
	local lines id
	lines=$(wc -l <"$WORK/import.out")
	id=$(head -n 1 "$WORK/import.out")
	if [ "$lines" -ne 1 ] || ! [[ "$id" =~ ^[0-9a-f]{32}$ ]]; then
		show_file "$WORK/import.out" >&2
		fail "import of '$src' must print one line with a 32-hex-digit id"
	fi
	if [ -s "$WORK/import.err" ]; then
		show_file "$WORK/import.err" >&2
		soft_fail "import of '$src' wrote to stderr without a terminal"
	fi
	ID=$id
}

# expect_error WHAT CMD...: CMD must exit non-zero (not by a signal), print
# nothing on stdout and exactly one line starting 'cairn: ' on stderr.
expect_error() {
	local what=$1
	shift
	run_capture experr "$@"
	local ok=1
	if [ "$RC" -eq 0 ]; then
		soft_fail "$what: exited 0, expected an error"
		ok=0
	elif [ "$RC" -ge 126 ]; then
		soft_fail "$what: exited $RC (crash or signal?)"
		ok=0
	fi
	local nl
	nl=$(wc -l <"$WORK/experr.err")
	if [ "$nl" -ne 1 ] || ! head -n 1 "$WORK/experr.err" | grep -q '^cairn: '; then
		soft_fail "$what: stderr must be one line starting 'cairn: ' (got $nl lines)"
		ok=0
	fi
	if [ -s "$WORK/experr.out" ]; then
		soft_fail "$what: printed on stdout"
		show_file "$WORK/experr.out" >&2
		ok=0
	fi
	if [ "$ok" = 1 ]; then
		info "ok ($RC): $(head -n 1 "$WORK/experr.err" | cut -c1-200)"
	else
		info "command: $*"
		show_file "$WORK/experr.err" >&2
	fi
}

# dump DIR OUT [treedump options]
dump() {
	local dir=$1 out=$2
	shift 2
	python3 "$TREEDUMP" "$@" "$dir" >"$out"
}

# same_dump A B WHAT: diff two dumps; soft failure with the diff.
same_dump() {
	local a=$1 b=$2 what=$3
	if diff -u "$a" "$b" >"$WORK/dump.diff"; then
		info "ok: $what ($(wc -l <"$a") entries identical)"
		return 0
	fi
	soft_fail "$what: trees differ"
	head -n 60 "$WORK/dump.diff" | cut -c1-400 >&2
	return 1
}

# export_extract STORE IMAGE DIR: cairn export | bsdtar -x into a fresh DIR,
# restoring everything tar can carry (owners by number, modes incl.
# setuid, xattrs, ACLs, file flags; written zeros become holes with -S).
# A failure is recorded (soft_fail) and returns 1.
export_extract() {
	local store=$1 image=$2 dir=$3 tar=$WORK/export-$$.tar
	rm -rf "$dir"
	mkdir -p "$dir"
	run_capture export cairn_in "$store" export "$image" -o "$tar"
	if [ "$RC" -ne 0 ]; then
		show_file "$WORK/export.err" >&2
		soft_fail "export of '$image' exited $RC"
		return 1
	fi
	if ! bsdtar -x -p -S --acls --xattrs --fflags --numeric-owner --same-owner \
		-f "$tar" -C "$dir" 2>"$WORK/bsdtar.err"; then
		show_file "$WORK/bsdtar.err" >&2
		soft_fail "bsdtar could not extract the export of '$image'"
		return 1
	fi
	rm -f "$tar"
}

# json_get FILE EXPR: evaluates a python expression on j = json.load(FILE).
json_get() {
	python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
print(eval(sys.argv[2]))' "$1" "$2"
}

# remember_store STORE: records the store's images, for store_unchanged.
remember_store() {
	run_capture images0 cairn_in "$1" images --json
	[ "$RC" -eq 0 ] || fail "images --json exited $RC"
	cp "$WORK/images0.out" "$WORK/images.before"
}

# store_unchanged STORE WHAT: the images are those remember_store saw and fsck is clean.
store_unchanged() {
	local store=$1 what=$2
	run_capture images1 cairn_in "$store" images --json
	if [ "$RC" -ne 0 ] || ! cmp -s "$WORK/images.before" "$WORK/images1.out"; then
		soft_fail "$what: the images changed"
		diff "$WORK/images.before" "$WORK/images1.out" | head -n 20 >&2 || true
	fi
	run_capture fsck cairn_in "$store" fsck
	if [ "$RC" -ne 0 ]; then
		soft_fail "$what: fsck exited $RC"
		show_file "$WORK/fsck.out" >&2
		show_file "$WORK/fsck.err" >&2
	fi
}
