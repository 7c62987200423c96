#!/bin/bash
# mkrootfs.sh DIR [VERSION] - a small root filesystem from busybox-static.
#
# Deterministic: the same VERSION gives the same bytes, modes and times, so
# importing it twice (on any machine with the same busybox-static) gives the
# same image id. VERSION 2 changes a few files, as an upgrade would.
set -euo pipefail
umask 022

dir=${1:?usage: mkrootfs.sh DIR [VERSION]}
version=${2:-1}
busybox=$(command -v busybox || true)
if [ -z "$busybox" ] || ! file_is_static=$(ldd "$busybox" 2>&1) ||
	! grep -q "not a dynamic executable" <<<"$file_is_static"; then
	busybox=/bin/busybox
fi
[ -x "$busybox" ] || { echo "mkrootfs: busybox-static is not installed" >&2; exit 1; }

rm -rf "$dir"
mkdir -p "$dir"/{bin,sbin,etc,dev,proc,sys,tmp,root,var/log,usr/bin,usr/share/doc}
install -m 0755 "$busybox" "$dir/bin/busybox"
for applet in $("$busybox" --list); do
	[ "$applet" = busybox ] && continue
	ln -sf busybox "$dir/bin/$applet"
done
chmod 1777 "$dir/tmp"
chmod 0700 "$dir/root"

cat >"$dir/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat >"$dir/etc/group" <<'G'
root:x:0:
nogroup:x:65534:
G
echo cairn-demo >"$dir/etc/hostname"
cat >"$dir/etc/os-release" <<O
NAME="cairn demo"
VERSION_ID="$version"
PRETTY_NAME="cairn demo $version (busybox)"
O
printf 'cairn demo root filesystem, version %s\n' "$version" >"$dir/usr/share/doc/README"
if [ "$version" -ge 2 ]; then
	printf '#!/bin/sh\necho "hello from version %s"\n' "$version" >"$dir/usr/bin/hello"
	chmod 0755 "$dir/usr/bin/hello"
	echo "motd: upgraded to $version" >"$dir/etc/motd"
fi

# fixed times so the tree, and so its image id, is reproducible
find "$dir" -exec touch -h -d "2026-01-0${version} 00:00:00 UTC" {} +
