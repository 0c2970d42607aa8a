// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc: allocation and free of persistent folios.
 */

/**
 * DOC: persist_alloc
 *
 * persist_alloc is one allocator of persistent memory for many consumers
 * (guest_memfd, IOMMU page tables, anything that must survive a kexec).
 * Memory comes from per-node pools of 1 GiB blocks (see "Pools") and is
 * handed out as folios of order 0, 9 or 18 (4 KiB, 2 MiB, 1 GiB) with
 * attributes chosen by the caller:
 *
 * ``PERSIST_ALLOC_NO_DIRECT_MAP``
 *   The folio is removed from the kernel direct map while it is allocated,
 *   as secretmem does, with the TLB flushed; on free it is mapped again and
 *   zeroed before the granule can be handed out again.
 * ``PERSIST_ALLOC_ZERO``
 *   The folio is zeroed before it is handed out.
 * ``PERSIST_ALLOC_HVO``
 *   For 2 MiB and 1 GiB folios: the vmemmap of the tail struct pages is
 *   freed, as HugeTLB does; restored when the folio is freed.
 *
 * Every allocated granule is recorded as an extent (pfn, order, flags),
 * which is what a free checks: a folio that is not from a pool, or not an
 * allocated granule of that exact order, is refused with a warning and
 * nothing changes.
 */

#define pr_fmt(fmt) "persist_alloc: " fmt

#include <linux/export.h>
#include <linux/highmem.h>
#include <linux/mempolicy.h>
#include <linux/mm.h>
#include <linux/slab.h>

#include "../mm_init.h"
#include "internal.h"

DECLARE_FAULT_ATTR(persist_fault_attr);
static char *fail_persist_alloc_arg __initdata;

static int __init setup_fail_persist_alloc(char *str)
{
	fail_persist_alloc_arg = str;
	return 1;
}
__setup("fail_persist_alloc=", setup_fail_persist_alloc);

/*
 * Applied from an initcall, not while the command line is parsed:
 * setup_fault_attr() seeds its random state once, through a work item,
 * and workqueues are not up that early. Early enough for adoption.
 */
static int __init persist_fault_init(void)
{
	if (fail_persist_alloc_arg)
		setup_fault_attr(&persist_fault_attr, fail_persist_alloc_arg);
	return 0;
}
early_initcall(persist_fault_init);

#define CREATE_TRACE_POINTS
#include <trace/events/persist_alloc.h>

/* Allocated granules by first pfn. */
DEFINE_XARRAY(persist_extents);
/*
 * The 2 MiB and 1 GiB ones again, by granule number (pfn >> order), so
 * that a run of them is a run of indexes: a walk of a run steps from one
 * slot to the next instead of looking up each from the root.
 */
static DEFINE_XARRAY(persist_extents_2m);
static DEFINE_XARRAY(persist_extents_1g);

/**
 * persist_extent_index - the xarray that holds a run of extents of @order
 * @order: PERSIST_ORDER_*
 *
 * Return: persist_extents for 4 KiB granules, indexed by pfn; for larger
 * ones their own, indexed by pfn >> @order.
 */
struct xarray *persist_extent_index(unsigned int order)
{
	if (order == PERSIST_ORDER_2M)
		return &persist_extents_2m;
	if (order == PERSIST_ORDER_1G)
		return &persist_extents_1g;
	return &persist_extents;
}

/*
 * Record @ext in persist_extents and in the index of its order. Its slot
 * in the index is reserved first: once it is in persist_extents, where
 * memory failures find it, nothing can fail any more.
 */
int persist_extent_insert(struct persist_extent *ext)
{
	struct xarray *index = persist_extent_index(ext->order);
	unsigned long g = ext->pfn >> ext->order;
	int err;

	if (index == &persist_extents)
		return xa_insert(&persist_extents, ext->pfn, ext, GFP_KERNEL);
	err = xa_reserve(index, g, GFP_KERNEL);
	if (err)
		return err;
	err = xa_insert(&persist_extents, ext->pfn, ext, GFP_KERNEL);
	if (err) {
		xa_release(index, g);
		return err;
	}
	/* Into the reserved slot: allocates nothing. */
	xa_store(index, g, ext, GFP_KERNEL);
	return 0;
}

