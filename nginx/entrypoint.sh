#!/usr/bin/env bash
# Starts the gateway: renders what the environment decides (limits, allowed hosts, TLS or not) and one upstream
# per service from the replicas it finds, keeps the upstreams current while replicas come and go (reloading nginx
# gracefully on every change), and runs nginx.
#
# This script stays PID 1 to supervise both: nginx, whose exit ends the container, and the watcher, which is
# started again if it dies. The watcher never exits on a failure: a reload that fails is logged, the last good
# upstreams are kept, and it is tried again on the next pass. After every good pass it touches a heartbeat file;
# the healthcheck fails when that is stale, so a watcher that cannot do its job shows as an unhealthy gateway.
#
# The services are the directories under /run/uwsgi, one socket volume (or, on Swarm, one public key) mounted per
# service. With the unix transport a replica is a socket file in its service's directory; with the tcp transport
# it is an address that Docker's DNS gives for REPLICA_DNS_NAME ({service} by default; tasks.{service} on Swarm,
# which names every task whether or not the service has a virtual IP). The gateway needs no Docker socket.
#
# A socket volume is written by its service, so what is found there is a stranger's input (docs/security.md): a
# replica is routed to only if its name is a hostname's (a DNS label) and its file a real socket, never a link,
# and at most MAX_REPLICAS a service. Anything else is refused: said once per name, listed for the status page
# (REFUSED_FILE), and never written into nginx's configuration, where every value rendered is quoted.
#
# Draining: a replica that is told to stop marks itself (NAME.draining beside its socket) and keeps serving. The
# watcher leaves it out of the upstreams, reloads, waits until nginx's old workers (which may still send it a
# request) have exited, and only then lists what it routes to in ROUTES_FILE. The replica reads that file, and
# stops once its socket is no longer there (servicekit/entrypoint.sh): no request is sent to a closed socket.
#
# `entrypoint.sh render DIR [tls]` only renders the configuration into DIR/generated, as if a certificate were
# mounted when tls is given (for the linters: `make lint`).
set -o errexit -o nounset -o pipefail
# Bracket ranges and the name pattern below mean ASCII, whatever the locale.
export LC_ALL=C

SOCKET_ROOT=${SOCKET_ROOT:-/run/uwsgi}
GENERATED=${GENERATED:-/tmp/nginx/generated}
UPSTREAMS=$GENERATED/upstreams.conf
# nginx runs from a copy of its configuration, so `make deploy SERVICE=nginx` can swap in a new one and reload.
CONFIG=/tmp/nginx/conf
# Where the services call each other: a unix socket in the volume they share with the gateway (one host), or a
# TCP port on each service's network (Swarm: GATEWAY_INTERNAL_LISTEN=8081, never published).
INTERNAL_LISTEN=${GATEWAY_INTERNAL_LISTEN:-unix:/run/gateway/internal.sock}
TLS_CERT=/run/secrets/gateway_tls_cert
TLS_KEY=/run/secrets/gateway_tls_key
# What nginx last loaded with success, and the watcher's heartbeat and pid.
APPLIED=${GENERATED}/upstreams.applied
HEARTBEAT=/tmp/nginx/watcher.heartbeat
PAUSE_PIPE=/tmp/nginx/watcher.pause
WATCHER_PID=/tmp/nginx/watcher.pid
TRANSPORT=${SERVICE_TRANSPORT:-unix}
TCP_PORT=${SERVICE_TCP_PORT:-3031}
POLL_SECONDS=${DISCOVERY_POLL_SECONDS:-1}
REPLICA_DNS_NAME=${REPLICA_DNS_NAME:-"{service}"}
# In the volume the services mount read-only (Compose); a Swarm gateway has no such volume and no reader.
ROUTES_FILE=${GATEWAY_ROUTES_FILE:-/run/gateway/routes}
OLD_WORKERS_WAIT_SECONDS=3
# What a replica's name may be (its hostname: a DNS label, as Docker and Swarm make them), and how many replicas
# of one service are routed to at most. The socket volumes hold about four files a replica (docker-compose.yml).
REPLICA_NAME='^[0-9A-Za-z][0-9A-Za-z-]{0,62}$'
MAX_REPLICAS=${GATEWAY_MAX_REPLICAS:-32}
# What was refused in the services' volumes, one `service<TAB>name<TAB>why` a line, for the status page.
REFUSED_FILE=$GENERATED/refused
# The replicas left out because they drain, one `service<TAB>name` a line, for the status page (and Prometheus).
DRAINING_FILE=$GENERATED/draining

