#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make test: every test tier (checkpatch on the patch series, every commit
# of the series built on its own, the tools' library tests, KUnit,
# vmtests), then one "N passed, N failed" line summing them. A tier that cannot run at all
# counts as one failure.
#
# The patches tier (checkpatch: one perl process) runs in the background
# from when the overlay has put the tree in place (so that no overlay runs
# while it reads the series) and its output is printed after the others'.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
RES=$BUILD/results
mkdir -p "$RES"

total_pass=0
total_fail=0
tiers=

# count <tier> <exit status>: add the tier's counts to the totals
count() {
	local tier=$1 rc=$2 p f

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
	tiers="$tiers $tier: $p/$f;"
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
}

for tier in patches tools kunit vmtest series; do
	rm -f "$RES/$tier.counts" "$RES/$tier.log"
done

# The series first: its first commit's build is the (cold) kernel build,
# every later commit's is incremental, and its last commit is the tree
# make kernel then only has to package. Built the other way round, the
# series would first undo the whole series in build/obj and the kernel
# would be compiled twice.
echo "=== tree and configuration"
make -s -C "$ROOT" overlay && "$ROOT/scripts/kconfig.sh"
krc=$?

patches_pid=
if [ "$krc" = 0 ]; then
	"$ROOT/scripts/patches.sh" > "$RES/patches.log" 2>&1 &
	patches_pid=$!
fi

echo "=== series"
if [ "$krc" = 0 ]; then
	"$ROOT/scripts/check-series.sh" 2>&1 | tee "$RES/series.log"
	count series "${PIPESTATUS[0]}"
else
	count series 1
fi

echo "=== kernel"
make -s -C "$ROOT" kernel

for tier in tools kunit vmtest; do
	echo "=== $tier"
	make -s -C "$ROOT" "$tier" 2>&1 | tee "$RES/$tier.log"
	count "$tier" "${PIPESTATUS[0]}"
done

echo "=== patches"
prc=1
if [ -n "$patches_pid" ]; then
	wait "$patches_pid"
	prc=$?
	cat "$RES/patches.log"
fi
count patches "$prc"

# The failures again, last, where a truncated log still shows them.
if [ "$total_fail" != 0 ]; then
	echo "=== what failed (tier: passed/failed;$tiers)"
	grep -hE '^not ok|\[(FAILED|CRASHED|SKIPPED)\]|kunit: |: (ERROR|WARNING|CHECK):|^series: FAIL' \
		"$RES"/tools.log "$RES"/kunit.log "$RES"/vmtest.log "$RES"/patches.log "$RES"/series.log \
		2>/dev/null | head -30
fi
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
