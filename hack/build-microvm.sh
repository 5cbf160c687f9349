#!/usr/bin/env bash
# Builds the microVM sandboxer's guest from Debian packages, at install time (nothing is downloaded when a
# pod starts): the kernel (the uncompressed vmlinux inside linux-image-amd64's bzImage; qemu -M microvm boots
# it through its PVH entry, and skipping the in-guest xz decompressor saves ~7 s under TCG) and an initramfs
# (busybox-static, the virtio/9p modules, runc and its libraries, hull-agent and its /init).
# Idempotent: quick when the inputs have not changed since the last build.
#
# usage: hack/build-microvm.sh [--out DIR] [--force]
#   --out DIR   where vmlinux, initramfs.cpio and kernel.release go (default /usr/local/lib/hull/microvm)
#   --force     rebuild even when up to date
# Needs (hack/install-deps.sh installs them): gcc make protobuf-c-compiler libprotobuf-c-dev busybox-static
# runc xz-utils, and apt able to download linux-image-amd64.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT=/usr/local/lib/hull/microvm
FORCE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --force) FORCE=1; shift ;;
    -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-microvm: unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
done

log() { printf '==> microvm: %s\n' "$*"; }
die() { printf 'build-microvm: error: %s\n' "$*" >&2; exit 1; }

AGENT_SRC="$ROOT/cmd/hull-agent"
# The guest's modules, in load order (dependencies first): virtio-mmio transport and console (the agent's
# channel), virtio-net, 9p over virtio (the share), overlay, and the bridge (privileged containers make bridges:
# critest's capability specs run `brctl addbr`).
MODULES=(
  drivers/virtio/virtio_ring.ko drivers/virtio/virtio.ko drivers/virtio/virtio_mmio.ko
  drivers/char/virtio_console.ko
  net/core/failover.ko drivers/net/net_failover.ko drivers/net/virtio_net.ko
  net/9p/9pnet.ko net/9p/9pnet_virtio.ko fs/netfs/netfs.ko fs/fscache/fscache.ko fs/9p/9p.ko
  fs/overlayfs/overlay.ko
  net/llc/llc.ko net/802/stp.ko net/bridge/bridge.ko
)
RUNC="$(command -v runc || true)"
BUSYBOX=/bin/busybox
[ -x "$RUNC" ] || die "runc not found (apt-get install runc)"
"$BUSYBOX" --list 2>/dev/null | grep -qx switch_root || die "$BUSYBOX is not busybox-static (apt-get install busybox-static)"
command -v protoc-c >/dev/null || die "protoc-c not found (apt-get install protobuf-c-compiler libprotobuf-c-dev)"

# ---------------------------------------------------------------- inputs and the up-to-date check
kernel_package() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'; }
KPKG="$(kernel_package)"
if [ -z "$KPKG" ]; then
  log "apt knows no linux-image-amd64 yet: apt-get update"
  apt-get update -qq
  KPKG="$(kernel_package)"
