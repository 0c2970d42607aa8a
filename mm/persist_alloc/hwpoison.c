// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc: memory failures in the pools.
 */

/**
 * DOC: Memory failure
 *
 * memory_failure() hands every pfn of a pool to
 * persist_alloc_memory_failure() before it touches a struct page: the tail
 * struct pages of an HVO folio are a shared read-only page, and setting
 * PG_hwpoison on one would oops the host (HugeTLB's folios are diverted
 * the same way, for the same reason). The pfn is recorded for good, and
 * handed over to the next kernel with the pools (an extent entry with
 * ``PERSIST_ALLOC_SER_HWPOISON``), before anything else happens to it:
 *
 * - in an allocated folio, the folio gets PG_hwpoison on its head page
 *   (writable in HVO folios too), as HugeTLB marks its folios, and its
 *   owner is told through persist_alloc_register_failure_notifier(): it
 *   unmaps the failed page and refuses to map it again
 *   (persist_alloc_page_hwpoisoned() tells which page of the folio it is);
 * - a free page is taken out of its pool at once, as a quarantined 4 KiB
 *   extent that nobody allocates, restores or hands over as memory;
 * - when a folio with failed pages is freed, the rest of its granule
 *   returns to the pool and the failed pages stay behind, quarantined, in
 *   the same step;
 * - in the next kernel a failed page inside an extent pending restore
 *   marks the folio it is restored as; one in a block kept as a free
 *   1 GiB HVO folio is recorded and holds the block back until it is
 *   next taken, as a failure in a kept block does at run time; any other
 *   is quarantined again.
 *
 * A failure recorded after the handover froze for a kexec cannot join it
 * any more; the boot line of the failure says so.
 */

#define pr_fmt(fmt) "persist_alloc: " fmt

#include <linux/export.h>
#include <linux/mm.h>
#include <linux/notifier.h>
#include <linux/page-flags.h>
#include <linux/slab.h>

#include "internal.h"

/* Every failed pfn of the pools, for good. */
static DEFINE_XARRAY(persist_hwpoison);
static BLOCKING_NOTIFIER_HEAD(persist_failure_chain);

/**
 * persist_alloc_page_hwpoisoned - whether a page of a pool had a memory failure
 * @pfn: the page frame
 *
 * For the owner of a folio marked PG_hwpoison: which of its pages failed.
 *
 * Return: true if memory failure was reported for @pfn, in this kernel
 * or a previous one.
 */
bool persist_alloc_page_hwpoisoned(unsigned long pfn)
{
	return xa_load(&persist_hwpoison, pfn);
}
EXPORT_SYMBOL_GPL(persist_alloc_page_hwpoisoned);

/**
 * persist_alloc_register_failure_notifier - be told of failed pages of folios
 * @nb: notifier; called with the failed pfn and the allocated folio that
 *      contains it (a struct folio *), may sleep
 *
 * The callee unmaps that page from everything that maps it (user page
 * tables, stage-2, IOMMU) and must not map it again.
 *
 * Return: 0.
 */
int persist_alloc_register_failure_notifier(struct notifier_block *nb)
{
	return blocking_notifier_chain_register(&persist_failure_chain, nb);
}
EXPORT_SYMBOL_GPL(persist_alloc_register_failure_notifier);

/**
 * persist_alloc_unregister_failure_notifier - stop being told
 * @nb: a notifier given to persist_alloc_register_failure_notifier()
 *
 * Return: 0, or -ENOENT if @nb was not registered.
 */
int persist_alloc_unregister_failure_notifier(struct notifier_block *nb)
{
	return blocking_notifier_chain_unregister(&persist_failure_chain, nb);
}
EXPORT_SYMBOL_GPL(persist_alloc_unregister_failure_notifier);

/**
 * persist_hwpoison_in - whether a range of a pool holds failed pages
 * @pfn: first page frame
 * @nr:  number of pages
 *
 * Return: true if memory failure was reported for a page of the range.
 */
