#!/bin/bash
# readme_help.sh - the README's command reference matches the binary as
# built: every command 'cairn --help' lists is in the README with the usage
# line 'cairn COMMAND --help' prints, no README command is missing from the
# binary, and the whole generated block (summaries too) is what
# scripts/readme-commands.sh makes now. Regenerate with:
#   scripts/readme-commands.sh        (CAIRN=path/to/cairn for another build)
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
exec 2>&1
[ -x "$CAIRN" ] || fail "cairn binary not found at '$CAIRN' (set CAIRN)"
REPO=$(cd "$(dirname "$0")/../.." && pwd)
GEN=$REPO/scripts/readme-commands.sh
README=$REPO/README.md
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cairn-readme_help.XXXXXX")
trap _cleanup EXIT
FIX="run scripts/readme-commands.sh to regenerate the README's block"

say "commands and usage lines of the binary ($CAIRN)"
"$CAIRN" --help >"$WORK/help" || fail "cairn --help exited $?"
awk '/^commands:$/ { on = 1; next } on && /^$/ { exit } on && /^  [^ ]/ { print $1 }' \
	"$WORK/help" >"$WORK/bin.names"
[ "$(wc -l <"$WORK/bin.names")" -ge 10 ] || fail "cairn --help lists $(wc -l <"$WORK/bin.names") commands"
: >"$WORK/bin.usage"
while read -r name; do
	"$CAIRN" "$name" --help >"$WORK/cmd.help" || soft_fail "cairn $name --help exited $?"
	line=$(head -n 1 "$WORK/cmd.help")
	case $line in
	"usage: cairn [--store DIR] $name"*) ;;
	*) soft_fail "cairn $name --help starts '$line', not 'usage: cairn [--store DIR] $name'" ;;
	esac
	u=${line#usage: cairn \[--store DIR\] }
	printf '%s\n' "${u%"${u##*[![:space:]]}"}" >>"$WORK/bin.usage"
done <"$WORK/bin.names"
info "$(wc -l <"$WORK/bin.names") commands"

say "the README's command reference"
# the lines of the block that start a command: two spaces, then the usage,
# then (two spaces or more) the summary; continuation lines start deeper
awk '/^<!-- commands: generated/ { on = 1; next } /^<!-- commands: end -->/ { on = 0 }
	on && /^  [^ ]/ { sub(/^  /, ""); sub(/  +.*$/, ""); print }' "$README" >"$WORK/readme.usage"
[ -s "$WORK/readme.usage" ] || fail "README.md has no generated command block ($FIX)"
cut -d' ' -f1 "$WORK/readme.usage" >"$WORK/readme.names"
info "$(wc -l <"$WORK/readme.names") commands"

while read -r usage; do
	name=${usage%% *}
	if ! grep -qx "$name" "$WORK/readme.names"; then
		soft_fail "'$name' (in cairn --help) is missing from the README ($FIX)"
	elif ! grep -qxF "$usage" "$WORK/readme.usage"; then
		soft_fail "README usage of '$name' is '$(grep "^$name\( \|$\)" "$WORK/readme.usage")', the binary's is '$usage' ($FIX)"
	fi
done <"$WORK/bin.usage"
while read -r name; do
	grep -qx "$name" "$WORK/bin.names" || soft_fail "README command '$name' is not in cairn --help ($FIX)"
done <"$WORK/readme.names"

say "the whole block is what the generator makes now (summaries too)"
CAIRN=$CAIRN "$GEN" --check >"$WORK/check.out" 2>&1 || {
	show_file "$WORK/check.out" 40
	soft_fail "README.md differs from scripts/readme-commands.sh --print"
}

say "the check can fail: a README with one usage changed is caught"
sed 's/^  images \[--json\]/  images [--long]/' "$README" >"$WORK/README.changed"
cmp -s "$README" "$WORK/README.changed" && fail "could not change the images line of a README copy"
if CAIRN=$CAIRN README=$WORK/README.changed "$GEN" --check >"$WORK/neg.out" 2>&1; then
	soft_fail "readme-commands.sh --check accepted a README with a changed usage line"
else
	info "ok: --check refused it"
fi
finish
