#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build bzImage and install the uapi headers of the overlaid tree, with
# ccache through PATH so kbuild's command lines stay plain "gcc".
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TREE=${TREE:-$ROOT/build/linux}
OBJ=${OBJ:-$ROOT/build/obj}
HDR=${HDR:-$ROOT/build/hdr}
JOBS=${JOBS:-$(nproc)}

export PATH=/usr/lib/ccache:$PATH
if command -v ccache >/dev/null; then
	ccache -M "${PERSISTMEM_CCACHE_SIZE:-20G}" >/dev/null
fi

"$ROOT"/scripts/kconfig.sh

start=$(date +%s)
make -s -C "$TREE" O="$OBJ" ARCH=x86_64 -j"$JOBS" bzImage
make -s -C "$TREE" O="$OBJ" ARCH=x86_64 headers_install INSTALL_HDR_PATH="$HDR"
echo "build-kernel: bzImage and headers ready in $(( $(date +%s) - start )) s"
ls -l "$OBJ/arch/x86/boot/bzImage"
