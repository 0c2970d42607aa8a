#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make patches: write our commits on top of the base as a git format-patch
# series into $BUILD/patches and run checkpatch.pl --strict over it. Fails
# unless every patch is free of errors, warnings and checks. Each patch
# counts as one test in $BUILD/results/patches.counts for make test.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
TREE=$BUILD/linux
OUT=$BUILD/patches

rm -rf "$OUT"
mkdir -p "$OUT" "$BUILD/results"
n=$(git -C "$TREE" rev-list --count base..persistmem)
if [ "$n" = 0 ]; then
	echo "patches: no commits on top of the base"
	echo "0 0" > "$BUILD/results/patches.counts"
	exit 0
fi
git -C "$TREE" format-patch -q --no-signature -o "$OUT" base..persistmem
echo "patches: $n patches in $OUT"

bad=0
for p in "$OUT"/*.patch; do
	if ! out=$(cd "$TREE" && ./scripts/checkpatch.pl --strict --terse \
			"$p" 2>&1) ||
	   grep -qE ': (ERROR|WARNING|CHECK):' <<< "$out"; then
		echo "$out" | grep -E ': (ERROR|WARNING|CHECK):' || echo "$out"
		bad=$((bad + 1))
	fi
done
echo "$((n - bad)) $bad" > "$BUILD/results/patches.counts"
if [ "$bad" != 0 ]; then
	echo "patches: checkpatch --strict found problems in $bad of $n patches" >&2
	exit 1
fi
echo "patches: checkpatch --strict clean on all $n patches"
