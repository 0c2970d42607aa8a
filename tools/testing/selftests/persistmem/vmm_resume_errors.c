// SPDX-License-Identifier: GPL-2.0
/*
 * vmtest vmm_resume_errors (2 kernels): "pm-vmm --resume" of what cannot
 * be resumed fails with a clear message and its own exit code, and leaves
 * the sessions it was not asked about alone.
 *
 * Stage 1 runs a guest under pm-vmm and prepares its update (session
 * "vmm-good"), then preserves three sessions of its own that look like a
 * VMM's but are not: "vmm-damaged" (one byte of the state file flipped),
 * "vmm-foreign" (a state file of format version 2) and "vmm-shapeless" (a
 * well-formed state file without the VMM's description of the VM).
 * Stage 2 resumes a session that does not exist, the three bad ones, and
 * passes bad command lines; each must fail as documented. Then it
 * resumes "vmm-good": the guest runs on, untouched by the failures.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "persistmem.h"
#include "pmvm.h"
#include "vmtest.h"

#define GOOD		"vmm-good"
/* pm-vmm's tokens and exit codes (tools/persistmem/vmm/vmm.h) */
#define TOKEN_RAM	1
#define TOKEN_STATE	2
#define EXIT_USAGE	2
#define EXIT_SESSION	6
#define EXIT_STATE	7

static struct pmvm vm;

/* A well-formed state file of 2 vCPUs without pm-vmm's records, as bytes. */
static size_t state_bytes(uint8_t *out, size_t max)
{
	struct pm_state st;
	uint64_t regs[18] = { 0x1234 };
	ssize_t len;
	int fd;

	if (pm_state_init(&st, 2))
		vt_fatal("pm_state_init");
	pm_state_add(&st, PM_REC_REGS, 0, regs, sizeof(regs));
	pm_state_add(&st, PM_REC_REGS, 1, regs, sizeof(regs));
	fd = pm_state_write(&st, "state");
	pm_state_free(&st);
	if (fd < 0)
		vt_fatal("pm_state_write: %s", strerror(-fd));
	len = pread(fd, out, max, 0);
	close(fd);
	if (len <= 0)
		vt_fatal("reading the state back");
	return len;
}

/* Session @name with a small "RAM" memfd and @len bytes of state. */
static void bad_session(const char *name, const uint8_t *state, size_t len)
{
	int s = vt_session(name, true);
	int ram = memfd_create("ram", MFD_CLOEXEC);
	int fd = memfd_create("state", MFD_CLOEXEC);
	int ret;

	if (ram < 0 || fd < 0 || ftruncate(ram, 1 << 20) ||
	    write(fd, state, len) != (ssize_t)len)
		vt_fatal("memfds for %s", name);
	ret = luo_session_preserve_fd(s, ram, TOKEN_RAM);
	if (!ret)
		ret = luo_session_preserve_fd(s, fd, TOKEN_STATE);
	vt_result(!ret, "session %s preserved (%s)", name, ret ? strerror(-ret) : "ok");
}

static __noreturn void stage1(void)
{
	static const char *const argv[] = {
		"--name", GOOD, "--kernel", VT_KERNEL_IMAGE,
		"--initrd", PMVM_GUEST_INITRD, "--cmdline", PMVM_GUEST_CMDLINE,
		"--mem", "256M", "--backing", "gmem", "--granule", "2M",
		"--control", PMVM_CONTROL, NULL,
	};
	uint8_t state[4096], bad[4096];
	char reply[256], args[64];
	size_t len;
	bool ok;

	if (pmvm_start(&vm, argv))
		vt_fatal("cannot start %s", PMVM_BIN);
	ok = pmvm_wait(&vm, 10, -1, 240);
	if (!vt_result(ok, "guest booted and runs (n=%lld)", vm.last_n))
		vt_fatal("guest did not come up; VMM said: %s", vm.vmm);
	pmvm_command("update", reply, sizeof(reply));
	vt_result(!strncmp(reply, "ready", 5), "update of %s prepared: %s", GOOD, reply);
	pmvm_follow(&vm, 300);

	len = state_bytes(state, sizeof(state));
	memcpy(bad, state, len);
	bad[len - 3] ^= 0x10;
	bad_session("vmm-damaged", bad, len);
	memcpy(bad, state, len);
	bad[8] = 2;				/* the header's version */
	bad_session("vmm-foreign", bad, len);
	bad_session("vmm-shapeless", state, len);

	snprintf(args, sizeof(args), "pmvm.n=%lld", vm.last_n);
	vt_next_args(args);
	vt_hold();
}

