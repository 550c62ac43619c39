#!/usr/bin/env bash
# `make deb-test`: the .deb of `make deb`, checked on the host and installed for real in
# the arm64 Debian bookworm base root file system (image/base-rootfs.sh, the cached base
# of `make image`) under qemu-user, with /proc and /dev in a private mount namespace
# (as build-image.sh's in_root: nothing stays mounted):
#
#   host     dpkg-deb -I (control fields), dpkg-deb -c (files, owners, times),
#            lintian (apt-installed if missing): no error-level tag
#   install  apt-get install ./edge-gateway_<v>_arm64.deb: the postinst ran exactly the
#            steps users venv units config manifest; `edge --help` runs from
#            /opt/edge/venv; the C featurizer was built; edge.service and
#            edge-firstboot.service enabled; the edge user (nologin, no password); no
#            administrator made, the hostname, root's password, sshd's config and the SSH
#            host keys untouched; every shared object of the venv resolves, from packages
#            in the closure of the .deb's Depends
#   firstboot edge-firstboot makes the passphrase and the device keystore (0600, edge)
#   upgrade  the same .deb installed again (prerm upgrade, postinst configure): the
#            keystore and an edited edge.toml unchanged, the units still enabled
#   remove   apt-get remove: venv, units and helper gone; keystore, passphrase, config
#            and the edge user kept
#   purge    apt-get purge: all of it gone; the files, users and groups on the root file
#            system compared with before the install: no file or user left, at most the
#            gpio group (made by the users step where the OS lacks it)
#
# Usage: bash image/deb/deb-test.sh [DEB]   (root; default DEB: build/edge-gateway_<v>_arm64.deb)
# Environment: IMAGE_CACHE (the base's cache), DEB_TEST_UPGRADE=0 (skip the reinstall),
#   DEB_TEST_KEEP=1 (keep build/deb-test/rootfs). The last stdout line is a JSON summary.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IMAGE=$(cd "$HERE/.." && pwd)
REPO=$(cd "$IMAGE/.." && pwd)
WORK=$REPO/build/deb-test
ROOT=$WORK/rootfs
T0=$(date +%s)

say() { printf '[deb-test] %s\n' "$*" >&2; }
die() { printf '[deb-test] ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (chroot, file owners)"
VERSION=$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$REPO/pyproject.toml")
DEB=${1:-$REPO/build/edge-gateway_${VERSION}_arm64.deb}
[ -s "$DEB" ] || die "no $DEB: make deb"
DEB=$(cd "$(dirname "$DEB")" && pwd)/$(basename "$DEB")
STEPS_EXPECTED="users venv units config manifest"

PASS=0
FAILED=()
check() {  # check NAME CMD...: run CMD, count it
    local name=$1; shift
    if "$@" >"$WORK/check.out" 2>&1; then
        PASS=$((PASS + 1)); say "ok   $name"
    else
        FAILED+=("$name"); say "FAIL $name"; sed 's/^/[deb-test]      /' "$WORK/check.out" | tail -n 15 >&2
    fi
}

# in_root CMD...: CMD in "$ROOT" under qemu-user, nothing left mounted (image/in-root.sh).
# shellcheck source=../in-root.sh
source "$HERE/../in-root.sh"
r() { in_root sh -c "$1"; }   # r 'shell line' in the root file system
timed() {  # timed VAR CMD...: CMD's wall time in seconds into VAR; CMD's status
    local var=$1 t rc=0; shift
    t=$(date +%s)
    "$@" || rc=$?
    printf -v "$var" '%d' $(( $(date +%s) - t ))
    return "$rc"
}
field() { dpkg-deb -f "$DEB" "$1"; }
snapshot() {  # the root file system's files (minus logs and caches) and groups
    (cd "$ROOT" && find . -xdev \( -path ./proc -o -path ./dev -o -path ./tmp -o -path ./var/log \
        -o -path ./var/cache -o -path ./var/lib/dpkg -o -path ./var/lib/apt -o -path ./run \) -prune -o -print \
        | LC_ALL=C sort) >"$WORK/files-$1.txt"
    cut -d: -f1 "$ROOT/etc/group" | LC_ALL=C sort >"$WORK/groups-$1.txt"
    cut -d: -f1 "$ROOT/etc/passwd" | LC_ALL=C sort >"$WORK/users-$1.txt"
}
absent() { local p; for p; do [ ! -e "$ROOT$p" ] && [ ! -L "$ROOT$p" ] || { echo "still there: $p"; return 1; }; done; }
present() { local p; for p; do [ -e "$ROOT$p" ] || { echo "missing: $p"; return 1; }; done; }

mkdir -p "$WORK"

say "1/6 host: control, files, lintian ($DEB)"
check "control: Package edge-gateway, Version $VERSION, Architecture arm64" \
    test "$(field Package) $(field Version) $(field Architecture)" = "edge-gateway $VERSION arm64"
check "control: Depends python3 3.11, python3-venv, gcc, python3-dev, systemd, passwd, libc6" \
    sh -c 'd=$1; for p in "python3 (>= 3.11)" "python3 (<< 3.12)" python3-venv gcc libc6-dev python3-dev "systemd (>= 247)" passwd "libc6 (>= "; do
        case "$d" in *"$p"*) ;; *) echo "Depends lacks $p: $d"; exit 1 ;; esac; done' _ "$(field Depends)"
