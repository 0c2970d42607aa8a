// SPDX-License-Identifier: GPL-2.0-only
/*
 * Persistent guest_memfd backing.
 */

/**
 * DOC: Persistent guest_memfd backing
 *
 * A guest_memfd created with GUEST_MEMFD_FLAG_PERSIST takes its memory from
 * persist_alloc, one granule (4 KiB, 2 MiB or 1 GiB folio) at a time, so
 * that the Live Update Orchestrator can hand it over to the next kernel
 * (luo.c). The granules are large folios in the inode's page cache, where
 * host mappings, pins and lookups find them; the inode also keeps them in
 * an xarray indexed by granule number, each holding one reference of the
 * file's own. That reference is what keeps the page cache, which frees
 * folios to the buddy allocator, from ever freeing pool memory, and the
 * xarray is what the file frees, preserves and hands over: the page cache
 * is emptied before the inode dies. A granule leaves both under the file's
 * lock, unmapped first, and goes back to the pool once only the file's
 * reference is left; a pin that outlives it delays that (the reaper).
 *
 * Every operation works on whole granules: allocation (zeroed by
 * persist_alloc, on first use), fallocate (offset and length granule
 * aligned), the mapping level KVM may use, and freeing. Nothing is done per
 * 4 KiB page of a huge granule, except a punch-hole that covers part of
 * one: that part is zeroed, through a mapping of its own for memory out of
 * the direct map, and the granule kept.
 *
 * Granules of attribute NO_DIRECT_MAP are out of the kernel direct map for
 * as long as they are allocated; HVO granules have their vmemmap tail pages
 * freed, so nothing may write their tail struct pages. Userspace mappings
 * (GUEST_MEMFD_FLAG_MMAP) of 4 KiB and 2 MiB granules map their folios,
 * which can then be pinned; those of HVO and 1 GiB granules are PFN
 * mappings, which do not touch struct pages, by PMD or PUD where the
 * mapping and the granule allow it.
 *
 * Every granule is charged to the memory cgroup of the task that created
 * the file (or retrieved it after kexec), whichever task faults it in, so
 * that a tenant's memory.max bounds what it takes from the pools: over the
 * limit, the allocation fails with -ENOMEM and the pool is left as it was.
 *
 * The NUMA node of a granule follows the file's memory policy at its index
 * (mbind() on a mapping of the file) or else the task's: MPOL_BIND is
 * strict, the preferred and interleave policies fall back to other nodes.
 *
 * While frozen for a live update (luo.c), granules can neither be added
 * nor removed. Faults on existing granules keep working; whatever needs a
 * granule added or removed (a vCPU or host fault on a new granule,
 * fallocate, punch-hole) waits, interruptibly, until the file thaws (a
 * cancelled live update) or the kexec happens. Nothing fails because of
 * the freeze: a VM keeps running through a cancelled live update.
 */

#include <linux/kvm_host.h>
#include <linux/delay.h>
#include <linux/falloc.h>
#include <linux/memcontrol.h>
#include <linux/mempolicy.h>
#include <linux/mm.h>
#include <linux/nodemask.h>
#include <linux/pagemap.h>
#include <linux/persist_alloc.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/set_memory.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "persist.h"
#include "../guest_memfd.h"

static int kvm_gmem_persist_order(u64 granule_size)
{
	switch (granule_size) {
	case 0:		/* the base page size */
	case SZ_4K:
		return PERSIST_ORDER_4K;
	case SZ_2M:
		return PERSIST_ORDER_2M;
	case SZ_1G:
		return PERSIST_ORDER_1G;
	default:
		return -EINVAL;
	}
}

/**
 * kvm_gmem_persist_supported - whether GUEST_MEMFD_FLAG_PERSIST is usable
 * @kvm: the VM, or NULL to ask for any VM type
 *
 * Not whether the pools hold memory now: an empty pool is -ENOMEM when a
 * granule is allocated, an answer that does not change with the fill.
 *
 * Return: true if the VM is of a type whose memory survives a kexec
 * (kvm_gmem_persist_vm_type()).
 */
bool kvm_gmem_persist_supported(struct kvm *kvm)
{
	return !kvm || kvm_gmem_persist_vm_type(kvm_gmem_vm_type(kvm));
}

/**
 * kvm_gmem_persist_granules - the KVM_CAP_GUEST_MEMFD_PERSIST answer
 * @kvm: the VM, or NULL to ask for any VM type
 *
 * Return: the granule sizes KVM_CREATE_GUEST_MEMFD accepts with
 * GUEST_MEMFD_FLAG_PERSIST, as a mask of sizes; 0 if it is not supported.
 */
u64 kvm_gmem_persist_granules(struct kvm *kvm)
{
	return kvm_gmem_persist_supported(kvm) ? SZ_4K | SZ_2M | SZ_1G : 0;
}

/**
 * kvm_gmem_persist_attributes - the KVM_CAP_GUEST_MEMFD_PERSIST_FLAGS answer
 * @kvm: the VM, or NULL to ask for any VM type
 *
 * Return: the GUEST_MEMFD_PERSIST_* attributes KVM_CREATE_GUEST_MEMFD
 * accepts, those the kernel can provide: NO_DIRECT_MAP where the direct
 * map can be changed, HVO with vmemmap optimization; 0 if
 * GUEST_MEMFD_FLAG_PERSIST is not supported.
 */
u64 kvm_gmem_persist_attributes(struct kvm *kvm)
{
	u64 attrs = 0;

	if (!kvm_gmem_persist_supported(kvm))
		return 0;
	if (can_set_direct_map())
		attrs |= GUEST_MEMFD_PERSIST_NO_DIRECT_MAP;
	if (IS_ENABLED(CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP))
		attrs |= GUEST_MEMFD_PERSIST_HVO;
	return attrs;
}

