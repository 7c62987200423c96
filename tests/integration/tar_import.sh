#!/bin/bash
# tar_import.sh - `cairn import FILE.tar|.tar.gz|.tar.zst|-`:
#  1. round trips: a tree imported from a directory, exported, and imported
#     again as a tar gives the same tree (extracted and compared with
#     treedump.py, and by `ls -R -l`); the same tar gives the same id
#     plain, gzip'ed, zstd'ed and on stdin; a GNU tar (--sparse --xattrs
#     --acls) of the tree imports to the tree;
#  2. hostile input: every archive of the corpus (tests/lib/mkhostile.py)
#     fails with one line on stderr and leaves the store as it was; the odd
#     but valid ones (ok-*) import to what tar semantics say.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
require_root
setup
require_cmd gzip zstd tar

SRC=$WORK/src
STORE=$WORK/store
STORE2=$WORK/store2
MKHOSTILE=$TESTLIB/mkhostile.py

say "generate the source tree"
bash "$TREEGEN" "$SRC"
# tar has no sockets and no attributes for the root itself
dump "$SRC" "$WORK/src.dump" --ignore-root --exclude-type sock
info "$(wc -l <"$WORK/src.dump") entries"

say "directory -> image A -> tar -> image B -> tar"
import_ok "$STORE" "$SRC" --tag a
A=$ID
run_capture exp_a cairn_in "$STORE" export a -o "$WORK/a.tar"
[ "$RC" -eq 0 ] || fail "export of A exited $RC: $(head -c 300 "$WORK/exp_a.err")"
import_ok "$STORE" "$WORK/a.tar" --tag b
B=$ID
info "A $A, B $B"
run_capture exp_b cairn_in "$STORE" export b -o "$WORK/b.tar"
[ "$RC" -eq 0 ] || fail "export of B exited $RC: $(head -c 300 "$WORK/exp_b.err")"
if cmp -s "$WORK/a.tar" "$WORK/b.tar"; then
	info "ok: the exports of A and B are byte-identical"
else
	soft_fail "the exports of A and B differ"
fi

say "extract both exports and compare"
if export_extract "$STORE" a "$WORK/out-a" && export_extract "$STORE" b "$WORK/out-b"; then
	dump "$WORK/out-a" "$WORK/out-a.dump" --ignore-root --exclude-type sock
	dump "$WORK/out-b" "$WORK/out-b.dump" --ignore-root --exclude-type sock
	same_dump "$WORK/out-a.dump" "$WORK/out-b.dump" "export of A vs export of B" || true
	same_dump "$WORK/src.dump" "$WORK/out-b.dump" "source vs export of B" || true
fi
rm -rf "$WORK/out-a" "$WORK/out-b"

say "ls -R -l: A (without its socket) and B list the same"
run_capture ls_a cairn_in "$STORE" ls -R -l a
[ "$RC" -eq 0 ] || soft_fail "ls -R -l a exited $RC"
run_capture ls_b cairn_in "$STORE" ls -R -l b
[ "$RC" -eq 0 ] || soft_fail "ls -R -l b exited $RC"
grep -v ' dev/socket$' "$WORK/ls_a.out" >"$WORK/ls_a.nosock" || true
if diff -u "$WORK/ls_a.nosock" "$WORK/ls_b.out" >"$WORK/ls.diff"; then
	info "ok: $(wc -l <"$WORK/ls_b.out") lines identical"
else
	soft_fail "ls -R -l of A and B differ"
	head -n 40 "$WORK/ls.diff" >&2
fi

say "the image record says what B is"
run_capture imagesj cairn_in "$STORE" images --json
python3 - "$WORK/imagesj.out" "$A" "$B" <<'EOF' || soft_fail "images --json for B"
import json, sys
j = {im["id"]: im for im in json.load(open(sys.argv[1]))}
a, b = j[sys.argv[2]], j[sys.argv[3]]
# B has no socket; the rest is the same
assert b["logical_size"] == a["logical_size"], (b["logical_size"], a["logical_size"])
assert b["nodes"] == a["nodes"] - 1, (b["nodes"], a["nodes"])
print("   ok: logical_size=%d, nodes=%d (A has %d: the socket)" % (
    b["logical_size"], b["nodes"], a["nodes"]))
EOF

say "the same tar gives the same id: again, gzip, zstd, stdin, another store"
import_ok "$STORE" "$WORK/b.tar"
[ "$ID" = "$B" ] || soft_fail "b.tar imported again: $ID != $B"
import_ok "$STORE" "$WORK/b.tar"
[ "$ID" = "$B" ] || soft_fail "b.tar imported a third time: $ID != $B"
gzip -n -c "$WORK/b.tar" >"$WORK/b.tar.gz"
import_ok "$STORE" "$WORK/b.tar.gz"
[ "$ID" = "$B" ] || soft_fail "b.tar.gz: $ID != $B"
zstd -q -c "$WORK/b.tar" >"$WORK/b.tar.zst"
import_ok "$STORE" "$WORK/b.tar.zst"
[ "$ID" = "$B" ] || soft_fail "b.tar.zst: $ID != $B"
set +e
cairn_in "$STORE" import - <"$WORK/b.tar.zst" >"$WORK/stdin.out" 2>"$WORK/stdin.err"
rc=$?
set -e
if [ "$rc" -ne 0 ]; then
	soft_fail "import - (zstd on stdin) exited $rc"
	show_file "$WORK/stdin.err" >&2
