#!/usr/bin/env bash
# Builds every image critest (cri-tools v1.36.0) pulls, without the public registries, and stores them as
# the storage directory of a docker-registry, so a test run serves them read-only in a second.
# Idempotent: OUTDIR/.stamp holds a hash of this script, its helpers and every host file copied into an
# image; a second run with the same hash does nothing.
#
# usage: hack/build-critest-images.sh OUTDIR      (as root; prints OUTDIR/registry, the storage to serve)
#
# The images mimic cri-tools' images/ and kubernetes' test/images/ as far as the specs look
# (pkg/validate/*.go at v1.36.0). Registry paths; the public names map onto them through hosts.toml
# (registry.k8s.io/X, k8s.gcr.io/X -> X; gcr.io/k8s-staging-cri-tools/X -> k8s-staging-cri-tools/X):
#   e2e-test-images/busybox:1.29-2     the base: busybox built here from Debian's source package, static and
#                                      with busybox's defconfig, as the upstream image's is: every applet
#                                      (pgrep, ipcs, ...), and no FEATURE_SH_STANDALONE, so `sh -c ls` really
#                                      executes /bin/ls (the MaskedPaths spec masks it; Debian's
#                                      busybox-static runs applets in-process). A static binary also starts
#                                      fast: `sh -c top` installs its SIGTERM handler before a StopContainer
#                                      right after StartContainer arrives (PID 1 drops signals it has no
#                                      handler for; with Debian's dynamic busybox some stops waited the full
#                                      60 s timeout). Every applet is a hard link, as upstream (a masked
#                                      symlink would mask busybox itself). Users and groups of the upstream
#                                      image (root, daemon, www-data 33, nobody ...)
#   e2e-test-images/nginx:1.14-2       Debian's nginx on port 80: master process as PID 1 ("nginx: master
#                                      process nginx -g daemon off;"), /var/run/nginx.pid, `pidof nginx`
#   k8s-staging-cri-tools/hostnet-nginx-<arch>  the same nginx on port 12003 (images/hostnet-nginx)
#   e2e-test-images/httpd:2.4.39-4     busybox httpd on port 80; its first log line names it "httpd"
#   e2e-test-images/nonewprivs:1.3     prints "Effective uid: N" through a setuid-root copy of coreutils'
#                                      `id` (kubernetes test/images/nonewprivs does it in C)
#   pause:3.9                          catatonit -P as /pause, user 65535
#   k8s-staging-cri-tools/test-image-{latest,1,2,3}, test-image-tag:{test,all}, test-image-tags:{1,2,3}
#                                      busybox + one empty file named after the image (images/image-test):
#                                      distinct images, except test-image-tags, one image under three tags
#   k8s-staging-cri-tools/test-image-user-{uid,username,uid-group,username-group}
#                                      busybox with USER 1002, www-data, 1003:1004, www-data:1004
#   k8s-staging-cri-tools/test-image-predefined-group  USER 1000 (default-user), member of group 50000
# Not built: test-image-digest@sha256:9700f9a2..., whose upstream manifest digest cannot be rebuilt
# offline (hack/critest.sh skips that one spec by name).
#
# Needs umoci, skopeo, docker-registry, curl, python3, apt-get (fetches busybox's source package and the
# nginx package once, installing neither), dpkg-dev, gcc, make, libc6-dev, bzip2, coreutils, catatonit.
set -euo pipefail

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
HACK="$(dirname "$SELF")"
OUT="${1:-}"
[[ -n "$OUT" && $# -eq 1 && "$OUT" != -* ]] || { sed -n '2,9p' "$SELF" | sed 's/^# \{0,1\}//' >&2; exit 2; }

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build-critest-images: error: %s\n' "$*" >&2; exit 1; }

[[ "$(id -u)" -eq 0 ]] || die "must run as root (umoci keeps file owners and setuid bits only as root)"
for tool in umoci skopeo docker-registry curl python3 apt-get dpkg-deb dpkg-source gcc make bzip2 ldd flock sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed; run hack/install-deps.sh"
done
# shellcheck source=hack/lib/registry.sh
. "$HACK/lib/registry.sh"

ARCH="$(dpkg --print-architecture)"
PATH_ENV="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Host programs copied into the images with the shared libraries they load.
HOST_PROGRAMS=(/usr/bin/id /usr/bin/catatonit)
# busybox's build configuration: its defconfig, linked statically. FEATURE_SH_STANDALONE and
# FEATURE_PREFER_APPLETS are off in defconfig; set here so that stays true.
BUSYBOX_CONFIG=(CONFIG_STATIC=y '# CONFIG_FEATURE_SH_STANDALONE is not set' '# CONFIG_FEATURE_PREFER_APPLETS is not set')

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
exec 9>"$OUT/.lock"
flock 9
rm -rf "$OUT"/.work.*

# ---------------------------------------------------------------------------- inputs and the stamp

# Debian inputs, fetched once into OUTDIR/debian with apt and never installed: the nginx package, and the
# source package of busybox (through a deb-src list of this script's own, so the host's apt config is untouched).
fetch_inputs() {
  local d="$OUT/debian" codename apt_src
  mkdir -p "$d"
  chown _apt "$d" 2>/dev/null || true # apt drops to the _apt user where it can
  if ! compgen -G "$d/nginx_*.deb" >/dev/null; then
    log "downloading the Debian package nginx"
    (cd "$d" && apt-get download -q nginx >&2) ||
      { apt-get update -q >&2 && (cd "$d" && apt-get download -q nginx >&2); } || die "apt-get download nginx failed"
  fi
  if ! compgen -G "$d/busybox_*.dsc" >/dev/null; then
    log "downloading the Debian source package busybox"
    codename="$(. /etc/os-release && echo "$VERSION_CODENAME")"
    apt_src="$d/.apt"
    mkdir -p "$apt_src/parts" "$apt_src/lists/partial" "$apt_src/cache"
    cat >"$apt_src/parts/debian-src.sources" <<EOF
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $codename
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    local opts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$apt_src/parts"
      -o "Dir::State::Lists=$apt_src/lists" -o "Dir::Cache=$apt_src/cache")
    apt-get -q "${opts[@]}" update >&2 && (cd "$d" && apt-get -q "${opts[@]}" source --download-only busybox >&2) ||
      die "apt-get source busybox failed"
    rm -rf "$apt_src"
  fi
  rm -rf "$d/x"
  dpkg-deb -x "$(compgen -G "$d/nginx_*.deb" | head -1)" "$d/x"
  NGINX="$d/x/usr/sbin/nginx" BUSYBOX_DSC="$(compgen -G "$d/busybox_*.dsc" | head -1)"
  [[ -x "$NGINX" ]] || die "the nginx package has no /usr/sbin/nginx"
}

# OUTDIR/busybox/busybox from BUSYBOX_DSC with BUSYBOX_CONFIG, built once (about a minute on 2 idle CPUs).
build_busybox() {
  local dir="$OUT/busybox" stamp tree line name
  BUSYBOX="$dir/busybox"
  stamp="$( { cat "$BUSYBOX_DSC"; printf '%s\n' "${BUSYBOX_CONFIG[@]}"; } | sha256sum | cut -d' ' -f1)"
  [[ -x "$BUSYBOX" && "$(cat "$dir/.stamp" 2>/dev/null)" == "$stamp" ]] && return 0
  log "building busybox from $(basename "$BUSYBOX_DSC") (static, defconfig)"
  rm -rf "$dir"
  mkdir -p "$dir"
  tree="$dir/src"
  dpkg-source -x "$BUSYBOX_DSC" "$tree" >"$dir/build.log" 2>&1 || die "dpkg-source failed; see $dir/build.log"
  (
    cd "$tree"
    make defconfig
    for line in "${BUSYBOX_CONFIG[@]}"; do
      name="$(grep -o 'CONFIG_[A-Z0-9_]*' <<<"$line")"
      sed -i -e "/^$name=/d" -e "/^# $name is not set/d" .config
      echo "$line" >>.config
    done
    yes "" | make oldconfig
    make -j"$(nproc)" busybox
  ) >>"$dir/build.log" 2>&1 || die "building busybox failed; see $dir/build.log"
  install -m 0755 "$tree/busybox" "$BUSYBOX"
  "$BUSYBOX" --list | grep -qx pgrep || die "the busybox built has no pgrep applet"
  rm -rf "$tree"
  echo "$stamp" >"$dir/.stamp"
}

# Every shared library (and the dynamic loader) an ELF program loads, as host paths; none for static ones.
libs_of() { ldd "$1" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' || true; }

input_files() {
  local p
  for p in "${HOST_PROGRAMS[@]}" "$BUSYBOX" "$NGINX"; do echo "$p"; libs_of "$p"; done | sort -u
}

fetch_inputs
build_busybox
HASH="$( { cat "$SELF" "$HACK/lib/registry.sh"; input_files | xargs sha256sum; } | sha256sum | cut -d' ' -f1)"
if [[ "$(cat "$OUT/.stamp" 2>/dev/null)" == "$HASH" && -d "$OUT/registry" ]]; then
  log "critest images in $OUT are up to date"
  echo "$OUT/registry"
  exit 0
fi

# ---------------------------------------------------------------------------------------- helpers

WORK="$(mktemp -d "$OUT/.work.XXXXXX")"
REGISTRY_PID=""
cleanup() {
  [[ -z "$REGISTRY_PID" ]] || { kill "$REGISTRY_PID" 2>/dev/null; wait "$REGISTRY_PID" 2>/dev/null; }
  rm -rf "$WORK"
}
trap cleanup EXIT
L="$WORK/layout"

config() { local tag="$1"; shift; umoci config --image "$L:$tag" --no-history "$@" >/dev/null; }
BASE="$WORK/bundle-busybox/rootfs" # the busybox image's files, which the other images' layers add to

# copy_program DIR FILE [DEST]: FILE at DIR/DEST (default: its own path), and the libraries it loads at their
# host paths unless the busybox image has them already.
copy_program() {
  local r="$1" src="$2" dest="${3:-$2}" lib
  install -D -m 0755 "$src" "$r$dest"
  for lib in $(libs_of "$src"); do
    [[ -e "$r$lib" || -e "$BASE$lib" ]] || install -D -m 0755 "$(readlink -f "$lib")" "$r$lib"
  done
}

# append DIR FILE LINE...: DIR/FILE is the busybox image's FILE plus LINEs (a layer holds whole files).
append() {
  local r="$1" f="$2"
  shift 2
  [[ -e "$r/$f" ]] || install -D -m 0644 "$BASE/$f" "$r/$f"
  printf '%s\n' "$@" >>"$r/$f"
}

# derive BASE_TAG TAG WHAT FUNCTION [ARGS...]: TAG = BASE_TAG + one layer holding the files FUNCTION DIR ARGS...
# writes into an empty DIR. GNU tar writes the layer; `umoci raw add-layer` stores it as it is (gzipped).
derive() {
  local base="$1" tag="$2" what="$3" fn="$4" stage="$WORK/stage-$2"
  shift 4
  mkdir -p "$stage"
  "$fn" "$stage" "$@"
  (cd "$stage" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort) >"$stage.list"
  tar -C "$stage" --numeric-owner --mtime=@0 --no-recursion --format=gnu -cf "$stage.tar" -T "$stage.list"
  umoci tag --image "$L:$base" "$tag"
  umoci raw add-layer --history.created_by "hull-critest: $what" --image "$L:$tag" "$stage.tar"
  rm -rf "$stage" "$stage.tar" "$stage.list"
}

# -------------------------------------------------------------------------------------- the images

populate_busybox() { # ROOTFS
  local r="$1" a
  mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,root,home,tmp,var/tmp,var/run,var/www,proc,sys,dev}
  install -m 0755 "$BUSYBOX" "$r/bin/busybox"
  for a in $("$BUSYBOX" --list-full); do
    if [[ "$a" == */* && ! -e "$r/$a" ]]; then ln "$r/bin/busybox" "$r/$a"; fi
  done
  cat >"$r/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
EOF
  cat >"$r/etc/group" <<'EOF'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:12:
www-data:x:33:
operator:x:37:
users:x:100:
nogroup:x:65534:
EOF
  chmod 0644 "$r/etc/passwd" "$r/etc/group"
  chmod 0700 "$r/root"
  chmod 1777 "$r/tmp" "$r/var/tmp"
}

populate_nginx() { # DIR PORT
  local r="$1" port="$2"
  copy_program "$r" "$NGINX" /usr/sbin/nginx
  mkdir -p "$r"/{etc/nginx,var/lib/nginx,var/log/nginx,usr/share/nginx/html}
  append "$r" etc/passwd 'nginx:x:101:101:nginx:/var/lib/nginx:/bin/false'
  append "$r" etc/group 'nginx:x:101:'
  cat >"$r/etc/nginx/nginx.conf" <<EOF
user nginx;
worker_processes 1;
error_log stderr notice;
pid /var/run/nginx.pid;
events { worker_connections 1024; }
http {
  access_log /dev/stdout;
  server {
    listen $port;
    location / { root /usr/share/nginx/html; index index.html; }
  }
}
EOF
  echo '<html><body><h1>Welcome to nginx!</h1></body></html>' >"$r/usr/share/nginx/html/index.html"
}

populate_httpd() { # DIR
  local r="$1"
  mkdir -p "$r/usr/local/apache2/htdocs" "$r/usr/local/bin"
  echo '<html><body><h1>It works!</h1></body></html>' >"$r/usr/local/apache2/htdocs/index.html"
  cat >"$r/usr/local/bin/httpd-foreground" <<'EOF'
#!/bin/sh
echo "httpd: serving /usr/local/apache2/htdocs on port 80 (busybox httpd)"
exec httpd -f -v -p 80 -h /usr/local/apache2/htdocs
EOF
  chmod 0755 "$r/usr/local/bin/httpd-foreground"
}

populate_nonewprivs() { # DIR
  local r="$1"
  copy_program "$r" /usr/bin/id /usr/local/bin/euid
  chmod 4755 "$r/usr/local/bin/euid"
  cat >"$r/usr/local/bin/nnp" <<'EOF'
#!/bin/sh
echo "Effective uid: $(/usr/local/bin/euid -u)"
EOF
  chmod 0755 "$r/usr/local/bin/nnp"
}

populate_pause() { install -D -m 0755 /usr/bin/catatonit "$1/pause"; } # DIR

add_file() { : >"$1/$2"; } # DIR NAME: images/image-test's `ADD ${TEST} ${TEST}`

populate_predefined_group() { # DIR (images/image-predefined-group)
  append "$1" etc/passwd 'default-user:x:1000:1000::/home/default-user:/bin/sh'
  append "$1" etc/group 'default-user:x:1000:' 'group-defined-in-image:x:50000:default-user'
  mkdir -p "$1/home/default-user"
  chown 1000:1000 "$1/home/default-user"
}

build_layout() {
  local n user
  umoci init --layout "$L"
  umoci new --image "$L:empty"
  umoci unpack --image "$L:empty" "$WORK/bundle-busybox" >/dev/null
  populate_busybox "$BASE"
  umoci repack --history.created_by "hull-critest: busybox (static, defconfig), users" \
    --image "$L:busybox" "$WORK/bundle-busybox" >/dev/null
  config busybox --config.cmd sh --config.env "$PATH_ENV"

  derive busybox nginx "nginx on port 80" populate_nginx 80
  config nginx --config.cmd nginx --config.cmd -g --config.cmd 'daemon off;' --config.exposedports 80/tcp \
    --config.stopsignal SIGQUIT
  derive busybox hostnet-nginx "nginx on port 12003" populate_nginx 12003
  config hostnet-nginx --config.cmd nginx --config.cmd -g --config.cmd 'daemon off;' \
    --config.exposedports 12003/tcp --config.stopsignal SIGQUIT
  derive busybox httpd "busybox httpd on port 80" populate_httpd
  config httpd --config.cmd httpd-foreground --config.exposedports 80/tcp
  derive busybox nonewprivs "setuid euid reporter" populate_nonewprivs
  config nonewprivs --clear=config.cmd --config.entrypoint /usr/local/bin/nnp
  derive busybox pause "catatonit as /pause" populate_pause
  config pause --clear=config.cmd --config.entrypoint /pause --config.entrypoint -P --config.user 65535:65535

  for n in test-image-latest test-image-1 test-image-2 test-image-3 test all same-image; do
    derive busybox "file-$n" "ADD $n" add_file "$n"
  done
  for user in user-uid:1002 user-username:www-data user-uid-group:1003:1004 user-username-group:www-data:1004; do
    umoci tag --image "$L:busybox" "test-image-${user%%:*}"
    config "test-image-${user%%:*}" --config.user "${user#*:}"
  done
  derive busybox predefined-group "default-user in group-defined-in-image" populate_predefined_group
  config predefined-group --config.user 1000
}

# "layout tag  registry path:tag" of every image critest pulls.
push_list() {
  cat <<EOF
busybox e2e-test-images/busybox:1.29-2
nginx e2e-test-images/nginx:1.14-2
httpd e2e-test-images/httpd:2.4.39-4
nonewprivs e2e-test-images/nonewprivs:1.3
pause pause:3.9
hostnet-nginx k8s-staging-cri-tools/hostnet-nginx-$ARCH:latest
file-test-image-latest k8s-staging-cri-tools/test-image-latest:latest
file-test k8s-staging-cri-tools/test-image-tag:test
file-all k8s-staging-cri-tools/test-image-tag:all
file-test-image-1 k8s-staging-cri-tools/test-image-1:latest
file-test-image-2 k8s-staging-cri-tools/test-image-2:latest
file-test-image-3 k8s-staging-cri-tools/test-image-3:latest
file-same-image k8s-staging-cri-tools/test-image-tags:1
file-same-image k8s-staging-cri-tools/test-image-tags:2
file-same-image k8s-staging-cri-tools/test-image-tags:3
test-image-user-uid k8s-staging-cri-tools/test-image-user-uid:latest
test-image-user-username k8s-staging-cri-tools/test-image-user-username:latest
test-image-user-uid-group k8s-staging-cri-tools/test-image-user-uid-group:latest
test-image-user-username-group k8s-staging-cri-tools/test-image-user-username-group:latest
predefined-group k8s-staging-cri-tools/test-image-predefined-group:latest
EOF
}

# --------------------------------------------------------------------------------------------- main

log "building the critest images into $OUT"
build_layout
registry_start "$WORK/registry-run" "$WORK/registry"
push_list | while read -r tag ref; do
  skopeo copy -q --dest-tls-verify=false --preserve-digests "oci:$L:$tag" "docker://$REGISTRY/$ref" >&2
done
kill "$REGISTRY_PID"; wait "$REGISTRY_PID" 2>/dev/null || true; REGISTRY_PID=""
rm -rf "$OUT/registry"
mv "$WORK/registry" "$OUT/registry"
echo "$HASH" >"$OUT/.stamp"
log "critest images: $(push_list | wc -l) tags in $OUT/registry"
echo "$OUT/registry"
