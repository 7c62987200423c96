#!/bin/bash
# layers.sh - import TAR --on IMAGE: a tar layer with OCI whiteouts stacked
# on an image.
#
#  1. a layer that deletes files and a directory (.wh.), hides a directory
#     (.wh..wh..opq), adds and replaces entries and breaks a hard-link group
#     gives exactly the tree of the same changes made on disk: the same root
#     node as importing that directory (ids cover every attribute, link keys
#     included), and the same treedump listing after export;
#  2. the image's layers are the base's and the new one, records and all
#     (fsck checks them); a second layer stacks on the first;
#  3. a directory imported --on an image is a layer too;
#  4. the whiteout corpus of mkhostile.py with --on: layer-bad-* refused with
#     one error each and the store unchanged, layer-ok-* import to what the
#     OCI spec says.
source "$(dirname "$0")/../lib/common.sh"
setup
require_root

STORE=$WORK/store
MKHOSTILE=$TESTLIB/mkhostile.py

# image_layers STORE TAG: the layer ids of a tagged image, one per line.
image_layers() {
	cairn_in "$1" images --json >"$WORK/images.json"
	python3 -c 'import json, sys
for i in json.load(open(sys.argv[1])):
    if sys.argv[2] in i["tags"]:
        print("\n".join(i["layers"]))' "$WORK/images.json" "$2"
}

# root_node STORE IMAGE: the node id of an image's root directory.
root_node() { cairn_in "$1" stat "$2:" | awk '$1 == "node:" { print $2 }'; }

# same_tree IMAGE DIR WHAT: IMAGE holds exactly the tree in DIR.
same_tree() {
	local image=$1 dir=$2 what=$3 want got
	import_ok "$WORK/check-store" "$dir"
	want=$(root_node "$WORK/check-store" "$ID")
	got=$(root_node "$STORE" "$image")
	if [ "$want" = "$got" ]; then
		info "ok: $what: the root node is the one the directory imports to ($got)"
	else
		soft_fail "$what: root node $got, the directory imports to $want"
	fi
	export_extract "$STORE" "$image" "$WORK/out" || return 0
	dump "$dir" "$WORK/want.dump" --ignore-root
	dump "$WORK/out" "$WORK/got.dump" --ignore-root
	same_dump "$WORK/want.dump" "$WORK/got.dump" "$what (exported)"
}

say "a base tree with hard links, and the same tree changed on disk"
BASE=$WORK/base
mkdir -p "$BASE"/{etc/conf.d,usr/share/doc/pkg,usr/lib,var/cache/apt,opt/app}
printf 'root:x:0:0\n' >"$BASE/etc/passwd"
printf 'old motd\n' >"$BASE/etc/motd"
printf 'a=1\n' >"$BASE/etc/conf.d/a"
printf 'b=2\n' >"$BASE/etc/conf.d/b"
printf 'doc\n' >"$BASE/usr/share/doc/pkg/README"
head -c 300000 /dev/urandom >"$BASE/usr/lib/libbig.so"
printf 'linked\n' >"$BASE/usr/lib/a-first"
ln "$BASE/usr/lib/a-first" "$BASE/usr/lib/b-second"
ln "$BASE/usr/lib/a-first" "$BASE/opt/app/c-third"
printf 'pair\n' >"$BASE/opt/app/p1"
ln "$BASE/opt/app/p1" "$BASE/opt/app/p2"
printf 'cache\n' >"$BASE/var/cache/apt/pkgcache.bin"
ln -s ../share/doc "$BASE/usr/lib/docs"
setfattr -n user.kept -v yes "$BASE/etc/conf.d"
chmod 0750 "$BASE/opt/app"
find "$BASE" -exec touch -h -d '2025-03-04 05:06:07.123456789' {} +
import_ok "$STORE" "$BASE" --tag base
BASE_ID=$ID

