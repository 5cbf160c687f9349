#!/usr/bin/env bash
# NRI plugin cost through a real hulld (issue 17): CRI CreateContainer + StartContainer latency with 0, 1 and 3
# pre-installed upstream logger plugins (containerd/nri v0.12.2 from ../shared/tools, logging to /dev/null)
# subscribed to every event. Three hullds run side by side, one per setting, and the driver
# (`bench/cri-bench kubelet`, one worker: RunPodSandbox, CreateContainer, StartContainer, ContainerStatus until
# running, then StopPodSandbox + RemovePodSandbox) takes turns between them, round after round (0 1 3 0 1 3 ...),
# so the noise of a shared machine falls on every setting alike; by default a round is one pod, so the turns are
# as fine as they can be. p50 and p99 are taken over every round's median. Through the two CRI calls each logger
# gets five NRI calls: CreateContainer, ValidateContainerAdjustment, PostCreateContainer, StartContainer,
# PostStartContainer. Each hulld also serves its metrics, and the report adds the mean time of an NRI call as hulld
# timed it (hull_nri_plugin_call_duration_seconds), which machine noise blurs less than the CRI latency.
# The per-event round trip without the rest of hulld: bench/Hull.Bench.Nri.
#
# usage: hack/bench-nri.sh [options]
#   --no-build            don't build hulld (use cmd/hulld/bin/Release/net10.0 as it is)
#   --count N             pods per round (default 1)
#   --rounds N            rounds per setting, alternating (default 40)
#   --plugins DIR         the upstream NRI plugins (default /usr/local/lib/hull-test-tools/nri-plugins/v0.12.2)
#   --images DIR          test image cache (default /var/tmp/hull-bench-images)
#   --keep                keep the temp dir (logs)
# Runs as root; needs what hack/bench-vs-containerd.sh needs (hack/install-deps.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD=1 COUNT=1 ROUNDS=40 PLUGINS=/usr/local/lib/hull-test-tools/nri-plugins/v0.12.2
IMAGES=/var/tmp/hull-bench-images KEEP=0
ARGS=("$@")
need() { [ $# -ge 2 ] || { echo "bench-nri: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --count) need "$@"; COUNT="$2"; shift ;;
    --rounds) need "$@"; ROUNDS="$2"; shift ;;
    --plugins) need "$@"; PLUGINS="$2"; shift ;;
    --images) need "$@"; IMAGES="$2"; shift ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-nri: unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
[ -x "$PLUGINS/logger" ] || { echo "bench-nri: $PLUGINS/logger not found (../shared/tools/install.sh)" >&2; exit 1; }

BENCH_NAME=bench-nri BENCH_TAG=nri
# Own bridge and subnet, so this can run next to the other benchmarks.
BRIDGE=hullnri0 SUBNET=10.96.0.0/16
# shellcheck source=hack/lib/bench-common.sh
. "$ROOT/hack/lib/bench-common.sh"

SETTINGS="0 1 3"
declare -A SOCK PID METRICS
for n in $SETTINGS; do
  mkdir -p "$T/hulld-$n/nri/plugins"
  for i in $(seq 1 "$n"); do
    printf '#!/bin/sh\nexec %q -log-file /dev/null\n' "$PLUGINS/logger" >"$T/hulld-$n/nri/plugins/1$i-logger$i"
    chmod 0755 "$T/hulld-$n/nri/plugins/1$i-logger$i"
  done
  METRICS[$n]="127.0.0.1:$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  HULLD_EXTRA_CONFIG="$(printf '[metrics]\n  address = "%s"' "${METRICS[$n]}")" start_hulld "hulld-$n"
  SOCK[$n]=$SRV_SOCK PID[$n]=$SRV_PID
done
mkdir -p "$T/podlogs"
RESULTS="$T/results.jsonl"
for n in $SETTINGS; do # warm-up (JIT, the bridge's creation, the image pull): not recorded
  "$DRIVER" kubelet --socket "${SOCK[$n]}" --server-pid "${PID[$n]}" --match "$T/hulld-$n/" --label "$n" --image "$IMAGE" \
    --count 3 --parallel 1 --prefix "warm-$n" --log-dir "$T/podlogs" >"$T/warm-$n.json" ||
    die "warm-up with $n plugins failed: $(cut -c1-400 "$T/warm-$n.json"); see $T/hulld-$n.log"
  [ "$(grep -c 'NRI plugin .* connected and synchronized' "$T/hulld-$n.log" || true)" -eq "$n" ] ||
    log "warning: hulld-$n: its log does not show $n plugins connected; see $T/hulld-$n.log"
