#!/usr/bin/env bash
# The arm64 Debian bookworm base root file system, shared by `make image` and
# `make arm-check`: built once with mmdebstrap and cached as a tarball keyed by its inputs.
#
#   bash image/base-rootfs.sh tarball      build (or reuse) it; print its path
#   bash image/base-rootfs.sh extract DIR  build (or reuse) it and unpack it into DIR
#   bash image/base-rootfs.sh key          print the cache key (sha256 of the inputs, 16 hex)
#   bash image/base-rootfs.sh cached       print the tarball's path if it is built (else exit 1)
#   bash image/base-rootfs.sh binfmt       make sure arm64 programs run here (qemu-user)
#
# What is in it: Debian bookworm arm64 (--variant=minbase, components main and
# non-free-firmware) with systemd as init, udev, kmod, dbus, the Debian arm64 kernel
# (linux-image-arm64, with its initramfs), raspi-firmware (the Pi boot firmware, DTBs,
# config.txt, cmdline.txt in /boot/firmware), python3 + venv, a C compiler for the agent's
# featurizer, and what the appliance uses (openssh-server, systemd-timesyncd, growpart,
# sudo, ca-certificates, iproute2). The appliance part is not here: install-appliance.sh.
#
# Speed (measured gotchas, see ../shared/field-notes.md): update-initramfs is diverted while
# the packages install (the kernel and initramfs-tools would each run mkinitramfs under
# qemu-user, minutes each) and run once at the end, with a module list
# (image/base-initramfs.sh); update-ca-certificates is diverted too and run once, natively,
# at the end (image/base-ca-certificates.sh: 2 s instead of 130 s under qemu-user, the
# same links and bundle); raspi-firmware's consoles are set
# (its detection in a chroot finds only tty0) and its hook gets /proc (mmdebstrap's root
# mode mounts it). The tarball's mtimes are clamped to SOURCE_DATE_EPOCH (the date of the
# last commit that changed this file, unless set), so two builds differ as little as
# the package scripts allow.
#
# Needs root, binfmt_misc with qemu-aarch64 (set up here when possible) and the Debian
# mirror apt is configured with. Environment: IMAGE_CACHE (default image/cache),
# IMAGE_MIRROR (default: the mirror of the host's apt sources, else deb.debian.org).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
# shellcheck source=debian-mirror.sh
source "$HERE/debian-mirror.sh"
CACHE=${IMAGE_CACHE:-$HERE/cache}
SUITE=bookworm
# One package a line is easier to review; the order does not matter (sorted for the key).
PACKAGES=(
    systemd systemd-sysv udev kmod dbus initramfs-tools zstd
    linux-image-arm64 raspi-firmware
    python3 python3-venv
    gcc libc6-dev python3-dev
    openssh-server systemd-timesyncd cloud-guest-utils fdisk e2fsprogs dosfstools
    sudo ca-certificates iproute2 procps less nano
)

say() { printf '[base-rootfs] %s\n' "$*" >&2; }
die() { printf '[base-rootfs] ERROR: %s\n' "$*" >&2; exit 1; }

pkg_list() { printf '%s\n' "${PACKAGES[@]}" | sort -u | paste -sd, -; }

key() {
    { echo "$SUITE"; pkg_list; sed -n '/^build() {/,/^}/p' "${BASH_SOURCE[0]}"; cat "$HERE/base-initramfs.sh" "$HERE/base-ca-certificates.sh"; } \
        | sha256sum | cut -c1-16
}

detect_mirror() { debian_mirror "${IMAGE_MIRROR:-}"; }

