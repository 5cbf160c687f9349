#!/usr/bin/env bash
# Builds the DaemonSet installer image (what the Dockerfile builds) without a Docker engine or base images to pull:
#   layer 1  a minimal Debian bookworm (debootstrap --variant=minbase, plus libssl3 and ca-certificates for .NET's TLS),
#            from the apt mirror the host uses, cached (see below);
#   layer 2  /opt/hull: hulld and hullctl (self-contained, ReadyToRun), the systemd unit, the default config, the
#            install script and VERSION.
# Layers are made with umoci unpack + repack (umoci 0.4.7's `insert` writes truncated tars), into an OCI image layout;
# --push copies it to a registry with skopeo.
#
# usage: hack/build-image.sh [--oci DIR] [--tag TAG] [--push DEST [--insecure]] [--refresh-base]
#   --oci DIR       the OCI image layout to write (default artifacts/hull-image); the image is DIR:TAG
#   --tag TAG       default: the version in Directory.Build.props
#   --push DEST     also copy the image to DEST, e.g. docker://registry.example.com/hull:0.1.0
#   --insecure      push without TLS verification (a local plain-HTTP registry)
#   --refresh-base  build the base layer again instead of using the cached one
# Environment: HULL_IMAGE_CACHE (default /var/cache/hull-image) keeps the base layer (an OCI layout keyed by suite,
# packages and mirror) and debootstrap's downloaded packages: a cold build takes a few minutes (debootstrap about 1.5,
# publishing about 2 to 5), a warm one only the publish. HULL_APT_MIRROR overrides the mirror.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OCI="$ROOT/artifacts/hull-image"
TAG=""
PUSH=""
INSECURE=0
REFRESH=0
while [ $# -gt 0 ]; do
  case "$1" in
    --oci) OCI="$(realpath -m "$2")"; shift ;;
    --tag) TAG="$2"; shift ;;
    --push) PUSH="$2"; shift ;;
    --insecure) INSECURE=1 ;;
    --refresh-base) REFRESH=1 ;;
    -h|--help) sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-image: unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

log() { printf '==> %s\n' "$*"; }
die() { printf 'build-image: error: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, and umoci keeps file owners)"
for tool in debootstrap umoci skopeo dotnet; do
  command -v "$tool" >/dev/null || die "$tool not found (hack/install-deps.sh installs it)"
done

VERSION="$(sed -n 's|.*<Version>\(.*\)</Version>.*|\1|p' "$ROOT/Directory.Build.props" | head -1)"
TAG="${TAG:-$VERSION}"
SUITE=bookworm
INCLUDE=libssl3,ca-certificates
# The host's Debian mirror (deb822 or one-line sources), so the build reaches the network the way apt does.
MIRROR="${HULL_APT_MIRROR:-$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
  sed -n -E 's|^URIs: *(http[^ ]*/debian)/?$|\1|p; s|^deb +(\[[^]]*\] +)?(http[^ ]*/debian)/? .*|\2|p' | head -1 || true)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
CACHE="${HULL_IMAGE_CACHE:-/var/cache/hull-image}"
KEY="$(printf '%s\n' "v1 $SUITE minbase $INCLUDE $MIRROR" | sha256sum | cut -c1-16)"
BASE="$CACHE/base-$KEY"

WORK="$(mktemp -d /tmp/hull-image-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
start=$SECONDS

# ------------------------------------------------------------------ layer 1: the base, cached
if [ "$REFRESH" -eq 1 ] || [ ! -f "$BASE/index.json" ]; then
  log "base: debootstrap --variant=minbase $SUITE from $MIRROR (cached as $BASE)"
  mkdir -p "$CACHE/debs"
  umoci init --layout "$WORK/base"
  umoci new --image "$WORK/base:base"
  umoci unpack --image "$WORK/base:base" "$WORK/bundle"
  debootstrap --variant=minbase --include="$INCLUDE" --cache-dir="$CACHE/debs" "$SUITE" "$WORK/bundle/rootfs" "$MIRROR" \
    >"$WORK/debootstrap.log" 2>&1 || { tail -30 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
  # What an image does not need: package caches and lists, documentation, logs.
  rm -rf "$WORK/bundle/rootfs"/var/cache/apt/*.bin "$WORK/bundle/rootfs"/var/cache/apt/archives/*.deb \
    "$WORK/bundle/rootfs"/var/lib/apt/lists/* "$WORK/bundle/rootfs"/usr/share/doc/* "$WORK/bundle/rootfs"/usr/share/man/* \
    "$WORK/bundle/rootfs"/usr/share/info/* "$WORK/bundle/rootfs"/var/log/*.log "$WORK/bundle/rootfs"/var/log/apt/*
  umoci repack --image "$WORK/base:base" --history.created_by "debootstrap --variant=minbase --include=$INCLUDE $SUITE" "$WORK/bundle"
  rm -rf "$WORK/bundle" "$BASE.new"
  mkdir -p "$CACHE"
  mv "$WORK/base" "$BASE.new"
  rm -rf "$BASE"
  mv "$BASE.new" "$BASE"
  log "base: done ($((SECONDS - start)) s)"
else
  log "base: cached $BASE"
fi

# ------------------------------------------------------------------ layer 2: Hull
log "publish: hulld and hullctl (self-contained, ReadyToRun, linux-x64)"
publish_start=$SECONDS
for project in cmd/hulld cmd/hullctl; do
  dotnet publish "$ROOT/$project" -c Release -r linux-x64 --self-contained -p:PublishReadyToRun=true \
    -o "$WORK/hull" --nologo -v quiet >"$WORK/publish.log" 2>&1 || { tail -40 "$WORK/publish.log" >&2; die "dotnet publish $project failed"; }
done
mkdir -p "$WORK/hull/deploy"
cp "$ROOT/deploy/systemd/hulld.service" "$ROOT/deploy/config.toml" "$WORK/hull/deploy/"
install -m 0755 "$ROOT/deploy/kubernetes/install-on-node.sh" "$WORK/hull/install-on-node.sh"
printf '%s\n' "$VERSION" >"$WORK/hull/VERSION"
log "publish: done ($((SECONDS - publish_start)) s, $(du -sh "$WORK/hull" | cut -f1))"

log "image: $OCI:$TAG"
rm -rf "$OCI"
mkdir -p "$(dirname "$OCI")"
cp -a "$BASE" "$OCI"
umoci unpack --image "$OCI:base" "$WORK/bundle" >/dev/null
cp -a "$WORK/hull" "$WORK/bundle/rootfs/opt/hull"
umoci repack --image "$OCI:$TAG" --history.created_by "hull $VERSION: /opt/hull" "$WORK/bundle"
umoci config --image "$OCI:$TAG" --tag "$TAG" --os linux --architecture amd64 --author "Hull" \
  --config.env "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" --config.env DOTNET_EnableDiagnostics=0 \
  --config.entrypoint /opt/hull/install-on-node.sh --config.workingdir / \
  --config.label "org.opencontainers.image.title=hull" --config.label "org.opencontainers.image.version=$VERSION" \
  --no-history
umoci rm --image "$OCI:base"
umoci gc --layout "$OCI"
log "image: done ($(du -sh "$OCI" | cut -f1))"

if [ -n "$PUSH" ]; then
  log "push: $PUSH"
  tls=()
  [ "$INSECURE" -eq 1 ] && tls=(--dest-tls-verify=false)
  skopeo copy --quiet "${tls[@]}" "oci:$OCI:$TAG" "$PUSH"
fi
log "build-image: ok in $((SECONDS - start)) s: oci:$OCI:$TAG"
