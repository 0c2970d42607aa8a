// SPDX-License-Identifier: GPL-2.0
/*
 * libpersistmem: saving and restoring KVM's VM and vCPU state (x86).
 *
 * Save reads each piece with the KVM ioctl that owns it into one record of
 * the state file; restore writes them back into a new VM and vCPUs in the
 * order KVM needs: CPUID before anything that depends on the guest's
 * features (XSAVE, MSRs), segment and control registers before general
 * registers, MSRs after XSAVE, the LAPIC before pending events, the TSC
 * offset after the MSRs (a write of IA32_TSC would move it), the TSC
 * deadline after both the LAPIC and the TSC offset (KVM drops a deadline
 * written while the LAPIC timer is not in TSC-deadline mode, and arms it
 * against the TSC it sees at the write), the clock last.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include <linux/kernel.h>

#include "persistmem.h"

#define MSR_IA32_TSC		0x10
#define MSR_IA32_TSC_DEADLINE	0x6e0
#define PM_MAX_MSRS		1024
#define PM_MAX_CPUID		256

#define PM_VM		UINT32_MAX	/* "vCPU" of the VM-wide reads */

/* A save that failed: keep the error and say which read of what failed. */
static int save_failed(struct pm_state *st, int err, const char *what,
		       uint32_t vcpu)
{
	if (vcpu == PM_VM)
		snprintf(st->why, sizeof(st->why), "%s: %s", what, strerror(-err));
	else
		snprintf(st->why, sizeof(st->why), "%s of vCPU %u: %s", what, vcpu,
			 strerror(-err));
	st->err = err;
	return err;
}

/* One KVM get ioctl into one record (of the VM if @vcpu is PM_VM). */
static int add_ioctl(struct pm_state *st, int fd, unsigned long cmd,
		     const char *what, uint32_t type, uint32_t vcpu, void *buf,
		     uint32_t size)
{
	if (ioctl(fd, cmd, buf))
		return save_failed(st, -errno, what, vcpu);
	return pm_state_add(st, type, vcpu == PM_VM ? 0 : vcpu, buf, size);
}

int pm_state_save_vm(struct pm_state *st, int vm)
{
	struct kvm_clock_data clock = {};
	struct kvm_pit_state2 pit = {};
	struct kvm_irqchip chip;
	static const uint32_t chip_rec[] = {
		PM_REC_VM_PIC_MASTER, PM_REC_VM_PIC_SLAVE, PM_REC_VM_IOAPIC,
	};
	int ret;

	for (uint32_t i = 0; i < 3; i++) {
		memset(&chip, 0, sizeof(chip));
		chip.chip_id = i;
		ret = add_ioctl(st, vm, KVM_GET_IRQCHIP, "KVM_GET_IRQCHIP", chip_rec[i],
				PM_VM, &chip, sizeof(chip));
		if (ret)
			return ret;
	}
	ret = add_ioctl(st, vm, KVM_GET_PIT2, "KVM_GET_PIT2", PM_REC_VM_PIT, PM_VM,
			&pit, sizeof(pit));
	if (ret)
		return ret;
	/* Last: the clock as close to the pause as the VMM can take it. */
	if (ioctl(vm, KVM_GET_CLOCK, &clock))
		return save_failed(st, -errno, "KVM_GET_CLOCK", PM_VM);
	/*
	 * KVM pairs the clock with the host's CLOCK_REALTIME only when the
	 * host's clocksource is the TSC. Otherwise take the pairing here,
	 * right after the read: restore needs it to move the clock on.
	 */
	if (!(clock.flags & KVM_CLOCK_REALTIME)) {
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		clock.realtime = (uint64_t)now.tv_sec * 1000000000ull + now.tv_nsec;
		clock.flags |= KVM_CLOCK_REALTIME;
	}
	return pm_state_add(st, PM_REC_VM_CLOCK, 0, &clock, sizeof(clock));
}

