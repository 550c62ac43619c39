#!/bin/bash -e
# No password anywhere, SSH with a key only, the agent enabled.
#  - sshd: key only (files/00-edge.conf, on top of pi-gen's PUBKEY_ONLY_SSH=1);
#  - the first user (FIRST_USER_NAME, whose authorized_keys pi-gen wrote from
#    PUBKEY_SSH_FIRST_USER) gets the password hash "*": no password can ever match, on
#    SSH or on the console; a key works. root has "*" already (stage2). The random
#    FIRST_USER_PASS of the config (pi-gen needs one to skip its first-boot wizard) is
#    thereby thrown away;
#  - sudo without a password for that user (with no password, sudo could not ask for one);
#  - pi-gen's first-boot user wizard (userconfig.service) is masked, so nobody at the
#    console can create an account with a password.

install -m 644 files/00-edge.conf "${ROOTFS_DIR}/etc/ssh/sshd_config.d/00-edge.conf"

AUTH="${ROOTFS_DIR}/home/${FIRST_USER_NAME}/.ssh/authorized_keys"
if [ ! -s "${AUTH}" ]; then
	echo "stage-edge: ${AUTH#"${ROOTFS_DIR}"} is empty: set PUBKEY_SSH_FIRST_USER in the config" >&2
	exit 1
fi

echo "${FIRST_USER_NAME} ALL=(ALL) NOPASSWD: ALL" >"${ROOTFS_DIR}/etc/sudoers.d/010_edge-admin-nopasswd"
chmod 440 "${ROOTFS_DIR}/etc/sudoers.d/010_edge-admin-nopasswd"

on_chroot <<CHROOT
usermod --password '*' "${FIRST_USER_NAME}"
usermod --password '*' root
visudo -c -q
ln -sf /dev/null /etc/systemd/system/userconfig.service
systemctl enable ssh
CHROOT
