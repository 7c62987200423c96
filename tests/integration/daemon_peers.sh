#!/bin/bash
# daemon_peers.sh - who may talk to a store's daemon. A store whose path is
# too deep for a unix socket path has its control socket in the abstract
# namespace, which has no permissions: the daemon checks SO_PEERCRED on
# every connection it accepts (root, the store's owner) and refuses anyone
# else with one answer, then closes; it does so on STORE/run/daemon.sock
# too (reached here by a uid-1000 process that keeps CAP_DAC_OVERRIDE).
# And the other way round: a uid-1000 process that binds the abstract name
# first is not handed root's /dev/fuse fd; cairn mount says why in one line.
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/mount.sh
source "$TESTLIB/mount.sh"
mount_setup
require_cmd setpriv
chmod 0711 "$WORK"
as_user() { timeout -k 5 30 setpriv --reuid 1000 --regid 1000 --clear-groups -- "$@"; }

# ctl ADDRESS [listen]: connects (an '@' name is abstract), sends a hello
# (with "listen": nothing), prints the answers until the daemon closes (one
# JSON per line, then "closed"), within 10 s
ctl() {
	python3 - "$1" "${2:-}" <<'EOF'
import json, socket, sys
addr = sys.argv[1]
if addr.startswith("@"):
    addr = "\0" + addr[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.settimeout(10)
s.connect(addr)
if sys.argv[2] != "listen":
    s.send(json.dumps({"v": 1, "op": "hello"}).encode())
while True:
    try:
        m = s.recv(1 << 20)
    except ConnectionResetError:  # closed with our request unread
        m = b""
    if not m:
        print("closed")
        break
    print(m.decode())
EOF
}

# the control socket of the daemon serving mountpoint DIR of STORE (its record in run/)
socket_of() {
	python3 - "$1/run" "$2" <<'EOF'
import glob, json, sys
for f in glob.glob(sys.argv[1] + "/mount-*.json"):
    m = json.load(open(f))
    if m.get("mountpoint") == sys.argv[2]:
        print(m.get("socket", ""))
EOF
}

# refused ADDRESS WHAT: a uid-1000 client (ARGS before it to setpriv) gets one refusal, then EOF
refused() {
	local addr=$1 what=$2
	shift 2
	run_capture peer timeout -k 5 30 setpriv --reuid 1000 --regid 1000 --clear-groups "$@" -- \
		bash -c "$(declare -f ctl); ctl '$addr' listen"
	if [ "$RC" -ne 0 ] || [ "$(grep -c . "$WORK/peer.out")" -ne 2 ] ||
		! head -n 1 "$WORK/peer.out" | grep -q '"error": *"permission denied' ||
		[ "$(tail -n 1 "$WORK/peer.out")" != closed ]; then
		show_file "$WORK/peer.out"
		show_file "$WORK/peer.err"
		soft_fail "$what: uid 1000 was not refused once and closed (exit $RC)"
	else
		info "ok: $what: uid 1000 refused ($(head -n 1 "$WORK/peer.out")), then closed"
	fi
}

mkdir -p "$WORK/src/etc"
echo secret >"$WORK/src/etc/shadow"
chmod 0600 "$WORK/src/etc/shadow"

say "a store too deep for sun_path: the control socket is abstract"
DEEP=$WORK/$(printf 'd%.0s' {1..120})
mkdir -p "$DEEP"
STORE=$DEEP/store
import_ok "$STORE" "$WORK/src" --tag base
mkdir -p "$WORK/m1"
mount_ok "$STORE" base "$WORK/m1" --ro
SOCK=$(socket_of "$STORE" "$WORK/m1")
info "socket: $SOCK"
[[ "$SOCK" == @* ]] || fail "a store at a ${#STORE}-character path has the socket '$SOCK', not an abstract one"

run_capture root ctl "$SOCK"
grep -q '"error"' "$WORK/root.out" || ! grep -q '"v"' "$WORK/root.out" &&
	{ show_file "$WORK/root.out"; show_file "$WORK/root.err"; fail "root's hello was not answered"; }
info "ok: root is answered"

refused "$SOCK" "abstract socket"
refused "$SOCK" "abstract socket, with CAP_DAC_OVERRIDE" \
	--inh-caps +dac_override --ambient-caps +dac_override
[ "$(cat "$WORK/m1/etc/shadow")" = secret ] || soft_fail "the mount does not serve after the refusals"
tcairn "$STORE" mounts --json >/dev/null || soft_fail "root's cairn mounts after the refusals"

say "STORE/run/daemon.sock refuses uid 1000 too (defence in depth)"
STORE2=$WORK/s2
import_ok "$STORE2" "$WORK/src" --tag base
mkdir -p "$WORK/m2"
mount_ok "$STORE2" base "$WORK/m2" --ro
SOCK2=$(socket_of "$STORE2" "$WORK/m2")
[[ "$SOCK2" == /* ]] || fail "a short store path has the socket '$SOCK2'"
# without the capability the directory's mode keeps uid 1000 out already
as_user python3 -c "import socket, sys; socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET).connect(sys.argv[1])" \
	"$SOCK2" 2>/dev/null && soft_fail "uid 1000 connected to $SOCK2 without any capability"
refused "$SOCK2" "socket file, uid 1000 with CAP_DAC_OVERRIDE" \
	--inh-caps +dac_override --ambient-caps +dac_override
umount_ok "$STORE2" "$WORK/m2"

say "an abstract name bound first by uid 1000 is not handed root's mount"
umount_ok "$STORE" "$WORK/m1"
# the squatter listens on the name the store's daemon would take, and says if anything came
timeout -k 5 60 setpriv --reuid 1000 --regid 1000 --clear-groups -- \
	python3 - "$SOCK" "$WORK/squat.log" >"$WORK/squat.out" 2>&1 <<'EOF' &
import array, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind("\0" + sys.argv[1][1:])
s.listen(8)
print("listening", flush=True)
s.settimeout(50)
try:
    while True:
        c, _ = s.accept()
        fds = array.array("i")
        msg, anc, _, _ = c.recvmsg(1 << 20, socket.CMSG_SPACE(64 * fds.itemsize))
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
        if not msg and not fds:
            continue  # connected and went away: nothing was handed
        with open(sys.argv[2], "a") as f:
            f.write("got %d bytes and %d fds\n" % (len(msg), len(fds)))
        c.close()
except socket.timeout:
    pass
EOF
SQUAT=$!
track_pid "$SQUAT"
for _ in $(seq 100); do grep -q listening "$WORK/squat.out" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$WORK/squat.out" || { show_file "$WORK/squat.out"; fail "the squatter does not listen"; }
run_capture squatted tcairn "$STORE" mount base "$WORK/m1" --ro
if is_mounted "$WORK/m1"; then
	track_mount "$WORK/m1"
	soft_fail "cairn mount succeeded while uid 1000 held the daemon's socket name"
fi
if [ "$RC" -eq 0 ] || [ "$(wc -l <"$WORK/squatted.err")" -ne 1 ] ||
	! grep -q "belongs to uid 1000" "$WORK/squatted.err"; then
	show_file "$WORK/squatted.err"
	soft_fail "cairn mount (exit $RC) does not say in one line who holds the socket"
fi
info "cairn mount: $(cat "$WORK/squatted.err")"
if [ -s "$WORK/squat.log" ]; then
	show_file "$WORK/squat.log"
	soft_fail "the squatter was sent a request"
fi
kill "$SQUAT" 2>/dev/null
wait "$SQUAT" 2>/dev/null || true
# the name free again, the store mounts as before
mount_ok "$STORE" base "$WORK/m1" --ro
[ "$(cat "$WORK/m1/etc/shadow")" = secret ] || soft_fail "the mount after the squatter left"
umount_ok "$STORE" "$WORK/m1"

finish
