#!/bin/bash
# upper_hidden.sh - after a live upgrade, a writable mount's upper stays on
# top (overlayfs's rule), so a file the container only chmod'ed or appended
# to keeps the old image's data. upgrade and rollback say so, per writable
# mount: how many upper entries hide paths the switch changed and the
# first ones; 'cairn changes UPPER --against OLD' lists exactly those
# entries with what the upper has there (metacopy, copy, whiteout, opaque,
# directory), and nothing the switch did not touch or the upper does not
# hide.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
# shellcheck source=../lib/upper.sh
source "$TESTLIB/upper.sh"
upper_setup
cairn_only "cairn changes --against"

A=$WORK/a
B=$WORK/b
MNT=$WORK/mnt
UP=$WORK/upper
mkdir -p "$A"/{bin,lib,etc/conf.d,opt/dir,var}
for f in bin/apt lib/libapt.so etc/hosts etc/conf.d/x opt/dir/f var/log bin/same; do
	echo "v1 $f" >"$A/$f"
done
cp -a "$A" "$B"
for f in bin/apt lib/libapt.so etc/conf.d/x opt/dir/f var/log; do
	echo "v2 $f" >"$B/$f"
done
echo new >"$B/opt/dir/added"
upper_base "$A" a
upper_base "$B" b
cairn_in "$STORE" upgrade p a >/dev/null || fail "upgrade p a"

upper_mount p "$MNT" "$UP"
chmod 0700 "$MNT/bin/apt"                  # metadata only: keeps reading a's bytes
echo more >>"$MNT/lib/libapt.so"           # an append: a's bytes by reference, then its own
rm "$MNT/etc/conf.d/x"                     # deleted: b's new x stays hidden
rm -r "$MNT/opt/dir" && mkdir "$MNT/opt/dir" && echo mine >"$MNT/opt/dir/mine" # opaque
echo "v1 etc/hosts, edited" >"$MNT/etc/hosts" # b did not change it: no news
chmod 0600 "$MNT/bin/same"                 # b did not change it either

say "the upgrade says what the upper hides"
run_capture up cairn_in "$STORE" upgrade p b
show_file "$WORK/up.out"
[ "$RC" -eq 0 ] || soft_fail "upgrade exited $RC"
grep -q "its upper hides 4 paths this switch changed: /bin/apt, /etc/conf.d/x, /lib/libapt.so, ..." "$WORK/up.out" ||
	soft_fail "upgrade does not report the 4 hidden paths"
grep -q -- "--against $(cairn_in "$STORE" images --json | python3 -c '
import json, sys
print([i["id"][:12] for i in json.load(sys.stdin) if "a" in i["tags"]][0])')" "$WORK/up.out" ||
	soft_fail "upgrade does not name the command with the old image"
[ "$(cat "$MNT/bin/apt")" = "v1 bin/apt" ] || soft_fail "bin/apt: the metacopy did not keep a's bytes (the rule changed?)"
[ "$(cat "$MNT/var/log")" = "v2 var/log" ] || soft_fail "var/log, untouched, does not show b's bytes"

say "changes --against lists them"
run_capture ch cairn_in "$STORE" changes "$UP" --against a
show_file "$WORK/ch.out"
printf '%s\n' "metacopy /bin/apt" "whiteout /etc/conf.d/x" "metacopy /lib/libapt.so" "opaque /opt/dir" >"$WORK/want"
diff -u "$WORK/want" "$WORK/ch.out" || soft_fail "changes --against lists other entries"
run_capture chj cairn_in "$STORE" changes "$UP" --against a --json
python3 - "$WORK/chj.out" <<'PY' || soft_fail "changes --against --json"
import json, sys
got = [(e["path"], e["upper"], e["image"]) for e in json.load(open(sys.argv[1]))]
want = [("/bin/apt", "metacopy", "modified"), ("/etc/conf.d/x", "whiteout", "modified"),
        ("/lib/libapt.so", "metacopy", "modified"), ("/opt/dir", "opaque", "modified")]
assert got == want, got
PY

say "a rollback reports the same entries the other way"
run_capture rb cairn_in "$STORE" rollback p
grep -q "its upper hides 4 paths" "$WORK/rb.out" || { show_file "$WORK/rb.out"; soft_fail "rollback does not report the hidden paths"; }
upper_umount "$MNT"
finish
