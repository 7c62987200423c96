#!/bin/bash
# errors.sh - bad requests get one clear line on stderr ('cairn: ...'), a
# non-zero exit, nothing on stdout, and leave the store as it was.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
require_root
setup

STORE=$WORK/store
SRC=$WORK/src
mkdir -p "$SRC/sub"
printf 'hello\n' >"$SRC/sub/file"
printf 'data\n' >"$SRC/top"

say "a store with one image"
import_ok "$STORE" "$SRC" --tag v1
V1=$ID
info "v1 = $V1"
remember_store "$STORE"

unchanged() { store_unchanged "$STORE" "$1"; }

say "import of a missing directory"
expect_error "import missing dir" cairn_in "$STORE" import "$WORK/no-such-dir" --tag bad
unchanged "import of a missing directory"

say "import of a file that is neither a directory nor a tar"
head -c 10000 /dev/urandom >"$WORK/junk.bin"
expect_error "import junk file" cairn_in "$STORE" import "$WORK/junk.bin" --tag bad
printf 'just some text\n' >"$WORK/notes.txt"
expect_error "import text file" cairn_in "$STORE" import "$WORK/notes.txt" --tag bad
unchanged "import of a non-directory"

say "import of a vanished path"
ln -s "$WORK/gone" "$WORK/dangling"
expect_error "import dangling symlink" cairn_in "$STORE" import "$WORK/dangling" --tag bad
rm -rf "$WORK/was-here" && mkdir "$WORK/was-here" && rmdir "$WORK/was-here"
expect_error "import of a removed directory" cairn_in "$STORE" import "$WORK/was-here" --tag bad
unchanged "import of a vanished path"

say "bad tag requests"
expect_error "tag of a missing image" cairn_in "$STORE" tag no-such-image newtag
expect_error "tag with an empty name" cairn_in "$STORE" tag v1 ""
unchanged "bad tag"

say "cat, ls, stat of missing things"
expect_error "cat of a missing path" cairn_in "$STORE" cat v1:no/such/file
expect_error "cat of a directory" cairn_in "$STORE" cat v1:sub
expect_error "cat without a path" cairn_in "$STORE" cat v1
expect_error "ls of a missing image" cairn_in "$STORE" ls no-such-image
expect_error "ls of a missing path" cairn_in "$STORE" ls v1:no/such/dir
expect_error "stat of a missing path" cairn_in "$STORE" stat v1:nope
expect_error "export of a missing image" cairn_in "$STORE" export no-such-image -o "$WORK/x.tar"
[ ! -e "$WORK/x.tar" ] || soft_fail "a failed export left '$WORK/x.tar' behind"
expect_error "rmi of a missing image" cairn_in "$STORE" rmi no-such-image
expect_error "du of a missing image" cairn_in "$STORE" du no-such-image
unchanged "lookups of missing things"

say "bad id prefixes"
other=$( [ "${V1:0:1}" = 0 ] && echo 1 || echo 0 )
expect_error "prefix of 3 hex digits" cairn_in "$STORE" ls "${V1:0:3}"
expect_error "prefix that matches nothing" cairn_in "$STORE" ls "${other}${V1:1:5}"
expect_error "full-length id that is not there" cairn_in "$STORE" ls "${other}${V1:1}"
expect_error "id too long" cairn_in "$STORE" ls "${V1}00"
expect_error "not hex" cairn_in "$STORE" cat "zzzzzzzz:top"
run_capture ok4 cairn_in "$STORE" cat "${V1:0:4}:top"
[ "$RC" -eq 0 ] && [ "$(cat "$WORK/ok4.out")" = data ] ||
	soft_fail "a unique 4-digit prefix does not work (exit $RC)"
unchanged "bad prefixes"

say "unknown command and option"
expect_error "unknown command" cairn_in "$STORE" frobnicate
expect_error "unknown option" cairn_in "$STORE" images --frobnicate

say "a store on a read-only filesystem"
ROSTORE=$WORK/rostore
mkdir "$ROSTORE"
if mount --bind "$STORE" "$ROSTORE" 2>/dev/null; then
	track_mount "$ROSTORE"
	if mount -o remount,bind,ro "$ROSTORE" 2>/dev/null && ! touch "$ROSTORE/.probe" 2>/dev/null; then
		expect_error "import into a read-only store" cairn_in "$ROSTORE" import "$SRC" --tag ro
		expect_error "tag in a read-only store" cairn_in "$ROSTORE" tag v1 ro
	else
		info "(skipped: cannot remount read-only here)"
	fi
	umount "$ROSTORE"
else
	info "(skipped: cannot bind-mount here: not allowed in this container)"
fi
mkdir "$WORK/ro-empty"
if mount -t tmpfs -o ro,size=1m tmpfs "$WORK/ro-empty" 2>/dev/null; then
	track_mount "$WORK/ro-empty"
	expect_error "import into a new store on a read-only fs" \
		cairn_in "$WORK/ro-empty/store" import "$SRC"
	umount "$WORK/ro-empty"
else
	info "(skipped: cannot mount tmpfs here)"
fi
unchanged "read-only store"

say "a store directory that is a file"
: >"$WORK/store-is-a-file"
expect_error "store is a file" cairn_in "$WORK/store-is-a-file" images

say "the image still reads"
run_capture cat1 cairn_in "$STORE" cat v1:sub/file
[ "$RC" -eq 0 ] && [ "$(cat "$WORK/cat1.out")" = hello ] || soft_fail "v1:sub/file no longer reads"

finish
