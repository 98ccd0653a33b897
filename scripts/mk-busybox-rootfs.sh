#!/bin/sh
# Build a minimal busybox root filesystem for tests and demos.
# Usage: scripts/mk-busybox-rootfs.sh DEST
# Needs Debian's busybox-static (/bin/busybox is a static binary there).
set -eu
dest=${1:?usage: mk-busybox-rootfs.sh DEST}
bb=${BUSYBOX:-/bin/busybox}
if ! file -L "$bb" 2>/dev/null | grep -q 'statically linked' && ! ldd "$bb" 2>&1 | grep -q 'not a dynamic'; then
  echo "mk-busybox-rootfs: $bb is not a static busybox; install busybox-static" >&2
  exit 1
fi
mkdir -p "$dest"
cd "$dest"
mkdir -p bin sbin usr/bin usr/sbin etc proc sys dev tmp root home var/tmp run
chmod 1777 tmp var/tmp
cp "$bb" bin/busybox
for applet in $(./bin/busybox --list); do
  [ "$applet" = busybox ] && continue
  ln -sf busybox "bin/$applet"
done
cat > etc/passwd <<'PW'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PW
cat > etc/group <<'GR'
root:x:0:
daemon:x:1:
nogroup:x:65534:
GR
echo 'hosts: files dns' > etc/nsswitch.conf
