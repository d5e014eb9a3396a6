# A stand-in for the official python:3.13-slim image, built from Debian packages (see scripts/base-images.sh).
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
# The Debian suite pins the versions: a point release removes the old ones, so `pkg=version` would break builds.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
# pip reads the system bundle, which holds any CA the base image was told to trust.
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    LANG=C.UTF-8
CMD ["python3"]
