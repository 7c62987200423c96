#!/bin/bash
# upper_commit.sh - run a container, change things, commit: the busybox
# root filesystem of examples/mkrootfs.sh is mounted writable, a shell in
# chroot edits, adds, deletes (a file, an applet symlink, a whole
# directory), replaces a directory and makes an executable; 'cairn commit'
# turns the upper into image v2. v2 is exactly the container's view
# (treedump of an export and of a read-only mount of v2 against the view);
# the deletions are gone from v2 ('cairn ls', 'cairn cat', no whiteout
# or .wh. entry in the export); a chroot into v2 runs the new executable;
# v1 is unchanged; fsck is clean. Bad commits (a missing upper, an
# unknown image) fail with one line and change nothing. No network.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
# shellcheck source=../lib/upper.sh
source "$TESTLIB/upper.sh"
upper_setup

ROOTFS=$WORK/rootfs
MNT=$WORK/mnt
UP=$WORK/upper
run_capture mkrootfs bash "$TESTLIB/../../examples/mkrootfs.sh" "$ROOTFS" 1
[ "$RC" -eq 0 ] || { show_file "$WORK/mkrootfs.err"; fail "examples/mkrootfs.sh failed"; }
upper_base "$ROOTFS" v1
dump "$ROOTFS" "$WORK/v1.dump"

say "a container changes its root filesystem"
upper_mount v1 "$MNT" "$UP"
run_capture chroot timeout -k 5 60 chroot "$MNT" /bin/sh -ec '
	echo "hello from the container" >/etc/motd
	sed -i s/cairn-demo/committed/ /etc/hostname
	rm /usr/share/doc/README
	rm /bin/vi
	rm -r /var/log
	mkdir -p /opt/app/lib
	printf "#!/bin/sh\necho app runs\n" >/opt/app/run
	chmod 755 /opt/app/run
	ln -s /opt/app/run /usr/bin/app
	rm -r /root && mkdir -m 700 /root && echo history >/root/.ash_history
	chown 65534:65534 /tmp
	app
'
[ "$RC" -eq 0 ] && [ "$(cat "$WORK/chroot.out")" = "app runs" ] ||
	{ show_file "$WORK/chroot.err"; soft_fail "the container's shell failed (exit $RC)"; }
dump "$MNT" "$WORK/view.dump"
upper_umount "$MNT"

say "commit"
if sut_is cairn; then
	remember_store "$STORE"
	expect_error "commit of a missing upper" cairn_in "$STORE" commit "$WORK/no-such-upper" --on v1 --tag bad
	expect_error "commit on an unknown image" cairn_in "$STORE" commit "$UP" --on no-such-image --tag bad
	store_unchanged "$STORE" "after the refused commits"
fi
upper_commit "$UP" v1 v2 -m "the container's changes"

say "v2 is the container's view"
export_extract "$STORE" v2 "$WORK/v2x" && {
	dump "$WORK/v2x" "$WORK/v2x.dump" --ignore-root
	grep -v '^\. ' "$WORK/view.dump" >"$WORK/view-noroot.dump"
	same_dump "$WORK/view-noroot.dump" "$WORK/v2x.dump" "the export of v2 vs the container's view"
}
mkdir -p "$WORK/ro"
mount_ok "$STORE" v2 "$WORK/ro" --ro
dump "$WORK/ro" "$WORK/ro.dump"
same_dump "$WORK/view.dump" "$WORK/ro.dump" "v2 mounted read-only vs the container's view"
run_capture chroot2 timeout -k 5 60 chroot "$WORK/ro" /bin/sh -c 'app; cat /etc/motd /etc/hostname'
[ "$(cat "$WORK/chroot2.out")" = "$(printf 'app runs\nhello from the container\ncommitted')" ] ||
	soft_fail "chroot into v2: '$(cat "$WORK/chroot2.out" "$WORK/chroot2.err")'"
umount_ok "$STORE" "$WORK/ro"

