# shellcheck shell=bash
# remote.sh - sourced after common.sh by the tests of remote stores: a real
# Ceph cluster with radosgw (scripts/ceph-rgw.sh) in the test's WORK
# directory, stopped by the exit trap whatever happens.

RGW_SCRIPT=$TESTLIB/../../scripts/ceph-rgw.sh

# require_rgw: skips (77) when the Ceph packages are missing.
require_rgw() {
	require_cmd ceph-mon ceph-osd radosgw radosgw-admin ceph-authtool monmaptool openssl curl
	/usr/bin/python3 -c 'import rados' 2>/dev/null || skip "python3-rados is not installed"
}

# rgw_start [DIR]: starts a cluster in DIR (default $WORK/rgw) and exports
# what it prints (CAIRN_S3_ENDPOINT, AWS_* keys, ...); RGW_DIR names it.
rgw_start() {
	RGW_DIR=${1:-$WORK/rgw}
	local out
	track_cleanup "'$RGW_SCRIPT' stop '$RGW_DIR' >/dev/null 2>&1"
	# on a failure, what the gateway was doing (run before the stop: last in, first out)
	track_cleanup "[ \"\$rc\" -eq 0 ] || rgw_postmortem '$RGW_DIR'"
	out=$("$RGW_SCRIPT" start "$RGW_DIR") || fail "the Ceph cluster did not start"
	eval "$out"
	info "radosgw: $CAIRN_S3_ENDPOINT and $CAIRN_S3_TLS_ENDPOINT ($RGW_DIR)"
}

# s3 ARGS...: curl signed with the cluster's keys (SigV4, path-style).
s3() {
	curl -s --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
		-H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
}

# rgw_postmortem DIR: is each daemon alive, and the end of radosgw's log.
rgw_postmortem() {
	local d=$1 n p
	for n in client.rgw osd.0 mon.a; do
		p=$(cat "$d/run/$n.pid" 2>/dev/null || echo "?")
		if [ -d "/proc/$p" ]; then
			printf '   postmortem: %s (pid %s) is running\n' "$n" "$p"
		else
			printf '   postmortem: %s (pid %s) is NOT running\n' "$n" "$p"
		fi
	done
	tail -n 5 "$d/log/client.rgw.log" 2>/dev/null | cut -c1-200 | sed 's/^/   rgw log: /'
}
