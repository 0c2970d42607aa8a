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
 * passes bad command lines; each must fail as documented, and a failed
 * resume must leave its session for a retry (the damaged one fails the
 * same way twice). Then it plays a VMM that dies half way through resuming
 * "vmm-good": it retrieves the session and both files and closes them
 * without finishing. pm-vmm --resume vmm-good must still find everything:
 * the guest runs on, untouched by the failures.
 *
 * Stage 2 also restores, with libpersistmem alone, a vCPU whose LAPIC
 * timer was armed in TSC-deadline mode into a new VM: the deadline must
 * come back, the XSAVE record must have KVM's size, and the kvmclock must
 * have moved on by the time between save and restore. A deadline that is
 * lost stops the guest's timer for good: the guest hangs after a resume.
 * (The TSC offset is not compared: nested under TCG the host's TSC is
 * unstable and KVM rewrites the offset at every vCPU load.)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kvm.h>

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

#define MSR_IA32_TSC		0x10
#define MSR_IA32_TSC_DEADLINE	0x6e0
#define APIC_LVTT		0x320
#define APIC_LVT_TSC_DEADLINE	(2 << 17)

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

/*
 * A VMM killed after it retrieved session @name and its files, before it
 * finished the session: everything it had is closed.
 */
static void died_resuming(const char *name)
{
	int luo = luo_open_device();
	int s = luo < 0 ? -EBADF : luo_retrieve_session(luo, name);
	int ram = s < 0 ? s : luo_session_retrieve_fd(s, TOKEN_RAM);
	int state = s < 0 ? s : luo_session_retrieve_fd(s, TOKEN_STATE);

	vt_result(ram >= 0 && state >= 0,
		  "a VMM that dies resuming retrieved %s, its RAM and state (%s)", name,
		  strerror(-(ram < 0 ? ram : state < 0 ? state : 0)));
	close(ram);
	close(state);
	close(s);
	close(luo);
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
		"--name", "x", "--kernel", VT_KERNEL_IMAGE, "--mem", "65G", NULL,
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
	expect(damaged, EXIT_STATE, "checksum mismatch",
	       "the same again: the failed resume left the session for a retry");
	expect(foreign, EXIT_STATE, "version 2", "resume of a state file of version 2");
	expect(shapeless, EXIT_STATE, "no VM description",
	       "resume of a state file without the VM's description");
	expect(mixed, EXIT_USAGE, "", "--resume with --kernel");
	expect(big, EXIT_USAGE, "64M to 64G", "--mem 65G");
	expect(granule, EXIT_USAGE, "4K, 2M or 1G", "--granule 8K");
	died_resuming(GOOD);

	if (pmvm_start(&vm, good))
		vt_fatal("cannot start %s --resume", PMVM_BIN);
	ok = pmvm_wait(&vm, n0 + 20, -1, 120);
	vt_result(ok && vm.resumed[0] && pmvm_went_on(&vm, n0) && !vm.bad,
		  "%s resumed after the failures and the dead VMM: n=%lld..%lld after %lld", GOOD,
		  vm.first_n, vm.last_n, n0);
	pmvm_stop(&vm);
}

/* A VM with the in-kernel irqchip and PIT, one vCPU with KVM's CPUID. */
static int kvm_vm(int kvm, int *vcpu)
{
	struct {
		struct kvm_cpuid2 hdr;
		struct kvm_cpuid_entry2 e[256];
	} cpuid = { .hdr.nent = 256 };
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);

	if (vm < 0 || ioctl(vm, KVM_CREATE_IRQCHIP) ||
	    ioctl(vm, KVM_CREATE_PIT2, &pit))
		vt_fatal("KVM_CREATE_VM: %s", strerror(errno));
	*vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (*vcpu < 0 || ioctl(kvm, KVM_GET_SUPPORTED_CPUID, &cpuid))
		vt_fatal("vCPU: %s", strerror(errno));
	for (unsigned int i = 0; i < cpuid.hdr.nent; i++)
		if (cpuid.e[i].function == 1)
			cpuid.e[i].ecx |= 1u << 24;	/* TSC deadline timer */
	if (ioctl(*vcpu, KVM_SET_CPUID2, &cpuid))
		vt_fatal("KVM_SET_CPUID2: %s", strerror(errno));
	return vm;
}

