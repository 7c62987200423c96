#!/usr/bin/env bash
# Remote-store benchmark: the Debian trees of import.sh (rootfs-v1, rootfs-v2) moved through
# a loopback server, side by side in one run, median of BENCH_RUNS:
#   cairn    push v1, push v2 (after v1), push v1 again, pull v1 into an empty store,
#            pull v2 onto that store, through radosgw (scripts/ceph-rgw.sh)
#   ostree   commit v1, v2 into an archive repo ("push"); ostree pull over HTTP into an
#            empty bare-user repo, then v2 onto it
#   casync   casync make v1, v2 into one chunk store ("push"); casync extract over HTTP
#            into an empty directory, then v2 with v1 as seed
#   skopeo   cairn export --oci of v1 and v2 (one layer each, not timed), skopeo copy into
#            docker-registry ("push"), then skopeo copy out into an empty OCI layout, v2
#            into the same layout
#   lazy     (cairn only, Debian minbase + python3: mount.sh's tree without its /bigfile)
#            time from the start of a pull to 'chroot MNT python3 -c pass' returning on a
#            read-only mount: pull --lazy (the chunks python3 reads are fetched on first
#            read) against a full pull, each into an empty store; and the bytes fetched by then
# Bytes received: cairn's --json summary; ostree and casync: bytes the HTTP server sent
# (a counting http.server); skopeo: the layout's growth. "v2 adds locally": what a local
# cairn store grows by when v2 is imported after v1 (the target's reference).
#
# Environment: CAIRN (default <repo>/build/tools/cairn), CAIRN_BENCH_CACHE
# (/var/cache/cairn-bench), BENCH_RUNS (3), BENCH_MD (also write the markdown table
# there), TMPDIR. Needs root; installs ostree, casync, docker-registry when missing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"

CACHE=${CAIRN_BENCH_CACHE:-/var/cache/cairn-bench}
CAIRN=${CAIRN:-$repo/build/tools/cairn}
RUNS=${BENCH_RUNS:-3}
V1=$CACHE/rootfs-v1
V2=$CACHE/rootfs-v2
PYTREE=$CACHE/rootfs-mount
PY=/usr/bin/python3

