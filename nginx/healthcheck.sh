#!/usr/bin/env bash
# Docker healthcheck of the gateway: its own /healthz over a plain TCP connection (the image has no HTTP client),
# and a replica watcher that completed a pass within WATCHER_STALE_SECONDS (entrypoint.sh writes the heartbeat).
set -o errexit -o nounset -o pipefail
heartbeat=/tmp/nginx/watcher.heartbeat
stale_after=${WATCHER_STALE_SECONDS:-5}
# The heartbeat holds the time of the watcher's last good pass (bash's clock: the check starts no program).
read -r last_pass <"$heartbeat"
age=$((EPOCHSECONDS - last_pass))
if ((age > stale_after)); then
  echo "unhealthy: the replica watcher last completed a pass ${age} s ago" >&2
  exit 1
fi
exec 3<>/dev/tcp/127.0.0.1/8080
printf 'GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
read -r -t 2 status_line <&3
[[ "$status_line" == "HTTP/1.1 200"* ]]
