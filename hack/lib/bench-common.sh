# Shared set-up of the side-by-side CRI benchmarks (hack/bench-vs-containerd.sh,
# hack/bench-list-containers.sh): checks and installs prerequisites, creates the temp dir and its teardown
# (hack/lib/cri-env.sh), builds the driver, hulld and the test images, starts a private registry with the pause
# and busybox images, writes one hosts.toml and one CNI config for both servers; start_containerd/start_hulld
# come from hack/lib/cri-env.sh.
# The caller sets ROOT, BENCH_NAME (for messages), BENCH_TAG (temp dir and CNI network suffix), BRIDGE and
# SUBNET (its own, so scripts can run side by side) and the option variables the build steps read, then
# sources this file.
ENV_NAME="$BENCH_NAME" ENV_TAG="bench-$BENCH_TAG"
# shellcheck source=hack/lib/cri-env.sh
. "$ROOT/hack/lib/cri-env.sh"

[ "$(id -u)" -eq 0 ] || die "must run as root"
# One command from a fresh machine: the project's own dependencies first (idempotent, quick when present).
bash "$ROOT/hack/install-deps.sh" --no-build >&2
if ! command -v containerd >/dev/null || ! command -v containerd-shim-runc-v2 >/dev/null; then
  log "installing Debian containerd (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q containerd >&2 ||
    { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q containerd >&2; } ||
    die "apt-get install containerd failed"
fi
for t in containerd containerd-shim-runc-v2 runc conmon go dotnet docker-registry umoci skopeo catatonit jq tar ip iptables-save curl python3; do
  command -v "$t" >/dev/null || die "$t not found (hack/install-deps.sh)"
done
[ -x /usr/lib/cni/bridge ] || die "/usr/lib/cni/bridge not found (apt-get install containernetworking-plugins)"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

env_init
env_on_exit() { # a failed run keeps its logs
  [ "$1" -eq 0 ] && return 0
  KEEP=1
  tail -n 15 "$T"/*.log >&2 2>/dev/null
}

# ---------------------------------------------------------------- build
DRIVER="$T/cri-bench"
log "building the driver bench/cri-bench ($(go version | cut -d' ' -f3), GOPATH mode)"
(
  cd "$ROOT/bench/cri-bench"
  export GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS='' GOPROXY=off
  export GOCACHE="${HULL_GOCACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/hull-go-build}"
  mkdir -p "$GOCACHE"
  go build -o "$DRIVER" .
)
probe_server() { "$DRIVER" probe --socket "$1"; } # JSON the reports read (runtime_version)
if [ "$BUILD" -eq 1 ]; then
  log "building hulld (Release)"
  dotnet build "$ROOT/cmd/hulld" -c Release -nologo -v quiet >&2
fi
[ -f "$HULLD_DIR/hulld.dll" ] || die "$HULLD_DIR/hulld.dll not found"
log "building the test images into $IMAGES"
"$ROOT/hack/build-test-images.sh" "$IMAGES" >&2

# ---------------------------------------------------------------- registry + images
registry_start "$T/registry" "$T/registry/storage"
PIDS+=("$REGISTRY_PID")
REG="$REGISTRY"

# containerd's pause image: one layer, /pause = catatonit (static), run as `catatonit -P`.
log "building the pause image (catatonit -P) and pushing it and busybox to $REG"
PL="$T/pause-build"
mkdir -p "$PL/rootfs"
cp /usr/bin/catatonit "$PL/rootfs/pause"
tar -C "$PL/rootfs" --numeric-owner --owner=0 --group=0 --mtime=@0 -cf "$PL/layer.tar" pause
umoci init --layout "$PL/oci" >/dev/null
umoci new --image "$PL/oci:pause" >/dev/null
umoci raw add-layer --image "$PL/oci:pause" "$PL/layer.tar" >/dev/null
umoci config --image "$PL/oci:pause" --config.entrypoint /pause --config.entrypoint -P --config.user 65535:65535 >/dev/null
PAUSE="$REG/hull-bench/pause:3.9"
IMAGE="$REG/hull-bench/busybox:latest"
skopeo copy -q --dest-tls-verify=false "oci:$PL/oci:pause" "docker://$PAUSE" >&2
skopeo copy -q --dest-tls-verify=false --preserve-digests "oci:$IMAGES/busybox:latest" "docker://$IMAGE" >&2

SANDBOX_IMAGE="$PAUSE" # containerd's
write_hosts_toml "$REG" "$REG"
write_cni_config
