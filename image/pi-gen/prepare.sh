#!/usr/bin/env bash
# Copy the edge stage into a pi-gen checkout, with what it installs:
#   <pi-gen>/stage-edge/                      the stage (image/pi-gen/stage-edge)
#   <pi-gen>/stage-edge/00-install/files/dist/  what image/stage-dist.sh stages (the same
#       as for `make image`): requirements-aarch64.txt, wheels/*.whl, the agent's source,
#       edge.service, edge.toml, appliance/ (install-appliance.sh and its files), build.conf
#   <pi-gen>/config                           from config.example, only if missing
#   <pi-gen>/stage2/SKIP_IMAGES               only the edge image is exported
# The wheels are downloaded here, on the build machine, with pip's --platform tags, so the
# image build itself never asks PyPI for anything.
#
# Usage: bash image/pi-gen/prepare.sh PATH/TO/pi-gen
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

say() { printf '[prepare] %s\n' "$*" >&2; }
die() { printf '[prepare] ERROR: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: bash image/pi-gen/prepare.sh PATH/TO/pi-gen"
PIGEN=$(cd "$1" && pwd) || die "no such folder: $1"
[ -x "$PIGEN/build.sh" ] && [ -d "$PIGEN/stage2" ] || die "$PIGEN is not a pi-gen checkout (no build.sh / stage2)"

STAGE=$PIGEN/stage-edge
DIST=$STAGE/00-install/files/dist
say "copying the stage to $STAGE"
rm -rf "$STAGE"
cp -a "$HERE/stage-edge" "$STAGE"
# The same staging as `make image` (image/stage-dist.sh): wheels, source, unit, config,
# image/appliance/ with install-appliance.sh, build.conf.
bash "$REPO/image/stage-dist.sh" "$DIST"

if [ ! -e "$PIGEN/config" ]; then
    cp "$HERE/config.example" "$PIGEN/config"
    say "wrote $PIGEN/config from config.example: EDIT PUBKEY_SSH_FIRST_USER before building"
else
    say "kept the existing $PIGEN/config (compare with image/pi-gen/config.example)"
fi
touch "$PIGEN/stage2/SKIP_IMAGES"
say "ready: cd $PIGEN && sudo ./build.sh   (or ./build-docker.sh)"
