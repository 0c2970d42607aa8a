#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the kernel selftests that vmtests run (vmtests.conf: program
# kvm_selftest), static and out of tree, against the uapi headers of the
# kernel under test:
#
#   $TREE/tools/testing/selftests/kvm    ->  $BUILD/kvm-selftests/<test>
#   $TREE/tools/testing/selftests/iommu  ->  $BUILD/kvm-selftests/<test>
#   $TREE/tools/testing/selftests/vfio   ->  $BUILD/kvm-selftests/<test>
#
# Nothing is written into the source tree. scripts/vmtest.py packs every
# binary found there as /tests/kvm/<test>. A test that does not build is
# left out (its previous binary removed), so that its vmtest fails instead
# of running stale code. KVM_SELFTESTS="a b", IOMMU_SELFTESTS="a b" and
# VFIO_SELFTESTS="a b" build other tests.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(realpath -m "${BUILD:-$ROOT/build}")
TREE=$(realpath -m "${TREE:-$BUILD/linux}")
SRC=$TREE/tools/testing/selftests/kvm
HDR=$BUILD/hdr/include
OUT=$BUILD/kvm-selftests
TESTS=${KVM_SELFTESTS:-guest_memfd_test guest_memfd_persist_test}
IOMMU_SRC=$TREE/tools/testing/selftests/iommu
IOMMU_TESTS=${IOMMU_SELFTESTS:-iommufd iommufd_persist}
VFIO_SRC=$TREE/tools/testing/selftests/vfio
VFIO_TESTS=${VFIO_SELFTESTS:-vfio_iommufd_setup_test vfio_pci_device_test vfio_dma_mapping_test}

die() { echo "kvm-selftests: $*" >&2; exit 1; }

[ -f "$SRC/Makefile.kvm" ] || die "$SRC missing: run 'make overlay'"
[ -f "$HDR/linux/kvm.h" ] || die "$HDR/linux/kvm.h missing: run 'make kernel'"
mkdir -p "$OUT"

# A make of its own, not a sub-make of whatever ran this script.
unset MAKEFLAGS MFLAGS MAKELEVEL

failed=()
for t in $TESTS; do
	rm -f "$OUT/$t"
	make -s -C "$SRC" ARCH=x86 OUTPUT="$OUT" KHDR_INCLUDES="-isystem $HDR" \
		EXTRA_CFLAGS=-static -j"$(nproc)" "$OUT/$t" || failed+=("$t")
done
for t in $IOMMU_TESTS; do
	rm -f "$OUT/$t"
	make -s -C "$IOMMU_SRC" OUTPUT="$OUT" KHDR_INCLUDES="-isystem $HDR" \
		LDFLAGS=-static "$OUT/$t" || failed+=("$t")
done
for t in $VFIO_TESTS; do
	rm -f "$OUT/$t"
	make -s -C "$VFIO_SRC" OUTPUT="$OUT" KHDR_INCLUDES="-isystem $HDR" \
		LDFLAGS="-static -pthread" "$OUT/$t" || failed+=("$t")
done
[ ${#failed[@]} = 0 ] || die "not built: ${failed[*]} (their vmtests will fail)"
echo "kvm-selftests: $TESTS $IOMMU_TESTS $VFIO_TESTS in $OUT"
