#!/usr/bin/env bash
# `make deb`: build/edge-gateway_<version>_arm64.deb, the agent for an operator who already
# runs Raspberry Pi OS (bookworm, arm64) and would rather `apt install ./<that>.deb` than
# reflash. No root, no qemu, no arm64 code run here:
#
#   1. image/stage-dist.sh stages what the image builders stage (the pinned aarch64 wheels,
#      hash-checked, the agent's source, the units, edge.toml, image/appliance/), into
#      /usr/share/edge/dist of the package; build.conf gets ADMIN_USER empty (no
#      administrator account on the operator's OS) and no authorized_keys;
#   2. DEBIAN/: control (Depends: what the postinst's install steps and the agent need,
#      the shared-library part derived from the wheels by shlib_depends.py), postinst
#      (install-appliance.sh --steps ...: see image/deb/postinst), prerm, postrm;
#   3. /usr/share/doc/edge-gateway: copyright, changelog.gz, README.Debian;
#   4. dpkg-deb --root-owner-group, every file time set to SOURCE_DATE_EPOCH (default: the
#      last commit's time) and modes normalised, so one commit gives the same bytes.
#
# Usage: bash image/deb/build-deb.sh [--dist DIST]
#   --dist DIST   package an already staged folder instead of running stage-dist.sh
# Environment: DEB_OUT (default build/), DEB_MAINTAINER (default: the last commit's
#   author), SOURCE_DATE_EPOCH, IMAGE_CACHE (stage-dist.sh's wheel cache).
# Prints the path of the .deb on stdout.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IMAGE=$(cd "$HERE/.." && pwd)
REPO=$(cd "$IMAGE/.." && pwd)
OUT=${DEB_OUT:-$REPO/build}
PKG=edge-gateway
DEST=/usr/share/edge/dist

say() { printf '[deb] %s\n' "$*" >&2; }
die() { printf '[deb] ERROR: %s\n' "$*" >&2; exit 1; }

DIST_IN=
case "${1:-}" in
    --dist) [ $# -eq 2 ] || die "usage: build-deb.sh [--dist DIST]"; DIST_IN=$(cd "$2" && pwd) ;;
    "") ;;
    *) die "usage: build-deb.sh [--dist DIST]" ;;
esac
command -v dpkg-deb >/dev/null || die "dpkg-deb is missing (apt-get install dpkg)"
command -v readelf >/dev/null || die "readelf is missing (apt-get install binutils)"

