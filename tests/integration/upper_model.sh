#!/bin/bash
# upper_model.sh - model-based test of the writable layer: a seeded random
# sequence of thousands of operations (create, mkdir, mknod of devices,
# fifos and sockets, symlink, link (also to image files), unlink, rmdir,
# rename of files and directories across directories with RENAME_NOREPLACE
# and RENAME_EXCHANGE, open with O_TRUNC, O_APPEND, O_CREAT|O_EXCL, write,
# truncate, fallocate, chmod, chown, utimens, setxattr, removexattr, fsync,
# fdatasync, flock, OFD and POSIX locks, statfs, some as uid 1000), failing
# ones included, runs on a writable mount of an image and on a plain copy
# of the same tree; every outcome and errno must match, and so must the
# trees (tests/lib/fsmodel.py). Then the upper is mounted again: the same
# view.
#
#   UPPER_MODEL_SEEDS  seeds to run ("1 2"); each is reproducible on its own
#   UPPER_MODEL_OPS    operations per seed (2000); e.g. 50000 for a long run
#   UPPER_MODEL_LAX    known differences to tolerate (fsmodel.py --lax);
#                      the peers' defaults are below, cairn has none
#   UPPER_SUT          cairn (default), overlayfs, fuse-overlayfs
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
# shellcheck source=../lib/upper.sh
source "$TESTLIB/upper.sh"

SEEDS=${UPPER_MODEL_SEEDS:-1 2}
OPS=${UPPER_MODEL_OPS:-2000}
case $UPPER_SUT in
cairn) LAX=${UPPER_MODEL_LAX-} ;;
# overlayfs: a failed rename may still copy up and so change a directory's
# mtime; a lower file unlinked while open keeps st_nlink 1; and with
# metacopy=on a data copy-up resets the file's mtime to now (6.18): the
# model runs it with metacopy=off
overlayfs)
	LAX=${UPPER_MODEL_LAX-dirmtime,unlinked-nlink}
	# shellcheck disable=SC2034 # read by upper_mount
	UPPER_OVL_OPTS=index=on,redirect_dir=on,metacopy=off
	;;
fuse-overlayfs) LAX=${UPPER_MODEL_LAX-dirmtime,unlinked-nlink} ;;
esac
upper_setup

SRC=$WORK/src
REF=$WORK/ref
MNT=$WORK/mnt

say "the image: every kind of entry and attribute"
python3 "$FSMODEL" mkimage "$SRC"
info "$(find "$SRC" | wc -l) entries"
upper_base "$SRC" base

for seed in $SEEDS; do
	say "seed $seed: $OPS operations on the mount and on a plain copy"
	rm -rf "$REF"
	python3 "$FSMODEL" mkimage "$REF"
	UP=$WORK/upper-$seed
	upper_mount base "$MNT" "$UP"
	t0=$(($(date +%s%N) - 2000000000))
	t=$(date +%s)
	if ! timeout -k 5 1800 python3 "$FSMODEL" run --ref "$REF" --sut "$MNT" --seed "$seed" \
		--ops "$OPS" --priv "$U_PRIV" --t0 "$t0" --lax "$LAX"; then
		soft_fail "seed $seed: the mount diverged from the plain tree (rerun: UPPER_MODEL_SEEDS=$seed UPPER_MODEL_OPS=$OPS)"
		upper_umount "$MNT"
		continue
	fi
	info "$(($(date +%s) - t)) s"
	upper_umount "$MNT"

	say "seed $seed: mounted again, the upper shows the same tree"
	upper_mount base "$MNT" "$UP"
	timeout -k 5 600 python3 "$FSMODEL" compare --ref "$REF" --sut "$MNT" --t0 "$t0" --lax "$LAX" ||
		soft_fail "seed $seed: after a remount the view differs from the plain tree"
	upper_umount "$MNT"
done

finish
