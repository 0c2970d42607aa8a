// SPDX-License-Identifier: GPL-2.0
/*
 * harness_selftest: deliberately broken stage programs that prove the
 * vmtest runner fails a test that misbehaves. The runner invokes this
 * program under different names (one per vmtest) and expects each one to
 * be reported as failed for the matching reason:
 *
 *   harness_silent  stage 1 exits 0 without reporting any test point
 *   harness_short   stage 1 ends instead of holding: stage 2 never runs
 *   harness_panic   stage 1 panics the kernel through sysrq
 *   harness_hang    stage 1 never returns (the runner's timeout must fire)
 *   harness_warn    stage 1 passes, but makes the kernel WARN() through the
 *                   persist_alloc test consumer
 */
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <unistd.h>

#include "vmtest.h"

int main(int argc, char **argv)
{
	const char *name = basename(argv[0]);
	int stage = vt_stage(argc, argv, 2);
	int fd;

	if (!strcmp(name, "harness_silent"))
		return 0;
	if (!strcmp(name, "harness_short")) {
		vt_result(stage == 1, "stage %d reports, then ends without holding", stage);
		return vt_finish();
	}
	if (!strcmp(name, "harness_panic")) {
		vt_result(true, "about to panic");
		fd = open("/proc/sysrq-trigger", O_WRONLY);
		if (fd >= 0 && write(fd, "c", 1) == 1)
			pause();
		vt_fatal("sysrq crash did not panic");
	}
	if (!strcmp(name, "harness_warn")) {
		fd = open("/sys/kernel/debug/persist_alloc/test", O_WRONLY);
		vt_result(fd >= 0 && write(fd, "warn", 4) == 4, "asked the kernel to warn");
		return vt_finish();
	}
	if (!strcmp(name, "harness_hang")) {
		vt_result(true, "about to hang");
		for (;;)
			pause();
	}
	vt_fatal("unknown harness test name %s", name);
}
