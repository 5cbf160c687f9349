#!/usr/bin/env bash
# Builds the container images Hull's end-to-end tests pull, without a network: everything comes
# from Debian's busybox-static (/bin/busybox), umoci and skopeo. Idempotent: OUTDIR keeps a stamp
# of this script's hash (and busybox's), and a second run with the same stamp does nothing.
#
# usage: hack/build-test-images.sh [--big] [--push HOST:PORT] [--creds USER:PASS] OUTDIR
#
#   --big            also build `big` (HULL_BIG_IMAGE_MB MiB of random data, default 200, in
#                    HULL_BIG_IMAGE_LAYERS layers, default 4), for the pull benchmark
#   --push HOST:PORT push every built image to the (plain HTTP) registry at HOST:PORT as
#                    HOST:PORT/hull-test/<name>:latest and print "<name> <reference> <digest>" lines
#   --creds U:P      registry credentials for --push (Basic or token auth)
#
# OUTDIR after a build (each an OCI image layout with one tag, `latest`, unless noted):
#   busybox        one gzip layer: /bin/busybox + applet symlinks, /etc/passwd and /etc/group
#                  (root, nobody, hulltest 1000:1000, hullgroup 2000 with member hulltest),
#                  /tmp 1777, /work; config Cmd ["sh"], Env PATH + HULL_IMAGE, WorkingDir /work,
#                  label org.hull.test.image=busybox
#   multilayer     busybox + 5 layers under /data (see build_multilayer)
#   zstd           busybox with its layer recompressed as tar+zstd (skopeo)
#   uncompressed   busybox with an uncompressed (application/vnd.oci.image.layer.v1.tar) layer
#   multiarch      an OCI image index: linux/amd64 and linux/arm64/v8, both with busybox's layer;
#                  each config has Env HULL_PLATFORM=<os/arch> so a test can tell which it got
#   docker-schema2 busybox as a Docker schema 2 manifest (skopeo `dir:` layout, not OCI)
#   pause          busybox's layer as a stand-in pause image: Entrypoint ["/bin/sleep"], Cmd ["infinity"],
#                  User 65534:65534, Env HULL_IMAGE=pause (for pinned_images.sandbox tests)
#   big            (--big) busybox + random-data layers
#   digests        "<name> <manifest digest>" for every image above; pushes keep these digests
# The Docker schema 1 image (docker-schema1) is made at push time: skopeo signs a schema 1
# manifest for the destination name, so it cannot be stored beforehand (see push_all).
#
# What umoci 0.4.7 / skopeo 1.9 can and cannot do, found while writing this:
# - `umoci insert` writes truncated layer tars: every layer here is unpack / edit rootfs / repack,
#   or `umoci raw add-layer` of a tar made by GNU tar (which is written verbatim, then gzipped).
# - `umoci repack` has no compression option: it always writes tar+gzip. zstd and uncompressed
#   variants come from skopeo: `--dest-compress-format zstd` into a fresh OCI layout (into the
#   same layout it reuses the gzip blob and changes nothing), and `--dest-decompress` only works
#   for the `dir:` transport, so uncompressed is oci -> dir (decompress) -> oci with
#   `--dest-oci-accept-uncompressed-layers`. Pushes use --preserve-digests so skopeo does not
#   recompress the uncompressed layer (a docker:// destination otherwise always compresses).
# - `umoci repack` of a directory replaced with `rm -rf dir && mkdir dir` writes one whiteout per
#   removed file (dir/.wh.<name>), never an opaque whiteout; the real `.wh..wh..opq` layer in
#   `multilayer` is therefore made by hand with GNU tar and added with `umoci raw add-layer`.
# - umoci keeps user.* xattrs (as PAX SCHILY.xattr.* records), hard links, setuid bits and owners.
# - `skopeo copy --format v2s1` works (skopeo signs the schema 1 manifest with a throwaway key),
#   but distribution 2.8 refuses it ("manifest schema v1 unsupported", HTTP 500) unless its
#   config has `compatibility: schema1: enabled: true`; the e2e RegistryProcess enables that.
set -euo pipefail

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
BIG=0 PUSH="" CREDS="" OUT=""
while (($#)); do
  case "$1" in
    --big) BIG=1 ;;
    --push) PUSH="${2:?--push needs HOST:PORT}"; shift ;;
    --creds) CREDS="${2:?--creds needs USER:PASS}"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$SELF" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "build-test-images: unknown option $1 (try --help)" >&2; exit 2 ;;
    *) [[ -z "$OUT" ]] || { echo "build-test-images: more than one OUTDIR" >&2; exit 2; }; OUT="$1" ;;
  esac
  shift
