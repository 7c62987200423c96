#!/bin/bash
# diff.sh - cairn diff between a generated tree and a copy with one change
# of each kind: file bytes, chmod (setuid too), chown, an xattr, an ACL, a
# file replaced by a directory, a symlink's target, a device number, an
# mtime, a hard link added, a subtree removed, files and a directory added,
# a name with a newline. Checks the exact lines (both directions), --json,
# --expand, --ignore, --exit-code, names (tag, id prefix, PLATFORM@GEN),
# that an image against itself or a faithful copy is empty, and the errors.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
require_root
setup

STORE=$WORK/store
A=$WORK/a
B=$WORK/b

say "a generated tree and a copy with one change of each kind"
bash "$TREEGEN" --no-sparse "$A" >/dev/null
cp -a "$A" "$B"
nl=$(printf 'new\nline')
(
	cd "$B"
	printf 'changed\n' >files/tiny
	touch -r "$A/files/tiny" files/tiny
	chmod 600 files/text
	chmod u+s modes/f0755
	chown 5:6 files/no-eol
	touch -h -d '2001-02-03 04:05:06.7 UTC' files/random-odd
	setfattr -n user.new -v 1 xattr/file
	setfacl -m u:99:r xattr/acl-file
	# a file becomes a directory with the same mode, owner and mtime
	rm files/one-byte
	mkdir files/one-byte
	printf 'inside\n' >files/one-byte/inner
	chmod 0644 files/one-byte
	touch -r "$A/files/one-byte" files/one-byte
	# a symlink's target, all else kept
	ln -sfn elsewhere links/relative
	chown -h 4321:8765 links/relative
	touch -h -r "$A/links/relative" links/relative
	# a device number, all else kept
	rm dev/tty0
	mknod dev/tty0 c 4 1
	chown 2000:3000 dev/tty0
	chmod 0620 dev/tty0
	touch -r "$A/dev/tty0" dev/tty0
	# a hard link to an unlinked file
	ln files/same-a dirs/newlink
	rm -rf dirs/a
	printf 'new\n' >newfile
	mkdir -p newdir/with
	printf 'deeper\n' >newdir/with/file
	printf 'C' >"names/$nl"
	touch -r "$A/names/$nl" "names/$nl"
)
# directories keep their mtimes, so each change above is the only one on its path
python3 - "$A" "$B" <<'EOF'
import os, stat, sys
a, b = sys.argv[1].encode(), sys.argv[2].encode()
for dirpath, dirnames, _ in os.walk(b):
    for p in [dirpath] + [os.path.join(dirpath, d) for d in dirnames]:
        rel = os.path.relpath(p, b)
        try:
            st = os.lstat(os.path.join(a, rel))
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(os.lstat(p).st_mode):
            os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
EOF
import_ok "$STORE" "$A" --tag a
IDA=$ID
import_ok "$STORE" "$B" --tag b
IDB=$ID
cp -a "$A" "$WORK/a2"
import_ok "$STORE" "$WORK/a2" --tag a2
[ "$ID" = "$IDA" ] || soft_fail "an unchanged copy imported to another image"
remember_store "$STORE"

say "diff a b: one line per change, in tree order"
cat >"$WORK/want" <<EOF
M /dev/tty0 (device)
D /dirs/a
A /dirs/newlink
M /files/no-eol (owner)
M /files/one-byte (type)
M /files/random-odd (mtime)
M /files/same-a (links)
M /files/text (mode)
M /files/tiny (content)
M /links/relative (target)
M /modes/f0755 (mode)
M /names/new\\nline (content)
A /newdir
A /newfile
M /xattr/acl-file (xattrs)
M /xattr/file (xattrs)
EOF
run_capture ab cairn_in "$STORE" diff a b
[ "$RC" -eq 0 ] || fail "diff a b exited $RC"
[ -s "$WORK/ab.err" ] && soft_fail "diff wrote to stderr"
if diff -u "$WORK/want" "$WORK/ab.out"; then
	info "ok: $(wc -l <"$WORK/ab.out") lines as expected"