VERSION=$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$REPO/pyproject.toml")
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git -C "$REPO" log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH
COMMIT=$(git -C "$REPO" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
MAINTAINER=${DEB_MAINTAINER:-$(git -C "$REPO" log -1 --format='%an <%ae>' 2>/dev/null || true)}
[ -n "$MAINTAINER" ] || die "set DEB_MAINTAINER='Name <address>' (no git history to take it from)"

mkdir -p "$OUT"
WORK=$(mktemp -d "$OUT/deb-work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ROOT=$WORK/root

# 1. the staging, the one the image builders install from
if [ -n "$DIST_IN" ]; then
    mkdir -p "$ROOT${DEST%/*}"
    cp -a "$DIST_IN" "$ROOT$DEST"
else
    env -u AUTHORIZED_KEYS bash "$IMAGE/stage-dist.sh" "$WORK/dist"
    # A copy, not the staging's hard links: the times and modes set below must not reach
    # the wheel cache.
    mkdir -p "$ROOT${DEST%/*}"
    cp -a "$WORK/dist" "$ROOT$DEST"
    rm -rf "$WORK/dist"
fi
for f in build.conf requirements-aarch64.txt edge.service edge.toml appliance/install-appliance.sh; do
    [ -e "$ROOT$DEST/$f" ] || die "the staged dist lacks $f (image/stage-dist.sh stages it)"
done
rm -f "$ROOT$DEST/authorized_keys"
sed -i -e 's/^ADMIN_USER=.*/ADMIN_USER=/' "$ROOT$DEST/build.conf"
grep -qx 'ADMIN_USER=' "$ROOT$DEST/build.conf" || echo 'ADMIN_USER=' >>"$ROOT$DEST/build.conf"

# 2. control and maintainer scripts
LIBDEPS=$(python3 "$HERE/shlib_depends.py" "$ROOT$DEST/wheels")
# Depends, by who needs it (install-appliance.sh's steps users,venv,units,config,manifest,
# edge-firstboot, edge.service):
#   python3 3.11 + python3-venv   venv (the lock is for CPython 3.11; ensurepip's pip)
#   gcc, libc6-dev, python3-dev   venv: the C featurizer, compiled in the postinst (the
#                                 staging runs on an x86 host with no aarch64 toolchain, so
#                                 it cannot ship it prebuilt). setup.py makes it optional,
#                                 but the pure-Python one is ~30x slower on the hot path, and
#                                 only Depends are configured before the postinst runs
#   systemd (>= 247)              units (systemctl; LoadCredential=, ProtectProc= in edge.service)
#   (deb-systemd-invoke, start/stop in the maintainer scripts: init-system-helpers, essential)
#   passwd                        users (groupadd, useradd, usermod)
#   libc6, libstdc++6, ...        the wheels' native code (shlib_depends.py)
# Suggests: python3-lgpio (gpiozero's pin factory on a Pi 5, Raspberry Pi OS),
# systemd-timesyncd (the opt-in clock step).
DEPENDS="python3 (>= 3.11), python3 (<< 3.12), python3-venv, gcc, libc6-dev, python3-dev, systemd (>= 247), passwd${LIBDEPS:+, $LIBDEPS}"
mkdir -p "$ROOT/DEBIAN" "$ROOT/usr/share/doc/$PKG"
install -m 755 "$HERE/postinst" "$HERE/prerm" "$HERE/postrm" "$ROOT/DEBIAN/"
install -m 644 "$HERE/README.Debian" "$ROOT/usr/share/doc/$PKG/README.Debian"
install -D -m 644 "$HERE/lintian-overrides" "$ROOT/usr/share/lintian/overrides/$PKG"
cat >"$ROOT/usr/share/doc/$PKG/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: edge-gateway
Comment: The agent's source (/usr/share/edge/dist/edge_gateway-$VERSION.tar.gz) and its
 install files. The wheels in /usr/share/edge/dist/wheels carry their own licences (in
 each wheel's .dist-info); /usr/share/edge/wheels.txt lists them once installed.

Files: *
Copyright: $(date -u -d "@$SOURCE_DATE_EPOCH" +%Y) the edge gateway maintainers
License: Apache-2.0
 On Debian systems, the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
EOF
{
    printf '%s (%s) bookworm; urgency=medium\n\n' "$PKG" "$VERSION"
    printf '  * Built from commit %s of the edge gateway repository (make deb).\n\n' "$COMMIT"
    printf ' -- %s  %s\n' "$MAINTAINER" "$(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9 -n >"$ROOT/usr/share/doc/$PKG/changelog.gz"

# Modes and times: the same bytes for one commit, whatever the checkout's umask.
chmod -R u+rwX,go+rX,go-w "$ROOT"
find "$ROOT" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
INSTALLED_KB=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
(cd "$ROOT" && find usr -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum) >"$ROOT/DEBIAN/md5sums"
cat >"$ROOT/DEBIAN/control" <<EOF
Package: $PKG
Version: $VERSION
Architecture: arm64
Maintainer: $MAINTAINER
Installed-Size: $INSTALLED_KB
Depends: $DEPENDS
Suggests: python3-lgpio, systemd-timesyncd
Section: net
Priority: optional
Description: edge gateway agent for a private PoA Ethereum chain
 One asyncio process per Raspberry Pi that ingests a private proof-of-authority
 Ethereum chain, scores every deployed contract with an ONNX model, buffers the
 records in a SQLite outbox, seals checkpoints (CRC, Merkle root) and forwards
 encrypted metadata and a reference to public networks, with fleet attestations.
 .
 The postinst builds /opt/edge/venv from the pinned, hash-checked aarch64
 wheels in this package (no network) with the install script of the appliance
 image, makes the edge user and enables edge.service with its config on
 /boot/firmware. It leaves the hostname, network, SSH and passwords alone (see
 README.Debian).
EOF
chmod 644 "$ROOT/DEBIAN/control" "$ROOT/DEBIAN/md5sums"
touch -h -d "@$SOURCE_DATE_EPOCH" "$ROOT/DEBIAN" "$ROOT/DEBIAN"/*

DEB=$OUT/${PKG}_${VERSION}_arm64.deb
rm -f "$DEB"
# gzip: the wheels are compressed already (xz -6 saves 1.5 % for a minute of CPU), and
# xz output can differ between its single- and multi-threaded modes (cores of the build host).
dpkg-deb --root-owner-group -Zgzip -z9 --build "$ROOT" "$DEB" >/dev/null
say "built ${DEB#"$REPO"/} ($(du -k "$DEB" | awk '{ printf "%.1f", $1 / 1024 }') MiB, installed $((INSTALLED_KB / 1024)) MiB)"
echo "$DEB"
