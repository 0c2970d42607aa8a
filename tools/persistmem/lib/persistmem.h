/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libpersistmem: what a VMM does around a host live update.
 *
 * DOC: Overview
 *
 * A VMM that wants its guest to survive a kexec of the host kernel keeps
 * guest RAM in a persistent guest_memfd (GUEST_MEMFD_FLAG_PERSIST), and
 * before the kexec pauses its vCPUs, saves their and the VM's state into a
 * memfd, and preserves both files in a LUO session named after the VM. In
 * the next kernel it retrieves the session, links the guest_memfd into a
 * new VM, restores the state and runs the vCPUs again.
 *
 * This library wraps those steps: persistent guest_memfd creation and
 * linking (pm_gmem_*), LUO sessions (pm_session_*), and the state file
 * (pm_state_*): a versioned, checksummed sequence of records, one per
 * piece of KVM state, written and read with the KVM ioctls that own it.
 *
 * Every function returns 0 (or a file descriptor) on success and a
 * negative errno on failure, and changes nothing it cannot undo on
 * failure. Functions that read a state file refuse one that is damaged,
 * of another version or for another VM shape with -EBADMSG,
 * -EPROTONOSUPPORT or -EINVAL, and pm_strerror() says why in words.
 */
#ifndef _PERSISTMEM_H
#define _PERSISTMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

/* ---- persistent guest_memfd ---- */

/**
 * struct pm_gmem_spec - what a persistent guest_memfd is made of
 * @size:	bytes; a multiple of @granule
 * @granule:	4 KiB, 2 MiB or 1 GiB
 * @mmap:	GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED: the VMM
 *		maps it and the guest's memory is shared (non-confidential VM)
 * @no_direct_map: GUEST_MEMFD_PERSIST_NO_DIRECT_MAP
 * @hvo:	GUEST_MEMFD_PERSIST_HVO (1 GiB granules)
 */
struct pm_gmem_spec {
	uint64_t size;
	uint64_t granule;
	bool mmap;
	bool no_direct_map;
	bool hvo;
};

/**
 * pm_gmem_create() - create a persistent guest_memfd on a VM
 * @vm:   KVM VM file descriptor
 * @spec: size, granule and attributes
 *
 * Return: the guest_memfd's file descriptor, or a negative errno.
 */
int pm_gmem_create(int vm, const struct pm_gmem_spec *spec);

/**
 * pm_gmem_link() - give a retrieved guest_memfd to a new VM
 * @vm: KVM VM file descriptor of the new VM
 * @fd: guest_memfd retrieved from a LUO session (bound to no VM)
 *
 * KVM_LINK_GUEST_MEMFD: the file is bound to @vm from now on; only one VM
 * ever adopts it.
 *
 * Return: a file descriptor of the guest_memfd bound to @vm, or a
 * negative errno.
 */
int pm_gmem_link(int vm, int fd);

/* ---- LUO sessions ---- */

/**
 * pm_session_create() - create the LUO session a VMM preserves into
 * @name: session name (the VM's name), at most 63 bytes
 *
 * Opens /dev/liveupdate for this call only.
 *
 * Return: the session's file descriptor, or a negative errno.
 */
int pm_session_create(const char *name);

/**
 * pm_session_retrieve() - retrieve a session in the kernel after a kexec
 * @name: name the session was created with
 *
 * Return: the session's file descriptor, -ENOENT if the previous kernel
 * handed over no session of that name, or another negative errno.
 */
int pm_session_retrieve(const char *name);

/**
 * pm_session_preserve() - preserve a file in a session under a token
 * @session: session file descriptor
 * @fd:      file to preserve (guest_memfd, memfd, iommufd, ...)
 * @token:   the caller's name for it, unique in the session
 *
 * Return: 0 or a negative errno.
 */
int pm_session_preserve(int session, int fd, uint64_t token);

/**
 * pm_session_retrieve_fd() - get a preserved file back by its token
 * @session: retrieved session
 * @token:   token it was preserved with
 *
 * Return: the file's new descriptor, or a negative errno.
 */