ensure_host_tools() {
    local missing=()
    command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
    command -v qemu-aarch64-static >/dev/null 2>&1 || missing+=(qemu-user-static)
    command -v update-binfmts >/dev/null 2>&1 || missing+=(binfmt-support)
    command -v arch-test >/dev/null 2>&1 || missing+=(arch-test)
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing host packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
            --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

setup_binfmt() {
    local entry=/proc/sys/fs/binfmt_misc/qemu-aarch64
    if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
    fi
    if ! { [ -e "$entry" ] && head -n 1 "$entry" | grep -q '^enabled'; }; then
        update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 \
            || update-binfmts --import qemu-aarch64 >/dev/null 2>&1 || true
    fi
    arch-test arm64 >/dev/null 2>&1 || die "cannot run arm64 programs here (binfmt_misc + qemu-aarch64)"
}

# build OUT.tar: the mmdebstrap run (everything in this function is part of the cache key).
build() {
    local out=$1 mirror
    mirror=$(detect_mirror)
    say "mmdebstrap arm64 $SUITE from $mirror (a few minutes; log: ${out%.tar}.log)"
    # essential hook: divert update-initramfs before the kernel and initramfs-tools arrive.
    # customize hooks: the sources the device will use, raspi-firmware's settings, then one
    # mkinitramfs (its post-update hook copies kernel, initrd and DTBs to /boot/firmware).
    mmdebstrap --format=tar --architectures=arm64 --variant=minbase --components=main,non-free-firmware \
        --include="$(pkg_list)" \
        --aptopt='Acquire::Retries "3"' \
        --dpkgopt=force-unsafe-io --dpkgopt=force-confold --dpkgopt=force-confdef \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-include=/usr/share/locale/locale.alias' \
        --essential-hook='chroot "$1" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs' \
        --essential-hook='printf "#!/bin/sh\nexit 0\n" >"$1/usr/sbin/update-initramfs"; chmod 755 "$1/usr/sbin/update-initramfs"' \
        --essential-hook='chroot "$1" dpkg-divert --quiet --local --rename --add /usr/sbin/update-ca-certificates' \
        --essential-hook='printf "#!/bin/sh\nexit 0\n" >"$1/usr/sbin/update-ca-certificates"; chmod 755 "$1/usr/sbin/update-ca-certificates"' \
        --essential-hook='mkdir -p "$1/etc/default" "$1/boot/firmware"; printf "CONSOLES=\"tty0 ttyS1,115200\"\nROOTPART=LABEL=RASPIROOT\n" >"$1/etc/default/raspi-firmware"' \
        --customize-hook='rm -f "$1/usr/sbin/update-initramfs"; chroot "$1" dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs' \
        --customize-hook='rm -f "$1/usr/sbin/update-ca-certificates"; chroot "$1" dpkg-divert --quiet --local --rename --remove /usr/sbin/update-ca-certificates' \
        --customize-hook="$HERE/base-ca-certificates.sh" \
        --customize-hook='printf "deb http://deb.debian.org/debian bookworm main non-free-firmware\ndeb http://deb.debian.org/debian bookworm-updates main non-free-firmware\ndeb http://deb.debian.org/debian-security bookworm-security main non-free-firmware\n" >"$1/etc/apt/sources.list"' \
        --customize-hook="$HERE/base-initramfs.sh" \
        --customize-hook='ls "$1"/boot/firmware/initrd.img* "$1"/boot/firmware/vmlinuz* "$1"/boot/firmware/config.txt "$1"/boot/firmware/cmdline.txt >/dev/null' \
        --customize-hook='chroot "$1" dpkg-query -W -f "\${Package}\t\${Version}\t\${Architecture}\n" >"$1/usr/share/edge-base-manifest.tsv"' \
        "$SUITE" "$out" \
        "deb $mirror $SUITE main non-free-firmware" \
        "deb $mirror $SUITE-updates main non-free-firmware" \
        "deb ${mirror%/debian*}/debian-security $SUITE-security main non-free-firmware"
}

tarball() {
    local k out t0
    k=$(key)
    out=$CACHE/base-arm64-$k.tar
    if [ -s "$out" ]; then
        say "cached: ${out#"$REPO"/}"
        echo "$out"
        return 0
    fi
    [ "$(id -u)" -eq 0 ] || die "needs root (mmdebstrap, chroot)"
    ensure_host_tools
    setup_binfmt
    mkdir -p "$CACHE"
    if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
        SOURCE_DATE_EPOCH=$(git -C "$REPO" log -1 --format=%ct -- image/base-rootfs.sh 2>/dev/null || true)
        [ -n "$SOURCE_DATE_EPOCH" ] || SOURCE_DATE_EPOCH=$(git -C "$REPO" log -1 --format=%ct 2>/dev/null || date +%s)
    fi
    export SOURCE_DATE_EPOCH
    t0=$(date +%s)
    if ! build "$out.part" >"$CACHE/base-arm64-$k.log" 2>&1; then
        rm -f "$out.part"
        tail -n 30 "$CACHE/base-arm64-$k.log" >&2
        die "mmdebstrap failed; log: ${CACHE#"$REPO"/}/base-arm64-$k.log"
    fi
    mv -f "$out.part" "$out"
    # Older tarballs of other keys are stale: keep the cache to one.
    find "$CACHE" -maxdepth 1 -name 'base-arm64-*.tar' ! -name "base-arm64-$k.tar" -delete
    say "built ${out#"$REPO"/} in $(( $(date +%s) - t0 )) s ($(du -m "$out" | cut -f1) MiB)"
    echo "$out"
}

extract() {
    local dir=$1 tb
    tb=$(tarball)
    [ "$(id -u)" -eq 0 ] || die "needs root (file owners of the root file system)"
    rm -rf --one-file-system -- "$dir"
    mkdir -p "$dir"
    tar -C "$dir" --numeric-owner --xattrs --xattrs-include='*' -xpf "$tb"
}

case "${1:-}" in
    key) key ;;
    cached) t="${IMAGE_CACHE:-$HERE/cache}/base-arm64-$(key).tar"; [ -s "$t" ] && echo "$t" ;;
    binfmt) ensure_host_tools; setup_binfmt ;;
    tarball) tarball ;;
    extract) [ $# -eq 2 ] || die "usage: base-rootfs.sh extract DIR"; extract "$2" ;;
    *) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
