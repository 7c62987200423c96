#!/bin/bash
# ceph-rgw.sh - a throwaway single-node Ceph cluster with an S3 gateway, for
# cairn's remote-store tests and benchmarks.
#
#   eval "$(scripts/ceph-rgw.sh start DIR)"   start; prints the lines to eval
#   scripts/ceph-rgw.sh stop DIR              stop (radosgw, then the OSD, then the mon)
#   scripts/ceph-rgw.sh rgw-stop DIR          stop radosgw alone (the cluster stays)
#   scripts/ceph-rgw.sh rgw-start DIR         start it again on the same ports
#
# One mon, one memstore OSD (objects in RAM, at most CEPH_RGW_MEMSTORE_BYTES,
# default 2 GiB) and one radosgw, with cephx, all bound to 127.0.0.1 on ports
# free at start (so several clusters can run at once), and every file they
# use (configuration, keys, mon store, sockets, logs) in DIR (made, 0700).
# radosgw serves S3 over http and over https with a self-signed certificate
# made at start. `start` returns once S3 answers an HTTP request and prints:
#
#   export CAIRN_S3_ENDPOINT=http://127.0.0.1:PORT
#   export CAIRN_S3_TLS_ENDPOINT=https://127.0.0.1:PORT CAIRN_S3_CA=DIR/tls/rgw.crt
#   export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... CEPH_CONF=DIR/ceph.conf
#
# or one line on stderr and a non-zero exit (the cluster then stopped).
# Why it starts in about a second: the mon proposes at once (paxos propose
# interval and min wait 0.01 s instead of 1 s and 0.05 s), the keys every
# daemon needs are in the mon's store from mkfs, and the one command the mon
# must run (osd new) goes through one python3-rados call, not the ceph CLI.
set -euo pipefail

PY=/usr/bin/python3 # python3-rados is Debian's, for Debian's interpreter

die() {
	echo "ceph-rgw: $*" >&2
	exit 1
}

usage() {
	echo "usage: ceph-rgw.sh start|stop|rgw-start|rgw-stop DIR" >&2
	exit 2
}