check "control: the steps the deb skips need none of their packages" \
    sh -c 'case "$1" in *openssh-server*|*cloud-guest-utils*|*sudo*) echo "$1"; exit 1 ;; esac' _ "$(field Depends)"
dpkg-deb -c "$DEB" >"$WORK/contents.txt"
check "files: the staged dist under /usr/share/edge/dist, nothing else outside /usr/share" \
    sh -c 'grep -q " ./usr/share/edge/dist/appliance/install-appliance.sh$" "$1" &&
           grep -q " ./usr/share/edge/dist/edge_gateway-.*\.tar\.gz$" "$1" &&
           grep -q " ./usr/share/edge/dist/wheels/onnxruntime-.*aarch64.*\.whl$" "$1" &&
           ! awk "{print \$6}" "$1" | grep -v "^\./usr/share/\|^\./usr/$\|^\./$"' _ "$WORK/contents.txt"
check "files: all root/root, mtimes one SOURCE_DATE_EPOCH" \
    sh -c '! awk "{print \$2}" "$1" | grep -vx root/root && [ "$(awk "{print \$4, \$5}" "$1" | sort -u | wc -l)" = 1 ]' _ "$WORK/contents.txt"
if ! command -v lintian >/dev/null 2>&1; then
    say "installing lintian (apt)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends lintian >/dev/null; } || say "lintian not installable: skipped"
fi
LINTIAN=skipped
if command -v lintian >/dev/null 2>&1; then
    lintian --no-tag-display-limit --display-info "$DEB" >"$WORK/lintian.txt" 2>&1 || true
    LINTIAN="$(grep -c '^E: ' "$WORK/lintian.txt" || true) errors, $(grep -c '^W: ' "$WORK/lintian.txt" || true) warnings"
    sed 's/^/[deb-test]   lintian: /' "$WORK/lintian.txt" >&2
    check "lintian: no error ($LINTIAN)" sh -c '! grep "^E: " "$1"' _ "$WORK/lintian.txt"
fi

say "2/6 the arm64 base root file system"
bash "$IMAGE/base-rootfs.sh" binfmt
bash "$IMAGE/base-rootfs.sh" extract "$ROOT"
snapshot before
HOSTNAME_BEFORE=$(cat "$ROOT/etc/hostname" 2>/dev/null || true)
ROOTPW_BEFORE=$(grep '^root:' "$ROOT/etc/shadow" | cut -d: -f2)
HOSTKEYS_BEFORE=$(cd "$ROOT/etc/ssh" && cat ssh_host_*_key.pub 2>/dev/null | sha256sum)
cp "$DEB" "$ROOT/tmp/"
IN_DEB=/tmp/$(basename "$DEB")

say "3/6 apt-get install ./$(basename "$DEB") (postinst under qemu-user)"
timed INSTALL_S in_root apt-get install -y -q -o Dir::Etc::SourceList=/dev/null \
    -o Dir::Etc::SourceParts=/dev/null "$IN_DEB" >"$WORK/install.log" 2>&1 || true
grep -E 'install-appliance|edge-gateway:|^E:|rror' "$WORK/install.log" | sed 's/^/[deb-test]   /' >&2 || true
say "       install took $INSTALL_S s (log: build/deb-test/install.log)"
check "install: dpkg says installed" r 'dpkg-query -W -f "\${Status}" edge-gateway | grep -qx "install ok installed"'
check "install: the postinst ran the steps $STEPS_EXPECTED" \
    r "test \"\$(paste -sd' ' /usr/share/edge/install-steps.txt)\" = '$STEPS_EXPECTED'"
check "install: /opt/edge/venv/bin/edge --help runs" r '/opt/edge/venv/bin/edge --help | grep -qi usage'
check "install: the C featurizer was built" \
    r '/opt/edge/venv/bin/python -c "from edge.scoring import features; assert features.BACKEND == \"c\", features.BACKEND"'
check "install: edge.service and edge-firstboot.service enabled" \
    r 'systemctl is-enabled edge.service && systemctl is-enabled edge-firstboot.service'
