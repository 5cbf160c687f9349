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

BENCH_NAME=bench-list-containers BENCH_TAG=ls
# Own bridge and subnet, so this can run next to hack/bench-pods-pulls.sh and hack/bench-vs-containerd.sh.
BRIDGE=hullls0 SUBNET=10.96.0.0/16
# shellcheck source=hack/lib/bench-common.sh
. "$ROOT/hack/lib/bench-common.sh"

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
