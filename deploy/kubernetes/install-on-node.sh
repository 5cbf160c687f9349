#!/bin/sh
# Runs in the installer DaemonSet's privileged pod with the host's root at /host: copies Hull onto
# the node, installs runc/conmon/catatonit/CNI plugins from the node's package manager when
# missing, enables hulld.service, then sleeps so the DaemonSet stays Ready.
set -eu
HOST=/host
mkdir -p "$HOST/opt/hull" "$HOST/etc/hull"
cp -a /opt/hull/. "$HOST/opt/hull/"
ln -sf /opt/hull/hulld "$HOST/usr/local/bin/hulld"
ln -sf /opt/hull/hullctl "$HOST/usr/local/bin/hullctl"
[ -f "$HOST/etc/hull/config.toml" ] || cp /opt/hull/deploy/config.toml "$HOST/etc/hull/config.toml"
cp /opt/hull/deploy/hulld.service "$HOST/etc/systemd/system/hulld.service"
chroot "$HOST" sh -c 'command -v runc >/dev/null && command -v conmon >/dev/null || (apt-get update && apt-get install -y runc conmon catatonit containernetworking-plugins)'
chroot "$HOST" systemctl daemon-reload
chroot "$HOST" systemctl enable --now hulld.service
echo "hull installed; point the kubelet at --container-runtime-endpoint=unix:///run/hull/hull.sock"
exec sleep infinity
