#!/bin/bash
# import_limits.sh - what one import may cost, and what a failed one leaves.
#  - A tar of empty entries (a few MB compressed, millions of entries) is
#    refused past --max-entries (default 1000000) with one line, its memory
#    bounded (the tree's index stays in memory until the archive ends);
#    --max-entries raises the limit.
#  - A directory import that fills the store's disk fails with one line
#    and gives the space back at once: its packs, committed batches too
#    (nothing else ran meanwhile), and the store stays fsck-clean.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
require_root
setup
require_cmd zstd
TARBOMB=$TESTLIB/tarbomb.py
STORE=$WORK/store
RSS_MAX_KB=$((700 << 10))
# AddressSanitizer (tests/run.sh --sanitize) costs 2-3x the memory of what it
# watches (redzones, shadow, a 256 MiB quarantine of freed blocks): the bound
# grows with it rather than the check going away
if grep -q __asan_init "$CAIRN" 2>/dev/null; then
	RSS_MAX_KB=$((RSS_MAX_KB * 3))
fi

say "a tar of 1050000 empty entries: refused past the default limit, memory bounded"
mkdir -p "$WORK/seed"
echo seed >"$WORK/seed/f"
import_ok "$STORE" "$WORK/seed" --tag seed
set +e
python3 "$TARBOMB" 1050000 |
	/usr/bin/time -f '%M' -o "$WORK/rss" "$CAIRN" --store "$STORE" import - >"$WORK/bomb.out" 2>"$WORK/bomb.err"
RC=$?
set -e
rss=$(tail -n 1 "$WORK/rss")
info "exit $RC, $((rss >> 10)) MiB resident: $(head -c 200 "$WORK/bomb.err")"
[ "$RC" -eq 1 ] || soft_fail "import of the entry bomb exited $RC"
[ "$(wc -l <"$WORK/bomb.err")" = 1 ] && grep -q "more than 1000000 entries (--max-entries)" "$WORK/bomb.err" ||
	soft_fail "the refusal is not one line naming --max-entries"
[ ! -s "$WORK/bomb.out" ] || soft_fail "a refused import printed an id"
[ "$rss" -lt "$RSS_MAX_KB" ] || soft_fail "the refused import took $((rss >> 10)) MiB"
python3 "$TARBOMB" 2000 >"$WORK/small.tar"
expect_error "2000 entries with --max-entries 1999" cairn_in "$STORE" import "$WORK/small.tar" --max-entries 1999
import_ok "$STORE" "$WORK/small.tar" --max-entries 2000
expect_error "--max-entries on a directory" cairn_in "$STORE" import "$WORK/seed" --max-entries 5

say "a directory import that fills the disk gives its space back"
SMALL=$WORK/small
mkdir -p "$SMALL" "$WORK/big"
mount -t tmpfs -o size=220m tmpfs "$SMALL"
track_mount "$SMALL"
for i in 1 2 3; do head -c 100M /dev/urandom >"$WORK/big/r$i"; done
import_ok "$SMALL/store" "$WORK/seed" --tag seed
before=$(du -sk "$SMALL" | cut -f1)
expect_error "import onto a full disk" cairn_in "$SMALL/store" import "$WORK/big"
grep -q "No space left on device" "$WORK/experr.err" || soft_fail "the error does not say the disk is full"
after=$(du -sk "$SMALL" | cut -f1)
info "store: $before KiB before, $after KiB after the failed import"
[ "$after" -lt $((before + 4096)) ] || { ls -la "$SMALL/store/packs"; soft_fail "the failed import left $((after - before)) KiB"; }
run_capture fsck cairn_in "$SMALL/store" fsck
[ "$RC" -eq 0 ] || { show_file "$WORK/fsck.out"; soft_fail "fsck after the failed import: exit $RC"; }
import_ok "$SMALL/store" "$WORK/seed" --tag again
finish
