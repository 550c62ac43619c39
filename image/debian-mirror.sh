# Sourced by image/arm-check.sh and image/base-rootfs.sh (not run on its own).

# debian_mirror OVERRIDE: OVERRIDE when it is not empty; else the Debian mirror the host's
# apt is configured with (one-line .list and deb822 .sources formats); else deb.debian.org.
debian_mirror() {
    if [ -n "${1:-}" ]; then echo "$1"; return; fi
    local m
    m=$({
        grep -hsE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
            | awk '{ for (i = 2; i <= NF; i++) if ($i ~ /^[a-z+]+:\/\//) { print $i; break } }'
        grep -hsiE '^[[:space:]]*URIs:' /etc/apt/sources.list.d/*.sources \
            | awk '{ for (i = 2; i <= NF; i++) print $i }'
    } | grep -E '/debian/?$' | head -n 1 || true)
    echo "${m:-http://deb.debian.org/debian}"
}
