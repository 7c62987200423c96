#!/bin/bash
# deep_trees.sh - one depth limit for every walker (CAIRN_DEPTH_MAX, 1024
# names in a path; store/format.h). A container's unprivileged user (uid
# 1000) nests 5000 directories through a writable mount: commit and changes
# fail with one line that keeps its reason (the path is shortened in the
# middle), never a crash. A tree exactly at the limit commits, and every
# walker handles it: ls -R, cat, export and its re-import, diff, du, fsck,
# gc, stacking a layer on it, and a read-only mount. A directory of 5000
# levels on the host and a tar of 1100 are refused by import the same way.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
# shellcheck source=../lib/upper.sh
source "$TESTLIB/upper.sh"
upper_setup
cairn_only "commit of deep trees"
require_cmd setpriv

LIMIT=1024
SRC=$WORK/src
MNT=$WORK/mnt
UP=$WORK/upper
as_user() { timeout -k 5 300 setpriv --reuid 1000 --regid 1000 --clear-groups -- "$@"; }

# nest DIR LEVELS [FILE]: LEVELS directories 'a' inside each other below DIR
# (relative steps: no path is ever longer than PATH_MAX), FILE at the bottom
nest() {
	python3 - "$@" <<'EOF'
import os, sys
os.chdir(sys.argv[1])
for _ in range(int(sys.argv[2])):
    os.mkdir("a")
    os.chdir("a")
if len(sys.argv) > 3:
    with open(sys.argv[3], "w") as f:
        f.write("at the bottom\n")
EOF
}

# the error contract, and the reason kept at the end of the line
too_deep() {
	local what=$1
	shift
	expect_error "$what" "$@"
	grep -q "levels deep (cairn's limit)\$" "$WORK/experr.err" ||
		soft_fail "$what: the message lost its reason: $(cut -c1-120 "$WORK/experr.err")..."
	[ "$(wc -c <"$WORK/experr.err")" -lt 1200 ] || soft_fail "$what: a message of $(wc -c <"$WORK/experr.err") bytes"
}

say "uid 1000 nests 5000 directories through a writable mount"
mkdir -p "$SRC/home/u"
chown 1000:1000 "$SRC/home/u"
import_ok "$STORE" "$SRC" --tag base
upper_mount base "$MNT" "$UP"
as_user mkdir "$MNT/home/u/deep" "$MNT/home/u/ok"
t0=$(date +%s%N)
as_user python3 - "$MNT/home/u/deep" <<'EOF'
import os, sys
os.chdir(sys.argv[1])
for _ in range(5000):
    os.mkdir("a")
    os.chdir("a")
EOF
info "$((($(date +%s%N) - t0) / 1000000)) ms"
# home/u/ok/a.../f: 3 + 1020 + 1 = 1024 names, the limit
as_user bash -c "$(declare -f nest); nest '$MNT/home/u/ok' $((LIMIT - 4)) f"
umount_patient "$STORE" "$MNT"

say "commit and changes of the 5000 levels: one line each, the reason kept"
too_deep "commit of 5000 levels" cairn_in "$STORE" commit "$UP" --tag deep
# changes prints as it walks: what it listed before the limit stays on stdout
run_capture changes cairn_in "$STORE" changes "$UP"
[ "$RC" -eq 1 ] && [ "$(wc -l <"$WORK/changes.err")" = 1 ] &&
	grep -q "levels deep (cairn's limit)\$" "$WORK/changes.err" ||
	{ show_file "$WORK/changes.err"; soft_fail "changes of 5000 levels: exit $RC, not one line with the reason"; }

say "at the limit: commit, and every walker"
rm -rf "$UP/tree/home/u/deep"
run_capture commit cairn_in "$STORE" commit "$UP" --tag atlimit
[ "$RC" -eq 0 ] || { show_file "$WORK/commit.err"; fail "commit at the limit exited $RC"; }
bottom=home/u/ok/$(printf 'a/%.0s' $(seq $((LIMIT - 4))))f
walker() {
	local what=$1
	shift
	run_capture walker "$@"
	if [ "$RC" -ne 0 ]; then
		show_file "$WORK/walker.err"
		soft_fail "$what exited $RC at the limit"
	else
		info "ok: $what"
	fi
}
walker "cat of the deepest file" cairn_in "$STORE" cat "atlimit:$bottom"
grep -qx "at the bottom" "$WORK/walker.out" || soft_fail "the deepest file reads '$(cat "$WORK/walker.out")'"
walker "ls -R" cairn_in "$STORE" ls -R atlimit
[ "$(grep -c . "$WORK/walker.out")" = "$LIMIT" ] ||
	soft_fail "ls -R listed $(grep -c . "$WORK/walker.out") entries"
walker "export" cairn_in "$STORE" export atlimit -o "$WORK/atlimit.tar"
walker "import of the export" cairn_in "$STORE" import "$WORK/atlimit.tar" --tag fromtar
walker "diff" cairn_in "$STORE" diff base atlimit --expand
walker "du" cairn_in "$STORE" du atlimit
mkdir -p "$WORK/layer/home/u/ok"
echo layer >"$WORK/layer/home/u/ok/l"
walker "a layer stacked on it" cairn_in "$STORE" import "$WORK/layer" --on atlimit --tag stacked
walker "diff of stacked trees" cairn_in "$STORE" diff atlimit stacked
walker "gc" cairn_in "$STORE" gc
walker "fsck" cairn_in "$STORE" fsck
mkdir -p "$WORK/ro"
mount_ok "$STORE" stacked "$WORK/ro" --ro
[ "$(timeout 60 cat "$WORK/ro/$bottom")" = "at the bottom" ] || soft_fail "the mount does not read the deepest file"
[ "$(cd "$WORK/ro" && timeout 120 find . | wc -l)" = $((LIMIT + 2)) ] || soft_fail "find through the mount"
umount_patient "$STORE" "$WORK/ro"

say "import refuses deeper trees the same way"
mkdir -p "$WORK/hostdeep"
nest "$WORK/hostdeep" 5000 f
too_deep "import of a directory 5000 levels deep" cairn_in "$STORE" import "$WORK/hostdeep"
python3 - "$WORK/deep.tar" <<'EOF'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    data = b"x\n"
    i = tarfile.TarInfo("a/" * 1100 + "f")
    i.size = len(data)
    t.addfile(i, io.BytesIO(data))
EOF
too_deep "import of a tar 1101 levels deep" cairn_in "$STORE" import "$WORK/deep.tar"
run_capture fsck cairn_in "$STORE" fsck
[ "$RC" -eq 0 ] || soft_fail "fsck after the refused imports: $RC"

say "a long path (600 levels, 1.2 KB) does not hide why an import failed"
mkdir -p "$WORK/long"
nest "$WORK/long" 600 secret
find "$WORK/long" -name secret -exec chmod 000 {} +
mkdir "$WORK/ustore"
chown -R 1000:1000 "$WORK/long" "$WORK/ustore"
expect_error "import of an unreadable file 600 levels down, as uid 1000" \
	as_user "$CAIRN" --store "$WORK/ustore" import "$WORK/long"
grep -q "/a/secret': Permission denied\$" "$WORK/experr.err" ||
	soft_fail "the reason is not at the end: ...$(tail -c 100 "$WORK/experr.err")"
finish