[ $# -eq 2 ] || usage
cmd=$1
dir=$2

# Ports free now on 127.0.0.1: N single ports, then the first port of a run
# of 32 free ones for the OSD's messenger (it binds several in that range).
free_ports() {
	"$PY" - "$1" <<'PY'
import random, socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
ports = [s.getsockname()[1] for s in socks]
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        s.close()
for _ in range(200):
    base = random.randrange(20000, 32000)
    if all(free(p) for p in range(base, base + 32)):
        break
for s in socks:
    s.close()
print(" ".join(map(str, ports + [base])))
PY
}

# Is a daemon gone? Its pid dir disappears, or only a zombie leader is left
# (the reaper is not ours). A daemon whose main thread returned while other
# threads run is not gone.
gone() {
	local pid=$1 state
	[ -d "/proc/$pid" ] || return 0
	state=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$pid/status" 2>/dev/null || echo X)
	[ "$state" = Z ] && [ "$(find "/proc/$pid/task" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)" -le 1 ]
}

# The pid of daemon NAME (mon.a, osd.0, client.rgw) if it is ours and alive.
daemon_pid() {
	local pidf="$dir/run/$1.pid" pid
	[ -f "$pidf" ] || return 1
	pid=$(cat "$pidf")
	[ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
	# never signal a recycled pid: it must be a daemon of this cluster
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/ceph.conf" || return 1
	gone "$pid" && return 1
	echo "$pid"
}

# Stops one daemon: SIGTERM, wait until it is gone (SIGKILL after 30 s).
stop_daemon() {
	local pid
	pid=$(daemon_pid "$1") || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 1 600); do
		gone "$pid" && { rm -f "$dir/run/$1.pid"; return 0; }
		sleep 0.05
	done
	echo "ceph-rgw: $1 (pid $pid) did not stop in 30 s: killed" >&2
	kill -KILL "$pid" 2>/dev/null || true
	for _ in $(seq 1 100); do
		gone "$pid" && break
		sleep 0.05
	done
	rm -f "$dir/run/$1.pid"
}

# The last lines of a daemon's log, for an error message.
log_tail() {
	tail -n 3 "$dir/log/$1.log" 2>/dev/null | cut -c1-240 | tr '\n' ' ' || true
}

# Waits (at most $2 s) until radosgw answers HTTP on $1. Fails early if it died.
wait_http() {
	local port=$1 limit=$2 status
	for _ in $(seq 1 $((limit * 20))); do
		status=$("$PY" - "$port" <<'PY' 2>/dev/null || true
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
    s.sendall(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    print(s.recv(64).split(b" ")[1].decode())
except Exception:
    pass
PY
)
		case "$status" in [1-5][0-9][0-9]) return 0 ;; esac
		daemon_pid client.rgw >/dev/null || return 1
		sleep 0.05
	done
	return 1
}

start_rgw() {
	radosgw -c "$dir/ceph.conf" -n client.rgw >>"$dir/log/launch.log" 2>&1 ||
		return 1
	wait_http "$(cat "$dir/rgw-port")" "${CEPH_RGW_TIMEOUT:-60}"
}

write_conf() {
	local fsid=$1 mon=$2 rgw=$3 rgws=$4 osdbase=$5
	cat >"$dir/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon
mon initial members = a
public addr = 127.0.0.1
ms bind ipv4 = true
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $dir/keyring
run dir = $dir/run
admin socket = $dir/run/\$name.asok
log file = $dir/log/\$name.log
pid file = $dir/run/\$name.pid
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
paxos propose interval = 0.01
paxos min wait = 0.01
debug ms = 0/0
[mon]
mon data = $dir/mon
[osd]
osd data = $dir/osd
osd objectstore = memstore
memstore device bytes = ${CEPH_RGW_MEMSTORE_BYTES:-2147483648}
ms bind port min = $osdbase
ms bind port max = $((osdbase + 31))
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$rgw ssl_endpoint=127.0.0.1:$rgws ssl_certificate=$dir/tls/rgw.crt ssl_private_key=$dir/tls/rgw.key tcp_nodelay=1
debug rgw = 0/0
EOF
}

# One attempt at a cluster in an empty $dir. Returns non-zero with a message
# in $dir/error when something does not come up.
try_start() {
	local ports mon rgw rgws osdbase fsid ak sk
	ports=$(free_ports 3)
	read -r mon rgw rgws osdbase <<<"$ports"
	fsid=$("$PY" -c 'import uuid; print(uuid.uuid4())')
	mkdir -p "$dir/mon" "$dir/osd" "$dir/run" "$dir/log" "$dir/tls"
	echo "$rgw" >"$dir/rgw-port"
	write_conf "$fsid" "$mon" "$rgw" "$rgws" "$osdbase"

	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
		-subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
		-keyout "$dir/tls/rgw.key" -out "$dir/tls/rgw.crt" >>"$dir/log/launch.log" 2>&1 ||
		{ echo "cannot make a TLS certificate (openssl)" >"$dir/error"; return 1; }

	{
		ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' &&
		ceph-authtool "$dir/keyring" --gen-key -n client.admin --cap mon 'allow *' \
			--cap osd 'allow *' --cap mgr 'allow *' &&
		ceph-authtool "$dir/keyring" --gen-key -n osd.0 --cap mon 'allow profile osd' \
			--cap osd 'allow *' &&
		ceph-authtool "$dir/keyring" --gen-key -n client.rgw --cap mon 'allow rw' \
			--cap osd 'allow rwx' &&
		monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon]" "$dir/monmap" &&
		ceph-mon -c "$dir/ceph.conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring"
	} >>"$dir/log/launch.log" 2>&1 ||
		{ echo "cannot make the mon: $(tail -n 1 "$dir/log/launch.log")" >"$dir/error"; return 1; }

	ceph-mon -c "$dir/ceph.conf" -i a >>"$dir/log/launch.log" 2>&1 ||
		{ echo "mon did not start: $(log_tail mon.a)" >"$dir/error"; return 1; }

	# the one mon command: create osd.0 (the OSD places itself in the CRUSH map)
	"$PY" - "$dir" >>"$dir/log/launch.log" 2>&1 <<'PY' ||
import json, sys, uuid, rados
d = sys.argv[1]
c = rados.Rados(conffile=d + "/ceph.conf", name="client.admin")
c.connect(timeout=30)
u = str(uuid.uuid4())
ret, out, err = c.mon_command(json.dumps({"prefix": "osd new", "uuid": u, "id": 0}), b"", timeout=30)
if ret != 0:
    sys.exit("osd new: %d %s" % (ret, err))
open(d + "/osd-uuid", "w").write(u + "\n")
c.shutdown()
PY
		{ echo "mon does not answer: $(tail -n 1 "$dir/log/launch.log") $(log_tail mon.a)" >"$dir/error"; return 1; }

	{
		ceph-osd -c "$dir/ceph.conf" -i 0 --mkfs --osd-uuid "$(cat "$dir/osd-uuid")" &&
		ceph-osd -c "$dir/ceph.conf" -i 0
	} >>"$dir/log/launch.log" 2>&1 ||
		{ echo "osd did not start: $(log_tail osd.0)" >"$dir/error"; return 1; }

	start_rgw ||
		{ echo "radosgw does not answer on 127.0.0.1:$rgw: $(log_tail client.rgw)" >"$dir/error"; return 1; }

	ak=$(od -An -N10 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)
	sk=$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')
	radosgw-admin -c "$dir/ceph.conf" -n client.admin user create --uid=cairn \
		--display-name=cairn --access-key="CK$ak" --secret="$sk" >>"$dir/log/launch.log" 2>&1 ||
		{ echo "cannot create the S3 user: $(tail -n 1 "$dir/log/launch.log")" >"$dir/error"; return 1; }

	cat >"$dir/env" <<EOF
export CAIRN_S3_ENDPOINT=http://127.0.0.1:$rgw
export CAIRN_S3_TLS_ENDPOINT=https://127.0.0.1:$rgws CAIRN_S3_CA=$dir/tls/rgw.crt
export AWS_ACCESS_KEY_ID=CK$ak AWS_SECRET_ACCESS_KEY=$sk CEPH_CONF=$dir/ceph.conf
EOF
}

