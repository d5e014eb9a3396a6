#!/usr/bin/env bash
# Starts the gateway: writes one upstream per service from the replicas it finds, keeps it current while
# replicas come and go (reloading nginx gracefully on every change), and runs nginx.
#
# The services are the directories under /run/uwsgi, one socket volume mounted per service. With the unix
# transport a replica is a socket file in its service's directory; with the tcp transport it is an address
# that Docker's DNS gives for the service's name. The gateway needs no Docker socket for either.
set -o errexit -o nounset -o pipefail

SOCKET_ROOT=/run/uwsgi
UPSTREAMS=/tmp/nginx/upstreams.conf
# nginx runs from a copy of its configuration, so `make deploy SERVICE=nginx` can swap in a new one and reload.
CONFIG=/tmp/nginx/conf
TRANSPORT=${SERVICE_TRANSPORT:-unix}
TCP_PORT=${SERVICE_TCP_PORT:-3031}
POLL_SECONDS=${DISCOVERY_POLL_SECONDS:-1}

replicas_of() {
  local service=$1
  if [[ "$TRANSPORT" == tcp ]]; then
    getent ahostsv4 "$service" | awk -v port="$TCP_PORT" '{print $1 ":" port}' | sort -u
  else
    find "$SOCKET_ROOT/$service" -maxdepth 1 -type s -name '*.sock' -printf 'unix:%p\n' | sort
  fi
}

render_upstreams() {
  local directory service replica found
  for directory in "$SOCKET_ROOT"/*/; do
    service=$(basename "$directory")
    echo "upstream $service {"
    found=0
    while read -r replica; do
      [[ -n "$replica" ]] || continue
      # A replica that refuses a connection is skipped for 5 s while nginx tries the others.
      echo "    server $replica max_fails=1 fail_timeout=5s;"
      found=1
    done < <(replicas_of "$service")
    # No replica at all: nginx answers at once, and the gateway's error page makes that a JSON 503.
    [[ "$found" == 1 ]] || echo "    server unix:$directory/no-replica.sock down;"
    echo "}"
  done
}

watch_upstreams() {
  local next
  while sleep "$POLL_SECONDS"; do
    next=$(render_upstreams)
    if [[ "$next" != "$(cat "$UPSTREAMS")" ]]; then
      printf '%s\n' "$next" >"$UPSTREAMS.next"
      mv "$UPSTREAMS.next" "$UPSTREAMS"
      echo "gateway: replicas changed, reloading nginx" >&2
      nginx -e stderr -c "$CONFIG/nginx.conf" -s reload
    fi
  done
}

mkdir -p "$(dirname "$UPSTREAMS")"
rm -rf "$CONFIG" && cp -r /etc/nginx "$CONFIG"
render_upstreams >"$UPSTREAMS"
watch_upstreams &
# -e: nginx opens its error log before reading the config, and the default path is not ours to write.
exec nginx -e stderr -c "$CONFIG/nginx.conf" -g 'daemon off;'