elif [ "$(cat "$WORK/stdin.out")" != "$B" ]; then
	soft_fail "import - (zstd on stdin): $(cat "$WORK/stdin.out") != $B"
fi
set +e
# a pipe, not a file: nothing to seek or stat
# shellcheck disable=SC2002
cat "$WORK/b.tar" | cairn_in "$STORE" import - >"$WORK/stdin.out" 2>"$WORK/stdin.err"
rc=$?
set -e
[ "$rc" -eq 0 ] && [ "$(cat "$WORK/stdin.out")" = "$B" ] ||
	soft_fail "import - (plain tar through a pipe): exit $rc, id $(cat "$WORK/stdin.out")"
import_ok "$STORE2" "$WORK/b.tar.gz"
[ "$ID" = "$B" ] || soft_fail "b.tar.gz into a fresh store: $ID != $B"
info "ok: $B seven ways"
rm -f "$WORK/b.tar.gz" "$WORK/b.tar.zst"

say "a GNU tar (--sparse --xattrs --acls) of the tree imports to the tree"
tar --sparse --xattrs --acls -cf "$WORK/gnu.tar" -C "$SRC" . 2>"$WORK/gnutar.err" || true
grep -v 'socket ignored' "$WORK/gnutar.err" >&2 || true
import_ok "$STORE" "$WORK/gnu.tar" --tag gnu
info "gnu $ID"
if export_extract "$STORE" gnu "$WORK/out-g"; then
	dump "$WORK/out-g" "$WORK/out-g.dump" --ignore-root --exclude-type sock
	# GNU tar writes a pre-1970 time with a fraction as a plain decimal
	# (-315360000.000000001); libarchive 3.6 reads the fraction as positive
	# (-315360000 + 0.000000001), as its own writer means it. Expect
	# libarchive's reading for those (files/tiny in the tree), exactly.
	python3 - "$WORK/src.dump" >"$WORK/src-gnu.dump" <<'EOF'
import re, sys
def fix(m):
    ns = int(m.group(1))
    if ns < 0 and ns % 10**9:
        s, f = divmod(-ns, 10**9)
        ns = -s * 10**9 + f
    return "mtime=%d" % ns
for line in open(sys.argv[1]):
    sys.stdout.write(re.sub(r"mtime=(-?\d+)", fix, line))
EOF
	if ! cmp -s "$WORK/src.dump" "$WORK/src-gnu.dump"; then
		info "(expecting libarchive's reading of $(diff "$WORK/src.dump" "$WORK/src-gnu.dump" |
			grep -c '^<') negative fractional mtime(s))"
	fi
	same_dump "$WORK/src-gnu.dump" "$WORK/out-g.dump" "source vs import of GNU tar" || true
fi
rm -rf "$WORK/out-g" "$WORK/gnu.tar"

say "hostile archives: one error each, the store unchanged"
HC=$WORK/corpus
/usr/bin/python3 "$MKHOSTILE" "$HC"
remember_store "$STORE"

unchanged() { store_unchanged "$STORE" "$1"; }

# expect_msg FILE TEXT: the error of the last expect_error holds TEXT.
expect_msg() {
	grep -qF -- "$2" "$WORK/experr.err" ||
		soft_fail "$1: the message does not say '$2': $(head -c 300 "$WORK/experr.err")"
}

