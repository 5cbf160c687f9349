#!/usr/bin/env bash
# critest against hulld and against Debian's containerd 1.6, back to back on the same machine (issue 14
# item 6): the wall time of the conformance suite, and critest's own -benchmark specs (pod, container and
# image lifecycles, image listing, pod + container from scratch), reported as hulld / containerd ratios.
#
# usage: hack/bench-critest.sh [options]
#   --rounds N     conformance runs per server, alternating hulld, containerd, hulld, ... (default 2)
#   --samples N    samples per -benchmark spec, one at a time (default 20)
#   --write-docs   insert the result into docs/benchmarks.md (section "critest against hulld and containerd")
#   --keep         keep the temp dir (logs, reports, benchmark data)
#
# Both servers run side by side for the whole run, idle while the other is measured, with the same images
# (hack/build-critest-images.sh, served read-only by a private docker-registry and mapped through one
# hosts.toml each for registry.k8s.io, k8s.gcr.io and gcr.io), the same CNI config (bridge hullcrb0,
# 10.92.0.0/16, portmap) and containerd's sandbox image = that registry's pause:3.9 (catatonit -P).
# Conformance runs skip the same digest spec hack/critest.sh skips (its image cannot be rebuilt offline);
# their counts are critest's raw ones (hack/critest.sh applies Hull's expected-to-skip list on top).
# Runs as root; waits for any hack/critest.sh run (the specs use fixed host ports).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ENV_NAME=bench-critest ENV_TAG=crb BRIDGE=hullcrb0 SUBNET=10.92.0.0/16 KEEP=0
IMAGES="${HULL_CRITEST_IMAGES:-/var/tmp/hull-critest-images}"
ROUNDS=2 SAMPLES=20 WRITE_DOCS=0
ARGS=("$@")
need() { [ $# -ge 2 ] || { echo "bench-critest: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) need "$@"; ROUNDS="$2"; shift ;;
    --samples) need "$@"; SAMPLES="$2"; shift ;;
    --write-docs) WRITE_DOCS=1 ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-critest: unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

# shellcheck source=hack/lib/cri-env.sh
. "$ROOT/hack/lib/cri-env.sh"
for t in containerd containerd-shim-runc-v2 "$CRITEST" python3; do
  command -v "$t" >/dev/null || die "$t not found (hack/install-deps.sh)"
done
lock_critest_ports

if [ ! -f "$HULLD_DIR/hulld.dll" ]; then
  log "building hulld (Release)"
  dotnet build "$ROOT/cmd/hulld" -c Release -nologo -v quiet >&2
fi
STORAGE="$(bash "$ROOT/hack/build-critest-images.sh" "$IMAGES")"

