#!/usr/bin/env bash
# Starts one service: applies its migrations (one replica at a time), then becomes its uWSGI server.
set -o errexit -o nounset -o pipefail

mkdir -p "$DATA_DIR"
# Replicas share the data volume; the lock lets exactly one migrate while the others wait.
flock "$DATA_DIR/.migrate.lock" python manage.py migrate --noinput

exec uwsgi --ini /etc/uwsgi/uwsgi.ini
