#!/bin/sh
# Installs Hull onto the node: runs in the init container of the DaemonSet (deploy/kubernetes/hull.yaml, charts/hull),
# which mounts the node's directories at /host/* (hostPath) and the node config at /etc/hull-deploy (ConfigMap).
#
#   /host/install  ← $HULL_HOST_INSTALL (/opt/hull): one directory per version, and `current` pointing to the one in use
#   /host/bin      ← $HULL_HOST_BIN (/usr/local/bin): hulld and hullctl, links into current
#   /host/config   ← $HULL_HOST_CONFIG (/etc/hull): config.toml, written when the ConfigMap's differs
#   /host/systemd  ← /etc/systemd/system: hulld.service
#
# Then, per $HULL_START: "auto" starts (or restarts, when something changed) hulld.service through the node's systemd
# if it has one, else says how to start hulld (docs/node-conditions.md, "Nodes without systemd"); "systemd" fails without
# systemd; "none" starts nothing. With $HULL_HOST_PACKAGES=true, runc, conmon, catatonit and the CNI plugins are
# installed with the node's apt-get when missing. Both reach the node through PID 1's namespaces (hostPID).
# Everything is replaced atomically (rename), so a hulld running from the previous version is never disturbed.
set -eu

say() { echo "install-on-node: $*"; }
host() { nsenter -t 1 -m -u -i -n -p -- "$@"; }

: "${HULL_HOST_INSTALL:=/opt/hull}" "${HULL_HOST_BIN:=/usr/local/bin}" "${HULL_HOST_CONFIG:=/etc/hull}"
: "${HULL_START:=auto}" "${HULL_HOST_PACKAGES:=false}"
version="$(cat /opt/hull/VERSION)"
changed=false

# Binaries: a directory per version, filled next to its final name and renamed into place.
if [ ! -e "/host/install/$version/.complete" ]; then
  rm -rf "/host/install/$version.new" "/host/install/$version"
  mkdir -p "/host/install/$version.new"
  cp -a /opt/hull/. "/host/install/$version.new/"
  touch "/host/install/$version.new/.complete"
  mv "/host/install/$version.new" "/host/install/$version"
  say "installed hull $version in $HULL_HOST_INSTALL/$version"
fi
if [ "$(readlink /host/install/current 2>/dev/null || true)" != "$version" ]; then
  ln -sfn "$version" /host/install/current.new && mv -T /host/install/current.new /host/install/current
  changed=true
fi
for binary in hulld hullctl; do
  ln -sfn "$HULL_HOST_INSTALL/current/$binary" "/host/bin/$binary.new" && mv -T "/host/bin/$binary.new" "/host/bin/$binary"
done

# Config: the ConfigMap's, when it differs; the node's previous one is kept.
if ! cmp -s /etc/hull-deploy/config.toml /host/config/config.toml; then
  [ -f /host/config/config.toml ] && cp -p /host/config/config.toml /host/config/config.toml.previous
  cp /etc/hull-deploy/config.toml /host/config/config.toml.new && chmod 0644 /host/config/config.toml.new
  mv /host/config/config.toml.new /host/config/config.toml
  say "wrote $HULL_HOST_CONFIG/config.toml"
  changed=true
fi

# The unit, with the node's paths.
sed -e "s|/usr/local/bin/hulld|$HULL_HOST_BIN/hulld|" -e "s|/etc/hull/config.toml|$HULL_HOST_CONFIG/config.toml|" \
  /opt/hull/deploy/hulld.service >/host/systemd/hulld.service.new
if ! cmp -s /host/systemd/hulld.service.new /host/systemd/hulld.service; then
  mv /host/systemd/hulld.service.new /host/systemd/hulld.service
  changed=true
else
  rm /host/systemd/hulld.service.new
fi

if [ "$HULL_HOST_PACKAGES" = true ]; then
  if host sh -c 'command -v runc && command -v conmon && command -v catatonit' >/dev/null 2>&1; then
    :
  elif host sh -c 'command -v apt-get' >/dev/null 2>&1; then
    say "installing runc conmon catatonit containernetworking-plugins with the node's apt-get"
    host sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends runc conmon catatonit containernetworking-plugins'
  else
    say "warning: runc, conmon or catatonit is missing on the node and it has no apt-get: install them, hulld needs them"
  fi
fi

start_hint="$HULL_HOST_BIN/hulld --config $HULL_HOST_CONFIG/config.toml"
case "$HULL_START" in
  none)
    say "not starting hulld (install.startService = none); start it with: $start_hint"
    ;;
  auto|systemd)
    if host test -d /run/systemd/system; then
      host systemctl daemon-reload
      host systemctl enable hulld.service
      # Containers outlive hulld (they run under conmon), so a restart for a new version or config is safe.
      if [ "$changed" = true ]; then host systemctl restart hulld.service; else host systemctl start hulld.service; fi
      say "hulld.service is $(host systemctl is-active hulld.service || true)"
    elif [ "$HULL_START" = systemd ]; then
      say "error: install.startService = systemd, but the node does not run systemd"
      exit 1
    else
      say "the node does not run systemd: start hulld with its init system: $start_hint (docs/node-conditions.md, \"Nodes without systemd\")"
    fi
    ;;
  *)
    say "error: HULL_START must be auto, systemd or none, not \"$HULL_START\""
    exit 1
    ;;
esac
say "hull $version installed; point the kubelet at --container-runtime-endpoint=unix:///run/hull/hull.sock"
