#!/bin/bash
# upper_remount.sh - mounting the same upper again shows the same view: a
# seeded mix of 1000 operations of every kind (tests/lib/fsmodel.py) on a
# writable mount, then treedump of the view (every attribute, mtimes to
# the nanosecond, xattrs, hard links); unmounted, mounted again on another
# mountpoint with the kernel caches dropped: the identical treedump; and
# once more after a clean unmount without any change in between.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
# shellcheck source=../lib/upper.sh
source "$TESTLIB/upper.sh"
upper_setup

SRC=$WORK/src
REF=$WORK/ref
UP=$WORK/upper
python3 "$FSMODEL" mkimage "$SRC"
python3 "$FSMODEL" mkimage "$REF"
upper_base "$SRC" base

say "1000 operations on a writable mount"
upper_mount base "$WORK/m1" "$UP"
# the operations only need to run (--keep-going): upper_model.sh judges them
timeout -k 5 600 python3 "$FSMODEL" run --ref "$REF" --sut "$WORK/m1" --seed 11 --ops 1000 \
	--priv "$U_PRIV" --keep-going >"$WORK/run.out" || soft_fail "the operations did not run"
cat "$WORK/run.out"
dump "$WORK/m1" "$WORK/view1.dump"
info "$(wc -l <"$WORK/view1.dump") entries in the view"
upper_umount "$WORK/m1"

say "mounted again elsewhere, caches dropped: the same view"
drop_caches
upper_mount base "$WORK/m2" "$UP"
dump "$WORK/m2" "$WORK/view2.dump"
same_dump "$WORK/view1.dump" "$WORK/view2.dump" "the view before and after a remount"
upper_umount "$WORK/m2"
upper_mount base "$WORK/m1" "$UP"
dump "$WORK/m1" "$WORK/view3.dump"
same_dump "$WORK/view1.dump" "$WORK/view3.dump" "the view after a second remount"
upper_umount "$WORK/m1"

finish