/* Undo persist_extent_insert(). */
void persist_extent_erase(struct persist_extent *ext)
{
	struct xarray *index = persist_extent_index(ext->order);

	xa_erase(&persist_extents, ext->pfn);
	if (index != &persist_extents)
		xa_erase(index, ext->pfn >> ext->order);
}

/* Serializes changes of an extent's state: free, preserve, restore, claim. */
DEFINE_MUTEX(persist_state_lock);

/* Attribute counters of @pool for a granule coming (@sign 1) or going (-1). */
void persist_account(struct persist_pool *pool, unsigned int order, unsigned long flags,
		     long sign)
{
	spin_lock(&pool->lock);
	if (flags & PERSIST_ALLOC_NO_DIRECT_MAP)
		pool->no_direct_map_pages += sign * (1L << order);
	if (flags & PERSIST_ALLOC_HVO)
		pool->vmemmap_saved += sign * (long)persist_hvo_saved(order);
	spin_unlock(&pool->lock);
}

/* Attribute counters of @pool for a granule, under its lock. */
void persist_account_locked(struct persist_pool *pool, unsigned int order,
			    unsigned long flags, long sign)
{
	lockdep_assert_held(&pool->lock);
	pool->allocated[persist_order_granule(order)] += sign;
	if (flags & PERSIST_ALLOC_NO_DIRECT_MAP)
		pool->no_direct_map_pages += sign * (1L << order);
	if (flags & PERSIST_ALLOC_HVO)
		pool->vmemmap_saved += sign * (long)persist_hvo_saved(order);
}

/*
 * Take a granule from @pool and count it with its attributes @flags, in one
 * round trip of the pool lock; the granule is scrubbed where a previous
 * kernel may have left data in it. Returns its physical address, or 0 if
 * the pool has none (or the scrub could not map it back, which leaves the
 * pool as it was).
 */
static phys_addr_t pool_take(struct persist_pool *pool, unsigned int order,
			     unsigned long flags, struct persist_block **blkp)
{
	struct persist_scrub scrub;
	struct persist_block *blk;
	phys_addr_t phys = 0;
	long idx = -ENOSPC;

	spin_lock(&pool->lock);
	blk = persist_pool_pick(pool, order);
	if (blk)
		idx = persist_block_alloc(blk, order, true, &scrub);
	/* A block on a list that cannot serve it: the lists are wrong. */
	if (!WARN_ON_ONCE(blk && idx < 0) && idx >= 0) {
		phys = blk->base + ((phys_addr_t)idx << PAGE_SHIFT);
		*blkp = blk;
		persist_account_locked(pool, order, flags, 1);
	}
	spin_unlock(&pool->lock);
	if (!phys)
		return 0;
	/* The granule is ours: nobody else sees it while it is zeroed. */
	if (persist_scrub(blk, idx, order, &scrub)) {
		spin_lock(&pool->lock);
		persist_scrub_undo(blk, &scrub);
		spin_unlock(&pool->lock);
		persist_pool_put(blk, PHYS_PFN(phys), order, flags);
		return 0;
	}
	return phys;
}

/*
 * Give a granule back to its block and uncount it. A page that failed
 * while the granule was in nobody's hands stays behind, quarantined:
 * either this sees it recorded, or the memory failure handler, which waits
 * while a granule is on its way (see hwpoison.c), finds the page free and
 * takes it.
 */
void persist_pool_put(struct persist_block *blk, unsigned long pfn, unsigned int order,
		      unsigned long flags)
{
	struct persist_pool *pool = blk->pool;
	unsigned long idx = pfn - PHYS_PFN(blk->base);

	if (unlikely(persist_hwpoison_in(pfn, 1UL << order))) {
		/* The quarantine moves the granule's allocated count itself. */
		persist_account(pool, order, flags, -1);
		mutex_lock(&persist_state_lock);
		persist_hwpoison_put(blk, pfn, order);
		mutex_unlock(&persist_state_lock);
		return;
	}
	spin_lock(&pool->lock);
	if (!WARN_ON_ONCE(persist_block_free(blk, idx, order)))
		persist_account_locked(pool, order, flags, -1);
	spin_unlock(&pool->lock);
}