done
[[ -n "$OUT" ]] || { echo "usage: $0 [--big] [--push HOST:PORT] [--creds USER:PASS] OUTDIR" >&2; exit 2; }

BUSYBOX=/bin/busybox
BIG_MB="${HULL_BIG_IMAGE_MB:-200}"
BIG_LAYERS="${HULL_BIG_IMAGE_LAYERS:-4}"
APPLETS=(sh echo cat ls sleep id env nc httpd ps kill true false top wget mkdir touch stat test head
  tail sort wc grep sed awk dd seq yes date hostname mount
  cp mv rm ln chmod chown readlink uname pwd tr xargs find tee timeout nproc printf sha256sum pidof
  umount whoami groups)
PATH_ENV="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build-test-images: error: %s\n' "$*" >&2; exit 1; }

for tool in umoci skopeo python3 tar flock sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed; run hack/install-deps.sh"
done
[[ -x "$BUSYBOX" ]] || die "$BUSYBOX is missing; install busybox-static"
# umoci unpack/repack keep file owners (hulltest's files are 1000:1000) only as root.
[[ "$(id -u)" -eq 0 ]] || die "must run as root"

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
# One builder at a time per OUTDIR (parallel test runs share /var/tmp/hull-test-images).
exec 9>"$OUT/.lock"
flock 9
# We hold the lock: a work directory left here is from a build that was killed.
rm -rf "$OUT"/.work.*

HASH="$( { cat "$SELF"; if [[ -d "$(dirname "$SELF")/lib" ]]; then find "$(dirname "$SELF")/lib" -type f -print0 | sort -z | xargs -0r cat; fi; sha256sum "$BUSYBOX"; } | sha256sum | cut -d' ' -f1)"

# ------------------------------------------------------------------------------------ helpers

# The manifest (or index) digest of an image, as a registry will report it.
manifest_digest() { # transport:path
  local raw; raw="$(mktemp)"
  skopeo inspect --raw "$1" >"$raw"
  skopeo manifest-digest "$raw"
  rm -f "$raw"
}

# unpack LAYOUT:TAG BUNDLE: a fresh bundle whose rootfs is the image, for repacks on top of it.
unpack() { rm -rf "$2"; umoci unpack --image "$1" "$2" >/dev/null; }
# repack BUNDLE LAYOUT:TAG WHAT: one new layer with the rootfs changes since the last (re)pack.
repack() { umoci repack --refresh-bundle --history.created_by "hull-test: $3" --image "$2" "$1" >/dev/null; }

# export LAYOUT:TAG NAME: copies one tag of the work layout into OUTDIR/NAME as `latest`.
export_image() {
  rm -rf "${STAGE:?}/$2"
  skopeo copy -q "oci:$1" "oci:$STAGE/$2:latest"
}

# --------------------------------------------------------------------------------- the images

build_busybox() { # L
  local b="$WORK/bundle-busybox" r a
  umoci new --image "$1:empty"
  unpack "$1:empty" "$b"
  r="$b/rootfs"
  mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,root,home/hulltest,tmp,var/tmp,work,proc,sys,dev,run}
  cp "$BUSYBOX" "$r/bin/busybox"
  chmod 0755 "$r/bin/busybox"
  local applets; applets=" $("$BUSYBOX" --list | tr '\n' ' ') "
  for a in "${APPLETS[@]}"; do
    [[ "$applets" == *" $a "* ]] || die "busybox has no applet $a"
    ln -s busybox "$r/bin/$a"
  done
  ln -s ../../bin/busybox "$r/usr/bin/env"
  cat >"$r/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
hulltest:x:1000:1000:Hull test user:/home/hulltest:/bin/sh
EOF
  cat >"$r/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
