#!/usr/bin/env bash
# CRI conformance: runs critest (cri-tools v1.36.0) against a fresh hulld and counts the result honestly.
#
# usage: hack/critest.sh [--critest PATH] [--microvm] [--keep] [--report-dir DIR] [critest flags...]
#   --critest PATH    the critest binary (default: the prebuilt one hack/install-deps.sh unpacks)
#   --microvm         run the pods on a runtime handler "microvm" (sandboxer = "microvm": a qemu microVM a pod,
#                     TCG where KVM does not work, so slow) with -runtime-handler microvm; the specs that cannot
#                     apply to a VM are expected failures or skips, each with its reason (MICROVM_RULES below)
#   --keep            keep the temp dir (hulld's log, critest's log and reports) and say where
#   --report-dir DIR  copy the JUnit and JSON reports, critest's log and hulld's log into DIR
#   critest flags     passed on, e.g. -ginkgo.focus=Streaming -websocket-exec -websocket-attach
#
# What it does: builds (or reuses, hack/build-critest-images.sh) every image critest pulls and serves them
# read-only from a private docker-registry on 127.0.0.1; maps registry.k8s.io, k8s.gcr.io and gcr.io to it
# with hosts.toml (critest's -registry-prefix rewrites names in a way the specs do not follow); starts the
# repository's Release build of hulld with its own root, state, socket, NRI socket and CNI bridge (hullcri0,
# 10.91.0.0/16, with portmap); runs critest with -ginkgo.junit-report and -ginkgo.json-report; tears it all
# down (pods, processes, mounts, the bridge, iptables rules, netns, the shared-memory segments the host-IPC
# specs make, temp dirs); prints one line a spec and last "N passed, N failed, N skipped". Exits 1 when
# anything failed. Benchmark specs are not part of the count (hack/bench-critest.sh runs them).
# Runs as root. Two runs never overlap (the specs use fixed host ports 12000-12003): the second waits.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SELF="$ROOT/hack/critest.sh"
ENV_NAME=critest ENV_TAG=cri BRIDGE=hullcri0 SUBNET=10.91.0.0/16 KEEP=0 MICROVM=0
IMAGES="${HULL_CRITEST_IMAGES:-/var/tmp/hull-critest-images}"
REPORT_DIR="" CRITEST_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --critest) CRITEST="${2:?--critest needs a path}"; shift ;;
    --keep) KEEP=1 ;;
    --microvm) MICROVM=1 ;;
    --report-dir) REPORT_DIR="${2:?--report-dir needs a directory}"; shift ;;
    -h|--help) sed -n '2,21p' "$SELF" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) CRITEST_ARGS+=("$1") ;;
  esac
  shift
done

# shellcheck source=hack/lib/cri-env.sh
. "$ROOT/hack/lib/cri-env.sh"
[ -x "$CRITEST" ] || die "$CRITEST not found (hack/install-deps.sh unpacks ../shared/tools)"

