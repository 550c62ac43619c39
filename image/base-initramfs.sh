#!/bin/sh
# Customize hook of image/base-rootfs.sh (mmdebstrap runs it with the root file system as
# $1; part of the base's cache key): the one mkinitramfs of the build, with a short module
# list instead of MODULES=most. Under qemu-user every module mkinitramfs adds costs about
# 2 s of emulated processes: "most" (about 1500 modules) took over 20 minutes on a loaded
# 2-core machine, every SD/MMC, USB host and USB storage driver of the kernel (150
# modules) 220 s; this list about a tenth of that. It holds the drivers the boards of this
# image need to find their root file system, by name; modprobe adds their dependencies
# (sdhci, sdhci-pltfm, cqhci, usbcore, scsi_mod, jbd2, mbcache, crc16...):
#   bcm2835          SD host of the Pi 3 and Zero 2 W (sdhost)
#   sdhci-iproc      the Pi 3's SDHCI and the Pi 4 / 400 / CM4 emmc2 (SD card, CM4 eMMC)
#   gpio-regulator   the Pi 4's switchable SD I/O voltage (1.8 / 3.3 V)
#   dwc2 phy-generic USB of the Pi 3 and Zero 2 W (root on a USB disk)
#   xhci-pci reset-raspberrypi   the Pi 4 / 400's VL805 USB 3 controller (PCIe is built in)
#   usb-storage uas sd_mod       USB mass storage
#   virtio_blk virtio_scsi virtio_pci virtio_mmio   qemu -M virt (make image-test)
#   ext4 crc32c_generic          the root file system (crc32c is ext4's soft dependency)
# The Pi's clock, pinctrl, DMA, mailbox, firmware and PCIe drivers, mmc_block and the MMC
# core are built into Debian's kernel; everything else loads from the root once mounted.
set -eu
r=$1
kver=$(ls "$r/lib/modules" | sort -V | tail -n 1)
mods="bcm2835 sdhci-iproc gpio-regulator dwc2 phy-generic xhci-pci reset-raspberrypi
usb-storage uas sd_mod virtio_blk virtio_scsi virtio_pci virtio_mmio ext4 crc32c_generic"
for m in $mods; do
    grep -q "/$m\.ko" "$r/lib/modules/$kver/modules.dep" \
        || { echo "base-initramfs: module $m is not in kernel $kver" >&2; exit 1; }
done
mkdir -p "$r/etc/initramfs-tools/conf.d"
printf '# edge appliance: only the modules listed in ../modules (see image/base-initramfs.sh)\nMODULES=list\n' \
    >"$r/etc/initramfs-tools/conf.d/edge-modules.conf"
{
    echo "# edge appliance: the modules to find the root file system (image/base-initramfs.sh)"
    printf '%s\n' $mods
} >"$r/etc/initramfs-tools/modules"
chroot "$r" update-initramfs -c -k all
