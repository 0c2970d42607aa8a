/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Persistent guest_memfd: what guest_memfd.c and the files of
 * virt/kvm/guest_memfd/ share.
 */
#ifndef __KVM_GUEST_MEMFD_PERSIST_H__
#define __KVM_GUEST_MEMFD_PERSIST_H__

#include <linux/kvm_host.h>
#include <linux/mutex.h>
#include <linux/wait.h>
#include <linux/xarray.h>

#include "../guest_memfd.h"

struct guest_memfd_persist_ser;
struct folio_batch;
struct guest_memfd_persist_extent_ser;
struct kvm_gmem_persist_lazy;
struct liveupdate_file_op_args;
struct liveupdate_file_ops;

/**
 * struct kvm_gmem_persist - persistent backing of one guest_memfd inode
 * @lock:          serializes granule allocation, punch-hole and freeze
 * @granules:      folio of each allocated granule, by granule number
 *                 (page index >> @order); each holds one reference, the
 *                 file's own, and is in the page cache too. A granule
 *                 being allocated holds a claim (a value entry) instead.
 * @nr_granules:   number of entries in @granules
 * @order:         page order of the granule: 0, 9 or 18
 * @alloc_flags:   PERSIST_ALLOC_* flags of every granule
 * @persist_flags: GUEST_MEMFD_PERSIST_* attributes, as created
 * @vm_type:       type of the VM that created the file
 * @memcg:         memory cgroup of the task that created the file, or
 *                 retrieved it after kexec: every granule is charged to it
 * @frozen:        preserved for a live update that is under way: no granule
 *                 may be added or removed
 * @extents:       while @frozen, the extent array handed over (vmalloc);
 *                 NULL when the runs are in the description's page
 * @lazy:          granules a retrieve claimed that are not in @granules
 *                 yet, adopted at first use (lazy.c); NULL if none
 * @wait:          where faults wait while @frozen, or while another task
 *                 allocates the granule they need
 */
struct kvm_gmem_persist {
	struct mutex lock;	/* allocation, punch-hole and freeze */
	struct xarray granules;
	unsigned long nr_granules;
	unsigned int order;
	unsigned long alloc_flags;
	u64 persist_flags;
	u32 vm_type;
	struct mem_cgroup *memcg;
	bool frozen;
	struct guest_memfd_persist_extent_ser *extents;
	struct kvm_gmem_persist_lazy *lazy;
	wait_queue_head_t wait;
};

static inline u32 kvm_gmem_vm_type(struct kvm *kvm)
{
#ifdef CONFIG_X86
	return kvm->arch.vm_type;
#else
	return 0;
#endif
}

/*
 * Whether memory of a VM type means the same after a kexec. Not for
 * hardware-protected types (SEV, SEV-ES, SNP, TDX): their keys, RMP or
 * S-EPT state die with the kernel, and persistent granules would bypass
 * their reclaim hooks.
 */
static inline bool kvm_gmem_persist_vm_type(u32 type)
{
#ifdef CONFIG_X86
	return type == KVM_X86_DEFAULT_VM || type == KVM_X86_SW_PROTECTED_VM;
#else
	return !type;
#endif
}

#ifdef CONFIG_KVM_GUEST_MEMFD_PERSIST

extern const struct kvm_gmem_backing kvm_gmem_persist_backing;

/* The persistent backing of a guest_memfd inode, or NULL. */
static inline struct kvm_gmem_persist *kvm_gmem_persist(struct inode *inode)
{
	struct gmem_inode *gi = GMEM_I(inode);

	return gi->backing == &kvm_gmem_persist_backing ? gi->backing_data : NULL;
}

int kvm_gmem_persist_check_args(const struct kvm_create_guest_memfd *args);
int kvm_gmem_persist_setup(struct inode *inode, u32 vm_type, u64 granule_size,
			   u64 persist_flags);
struct folio *kvm_gmem_persist_get_folio(struct inode *inode, pgoff_t index);
int kvm_gmem_persist_check_range(struct inode *inode, int mode, loff_t offset, loff_t len);
long kvm_gmem_persist_punch_hole(struct inode *inode, pgoff_t start, pgoff_t end);
int kvm_gmem_persist_wait_thaw(struct kvm_gmem_persist *p, bool killable);
struct folio *kvm_gmem_persist_try_folio(struct inode *inode, unsigned long g);
int kvm_gmem_persist_mmap(struct file *file, struct vm_area_struct *vma);
struct folio *kvm_gmem_persist_pin_folio(struct file *file, pgoff_t index);
unsigned long kvm_gmem_persist_get_unmapped_area(struct file *file, unsigned long addr,
						 unsigned long len, unsigned long pgoff,
						 unsigned long flags);
int kvm_gmem_persist_max_order(struct kvm_memory_slot *slot, struct folio *folio);
int kvm_gmem_persist_adopt(struct inode *inode, pgoff_t index, struct folio *folio);
bool kvm_gmem_persist_pinned(struct inode *inode);
int kvm_gmem_persist_unrestore(struct folio *folio, u64 owner);
void kvm_gmem_persist_disown(struct inode *inode, u64 owner);
void kvm_gmem_persist_thaw(struct inode *inode);
int kvm_gmem_persist_lazy_claim(struct inode *inode,
				const struct guest_memfd_persist_extent_ser *extents,
				u64 nr, u64 owner);
struct folio *kvm_gmem_persist_lazy_adopt(struct inode *inode, unsigned long g);
int kvm_gmem_persist_lazy_adopt_all(struct inode *inode);
int kvm_gmem_persist_lazy_release(struct inode *inode, unsigned long first,
				  unsigned long *end, struct folio_batch *out);
bool kvm_gmem_persist_lazy_unused(struct kvm_gmem_persist *p);
void kvm_gmem_persist_lazy_drop(struct inode *inode, bool keep);
void kvm_gmem_persist_discard(struct folio *folio);
int kvm_gmem_persist_check_ser(const struct guest_memfd_persist_ser *ser);
#if IS_ENABLED(CONFIG_KUNIT)
int kvm_gmem_luo_restore(struct inode *inode, const struct guest_memfd_persist_ser *ser,
			 const struct guest_memfd_persist_extent_ser *extents,
			 u64 capacity, u64 owner);
extern const struct liveupdate_file_ops kvm_gmem_luo_file_ops;
struct guest_memfd_persist_extent_ser *
kvm_gmem_luo_extents(struct liveupdate_file_op_args *args, struct guest_memfd_persist_ser *ser);
#endif
void kvm_gmem_persist_init(void);
void kvm_gmem_persist_exit(void);

#else /* !CONFIG_KVM_GUEST_MEMFD_PERSIST */

/* Without persistence, PERSIST is refused before: the rest is reserved. */
static inline int kvm_gmem_persist_check_args(const struct kvm_create_guest_memfd *args)
{
	return 0;
}

static inline int kvm_gmem_persist_setup(struct inode *inode, u32 vm_type,
					 u64 granule_size, u64 persist_flags)
{
	return -EOPNOTSUPP;
}

static inline void kvm_gmem_persist_init(void)
{
}

static inline void kvm_gmem_persist_exit(void)
{
}

#endif /* CONFIG_KVM_GUEST_MEMFD_PERSIST */

#endif /* __KVM_GUEST_MEMFD_PERSIST_H__ */
