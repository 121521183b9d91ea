#!/usr/bin/env bash
# Assembles the runtime filesystem of the gregor image from a built `gregor` binary:
#   /usr/local/bin/gregor, /etc/passwd + /etc/group (user gregor, uid/gid 1000),
#   /etc/nsswitch.conf, /tmp (1777) and /var/lib/gregor (the data volume, owned by 1000).
# A statically linked binary needs nothing else; for a dynamically linked one the shared
# libraries `ldd` lists are copied too.
#
# Usage: docker/make-rootfs.sh path/to/gregor OUTDIR
# Used by docker/Dockerfile (inside the build stage) and by docker/test.sh (on the host).
set -euo pipefail
bin=${1:?usage: make-rootfs.sh path/to/gregor OUTDIR}
out=${2:?usage: make-rootfs.sh path/to/gregor OUTDIR}
uid=1000

rm -rf "$out"
mkdir -p "$out/usr/local/bin" "$out/etc" "$out/tmp" "$out/var/lib/gregor"
cp "$bin" "$out/usr/local/bin/gregor"
chmod 0755 "$out/usr/local/bin/gregor"
if command -v strip >/dev/null 2>&1; then strip "$out/usr/local/bin/gregor" 2>/dev/null || true; fi

# Shared libraries, if any (a static binary has none: ldd says "not a dynamic executable").
if ldd "$bin" >/dev/null 2>&1; then
  for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    mkdir -p "$out$(dirname "$lib")"
    cp -L "$lib" "$out$lib"
  done
fi

cat > "$out/etc/passwd" <<PASSWD
root:x:0:0:root:/root:/sbin/nologin
gregor:x:$uid:$uid:gregor:/var/lib/gregor:/sbin/nologin
PASSWD
cat > "$out/etc/group" <<GROUP
root:x:0:
gregor:x:$uid:
GROUP
# Host names: /etc/hosts first (Docker writes the container's own name there), then DNS.
echo 'hosts: files dns' > "$out/etc/nsswitch.conf"
chmod 1777 "$out/tmp"
if [ "$(id -u)" = 0 ]; then chown "$uid:$uid" "$out/var/lib/gregor"; fi
