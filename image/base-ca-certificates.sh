#!/bin/sh
# Customize hook of image/base-rootfs.sh (mmdebstrap runs it with the root file system as
# $1; part of the base's cache key): the image's own update-ca-certificates, run once by
# the host's shell and openssl instead of under qemu-user, where its loop over the ~150
# certificates (a sed and a link each) took about 130 s on a 2-core machine; here 2 s.
# It runs from the image's /etc/ssl/certs with --sysroot ../../.. so every path it makes is
# relative to that directory; the certificate links are then made absolute again
# (/usr/share/ca-certificates/...), exactly as a run inside the image leaves them (links,
# targets and the ca-certificates.crt bundle compared byte for byte: identical). The
# image's update.d hooks run as they would (bookworm's ca-certificates ships none).
set -eu
r=$1
[ -x "$r/usr/sbin/update-ca-certificates" ] || { echo "base-ca-certificates: no update-ca-certificates in $r" >&2; exit 1; }
cd "$r/etc/ssl/certs"
sh ../../../usr/sbin/update-ca-certificates --fresh --sysroot ../../.. >/dev/null
find . -type l | while read -r l; do
    t=$(readlink "$l")
    case $t in ../../..//*) t="/${t#../../..//}"; ln -sfn "$t" "$l" ;; esac
    case $t in /*) [ -e "$r$t" ] || { echo "base-ca-certificates: $l -> $t: no such file in the image" >&2; exit 1; } ;; esac
done
n=$(find . -name '*.pem' -type l | wc -l)
[ "$n" -ge 100 ] && [ -s ca-certificates.crt ] || { echo "base-ca-certificates: only $n certificates" >&2; exit 1; }
echo "base-ca-certificates: $n certificates, $(grep -c 'BEGIN CERTIFICATE' ca-certificates.crt) in the bundle"
