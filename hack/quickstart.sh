#!/usr/bin/env bash
# Hull's main job on embedded defaults: build Hull, build a busybox image locally (no network),
# start hulld with no config file, import the image and run a pod with one container in it, the
# way the kubelet would (RunPodSandbox, CreateContainer, StartContainer, ... RemovePodSandbox).
# Usage: sudo hack/quickstart.sh [--keep-running]   (as root; --keep-running leaves hulld up)
# Ends with "quickstart: OK" and exit code 0, or "quickstart: FAILED ..." naming the step and a non-zero code.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
keep=0
[[ "${1:-}" == "--keep-running" ]] && keep=1
fail() { echo "quickstart: FAILED: $*" >&2; exit 1; }
trap 'rc=$?; echo "quickstart: FAILED (exit code $rc) at hack/quickstart.sh line $LINENO: $BASH_COMMAND" >&2' ERR
(( EUID == 0 )) || fail "must run as root (sudo hack/quickstart.sh)"

bash hack/install-deps.sh
# Embedded defaults read CNI configs from /etc/cni/net.d and plugins from /opt/cni/bin, as containerd does.
bash hack/cni/install.sh
mkdir -p /opt/cni/bin
for plugin in /usr/lib/cni/*; do [[ -e "/opt/cni/bin/$(basename "$plugin")" ]] || ln -s "$plugin" /opt/cni/bin/; done

work="$(mktemp -d)" pid=""
cleanup() { [[ -z "$pid" ]] || ((keep)) || { kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }; rm -rf "$work"; }
trap cleanup EXIT
bash hack/build-test-images.sh "$work/images" >/dev/null
skopeo copy -q "oci:$work/images/busybox:latest" "oci-archive:$work/busybox.tar"

hulld="cmd/hulld/bin/Release/net10.0/hulld.dll"
ctl=(dotnet cmd/hullctl/bin/Release/net10.0/hullctl.dll)
dotnet "$hulld" &
pid=$!
for _ in $(seq 1 200); do
  "${ctl[@]}" version >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || fail "hulld exited during start-up (its output is above)"
  sleep 0.1
done
"${ctl[@]}" version || fail "hulld did not answer on /run/hull/hull.sock within 20 s (its output is above)"

"${ctl[@]}" images import "$work/busybox.tar" --name hull.local/busybox:latest
out="$("${ctl[@]}" run --name quickstart hull.local/busybox:latest -- \
  sh -c 'echo "hello from a Hull pod: $(hostname)"; /bin/busybox ip -4 -o addr show eth0; id')" ||
  fail "the pod did not run to success (hullctl run exited with $?): ${out:-no output}"
echo "$out"
grep -q '^hello from a Hull pod' <<<"$out" || fail "the pod ran but did not print its greeting"
if ((keep)); then echo "hulld keeps running on /run/hull/hull.sock (pid $pid)"; fi
echo "quickstart: OK"
