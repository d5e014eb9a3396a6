#!/bin/sh
# One engine of the lab. An engine pulls from a plain-HTTP registry only on loopback, so the node forwards its
# own 127.0.0.1:REGISTRY_PORT to the lab's registry: the name the host pushes to is the name every node pulls.
# The engine answers on its usual socket and on one in /lab, a folder the host mounts (DOCKER_HOST for it).
# Its containers' cgroups go under /NODE_NAME, apart from the host engine's and the other nodes'.
set -eu
socat "TCP-LISTEN:${REGISTRY_PORT},bind=127.0.0.1,fork,reuseaddr" TCP:registry:5000 &
rm -f /lab/docker.sock
exec dockerd --host unix:///var/run/docker.sock --host unix:///lab/docker.sock \
  --cgroup-parent "/${NODE_NAME}" --log-level warn
