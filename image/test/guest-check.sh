#!/bin/bash
# Inside the emulated device (`make image-test`): the checks of one boot, run by
# edge-image-check.service from the test disk (never part of the shipped image). Writes one
# JSON object a line to the virtio-serial port org.edge.verdict (the host reads them) and
# powers the machine off. The boot's role comes from the kernel command line:
#   edge_test=first    first boot: keystore, address file, READY, ingest, watchdog, lockdown
#   edge_test=config   after the host edited edge.toml with mtools: the edit is applied
#   edge_test=badkey   after the host wrote an invalid key: the unit fails naming the key
#   edge_test=raspi3b  on the emulated Raspberry Pi 3: the board, READY, ingest, listeners
set -uo pipefail

PORT=/dev/virtio-ports/org.edge.verdict
# -M raspi3b has no virtio-serial: the verdict lines go to the console (the mini UART),
# prefixed so the host can tell them from the kernel's and systemd's lines.
[ -e "$PORT" ] || PORT=/dev/ttyS1 PREFIX="EDGE-VERDICT "
T=/mnt/edgetest
CFG=/boot/firmware/edge.toml
MODE=$(sed -n 's/.*edge_test=\([a-z0-9]*\).*/\1/p' /proc/cmdline)
EDGE=/opt/edge/venv/bin/edge

