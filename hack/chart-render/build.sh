#!/usr/bin/env bash
# Builds hack/chart-render/bin/chart-render in GOPATH mode against Debian's golang-gopkg-yaml.v3-dev (there is no Go
# module proxy); quick when it is up to date.
set -euo pipefail
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -x "$DIR/bin/chart-render" ] && [ "$DIR/bin/chart-render" -nt "$DIR/main.go" ]; then exit 0; fi
cd "$DIR"
export GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS='' GOPROXY=off
export GOCACHE="${HULL_GOCACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/hull-go-build}"
mkdir -p "$GOCACHE" bin
go build -o bin/chart-render .