# the changes, as a tar layer: deletions as whiteouts, a hidden directory,
# additions and replacements (the layer lists only what it changes: its
# directories other than etc/ are implied and keep the base's attributes)
L1=$WORK/l1
mkdir -p "$L1"/{etc/conf.d,var/cache/apt,usr/lib,opt/app}
printf 'new motd\n' >"$L1/etc/motd"
: >"$L1/etc/.wh.passwd"
: >"$L1/usr/.wh.share"
: >"$L1/var/cache/apt/.wh..wh..opq"
printf 'fresh\n' >"$L1/var/cache/apt/fresh.bin"
: >"$L1/usr/lib/.wh.a-first"        # the first member of a group of three
printf 'not a link any more\n' >"$L1/opt/app/p2" # one of a pair
printf 'c=3\n' >"$L1/etc/conf.d/c"
touch -h -d '2025-06-01 00:00:00' "$L1/etc" "$L1"/etc/* "$L1/etc/conf.d/c" \
	"$L1/var/cache/apt/fresh.bin" "$L1/opt/app/p2"
chmod 0700 "$L1/etc"
(cd "$L1" && bsdtar -n --format pax -cf "$WORK/l1.tar" --numeric-owner \
	etc/ etc/motd etc/.wh.passwd etc/conf.d/c usr/.wh.share \
	var/cache/apt/.wh..wh..opq var/cache/apt/fresh.bin usr/lib/.wh.a-first opt/app/p2)

WANT=$WORK/want1
cp -a "$BASE" "$WANT"
rm "$WANT/etc/passwd" && rm -r "$WANT/usr/share" "$WANT/var/cache/apt"/*
rm "$WANT/usr/lib/a-first" "$WANT/opt/app/p2"
cp -a "$L1/etc/motd" "$WANT/etc/motd"
cp -a "$L1/etc/conf.d/c" "$WANT/etc/conf.d/c"
cp -a "$L1/var/cache/apt/fresh.bin" "$WANT/var/cache/apt/"
cp -a "$L1/opt/app/p2" "$WANT/opt/app/p2"
# directories the layer only implies keep the base's attributes
find "$WANT" -type d -exec touch -h -d '2025-03-04 05:06:07.123456789' {} +
chmod 0700 "$WANT/etc"
touch -h -d '2025-06-01 00:00:00' "$WANT/etc"

say "the layer without --on is refused; with it, the tree is the changed one"
remember_store "$STORE"
expect_error "whiteouts without --on" cairn_in "$STORE" import "$WORK/l1.tar" --tag nope
grep -q "import it with --on IMAGE" "$WORK/experr.err" || soft_fail "the message does not point to --on"
expect_error "--on a missing image" cairn_in "$STORE" import "$WORK/l1.tar" --on no-such-image
expect_error "--on with a path" cairn_in "$STORE" import "$WORK/l1.tar" --on base:etc
store_unchanged "$STORE" "refused layers"
import_ok "$STORE" "$WORK/l1.tar" --on base --tag v1
same_tree v1 "$WANT" "tar layer over base"
image_layers "$STORE" base >"$WORK/base.layers"
image_layers "$STORE" v1 >"$WORK/v1.layers"
[ "$(wc -l <"$WORK/v1.layers")" -eq 2 ] && [ "$(head -n 1 "$WORK/v1.layers")" = "$(cat "$WORK/base.layers")" ] ||
	soft_fail "v1's layers are not base's and one more: $(tr '\n' ' ' <"$WORK/v1.layers")"
# the layer itself is kept as imported, whiteouts and all
cairn_in "$STORE" ls base: >/dev/null
[ "$(cairn_in "$STORE" cat v1:etc/motd)" = "new motd" ] || soft_fail "v1:etc/motd is not the layer's"
cairn_in "$STORE" stat v1:usr/lib/b-second | grep -q 'links: 2' ||
	soft_fail "the group that lost its first member must have 2 links left"
cairn_in "$STORE" stat v1:opt/app/p1 | grep -q 'links: 1' ||
	soft_fail "the last member of a broken pair must have 1 link"
# untouched subtrees are shared, not rewritten
[ "$(cairn_in "$STORE" stat base:usr/lib/libbig.so | grep node:)" = \
  "$(cairn_in "$STORE" stat v1:usr/lib/libbig.so | grep node:)" ] || soft_fail "an untouched file changed node"

say "a second layer on the first; the same layer again is the same image"
L2=$WORK/l2
mkdir -p "$L2/etc"
: >"$L2/etc/.wh.conf.d"
printf 'v2\n' >"$L2/etc/version"
touch -h -d '2025-07-01 00:00:00' "$L2/etc/version"
(cd "$L2" && bsdtar -n --format pax -cf "$WORK/l2.tar" --numeric-owner etc/.wh.conf.d etc/version)
import_ok "$STORE" "$WORK/l2.tar" --on v1 --tag v2
V2=$ID
WANT2=$WORK/want2
cp -a "$WANT" "$WANT2"
rm -r "$WANT2/etc/conf.d"
cp -a "$L2/etc/version" "$WANT2/etc/version"
touch -h -d '2025-06-01 00:00:00' "$WANT2/etc" # implied this time: it keeps v1's attributes
same_tree v2 "$WANT2" "two layers"
[ "$(image_layers "$STORE" v2 | wc -l)" -eq 3 ] || soft_fail "v2 has not 3 layers"
import_ok "$STORE" "$WORK/l2.tar" --on v1
[ "$ID" = "$V2" ] || soft_fail "the same layer on the same image gave another image"

say "a directory --on an image"
D=$WORK/dlayer
mkdir -p "$D/etc"
printf 'from a directory\n' >"$D/etc/motd"
chmod 0700 "$D/etc"
touch -h -d '2025-06-01 00:00:00' "$D/etc/motd" "$D/etc"
touch -h -d '2025-03-04 05:06:07.123456789' "$D"
chmod 0755 "$D"
import_ok "$STORE" "$D" --on base --tag dl
WANT3=$WORK/want3
cp -a "$BASE" "$WANT3"
cp -a "$D/etc/motd" "$WANT3/etc/motd"
chmod 0700 "$WANT3/etc"
touch -h -d '2025-06-01 00:00:00' "$WANT3/etc"
same_tree dl "$WANT3" "directory layer over base"

run_capture fsck cairn_in "$STORE" fsck
[ "$RC" -eq 0 ] || { soft_fail "fsck exited $RC"; show_file "$WORK/fsck.out"; }

say "the whiteout corpus with --on"
HC=$WORK/corpus
/usr/bin/python3 "$MKHOSTILE" "$HC"
LB=$WORK/lbase
mkdir -p "$LB/dir/old" "$LB/keep"
printf 'old\n' >"$LB/dir/old/file"
printf 'gone\n' >"$LB/gone"
printf 'b\n' >"$LB/b"
import_ok "$STORE" "$LB" --tag lbase
remember_store "$STORE"
n=0
for f in "$HC"/layer-bad-*; do
	expect_error "$(basename "$f")" cairn_in "$STORE" import "$f" --on lbase --tag bad
	store_unchanged "$STORE" "$(basename "$f")"
	n=$((n + 1))
done
info "$n bad layers refused"
[ "$n" -ge 10 ] || soft_fail "only $n bad layers"
expect_error "wh-dotdot message" cairn_in "$STORE" import "$HC/layer-bad-wh-dotdot.tar" --on lbase
grep -qF "entry 'dir/.wh...': a whiteout of '..'" "$WORK/experr.err" || soft_fail "wh-dotdot: $(cat "$WORK/experr.err")"

# ls_names IMAGE PATH: the names in a directory, space separated
ls_names() { cairn_in "$STORE" ls "$1:$2" | tr '\n' ' ' | sed 's/ $//'; }
check_ls() {
	local got
	got=$(ls_names "$1" "$2")
	[ "$got" = "$3" ] || soft_fail "$1:$2 lists '$got', expected '$3'"
}
for f in "$HC"/layer-ok-*; do
	t=$(basename "$f" .tar)
	import_ok "$STORE" "$f" --on lbase --tag "$t"
done
check_ls layer-ok-wh-then-dir dir "new"                # opaque: old is hidden
check_ls layer-ok-dir-then-wh dir "new"
check_ls layer-ok-file-then-wh "" "b dir gone keep"      # the layer's keep replaces the directory
[ "$(cairn_in "$STORE" cat layer-ok-file-then-wh:keep)" = kept ] || soft_fail "file-then-wh: keep is not the layer's file"
check_ls layer-ok-wh-then-deeper dir "sub"
check_ls layer-ok-opaque dir "only"
check_ls layer-ok-wh-missing "" "b dir gone keep"
run_capture fsck cairn_in "$STORE" fsck
[ "$RC" -eq 0 ] || { soft_fail "fsck exited $RC"; show_file "$WORK/fsck.out"; }

finish
