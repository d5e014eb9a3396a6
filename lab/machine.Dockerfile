# A fresh machine, for the test that follows the README on one (tests/test_fresh_machine.py): Debian with git,
# make and Python 3 and nothing else of the project's needs, trusting the CAs the host trusts (its system store:
# a proxy that intercepts TLS, here), and room for an engine as the lab's nodes have. Built from a folder the test
# assembles: this file, the host's CA bundle and the engine's daemon.json.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git make python3 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# The engine make up installs keeps its containers' cgroups under one of the machine's own (the host's are
# shared: cgroup v1 here), as the lab's nodes do with --cgroup-parent.
COPY daemon.json /etc/docker/daemon.json
WORKDIR /root
CMD ["sleep", "infinity"]
