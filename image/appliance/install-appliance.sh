#!/bin/bash
# install-appliance.sh: turn an arm64 Debian / Raspberry Pi OS (bookworm) root file system
# into the edge gateway appliance. The ONE script both image builders run inside the
# image (chroot, under qemu-user on an x86 host): `make image` (image/build-image.sh,
# Debian packages) and the pi-gen stage (image/pi-gen/stage-edge, Raspberry Pi OS), so a
# Pi 5 image built with pi-gen runs the code tested by `make image-test`.
#
# Usage (as root, inside the image):
#   bash install-appliance.sh DIST            run every step, in order
#   bash install-appliance.sh --dry-run DIST  print the steps it would run, change nothing
#   bash install-appliance.sh --list          print the step names, one a line
#   bash install-appliance.sh --steps a,b DIST  only those steps (in the order of --list):
#                                             the .deb's postinst (image/deb/postinst) on an
#                                             OS already running; the image builders run all
#
# DIST (staged on the build host by image/stage-dist.sh) holds:
#   requirements-aarch64.txt, wheels/*.whl    pinned, hash-checked runtime dependencies
#   edge_gateway-<version>.tar.gz             the agent's source (model in edge/data/)
#   edge.service, edge.toml                   the unit and the default config
#   appliance/                                this folder (units, helpers, drop-ins)
#   build.conf                                EDGE_HOSTNAME, ADMIN_USER, WATCHDOG_SEC,
#                                             JOURNAL_MAX_MB, SOURCE_DATE_EPOCH, VERSION
#                                             (ADMIN_USER empty: no administrator account
#                                             is made; the .deb's, the OS has its own)
#   authorized_keys (optional)                the administrator's SSH public keys
# The packages it needs are installed by each builder (base-rootfs.sh / 00-packages-nr):
# python3 (3.11) python3-venv gcc libc6-dev python3-dev openssh-server systemd-timesyncd
# cloud-guest-utils (growpart) e2fsprogs sudo. Every step is idempotent: run twice, the
# second run changes nothing that matters. The steps run are written to
# /usr/share/edge/install-steps.txt (tests/test_image_build.py compares the builders; with
# --steps, those steps are moved to its end and the others kept).
set -euo pipefail

STEPS=(users venv units config lockdown hostname journald clock watchdog growroot network manifest)

say() { echo "install-appliance: $*"; }
die() { echo "install-appliance: ERROR: $*" >&2; exit 1; }

DRY=0
ONLY=
while [ $# -gt 0 ]; do
    case "$1" in
        --list) printf '%s\n' "${STEPS[@]}"; exit 0 ;;
        --dry-run) DRY=1; shift ;;
        --steps) ONLY=${2:-}; shift $(( $# >= 2 ? 2 : 1 )); [ -n "$ONLY" ] || die "--steps needs a list: --steps users,venv" ;;
        --steps=*) ONLY=${1#--steps=}; shift; [ -n "$ONLY" ] || die "--steps needs a list: --steps=users,venv" ;;
        -*) die "unknown option $1 (usage: install-appliance.sh [--dry-run] [--steps a,b] DIST | --list)" ;;
        *) break ;;
    esac