[[ $(id -u) == 0 ]] || bench_die "run as root (the trees hold root-only files)"
[[ -d $V1 && -d $V2 ]] || bench_die "no $V1 or $V2: run BENCH_PREPARE_ONLY=1 tests/bench/import.sh"
[[ -x $CAIRN ]] || bench_die "no cairn at $CAIRN"
bench_need_pkgs ostree:ostree casync:casync docker-registry:docker-registry skopeo:skopeo

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cairn-bench-remote.XXXXXX")
PIDS=()
cleanup() {
	local p
	bench_unmount_under "$WORK"
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	"$repo/scripts/ceph-rgw.sh" stop "$WORK/rgw" >/dev/null 2>&1 || true
	rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# A static HTTP server on 127.0.0.1 that counts the bytes it sends (in DIR/.sent).
serve() { # serve DIR PORT
	"$PY" - "$1" "$2" <<'PY' &
import http.server, os, sys, threading
root, port = sys.argv[1], int(sys.argv[2])
lock = threading.Lock()
sent = [0]
class H(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **k):
        super().__init__(*a, directory=root, **k)
    def log_message(self, *a):
        pass
    def copyfile(self, src, dst):
        n = 0
        while True:
            b = src.read(1 << 20)
            if not b:
                break
            dst.write(b)
            n += len(b)
        with lock:
            sent[0] += n
            open(root + "/.sent", "w").write(str(sent[0]))
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY
	PIDS+=($!)
}
sent() { cat "$1/.sent" 2>/dev/null || echo 0; }

bench_log "radosgw (memstore 4 GiB)"
eval "$(CEPH_RGW_MEMSTORE_BYTES=$((4 << 30)) "$repo/scripts/ceph-rgw.sh" start "$WORK/rgw")"
export CAIRN_S3_ENDPOINT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY

bench_log "local stores: v1, then v2 (what v2 adds locally)"
S=$WORK/src
"$CAIRN" --store "$S" import "$V1" --tag v1 >/dev/null
before=$(bench_du "$S")
"$CAIRN" --store "$S" import "$V2" --tag v2 >/dev/null
ADDED=$(bench_sub "$(bench_du "$S")" "$before")
V1_BYTES=$(bench_tree_bytes "$V1")
bench_log "v2 adds $(bench_human "$ADDED") to a store holding v1; v1 has $(bench_human "$V1_BYTES") of file data"
bench_warm "$V1"
bench_warm "$V2"
# ostree cannot store device nodes, sockets or fifos; its --skip-list takes the directories
# holding them (minbase: /dev), as import.sh does
find "$V1" "$V2" -xdev \( -type b -o -type c -o -type p -o -type s \) -printf '%h\n' |
	sed -e "s:^$V1::" -e "s:^$V2::" | grep -v '^$' | sort -u >"$WORK/ostree-skip" || true

bench_log "OCI layouts for skopeo (cairn export --oci, not timed)"
"$CAIRN" --store "$S" export v1 --oci "$WORK/oci:v1" >/dev/null
"$CAIRN" --store "$S" export v2 --oci "$WORK/oci:v2" >/dev/null
REG_PORT=$(free_port)
mkdir -p "$WORK/registry"
cat >"$WORK/registry.yml" <<EOF
version: 0.1
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: 127.0.0.1:$REG_PORT
log:
  level: error
EOF
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
PIDS+=($!)
HTTP_PORT=$(free_port)
mkdir -p "$WORK/http"
serve "$WORK/http" "$HTTP_PORT"
for _ in $(seq 1 100); do
	curl -s -o /dev/null "http://127.0.0.1:$REG_PORT/v2/" && curl -s -o /dev/null "http://127.0.0.1:$HTTP_PORT/" && break
	sleep 0.1
done

declare -A T B
t=0
add() { T[$1]+="$2 "; [[ -n ${3:-} ]] && B[$1]+="$3 "; return 0; }

for ((r = 1; r <= RUNS; r++)); do
	bench_log "run $r of $RUNS"
	# cairn
	C=$WORK/c$r
	"$CAIRN" --store "$S" remote add "r$r" "s3://bench/run$r" >/dev/null
	bench_time t "$CAIRN" --store "$S" push v1 "r$r" --json >"$WORK/j"
	add cairn_push1 "$t" "$(bench_json_int bytes_sent <"$WORK/j")"
	bench_time t "$CAIRN" --store "$S" push v2 "r$r" --json >"$WORK/j"
	add cairn_push2 "$t" "$(bench_json_int bytes_sent <"$WORK/j")"
	bench_time t "$CAIRN" --store "$S" push v1 "r$r" --json >"$WORK/j"
	add cairn_push1again "$t" "$(bench_json_int bytes_sent <"$WORK/j")"
	"$CAIRN" --store "$C" remote add "r$r" "s3://bench/run$r" >/dev/null
	sync
	bench_time t "$CAIRN" --store "$C" pull "r$r" v1 --json >"$WORK/j"
	add cairn_pull1 "$t" "$(bench_json_int bytes_received <"$WORK/j")"
	bench_time t "$CAIRN" --store "$C" pull "r$r" v2 --json >"$WORK/j"
	add cairn_pull2 "$t" "$(bench_json_int bytes_received <"$WORK/j")"
	"$CAIRN" --store "$C" fsck >/dev/null || bench_die "fsck of the pulled store"

	# ostree: commit = push; pull over HTTP
	O=$WORK/http/ostree$r
	ostree --repo="$O" init --mode=archive
	bench_time t ostree --repo="$O" commit --branch=v1 --skip-list="$WORK/ostree-skip" --tree=dir="$V1" >/dev/null
	add ostree_push1 "$t"
	bench_time t ostree --repo="$O" commit --branch=v2 --skip-list="$WORK/ostree-skip" --tree=dir="$V2" >/dev/null
	add ostree_push2 "$t"
	P=$WORK/ostree-pull$r
	ostree --repo="$P" init --mode=bare-user
	ostree --repo="$P" remote add --no-gpg-verify src "http://127.0.0.1:$HTTP_PORT/ostree$r"
	s0=$(sent "$WORK/http")
	bench_time t ostree --repo="$P" pull src v1 >/dev/null
	s1=$(sent "$WORK/http")
	add ostree_pull1 "$t" "$(bench_sub "$s1" "$s0")"
	bench_time t ostree --repo="$P" pull src v2 >/dev/null
	add ostree_pull2 "$t" "$(bench_sub "$(sent "$WORK/http")" "$s1")"

	# casync: make = push; extract over HTTP (v2 seeded with v1's tree)
	K=$WORK/http/casync$r
	mkdir -p "$K"
	bench_time t casync make --store="$K/store" "$K/v1.caidx" "$V1" >/dev/null
	add casync_push1 "$t"
	bench_time t casync make --store="$K/store" "$K/v2.caidx" "$V2" >/dev/null
	add casync_push2 "$t"
	s0=$(sent "$WORK/http")
	bench_time t casync extract --store="http://127.0.0.1:$HTTP_PORT/casync$r/store" \
		"$K/v1.caidx" "$WORK/casync-x1-$r" >/dev/null 2>&1
	s1=$(sent "$WORK/http")
	add casync_pull1 "$t" "$(bench_sub "$s1" "$s0")"
	bench_time t casync extract --store="http://127.0.0.1:$HTTP_PORT/casync$r/store" \
		--seed="$WORK/casync-x1-$r" "$K/v2.caidx" "$WORK/casync-x2-$r" >/dev/null 2>&1
	add casync_pull2 "$t" "$(bench_sub "$(sent "$WORK/http")" "$s1")"

	# skopeo through docker-registry
	R=127.0.0.1:$REG_PORT/bench$r
	bench_time t skopeo copy -q --dest-tls-verify=false "oci:$WORK/oci:v1" "docker://$R:v1"
	add skopeo_push1 "$t"
	bench_time t skopeo copy -q --dest-tls-verify=false "oci:$WORK/oci:v2" "docker://$R:v2"
	add skopeo_push2 "$t"
	L=$WORK/skopeo-pull$r
	bench_time t skopeo copy -q --src-tls-verify=false "docker://$R:v1" "oci:$L:v1"
	d1=$(bench_du "$L")
	add skopeo_pull1 "$t" "$d1"
	bench_time t skopeo copy -q --src-tls-verify=false "docker://$R:v2" "oci:$L:v2"
	add skopeo_pull2 "$t" "$(bench_sub "$(bench_du "$L")" "$d1")"
	rm -rf --one-file-system "$WORK"/casync-x*-"$r" "$C" "$P" "$L"
done

# lazy start: the Debian + python3 tree of mount.sh (its /bigfile left out)
LAZY=0
if [[ -x $PYTREE/usr/bin/python3 ]]; then
	LAZY=1
	bench_log "lazy start: Debian + python3 (mount.sh's tree without /bigfile), pushed once"
	L=$WORK/py
	mkdir -p "$WORK/pytree"
	for e in "$PYTREE"/* "$PYTREE"/.[!.]*; do
		if [[ -e $e && ${e##*/} != bigfile ]]; then cp -a "$e" "$WORK/pytree/"; fi
	done
	"$CAIRN" --store "$L" import "$WORK/pytree" --tag py >/dev/null
	PY_BYTES=$(bench_tree_bytes "$WORK/pytree")
	rm -rf --one-file-system "$WORK/pytree"
	"$CAIRN" --store "$L" remote add lz "s3://bench/lazy" >/dev/null
	"$CAIRN" --store "$L" push py lz >/dev/null
	printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
		"$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$WORK/cred"
	chmod 600 "$WORK/cred"
	# start STORE ARGS...: pull ARGS, mount, chroot python3 -c pass; prints the seconds
	start() {
		local st=$1 mnt=$WORK/mnt t0 t1
		shift
		"$CAIRN" --store "$st" remote add lz "s3://bench/lazy" --credentials "$WORK/cred" >/dev/null
		mkdir -p "$mnt"
		sync
		t0=$(bench_now)
		"$CAIRN" --store "$st" pull lz py "$@" >/dev/null
		"$CAIRN" --store "$st" mount py "$mnt" --ro
		chroot "$mnt" /usr/bin/python3 -c pass
		t1=$(bench_now)
		awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
	}
	for ((r = 1; r <= RUNS; r++)); do
		bench_log "lazy start, run $r of $RUNS"
		add lazy_full "$(start "$WORK/lf$r")"
		"$CAIRN" --store "$WORK/lf$r" umount "$WORK/mnt"
		add lazy_lazy "$(start "$WORK/ll$r" --lazy)"
		"$CAIRN" --store "$WORK/ll$r" stats "$WORK/mnt" --json >"$WORK/stats.json"
		B[lazy_lazy]+="$(bench_json_int lazy_fetch_bytes <"$WORK/stats.json") "
		"$CAIRN" --store "$WORK/ll$r" umount "$WORK/mnt"
		rm -rf --one-file-system "$WORK/lf$r" "$WORK/ll$r"
	done
