// SPDX-License-Identifier: GPL-2.0
/*
 * vmtest vmm_live_update (3 kernels): the reference VMM runs a Linux guest
 * on persistent guest_memfd (2 MiB granules) through two host kexecs.
 *
 * Stage 1 starts pm-vmm with the guest (this kernel's bzImage, pm-workload
 * as its init), waits until the guest counts, asks the VMM to prepare the
 * update, checks the guest stopped, and holds while init kexecs. Stages 2
 * and 3 start "pm-vmm --resume": the guest must go on where it stopped:
 * its counter resumes at the next value and neither it nor the guest's
 * uptime ever goes back, it does not boot again, and full checksum passes
 * over its memory after the resume find what it wrote before the first
 * kexec; the guest's clock (kvmclock) goes on by the blackout; the
 * handover inspector finds everything handed over adopted.
 * Stage 2 prepares a second update, paused while a vCPU is in an I/O exit:
 * the VMM's test device holds the vCPU of its next IN until the pause
 * comes. Its reads must go on in sequence after the resume, with no IN
 * repeated. Stage 3 ends the guest.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pmvm.h"
#include "vmtest.h"

#define VM_NAME		"vmm-lu"
#define BOOT_TIMEOUT	240
/* Guest ticks after a resume: enough for two full checksum passes. */
#define RUN_TICKS	40

static struct pmvm vm;

/*
 * Have the test device hold the vCPU of the guest's next IN from it, and
 * wait until it does: the pause that follows finds that vCPU in an I/O
 * exit KVM has not completed yet.
 */
static void hold_next_in(void)
{
	char reply[256];

	if (pmvm_command("hold-io", reply, sizeof(reply)))
		vt_fatal("control socket: no answer to \"hold-io\"");
	for (int i = 0; i < 50 && !vm.held; i++)
		pmvm_follow(&vm, 100);
	vt_result(!strcmp(reply, "armed") && vm.held,
		  "test device holds a vCPU in its IN (%s)", reply);
}

/* Ask for the update, check the guest stopped, hold across the kexec. */
static __noreturn void update_and_hold(bool in_io)
{
	char reply[256], args[160];
	long long n;

	if (in_io)
		hold_next_in();
	if (pmvm_command("update", reply, sizeof(reply)))
		vt_fatal("control socket: no answer to \"update\"");
	vt_result(!strncmp(reply, "ready", 5), "VMM prepared the live update: %s", reply);
	pmvm_follow(&vm, 300);
	n = vm.last_n;
	pmvm_follow(&vm, 1000);
	vt_result(vm.last_n == n && vm.out >= 0,
		  "guest paused at n=%lld up=%.3f (n=%lld a second later)", n,
		  vm.last_up, vm.last_n);
	vt_diag("guest output pending at the pause: '%.*s'", (int)vm.len, vm.buf);
	/* for make demo's timeline */
	vt_diag("timeline: paused n=%lld up=%.3f pass=%lld %s", vm.last_n, vm.last_up,
		vm.last_pass, reply);
	snprintf(args, sizeof(args), "pmvm.n=%lld pmvm.up=%.3f pmvm.pass=%lld pmvm.split=%d",
		 vm.last_n, vm.last_up, vm.last_pass, vm.len > 0);
	vt_next_args(args);
	vt_hold();
}

static void stage1(void)
{
	static const char *const argv[] = {
		"--name", VM_NAME, "--kernel", VT_KERNEL_IMAGE,
		"--initrd", PMVM_GUEST_INITRD,
		"--cmdline", PMVM_GUEST_CMDLINE " pmw_testdev=1", "--testdev",
		"--mem", "512M", "--vcpus", "2", "--backing", "gmem",
		"--granule", "2M", "--control", PMVM_CONTROL, NULL,
	};
	bool up;

	if (pmvm_start(&vm, argv))
		vt_fatal("cannot start %s", PMVM_BIN);
	up = pmvm_wait(&vm, 20, 1, BOOT_TIMEOUT);
	if (!vt_result(up, "guest booted and runs (n=%lld up=%.3f pass=%lld)",
		       vm.last_n, vm.last_up, vm.last_pass))
		vt_fatal("guest did not come up; VMM said: %s", vm.vmm);
	update_and_hold(false);
}

/*
 * The handover inspector once the guest runs again (not in the blackout):
 * everything adopted, nothing refused, nothing left pending; its table goes
 * to the log for make demo.
 */