/* Run pm-vmm with @argv to its end: its exit code, its last line in @why. */
static int run_vmm(const char *const *argv, char *why, size_t len)
{
	struct pmvm m;
	int code;

	if (pmvm_start(&m, argv))
		vt_fatal("cannot start %s", PMVM_BIN);
	code = pmvm_wait_exit(&m, 30);
	if (code < 0) {
		kill(m.pid, SIGKILL);
		pmvm_wait_exit(&m, 5);
	}
	snprintf(why, len, "%s", m.vmm);
	return code;
}

static void expect(const char *const *argv, int code, const char *text, const char *what)
{
	char why[256];
	int got = run_vmm(argv, why, sizeof(why));

	vt_result(got == code && strstr(why, text), "%s: exit %d (want %d), '%s'", what,
		  got, code, why);
}

static void stage2(void)
{
	static const char *const missing[] = { "--resume", "vmm-missing", NULL };
	static const char *const damaged[] = { "--resume", "vmm-damaged", NULL };
	static const char *const foreign[] = { "--resume", "vmm-foreign", NULL };
	static const char *const shapeless[] = { "--resume", "vmm-shapeless", NULL };
	static const char *const mixed[] = {
		"--resume", GOOD, "--kernel", VT_KERNEL_IMAGE, NULL,
	};
	static const char *const big[] = {
		"--name", "x", "--kernel", VT_KERNEL_IMAGE, "--mem", "5G", NULL,
	};
	static const char *const granule[] = {
		"--name", "x", "--kernel", VT_KERNEL_IMAGE, "--granule", "8K", NULL,
	};
	static const char *const good[] = {
		"--resume", GOOD, "--control", PMVM_CONTROL, NULL,
	};
	char buf[64];
	long long n0 = atoll(vt_cmdline_value("pmvm.n", buf, sizeof(buf)) ?: "0");
	bool ok;

	expect(missing, EXIT_SESSION, "no such session", "resume of a missing session");
	expect(damaged, EXIT_STATE, "checksum mismatch", "resume of a damaged state file");
	expect(foreign, EXIT_STATE, "version 2", "resume of a state file of version 2");
	expect(shapeless, EXIT_STATE, "no VM description",
	       "resume of a state file without the VM's description");
	expect(mixed, EXIT_USAGE, "", "--resume with --kernel");
	expect(big, EXIT_USAGE, "64M to 3G", "--mem 5G");
	expect(granule, EXIT_USAGE, "4K, 2M or 1G", "--granule 8K");

	if (pmvm_start(&vm, good))
		vt_fatal("cannot start %s --resume", PMVM_BIN);
	ok = pmvm_wait(&vm, n0 + 20, -1, 120);
	vt_result(ok && vm.resumed[0] && pmvm_went_on(&vm, n0) && !vm.bad,
		  "%s resumed after the failures: n=%lld..%lld after %lld", GOOD,
		  vm.first_n, vm.last_n, n0);
	pmvm_stop(&vm);
}

/* Stage 1 holds across the kexec; stage 2 ends the test. */
int main(int argc, char **argv)
{
	if (vt_stage(argc, argv, 2) == 1)
		stage1();
	stage2();
	return vt_finish();
}
