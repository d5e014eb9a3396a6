#!/usr/bin/env bash
# Runs a command with DATABASE_URL naming a throwaway PostgreSQL server on loopback (`make unit DB=postgres`), so
# the unit tests run on PostgreSQL as well as SQLite. The server (POSTGRES_IMAGE, as in .env) is removed after.
set -o errexit -o nounset -o pipefail

if [[ -z "${POSTGRES_IMAGE:-}" && -f .env ]]; then
  POSTGRES_IMAGE=$(sed -n 's/^POSTGRES_IMAGE=//p' .env)
fi
image=${POSTGRES_IMAGE:-postgres:17.11-trixie}
password=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
name=microstack-unit-postgres-$$

docker run --detach --rm --name "$name" --user postgres --publish 127.0.0.1::5432 \
  --env POSTGRES_USER=unit --env POSTGRES_PASSWORD="$password" "$image" >/dev/null
trap 'docker rm --force --volumes "$name" >/dev/null' EXIT

for _ in $(seq 60); do
  docker exec "$name" pg_isready --quiet --host 127.0.0.1 --username unit && break
  sleep 0.5
done
docker exec "$name" pg_isready --quiet --host 127.0.0.1 --username unit
port=$(docker port "$name" 5432/tcp | head -n 1 | sed 's/.*://')
echo "with-postgres: $image on 127.0.0.1:$port" >&2
DATABASE_URL="postgres://unit:$password@127.0.0.1:$port/unit" "$@"
