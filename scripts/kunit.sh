#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run the project's KUnit suites with kunit.py on x86_64 under QEMU TCG.
#
# The suites are built into the kernel under test (their Kconfig symbols
# are in config/persistmem.config) and CONFIG_KUNIT_DEFAULT_ENABLED is off,
# so ordinary boots (the vmtests) skip them; "kunit.py exec" boots that same
# kernel with kunit.enable=1 and one suite glob at a time from
# config/kunit-suites. No second kernel is built. UML could not host them
# anyway (no KHO, LUO, KVM or set_direct_map there). kunit.py tries
# "-accel kvm" first, which hangs on these hosts, so /dev/kvm is hidden in
# a private mount namespace and QEMU falls back to TCG.
#
# The test kernel boots with 4 GiB and KUNIT_KERNEL_ARGS (default
# "persist_alloc=2G nokaslr": a pool of two blocks for the suites that
# allocate from one). Of 4 GiB only [1G,2G), [2G,3G) and [4G,5G) are
# aligned 1 GiB blocks; early memblock allocations take the top one, and a
# randomly placed kernel image lands in one of the other two about half of
# the time, leaving a pool of one block. nokaslr keeps the image at 16 MiB.
# KUNIT_SUITES="glob ..." overrides the list (e.g. to check this runner on
# an upstream suite enabled in the config). Writes "<passed> <failed>" to
# $BUILD/results/kunit.counts and ends with "N passed, N failed".
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
TREE=$BUILD/linux
OBJ=$BUILD/obj
LOGDIR=$BUILD/logs/kunit
mkdir -p "$BUILD/results" "$LOGDIR"

if [ -n "${KUNIT_SUITES:-}" ]; then
	read -r -a suites <<< "$KUNIT_SUITES"
else
	mapfile -t suites < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$ROOT/config/kunit-suites")
fi
if [ ${#suites[@]} = 0 ]; then
	echo "kunit: the project has no KUnit suites yet (config/kunit-suites is empty);"
	echo "kunit: nothing was run. The first suite arrives with mm/persist_alloc."
	echo "0 0" > "$BUILD/results/kunit.counts"
	echo "0 passed, 0 failed"
	exit 0
fi
[ -f "$OBJ/arch/x86/boot/bzImage" ] || { echo "kunit: no kernel in $OBJ (make kernel)" >&2; exit 1; }

# Suites that need a persist_alloc pool find one at boot.
KUNIT_KERNEL_ARGS=${KUNIT_KERNEL_ARGS:-persist_alloc=2G nokaslr}
hide_kvm='[ -e /dev/kvm ] && mount --bind /dev/null /dev/kvm; exec "$@"'
passed=0
failed=0
for glob in "${suites[@]}"; do
	log=$LOGDIR/${glob//[^A-Za-z0-9_]/_}.log
	(cd "$TREE" && timeout -k 10 "${KUNIT_TIMEOUT:-600}" \
		unshare -m --propagation private sh -c "$hide_kvm" sh \
		./tools/testing/kunit/kunit.py exec --arch=x86_64 --build_dir="$OBJ" \
			--timeout="${KUNIT_RUN_TIMEOUT:-300}" \
			--qemu_args="-cpu max -smp 2 -m 4G" \
			--kernel_args="$KUNIT_KERNEL_ARGS" "$glob") > "$log" 2>&1
	rc=$?
	cat "$log"
	# "Testing complete. Ran N tests: passed: P, failed: F, crashed: C, ..."
	summary=$(grep -E 'Ran [0-9]+ tests?:' "$log" | tail -1)
	p=$(sed -n 's/.*passed: \([0-9]*\).*/\1/p' <<< "$summary")
	f=$(sed -n 's/.*failed: \([0-9]*\).*/\1/p' <<< "$summary")
	c=$(sed -n 's/.*crashed: \([0-9]*\).*/\1/p' <<< "$summary")
	k=$(sed -n 's/.*skipped: \([0-9]*\).*/\1/p' <<< "$summary")
	p=${p:-0}
	# Our suites run in an environment we set up: a skip is a failure.
	if [ "${k:-0}" != 0 ]; then
		echo "kunit: $k test(s) skipped under '$glob', counted as failed" >&2
	fi
	f=$(( ${f:-0} + ${c:-0} + ${k:-0} ))
	if [ "$p" = 0 ] && [ "$f" = 0 ]; then
		echo "kunit: suite glob '$glob' ran no test (kunit.py exit $rc), see $log" >&2
		f=1
	elif [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		echo "kunit: kunit.py exited $rc for '$glob', see $log" >&2
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
done
echo "$passed $failed" > "$BUILD/results/kunit.counts"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
