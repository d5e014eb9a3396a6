#!/usr/bin/env bash
# Lints the gateway's nginx configuration as the gateway renders it, with gixy: once plain, once with TLS.
set -o errexit -o nounset -o pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
gixy=${GIXY:-gixy}

for variant in http tls; do
  rendered=$(mktemp -d)
  trap 'rm -rf "$rendered"' EXIT
  # The layout the gateway runs from: its configuration in conf/, what it renders in generated/ beside it.
  cp -r "$here/nginx" "$rendered/conf"
  # With the routes make bench adds (docker-compose.bench.yml), which only add.
  mkdir -p "$rendered/conf/routes.d" && cp "$here/nginx/bench/peers.inc" "$rendered/conf/routes.d/"
  mkdir -p "$rendered/sockets/service1" "$rendered/sockets/service2"
  SOCKET_ROOT="$rendered/sockets" bash "$here/nginx/entrypoint.sh" render "$rendered" "${variant/http/}"
  echo "gixy: the gateway's configuration, $variant"
  # uwsgi_params comes with Debian's nginx, not with this repository: gixy says it cannot find it.
  # missing_resolver: uwsgi_pass $route_service names an upstream the gateway defines, or is never reached (a
  # 404 comes first, snippets/routes.inc); the one name resolved at request time (the bench's peers) has its
  # resolver.
  "$gixy" --skips missing_resolver "$rendered/conf/nginx.conf" 2> >(grep -v 'File not found: /etc/nginx/uwsgi_params' >&2)
  rm -rf "$rendered"
done
