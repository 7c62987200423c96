#!/bin/bash
# upper_changes.sh - 'cairn changes UPPERDIR' lists what a container
# changed like 'docker diff': 'A /p' added, 'C /p' changed (content or
# metadata), 'D /p' deleted (a deleted directory once, not its content);
# directories above a change may show as 'C', everything below an added
# directory as 'A'. --json carries the same paths. An untouched upper lists
# nothing. And a commit stores only what changed: after adding one 300 KB
# file the store grows by about that file (cairn du stored_bytes), after
# appending one byte to a 4 MiB image file by far less than the file.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
# shellcheck source=../lib/upper.sh
source "$TESTLIB/upper.sh"
upper_setup

SRC=$WORK/src
MNT=$WORK/mnt
mkdir -p "$SRC"/{etc,dir,gone/sub,keep}
for f in a b c; do printf '%s\n' "$f" >"$SRC/etc/$f"; done
printf 'x\n' >"$SRC/dir/x"
printf 'y\n' >"$SRC/dir/y"
printf '1\n' >"$SRC/gone/1"
printf '2\n' >"$SRC/gone/sub/2"
printf 'k\n' >"$SRC/keep/k"
head -c $((4 << 20)) /dev/urandom >"$SRC/big"
upper_base "$SRC" base

say "an untouched upper has no changes"
upper_mount base "$MNT" "$WORK/up0"
upper_umount "$MNT"
upper_changes "$WORK/up0" base >"$WORK/changes0" || soft_fail "changes of an untouched upper failed"
[ ! -s "$WORK/changes0" ] || { soft_fail "an untouched upper lists changes"; show_file "$WORK/changes0"; }

say "a container's changes"
UP=$WORK/up1
upper_mount base "$MNT" "$UP"
(
	set -e
	cd "$MNT"
	printf 'changed\n' >etc/a
	chmod 600 etc/b
	rm etc/c
	rm -r gone
	mkdir -p new/deep
	printf 'f\n' >new/deep/f
	printf 'n\n' >etc/new
	mv dir/x dir/x2
) || soft_fail "the changes failed on the mount"
upper_umount "$MNT"
upper_changes "$UP" base >"$WORK/changes" || soft_fail "changes exited non-zero"
show_file "$WORK/changes"
python3 - "$WORK/changes" <<'EOF' || soft_fail "the changes listed are wrong"
import sys
want = {("C", "/etc/a"), ("C", "/etc/b"), ("D", "/etc/c"), ("D", "/gone"), ("A", "/new"),
        ("A", "/new/deep"), ("A", "/new/deep/f"), ("A", "/etc/new"), ("D", "/dir/x"), ("A", "/dir/x2")}
got = set()
bad = []
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if len(line) < 4 or line[0] not in "ACD" or line[1:3] != " /":
        bad.append("not an 'A|C|D /path' line: %r" % line)
        continue
    got.add((line[0], line[2:]))
for w in sorted(want - got):
    bad.append("missing: %s %s" % w)
for kind, p in sorted(got - want):
    above = any(q.startswith(p.rstrip("/") + "/") for _, q in want)
    if kind == "C" and above:
        continue  # a directory above a change
    if kind == "D" and p.startswith("/gone/"):
        bad.append("lists %s %s: below a deleted directory nothing more" % (kind, p))
        continue
    bad.append("unexpected: %s %s" % (kind, p))
for x in ("/keep", "/keep/k", "/dir/y", "/big", "/etc/b"):
    if ("C", x) in got and x != "/etc/b":
        bad.append("lists untouched %s as changed" % x)
for b in bad:
    print("   " + b)
sys.exit(1 if bad else 0)
EOF
if sut_is cairn; then
	run_capture changesjson cairn_in "$STORE" changes "$UP" --json
	if [ "$RC" -ne 0 ]; then
		soft_fail "changes --json exited $RC"
	else
		python3 - "$WORK/changesjson.out" <<'EOF' || soft_fail "changes --json"
import json, sys
j = json.load(open(sys.argv[1]))
text = json.dumps(j)
missing = [p for p in ("/etc/a", "/etc/c", "/gone", "/new/deep/f", "/dir/x2") if '"%s"' % p not in text]
if missing:
    sys.exit("   changes --json lacks %s" % missing)
print("   ok: changes --json names the same paths")
EOF
	fi
	expect_error "changes of a missing directory" cairn_in "$STORE" changes "$WORK/no-such-upper"
fi

# stored BYTES: the store's stored_bytes (cairn du --json)
stored() { cairn_in "$STORE" du --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["stored_bytes"])'; }

say "a commit stores about what changed"
before=$(stored)
UP=$WORK/up2
upper_mount base "$MNT" "$UP"
head -c 300000 /dev/urandom >"$MNT/etc/one"
upper_umount "$MNT"
upper_commit "$UP" base one
delta=$(($(stored) - before))
info "one new 300000-byte file: the store grew by $delta bytes"
[ "$delta" -ge 270000 ] && [ "$delta" -le $((300000 + 131072)) ] ||
	soft_fail "a commit of one new 300000-byte file stored $delta bytes"

before=$(stored)
UP=$WORK/up3
upper_mount base "$MNT" "$UP"
printf 'x' >>"$MNT/big"
upper_umount "$MNT"
upper_commit "$UP" base append
delta=$(($(stored) - before))
info "one byte appended to a 4 MiB image file: the store grew by $delta bytes"
[ "$delta" -gt 0 ] && [ "$delta" -le $((512 << 10)) ] ||
	soft_fail "a commit of a one-byte append to a 4 MiB file stored $delta bytes"
cairn_in "$STORE" cat append:big | cmp -s - <(cat "$SRC/big" <(printf x)) ||
	soft_fail "the committed big file is not the image's plus one byte"

finish
