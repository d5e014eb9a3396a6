#!/usr/bin/env bash
# Builds the Python, nginx, PostgreSQL and Prometheus base images from Debian packages, for machines that cannot
# pull from a registry.
#
# debootstrap makes a minimal Debian root file system, `docker import` turns it into an image, and small
# Dockerfiles in base/ add Python, nginx, PostgreSQL or Prometheus with apt. A CA bundle is trusted by all where a
# proxy intercepts TLS: CA_BUNDLE, or, when none is given, this machine's own bundle if a verified fetch from PyPI fails
# with the Mozilla roots alone and succeeds with it (company networks). The trust store is part of the recipe: an
# image made with another one is made again. The images are named in the project's .env (PYTHON_IMAGE=…,
# NGINX_IMAGE=…, POSTGRES_IMAGE=…, PROMETHEUS_IMAGE=…), which Compose reads in every later shell, and printed.
#
#   scripts/base-images.sh [python] [nginx] [postgres] [prometheus]    (none named: all four)
# `make up` names only the images its stack is built from: a first start on SQLite builds no PostgreSQL.
#
# Settings (environment): CA_BUNDLE (a PEM file to trust; CA_BUNDLE=none trusts no other), BASE_IMAGE_PREFIX (the
# images' names, microstack-base/…: tags are global on an engine, so projects sharing one pick their own),
# DEBIAN_SUITE (trixie), DEBIAN_MIRROR, FORCE=1 (debootstrap again even if the Debian image is up to date).
set -o errexit -o nounset -o pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
suite=${DEBIAN_SUITE:-trixie}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
ca_bundle=${CA_BUNDLE:-}
tag_prefix=${BASE_IMAGE_PREFIX:-microstack-base}
debian_image="$tag_prefix/debian:$suite"
kinds=("$@")
((${#kinds[@]})) || kinds=(python nginx postgres prometheus)
for kind in "${kinds[@]}"; do
  [[ "$kind" =~ ^[a-z]+$ && -f "$here/base/$kind.Dockerfile" ]] || { echo "base-images: no base image named $kind (base/)" >&2; exit 2; }
done
# Raised when the recipe of the Debian image changes, so an image made by an older one is made again; the second
# label holds the SHA-256 of the CA bundle it trusts beyond Debian's (or none).
recipe_label=org.microstack.base-recipe
recipe=2
trust_label=org.microstack.base-trust
# This machine's trust store, and the roots Debian ships, from which it is made (the ca-certificates package).
host_bundle=/etc/ssl/certs/ca-certificates.crt
mozilla_roots=/usr/share/ca-certificates/mozilla

log() { echo "base-images: $*" >&2; }

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
  slim_rootfs "$rootfs"
  tar -C "$rootfs" -c . | docker import --change 'CMD ["bash"]' --change "LABEL $recipe_label=$recipe" \
    --change "LABEL $trust_label=$trust" - "$debian_image" >&2
}

# What Debian's own slim images leave out, now and in every package installed later: documentation (but the
# copyright files), manual pages, translations; and apt's caches and package lists, which images never use.
slim_rootfs() {
  local rootfs=$1
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  cat >"$rootfs/etc/apt/apt.conf.d/slim" <<'EOF'
APT::Install-Recommends "false";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
DPkg::Post-Invoke { "rm -rf /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb"; };
EOF
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$rootfs"/usr/share/{man,info,groff,lintian}/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*
  find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
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

# Whether a proxy intercepts TLS here: a verified fetch from PyPI (where the images' pip goes) that fails with
# Debian's roots alone and succeeds with this machine's bundle. One request, and a few seconds at most.
tls_is_intercepted() {
  [[ -d "$mozilla_roots" && -r "$host_bundle" ]] || return 1
  python3 - "$mozilla_roots" "$host_bundle" <<'PYTHON'
import pathlib, ssl, sys, tempfile, urllib.request

def fetches(cafile: str) -> bool:
    try:
        context = ssl.create_default_context(cafile=cafile)
        urllib.request.urlopen("https://pypi.org/simple/pip/", timeout=10, context=context).close()
        return True
    except OSError:  # a refused certificate, or no answer
        return False

with tempfile.NamedTemporaryFile("w", suffix=".pem") as roots:
    roots.write("".join(path.read_text() for path in sorted(pathlib.Path(sys.argv[1]).glob("*.crt"))))
    roots.flush()
    sys.exit(0 if not fetches(roots.name) and fetches(sys.argv[2]) else 1)
PYTHON
}

command -v debootstrap >/dev/null || { log "debootstrap is missing: apt-get install debootstrap"; exit 1; }
if [[ -z "$ca_bundle" ]] && tls_is_intercepted; then
  log "TLS to PyPI is intercepted here: the images trust this machine's CA bundle ($host_bundle; CA_BUNDLE=none: no)"
  ca_bundle=$host_bundle
fi
[[ "$ca_bundle" != none ]] || ca_bundle=""
if [[ -n "$ca_bundle" && ! -r "$ca_bundle" ]]; then
  log "CA_BUNDLE=$ca_bundle is not a readable file"; exit 1
fi
trust=none
[[ -z "$ca_bundle" ]] || trust=$(sha256sum <"$ca_bundle" | cut -d' ' -f1)

labels=$(docker image inspect --format "{{index .Config.Labels \"$recipe_label\"}} {{index .Config.Labels \"$trust_label\"}}" \
  "$debian_image" 2>/dev/null || true)
if [[ "${FORCE:-0}" == 1 || "$labels" != "$recipe $trust" ]]; then
  build_debian_image
else
  log "$debian_image exists, made by this recipe and trust store (FORCE=1 makes it again)"
fi
images=()
for kind in "${kinds[@]}"; do
  image="$tag_prefix/$kind:$suite"
  build_on_debian "$image" "$kind.Dockerfile"
  images+=("${kind^^}_IMAGE=$image")
done
# DEBIAN_IMAGE: the three-node lab's engines and registry (lab/) are built on it.
images+=("DEBIAN_IMAGE=$debian_image")
"$here/scripts/set-env.sh" "${images[@]}"
printf '%s\n' "${images[@]}"