static int save_cpuid(struct pm_state *st, int vcpu, uint32_t index)
{
	size_t size = sizeof(struct kvm_cpuid2) +
		      PM_MAX_CPUID * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *cpuid = calloc(1, size);
	int ret;

	if (!cpuid)
		return save_failed(st, -ENOMEM, "CPUID", index);
	cpuid->nent = PM_MAX_CPUID;
	if (ioctl(vcpu, KVM_GET_CPUID2, cpuid)) {
		ret = save_failed(st, -errno, "KVM_GET_CPUID2", index);
	} else {
		ret = pm_state_add(st, PM_REC_CPUID, index, cpuid,
				   sizeof(*cpuid) + cpuid->nent * sizeof(cpuid->entries[0]));
	}
	free(cpuid);
	return ret;
}

/*
 * Every MSR KVM lists that this vCPU can read, one KVM_GET_MSRS each:
 * KVM stops a batch at the first MSR it cannot read (one the guest's CPUID
 * does not have), and a per-MSR read keeps all the others. IA32_TSC is
 * left out: the TSC offset record carries it.
 */
static int save_msrs(struct pm_state *st, int kvm, int vcpu, uint32_t index)
{
	struct kvm_msr_list *list;
	struct kvm_msrs *msrs;
	uint32_t i, n = 0;
	int ret = -ENOMEM;

	list = calloc(1, sizeof(*list) + PM_MAX_MSRS * sizeof(list->indices[0]));
	msrs = calloc(1, sizeof(*msrs) + PM_MAX_MSRS * sizeof(msrs->entries[0]));
	if (!list || !msrs)
		goto out;
	list->nmsrs = PM_MAX_MSRS;
	if (ioctl(kvm, KVM_GET_MSR_INDEX_LIST, list)) {
		ret = save_failed(st, -errno, "KVM_GET_MSR_INDEX_LIST", index);
		goto out;
	}
	for (i = 0; i < list->nmsrs && i < PM_MAX_MSRS; i++) {
		struct {
			struct kvm_msrs hdr;
			struct kvm_msr_entry e;
		} one = { .hdr.nmsrs = 1, .e.index = list->indices[i] };

		if (list->indices[i] == MSR_IA32_TSC)
			continue;
		if (ioctl(vcpu, KVM_GET_MSRS, &one) != 1)
			continue;
		msrs->entries[n++] = one.e;
	}
	msrs->nmsrs = n;
	ret = pm_state_add(st, PM_REC_MSRS, index, msrs,
			   sizeof(*msrs) + n * sizeof(msrs->entries[0]));
out:
	if (ret && !st->err)
		save_failed(st, ret, "MSRs", index);
	free(list);
	free(msrs);
	return ret;
}

/* The XSAVE2 buffer size this host's KVM wants; /dev/kvm answers it. */
static uint32_t xsave_size(int kvm)
{
	int size = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);

	if (size < (int)sizeof(struct kvm_xsave))
		return sizeof(struct kvm_xsave);
	return size;
}

static int tsc_offset(int vcpu, uint64_t *offset, bool set)
{
	struct kvm_device_attr attr = {
		.group = KVM_VCPU_TSC_CTRL,
		.attr = KVM_VCPU_TSC_OFFSET,
		.addr = (uint64_t)(uintptr_t)offset,
	};

	return ioctl(vcpu, set ? KVM_SET_DEVICE_ATTR : KVM_GET_DEVICE_ATTR,
		     &attr) ? -errno : 0;
}

