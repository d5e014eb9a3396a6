# A stand-in for the official prom/prometheus image, built from Debian packages (see scripts/base-images.sh). It
# keeps the interface the stack uses: /bin/prometheus as the entrypoint, /bin/promtool, the configuration in
# /etc/prometheus, the data in /prometheus, and running as nobody (65534).
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
# The Debian suite pins the versions: a point release removes the old ones, so `pkg=version` would break builds.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends prometheus \
    && rm -rf /var/lib/apt/lists/* \
    && install --directory --owner nobody --group nogroup /prometheus
USER 65534:65534
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
