#!/usr/bin/env bash
# Starts one service replica: applies migrations (one replica at a time), then runs its uWSGI server.
#
# This script stays PID 1 instead of exec-ing uWSGI for one reason: on `docker stop` it first removes the
# replica's socket, so the gateway sends new requests to the other replicas, lets what is already queued be
# served, and only then asks uWSGI to finish its in-flight requests and exit. Scaling down loses no request.
set -o errexit -o nounset -o pipefail

mkdir -p "$DATA_DIR"
# Replicas share the data volume; the lock lets exactly one migrate while the others wait.
flock "$DATA_DIR/.migrate.lock" python manage.py migrate --noinput

UWSGI_SOCKET=$(python -m servicekit.sockets)
export UWSGI_SOCKET
# After a crash this replica's socket file is still there, dead; it is ours (named by our hostname) to replace.
[[ "$UWSGI_SOCKET" == /* ]] && rm -f "$UWSGI_SOCKET"

uwsgi_options=(--ini /etc/uwsgi/uwsgi.ini)
# A service adds options of its own (service3's outbox mule, say) in a uwsgi.ini beside its manage.py.
[[ -f uwsgi.ini ]] && uwsgi_options+=(--ini uwsgi.ini)
# Adaptive workers: keep CHEAPER workers when idle, up to UWSGI_PROCESSES under load.
[[ -n "${CHEAPER:-}" ]] && uwsgi_options+=(--cheaper "$CHEAPER" --cheaper-initial "$CHEAPER" --cheaper-algo spare)

uwsgi "${uwsgi_options[@]}" &
uwsgi_pid=$!

stopping=0
drain_and_stop() {
  stopping=1
  if [[ "$UWSGI_SOCKET" == /* ]]; then  # a unix socket path, not a TCP address
    rm -f "$UWSGI_SOCKET"
    sleep "$DRAIN_SECONDS"
  fi
  kill -TERM "$uwsgi_pid"
}
trap drain_and_stop TERM INT

status=0
wait "$uwsgi_pid" || status=$?
# A trapped signal ends the first `wait` early; wait again for uWSGI's own exit status.
if [[ "$stopping" == 1 ]]; then
  status=0
  wait "$uwsgi_pid" || status=$?
fi
exit "$status"
