#!/bin/bash
# oci.sh - OCI image layouts: import oci:DIR[:REF] and export --oci, against
# umoci and skopeo.
#
#  1. umoci builds a layout from a busybox root filesystem (v1), then a
#     second layer with 'umoci repack' after deleting a file and a directory,
#     replacing a symlink, adding files and hard links and changing modes
#     (v2: umoci's own whiteouts). 'cairn import oci:DIR' makes both images;
#     each is exactly the tree 'umoci unpack' produces: the same root node as
#     importing umoci's rootfs directory, and the same treedump listing. With
#     'cairn diff' (when the program has it) v1..v2 lists what changed.
#  2. the same for treegen.sh's tree (devices, ACLs, xattrs, hard links, odd
#     names), through umoci.
#  3. export --oci: umoci unpacks it to the same tree umoci made, skopeo
#     copies it (checking every digest), importing it back gives the same
#     root; exporting into umoci's layout keeps its manifests; twice the same
#     image gives the same bytes.
#  4. hostile layouts (tests/lib/ocimut.py): a layer digest that does not
#     match, missing blobs, bad JSON, unknown media types, a REF not found,
#     ... each one error, the store unchanged.
source "$(dirname "$0")/../lib/common.sh"
setup
require_root
require_cmd umoci skopeo busybox

STORE=$WORK/store
OCIMUT=$TESTLIB/ocimut.py
MKROOTFS=$TESTLIB/../../examples/mkrootfs.sh

# root_node STORE IMAGE: the node id of an image's root directory.
root_node() { cairn_in "$1" stat "$2:" | awk '$1 == "node:" { print $2 }'; }

# like_umoci IMAGE LAYOUT:REF WHAT: IMAGE is the tree umoci unpacks from LAYOUT:REF.
like_umoci() {
	local image=$1 ref=$2 what=$3 u=$WORK/unpack-$1 want got
	rm -rf "$u"
	umoci unpack --image "$ref" "$u" >"$WORK/umoci.out" 2>&1 ||
		{ show_file "$WORK/umoci.out"; soft_fail "$what: umoci unpack failed"; return 0; }
	import_ok "$WORK/check-store" "$u/rootfs"
	want=$(root_node "$WORK/check-store" "$ID")
	got=$(root_node "$STORE" "$image")
	if [ "$want" = "$got" ]; then
		info "ok: $what: the root node is umoci's rootfs's ($got)"
	else
		soft_fail "$what: root node $got, umoci's rootfs imports to $want"
	fi
	export_extract "$STORE" "$image" "$WORK/out" || return 0
	dump "$u/rootfs" "$WORK/umoci.dump" --ignore-root
	dump "$WORK/out" "$WORK/cairn.dump" --ignore-root
	same_dump "$WORK/umoci.dump" "$WORK/cairn.dump" "$what (exported)"
}

# import_all SRC N: imports an OCI layout that must give N images; IDS holds them.
import_all() {
	run_capture import cairn_in "$STORE" import "$1"
	if [ "$RC" -ne 0 ] || [ "$(wc -l <"$WORK/import.out")" -ne "$2" ] || [ -s "$WORK/import.err" ]; then
		show_file "$WORK/import.err"
		fail "import of '$1' exited $RC with $(wc -l <"$WORK/import.out") ids, expected $2"
	fi
	IDS=$(cat "$WORK/import.out")
}

