#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make test: every test tier (checkpatch on the patch series, KUnit,
# vmtests, every commit of the series built on its own), then one "N passed, N failed" line summing them. A tier that
# cannot run at all counts as one failure.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
RES=$BUILD/results
mkdir -p "$RES"

total_pass=0
total_fail=0
for tier in patches kunit vmtest series; do
	rm -f "$RES/$tier.counts"
	echo "=== $tier"
	make -s -C "$ROOT" "$tier"
	rc=$?
	if [ -f "$RES/$tier.counts" ]; then
		read -r p f < "$RES/$tier.counts"
	else
		echo "=== $tier did not run to completion (exit $rc)"
		p=0 f=1
	fi
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		f=1
	fi
	echo "=== $tier: $p passed, $f failed"
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
done
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
