#!/bin/sh
# Starts a service's database: on first start it makes the password (random, in the credentials volume that only
# this database and its service mount, readable by both), then runs the image's own entrypoint. A password given
# as a file already (a Docker secret on Swarm) is kept.
set -eu

password_file=${POSTGRES_PASSWORD_FILE:?POSTGRES_PASSWORD_FILE names the file the password is kept in}
if [ ! -s "$password_file" ]; then
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$password_file.new"
  chmod 0444 "$password_file.new"
  mv "$password_file.new" "$password_file"
  echo "database: made a password in $password_file" >&2
fi
exec docker-entrypoint.sh "$@"
