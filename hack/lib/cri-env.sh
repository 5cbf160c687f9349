# A throwaway CRI node for test and benchmark scripts (hack/critest.sh, hack/bench-critest.sh and, through
# hack/lib/bench-common.sh, the side-by-side benchmarks): one temp dir T holding everything, a CNI bridge
# config, hulld and Debian's containerd with their root, state and sockets under T, and a teardown (EXIT trap)
# that leaves nothing behind: pods, processes, mounts, network namespaces, the bridge, iptables rules,
# shared-memory segments and T itself.
#
# The caller sets ROOT (the repository), ENV_NAME (messages), ENV_TAG (temp dir name), BRIDGE and SUBNET
# (its own, so scripts can run side by side) and KEEP (1: keep T), sources this file and calls env_init.
# Then: write_cni_config, write_hosts_toml, start_hulld, start_containerd. probe_server SOCKET may be
# redefined by the caller (it must print something and fail while the server does not answer). A line the
# caller puts in ENV_RESULT is printed last, after the teardown's messages (a suite's count is its last line).

log() { printf '==> %s\n' "$*" >&2; }
die() { printf '%s: error: %s\n' "$ENV_NAME" "$*" >&2; exit 1; }

# shellcheck source=hack/lib/registry.sh
. "$ROOT/hack/lib/registry.sh"

TOOLS_DIR="${HULL_TEST_TOOLS:-/usr/local/lib/hull-test-tools}"
CRICTL="$TOOLS_DIR/cri-tools/v1.36.0/crictl"
CRITEST="${CRITEST:-$TOOLS_DIR/cri-tools/v1.36.0/critest}"
HULLD_DIR="$ROOT/cmd/hulld/bin/Release/net10.0"

# ------------------------------------------------------------------------------- set-up and teardown

env_init() {
  [ "$(id -u)" -eq 0 ] || die "must run as root"
  [ -x "$CRICTL" ] || die "$CRICTL not found (hack/install-deps.sh unpacks ../shared/tools)"
  ip link show "$BRIDGE" >/dev/null 2>&1 && die "bridge $BRIDGE exists already (another run, or a leftover: ip link del $BRIDGE)"
  T="$(mktemp -d "/tmp/hull-$ENV_TAG.XXXXXX")"
  # Searchable by all: the root of a pod with its own user namespace is an unprivileged uid on the host, and runc
  # resolves the bundle's rootfs under hulld's state as that uid.
  chmod 0711 "$T"
  ENV_RESULT=""
  PIDS=()   # every server started (registry, containerd, hulld), stopped in teardown
  SOCKS=()  # the CRI sockets of those servers, whose pods teardown removes first
  NETNS_BEFORE="$(ls /var/run/netns 2>/dev/null | sort || true)"
  IPT_BEFORE="$(iptables_lines)"
  SHM_BEFORE="$(shm_ids | sort)"
  trap teardown EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

stop_pid() { # pid
  local pid="$1" i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
}

# Processes whose command line names T (conmon, shims, hulld), and the processes of
# containers under them (they outlive the servers when pods are left).
leftover_pids() {
  local p
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = "$$" ] && continue
    tr "\\0" " " 2>/dev/null <"$p/cmdline" | grep -qF "$T" && echo "${p#/proc/}"
  done
  return 0
}

umount_under() { # dir
  awk -v t="$1" '$5 == t || index($5, t "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
}

# iptables rules the CNI plugins add for our bridge and subnet (bridge: none with ipMasq=false; portmap: one
# chain per pod, removed by CNI DEL, and shared CNI-HOSTPORT-* chains that stay, as on any node).
iptables_lines() { iptables-save 2>/dev/null | grep -e CNI- -e "$BRIDGE" -e "${SUBNET%/*}" | sort || true; }
ipt_cleanup() {
  local tbl line chain
  for tbl in nat filter; do
    iptables-save -t "$tbl" 2>/dev/null | grep -e "$BRIDGE" -e "${SUBNET%/*}" | grep '^-A' | while read -r line; do
      iptables -t "$tbl" ${line/-A/-D} 2>/dev/null || true
    done
  done
  # portmap's shared chains, only when this run created them and nobody else has rules in them now.
  for chain in CNI-HOSTPORT-DNAT CNI-HOSTPORT-SETMARK CNI-HOSTPORT-MASQ; do
    grep -q "^:$chain " <<<"$IPT_BEFORE" && continue
    iptables -t nat -S "$chain" >/dev/null 2>&1 || continue
    [ "$(iptables -t nat -S "$chain" | grep -c '^-A')" -eq 0 ] || continue
    iptables-save -t nat | grep "^-A .* -j $chain\b" | while read -r line; do
      iptables -t nat ${line/-A/-D} 2>/dev/null || true
    done
    iptables -t nat -X "$chain" 2>/dev/null || true
  done
}

