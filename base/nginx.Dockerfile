# A stand-in for the official nginx image, built from Debian packages (see scripts/base-images.sh).
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
# The Debian suite pins the versions: a point release removes the old ones, so `pkg=version` would break builds.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx \
    && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/default \
    && ln -sf /dev/stdout /var/log/nginx/access.log \
    && ln -sf /dev/stderr /var/log/nginx/error.log
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