static void inspect_handover(void)
{
	static const char *const args[] = { NULL };
	static char out[16384];
	char *line, *save = NULL;
	int ret = pmvm_inspect(args, out, sizeof(out));

	vt_result(ret == 0 && strstr(out, ", 0 refused;") && strstr(out, "(0 pending,") &&
		  strstr(out, "2 adopted, 0 refused"),
		  "pm-inspect: both blocks and every extent adopted, none pending (exit %d)", ret);
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		vt_diag("inspect: %s", line);
}

static long long arg_ll(const char *key)
{
	char buf[64];
	const char *v = vt_cmdline_value(key, buf, sizeof(buf));

	if (!v)
		vt_fatal("no %s on the command line", key);
	return atoll(v);
}

static void resumed_stage(int stage, int last_stage)
{
	static const char *const argv[] = {
		"--resume", VM_NAME, "--control", PMVM_CONTROL, NULL,
	};
	long long n0 = arg_ll("pmvm.n"), pass0 = arg_ll("pmvm.pass");
	bool split = arg_ll("pmvm.split");
	char buf[64];
	double up0 = atof(vt_cmdline_value("pmvm.up", buf, sizeof(buf)) ?: "0");
	const char *blackout;
	long blackout_ms;
	double step;
	bool runs;

	if (pmvm_start(&vm, argv))
		vt_fatal("cannot start %s --resume", PMVM_BIN);
	runs = pmvm_wait(&vm, n0 + RUN_TICKS, pass0 + 2, 120);
	vt_result(runs, "guest runs on after the kexec: n=%lld..%lld, pass %lld..%lld",
		  vm.first_n, vm.last_n, pass0, vm.last_pass);
	vt_result(vm.resumed[0], "VMM resumed the guest: %s", vm.resumed);
	/*
	 * The guest may be paused with its next line still in its tty buffer
	 * or half sent: the first whole line after the kexec is n + 1, or
	 * n + 2 when n + 1 did not arrive whole.
	 */
	vt_result(pmvm_went_on(&vm, n0),
		  "counter goes on from %lld: first whole line after the kexec n=%lld%s",
		  n0, vm.first_n, split ? " (n+1 was split by the pause)" : "");
	vt_diag("first guest output after the kexec: '%s'", vm.first);

	vt_result(vm.first_up > up0,
		  "uptime goes on: %.3f before, %.3f after", up0, vm.first_up);
	/*
	 * kvmclock is restored with KVM_CLOCK_REALTIME: the guest's clock steps
	 * by the blackout, which the VMM measures in CLOCK_REALTIME; the new
	 * kernel's realtime comes from the RTC, so allow it a second. The
	 * guest drains each line before its next tick, but the line of the
	 * tick it was in when paused can still arrive after the resume: the
	 * step is the largest one between two lines.
	 */
	blackout = strstr(vm.resumed, "blackout_ms=");
	blackout_ms = blackout ? atol(blackout + strlen("blackout_ms=")) : -1;
	step = vm.first_up - up0 > vm.max_step ? vm.first_up - up0 : vm.max_step;
	vt_diag("timeline: resumed n=%lld up=%.3f pass=%lld..%lld bad=%u step=%.3f %s",
		vm.first_n, vm.first_up, pass0, vm.last_pass, vm.bad, step, vm.resumed);
	vt_result(blackout_ms >= 0 && step >= blackout_ms / 1000.0 - 1.0,
		  "guest clock counts the blackout: a step of %.3f s across %ld ms",
		  step, blackout_ms);
	vt_result(!vm.back, "counter and uptime never went back (%u times)", vm.back);
	vt_result(!vm.starts, "guest did not boot again");
	vt_result(!vm.bad && vm.last_pass >= pass0 + 2,
		  "checksum of the guest's memory verified in %lld full passes, %u bad",
		  vm.last_pass - pass0, vm.bad);
	vt_result(!vm.gaps, "test device reads went on in sequence%s (%lld gaps)",
		  stage == 3 ? ", none repeated after a pause in an I/O exit" : "",
		  vm.gaps);
	inspect_handover();
	if (stage < last_stage)
		update_and_hold(true);
	vt_result(pmvm_stop(&vm) >= 0, "VMM ended");
}

int main(int argc, char **argv)
{
	int stage = vt_stage(argc, argv, 3);

	if (stage == 1)
		stage1();
	else
		resumed_stage(stage, 3);
	return vt_finish();
}