bool persist_hwpoison_in(unsigned long pfn, unsigned long nr)
{
	unsigned long index = pfn;

	return xa_find(&persist_hwpoison, &index, pfn + nr - 1, XA_PRESENT);
}

/**
 * persist_alloc_owns_pfn - whether a page frame lies in a pool
 * @pfn: the page frame
 *
 * Return: true if @pfn is in a block of a pool right now.
 */
bool persist_alloc_owns_pfn(unsigned long pfn)
{
	return xa_load(&persist_blocks, PFN_PHYS(pfn) / PERSIST_BLOCK_SIZE);
}

/* How often a failure waits for a granule on its way into or out of a pool. */
#define HWPOISON_WAIT_TRIES	1000

/* Recorded, not in the outgoing handover yet. */
#define HWPOISON_UNSENT	XA_MARK_0

/**
 * persist_hwpoison_record - remember a failed pfn for good
 * @pfn: the page frame
 *
 * It is handed over at the next persist_hwpoison_flush() that can.
 *
 * Return: 0, -EEXIST if it was recorded before, or -ENOMEM.
 */
int persist_hwpoison_record(unsigned long pfn)
{
	int err = persist_fault() ? -ENOMEM :
		  xa_insert(&persist_hwpoison, pfn, xa_mk_value(0), GFP_KERNEL);

	if (err)
		return err == -EBUSY ? -EEXIST : err;
	xa_set_mark(&persist_hwpoison, pfn, HWPOISON_UNSENT);
	num_poisoned_pages_inc(pfn);
	return 0;
}

/**
 * persist_hwpoison_flush - hand over the failed pages not handed over yet
 *
 * Called when a failure is recorded, once KHO is up, before a freeze and
 * after a cancel: a failure that came while the handover could not take
 * it (KHO not up, frozen, out of memory) joins it then.
 *
 * Context: persist_state_lock held.
 */
void persist_hwpoison_flush(void)
{
	unsigned long pfn;
	void *entry;

	lockdep_assert_held(&persist_state_lock);
	xa_for_each_marked(&persist_hwpoison, pfn, entry, HWPOISON_UNSENT) {
		if (persist_kho_add_hwpoison(pfn))
			break;
		xa_clear_mark(&persist_hwpoison, pfn, HWPOISON_UNSENT);
	}
}

/* Whether @pfn is recorded and not handed over yet. */
static bool hwpoison_unsent(unsigned long pfn)
{
	return xa_get_mark(&persist_hwpoison, pfn, HWPOISON_UNSENT);
}

/* The allocated (or pending, or quarantined) extent holding @pfn. */
static struct persist_extent *extent_of(unsigned long pfn)
{
	static const unsigned int orders[] = {
		PERSIST_ORDER_1G, PERSIST_ORDER_2M, PERSIST_ORDER_4K,
	};
	struct persist_extent *ext;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(orders); i++) {
		ext = xa_load(&persist_extents, ALIGN_DOWN(pfn, 1UL << orders[i]));
		if (ext && ext->order == orders[i])
			return ext;
	}
	return NULL;
}

static struct persist_extent *quarantine_ext(struct persist_block *blk, unsigned long pfn)
{
	struct persist_extent *ext = kzalloc_obj(*ext);

	if (ext) {
		ext->pfn = pfn;
		ext->blk = blk;
		ext->quarantined = true;
	}
	return ext;
}

/* Record @ext, claimed in its block; without a record the claim alone holds it. */
static void quarantine_insert(struct persist_extent *ext)
{
	if (persist_extent_insert(ext)) {
		pr_err("page %#lx held without a record: out of memory\n", ext->pfn);
		kfree(ext);
	}
}

/*
 * Take a free failed page out of its pool into @q, an extent allocated
 * ahead (consumed in any case). persist_state_lock held. Returns 0, -EBUSY
 * if the page is not free (a granule on its way in or out, which looks
 * for failed pages once it is recorded: see pool_put() and
 * alloc_on_node()), -ENOMEM.
 */
