#!/bin/bash
# remote_s3.sh - the S3 client (remote/s3.h) against a real radosgw: many
# requests in flight on kept-alive connections, ranged GETs, conditional PUT
# (one winner of 16), listings past one page, error translation (missing
# bucket and object, wrong keys), https with radosgw's own certificate (and
# refused without it), retries that outlast a gateway restart, a refused
# connection and a stalled gateway ending within their bounds.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/remote.sh
source "$(dirname "$0")/../lib/remote.sh"
require_root
setup
require_rgw
[ -x "${S3CHECK:-}" ] || fail "s3check not built (S3CHECK='${S3CHECK:-}')"
rgw_start

say "the client's contract over http"
"$S3CHECK" "$CAIRN_S3_ENDPOINT" plain-bucket suite || soft_fail "suite over http"

say "the same over https with the gateway's self-signed certificate"
"$S3CHECK" "$CAIRN_S3_TLS_ENDPOINT" tls-bucket suite || soft_fail "suite over https"
say "https with the system's CA store only: the self-signed certificate is refused (EPROTO)"
CAIRN_S3_CA='' "$S3CHECK" "$CAIRN_S3_TLS_ENDPOINT" tls-bucket expect EPROTO || soft_fail "https without CA"

say "wrong keys: EACCES"
AWS_SECRET_ACCESS_KEY=wrong "$S3CHECK" "$CAIRN_S3_ENDPOINT" plain-bucket expect EACCES ||
	soft_fail "wrong secret"
AWS_ACCESS_KEY_ID=NOSUCHKEY "$S3CHECK" "$CAIRN_S3_ENDPOINT" plain-bucket expect EACCES ||
	soft_fail "unknown access key"

say "a request started while radosgw is down succeeds once it is back (retries)"
S3CHECK_PUT_PROBE=1 "$S3CHECK" "$CAIRN_S3_ENDPOINT" plain-bucket expect 0 || fail "probe"
"$RGW_SCRIPT" rgw-stop "$RGW_DIR"
"$S3CHECK" "$CAIRN_S3_ENDPOINT" plain-bucket expect 0 2000 8 >"$WORK/retry.out" 2>&1 &
pid=$!
track_pid "$pid"
sleep 1.5
"$RGW_SCRIPT" rgw-start "$RGW_DIR" || fail "rgw-start"
wait "$pid" || { show_file "$WORK/retry.out"; soft_fail "the GET did not survive the restart"; }
show_file "$WORK/retry.out"
grep -q ' 0 retries' "$WORK/retry.out" && soft_fail "no retry was counted"

say "radosgw down for good: ECONNREFUSED after the last try, within the backoff's bound"
"$RGW_SCRIPT" rgw-stop "$RGW_DIR"
t0=$(date +%s%N)
"$S3CHECK" "$CAIRN_S3_ENDPOINT" plain-bucket expect ECONNREFUSED 2000 4 || soft_fail "refused"
ms=$((($(date +%s%N) - t0) / 1000000))
info "gave up after $ms ms (3 backoffs: at most 0.15 + 0.3 + 0.6 s)"
[ "$ms" -lt 5000 ] || soft_fail "gave up after $ms ms"

say "radosgw stalled (SIGSTOP): ETIMEDOUT by the request's deadline"
"$RGW_SCRIPT" rgw-start "$RGW_DIR" || fail "rgw-start"
rgw_pid=$(cat "$RGW_DIR/run/client.rgw.pid")
kill -STOP "$rgw_pid"
track_cleanup "kill -CONT $rgw_pid 2>/dev/null"
t0=$(date +%s%N)
"$S3CHECK" "$CAIRN_S3_ENDPOINT" plain-bucket expect ETIMEDOUT 1000 4 2000 || soft_fail "stalled"
ms=$((($(date +%s%N) - t0) / 1000000))
kill -CONT "$rgw_pid"
info "gave up after $ms ms (deadline 2000 ms)"
[ "$ms" -ge 1900 ] && [ "$ms" -lt 4000 ] || soft_fail "a 2 s deadline ended after $ms ms"
finish
