#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make series: build every commit of the series on its own (vmlinux with
# the project's config, warnings are errors as in make kernel), then put
# the tree and the config back. Incremental: each step rebuilds what its
# commit changed. A commit that touches nothing the kernel build reads
# (Documentation/, MAINTAINERS, tools/testing/) leaves the tree its parent
# built and is not rebuilt; olddefconfig runs only when a Kconfig file
# changed since the last configured commit. vmlinux, not bzImage: the boot
# image only compresses it and no commit touches arch/x86/boot. Each
# commit counts as one test in $BUILD/results/series.counts for make test.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TREE=${TREE:-$ROOT/build/linux}
BUILD=${BUILD:-$ROOT/build}
OBJ=${OBJ:-$BUILD/obj}
JOBS=${JOBS:-$(nproc)}
export PATH=/usr/lib/ccache:$PATH

[ -f "$OBJ/.config" ] || { echo "series: run make kernel first" >&2; exit 1; }
saved=$(mktemp)
cp "$OBJ/.config" "$saved"
restore() {
	git -C "$TREE" checkout -q persistmem
	cp "$saved" "$OBJ/.config"
	make -s -C "$TREE" O="$OBJ" ARCH=x86_64 olddefconfig
	rm -f "$saved"
}
trap restore EXIT

# Does commit $1 change only files the kernel build never reads?
outside_build() {
	! git -C "$TREE" diff --name-only "$1^" "$1" |
		grep -qvE '^(Documentation/|MAINTAINERS$|tools/testing/)'
}

n=0
bad=0
configured=persistmem
all_start=$(date +%s)
for c in $(git -C "$TREE" rev-list --reverse base..persistmem); do
	n=$((n + 1))
	subject=$(git -C "$TREE" log -1 --format=%s "$c")
	if outside_build "$c"; then
		echo "series: ok   $n $subject (no file of the kernel build)"
		continue
	fi
	start=$(date +%s)
	git -C "$TREE" checkout -q --detach "$c"
	if git -C "$TREE" diff --name-only "$configured" "$c" | grep -q 'Kconfig'; then
		cp "$saved" "$OBJ/.config"
		make -s -C "$TREE" O="$OBJ" ARCH=x86_64 olddefconfig
		configured=$c
	fi
	if make -s -C "$TREE" O="$OBJ" ARCH=x86_64 -j"$JOBS" vmlinux > "$OBJ/series.log" 2>&1 &&
	   ! grep -q "warning:" "$OBJ/series.log"; then
		echo "series: ok   $n $subject ($(( $(date +%s) - start )) s)"
	else
		echo "series: FAIL $n $subject"
		tail -20 "$OBJ/series.log"
		bad=$((bad + 1))
	fi
done
mkdir -p "$BUILD/results"
echo "$((n - bad)) $bad" > "$BUILD/results/series.counts"
echo "series: $((n - bad)) of $n commits build ($(( $(date +%s) - all_start )) s)"
[ "$bad" = 0 ]