static int quarantine_free_page(struct persist_block *blk, unsigned long pfn,
				struct persist_extent *q, struct persist_extent **left)
{
	struct persist_pool *pool = blk->pool;
	int err;

	lockdep_assert_held(&persist_state_lock);
	if (left)
		*left = NULL;
	if (!q)
		return -ENOMEM;
	q->pfn = pfn;
	q->blk = blk;
	q->quarantined = true;
	spin_lock(&pool->lock);
	err = persist_block_claim(blk, pfn - PHYS_PFN(blk->base), PERSIST_ORDER_4K);
	if (!err)
		pool->allocated[PERSIST_GRANULE_4K]++;
	spin_unlock(&pool->lock);
	if (err == -EBUSY && left) {
		/* The caller tries again with it. */
		*left = q;
		return err;
	}
	if (err) {
		kfree(q);
		return err;
	}
	SetPageHWPoison(pfn_to_page(pfn));
	quarantine_insert(q);
	return 0;
}

/**
 * persist_hwpoison_put - free a granule that holds failed pages
 * @blk:   its block
 * @pfn:   first page frame of the granule
 * @order: its order
 *
 * Everything but the failed pages returns to the pool; those are claimed
 * back as quarantined 4 KiB extents under the same pool lock, so that no
 * allocation can take one in between.
 *
 * Context: persist_state_lock held; the granule's extent is gone.
 */
void persist_hwpoison_put(struct persist_block *blk, unsigned long pfn, unsigned int order)
{
	unsigned long base = PHYS_PFN(blk->base), last = pfn + (1UL << order) - 1;
	struct persist_pool *pool = blk->pool;
	unsigned long nr = 0, index, i;
	struct persist_extent **q;
	void *entry;

	lockdep_assert_held(&persist_state_lock);
	xa_for_each_range(&persist_hwpoison, index, entry, pfn, last)
		nr++;
	q = kcalloc(nr, sizeof(*q), GFP_KERNEL);
	nr = 0;
	xa_for_each_range(&persist_hwpoison, index, entry, pfn, last) {
		if (q)
			q[nr] = quarantine_ext(blk, index);
		nr++;
	}

	spin_lock(&pool->lock);
	if (!WARN_ON_ONCE(persist_block_free(blk, pfn - base, order)))
		pool->allocated[persist_order_granule(order)]--;
	xa_for_each_range(&persist_hwpoison, index, entry, pfn, last) {
		if (!WARN_ON_ONCE(persist_block_claim(blk, index - base, PERSIST_ORDER_4K)))
			pool->allocated[PERSIST_GRANULE_4K]++;
	}
	spin_unlock(&pool->lock);

	for (i = 0; q && i < nr; i++) {
		if (!q[i])
			continue;
		SetPageHWPoison(pfn_to_page(q[i]->pfn));
		quarantine_insert(q[i]);
	}
	kfree(q);
}

/**
 * persist_hwpoison_adopt - a failed page the previous kernel handed over
 * @blk: its adopted block
 * @pfn: the page
 *
 * Inside an extent pending restore it marks the folio restored from it;
 * in a block kept as a free 1 GiB HVO folio it holds the block back, as a
 * failure there does at run time; otherwise it is quarantined again.
 *
 * Context: persist_state_lock held, during adoption.
 * Return: 0, or the error that leaves it unrecorded.
 */
int persist_hwpoison_adopt(struct persist_block *blk, unsigned long pfn)
{
	int err;

	lockdep_assert_held(&persist_state_lock);
	err = persist_hwpoison_record(pfn);
	if (err == -EEXIST)
		return 0;
	if (err)
		return err;
	if (extent_of(pfn) || READ_ONCE(blk->hvo_kept))
		return 0;
	return quarantine_free_page(blk, pfn, quarantine_ext(blk, pfn), NULL);
}

