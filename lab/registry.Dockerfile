# The lab's registry: Debian's docker-registry (the reference registry, distribution 2.8), as a real cluster's
# nodes get images from one.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
# The package's user, made first with a fixed id, so that USER names it by number.
# hadolint ignore=DL3008
RUN groupadd --system --gid 10200 docker-registry \
    && useradd --system --uid 10200 --gid docker-registry --home-dir /var/lib/docker-registry docker-registry \
    && apt-get update \
    && apt-get install -y --no-install-recommends docker-registry \
    && rm -rf /var/lib/apt/lists/*
COPY registry.yml /etc/docker/registry/config.yml
USER 10200:10200
EXPOSE 5000
CMD ["docker-registry", "serve", "/etc/docker/registry/config.yml"]
