#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make test: every test tier (checkpatch on the patch series, KUnit,
# vmtests, every commit of the series built on its own), then one
# "N passed, N failed" line summing them. A tier that cannot run at all
# counts as one failure.
#
# The patches tier (checkpatch: one perl process) runs alongside kunit and
# vmtest, whose TCG guests mostly keep one of the machine's two cores busy;
# its output is printed after theirs. It starts once make kernel has put
# the tree in place, so that no overlay runs while it reads the series.
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

for tier in patches kunit vmtest series; do
	rm -f "$RES/$tier.counts" "$RES/$tier.log"
done

echo "=== kernel"
make -s -C "$ROOT" kernel
krc=$?

patches_pid=
if [ "$krc" = 0 ]; then
	"$ROOT/scripts/patches.sh" > "$RES/patches.log" 2>&1 &
	patches_pid=$!
fi

for tier in kunit vmtest; do
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

echo "=== series"
make -s -C "$ROOT" series 2>&1 | tee "$RES/series.log"
count series "${PIPESTATUS[0]}"

# The failures again, last, where a truncated log still shows them.
if [ "$total_fail" != 0 ]; then
	echo "=== what failed (tier: passed/failed;$tiers)"
	grep -hE '^not ok|\[(FAILED|CRASHED|SKIPPED)\]|kunit: |: (ERROR|WARNING|CHECK):|^series: FAIL' \
		"$RES"/kunit.log "$RES"/vmtest.log "$RES"/patches.log "$RES"/series.log \
		2>/dev/null | head -30
fi
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