/* The vCPU state that one KVM get ioctl reads into one fixed-size record. */
static const struct {
	unsigned long cmd;
	const char *name;
	uint32_t type;
	uint32_t size;
} vcpu_reads[] = {
	{ KVM_GET_MP_STATE, "KVM_GET_MP_STATE", PM_REC_MP_STATE,
	  sizeof(struct kvm_mp_state) },
	{ KVM_GET_SREGS2, "KVM_GET_SREGS2", PM_REC_SREGS2, sizeof(struct kvm_sregs2) },
	{ KVM_GET_REGS, "KVM_GET_REGS", PM_REC_REGS, sizeof(struct kvm_regs) },
	{ KVM_GET_XCRS, "KVM_GET_XCRS", PM_REC_XCRS, sizeof(struct kvm_xcrs) },
	{ KVM_GET_LAPIC, "KVM_GET_LAPIC", PM_REC_LAPIC, sizeof(struct kvm_lapic_state) },
	{ KVM_GET_VCPU_EVENTS, "KVM_GET_VCPU_EVENTS", PM_REC_EVENTS,
	  sizeof(struct kvm_vcpu_events) },
	{ KVM_GET_DEBUGREGS, "KVM_GET_DEBUGREGS", PM_REC_DEBUGREGS,
	  sizeof(struct kvm_debugregs) },
};

int pm_state_save_vcpu(struct pm_state *st, int kvm, int vcpu, uint32_t index)
{
	uint32_t size = xsave_size(kvm);
	uint64_t tsc;
	void *buf;
	int ret;

	/* XSAVE2's size, 4096 or more, holds every fixed record too */
	static_assert(sizeof(struct kvm_lapic_state) <= sizeof(struct kvm_xsave) &&
		      sizeof(struct kvm_sregs2) <= sizeof(struct kvm_xsave),
		      "a fixed record larger than struct kvm_xsave");
	buf = calloc(1, size);
	if (!buf)
		return save_failed(st, -ENOMEM, "buffer", index);
	ret = save_cpuid(st, vcpu, index);
	for (size_t i = 0; i < ARRAY_SIZE(vcpu_reads) && !ret; i++)
		ret = add_ioctl(st, vcpu, vcpu_reads[i].cmd, vcpu_reads[i].name,
				vcpu_reads[i].type, index, buf, vcpu_reads[i].size);
	if (!ret) {
		memset(buf, 0, size);
		ret = add_ioctl(st, vcpu, KVM_GET_XSAVE2, "KVM_GET_XSAVE2", PM_REC_XSAVE,
				index, buf, size);
	}
	free(buf);
	if (!ret)
		ret = save_msrs(st, kvm, vcpu, index);
	if (ret)
		return ret;
	ret = tsc_offset(vcpu, &tsc, false);
	if (ret)
		return save_failed(st, ret, "KVM_VCPU_TSC_OFFSET", index);
	return pm_state_add(st, PM_REC_TSC_OFFSET, index, &tsc, sizeof(tsc));
}

/*
 * One record into one KVM set ioctl. The record has @size to @max bytes;
 * KVM gets a zero-padded copy of @max bytes (it may read that many, and
 * may write back into its argument: it never sees the file).
 */
static int put(struct pm_state *st, int fd, unsigned long cmd, const char *what,
	       uint32_t type, uint32_t vcpu, uint32_t size, uint32_t max)
{
	uint32_t got;
	const void *rec = pm_state_find(st, type, vcpu, &got);
	void *copy;
	int ret = 0;

	if (!rec) {
		snprintf(st->why, sizeof(st->why), "vCPU %u has no %s record", vcpu, what);
		return -EBADMSG;
	}
	if (got < size || got > max) {
		snprintf(st->why, sizeof(st->why), "%s record of vCPU %u has %u bytes",
			 what, vcpu, got);
		return -EBADMSG;
	}
	copy = calloc(1, max);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, rec, got);
	if (ioctl(fd, cmd, copy) < 0) {
		ret = -errno;
		snprintf(st->why, sizeof(st->why), "%s of vCPU %u: %s", what, vcpu,
			 strerror(errno));
	}
	free(copy);
	return ret;
}

