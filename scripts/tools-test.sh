#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make tools: build tools/persistmem of the overlaid tree (libpersistmem, pm-vmm,
# pm-workload) against the kernel's uapi headers and run the library's
# KTAP tests on this machine (they need no KVM and no kexec). Writes
# "<passed> <failed>" to $BUILD/results/tools.counts.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
OUT=$BUILD/tools
mkdir -p "$BUILD/results" "$OUT"

[ -d "$BUILD/hdr/include" ] || { echo "tools: no headers in $BUILD/hdr (make kernel)" >&2; exit 1; }
if ! make -s -C "$BUILD/linux/tools/persistmem" OUTPUT="$OUT" \
	KHDR_INCLUDES="-isystem $BUILD/hdr/include" -j2; then
	echo "0 1" > "$BUILD/results/tools.counts"
	echo "tools: build failed"
	echo "0 passed, 1 failed"
	exit 1
fi
"$OUT/lib_test" | tee "$OUT/lib_test.ktap"
rc=${PIPESTATUS[0]}
p=$(grep -c '^ok ' "$OUT/lib_test.ktap")
f=$(grep -c '^not ok ' "$OUT/lib_test.ktap")
if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
	f=1
fi
echo "$p $f" > "$BUILD/results/tools.counts"
echo "tools: $p passed, $f failed"
[ "$f" = 0 ]
