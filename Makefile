# SPDX-License-Identifier: GPL-2.0
#
# persistmem: persistent guest memory for KVM across kexec live update.
# The repository is an overlay on Debian's linux-source-7.3; see README.md.

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
BUILD ?= $(ROOT)/build
export BUILD

SCRIPTS := $(ROOT)/scripts

.PHONY: all deps base overlay kernel tools vmtest kunit test bench demo patches series clean distclean help

all: kernel

help:
	@echo "make deps     install build and test packages (apt-get, idempotent)"
	@echo "make base     fetch linux-source-7.3 and unpack it into build/linux"
	@echo "make overlay  apply patches/ and the overlay onto build/linux"
	@echo "make kernel   build bzImage and uapi headers (build/obj, build/hdr)"
	@echo "make vmtest   kexec tests under QEMU TCG (VMTESTS='a b' selects)"
	@echo "make kunit    the project's KUnit suites on x86_64 under QEMU TCG"
	@echo "make tools  build tools/persistmem, run libpersistmem's tests"
	@echo "make test     deps + kernel + kunit + vmtest + series, ends 'N passed, N failed'"
	@echo "make demo     the main job: a Linux guest under pm-vmm survives two host kexecs"
	@echo "make bench    benchmarks side by side in one VM run (build/bench)"
	@echo "make patches  format-patch series + checkpatch --strict (build/patches)"
	@echo "make series   build every commit of the series on its own"

deps:
	@$(SCRIPTS)/deps.sh

base:
	@$(SCRIPTS)/fetch-base.sh

overlay: base
	@$(SCRIPTS)/overlay.sh

kernel: overlay
	@$(SCRIPTS)/build-kernel.sh

vmtest: kernel
	@$(SCRIPTS)/kvm-selftests.sh || echo "vmtest: KVM selftests not built, their vmtests fail" >&2
	@$(SCRIPTS)/vmtest.py $(VMTESTS)

kunit: kernel
	@$(SCRIPTS)/kunit.sh

tools: kernel
	@$(SCRIPTS)/tools-test.sh

test: deps
	@$(SCRIPTS)/run-tests.sh

bench: deps
	@$(SCRIPTS)/deps.sh gnuplot-nox
	@$(MAKE) -s kernel
	@$(SCRIPTS)/vmtest.py --bench

demo: deps
	@$(MAKE) -s kernel
	@$(SCRIPTS)/demo.py

patches: overlay
	@$(SCRIPTS)/patches.sh

series: kernel
	@$(SCRIPTS)/check-series.sh

clean:
	rm -rf $(BUILD)/obj $(BUILD)/hdr $(BUILD)/vmtest $(BUILD)/kunit $(BUILD)/logs \
		$(BUILD)/results $(BUILD)/patches $(BUILD)/kvm-selftests

distclean:
	rm -rf $(BUILD)
