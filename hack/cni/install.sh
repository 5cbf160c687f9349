#!/usr/bin/env bash
# Installs Hull's default pod network for the quickstart: a bridge `hull0` with pods in 10.88.0.0/16
# (host-local IPAM, masquerading, hostPorts through portmap). The loopback interface needs no config:
# hulld runs the loopback plugin for every pod itself, as containerd does.
# Does nothing when the CNI config directory already has a network config, so a cluster's own CNI
# (flannel, calico, ...) is never overridden.
# Usage: sudo hack/cni/install.sh [conf_dir]   (default /etc/cni/net.d)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
conf_dir="${1:-/etc/cni/net.d}"

shopt -s nullglob
existing=("$conf_dir"/*.conflist "$conf_dir"/*.conf "$conf_dir"/*.json)
if (( ${#existing[@]} > 0 )); then
  echo "CNI config already present in $conf_dir (${existing[0]##*/}); leaving it alone."
else
  install -d -m 0755 "$conf_dir"
  install -m 0644 "$here/10-hull-bridge.conflist" "$conf_dir/10-hull-bridge.conflist"
  echo "installed $conf_dir/10-hull-bridge.conflist (network \"hull\", bridge hull0, 10.88.0.0/16)"
fi

# The plugins this config needs; Debian's containernetworking-plugins puts them in /usr/lib/cni.
for plugin in bridge host-local portmap loopback; do
  if [[ ! -x "/opt/cni/bin/$plugin" && ! -x "/usr/lib/cni/$plugin" ]]; then
    echo "warning: CNI plugin \"$plugin\" is in neither /opt/cni/bin nor /usr/lib/cni (Debian: apt-get install containernetworking-plugins)" >&2
  fi
done
if [[ ! -d /opt/cni/bin && -d /usr/lib/cni ]]; then
  echo "note: plugins are in /usr/lib/cni; set cni.bin_dirs = ['/opt/cni/bin', '/usr/lib/cni'] (as deploy/config.toml does)."
fi
