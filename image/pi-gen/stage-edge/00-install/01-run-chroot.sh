#!/bin/bash -e
# Inside the image (arm64 chroot): the appliance, by the script `make image` runs too.
bash /opt/edge/dist/appliance/install-appliance.sh /opt/edge/dist
rm -rf /opt/edge/dist