emit() { printf '%s%s\n' "${PREFIX:-}" "$1" >"$PORT"; printf 'edge-image-check: %s\n' "$1"; }
# check NAME OK DETAIL: one verdict line (OK is 0 for pass, as a shell status).
check() {
    local name=$1 ok=$2 detail=${3:-}
    detail=${detail//\\/\\\\}; detail=${detail//\"/\\\"}; detail=$(printf '%s' "$detail" | tr '\n\t' '  ' | tr -d '\000-\037')
    if [ "$ok" -eq 0 ]; then emit "{\"check\": \"$name\", \"ok\": true, \"detail\": \"$detail\"}"
    else emit "{\"check\": \"$name\", \"ok\": false, \"detail\": \"$detail\"}"; fi
}
figure() { emit "{\"figure\": \"$1\", \"value\": $2}"; }
prop() { systemctl show -P "$2" "$1"; }
# usec PROP-VALUE: a systemd time span as shown by systemctl ("1min 30s", "10s") in µs.
usec() {
    python3 -c 'import re, sys
u = {"us": 1, "ms": 1e3, "s": 1e6, "min": 6e7, "h": 3.6e9}
print(int(sum(float(n) * u[k] for n, k in re.findall(r"([0-9.]+)(us|ms|min|s|h)", sys.argv[1]))))' "$1"
}
uptime_s() { cut -d' ' -f1 /proc/uptime; }

# wait_for SECONDS CMD...: poll CMD every second until it succeeds; 1 on timeout.
wait_for() {
    local end=$(( $(date +%s) + $1 )); shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 1
    done
}

edge_active() { [ "$(prop edge.service ActiveState)" = active ]; }
status_json() { runuser -u edge -- "$EDGE" status --json --config "$CFG" 2>/dev/null; }
blocks() { status_json | python3 -c 'import json, sys; print(json.load(sys.stdin)["blocks"])' 2>/dev/null || echo 0; }
blocks_at_least() { [ "$(blocks)" -ge "$1" ]; }

ready_figures() {
    local ready_us boot_s
    ready_us=$(prop edge.service ActiveEnterTimestampMonotonic)
    boot_s=$(awk -v u="$ready_us" 'BEGIN { printf "%.1f", u / 1e6 }')
    figure boot_to_ready_s "$boot_s"
}

# Nothing listens beyond loopback but sshd (TCP and UDP, IPv4 and IPv6).
check_listeners() {
    local bad
    bad=$(ss -H -tulnp | awk '{ print $5, $7 }' \
        | grep -vE '^(127\.[0-9.]+|\[::1\]|::1):[0-9]+ ' \
        | grep -v '"sshd"' || true)
    check only_sshd_listens_beyond_loopback "$([ -z "$bad" ]; echo $?)" "${bad:-$(ss -H -tuln | awk '{ print $5 }' | paste -sd' ')}"
}

check_lockdown() {
    local pw bad ssh_pw ssh_key cfg
    # No account has a usable password hash (a valid crypt hash starts with $).
    bad=$(awk -F: '$2 ~ /^\$/ || $2 == "" { print $1 }' /etc/shadow | paste -sd' ')
    check no_password_hashes "$([ -z "$bad" ]; echo $?)" "accounts with a password: ${bad:-none}"
    cfg=$(sshd -T 2>&1 | grep -E '^(passwordauthentication|kbdinteractiveauthentication|permitrootlogin|authenticationmethods|permitemptypasswords) ' | sort | paste -sd' ')
    check sshd_key_only "$([ "$cfg" = "authenticationmethods publickey kbdinteractiveauthentication no passwordauthentication no permitemptypasswords no permitrootlogin no" ]; echo $?)" "$cfg"
    # A real login attempt by password is refused; the key from the FAT partition works.
    pw=$(timeout 60 ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o PreferredAuthentications=password,keyboard-interactive -o PubkeyAuthentication=no \
        admin@127.0.0.1 true 2>&1)
    ssh_pw=$?
    check ssh_password_refused "$([ $ssh_pw -ne 0 ] && echo "$pw" | grep -q 'Permission denied'; echo $?)" "$pw"
    install -m 600 "$T/id_ed25519" /tmp/id_ed25519
    pw=$(timeout 60 ssh -i /tmp/id_ed25519 -o BatchMode=yes -o StrictHostKeyChecking=no \
        -o UserKnownHostsFile=/dev/null admin@127.0.0.1 'id -un' 2>&1)
    ssh_key=$?
    check ssh_key_from_fat_works "$([ $ssh_key -eq 0 ] && echo "$pw" | grep -qx admin; echo $?)" "$pw"
    rm -f /tmp/id_ed25519
    # The console: no getty login can succeed without a password (su from nobody, via PAM).
    pw=$(echo "" | timeout 20 runuser -u nobody -- su -c true admin 2>&1)
    check console_password_refused "$([ $? -ne 0 ]; echo $?)" "$pw"
}

check_first_boot() {
    local st addr size_fat
    st=$(stat -c '%a %U' /var/lib/edge/device.json 2>&1)
    check keystore_0600_edge "$([ "$st" = "600 edge" ]; echo $?)" "$st"
    addr=$(cat /boot/firmware/edge-address.txt 2>&1)
    check address_on_fat "$(echo "$addr" | grep -qE '^0x[0-9a-fA-F]{40}$'; echo $?)" "$addr"
    emit "{\"address\": \"$addr\"}"
    check growroot_done "$([ -e /var/lib/edge-growroot.done ]; echo $?)" "$(journalctl -b -u edge-growroot -o cat | tail -n 1)"
    figure root_fs_mib "$(df -m --output=size / | tail -n 1 | tr -d ' ')"
    local steps want
    steps=$(paste -sd' ' /usr/share/edge/install-steps.txt)
    want=$(paste -sd' ' "$T/expected-steps.txt")
    check install_steps_all_run "$([ "$steps" = "$want" ]; echo $?)" "$steps"
    check hostname "$([ "$(hostname)" = edge-gateway ]; echo $?)" "$(hostname)"
    check journal_persistent "$([ -d "/var/log/journal/$(cat /etc/machine-id)" ]; echo $?)" "$(journalctl --disk-usage 2>&1)"
    check timesyncd_enabled "$([ "$(systemctl is-enabled systemd-timesyncd)" = enabled ]; echo $?)" "$(systemctl is-enabled systemd-timesyncd)"
    local wd
    wd=$(systemctl show -P RuntimeWatchdogUSec)
    check runtime_watchdog_set "$([ "$wd" = 14s ]; echo $?)" "RuntimeWatchdogUSec=$wd"
    check ssh_host_keys_made_here "$(ls /etc/ssh/ssh_host_ed25519_key >/dev/null 2>&1; echo $?)" \
        "$(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub 2>&1)"
}

check_ingest() {
    local b
    wait_for 300 blocks_at_least 10
    b=$(status_json)
    check status_shows_blocks "$([ "$(blocks)" -ge 10 ]; echo $?)" "$b"
    local pid rss
    pid=$(prop edge.service MainPID)
    rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
    figure agent_rss_mib "$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')"
    rss=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status")
    figure agent_peak_rss_mib "$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')"
}

check_watchdog() {
    local pid1 n1 wd_us t0 t1 pid2
    pid1=$(prop edge.service MainPID)
    n1=$(prop edge.service NRestarts)
    wd_us=$(usec "$(prop edge.service WatchdogUSec)")
    t0=$(uptime_s)
    kill -STOP "$pid1"
    new_pid() { local p; p=$(prop edge.service MainPID); [ "$p" != 0 ] && [ "$p" != "$pid1" ]; }
    wait_for 600 new_pid
    t1=$(uptime_s)
    pid2=$(prop edge.service MainPID)
    local dt limit abort_us restart_us
    dt=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    # Caught within WatchdogSec of the stop; then SIGABRT, SIGKILL after TimeoutAbortSec
    # (a stopped process takes no SIGABRT), RestartSec, and 15 s to spawn it under TCG.
    abort_us=$(usec "$(prop edge.service TimeoutAbortUSec)")
    restart_us=$(usec "$(prop edge.service RestartUSec)")
    limit=$(awk -v w="$wd_us" -v a="$abort_us" -v r="$restart_us" \
        'BEGIN { printf "%.1f", (w + a + r) / 1e6 + 15 }')
    local why
    why=$(journalctl -b -u edge.service -o cat | grep -m1 -i 'watchdog timeout' || true)
    check watchdog_restarts_stopped_agent "$([ "$pid2" != "$pid1" ] && [ -n "$why" ] \
        && awk -v d="$dt" -v l="$limit" 'BEGIN { exit !(d <= l) }' \
        && [ "$(prop edge.service NRestarts)" -gt "$n1" ]; echo $?)" \
        "stopped pid $pid1, new pid $pid2 after ${dt}s (WatchdogSec $((wd_us / 1000000)) s, limit ${limit}s): $why"
    figure watchdog_restart_s "$dt"
    wait_for 600 edge_active
    check ready_again_after_watchdog "$(edge_active; echo $?)" "$(prop edge.service SubState)"
}

main() {
    emit "{\"boot\": \"$MODE\", \"uptime_s\": $(uptime_s)}"
    case "$MODE" in
        first)
            wait_for 900 edge_active
            check edge_ready "$(edge_active; echo $?)" "$(prop edge.service ActiveState)/$(prop edge.service SubState)"
            ready_figures
            check_first_boot
            check_ingest
            check_listeners
            check_lockdown
            check_watchdog
            ;;
        config)
            wait_for 900 edge_active
            check edge_ready "$(edge_active; echo $?)" "$(prop edge.service ActiveState)/$(prop edge.service SubState)"
            ready_figures
            local want
            want=$(cat "$T/metrics-port.txt")
            listening() { ss -H -tln "sport = :$want" | grep -q '127.0.0.1'; }
            wait_for 120 listening
            check fat_edit_applied "$(listening; echo $?)" "metrics on 127.0.0.1:$want: $(ss -H -tln | awk '{ print $4 }' | paste -sd' ')"
            # Skipped by its condition (the done mark), so nothing of it ran at this boot.
            check growroot_once "$([ "$(prop edge-growroot.service ConditionResult)" = no ] \
                && ! journalctl -b -o cat | grep -q '^edge-growroot:'; echo $?)" \
                "ConditionResult=$(prop edge-growroot.service ConditionResult); $(journalctl -b -o cat | grep -c '^edge-growroot:') edge-growroot lines"
            check_listeners
            ;;
        raspi3b)
            local model
            model=$(tr -d '\000' </proc/device-tree/model 2>&1)
            check board_is_pi3 "$(echo "$model" | grep -q '^Raspberry Pi 3'; echo $?)" "$model ($(uname -m), $(nproc) CPUs)"
            wait_for 900 edge_active
            check edge_ready "$(edge_active; echo $?)" "$(prop edge.service ActiveState)/$(prop edge.service SubState)"
            ready_figures
            check_ingest
            check_listeners
            ;;
        badkey)
            local key
            key=$(cat "$T/bad-key.txt")
            named() { journalctl -b -u edge.service -o cat | grep -q "config: $key"; }
            wait_for 900 named
            check invalid_key_named_in_journal "$(named; echo $?)" \
                "$(journalctl -b -u edge.service -o cat | grep -m1 'config:' || echo 'no config line')"
            check never_ready "$([ "$(prop edge.service ActiveState)" != active ] \
                && ! journalctl -b -u edge.service -o cat | grep -q '^Started '; echo $?)" \
                "$(prop edge.service ActiveState)/$(prop edge.service Result)"
            ;;
        *) check mode_known 1 "edge_test=$MODE on the kernel command line" ;;
    esac
    [ ! -e /dev/virtio-ports/org.edge.journal ] \
        || journalctl -b --no-pager -o short-monotonic >/dev/virtio-ports/org.edge.journal 2>/dev/null || true
    emit '{"done": true}'
}

main
sync
systemctl poweroff --no-block
