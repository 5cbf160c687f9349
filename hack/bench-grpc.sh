#!/usr/bin/env bash
# CRI gRPC transport benchmark: unary calls/s and p50/p99 latency of hulld
# against containerd 1.6's CRI plugin (Debian `containerd`), same run, same
# client (bench/grpc-load: grpc-go 1.33, one connection, N streams).
#
# usage: hack/bench-grpc.sh [options]
#   --no-build            don't build hulld (use cmd/hulld/bin/Release/net10.0 as it is)
#   --duration D          measured window per run (default 10s)
#   --warmup D            warm-up before each window (default 2s)
#   --concurrency "LIST"  concurrent streams (default "1 8 64")
#   --rounds N            runs per server and concurrency, alternating hulld,
#                         containerd, hulld, ... (default 3); the table shows medians
#   --method M            gRPC method (default /runtime.v1.RuntimeService/Version)
#   --pin                 pin the servers to CPU 1 and the driver to CPU 0 (taskset)
#   --wait-idle D         before each run wait up to D for the machine to be idle (default 60s, 0 = don't)
#   --max-other-cpu X     repeat a run when other processes used more than X cores
#                         during its window (default 0.25, 0 = never) ...
#   --retries N           ... up to N times (default 3), then keep the least disturbed
#   --results FILE        raw JSON lines (default bench/grpc-load/results/<UTC time>.jsonl)
#   --write-docs          insert the results at the top of the "CRI gRPC transport"
#                         section of docs/benchmarks.md (older results stay below)
#   --keep                keep the temp dir (logs) instead of removing it
#   --telemetry           telemetry overhead instead of containerd: hulld with metrics and
#                         tracing off, with [metrics] on, and with metrics + tracing (OTLP/HTTP to
#                         a sink in this script, sampler always_on), alternating; a table of each
#                         against the plain hulld (not written to the docs)
# Runs as root. Needs golang-go, golang-google-grpc-dev, golang-google-protobuf-dev,
# containerd (hack/install-deps.sh installs them) and the .NET SDK.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD=1 DURATION=10s WARMUP=2s CONCURRENCY="1 8 64" ROUNDS=3 PIN=0 WAIT_IDLE=60s MAX_OTHER=0.25 RETRIES=3
METHOD=/runtime.v1.RuntimeService/Version RESULTS="" WRITE_DOCS=0 KEEP=0 TELEMETRY=0
ARGS=("$@")

need() { [ $# -ge 2 ] || { echo "bench-grpc: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --duration) need "$@"; DURATION="$2"; shift ;;
    --warmup) need "$@"; WARMUP="$2"; shift ;;
    --concurrency) need "$@"; CONCURRENCY="$2"; shift ;;
    --rounds) need "$@"; ROUNDS="$2"; shift ;;
    --method) need "$@"; METHOD="$2"; shift ;;
    --pin) PIN=1 ;;
    --wait-idle) need "$@"; WAIT_IDLE="$2"; shift ;;
    --max-other-cpu) need "$@"; MAX_OTHER="$2"; shift ;;
    --retries) need "$@"; RETRIES="$2"; shift ;;
    --results) need "$@"; RESULTS="$2"; shift ;;
    --write-docs) WRITE_DOCS=1 ;;
    --keep) KEEP=1 ;;
    --telemetry) TELEMETRY=1 ;;
    -h|--help) sed -n '2,29p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-grpc: unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench-grpc: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (containerd needs it)"
command -v containerd >/dev/null || die "containerd not found (apt-get install containerd, or hack/install-deps.sh)"
command -v go >/dev/null || die "go not found (apt-get install golang-go, or hack/install-deps.sh)"
command -v dotnet >/dev/null || die "dotnet SDK not found"
if [ "$PIN" -eq 1 ] && [ "$(nproc)" -lt 2 ]; then die "--pin needs at least 2 CPUs"; fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

# ---------------------------------------------------------------- build
DRIVER="$ROOT/bench/grpc-load/bin/grpc-load"
log "building the load driver bench/grpc-load ($(go version | cut -d' ' -f3), GOPATH mode)"
(
  cd "$ROOT/bench/grpc-load"
  export GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS='' GOPROXY=off
  export GOCACHE="${HULL_GOCACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/hull-go-build}"
  mkdir -p "$GOCACHE" bin
  go build -o bin/grpc-load .
)

