/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A tiny VMM for the guest_memfd vmtests: one VM, one vCPU in 32-bit
 * protected mode (flat 4 GiB segments, paging off), 1 MiB of ordinary
 * memory at GPA 0 holding the guest code, and one guest_memfd memslot at
 * GPA 1 GiB (1 GiB aligned in guest and host address space, so that KVM
 * can map 1 GiB and 2 MiB granules at those levels).
 *
 * The guest fills or verifies a range of the guest_memfd with a pattern:
 * every 32-bit word of page p (the page's index in the file) holds
 * gvm_value(seed, p). Verification compares every word of every page and
 * reports the first mismatch.
 */
#ifndef _PERSISTMEM_GMEM_VM_H
#define _PERSISTMEM_GMEM_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "vmtest.h"

#define GVM_MIB		(1024ull * 1024)
#define GVM_GIB		(1024 * GVM_MIB)
#define GVM_GMEM_GPA	GVM_GIB

enum gvm_mode {
	GVM_FILL,
	GVM_VERIFY,
};

struct gvm {
	int vm, vcpu;
	unsigned long type;
	struct kvm_run *run;
	size_t run_size;
	void *code;
	/* The guest_memfd memslot (slot 1) once gvm_set_gmem() succeeded. */
	int gmem;		/* not owned: the caller closes it */
	uint64_t size;
	bool private_mem;
	void *uaddr;		/* userspace_addr of the slot, 1 GiB aligned */
	void *resv;		/* address space reserved for it */
	size_t resv_len;
};

struct gvm_result {
	bool pass;
	uint64_t addr;		/* first bad GPA, or where the guest stopped */
	uint32_t want, seen;	/* on a mismatch */
	uint64_t ns;		/* time spent in KVM_RUN */
	char why[256];		/* what went wrong, "" if pass */
};

/* /dev/kvm, opened once; vt_fatal() if it cannot be. */
int gvm_kvm(void);
/*
 * Fault injection of persistent guest_memfd (debugfs): a freeze call, or
 * the restore of one granule in a retrieve.
 */
#define GVM_FAIL_FREEZE		"/sys/kernel/debug/fail_kvm_gmem_persist_freeze"
#define GVM_FAIL_RETRIEVE	"/sys/kernel/debug/fail_kvm_gmem_persist_retrieve"
/* Make the @nth call of @attr from now fail, once; 0 or -errno. */
int gvm_fail(const char *attr, unsigned int nth);
/*
 * Make the @nth freeze of a persistent guest_memfd fail, and load this
 * kernel for kexec with @flag added to its command line: for a stage whose
 * kexec must fail. Ends the stage when either cannot be done.
 */
void gvm_arm_failing_kexec(unsigned int nth, const char *flag);
/* Disarm @attr again; 0 or -errno. */
int gvm_fail_off(const char *attr);
/* Failures @attr has left to inject (0 once used), or -errno. */
long gvm_fail_left(const char *attr);
/*
 * Retrieve the file of @token from LUO @session and check its size is
 * @size (a test point); vt_fatal() if it cannot be retrieved.
 */
int gvm_retrieve(int session, uint64_t token, uint64_t size, const char *what);
/* Name of a KVM_EXIT_* reason, for messages. */
const char *gvm_exit_name(unsigned int reason);
/* KVM_CREATE_VM of @type only; returns the VM fd or -errno. */
int gvm_create_vm(unsigned long type);
/* VM of @type with the code memslot and its vCPU; 0 or -errno. */
int gvm_create(struct gvm *g, unsigned long type);
/* Tear down the VM, its vCPU and mappings (not the guest_memfd). */
void gvm_destroy(struct gvm *g);

/* KVM_CREATE_GUEST_MEMFD on @vm; returns the fd or -errno. */
int gvm_create_gmem(int vm, uint64_t size, uint64_t flags, uint64_t granule,
		    uint64_t persist_flags);
/* KVM_LINK_GUEST_MEMFD of @fd into @vm; returns the new fd or -errno. */
int gvm_link(int vm, int fd);

/*
 * Back GPA [1 GiB, 1 GiB + @size) with guest_memfd @fd from offset 0.
 * @private_mem: userspace_addr is anonymous memory and the range is made
 * private with KVM_SET_MEMORY_ATTRIBUTES; otherwise (MMAP|INIT_SHARED
 * files) userspace_addr is a shared mapping of @fd, left in g->uaddr.
 * Returns 0 or -errno; @what names the failing step.
 */
int gvm_set_gmem(struct gvm *g, int fd, uint64_t size, bool private_mem, const char **what);

/* The word every dword of file page @page holds for @seed. */
static inline uint32_t gvm_value(uint32_t seed, uint64_t page)
{
	return seed ^ (uint32_t)(page * 0x9E3779B1u);
}

/* @seed, or the next one for which no page below 4 GiB of file is 0. */
uint32_t gvm_seed(uint32_t seed);

/*
 * Run the vCPU over file range [@off, @off + @len) (4 KiB aligned) in
 * @mode with @seed, bounded by a timeout that grows with @len. Returns
 * r->pass.
 */
bool gvm_run(struct gvm *g, enum gvm_mode mode, uint32_t seed, uint64_t off,
	     uint64_t len, struct gvm_result *r);
/* gvm_run() reported as one test point named by @fmt. */
__printf(6, 7) bool gvm_point(struct gvm *g, enum gvm_mode mode, uint32_t seed,
			      uint64_t off, uint64_t len, const char *fmt, ...);

/* Value of VM statistic @name (binary stats), or -1. */
long long gvm_vm_stat(struct gvm *g, const char *name);

/* Memory policy helpers (raw syscalls, no libnuma): 0 or -errno. */
int gvm_mbind_node(void *addr, size_t len, int node);
int gvm_bind_task(int node);	/* node < 0: back to MPOL_DEFAULT */
/*
 * Allocate the @size bytes of persistent guest_memfd @fd, of @granule
 * granules, even granules first: no two neighbours in the file are
 * neighbours in memory, so each granule is a run of its own. 0 or -errno.
 */
int gvm_fallocate_interleaved(int fd, uint64_t size, uint64_t granule);

#endif /* _PERSISTMEM_GMEM_VM_H */
