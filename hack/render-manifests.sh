#!/usr/bin/env bash
# Writes deploy/kubernetes/hull.yaml: the hull-system Namespace and charts/hull rendered for release "hull" in it, so
# the plain manifests and the chart are one set of objects (e2e/Hull.Node.E2E/Deploy checks that they agree).
# Builds hack/chart-render (Go's text/template, Helm's engine) first when needed.
#
# usage: hack/render-manifests.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/hack/chart-render/build.sh"
{
  cat <<'HEADER'
# Hull's DaemonSet installer: kubectl apply -f deploy/kubernetes/hull.yaml, then label the nodes that get Hull
# (kubectl label node NAME hull.io/install=true). Generated from charts/hull (release "hull", namespace
# "hull-system") by hack/render-manifests.sh: edit the chart, not this file.
---
apiVersion: v1
kind: Namespace
metadata:
  name: hull-system
HEADER
  "$ROOT/hack/chart-render/bin/chart-render" -name hull -namespace hull-system "$ROOT/charts/hull"
} >"$ROOT/deploy/kubernetes/hull.yaml.new"
mv "$ROOT/deploy/kubernetes/hull.yaml.new" "$ROOT/deploy/kubernetes/hull.yaml"
echo "wrote deploy/kubernetes/hull.yaml"