HULLD_DIR="$ROOT/cmd/hulld/bin/Release/net10.0"
if [ "$BUILD" -eq 1 ]; then
  log "building hulld (Release)"
  dotnet build "$ROOT/cmd/hulld" -c Release -nologo -v quiet >&2
fi
[ -f "$HULLD_DIR/hulld.dll" ] || die "$HULLD_DIR/hulld.dll not found (build it, or drop --no-build)"

# ---------------------------------------------------------------- temp dirs + teardown
T="$(mktemp -d /tmp/hull-bench-grpc.XXXXXX)"
HULLD_PID="" CTRD_PID="" DRIVER_PID="" METRICS_PID="" TRACED_PID="" SINK_PID=""

stop_pid() { # pid name
  local pid="$1" name="$2" i
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name (pid $pid) did not stop in 10 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

teardown() {
  local rc=$?
  set +e
  if [ -n "$DRIVER_PID" ]; then kill -TERM "$DRIVER_PID" 2>/dev/null; wait "$DRIVER_PID" 2>/dev/null; fi
  stop_pid "$HULLD_PID" hulld
  stop_pid "$CTRD_PID" containerd
  stop_pid "$METRICS_PID" hulld+metrics
  stop_pid "$TRACED_PID" hulld+tracing
  stop_pid "$SINK_PID" otlp-sink
  # Anything containerd (or hulld) mounted under the temp root, deepest first.
  awk -v t="$T" '$5 == t || index($5, t "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
  if [ "$KEEP" -eq 1 ] || { [ "$rc" -ne 0 ] && [ "$rc" -ne 130 ] && [ "$rc" -ne 143 ]; }; then
    log "logs kept in $T (remove it with: rm -rf $T)"
    [ "$rc" -eq 0 ] || { tail -n 20 "$T"/*.log 2>/dev/null >&2 || true; }
  else
    rm -rf "$T"
  fi
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

SERVER_CPU=() DRIVER_CPU=()
if [ "$PIN" -eq 1 ]; then SERVER_CPU=(taskset -c 1) DRIVER_CPU=(taskset -c 0); fi

wait_ready() { # name pid socket
  local name="$1" pid="$2" sock="$3" i
  for i in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$T/$name.log" >&2; die "$name exited during start-up"; }
    if [ -S "$sock" ] && "$DRIVER" --socket "$sock" --probe --connect-timeout 1s >"$T/$name.probe" 2>/dev/null; then
      log "$name ready (pid $pid): $(cat "$T/$name.probe")"
      return 0
    fi
    sleep 0.2
  done
  tail -n 20 "$T/$name.log" >&2
  die "$name did not answer Version on $sock within 30 s"
}

if [ "$TELEMETRY" -eq 0 ]; then
# ---------------------------------------------------------------- containerd 1.6
# Its own root, state, sockets, CNI dirs and opt dir under $T: nothing of the
# host's containerd setup (/etc/containerd, /var/lib/containerd, /run/containerd)
# is read or written. Snapshotters that probe host storage are disabled.
mkdir -p "$T/ctrd/root" "$T/ctrd/state" "$T/ctrd/cni-conf" "$T/ctrd/cni-bin" "$T/ctrd/opt"
CTRD_SOCK="$T/ctrd/containerd.sock"
cat >"$T/containerd.toml" <<EOF
version = 2
root = "$T/ctrd/root"
state = "$T/ctrd/state"
oom_score = 0
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.internal.v1.tracing",
  "io.containerd.tracing.processor.v1.otlp",
]

[grpc]
  address = "$CTRD_SOCK"

[ttrpc]
  address = "$T/ctrd/containerd.sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "$T/ctrd/cni-bin"
      conf_dir = "$T/ctrd/cni-conf"
  [plugins."io.containerd.internal.v1.opt"]
    path = "$T/ctrd/opt"
EOF
log "starting containerd ($(containerd --version | awk '{print $3}')) in $T/ctrd"
"${SERVER_CPU[@]}" containerd --config "$T/containerd.toml" >"$T/containerd.log" 2>&1 &
CTRD_PID=$!
wait_ready containerd "$CTRD_PID" "$CTRD_SOCK"
fi

# ---------------------------------------------------------------- hulld
start_hulld() { # name [VAR=value ...] -- [hulld args ...]; sets STARTED_PID
  local name="$1" envs=()
  shift
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  mkdir -p "$T/$name/root" "$T/$name/state"
  log "starting $name (Release) in $T/$name"
  env "${envs[@]}" "${SERVER_CPU[@]}" dotnet "$HULLD_DIR/hulld.dll" --address "$T/$name/hull.sock" \
    --root "$T/$name/root" --state "$T/$name/state" "$@" >"$T/$name.log" 2>&1 &
  STARTED_PID=$!
  wait_ready "$name" "$STARTED_PID" "$T/$name/hull.sock"
}
start_hulld hulld --
HULLD_PID=$STARTED_PID HULLD_SOCK="$T/hulld/hull.sock"

if [ "$TELEMETRY" -eq 1 ]; then
  # A minimal OTLP/HTTP receiver: answers every export with 200 and counts the requests and bytes.
  cat >"$T/otlp-sink.py" <<'PY'
import http.server, sys
class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    requests = received = 0
    def do_POST(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while (size := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                body += self.rfile.read(size); self.rfile.readline()
            self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Sink.requests += 1; Sink.received += len(body)
        with open(sys.argv[1], "w") as f: f.write(f"{Sink.requests} requests, {Sink.received} bytes\n")
        self.send_response(200); self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *args): pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
print(server.server_address[1], flush=True)
server.serve_forever()
PY
  python3 "$T/otlp-sink.py" "$T/otlp-sink.count" >"$T/otlp-sink.port" 2>"$T/otlp-sink.log" &
  SINK_PID=$!
  for _ in $(seq 1 50); do [ -s "$T/otlp-sink.port" ] && break; sleep 0.1; done
  [ -s "$T/otlp-sink.port" ] || die "the OTLP sink did not start: $(cat "$T/otlp-sink.log")"
  metrics_config() { # name: a config with [metrics] on a free port; prints the address
    local port
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    printf 'version = 3\n[metrics]\naddress = "127.0.0.1:%s"\n' "$port" >"$T/$1.toml"
    echo "127.0.0.1:$port"
  }
  METRICS_ADDR="$(metrics_config hulld+metrics)"
  start_hulld hulld+metrics -- --config "$T/hulld+metrics.toml"
  METRICS_PID=$STARTED_PID
  TRACED_ADDR="$(metrics_config hulld+tracing)"
  start_hulld hulld+tracing OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$(cat "$T/otlp-sink.port")" \
    OTEL_TRACES_SAMPLER=always_on -- --config "$T/hulld+tracing.toml"
  TRACED_PID=$STARTED_PID
fi

# ---------------------------------------------------------------- runs
if [ -z "$RESULTS" ]; then
  mkdir -p "$ROOT/bench/grpc-load/results"
  RESULTS="$ROOT/bench/grpc-load/results/$(date -u +%Y%m%dT%H%M%SZ).jsonl"
fi
: >"$RESULTS"

other_load() { sed -E 's/.*"other_cpu_cores":([0-9.eE+-]+).*/\1/' <<<"$1" | awk '{ printf "%.2f", $1 }'; }

# One measured run; a run disturbed by other load (driver exit 4) is repeated
# up to $RETRIES times, and if every attempt was disturbed the least disturbed
# one is kept (its JSON says "disturbed":true).
run_one() { # label socket pid concurrency
  local label="$1" sock="$2" pid="$3" c="$4" try rc line best=""
  for try in $(seq 0 "$RETRIES"); do
    kill -0 "$pid" 2>/dev/null || die "$label (pid $pid) died; see $T/$label.log"
    rc=0
    # In the background + wait, so that SIGINT/SIGTERM reach the trap at once.
    "${DRIVER_CPU[@]}" "$DRIVER" --socket "$sock" --server-pid "$pid" --label "$label" \
      --concurrency "$c" --duration "$DURATION" --warmup "$WARMUP" --method "$METHOD" \
      --wait-idle "$WAIT_IDLE" --max-other-cpu "$MAX_OTHER" >"$T/run.json" &
    DRIVER_PID=$!
    wait "$DRIVER_PID" || rc=$?
    DRIVER_PID=""
    line="$(cat "$T/run.json")"
    case "$rc" in
      0) best="$line"; break ;;
      1) log "$label c=$c: run had errors: $line"; best="$line"; break ;;
      4) if [ -z "$best" ] || awk -v a="$(other_load "$line")" -v b="$(other_load "$best")" 'BEGIN { exit !(a < b) }'; then
           best="$line"
         fi
         if [ "$try" -lt "$RETRIES" ]; then log "$label c=$c: disturbed by other load, again"
         else log "$label c=$c: disturbed $((RETRIES + 1)) times, keeping the least disturbed run ($(other_load "$best") cores)"; fi ;;
      *) die "$label c=$c: driver failed (exit $rc): $line" ;;
    esac
  done
  printf '%s\n' "$best" >>"$RESULTS"
}

