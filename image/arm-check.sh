#!/usr/bin/env bash
# arm64 smoke test of the agent (`make arm-check`).
#
# 1. when `make image` has built it (or with ARM_CHECK_SHARED_BASE=1), unpacks the arm64
#    Debian bookworm base root file system of the image (image/base-rootfs.sh: mmdebstrap
#    once, a tarball cached under image/cache/ keyed by its inputs) into
#    image/cache/rootfs-arm64 (git-ignored; reused between runs); else (and without
#    binfmt_misc, or with ARM_CHECK_DEBOOTSTRAP=1) debootstraps minbase + python3, venv,
#    gcc there;
# 2. runs it with qemu-user-static: binfmt_misc (mounted if needed, qemu-aarch64 enabled)
#    and chroot, or, where binfmt_misc cannot be used, `qemu-aarch64-static -L ROOTFS`;
# 3. downloads the pinned aarch64 wheels of image/requirements-aarch64.txt on the host
#    (image/cache/wheels-aarch64, hash-checked) and installs them in /opt/edge/venv of
#    the rootfs with `pip --no-index` (no network in the rootfs, clean `env -i`), then
#    builds and installs the agent from source there (its C featurizer with the rootfs's
#    gcc; the ONNX model packaged in edge/data/ as in the image);
# 4. copies a temporary slice of ../shared/data/contracts/unlabeled_train.jsonl.gz into
#    the rootfs /tmp and runs image/smoke.py there: score >= 100 real contracts, write
#    them to a SQLite outbox, Merkle root, EIP-712 sign + verify, ECIES round trip,
#    capability reports of 40 distinct codes (image/capabilities_digest.py);
# 5. runs the same smoke on the host (.venv) when it exists and checks that features,
#    Merkle root, checkpoint id, signature and the capability digest are bit-identical
#    on x86 and arm64.
# Exit 0 when everything passed, 1 otherwise. Needs root (debootstrap, chroot, mounts).
#
# Usage: bash image/arm-check.sh [--relock | --clean | --help]
#   --relock  regenerate image/requirements-aarch64.txt from pyproject.toml (no root)
#   --clean   delete image/cache/ (rootfs, wheels, last run) and exit
# Environment (all optional):
#   ARM_CHECK_MODE=auto|binfmt|qemu-L   how to run arm64 code (default auto: binfmt, else -L)
#   ARM_CHECK_N=200                     contracts in the slice (>= 100 are required)
#   ARM_CHECK_MIRROR=URL                Debian mirror (default: the one apt is configured with)
#   ARM_CHECK_CC=1                      0: no gcc in the rootfs (pure-Python featurizer)
#   ARM_CHECK_HOST_REF=1                0: skip the x86 reference run and comparison
#   ARM_CHECK_CACHE=DIR                 cache folder (default image/cache)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
# shellcheck source=debian-mirror.sh
source "$HERE/debian-mirror.sh"
CACHE=${ARM_CHECK_CACHE:-$HERE/cache}
ROOTFS=$CACHE/rootfs-arm64
WHEELS=$CACHE/wheels-aarch64
LASTRUN=$CACHE/last-run
LOCK=$HERE/requirements-aarch64.txt
CORPUS=$REPO/../shared/data/contracts/unlabeled_train.jsonl.gz
SUITE=bookworm
MODE=${ARM_CHECK_MODE:-auto}
N=${ARM_CHECK_N:-200}
MIN_SCORED=100
WITH_CC=${ARM_CHECK_CC:-1}
HOST_REF=${ARM_CHECK_HOST_REF:-1}
VENV=/opt/edge/venv            # inside the rootfs (the same path as on the device)
WORK=/tmp/arm-check            # inside the rootfs, removed at exit
PLATFORM_ARGS=(--only-binary=:all: --python-version 3.11 --implementation cp --abi cp311
    --platform manylinux_2_28_aarch64 --platform manylinux_2_27_aarch64
    --platform manylinux_2_26_aarch64 --platform manylinux_2_17_aarch64
    --platform manylinux2014_aarch64)