/* Move @ext's pages into (@sign 1) or out of (-1) one of its pool's counters. */
void persist_account_state(struct persist_extent *ext, unsigned long *counter, long sign)
{
	struct persist_pool *pool = ext->blk->pool;

	spin_lock(&pool->lock);
	*counter += sign * (1L << ext->order);
	spin_unlock(&pool->lock);
}

/*
 * Free granules are single pages with refcount 1 (their boot state). Make
 * a folio of @order out of them.
 */
struct folio *persist_granule_to_folio(unsigned long pfn, unsigned int order)
{
	struct page *page = pfn_to_page(pfn);
	unsigned long i;

	if (order) {
		for (i = 1; i < (1UL << order); i++)
			set_page_count(page + i, 0);
		prep_compound_page(page, order);
	}
	return page_folio(page);
}

/* And back: single pages with refcount 1. */
void persist_folio_to_granule(struct folio *folio)
{
	unsigned long pfn = folio_pfn(folio), i, nr = folio_nr_pages(folio);
	int nid = folio_nid(folio);
	enum zone_type zid = folio_zonenum(folio);

	for (i = 0; i < nr; i++) {
		__init_single_page(pfn_to_page(pfn + i), pfn + i, zid, nid);
		if (!(i & 511))
			cond_resched();
	}
}

void persist_zero_pages(unsigned long pfn, unsigned long nr)
{
	unsigned long i;

	for (i = 0; i < nr; i++) {
		clear_highpage(pfn_to_page(pfn + i));
		if (!(i & 511))
			cond_resched();
	}
}

static void zero_folio(struct folio *folio)
{
	persist_zero_pages(folio_pfn(folio), folio_nr_pages(folio));
}

static struct folio *alloc_on_node(int nid, unsigned int order, unsigned long flags,
				   struct persist_extent *ext)
{
	struct persist_pool *pool = READ_ONCE(persist_pools[nid]);
	struct folio *folio = NULL;
	struct persist_block *blk;
	bool zeroed = false;
	phys_addr_t phys = 0;
	int err;

	if (!pool)
		return ERR_PTR(-ENOMEM);
	/* A freed 1 GiB HVO folio is kept as it is for the next (see hvo_keep.c). */
	if (order == PERSIST_ORDER_1G && (flags & PERSIST_ALLOC_HVO))
		folio = persist_hvo_take_kept(pool, flags, &blk, &zeroed);
	if (IS_ERR(folio))
		return folio;
	if (folio) {
		phys = PFN_PHYS(folio_pfn(folio));
	} else {
		phys = pool_take(pool, order, flags, &blk);
		/* No room but in kept blocks: one gives way. */
		if (!phys && persist_hvo_unkeep(pool))
			phys = pool_take(pool, order, flags, &blk);
	}
	if (!phys)
		return ERR_PTR(-ENOMEM);

	ext->pfn = PHYS_PFN(phys);
	ext->order = order;
	ext->flags = flags & ~PERSIST_ALLOC_ACCOUNT;
	ext->blk = blk;
	if (folio) {
		/* Built and optimized already. */
	} else if (flags & PERSIST_ALLOC_HVO) {
		folio = persist_hvo_build_folio(ext->pfn, order);
		if (IS_ERR(folio)) {
			persist_pool_put(blk, ext->pfn, order, flags);
			return folio;
		}
	} else {
		folio = persist_granule_to_folio(ext->pfn, order);
	}