check "install: the edge user, no shell, no password, in gpio and video" \
    r 'getent passwd edge | grep -q ":/usr/sbin/nologin$" && test "$(getent shadow edge | cut -d: -f2)" = "*" && id -nG edge | grep -qw gpio && id -nG edge | grep -qw video'
check "install: /boot/firmware/edge.toml and EDGE-README.txt" present /boot/firmware/edge.toml /boot/firmware/EDGE-README.txt
check "install: no administrator account, no sudoers, no sshd drop-in, no edge-ssh-keys" \
    absent /home/admin /etc/sudoers.d/010_edge-admin-nopasswd /etc/ssh/sshd_config.d/00-edge.conf /etc/systemd/system/edge-ssh-keys.service
check "install: hostname, root's password and the SSH host keys untouched" \
    sh -c 'test "$(cat "$1/etc/hostname" 2>/dev/null || true)" = "$2" && test "$(grep "^root:" "$1/etc/shadow" | cut -d: -f2)" = "$3" &&
           test "$(cd "$1/etc/ssh" && cat ssh_host_*_key.pub 2>/dev/null | sha256sum)" = "$4"' _ "$ROOT" "$HOSTNAME_BEFORE" "$ROOTPW_BEFORE" "$HOSTKEYS_BEFORE"
check "install: no journald, watchdog, network or growroot change" \
    absent /etc/systemd/journald.conf.d/50-edge.conf /etc/systemd/system.conf.d/50-edge-watchdog.conf \
        /etc/systemd/network/20-edge-wired.network /etc/systemd/system/edge-growroot.service
# Every shared object of the venv resolves (ldd), and each system library it resolves to
# belongs to a package in the closure of the .deb's Depends (not just to the base).
cat >"$ROOT/tmp/libcheck.sh" <<'EOF'
set -eu
owner() {  # the package owning a library path (merged /usr: try the spellings dpkg knows)
    for p in "$1" "$(readlink -f "$1")" "${1#/usr}" "/usr$1"; do
        o=$(dpkg -S "$p" 2>/dev/null | head -n 1 | cut -d: -f1) || true
        [ -n "$o" ] && { echo "$o"; return 0; }
    done
    return 1
}
closure=$(apt-cache depends --recurse --installed --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances edge-gateway | grep -v '^ ' | sed 's/:arm64$//' | sort -u)
n=0; bad=0; : >/tmp/libs
for so in $(find /opt/edge/venv -type f -name '*.so*' | sort); do
    head -c 4 "$so" | grep -q 'ELF' || continue
    n=$((n + 1))
    out=$(ldd "$so" 2>&1) || true
    if echo "$out" | grep -q 'not found'; then echo "unresolved: $so: $(echo "$out" | grep 'not found')"; bad=1; fi
    echo "$out" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | grep -v '^/opt/edge/venv/' >>/tmp/libs || true
done
libs=$(sort -u /tmp/libs)
for lib in $libs; do
    pkg=$(owner "$lib") || pkg=
    if [ -z "$pkg" ] || ! echo "$closure" | grep -qx "$pkg"; then
        echo "$lib (from '${pkg:-no package}') is not in the closure of the Depends"; bad=1
    else
        echo "$lib: $pkg"
    fi
done
rm -f /tmp/libs
echo "$n shared objects, $(echo "$libs" | wc -w) system libraries checked"
[ "$n" -gt 10 ] && [ "$bad" = 0 ]
EOF
check "install: every shared object of the venv resolves, from the Depends closure" r 'sh /tmp/libcheck.sh'
say "       $(tail -n 1 "$WORK/check.out")"

say "4/6 first boot's helper (edge-firstboot): passphrase and keystore"
FIRSTBOOT_S=null
timed FIRSTBOOT_S r /usr/local/sbin/edge-firstboot >"$WORK/firstboot.log" 2>&1 || cat "$WORK/firstboot.log" >&2
check "firstboot: keystore 0600 owned by edge, passphrase root 0600" \
    r 'test "$(stat -c "%a %U" /var/lib/edge/device.json)" = "600 edge" && test "$(stat -c "%a %U" /etc/edge/passphrase)" = "600 root"'
KEY_SHA=$(sha256sum "$ROOT/var/lib/edge/device.json" 2>/dev/null | cut -d' ' -f1 || true)
echo "# edited by the operator (deb-test)" >>"$ROOT/boot/firmware/edge.toml" || true
TOML_SHA=$(sha256sum "$ROOT/boot/firmware/edge.toml" 2>/dev/null | cut -d' ' -f1 || true)

