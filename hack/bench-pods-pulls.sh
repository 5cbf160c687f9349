#!/usr/bin/env bash
# Pod sandbox and image pull benchmarks: hulld against containerd 1.6's CRI
# plugin (Debian `containerd`), same run, same client (bench/cri-bench:
# grpc-go 1.33, protowire-encoded CRI requests).
#
# A. Pods: RunPodSandbox, then StopPodSandbox + RemovePodSandbox latency
#    (p50/p99) over COUNT pods, sequential and PARALLEL-way parallel, with the
#    kubelet's default PID namespace (containerd starts its pause container,
#    hulld no process) and with a shared PID namespace (hulld starts catatonit
#    as the infra process). Same CNI bridge config for both.
# B. Image pull: cold PullImage (fresh root per run, for both servers) of the
#    `big` test image (busybox + 4 random layers, HULL_BIG_IMAGE_MB, default
#    200) from a docker-registry on 127.0.0.1, plus `tar -xzf` of the same
#    layer blobs as the practical unpack limit.
#
# usage: hack/bench-pods-pulls.sh [options]
#   --no-build            don't build hulld (use cmd/hulld/bin/Release/net10.0 as it is)
#   --count N             pods per run (default 50)
#   --parallel "LIST"     concurrent workers (default "1 10")
#   --pid-modes "LIST"    container and/or pod (default "container pod")
#   --rounds N            pod runs per server and setting, alternating (default 3)
#   --pull-rounds N       cold pulls per server, alternating (default 3)
#   --skip-pods / --skip-pulls
#   --images DIR          test image cache (default /var/tmp/hull-bench-images)
#   --results FILE        raw JSON lines (default bench/cri-bench/results/<UTC time>.jsonl)
#   --write-docs          insert the results into docs/benchmarks.md
#                         ("Pod sandboxes and image pulls" section)
#   --keep                keep the temp dir (logs)
# Runs as root. Needs golang-go, golang-google-grpc-dev, golang-google-protobuf-dev,
# containerd, runc, conmon, catatonit, containernetworking-plugins (/usr/lib/cni),
# docker-registry, umoci, skopeo, busybox-static, jq and the .NET SDK.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD=1 COUNT=50 PARALLEL="1 10" PID_MODES="container pod" ROUNDS=3 PULL_ROUNDS=3
DO_PODS=1 DO_PULLS=1 IMAGES=/var/tmp/hull-bench-images RESULTS="" WRITE_DOCS=0 KEEP=0
ARGS=("$@")
need() { [ $# -ge 2 ] || { echo "bench-pods-pulls: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --count) need "$@"; COUNT="$2"; shift ;;
    --parallel) need "$@"; PARALLEL="$2"; shift ;;
    --pid-modes) need "$@"; PID_MODES="$2"; shift ;;
    --rounds) need "$@"; ROUNDS="$2"; shift ;;
    --pull-rounds) need "$@"; PULL_ROUNDS="$2"; shift ;;
    --skip-pods) DO_PODS=0 ;;
    --skip-pulls) DO_PULLS=0 ;;
    --images) need "$@"; IMAGES="$2"; shift ;;
    --results) need "$@"; RESULTS="$2"; shift ;;
    --write-docs) WRITE_DOCS=1 ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,31p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-pods-pulls: unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench-pods-pulls: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"
for t in containerd containerd-shim-runc-v2 runc go dotnet docker-registry umoci skopeo catatonit jq tar ip; do
  command -v "$t" >/dev/null || die "$t not found (hack/install-deps.sh)"
done
[ -x /usr/lib/cni/bridge ] || die "/usr/lib/cni/bridge not found (apt-get install containernetworking-plugins)"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

BRIDGE=hullbench0 SUBNET=10.97.0.0/16
ip link show "$BRIDGE" >/dev/null 2>&1 && die "bridge $BRIDGE exists already (another run, or a leftover: ip link del $BRIDGE)"