# The replicas of a service, sorted, into the array REPLICAS; those that drain, into DRAINING; what its volume
# holds that is not a replica's, into REFUSED. The watcher lists them every POLL_SECONDS, and an idle gateway should cost next to nothing: with unix
# sockets this runs no program (a glob is sorted, the tests are builtins); over TCP one, getent (Docker's DNS
# answers in any order: the addresses are sorted here, by builtins).
replicas_of() {
  local service=$1 answer address kind rest index entry file name
  REPLICAS=()
  if [[ "$TRANSPORT" == tcp ]]; then
    answer=$(getent ahostsv4 "${REPLICA_DNS_NAME//\{service\}/$service}") || true
    while read -r address kind rest; do
      [[ "$kind" == STREAM && " ${REPLICAS[*]} " != *" $address:$TCP_PORT "* ]] || continue
      index=${#REPLICAS[@]}
      while ((index > 0)) && [[ "${REPLICAS[index - 1]}" > "$address:$TCP_PORT" ]]; do
        REPLICAS[index]=${REPLICAS[index - 1]}
        index=$((index - 1))
      done
      REPLICAS[index]=$address:$TCP_PORT
    done <<<"$answer"
    return 0
  fi
  for entry in "$SOCKET_ROOT/$service"/*; do
    [[ -e "$entry" || -L "$entry" ]] || continue  # an empty folder: the glob itself
    file=${entry##*/}
    name=${file%.*}
    case "$file" in
      service.pub) [[ -f "$entry" && ! -L "$entry" ]] || refuse "$service" "$file" "not a regular file" ;;
      *.sock)
        if ! [[ "$name" =~ $REPLICA_NAME ]]; then
          refuse "$service" "$file" "not a replica's name"
        elif [[ -L "$entry" || ! -S "$entry" ]]; then
          refuse "$service" "$file" "not a socket"
        elif [[ -e "$SOCKET_ROOT/$service/$name.draining" || -L "$SOCKET_ROOT/$service/$name.draining" ]]; then
          DRAINING+=("$service"$'\t'"$name")
        elif ((${#REPLICAS[@]} >= MAX_REPLICAS)); then
          refuse "$service" "$file" "over $MAX_REPLICAS replicas"
        else
          REPLICAS+=("unix:$entry")
        fi
        ;;
      *.stats | *.name | *.draining)
        [[ "$name" =~ $REPLICA_NAME && ! -L "$entry" ]] || refuse "$service" "$file" "not a replica's file"
        ;;
      *) refuse "$service" "$file" "not a file a replica writes" ;;
    esac
  done
  return 0
}