else
	bench_log "lazy start: no $PYTREE (BENCH_PREPARE_ONLY=1 tests/bench/mount.sh makes it): skipped"
fi

med() { read -ra a <<<"${T[$1]:-}"; bench_median "${a[@]}"; }
medb() { read -ra a <<<"${B[$1]:-}"; bench_median "${a[@]}"; }
cell() { [[ -n ${B[$1]:-} ]] && echo "$(med "$1") s, $(bench_human "$(medb "$1")")" || echo "$(med "$1") s"; }

bench_table_reset
bench_table_row tool "push v1" "push v2 (after v1)" "push v1 again" "pull v1" "pull v1 MB/s" "pull v2 onto v1"
for tool in cairn ostree casync skopeo; do
	again=n/a
	[[ $tool == cairn ]] && again=$(cell cairn_push1again)
	bench_table_row "$tool" "$(cell "${tool}_push1")" "$(cell "${tool}_push2")" "$again" \
		"$(cell "${tool}_pull1")" "$(bench_mbps "$V1_BYTES" "$(med "${tool}_pull1")")" "$(cell "${tool}_pull2")"
done
{
	echo "- trees: v1 $(bench_tree_files "$V1") files, $(bench_human "$V1_BYTES") of file data; v2 adds $(bench_human "$ADDED") to a local cairn store holding v1"
	echo "- median of $RUNS run(s); $(nproc) CPUs, $(uname -r); loopback: radosgw (memstore), python http.server, docker-registry $(docker-registry --version 2>/dev/null | awk '{print $NF}')"
	echo "- ostree skips the directories holding devices, fifos and sockets (/dev), as it cannot store them"
	echo "- MB/s = v1's file data / pull time; bytes: cairn --json, HTTP bytes served (ostree, casync), layout growth (skopeo)"
	echo
	bench_table_md
	echo
	p2=$(medb cairn_pull2)
	echo "- pull v2 onto v1, bytes received / bytes v2 adds locally: $(bench_ratio "$p2" "$ADDED") (target <= 1.1, +1 MiB: $(bench_le "$p2" "$(awk -v a="$ADDED" 'BEGIN { printf "%d", a * 1.1 + 1048576 }')" && echo met || echo MISSED))"
	mb=$(bench_mbps "$V1_BYTES" "$(med cairn_pull1)")
	echo "- full pull of v1: $mb MB/s of file data (target >= 100: $(bench_le 100 "$mb" && echo met || echo MISSED)); time cairn / ostree: $(bench_ratio "$(med cairn_pull1)" "$(med ostree_pull1)") (target < 1: $(bench_le "$(med cairn_pull1)" "$(med ostree_pull1)" && echo met || echo MISSED))"
	echo "- second push of v1: $(med cairn_push1again) s (target < 1 s: $(bench_le "$(med cairn_push1again)" 1 && echo met || echo MISSED))"
	if ((LAZY)); then
		echo
		echo "| Debian + python3 ($(bench_human "$PY_BYTES") of file data), pull to \`chroot MNT python3 -c pass\` | seconds | fetched |"
		echo "|---|---|---|"
		echo "| cairn pull, mount --ro, python3 | $(med lazy_full) | all |"
		echo "| cairn pull --lazy, mount --ro, python3 | $(med lazy_lazy) | $(bench_human "$(medb lazy_lazy)") |"
		echo
		echo "- lazy container start / full pull's: $(bench_ratio "$(med lazy_lazy)" "$(med lazy_full)") (target <= 0.2: $(bench_le "$(bench_ratio "$(med lazy_lazy)" "$(med lazy_full)")" 0.2 && echo met || echo MISSED))"
	else
		echo "- lazy container start: not measured (no Debian + python3 tree)"
	fi
} | tee "${BENCH_MD:-/dev/null}"
# rows of tests/bench/run.sh's table
p2=$(medb cairn_pull2)
lim=$(awk -v a="$ADDED" 'BEGIN { printf "%d", a * 1.1 + 1048576 }')
bench_result remote "pull v2 onto v1 bytes" "$p2" "v2 adds $ADDED" "$(bench_ratio "$p2" "$ADDED")" \
	"<= 1.1x +1 MiB" "$(bench_verdict "$p2" "<=" "$lim")"
mb=$(bench_mbps "$V1_BYTES" "$(med cairn_pull1)")
bench_result remote "full pull of v1 MB/s" "$mb" - - ">= 100" "$(bench_verdict "$mb" ">=" 100)"
bench_result remote "pull v1 time s" "$(med cairn_pull1)" "ostree $(med ostree_pull1)" \
	"$(bench_ratio "$(med cairn_pull1)" "$(med ostree_pull1)")" "< 1" \
	"$(bench_verdict "$(bench_ratio "$(med cairn_pull1)" "$(med ostree_pull1)")" "<" 1)"
bench_result remote "second push s" "$(med cairn_push1again)" - - "< 1" \
	"$(bench_verdict "$(med cairn_push1again)" "<" 1)"
if ((LAZY)); then
	bench_result remote "lazy start s" "$(med lazy_lazy)" "full pull $(med lazy_full)" \
		"$(bench_ratio "$(med lazy_lazy)" "$(med lazy_full)")" "<= 0.2" \
		"$(bench_verdict "$(bench_ratio "$(med lazy_lazy)" "$(med lazy_full)")" "<=" 0.2)"
fi
bench_table_print >&2
