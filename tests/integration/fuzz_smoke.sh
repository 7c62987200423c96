#!/bin/bash
# fuzz_smoke.sh - a short bounded run of the libFuzzer harnesses (fuzz/).
#
# Builds them with clang into BUILD/fuzz-build, beside the cairn under test
# (a later run rebuilds only what changed), and runs each for a few seconds
# ($CAIRN_FUZZ_SECONDS, default 6) from its checked-in seeds: node and
# value decoding, a damaged store read every way cairn reads one, tar
# import, and OCI layouts. A crash, a sanitizer report or a broken
# invariant fails the test, and so does a harness that never got going.
# Long runs: fuzz/run.sh.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
require_root
setup
require_cmd clang

printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return 0; }\n' \
	>"$WORK/probe.c"
clang -fsanitize=fuzzer,address,undefined -o "$WORK/probe" "$WORK/probe.c" >"$WORK/probe.log" 2>&1 ||
	skip "clang cannot link a libFuzzer program (libclang-rt-dev; scripts/install-deps.sh --test)"

BUILD_ROOT=$(cd "$(dirname "$CAIRN")/.." && pwd)
SECS=${CAIRN_FUZZ_SECONDS:-6}

say "build the harnesses, run each for $SECS s"
out=$("$TESTLIB/../../fuzz/run.sh" -b "$BUILD_ROOT/fuzz-build" -w "$WORK/fuzz" -t "$SECS") || {
	printf '%s\n' "$out"
	fail "a fuzz harness failed (its input and log are named above)"
}
printf '%s\n' "$out" | sed 's/^/   /'

say "every harness ran and reached code"
for h in values store tar oci; do
	line=$(grep "^$h:" <<<"$out") || {
		soft_fail "harness $h did not report"
		continue
	}
	runs=$(awk '{ print $2 }' <<<"$line")
	cov=$(sed -n 's/.* cov \([0-9]*\),.*/\1/p' <<<"$line")
	[ "${runs:-0}" -ge 50 ] || soft_fail "harness $h ran only ${runs:-0} inputs"
	[ "${cov:-0}" -ge 200 ] || soft_fail "harness $h reached only ${cov:-0} edges"
done
finish
