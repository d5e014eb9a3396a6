#!/usr/bin/env bash
# Starts one service replica: applies migrations (one replica at a time), then runs its uWSGI server.
#
# This script stays PID 1 instead of exec-ing uWSGI for one reason: on `docker stop` it first takes the replica out
# of the gateway's routes, and only then asks uWSGI to finish its in-flight requests and exit. With unix sockets
# that is a handshake (nginx/entrypoint.sh): it marks the replica draining beside its socket, and waits until the
# gateway's routes file no longer names the socket, which the gateway writes once no worker of its can still send
# a request here. Scaling in and deploying lose no request, and the gateway never meets a missing socket.
# Each step runs in the background and is waited for, so a TERM is handled at once, during migrations too.
set -o errexit -o nounset -o pipefail

# Every line this container writes is one JSON object. The service's own log lines are JSON already: they go
# straight to the container's log (LOG_FD, servicekit.logs). uWSGI's banner and whatever else is printed pass
# through servicekit.loglines, which makes each line one.
exec 3>&1
export LOG_FD=3
exec > >(exec python -m servicekit.loglines) 2>&1

child=""
serving=0
stopping=0

# The gateway's routes file (what nginx routes to), in the volume of its internal socket.
GATEWAY_ROUTES=${GATEWAY_ROUTES:-/run/gateway/routes}

# The drain handshake, at most DRAIN_SECONDS: returns once the gateway routes no request here.
withdraw_from_gateway() {
  local routes own deadline=$((EPOCHSECONDS + DRAIN_SECONDS))
  : >"${UWSGI_SOCKET%.sock}.draining"
  # The routes name no replica: each line is the SHA-256 of a routed socket's file name (nginx/entrypoint.sh).
  own=$(printf '%s' "${UWSGI_SOCKET##*/}" | sha256sum)
  own=${own%% *}
  while ((EPOCHSECONDS <= deadline)); do
    routes=""
    [[ -r "$GATEWAY_ROUTES" ]] && routes=$(<"$GATEWAY_ROUTES")
    [[ $'\n'"$routes"$'\n' == *$'\n'"$own"$'\n'* ]] || return 0
    sleep 0.1
  done
  echo "servicekit: the gateway still routes here after ${DRAIN_SECONDS} s (is its watcher running?); stopping"
}

stop() {
  stopping=1
  [[ -n "$child" ]] || return 0
  if [[ "$serving" == 1 ]]; then
    if [[ "$UWSGI_SOCKET" == /* ]]; then
      withdraw_from_gateway
    else
      # Over TCP the gateway stops routing here once this replica leaves the DNS (Swarm removes it before
      # stopping it), within DRAIN_SECONDS when that covers its poll interval.
      sleep "$DRAIN_SECONDS"
    fi
  fi
  # During start-up this stops the migrations: each migration is a transaction, so none is left half-applied.
  kill -TERM "$child" 2>/dev/null || true
}
trap stop TERM INT

# Runs a command as the current child and returns its exit status; a trapped signal ends the first `wait`
# early, so it waits again for the child's own exit.
run_child() {
  "$@" &
  child=$!
  local status=0
  wait "$child" || status=$?
  if [[ "$stopping" == 1 ]]; then
    status=0
    wait "$child" || status=$?
  fi
  return "$status"
}

mkdir -p "$DATA_DIR"
# Replicas starting together take turns: one migrates while the others wait (a lock in the database).
migrated=0
run_child django-admin migrate_serialised || migrated=$?
if [[ "$stopping" == 1 ]]; then
  exit 0
fi
if [[ "$migrated" != 0 ]]; then
  echo "servicekit: failed: the migrations exited with status $migrated"  # an ERROR record, with why (loglines)
  exit "$migrated"
fi

# Where uWSGI listens; with unix sockets, the name people know this replica by is written beside it.
UWSGI_SOCKET=$(python -m servicekit.sockets)
export UWSGI_SOCKET
if [[ "$UWSGI_SOCKET" == /* ]]; then
  # uWSGI's stats server (JSON over HTTP) beside the socket: the gateway serves it on its status plane to the
  # status page (status/), never on its internal listener.
  export UWSGI_STATS=${UWSGI_SOCKET%.sock}.stats UWSGI_STATS_HTTP=true
  # After a crash this replica's sockets (and a draining mark) are still there; ours (named by our hostname).
  rm -f "$UWSGI_SOCKET" "$UWSGI_STATS" "${UWSGI_SOCKET%.sock}.draining"
elif [[ -n "${SERVICE_STATS_PORT:-}" ]]; then
  # Over TCP (Swarm): a port on the service's own network, which only its replicas and the gateway join.
  export UWSGI_STATS=0.0.0.0:$SERVICE_STATS_PORT UWSGI_STATS_HTTP=true
fi

uwsgi_options=(--ini /etc/uwsgi/uwsgi.ini)
# A service adds options of its own (service3's outbox mule, say) in a uwsgi.ini in its folder.
[[ -f uwsgi.ini ]] && uwsgi_options+=(--ini uwsgi.ini)
# The service's workers, when its settings name them (empty: uwsgi.ini's defaults). Options after the files, so
# they win; not left as UWSGI_* variables, which uWSGI reads before the files (and would read even empty).
[[ -n "${UWSGI_PROCESSES:-}" ]] && uwsgi_options+=(--processes "$UWSGI_PROCESSES")
[[ -n "${UWSGI_THREADS:-}" ]] && uwsgi_options+=(--threads "$UWSGI_THREADS")
unset UWSGI_PROCESSES UWSGI_THREADS
# The longest a request may run here (uWSGI's harakiri kills it then), when the settings name it.
[[ -n "${REQUEST_TIMEOUT_SECONDS:-}" ]] && uwsgi_options+=(--harakiri "$REQUEST_TIMEOUT_SECONDS")
# Adaptive workers: keep CHEAPER workers when idle, up to UWSGI_PROCESSES under load.
[[ -n "${CHEAPER:-}" ]] && uwsgi_options+=(--cheaper "$CHEAPER" --cheaper-initial "$CHEAPER" --cheaper-algo spare)
# The container's command adds options last, so they win: `--module <another application>` (make bench's rows).
uwsgi_options+=("$@")

[[ "$stopping" == 1 ]] && exit 0
serving=1
status=0
run_child uwsgi "${uwsgi_options[@]}" || status=$?
# uWSGI has removed its sockets; what this script wrote beside them goes now, once.
[[ "$UWSGI_SOCKET" == /* ]] && rm -f "${UWSGI_SOCKET%.sock}.name" "${UWSGI_SOCKET%.sock}.draining"
if [[ "$status" != 0 && "$stopping" == 0 ]]; then
  echo "servicekit: failed: uWSGI exited with status $status"  # an ERROR record, with why (loglines)
fi
exit "$status"
