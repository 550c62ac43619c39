# Sourced by image/build-image.sh and image/deb/deb-test.sh (bash): in_root CMD... runs CMD
# in the arm64 root file system "$ROOT" (binfmt + qemu-user) with /proc and /dev, in a
# private mount namespace, so nothing stays mounted when it ends. No /sys: onnxruntime's
# cpuinfo would read the x86 host's CPU topology (and crash under qemu-aarch64). A clean
# environment: PATH, HOME, a UTF-8 locale, no terminal, DEBIAN_FRONTEND=noninteractive,
# and SOURCE_DATE_EPOCH when it is set; CMD may start with more NAME=VALUE words.
in_root() {
    unshare --mount --propagation private -- /bin/sh -c '
        r=$1; shift
        mount -t proc proc "$r/proc"
        mount --rbind /dev "$r/dev"
        exec chroot "$r" "$@"' in_root "$ROOT" env -i \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive \
        ${SOURCE_DATE_EPOCH:+SOURCE_DATE_EPOCH="$SOURCE_DATE_EPOCH"} "$@"
}