done
log "NRI cost: $COUNT pods x $ROUNDS rounds x {$SETTINGS} logger plugins, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$ROUNDS"); do
  for n in $SETTINGS; do
    kill -0 "${PID[$n]}" 2>/dev/null || die "hulld-$n died; see $T/hulld-$n.log"
    out="$("$DRIVER" kubelet --socket "${SOCK[$n]}" --server-pid "${PID[$n]}" --match "$T/hulld-$n/" --label "$n" --image "$IMAGE" \
      --count "$COUNT" --parallel 1 --prefix "r$r-n$n" --log-dir "$T/podlogs")" ||
      die "$n plugins, round $r: errors: ${out:0:300}"
    printf '%s\n' "$out" >>"$RESULTS"
    [ "$COUNT" -eq 1 ] && [ $((r % 10)) -ne 0 ] || log "round $r, $n plugins: $(jq -r '"CreateContainer+StartContainer p50 \(.ops.create_start.p50_ms) p99 \(.ops.create_start.p99_ms) ms, load \(.loadavg_start)"' <<<"$out")"
  done
done
for n in $SETTINGS; do
  # NRI calls as hulld timed them (all events, warm-up included): "count sum_seconds p50_bucket p90_bucket", the
  # percentiles as the upper bound (seconds) of the histogram bucket they fall in.
  curl -fsS "http://${METRICS[$n]}/v1/metrics" >"$T/metrics-$n.txt"
  awk '/^hull_nri_plugin_call_duration_seconds_count/ { c += $NF } /^hull_nri_plugin_call_duration_seconds_sum/ { s += $NF }
    /^hull_nri_plugin_call_duration_seconds_bucket/ { match($0, /le="[^"]*"/); le = substr($0, RSTART + 4, RLENGTH - 5); b[le] += $NF }
    END { n = 0; for (le in b) if (le != "+Inf") { for (i = ++n; i > 1 && keys[i - 1] + 0 > le + 0; i--) keys[i] = keys[i - 1]; keys[i] = le }
      p50 = p90 = "+Inf"; for (i = 1; i <= n; i++) { k = keys[i]; if (p50 == "+Inf" && b[k] >= c / 2) p50 = k; if (p90 == "+Inf" && b[k] >= c * 0.9) p90 = k }
      print c + 0, s + 0, p50, p90 }' "$T/metrics-$n.txt" >"$T/nri-calls-$n"
  stop_pid "${PID[$n]}"
done

# ---------------------------------------------------------------- report: percentiles of the rounds' medians
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load average at the end $(cut -d' ' -f1-3 /proc/loadavg); hulld $(jq -r .runtime_version "$T/hulld-0.probe" 2>/dev/null) (commit $(git -C "$ROOT" rev-parse --short HEAD)); $ROUNDS rounds of $COUNT pods per setting"
echo "Command: \`hack/bench-nri.sh${ARGS[*]:+ ${ARGS[*]}}\`"
echo
jq -rs --arg settings "$SETTINGS" '
  def pct(p): sort | .[(length - 1) * p | round];
  def median: pct(0.5);
  def r2: . * 100 | round / 100;
  group_by(.label) | map({ n: (.[0].label | tonumber),
    cs50: (map(.ops.create_start.p50_ms) | median), cs99: (map(.ops.create_start.p50_ms) | pct(0.99)),
    c50: (map(.ops.create_container.p50_ms) | median), s50: (map(.ops.start_container.p50_ms) | median),
    load: (map(.loadavg_start | split(" ")[0] | tonumber) | median) }) as $rows
  | ($rows | map(select(.n == 0))[0].cs50) as $base
  | "| logger plugins | CreateContainer+StartContainer p50 (ms) | p99 (ms) | CreateContainer p50 (ms) | StartContainer p50 (ms) | added per plugin, p50 (ms) | per plugin per NRI call (5), p50 (ms) | load average (median at start) |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ($rows | sort_by(.n)[] | "| \(.n) | \(.cs50 | r2) | \(.cs99 | r2) | \(.c50 | r2) | \(.s50 | r2) | \(if .n == 0 then "-" else ((.cs50 - $base) / .n | r2 | tostring) end) | \(if .n == 0 then "-" else ((.cs50 - $base) / .n / 5 | r2 | tostring) end) | \(.load) |")
' "$RESULTS"
echo
for n in $SETTINGS; do
  [ "$n" -eq 0 ] && continue
  read -r calls seconds p50 p90 <"$T/nri-calls-$n"
  echo "NRI calls in hulld with $n logger plugins: $calls, mean $(awk -v c="$calls" -v s="$seconds" 'BEGIN { printf "%.3f", c ? s * 1000 / c : 0 }') ms per call, p50 <= $(awk -v x="$p50" 'BEGIN { print x * 1000 }') ms, p90 <= $(awk -v x="$p90" 'BEGIN { print x * 1000 }') ms (hull_nri_plugin_call_duration_seconds buckets)"
done
