#!/usr/bin/env bash
# Builds the Python, nginx and PostgreSQL base images from Debian packages, for machines that cannot pull from a
# registry.
#
# debootstrap makes a minimal Debian root file system, `docker import` turns it into an image, and small
# Dockerfiles in base/ add Python, nginx or PostgreSQL with apt. An optional CA bundle (CA_BUNDLE) is trusted by
# all, for networks whose TLS is intercepted by a proxy. The last lines printed are PYTHON_IMAGE=…, NGINX_IMAGE=…
# and POSTGRES_IMAGE=…, ready for `export` or for .env.
set -o errexit -o nounset -o pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
suite=${DEBIAN_SUITE:-trixie}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
ca_bundle=${CA_BUNDLE:-}
tag_prefix=${BASE_IMAGE_PREFIX:-microstack-base}
debian_image="$tag_prefix/debian:$suite"
python_image="$tag_prefix/python:$suite"
nginx_image="$tag_prefix/nginx:$suite"
postgres_image="$tag_prefix/postgres:$suite"

log() { echo "base-images: $*" >&2; }

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

build_debian_image() {
  local rootfs
  rootfs=$(mktemp -d /tmp/base-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' RETURN
  log "debootstrap $suite from $mirror (a few minutes)"
  debootstrap --variant=minbase --include=ca-certificates "$suite" "$rootfs" "$mirror" >&2
  if [[ -n "$ca_bundle" ]]; then
    log "trusting the CA certificates in $ca_bundle"
    cp "$ca_bundle" "$rootfs/usr/local/share/ca-certificates/extra-ca.crt"
    chroot "$rootfs" update-ca-certificates >&2
  fi
  # Keep images small: no package lists or caches in the layer.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
  tar -C "$rootfs" -c . | docker import --change 'CMD ["bash"]' - "$debian_image" >&2
}

build_on_debian() {
  local image=$1 dockerfile=$2
  log "building $image"
  # Use BuildKit where the buildx plugin exists; the classic builder works everywhere else.
  local buildkit=0
  docker buildx version >/dev/null 2>&1 && buildkit=1
  DOCKER_BUILDKIT=$buildkit docker build --build-arg "DEBIAN_IMAGE=$debian_image" \
    -t "$image" -f "$here/base/$dockerfile" "$here/base" >&2
}

command -v debootstrap >/dev/null || { log "debootstrap is missing: apt-get install debootstrap"; exit 1; }
if [[ -n "$ca_bundle" && ! -r "$ca_bundle" ]]; then
  log "CA_BUNDLE=$ca_bundle is not a readable file"; exit 1
fi

if [[ "${FORCE:-0}" == 1 ]] || ! image_exists "$debian_image"; then
  build_debian_image
else
  log "$debian_image exists (FORCE=1 rebuilds it)"
fi
build_on_debian "$python_image" python.Dockerfile
build_on_debian "$nginx_image" nginx.Dockerfile
build_on_debian "$postgres_image" postgres.Dockerfile

echo "PYTHON_IMAGE=$python_image"
echo "NGINX_IMAGE=$nginx_image"
echo "POSTGRES_IMAGE=$postgres_image"