# ------------------------------------------------------------------ what is expected not to pass, and why
# One rule a line: KIND<TAB>regular expression on the spec's full text<TAB>reason (hack/lib/critest-report.py).
RULES="skip-by-name	public image with digest should be pulled and removed	its image is test-image-digest@sha256:9700f9a2..., an upstream manifest digest that cannot be rebuilt offline"
# --microvm: specs a pod in a VM cannot pass, each with why (docs/microvm.md lists the same). User namespaces and
# recursive read-only mounts are off for the handler: critest skips those specs itself.
VM_KERNEL="a microVM pod has its own kernel: it cannot share the node's namespaces, so RunPodSandbox refuses it"
# Not run, because each would wait out a 60 s stop timeout: on a node whose KVM boots the guest, run them.
VM_TCG_STOP="under TCG critest's SIGTERM ~0.1 s after the start comes before busybox top handles it; as its namespace's init it ignores it, so the stop takes the whole 60 s timeout, past critest's deadline"
MICROVM_RULES="expected-fail	NamespaceOption runtime should support (HostNetwork is true|HostPID|HostIpc is true)	$VM_KERNEL
expected-fail	portforward in host network	$VM_KERNEL
expected-fail	Mount Propagation .*'rshared' should support propagation from host to container and vice versa	a mount made in the guest does not come back to the host over 9p
expected-fail	support non-recursive readonly mounts	the share is one 9p mount in the guest: read-only reaches the host's submounts below the volume
skip-by-name	should support (stopping container|removing stopped container)|StopContainer should not return an error if already stopped	$VM_TCG_STOP
expected-skip	UserNamespaces	the microvm handler does not offer user namespaces (issue 15 is the runc handler)
expected-skip	Container Mount Readonly .*(support recursive|reject a recursive) readonly	the microvm handler does not offer recursive read-only mounts"
if [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" != Y ]; then
  RULES+="
expected-skip	AppArmor	AppArmor is off on this host"
fi
if [ "$MICROVM" = 1 ]; then
  # A microVM pod has its own kernel: what a spec checks across the VM's boundary cannot hold (docs/microvm.md).
  RULES+="
$MICROVM_RULES"
  CRITEST_ARGS=(-runtime-handler microvm ${CRITEST_ARGS[@]+"${CRITEST_ARGS[@]}"})
  export HULLD_EXTRA_CONFIG="[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.microvm]
  sandboxer = \"microvm\""
fi
for a in "${CRITEST_ARGS[@]}"; do
  case "$a" in -ginkgo.focus=*|--ginkgo.focus=*) RULES+="
focus	${a#*=}	" ;; esac
done
SKIP_BY_NAME="$(awk -F'\t' '$1 == "skip-by-name" { printf "%s%s", sep, $2; sep = "|" }' <<<"$RULES")"
[ -z "$SKIP_BY_NAME" ] || CRITEST_ARGS=(-ginkgo.skip="$SKIP_BY_NAME" ${CRITEST_ARGS[@]+"${CRITEST_ARGS[@]}"})

# ------------------------------------------------------------------------------------------ the run
lock_critest_ports

if [ ! -f "$HULLD_DIR/hulld.dll" ]; then
  log "building hulld (Release)"
  dotnet build "$ROOT/cmd/hulld" -c Release -nologo -v quiet >&2
fi
STORAGE="$(bash "$ROOT/hack/build-critest-images.sh" "$IMAGES")"

env_on_exit() { # copies the reports and logs out of T before teardown removes it
  [ -z "$REPORT_DIR" ] && return 0
  mkdir -p "$REPORT_DIR"
  cp -f "$T"/critest.xml "$T"/critest.json "$T"/critest.log "$T"/hulld.log "$REPORT_DIR"/ 2>/dev/null
  log "reports and logs in $REPORT_DIR"
}
env_init
registry_start "$T/registry" "$STORAGE" --read-only
PIDS+=("$REGISTRY_PID")
write_hosts_toml "$REGISTRY" registry.k8s.io k8s.gcr.io gcr.io
write_cni_config --portmap
start_hulld hulld

log "critest $("$CRITEST" -version 2>/dev/null | awk '/version/ { print $NF; exit }') against hulld ($(awk '/RuntimeVersion/ { print $2 }' "$T/hulld.probe")); log: $T/critest.log"
critest_run "$SRV_SOCK" critest ${CRITEST_ARGS[@]+"${CRITEST_ARGS[@]}"} && critest_rc=0 || critest_rc=$?
log "critest finished in ${CRITEST_SECONDS%.*} s (exit code $critest_rc)"

printf '%s\n' "$RULES" >"$T/rules.tsv"
if [ ! -s "$T/critest.json" ]; then
  tail -n 40 "$T/critest.log"
  echo "critest wrote no report (exit code $critest_rc)"
  ENV_RESULT="0 passed, 1 failed, 0 skipped"
  exit 1
fi
python3 "$ROOT/hack/lib/critest-report.py" "$T/critest.json" "$T/rules.tsv" >"$T/result.txt" && rc=0 || rc=$?
head -n -1 "$T/result.txt"
ENV_RESULT="$(tail -n 1 "$T/result.txt")" # printed after the teardown, as the last line
exit "$rc"
