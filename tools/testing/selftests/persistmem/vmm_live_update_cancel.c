// SPDX-License-Identifier: GPL-2.0
/*
 * vmtest vmm_live_update_cancel (2 kernels): a live update whose kexec
 * fails after the freeze resumes the guest in the old kernel, and a real
 * update of the same guest succeeds afterwards.
 *
 * Stage 1 starts pm-vmm with the Linux guest, asks it to prepare an update
 * (guest paused, RAM and state preserved), then makes the freeze of the
 * guest_memfd fail (fault injection) and calls reboot(KEXEC), which must
 * fail. The VMM is told to cancel: the session is closed (unpreserved) and
 * the guest runs on from where it paused, its memory intact. Then a second
 * "update" and a real kexec: stage 2 resumes the guest there.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/kexec.h>

#include "gmem_vm.h"
#include "pmvm.h"
#include "vmtest.h"

#define VM_NAME		"vmm-cancel"
/* In the command line of a kernel that must not boot: the kexec failed. */
#define ESCAPED		"vmm_cancel.escaped"

static struct pmvm vm;

static void failed_kexec(void)
{
	long left;
	int ret, err;

	gvm_arm_failing_kexec(1, ESCAPED "=1");
	ret = reboot(RB_KEXEC);
	err = errno;
	vt_result(ret < 0, "reboot(KEXEC) fails when the guest_memfd's freeze fails (%s)",
		  ret < 0 ? strerror(err) : "returned 0");
	left = gvm_fail_left(GVM_FAIL_FREEZE);
	vt_result(left == 0, "the injected freeze failure was used (%ld left)", left);
	gvm_fail_off(GVM_FAIL_FREEZE);
	ret = syscall(__NR_kexec_file_load, -1, -1, 0UL, NULL,
		      (unsigned long)KEXEC_FILE_UNLOAD);
	vt_result(!ret, "kexec image unloaded (%s)", ret ? strerror(errno) : "ok");
}

static __noreturn void stage1(void)
{
	static const char *const argv[] = {
		"--name", VM_NAME, "--kernel", VT_KERNEL_IMAGE,
		"--initrd", PMVM_GUEST_INITRD, "--cmdline", PMVM_GUEST_CMDLINE,
		"--mem", "512M", "--backing", "gmem", "--granule", "2M",
		"--control", PMVM_CONTROL, NULL,
	};
	char reply[256], args[160];
	long long n0, pass0;
	bool ok;

	if (pmvm_start(&vm, argv))
		vt_fatal("cannot start %s", PMVM_BIN);
	ok = pmvm_wait(&vm, 20, 1, 240);
	if (!vt_result(ok, "guest booted and runs (n=%lld)", vm.last_n))
		vt_fatal("guest did not come up; VMM said: %s", vm.vmm);

	pmvm_command("update", reply, sizeof(reply));
	vt_result(!strncmp(reply, "ready", 5), "first update prepared: %s", reply);
	pmvm_follow(&vm, 300);
	n0 = vm.last_n;
	pass0 = vm.last_pass;
	failed_kexec();
	pmvm_follow(&vm, 500);
	vt_result(vm.last_n == n0, "guest stays paused while the kexec fails (n=%lld)",
		  vm.last_n);

	pmvm_command("cancel", reply, sizeof(reply));
	vt_result(!strcmp(reply, "resumed"), "VMM cancelled the update: %s", reply);
	pmvm_reset(&vm);
	ok = pmvm_wait(&vm, n0 + 30, pass0 + 2, 120);
	vt_result(ok && pmvm_went_on(&vm, n0),
		  "guest runs on in this kernel: n=%lld..%lld after %lld", vm.first_n,
		  vm.last_n, n0);
	vt_result(!vm.starts && !vm.bad && vm.last_pass >= pass0 + 2,
		  "no reboot, memory checksum verified in %lld passes, %u bad",
		  vm.last_pass - pass0, vm.bad);
	pmvm_command("status", reply, sizeof(reply));
	vt_result(!strcmp(reply, "running"), "VMM holds no session: %s", reply);
	pmvm_command("hold-io", reply, sizeof(reply));
	vt_result(!strncmp(reply, "error: no test device", 21),
		  "hold-io without --testdev is refused: %s", reply);

	pmvm_command("update", reply, sizeof(reply));
	vt_result(!strncmp(reply, "ready", 5), "second update prepared: %s", reply);
	pmvm_follow(&vm, 300);
	snprintf(args, sizeof(args), "pmvm.n=%lld pmvm.pass=%lld", vm.last_n, vm.last_pass);
	vt_next_args(args);
	vt_hold();
}

static void stage2(void)
{
	static const char *const argv[] = {
		"--resume", VM_NAME, "--control", PMVM_CONTROL, NULL,
	};
	char buf[64];
	long long n0 = atoll(vt_cmdline_value("pmvm.n", buf, sizeof(buf)) ?: "0");
	long long pass0 = atoll(vt_cmdline_value("pmvm.pass", buf, sizeof(buf)) ?: "0");
	bool ok;

	vt_result(!vt_cmdline_value(ESCAPED, buf, sizeof(buf)),
		  "this kernel was booted by the second, real kexec");
	if (pmvm_start(&vm, argv))
		vt_fatal("cannot start %s --resume", PMVM_BIN);
	ok = pmvm_wait(&vm, n0 + 30, pass0 + 2, 120);
	vt_result(ok && vm.resumed[0], "guest resumed after the kexec: %s", vm.resumed);
	vt_result(pmvm_went_on(&vm, n0), "counter goes on from %lld (n=%lld..%lld), no reboot",
		  n0, vm.first_n, vm.last_n);
	vt_result(!vm.bad && vm.last_pass >= pass0 + 2,
		  "memory checksum verified in %lld passes, %u bad", vm.last_pass - pass0,
		  vm.bad);
	vt_result(pmvm_stop(&vm) >= 0, "VMM stopped");
}

int main(int argc, char **argv)
{
	if (vt_stage(argc, argv, 2) == 1)
		stage1();	/* holds across the kexec */
	stage2();
	return vt_finish();
}