static uint64_t msr(int vcpu, uint32_t index, const uint64_t *set)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} one = { .hdr.nmsrs = 1, .e.index = index, .e.data = set ? *set : 0 };

	if (ioctl(vcpu, set ? KVM_SET_MSRS : KVM_GET_MSRS, &one) != 1)
		vt_fatal("MSR %#x: %s", index, strerror(errno));
	return one.e.data;
}

static void armed_deadline_roundtrip(void)
{
	struct kvm_lapic_state lapic;
	struct kvm_clock_data c0 = {}, c1 = {};
	struct pm_state st, back;
	uint64_t deadline, got;
	uint32_t lvtt, size;
	int kvm, vm, vcpu, vm2, vcpu2, fd, ret;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		vt_fatal("/dev/kvm: %s", strerror(errno));
	vm = kvm_vm(kvm, &vcpu);
	if (ioctl(vcpu, KVM_GET_LAPIC, &lapic))
		vt_fatal("KVM_GET_LAPIC: %s", strerror(errno));
	lvtt = APIC_LVT_TSC_DEADLINE | 0xec;
	memcpy(lapic.regs + APIC_LVTT, &lvtt, sizeof(lvtt));
	if (ioctl(vcpu, KVM_SET_LAPIC, &lapic))
		vt_fatal("KVM_SET_LAPIC: %s", strerror(errno));
	/* armed minutes ahead: it must not fire or vanish meanwhile */
	deadline = msr(vcpu, MSR_IA32_TSC, NULL) + (1ull << 40);
	msr(vcpu, MSR_IA32_TSC_DEADLINE, &deadline);

	if (pm_state_init(&st, 1))
		vt_fatal("pm_state_init");
	pm_state_save_vcpu(&st, kvm, vcpu, 0);
	pm_state_save_vm(&st, vm);
	if (ioctl(vm, KVM_GET_CLOCK, &c0))
		vt_fatal("KVM_GET_CLOCK: %s", strerror(errno));
	fd = pm_state_write(&st, "roundtrip");
	if (fd < 0)
		vt_fatal("saving a vCPU: %s (%s)", strerror(-fd), st.why);
	pm_state_free(&st);
	ret = pm_state_read(&back, fd, 1);
	if (ret)
		vt_fatal("reading it back: %s", back.why);
	pm_state_find(&back, PM_REC_XSAVE, 0, &size);
	ret = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	vt_result(size == (uint32_t)(ret > 4096 ? ret : 4096),
		  "XSAVE record of %u bytes, KVM_CAP_XSAVE2 says %d", size, ret);

	usleep(300 * 1000);
	vm2 = kvm_vm(kvm, &vcpu2);
	ret = pm_state_restore_vcpu(&back, kvm, vcpu2, 0);
	if (!ret)
		ret = pm_state_restore_vm(&back, vm2);
	if (ret)
		vt_fatal("restore: %s (%s)", strerror(-ret), back.why);
	got = msr(vcpu2, MSR_IA32_TSC_DEADLINE, NULL);
	vt_result(got == deadline,
		  "an armed TSC deadline survives save and restore: %#llx (saved %#llx)",
		  (unsigned long long)got, (unsigned long long)deadline);
	if (ioctl(vm2, KVM_GET_CLOCK, &c1))
		vt_fatal("KVM_GET_CLOCK: %s", strerror(errno));
	vt_result(c1.clock >= c0.clock + 300000000ull,
		  "the kvmclock moved on by the 300 ms between save and restore: +%lld ms",
		  (long long)(c1.clock - c0.clock) / 1000000);
	pm_state_free(&back);
	close(fd);
	close(vcpu2);
	close(vm2);
	close(vcpu);
	close(vm);
	close(kvm);
}

/* Stage 1 holds across the kexec; stage 2 ends the test. */
int main(int argc, char **argv)
{
	if (vt_stage(argc, argv, 2) == 1)
		stage1();
	armed_deadline_roundtrip();
	stage2();
	return vt_finish();
}