int pm_session_retrieve_fd(int session, uint64_t token);

/**
 * pm_session_finish() - end a retrieved session
 * @session: retrieved session, every file of which was retrieved
 *
 * Only a finished session is gone: one closed unfinished (the VMM failed
 * or died resuming) can be retrieved again, with the same files.
 *
 * Return: 0 or a negative errno.
 */
int pm_session_finish(int session);

/* ---- the state file ---- */

#define PM_STATE_MAGIC		"PMSTATE"
#define PM_STATE_VERSION	1

/**
 * enum pm_rec_type - what a state record holds
 * @PM_REC_VM_CLOCK:	struct kvm_clock_data (always with KVM_CLOCK_REALTIME)
 * @PM_REC_VM_PIC_MASTER: struct kvm_irqchip, chip 0
 * @PM_REC_VM_PIC_SLAVE: struct kvm_irqchip, chip 1
 * @PM_REC_VM_IOAPIC:	struct kvm_irqchip, chip 2
 * @PM_REC_VM_PIT:	struct kvm_pit_state2
 * @PM_REC_CPUID:	struct kvm_cpuid2 and its entries
 * @PM_REC_REGS:	struct kvm_regs
 * @PM_REC_SREGS2:	struct kvm_sregs2
 * @PM_REC_XSAVE:	KVM_GET_XSAVE2 buffer
 * @PM_REC_XCRS:	struct kvm_xcrs
 * @PM_REC_MSRS:	struct kvm_msrs and its entries (those KVM could read)
 * @PM_REC_LAPIC:	struct kvm_lapic_state
 * @PM_REC_EVENTS:	struct kvm_vcpu_events
 * @PM_REC_DEBUGREGS:	struct kvm_debugregs
 * @PM_REC_MP_STATE:	struct kvm_mp_state
 * @PM_REC_TSC_OFFSET:	__u64, the vCPU's KVM_VCPU_TSC_OFFSET
 * @PM_REC_DEVICE:	the VMM's own device state (opaque to the library)
 */
enum pm_rec_type {
	PM_REC_VM_CLOCK = 1,
	PM_REC_VM_PIC_MASTER,
	PM_REC_VM_PIC_SLAVE,
	PM_REC_VM_IOAPIC,
	PM_REC_VM_PIT,
	PM_REC_CPUID = 16,
	PM_REC_REGS,
	PM_REC_SREGS2,
	PM_REC_XSAVE,
	PM_REC_XCRS,
	PM_REC_MSRS,
	PM_REC_LAPIC,
	PM_REC_EVENTS,
	PM_REC_DEBUGREGS,
	PM_REC_MP_STATE,
	PM_REC_TSC_OFFSET,
	PM_REC_DEVICE = 64,
};

/**
 * struct pm_state - a state file being written or read
 * @buf:	the file's bytes
 * @len:	bytes used
 * @cap:	bytes allocated (writer)
 * @nr_vcpus:	vCPUs the file describes
 * @err:	first error of a writer, reported by pm_state_write()
 * @why:	what was wrong with a file that was refused, or which KVM read
 *	failed in a save, for messages
 */
struct pm_state {
	uint8_t *buf;
	size_t len, cap;
	uint32_t nr_vcpus;
	int err;
	char why[128];
};

/**
 * pm_state_init() - start an empty state for a VM of @nr_vcpus vCPUs
 * @st:       state to initialise
 * @nr_vcpus: number of vCPUs, 1 to 1024
 *
 * Return: 0 or -EINVAL.
 */
int pm_state_init(struct pm_state *st, uint32_t nr_vcpus);

/**
 * pm_state_add() - append a record
 * @st:   state being written
 * @type: enum pm_rec_type
 * @vcpu: vCPU index for per-vCPU records, 0 otherwise
 * @data: payload
 * @size: payload bytes (at most 16 MiB)
 *
 * Return: 0 or a negative errno, also kept in @st->err.
 */
