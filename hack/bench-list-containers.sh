#!/usr/bin/env bash
# ListContainers / ListPodSandbox latency with 300 running containers, hulld
# against containerd 1.6's CRI plugin (Debian `containerd`), same run, same
# machine, same client (issue 8: "ListContainers latency with 300 containers").
#
# The driver (`bench/cri-bench list`, bench/cri-bench/listing.go) creates PODS
# pods with CONTAINERS containers each (busybox from a private registry,
# `sleep 3600`, 10 pods at a time), checks that all run, reads the RSS of the
# daemon and of its per-pod processes, then times CALLS sequential calls each
# of ListContainers (no filter), ListContainers (pod-id filter),
# ListContainers (state RUNNING filter) and ListPodSandbox, and tears
# everything down (StopPodSandbox + RemovePodSandbox), checking that both
# lists are empty afterwards. Servers alternate per round (hulld, containerd,
# hulld, ...). Setup and teardown are copied from hack/bench-vs-containerd.sh
# (own bridge hullls0, 10.96.0.0/16, so both can run at once).
#
# usage: hack/bench-list-containers.sh [options]
#   --no-build            don't build hulld (use cmd/hulld/bin/Release/net10.0 as it is)
#   --pods N              pods per run (default 30)
#   --containers N        containers per pod (default 10)
#   --calls N             timed calls per List op (default 200)
#   --rounds N            runs per server, alternating (default 2: A B A B)
#   --images DIR          test image cache (default /var/tmp/hull-bench-images)
#   --results FILE        raw JSON lines (default bench/cri-bench/results/list-<UTC time>.jsonl)
#   --write-docs          insert the table into docs/benchmarks.md
#                         ("ListContainers with 300 containers" section, newest first)
#   --keep                keep the temp dir (logs)
# Runs as root; same dependencies as hack/bench-vs-containerd.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD=1 PODS=30 PER_POD=10 CALLS=200 ROUNDS=2
IMAGES=/var/tmp/hull-bench-images RESULTS="" WRITE_DOCS=0 KEEP=0
ARGS=("$@")
need() { [ $# -ge 2 ] || { echo "bench-list-containers: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --pods) need "$@"; PODS="$2"; shift ;;
    --containers) need "$@"; PER_POD="$2"; shift ;;
    --calls) need "$@"; CALLS="$2"; shift ;;
    --rounds) need "$@"; ROUNDS="$2"; shift ;;
    --images) need "$@"; IMAGES="$2"; shift ;;
    --results) need "$@"; RESULTS="$2"; shift ;;
    --write-docs) WRITE_DOCS=1 ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,28p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-list-containers: unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench-list-containers: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"
# One command from a fresh machine: the project's own dependencies first (idempotent, quick when present).
bash "$(dirname "${BASH_SOURCE[0]}")/install-deps.sh" --no-build >&2
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

# Own bridge and subnet, so this can run next to hack/bench-pods-pulls.sh and hack/bench-vs-containerd.sh.
BRIDGE=hullls0 SUBNET=10.96.0.0/16
ip link show "$BRIDGE" >/dev/null 2>&1 && die "bridge $BRIDGE exists already (another run, or a leftover: ip link del $BRIDGE)"

# ---------------------------------------------------------------- temp dirs + teardown
T="$(mktemp -d /tmp/hull-bench-ls.XXXXXX)"
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
cat >"$T/cni/net.d/10-hullls.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "hullls",
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

if [ -z "$RESULTS" ]; then
  mkdir -p "$ROOT/bench/cri-bench/results"
  RESULTS="$ROOT/bench/cri-bench/results/list-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
fi
: >"$RESULTS"

check_clean() { # label: nothing of a run may be left (veths, monitors)
  local n p
  n="$(ip -o link show master "$BRIDGE" 2>/dev/null | wc -l)"
  [ "$n" -eq 0 ] || log "warning: $1: $n veths still on $BRIDGE"
  n=0
  for p in /proc/[0-9]*; do
    case "$(cat "$p/comm" 2>/dev/null)" in conmon|containerd-shim*) tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF "$T" && n=$((n + 1)) ;; esac
  done
  [ "$n" -eq 0 ] || log "warning: $1: $n conmon/shim processes still running"
}

# ---------------------------------------------------------------- runs
start_hulld hulld; H_PID=$SRV_PID H_SOCK=$SRV_SOCK
start_containerd containerd; C_PID=$SRV_PID C_SOCK=$SRV_SOCK
log "hulld $(cat "$T/hulld.probe"); containerd $(cat "$T/containerd.probe")"
log "pre-pulling the pause image into containerd"
"$DRIVER" pull --socket "$C_SOCK" --label containerd --image "$PAUSE" >/dev/null
mkdir -p "$T/podlogs"
for s in hulld containerd; do # warm-up (JIT, caches, the bridge's creation, the image pull): not recorded
  if [ $s = hulld ]; then sock=$H_SOCK pid=$H_PID; else sock=$C_SOCK pid=$C_PID; fi
  "$DRIVER" list --socket "$sock" --server-pid "$pid" --match "$T/$s/" --label "$s" --image "$IMAGE" \
    --pods 2 --containers 3 --calls 20 --prefix "warm-$s" --log-dir "$T/podlogs" >"$T/warm-$s.json" ||
    die "warm-up on $s failed: $(cut -c1-400 "$T/warm-$s.json"); see $T/$s.log"
  check_clean "warm-up $s"
