# Shared set-up of the side-by-side CRI benchmarks (hack/bench-vs-containerd.sh,
# hack/bench-list-containers.sh): checks and installs prerequisites, creates the temp dir and its teardown
# trap, builds the driver, hulld and the test images, starts a private registry with the pause and busybox
# images, writes one hosts.toml and one CNI config for both servers, and defines start_containerd/start_hulld.
# The caller sets ROOT, BENCH_NAME (for messages), BENCH_TAG (temp dir and CNI network suffix), BRIDGE and
# SUBNET (its own, so scripts can run side by side) and the option variables the build steps read, then
# sources this file.
log() { printf '==> %s\n' "$*" >&2; }
die() { printf '%s: error: %s\n' "$BENCH_NAME" "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"
# One command from a fresh machine: the project's own dependencies first (idempotent, quick when present).
bash "$ROOT/hack/install-deps.sh" --no-build >&2
if ! command -v containerd >/dev/null || ! command -v containerd-shim-runc-v2 >/dev/null; then
  log "installing Debian containerd (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q containerd >&2 ||
    { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q containerd >&2; } ||
    die "apt-get install containerd failed"
fi
for t in containerd containerd-shim-runc-v2 runc conmon go dotnet docker-registry umoci skopeo catatonit jq tar ip iptables-save curl python3; do
  command -v "$t" >/dev/null || die "$t not found (hack/install-deps.sh)"
done
[ -x /usr/lib/cni/bridge ] || die "/usr/lib/cni/bridge not found (apt-get install containernetworking-plugins)"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

ip link show "$BRIDGE" >/dev/null 2>&1 && die "bridge $BRIDGE exists already (another run, or a leftover: ip link del $BRIDGE)"

# ---------------------------------------------------------------- temp dirs + teardown
T="$(mktemp -d /tmp/hull-bench-$BENCH_TAG.XXXXXX)"
PIDS=()           # every server we started (registry, containerd, hulld)
NETNS_BEFORE="$(ls /var/run/netns 2>/dev/null | sort || true)"
IPT_BEFORE="$(iptables-save 2>/dev/null | grep -c -e CNI- -e "$BRIDGE" || true)"

stop_pid() { # pid
  local pid="$1" i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
}

# Processes whose command line names the temp dir (shims, conmon), and the
# processes of containers under them (they outlive the servers when pods are left).
leftover_pids() {
  local p pp
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = "$$" ] && continue
    tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF "$T" && echo "${p#/proc/}"
  done
  return 0
}

umount_under() { # dir
  awk -v t="$1" '$5 == t || index($5, t "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
}

# iptables rules the CNI bridge plugin may have added for our subnet (none with
# ipMasq=false, but the teardown checks).
ipt_cleanup() {
  local tbl line
  for tbl in nat filter; do
    iptables-save -t "$tbl" 2>/dev/null | grep -e "$BRIDGE" -e "${SUBNET%/*}" | grep '^-A' | while read -r line; do
      iptables -t "$tbl" ${line/-A/-D} 2>/dev/null || true
    done
  done
}