hulltest:x:1000:
hullgroup:x:2000:hulltest
EOF
  chmod 0644 "$r/etc/passwd" "$r/etc/group"
  chmod 0700 "$r/root"
  chown 1000:1000 "$r/home/hulltest"
  chmod 1777 "$r/tmp" "$r/var/tmp"
  repack "$b" "$1:busybox" "busybox layer"
  umoci config --image "$1:busybox" --no-history \
    --config.cmd sh --config.env "$PATH_ENV" --config.env HULL_IMAGE=busybox \
    --config.workingdir /work --config.label org.hull.test.image=busybox
}

# Layers, in order:
#  1 adds /data/{a.txt,b.txt,keep/k.txt,replaced/{old1,old2},opaque/{old1,old2},gone/{x,y}}
#  2 deletes /data/b.txt and /data/gone           -> whiteouts data/.wh.b.txt, data/.wh.gone
#  3 replaces /data/replaced (rm -rf; mkdir; new)  -> umoci writes data/replaced/.wh.old1,
#                                                     .wh.old2 (per-file whiteouts, no opaque)
#  4 adds a hard link /data/hardlink-to-a (-> a.txt), /data/xattr.txt with user.hull.test=hello,
#    /data/owned (1000:1000, 0640), /data/suid (04755 script), symlinks /data/link-to-a -> a.txt
#    and /data/abs-link -> /data/a.txt
#  5 (GNU tar + umoci raw add-layer) data/opaque/.wh..wh..opq + data/opaque/new: a real opaque
#    whiteout, so /data/opaque holds only `new`
# Config: label org.hull.test.image=multilayer, Env HULL_IMAGE=multilayer.
build_multilayer() { # L
  local b="$WORK/bundle-multilayer" r stage="$WORK/opaque-layer"
  unpack "$1:busybox" "$b"
  r="$b/rootfs"
  mkdir -p "$r"/data/{keep,replaced,opaque,gone}
  echo a >"$r/data/a.txt"
  echo b >"$r/data/b.txt"
  echo k >"$r/data/keep/k.txt"
  echo old1 >"$r/data/replaced/old1"; echo old2 >"$r/data/replaced/old2"
  echo old1 >"$r/data/opaque/old1"; echo old2 >"$r/data/opaque/old2"
  echo x >"$r/data/gone/x"; echo y >"$r/data/gone/y"
  repack "$b" "$1:multilayer" "add files"

  rm "$r/data/b.txt"
  rm -rf "$r/data/gone"
  repack "$b" "$1:multilayer" "delete a file and a directory"

  rm -rf "$r/data/replaced"
  mkdir "$r/data/replaced"
  echo new >"$r/data/replaced/new"
  repack "$b" "$1:multilayer" "replace a directory"

  ln "$r/data/a.txt" "$r/data/hardlink-to-a"
  echo xattr >"$r/data/xattr.txt"
  python3 -c 'import os,sys; os.setxattr(sys.argv[1], "user.hull.test", b"hello")' "$r/data/xattr.txt" 2>/dev/null ||
    die "cannot set a user.* xattr under $OUT (filesystem without user xattrs?); use another OUTDIR"
  echo owned >"$r/data/owned"
  chown 1000:1000 "$r/data/owned"
  chmod 0640 "$r/data/owned"
  printf '#!/bin/sh\nid -u\n' >"$r/data/suid"
  chmod 4755 "$r/data/suid"
  ln -s a.txt "$r/data/link-to-a"
  ln -s /data/a.txt "$r/data/abs-link"
  repack "$b" "$1:multilayer" "hard link, xattr, owner, setuid, symlinks"

  rm -rf "$stage"
  mkdir -p "$stage/data/opaque"
  : >"$stage/data/opaque/.wh..wh..opq"
  echo new >"$stage/data/opaque/new"
  tar -C "$stage" --sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 --format=gnu \
    -cf "$WORK/opaque.tar" data/opaque
  umoci raw add-layer --history.created_by "hull-test: opaque whiteout" --image "$1:multilayer" "$WORK/opaque.tar"
  umoci config --image "$1:multilayer" --no-history \
    --config.env HULL_IMAGE=multilayer --config.label org.hull.test.image=multilayer
}

