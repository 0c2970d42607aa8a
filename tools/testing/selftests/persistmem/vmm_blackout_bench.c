// SPDX-License-Identifier: GPL-2.0
/*
 * vmm_blackout_bench (make bench, 5 kernels): the blackout of a live
 * update as the reference VMM's guest sees it, from the pause of its vCPUs
 * to their resume in the next kernel, for one guest size (pmbench.gib=)
 * on each backing: persistent guest_memfd in 2 MiB and in 1 GiB granules,
 * and memfd preserved by memfd_luo with THP (shmem_enabled=always) and
 * without. Same VMM, same guest (this kernel with pm-workload), guest RAM
 * allocated whole at start (--prefault), one kexec per backing. (Once, in
 * the first of five runs, the 1 GiB guest started after the 2 MiB one
 * shut down during its boot; the same order passed since. Not understood.)
 *
 * Stage k (1 to 4) starts the guest on backing k, waits until it counts,
 * prepares the update and holds across the kexec; stage k + 1 resumes
 * it, checks that it runs on, reports the blackout and its parts, stops
 * it and starts the next. The parts: the VMM's pause and save, its LUO
 * preserve, then freeze, kexec, boot and the new VMM's start (the rest),
 * its retrieve, and its restore (new VM, link, memslots, vCPU state).
 * The blackout is measured with CLOCK_REALTIME across the kexec, which
 * the TCG host's new kernel takes from the RTC: up to a second off.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pmvm.h"
#include "vmtest.h"

#define VM_NAME		"vmm-bb"
#define THP_SHMEM	"/sys/kernel/mm/transparent_hugepage/shmem_enabled"

static const struct backing {
	const char *key;
	const char *backing;
	const char *granule;
	const char *shmem_thp;
} backings[] = {
	{ "gmem_2m", "gmem", "2M", NULL },
	{ "gmem_1g", "gmem", "1G", NULL },
	{ "memfd_luo_thp", "memfd", "4K", "always" },
	{ "memfd_luo_4k", "memfd", "4K", "never" },
};

#define NR_BACKINGS	((int)ARRAY_SIZE(backings))

static struct pmvm vm;

static long long arg_ll(const char *key, long long def)
{
	char buf[64];
	const char *v = vt_cmdline_value(key, buf, sizeof(buf));

	return v ? atoll(v) : def;
}

static __noreturn void start_and_hold(const struct backing *b, int gib)
{
	char mem[16], reply[256], args[256];
	const char *const argv[] = {
		"--name", VM_NAME, "--kernel", VT_KERNEL_IMAGE,
		"--initrd", PMVM_GUEST_INITRD, "--cmdline", PMVM_GUEST_CMDLINE,
		"--mem", mem, "--backing", b->backing, "--granule", b->granule,
		"--prefault", "--control", PMVM_CONTROL, NULL,
	};
	unsigned long long pause, save, preserve;
	bool up;

	snprintf(mem, sizeof(mem), "%dG", gib);
	if (b->shmem_thp && vt_write_file(THP_SHMEM, b->shmem_thp))
		vt_fatal("%s: cannot set %s", THP_SHMEM, b->shmem_thp);
	if (pmvm_start(&vm, argv))
		vt_fatal("cannot start %s", PMVM_BIN);
	up = pmvm_wait(&vm, 10, -1, 600);
	if (!vt_result(up, "%s: %d GiB guest booted and runs (n=%lld)", b->key, gib,
		       vm.last_n))
		vt_fatal("guest did not come up; VMM said: %s", vm.vmm);
	if (pmvm_command("update", reply, sizeof(reply)) ||
	    sscanf(reply, "ready pause_us=%llu save_us=%llu preserve_us=%llu",
		   &pause, &save, &preserve) != 3)
		vt_fatal("update of %s: %s", b->key, reply);
	vt_diag("%s: update prepared: %s", b->key, reply);
	pmvm_follow(&vm, 300);
	snprintf(args, sizeof(args), "pmb.n=%lld pmb.save=%llu pmb.preserve=%llu",
		 vm.last_n, pause + save, preserve);
	vt_next_args(args);
	vt_hold();
}

static void resume_and_report(const struct backing *b, int gib)
{
	static const char *const argv[] = {
		"--resume", VM_NAME, "--control", PMVM_CONTROL, NULL,
	};
	long long n0 = arg_ll("pmb.n", 0), save = arg_ll("pmb.save", 0);
	long long preserve = arg_ll("pmb.preserve", 0);
	unsigned long long retrieve, restore, blackout;
	const char *r;
	bool runs;

	if (pmvm_start(&vm, argv))
		vt_fatal("cannot start %s --resume", PMVM_BIN);
	runs = pmvm_wait(&vm, n0 + 10, -1, 300);
	vt_result(runs && pmvm_went_on(&vm, n0) && !vm.bad && !vm.starts,
		  "%s: %d GiB guest runs on after the kexec: n=%lld..%lld after %lld",
		  b->key, gib, vm.first_n, vm.last_n, n0);
	r = strstr(vm.resumed, "retrieve_us=");
	if (!r || sscanf(r, "retrieve_us=%llu restore_us=%llu blackout_ms=%llu",
			 &retrieve, &restore, &blackout) != 3)
		vt_fatal("no figures in the VMM's resume line '%s'", vm.resumed);
	vt_diag("bench: vmm_%s_%dg %llu ms_blackout", b->key, gib, blackout);
	vt_diag("bench: vmm_%s_%dg %lld us_save", b->key, gib, save);
	vt_diag("bench: vmm_%s_%dg %lld us_preserve", b->key, gib, preserve);
	vt_diag("bench: vmm_%s_%dg %lld ms_kexec", b->key, gib,
		(long long)blackout - (save + preserve + (long long)(retrieve + restore)) / 1000);
	vt_diag("bench: vmm_%s_%dg %llu us_retrieve", b->key, gib, retrieve);
	vt_diag("bench: vmm_%s_%dg %llu us_restore", b->key, gib, restore);
	vt_result(pmvm_stop(&vm) >= 0, "%s: VMM ended", b->key);
}

int main(int argc, char **argv)
{
	int stage = vt_stage(argc, argv, NR_BACKINGS + 1);
	int gib = arg_ll("pmbench.gib", 1);

	if (gib < 1 || gib > 16)
		vt_fatal("pmbench.gib=%d: 1 to 16", gib);
	if (stage > 1)
		resume_and_report(&backings[stage - 2], gib);
	if (stage <= NR_BACKINGS)
		start_and_hold(&backings[stage - 1], gib);
	return vt_finish();
}
