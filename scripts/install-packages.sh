#!/usr/bin/env bash
# Installs what make needs from Debian's packages where this machine lets make do so (root on Debian), or names
# each missing package with the command that brings it and fails, before anything else starts.
#   scripts/install-packages.sh "what they are for" PACKAGE...
set -o errexit -o nounset -o pipefail

purpose=$1
shift
if [[ $(id -u) == 0 && -f /etc/debian_version ]]; then
  echo "make: installing $* ($purpose), from Debian's packages" >&2
  [[ -f /var/lib/apt/periodic/update-success-stamp ]] || apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  exit 0
fi
echo "make: $purpose needs $*: install them (on Debian: sudo apt-get install $*), then run make again" >&2
exit 1