done
log "list: $PODS pods x $PER_POD containers, $CALLS calls per op, $ROUNDS rounds x {hulld, containerd}; raw: ${RESULTS#"$ROOT"/}"
for r in $(seq 1 "$ROUNDS"); do
  for s in hulld containerd; do
    if [ $s = hulld ]; then sock=$H_SOCK pid=$H_PID; else sock=$C_SOCK pid=$C_PID; fi
    kill -0 "$pid" 2>/dev/null || die "$s died; see $T/$s.log"
    out="$("$DRIVER" list --socket "$sock" --server-pid "$pid" --match "$T/$s/" --label "$s" --image "$IMAGE" \
      --pods "$PODS" --containers "$PER_POD" --calls "$CALLS" --prefix "r$r-$s" --log-dir "$T/podlogs")" ||
      log "$s round $r: errors: ${out:0:400}"
    printf '%s\n' "$out" >>"$RESULTS"
    log "$s round $r: $(jq -r '"\(.containers_running) running; ListContainers p50 \(.ops.list_containers.p50_ms) p99 \(.ops.list_containers.p99_ms) ms, pod filter p50 \(.ops.list_containers_pod.p50_ms), ListPodSandbox p50 \(.ops.list_pods.p50_ms) ms; daemon RSS \(.mem_loaded.daemon_rss_mib|round) MiB, per-pod procs \((.mem_loaded.monitor_rss_mib + .mem_loaded.infra_rss_mib)|round) MiB; setup \(.setup_wall_s|round) s, teardown \(.teardown_wall_s|round) s; errors \(.errors)\(if .leftover then "; LEFTOVER " + .leftover else "" end)"' <<<"$out" 2>/dev/null)"
    check_clean "$s"
  done
done
stop_pid "$H_PID"; stop_pid "$C_PID"

# ---------------------------------------------------------------- report
mem_gib="$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)"
cpu_model="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
hulld_ver="$(jq -r .runtime_version "$T/hulld.probe" 2>/dev/null || echo unknown)"
commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit")"
dll_time="$(date -u -r "$HULLD_DIR/hulld.dll" '+%Y-%m-%d %H:%M UTC')"
dotnet_rt="$(dotnet --list-runtimes 2>/dev/null | awk '/Microsoft.NETCore.App/ { v = $2 } END { print v }')"
grpc_go="$(dpkg-query -W -f='${Version}' golang-google-grpc-dev 2>/dev/null || echo unknown)"
ctrd_pkg="$(dpkg-query -W -f='${Version}' containerd 2>/dev/null || containerd --version | awk '{print $3}')"
conmon_ver="$(conmon --version 2>/dev/null | awk 'NR==1 {print $3}')"
{
  echo "### $(date -u '+%Y-%m-%d %H:%M UTC'): $((PODS * PER_POD)) running containers ($PODS pods × $PER_POD), $CALLS calls per op, $(nproc) CPUs"
  echo
  echo "- Machine: $(nproc) × ${cpu_model:-unknown CPU}, ${mem_gib} GiB, Linux $(uname -r), cgroup $(stat -fc %T /sys/fs/cgroup | sed 's/cgroup2fs/v2/; s/tmpfs/v1/'), $(findmnt -no FSTYPE -T /tmp) under /tmp; **2 CPUs shared with other jobs** (load average at the end $(cut -d' ' -f1-3 /proc/loadavg))."
  echo "- hulld ${hulld_ver} (HEAD ${commit}, Release build of ${dll_time}, .NET ${dotnet_rt}, conmon ${conmon_ver:-?}); containerd ${ctrd_pkg} (Debian, built-in CRI plugin,"
  echo "  runc $(runc --version | awk 'NR==1 {print $3}'), pause image = catatonit -P, \`restrict_oom_score_adj = true\`); CNI plugins $(dpkg-query -W -f='${Version}' containernetworking-plugins 2>/dev/null || echo '?') (bridge + host-local);"
  echo "  driver \`cri-bench list\` with $(go version | cut -d' ' -f3), grpc-go ${grpc_go} (Debian)."
  echo "- ${ROUNDS} round(s) per server, alternating hulld / containerd."
  echo "- Command: \`hack/bench-list-containers.sh${ARGS[*]:+ ${ARGS[*]}}\`"
  echo
  "$DRIVER" list-report "$RESULTS"
} >"$T/section.md"
echo
cat "$T/section.md"
if [ "$WRITE_DOCS" -eq 1 ]; then
  python3 - "$ROOT/docs/benchmarks.md" "$T/section.md" <<'PY'
import sys
doc, sec = sys.argv[1], open(sys.argv[2]).read()
marker = "<!-- bench-list-containers: new results are inserted below this line by hack/bench-list-containers.sh --write-docs -->"
s = open(doc).read()
if marker not in s:
    sys.exit("bench-list-containers: marker not found in " + doc)
s = s.replace(marker, marker + "\n\n" + sec.rstrip("\n"), 1)
open(doc, "w").write(s)
PY
  log "inserted into docs/benchmarks.md"
fi