/*
 * The rules of a persistent file, for a creation and for a file handed
 * over by the previous kernel alike: a known attribute set that fits the
 * granule, memory out of the direct map never mappable by the host, a
 * size of whole granules.
 */
static int kvm_gmem_persist_rules(u64 flags, u64 size, int order, u64 persist_flags)
{
	if (persist_flags & ~kvm_gmem_persist_attributes(NULL))
		return -EINVAL;
	if ((persist_flags & GUEST_MEMFD_PERSIST_HVO) && order == PERSIST_ORDER_4K)
		return -EINVAL;
	/* Memory out of the direct map is private memory: no host mapping. */
	if ((persist_flags & GUEST_MEMFD_PERSIST_NO_DIRECT_MAP) &&
	    (flags & (GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED)))
		return -EINVAL;
	if (!IS_ALIGNED(size, PAGE_SIZE << order))
		return -EINVAL;
	return 0;
}

/**
 * kvm_gmem_persist_check_args - check the persistence fields of a creation
 * @args: the KVM_CREATE_GUEST_MEMFD arguments; flags already checked
 *
 * Without GUEST_MEMFD_FLAG_PERSIST the fields are reserved words, which
 * KVM_CREATE_GUEST_MEMFD has always ignored: they are not looked at.
 *
 * Return: 0, or -EINVAL for a non-zero reserved word, or a granule or
 * attribute set that is unknown or does not fit the other flags or the
 * size.
 */
int kvm_gmem_persist_check_args(const struct kvm_create_guest_memfd *args)
{
	int order;

	/* Reserved words to files without PERSIST, ignored as upstream does. */
	if (!(args->flags & GUEST_MEMFD_FLAG_PERSIST))
		return 0;
	if (!mem_is_zero(args->reserved, sizeof(args->reserved)))
		return -EINVAL;

	order = kvm_gmem_persist_order(args->granule_size);
	if (order < 0)
		return order;
	return kvm_gmem_persist_rules(args->flags, args->size, order, args->persist_flags);
}

static int kvm_gmem_persist_migrate_folio(struct address_space *mapping,
					  struct folio *dst, struct folio *src,
					  enum migrate_mode mode)
{
	/* Pool memory does not move: the mapping is unmovable. */
	WARN_ON_ONCE(1);
	return -EINVAL;
}

/*
 * The page cache operations of a persistent file. No free_folio: the
 * folios are pool memory, freed by the file, and the VM types that may
 * have persistent memory have none to reclaim from firmware (the hook
 * would cost a lookup per 4 KiB page on SNP hosts).
 */
static const struct address_space_operations kvm_gmem_persist_aops = {
	.dirty_folio	= noop_dirty_folio,
	.migrate_folio	= kvm_gmem_persist_migrate_folio,
};

/* The zap of a failed granule, when it cannot be done at once. */
struct kvm_gmem_persist_failed {
	struct work_struct work;
	struct inode *inode;
	struct folio *folio;
};

/*
 * Zap every mapping of @folio, a granule of @inode that persist_alloc
 * marked poisoned, with the invalidate lock held shared. As
 * kvm_gmem_error_folio() does for other guest_memfd memory, the VMs'
 * mappings are zapped, so that their next fault finds the mark; the
 * host's go too. Faults look at the mark and map with the folio locked:
 * once the folio lock was had, a fault that saw no mark has mapped (and is
 * unmapped here), and later ones see it.
 */
static void kvm_gmem_persist_zap_failed(struct inode *inode, struct folio *folio)
{
	pgoff_t start, nr;

	folio_lock(folio);
	folio_unlock(folio);
	/* Punch-hole takes granules out under the lock: still ours? */
	if (READ_ONCE(folio->mapping) == inode->i_mapping) {
		start = folio->index;
		nr = folio_nr_pages(folio);
		kvm_gmem_invalidate_start(inode, start, start + nr);
		unmap_mapping_pages(inode->i_mapping, start, nr, false);
		kvm_gmem_invalidate_end(inode, start, start + nr);
	}
}

static void kvm_gmem_persist_failed_work(struct work_struct *work)
{
	struct kvm_gmem_persist_failed *w =
		container_of(work, struct kvm_gmem_persist_failed, work);

	filemap_invalidate_lock_shared(w->inode->i_mapping);
	kvm_gmem_persist_zap_failed(w->inode, w->folio);
	filemap_invalidate_unlock_shared(w->inode->i_mapping);
	folio_put(w->folio);
	iput(w->inode);
	kfree(w);
}

/*
 * A page of granule @data failed (memory_failure() never reaches the page
 * cache's error_remove_folio for pool memory: persist_alloc tells its
 * owners instead). Zapped at once, unless the invalidate lock is taken or
 * waited for, as it is for as long as a frozen file makes a fault wait
 * for the thaw: then from a work item, so that memory_failure(), which
 * holds a global mutex, never waits for a live update.
 */
