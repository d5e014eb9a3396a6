# A Docker engine for the three-node lab (lab/cluster.py): Debian trixie's docker.io (26.x), built from the
# project's Debian base like the other base images, so no registry is needed. socat forwards the node's loopback
# port to the lab's registry (see node-entrypoint.sh).
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
# The Debian suite pins the versions: a point release removes the old ones, so `pkg=version` would break builds.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends docker.io docker-cli iproute2 iptables socat procps \
    && rm -rf /var/lib/apt/lists/*
COPY node-entrypoint.sh /usr/local/bin/node-entrypoint.sh
HEALTHCHECK --interval=1s --timeout=3s --retries=60 CMD ["docker", "info", "--format", "{{.ID}}"]
ENTRYPOINT ["/usr/local/bin/node-entrypoint.sh"]
