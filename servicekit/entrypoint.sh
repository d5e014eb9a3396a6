#!/usr/bin/env bash
# Starts one service: applies its migrations (one replica at a time), then becomes its uWSGI server.
set -o errexit -o nounset -o pipefail

mkdir -p "$DATA_DIR"
# Replicas share the data volume; the lock lets exactly one migrate while the others wait.
flock "$DATA_DIR/.migrate.lock" python manage.py migrate --noinput

# A service adds options of its own (service3's outbox mule, say) in a uwsgi.ini beside its manage.py.
own_options=()
[[ -f uwsgi.ini ]] && own_options=(--ini uwsgi.ini)
exec uwsgi --ini /etc/uwsgi/uwsgi.ini "${own_options[@]}"
