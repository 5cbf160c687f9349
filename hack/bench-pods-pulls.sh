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

# ---------------------------------------------------------------- temp dir, teardown, registry (hack/lib/cri-env.sh)
ENV_NAME=bench-pods-pulls ENV_TAG=bench-pods
# shellcheck source=hack/lib/cri-env.sh
. "$ROOT/hack/lib/cri-env.sh"
probe_server() { "$DRIVER" probe --socket "$1"; } # JSON the reports read (runtime_version)
env_init
env_on_exit() { # a failed run keeps its logs
  [ "$1" -eq 0 ] && return 0
  KEEP=1
  tail -n 15 "$T"/*.log >&2 2>/dev/null
}
registry_start "$T/registry" "$T/registry/storage"
PIDS+=("$REGISTRY_PID")
REG="$REGISTRY"

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

SANDBOX_IMAGE="$PAUSE" # containerd's
write_hosts_toml "$REG" "$REG"
write_cni_config

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
# The first pull run's probe when there were no pod runs (awk reads the files itself: `cat | head` dies of SIGPIPE).
probe="$(cat "$T/hulld.probe" 2>/dev/null || awk 'FNR == 1 { print; exit }' "$T"/pull-hulld-*.probe 2>/dev/null)"
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