# ---------------------------------------------------------------- build
DRIVER="$ROOT/bench/cri-bench/bin/cri-bench"
log "building the driver bench/cri-bench ($(go version | cut -d' ' -f3), GOPATH mode)"
(
  cd "$ROOT/bench/cri-bench"
  export GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS='' GOPROXY=off
  export GOCACHE="${HULL_GOCACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/hull-go-build}"
  mkdir -p "$GOCACHE" bin
  go build -o bin/cri-bench .
)
HULLD_DIR="$ROOT/cmd/hulld/bin/Release/net10.0"
if [ "$BUILD" -eq 1 ]; then
  log "building hulld (Release)"
  dotnet build "$ROOT/cmd/hulld" -c Release -nologo -v quiet >&2
fi
[ -f "$HULLD_DIR/hulld.dll" ] || die "$HULLD_DIR/hulld.dll not found"
log "building the test images (with big) into $IMAGES"
"$ROOT/hack/build-test-images.sh" --big "$IMAGES" >&2

# ---------------------------------------------------------------- temp dirs + teardown
T="$(mktemp -d /tmp/hull-bench-pods.XXXXXX)"
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

# Processes whose command line names the temp dir: shims, conmon, catatonit
# infra processes and pause containers outlive the servers when pods are left.
leftover_pids() {
  local p
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

teardown() {
  local rc=$? p n
  set +e
  for p in "${PIDS[@]}"; do stop_pid "$p"; done
  for p in $(leftover_pids); do log "leftover process $p: $(tr '\0' ' ' </proc/$p/cmdline | cut -c1-120)"; kill -KILL "$p" 2>/dev/null; done
  umount_under "$T"
  # Network namespaces made during the run (containerd 1.6 keeps them in /var/run/netns).
  for n in $(comm -13 <(echo "$NETNS_BEFORE") <(ls /var/run/netns 2>/dev/null | sort)); do
    log "leftover netns $n"; umount "/var/run/netns/$n" 2>/dev/null; rm -f "/var/run/netns/$n"
  done
  ip link del "$BRIDGE" 2>/dev/null
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
  delete:
    enabled: true
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

# The pause image for containerd: one layer, /pause = catatonit (static), run as `catatonit -P`.
log "building the pause image (catatonit -P) and pushing it and big to $REG"
PL="$T/pause-build"
mkdir -p "$PL/rootfs"
cp /usr/bin/catatonit "$PL/rootfs/pause"
tar -C "$PL/rootfs" --numeric-owner --owner=0 --group=0 --mtime=@0 -cf "$PL/layer.tar" pause
umoci init --layout "$PL/oci" >/dev/null
umoci new --image "$PL/oci:pause" >/dev/null
umoci raw add-layer --image "$PL/oci:pause" "$PL/layer.tar" >/dev/null
umoci config --image "$PL/oci:pause" --config.entrypoint /pause --config.entrypoint -P --config.user 65535:65535 >/dev/null
PAUSE="$REG/hull-bench/pause:3.9"
BIG="$REG/hull-bench/big:latest"
skopeo copy -q --dest-tls-verify=false "oci:$PL/oci:pause" "docker://$PAUSE" >&2
skopeo copy -q --dest-tls-verify=false --preserve-digests "oci:$IMAGES/big:latest" "docker://$BIG" >&2

mkdir -p "$T/certs.d/$REG"
cat >"$T/certs.d/$REG/hosts.toml" <<EOF
server = "http://$REG"
[host."http://$REG"]
  capabilities = ["pull", "resolve"]
EOF

# ---------------------------------------------------------------- CNI (same config for both)
mkdir -p "$T/cni/net.d" "$T/cni/ipam"
cat >"$T/cni/net.d/10-hullbench.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "hullbench",
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

# start_containerd NAME -> sets SRV_PID, SRV_SOCK
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

start_hulld() {
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

stop_server() { # pid dir
  stop_pid "$1"
  umount_under "$2"
  rm -rf "$2"
}

if [ -z "$RESULTS" ]; then
  mkdir -p "$ROOT/bench/cri-bench/results"
  RESULTS="$ROOT/bench/cri-bench/results/$(date -u +%Y%m%dT%H%M%SZ).jsonl"
fi
: >"$RESULTS"

check_clean() { # label: no pod may be left behind (processes, netns) after a run
  local n
  n="$(ip -o link show master "$BRIDGE" 2>/dev/null | wc -l)"
  [ "$n" -eq 0 ] || log "warning: $1: $n veths still on $BRIDGE"
}

# ---------------------------------------------------------------- A. pods
if [ "$DO_PODS" -eq 1 ]; then
  start_hulld hulld; H_PID=$SRV_PID H_SOCK=$SRV_SOCK
  start_containerd containerd; C_PID=$SRV_PID C_SOCK=$SRV_SOCK
  log "hulld $(cat "$T/hulld.probe"); containerd $(cat "$T/containerd.probe")"
  log "pre-pulling the pause image into containerd"
  "$DRIVER" pull --socket "$C_SOCK" --label containerd --image "$PAUSE" >/dev/null
  mkdir -p "$T/podlogs"
  for s in hulld containerd; do # warm-up (JIT, caches, first CNI ADD creating the bridge): not recorded
    if [ $s = hulld ]; then sock=$H_SOCK pid=$H_PID; else sock=$C_SOCK pid=$C_PID; fi
    for m in $PID_MODES; do
      "$DRIVER" pods --socket "$sock" --label "$s" --count 3 --parallel 1 --pid "$m" --prefix "warm-$s-$m" \
        --log-dir "$T/podlogs" >/dev/null || die "warm-up pods on $s failed: see $T/$s.log"
    done
  done
  log "pods: $COUNT per run x parallel {$PARALLEL} x pid {$PID_MODES} x $ROUNDS rounds x {hulld, containerd}; raw: ${RESULTS#"$ROOT"/}"
  for m in $PID_MODES; do
    for par in $PARALLEL; do
      for r in $(seq 1 "$ROUNDS"); do
        for s in hulld containerd; do
          if [ $s = hulld ]; then sock=$H_SOCK pid=$H_PID; else sock=$C_SOCK pid=$C_PID; fi
          kill -0 "$pid" 2>/dev/null || die "$s died; see $T/$s.log"
          out="$("$DRIVER" pods --socket "$sock" --server-pid "$pid" --label "$s" --count "$COUNT" --parallel "$par" \
            --pid "$m" --prefix "r$r-$s-$m-p$par" --log-dir "$T/podlogs")" || log "$s pid=$m p=$par: errors: ${out:0:300}"
          printf '%s\n' "$out" >>"$RESULTS"
          log "$s pid=$m parallel=$par round $r: $(jq -r '"run p50 \(.run.p50_ms) p99 \(.run.p99_ms) ms; stop+remove p50 \(.teardown.p50_ms) p99 \(.teardown.p99_ms) ms"' <<<"$out" 2>/dev/null)"
          check_clean "$s"
        done
      done
    done
  done
  stop_pid "$H_PID"; stop_pid "$C_PID"
  sleep 0.5
  for p in $(leftover_pids); do
    [[ " ${PIDS[*]} " == *" $p "* ]] && continue # the registry, still needed for the pulls
    log "warning: process $p left after the pod runs: $(tr '\0' ' ' </proc/$p/cmdline | cut -c1-120)"
  done
fi

# ---------------------------------------------------------------- B. pulls
if [ "$DO_PULLS" -eq 1 ]; then
  MANIFEST="$IMAGES/big/blobs/$(jq -r '.manifests[0].digest' "$IMAGES/big/index.json" | tr : /)"
  mapfile -t LAYERS < <(jq -r '.layers[].digest' "$MANIFEST" | tr : /)
  comp=0
  for l in "${LAYERS[@]}"; do comp=$((comp + $(stat -c %s "$IMAGES/big/blobs/$l"))); done
  # Warm the page cache with the registry's blobs, so every pull reads them from memory.
  find "$T/registry/storage" -type f -exec cat {} + >/dev/null
  # tar -xzf of the layer blobs, one after another (the practical unpack limit).
  tar_run() {
    local d="$T/tar-x" b0 b1 t0 t1 l
    rm -rf "$d"; mkdir -p "$d"
    b0="$(awk 'NR==1 { print $2+$3+$4+$7+$8+$9 }' /proc/stat)"
    t0="$(date +%s.%N)"
    for l in "${LAYERS[@]}"; do tar -xzf "$IMAGES/big/blobs/$l" -C "$d"; done
    sync -f "$d" 2>/dev/null || true
    t1="$(date +%s.%N)"
    b1="$(awk 'NR==1 { print $2+$3+$4+$7+$8+$9 }' /proc/stat)"
    UNPACKED="$(du -sb "$d" | cut -f1)"
    rm -rf "$d"
    printf '{"kind":"tar","label":"tar","seconds":%s,"machine_cpu_s":%s}\n' \
      "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')" "$(awk -v a="$b0" -v b="$b1" 'BEGIN { printf "%.2f", (b - a) / 100 }')" >>"$RESULTS"
  }
  tar_run # warm-up (not recorded): sets UNPACKED
  sed -i '$d' "$RESULTS"
  printf '{"kind":"image","compressed_bytes":%s,"unpacked_bytes":%s,"layers":%s}\n' "$comp" "$UNPACKED" "${#LAYERS[@]}" >>"$RESULTS"
  log "pulls: $BIG ($((comp >> 20)) MiB compressed, $((UNPACKED >> 20)) MiB unpacked, ${#LAYERS[@]} layers), $PULL_ROUNDS cold rounds"
  for r in $(seq 1 "$PULL_ROUNDS"); do
    for s in hulld containerd; do
      "start_$s" "pull-$s-$r"
      out="$("$DRIVER" pull --socket "$SRV_SOCK" --server-pid "$SRV_PID" --label "$s" --image "$BIG")" || die "$s pull failed: $out; see $T/pull-$s-$r.log"
      # Sanity check that the pull unpacked: the root holds the content and the unpacked snapshot.
      out="$(jq -c --argjson b "$(du -sb "$T/pull-$s-$r/root" | cut -f1)" '. + {root_bytes: $b}' <<<"$out")"
      printf '%s\n' "$out" >>"$RESULTS"
      log "$s pull round $r: $(jq -r .seconds <<<"$out") s, root $(( $(jq -r .root_bytes <<<"$out") >> 20 )) MiB"
      stop_server "$SRV_PID" "$T/pull-$s-$r"
    done
    tar_run
    log "tar -xzf round $r: $(tail -n 1 "$RESULTS" | jq -r .seconds) s"
  done
fi

# ---------------------------------------------------------------- report
mem_gib="$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)"
cpu_model="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
probe="$(cat "$T/hulld.probe" 2>/dev/null || cat "$T"/pull-hulld-*.probe 2>/dev/null | head -n 1)"
hulld_ver="$(jq -r .runtime_version <<<"$probe" 2>/dev/null || echo unknown)"
commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit")"
dotnet_rt="$(dotnet --list-runtimes 2>/dev/null | awk '/Microsoft.NETCore.App/ { v = $2 } END { print v }')"
grpc_go="$(dpkg-query -W -f='${Version}' golang-google-grpc-dev 2>/dev/null || echo unknown)"
ctrd_pkg="$(dpkg-query -W -f='${Version}' containerd 2>/dev/null || containerd --version | awk '{print $3}')"
cat >"$T/header.md" <<EOF
### $(date -u '+%Y-%m-%d %H:%M UTC'): pods ($COUNT per run) and cold pulls, $(nproc) CPUs

- Machine: $(nproc) × ${cpu_model:-unknown CPU}, ${mem_gib} GiB, Linux $(uname -r), cgroup $(stat -fc %T /sys/fs/cgroup | sed 's/cgroup2fs/v2/; s/tmpfs/v1/'), $(findmnt -no FSTYPE -T /tmp) under /tmp.
- hulld ${hulld_ver} (commit ${commit}, Release, .NET ${dotnet_rt}); containerd ${ctrd_pkg} (Debian, built-in CRI plugin,
  runc $(runc --version | awk 'NR==1 {print $3}'), pause image = catatonit -P); CNI plugins $(dpkg-query -W -f='${Version}' containernetworking-plugins 2>/dev/null || echo '?') (bridge + host-local);
  driver bench/cri-bench with $(go version | cut -d' ' -f3), grpc-go ${grpc_go} (Debian).
- Pods: ${ROUNDS} rounds per setting alternating hulld / containerd; pulls: ${PULL_ROUNDS} cold rounds alternating hulld / containerd / tar.
- Command: \`hack/bench-pods-pulls.sh${ARGS[*]:+ ${ARGS[*]}}\`
EOF
echo
cat "$T/header.md"
echo
if [ "$WRITE_DOCS" -eq 1 ]; then
  "$DRIVER" report --docs "$ROOT/docs/benchmarks.md" --header "$T/header.md" "$RESULTS"
else
  "$DRIVER" report "$RESULTS"
fi