# Shared-memory segment ids. critest's host-IPC specs create some with ipcmk and never remove them.
shm_ids() { ipcs -m -p 2>/dev/null | awk '$1 ~ /^[0-9]+$/ { print $1 }'; }
shm_cleanup() {
  local id cpid nattch bytes
  for id in $(comm -13 <(echo "$SHM_BEFORE") <(shm_ids | sort)); do
    cpid="$(ipcs -m -p 2>/dev/null | awk -v id="$id" '$1 == id { print $3 }')"
    nattch="$(ipcs -m -i "$id" 2>/dev/null | grep -o 'nattch=[0-9]*' | cut -d= -f2)"
    bytes="$(ipcs -m -i "$id" 2>/dev/null | grep -o 'bytes=[0-9]*' | cut -d= -f2)"
    # Only critest's orphans: its size (ipcmk -M 1048576), nobody attached, and the process that made it gone.
    [ "${bytes:-0}" = 1048576 ] && [ "${nattch:-1}" = 0 ] && ! kill -0 "${cpid:-1}" 2>/dev/null || continue
    log "removing shared-memory segment $id (made during this run by pid $cpid)"
    ipcrm -m "$id" 2>/dev/null || true
  done
}

netns_in_use() { # pinned netns path: true when some process is in it
  local ino p
  ino="$(stat -L -c %i "$1" 2>/dev/null)" || return 1
  for p in /proc/[0-9]*/ns/net; do
    [ "$(stat -L -c %i "$p" 2>/dev/null)" = "$ino" ] && return 0
  done
  return 1
}

teardown() {
  local rc=$? p n kids s
  set +e
  trap - INT TERM
  for s in "${SOCKS[@]}"; do # let each server undo its pods (CNI DEL, mounts, namespaces) while it runs
    [ -S "$s" ] && timeout 120 "$CRICTL" --runtime-endpoint "unix://$s" --timeout 60s rmp --all --force >/dev/null 2>&1
  done
  for p in "${PIDS[@]}"; do stop_pid "$p"; done
  for p in $(leftover_pids); do
    kids="$(cat /proc/"$p"/task/*/children 2>/dev/null)"
    log "leftover process $p: $(tr '\0' ' ' </proc/$p/cmdline | cut -c1-120)"
    kill -KILL "$p" $kids 2>/dev/null
  done
  sleep 0.2
  umount_under "$T"
  # containerd 1.6 pins pod network namespaces in /var/run/netns (hulld pins under its state dir, in T). One
  # made during the run that no process is in any more is ours; one a process is in belongs to someone else.
  for n in $(comm -13 <(echo "$NETNS_BEFORE") <(ls /var/run/netns 2>/dev/null | sort)); do
    netns_in_use "/var/run/netns/$n" && continue
    log "leftover netns $n"; umount "/var/run/netns/$n" 2>/dev/null; rm -f "/var/run/netns/$n"
  done
  ip link del "$BRIDGE" 2>/dev/null
  ipt_cleanup
  shm_cleanup
  n="$(comm -13 <(echo "$IPT_BEFORE") <(iptables_lines) | wc -l)"
  [ "$n" -eq 0 ] || log "warning: iptables has $n CNI/$BRIDGE lines more than before: $(comm -13 <(echo "$IPT_BEFORE") <(iptables_lines) | head -3 | tr '\n' ' ')"
  [ "$(type -t env_on_exit)" = function ] && env_on_exit "$rc"
  if [ "$KEEP" -eq 1 ]; then
    log "logs kept in $T (rm -rf $T)"
  else
    rm -rf "$T"
  fi
  [ -z "$ENV_RESULT" ] || echo "$ENV_RESULT"
  exit "$rc"
}

# ------------------------------------------------------------------------------------ configuration

# write_cni_config [--portmap]: one bridge network for every server of the run, in $T/cni/net.d.
# --portmap adds the portmap plugin (hostPort mappings, reachable from the node on 127.0.0.1 too).
write_cni_config() {
  local portmap=""
  [ "${1:-}" = --portmap ] && portmap=',
    { "type": "portmap", "capabilities": { "portMappings": true }, "snat": true }'
  mkdir -p "$T/cni/net.d" "$T/cni/ipam"
  cat >"$T/cni/net.d/10-hull$ENV_TAG.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "hull$ENV_TAG",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$T/cni/ipam",
        "ranges": [[{ "subnet": "$SUBNET" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    }$portmap
  ]
}
EOF
}

# write_hosts_toml REGISTRY NAME...: pulls from registry NAME go to the plain-HTTP REGISTRY, for both servers.
write_hosts_toml() {
  local reg="$1" name
  shift
  for name in "$@"; do
    mkdir -p "$T/certs.d/$name"
    cat >"$T/certs.d/$name/hosts.toml" <<EOF
server = "http://$reg"
[host."http://$reg"]
  capabilities = ["pull", "resolve"]
EOF
  done
}

