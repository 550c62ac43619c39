#!/bin/sh
# Customize hook of image/base-rootfs.sh (mmdebstrap runs it with the root file system as
# $1; part of the base's cache key): the one mkinitramfs of the build, with a module list
# instead of MODULES=most. Under qemu-user every file mkinitramfs copies costs a few
# emulated processes: "most" (about 1500 modules, the NFS-root network drivers among them)
# took over 20 minutes on a loaded 2-core machine. The list holds every module the boards
# of this image need to find their root file system: all SD/MMC host drivers (Pi 3:
# sdhost, sdhci-iproc; Pi 4/400/CM4: emmc2), USB boot (dwc2, xHCI, reset-raspberrypi for
# the Pi 4's VL805, usb-storage, uas), ext4, FAT, and virtio for qemu; their dependencies
# follow by modprobe. The Pi's clock, pinctrl, DMA, mailbox and firmware drivers are
# built into Debian's kernel.
set -eu
r=$1
kver=$(ls "$r/lib/modules" | sort -V | tail -n 1)
k=$r/lib/modules/$kver/kernel
mkdir -p "$r/etc/initramfs-tools/conf.d"
printf '# edge appliance: only the modules listed in ../modules (see image/base-initramfs.sh)\nMODULES=list\n' \
    >"$r/etc/initramfs-tools/conf.d/edge-modules.conf"
{
    echo "# edge appliance: the modules to find the root file system (image/base-initramfs.sh)"
    (cd "$k" && find drivers/mmc drivers/usb/dwc2 drivers/usb/host drivers/usb/storage \
        drivers/reset/reset-raspberrypi.ko* drivers/regulator/gpio-regulator.ko* \
        drivers/scsi/sd_mod.ko* drivers/block/virtio_blk.ko* drivers/scsi/virtio_scsi.ko* \
        drivers/virtio fs/ext4 fs/jbd2 fs/mbcache.ko* fs/fat fs/nls lib crypto \
        -name '*.ko*' 2>/dev/null) \
        | grep -E '/(crc|libcrc)|^drivers|^fs' | sed -e 's#.*/##' -e 's#\.ko.*##' | LC_ALL=C sort -u
} >"$r/etc/initramfs-tools/modules"
chroot "$r" update-initramfs -c -k all