SERVERS="hulld, containerd"
[ "$TELEMETRY" -eq 1 ] && SERVERS="hulld, hulld+metrics, hulld+tracing"
log "runs: concurrency {$CONCURRENCY} x $ROUNDS rounds x {$SERVERS}, ${WARMUP} warm-up + ${DURATION} each; raw results: ${RESULTS#"$ROOT"/}"
for c in $CONCURRENCY; do
  for r in $(seq 1 "$ROUNDS"); do
    run_one hulld "$HULLD_SOCK" "$HULLD_PID" "$c"
    if [ "$TELEMETRY" -eq 1 ]; then
      run_one hulld+metrics "$T/hulld+metrics/hull.sock" "$METRICS_PID" "$c"
      run_one hulld+tracing "$T/hulld+tracing/hull.sock" "$TRACED_PID" "$c"
    else
      run_one containerd "$CTRD_SOCK" "$CTRD_PID" "$c"
    fi
  done
done

# ---------------------------------------------------------------- report
mem_gib="$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)"
cpu_model="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
hulld_ver="$(sed -E 's/.*"runtime_version":"([^"]*)".*/\1/' "$T/hulld.probe")"
commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit")"
dotnet_rt="$(dotnet --list-runtimes 2>/dev/null | awk '/Microsoft.NETCore.App/ { v = $2 } END { print v }')"
grpc_go="$(dpkg-query -W -f='${Version}' golang-google-grpc-dev 2>/dev/null || echo unknown)"
ctrd_pkg="$(dpkg-query -W -f='${Version}' containerd 2>/dev/null || containerd --version | awk '{print $3}')"
pinning="not pinned (servers and driver share all $(nproc) CPUs)"
[ "$PIN" -eq 1 ] && pinning="servers pinned to CPU 1, driver to CPU 0"
cat >"$T/header.md" <<EOF
### $(date -u '+%Y-%m-%d %H:%M UTC'): ${METHOD##*/}, $(nproc) CPUs

- Machine: $(nproc) × ${cpu_model:-unknown CPU}, ${mem_gib} GiB, Linux $(uname -r); ${pinning}.
- hulld ${hulld_ver} (commit ${commit}, Release, .NET ${dotnet_rt}); containerd ${ctrd_pkg} (Debian, built-in CRI plugin);
  driver bench/grpc-load with $(go version | cut -d' ' -f3), grpc-go ${grpc_go} (Debian).
- \`${METHOD}\`, one connection, ${WARMUP} warm-up + ${DURATION} measured per run, ${ROUNDS} rounds alternating ${SERVERS//, / / }.
- Command: \`hack/bench-grpc.sh${ARGS[*]:+ ${ARGS[*]}}\`
EOF

echo
cat "$T/header.md"
echo
if [ "$TELEMETRY" -eq 1 ]; then
  # Proof that the telemetry was on: the call counter on both listeners, spans at the sink.
  for addr in "$METRICS_ADDR" "$TRACED_ADDR"; do
    calls="$(curl -fsS "http://$addr/v1/metrics" | awk '/^hull_grpc_server_requests_total\{.*method="Version"/ { n += $2 } END { printf "%d", n }')"
    [ "$calls" -gt 0 ] || die "http://$addr/v1/metrics counted no Version calls"
    echo "- http://$addr/v1/metrics: $calls Version calls counted"
  done
  echo "- OTLP sink: $(cat "$T/otlp-sink.count" 2>/dev/null || echo "no exports") (the SDK's batch processor drops spans while its queue of 2048 is full)"
  for variant in hulld+metrics hulld+tracing; do
    echo; echo "#### $variant against hulld"; echo
    "$DRIVER" report --a "$variant" --b hulld "$RESULTS"
  done
  [ "$WRITE_DOCS" -eq 0 ] || log "--write-docs is ignored with --telemetry: copy the tables into docs/benchmarks.md"
elif [ "$WRITE_DOCS" -eq 1 ]; then
  "$DRIVER" report --details --docs "$ROOT/docs/benchmarks.md" --header "$T/header.md" "$RESULTS"
else
  "$DRIVER" report --details "$RESULTS"
fi
