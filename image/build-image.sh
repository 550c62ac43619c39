#!/usr/bin/env bash
# `make image`: the appliance image from Debian bookworm arm64 packages, for the Raspberry
# Pi 3, 4, 400, CM4 and Zero 2 W (Debian's arm64 kernel; the Pi 5 needs the pi-gen image).
#
#   1. the base root file system (image/base-rootfs.sh: mmdebstrap, cached under
#      image/cache/ and shared with `make arm-check`), unpacked into build/image-work/;
#   2. the appliance part, inside it under qemu-user: image/appliance/install-appliance.sh
#      (the same script the pi-gen stage runs) with what image/stage-dist.sh staged;
#   3. the build-only packages (gcc, headers) removed, machine-id emptied, caches dropped;
#   4. the disk, with no loop device and no mount: the FAT32 boot partition RASPIFIRM
#      (mkfs.vfat -C + mcopy: firmware, config.txt, cmdline.txt, DTBs, kernel, initrd,
#      edge.toml, the technician's README) from 4 MiB, the ext4 root RASPIROOT (mke2fs -d),
#      an MBR (sfdisk), both written in with dd conv=notrunc;
#   5. build/edge-gateway-<version>-arm64.img.xz, its .sha256 and the package manifest
#      build/edge-gateway-<version>-arm64.manifest.txt (also in the image, /usr/share/edge/).
# SOURCE_DATE_EPOCH (default: the last commit's time) fixes file times, volume ids, UUIDs
# and hash seeds, so two builds of one commit differ only where package scripts write
# their own times or random data (see image/README.md).
#
# Usage: bash image/build-image.sh      (root; `make image`)
# Environment: AUTHORIZED_KEYS=FILE (the administrator's SSH keys, baked in), EDGE_HOSTNAME,
#   ADMIN_USER, IMAGE_XZ_LEVEL (default 1: 2.3x faster than -3 for 6 % more; 6 for a
#   release download), IMAGE_KEEP_BUILD_DEPS=1 (keep gcc in the image).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
OUT=$REPO/build
WORK=$OUT/image-work
ROOT=$WORK/rootfs
DIST=$WORK/dist
FAT_MIB=256
FAT_START_MIB=4
T0=$(date +%s)

say() { printf '[image] %s\n' "$*" >&2; }
die() { printf '[image] ERROR: %s\n' "$*" >&2; exit 1; }
elapsed() { echo $(( $(date +%s) - T0 )); }

[ "$(id -u)" -eq 0 ] || die "needs root (chroot, file owners): sudo make image"

