#!/bin/bash
# remote_add.sh - cairn remote add|ls|rm against a real radosgw: the bucket
# made when missing, credentials from the environment or a 0600 file (and
# never in the store), wrong credentials, https with radosgw's own
# self-signed certificate (--ca) and refused without it, bad names and
# URLs, a remote written by another format refused; one clear line each.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/remote.sh
source "$(dirname "$0")/../lib/remote.sh"
require_root
setup
require_rgw
rgw_start
S=$WORK/store
export CAIRN_S3_ENDPOINT

say "add: the bucket is made when missing, the marker written"
s3 -o /dev/null -w '%{http_code}' "$CAIRN_S3_ENDPOINT/fleet-a" | grep -q 404 || fail "bucket exists already"
run_capture add cairn_in "$S" remote add origin s3://fleet-a/hosts/x
[ "$RC" -eq 0 ] || { show_file "$WORK/add.err"; fail "remote add exited $RC"; }
grep -q "origin: s3://fleet-a/hosts/x at $CAIRN_S3_ENDPOINT" "$WORK/add.out" || soft_fail "add output"
[ "$(s3 -o /dev/null -w '%{http_code}' "$CAIRN_S3_ENDPOINT/fleet-a/hosts/x/cairn-remote")" = 200 ] ||
	soft_fail "no marker object under the prefix"
run_capture ls cairn_in "$S" remote ls
grep -q '^origin  *s3://fleet-a/hosts/x  *http://' "$WORK/ls.out" || { show_file "$WORK/ls.out"; soft_fail "remote ls"; }
cairn_in "$S" remote ls --json >"$WORK/ls.json"
[ "$(json_get "$WORK/ls.json" 'j[0]["url"]')" = s3://fleet-a/hosts/x ] || soft_fail "remote ls --json"
[ "$(json_get "$WORK/ls.json" 'j[0]["trust"]')" = None ] || soft_fail "no trust key expected"

say "a second remote on the same bucket (another prefix) and the same one again"
cairn_in "$S" remote add second s3://fleet-a >/dev/null || soft_fail "a remote at the bucket's root"
expect_error "a name taken" cairn_in "$S" remote add origin s3://fleet-a/other

say "credentials are never stored"
grep -qa "$AWS_SECRET_ACCESS_KEY" "$S/data.mdb" && soft_fail "the secret key is in data.mdb"
grep -qa "$AWS_ACCESS_KEY_ID" "$S/data.mdb" && soft_fail "the access key is in data.mdb"

say "wrong credentials: one line, nothing recorded"
AWS_SECRET_ACCESS_KEY=wrong expect_error "a wrong secret" cairn_in "$S" remote add w1 s3://fleet-b
grep -q "wrong secret key" "$WORK/experr.err" || soft_fail "the message should say the secret is wrong"
AWS_ACCESS_KEY_ID=NOBODY expect_error "an unknown access key" cairn_in "$S" remote add w2 s3://fleet-b
noenv() { env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$@"; }
expect_error "no credentials at all" noenv "$CAIRN" --store "$S" remote add w3 s3://fleet-b
cairn_in "$S" remote ls | grep -q '^w[123] ' && soft_fail "a failed add was recorded"
[ "$(s3 -o /dev/null -w '%{http_code}' "$CAIRN_S3_ENDPOINT/fleet-b")" = 404 ] ||
	soft_fail "a failed add made the bucket"

say "a credentials file: 0600 accepted, readable by others refused"
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
	"$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$WORK/creds"
chmod 644 "$WORK/creds"
expect_error "a credentials file readable by others" cairn_in "$S" remote add f1 s3://fleet-c --credentials "$WORK/creds"
grep -q "chmod 600" "$WORK/experr.err" || soft_fail "the message should say chmod 600"
chmod 600 "$WORK/creds"
noenv "$CAIRN" --store "$S" remote add f1 s3://fleet-c --credentials "$WORK/creds" >/dev/null ||
	soft_fail "remote add with a 0600 credentials file"
cairn_in "$S" remote ls --json >"$WORK/ls.json"
[ "$(json_get "$WORK/ls.json" '[r["credentials"] for r in j if r["name"] == "f1"][0]')" = "$WORK/creds" ] ||
	soft_fail "the credentials file's path is not recorded"
printf 'AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=wrong\n' "$AWS_ACCESS_KEY_ID" >"$WORK/creds2"
chmod 600 "$WORK/creds2"
expect_error "a credentials file with a wrong secret" cairn_in "$S" remote add f2 s3://fleet-c --credentials "$WORK/creds2"

say "https with radosgw's self-signed certificate"
cairn_in "$S" remote add tls s3://fleet-d --endpoint "$CAIRN_S3_TLS_ENDPOINT" --ca "$CAIRN_S3_CA" \
	--timeout 5 >/dev/null || soft_fail "remote add over https with --ca"
expect_error "https without --ca (system store)" cairn_in "$S" remote add tls2 s3://fleet-d --endpoint "$CAIRN_S3_TLS_ENDPOINT"
grep -qi "certificate" "$WORK/experr.err" || soft_fail "the message should name the certificate"

say "bad input"
expect_error "not s3://" cairn_in "$S" remote add b1 http://fleet-a
expect_error "a bucket name with capitals" cairn_in "$S" remote add b2 s3://Fleet
expect_error "a prefix with .." cairn_in "$S" remote add b3 s3://fleet-a/../x
expect_error "an endpoint that is not http" cairn_in "$S" remote add b4 s3://fleet-a --endpoint ftp://x
expect_error "a bad remote name" cairn_in "$S" remote add -bad s3://fleet-a
expect_error "a bad trust key" cairn_in "$S" remote add b5 s3://fleet-a --trust 1234
expect_error "a bad timeout" cairn_in "$S" remote add b6 s3://fleet-a --timeout 0
expect_error "an unreachable endpoint" cairn_in "$S" remote add b7 s3://fleet-a --endpoint http://127.0.0.1:1 --timeout 1

say "a bucket holding another format's marker is refused"
echo "not cairn" >"$WORK/marker"
s3 -X PUT "$CAIRN_S3_ENDPOINT/fleet-e" >/dev/null
s3 -T "$WORK/marker" "$CAIRN_S3_ENDPOINT/fleet-e/cairn-remote" >/dev/null
expect_error "a foreign marker" cairn_in "$S" remote add e1 s3://fleet-e

say "rm forgets a remote, the bucket stays"
cairn_in "$S" remote rm second || soft_fail "remote rm"
cairn_in "$S" remote ls | grep -q '^second ' && soft_fail "removed remote still listed"
expect_error "rm of a remote that is not there" cairn_in "$S" remote rm second
[ "$(s3 -o /dev/null -w '%{http_code}' "$CAIRN_S3_ENDPOINT/fleet-a/hosts/x/cairn-remote")" = 200 ] ||
	soft_fail "remote rm touched the bucket"
finish