	/*
	 * Before the zeroing: a refused charge costs no more than a lookup
	 * (but for a kept block taken dirty, scrubbed already).
	 */
	if (flags & PERSIST_ALLOC_ACCOUNT) {
		err = persist_charge(folio);
		if (err)
			goto undo_folio;
	}
	if ((flags & (PERSIST_ALLOC_ZERO | PERSIST_ALLOC_NO_DIRECT_MAP)) && !zeroed)
		zero_folio(folio);
	if (flags & PERSIST_ALLOC_NO_DIRECT_MAP) {
		err = persist_direct_map_remove(folio);
		if (err)
			goto undo_folio;
	}
	err = persist_fault() ? -ENOMEM : persist_extent_insert(ext);
	if (err)
		goto undo_direct_map;
	/*
	 * A page that failed on the way out: the handler records failures
	 * before it looks for extents, this looks for failures after the
	 * extent is recorded, so one of the two sees the other. The owner
	 * gets the folio marked, as if it had failed a moment later.
	 */
	smp_mb();
	if (unlikely(persist_hwpoison_in(ext->pfn, 1UL << order)))
		folio_set_hwpoison(folio);
	trace_persist_alloc(ext->pfn, order, nid, flags, 0);
	return folio;

undo_direct_map:
	if (flags & PERSIST_ALLOC_NO_DIRECT_MAP)
		persist_direct_map_restore(folio);
undo_folio:
	persist_uncharge(folio);
	if (persist_hvo_keeps(order, flags) && folio_ref_freeze(folio, 1)) {
		persist_hvo_keep(blk, folio, flags);
		return ERR_PTR(err);
	}
	/* Only a folio nobody saw gets here; the restore cannot be skipped. */
	if ((flags & PERSIST_ALLOC_HVO) && WARN_ON(persist_hvo_restore(folio)))
		return ERR_PTR(err);
	persist_folio_to_granule(folio);
	persist_pool_put(blk, ext->pfn, order, flags);
	return ERR_PTR(err);
}

/**
 * persist_alloc_folio - allocate a persistent folio
 * @nid:   node whose pool to use, or NUMA_NO_NODE for the node the calling
 *         task's mempolicy picks first (as for slab: local, preferred,
 *         interleaved or first bound node), then the other nodes
 * @order: PERSIST_ORDER_4K, PERSIST_ORDER_2M or PERSIST_ORDER_1G
 * @flags: PERSIST_ALLOC_* attributes
 *
 * The folio has a reference count of 1 and is not on any list. With
 * PERSIST_ALLOC_NO_DIRECT_MAP the kernel cannot access it through the
 * direct map until it is freed. May sleep.
 *
 * Return: the folio, or ERR_PTR(): -EINVAL for a bad order, flags or node
 * (HVO of a 4 KiB folio), -EOPNOTSUPP for HVO without vmemmap optimization
 * in the kernel, -ENOMEM if the pool (or every pool, for NUMA_NO_NODE) has
 * no granule of that size left or, with PERSIST_ALLOC_ACCOUNT, the memory
 * cgroup is at its limit. Nothing is allocated on failure.
 */
struct folio *persist_alloc_folio(int nid, unsigned int order, unsigned long flags)
{
	struct persist_extent *ext;
	struct folio *folio = ERR_PTR(-ENOMEM);
	int n;

	might_sleep();
	if (!persist_order_valid(order) || (flags & ~PERSIST_ALLOC_FLAGS))
		return ERR_PTR(-EINVAL);
	if ((flags & PERSIST_ALLOC_HVO) && order == PERSIST_ORDER_4K)
		return ERR_PTR(-EINVAL);
	if (nid != NUMA_NO_NODE && (nid < 0 || nid >= nr_node_ids))
		return ERR_PTR(-EINVAL);

	ext = persist_fault() ? NULL : kzalloc_obj(*ext, GFP_KERNEL_ACCOUNT);
	if (!ext)
		return ERR_PTR(-ENOMEM);

	if (nid != NUMA_NO_NODE) {
		folio = alloc_on_node(nid, order, flags, ext);
	} else {
		nodemask_t tried = NODE_MASK_NONE;

		nid = mempolicy_slab_node();
		while (nid != NUMA_NO_NODE) {
			node_set(nid, tried);
			folio = alloc_on_node(nid, order, flags, ext);
			if (!IS_ERR(folio) || PTR_ERR(folio) != -ENOMEM)
				break;
			nid = NUMA_NO_NODE;
			for_each_node_state(n, N_MEMORY) {
				if (!node_isset(n, tried)) {
					nid = n;
					break;
				}
			}
		}
	}
	if (IS_ERR(folio))
		kfree(ext);
	return folio;
}
EXPORT_SYMBOL_GPL(persist_alloc_folio);