static int kvm_gmem_persist_failure(struct notifier_block *nb, unsigned long pfn,
				    void *data)
{
	struct kvm_gmem_persist_failed *w;
	struct folio *folio = data;
	struct address_space *mapping;
	struct inode *inode = NULL;

	folio_lock(folio);
	mapping = folio_mapping(folio);
	if (mapping && mapping->a_ops == &kvm_gmem_persist_aops)
		inode = igrab(mapping->host);
	folio_unlock(folio);
	if (!inode)
		return NOTIFY_DONE;

	if (filemap_invalidate_trylock_shared(inode->i_mapping)) {
		kvm_gmem_persist_zap_failed(inode, folio);
		filemap_invalidate_unlock_shared(inode->i_mapping);
		iput(inode);
		return NOTIFY_OK;
	}
	w = kmalloc_obj(*w);
	if (!w) {
		/* No memory for the work: wait, as the page cache's hook does. */
		filemap_invalidate_lock_shared(inode->i_mapping);
		kvm_gmem_persist_zap_failed(inode, folio);
		filemap_invalidate_unlock_shared(inode->i_mapping);
		iput(inode);
		return NOTIFY_OK;
	}
	INIT_WORK(&w->work, kvm_gmem_persist_failed_work);
	w->inode = inode;
	folio_get(folio);
	w->folio = folio;
	queue_work(system_dfl_wq, &w->work);
	return NOTIFY_OK;
}

static struct notifier_block kvm_gmem_persist_failure_nb = {
	.notifier_call = kvm_gmem_persist_failure,
};

/* Never unregistered: KVM_GUEST_MEMFD_PERSIST needs kvm built in. */
static int __init kvm_gmem_persist_failure_init(void)
{
	return persist_alloc_register_failure_notifier(&kvm_gmem_persist_failure_nb);
}
late_initcall(kvm_gmem_persist_failure_init);

/**
 * kvm_gmem_persist_setup - give a new guest_memfd inode persistent backing
 * @inode:         the inode, with its size and flags and no memory yet
 * @vm_type:       type of the VM it is created for
 * @granule_size:  4 KiB, 2 MiB or 1 GiB; 0 for 4 KiB
 * @persist_flags: GUEST_MEMFD_PERSIST_* attributes
 *
 * A file handed over by the previous kernel is held to the rules of a
 * creation here: its description is not trusted to have followed them.
 *
 * Return: 0, -EINVAL for a bad granule, attribute or VM type, or an
 * attribute set that does not fit the inode's flags or size; -ENOMEM.
 */
int kvm_gmem_persist_setup(struct inode *inode, u32 vm_type, u64 granule_size,
			   u64 persist_flags)
{
	int order = kvm_gmem_persist_order(granule_size);
	struct kvm_gmem_persist *p;

	if (order < 0 || !kvm_gmem_persist_vm_type(vm_type) ||
	    kvm_gmem_persist_rules(GMEM_I(inode)->flags, i_size_read(inode), order,
				   persist_flags))
		return -EINVAL;

	p = kzalloc_obj(*p);
	if (!p)
		return -ENOMEM;

	mutex_init(&p->lock);
	init_waitqueue_head(&p->wait);
	xa_init(&p->granules);
	p->order = order;
	p->persist_flags = persist_flags;
	p->vm_type = vm_type;
	p->memcg = get_mem_cgroup_from_mm(NULL);
	p->alloc_flags = PERSIST_ALLOC_ZERO | PERSIST_ALLOC_ACCOUNT;
	if (persist_flags & GUEST_MEMFD_PERSIST_NO_DIRECT_MAP)
		p->alloc_flags |= PERSIST_ALLOC_NO_DIRECT_MAP;
	if (persist_flags & GUEST_MEMFD_PERSIST_HVO)
		p->alloc_flags |= PERSIST_ALLOC_HVO;

	inode->i_mapping->a_ops = &kvm_gmem_persist_aops;
	/* The unit of allocation, and of what a DMA mapping takes (stat, iommufd). */
	inode->i_blkbits = PAGE_SHIFT + order;
	GMEM_I(inode)->backing_data = p;
	GMEM_I(inode)->backing = &kvm_gmem_persist_backing;
	return 0;
}

/*
 * A granule being allocated: its slot is claimed, under the file's lock,
 * while the allocation (and the zeroing of the granule) runs without it.
 */
#define KVM_GMEM_PERSIST_CLAIM	xa_mk_value(0)

/*
 * Take a reference on the folio of granule @g: NULL if it is not
 * allocated, ERR_PTR(-EAGAIN) while another task allocates it.
 */
static struct folio *kvm_gmem_persist_lookup(struct kvm_gmem_persist *p,
					     unsigned long g)
{
	void *entry;

	xa_lock(&p->granules);
	entry = xa_load(&p->granules, g);
	if (xa_is_value(entry))
		entry = ERR_PTR(-EAGAIN);
	else if (entry)
		folio_get(entry);
	xa_unlock(&p->granules);
	return entry;
}

/*
 * Allocate by the memory policy @pol: its nodes first, from the node the
 * interleave policies pick for granule @g; then any node, unless bound.
 */
static struct folio *kvm_gmem_persist_alloc_mpol(struct kvm_gmem_persist *p,
						 struct mempolicy *pol,
						 unsigned long g)
{
	struct folio *folio = ERR_PTR(-ENOMEM);
	unsigned int i, weight;
	int nid;

	if (!pol || pol->mode == MPOL_LOCAL || pol->mode == MPOL_DEFAULT)
		return persist_alloc_folio(NUMA_NO_NODE, p->order, p->alloc_flags);

	weight = nodes_weight(pol->nodes);
	nid = first_node(pol->nodes);
	if (weight && (pol->mode == MPOL_INTERLEAVE ||
		       pol->mode == MPOL_WEIGHTED_INTERLEAVE)) {
		for (i = g % weight; i; i--)
			nid = next_node(nid, pol->nodes);
	}

	for (i = 0; i < weight; i++) {
		folio = persist_alloc_folio(nid, p->order, p->alloc_flags);
		if (!IS_ERR(folio) || PTR_ERR(folio) != -ENOMEM)
			return folio;
		nid = next_node_in(nid, pol->nodes);
	}

	if (pol->mode == MPOL_BIND)
		return folio;
	return persist_alloc_folio(NUMA_NO_NODE, p->order, p->alloc_flags);
}

