#!/usr/bin/env bash
# Docker healthcheck of the gateway: its own /healthz over a plain TCP connection (the image has no HTTP client).
set -o errexit -o nounset -o pipefail
exec 3<>/dev/tcp/127.0.0.1/8080
printf 'GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
read -r -t 2 status_line <&3
[[ "$status_line" == "HTTP/1.1 200"* ]]
