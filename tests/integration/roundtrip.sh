#!/bin/bash
# roundtrip.sh - a tree with every kind of file and attribute survives
# import -> export -> extract unchanged, ids are reproducible, and the
# inspection commands (images, ls, cat, stat, du) agree with the source.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
require_root
setup

SRC=$WORK/src
STORE=$WORK/store
STORE2=$WORK/store2

say "generate the source tree"
bash "$TREEGEN" "$SRC"
# tar has no sockets: the export is compared without them (import keeps
# them, checked with ls below); tar does not restore the root's own times
dump "$SRC" "$WORK/src.dump" --ignore-root --exclude-type sock
dump "$SRC" "$WORK/src-full.dump"
info "$(wc -l <"$WORK/src-full.dump") entries"

say "import"
import_ok "$STORE" "$SRC" --tag v1 -m "first import"
ID1=$ID
info "image $ID1"

say "images lists the image with its tag"
run_capture images cairn_in "$STORE" images
[ "$RC" -eq 0 ] || fail "images exited $RC: $(head -c 300 "$WORK/images.err")"
grep -q "${ID1:0:12}" "$WORK/images.out" || soft_fail "images does not show $ID1"
grep -qw v1 "$WORK/images.out" || soft_fail "images does not show tag v1"
show_file "$WORK/images.out" 5

run_capture imagesj cairn_in "$STORE" images --json
[ "$RC" -eq 0 ] || fail "images --json exited $RC"
python3 - "$WORK/imagesj.out" "$ID1" "$SRC" <<'EOF' || soft_fail "images --json is wrong"
import json, os, stat, sys
j = json.load(open(sys.argv[1]))
want = sys.argv[2]
assert isinstance(j, list), "not an array"
assert len(j) == 1, "%d images, want 1" % len(j)
im = j[0]
for k in ("id", "tags", "created", "logical_size", "nodes"):
    assert k in im, "field %r missing" % k
assert im["id"] == want, "id %r != %r" % (im["id"], want)
assert im["tags"] == ["v1"], "tags %r" % (im["tags"],)
assert isinstance(im["created"], str) and im["created"], "created %r" % (im["created"],)
# logical size: regular files, hard links once; nodes: entries
seen, size, n = set(), 0, 0
for d, dirs, files in os.walk(os.fsencode(sys.argv[3])):
    n += 1 + len(files)
    for f in files:
        st = os.lstat(os.path.join(d, f))
        if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            size += st.st_size
    n += sum(1 for x in dirs if os.path.islink(os.path.join(d, x)))
    dirs[:] = [x for x in dirs if not os.path.islink(os.path.join(d, x))]
assert im["logical_size"] == size, "logical_size %r, want %d" % (im["logical_size"], size)
assert im["nodes"] in (n, n - 1), "nodes %r, want %d (or %d without the root)" % (im["nodes"], n, n - 1)
print("   ok: images --json: id, tags, created, logical_size=%d, nodes=%d" % (size, im["nodes"]))
EOF

say "export, extract with bsdtar, compare"
if export_extract "$STORE" v1 "$WORK/out"; then
	dump "$WORK/out" "$WORK/out.dump" --ignore-root --exclude-type sock
	same_dump "$WORK/src.dump" "$WORK/out.dump" "source vs export of v1" || true
fi
rm -rf "$WORK/out"

say "export is sparse, and the same on stdout as with -o"
run_capture exp1 cairn_in "$STORE" export "$ID1" -o "$WORK/a.tar"
[ "$RC" -eq 0 ] || soft_fail "export -o exited $RC"
[ -f "$WORK/a.tar" ] || : >"$WORK/a.tar"
tarsize=$(stat -c %s "$WORK/a.tar")
info "tar: $tarsize bytes for $(du -sb --apparent-size "$SRC" | cut -f1) logical bytes"
[ "$tarsize" -lt $((200 * 1024 * 1024)) ] ||
	soft_fail "export of sparse files is not sparse ($tarsize bytes)"
set +e
cairn_in "$STORE" export "${ID1:0:8}" >"$WORK/b.tar" 2>"$WORK/exp2.err"
rc=$?
set -e
[ "$rc" -eq 0 ] || soft_fail "export to stdout (by id prefix) exited $rc"
cmp -s "$WORK/a.tar" "$WORK/b.tar" || soft_fail "export to stdout differs from export -o"
bsdtar -tvf "$WORK/a.tar" >"$WORK/tar.list" 2>/dev/null || soft_fail "bsdtar cannot list the export"
rm -f "$WORK/a.tar" "$WORK/b.tar"