/*
 * Put granule @g, @folio, in the page cache of @inode, where the standard
 * lookups, host mappings and pins find it. No LRU and no second charge:
 * the folio is pool memory, charged by persist_alloc, and keeps the
 * reference of the file's xarray, so the page cache never frees it.
 */
static int kvm_gmem_persist_cache_add(struct inode *inode, struct kvm_gmem_persist *p,
				      unsigned long g, struct folio *folio)
{
	int err;

	folio_lock(folio);
	err = __filemap_add_folio(inode->i_mapping, folio, g << p->order, GFP_KERNEL, NULL);
	folio_unlock(folio);
	return err;
}

/*
 * Take @folio out of the page cache; the caller has unmapped it from the
 * host under the invalidate lock, so that no fault maps it again.
 */
static void kvm_gmem_persist_cache_del(struct folio *folio)
{
	folio_lock(folio);
	if (WARN_ON_ONCE(folio_mapped(folio)))
		unmap_mapping_pages(folio->mapping, folio->index, folio_nr_pages(folio), false);
	filemap_remove_folio(folio);
	folio_unlock(folio);
}

/*
 * Put @folio in as granule @g, in the page cache and in the xarray (which
 * takes over its reference). Called with the file's lock held.
 */
static int kvm_gmem_persist_insert(struct inode *inode, struct kvm_gmem_persist *p,
				   unsigned long g, struct folio *folio)
{
	int err;

	folio_mark_uptodate(folio);
	err = kvm_gmem_persist_cache_add(inode, p, g, folio);
	if (err)
		return err;
	/*
	 * Last, as nothing can fail after it: KVM and host faults find the
	 * granule through the xarray, and one that saw it may map it.
	 */
	err = xa_insert(&p->granules, g, folio, GFP_KERNEL_ACCOUNT);
	if (err) {
		kvm_gmem_persist_cache_del(folio);
		return err;
	}
	p->nr_granules++;
	return 0;
}

static struct folio *kvm_gmem_persist_alloc_policy(struct inode *inode,
						   struct kvm_gmem_persist *p,
						   unsigned long g)
{
	struct mem_cgroup *memcg;
	struct mempolicy *pol;
	struct folio *folio;

	pol = mpol_shared_policy_lookup(&GMEM_I(inode)->policy, g << p->order);
	/* Charged to the file's creator, whoever faults the granule in. */
	memcg = set_active_memcg(p->memcg);
	folio = kvm_gmem_persist_alloc_mpol(p, pol ?: get_task_policy(current), g);
	set_active_memcg(memcg);
	mpol_cond_put(pol);
	return folio;
}

/*
 * Allocate granule @g, which was not: its slot is claimed under the file's
 * lock, the granule allocated and zeroed without it (so that faults on
 * other granules go on meanwhile) and put in if the claim still holds. A
 * granule the retrieve claimed is adopted instead, under the lock.
 * Returns the folio with a reference for the caller; NULL if someone else
 * filled the slot first or a punch-hole took the claim away (look again);
 * ERR_PTR(-EBUSY) while frozen; ERR_PTR(-ENOMEM).
 */
static struct folio *kvm_gmem_persist_alloc(struct inode *inode,
					    struct kvm_gmem_persist *p,
					    unsigned long g)
{
	struct folio *folio;
	int err;

	mutex_lock(&p->lock);
	if (p->frozen) {
		mutex_unlock(&p->lock);
		return ERR_PTR(-EBUSY);
	}
	/* Handed over and claimed by the retrieve: its first use adopts it. */
	folio = kvm_gmem_persist_lazy_adopt(inode, g);
	if (folio) {
		mutex_unlock(&p->lock);
		return folio;
	}
	err = xa_insert(&p->granules, g, KVM_GMEM_PERSIST_CLAIM, GFP_KERNEL_ACCOUNT);
	mutex_unlock(&p->lock);
	/* Filled or claimed since the lookup. */
	if (err == -EBUSY)
		return NULL;
	if (err)
		return ERR_PTR(err);

	folio = kvm_gmem_persist_alloc_policy(inode, p, g);

	mutex_lock(&p->lock);
	if (xa_load(&p->granules, g) != KVM_GMEM_PERSIST_CLAIM) {
		/* Punched out while it was allocated. */
		err = 0;
	} else {
		/* A freeze does not see claims: what was not in it waits. */
		if (IS_ERR(folio)) {
			err = PTR_ERR(folio);
		} else if (p->frozen) {
			err = -EBUSY;
		} else {
			folio_mark_uptodate(folio);
			err = kvm_gmem_persist_cache_add(inode, p, g, folio);
		}
		if (!err) {
			folio_get(folio);
			xa_store(&p->granules, g, folio, GFP_KERNEL_ACCOUNT);
			p->nr_granules++;
			mutex_unlock(&p->lock);
			wake_up_all(&p->wait);
			return folio;
		}
		xa_erase(&p->granules, g);
	}
	mutex_unlock(&p->lock);
	wake_up_all(&p->wait);
	if (!IS_ERR(folio))
		WARN_ON_ONCE(persist_free_folio(folio));
	return err ? ERR_PTR(err) : NULL;
}

/* Wait until @p is not frozen: 0, or -EINTR if a signal came first. */
int kvm_gmem_persist_wait_thaw(struct kvm_gmem_persist *p, bool killable)
{
	if (killable)
		return wait_event_killable(p->wait, !READ_ONCE(p->frozen)) ? -EINTR : 0;
	return wait_event_interruptible(p->wait, !READ_ONCE(p->frozen)) ? -EINTR : 0;
}

