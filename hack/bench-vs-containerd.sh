#!/usr/bin/env bash
# Kubelet-shaped load, hulld against containerd 1.6's CRI plugin (Debian
# `containerd`), same run, same machine, same client (issue 8).
#
# The driver (`bench/cri-bench kubelet`, Go, grpc-go 1.33, protowire-encoded
# CRI) creates N pods with one container each (busybox from a private
# registry, `sleep 3600`, pulled once before timing): RunPodSandbox →
# CreateContainer → StartContainer → ContainerStatus until running, by P
# workers; relists every second like the kubelet's PLEG (ListPodSandbox +
# ListContainers); then StopPodSandbox + RemovePodSandbox of every pod. It
# samples /proc every 200 ms for the CPU and RSS of the daemon and of its
# per-pod processes (conmon for hulld; containerd-shim-runc-v2 + pause for
# containerd). Servers alternate per round (hulld, containerd, hulld, ...).
#
# usage: hack/bench-vs-containerd.sh [options]
#   --no-build            don't build hulld (use cmd/hulld/bin/Release/net10.0 as it is)
#   --counts "LIST"       pods per run (default "10 50 100")
#   --parallel "LIST"     concurrent workers (default "1 10")
#   --rounds N            runs per server and setting, alternating (default 2: A B A B)
#   --images DIR          test image cache (default /var/tmp/hull-bench-images)
#   --results FILE        raw JSON lines (default bench/cri-bench/results/kubelet-<UTC time>.jsonl)
#   --write-docs          insert the tables into docs/benchmarks.md
#                         ("Kubelet-shaped load" section, newest first)
#   --keep                keep the temp dir (logs)
#   --relist D            the driver's PLEG relist period (default 1s, the kubelet's); shorter gives the relist
#                         percentiles more samples
#   --neighbour           a CPU-burning neighbour: a busy loop pinned to CPU 0 runs through every measured
#                         run, the same for both servers (a node is never quiet; issue 22, goal 2)
# Runs as root. Installs Debian's containerd with apt-get when it is missing;
# needs golang-go, golang-google-grpc-dev, golang-google-protobuf-dev, runc,
# conmon, catatonit, containernetworking-plugins, docker-registry, umoci,
# skopeo, busybox-static, jq, iproute2 and the .NET SDK (hack/install-deps.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD=1 COUNTS="10 50 100" PARALLEL="1 10" ROUNDS=2
IMAGES=/var/tmp/hull-bench-images RESULTS="" WRITE_DOCS=0 KEEP=0
ARGS=("$@")
need() { [ $# -ge 2 ] || { echo "bench-vs-containerd: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --counts) need "$@"; COUNTS="$2"; shift ;;
    --parallel) need "$@"; PARALLEL="$2"; shift ;;
    --rounds) need "$@"; ROUNDS="$2"; shift ;;
    --images) need "$@"; IMAGES="$2"; shift ;;
    --results) need "$@"; RESULTS="$2"; shift ;;
    --write-docs) WRITE_DOCS=1 ;;
    --keep) KEEP=1 ;;
    --neighbour) NEIGHBOUR=1 ;;
    --relist) need "$@"; RELIST="$2"; shift ;;
    -h|--help) sed -n '2,32p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-vs-containerd: unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

BENCH_NAME=bench-vs-containerd BENCH_TAG=kl
# Own bridge and subnet, so this can run next to hack/bench-pods-pulls.sh.
BRIDGE=hullkl0 SUBNET=10.98.0.0/16
# shellcheck source=hack/lib/bench-common.sh
. "$ROOT/hack/lib/bench-common.sh"

if [ -z "$RESULTS" ]; then
  mkdir -p "$ROOT/bench/cri-bench/results"
  RESULTS="$ROOT/bench/cri-bench/results/kubelet-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
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
  "$DRIVER" kubelet --socket "$sock" --server-pid "$pid" --match "$T/$s/" --label "$s" --image "$IMAGE" \
    --count 3 --parallel 1 --prefix "warm-$s" --log-dir "$T/podlogs" >"$T/warm-$s.json" ||
    die "warm-up on $s failed: $(cut -c1-400 "$T/warm-$s.json"); see $T/$s.log"
  check_clean "warm-up $s"
done
log "kubelet load: pods {$COUNTS} x parallel {$PARALLEL} x $ROUNDS rounds x {hulld, containerd}; raw: ${RESULTS#"$ROOT"/}"
if [ "${NEIGHBOUR:-0}" = 1 ]; then
  taskset -c 0 sh -c 'while :; do :; done' & NEIGHBOUR_PID=$!
  PIDS+=("$NEIGHBOUR_PID") # teardown stops it whatever happens
  log "CPU-burning neighbour: pid $NEIGHBOUR_PID, a busy loop pinned to CPU 0"
