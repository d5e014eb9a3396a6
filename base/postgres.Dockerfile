# A stand-in for the official postgres:17 image, built from Debian packages (see scripts/base-images.sh). It keeps
# the official image's interface that the stack uses: POSTGRES_USER, POSTGRES_DB, POSTGRES_PASSWORD(_FILE),
# PGDATA, `docker-entrypoint.sh postgres`, and running as the postgres user.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
# The postgres user gets the official image's ids (999), so either image runs as USER 999:999.
# The Debian suite pins the versions: a point release removes the old ones, so `pkg=version` would break builds.
# No cluster is made at install time: the entrypoint makes one in PGDATA on first start, as the official image does.
# hadolint ignore=DL3008
RUN groupadd --system --gid 999 postgres \
    && useradd --system --uid 999 --gid postgres --home-dir /var/lib/postgresql --shell /bin/bash postgres \
    && apt-get update \
    && apt-get install -y --no-install-recommends postgresql-common \
    && sed -ri 's/#(create_main_cluster) .*$/\1 = false/' /etc/postgresql-common/createcluster.conf \
    && apt-get install -y --no-install-recommends postgresql-17 \
    && rm -rf /var/lib/apt/lists/* \
    && install --directory --owner postgres --group postgres --mode 3777 /var/run/postgresql \
    && install --directory --owner postgres --group postgres --mode 1777 /var/lib/postgresql/data
ENV PATH=$PATH:/usr/lib/postgresql/17/bin \
    PGDATA=/var/lib/postgresql/data \
    LANG=C.UTF-8
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /var/lib/postgresql/data
# Fast shutdown: no new connections, open transactions rolled back, data flushed.
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