/* Wait until granule @g is not being allocated by another task. */
static int kvm_gmem_persist_wait_claim(struct kvm_gmem_persist *p, unsigned long g)
{
	return wait_event_killable(p->wait, xa_load(&p->granules, g) !=
				   KVM_GMEM_PERSIST_CLAIM) ? -EINTR : 0;
}

/**
 * kvm_gmem_persist_thaw - let what waits for a frozen file go on
 * @inode: a persistent guest_memfd inode, unfrozen under its lock
 */
void kvm_gmem_persist_thaw(struct inode *inode)
{
	wake_up_all(&kvm_gmem_persist(inode)->wait);
}

/*
 * The locked folio of granule @g, allocated if need be; -EBUSY if that
 * needs a granule while frozen.
 */
struct folio *kvm_gmem_persist_try_folio(struct inode *inode, unsigned long g)
{
	struct kvm_gmem_persist *p = kvm_gmem_persist(inode);
	struct folio *folio;
	int err;

	for (;;) {
		folio = kvm_gmem_persist_lookup(p, g);
		if (folio == ERR_PTR(-EAGAIN)) {
			err = kvm_gmem_persist_wait_claim(p, g);
			if (err)
				return ERR_PTR(err);
			continue;
		}
		if (!folio) {
			folio = kvm_gmem_persist_alloc(inode, p, g);
			if (!folio)
				continue;
			if (IS_ERR(folio))
				return folio;
		}

		folio_lock(folio);
		if (xa_load(&p->granules, g) == folio)
			return folio;
		/* Punched out meanwhile. */
		folio_unlock(folio);
		folio_put(folio);
	}
}

/**
 * kvm_gmem_persist_get_folio - the folio of a page index, allocated if need be
 * @inode: a persistent guest_memfd inode
 * @index: page index in the file
 *
 * A granule to be allocated while the file is frozen waits for the thaw.
 * Callers may hold the invalidate lock, not the file's own lock.
 *
 * Return: the locked folio of the granule holding @index, with a reference
 * for the caller; ERR_PTR(-ENOMEM) if the pool has no granule left,
 * ERR_PTR(-EINTR) if a signal came while waiting for the thaw.
 */
struct folio *kvm_gmem_persist_get_folio(struct inode *inode, pgoff_t index)
{
	struct kvm_gmem_persist *p = kvm_gmem_persist(inode);
	struct folio *folio;
	int err;

	for (;;) {
		folio = kvm_gmem_persist_try_folio(inode, index >> p->order);
		if (folio != ERR_PTR(-EBUSY))
			return folio;
		err = kvm_gmem_persist_wait_thaw(p, false);
		if (err)
			return ERR_PTR(err);
	}
}

/*
 * Granules taken out of their file while someone else still holds a
 * reference: a pin of a host mapping (io_uring fixed buffers, vhost, VFIO)
 * lasts as long as its user wants it to. They go back to the pool once the
 * last reference is gone, tried again every second by a work item: the
 * pool waits for them, no task does. One not freed before a kexec is not
 * preserved, and the next kernel scrubs it.
 */
static LIST_HEAD(kvm_gmem_persist_orphans);
static DEFINE_SPINLOCK(kvm_gmem_persist_orphans_lock);
static void kvm_gmem_persist_reap(struct work_struct *work);
static DECLARE_DELAYED_WORK(kvm_gmem_persist_reaper, kvm_gmem_persist_reap);

/* A reference is most often transient: the reaper first looks at once. */
static void kvm_gmem_persist_orphan(struct folio *folio)
{
	spin_lock(&kvm_gmem_persist_orphans_lock);
	list_add_tail(&folio->lru, &kvm_gmem_persist_orphans);
	spin_unlock(&kvm_gmem_persist_orphans_lock);
	mod_delayed_work(system_dfl_wq, &kvm_gmem_persist_reaper, 1);
}

static void kvm_gmem_persist_reap(struct work_struct *work)
{
	struct folio *folio, *next;
	LIST_HEAD(busy);
	LIST_HEAD(list);
	int err;

	spin_lock(&kvm_gmem_persist_orphans_lock);
	list_splice_init(&kvm_gmem_persist_orphans, &list);
	spin_unlock(&kvm_gmem_persist_orphans_lock);

	list_for_each_entry_safe(folio, next, &list, lru) {
		list_del(&folio->lru);
		err = persist_free_folio(folio);
		/* Still referenced, or an HVO granule without its struct pages yet. */
		if (err == -EBUSY || err == -ENOMEM)
			list_add_tail(&folio->lru, &busy);
		else if (err)
			pr_warn_ratelimited("kvm_gmem_persist: granule at pfn %#lx not freed: %pe\n",
					    folio_pfn(folio), ERR_PTR(err));
		cond_resched();
	}
	if (list_empty(&busy))
		return;
	spin_lock(&kvm_gmem_persist_orphans_lock);
	list_splice_tail(&busy, &kvm_gmem_persist_orphans);
	spin_unlock(&kvm_gmem_persist_orphans_lock);
	queue_delayed_work(system_dfl_wq, &kvm_gmem_persist_reaper, HZ);
}

/*
 * Give back to the pool a granule taken out of its file: out of the page
 * cache and unmapped, so that no new reference can be taken through the
 * file. Called without the file's locks; never waits. A folio someone else
 * still holds (a vCPU fault in flight, a pfn walker, a pin) is left to the
 * reaper. Freeing an HVO granule needs memory for its struct pages: should
 * that fail, -ENOMEM, and the granule is still allocated and the caller's.
 */