ROOTFS_PKGS=python3,python3-venv
[ "$WITH_CC" = 1 ] && ROOTFS_PKGS=$ROOTFS_PKGS,gcc,libc6-dev,python3-dev
CLEAN_ENV=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    HOME=/root LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=dumb PYTHONDONTWRITEBYTECODE=1)

T_START=$(date +%s.%N)
STEPS=()

say() { printf '[arm-check] %s\n' "$*" >&2; }
die() { printf '[arm-check] ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
# step_done NAME T0: record the wall seconds of a step since T0.
step_done() {
    local dt
    dt=$(awk -v a="$2" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
    STEPS+=("\"$1\":$dt")
    say "$1: ${dt}s"
}

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }

# ---------------------------------------------------------------------- host side

need_root() {
    [ "$(id -u)" -eq 0 ] && return 0
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        say "re-running as root with sudo"
        exec sudo -- bash "${BASH_SOURCE[0]}" "$@"
    fi
    die "needs root (debootstrap, chroot, binfmt_misc); run: sudo make arm-check"
}

# Pick a Python with pip for host-side downloads (wheels for another platform).
host_pip_python() {
    if [ -x "$REPO/.venv/bin/python" ] && "$REPO/.venv/bin/python" -m pip --version >/dev/null 2>&1; then
        echo "$REPO/.venv/bin/python"
    elif python3 -m pip --version >/dev/null 2>&1; then
        echo python3
    else
        return 1
    fi
}

ensure_host_tools() {
    local missing=()
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    command -v qemu-aarch64-static >/dev/null 2>&1 || missing+=(qemu-user-static)
    command -v update-binfmts >/dev/null 2>&1 || missing+=(binfmt-support)
    command -v python3 >/dev/null 2>&1 || missing+=(python3)
    host_pip_python >/dev/null || missing+=(python3-pip)
    if [ ${#missing[@]} -gt 0 ]; then
        command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get to install them"
        say "installing host packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    command -v unshare >/dev/null 2>&1 || die "unshare (util-linux) is missing"
    command -v dpkg-deb >/dev/null 2>&1 || die "dpkg-deb is missing"
}

# $ARM_CHECK_MIRROR, else the Debian mirror apt is configured with, else deb.debian.org.
detect_mirror() { debian_mirror "${ARM_CHECK_MIRROR:-}"; }

# The sha256 of pyproject.toml's [project] dependencies (one per line), as recorded in the lock.
deps_sha() {
    python3 - "$REPO/pyproject.toml" <<'PY'
import hashlib, sys, tomllib
deps = tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]
print(hashlib.sha256("\n".join(deps).encode()).hexdigest())
PY
}

relock() {
    local tmp
    tmp=$(mktemp -d)
    python3 - "$REPO/pyproject.toml" >"$tmp/deps.txt" <<'PY'
import sys, tomllib
print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))
PY
    : >"$tmp/constraints.txt"
    if [ -x "$REPO/.venv/bin/python" ]; then   # the versions the tests ran with
        "$REPO/.venv/bin/python" -m pip freeze --exclude-editable 2>/dev/null \
            | grep -E '^[A-Za-z0-9_.-]+==' | grep -viE '^edge[-_]gateway==' >"$tmp/constraints.txt" || true
    fi
    say "resolving pyproject dependencies for aarch64 / CPython 3.11"
    pip_host download -q "${PLATFORM_ARGS[@]}" -d "$tmp/wh" \
        -r "$tmp/deps.txt" -c "$tmp/constraints.txt" 'setuptools>=69' wheel
    python3 - "$tmp/wh" "$(deps_sha)" >"$LOCK" <<'PY'
import hashlib, pathlib, re, sys
wh, deps_sha = pathlib.Path(sys.argv[1]), sys.argv[2]
print("# Pinned runtime dependencies of the agent on the device: Raspberry Pi OS / Debian")
print("# bookworm, aarch64, CPython 3.11. Every line carries the sha256 of the wheel pip")
print("# installs there (aarch64 manylinux or pure Python), so `pip install --require-hashes`")
print("# refuses anything else. setuptools and wheel are the build backend of the agent's")
print("# own sdist (built on the device or in the rootfs with --no-build-isolation).")
print("# Generated by `bash image/arm-check.sh --relock` from pyproject.toml, constrained to")
print("# the versions of the development venv (.venv). Do not edit by hand.")
print(f"# deps-sha256: {deps_sha}")
for f in sorted(wh.glob("*.whl"), key=lambda p: p.name.lower()):
    name, version = f.name.split("-")[:2]
    name = re.sub(r"[-_.]+", "-", name).lower()
    digest = hashlib.sha256(f.read_bytes()).hexdigest()
    print(f"{name}=={version} \\\n    --hash=sha256:{digest}")
PY
    rm -rf "$tmp"
    say "wrote ${LOCK#"$REPO"/} ($(grep -c '==' "$LOCK") packages)"
}

