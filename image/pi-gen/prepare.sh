#!/usr/bin/env bash
# Copy the edge stage into a pi-gen checkout, with what it installs:
#   <pi-gen>/stage-edge/                      the stage (image/pi-gen/stage-edge)
#   <pi-gen>/stage-edge/00-install/files/dist/
#       requirements-aarch64.txt              pinned runtime deps (sha256 of each wheel)
#       wheels/*.whl                          those wheels for aarch64 / CPython 3.11
#       edge_gateway-<version>.tar.gz         the agent's source (+ edge/data/risk.onnx)
#       edge.service, edge.toml               image/edge.service, image/edge.toml
#   <pi-gen>/config                           from config.example, only if missing
#   <pi-gen>/stage2/SKIP_IMAGES               only the edge image is exported
# The wheels are downloaded here, on the build machine, with pip's --platform tags, so the
# image build itself never asks PyPI for anything.
#
# Usage: bash image/pi-gen/prepare.sh PATH/TO/pi-gen
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
LOCK=$REPO/image/requirements-aarch64.txt

say() { printf '[prepare] %s\n' "$*" >&2; }
die() { printf '[prepare] ERROR: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: bash image/pi-gen/prepare.sh PATH/TO/pi-gen"
PIGEN=$(cd "$1" && pwd) || die "no such folder: $1"
[ -x "$PIGEN/build.sh" ] && [ -d "$PIGEN/stage2" ] || die "$PIGEN is not a pi-gen checkout (no build.sh / stage2)"
for f in "$REPO/image/edge.service" "$REPO/image/edge.toml" "$REPO/models/risk.onnx" "$LOCK"; do
    [ -f "$f" ] || die "missing ${f#"$REPO"/}"
done

if [ -x "$REPO/.venv/bin/python" ]; then PY=$REPO/.venv/bin/python
elif python3 -m pip --version >/dev/null 2>&1; then PY=python3
else die "no pip: run make setup (or apt-get install python3-pip)"; fi

STAGE=$PIGEN/stage-edge
DIST=$STAGE/00-install/files/dist
say "copying the stage to $STAGE"
rm -rf "$STAGE"
cp -a "$HERE/stage-edge" "$STAGE"
mkdir -p "$DIST/wheels"

say "downloading the pinned aarch64 wheels (hash-checked)"
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
    --implementation cp --abi cp311 \
    --platform manylinux_2_28_aarch64 --platform manylinux_2_27_aarch64 \
    --platform manylinux_2_26_aarch64 --platform manylinux_2_17_aarch64 \
    --platform manylinux2014_aarch64 \
    -d "$DIST/wheels" -r "$LOCK" 2> >(grep -v "^WARNING: Location '" >&2)
cp "$LOCK" "$DIST/requirements-aarch64.txt"

VERSION=$("$PY" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$REPO/pyproject.toml")
NAME=edge_gateway-$VERSION
say "packing the agent's source as $NAME.tar.gz (model in edge/data/)"
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
tar -C "$TMP" --owner=0 --group=0 --numeric-owner -czf "$DIST/$NAME.tar.gz" "$NAME"

cp "$REPO/image/edge.service" "$REPO/image/edge.toml" "$DIST/"

if [ ! -e "$PIGEN/config" ]; then
    cp "$HERE/config.example" "$PIGEN/config"
    say "wrote $PIGEN/config from config.example: EDIT PUBKEY_SSH_FIRST_USER before building"
else
    say "kept the existing $PIGEN/config (compare with image/pi-gen/config.example)"
fi
touch "$PIGEN/stage2/SKIP_IMAGES"
say "ready: cd $PIGEN && sudo ./build.sh   (or ./build-docker.sh)"
