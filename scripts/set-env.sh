#!/usr/bin/env bash
# Sets KEY=VALUE lines in the project's .env (created if missing), each replacing that key's line or appended:
# Compose reads .env in every later shell, so what is set here lasts. Other lines and comments are kept.
#   scripts/set-env.sh KEY=VALUE ...      (ENV_FILE=path writes another file)
set -o errexit -o nounset -o pipefail

env_file=${ENV_FILE:-$(cd "$(dirname "$0")/.." && pwd)/.env}
touch "$env_file"
for assignment in "$@"; do
  [[ "$assignment" =~ ^([A-Z][A-Z0-9_]*)=(.*)$ ]] || { echo "set-env: not KEY=VALUE: $assignment" >&2; exit 2; }
  key=${BASH_REMATCH[1]}
  if grep -q "^$key=" "$env_file"; then
    replaced=$(KEY=$key LINE=$assignment awk 'index($0, ENVIRON["KEY"] "=") == 1 { $0 = ENVIRON["LINE"] } 1' "$env_file")
    printf '%s\n' "$replaced" >"$env_file"
  else
    printf '%s\n' "$assignment" >>"$env_file"
  fi
  echo "set-env: $assignment in $env_file" >&2
done