build_multiarch() { # L
  umoci config --image "$1:busybox" --no-history --tag multiarch-amd64 \
    --config.env HULL_PLATFORM=linux/amd64 --config.label org.hull.test.image=multiarch
  umoci config --image "$1:busybox" --no-history --tag multiarch-arm64 --architecture arm64 \
    --config.env HULL_PLATFORM=linux/arm64 --config.label org.hull.test.image=multiarch
  # umoci cannot write an index; add one to the layout by hand.
  python3 - "$1" <<'EOF'
import hashlib, json, os, sys
layout = sys.argv[1]
index_path = os.path.join(layout, "index.json")
index = json.load(open(index_path))
def tagged(tag):
    return next(d for d in index["manifests"] if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
def entry(tag, platform):
    d = tagged(tag)
    return {"mediaType": d["mediaType"], "digest": d["digest"], "size": d["size"], "platform": platform}
image_index = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [
        entry("multiarch-amd64", {"architecture": "amd64", "os": "linux"}),
        entry("multiarch-arm64", {"architecture": "arm64", "os": "linux", "variant": "v8"}),
    ],
}
blob = json.dumps(image_index, separators=(",", ":")).encode()
digest = hashlib.sha256(blob).hexdigest()
with open(os.path.join(layout, "blobs", "sha256", digest), "wb") as f:
    f.write(blob)
index["manifests"] = [d for d in index["manifests"] if d.get("annotations", {}).get("org.opencontainers.image.ref.name") != "multiarch"]
index["manifests"].append({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:" + digest,
                           "size": len(blob), "annotations": {"org.opencontainers.image.ref.name": "multiarch"}})
json.dump(index, open(index_path, "w"), separators=(",", ":"))
EOF
}

build_pause() { # L
  umoci config --image "$1:busybox" --no-history --tag pause \
    --config.entrypoint /bin/sleep --config.cmd infinity --config.user 65534:65534 \
    --config.env HULL_IMAGE=pause --config.label org.hull.test.image=pause
}

build_big() { # L
  local b="$WORK/bundle-big" i per
  per=$(( BIG_MB * 1024 * 1024 / BIG_LAYERS ))
  unpack "$1:busybox" "$b"
  mkdir -p "$b/rootfs/big"
  for ((i = 1; i <= BIG_LAYERS; i++)); do
    head -c "$per" /dev/urandom >"$b/rootfs/big/random-$i"
    repack "$b" "$1:big" "random data $i"
  done
  umoci config --image "$1:big" --no-history \
    --config.env HULL_IMAGE=big --config.label org.hull.test.image=big
}

write_digests() { # names...
  local n
  for n in "$@"; do
    case "$n" in
      docker-schema2) echo "$n $(manifest_digest "dir:$OUT/$n")" ;;
      *) echo "$n $(manifest_digest "oci:$OUT/$n:latest")" ;;
    esac
  done
}

SMALL=(busybox multilayer zstd uncompressed multiarch docker-schema2 pause)

build_small() {
  log "building test images into $OUT"
  WORK="$(mktemp -d "$OUT/.work.XXXXXX")" STAGE="$WORK/out"
  trap 'rm -rf "$WORK"' EXIT
  local L="$WORK/layout"
  mkdir -p "$STAGE"
  umoci init --layout "$L"
  build_busybox "$L"
  build_multilayer "$L"
  build_multiarch "$L"
  build_pause "$L"
  export_image "$L:busybox" busybox
  export_image "$L:pause" pause
  export_image "$L:multilayer" multilayer
  rm -rf "$STAGE/multiarch"
  skopeo copy -q --all "oci:$L:multiarch" "oci:$STAGE/multiarch:latest"
  # A fresh layout: into $L itself skopeo would reuse the gzip blob and change nothing.
  skopeo copy -q --dest-compress-format zstd "oci:$L:busybox" "oci:$STAGE/zstd:latest"
  skopeo copy -q --dest-decompress "oci:$L:busybox" "dir:$WORK/uncompressed-dir"
  skopeo copy -q --dest-oci-accept-uncompressed-layers "dir:$WORK/uncompressed-dir" "oci:$STAGE/uncompressed:latest"
  skopeo copy -q --format v2s2 "oci:$L:busybox" "dir:$STAGE/docker-schema2"
  local n
  for n in "${SMALL[@]}"; do rm -rf "${OUT:?}/$n"; mv "$STAGE/$n" "$OUT/$n"; done
  write_digests "${SMALL[@]}" >"$OUT/digests"
  echo "$HASH" >"$OUT/.stamp"
  rm -rf "$WORK"; trap - EXIT
}