say "the deletions are gone from v2"
cairn_in "$STORE" ls v2:usr/share/doc >"$WORK/ls-doc" 2>&1 || true
grep -q README "$WORK/ls-doc" && soft_fail "cairn ls v2:usr/share/doc still lists README"
cairn_in "$STORE" cat v2:usr/share/doc/README >/dev/null 2>&1 && soft_fail "cairn cat v2:usr/share/doc/README succeeds"
cairn_in "$STORE" ls v2:var >"$WORK/ls-var" 2>&1 || soft_fail "cairn ls v2:var failed"
grep -qw log "$WORK/ls-var" && soft_fail "cairn ls v2:var still lists log"
cairn_in "$STORE" ls v2:bin | grep -qx 'vi' && soft_fail "cairn ls v2:bin still lists vi"
cairn_in "$STORE" ls v2:root >"$WORK/ls-root" 2>&1
[ "$(cat "$WORK/ls-root")" = .ash_history ] || soft_fail "v2:root lists '$(tr '\n' ' ' <"$WORK/ls-root")', want only .ash_history"
cairn_in "$STORE" export v2 -o "$WORK/v2.tar"
bsdtar -tvf "$WORK/v2.tar" >"$WORK/v2.list"
grep -E '(^|/)\.wh\.|^c[-rwx]+ .* 0,0 ' "$WORK/v2.list" && soft_fail "the export of v2 carries whiteouts"
info "ok: $(wc -l <"$WORK/v2.list") entries exported, no whiteouts"

say "names every tar and OCI reader takes for whiteouts: kept, and export refuses them"
upper_mount v2 "$MNT" "$WORK/upper3"
run_capture wh timeout -k 5 60 chroot "$MNT" /bin/sh -ec 'echo x >/etc/.wh.passwd; mkdir /d; : >/d/.wh..wh..opq'
[ "$RC" -eq 0 ] || soft_fail "the container could not make .wh. names: $(cat "$WORK/wh.err")"
upper_umount "$MNT"
upper_commit "$WORK/upper3" v2 v3
cairn_in "$STORE" ls v3:etc | grep -qx '.wh.passwd' || soft_fail "commit lost etc/.wh.passwd"
cairn_in "$STORE" ls v3:d | grep -qx '.wh..wh..opq' || soft_fail "commit lost d/.wh..wh..opq"
expect_error "export of an image with a .wh. name" cairn_in "$STORE" export v3 -o "$WORK/v3.tar"
grep -q "'d/.wh..wh..opq'\|'etc/.wh.passwd'" "$WORK/experr.err" || soft_fail "the error does not name the path"
[ ! -e "$WORK/v3.tar" ] || soft_fail "a refused export left $WORK/v3.tar"
expect_error "export --oci of an image with a .wh. name" cairn_in "$STORE" export v3 --oci "$WORK/oci3:v3"
grep -q "'d/.wh..wh..opq'\|'etc/.wh.passwd'" "$WORK/experr.err" || soft_fail "the OCI error does not name the path"
! grep -qs '"v3"' "$WORK/oci3/index.json" || soft_fail "a refused export --oci named v3 in index.json"

say "v1 is unchanged; fsck is clean"
dump "$ROOTFS" "$WORK/v1-again.dump"
same_dump "$WORK/v1.dump" "$WORK/v1-again.dump" "the source of v1"
export_extract "$STORE" v1 "$WORK/v1x" && {
	dump "$WORK/v1x" "$WORK/v1x.dump" --ignore-root
	grep -v '^\. ' "$WORK/v1.dump" >"$WORK/v1-noroot.dump"
	same_dump "$WORK/v1-noroot.dump" "$WORK/v1x.dump" "the export of v1 vs its source"
}
run_capture fsck cairn_in "$STORE" fsck
[ "$RC" -eq 0 ] || { show_file "$WORK/fsck.out"; soft_fail "fsck after the commit exited $RC"; }

finish