/**
 * persist_free_folio - give a persistent folio back to its pool
 * @folio: a folio from persist_alloc_folio(), with only the caller's
 *         reference left
 *
 * The vmemmap of an HVO folio is restored, unless it is a 1 GiB one, which
 * is kept optimized for the next (not one handed over by the previous
 * kernel, whose block is dirty); the direct map (with the folio zeroed)
 * if it was removed. May sleep.
 *
 * Folios handed over by the previous kernel are not zeroed here: their
 * block is dirty, and the next allocation of the granule zeroes it.
 *
 * Return: 0, -EINVAL (with a warning, once) for a folio that is not an
 * allocated granule of a pool (foreign, already freed, or handed over and
 * not restored), -EBUSY if someone else still holds a reference or it is
 * preserved for the next kexec, -ENOMEM if the vmemmap of an HVO folio
 * cannot be restored (a 2 MiB one, or a 1 GiB one with a failed page: other
 * 1 GiB HVO folios are kept as they are, see hvo_keep.c). Nothing changes
 * on failure.
 */
int persist_free_folio(struct folio *folio)
{
	unsigned long pfn = folio_pfn(folio);
	struct persist_extent *ext;
	struct persist_pool *pool;
	bool keep;
	int err = 0;

	might_sleep();
	/*
	 * Looked up under the lock that serializes frees and preservation,
	 * so that a second free of the same folio finds it gone instead of
	 * using an extent the first one is freeing.
	 */
	mutex_lock(&persist_state_lock);
	ext = xa_load(&persist_extents, pfn);
	if (!ext || ext->order != folio_order(folio) || ext->pending || ext->restoring ||
	    ext->quarantined) {
		mutex_unlock(&persist_state_lock);
		WARN_ONCE(1, "persist_alloc: free of pfn %#lx order %u: %s\n", pfn,
			  folio_order(folio),
			  xa_load(&persist_blocks, PFN_PHYS(pfn) / PERSIST_BLOCK_SIZE) ?
			  "not an allocated granule (double free?)" : "not from a pool");
		return -EINVAL;
	}
	/*
	 * Freeze the owner's reference: a speculative reference taken by a
	 * pfn walker from now on fails, and one already held makes us back
	 * off, before any struct page is touched.
	 */
	if (ext->preserved || !folio_ref_freeze(folio, 1))
		err = -EBUSY;
	/*
	 * A 1 GiB HVO folio is kept optimized (see hvo_keep.c) unless a page
	 * of it failed: then it is restored, here where a free can still
	 * back off. A failure from now on is found when the block is taken.
	 */
	keep = persist_hvo_keeps(ext->order, ext->flags) &&
	       !persist_hwpoison_in(pfn, 1UL << ext->order) && !persist_block_dirty(ext->blk);
	if (!err && (ext->flags & PERSIST_ALLOC_HVO) && !keep) {
		err = persist_hvo_restore_frozen(folio);
		if (err)
			folio_ref_unfreeze(folio, 1);
	}
	if (!err)
		persist_extent_erase(ext);
	mutex_unlock(&persist_state_lock);
	if (err)
		return err;

	pool = ext->blk->pool;
	trace_persist_free(pfn, ext->order, pool->nid, ext->flags, ext->owner);
	persist_uncharge(folio);
	if (ext->flags & PERSIST_ALLOC_NO_DIRECT_MAP) {
		persist_direct_map_restore(folio);
		zero_folio(folio);
	}
	if (keep) {
		persist_hvo_keep(ext->blk, folio, ext->flags);
	} else {
		persist_folio_to_granule(folio);
		persist_pool_put(ext->blk, pfn, ext->order, ext->flags);
	}
	kfree(ext);
	return 0;
}
EXPORT_SYMBOL_GPL(persist_free_folio);

/**
 * persist_alloc_has_pool - whether any node has a persistent pool
 *
 * Return: true if at least one pool has a block.
 */
bool persist_alloc_has_pool(void)
{
	int nid;

	for_each_node(nid) {
		struct persist_pool *pool = READ_ONCE(persist_pools[nid]);

		if (pool && READ_ONCE(pool->nr_blocks))
			return true;
	}
	return false;
}
EXPORT_SYMBOL_GPL(persist_alloc_has_pool);
