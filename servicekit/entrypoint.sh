#!/usr/bin/env bash
# Starts one service replica: applies migrations (one replica at a time), then runs its uWSGI server.
#
# This script stays PID 1 instead of exec-ing uWSGI for one reason: on `docker stop` it first removes the
# replica's socket, so the gateway sends new requests to the other replicas, lets what is already queued be
# served, and only then asks uWSGI to finish its in-flight requests and exit. Scaling down loses no request.
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

stop() {
  stopping=1
  [[ -n "$child" ]] || return 0
  if [[ "$serving" == 1 ]]; then
    # A unix socket path, not a TCP address. Over TCP the gateway stops routing here once this replica leaves
    # the DNS (Swarm removes it before stopping it), within DRAIN_SECONDS when that covers its poll interval.
    [[ "$UWSGI_SOCKET" == /* ]] && rm -f "$UWSGI_SOCKET" "${UWSGI_SOCKET%.sock}.name"
    sleep "$DRAIN_SECONDS"
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
  # uWSGI's stats server (JSON over HTTP) beside the socket: the gateway serves it on its internal listener to
  # the status page (servicekit/servicekit/status).
  export UWSGI_STATS=${UWSGI_SOCKET%.sock}.stats UWSGI_STATS_HTTP=true
  # After a crash this replica's sockets are still there, dead; they are ours (named by our hostname) to replace.
  rm -f "$UWSGI_SOCKET" "$UWSGI_STATS"
fi

uwsgi_options=(--ini /etc/uwsgi/uwsgi.ini)
# A service adds options of its own (service3's outbox mule, say) in a uwsgi.ini in its folder.
[[ -f uwsgi.ini ]] && uwsgi_options+=(--ini uwsgi.ini)
# Adaptive workers: keep CHEAPER workers when idle, up to UWSGI_PROCESSES under load.
[[ -n "${CHEAPER:-}" ]] && uwsgi_options+=(--cheaper "$CHEAPER" --cheaper-initial "$CHEAPER" --cheaper-algo spare)
# The container's command adds options last, so they win: `--module <another application>` (make bench's rows).
uwsgi_options+=("$@")

[[ "$stopping" == 1 ]] && exit 0
serving=1
status=0
run_child uwsgi "${uwsgi_options[@]}" || status=$?
if [[ "$status" != 0 && "$stopping" == 0 ]]; then
  echo "servicekit: failed: uWSGI exited with status $status"  # an ERROR record, with why (loglines)
fi
exit "$status"
