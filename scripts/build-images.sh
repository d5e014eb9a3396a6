#!/usr/bin/env bash
# Builds the stack's images for `make up` in two lines: the builder's output (hundreds of lines) goes to a log
# file, shown whole only when the build fails.
#
# Compose builds through buildx's Bake when buildx 0.17 or later is installed; where it is not (Debian 12's
# docker.io, say), it warns "configured to build using Bake, but buildx isn't installed" and builds with the
# engine's own BuildKit, the same images. That warning is in the log, not on the screen.
set -o errexit -o nounset -o pipefail

log=$(mktemp --tmpdir microstack-build.XXXXXX.log)
SECONDS=0
echo "build: building the images (docker compose build)"
if ! docker compose --progress plain build "$@" >"$log" 2>&1; then
  cat "$log" >&2
  echo "build: failed after ${SECONDS} s: the builder's whole output is above, and in $log" >&2
  exit 1
fi
rm -f "$log"
echo "build: done in ${SECONDS} s"