/**
 * persist_alloc_memory_failure - handle a memory failure in a pool
 * @pfn:   the failed page frame
 * @flags: MF_* flags of memory_failure()
 *
 * Called by memory_failure() for every pfn it is given, before it touches
 * the page.
 *
 * Return: -ENOENT if @pfn is not in a pool (memory_failure() goes on
 * then); 0 if it was handled; -EHWPOISON if it had failed before; -ENOMEM
 * if it could not be recorded.
 */
int persist_alloc_memory_failure(unsigned long pfn, int flags)
{
	struct persist_extent *ext, *q;
	struct folio *folio = NULL;
	struct persist_block *blk;
	int nid, err, tries;
	const char *state;
	bool kept;

	if (!persist_alloc_owns_pfn(pfn))
		return -ENOENT;
	/* Ahead of the lock, so that a free failed page can always be held. */
	q = kzalloc_obj(*q);

	/* Under the lock a shrink releases blocks with. */
	mutex_lock(&persist_state_lock);
	blk = xa_load(&persist_blocks, PFN_PHYS(pfn) / PERSIST_BLOCK_SIZE);
	if (!blk) {
		mutex_unlock(&persist_state_lock);
		kfree(q);
		return -ENOENT;
	}
	nid = blk->pool->nid;
	err = persist_hwpoison_record(pfn);
	if (err) {
		mutex_unlock(&persist_state_lock);
		kfree(q);
		pr_err("memory failure at pfn %#lx: %s\n", pfn,
		       err == -EEXIST ? "failed before" : "cannot be recorded");
		err = err == -EEXIST ? -EHWPOISON : err;
		goto out;
	}
	persist_hwpoison_flush();
	/* Allocation and free look for failures after this, lock-free. */
	smp_mb();
	ext = extent_of(pfn);
	/* A kept HVO block is restored, the page held back, when it is next taken. */
	kept = !ext && READ_ONCE(blk->hvo_kept);
	err = q ? 0 : -ENOMEM;
	for (tries = 0; !ext && !kept && q && tries < HWPOISON_WAIT_TRIES; tries++) {
		err = quarantine_free_page(blk, pfn, q, &q);
		if (err != -EBUSY)
			break;
		/*
		 * In a granule on its way into or out of the pool: wait a
		 * little for it to be free (taken here) or recorded (handled
		 * below). Past that, the allocation that records it marks its
		 * folio itself, and a free holds the page back.
		 */
		mutex_unlock(&persist_state_lock);
		cond_resched();
		mutex_lock(&persist_state_lock);
		ext = extent_of(pfn);
	}
	if (!ext) {
		kfree(q);
		state = kept ? "in a free 1 GiB HVO block, held back when the block is next taken" :
			!err ? "free, taken out of its pool" :
			"in use outside any extent, marked or held back where it goes";
	} else {
		kfree(q);
		if (ext->quarantined) {
			state = "quarantined already";
		} else if (ext->pending || ext->restoring) {
			state = "handed over, its folio is marked when restored";
		} else {
			/* Held, so that it is not freed while its owner is told. */
			folio = pfn_folio(ext->pfn);
			folio_set_hwpoison(folio);
			folio_get(folio);
			state = "allocated, its owner is told";
		}
	}
	if (hwpoison_unsent(pfn))
		pr_err("memory failure at pfn %#lx not handed over yet: the handover is frozen or full\n",
		       pfn);
	mutex_unlock(&persist_state_lock);

	pr_err("memory failure at pfn %#lx (node %d): %s\n", pfn, nid, state);
	if (folio) {
		blocking_notifier_call_chain(&persist_failure_chain, pfn, folio);
		folio_put(folio);
	}
	err = 0;
out:
	/* The reference memory_failure()'s caller took (madvise) is ours to drop. */
	if (flags & MF_COUNT_INCREASED)
		put_page(pfn_to_page(pfn));
	return err;
}
