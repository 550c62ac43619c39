#!/bin/bash -e
# Build host side: copy what image/stage-dist.sh staged (files/dist: the pinned aarch64
# wheels, the agent's source, the unit, the default config and image/appliance/) into the
# image, with this pi-gen config's administrator and hostname in build.conf. The
# appliance itself is installed by 01-run-chroot.sh with image/appliance/install-appliance.sh,
# the same script `make image` runs.

DIST=files/dist

# pi-gen wrote PUBKEY_SSH_FIRST_USER to the first user's authorized_keys (stage2): that
# user is the appliance's administrator, reachable by SSH with that key only.
AUTH="${ROOTFS_DIR}/home/${FIRST_USER_NAME}/.ssh/authorized_keys"
if [ ! -s "${AUTH}" ]; then
	echo "stage-edge: ${AUTH#"${ROOTFS_DIR}"} is empty: set PUBKEY_SSH_FIRST_USER in the config" >&2
	exit 1
fi

rm -rf "${ROOTFS_DIR}/opt/edge/dist"
install -d -m 755 "${ROOTFS_DIR}/opt/edge"
cp -a "${DIST}" "${ROOTFS_DIR}/opt/edge/dist"
sed -i -e "s/^ADMIN_USER=.*/ADMIN_USER=${FIRST_USER_NAME}/" \
	-e "s/^EDGE_HOSTNAME=.*/EDGE_HOSTNAME=${TARGET_HOSTNAME}/" "${ROOTFS_DIR}/opt/edge/dist/build.conf"
