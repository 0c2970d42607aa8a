/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Driving the reference VMM (tools/persistmem/vmm) from a vmtest stage:
 * start it, follow its guest's console, talk to its control FIFOs.
 *
 * The guest runs pm-workload, which prints "pmw: n=<counter> up=<uptime>
 * pass=<passes> sum=<checksum> ok|BAD" every 100 ms; the reader keeps the
 * first and last counter and uptime it saw, and counts what must never
 * happen across a live update: a counter or uptime that goes back, a BAD
 * pass, a second "pmw: start" (the guest rebooted). With pmw_testdev=1 on
 * the guest's command line and pm-vmm --testdev, the lines also carry the
 * count of test device reads that were not in sequence.
 */
#ifndef _PERSISTMEM_PMVM_H
#define _PERSISTMEM_PMVM_H

#include <stdbool.h>
#include <sys/types.h>

#define PMVM_BIN	"/bin/pm-vmm"
#define PMVM_GUEST_INITRD "/boot/guest.cpio"
#define PMVM_CONTROL	"/tmp/pm-vmm.sock"
#define PMVM_INSPECT	"/bin/pm-inspect"
/*
 * The guest's command line. noxsave: nested under QEMU's TCG, the XSAVE
 * sizes KVM reports in CPUID leaf 0xD do not follow the guest's XCR0, and
 * the guest's FPU setup fails on them. clocksource=kvm-clock: the guest
 * would prefer its TSC (KVM offers an invariant one), which nested under
 * TCG runs only while the guest runs; kvmclock, restored with
 * KVM_CLOCK_REALTIME, counts a live update's blackout.
 */
#define PMVM_GUEST_CMDLINE \
	"console=ttyS0 panic=-1 quiet noxsave clocksource=kvm-clock pmw_mib=64"

/* Guest lines other than pm-workload's that go to the test's log. */
#define PMVM_MAX_OTHERS	100

struct pmvm {
	pid_t pid;
	int out;			/* the VMM's stdout and stderr */
	char buf[4096];
	size_t len;
	long long first_n, last_n, last_pass;
	double first_up, last_up;
	double max_step;		/* largest uptime step between two lines */
	unsigned int starts, bad, back;
	long long gaps;			/* test device reads not in sequence, or -1 */
	bool held;			/* the test device held a vCPU in an IN */
	unsigned int others;		/* other guest lines, logged up to a limit */
	char vmm[256];			/* the VMM's last line of its own */
	char resumed[256];		/* its "resumed:" line */
	char first[128];		/* the first guest output seen */
	int status;			/* exit status once it exited, else -1 */
};

/* Start pm-vmm with @argv (NULL-terminated, without the program name). */
int pmvm_start(struct pmvm *m, const char *const *argv);
/*
 * Follow the output until the guest counted to @n (and, if @pass >= 0,
 * finished pass @pass) or @timeout_s passed or the VMM exited; true if the
 * counter got there.
 */
bool pmvm_wait(struct pmvm *m, long long n, long long pass, int timeout_s);
/* Follow the output for @ms milliseconds. */
void pmvm_follow(struct pmvm *m, int ms);
/* One control command; the reply line (no newline) in @reply. 0 or -errno. */
int pmvm_command(const char *cmd, char *reply, size_t len);
/* Wait up to @timeout_s for the VMM to exit; its exit code, or -1. */
int pmvm_wait_exit(struct pmvm *m, int timeout_s);
/*
 * Whether the guest went on from counter @n0 without a reboot: its first
 * whole line after a pause is n0 + 1, or n0 + 2 when line n0 + 1 was still
 * in its tty buffer or half sent at the pause; nothing went back.
 */
bool pmvm_went_on(const struct pmvm *m, long long n0);
/* Stop the VMM (SIGTERM) and wait for it; its exit code, or -1. */
int pmvm_stop(struct pmvm *m);
/* Forget what the reader saw (before a resume). */
void pmvm_reset(struct pmvm *m);
/*
 * Run the handover inspector pm-inspect with @args (NULL-terminated, at
 * most 6, without the program name); its stdout in @out, NUL-terminated
 * and cut at @size. Returns its exit status, 128 + signal if killed.
 */
int pmvm_inspect(const char *const *args, char *out, size_t size);

#endif /* _PERSISTMEM_PMVM_H */
