#!/bin/bash
# json_names.sh - every --json listing is valid JSON whatever bytes a name
# holds, and loses none of them: names with 0xff, a newline, control
# characters and valid non-ASCII UTF-8, in ls, stat, diff and changes
# (through a writable mount), a symlink target and an xattr name, parsed
# back by python3's json and compared byte for byte with the source tree.
# The encoding (README, "JSON output"): "path" is the name when it is UTF-8,
# else the name with U+FFFD for each invalid byte plus "path_base64", its
# exact bytes.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
# shellcheck source=../lib/upper.sh
source "$TESTLIB/upper.sh"
upper_setup

SRC=$WORK/src
MNT=$WORK/mnt
# the names, as bytes (python3 makes them: bash cannot hold NUL-free 0xff
# names portably in a here-doc)
python3 - "$SRC" <<'PY'
import os, sys
src = os.fsencode(sys.argv[1])
os.makedirs(src)
names = [b"plain", b"ff\xff", b"new\nline", b"ctl\x01\x1b\x7f\ttab", b"caf\xc3\xa9",
         b"half\xc3", b"d\xfe\xff"]
for n in names[:-1]:
    with open(os.path.join(src, n), "wb") as f:
        f.write(n)
os.mkdir(os.path.join(src, names[-1]))
with open(os.path.join(src, names[-1], b"in\xffside"), "wb") as f:
    f.write(b"x")
os.symlink(b"to\xff\nthere", os.path.join(src, b"link\xfe"))
os.setxattr(os.path.join(src, b"plain"), b"user.x\xffy", b"v")
PY
upper_base "$SRC" v1

# check NAME: the JSON in $WORK/NAME.out parses, and its names are the tree's
check() {
	local name=$1 mode=$2
	python3 - "$WORK/$name.out" "$SRC" "$mode" <<'PY' || soft_fail "$name --json: names lost or invalid JSON"
import base64, json, os, sys
out, src, mode = sys.argv[1], os.fsencode(sys.argv[2]), sys.argv[3]
raw = open(out, "rb").read()
doc = json.loads(raw)  # strict: bytes must be UTF-8, as JSON requires
def name(o, key):
    if key + "_base64" in o:
        b = base64.b64decode(o[key + "_base64"], validate=True)
        assert o[key] == b.decode("utf-8", "replace"), (o[key], b)
        return b
    return o[key].encode("utf-8")
want = set()
for root, dirs, files in os.walk(src):
    for n in dirs + files:
        want.add(os.path.relpath(os.path.join(root, n), src))
if mode == "ls":
    got = {name(e, "path") for e in doc}
    assert got == want, (sorted(got), sorted(want))
    links = [e for e in doc if e["type"] == "l"]
    assert [name(e, "target") for e in links] == [b"to\xff\nthere"], links
    plain = [e for e in doc if name(e, "path") == b"plain"][0]
    assert base64.b64decode(plain["xattrs_base64"][0]) == b"user.x\xffy", plain
elif mode == "stat":
    assert name(doc, "path") == b"d\xfe\xff/in\xffside", doc
elif mode in ("diff", "changes"):
    got = {name(e, "path") for e in doc} - {b"/"}  # the root's own attributes may differ
    # diff shows an added directory once, changes everything below it too
    w = {b"/" + p for p in want if mode == "changes" or b"/" not in p}
    assert got == w, (sorted(got), sorted(w))
print("%s: %d bytes of JSON, names exact" % (out, len(raw)))
PY
}

say "ls -R and stat"
run_capture ls cairn_in "$STORE" ls -R --json v1
[ "$RC" -eq 0 ] || soft_fail "ls --json exited $RC"
check ls ls
run_capture stat cairn_in "$STORE" stat --json "v1:$(printf 'd\376\377/in\377side')"
[ "$RC" -eq 0 ] || soft_fail "stat --json exited $RC"
check stat stat

say "diff against an empty image"
mkdir -p "$WORK/empty"
touch -r "$SRC" "$WORK/empty"
import_ok "$STORE" "$WORK/empty" --tag empty
run_capture diff cairn_in "$STORE" diff empty v1 --json
[ "$RC" -eq 0 ] || soft_fail "diff --json exited $RC"
check diff diff

say "changes of an upper that made the same names"
upper_mount empty "$MNT" "$WORK/up"
(cd "$SRC" && tar -cf - .) | (cd "$MNT" && tar -xf -) || soft_fail "copy through the mount failed"
upper_umount "$MNT"
run_capture changes cairn_in "$STORE" changes "$WORK/up" --json
[ "$RC" -eq 0 ] || soft_fail "changes --json exited $RC"
check changes changes
run_capture changest cairn_in "$STORE" changes "$WORK/up"
[ "$(grep -vcx 'C /' "$WORK/changest.out")" -eq 9 ] || soft_fail "changes: one line per change (a newline in a name is escaped)"
# an error naming such a path is one line too (stderr is read line by line by scripts)
cairn_in "$STORE" cat "v1:new
gone" >/dev/null 2>"$WORK/cat.err" && soft_fail "cat of a missing name succeeded"
[ "$(wc -l <"$WORK/cat.err")" -eq 1 ] && grep -qF "'v1:new\ngone'" "$WORK/cat.err" ||
	soft_fail "cat's error for a name with a newline is not one escaped line: $(cat -A "$WORK/cat.err")"
finish