# A refused file of a service's volume, as the status page lists it: its name made safe to show (ASCII letters,
# digits and . _ - only, 64 at most), and why.
refuse() {
  local shown=${2//[^0-9A-Za-z._-]/?}
  REFUSED+=("$1"$'\t'"${shown:0:64}"$'\t'"$3")
}

# Each refused name is said once (not once a pass), and at most REFUSED_SAID_MAX names are remembered for that.
# Read from REFUSED_FILE: the watcher renders in a subshell.
declare -A REFUSED_SAID=()
REFUSED_SAID_MAX=1000
say_refused() {
  local refused service name why
  mapfile -t REFUSED <"$REFUSED_FILE"
  for refused in "${REFUSED[@]}"; do
    [[ -n "$refused" && -z "${REFUSED_SAID[$refused]:-}" ]] || continue
    if ((${#REFUSED_SAID[@]} >= REFUSED_SAID_MAX)); then
      echo "gateway: [warn] over $REFUSED_SAID_MAX refused names; no more are said (the status page lists them)" >&2
      return 0
    fi
    REFUSED_SAID[$refused]=1
    IFS=$'\t' read -r service name why <<<"$refused"
    echo "gateway: [warn] refused $service's $name: $why; it is not routed to" >&2
  done
}

# One upstream per service, named after it, listing its replicas; which names are services, for the one route
# that takes the service from the path (snippets/routes.inc); and over TCP each replica's host, by its address, so
# the status plane reaches those hosts and no other (snippets/status-plane.inc).
# Every value is quoted, and comes from what replicas_of accepted: no name found in a volume can end a directive.
# What was refused goes to REFUSED_FILE, what drains to DRAINING_FILE (the caller runs this in a subshell: the
# files are how they get out).
render_upstreams() {
  local directory service replica services=() addresses=()
  REFUSED=()
  DRAINING=()
  for directory in "$SOCKET_ROOT"/*/; do
    directory=${directory%/}
    # The folders are the gateway's own mounts, named in docker-compose.yml; checked all the same.
    [[ "${directory##*/}" =~ $REPLICA_NAME ]] && services+=("${directory##*/}")
  done
  echo 'map $route_service $route_service_known {'
  echo '    default 0;'
  for service in "${services[@]}"; do
    echo "    \"$service\" 1;"
  done
  echo '}'
  for service in "${services[@]}"; do
    echo "upstream \"$service\" {"
    replicas_of "$service" || return 1
    for replica in "${REPLICAS[@]}"; do
      # max_fails=0: no error ever marks a replica failed. A client can provoke errors (a reset), and marking
      # would let it take every replica out; a replica that is really gone refuses at once and nginx tries the
      # next (uwsgi_next_upstream).
      echo "    server \"$replica\" max_fails=0;"
      [[ "$replica" == unix:* ]] || addresses+=("$replica")
    done
    # No replica at all: nginx answers at once, and the gateway's error page makes that a JSON 503.
    ((${#REPLICAS[@]})) || echo "    server \"unix:$SOCKET_ROOT/$service/no-replica.sock\" down;"
    echo "}"
  done
  publish_lines "$REFUSED_FILE" "${REFUSED[@]}"
  publish_lines "$DRAINING_FILE" "${DRAINING[@]}"
  # By the path's end: $uri is always defined, whether or not the status plane is.
  echo 'map $uri $replica_host {'
  echo '    default "";'
  for replica in "${addresses[@]}"; do
    echo "    \"~/${replica//./\\.}\$\" ${replica%:*};"
  done
  echo '}'
}

# Rates and sizes of the per-client limits (snippets/limits.inc), and the largest body, from the environment.
render_limits() {
  cat <<EOF
client_max_body_size ${MAX_BODY_BYTES:-1048576};
limit_req_zone \$login_client zone=logins:10m rate=${GATEWAY_LOGIN_RATE:-5r/s};
limit_req_zone \$writes_client zone=writes:10m rate=${GATEWAY_WRITES_RATE:-50r/s};
limit_conn_zone \$public_client zone=connections:10m;
limit_req zone=logins burst=${GATEWAY_LOGIN_BURST:-20} nodelay;
limit_req zone=writes burst=${GATEWAY_WRITES_BURST:-100} nodelay;
limit_conn connections ${GATEWAY_CONNECTIONS_PER_CLIENT:-256};
EOF
}

# The Host names the public listener serves (ALLOWED_HOSTS, comma-separated; a leading dot takes subdomains),
# and always localhost, the gateway's own name from inside its container.
render_hosts() {
  local host
  echo 'map $host $host_allowed {'
  echo '    hostnames;'
  echo '    default 0;'
  echo '    localhost 1;'
  IFS=, read -ra hosts <<<"${ALLOWED_HOSTS:-localhost,127.0.0.1}"
  for host in "${hosts[@]}"; do
    host=${host//[[:space:]]/}
    [[ -n "$host" && "$host" != localhost ]] && echo "    \"$host\" 1;"
  done
  echo '}'
}

# Whether the gateway serves HTTPS: a certificate and key are mounted (docker-compose.tls.yml), or `render DIR tls`.
serves_tls() {
  [[ -n "${RENDER_TLS:-}" || ( -r "$TLS_CERT" && -r "$TLS_KEY" ) ]]
}

# HTTPS when a certificate and key are mounted, plain HTTP otherwise.
render_public() {
  if [[ -e "$TLS_CERT" || -e "$TLS_KEY" ]] && ! [[ -r "$TLS_CERT" && -r "$TLS_KEY" ]]; then
    echo "gateway: $TLS_CERT and $TLS_KEY must both be readable by uid $(id -u) or gid $(id -g)" >&2
    return 1
  fi
  if serves_tls; then
    echo "map \"\" \$tls_public_port { default \"${GATEWAY_TLS_PORT:-8443}\"; }"
    echo "include snippets/public-tls.inc;"
  else
    echo "include snippets/public-http.inc;"
  fi
}

# The status page (STATUS_PAGE, on by default): its route, and each request's line sent to it as syslog. Off too
# where the status container's volume is not mounted (a gateway run alone): nginx would log an error for every
# request it could not send. With HTTPS (the production shape) it is the operator's only: it asks for a
# user and password from the htpasswd file given as the status_htpasswd secret, and is off without one.
# STATUS_WANTED says whether it is on; STATUS_ALIVE whether the status container is answering (watch_status).
STATUS_SOCKETS=${STATUS_SOCKETS:-/run/status}
STATUS_HTPASSWD=${STATUS_HTPASSWD_FILE:-/run/secrets/status_htpasswd}
STATUS_ALIVE=1
status_plane() {
  echo "map \"\" \$replica_stats_port { default \"${SERVICE_STATS_PORT:-3032}\"; }"
  echo 'include snippets/status-plane.inc;'
}
render_status() {
  local directory=$1 status=${STATUS_PAGE:-true} credentials=""
  [[ -d "$STATUS_SOCKETS" || -n "${RENDER_ONLY:-}" ]] || status=false
  if serves_tls && [[ "$status" != @(false|0|no|off) ]]; then
    if [[ -s "$STATUS_HTPASSWD" ]]; then
      credentials="auth_basic \"status\"; auth_basic_user_file $STATUS_HTPASSWD;"
    else
      [[ -n "${RENDER_ONLY:-}" ]] || echo "gateway: the status page is off: with HTTPS it needs a credential (STATUS_HTPASSWD, docs/security.md)" >&2
      status=false
    fi
  fi
  STATUS_WANTED=1
  if [[ "$status" == @(false|0|no|off) ]]; then
    STATUS_WANTED=0
    echo '# The status page is off (STATUS_PAGE).' >"$directory/status.conf"
    echo 'location ^~ /status { return 404; }' >"$directory/status-route.inc"
  elif [[ "$STATUS_ALIVE" == 0 ]]; then
    # Not answering: no log line is sent to it (each would fail, with an error line), and its route says so.
    status_plane >"$directory/status.conf"
    echo "location ^~ /status { return 503 '{\"error\": {\"code\": \"service_unavailable\", \"message\": \"The status page is not answering\", \"details\": null}}\n'; }" \
      >"$directory/status-route.inc"
  else
    {
      echo 'access_log syslog:server=unix:/run/status/log.sock,nohostname,tag=gateway status if=$status_loggable;'
      status_plane
    } >"$directory/status.conf"
    {
      echo 'location ^~ /status {'
      [[ -z "$credentials" ]] || echo "    $credentials"
      echo '    uwsgi_pass unix:/run/status/status.sock;'
      echo '    include snippets/uwsgi_proxy.inc;'
      echo '}'
    } >"$directory/status-route.inc"
  fi
}

# Whether the status container answers, from its heartbeat file (the status page writes it every second): one
# written since this check's last mark means alive. A change is rendered and reloaded; while it stays silent,
# one line a minute says so. Builtins only (a test of two files' times, a write): it runs on every pass.
STATUS_HEARTBEAT=$STATUS_SOCKETS/heartbeat
STATUS_MARK=/tmp/nginx/status.mark
STATUS_CHECK_SECONDS=2
status_checked_at=0
status_warned_at=0
watch_status() {
  local alive=0
  [[ "$STATUS_WANTED" == 1 ]] || return 0
  ((EPOCHSECONDS - status_checked_at >= STATUS_CHECK_SECONDS)) || return 0
  [[ "$STATUS_HEARTBEAT" -nt "$STATUS_MARK" ]] && alive=1
  echo "$EPOCHSECONDS" >"$STATUS_MARK"
  status_checked_at=$EPOCHSECONDS
  if [[ "$alive" != "$STATUS_ALIVE" ]]; then
    STATUS_ALIVE=$alive
    render_status "$GENERATED"
    if nginx -q -t -e stderr -c "$CONFIG/nginx.conf" && nginx -e stderr -c "$CONFIG/nginx.conf" -s reload; then
      ((alive)) && echo "gateway: the status page answers again; its log lines are sent" >&2
      ((alive)) || echo "gateway: [warn] the status page is not answering; no log line is sent to it" >&2
      status_warned_at=$EPOCHSECONDS
    fi
  elif ((!alive && EPOCHSECONDS - status_warned_at >= 60)); then
    echo "gateway: [warn] the status page is still not answering" >&2
    status_warned_at=$EPOCHSECONDS
  fi
}

render_all() {
  mkdir -p "$GENERATED"
  # .inc, not .conf: included by the internal server (conf.d/internal.conf), not at the http level.
  echo "listen $INTERNAL_LISTEN;" >"$GENERATED/internal-listen.inc"
  render_limits >"$GENERATED/limits.conf"
  render_hosts >"$GENERATED/hosts.conf"
  render_public >"$GENERATED/public.conf"
  render_status "$GENERATED"
  render_upstreams >"$UPSTREAMS"
  say_refused
}

# nginx's workers, by pid, into WORKERS: a builtin read of each process's title, no program.
nginx_workers() {
  local cmdline title
  WORKERS=()
  for cmdline in /proc/[0-9]*/cmdline; do
    title=""
    read -r -d '' title <"$cmdline" 2>/dev/null
    [[ "$title" == "nginx: worker process"* ]] && WORKERS+=("${cmdline//[^0-9]/}")
  done
  return 0
}

# Checks and reloads nginx's configuration, then waits (at most OLD_WORKERS_WAIT_SECONDS) until the workers of
# the previous one have finished what they hold and exited: until then they may still pass a request to a replica
# the new configuration leaves out.
reload_nginx() {
  local old pid waited=0
  nginx_workers
  old=("${WORKERS[@]}")
  nginx -q -t -e stderr -c "$CONFIG/nginx.conf" && nginx -e stderr -c "$CONFIG/nginx.conf" -s reload || return 1
  for pid in "${old[@]}"; do
    while [[ -e "/proc/$pid" ]] && ((waited < OLD_WORKERS_WAIT_SECONDS * 20)); do
      read -r -t 0.05 -u "$PAUSE_FD"
      ((waited += 1))
    done
  done
  return 0
}

# What nginx routes to now, for draining replicas to read: replaced whole (a rename), so a reader never sees
# half of it. Every service reads this file, so it names no replica: a line is the SHA-256 of a routed socket's
# file name, which a replica compares with its own (servicekit/entrypoint.sh). Runs only when the routes change.
publish_routes() {
  [[ -w "${ROUTES_FILE%/*}" ]] || return 0
  local line digest digests=()
  while IFS= read -r line; do
    [[ "$line" =~ ^\ +server\ \"unix:[^\"]*/([^\"/]+\.sock)\"\ max_fails=0\;$ ]] || continue
    digest=$(printf '%s' "${BASH_REMATCH[1]}" | sha256sum)
    digests+=("${digest%% *}")
  done <<<"$1"
  printf '%s\n' "${digests[@]}" >"$ROUTES_FILE.next" && mv -f "$ROUTES_FILE.next" "$ROUTES_FILE"
}

# Replaces the file with these lines when they differ from what it holds: whole (a rename), so a reader never
# sees half of it.
publish_lines() {
  local file=$1 text=""
  shift
  if (($#)); then
    text=$(printf '%s\n' "$@")
  fi
  if [[ ! -e "$file" || "$text" != "$(<"$file")" ]]; then
    printf '%s\n' "$text" >"$file.next" && mv -f "$file.next" "$file"
  fi
}

# One pass: the replicas as they are now, applied if they changed. Returns non-zero when they cannot be.
# APPLIED_TEXT holds what nginx last loaded, so a pass that finds no change reads no file.
sync_upstreams() {
  local next
  next=$(render_upstreams) || { echo "gateway: could not list the replicas" >&2; return 1; }
  say_refused
  [[ "$next" != "$APPLIED_TEXT" ]] || return 0
  printf '%s\n' "$next" >"$UPSTREAMS"
  if ! reload_nginx; then
    echo "gateway: reloading the new replicas failed; the last good upstreams stay, trying again" >&2
    cp "$APPLIED" "$UPSTREAMS"
    return 1
  fi
  cp "$UPSTREAMS" "$APPLIED"
  APPLIED_TEXT=$next
  publish_routes "$next"
  echo "gateway: replicas changed, nginx reloaded" >&2
}

# The heartbeat holds the time of the last good pass; writing it, like the wait between passes (a read that
# times out on a pipe no one writes to), starts no program.
watch_upstreams() {
  set +o errexit
  APPLIED_TEXT=$(<"$APPLIED")
  rm -f "$PAUSE_PIPE" && mkfifo "$PAUSE_PIPE" && exec {PAUSE_FD}<>"$PAUSE_PIPE"
  while true; do
    sync_upstreams && echo "$EPOCHSECONDS" >"$HEARTBEAT"
    watch_status
    read -r -t "$POLL_SECONDS" -u "$PAUSE_FD"
  done
}

start_watcher() {
  watch_upstreams &
  watcher=$!
  echo "$watcher" >"$WATCHER_PID"
}

# The gateway's own listening sockets are for others: the services (the internal listener) and the status page
# (the status plane), both of the sockets group. nginx makes them 0666; no permission for their owner leaves the
# gateway unable to connect to itself, whatever link a service plants in its volume (docs/security.md). Once,
# when nginx has bound them: a reload keeps them as they are.
lock_out_own_sockets() {
  local socket waited
  for socket in "$@"; do
    for ((waited = 0; waited < 100; waited++)); do
      [[ -S "$socket" ]] && break
      sleep 0.05
    done
    chmod 060 "$socket" || echo "gateway: [error] $socket could not be locked out for the gateway itself" >&2
  done
}

# nginx's error log and this script's own messages, as JSON lines like every other (the access log is JSON by its
# log_format). Starts no program per line: a builtin read, replacements and printf.
json_lines() {
  local line level time
  while IFS= read -r line; do
    level=INFO  # the services' level names (Python's), from nginx's
    if [[ "$line" =~ \[(emerg|alert|crit|error|warn)\] ]]; then
      case "${BASH_REMATCH[1]}" in
        warn) level=WARNING ;;
        error) level=ERROR ;;
        *) level=CRITICAL ;;
      esac
    fi
    line=${line//\\/\\\\}
    line=${line//\"/\\\"}
    line=${line//[$'\001'-$'\037']/ }
    TZ=UTC printf -v time '%(%Y-%m-%dT%H:%M:%S)T' -1
    printf '{"time":"%s.%sZ","level":"%s","service":"gateway","message":"%s"}\n' \
      "$time" "${EPOCHREALTIME: -6:3}" "$level" "$line"
  done
}

if [[ "${1:-}" == render ]]; then
  RENDER_ONLY=1 RENDER_TLS=${3:-} GENERATED=$2/generated UPSTREAMS=$2/generated/upstreams.conf \
    REFUSED_FILE=$2/generated/refused DRAINING_FILE=$2/generated/draining render_all
  exit 0
fi

exec 2> >(json_lines >&2)

mkdir -p "$(dirname "$CONFIG")"
rm -rf "$CONFIG" && cp -r /etc/nginx "$CONFIG"
render_all
cp "$UPSTREAMS" "$APPLIED"
publish_routes "$(<"$APPLIED")"
echo "$EPOCHSECONDS" >"$HEARTBEAT"
# A socket left by a gateway that was killed would make nginx's bind fail.
[[ "$INTERNAL_LISTEN" == unix:* ]] && rm -f "${INTERNAL_LISTEN#unix:}"

# -e: nginx opens its error log before reading the config, and the default path is not ours to write.
nginx -e stderr -c "$CONFIG/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
own_sockets=()
[[ "$INTERNAL_LISTEN" == unix:* ]] && own_sockets+=("${INTERNAL_LISTEN#unix:}")
[[ "$STATUS_WANTED" == 1 ]] && own_sockets+=(/run/gateway-status/status.sock)
lock_out_own_sockets "${own_sockets[@]}"
# docker stop sends QUIT (STOPSIGNAL): nginx finishes what it serves, then exits, and so does the container.
trap 'kill -QUIT "$nginx_pid" 2>/dev/null' QUIT TERM INT
start_watcher

set +o errexit
while true; do
  wait -n
  if ! kill -0 "$nginx_pid" 2>/dev/null; then
    wait "$nginx_pid"
    status=$?
    kill "$watcher" 2>/dev/null
    publish_routes ""  # routing nothing: a replica stopping after the gateway need not wait for it
    exit "$status"
  fi
  if ! kill -0 "$watcher" 2>/dev/null; then
    echo "gateway: the replica watcher died; starting it again" >&2
    start_watcher
  fi
done
