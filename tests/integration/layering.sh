#!/bin/bash
# layering.sh - the project's seams hold in the source: the store's tables
# are private to store/ (tools/ and fs/ go through the verbs of image.h,
# platform.h, chunk.h and store.h), store/ includes nothing of fs/ or
# tools/, and each shared rule has one implementation (the sorted-entry
# merge, the byte-size parser, the upper-marker parser).
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
exec 2>&1
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"

# grep_none WHAT PATTERN FILES...: no line of FILES matches PATTERN
grep_none() {
	local what=$1 pat=$2 hits
	shift 2
	hits=$(grep -nE "$pat" "$@" 2>/dev/null || true)
	if [ -n "$hits" ]; then
		soft_fail "$what:"
		printf '%s\n' "$hits" | head -n 5
	else
		info "ok: $what"
	fi
}

say "the store's tables are private to store/"
mapfile -t outside < <(ls tools/*.[ch] fs/*.[ch] remote/*.[ch] 2>/dev/null)
[ "${#outside[@]}" -gt 20 ] || fail "found only ${#outside[@]} files in tools/, fs/ and remote/"
grep_none "no table access outside store/" \
	'CAIRN_DBI_|cairn_cursor_|\bcairn_(get|put|del|put_reserve|db_count)\(|store-internal\.h' \
	"${outside[@]}"
grep_none "store/ includes nothing of fs/ or tools/" \
	'#include "(fs|fs-internal|upper|cache|cli|import|export|oci|mounts)\.h"' store/*.[ch]

say "one implementation of each shared rule"
grep_none "directory entries are merged only by cairn_dir_merge_next (store/node.c)" \
	'memcmp\((ea|a|x)\.name|\b(i|j) < (a|b|layer)->nentries \|\||\(i < nb \|\| j <' \
	store/diff.c store/stack.c fs/switch.c
n=$(grep -lE "case 'G': case 'g'" tools/*.c | wc -l)
[ "$n" -eq 1 ] || soft_fail "byte sizes are parsed in $n files, not one (cli_parse_bytes)"
n=$(grep -lE 'strtoull\(v(al)?, ' fs/*.c tools/*.c | wc -l)
[ "$n" -eq 1 ] || soft_fail "upper markers are parsed in $n files, not one (cfs_marks_parse)"
finish