say "the same tree imported again gives the same id"
import_ok "$STORE" "$SRC" --tag again
[ "$ID" = "$ID1" ] || soft_fail "second import into the same store: $ID != $ID1"
import_ok "$STORE2" "$SRC"
[ "$ID" = "$ID1" ] || soft_fail "import into a fresh store: $ID != $ID1"
info "ok: $ID1 three times"
# a copy of the tree (other inodes, other allocation) gives the same id
mkdir "$WORK/copy"
bsdtar --format=pax -cf - -C "$SRC" . 2>/dev/null |
	bsdtar -x -p --acls --xattrs --numeric-owner -f - -C "$WORK/copy" 2>/dev/null
# root times are not in tar
python3 -c 'import os, sys; st = os.lstat(sys.argv[1]); os.utime(sys.argv[2], ns=(st.st_mtime_ns, st.st_mtime_ns))' "$SRC" "$WORK/copy"
chmod "$(stat -c %a "$SRC")" "$WORK/copy"
# the socket is not in tar: make it again with the same attributes
if [ -S "$SRC/dev/socket" ]; then
	python3 - "$SRC/dev/socket" "$WORK/copy/dev/socket" "$WORK/copy/dev" "$SRC/dev" <<'EOF'
import os, socket, sys
src, dst, ddir, sdir = sys.argv[1:]
s = socket.socket(socket.AF_UNIX); s.bind(dst)
st = os.lstat(src)
os.chmod(dst, st.st_mode & 0o7777)
os.chown(dst, st.st_uid, st.st_gid)
os.utime(dst, ns=(st.st_mtime_ns, st.st_mtime_ns))
st = os.lstat(sdir)
os.utime(ddir, ns=(st.st_mtime_ns, st.st_mtime_ns))
EOF
fi
dump "$WORK/copy" "$WORK/copy.dump"
if same_dump "$WORK/src-full.dump" "$WORK/copy.dump" "source vs its bsdtar copy"; then
	import_ok "$STORE2" "$WORK/copy"
	[ "$ID" = "$ID1" ] || soft_fail "import of an identical copy: $ID != $ID1"
fi
rm -rf "$WORK/copy"

say "tags: the image has v1 and again"
run_capture imagesj cairn_in "$STORE" images --json
json_get "$WORK/imagesj.out" 'sorted(j[0]["tags"]) == ["again", "v1"] and len(j) == 1' |
	grep -q True || { soft_fail "images --json after re-import"; show_file "$WORK/imagesj.out"; }

say "cat equals the source bytes"
for p in files/tiny files/empty files/random-1M files/random-odd files/repeated-3840K \
	files/dense-zeros files/text hl/two/h2 modes/f0000 "names/with space" \
	"names/$(printf 'bad\xff\xfebytes')" "names/$(printf 'new\nline')" \
	"names/$(printf 'D%.0s' $(seq 255))/$(printf 'F%.0s' $(seq 255))" \
	sparse/tail-data sparse/all-hole sparse/big; do
	[ -e "$SRC/$p" ] || continue
	set +e
	cairn_in "$STORE" cat "v1:$p" 2>"$WORK/cat.err" | python3 "$CMPSTREAM" "$SRC/$p"
	st=("${PIPESTATUS[@]}")
	set -e
	if [ "${st[0]}" -ne 0 ] || [ "${st[1]}" -ne 0 ]; then
		soft_fail "cat v1:$(printf '%q' "$p"): exit ${st[0]}, compare ${st[1]}"
		show_file "$WORK/cat.err"
	else
		info "ok: cat $(printf '%q' "$p")"
	fi
done

say "ls -R lists every path"
run_capture lsr cairn_in "$STORE" ls -R v1
[ "$RC" -eq 0 ] || { soft_fail "ls -R exited $RC"; show_file "$WORK/lsr.err"; }
python3 - "$SRC" "$WORK/lsr.out" <<'EOF' || soft_fail "ls -R misses paths"
import os, sys
root = os.fsencode(sys.argv[1])
out = open(sys.argv[2], "rb").read()
lines = set(out.split(b"\n"))
missing, n = [], 0
for d, dirs, files in os.walk(root):
    for x in dirs + files:
        rel = os.path.relpath(os.path.join(d, x), root)
        if not all(0x21 <= c < 0x7f and c != 0x5c for c in rel):
            continue  # printed escaped or quoted: not checked here
        n += 1
        if rel not in lines and b"/" + rel not in lines and b"./" + rel not in lines:
            missing.append(rel)