else
	soft_fail "diff a b printed other lines"
fi

say "diff b a: the same paths, added and removed swapped"
sed -e 's/^A /X /' -e 's/^D /A /' -e 's/^X /D /' "$WORK/want" >"$WORK/want.back"
run_capture ba cairn_in "$STORE" diff b a
[ "$RC" -eq 0 ] || soft_fail "diff b a exited $RC"
diff -u "$WORK/want.back" "$WORK/ba.out" || soft_fail "diff b a printed other lines"

say "names: id prefix, full id and PLATFORM@GEN name the same images"
cairn_in "$STORE" upgrade plat a >/dev/null
cairn_in "$STORE" upgrade plat b >/dev/null
for pair in "${IDA:0:8} $IDB" "plat@1 plat" "$IDA plat@2"; do
	# shellcheck disable=SC2086 # two words
	run_capture names cairn_in "$STORE" diff $pair
	cmp -s "$WORK/want" "$WORK/names.out" || soft_fail "diff $pair differs from diff a b"
done

say "an image against itself, or against a faithful copy, is empty"
for pair in "a a" "a a2" "b $IDB"; do
	# shellcheck disable=SC2086 # two words
	run_capture same cairn_in "$STORE" diff --stats $pair
	[ "$RC" -eq 0 ] && [ ! -s "$WORK/same.out" ] || soft_fail "diff $pair is not empty (rc $RC)"
	grep -q '^cairn: diff read 0 nodes, visited 0 entries, 0 changes in [0-9]* us$' "$WORK/same.err" ||
		soft_fail "diff --stats $pair should read nothing: $(cat "$WORK/same.err")"
done

say "--stats: only the changed paths' directories are read"
run_capture stats cairn_in "$STORE" diff --stats a b
read -r nodes entries < <(sed -n 's/^cairn: diff read \([0-9]*\) nodes, visited \([0-9]*\) entries, 16 changes in [0-9]* us$/\1 \2/p' "$WORK/stats.err")
total=$(find "$A" | wc -l)
info "read ${nodes:-?} nodes, visited ${entries:-?} entries of a $total-entry tree"
[ -n "$nodes" ] && [ "$nodes" -lt $((total / 4)) ] || soft_fail "diff a b read too much: $(cat "$WORK/stats.err")"
cmp -s "$WORK/want" "$WORK/stats.out" || soft_fail "--stats changed the listing"

say "--json: the same changes as objects"
run_capture json cairn_in "$STORE" diff a b --json
[ "$RC" -eq 0 ] || soft_fail "diff --json exited $RC"
python3 - "$WORK/json.out" "$WORK/want" <<'EOF' || soft_fail "diff --json is wrong"
import json, sys
j = json.load(open(sys.argv[1]))
want = open(sys.argv[2]).read().splitlines()
assert len(j) == len(want), (len(j), len(want))
letter = {"added": "A", "removed": "D", "modified": "M"}
for o, line in zip(j, want):
    assert set(o) <= {"path", "change", "what", "type", "old_type"}, o
    path = o["path"].replace("\n", "\\n")
    text = "%s %s" % (letter[o["change"]], path)
    if o["what"]:
        text += " (%s)" % ", ".join(o["what"])
    assert text == line, (text, line)
by = {o["path"]: o for o in j}
assert by["/files/one-byte"]["type"] == "d" and by["/files/one-byte"]["old_type"] == "-"
assert by["/dirs/a"] == {"path": "/dirs/a", "change": "removed", "what": [], "type": "d"}
assert by["/names/new\nline"]["what"] == ["content"]
assert by["/newfile"]["type"] == "-" and by["/links/relative"]["type"] == "l"
assert by["/dev/tty0"]["type"] == "c"
EOF
run_capture jsame cairn_in "$STORE" diff a a --json
[ "$(json_get "$WORK/jsame.out" 'len(j)')" = 0 ] || soft_fail "diff a a --json is not []"