fi
for n in $COUNTS; do
  for par in $PARALLEL; do
    for r in $(seq 1 "$ROUNDS"); do
      for s in hulld containerd; do
        if [ $s = hulld ]; then sock=$H_SOCK pid=$H_PID; else sock=$C_SOCK pid=$C_PID; fi
        kill -0 "$pid" 2>/dev/null || die "$s died; see $T/$s.log"
        out="$("$DRIVER" kubelet --socket "$sock" --server-pid "$pid" --match "$T/$s/" --label "$s" --image "$IMAGE" \
          --count "$n" --parallel "$par" --relist "${RELIST:-1s}" --prefix "r$r-$s-n$n-p$par" --log-dir "$T/podlogs")" ||
          log "$s n=$n p=$par: errors: ${out:0:300}"
        printf '%s\n' "$out" >>"$RESULTS"
        log "$s $n pods p=$par round $r: $(jq -r '"pod start p50 \(.ops.pod_start.p50_ms) p99 \(.ops.pod_start.p99_ms) ms, \(.pods_per_s|.*10|round/10) pods/s, relist p99 \(.relist.p99_ms) ms, CPU daemon \(.procs.daemon_cpu_s) s + per-pod \(.procs.monitor_cpu_s + .procs.infra_cpu_s) s, peak RSS \(.procs.total_rss_peak_mib|round) MiB, load \(.loadavg_start)\(if .leftover then "; LEFTOVER " + .leftover else "" end)"' <<<"$out" 2>/dev/null)"
        check_clean "$s"
      done
    done
  done
done
[ -z "${NEIGHBOUR_PID:-}" ] || stop_pid "$NEIGHBOUR_PID"
stop_pid "$H_PID"; stop_pid "$C_PID"

# ---------------------------------------------------------------- report
mem_gib="$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)"
cpu_model="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
hulld_ver="$(jq -r .runtime_version "$T/hulld.probe" 2>/dev/null || echo unknown)"
commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit")"
dotnet_rt="$(dotnet --list-runtimes 2>/dev/null | awk '/Microsoft.NETCore.App/ { v = $2 } END { print v }')"
grpc_go="$(dpkg-query -W -f='${Version}' golang-google-grpc-dev 2>/dev/null || echo unknown)"
ctrd_pkg="$(dpkg-query -W -f='${Version}' containerd 2>/dev/null || containerd --version | awk '{print $3}')"
conmon_ver="$(conmon --version 2>/dev/null | awk 'NR==1 {print $3}')"
cat >"$T/header.md" <<EOF
### $(date -u '+%Y-%m-%d %H:%M UTC'): kubelet-shaped load, pods {$COUNTS} × workers {$PARALLEL}, $(nproc) CPUs

- Machine: $(nproc) × ${cpu_model:-unknown CPU}, ${mem_gib} GiB, Linux $(uname -r), cgroup $(stat -fc %T /sys/fs/cgroup | sed 's/cgroup2fs/v2/; s/tmpfs/v1/'), $(findmnt -no FSTYPE -T /tmp) under /tmp; load average at the end $(cut -d' ' -f1-3 /proc/loadavg).
- hulld ${hulld_ver} (commit ${commit}, Release, .NET ${dotnet_rt}, conmon ${conmon_ver:-?}); containerd ${ctrd_pkg} (Debian, built-in CRI plugin,
  runc $(runc --version | awk 'NR==1 {print $3}'), pause image = catatonit -P); CNI plugins $(dpkg-query -W -f='${Version}' containernetworking-plugins 2>/dev/null || echo '?') (bridge + host-local);
  driver \`cri-bench kubelet\` with $(go version | cut -d' ' -f3), grpc-go ${grpc_go} (Debian).
- ${ROUNDS} rounds per setting, alternating hulld / containerd; relist every ${RELIST:-1s}.$([ "${NEIGHBOUR:-0}" = 1 ] && printf '\n- With a CPU-burning neighbour: a busy loop pinned to CPU 0 through every measured run (`--neighbour`).')
- Command: \`hack/bench-vs-containerd.sh${ARGS[*]:+ ${ARGS[*]}}\`
EOF
echo
cat "$T/header.md"
echo
if [ "$WRITE_DOCS" -eq 1 ]; then
  "$DRIVER" kubelet-report --docs "$ROOT/docs/benchmarks.md" --header "$T/header.md" "$RESULTS"
else
  "$DRIVER" kubelet-report "$RESULTS"
fi