check_lock() {
    [ -f "$LOCK" ] || die "${LOCK#"$REPO"/} is missing: run bash image/arm-check.sh --relock"
    local want have
    want=$(deps_sha)
    have=$(sed -n 's/^# deps-sha256: //p' "$LOCK")
    [ "$want" = "$have" ] || die "pyproject.toml's dependencies changed since ${LOCK#"$REPO"/} was locked: run bash image/arm-check.sh --relock"
}

# pip_host ARGS...: the host's pip, minus the noise of unreachable find-links locations.
pip_host() {
    local py
    py=$(host_pip_python) || die "no pip on the host: make setup (or apt-get install python3-pip)"
    "$py" -m pip "$@" 2> >(grep -v "^WARNING: Location '" >&2)
}

lock_sha() { sha256sum "$LOCK" | cut -d' ' -f1; }

# Delete a cache folder, refusing if anything is mounted below it.
safe_rm() {
    local d=$1 real
    [ -e "$d" ] || return 0
    real=$(realpath "$d")
    if awk -v p="$real/" 'index($2, p) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
        die "something is mounted under $real: unmount it before deleting the cache"
    fi
    rm -rf --one-file-system -- "$d"
}

# ------------------------------------------------------------------ emulation

BINFMT_ENTRY=/proc/sys/fs/binfmt_misc/qemu-aarch64

binfmt_ready() { [ -e "$BINFMT_ENTRY" ] && head -n 1 "$BINFMT_ENTRY" | grep -q '^enabled'; }

# Try to make the kernel run aarch64 ELF files through qemu (binfmt_misc). 0 = ready.
setup_binfmt() {
    binfmt_ready && return 0
    if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
        say "mounting binfmt_misc"
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || return 1
    fi
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 \
        || update-binfmts --import qemu-aarch64 >/dev/null 2>&1 || true
    binfmt_ready
}

choose_mode() {
    case "$MODE" in
        binfmt) setup_binfmt || die "binfmt_misc for qemu-aarch64 is not available here (try ARM_CHECK_MODE=qemu-L)" ;;
        qemu-L) ;;
        auto)
            if setup_binfmt; then MODE=binfmt
            else say "binfmt_misc unavailable: falling back to qemu-aarch64-static -L"; MODE=qemu-L; fi ;;
        *) die "ARM_CHECK_MODE must be auto, binfmt or qemu-L (got $MODE)" ;;
    esac
    say "running arm64 code with: $MODE"
}

# Without binfmt's F (fix-binary) flag the interpreter must exist inside the rootfs.
install_interpreter() {
    local interp
    interp=$(sed -n 's/^interpreter //p' "$BINFMT_ENTRY")
    if ! grep -q '^flags:.*F' "$BINFMT_ENTRY" && [ -n "$interp" ]; then
        mkdir -p "$ROOTFS$(dirname "$interp")"
        cp -L "$interp" "$ROOTFS$interp"
    fi
}

