#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run the project's KUnit suites with kunit.py on x86_64 under QEMU TCG.
#
# A suite is announced by a .kunitconfig next to its code in the overlay
# (e.g. mm/persist_alloc/.kunitconfig); all of them are merged into one
# kunit.py run in $BUILD/kunit. UML cannot host them (no KHO, LUO, KVM or
# set_direct_map there). kunit.py tries "-accel kvm" first, which hangs on
# these hosts, so /dev/kvm is hidden in a private mount namespace and QEMU
# falls back to TCG.
#
# KUNITCONFIG=<file> runs that kunitconfig instead (e.g. an upstream one,
# to check this runner). Writes "<passed> <failed>" to
# $BUILD/results/kunit.counts and ends with "N passed, N failed".
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
TREE=$BUILD/linux
LOG=$BUILD/logs/kunit.log
mkdir -p "$BUILD/results" "$BUILD/logs"

if [ -n "${KUNITCONFIG:-}" ]; then
	configs=("$KUNITCONFIG")
else
	mapfile -t configs < <(cd "$ROOT" && git ls-files --cached --others --exclude-standard \
		-- '*.kunitconfig' '*/.kunitconfig' | sed "s|^|$TREE/|")
fi
if [ ${#configs[@]} = 0 ]; then
	echo "kunit: the project has no KUnit suites yet (no .kunitconfig in the overlay);"
	echo "kunit: nothing was built or run. The first suite arrives with mm/persist_alloc."
	echo "0 0" > "$BUILD/results/kunit.counts"
	echo "0 passed, 0 failed"
	exit 0
fi

args=()
for c in "${configs[@]}"; do
	[ -f "$c" ] || { echo "kunit: $c missing (run 'make overlay')" >&2; exit 1; }
	args+=(--kunitconfig="$c")
done

export PATH=/usr/lib/ccache:$PATH
hide_kvm='[ -e /dev/kvm ] && mount --bind /dev/null /dev/kvm; exec "$@"'
set +e
(cd "$TREE" && timeout -k 10 "${KUNIT_TIMEOUT:-1500}" \
	unshare -m --propagation private sh -c "$hide_kvm" sh \
	./tools/testing/kunit/kunit.py run --arch=x86_64 --build_dir="$BUILD/kunit" \
		--jobs="$(nproc)" --timeout="${KUNIT_RUN_TIMEOUT:-300}" \
		--qemu_args="-cpu max -smp 2" "${args[@]}") 2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}
set -e

# kunit.py's summary: "Testing complete. Ran N tests: passed: P, failed: F, ..."
summary=$(grep -E 'Ran [0-9]+ tests?:' "$LOG" | tail -1 || true)
passed=$(sed -n 's/.*passed: \([0-9]*\).*/\1/p' <<< "$summary")
failed=$(sed -n 's/.*failed: \([0-9]*\).*/\1/p' <<< "$summary")
crashed=$(sed -n 's/.*crashed: \([0-9]*\).*/\1/p' <<< "$summary")
passed=${passed:-0}
failed=$(( ${failed:-0} + ${crashed:-0} ))
if [ -z "$summary" ] || { [ "$rc" != 0 ] && [ "$failed" = 0 ]; }; then
	echo "kunit: kunit.py exited $rc without a usable summary, see $LOG" >&2
	failed=$((failed + 1))
fi
echo "$passed $failed" > "$BUILD/results/kunit.counts"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