static int kvm_gmem_persist_free(struct folio *folio)
{
	int err = persist_free_folio(folio);

	if (err != -EBUSY)
		return err;
	kvm_gmem_persist_orphan(folio);
	return 0;
}

/**
 * kvm_gmem_persist_discard - give a granule out of every file back to the pool
 * @folio: a granule of persist_alloc no file holds any more
 *
 * Freed now, or by the reaper once the last reference is gone (or once its
 * struct pages can be had for an HVO granule). Never fails, never waits.
 */
void kvm_gmem_persist_discard(struct folio *folio)
{
	if (kvm_gmem_persist_free(folio))
		kvm_gmem_persist_orphan(folio);
}

/* Free the persistent backing of a dying inode, which has no file left. */
static void kvm_gmem_persist_destroy(struct inode *inode)
{
	struct kvm_gmem_persist *p = kvm_gmem_persist(inode);
	struct folio *folio;
	unsigned long g;

	WARN_ON_ONCE(p->frozen);
	kvm_gmem_persist_lazy_drop(inode, false);
	/* The page cache was emptied when the inode was evicted. */
	xa_for_each(&p->granules, g, folio) {
		if (WARN_ON_ONCE(xa_is_value(folio)))
			continue;
		kvm_gmem_persist_discard(folio);
		cond_resched();
	}
	xa_destroy(&p->granules);
	mem_cgroup_put(p->memcg);
	GMEM_I(inode)->backing = NULL;
	GMEM_I(inode)->backing_data = NULL;
	kfree(p);
}

/**
 * kvm_gmem_persist_check_range - check a fallocate() range of a file
 * @inode:  a persistent guest_memfd inode
 * @mode:   the fallocate() mode
 * @offset: start of the range in bytes, page aligned
 * @len:    its length in bytes, page aligned
 *
 * Allocation is by whole granules; a punch-hole may cover part of one,
 * which is zeroed there and kept.
 *
 * Return: 0; -EINVAL for an allocation not made of whole granules.
 */
int kvm_gmem_persist_check_range(struct inode *inode, int mode, loff_t offset, loff_t len)
{
	struct kvm_gmem_persist *p = kvm_gmem_persist(inode);
	loff_t granule = PAGE_SIZE << p->order;

	if (mode & FALLOC_FL_PUNCH_HOLE)
		return 0;
	if (!IS_ALIGNED(offset, granule) || !IS_ALIGNED(len, granule))
		return -EINVAL;
	return 0;
}