# in_chroot CMD...: run CMD in the rootfs with a clean environment, /proc and /dev mounted
# in a private mount namespace (nothing stays mounted when it returns). /sys stays out on
# purpose: onnxruntime's cpuinfo reads the x86 host's CPU topology there and segfaults
# under qemu-aarch64; without it, it prints "Error in cpuinfo" warnings and runs fine.
in_chroot() {
    unshare --mount --propagation private -- /bin/sh -c '
        r=$1; shift
        mount -t proc proc "$r/proc"
        mount --rbind /dev "$r/dev"
        exec chroot "$r" "$@"' in_chroot "$ROOTFS" "${CLEAN_ENV[@]}" "$@"
}

# in_qemu PROGRAM ARGS...: run an aarch64 program of the rootfs without binfmt (host paths).
# An empty /sys in a private mount namespace, for the reason given at in_chroot (with -L
# the program sees the host's file system wherever the rootfs has no such file).
in_qemu() {
    unshare --mount --propagation private -- /bin/sh -c '
        mount -t tmpfs -o ro,size=4k none /sys
        exec "$@"' in_qemu "${CLEAN_ENV[@]}" qemu-aarch64-static -L "$ROOTFS" "$@"
}

# ------------------------------------------------------------------- rootfs

rootfs_stamp() { cat "$CACHE/rootfs-arm64.stamp" 2>/dev/null || true; }

# binfmt mode: the rootfs is the base of `make image` (image/base-rootfs.sh: mmdebstrap,
# cached as a tarball keyed by its inputs), so the arm64 root file system is built once for
# both. Its packages include python3-venv, gcc, libc6-dev and python3-dev.
build_rootfs_shared() {
    local want have
    want="base $(bash "$HERE/base-rootfs.sh" key)"
    have=$(rootfs_stamp)
    if [ "$have" = "$want" ] && [ -x "$ROOTFS/usr/bin/python3" ]; then
        say "rootfs cached (${want}): ${ROOTFS#"$REPO"/}"
        return 0
    fi
    safe_rm "$ROOTFS"
    rm -f "$CACHE/rootfs-arm64.stamp"
    IMAGE_CACHE=$CACHE bash "$HERE/base-rootfs.sh" extract "$ROOTFS" \
        || die "the shared arm64 base root file system could not be built (image/base-rootfs.sh)"
    echo "$want" >"$CACHE/rootfs-arm64.stamp"
}