say "umoci: v1 from a busybox root, v2 one 'umoci repack' later"
R=$WORK/rootfs
bash "$MKROOTFS" "$R" 1 >/dev/null
printf 'shared\n' >"$R/etc/linked"
ln "$R/etc/linked" "$R/usr/bin/linked-too"
ln "$R/etc/linked" "$R/usr/share/linked-three"
mknod "$R/dev/null" c 1 3
mkfifo "$R/dev/initctl"
chmod 4755 "$R/bin/busybox"
setfattr -n user.origin -v cairn "$R/etc/hostname"
L=$WORK/layout
umoci init --layout "$L"
umoci new --image "$L:v1"
umoci unpack --image "$L:v1" "$WORK/b1" >/dev/null
cp -a "$R/." "$WORK/b1/rootfs/"
umoci repack --image "$L:v1" "$WORK/b1"
umoci unpack --image "$L:v1" "$WORK/b2" >/dev/null
R2=$WORK/b2/rootfs
rm "$R2/etc/hostname" "$R2/etc/linked"
rm -r "$R2/usr/share/doc"
rm "$R2/bin/ls" && printf '#!/bin/sh\necho not busybox\n' >"$R2/bin/ls"
printf '#!/bin/sh\necho hello\n' >"$R2/usr/bin/hello"
ln "$R2/usr/bin/hello" "$R2/bin/hello"
echo 'VERSION_ID="2"' >>"$R2/etc/os-release"
chmod 0700 "$R2/var/log"
umoci repack --image "$L:v2" "$WORK/b2"
TOP=$(python3 -c 'import json, sys
idx = json.load(open(sys.argv[1] + "/index.json"))
m = [d for d in idx["manifests"] if d["annotations"]["org.opencontainers.image.ref.name"] == "v2"][0]
man = json.load(open(sys.argv[1] + "/blobs/sha256/" + m["digest"][7:]))
print(man["layers"][-1]["digest"][7:])' "$L")
bsdtar -tzf "$L/blobs/sha256/$TOP" >"$WORK/top.list"
grep -qx 'etc/.wh.hostname' "$WORK/top.list" && grep -qx 'usr/share/.wh.doc' "$WORK/top.list" ||
	{ show_file "$WORK/top.list"; fail "umoci's top layer has not the whiteouts this test is about"; }
info "umoci's v2 layer: $(wc -l <"$WORK/top.list") entries, $(grep -c '\.wh\.' "$WORK/top.list") whiteouts"

say "import oci:DIR: every manifest, tagged by its name"
import_all "oci:$L" 2
like_umoci v1 "$L:v1" "v1 (one layer)"
like_umoci v2 "$L:v2" "v2 (umoci's whiteouts applied)"
cairn_in "$STORE" images --json >"$WORK/images.json"
[ "$(json_get "$WORK/images.json" '[len(i["layers"]) for i in j if "v2" in i["tags"]][0]')" = 2 ] ||
	soft_fail "v2 has not 2 layers"
[ "$(json_get "$WORK/images.json" '[i["layers"][0] for i in j if "v2" in i["tags"]][0] == [i["layers"][0] for i in j if "v1" in i["tags"]][0]')" = True ] ||
	soft_fail "v1 and v2 do not share their bottom layer"
cairn_in "$STORE" stat v2:bin/hello | grep -q 'links: 2' || soft_fail "v2:bin/hello is not in a group of 2"
cairn_in "$STORE" stat v2:usr/bin/linked-too | grep -q 'links: 2' ||
	soft_fail "the group that lost etc/linked must have 2 links left"
# again: nothing new, the same ids
V2=$(cairn_in "$STORE" images --json | python3 -c 'import json, sys
print([i["id"] for i in json.load(sys.stdin) if "v2" in i["tags"]][0])')
import_ok "$STORE" "oci:$L:v2" --tag v2-again
[ "$ID" = "$V2" ] || soft_fail "importing oci:$L:v2 again gave another image"

say "cairn diff v1 v2"
if "$CAIRN" diff --help >/dev/null 2>&1; then
	run_capture diff cairn_in "$STORE" diff v1 v2
	show_file "$WORK/diff.out" 30
	for p in etc/hostname usr/share/doc usr/bin/hello bin/ls etc/os-release; do
		grep -q "$p" "$WORK/diff.out" || soft_fail "cairn diff v1 v2 does not list $p"
	done
	if grep -q 'usr/bin/busybox\|etc/passwd' "$WORK/diff.out"; then
		soft_fail "cairn diff lists unchanged paths"
	fi
else
	info "cairn has no diff command yet: skipped"
fi

say "umoci: treegen's tree (devices, ACLs, xattrs, hard links, odd names)"
T=$WORK/tree
bash "$TREEGEN" --no-sparse --no-socket "$T" >/dev/null
TL=$WORK/tlayout
umoci init --layout "$TL"
umoci new --image "$TL:t"
umoci unpack --image "$TL:t" "$WORK/tb" >/dev/null
cp -a "$T/." "$WORK/tb/rootfs/"
umoci repack --image "$TL:t" "$WORK/tb" >"$WORK/umoci.out" 2>&1
import_ok "$STORE" "oci:$TL:t" --tag tree
like_umoci tree "$TL:t" "treegen's tree"
# what umoci itself keeps of the tree, for the record (not cairn's doing)
dump "$T" "$WORK/orig.dump"
dump "$WORK/unpack-tree/rootfs" "$WORK/umoci-own.dump"
info "umoci's round trip changes $(diff "$WORK/orig.dump" "$WORK/umoci-own.dump" | grep -c '^>') of $(wc -l <"$WORK/orig.dump") entries (mtimes to whole seconds, empty and overlay xattrs dropped)"

say "export --oci: umoci and skopeo read it"
E=$WORK/export
run_capture export cairn_in "$STORE" export v2 --oci "$E"
[ "$RC" -eq 0 ] || { show_file "$WORK/export.err"; fail "export --oci exited $RC"; }
rm -rf "$WORK/ue"
umoci unpack --image "$E:v2" "$WORK/ue" >"$WORK/umoci.out" 2>&1 ||
	{ show_file "$WORK/umoci.out"; fail "umoci cannot unpack cairn's layout"; }
dump "$WORK/ue/rootfs" "$WORK/ue.dump"
dump "$WORK/unpack-v2/rootfs" "$WORK/u2.dump"
same_dump "$WORK/u2.dump" "$WORK/ue.dump" "umoci unpacks cairn's export to umoci's own v2, root included"
skopeo inspect "oci:$E:v2" >"$WORK/skopeo.json" || fail "skopeo inspect failed"
[ "$(json_get "$WORK/skopeo.json" 'len(j["Layers"])')" = 1 ] || soft_fail "skopeo sees not one layer"
skopeo copy -q "oci:$E:v2" "dir:$WORK/skopeo-dir" >"$WORK/skopeo.out" 2>&1 ||
	{ show_file "$WORK/skopeo.out"; soft_fail "skopeo copy (which checks every digest) failed"; }
import_ok "$STORE" "oci:$E:v2" --tag round-trip
[ "$(root_node "$STORE" round-trip)" = "$(root_node "$STORE" v2)" ] ||
	soft_fail "export --oci, import: another root"
run_capture export2 cairn_in "$STORE" export v2 --oci "$WORK/export2"
diff -r "$E" "$WORK/export2" >/dev/null || soft_fail "two exports of one image differ"

say "export --oci into umoci's layout keeps its manifests; a name is replaced"
run_capture export3 cairn_in "$STORE" export v1 --oci "$L:from-cairn" --uncompressed
[ "$RC" -eq 0 ] || { show_file "$WORK/export3.err"; soft_fail "export into umoci's layout exited $RC"; }
run_capture export3 cairn_in "$STORE" export v2 --oci "$L:from-cairn" --uncompressed
umoci ls --layout "$L" | sort >"$WORK/refs"
[ "$(tr '\n' ' ' <"$WORK/refs")" = "from-cairn v1 v2 " ] || soft_fail "umoci ls: $(tr '\n' ' ' <"$WORK/refs")"
rm -rf "$WORK/uc"
umoci unpack --image "$L:from-cairn" "$WORK/uc" >"$WORK/umoci.out" 2>&1 ||
	{ show_file "$WORK/umoci.out"; soft_fail "umoci cannot unpack the uncompressed export"; }
dump "$WORK/uc/rootfs" "$WORK/uc.dump"
same_dump "$WORK/u2.dump" "$WORK/uc.dump" "the replaced name holds v2"

say "export --oci refuses what it cannot do, and leaves nothing"
mkdir -p "$WORK/notalayout" && echo x >"$WORK/notalayout/file"
expect_error "a directory that is not a layout" cairn_in "$STORE" export v1 --oci "$WORK/notalayout"
[ "$(ls "$WORK/notalayout")" = file ] || soft_fail "the directory was changed"
expect_error "a bad reference" cairn_in "$STORE" export v1 --oci "$WORK/new:bad ref"
[ ! -e "$WORK/new" ] || soft_fail "a refused export made the directory"
expect_error "-o and --oci" cairn_in "$STORE" export v1 -o "$WORK/x.tar" --oci "$WORK/new"

say "hostile layouts: one error each, the store unchanged"
remember_store "$STORE"
n=0
while read -r c _; do
	H=$WORK/hostile-$c
	python3 "$OCIMUT" "$L" "$H" "$c" v2
	expect_error "$c" cairn_in "$STORE" import "oci:$H:v2"
	grep -qF "cannot import 'oci:$H:v2'" "$WORK/experr.err" || soft_fail "$c: the message does not name the layout"
	store_unchanged "$STORE" "$c"
	rm -rf "$H"
	n=$((n + 1))
done < <(python3 "$OCIMUT" --list)
info "$n hostile layouts refused"
[ "$n" -ge 25 ] || soft_fail "only $n hostile layouts"
expect_error "REF not found" cairn_in "$STORE" import "oci:$L:no-such-ref"
grep -q "names no manifest 'no-such-ref'" "$WORK/experr.err" || soft_fail "REF not found: $(cat "$WORK/experr.err")"
expect_error "--tag for several images" cairn_in "$STORE" import "oci:$L" --tag one
expect_error "not a directory" cairn_in "$STORE" import "oci:$WORK/nowhere"
expect_error "oci: with --on" cairn_in "$STORE" import "oci:$L:v1" --on v1
store_unchanged "$STORE" "refused imports"

# the messages say what is wrong
check_msg() {
	local c=$1 text=$2 H=$WORK/msg-$1
	python3 "$OCIMUT" "$L" "$H" "$c" v2
	run_capture msg cairn_in "$STORE" import "oci:$H:v2"
	grep -qF -- "$text" "$WORK/msg.err" || soft_fail "$c: the message does not say '$text': $(cat "$WORK/msg.err")"
	rm -rf "$H"
}
check_msg layer-digest "layer 2 of 2 of manifest 'v2': blob sha256:$TOP does not match its digest"
check_msg missing-layer "blob sha256:$TOP is missing from the layout"
check_msg bad-index-json "index.json is not valid JSON"
check_msg unknown-layer-type "has media type 'application/vnd.example.layer.v1.squashfs', not a tar layer"
check_msg diff-id "the config's diff_id is"
check_msg mislabelled-zstd "its media type says zstd, the blob is gzip"

finish
