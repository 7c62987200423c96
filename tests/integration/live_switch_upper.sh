#!/bin/bash
# live_switch_upper.sh - a writable mount of a platform merges its
# directories again with the new image on every switch (issue 11 item 8:
# a directory the new image deleted kept showing the old image's entries,
# and a write to one of them copied the old file up for good).
#
# Images A, B and C differ in every shape: a deleted directory the upper
# added to, a directory that becomes a file and a file that becomes a
# directory, a changed symlink, a directory the upper made that the new
# image adds too, a changed file the upper copied up, an opaque and a
# renamed directory. After every switch (A, B, C, A, B) the live mount,
# walked in full before the switch so the kernel caches all of it, is
# compared with a fresh mount of a copy of its upper. Before each switch,
# every name of the next image is looked up in the live mount, so the
# kernel holds negative entries for those it adds (cached on writable
# mounts too: the switch must expire them); right after the switch, before
# any listing (readdirplus would replace a stale negative entry), every name
# of every image is looked up in it and compared with a fresh mount.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
mount_setup
chmod 0711 "$WORK"

STORE=$WORK/store
M=$WORK/m
UP=$WORK/upper
F=$WORK/fresh
mkdir -p "$M" "$F"

mk() { # DIR: the parts every image shares
	mkdir -p "$1/etc" "$1/keep" "$1/ren"
	printf 'base\n' >"$1/etc/base"
	printf 'in ren\n' >"$1/ren/r"
}
# A: gone/ with files, swap/d/ a directory, f a file, link -> one
mk "$WORK/A"
mkdir -p "$WORK/A/gone/sub" "$WORK/A/swap/d" "$WORK/A/op"
printf 'g of A\n' >"$WORK/A/gone/g"
printf 'h of A\n' >"$WORK/A/gone/sub/h"
printf 'x of A\n' >"$WORK/A/swap/d/x"
printf 'f of A\n' >"$WORK/A/f"
printf 'k of A\n' >"$WORK/A/keep/k"
printf 'o of A\n' >"$WORK/A/op/o"
ln -s one "$WORK/A/link"
# B: no gone/, swap/d a file, f a directory, link -> two, new/ added, k changed
mk "$WORK/B"
mkdir -p "$WORK/B/swap" "$WORK/B/f" "$WORK/B/new" "$WORK/B/op"
printf 'd is a file in B\n' >"$WORK/B/swap/d"
printf 'inner of B\n' >"$WORK/B/f/inner"
printf 'n of B\n' >"$WORK/B/new/n"
printf 'k of B\n' >"$WORK/B/keep/k"
printf 'o of B\n' >"$WORK/B/op/o"
printf 'ren of B\n' >"$WORK/B/ren/r2"
ln -s two "$WORK/B/link"
# C: gone/ back with other contents, swap/d a directory again, new/ gone
mk "$WORK/C"
mkdir -p "$WORK/C/gone" "$WORK/C/swap/d/deeper"
printf 'g2 of C\n' >"$WORK/C/gone/g2"
printf 'deeper of C\n' >"$WORK/C/swap/d/deeper/y"
printf 'f of C\n' >"$WORK/C/f"
ln -s three "$WORK/C/link"
for v in A B C; do
	touch -d @1700000000 "$WORK/$v" "$WORK/$v"/* "$WORK/$v"/*/*
	import_ok "$STORE" "$WORK/$v" --tag "$v"
done
cairn_in "$STORE" upgrade pw A >/dev/null || fail "upgrade pw A"
mount_ok "$STORE" pw "$M" --upper "$UP"

say "the container's changes on A"
printf 'added\n' >"$M/gone/added"
mkdir "$M/gone/sub2"
printf 'added in d\n' >"$M/swap/d/added"
mkdir "$M/new"
printf 'mine\n' >"$M/new/mine"
chmod 600 "$M/keep/k"
printf 'mine\n' >"$M/keep/mine"
rm -rf "$M/op"
mkdir "$M/op"
printf 'mine\n' >"$M/op/mine"
mv "$M/ren" "$M/renamed"

