#!/usr/bin/env bash
# What `make test` needs on the host besides an engine and the base images: Python's venv module (the
# development environment), Chromium and its driver (the status page's browser tests) and wrk (make bench).
# Installed where this machine lets make (scripts/install-packages.sh), or named before any stack starts.
set -o errexit -o nounset -o pipefail

missing=()
python3 -c "import ensurepip" 2>/dev/null || missing+=(python3-venv)
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v wrk >/dev/null || missing+=(wrk)
((${#missing[@]})) || exit 0
exec "$(dirname "$0")/install-packages.sh" "the tests" "${missing[@]}"