/* A record that is a struct with a count and entries: check the count. */
static int check_counted(struct pm_state *st, uint32_t type, uint32_t vcpu,
			 const char *what, size_t hdr, size_t entry)
{
	uint32_t size, n;
	const void *rec = pm_state_find(st, type, vcpu, &size);

	if (!rec || size < hdr) {
		snprintf(st->why, sizeof(st->why), "vCPU %u has no %s record", vcpu, what);
		return -EBADMSG;
	}
	memcpy(&n, rec, sizeof(n));
	if (n > PM_MAX_MSRS || size != hdr + n * entry) {
		snprintf(st->why, sizeof(st->why), "%s record of vCPU %u: %u entries in %u bytes",
			 what, vcpu, n, size);
		return -EBADMSG;
	}
	return 0;
}

/*
 * The saved MSRs but the TSC deadline into KVM_SET_MSRS; the deadline,
 * if the vCPU had one, into *@deadline for later.
 */
static int put_msrs(struct pm_state *st, int vcpu, uint32_t index,
		    struct kvm_msr_entry *deadline)
{
	const struct kvm_msrs *saved;
	struct kvm_msrs *msrs;
	uint32_t size, n = 0;
	int ret;

	saved = pm_state_find(st, PM_REC_MSRS, index, &size);
	msrs = calloc(1, size);
	if (!msrs)
		return -ENOMEM;
	for (uint32_t i = 0; i < saved->nmsrs; i++) {
		if (saved->entries[i].index == MSR_IA32_TSC_DEADLINE)
			*deadline = saved->entries[i];
		else
			msrs->entries[n++] = saved->entries[i];
	}
	msrs->nmsrs = n;
	ret = ioctl(vcpu, KVM_SET_MSRS, msrs);
	if (ret < 0 || (uint32_t)ret != n) {
		snprintf(st->why, sizeof(st->why),
			 "MSRs of vCPU %u: %d of %u set, MSR %#x refused", index, ret,
			 n, ret >= 0 && (uint32_t)ret < n ? msrs->entries[ret].index : 0);
		ret = ret < 0 ? -errno : -EINVAL;
	} else {
		ret = 0;
	}
	free(msrs);
	return ret;
}