teardown() {
  local rc=$? p n kids
  set +e
  for p in "${PIDS[@]}"; do stop_pid "$p"; done
  for p in $(leftover_pids); do
    kids="$(cat /proc/"$p"/task/*/children 2>/dev/null)"
    log "leftover process $p: $(tr '\0' ' ' </proc/$p/cmdline | cut -c1-120)"
    kill -KILL "$p" $kids 2>/dev/null
  done
  sleep 0.2
  umount_under "$T"
  for n in $(comm -13 <(echo "$NETNS_BEFORE") <(ls /var/run/netns 2>/dev/null | sort)); do
    log "leftover netns $n"; umount "/var/run/netns/$n" 2>/dev/null; rm -f "/var/run/netns/$n"
  done
  ip link del "$BRIDGE" 2>/dev/null
  ipt_cleanup
  n="$(iptables-save 2>/dev/null | grep -c -e CNI- -e "$BRIDGE")"
  [ "${n:-0}" = "${IPT_BEFORE:-0}" ] || log "warning: iptables has $n CNI/$BRIDGE lines (before: $IPT_BEFORE)"
  if [ "$KEEP" -eq 1 ] || [ "$rc" -ne 0 ]; then
    log "logs kept in $T (rm -rf $T)"
    [ "$rc" -eq 0 ] || tail -n 15 "$T"/*.log >&2 2>/dev/null
  else
    rm -rf "$T"
  fi
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- build
DRIVER="$T/cri-bench"
log "building the driver bench/cri-bench ($(go version | cut -d' ' -f3), GOPATH mode)"
(
  cd "$ROOT/bench/cri-bench"
  export GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS='' GOPROXY=off
  export GOCACHE="${HULL_GOCACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/hull-go-build}"
  mkdir -p "$GOCACHE"
  go build -o "$DRIVER" .
)
HULLD_DIR="$ROOT/cmd/hulld/bin/Release/net10.0"
if [ "$BUILD" -eq 1 ]; then
  log "building hulld (Release)"
  dotnet build "$ROOT/cmd/hulld" -c Release -nologo -v quiet >&2
fi
[ -f "$HULLD_DIR/hulld.dll" ] || die "$HULLD_DIR/hulld.dll not found"
log "building the test images into $IMAGES"
"$ROOT/hack/build-test-images.sh" "$IMAGES" >&2

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ---------------------------------------------------------------- registry + images
REG_PORT="$(free_port)" REG="127.0.0.1:$REG_PORT"
mkdir -p "$T/registry/storage"
cat >"$T/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
  formatter: text
storage:
  filesystem:
    rootdirectory: $T/registry/storage
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $REG
  secret: $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
EOF
docker-registry serve "$T/registry/config.yml" >"$T/registry.log" 2>&1 &
PIDS+=($!)
for i in $(seq 1 100); do curl -fsS "http://$REG/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "http://$REG/v2/" >/dev/null || die "registry did not start"

# containerd's pause image: one layer, /pause = catatonit (static), run as `catatonit -P`.
log "building the pause image (catatonit -P) and pushing it and busybox to $REG"
PL="$T/pause-build"
mkdir -p "$PL/rootfs"
cp /usr/bin/catatonit "$PL/rootfs/pause"
tar -C "$PL/rootfs" --numeric-owner --owner=0 --group=0 --mtime=@0 -cf "$PL/layer.tar" pause
umoci init --layout "$PL/oci" >/dev/null
umoci new --image "$PL/oci:pause" >/dev/null
umoci raw add-layer --image "$PL/oci:pause" "$PL/layer.tar" >/dev/null
umoci config --image "$PL/oci:pause" --config.entrypoint /pause --config.entrypoint -P --config.user 65535:65535 >/dev/null
PAUSE="$REG/hull-bench/pause:3.9"
IMAGE="$REG/hull-bench/busybox:latest"
skopeo copy -q --dest-tls-verify=false "oci:$PL/oci:pause" "docker://$PAUSE" >&2
skopeo copy -q --dest-tls-verify=false --preserve-digests "oci:$IMAGES/busybox:latest" "docker://$IMAGE" >&2

mkdir -p "$T/certs.d/$REG"
cat >"$T/certs.d/$REG/hosts.toml" <<EOF
server = "http://$REG"
[host."http://$REG"]
  capabilities = ["pull", "resolve"]
EOF

# ---------------------------------------------------------------- CNI (same config for both)
mkdir -p "$T/cni/net.d" "$T/cni/ipam"
cat >"$T/cni/net.d/10-hull$BENCH_TAG.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "hull$BENCH_TAG",
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
    }
  ]
}
EOF

# ---------------------------------------------------------------- servers
wait_ready() { # name pid socket
  local name="$1" pid="$2" sock="$3" i
  for i in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$T/$name.log" >&2; die "$name exited during start-up"; }
    if [ -S "$sock" ] && "$DRIVER" probe --socket "$sock" >"$T/$name.probe" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  tail -n 20 "$T/$name.log" >&2
  die "$name did not answer Version on $sock within 30 s"
}

start_containerd() { # NAME -> SRV_PID, SRV_SOCK
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
    sandbox_image = "$PAUSE"
    restrict_oom_score_adj = true
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "$T/cni/net.d"
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = "$T/certs.d"
  [plugins."io.containerd.internal.v1.opt"]
    path = "$d/opt"
EOF
  containerd --config "$d/config.toml" >"$T/$1.log" 2>&1 &
  SRV_PID=$!
  PIDS+=("$SRV_PID")
  wait_ready "$1" "$SRV_PID" "$SRV_SOCK"
}

start_hulld() { # NAME -> SRV_PID, SRV_SOCK
  local d="$T/$1"
  mkdir -p "$d/root" "$d/state"
  SRV_SOCK="$d/hull.sock"
  cat >"$d/config.toml" <<EOF
version = 3
[plugins.'io.containerd.cri.v1.runtime'.cni]
  conf_dir = "$T/cni/net.d"
  bin_dirs = ["/usr/lib/cni"]
[plugins.'io.containerd.cri.v1.images'.registry]
  config_path = "$T/certs.d"
EOF
  dotnet "$HULLD_DIR/hulld.dll" --config "$d/config.toml" --address "$SRV_SOCK" --root "$d/root" --state "$d/state" \
    >"$T/$1.log" 2>&1 &
  SRV_PID=$!
  PIDS+=("$SRV_PID")
  wait_ready "$1" "$SRV_PID" "$SRV_SOCK"
}
