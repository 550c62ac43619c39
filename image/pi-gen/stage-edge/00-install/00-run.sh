#!/bin/bash -e
# Build host side: copy the agent (pinned aarch64 wheels + its source), the systemd units,
# the first-boot helper and the default config into the image.
# files/dist/ is filled by image/pi-gen/prepare.sh: requirements-aarch64.txt, wheels/,
# edge_gateway-*.tar.gz (the agent's source, with edge/data/risk.onnx), edge.service, edge.toml.

DIST=files/dist

install -d -m 755 "${ROOTFS_DIR}/opt/edge/dist/wheels"
install -m 644 "${DIST}/requirements-aarch64.txt" "${ROOTFS_DIR}/opt/edge/dist/"
install -m 644 "${DIST}"/edge_gateway-*.tar.gz "${ROOTFS_DIR}/opt/edge/dist/"
install -m 644 "${DIST}"/wheels/*.whl "${ROOTFS_DIR}/opt/edge/dist/wheels/"

# The service (image/edge.service) and the first-boot helper that must run before it.
install -m 644 "${DIST}/edge.service" "${ROOTFS_DIR}/etc/systemd/system/edge.service"
install -m 644 files/edge-firstboot.service "${ROOTFS_DIR}/etc/systemd/system/"
install -m 755 files/edge-firstboot "${ROOTFS_DIR}/usr/local/sbin/edge-firstboot"

# The default config on the boot partition (FAT: a technician edits it from a laptop).
# Never overwrite one already there (a rebuild on top of a customised work dir).
install -d "${ROOTFS_DIR}/boot/firmware"
if [ ! -e "${ROOTFS_DIR}/boot/firmware/edge.toml" ]; then
	install -m 644 "${DIST}/edge.toml" "${ROOTFS_DIR}/boot/firmware/edge.toml"
fi

# /etc/edge holds the keystore passphrase (a systemd credential, LoadCredential=).
install -d -m 700 "${ROOTFS_DIR}/etc/edge"