build_rootfs() {
    # The shared base when `make image` has built it (or ARM_CHECK_SHARED_BASE=1 builds it
    # here); else the smaller debootstrap rootfs (minutes less on a fresh CI clone).
    if [ "$MODE" = binfmt ] && [ "$WITH_CC" = 1 ] && [ "${ARM_CHECK_DEBOOTSTRAP:-0}" != 1 ] \
        && { [ "${ARM_CHECK_SHARED_BASE:-0}" = 1 ] || IMAGE_CACHE=$CACHE bash "$HERE/base-rootfs.sh" cached >/dev/null; }; then
        build_rootfs_shared
        return
    fi
    local want2="stage2 $SUITE minbase $ROOTFS_PKGS" want1="stage1 $SUITE minbase $ROOTFS_PKGS"
    local have mirror
    have=$(rootfs_stamp)
    if [ "$have" = "$want2" ] || { [ "$MODE" = qemu-L ] && [ "$have" = "$want1" ]; }; then
        say "rootfs cached (${have%% *}): ${ROOTFS#"$REPO"/}"
        return 0
    fi
    mirror=$(detect_mirror)
    say "debootstrap arm64 $SUITE (minbase + $ROOTFS_PKGS) from $mirror"
    safe_rm "$ROOTFS"
    rm -f "$CACHE/rootfs-arm64.stamp"
    mkdir -p "$CACHE"
    debootstrap --arch=arm64 --foreign --variant=minbase --include="$ROOTFS_PKGS" \
        "$SUITE" "$ROOTFS" "$mirror" >"$CACHE/debootstrap-1.log" 2>&1 \
        || { tail -n 20 "$CACHE/debootstrap-1.log" >&2; die "debootstrap (first stage) failed; log: ${CACHE#"$REPO"/}/debootstrap-1.log"; }
    if [ "$MODE" = binfmt ]; then
        install_interpreter
        say "debootstrap second stage under qemu (a few minutes)"
        in_chroot /debootstrap/debootstrap --second-stage >"$CACHE/debootstrap-2.log" 2>&1 \
            || { tail -n 20 "$CACHE/debootstrap-2.log" >&2; die "debootstrap second stage failed; log: ${CACHE#"$REPO"/}/debootstrap-2.log"; }
        echo "$want2" >"$CACHE/rootfs-arm64.stamp"
    else
        # No binfmt: nothing aarch64 can run maintainer scripts. Unpack every downloaded
        # package's files (enough to run python3 under qemu -L); dpkg never configures them.
        say "unpacking the packages without a second stage (qemu -L mode)"
        local deb
        for deb in "$ROOTFS"/var/cache/apt/archives/*.deb; do
            dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C "$ROOTFS"
        done
        echo "$want1" >"$CACHE/rootfs-arm64.stamp"
    fi
}

# ------------------------------------------------------------------- wheels

fetch_wheels() {
    local sha
    sha=$(lock_sha)
    if [ "$(cat "$WHEELS/.lock-sha256" 2>/dev/null || true)" = "$sha" ]; then
        say "wheelhouse cached: ${WHEELS#"$REPO"/} ($(find "$WHEELS" -name '*.whl' | wc -l) wheels)"
        return 0
    fi
    say "downloading pinned aarch64 wheels (hash-checked)"
    mkdir -p "$WHEELS"
    find "$WHEELS" -name '*.whl' -delete
    pip_host download -q --no-deps "${PLATFORM_ARGS[@]}" -d "$WHEELS" -r "$LOCK"
    echo "$sha" >"$WHEELS/.lock-sha256"
}

# Copy the agent's source (what its sdist holds) to DIR.
copy_source() {
    local dst=$1 f files=(pyproject.toml setup.py edge)
    mkdir -p "$dst"
    [ -f "$REPO/README.md" ] && files+=(README.md)
    for f in LICENSE MANIFEST.in; do [ -f "$REPO/$f" ] && files+=("$f"); done
    tar -C "$REPO" --dereference --exclude=__pycache__ --exclude='*.so' --exclude='*.pyc' -cf - "${files[@]}" \
        | tar -C "$dst" -xf -
    # The model goes in the package (edge/data/, package-data), as in the image.
    mkdir -p "$dst/edge/data"
    rm -f "$dst/edge/data/risk.onnx"
    cp "$REPO/models/risk.onnx" "$dst/edge/data/risk.onnx"
}

stage_work() {
    safe_rm "$ROOTFS$WORK"
    mkdir -p "$ROOTFS$WORK"
    # Hard links when the cache and the rootfs share a file system, else copies.
    cp -al "$WHEELS" "$ROOTFS$WORK/wheels" 2>/dev/null || cp -a "$WHEELS" "$ROOTFS$WORK/wheels"
    cp "$LOCK" "$ROOTFS$WORK/requirements.txt"
    cp "$HERE/smoke.py" "$ROOTFS$WORK/smoke.py"
    cp "$HERE/capabilities_digest.py" "$ROOTFS$WORK/capabilities_digest.py"  # imported by smoke.py
    copy_source "$ROOTFS$WORK/src"
}

install_agent_chroot() {
    local sha
    sha=$(lock_sha)
    if [ "$(cat "$ROOTFS/opt/edge/.lock-sha256" 2>/dev/null || true)" != "$sha" ]; then
        say "creating $VENV in the rootfs and installing the pinned wheels (--no-index)"
        rm -rf "${ROOTFS:?}$VENV"
        in_chroot python3 -m venv "$VENV"
        in_chroot "$VENV/bin/pip" install -q --no-cache-dir --no-index --find-links "$WORK/wheels" \
            --require-hashes -r "$WORK/requirements.txt"
        echo "$sha" >"$ROOTFS/opt/edge/.lock-sha256"
    else
        say "venv dependencies cached: $VENV"
    fi
    say "building and installing the agent from source in the rootfs"
    in_chroot "$VENV/bin/pip" install -q --no-cache-dir --no-index --no-deps --no-build-isolation \
        --force-reinstall "$WORK/src" >"$LASTRUN/agent-build.log" 2>&1 \
        || { tail -n 30 "$LASTRUN/agent-build.log" >&2; die "installing the agent in the rootfs failed"; }
    in_chroot "$VENV/bin/pip" check >&2 || die "pip check failed in the rootfs venv"
}

# qemu -L mode: the host's pip cross-installs the aarch64 wheels as files, the agent goes
# in as pure Python (no aarch64 compiler can run without binfmt).
install_agent_files() {
    local sha site=$ROOTFS/opt/edge/site
    sha=$(lock_sha)
    if [ "$(cat "$site/.lock-sha256" 2>/dev/null || true)" != "$sha" ]; then
        say "cross-installing the pinned wheels into /opt/edge/site (host pip, --target)"
        rm -rf "$site"
        pip_host install -q --no-deps --no-index --find-links "$WHEELS" "${PLATFORM_ARGS[@]}" \
            --target "$site" --require-hashes -r "$LOCK"
        echo "$sha" >"$site/.lock-sha256"
    fi
    rm -rf "$site/edge"
    cp -a "$ROOTFS$WORK/src/edge" "$site/edge"
}

# ------------------------------------------------------------------- smoke

make_slice() {  # make_slice OUT: the first N non-blank rows of the corpus, plain JSON Lines
    python3 - "$CORPUS" "$N" "$1" <<'PY'
import gzip, sys
src, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
k = 0
with gzip.open(src, "rb") as f, open(out, "wb") as o:
    for line in f:
        if line.strip():
            o.write(line if line.endswith(b"\n") else line + b"\n")
            k += 1
            if k >= n:
                break
print(k)
PY
}

run_smoke_arm() {
    local args=(run --corpus "$WORK/slice.jsonl" --db "$WORK/outbox.sqlite"
        --scores-out "$WORK/scores.json")
    set +e
    if [ "$MODE" = binfmt ]; then
        in_chroot "$VENV/bin/python" "$WORK/smoke.py" "${args[@]}" >"$LASTRUN/arm.json" 2>"$LASTRUN/arm.err"
    else
        local r=$ROOTFS
        in_qemu "$r/usr/bin/python3" -c 'import sys; sys.path.insert(0, sys.argv.pop(1)); sys.argv.pop(0); import runpy; runpy.run_path(sys.argv[0], run_name="__main__")' \
            "$r/opt/edge/site" "$r$WORK/smoke.py" run --corpus "$r$WORK/slice.jsonl" \
            --db "$r$WORK/outbox.sqlite" --scores-out "$r$WORK/scores.json" \
            >"$LASTRUN/arm.json" 2>"$LASTRUN/arm.err"
    fi
    local rc=$?
    set -e
    cp "$ROOTFS$WORK/scores.json" "$LASTRUN/arm-scores.json" 2>/dev/null || true
    # onnxruntime's cpuinfo cannot read CPU lists under qemu-user (no /sys, see in_chroot):
    # its warnings are harmless here and stay in arm.err.
    if [ -s "$LASTRUN/arm.err" ]; then
        grep -viE 'cpuinfo|cpuid_info' "$LASTRUN/arm.err" | sed 's/^/[arm64] /' | tail -n 20 >&2 || true
    fi
    return $rc
}

cleanup() { [ -n "${ROOTFS:-}" ] && [ -d "$ROOTFS$WORK" ] && safe_rm "$ROOTFS$WORK"; return 0; }

main() {
    case "${1:-}" in
        -h|--help) usage; exit 0 ;;
        --relock) relock; exit 0 ;;
        --clean) need_root "$@"; safe_rm "$CACHE"; say "removed ${CACHE#"$REPO"/}"; exit 0 ;;
        "") ;;
        *) usage >&2; exit 2 ;;
    esac
    need_root "$@"
    [ "$N" -ge "$MIN_SCORED" ] || die "ARM_CHECK_N=$N: at least $MIN_SCORED contracts are required"
    [ -f "$CORPUS" ] || die "corpus not found: ../shared/data/contracts/unlabeled_train.jsonl.gz (relative to the repo)"
    [ -f "$REPO/models/risk.onnx" ] || die "models/risk.onnx is missing"
    trap cleanup EXIT
    local t
    t=$(now); ensure_host_tools; check_lock; step_done host_tools "$t"
    t=$(now); choose_mode; step_done emulation "$t"
    t=$(now); build_rootfs; step_done rootfs "$t"
    t=$(now); fetch_wheels; step_done wheels "$t"
    mkdir -p "$LASTRUN"
    rm -f "$LASTRUN"/*
    t=$(now); stage_work
    if [ "$MODE" = binfmt ]; then install_agent_chroot; else install_agent_files; fi
    step_done install "$t"

    t=$(now)
    local rows
    rows=$(make_slice "$ROOTFS$WORK/slice.jsonl")
    say "scoring a slice of $rows contracts inside the arm64 rootfs"
    local smoke_rc=0
    run_smoke_arm || smoke_rc=$?
    step_done smoke_arm64 "$t"

    local ref=() backend=()
    if [ "$HOST_REF" = 1 ] && [ -x "$REPO/.venv/bin/python" ]; then
        t=$(now)
        say "reference run on the host (.venv) with the same slice"
        if "$REPO/.venv/bin/python" "$HERE/smoke.py" run --corpus "$ROOTFS$WORK/slice.jsonl" \
            --model "$REPO/models/risk.onnx" --db "$LASTRUN/host-outbox.sqlite" \
            --scores-out "$LASTRUN/host-scores.json" >"$LASTRUN/host.json" 2>"$LASTRUN/host.err"; then
            ref=(--host "$LASTRUN/host.json" --arm-scores "$LASTRUN/arm-scores.json"
                --host-scores "$LASTRUN/host-scores.json")
        else
            say "host reference run failed (not an arm64 problem): $(tail -n 3 "$LASTRUN/host.err")"
        fi
        rm -f "$LASTRUN"/host-outbox.sqlite*
        step_done host_reference "$t"
    fi
    if [ "$MODE" = binfmt ] && [ "$WITH_CC" = 1 ]; then backend=(--require-backend c); fi

    local verdict=0
    python3 "$HERE/smoke.py" check --arm "$LASTRUN/arm.json" --min-scored "$MIN_SCORED" \
        "${backend[@]}" "${ref[@]}" || verdict=1
    [ "$smoke_rc" -eq 0 ] || verdict=1

    local total
    total=$(awk -v a="$T_START" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
    local steps
    steps=$(IFS=,; echo "${STEPS[*]}")
    python3 - "$LASTRUN/arm.json" "$verdict" "$MODE" "$total" "{$steps}" <<'PY'
import json, sys
path, verdict, mode, total, steps = sys.argv[1:]
lines = [l for l in open(path).read().splitlines() if l.startswith("{")]
arm = json.loads(lines[-1]) if lines else {}
keep = ("arch", "python", "features_backend", "scored", "flagged", "outbox_rows", "merkle_root",
        "capability_codes", "capability_flags", "capabilities_sha256",
        "signer", "signature_verified", "us_per_contract_featurize_score", "timings_s", "error")
out = {"ok": verdict == "0", "mode": mode, "total_s": float(total), "steps_s": json.loads(steps),
       "arm64": {k: (arm.get("checks", {}).get(k) if k == "signature_verified" else arm.get(k))
                 for k in keep}}
print(json.dumps(out, sort_keys=True))
PY
    if [ "$verdict" -eq 0 ]; then
        say "PASS in ${total}s (outputs: ${LASTRUN#"$REPO"/}/)"
    else
        say "FAIL in ${total}s (outputs: ${LASTRUN#"$REPO"/}/)"
    fi
    return "$verdict"
}

main "$@"
