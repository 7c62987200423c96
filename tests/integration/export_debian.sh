#!/bin/bash
# export_debian.sh - export and import round-trip exactly on a real system:
# the shared Debian minbase tree imported, exported as a tar and into an
# OCI layout, and each imported again gives the same image id (the root's
# own attributes travel as the archive's './' entry).
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/debian.sh
source "$TESTLIB/debian.sh"
setup
debian_tree
STORE=$WORK/store

say "import, export, import again: the same id"
import_ok "$STORE" "$DEBIAN" --tag deb
ID0=$ID
run_capture export cairn_in "$STORE" export deb -o "$WORK/deb.tar"
[ "$RC" -eq 0 ] || { show_file "$WORK/export.err"; fail "export exited $RC"; }
bsdtar -tvf "$WORK/deb.tar" | head -n 1 | grep -q ' \./$' || soft_fail "the tar does not start with './'"
import_ok "$STORE" "$WORK/deb.tar" --tag from-tar
[ "$ID" = "$ID0" ] || {
	cairn_in "$STORE" diff deb from-tar | head -n 5
	soft_fail "export then import of the tar gives $ID, not $ID0"
}
info "tar: $ID"

run_capture oci cairn_in "$STORE" export deb --oci "$WORK/oci:deb"
[ "$RC" -eq 0 ] || { show_file "$WORK/oci.err"; fail "export --oci exited $RC"; }
import_ok "$STORE" "oci:$WORK/oci:deb" --tag from-oci
[ "$ID" = "$ID0" ] || soft_fail "export --oci then import gives $ID, not $ID0"
info "oci: $ID"
finish
