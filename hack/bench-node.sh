#!/usr/bin/env bash
# A real kubelet on hulld against the same kubelet on containerd 1.6 (Debian `containerd`): the node e2e
# fixture (e2e/Hull.Node.E2E: etcd, kube-apiserver, kube-scheduler, kube-controller-manager, a registry,
# the runtime and a kubelet v1.26, everything private and torn down after each run) runs the Deployment
# scenario (S5): a Deployment of 20 replicas is applied, scaled to 0, to 20 and to 0 again. Recorded per
# run: apply → all 20 pods Ready ("up 1"), scale to 0 → all pods gone ("down 1"), and the same for the
# second round ("up 2", "down 2"). Runtimes alternate per round (hulld, containerd, hulld, ...), each run
# on a fresh cluster and node.
#
# usage: hack/bench-node.sh [options]
#   --runtime R     hulld, containerd or both (default both)
#   --rounds N      runs per runtime (default 3)
#   --no-build      don't build (use e2e/Hull.Node.E2E/bin/Release as it is)
#   --results FILE  raw JSON lines (default: a temp file, printed at the end)
#   --write-docs    insert the table into docs/benchmarks.md ("Kubelet on the node" section, newest first)
# Runs as root; needs what hack/install-deps.sh installs (Kubernetes binaries, etcd, containerd, ...).
# Not part of CI: the node e2e suite itself (hack/test.sh) runs S5 once against hulld.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNTIMES="hulld containerd" ROUNDS=3 BUILD=1 RESULTS="" WRITE_DOCS=0
ARGS=("$@")
need() { [ $# -ge 2 ] || { echo "bench-node: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --runtime) need "$@"; case "$2" in both) RUNTIMES="hulld containerd" ;; hulld|containerd) RUNTIMES="$2" ;;
                 *) echo "bench-node: --runtime hulld|containerd|both" >&2; exit 2 ;; esac; shift ;;
    --rounds) need "$@"; ROUNDS="$2"; shift ;;
    --no-build) BUILD=0 ;;
    --results) need "$@"; RESULTS="$2"; shift ;;
    --write-docs) WRITE_DOCS=1 ;;
    -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-node: unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench-node: error: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 HULL_E2E_REQUIRED=1

bash "$ROOT/hack/install-deps.sh" --no-build >&2
command -v containerd >/dev/null || die "containerd not found (apt-get install containerd)"
if [ "$BUILD" -eq 1 ]; then
  log "building e2e/Hull.Node.E2E (and hulld), Release"
  dotnet build "$ROOT/e2e/Hull.Node.E2E" -c Release -nologo -v quiet >&2
fi
[ -n "$RESULTS" ] || RESULTS="$(mktemp /tmp/hull-bench-node.XXXXXX.jsonl)"
touch "$RESULTS"

for round in $(seq 1 "$ROUNDS"); do
  for rt in $RUNTIMES; do
    log "round $round: $rt"
    logfile="$(mktemp /tmp/hull-bench-node-run.XXXXXX.log)"
    if ! HULL_NODE_RUNTIME="$rt" HULL_NODE_BENCH_OUT="$RESULTS" dotnet test "$ROOT/e2e/Hull.Node.E2E" -c Release --no-build \
        --filter "FullyQualifiedName~NodeScenarios.S5_" --logger "console;verbosity=normal" >"$logfile" 2>&1; then
      tail -n 40 "$logfile" >&2
      die "the Deployment scenario failed on $rt (log: $logfile)"
    fi
    tail -n 1 "$RESULTS" >&2
    rm -f "$logfile"
  done
done

# ---------------------------------------------------------------- report
mem_gib="$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)"
cpu_model="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit")"
dotnet_rt="$(dotnet --list-runtimes 2>/dev/null | awk '/Microsoft.NETCore.App/ { v = $2 } END { print v }')"
ctrd_pkg="$(dpkg-query -W -f='${Version}' containerd 2>/dev/null || echo unknown)"
header="$(cat <<EOF
### $(date -u '+%Y-%m-%d %H:%M UTC'): Deployment of 20 replicas under a kubelet v1.26, $(nproc) CPUs

- Machine: $(nproc) × ${cpu_model:-unknown CPU}, ${mem_gib} GiB, Linux $(uname -r), cgroup $(stat -fc %T /sys/fs/cgroup | sed 's/cgroup2fs/v2/; s/tmpfs/v1/'); load average at the end $(cut -d' ' -f1-3 /proc/loadavg).
- hulld (commit ${commit}, Release, .NET ${dotnet_rt}, conmon + runc $(runc --version | awk 'NR==1 {print $3}')); containerd ${ctrd_pkg} (Debian, built-in CRI plugin, pause image from the test registry);
  kubelet, kube-apiserver, kube-scheduler, kube-controller-manager v1.26.0-rc.1; etcd $(/usr/local/lib/hull-test-tools/etcd/usr/bin/etcd --version | awk 'NR==1 {print $3}') (Debian).
- ${ROUNDS} runs per runtime, alternating $(echo "$RUNTIMES" | sed 's/ / \/ /'); each run on a fresh cluster and node.
- Command: \`hack/bench-node.sh${ARGS[*]:+ ${ARGS[*]}}\`
EOF
)"
python3 - "$RESULTS" "$WRITE_DOCS" "$ROOT/docs/benchmarks.md" "$header" <<'EOF'
import json, statistics, sys
results, write_docs, docs, header = sys.argv[1], sys.argv[2] == "1", sys.argv[3], sys.argv[4]
runs = [json.loads(l) for l in open(results) if l.strip()]
by = {}
for r in runs: by.setdefault(r["runtime"], []).append(r)
keys = [("up1", "apply → 20 Ready"), ("down1", "scale to 0 → all gone"), ("up2", "scale to 20 → all Ready"), ("down2", "scale to 0 → all gone (2nd)")]
def med(rt, k): return statistics.median(r[k] for r in by[rt]) if rt in by else None
def fmt(v): return "—" if v is None else f"{v:.1f}"
lines = ["**Seconds, medians of the runs** (each cell hulld / containerd (ratio); ratio < 1 means hulld is faster):", "",
         "| | " + " | ".join(label for _, label in keys) + " |", "|---|" + "---:|" * len(keys)]
cells = []
for k, _ in keys:
    h, c = med("hulld", k), med("containerd", k)
    ratio = f" ({h / c:.2f})" if h is not None and c else ""
    cells.append(f"{fmt(h)} / {fmt(c)}{ratio}")
lines.append("| Deployment, 20 replicas | " + " | ".join(cells) + " |")
lines += ["", "<details><summary>Every run</summary>", "", "| # | runtime | " + " | ".join(l for _, l in keys) + " |",
          "|---:|---|" + "---:|" * len(keys)]
for i, r in enumerate(runs, 1):
    lines.append(f"| {i} | {r['runtime']} | " + " | ".join(fmt(r[k]) for k, _ in keys) + " |")
lines += ["", "</details>"]
block = header + "\n\n" + "\n".join(lines) + "\n"
print("\n" + block)
if write_docs:
    marker = "<!-- bench-node: new results are inserted below this line by hack/bench-node.sh --write-docs -->"
    text = open(docs).read()
    if marker not in text: sys.exit(f"bench-node: {docs} has no line {marker}")
    open(docs, "w").write(text.replace(marker, marker + "\n\n" + block, 1))
    print(f"inserted into {docs}", file=sys.stderr)
EOF
log "raw results: $RESULTS"
