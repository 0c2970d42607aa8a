#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install what the build and the tests need, from Debian's repositories.
# Idempotent: apt-get runs only when a package is missing. Arguments are
# more packages a target needs (make bench: gnuplot-nox for its plot).
set -euo pipefail

PKGS="build-essential git bc flex bison libelf-dev libssl-dev cpio xz-utils
      ccache dwarves rsync python3 perl libfdt-dev uuid-dev libcap-dev
      qemu-system-x86 kexec-tools debian-archive-keyring $*"

missing=()
for p in $PKGS; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
		missing+=("$p")
done
if [ ${#missing[@]} = 0 ]; then
	echo "deps: all present"
	exit 0
fi
echo "deps: installing ${missing[*]}"
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
