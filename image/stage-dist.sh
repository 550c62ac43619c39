#!/usr/bin/env bash
# Stage on the build host everything image/appliance/install-appliance.sh installs inside
# an image, in one folder (DIST). Both builders use it: image/build-image.sh (`make image`)
# and image/pi-gen/prepare.sh (the pi-gen stage).
#
# Usage: bash image/stage-dist.sh DIST
# Environment (all optional; written to DIST/build.conf):
#   EDGE_HOSTNAME=edge-gateway   ADMIN_USER=admin   WATCHDOG_SEC=14   JOURNAL_MAX_MB=64
#   AUTHORIZED_KEYS=FILE         the administrator's SSH public keys, baked into the image
#                                (else a technician drops authorized_keys on the FAT partition)
#   SOURCE_DATE_EPOCH            default: the time of the last commit
#   IMAGE_CACHE=image/cache      where the hash-checked aarch64 wheels are kept (shared with
#                                `make arm-check`: wheels-aarch64/)
#
# DIST then holds: requirements-aarch64.txt, wheels/*.whl, edge_gateway-<v>.tar.gz (the
# agent's source with models/risk.onnx as edge/data/risk.onnx), edge.service, edge.toml,
# appliance/ (image/appliance), build.conf and, when given, authorized_keys.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
CACHE=${IMAGE_CACHE:-$HERE/cache}
LOCK=$HERE/requirements-aarch64.txt
WHEELS=$CACHE/wheels-aarch64
PLATFORM_ARGS=(--only-binary=:all: --python-version 3.11 --implementation cp --abi cp311
    --platform manylinux_2_28_aarch64 --platform manylinux_2_27_aarch64
    --platform manylinux_2_26_aarch64 --platform manylinux_2_17_aarch64
    --platform manylinux2014_aarch64)

say() { printf '[stage-dist] %s\n' "$*" >&2; }
die() { printf '[stage-dist] ERROR: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: bash image/stage-dist.sh DIST"
DIST=$1
for f in "$HERE/edge.service" "$HERE/edge.toml" "$REPO/models/risk.onnx" "$LOCK" \
    "$HERE/appliance/install-appliance.sh"; do
    [ -f "$f" ] || die "missing ${f#"$REPO"/}"
done

if [ -x "$REPO/.venv/bin/python" ] && "$REPO/.venv/bin/python" -m pip --version >/dev/null 2>&1; then
    PY=$REPO/.venv/bin/python
elif python3 -m pip --version >/dev/null 2>&1; then PY=python3
else die "no pip on the host: make setup (or apt-get install python3-pip)"; fi

VERSION=$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$REPO/pyproject.toml")
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git -C "$REPO" log -1 --format=%ct 2>/dev/null || date +%s)
fi

# The pinned wheels, downloaded once per lock (pip checks every sha256 of the lock).
sha=$(sha256sum "$LOCK" | cut -d' ' -f1)
if [ "$(cat "$WHEELS/.lock-sha256" 2>/dev/null || true)" != "$sha" ]; then
    say "downloading the pinned aarch64 wheels (hash-checked)"
    mkdir -p "$WHEELS"
    find "$WHEELS" -name '*.whl' -delete
    "$PY" -m pip download -q --no-deps "${PLATFORM_ARGS[@]}" -d "$WHEELS" -r "$LOCK" \
        2> >(grep -v "^WARNING: Location '" >&2)
    echo "$sha" >"$WHEELS/.lock-sha256"
fi

rm -rf "$DIST"
mkdir -p "$DIST/wheels"
cp -l "$WHEELS"/*.whl "$DIST/wheels/" 2>/dev/null || cp "$WHEELS"/*.whl "$DIST/wheels/"
cp "$LOCK" "$DIST/requirements-aarch64.txt"

NAME=edge_gateway-$VERSION
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/$NAME"
files=(pyproject.toml setup.py edge)
[ -f "$REPO/README.md" ] && files+=(README.md)
tar -C "$REPO" --dereference --exclude=__pycache__ --exclude='*.so' --exclude='*.pyc' -cf - "${files[@]}" \
    | tar -C "$TMP/$NAME" -xf -
mkdir -p "$TMP/$NAME/edge/data"
rm -f "$TMP/$NAME/edge/data/risk.onnx"
cp "$REPO/models/risk.onnx" "$TMP/$NAME/edge/data/risk.onnx"
tar -C "$TMP" --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
    -cf - "$NAME" | gzip -n >"$DIST/$NAME.tar.gz"

cp "$HERE/edge.service" "$HERE/edge.toml" "$DIST/"
cp -a "$HERE/appliance" "$DIST/appliance"
if [ -n "${AUTHORIZED_KEYS:-}" ]; then
    [ -s "$AUTHORIZED_KEYS" ] || die "AUTHORIZED_KEYS=$AUTHORIZED_KEYS is empty or missing"
    cp "$AUTHORIZED_KEYS" "$DIST/authorized_keys"
fi
cat >"$DIST/build.conf" <<EOF
EDGE_HOSTNAME=${EDGE_HOSTNAME:-edge-gateway}
ADMIN_USER=${ADMIN_USER:-admin}
WATCHDOG_SEC=${WATCHDOG_SEC:-14}
JOURNAL_MAX_MB=${JOURNAL_MAX_MB:-64}
SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH
VERSION=$VERSION
EOF
say "staged $NAME, $(find "$DIST/wheels" -name '*.whl' | wc -l) wheels in $DIST"