# compare WHEN: the live mount against a fresh mount of a copy of the upper
# exists MNT: for every name of any image, whether a stat through MNT finds it
exists() {
	local p
	for p in $(cd "$WORK" && find A B C -mindepth 1 | cut -d/ -f2- | sort -u); do
		if stat "$1/$p" >/dev/null 2>&1; then echo "+ $p"; else echo "- $p"; fi
	done
}

compare() {
	local when=$1
	dump "$M" "$WORK/live.dump"
	rm -rf "$WORK/upcopy"
	cp -a "$UP" "$WORK/upcopy"
	rm -f "$WORK/upcopy/lock"
	mount_ok "$STORE" pw "$F" --upper "$WORK/upcopy"
	dump "$F" "$WORK/fresh.dump"
	if [ -f "$WORK/live.exists" ]; then
		# looked up right after the switch, before any listing (a listing
		# would replace stale negative entries): what a fresh mount finds
		exists "$F" >"$WORK/fresh.exists"
		diff -u "$WORK/fresh.exists" "$WORK/live.exists" >&2 ||
			soft_fail "$when: right after the switch, lookups in the live mount differ from a fresh one"
		rm -f "$WORK/live.exists"
	fi
	umount_ok "$STORE" "$F"
	same_dump "$WORK/fresh.dump" "$WORK/live.dump" "$when: the live mount against a fresh one"
}
compare "on A"

# every name of image V looked up in the live mount first: the kernel caches
# a negative entry for each the mount lacks, which the switch must expire
probe() { # V
	(cd "$WORK/$1" && find . -mindepth 1) | while read -r p; do
		stat "$M/${p#./}" >/dev/null 2>&1 || true
	done
}

switch_to() {
	probe "$1"
	tcairn "$STORE" upgrade pw "$1" >"$WORK/up.out" || fail "upgrade pw $1 failed"
	grep -q "mount $M (pid .*): switched" "$WORK/up.out" || fail "the mount did not switch to $1"
	exists "$M" >"$WORK/live.exists"
}

say "to B: gone/ deleted, swap/d a file, f a directory, link changed, new/ added"
switch_to B
[ "$(ls "$M/gone" | tr '\n' ' ')" = "added sub2 " ] || soft_fail "gone/ on B lists '$(ls "$M/gone" | tr '\n' ' ')', want 'added sub2'"
[ ! -e "$M/gone/g" ] || soft_fail "gone/g (deleted by B) still shows"
printf 'x\n' >>"$M/gone/g"
[ "$(cat "$M/gone/g")" = x ] || soft_fail "an append to gone/g (deleted by B) copied A's file up: '$(cat "$M/gone/g")'"
rm "$M/gone/g"
[ "$(ls "$M/swap/d" | tr '\n' ' ')" = "added " ] || soft_fail "swap/d on B lists '$(ls "$M/swap/d" | tr '\n' ' ')', want 'added'"
[ "$(ls "$M/new" | tr '\n' ' ')" = "mine n " ] || soft_fail "new/ on B lists '$(ls "$M/new" | tr '\n' ' ')', want 'mine n'"
[ "$(readlink "$M/link")" = two ] || soft_fail "link on B points to '$(readlink "$M/link")'"
[ "$(cat "$M/f/inner" 2>&1)" = "inner of B" ] || soft_fail "f/inner on B: '$(cat "$M/f/inner" 2>&1)'"
compare "on B"

say "to C: gone/ back with other contents, swap/d a directory again, new/ gone from the image"
switch_to C
[ "$(ls "$M/gone" | tr '\n' ' ')" = "added g2 sub2 " ] || soft_fail "gone/ on C lists '$(ls "$M/gone" | tr '\n' ' ')'"
[ "$(ls "$M/swap/d" | tr '\n' ' ')" = "added deeper " ] || soft_fail "swap/d on C lists '$(ls "$M/swap/d" | tr '\n' ' ')'"
[ "$(ls "$M/new" | tr '\n' ' ')" = "mine " ] || soft_fail "new/ on C lists '$(ls "$M/new" | tr '\n' ' ')', want 'mine'"
compare "on C"

for v in A B; do
	say "to $v again"
	switch_to "$v"
	compare "on $v again"
done
umount_ok "$STORE" "$M"
finish