int pm_state_add(struct pm_state *st, uint32_t type, uint32_t vcpu,
		 const void *data, uint32_t size);

/**
 * pm_state_write() - seal the state and write it into a new memfd
 * @st:   state with all its records
 * @name: memfd name
 *
 * Return: the memfd (sealed against writes and shrinking), or a negative
 * errno (the first error of pm_state_add() if there was one).
 */
int pm_state_write(struct pm_state *st, const char *name);

/**
 * pm_state_read() - read and check a state file
 * @st:       state to fill
 * @fd:       the state memfd
 * @nr_vcpus: vCPUs the VM has, or 0 to take the file's number
 *
 * Checks magic, version, sizes, checksum and every record's bounds before
 * anything uses them; @st->why says what was wrong.
 *
 * Return: 0, -EBADMSG (damaged), -EPROTONOSUPPORT (other version), -EINVAL
 * (other vCPU count), or another negative errno.
 */
int pm_state_read(struct pm_state *st, int fd, uint32_t nr_vcpus);

/**
 * pm_state_find() - find a record of a read or written state
 * @st:   the state
 * @type: enum pm_rec_type
 * @vcpu: vCPU index, 0 for VM records
 * @size: if not NULL, set to the payload's bytes
 *
 * Return: the payload, or NULL if the state has no such record.
 */
const void *pm_state_find(const struct pm_state *st, uint32_t type,
			  uint32_t vcpu, uint32_t *size);

/**
 * pm_state_free() - release a state's buffer
 * @st: the state
 */
void pm_state_free(struct pm_state *st);

/**
 * pm_state_save_vm() - save the VM-wide KVM state: clock, irqchip, PIT
 * @st: state being written
 * @vm: KVM VM file descriptor (in-kernel irqchip and PIT created)
 *
 * The kvmclock record always carries KVM_CLOCK_REALTIME: KVM's own pairing
 * of the clock with CLOCK_REALTIME when the host's clocksource is the TSC,
 * otherwise CLOCK_REALTIME read by the library right after KVM_GET_CLOCK.
 *
 * Return: 0 or a negative errno.
 */
int pm_state_save_vm(struct pm_state *st, int vm);

/**
 * pm_state_save_vcpu() - save one paused vCPU's state
 * @st:    state being written
 * @kvm:   /dev/kvm file descriptor (for the MSR list)
 * @vcpu:  vCPU file descriptor; the vCPU is not in KVM_RUN
 * @index: its index in the VM
 *
 * Return: 0 or a negative errno.
 */
int pm_state_save_vcpu(struct pm_state *st, int kvm, int vcpu, uint32_t index);

/**
 * pm_state_restore_vcpu() - load a vCPU's saved state into a new vCPU
 * @st:    state read with pm_state_read()
 * @kvm:   /dev/kvm file descriptor (for the XSAVE buffer size)
 * @vcpu:  new vCPU file descriptor, never run
 * @index: its index
 *
 * CPUID first, then the registers, FPU, MSRs, LAPIC, events, the TSC
 * offset and last the TSC deadline, in the order KVM needs them. An XSAVE
 * record larger than this host's KVM_CAP_XSAVE2 size is refused.
 *
 * Return: 0 or a negative errno; @st->why names the step that failed.
 */
int pm_state_restore_vcpu(struct pm_state *st, int kvm, int vcpu, uint32_t index);

/**
 * pm_state_restore_vm() - load the VM-wide state into a new VM
 * @st: state read with pm_state_read()
 * @vm: new VM with its in-kernel irqchip and PIT
 *
 * The kvmclock is set with KVM_CLOCK_REALTIME when the saved clock has it,
 * so the guest's clock goes on by the time that passed since the save.
 *
 * Return: 0 or a negative errno; @st->why names the step that failed.
 */
int pm_state_restore_vm(struct pm_state *st, int vm);

/**
 * pm_strerror() - a message for an error of this library
 * @err: negative errno returned by one of its functions
 *
 * Return: a static string.
 */
const char *pm_strerror(int err);

#endif /* _PERSISTMEM_H */
