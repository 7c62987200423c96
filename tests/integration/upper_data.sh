#!/bin/bash
# upper_data.sh - data integrity of the writable layer: random preads,
# pwrites (inside, across and past the end), truncates (by fd and by path),
# fallocate and hole punching, and mmap writes (MAP_SHARED, msync or not)
# on every regular file of an image (large, sparse, empty, hard-linked:
# writes through one name are read through another), checked against an
# in-memory model of their bytes. Reads also go through descriptors opened
# before the first write (they must see the writes) and after fsync plus
# POSIX_FADV_DONTNEED (the page cache dropped: the bytes come from the
# filesystem). After a remount with the kernel caches dropped, every file
# still holds the model's bytes.
#
#   UPPER_DATA_SEED (1), UPPER_DATA_OPS (4000), UPPER_SUT (cairn)
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
# shellcheck source=../lib/upper.sh
source "$TESTLIB/upper.sh"
upper_setup

SEED=${UPPER_DATA_SEED:-1}
OPS=${UPPER_DATA_OPS:-4000}
SRC=$WORK/src
MNT=$WORK/mnt
UP=$WORK/upper

say "the image"
python3 "$FSMODEL" mkimage "$SRC"
upper_base "$SRC" base
info "$(find "$SRC" -type f | wc -l) regular files, $(du -sh --apparent-size "$SRC" | cut -f1) apparent"

say "seed $SEED: $OPS reads and writes checked against the model"
upper_mount base "$MNT" "$UP"
timeout -k 5 900 python3 "$FSMODEL" data --orig "$SRC" --sut "$MNT" --seed "$SEED" --ops "$OPS" \
	--state "$WORK/state.json" || fail "the bytes read differ from the model (rerun: UPPER_DATA_SEED=$SEED)"
upper_umount "$MNT"

say "mounted again, caches dropped: the files hold the model's bytes"
drop_caches
upper_mount base "$MNT" "$UP"
timeout -k 5 300 python3 "$FSMODEL" verify --sut "$MNT" --state "$WORK/state.json" ||
	soft_fail "after a remount the files differ from the model"
upper_umount "$MNT"

say "the image itself is unchanged"
python3 "$FSMODEL" mkimage "$WORK/again"
dump "$SRC" "$WORK/src.dump"
dump "$WORK/again" "$WORK/again.dump"
same_dump "$WORK/again.dump" "$WORK/src.dump" "the lower tree after the writes"
if sut_is cairn; then
	mount_ok "$STORE" base "$MNT" --ro
	dump "$MNT" "$WORK/ro.dump"
	same_dump "$WORK/src.dump" "$WORK/ro.dump" "the image, mounted read-only after the writes"
	umount_ok "$STORE" "$MNT"
fi

finish
