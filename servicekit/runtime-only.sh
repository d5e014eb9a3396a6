#!/usr/bin/env bash
# Leaves in a Debian-based Python image only what a running service needs: removes the files of the packages
# that install or build software (package managers, perl, pip's wheels), manage users and logins, or mount
# disks; glibc's charset converters, which Python, with codecs of its own, never loads; and the package database
# itself. Run last in the stage whose file system the service image copies: nothing installs packages after it.
#
# The files go, not the packages: removing a package runs its scripts, which need the perl and debconf removed
# with it. A package the image does not have is skipped, so either base image (ours or the official one) works.
set -o errexit -o nounset -o pipefail

build_only=(
  apt libapt-pkg7.0 debian-archive-keyring sqv perl-base debconf libdebconfclient0 libdb5.3t64
  python3-pip-whl python3-setuptools-whl python3-venv python3.13-venv
  login passwd libpam-modules libpam-modules-bin libpam-runtime libpam0g liblastlog2-2
  libsemanage2 libsemanage-common libsepol2 libaudit1 libaudit-common libcap-ng0
  util-linux mount bsdutils libmount1 libblkid1 libsmartcols1 libsystemd0 libudev1
  diffutils tar gzip hostname init-system-helpers sysvinit-utils ncurses-bin openssl openssl-provider-legacy
)

installed=$(dpkg-query --show --showformat '${Package}\n')
removed=$(grep --line-regexp --fixed-strings --file <(printf '%s\n' "${build_only[@]}") <<<"$installed" || true)
if [[ -n "$removed" ]]; then
  # Directories are shared between packages: only files and links go.
  xargs dpkg-query --listfiles <<<"$removed" | sort -u | while IFS= read -r path; do
    if [[ -L "$path" || ( -e "$path" && ! -d "$path" ) ]]; then
      rm -f "$path"
    fi
  done
fi
rm -rf /var/lib/dpkg /usr/bin/dpkg* /var/cache/debconf /var/log/* /usr/lib/*/gconv