if missing:
    print("   %d of %d printable paths are not a line of ls -R, e.g.:" % (len(missing), n))
    for m in missing[:10]:
        print("     ", m.decode())
    sys.exit(1)
print("   ok: all %d printable paths listed" % n)
EOF
show_file "$WORK/lsr.out" 3
grep -q 'dev/socket' "$WORK/lsr.out" || soft_fail "ls -R does not list the socket"

say "ls of the root, of a directory, by prefix, long and json"
run_capture ls1 cairn_in "$STORE" ls "${ID1:0:6}"
[ "$RC" -eq 0 ] || soft_fail "ls by 6-digit prefix exited $RC"
for n in dev dirs files hl links modes names own xattr; do
	grep -qx -- "$n/\{0,1\}" "$WORK/ls1.out" || soft_fail "ls of the root does not list '$n'"
done
run_capture ls2 cairn_in "$STORE" ls -l v1:dev
[ "$RC" -eq 0 ] || soft_fail "ls -l v1:dev exited $RC"
show_file "$WORK/ls2.out" 8
# a symlink's size is its target's length, as ls -l and stat(2) say
run_capture lsl cairn_in "$STORE" ls -l v1:links
[ "$RC" -eq 0 ] || soft_fail "ls -l v1:links exited $RC"
run_capture lslj cairn_in "$STORE" ls --json v1:links
python3 - "$SRC/links" "$WORK/lsl.out" "$WORK/lslj.out" <<'EOF' || soft_fail "ls -l or ls --json: a symlink's size is not its target's length"
import json, os, sys
links, text, js = sys.argv[1:]
want = {n: os.lstat(os.path.join(links, n)).st_size for n in os.listdir(links)
        if os.path.islink(os.path.join(links, n))}
got = {}
for line in open(text):
    f = line.split()
    if f[0].startswith("l"):
        got[f[f.index("->") - 1].split("/")[-1]] = int(f[4])
gotj = {e["path"].split("/")[-1]: e.get("size") for e in json.load(open(js)) if e["type"] == "l"}
print("   symlink sizes:", sorted(got.items()))
assert got == want, (got, want)
assert gotj == want, (gotj, want)
EOF
run_capture ls3 cairn_in "$STORE" ls --json v1:files
[ "$RC" -eq 0 ] && python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert isinstance(j, (list, dict))' \
	"$WORK/ls3.out" || soft_fail "ls --json v1:files is not JSON"

say "stat"
run_capture stat1 cairn_in "$STORE" stat v1:files/random-1M
[ "$RC" -eq 0 ] || soft_fail "stat exited $RC"
grep -q 1048576 "$WORK/stat1.out" || soft_fail "stat does not show the size 1048576"
run_capture stat2 cairn_in "$STORE" stat --json v1:hl/one/h1
if [ "$RC" -eq 0 ]; then
	python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$WORK/stat2.out" ||
		soft_fail "stat --json is not JSON"
	show_file "$WORK/stat2.out" 30
else
	soft_fail "stat --json exited $RC"
fi

say "du"
run_capture du cairn_in "$STORE" du --json
if [ "$RC" -eq 0 ]; then
	python3 - "$WORK/du.out" <<'EOF' || soft_fail "du --json"
import json, sys
j = json.load(open(sys.argv[1]))
for k in ("logical_bytes", "stored_bytes", "unique_bytes", "shared_bytes", "chunks",
          "dedup_ratio", "store_used_bytes", "store_file_bytes"):
    assert k in j, "field %r missing" % k
    assert isinstance(j[k], (int, float)) and j[k] >= 0, "%s = %r" % (k, j[k])
assert j["chunks"] > 0
# repeated content and 6 GiB of holes: far less stored than logical
assert j["stored_bytes"] * 10 < j["logical_bytes"], "stored %d, logical %d" % (
    j["stored_bytes"], j["logical_bytes"])
print("   ok:", ", ".join("%s=%s" % kv for kv in j.items()))
EOF
else
	soft_fail "du --json exited $RC"
fi
run_capture du2 cairn_in "$STORE" du v1
[ "$RC" -eq 0 ] || soft_fail "du v1 exited $RC"

say "fsck after all this"
run_capture fsck cairn_in "$STORE" fsck
[ "$RC" -eq 0 ] || { soft_fail "fsck exited $RC"; show_file "$WORK/fsck.out"; show_file "$WORK/fsck.err"; }
run_capture fsck2 cairn_in "$STORE2" fsck
[ "$RC" -eq 0 ] || { soft_fail "fsck of the second store exited $RC"; show_file "$WORK/fsck2.out"; show_file "$WORK/fsck2.err"; }

finish
