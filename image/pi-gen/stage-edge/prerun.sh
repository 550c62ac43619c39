#!/bin/bash -e
# pi-gen stage "stage-edge": the edge gateway appliance on top of stage2 (Raspberry Pi OS
# Lite, bookworm, arm64). Runs on the build host before the sub-stages.

if [ ! -d "${ROOTFS_DIR}" ]; then
	copy_previous
fi

# Fail early, before minutes of work, on what would give an unusable or open device.
if [ "${RELEASE}" != "bookworm" ]; then
	echo "stage-edge: RELEASE=${RELEASE}: this stage is made for bookworm (CPython 3.11 wheels)" >&2
	exit 1
fi
if [ -z "${PUBKEY_SSH_FIRST_USER}" ] || [ "${PUBKEY_ONLY_SSH}" != "1" ]; then
	echo "stage-edge: set PUBKEY_SSH_FIRST_USER (an authorized_keys line) and PUBKEY_ONLY_SSH=1 in the config:" >&2
	echo "stage-edge: the appliance has no password login, SSH with a key is the only way in" >&2
	exit 1
fi
if [ ! -f 00-install/files/dist/requirements-aarch64.txt ]; then
	echo "stage-edge: 00-install/files/dist/ is empty: copy the stage with image/pi-gen/prepare.sh" >&2
	exit 1
fi
