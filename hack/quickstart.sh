#!/usr/bin/env bash
# Hull's main job on embedded defaults: build, start hulld on /run/hull/hull.sock with no config
# file, and show what it serves. Pods from a locally built image arrive with the Pod sandboxes and
# Containers issues; until then the script stops after the runtime answers, and says so.
# Usage: sudo hack/quickstart.sh   (Ctrl-C stops hulld)
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/install-deps.sh
bin="cmd/hulld/bin/Release/net10.0"
ctl="dotnet cmd/hullctl/bin/Release/net10.0/hullctl.dll"
dotnet "$bin/hulld.dll" &
hulld=$!
trap 'kill -TERM $hulld 2>/dev/null; wait $hulld 2>/dev/null' EXIT
for _ in $(seq 1 100); do
  [[ -S /run/hull/hull.sock ]] && $ctl version >/dev/null 2>&1 && break
  sleep 0.1
done
$ctl version
$ctl info
echo
echo "hulld is serving CRI v1 on /run/hull/hull.sock (Ctrl-C to stop)."
echo "Running pods needs the Pod sandboxes and Containers issues: RunPodSandbox answers UNIMPLEMENTED until they land."
wait $hulld