stop_all() {
	stop_daemon client.rgw
	stop_daemon osd.0
	stop_daemon mon.a
}

case "$cmd" in
start)
	for t in ceph-mon ceph-osd radosgw radosgw-admin ceph-authtool monmaptool openssl; do
		command -v "$t" >/dev/null || die "'$t' is missing (scripts/install-deps.sh --test installs it)"
	done
	"$PY" -c 'import rados' 2>/dev/null || die "python3-rados is missing"
	mkdir -p "$dir"
	chmod 700 "$dir"
	dir=$(cd "$dir" && pwd)
	[ -z "$(ls -A "$dir")" ] || die "'$dir' is not empty"
	umask 077
	# a port taken between the choice and the bind fails one attempt, not the run
	for attempt in 1 2 3; do
		if try_start; then
			cat "$dir/env"
			exit 0
		fi
		stop_all
		err=$(cat "$dir/error" 2>/dev/null || echo "unknown failure")
		if [ "$attempt" -lt 3 ] && grep -qi "bind\|address already in use" "$dir"/log/*.log; then
			find "$dir" -mindepth 1 -delete
			continue
		fi
		die "cannot start a cluster in '$dir': $err"
	done
	;;
stop)
	[ -d "$dir" ] || die "'$dir' is not a directory"
	dir=$(cd "$dir" && pwd)
	stop_all
	;;
rgw-stop)
	dir=$(cd "$dir" && pwd)
	stop_daemon client.rgw
	;;
rgw-start)
	dir=$(cd "$dir" && pwd)
	daemon_pid client.rgw >/dev/null && exit 0
	start_rgw || die "radosgw does not answer: $(log_tail client.rgw)"
	;;
*)
	usage
	;;
esac