done
[ $# -eq 1 ] || die "usage: install-appliance.sh [--dry-run] [--steps a,b] DIST | --list"
RUN=("${STEPS[@]}")
if [ -n "$ONLY" ]; then
    for s in ${ONLY//,/ }; do
        [[ " ${STEPS[*]} " == *" $s "* ]] || die "--steps: no step named '$s' (install-appliance.sh --list)"
    done
    RUN=()
    for s in "${STEPS[@]}"; do
        [[ ",$ONLY," == *",$s,"* ]] && RUN+=("$s")
    done
    [ ${#RUN[@]} -gt 0 ] || die "--steps '$ONLY' names no step"
fi
DIST=$(cd "$1" && pwd) || die "no such folder: $1"
APP=$DIST/appliance
[ -f "$DIST/build.conf" ] || die "$DIST/build.conf is missing (image/stage-dist.sh writes it)"
# shellcheck source=/dev/null
. "$DIST/build.conf"
EDGE_HOSTNAME=${EDGE_HOSTNAME:-edge-gateway}
ADMIN_USER=${ADMIN_USER-admin}
WATCHDOG_SEC=${WATCHDOG_SEC:-14}
JOURNAL_MAX_MB=${JOURNAL_MAX_MB:-64}
VENV=/opt/edge/venv
FIRM=/boot/firmware

# ------------------------------------------------------------------------- steps

step_users() {  # the service user and the administrator; no password for anyone
    local grp
    for grp in gpio video; do
        getent group "$grp" >/dev/null || groupadd --system "$grp"
    done
    if ! id -u edge >/dev/null 2>&1; then
        useradd --system --user-group --home-dir /var/lib/edge --no-create-home \
            --shell /usr/sbin/nologin --comment "edge gateway agent" edge
    fi
    usermod -a -G gpio,video edge
    usermod --password '*' edge
    if [ -n "$ADMIN_USER" ]; then
        if ! id -u "$ADMIN_USER" >/dev/null 2>&1; then
            useradd --create-home --shell /bin/bash --comment "edge gateway administrator" "$ADMIN_USER"
        fi
        for grp in sudo adm systemd-journal; do
            getent group "$grp" >/dev/null && usermod -a -G "$grp" "$ADMIN_USER"
        done
    fi
    # /dev/gpiochip* for the gpio group (Raspberry Pi OS has such a rule; Debian has not).
    install -m 644 "$APP/60-edge-gpio.rules" /etc/udev/rules.d/60-edge-gpio.rules
}

step_venv() {  # /opt/edge/venv: the pinned wheels (hashes checked), then the agent
    local py
    py=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    [ "$py" = 3.11 ] || die "the image has Python $py; requirements-aarch64.txt is locked for 3.11"
    rm -rf "$VENV"
    # --system-site-packages: python3-lgpio (gpiozero's pin factory on a Pi 5, an apt
    # package of Raspberry Pi OS) where it exists; everything else comes from the wheels.
    python3 -m venv --system-site-packages "$VENV"
    # --no-compile: the .pyc files are compiled once below (unchecked-hash).
    "$VENV/bin/pip" install -q --no-cache-dir --no-compile --no-index --find-links "$DIST/wheels" \
        --require-hashes -r "$DIST/requirements-aarch64.txt"
    # The agent from source: gcc builds its C featurizer for aarch64 (without a compiler the
    # pure-Python featurizer is used; it gives the same bits). -g0: no debug info, which
    # held pip's random build folder and made two builds of one commit differ.
    CFLAGS="${CFLAGS:+$CFLAGS }-g0" "$VENV/bin/pip" install -q --no-cache-dir --no-compile --no-index \
        --no-deps --no-build-isolation "$DIST"/edge_gateway-*.tar.gz
    "$VENV/bin/pip" check >/dev/null || say "warning: pip check: $("$VENV/bin/pip" check 2>&1 | head -n 3)"
    "$VENV/bin/python" - <<'PY'
from edge.scoring import features
from edge.scoring.model import RiskModel, default_model_path
m = RiskModel(default_model_path())
print(f"install-appliance: featurizer backend {features.BACKEND}, model {m.model_id[:12]}")
PY
    "$VENV/bin/edge" --version >/dev/null
    # edge.service runs with PYTHONDONTWRITEBYTECODE on a read-only /opt: compile now, unless
    # the builder does it (EDGE_PYC_BY_BUILDER=1: make image compiles them with the build
    # host's CPython of the same bytecode version, 80 s faster than under qemu-user).
    if [ "${EDGE_PYC_BY_BUILDER:-0}" != 1 ]; then
        "$VENV/bin/python" -m compileall -q -f -j 0 --invalidation-mode unchecked-hash "$VENV/lib" >/dev/null || true
    fi
    install -d -m 755 /opt/edge
    install -m 644 "$DIST/requirements-aarch64.txt" /opt/edge/requirements-aarch64.txt
}

step_units() {  # the agent, its first-boot key helper and the SSH key import
    install -m 644 "$DIST/edge.service" /etc/systemd/system/edge.service
    install -m 644 "$APP/edge-firstboot.service" /etc/systemd/system/edge-firstboot.service
    install -m 755 "$APP/edge-firstboot" /usr/local/sbin/edge-firstboot
    install -d -m 700 /etc/edge
    systemctl enable edge-firstboot.service edge.service >/dev/null 2>&1
}

step_config() {  # edge.toml and the technician's README on the FAT partition
    install -d "$FIRM"
    # Never overwrite a config already there (a rebuild on top of a customised tree).
    [ -e "$FIRM/edge.toml" ] || install -m 644 "$DIST/edge.toml" "$FIRM/edge.toml"
    install -m 644 "$APP/README-technician.txt" "$FIRM/EDGE-README.txt"
}

step_lockdown() {  # no password anywhere; sshd by key only; fresh host keys per device
    [ -n "$ADMIN_USER" ] || die "lockdown: ADMIN_USER is empty in build.conf: no way in left"
    usermod --password '*' root
    usermod --password '*' "$ADMIN_USER"
    install -d -m 755 /etc/sudoers.d
    echo "$ADMIN_USER ALL=(ALL) NOPASSWD: ALL" >/etc/sudoers.d/010_edge-admin-nopasswd
    chmod 440 /etc/sudoers.d/010_edge-admin-nopasswd
    visudo -c -q
    install -d -m 755 /etc/ssh/sshd_config.d
    install -m 644 "$APP/00-edge-sshd.conf" /etc/ssh/sshd_config.d/00-edge.conf
    # Keys from the build config; a technician's authorized_keys on the FAT partition is
    # taken at every boot (edge-ssh-keys.service), so a card can be keyed from a laptop.
    local home
    home=$(getent passwd "$ADMIN_USER" | cut -d: -f6)
    install -d -m 700 -o "$ADMIN_USER" -g "$ADMIN_USER" "$home/.ssh"
    if [ -s "$DIST/authorized_keys" ]; then
        install -m 600 -o "$ADMIN_USER" -g "$ADMIN_USER" "$DIST/authorized_keys" "$home/.ssh/authorized_keys"
    fi
    sed "s/@ADMIN_USER@/$ADMIN_USER/g" "$APP/edge-ssh-keys" >/usr/local/sbin/edge-ssh-keys
    chmod 755 /usr/local/sbin/edge-ssh-keys
    install -m 644 "$APP/edge-ssh-keys.service" /etc/systemd/system/edge-ssh-keys.service
    # Host keys made in the build would be the same on every card: made at first boot.
    rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub
    systemctl enable edge-ssh-keys.service ssh.service >/dev/null 2>&1
    # pi-gen's first-boot user wizard would let anyone at the console set a password.
    ln -sf /dev/null /etc/systemd/system/userconfig.service
}

step_hostname() {
    echo "$EDGE_HOSTNAME" >/etc/hostname
    if grep -q '^127\.0\.1\.1' /etc/hosts 2>/dev/null; then
        sed -i "s/^127\.0\.1\.1.*/127.0.1.1\t$EDGE_HOSTNAME/" /etc/hosts
    else
        printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' \
            "$EDGE_HOSTNAME" >/etc/hosts
    fi
}

step_journald() {  # persistent journal with a size cap (an SD card is small and wears)
    install -d -m 755 /etc/systemd/journald.conf.d
    printf '[Journal]\nStorage=persistent\nSystemMaxUse=%sM\nRuntimeMaxUse=16M\nMaxRetentionSec=1month\n' \
        "$JOURNAL_MAX_MB" >/etc/systemd/journald.conf.d/50-edge.conf
    install -d -m 2755 -g systemd-journal /var/log/journal
}

step_clock() {  # a Pi has no RTC: NTP, and a saved clock that never goes back past the build
    systemctl enable systemd-timesyncd.service >/dev/null 2>&1
    install -d /var/lib/systemd/timesync
    touch /var/lib/systemd/timesync/clock
    if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
        touch -d "@$SOURCE_DATE_EPOCH" /var/lib/systemd/timesync/clock
    fi
}

step_watchdog() {  # the SoC's hardware watchdog, fed by systemd (bcm2835: at most ~15 s)
    [ "$WATCHDOG_SEC" -le 15 ] || die "WATCHDOG_SEC=$WATCHDOG_SEC: the bcm2835 watchdog allows at most 15 s"
    install -d -m 755 /etc/systemd/system.conf.d
    printf '[Manager]\nRuntimeWatchdogSec=%ss\nRebootWatchdogSec=2min\n' "$WATCHDOG_SEC" \
        >/etc/systemd/system.conf.d/50-edge-watchdog.conf
}

step_growroot() {  # the root partition and file system grow to the card at first boot
    install -m 755 "$APP/edge-growroot" /usr/local/sbin/edge-growroot
    install -m 644 "$APP/edge-growroot.service" /etc/systemd/system/edge-growroot.service
    systemctl enable edge-growroot.service >/dev/null 2>&1
}

step_network() {  # wired DHCP with systemd-networkd, unless the OS brings NetworkManager
    if [ -e /lib/systemd/system/NetworkManager.service ] || [ -e /usr/lib/systemd/system/NetworkManager.service ]; then
        say "NetworkManager present: leaving the network to it"
        return 0
    fi
    install -d -m 755 /etc/systemd/network
    install -m 644 "$APP/20-edge-wired.network" /etc/systemd/network/20-edge-wired.network
    # network-online.target (edge.service wants it): any one link up, 30 s at most, so a
    # device without a cable still starts its agent (which reconnects by itself).
    install -d -m 755 /etc/systemd/system/systemd-networkd-wait-online.service.d
    install -m 644 "$APP/wait-online-any.conf" \
        /etc/systemd/system/systemd-networkd-wait-online.service.d/50-edge.conf
    systemctl enable systemd-networkd.service systemd-networkd-wait-online.service >/dev/null 2>&1
}

step_manifest() {  # what is in the image: packages and wheels with their versions
    install -d -m 755 /usr/share/edge
    dpkg-query -W -f '${Package}\t${Version}\t${Architecture}\n' | LC_ALL=C sort >/usr/share/edge/packages.tsv
    "$VENV/bin/python" -m pip freeze --all 2>/dev/null | LC_ALL=C sort >/usr/share/edge/wheels.txt
    printf 'version=%s\nsource_date_epoch=%s\n' "${VERSION:-unknown}" "${SOURCE_DATE_EPOCH:-}" \
        >/usr/share/edge/build-info.txt
}

# --------------------------------------------------------------------------- main

if [ "$DRY" = 1 ]; then
    printf '%s\n' "${RUN[@]}"
    exit 0
fi
[ "$(id -u)" -eq 0 ] || die "run as root inside the image"
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
install -d -m 755 /usr/share/edge
REC=/usr/share/edge/install-steps.txt
if [ -n "$ONLY" ] && [ -f "$REC" ]; then
    grep -vxF -f <(printf '%s\n' "${RUN[@]}") "$REC" >"$REC.new" || true
    mv -f "$REC.new" "$REC"
else
    : >"$REC"
fi
for s in "${RUN[@]}"; do
    t0=$(date +%s)
    "step_$s"
    echo "$s" >>"$REC"
    say "step $s done ($(( $(date +%s) - t0 )) s)"
done