fi
[ -n "$KPKG" ] || die "apt knows no linux-image-amd64 (is a Debian main source configured?)"
KVER="$(apt-cache policy "$KPKG" | awk '/Candidate:/ {print $2}')"
RELEASE="${KPKG#linux-image-}"
inputs="$(
  {
    echo "$KPKG $KVER"
    dpkg-query -W -f='${Package} ${Version}\n' runc busybox-static libseccomp2 libc6 libprotobuf-c-dev 2>/dev/null
    cat "${BASH_SOURCE[0]}" "$ROOT/api/microvm/agent.proto" "$AGENT_SRC"/*.c "$AGENT_SRC"/*.h "$AGENT_SRC"/*.proto \
      "$AGENT_SRC"/Makefile "$AGENT_SRC"/init.sh
  } | sha256sum | cut -d' ' -f1
)"
if [ "$FORCE" -eq 0 ] && [ -f "$OUT/inputs" ] && [ "$(cat "$OUT/inputs")" = "$inputs" ] \
   && [ -f "$OUT/vmlinux" ] && [ -f "$OUT/initramfs.cpio" ]; then
  log "up to date in $OUT (kernel $RELEASE)"
  exit 0
fi

WORK="$(mktemp -d /tmp/hull-microvm.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT/cache"

# ---------------------------------------------------------------- kernel
deb="$(ls "$OUT/cache/${KPKG}_${KVER//:/%3a}_"*.deb 2>/dev/null | head -1 || true)"
if [ -z "$deb" ]; then
  log "downloading $KPKG $KVER (extracted only; no host kernel is installed)"
  rm -f "$OUT/cache/"linux-image-*.deb
  (cd "$OUT/cache" && apt-get download -q "$KPKG=$KVER" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
  deb="$(ls "$OUT/cache/${KPKG}_"*.deb 2>/dev/null | head -1 || true)"
  [ -n "$deb" ] || die "apt-get download $KPKG failed"
fi
log "extracting $(basename "$deb")"
dpkg-deb -x "$deb" "$WORK/kernel"
bzimage="$WORK/kernel/boot/vmlinuz-$RELEASE"
[ -f "$bzimage" ] || die "$bzimage is not in $deb"

# The bzImage is a boot stub followed by the compressed kernel ELF: find the payload by its magic.
extract() { # magic-as-grep-pattern decompress-command
  local offset
  offset="$(LC_ALL=C grep -obUaP "$1" "$bzimage" | head -1 | cut -d: -f1 || true)"
  [ -n "$offset" ] || return 1
  tail -c +"$((offset + 1))" "$bzimage" | $2 >"$WORK/vmlinux" 2>/dev/null || true
  [ "$(head -c 4 "$WORK/vmlinux" | od -An -tx1 | tr -d ' ')" = "7f454c46" ]
}
extract '\xfd\x37\x7a\x58\x5a\x00' 'xz -dc --single-stream' \
  || extract '\x28\xb5\x2f\xfd' 'zstd -dc' \
  || extract '\x1f\x8b\x08' 'gzip -dc' \
  || die "cannot find an xz, zstd or gzip compressed ELF kernel in $bzimage"

# ---------------------------------------------------------------- agent
log "building hull-agent"
make -s -C "$AGENT_SRC" OUT="$WORK/agent" >/dev/null

# ---------------------------------------------------------------- initramfs
log "assembling the initramfs"
S="$WORK/initramfs"
mkdir -p "$S"/{bin,sbin,usr/bin,usr/sbin,lib/modules,proc,sys,dev,run,tmp,etc,newroot}
cp "$BUSYBOX" "$S/bin/busybox"
for applet in $("$BUSYBOX" --list); do
  [ -e "$S/bin/$applet" ] || ln -s busybox "$S/bin/$applet"
done
install -m 0755 "$WORK/agent/hull-agent" "$S/sbin/hull-agent"
install -m 0755 "$AGENT_SRC/init.sh" "$S/init"
install -m 0755 "$RUNC" "$S/usr/bin/runc"
# runc's shared libraries (libseccomp, libc, the loader), at the paths the binary asks for.
for lib in $(ldd "$RUNC" | awk '/=> \// {print $3} /^\t\/[^ ]+ \(/ {print $1}'); do
  mkdir -p "$S$(dirname "$lib")"
  cp -L "$lib" "$S$lib"
done
moddir="$WORK/kernel/lib/modules/$RELEASE/kernel"
: >"$S/lib/modules/load-order"
for m in "${MODULES[@]}"; do
  name="$(basename "$m")"
  if [ -f "$moddir/$m" ]; then cp "$moddir/$m" "$S/lib/modules/$name"
  elif [ -f "$moddir/$m.xz" ]; then xz -dc "$moddir/$m.xz" >"$S/lib/modules/$name"
  elif [ -f "$moddir/$m.zst" ]; then zstd -qdc "$moddir/$m.zst" >"$S/lib/modules/$name"
  else die "module $m is not in $KPKG"
  fi
  echo "$name" >>"$S/lib/modules/load-order"
done
printf 'root:x:0:0:root:/:/bin/sh\n' >"$S/etc/passwd"
printf 'root:x:0:\n' >"$S/etc/group"
mknod -m 0600 "$S/dev/console" c 5 1
# Uncompressed: the kernel then only copies it, which is faster under TCG than any decompressor.
(cd "$S" && find . -mindepth 1 | LC_ALL=C sort | "$BUSYBOX" cpio -o -H newc -R 0:0 2>/dev/null) >"$WORK/initramfs.cpio"

# ---------------------------------------------------------------- install (each file replaced atomically)
install -m 0644 "$WORK/vmlinux" "$OUT/.vmlinux.new" && mv -f "$OUT/.vmlinux.new" "$OUT/vmlinux"
install -m 0644 "$WORK/initramfs.cpio" "$OUT/.initramfs.new" && mv -f "$OUT/.initramfs.new" "$OUT/initramfs.cpio"
echo "$RELEASE" >"$OUT/kernel.release"
echo "$inputs" >"$OUT/inputs"
log "built $OUT: vmlinux ($(du -h "$OUT/vmlinux" | cut -f1)), initramfs.cpio ($(du -h "$OUT/initramfs.cpio" | cut -f1)), kernel $RELEASE"