n=0
for f in "$HC"/*; do
	name=$(basename "$f")
	case "$name" in README | ok-*) continue ;; esac
	expect_error "$name" cairn_in "$STORE" import "$f" --tag hostile
	grep -qF "cannot import '$f'" "$WORK/experr.err" ||
		soft_fail "$name: the message does not name the archive"
	unchanged "$name"
	n=$((n + 1))
done
info "$n hostile archives refused"
[ "$n" -ge 25 ] || soft_fail "the corpus has only $n archives"

say "the messages say what is wrong, and with which entry"
expect_error abs cairn_in "$STORE" import "$HC/abs-path.tar"
expect_msg abs "entry '/etc/cairn-evil': absolute paths are not allowed"
expect_error dotdot cairn_in "$STORE" import "$HC/dotdot.tar"
expect_msg dotdot "entry 'a/../../cairn-evil': '..' is not allowed"
expect_error symlink cairn_in "$STORE" import "$HC/through-symlink.tar"
expect_msg symlink "entry 'lnk/passwd': 'lnk' is a symlink planted earlier in the archive"
expect_error hardlink cairn_in "$STORE" import "$HC/hardlink-missing.tar"
expect_msg hardlink "hard link target 'no-such-file' is not an earlier entry"
expect_error outside cairn_in "$STORE" import "$HC/hardlink-outside.tar"
expect_msg outside "is outside the archive"
expect_error truncated cairn_in "$STORE" import "$HC/truncated.tar"
expect_msg truncated "truncated"
expect_error whiteout cairn_in "$STORE" import "$HC/whiteout.tar"
expect_msg whiteout "entry 'dir/.wh.gone': an OCI whiteout: this tar is a layer, import it with --on IMAGE"
expect_error long-name cairn_in "$STORE" import "$HC/long-name.tar"
expect_msg long-name "a name longer than 255 bytes"
expect_error long-path cairn_in "$STORE" import "$HC/long-path.tar"
expect_msg long-path "path is longer than"
expect_error xz cairn_in "$STORE" import "$HC/xz.tar.xz"
expect_msg xz "xz compression is not supported"

say "a decompression bomb past --max-bytes; hostile input on stdin"
expect_error "bomb with --max-bytes 1M" cairn_in "$STORE" import "$HC/ok-bomb.tar.gz" --max-bytes 1M
expect_msg bomb "--max-bytes"
unchanged "bomb"
# many small files past the limit together
python3 - "$WORK/many.tar" <<'EOF'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    for i in range(40):
        data = bytes([i]) * 100000
        ti = tarfile.TarInfo("f%02d" % i)
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
EOF
expect_error "many files past --max-bytes 3M" cairn_in "$STORE" import "$WORK/many.tar" --max-bytes 3M
expect_msg many "--max-bytes"
unchanged "many files past --max-bytes"
set +e
cairn_in "$STORE" import - <"$HC/truncated.tar.gz" >"$WORK/experr.out" 2>"$WORK/experr.err"
rc=$?
set -e
[ "$rc" -ne 0 ] && [ "$(wc -l <"$WORK/experr.err")" -eq 1 ] && [ ! -s "$WORK/experr.out" ] &&
	grep -q "^cairn: cannot import '-': " "$WORK/experr.err" ||
	soft_fail "truncated gzip on stdin: exit $rc, $(head -c 300 "$WORK/experr.err")"
unchanged "truncated gzip on stdin"

say "odd but valid archives import as tar semantics say"
S3=$WORK/store3
import_ok "$S3" "$HC/ok-dup.tar" --tag dup
[ "$(cairn_in "$S3" cat dup:dup)" = third ] || soft_fail "ok-dup: the last entry does not win"
cairn_in "$S3" stat dup:dup | grep -q '(0600)' || soft_fail "ok-dup: the last entry's mode is not kept"
import_ok "$S3" "$HC/ok-relink.tar" --tag relink
[ "$(cairn_in "$S3" cat relink:a)" = new ] && [ "$(cairn_in "$S3" cat relink:b)" = old ] ||
	soft_fail "ok-relink: a hard link must keep the file its target was when it was made"
import_ok "$S3" "$HC/ok-devices.tar" --tag dev
cairn_in "$S3" ls -l dev:dev >"$WORK/dev.ls"
grep -q '^b.* 8, *0 .*sda$' "$WORK/dev.ls" && grep -q '^c.* 1, *1 .*mem$' "$WORK/dev.ls" &&
	grep -q '^p.*fifo$' "$WORK/dev.ls" || { soft_fail "ok-devices: devices not stored"; show_file "$WORK/dev.ls"; }
import_ok "$S3" "$HC/ok-implied.tar" --tag implied
cairn_in "$S3" ls -l implied:a/b >"$WORK/implied.ls"
grep -q '^drwxr-xr-x .* 0 \+0 .*1970-01-01T00:00:00Z c$' "$WORK/implied.ls" ||
	{ soft_fail "ok-implied: an implied directory is not 0755 root 1970"; show_file "$WORK/implied.ls"; }
import_ok "$S3" "$HC/ok-dotslash.tar" --tag dotslash
cairn_in "$S3" stat dotslash: | grep -q '(0700)' || soft_fail "ok-dotslash: the '.' entry's mode is not the root's"
cairn_in "$S3" cat dotslash:x/y >/dev/null || soft_fail "ok-dotslash: x/y missing"
import_ok "$S3" "$HC/ok-symlink-anywhere.tar" --tag sym
[ "$(cairn_in "$S3" stat sym:abs | grep -c '/etc/shadow')" -ge 1 ] || soft_fail "ok-symlink-anywhere: target not kept"
import_ok "$S3" "$HC/ok-bomb.tar.gz" --tag bomb
run_capture fsck3 cairn_in "$S3" fsck
[ "$RC" -eq 0 ] || { soft_fail "fsck of the valid-archives store exited $RC"; show_file "$WORK/fsck3.out" >&2; }

finish