int pm_state_restore_vcpu(struct pm_state *st, int kvm, int vcpu, uint32_t index)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} deadline = { .hdr.nmsrs = 1 };
	uint32_t size, xsize = xsave_size(kvm);
	const uint64_t *tsc;
	uint64_t offset;
	int ret;

	if (index >= st->nr_vcpus)
		return -EINVAL;
	ret = check_counted(st, PM_REC_CPUID, index, "CPUID",
			    sizeof(struct kvm_cpuid2), sizeof(struct kvm_cpuid_entry2));
	if (!ret)
		ret = check_counted(st, PM_REC_MSRS, index, "MSR",
				    sizeof(struct kvm_msrs), sizeof(struct kvm_msr_entry));
	if (ret)
		return ret;
	pm_state_find(st, PM_REC_CPUID, index, &size);
	ret = put(st, vcpu, KVM_SET_CPUID2, "CPUID", PM_REC_CPUID, index, size, size);
	if (!ret)
		ret = put(st, vcpu, KVM_SET_SREGS2, "SREGS2", PM_REC_SREGS2, index,
			  sizeof(struct kvm_sregs2), sizeof(struct kvm_sregs2));
	if (!ret)
		ret = put(st, vcpu, KVM_SET_REGS, "REGS", PM_REC_REGS, index,
			  sizeof(struct kvm_regs), sizeof(struct kvm_regs));
	if (!ret)
		ret = put(st, vcpu, KVM_SET_XSAVE, "XSAVE", PM_REC_XSAVE, index,
			  sizeof(struct kvm_xsave), xsize);
	if (!ret)
		ret = put(st, vcpu, KVM_SET_XCRS, "XCRS", PM_REC_XCRS, index,
			  sizeof(struct kvm_xcrs), sizeof(struct kvm_xcrs));
	if (!ret)
		ret = put_msrs(st, vcpu, index, &deadline.e);
	if (ret)
		return ret;
	ret = put(st, vcpu, KVM_SET_MP_STATE, "MP state", PM_REC_MP_STATE, index,
		  sizeof(struct kvm_mp_state), sizeof(struct kvm_mp_state));
	if (!ret)
		ret = put(st, vcpu, KVM_SET_LAPIC, "LAPIC", PM_REC_LAPIC, index,
			  sizeof(struct kvm_lapic_state), sizeof(struct kvm_lapic_state));
	if (!ret)
		ret = put(st, vcpu, KVM_SET_VCPU_EVENTS, "events", PM_REC_EVENTS, index,
			  sizeof(struct kvm_vcpu_events), sizeof(struct kvm_vcpu_events));
	if (!ret)
		ret = put(st, vcpu, KVM_SET_DEBUGREGS, "debug registers",
			  PM_REC_DEBUGREGS, index, sizeof(struct kvm_debugregs),
			  sizeof(struct kvm_debugregs));
	if (ret)
		return ret;
	tsc = pm_state_find(st, PM_REC_TSC_OFFSET, index, &size);
	if (!tsc || size != sizeof(*tsc)) {
		snprintf(st->why, sizeof(st->why), "vCPU %u has no TSC offset", index);
		return -EBADMSG;
	}
	offset = *tsc;
	ret = tsc_offset(vcpu, &offset, true);
	if (ret) {
		snprintf(st->why, sizeof(st->why), "TSC offset of vCPU %u: %s", index,
			 strerror(-ret));
		return ret;
	}
	if (deadline.e.index == MSR_IA32_TSC_DEADLINE) {
		ret = ioctl(vcpu, KVM_SET_MSRS, &deadline);
		if (ret != 1) {
			ret = ret < 0 ? -errno : -EINVAL;
			snprintf(st->why, sizeof(st->why), "TSC deadline of vCPU %u: %s",
				 index, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

int pm_state_restore_vm(struct pm_state *st, int vm)
{
	static const struct { uint32_t type; const char *what; } chips[] = {
		{ PM_REC_VM_PIC_MASTER, "PIC master" },
		{ PM_REC_VM_PIC_SLAVE, "PIC slave" },
		{ PM_REC_VM_IOAPIC, "IOAPIC" },
	};
	const struct kvm_clock_data *saved;
	struct kvm_clock_data clock;
	uint32_t size;
	int ret;

	for (uint32_t i = 0; i < 3; i++) {
		const struct kvm_irqchip *chip = pm_state_find(st, chips[i].type, 0, &size);

		if (chip && size == sizeof(*chip) && chip->chip_id != i) {
			snprintf(st->why, sizeof(st->why), "%s record is chip %u",
				 chips[i].what, chip->chip_id);
			return -EBADMSG;
		}
		ret = put(st, vm, KVM_SET_IRQCHIP, chips[i].what, chips[i].type, 0,
			  sizeof(struct kvm_irqchip), sizeof(struct kvm_irqchip));
		if (ret)
			return ret;
	}
	ret = put(st, vm, KVM_SET_PIT2, "PIT", PM_REC_VM_PIT, 0,
		  sizeof(struct kvm_pit_state2), sizeof(struct kvm_pit_state2));
	if (ret)
		return ret;
	saved = pm_state_find(st, PM_REC_VM_CLOCK, 0, &size);
	if (!saved || size != sizeof(*saved)) {
		snprintf(st->why, sizeof(st->why), "no kvmclock record");
		return -EBADMSG;
	}
	clock = *saved;
	/* Only what KVM_SET_CLOCK takes: the realtime pairing if it was saved. */
	clock.flags &= KVM_CLOCK_REALTIME;
	if (ioctl(vm, KVM_SET_CLOCK, &clock)) {
		snprintf(st->why, sizeof(st->why), "kvmclock: %s", strerror(errno));
		return -errno;
	}
	return 0;
}
