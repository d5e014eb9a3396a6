#!/usr/bin/env bash
# The base PostgreSQL image's entrypoint: on first start, makes the cluster in PGDATA with POSTGRES_USER as its
# superuser (password from POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE) and the database POSTGRES_DB, taking
# password connections from the network; then runs the server as PID 1. The subset of the official image's
# entrypoint that the stack relies on, so either image can be used. Runs as the postgres user.
set -o errexit -o nounset -o pipefail

user=${POSTGRES_USER:-postgres}
database=${POSTGRES_DB:-$user}

password() {
  if [[ -n "${POSTGRES_PASSWORD_FILE:-}" ]]; then
    cat "$POSTGRES_PASSWORD_FILE"
  else
    printf '%s' "${POSTGRES_PASSWORD:-}"
  fi
}

initialise() {
  local secret
  secret=$(password)
  if [[ -z "$secret" ]]; then
    echo "postgres: no password: set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE" >&2
    exit 1
  fi
  chmod 0700 "$PGDATA"
  initdb --username="$user" --pwfile=<(printf '%s\n' "$secret") --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 >/dev/null
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  if [[ "$database" != postgres ]]; then
    # Single-user mode: no server is listening yet, so nothing can connect before the database exists.
    echo "CREATE DATABASE \"$database\" OWNER \"$user\";" | postgres --single -D "$PGDATA" -j postgres >/dev/null
  fi
  echo "postgres: initialised $PGDATA with database $database" >&2
}

if [[ "${1:-}" == postgres && ! -s "$PGDATA/PG_VERSION" ]]; then
  initialise
fi
exec "$@"