ensure_host_tools() {
    local missing=() t
    for t in mkfs.vfat:dosfstools mcopy:mtools sfdisk:fdisk mke2fs:e2fsprogs xz:xz-utils; do
        command -v "${t%%:*}" >/dev/null 2>&1 || missing+=("${t#*:}")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing host packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
            --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# in_root CMD...: CMD in "$ROOT" under qemu-user, nothing left mounted (image/in-root.sh).
# shellcheck source=in-root.sh
source "$HERE/in-root.sh"

ensure_host_tools
VERSION=$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$REPO/pyproject.toml")
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git -C "$REPO" log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH
NAME=edge-gateway-$VERSION-arm64
# A UUID and ids derived from the version and SOURCE_DATE_EPOCH: the same for one commit.
SEED=$(printf '%s %s' "$NAME" "$SOURCE_DATE_EPOCH" | sha256sum | cut -c1-32)
ROOT_UUID=${SEED:0:8}-${SEED:8:4}-4${SEED:13:3}-8${SEED:17:3}-${SEED:20:12}
FAT_ID=${SEED:0:8}
DISK_ID=0x${SEED:8:8}

say "1/5 base root file system"
bash "$HERE/base-rootfs.sh" binfmt
BASE=$(bash "$HERE/base-rootfs.sh" tarball)
mkdir -p "$WORK"
rm -rf --one-file-system -- "$ROOT"
mkdir -p "$ROOT"
tar -C "$ROOT" --numeric-owner --xattrs --xattrs-include='*' -xpf "$BASE"
say "unpacked the base ($(elapsed) s)"

say "2/5 the appliance (install-appliance.sh under qemu-user)"
bash "$HERE/stage-dist.sh" "$DIST"
rm -rf "$ROOT/opt/edge/dist"
mkdir -p "$ROOT/opt/edge"
cp -a "$DIST" "$ROOT/opt/edge/dist"
# The .pyc files: compiled here by the host's CPython when its bytecode is the image's
# (same magic number), as the image's python would (unchecked-hash, the paths the image
# sees); else by the install script under qemu-user (about 80 s more).
PYC_MAGIC='import importlib.util; print(importlib.util.MAGIC_NUMBER.hex())'
host_magic=$(python3 -c "$PYC_MAGIC" 2>/dev/null || true)
image_magic=$(in_root python3 -c "$PYC_MAGIC" 2>/dev/null || true)
PYC_HERE=0
[ -n "$host_magic" ] && [ "$host_magic" = "$image_magic" ] && PYC_HERE=1
in_root EDGE_PYC_BY_BUILDER=$PYC_HERE bash /opt/edge/dist/appliance/install-appliance.sh /opt/edge/dist 2>&1 | tee "$WORK/install.log" >&2
[ "${PIPESTATUS[0]}" -eq 0 ] || die "install-appliance.sh failed (log: build/image-work/install.log)"
if [ "$PYC_HERE" = 1 ]; then
    python3 -m compileall -q -f -j 0 --invalidation-mode unchecked-hash -s "$ROOT" -p / \
        "$ROOT/opt/edge/venv/lib" >/dev/null || true
    say ".pyc files compiled by the host's python3 (bytecode $host_magic, as the image's)"
else
    say ".pyc files compiled in the image (host bytecode ${host_magic:-none}, image $image_magic)"
fi
rm -rf "$ROOT/opt/edge/dist"
say "appliance installed ($(elapsed) s)"

say "3/5 build-only packages out, caches, machine-id"
if [ "${IMAGE_KEEP_BUILD_DEPS:-0}" != 1 ]; then
    in_root apt-get -qq -y purge --autoremove gcc gcc-12 cpp cpp-12 libc6-dev python3-dev \
        libpython3.11-dev libpython3-dev python3.11-dev libexpat1-dev zlib1g-dev linux-libc-dev \
        libgcc-12-dev >"$WORK/purge.log" 2>&1 || { tail -n 20 "$WORK/purge.log" >&2; die "apt-get purge failed"; }
    # The package list changed: record it again.
    in_root sh -c "dpkg-query -W -f '\${Package}\t\${Version}\t\${Architecture}\n' | LC_ALL=C sort >/usr/share/edge/packages.tsv"
fi
cat >"$ROOT/etc/fstab" <<'EOF'
# edge appliance: the ext4 root and the FAT boot partition (config, firmware, kernel).
LABEL=RASPIROOT  /               ext4  rw,noatime,errors=remount-ro     0 1
LABEL=RASPIFIRM  /boot/firmware  vfat  rw,noatime,fmask=0022,dmask=0022 0 2
EOF
: >"$ROOT/etc/machine-id"            # empty: systemd makes one at first boot
rm -f "$ROOT/var/lib/dbus/machine-id"
# Also what differed between two builds of one commit and is only a log or a cache: apt's
# logs of the purge, ldconfig's aux-cache (inode numbers and times), dot files in /tmp.
rm -rf "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/* \
    "$ROOT"/tmp/* "$ROOT"/tmp/.[!.]* "$ROOT"/var/tmp/* "$ROOT"/var/log/*.log "$ROOT"/var/log/apt/*.log \
    "$ROOT"/var/cache/ldconfig/aux-cache "$ROOT"/var/cache/debconf/*-old \
    "$ROOT"/var/lib/dpkg/*-old "$ROOT/root"/.cache
# Clamp every file time to SOURCE_DATE_EPOCH (the venv's .pyc files are unchecked-hash ones,
# so their sources' times do not matter).
find "$ROOT" -xdev -newermt "@$SOURCE_DATE_EPOCH" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$OUT"
{
    echo "# $NAME: Debian packages (name, version, architecture) then Python wheels"
    cat "$ROOT/usr/share/edge/packages.tsv"
    echo "# wheels in /opt/edge/venv"
    cat "$ROOT/usr/share/edge/wheels.txt"
} >"$OUT/$NAME.manifest.txt"
say "cleaned ($(elapsed) s)"

say "4/5 the disk (FAT32 RASPIFIRM + ext4 RASPIROOT, MBR)"
FAT_SRC=$WORK/firmware
rm -rf "$FAT_SRC"
mv "$ROOT/boot/firmware" "$FAT_SRC"
mkdir -m 755 "$ROOT/boot/firmware"
ls "$FAT_SRC"/vmlinuz* "$FAT_SRC"/initrd.img* "$FAT_SRC/config.txt" "$FAT_SRC/cmdline.txt" >/dev/null \
    || die "the boot files are missing from /boot/firmware (raspi-firmware hook)"
FAT_IMG=$WORK/fat.img
rm -f "$FAT_IMG"
mkfs.vfat -C -F 32 -n RASPIFIRM -i "$FAT_ID" "$FAT_IMG" $((FAT_MIB * 1024)) >/dev/null
find "$FAT_SRC" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
MTOOLS_SKIP_CHECK=1 mcopy -s -m -i "$FAT_IMG" "$FAT_SRC"/* ::/
# Root: what the files take plus 25 % and 256 MiB (it grows to the card at first boot).
used_mib=$(du -s --block-size=1M --apparent-size "$ROOT" | cut -f1)
ROOT_MIB=$(( used_mib * 125 / 100 + 256 ))
ROOT_IMG=$WORK/root.img
rm -f "$ROOT_IMG"
E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH mke2fs -q -t ext4 -L RASPIROOT -U "$ROOT_UUID" \
    -E "root_owner=0:0,hash_seed=$ROOT_UUID" -d "$ROOT" "$ROOT_IMG" "${ROOT_MIB}M"
IMG=$OUT/$NAME.img
DISK_MIB=$(( FAT_START_MIB + FAT_MIB + ROOT_MIB ))
rm -f "$IMG"
truncate -s "${DISK_MIB}M" "$IMG"
sfdisk -q "$IMG" <<EOF
label: dos
label-id: $DISK_ID
unit: sectors

start=$((FAT_START_MIB * 2048)), size=$((FAT_MIB * 2048)), type=c
start=$(((FAT_START_MIB + FAT_MIB) * 2048)), type=83
EOF
dd if="$FAT_IMG" of="$IMG" bs=1M seek="$FAT_START_MIB" conv=notrunc,sparse status=none
dd if="$ROOT_IMG" of="$IMG" bs=1M seek=$((FAT_START_MIB + FAT_MIB)) conv=notrunc,sparse status=none
rm -f "$FAT_IMG" "$ROOT_IMG"
touch -d "@$SOURCE_DATE_EPOCH" "$IMG"
say "disk $IMG: $DISK_MIB MiB ($(elapsed) s)"

say "5/5 xz"
rm -f "$IMG.xz"
xz -T0 "-${IMAGE_XZ_LEVEL:-1}" --keep "$IMG"
(cd "$OUT" && sha256sum "$NAME.img.xz" >"$NAME.img.xz.sha256")
rm -rf --one-file-system -- "$ROOT" "$FAT_SRC"
printf '{"image": "build/%s.img.xz", "image_mib": %d, "xz_mib": %.1f, "build_s": %d, "source_date_epoch": %s}\n' \
    "$NAME" "$DISK_MIB" "$(du -k "$IMG.xz" | awk '{ print $1 / 1024 }')" "$(elapsed)" "$SOURCE_DATE_EPOCH"
say "done in $(elapsed) s: build/$NAME.img.xz"
