#!/usr/bin/env bash
# Installs everything Hull's build and e2e tests need on Debian 12 (bookworm),
# builds the gRPC interop clients (e2e/interop) and, unless --no-build, the
# .NET solution. Idempotent and quick when everything is already in place.
# Runs as root (or with sudo available), non-interactively.
#
# usage: hack/install-deps.sh [--no-build]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DOTNET=1

for arg in "$@"; do
  case "$arg" in
    --no-build) BUILD_DOTNET=0 ;;
    -h|--help)
      sed -n '2,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0 ;;
    *) echo "install-deps: unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

log() { printf '==> %s\n' "$*"; }
die() { printf 'install-deps: error: %s\n' "$*" >&2; exit 1; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "must run as root (or have sudo)"
  SUDO=(sudo)
fi

# ---------------------------------------------------------------- Debian packages
PACKAGES=(
  runc conmon catatonit containernetworking-plugins iptables iproute2
  docker-registry skopeo umoci busybox-static containerd
  golang-go golang-google-grpc-dev golang-google-protobuf-dev
  python3 zstd util-linux bsdutils mount jq curl
  gcc make libc6-dev dpkg-dev bzip2
  prometheus  # for promtool: e2e checks hulld's /v1/metrics with Prometheus' own parser
  debootstrap golang-gopkg-yaml.v3-dev
  qemu-system-x86 xz-utils protobuf-c-compiler libprotobuf-c-dev
)
if ! command -v node >/dev/null 2>&1; then
  PACKAGES+=(nodejs npm)
elif ! command -v npm >/dev/null 2>&1; then
  PACKAGES+=(npm)
fi

# Packages whose dpkg status is not "install ok installed".
missing=()
for pkg in "${PACKAGES[@]}"; do
  st="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
  [ "$st" = "install ok installed" ] || missing+=("$pkg")
done

if [ "${#missing[@]}" -eq 0 ]; then
  log "apt: all ${#PACKAGES[@]} packages already installed"
else
  log "apt: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}" >/dev/null
  log "apt: done"
fi

# ---------------------------------------------------------------- prebuilt test tools + etcd
# The Go module proxy is out of reach, so ../shared/tools holds the Go test tools prebuilt (h2spec, critest, crictl,
# the upstream NRI plugins, kube-apiserver/kubelet/kubectl...; see its README.md); its install.sh unpacks them into
# /usr/local/lib/hull-test-tools and is idempotent. etcd is Debian's etcd-server, unpacked with dpkg -x so that no
# system service is installed or started (e2e/Hull.Node.E2E/Cluster/KubeTools.cs).
TOOLS_DIR=/usr/local/lib/hull-test-tools
SHARED_TOOLS="${HULL_SHARED_TOOLS:-${HULL_TOOLS_SRC:-$ROOT/../shared/tools}}"
if [ -x "$SHARED_TOOLS/install.sh" ]; then
  log "test tools: $("${SUDO[@]}" "$SHARED_TOOLS/install.sh" "$TOOLS_DIR")"
else
  log "warning: $SHARED_TOOLS/install.sh not found (set HULL_SHARED_TOOLS): critest, h2spec, NRI and node e2e tests need them"
fi
if [ ! -x "$TOOLS_DIR/etcd/usr/bin/etcd" ]; then
  log "etcd: apt-get download etcd-server + dpkg -x into $TOOLS_DIR/etcd"
  etcd_tmp="$(mktemp -d)"
  # apt's _apt sandbox user must be able to write the download directory.
  chmod 0777 "$etcd_tmp"
  (cd "$etcd_tmp" && { "${SUDO[@]}" apt-get download -q etcd-server >/dev/null 2>&1 ||
    { "${SUDO[@]}" apt-get update -qq && "${SUDO[@]}" apt-get download -q etcd-server >/dev/null; }; })
  "${SUDO[@]}" mkdir -p "$TOOLS_DIR/etcd"
  "${SUDO[@]}" dpkg -x "$etcd_tmp"/etcd-server_*.deb "$TOOLS_DIR/etcd"
  rm -rf "$etcd_tmp"
fi
log "etcd: $("$TOOLS_DIR/etcd/usr/bin/etcd" --version | head -1)"

# ---------------------------------------------------------------- interop: node (grpc-js)
NODE_DIR="$ROOT/e2e/interop/node"
if [ -f "$NODE_DIR/package.json" ]; then
  stamp="$NODE_DIR/node_modules/.hull-install-stamp"
  if [ -f "$NODE_DIR/package-lock.json" ]; then
    want="$(sha256sum "$NODE_DIR/package.json" "$NODE_DIR/package-lock.json" | sha256sum | cut -d' ' -f1)"
  else
    want="$(sha256sum "$NODE_DIR/package.json" | cut -d' ' -f1)"
  fi
  if [ -d "$NODE_DIR/node_modules" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    log "node interop client: node_modules up to date"
  else
    log "node interop client: installing npm packages (node $(node --version))"
    # --ignore-scripts: the only install script in the tree (protobufjs) just prints version-scheme warnings.
    if [ -f "$NODE_DIR/package-lock.json" ]; then
      (cd "$NODE_DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    else
      (cd "$NODE_DIR" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error)
      want="$(sha256sum "$NODE_DIR/package.json" "$NODE_DIR/package-lock.json" | sha256sum | cut -d' ' -f1)"
    fi
    printf '%s\n' "$want" >"$stamp"
  fi
fi

# ---------------------------------------------------------------- interop: streaming (npm spdy + ws)
STREAM_DIR="$ROOT/e2e/interop/streaming"
if [ -f "$STREAM_DIR/package-lock.json" ]; then
  stamp="$STREAM_DIR/node_modules/.hull-install-stamp"
  want="$(sha256sum "$STREAM_DIR/package.json" "$STREAM_DIR/package-lock.json" | sha256sum | cut -d' ' -f1)"
  if [ -d "$STREAM_DIR/node_modules" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    log "streaming interop clients: node_modules up to date"
  else
    log "streaming interop clients: npm ci (spdy, ws)"
    (cd "$STREAM_DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    printf '%s\n' "$want" >"$stamp"
  fi
fi

# ---------------------------------------------------------------- interop: go (grpc-go 1.33 from Debian)
GO_DIR="$ROOT/e2e/interop/go"
if [ -d "$GO_DIR/cri-probe" ]; then
  log "go interop client: building e2e/interop/go/bin/cri-probe ($(go version | cut -d' ' -f3))"
  # GOPATH mode against Debian's /usr/share/gocode: there is no module proxy.
  (
    cd "$GO_DIR"
    export GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS='' GOPROXY=off
    export GOCACHE="${HULL_GOCACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/hull-go-build}"
    mkdir -p "$GOCACHE" bin
    go build -o bin/cri-probe ./cri-probe
  )
fi

# ---------------------------------------------------------------- chart renderer (Go text/template, Helm's engine)
if [ -x "$ROOT/hack/chart-render/build.sh" ]; then
  log "chart renderer: hack/chart-render/bin/chart-render"
  "$ROOT/hack/chart-render/build.sh"
fi

# ---------------------------------------------------------------- microVM guest (kernel + initramfs)
# The microvm sandboxer's guest, built from Debian packages into /usr/local/lib/hull/microvm (quick when up to date).
"$ROOT/hack/build-microvm.sh"

# ---------------------------------------------------------------- .NET
if [ "$BUILD_DOTNET" -eq 1 ]; then
  command -v dotnet >/dev/null 2>&1 || die "dotnet SDK not found (it is expected to be preinstalled)"
  log "dotnet: building Hull.sln (Release)"
  export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
  dotnet build "$ROOT/Hull.sln" -c Release -nologo
else
  log "dotnet: skipped (--no-build)"
fi

log "install-deps: ok"
