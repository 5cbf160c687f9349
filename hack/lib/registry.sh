# A private docker-registry (Debian `docker-registry`, distribution 2.8) on 127.0.0.1 for test and benchmark
# scripts. Sourced; defines free_port and registry_start. Needs docker-registry, curl and python3.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# registry_start DIR STORAGE [--read-only]: serves STORAGE on a free 127.0.0.1 port in the background, with
# its config and log in DIR. Sets REGISTRY (host:port) and REGISTRY_PID; returns once /v2/ answers.
# --read-only refuses pushes, so one storage directory can serve several runs at once.
registry_start() {
  local dir="$1" storage="$2" ro=false i
  [ "${3:-}" = --read-only ] && ro=true
  REGISTRY="127.0.0.1:$(free_port)"
  mkdir -p "$dir" "$storage"
  cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
  formatter: text
storage:
  filesystem:
    rootdirectory: $storage
  maintenance:
    uploadpurging:
      enabled: false
    readonly:
      enabled: $ro
http:
  addr: $REGISTRY
  secret: $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
EOF
  docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 8<&- & # fd 8: hack/lib/cri-env.sh's lock
  REGISTRY_PID=$!
  for i in $(seq 1 100); do
    curl -fsS "http://$REGISTRY/v2/" >/dev/null 2>&1 && return 0
    kill -0 "$REGISTRY_PID" 2>/dev/null || break
    sleep 0.1
  done
  tail -n 20 "$dir/registry.log" >&2
  echo "registry on $REGISTRY did not start (log: $dir/registry.log)" >&2
  return 1
}
