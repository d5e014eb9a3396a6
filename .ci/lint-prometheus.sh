#!/usr/bin/env bash
# make lint's checks of the stack's Prometheus, with promtool: its configuration, its rules, and the rules' unit
# tests (prometheus/rules.test.yml: what each records, when each alert fires and clears). Run from the image the
# stack's Prometheus is built on (PROMETHEUS_IMAGE, as Compose resolves it: .env included), with no network.
set -o errexit -o nounset -o pipefail
cd "$(dirname "$0")/.."

image=$(COMPOSE_FILE=docker-compose.yml docker compose --profile metrics config --format json \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["services"]["prometheus"]["build"]["args"]["PROMETHEUS_IMAGE"])')
promtool() {
  docker run --rm --network none --entrypoint promtool --volume "$PWD/prometheus:/etc/prometheus:ro" "$image" "$@"
}
promtool check config /etc/prometheus/prometheus.yml
promtool check rules /etc/prometheus/rules.yml
promtool test rules /etc/prometheus/rules.test.yml