env_init
env_on_exit() { # a failed run keeps its logs
  [ "$1" -eq 0 ] && return 0
  KEEP=1
  tail -n 15 "$T"/*.log >&2 2>/dev/null
}
registry_start "$T/registry" "$STORAGE" --read-only
PIDS+=("$REGISTRY_PID")
write_hosts_toml "$REGISTRY" registry.k8s.io k8s.gcr.io gcr.io
write_cni_config --portmap
SANDBOX_IMAGE=registry.k8s.io/pause:3.9
start_hulld hulld; H_SOCK=$SRV_SOCK
start_containerd containerd; C_SOCK=$SRV_SOCK

LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------------------------- conformance
# hack/critest.sh skips this spec by name (reason there); the same for both servers here.
SKIP_DIGEST="public image with digest should be pulled and removed"
for r in $(seq 1 "$ROUNDS"); do
  for s in hulld containerd; do
    if [ $s = hulld ]; then sock=$H_SOCK; else sock=$C_SOCK; fi
    log "conformance round $r on $s"
    critest_run "$sock" "conformance-$s-$r" -ginkgo.skip="$SKIP_DIGEST" || true
    echo "$CRITEST_SECONDS" >"$T/conformance-$s-$r.seconds"
    log "conformance round $r on $s: ${CRITEST_SECONDS} s"
  done
done

# ----------------------------------------------------------------------------------- benchmarks
PULL_IMAGE=gcr.io/k8s-staging-cri-tools/test-image-latest:latest
# The same images in both stores while ListImages is timed: what the conformance runs left, and these (the
# Image specs remove only $PULL_IMAGE).
LISTED=(registry.k8s.io/e2e-test-images/busybox:1.29-2 registry.k8s.io/e2e-test-images/nginx:1.14-2
  registry.k8s.io/e2e-test-images/httpd:2.4.39-4 registry.k8s.io/pause:3.9
  gcr.io/k8s-staging-cri-tools/test-image-1:latest gcr.io/k8s-staging-cri-tools/test-image-2:latest
  gcr.io/k8s-staging-cri-tools/test-image-3:latest gcr.io/k8s-staging-cri-tools/test-image-tags:1)
cat >"$T/benchmark-params.yaml" <<EOF
containersNumber: $SAMPLES
containersNumberParallel: 1
podsNumber: $SAMPLES
podsNumberParallel: 1
imagesNumber: $SAMPLES
imagesNumberParallel: 1
imagePullingBenchmarkImage: $PULL_IMAGE
imageListingBenchmarkImages: [$PULL_IMAGE]
podContainerStartBenchmarkTimeoutSeconds: 60
EOF
for s in hulld containerd; do
  if [ $s = hulld ]; then sock=$H_SOCK; else sock=$C_SOCK; fi
  for image in "${LISTED[@]}"; do
    "$CRICTL" --runtime-endpoint "unix://$sock" --image-endpoint "unix://$sock" pull "$image" >/dev/null
  done
  "$CRICTL" --runtime-endpoint "unix://$sock" --image-endpoint "unix://$sock" images -q | wc -l >"$T/benchmark-$s.images"
  mkdir -p "$T/benchmark-$s"
  log "benchmark specs on $s ($SAMPLES samples each)"
  critest_run "$sock" "benchmark-$s" -benchmark -benchmarking-params-file "$T/benchmark-params.yaml" \
    -benchmarking-output-dir "$T/benchmark-$s" || log "warning: a benchmark spec failed on $s (see $T/benchmark-$s.log)"
done

# --------------------------------------------------------------------------------------- report
mem_gib="$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)"
cpu_model="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
cat >"$T/header.md" <<EOF
### $(date -u '+%Y-%m-%d %H:%M UTC'): critest v1.36.0, conformance × $ROUNDS rounds, benchmark specs × $SAMPLES samples, $(nproc) CPUs

- Machine: $(nproc) × ${cpu_model:-unknown CPU}, ${mem_gib} GiB, Linux $(uname -r); load average at the start $LOAD_START, at the end $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared with other jobs).
- hulld $(awk '/RuntimeVersion/ { print $2 }' "$T/hulld.probe") (commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), Release, .NET $(dotnet --list-runtimes 2>/dev/null | awk '/Microsoft.NETCore.App/ { v = $2 } END { print v }'), conmon $(conmon --version 2>/dev/null | awk 'NR==1 {print $3}')); containerd $(dpkg-query -W -f='${Version}' containerd 2>/dev/null) (Debian, CRI plugin); runc $(runc --version | awk 'NR==1 {print $3}').
- Command: \`hack/bench-critest.sh${ARGS[*]:+ ${ARGS[*]}}\`
EOF
python3 "$ROOT/hack/lib/bench-critest-report.py" "$T" "$ROUNDS" >"$T/result.md"
echo
cat "$T/header.md"
echo
cat "$T/result.md"
if [ "$WRITE_DOCS" -eq 1 ]; then
  python3 "$ROOT/hack/lib/bench-critest-report.py" --insert "$ROOT/docs/benchmarks.md" "$T/header.md" "$T/result.md"
  log "inserted into docs/benchmarks.md"
fi