say "--expand lists what is below added and removed directories"
run_capture expand cairn_in "$STORE" diff a b --expand
removed=$(cd "$A" && find dirs/a -mindepth 1 | wc -l)
grep -c '^D /dirs/a/' "$WORK/expand.out" >"$WORK/n" || true
[ "$(cat "$WORK/n")" -eq "$removed" ] || soft_fail "--expand listed $(cat "$WORK/n") of the $removed entries below /dirs/a"
for line in 'A /files/one-byte/inner' 'A /newdir/with' 'A /newdir/with/file' \
	'D /dirs/a/b/c/d/e/f/g/h/deep.txt'; do
	grep -qxF "$line" "$WORK/expand.out" || soft_fail "--expand is missing '$line'"
done
[ "$(wc -l <"$WORK/expand.out")" -eq $(($(wc -l <"$WORK/want") + removed + 3)) ] ||
	soft_fail "--expand printed $(wc -l <"$WORK/expand.out") lines"
grep -vE '^(D /dirs/a/|A /files/one-byte/|A /newdir/)' "$WORK/expand.out" | cmp -s - "$WORK/want" ||
	soft_fail "--expand changed the other lines"

say "--ignore leaves attributes out, and paths that differ only in them"
run_capture ignore cairn_in "$STORE" diff a b --ignore mode,owner
grep -vE '^M /(files/text|modes/f0755|files/no-eol) ' "$WORK/want" >"$WORK/want.ignore"
diff -u "$WORK/want.ignore" "$WORK/ignore.out" || soft_fail "diff --ignore mode,owner printed other lines"
run_capture ignore2 cairn_in "$STORE" diff a b --ignore type --json
[ "$(json_get "$WORK/ignore2.out" '[o["what"] for o in j if o["path"] == "/files/one-byte"]')" = "[]" ] ||
	soft_fail "--ignore type still lists /files/one-byte"
expect_error "--ignore with an unknown name" cairn_in "$STORE" diff a b --ignore mtime,colour

say "--exit-code: 1 when they differ, 0 when not, 2 on an error"
run_capture x1 cairn_in "$STORE" diff --exit-code a b
[ "$RC" -eq 1 ] || soft_fail "diff --exit-code a b exited $RC"
run_capture x0 cairn_in "$STORE" diff --exit-code a a2
[ "$RC" -eq 0 ] || soft_fail "diff --exit-code a a2 exited $RC"
run_capture x2 cairn_in "$STORE" diff --exit-code a nope
[ "$RC" -eq 2 ] || soft_fail "diff --exit-code a nope exited $RC"

say "errors: one line, nothing on stdout, the store unchanged"
expect_error "an unknown first image" cairn_in "$STORE" diff nope b
grep -q "'nope'" "$WORK/experr.err" || soft_fail "the error does not name 'nope'"
expect_error "an unknown second image" cairn_in "$STORE" diff a nope
expect_error "an ambiguous or short prefix" cairn_in "$STORE" diff a 12
expect_error "a path instead of an image" cairn_in "$STORE" diff a:/files b
expect_error "no image" cairn_in "$STORE" diff
expect_error "one image" cairn_in "$STORE" diff a
expect_error "three images" cairn_in "$STORE" diff a b a2
expect_error "an unknown option" cairn_in "$STORE" diff a b --frobnicate
expect_error "a store that does not exist" cairn_in "$WORK/nostore" diff a b
[ ! -e "$WORK/nostore" ] || soft_fail "diff created a store"
run_capture help cairn_in "$STORE" diff --help
[ "$RC" -eq 0 ] && grep -q -- '--expand' "$WORK/help.out" || soft_fail "diff --help"
store_unchanged "$STORE" "after diffs and errors"

finish