UPGRADE_S=skipped
if [ "${DEB_TEST_UPGRADE:-1}" = 1 ]; then
    say "5/6 the same .deb again (prerm upgrade, postinst configure)"
    timed UPGRADE_S in_root dpkg -i "$IN_DEB" >"$WORK/upgrade.log" 2>&1 || true
    say "       reinstall took $UPGRADE_S s"
    check "upgrade: installed, steps ran again, units enabled" \
        r 'dpkg-query -W -f "\${Status}" edge-gateway | grep -qx "install ok installed" && systemctl is-enabled edge.service && /opt/edge/venv/bin/edge --version'
    check "upgrade: the keystore and the edited edge.toml unchanged" \
        sh -c 'test "$(sha256sum "$1/var/lib/edge/device.json" | cut -d" " -f1)" = "$2" && test "$(sha256sum "$1/boot/firmware/edge.toml" | cut -d" " -f1)" = "$3"' \
        _ "$ROOT" "$KEY_SHA" "$TOML_SHA"
fi

say "6/6 apt-get remove, then apt-get purge"
timed REMOVE_S in_root apt-get remove -y -q edge-gateway >"$WORK/remove.log" 2>&1 || true
check "remove: dpkg keeps only its config state" r 'dpkg-query -W -f "\${Status}" edge-gateway | grep -qx "deinstall ok config-files"'
check "remove: venv, units, wants links, helper, the package's files gone" \
    absent /opt/edge /etc/systemd/system/edge.service /etc/systemd/system/edge-firstboot.service \
        /etc/systemd/system/multi-user.target.wants/edge.service /etc/systemd/system/edge.service.requires \
        /usr/local/sbin/edge-firstboot /usr/share/edge
check "remove: keystore, passphrase, edge.toml and the edge user kept" \
    sh -c 'test "$(sha256sum "$1/var/lib/edge/device.json" | cut -d" " -f1)" = "$2" && test -s "$1/etc/edge/passphrase" &&
           test -s "$1/boot/firmware/edge.toml" && grep -q "^edge:" "$1/etc/passwd"' _ "$ROOT" "$KEY_SHA"
timed PURGE_S in_root apt-get purge -y -q edge-gateway >"$WORK/purge.log" 2>&1 || true
check "purge: dpkg knows no edge-gateway" r '! dpkg-query -W edge-gateway 2>/dev/null | grep -q .'
check "purge: state, config, udev rule, edge user and group gone" \
    sh -c 'for p in /var/lib/edge /etc/edge /boot/firmware/edge.toml /boot/firmware/EDGE-README.txt /boot/firmware/edge-address.txt \
               /etc/udev/rules.d/60-edge-gpio.rules; do [ ! -e "$1$p" ] || { echo "still there: $p"; exit 1; }; done
           ! grep -q "^edge:" "$1/etc/passwd" "$1/etc/group" "$1/etc/shadow"' _ "$ROOT"
rm -f "$ROOT$IN_DEB" "$ROOT/tmp/libcheck.sh" "$ROOT/tmp/sos"
snapshot after
LEFT_FILES=$(comm -13 "$WORK/files-before.txt" "$WORK/files-after.txt" | grep -v '/__pycache__\(/\|$\)' || true)
LEFT_GROUPS=$(comm -13 "$WORK/groups-before.txt" "$WORK/groups-after.txt" | paste -sd' ' || true)
LEFT_USERS=$(comm -13 "$WORK/users-before.txt" "$WORK/users-after.txt" | paste -sd' ' || true)
say "left after purge: files: ${LEFT_FILES:-none}; groups: ${LEFT_GROUPS:-none}; users: ${LEFT_USERS:-none}"
check "purge: no file left, no user; groups left: gpio at most (made where missing)" \
    sh -c '[ -z "$1" ] && [ -z "$3" ] && { [ -z "$2" ] || [ "$2" = gpio ]; }' _ "$LEFT_FILES" "$LEFT_GROUPS" "$LEFT_USERS"

if [ "${DEB_TEST_KEEP:-0}" != 1 ]; then
    rm -rf --one-file-system -- "$ROOT"
fi
FAILS=$(printf '"%s", ' "${FAILED[@]+"${FAILED[@]}"}"); FAILS=${FAILS%, }
[ ${#FAILED[@]} -gt 0 ] || FAILS=
printf '{"deb": "%s", "deb_mib": %.1f, "checks_passed": %d, "failed": [%s], "lintian": "%s", "install_s": %s, "firstboot_s": %s, "upgrade_s": "%s", "remove_s": %s, "purge_s": %s, "total_s": %d}\n' \
    "${DEB#"$REPO"/}" "$(du -k "$DEB" | awk '{ print $1 / 1024 }')" "$PASS" "$FAILS" "$LINTIAN" \
    "$INSTALL_S" "$FIRSTBOOT_S" "$UPGRADE_S" "$REMOVE_S" "$PURGE_S" $(( $(date +%s) - T0 ))
[ ${#FAILED[@]} -eq 0 ]
