#!/usr/bin/env bash
# `make image-test`: install the host tools with apt where missing, then boot the image
# built by `make image` under qemu-system-aarch64 and check it (image/test/image_test.py).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
missing=()
for t in qemu-system-aarch64:qemu-system-arm mcopy:mtools sfdisk:fdisk debugfs:e2fsprogs \
    mke2fs:e2fsprogs xz:xz-utils ssh-keygen:openssh-client; do
    command -v "${t%%:*}" >/dev/null 2>&1 || missing+=("${t#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || { echo "[image-test] missing ${missing[*]}: run as root or install them" >&2; exit 1; }
    echo "[image-test] installing host packages: ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
fi
exec python3 "$HERE/image_test.py" "$@"