# critest's specs listen on fixed host ports (12000-12003): one critest run at a time on the host, whichever
# checkout it comes from. lock_critest_ports waits for the others; the lock is the critest binary itself, which
# every run uses and which stays, so no lock file is left behind.
lock_critest_ports() {
  exec 8<"$CRITEST" # servers and critest are started with 8<&-, so only this shell holds it
  flock -n 8 || { log "another critest run holds the host ports 12000-12003; waiting for it"; flock 8; }
}

# ------------------------------------------------------------------------------------------- servers

probe_server() { "$CRICTL" --runtime-endpoint "unix://$1" --timeout 2s version; }

wait_ready() { # name pid socket
  local name="$1" pid="$2" sock="$3" i
  for i in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$T/$name.log" >&2; die "$name exited during start-up"; }
    if [ -S "$sock" ] && probe_server "$sock" >"$T/$name.probe" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  tail -n 20 "$T/$name.log" >&2
  die "$name did not answer Version on $sock within 30 s"
}

# start_containerd NAME: Debian's containerd 1.6 (CRI plugin) -> SRV_PID, SRV_SOCK. Its sandbox (pause) image
# is $SANDBOX_IMAGE.
start_containerd() {
  local d="$T/$1"
  mkdir -p "$d/root" "$d/state" "$d/opt"
  SRV_SOCK="$d/containerd.sock"
  cat >"$d/config.toml" <<EOF
version = 2
root = "$d/root"
state = "$d/state"
oom_score = 0
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp",
]
[grpc]
  address = "$SRV_SOCK"
[ttrpc]
  address = "$d/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    sandbox_image = "$SANDBOX_IMAGE"
    restrict_oom_score_adj = true
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "$T/cni/net.d"
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = "$T/certs.d"
  [plugins."io.containerd.internal.v1.opt"]
    path = "$d/opt"
EOF
  containerd --config "$d/config.toml" >"$T/$1.log" 2>&1 8<&- &
  SRV_PID=$!
  PIDS+=("$SRV_PID")
  SOCKS+=("$SRV_SOCK")
  wait_ready "$1" "$SRV_PID" "$SRV_SOCK"
}

# start_hulld NAME: the repository's Release build of hulld -> SRV_PID, SRV_SOCK. Its NRI socket and
# plugin directories are under T too, so it meets no other hulld's plugins.
# HULLD_EXTRA_CONFIG, when set, is appended to its config.toml (e.g. hack/critest.sh --microvm's handler).
start_hulld() {
  local d="$T/$1"
  mkdir -p "$d/root" "$d/state" "$d/nri/plugins" "$d/nri/conf.d"
  SRV_SOCK="$d/hull.sock"
  [ -f "$HULLD_DIR/hulld.dll" ] || die "$HULLD_DIR/hulld.dll not found (dotnet build cmd/hulld -c Release)"
  cat >"$d/config.toml" <<EOF
version = 3
[plugins.'io.containerd.cri.v1.runtime'.cni]
  conf_dir = "$T/cni/net.d"
  bin_dirs = ["/usr/lib/cni"]
[plugins.'io.containerd.cri.v1.images'.registry]
  config_path = "$T/certs.d"
[plugins.'io.containerd.nri.v1.nri']
  socket_path = "$d/nri/nri.sock"
  plugin_path = "$d/nri/plugins"
  plugin_config_path = "$d/nri/conf.d"
${HULLD_EXTRA_CONFIG:-}
EOF
  dotnet "$HULLD_DIR/hulld.dll" --config "$d/config.toml" --address "$SRV_SOCK" --root "$d/root" --state "$d/state" \
    >"$T/$1.log" 2>&1 8<&- &
  SRV_PID=$!
  PIDS+=("$SRV_PID")
  SOCKS+=("$SRV_SOCK")
  wait_ready "$1" "$SRV_PID" "$SRV_SOCK"
}

# -------------------------------------------------------------------------------------------- critest

# critest_run SOCKET NAME [critest flags...]: runs $CRITEST against the server on SOCKET, its output in
# $T/NAME.log and its reports in $T/NAME.json (Ginkgo JSON) and $T/NAME.xml (JUnit); sets CRITEST_SECONDS
# (wall time) and returns critest's exit code. The host paths, log dirs and seccomp profiles critest makes
# (os.MkdirTemp) go under $T/tmp, where the teardown finds what a failed spec leaves.
critest_run() {
  local sock="$1" name="$2" start rc
  shift 2
  mkdir -p "$T/tmp"
  start="$(date +%s.%N)"
  TMPDIR="$T/tmp" timeout 50m "$CRITEST" -runtime-endpoint "unix://$sock" -image-endpoint "unix://$sock" \
    -ginkgo.no-color -ginkgo.timeout=45m -ginkgo.json-report="$T/$name.json" -ginkgo.junit-report="$T/$name.xml" \
    "$@" >"$T/$name.log" 2>&1 8<&- && rc=0 || rc=$?
  CRITEST_SECONDS="$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')"
  return "$rc"
}
