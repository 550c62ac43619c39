#!/bin/bash -e
# Inside the image (arm64 chroot): the service user and the agent's venv.

# Service user: no login shell, no home, in gpio (/dev/gpiochip*) and video (/dev/vcio).
for grp in gpio video; do
	groupadd -f -r "${grp}"
done
if ! id -u edge >/dev/null 2>&1; then
	useradd --system --user-group --home-dir /var/lib/edge --no-create-home \
		--shell /usr/sbin/nologin --comment "edge gateway agent" edge
fi
usermod -a -G gpio,video edge
passwd -l edge >/dev/null

py=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "${py}" != "3.11" ]; then
	echo "stage-edge: the image has Python ${py}; requirements-aarch64.txt is locked for 3.11" >&2
	exit 1
fi

# The venv sees the system site-packages for python3-lgpio (gpiozero's pin factory on a
# Pi 5, packaged by Raspberry Pi OS, not on PyPI as a wheel); every other dependency is
# installed in the venv from the pinned, hash-checked aarch64 wheels, without an index.
rm -rf /opt/edge/venv
python3 -m venv --system-site-packages /opt/edge/venv
/opt/edge/venv/bin/pip install --no-cache-dir --no-index --find-links /opt/edge/dist/wheels \
	--require-hashes -r /opt/edge/dist/requirements-aarch64.txt

# The agent from source: gcc builds its C featurizer here (aarch64); were the compiler
# missing, the install would still succeed with the pure-Python featurizer (same bits).
/opt/edge/venv/bin/pip install --no-cache-dir --no-index --no-deps --no-build-isolation \
	/opt/edge/dist/edge_gateway-*.tar.gz
# pip also sees the system site-packages (apt), whose metadata it may not fully resolve:
# report, do not fail on it (the venv alone is checked by `make arm-check`).
/opt/edge/venv/bin/pip check || echo "stage-edge: warning: pip check reported the problems above" >&2

# What the image ships, checked once here (this runs under qemu on an x86 build host).
/opt/edge/venv/bin/python - <<'PY'
from edge.scoring import features
from edge.scoring.model import RiskModel, default_model_path
m = RiskModel(default_model_path())
print(f"stage-edge: featurizer backend {features.BACKEND}, model {m.model_id[:12]} at {m.path}")
PY
/opt/edge/venv/bin/edge --help >/dev/null

install -m 644 /opt/edge/dist/requirements-aarch64.txt /opt/edge/requirements-aarch64.txt
rm -rf /opt/edge/dist

systemctl enable edge-firstboot.service edge.service
