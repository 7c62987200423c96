#!/bin/bash
# gc_race.sh - gc never takes what another command is naming (store/gc.h,
# the naming protocol). On a store whose image takes gc a while to mark (200k
# nodes), each round makes an image no name keeps, starts gc, and while it
# marks names that image: tag, upgrade, rollback (with --keep 1, which
# prunes the generation the rollback goes back to), a pinned mount, or a
# commit of an upper made on it. The naming command either succeeds, and
# then its name reads, or fails with one line; after every round fsck is
# clean and every tag, platform and mount reads. ($GC_RACE_ROUNDS, default 20.)
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
mount_setup
STORE=$WORK/store
ROUNDS=${GC_RACE_ROUNDS:-20}
OPS=(tag upgrade rollback mount commit)

say "a store with an image of 200k nodes (what makes marking take a while)"
python3 "$TESTLIB/tarbomb.py" 200000 --distinct >"$WORK/big.tar"
import_ok "$STORE" "$WORK/big.tar" --tag big
rm -f "$WORK/big.tar"
t0=$(date +%s%N)
cairn_in "$STORE" gc >/dev/null || fail "gc"
info "gc marks it in $((($(date +%s%N) - t0) / 1000000)) ms"
cairn_in "$STORE" upgrade roll big >/dev/null || fail "upgrade roll big"

# unnamed I: an image of its own (one file holding I) that no name keeps
unnamed() {
	rm -rf "$WORK/u" && mkdir -p "$WORK/u" && echo "round $1" >"$WORK/u/f"
	import_ok "$STORE" "$WORK/u"
	U=$ID
}

# every name reads: tags and platforms (their file; big and the platform on
# it, a file of theirs), mounts (theirs)
names_read() {
	local n
	run_capture fsck cairn_in "$STORE" fsck
	[ "$RC" -eq 0 ] || { show_file "$WORK/fsck.out"; soft_fail "round $1: fsck exited $RC"; }
	for n in $(cairn_in "$STORE" images --json | python3 -c '
import json, sys
for i in json.load(sys.stdin):
    for t in i.get("tags", []):
        print(t)') $(cairn_in "$STORE" platforms --json | python3 -c '
import json, sys
for p in json.load(sys.stdin):
    print(p["platform"])'); do
		if cairn_in "$STORE" stat "$n:d0199/f0199999" >/dev/null 2>&1; then
			:
		else
			cairn_in "$STORE" cat "$n:f" >/dev/null 2>"$WORK/cat.err" ||
				soft_fail "round $1: name '$n' does not read: $(cat "$WORK/cat.err")"
		fi
	done
	for m in "$WORK"/m*; do
		[ -d "$m" ] && is_mounted "$m" || continue
		timeout 10 cat "$m/f" >/dev/null 2>&1 || soft_fail "round $1: mount $m does not read"
	done
}

# outcome WHAT: the naming command ($WORK/op.*) succeeded or failed with one line
outcome() {
	if [ "$RC" -eq 0 ]; then
		ok=$((ok + 1))
	elif [ "$RC" -ge 126 ] || [ "$(wc -l <"$WORK/op.err")" != 1 ] ||
		! grep -q '^cairn: ' "$WORK/op.err"; then
		show_file "$WORK/op.err"
		soft_fail "round $r: $1 exited $RC without one clear line"
	else
		refused=$((refused + 1))
		info "round $r: $1 refused: $(cut -c1-160 "$WORK/op.err")"
	fi
}

ok=0
refused=0
for ((r = 1; r <= ROUNDS; r++)); do
	op=${OPS[$(((r - 1) % ${#OPS[@]}))]}
	unnamed "$r"
	gcargs=()
	case $op in
	rollback)
		# roll: U, then big; U is named by its generation only, which
		# gc --keep 1 prunes while the rollback goes back to it
		cairn_in "$STORE" upgrade roll "$U" >/dev/null || fail "upgrade roll"
		cairn_in "$STORE" upgrade roll big >/dev/null || fail "upgrade roll"
		gcargs=(--keep 1)
		;;
	commit)
		mkdir -p "$WORK/c$r"
		mount_ok "$STORE" "$U" "$WORK/c$r" --upper "$WORK/up$r"
		echo "committed $r" >"$WORK/c$r/g"
		tcairn "$STORE" umount "$WORK/c$r" || fail "umount"
		sleep 0.5
		;;
	esac
	cairn_in "$STORE" gc "${gcargs[@]}" >"$WORK/gc.out" 2>"$WORK/gc.err" &
	gcpid=$!
	# gc --keep 1 prunes first thing: the rollback starts at once, to win sometimes
	if [ "$op" = rollback ]; then sleep "0.0$((RANDOM % 3))"; else sleep "0.$((RANDOM % 7))"; fi
	case $op in
	tag) run_capture op cairn_in "$STORE" tag "$U" "keep$r" ;;
	upgrade) run_capture op cairn_in "$STORE" upgrade "plat$r" "$U" ;;
	rollback) run_capture op cairn_in "$STORE" rollback roll ;;
	mount)
		mkdir -p "$WORK/m$r"
		_track_mount "$WORK/m$r" "$STORE"
		run_capture op tcairn "$STORE" mount "$U" "$WORK/m$r" --ro
		;;
	commit) run_capture op cairn_in "$STORE" commit "$WORK/up$r" --tag "commit$r" ;;
	esac
	op_rc=$RC
	outcome "$op"
	wait "$gcpid" || grep -q "is running" "$WORK/gc.err" ||
		{ show_file "$WORK/gc.err"; soft_fail "round $r: gc failed"; }
	names_read "$r ($op)"
	if [ "$op" = mount ] && [ "$op_rc" -eq 0 ]; then
		[ "$(timeout 10 cat "$WORK/m$r/f")" = "round $r" ] || soft_fail "round $r: the mount does not read its image"
		tcairn "$STORE" umount "$WORK/m$r" || soft_fail "umount m$r"
	fi
done
info "$ROUNDS rounds: $ok named while gc ran, $refused refused with one line"
[ "$ok" -gt 0 ] || soft_fail "no naming command ever succeeded beside gc"
finish