/* Zero @nr pages from page @first of @folio, in the direct map or not. */
static int kvm_gmem_persist_zero(struct kvm_gmem_persist *p, struct folio *folio,
				 unsigned long first, unsigned long nr)
{
	unsigned long i, n;
	struct page **pages;
	void *addr;

	/* Writing a poisoned line is a machine check: not for a punch-hole. */
	if (folio_test_hwpoison(folio))
		return -EHWPOISON;
	if (!(p->alloc_flags & PERSIST_ALLOC_NO_DIRECT_MAP)) {
		folio_zero_range(folio, first << PAGE_SHIFT, nr << PAGE_SHIFT);
		return 0;
	}

	/* Out of the direct map: through a mapping of its own, 2 MiB at a time. */
	pages = kmalloc_array(PTRS_PER_PMD, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return -ENOMEM;
	for (; nr; first += n, nr -= n) {
		n = min_t(unsigned long, nr, PTRS_PER_PMD);
		for (i = 0; i < n; i++)
			pages[i] = folio_page(folio, first + i);
		addr = vmap(pages, n, VM_MAP, PAGE_KERNEL);
		if (!addr)
			break;
		memset(addr, 0, n << PAGE_SHIFT);
		vunmap(addr);
		cond_resched();
	}
	kfree(pages);
	/* No alias of private memory left in a TLB once this returns. */
	vm_unmap_aliases();
	return nr ? -ENOMEM : 0;
}

/*
 * Zero pages [@start, @end) inside one granule and keep it: KVM and host
 * mappings of them are invalidated first, so that they fault again after.
 */
static int kvm_gmem_persist_zero_part(struct inode *inode, pgoff_t start, pgoff_t end)
{
	struct kvm_gmem_persist *p = kvm_gmem_persist(inode);
	struct address_space *mapping = inode->i_mapping;
	struct folio *folio;
	int err = 0;

	filemap_invalidate_lock(mapping);
	/* Under the file's lock: a KVM fault adopts a claimed granule with it only. */
	mutex_lock(&p->lock);
	folio = kvm_gmem_persist_lookup(p, start >> p->order);
	/* Claimed by the retrieve: its other pages are the guest's. */
	if (!folio)
		folio = kvm_gmem_persist_lazy_adopt(inode, start >> p->order);
	mutex_unlock(&p->lock);
	if (IS_ERR(folio) && folio != ERR_PTR(-EAGAIN)) {
		filemap_invalidate_unlock(mapping);
		return PTR_ERR(folio);
	}
	if (IS_ERR_OR_NULL(folio)) {
		/* Not allocated (or being allocated, zeroed): nothing to zero. */
		filemap_invalidate_unlock(mapping);
		return 0;
	}
	kvm_gmem_invalidate_start(inode, start, end);
	unmap_mapping_pages(mapping, start, end - start, false);
	err = kvm_gmem_persist_zero(p, folio, start - folio->index, end - start);
	kvm_gmem_invalidate_end(inode, start, end);
	filemap_invalidate_unlock(mapping);
	folio_put(folio);
	return err;
}

/*
 * Take the granules of [@start, @end) out of the file, up to a batch of
 * them, with the file's locks held: invalidated for KVM and host mappings,
 * so no reference can be taken any more. Claims of granules being
 * allocated are taken away too. Returns where the next batch starts.
 */
static pgoff_t kvm_gmem_persist_take(struct inode *inode, pgoff_t start, pgoff_t end,
				     struct folio_batch *batch)
{
	struct kvm_gmem_persist *p = kvm_gmem_persist(inode);
	unsigned long g, last = (end >> p->order) - 1;
	pgoff_t stop = end;
	void *entry;

	xa_for_each_range(&p->granules, g, entry, start >> p->order, last) {
		if (!folio_batch_space(batch)) {
			stop = g << p->order;
			break;
		}
		if (!xa_is_value(entry))
			folio_batch_add(batch, entry);
	}

	kvm_gmem_invalidate_start(inode, start, stop);
	unmap_mapping_pages(inode->i_mapping, start, stop - start, false);
	xa_for_each_range(&p->granules, g, entry, start >> p->order,
			  (stop >> p->order) - 1) {
		xa_erase(&p->granules, g);
		if (xa_is_value(entry))
			continue;
		kvm_gmem_persist_cache_del(entry);
		p->nr_granules--;
	}
	kvm_gmem_invalidate_end(inode, start, stop);
	return stop;
}

/**
 * kvm_gmem_persist_punch_hole - free the granules of a page range
 * @inode: a persistent guest_memfd inode
 * @start: first page index, granule aligned
 * @end:   page index past the range, granule aligned
 *
 * Whole granules are freed; parts of granules at either end of the range
 * are zeroed and the granules kept (a private to shared conversion of part
 * of a huge granule). Freeing waits for the thaw while the file is frozen
 * for a live update; the granules are taken out under the file's locks, a
 * batch at a time, and freed (waiting for transient references) without
 * them.
 *
 * Granules a retrieve claimed and nothing used yet go back to the pool
 * unused (see "Lazy adoption of retrieved granules"); a part of one is
 * adopted first, then zeroed.
 *
 * Return: 0; -EINTR if a signal came while waiting for the thaw; -ENOMEM
 * if an HVO granule could not get its struct pages back (it stays in the
 * file if its place is still free) or a part could not be mapped to be
 * zeroed; -EHWPOISON for a part of a granule with a failed page; the
 * error of persist_alloc_restore() for a claimed granule that could not
 * be taken to be freed or zeroed (it stays claimed).
 */
long kvm_gmem_persist_punch_hole(struct inode *inode, pgoff_t start, pgoff_t end)
{
	struct kvm_gmem_persist *p = kvm_gmem_persist(inode);
	struct address_space *mapping = inode->i_mapping;
	pgoff_t first = round_up(start, 1UL << p->order);
	pgoff_t last = round_down(end, 1UL << p->order);
	struct folio_batch batch, unused;
	unsigned long g, stop;
	long ret = 0;
	unsigned int i;

	/* Parts of granules at either end: zeroed, the granules kept. */
	if (first > last)
		return kvm_gmem_persist_zero_part(inode, start, end);
	if (start < first)
		ret = kvm_gmem_persist_zero_part(inode, start, first);
	if (!ret && last < end)
		ret = kvm_gmem_persist_zero_part(inode, last, end);
	start = first;
	end = last;

	folio_batch_init(&batch);
	folio_batch_init(&unused);
	while (start < end && !ret) {
		filemap_invalidate_lock(mapping);
		mutex_lock(&p->lock);
		if (p->frozen) {
			mutex_unlock(&p->lock);
			filemap_invalidate_unlock(mapping);
			ret = kvm_gmem_persist_wait_thaw(p, false);
			continue;
		}
		g = start >> p->order;
		start = kvm_gmem_persist_take(inode, start, end, &batch);
		/* Claimed, never used: nothing maps them; freed below. */
		stop = start >> p->order;
		ret = kvm_gmem_persist_lazy_release(inode, g, &stop, &unused);
		start = min_t(pgoff_t, start, stop << p->order);
		mutex_unlock(&p->lock);
		filemap_invalidate_unlock(mapping);
		/* Claims taken away: their allocators look again. */
		wake_up_all(&p->wait);

		for (i = 0; i < folio_batch_count(&unused); i++)
			kvm_gmem_persist_discard(unused.folios[i]);
		folio_batch_reinit(&unused);

		for (i = 0; i < folio_batch_count(&batch); i++) {
			struct folio *folio = batch.folios[i];

			if (!kvm_gmem_persist_free(folio))
				continue;
			ret = -ENOMEM;
			mutex_lock(&p->lock);
			/* Its place taken meanwhile: the reaper frees it later. */
			if (kvm_gmem_persist_insert(inode, p, folio->index >> p->order, folio))
				kvm_gmem_persist_orphan(folio);
			mutex_unlock(&p->lock);
		}
		folio_batch_reinit(&batch);
		cond_resched();
	}
	return ret;
}

/**
 * kvm_gmem_persist_max_order - largest mapping KVM may use for a granule
 * @slot:  the memslot the fault is in
 * @folio: the granule's folio
 *
 * Return: the folio's order, lowered while guest frame numbers and file
 * indexes of @slot are not congruent modulo the mapping size.
 */
int kvm_gmem_persist_max_order(struct kvm_memory_slot *slot, struct folio *folio)
{
	unsigned long skew = slot->base_gfn ^ slot->gmem.pgoff;
	int order = folio_order(folio);

	while (order && (skew & ((1UL << order) - 1)))
		order = order > PERSIST_ORDER_2M ? PERSIST_ORDER_2M : 0;
	return order;
}

/* What guest_memfd asks of the memory of a persistent file. */
const struct kvm_gmem_backing kvm_gmem_persist_backing = {
	.get_folio		= kvm_gmem_persist_get_folio,
	.max_order		= kvm_gmem_persist_max_order,
	.check_range		= kvm_gmem_persist_check_range,
	.punch_hole		= kvm_gmem_persist_punch_hole,
	.mmap			= kvm_gmem_persist_mmap,
	.pin_folio		= kvm_gmem_persist_pin_folio,
#ifdef CONFIG_TRANSPARENT_HUGEPAGE
	.get_unmapped_area	= kvm_gmem_persist_get_unmapped_area,
#endif
	.destroy		= kvm_gmem_persist_destroy,
};

/**
 * kvm_gmem_persist_pinned - whether some granule of a file may be pinned
 * @inode: a persistent guest_memfd inode
 *
 * Pins (io_uring fixed buffers, vhost, VFIO) reach the memory without a
 * mapping or a file of it: a move must not leave them to the old VMM.
 *
 * Return: true if folio_maybe_dma_pinned() holds for one of its granules.
 */
bool kvm_gmem_persist_pinned(struct inode *inode)
{
	struct kvm_gmem_persist *p = kvm_gmem_persist(inode);
	struct folio *folio;
	unsigned long g;
	bool pinned = false;

	mutex_lock(&p->lock);
	xa_for_each(&p->granules, g, folio) {
		if (!xa_is_value(folio) && folio_maybe_dma_pinned(folio)) {
			pinned = true;
			break;
		}
	}
	mutex_unlock(&p->lock);
	return pinned;
}

/**
 * kvm_gmem_persist_adopt - put a restored granule into a retrieved file
 * @inode: a persistent guest_memfd inode being rebuilt
 * @index: page index of the granule, aligned to it
 * @folio: the folio persist_alloc restored, of the file's granule order
 *
 * The granule must have the attributes of the file: a description that
 * puts memory of the direct map into a NO_DIRECT_MAP file, or the other
 * way round, is refused here. It is charged to the file's memory cgroup,
 * the retrieving task's.
 *
 * Return: 0 (the file owns @folio); -EINVAL for a misplaced or wrong-sized
 * granule or one whose attributes are not the file's, -EEXIST if the index
 * is taken, -ENOMEM (the memory cgroup's limit included). On failure the
 * caller still owns @folio, and persist_alloc_unrestore() takes back with
 * it any charge made.
 */
int kvm_gmem_persist_adopt(struct inode *inode, pgoff_t index, struct folio *folio)
{
	struct kvm_gmem_persist *p = kvm_gmem_persist(inode);
	unsigned long attrs = p->alloc_flags & (PERSIST_ALLOC_NO_DIRECT_MAP |
						PERSIST_ALLOC_HVO);

	struct mem_cgroup *memcg;
	int err;

	if (folio_order(folio) != p->order || !IS_ALIGNED(index, 1UL << p->order) ||
	    index >= i_size_read(inode) >> PAGE_SHIFT ||
	    persist_folio_flags(folio) != attrs)
		return -EINVAL;
	memcg = set_active_memcg(p->memcg);
	err = persist_folio_charge(folio);
	set_active_memcg(memcg);
	return err ?: kvm_gmem_persist_insert(inode, p, index >> p->order, folio);
}

/**
 * kvm_gmem_persist_unrestore - hand a restored granule back as pending
 * @folio: a granule persist_alloc_restore() gave a retrieve
 * @owner: the key it was restored with
 *
 * A reference held for a moment elsewhere (a memory failure being handled,
 * a pfn walker) makes persist_alloc refuse: that is waited out, a bounded
 * while. Past it the granule stays with the file, to be zeroed and freed.
 *
 * Return: 0, or the error of persist_alloc_unrestore().
 */
int kvm_gmem_persist_unrestore(struct folio *folio, u64 owner)
{
	int tries, err;

	for (tries = 0; tries < 50; tries++) {
		err = persist_alloc_unrestore(folio, owner);
		if (err != -EBUSY)
			break;
		msleep(20);
	}
	if (err)
		pr_warn_ratelimited("kvm_gmem_persist: granule at pfn %#lx not handed back for a retried retrieve: %pe\n",
				    folio_pfn(folio), ERR_PTR(err));
	return err;
}

/**
 * kvm_gmem_persist_disown - give back what a failed retrieve adopted
 * @inode: a persistent guest_memfd inode being rebuilt, never exposed
 * @owner: the key its granules were restored with
 *
 * Every granule, adopted or only claimed, leaves the file and becomes
 * pending again in persist_alloc, its memory untouched, for a later
 * retrieve to take or a finish to release. A granule persist_alloc cannot
 * take back stays in the file, to be zeroed and freed with it.
 */
void kvm_gmem_persist_disown(struct inode *inode, u64 owner)
{
	struct kvm_gmem_persist *p = kvm_gmem_persist(inode);
	struct folio *folio;
	unsigned long g;

	if (!p)
		return;
	xa_for_each(&p->granules, g, folio) {
		if (WARN_ON_ONCE(xa_is_value(folio)))
			continue;
		/* The file's reference is then the only one: the inode was never seen. */
		kvm_gmem_persist_cache_del(folio);
		if (kvm_gmem_persist_unrestore(folio, owner))
			continue;
		xa_erase(&p->granules, g);
		p->nr_granules--;
		cond_resched();
	}
	/* Last: the claims of the runs cover the granules handed back above. */
	kvm_gmem_persist_lazy_drop(inode, true);
}