build_big_image() {
  log "building big test image ($BIG_MB MiB in $BIG_LAYERS layers) into $OUT"
  WORK="$(mktemp -d "$OUT/.work.XXXXXX")" STAGE="$WORK/out"
  trap 'rm -rf "$WORK"' EXIT
  local L="$WORK/layout"
  mkdir -p "$STAGE"
  skopeo copy -q "oci:$OUT/busybox:latest" "oci:$L:busybox"
  build_big "$L"
  export_image "$L:big" big
  rm -rf "$OUT/big"; mv "$STAGE/big" "$OUT/big"
  grep -v '^big ' "$OUT/digests" >"$OUT/digests.new" || true
  write_digests big >>"$OUT/digests.new"
  mv "$OUT/digests.new" "$OUT/digests"
  echo "$HASH $BIG_MB $BIG_LAYERS" >"$OUT/.stamp-big"
  rm -rf "$WORK"; trap - EXIT
}

# ------------------------------------------------------------------------------------ pushing

# The digest the registry serves for HOST/REPO:TAG (skopeo computes schema 1 digests the way
# registries do, over the manifest without its signatures).
registry_digest() { # repo tag
  local creds=() raw d
  [[ -z "$CREDS" ]] || creds=(--creds "$CREDS")
  raw="$(mktemp)"
  skopeo inspect --raw --tls-verify=false "${creds[@]}" "docker://$PUSH/$1:$2" >"$raw"
  d="$(skopeo manifest-digest "$raw")"
  rm -f "$raw"
  [[ -n "$d" ]] || die "registry $PUSH reported no digest for $1:$2"
  echo "$d"
}

push_all() {
  local creds=() names=("${SMALL[@]}") n src ref extra
  [[ -z "$CREDS" ]] || creds=(--dest-creds "$CREDS")
  ((BIG)) && names+=(big)
  for n in "${names[@]}"; do
    ref="$PUSH/hull-test/$n:latest"
    extra=()
    case "$n" in
      docker-schema2) src="dir:$OUT/$n" ;;
      multiarch) src="oci:$OUT/$n:latest"; extra=(--all) ;;
      *) src="oci:$OUT/$n:latest" ;;
    esac
    skopeo copy -q --dest-tls-verify=false --preserve-digests "${creds[@]}" "${extra[@]}" "$src" "docker://$ref" >&2
    echo "$n $ref $(registry_digest "hull-test/$n" latest)"
  done
  # Schema 1 is signed for its destination name, so it is converted while pushing.
  ref="$PUSH/hull-test/docker-schema1:latest"
  if skopeo copy -q --dest-tls-verify=false --format v2s1 "${creds[@]}" "oci:$OUT/busybox:latest" "docker://$ref" >&2; then
    echo "docker-schema1 $ref $(registry_digest hull-test/docker-schema1 latest)"
  else
    log "warning: $PUSH refused the Docker schema 1 image (distribution needs compatibility.schema1.enabled: true)"
  fi
}

# --------------------------------------------------------------------------------------- main

if [[ "$(cat "$OUT/.stamp" 2>/dev/null)" == "$HASH" ]]; then
  log "test images in $OUT are up to date"
else
  rm -f "$OUT/.stamp-big"
  build_small
fi
if ((BIG)) && [[ "$(cat "$OUT/.stamp-big" 2>/dev/null)" != "$HASH $BIG_MB $BIG_LAYERS" ]]; then
  build_big_image
fi
if [[ -n "$PUSH" ]]; then
  flock -u 9 # pushes only read OUTDIR: let parallel test runs push at once
  push_all
fi
