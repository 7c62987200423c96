#!/bin/bash
# remote_cluster.sh - scripts/ceph-rgw.sh: two clusters start side by side
# on ports of their own, each answers S3 (http and https with its own
# certificate, SigV4, conditional PUT), radosgw stops and starts alone, and
# stop leaves no daemon behind (also a second time).
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/remote.sh
source "$(dirname "$0")/../lib/remote.sh"
require_root
setup
require_rgw

say "two clusters at once"
t0=$(date +%s%N)
"$RGW_SCRIPT" start "$WORK/c1" >"$WORK/c1.env" 2>"$WORK/c1.err" &
p1=$!
"$RGW_SCRIPT" start "$WORK/c2" >"$WORK/c2.env" 2>"$WORK/c2.err" &
p2=$!
track_cleanup "'$RGW_SCRIPT' stop '$WORK/c1' >/dev/null 2>&1"
track_cleanup "'$RGW_SCRIPT' stop '$WORK/c2' >/dev/null 2>&1"
wait "$p1" || { show_file "$WORK/c1.err"; fail "cluster 1 did not start"; }
wait "$p2" || { show_file "$WORK/c2.err"; fail "cluster 2 did not start"; }
info "both answer S3 after $((($(date +%s%N) - t0) / 1000000)) ms"
[ ! -s "$WORK/c1.err" ] || { show_file "$WORK/c1.err"; soft_fail "start wrote to stderr"; }
show_file "$WORK/c1.env"

for c in c1 c2; do
	(
		eval "$(cat "$WORK/$c.env")"
		[[ "$CAIRN_S3_ENDPOINT" =~ ^http://127\.0\.0\.1:[0-9]+$ ]] || fail "$c: endpoint '$CAIRN_S3_ENDPOINT'"
		[ "$(stat -c %a "$WORK/$c")" = 700 ] || fail "$c: the cluster directory is not 0700"
		code=$(s3 -o /dev/null -w '%{http_code}' -X PUT "$CAIRN_S3_ENDPOINT/bucket-$c")
		[ "$code" = 200 ] || fail "$c: create bucket: HTTP $code"
		echo "hello $c" >"$WORK/$c.obj"
		code=$(s3 -o /dev/null -w '%{http_code}' -H 'If-None-Match: *' -T "$WORK/$c.obj" \
			"$CAIRN_S3_ENDPOINT/bucket-$c/o")
		[ "$code" = 200 ] || fail "$c: conditional PUT of a new object: HTTP $code"
		code=$(s3 -o /dev/null -w '%{http_code}' -H 'If-None-Match: *' -T "$WORK/$c.obj" \
			"$CAIRN_S3_ENDPOINT/bucket-$c/o")
		[ "$code" = 412 ] || fail "$c: conditional PUT over an object: HTTP $code, not 412"
		[ "$(s3 --cacert "$CAIRN_S3_CA" "$CAIRN_S3_TLS_ENDPOINT/bucket-$c/o")" = "hello $c" ] ||
			fail "$c: GET over https with the cluster's certificate"
		code=$(s3 -o /dev/null -w '%{http_code}' "$CAIRN_S3_TLS_ENDPOINT/bucket-$c/o" || true)
		[ "$code" = 000 ] || fail "$c: https without its CA should fail verification (HTTP $code)"
		code=$(curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" \
			--user "$AWS_ACCESS_KEY_ID:wrong" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
			"$CAIRN_S3_ENDPOINT/bucket-$c/o")
		[ "$code" = 403 ] || fail "$c: a wrong secret gave HTTP $code, not 403"
		echo "$CAIRN_S3_ENDPOINT" >"$WORK/$c.ep"
	) || soft_fail "cluster $c"
done
[ "$(cat "$WORK/c1.ep")" != "$(cat "$WORK/c2.ep")" ] || soft_fail "both clusters on one port"
# each cluster holds only its own bucket
eval "$(cat "$WORK/c1.env")"
s3 "$CAIRN_S3_ENDPOINT/" | grep -q bucket-c2 && soft_fail "cluster 1 lists cluster 2's bucket"

say "radosgw stops and starts alone; the objects stay"
"$RGW_SCRIPT" rgw-stop "$WORK/c1" || fail "rgw-stop"
code=$(s3 -o /dev/null -w '%{http_code}' "$CAIRN_S3_ENDPOINT/bucket-c1/o" || true)
[ "$code" = 000 ] || soft_fail "radosgw still answers after rgw-stop (HTTP $code)"
"$RGW_SCRIPT" rgw-start "$WORK/c1" || fail "rgw-start"
[ "$(s3 "$CAIRN_S3_ENDPOINT/bucket-c1/o")" = "hello c1" ] || soft_fail "object lost across an rgw restart"

say "stop: radosgw, OSD, mon, every thread gone"
pids=$(cat "$WORK"/c1/run/*.pid "$WORK"/c2/run/*.pid)
[ "$(echo "$pids" | wc -w)" -eq 6 ] || soft_fail "expected 6 daemons, found pid files: $pids"
"$RGW_SCRIPT" stop "$WORK/c1" || soft_fail "stop c1"
"$RGW_SCRIPT" stop "$WORK/c2" || soft_fail "stop c2"
for p in $pids; do
	if [ -d "/proc/$p" ] && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null; then
		soft_fail "daemon $p is still running after stop"
	fi
done
"$RGW_SCRIPT" stop "$WORK/c1" || soft_fail "a second stop must succeed"
run_capture notempty "$RGW_SCRIPT" start "$WORK/c1"
if [ "$RC" -eq 0 ] || [ "$(wc -l <"$WORK/notempty.err")" -ne 1 ]; then
	soft_fail "start in a used directory must fail with one line"
fi
finish
