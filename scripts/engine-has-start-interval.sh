#!/usr/bin/env bash
# Exits 0 when the Docker engine (or the API version given as $1) has the healthcheck's start_interval: Docker
# Engine 25, API 1.44, and later. Older engines refuse a Compose file that sets it.
set -o errexit -o nounset -o pipefail
api=${1:-$(docker version --format '{{.Server.APIVersion}}' 2>/dev/null)} || exit 1
[[ -n "$api" && "$(printf '%s\n' 1.44 "$api" | sort --version-sort | head -n 1)" == 1.44 ]]
