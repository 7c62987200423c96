#!/bin/bash
# run.sh - the project's one test command: installs what is missing,
# configures, builds and runs every test suite (unit and integration).
#
#   tests/run.sh               build in build/ (and the release configuration
#                              in build-release/), run all suites
#   tests/run.sh --sanitize    the same in build-asan/ with ASan and UBSan
#                              (also: CAIRN_SANITIZE=1 tests/run.sh); every
#                              process reports to build-asan/sanitizer-logs/
#                              (detached daemons too), and any report fails it
#   tests/run.sh [--sanitize] [--suite NAME] [TEST...]
#                              extra arguments go to 'meson test'
set -euo pipefail

cd "$(dirname "$0")/.."

sanitize=${CAIRN_SANITIZE:-0}
args=()
while [ $# -gt 0 ]; do
	case "$1" in
	--sanitize) sanitize=1 ;;
	*) args+=("$1") ;;
	esac
	shift
done

./scripts/install-deps.sh --test

builddir=build
setup_opts=()
if [ "$sanitize" = 1 ]; then
	builddir=build-asan
	setup_opts=(-Db_sanitize=address,undefined -Db_lundef=false)
	# a daemon detaches with stderr on /dev/null: every process writes its
	# report to a file here instead (one per pid), and any file fails the run
	sanlogs=$PWD/$builddir/sanitizer-logs
	rm -rf "$sanlogs"
	mkdir -p "$sanlogs"
	chmod 1777 "$sanlogs" # the tests' uid-1000 processes report too
	export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:log_path=$sanlogs/asan}
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:log_path=$sanlogs/ubsan}
fi

# configure DIR [OPTS...]: a build directory, reconfigured when it exists
configure() {
	local dir=$1
	shift
	if [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" "$@" || meson setup --wipe "$dir" "$@"
	else
		meson setup "$dir" "$@" || meson setup --wipe "$dir" "$@"
	fi
}

configure "$builddir" "${setup_opts[@]}"
meson compile -C "$builddir"
# what a packager builds (-O3 warns about what -O2 does not; warnings are
# errors): built every time, in build-release/, so it cannot break unseen
if [ "$sanitize" = 0 ]; then
	configure build-release --buildtype=release
	meson compile -C build-release
fi

rc=0
meson test -C "$builddir" --print-errorlogs "${args[@]}" || rc=$?
if [ "$sanitize" = 1 ] && [ -n "$(ls -A "$sanlogs")" ]; then
	for f in "$sanlogs"/*; do
		printf '== sanitizer report %s\n' "$f"
		head -n 60 "$f"
	done
	echo "sanitizers reported $(ls "$sanlogs" | wc -l) process(es): see $sanlogs"
	rc=1
fi

# one closing line that any reader understands, with why anything skipped
python3 - "$builddir/meson-logs/testlog.json" <<'PY' || true
import json, re, sys
n = {"pass": 0, "fail": 0, "skip": 0}
why = []
for line in open(sys.argv[1]):
    t = json.loads(line)
    r = t.get("result", "")
    if r in ("OK", "EXPECTEDFAIL"):
        n["pass"] += 1
    elif r == "SKIP":
        n["skip"] += 1
        # a test says why on a line 'SKIP NAME: REASON'
        m = re.search(r"^SKIP [^:]*: (.*)$", t.get("stdout") or "", re.M)
        why.append("%s: %s" % (t.get("name", "?").split(" / ")[-1],
                               m.group(1) if m else "no reason given"))
    else:
        n["fail"] += 1
line = "tests: %d passed, %d failed, %d skipped" % (n["pass"], n["fail"], n["skip"])
print(line + (" (" + "; ".join(why) + ")" if why else ""))
PY
exit "$rc"
