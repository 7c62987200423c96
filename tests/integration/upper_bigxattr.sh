#!/bin/bash
# upper_bigxattr.sh - files with many or large xattrs (issue 11 item 12).
# What no Linux filesystem can hold is refused at import with one clear
# line: more than 64 KiB of xattr names on one file (listxattr could never
# return them: getfattr failed with E2BIG) and a value over 64 KiB. What
# Linux can hold but the upper's filesystem may not (ext4 keeps a file's
# xattrs in one block: 3 values of 30,000 bytes do not fit) either copies up
# whole, or the copy-up fails with an error, nothing left in the upper (no
# partial file, nothing in work/), the image's file unchanged, and one line
# in the daemon's log saying why.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
# shellcheck source=../lib/upper.sh
source "$TESTLIB/upper.sh"
cairn_only "import limits and the daemon's log"
upper_setup

MNT=$WORK/mnt
UP=$WORK/upper
python3 - "$WORK" <<'EOF'
import io, sys, tarfile
work = sys.argv[1]

def add(tar, name, data=b"", xattrs=None, dir=False, uid=0):
    ti = tarfile.TarInfo(name)
    ti.uid = ti.gid = uid
    ti.mode = 0o755 if dir else 0o644
    ti.mtime = 1700000000
    if dir:
        ti.type = tarfile.DIRTYPE
    else:
        ti.size = len(data)
    ti.pax_headers = {"SCHILY.xattr." + k: v for k, v in (xattrs or {}).items()}
    tar.addfile(ti, None if dir else io.BytesIO(data))

big = {"user.big%d" % i: chr(ord("a") + i) * 30000 for i in range(3)}
with tarfile.open(work + "/fits-linux.tar", "w", format=tarfile.PAX_FORMAT) as t:
    add(t, "big", b"image data\n", big)
    add(t, "bigdir", xattrs=big, dir=True)
    add(t, "bigdir/f", b"in bigdir\n")
    add(t, "small", b"small\n", {"user.one": "1"})
    add(t, "tenant", b"a container user's file\n", big, uid=1000)
with tarfile.open(work + "/many-names.tar", "w", format=tarfile.PAX_FORMAT) as t:
    add(t, "ok", b"ok\n")
    add(t, "many", b"many\n", {"user.x%05d" % i: "" for i in range(20000)})
with tarfile.open(work + "/huge-value.tar", "w", format=tarfile.PAX_FORMAT) as t:
    add(t, "huge", b"huge\n", {"user.huge": "h" * 100000})
EOF

say "what no Linux filesystem can hold is refused at import"
expect_error "import of a file with 20000 xattrs (240 KB of names)" cairn_in "$STORE" import "$WORK/many-names.tar" --tag many
grep -q 'xattr names' "$WORK/experr.err" || soft_fail "the refusal does not say it is about xattr names"
expect_error "import of a 100000-byte xattr value" cairn_in "$STORE" import "$WORK/huge-value.tar" --tag huge
cairn_in "$STORE" images --json | grep -q '"many"' && soft_fail "an image with 20000 xattrs on one file was published"

say "what Linux can hold imports and reads"
import_ok "$STORE" "$WORK/fits-linux.tar" --tag base
mkdir -p "$MNT"
mount_fg "$STORE" base "$MNT" --upper "$UP"
LOG=$WORK/mount-fg.log
for i in 0 1 2; do
	[ "$(getfattr --absolute-names --only-values -n "user.big$i" "$MNT/big" | wc -c)" = 30000 ] ||
		soft_fail "user.big$i of big does not read back whole"
done

say "copy-up: all of it, or nothing and one clear line"
upper_has() { [ -e "$UP/tree/$1" ] || [ -L "$UP/tree/$1" ]; }
work_empty() { [ -z "$(ls -A "$UP/work")" ]; }
check_whole_or_nothing() {
	local what=$1 path=$2 rc=$3 mode=$4
	if [ "$rc" -eq 0 ]; then
		info "$what: copied up (the upper's filesystem holds the xattrs)"
		[ "$(getfattr --absolute-names --only-values -n user.big2 "$MNT/$path" | wc -c)" = 30000 ] ||
			soft_fail "$what: copied up without its xattrs"
		return
	fi
	info "$what: refused ($rc)"
	upper_has "$path" && soft_fail "$what failed but left $path in the upper"
	work_empty || soft_fail "$what failed but left $(ls -A "$UP/work" | head -3 | tr '\n' ' ')in work/"
	[ "$(stat -c %a "$MNT/$path")" = "$mode" ] || soft_fail "$what failed but changed the mode"
	[ "$(getfattr --absolute-names --only-values -n user.big1 "$MNT/$path" | wc -c)" = 30000 ] ||
		soft_fail "$what failed and the image's xattrs no longer read"
	grep -q "cannot copy up '$(basename "$path")'.*xattrs.*do not fit on the upper's filesystem" "$LOG" ||
		soft_fail "$what failed without a line in the daemon's log saying why"
}
set +e
chmod 600 "$MNT/big" 2>"$WORK/chmod.err"
check_whole_or_nothing "chmod big" big $? 644
printf 'more\n' >>"$MNT/big" 2>/dev/null
rc=$?
check_whole_or_nothing "append to big" big "$rc" 644
[ "$rc" -ne 0 ] || [ "$(cat "$MNT/big")" = "$(printf 'image data\nmore')" ] || soft_fail "the append lost bytes"
[ "$rc" -eq 0 ] || [ "$(cat "$MNT/big")" = "image data" ] || soft_fail "the failed append changed big's bytes"
touch "$MNT/bigdir/new" 2>/dev/null
check_whole_or_nothing "a new file in bigdir" bigdir $? 755
set -e
[ "$(grep -c 'cannot copy up' "$LOG")" -le 3 ] || soft_fail "more than one log line per failed copy-up"
if ! chmod 600 "$MNT/big" 2>/dev/null; then
	say "a container's user retrying a failing copy-up cannot flood the daemon's log"
	chmod 0711 "$WORK"
	before=$(grep -c 'cannot copy up' "$LOG")
	t0=$SECONDS
	# uid 1000 chmods its own file, whose xattrs the upper cannot hold, 200 times
	setpriv --reuid=1000 --regid=1000 --clear-groups python3 - "$MNT/tenant" <<'PY' ||
import os, sys
failed = 0
for _ in range(200):
    try:
        os.chmod(sys.argv[1], 0o600)
    except OSError:
        failed += 1
sys.exit(0 if failed == 200 else 1)
PY
		soft_fail "uid 1000's chmods of tenant did not all fail"
	sleep 1.5
	chmod 600 "$MNT/big" 2>/dev/null || true
	n=$(($(grep -c 'cannot copy up' "$LOG") - before))
	# 20 at once, then one a second for as long as the loop took (long on a loaded machine)
	most=$((20 + SECONDS - t0 + 2))
	info "201 failed copy-ups in $((SECONDS - t0)) s: $n log lines (at most $most)"
	[ "$n" -le "$most" ] ||
		soft_fail "201 failed copy-ups logged $n lines (a mount logs 20 at once, then one a second)"
	grep -q "lines before this one not logged" "$LOG" || soft_fail "the lines not logged are not said"
fi
chmod 600 "$MNT/small" || soft_fail "chmod of a file with one small xattr failed"
[ "$(getfattr --absolute-names --only-values -n user.one "$MNT/small")" = 1 ] || soft_fail "small lost its xattr"
show_file "$LOG" 5
umount_ok "$STORE" "$MNT"
finish
