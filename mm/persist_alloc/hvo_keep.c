// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc: freed 1 GiB HVO folios kept optimized for the next one.
 */

/**
 * DOC: Keeping HVO blocks
 *
 * Building a 1 GiB HVO folio remaps 4095 vmemmap pages and frees them;
 * freeing it allocated 16 MiB of vmemmap again and wrote 262144 struct
 * pages back to single pages. A host that starts and stops VMs on 1 GiB
 * HVO granules paid both each time, and a free could fail for want of
 * those 16 MiB.
 *
 * So a freed 1 GiB HVO folio whose pages never failed stays as it is: its
 * block is kept, whole in its bookkeeping, on the pool's ``hvo_kept``
 * list, with only the 64 struct pages of its head vmemmap page put back
 * to a fresh folio's state. The next 1 GiB HVO allocation of the node
 * takes a kept block first, in O(1), as HugeTLB's free pool does; a free
 * of one never needs memory.
 *
 * Everything else sees a kept block as allocated, so nothing else can
 * take it, split it, claim a page of it or release it to the buddy
 * allocator with struct pages it shares. It gives way when the pool needs
 * it otherwise: an allocation of another kind with no room elsewhere, or
 * a shrink, first restores the vmemmap and the single pages of one kept
 * block (persist_hvo_unkeep()), which may fail with -ENOMEM like the free
 * it replaces. A memory failure in a kept block is recorded and the block
 * is held back: the next allocation that would take it restores it
 * instead, and the failed page stays quarantined as in any freed granule.
 *
 * Blocks carved at boot that ``persist_alloc_hvo=`` names start kept: their
 * vmemmap was mapped optimized before any of their struct pages was
 * initialized (see "Pre-HVO"), so the first 1 GiB HVO folio of such a
 * block costs what a reuse costs. After a kexec such a block may hold the
 * previous kernel's data, like every block carved then: taking it zeroes
 * it first.
 *
 * Kept blocks stay kept across a kexec: the freeze flags them in the
 * handover (``PERSIST_ALLOC_BLOCK_SER_HVO_FREE``), and the next kernel
 * maps their vmemmap optimized at boot and adds them to their pools
 * kept, holding the previous kernel's data, so that taking one zeroes it
 * first too. A kept block with a failed page at the freeze is handed over
 * as an ordinary free block (a failure after the freeze is not handed
 * over at all, see "Memory failure").
 *
 * Kept blocks count in ``free_bytes`` and in ``hvo_free_bytes``; their
 * saved vmemmap is not in ``vmemmap_saved_bytes``, which is about
 * allocated folios.
 */

#define pr_fmt(fmt) "persist_alloc: " fmt

#include <linux/list.h>
#include <linux/mm.h>

#include <asm/tlbflush.h>

#include "../hugetlb_vmemmap.h"
#include "../internal.h"
#include "../mm_init.h"
#include "internal.h"

/* The head vmemmap page of a kept folio, as a fresh optimized folio has it. */
static void keep_reset_head(struct folio *folio)
{
	unsigned long pfn = folio_pfn(folio), i;
	enum zone_type zid = folio_zonenum(folio);
	int nid = folio_nid(folio);

	for (i = 0; i < HUGETLB_VMEMMAP_RESERVE_PAGES; i++)
		__init_single_page(pfn_to_page(pfn + i), pfn + i, zid, nid);
	persist_prehvo_folio(pfn, PERSIST_ORDER_1G);
}

/**
 * persist_hvo_keep - keep a freed 1 GiB HVO folio for the next one
 * @blk:   its block
 * @folio: the folio, out of persist_extents, uncharged, in the direct map,
 *         its reference count frozen at 0 by the caller
 * @flags: the PERSIST_ALLOC_* flags it was allocated with
 *
 * Only for folios persist_hvo_keeps() accepts. A folio with a failed page
 * is better freed the old way, so that the page is quarantined at once;
 * one that fails from now on is found when the block is taken. The folio
 * is the pool's afterwards, with a reference count of 1.
 */
void persist_hvo_keep(struct persist_block *blk, struct folio *folio, unsigned long flags)
{
	struct persist_pool *pool = blk->pool;

	keep_reset_head(folio);
	spin_lock(&pool->lock);
	persist_account_locked(pool, PERSIST_ORDER_1G, flags, -1);
	WRITE_ONCE(blk->hvo_kept, true);
	list_add(&blk->kept_link, &pool->hvo_kept);
	pool->nr_hvo_kept++;
	spin_unlock(&pool->lock);
}

/* Take the first kept block of @pool off its list, still whole. */
static struct persist_block *kept_pop(struct persist_pool *pool, unsigned long flags)
{
	struct persist_block *blk;

	spin_lock(&pool->lock);
	blk = list_first_entry_or_null(&pool->hvo_kept, struct persist_block, kept_link);
	if (blk) {
		list_del_init(&blk->kept_link);
		WRITE_ONCE(blk->hvo_kept, false);
		pool->nr_hvo_kept--;
		persist_account_locked(pool, PERSIST_ORDER_1G, flags, 1);
	}
	spin_unlock(&pool->lock);
	return blk;
}

/* Back on the list, as persist_hvo_keep() left it. */
static void kept_push(struct persist_block *blk, unsigned long flags)
{
	struct persist_pool *pool = blk->pool;

	spin_lock(&pool->lock);
	persist_account_locked(pool, PERSIST_ORDER_1G, flags, -1);
	WRITE_ONCE(blk->hvo_kept, true);
	list_add_tail(&blk->kept_link, &pool->hvo_kept);
	pool->nr_hvo_kept++;
	spin_unlock(&pool->lock);
}

/*
 * Give a block kept_pop() took (counted as an allocated HVO folio) its
 * own struct pages back and free it in its pool, failed pages
 * quarantined. Returns 0, or -ENOMEM or -EBUSY with the block kept again.
 */
static int unkeep_block(struct persist_block *blk)
{
	struct folio *folio = pfn_folio(PHYS_PFN(blk->base));
	int err = -EBUSY;

	/* A pfn walker may hold a speculative reference for a moment. */
	if (folio_ref_freeze(folio, 1)) {
		err = persist_hvo_restore_frozen(folio);
		if (err)
			folio_ref_unfreeze(folio, 1);
	}
	if (err) {
		kept_push(blk, PERSIST_ALLOC_HVO);
		return err;
	}
	persist_folio_to_granule(folio);
	persist_pool_put(blk, folio_pfn(folio), PERSIST_ORDER_1G, PERSIST_ALLOC_HVO);
	return 0;
}

/**
 * persist_hvo_take_kept - a 1 GiB HVO folio from a kept block
 * @pool:  the pool
 * @flags: PERSIST_ALLOC_* flags of the allocation, PERSIST_ALLOC_HVO among
 *         them
 * @blkp:  set to the block
 * @zeroed: set to whether the folio was zeroed whole on the way (a block
 *          carved after a kexec or handed over, still dirty)
 *
 * A kept block with a page that failed meanwhile is given back its
 * struct pages instead, its failed pages quarantined, and the next kept
 * block is tried; if that restore fails, the block stays kept (held back
 * again at the next take) and none is handed out.
 *
 * Return: the folio, with a reference count of 1 and counted allocated;
 * NULL if the pool keeps none; ERR_PTR(-ENOMEM) if a dirty one could not
 * be mapped back to be scrubbed (it stays kept).
 */
struct folio *persist_hvo_take_kept(struct persist_pool *pool, unsigned long flags,
				    struct persist_block **blkp, bool *zeroed)
{
	struct persist_block *blk;
	bool dirty;

	while ((blk = kept_pop(pool, flags))) {
		if (!persist_hwpoison_in(PHYS_PFN(blk->base), PERSIST_BLOCK_PAGES)) {
			/* Carved after a kexec or handed over: hidden and dirty. */
			dirty = persist_block_dirty(blk);
			if (dirty && persist_scrub_block(blk)) {
				/* No memory to map it back: another would not fare better. */
				kept_push(blk, flags);
				return ERR_PTR(-ENOMEM);
			}
			*zeroed = dirty;
			*blkp = blk;
			return pfn_folio(PHYS_PFN(blk->base));
		}
		/* Counted allocated with @flags by kept_pop(), as the free expects. */
		spin_lock(&pool->lock);
		persist_account_locked(pool, PERSIST_ORDER_1G, flags, -1);
		persist_account_locked(pool, PERSIST_ORDER_1G, PERSIST_ALLOC_HVO, 1);
		spin_unlock(&pool->lock);
		if (unkeep_block(blk)) {
			/* Back at the tail: popping again would find it again. */
			pr_warn_ratelimited("kept 1 GiB HVO block %pa with a failed page stays kept: no memory for its struct pages\n",
					    &blk->base);
			break;
		}
	}
	return NULL;
}

/**
 * persist_hvo_prepare_free - a block pre-HVO'd at boot as a free folio
 * @base: the block, carved at boot or handed over as a free 1 GiB HVO folio
 * @nid:  its node
 *
 * The tail struct pages of a block that prehvo.c optimized are the zone's
 * shared page, which hugetlb has initialized as tails by now: they are
 * write-protected, as hugetlb does for its own pre-HVO'd boot pages, and
 * the head vmemmap page is set up as a fresh folio's.
 */
void __init persist_hvo_prepare_free(phys_addr_t base, int nid)
{
	unsigned long start = (unsigned long)pfn_to_page(PHYS_PFN(base));
	unsigned long end = start + (sizeof(struct page) << PERSIST_ORDER_1G);

	vmemmap_wrprotect_hvo(start, end, nid, HUGETLB_VMEMMAP_RESERVE_SIZE);
	flush_tlb_kernel_range(start, end);
	keep_reset_head(pfn_folio(PHYS_PFN(base)));
}

/**
 * persist_hvo_keep_new - make a block prepared by persist_hvo_prepare_free() kept
 * @blk: the block, nothing of it used, not in persist_blocks or its
 *       pool's lists yet; the caller puts it on the pool's hvo_kept list
 *       when it adds it to the pool
 *
 * The block is taken whole, as if a 1 GiB HVO folio of it had just been
 * freed.
 */
void persist_hvo_keep_new(struct persist_block *blk)
{
	struct persist_scrub scrub;

	WARN_ON_ONCE(persist_block_alloc(blk, PERSIST_ORDER_1G, false, &scrub));
	/* Nothing is dirty yet; if it were, it would stay so. */
	persist_scrub_undo(blk, &scrub);
	blk->hvo_kept = true;
}

/**
 * persist_hvo_unkeep - make one kept block of a pool an ordinary free block
 * @pool: the pool
 *
 * For an allocation of another kind that found no room, or a shrink.
 * May sleep.
 *
 * Return: true if a block became free; false if the pool keeps none, or
 * its vmemmap could not be restored (no memory, a reference held).
 */
bool persist_hvo_unkeep(struct persist_pool *pool)
{
	struct persist_block *blk = kept_pop(pool, PERSIST_ALLOC_HVO);

	return blk && !unkeep_block(blk);
}

/**
 * persist_hvo_kept_bytes - memory of a pool's kept blocks
 * @pool: the pool, its lock held
 *
 * Return: bytes in kept blocks, which are free.
 */
unsigned long persist_hvo_kept_bytes(struct persist_pool *pool)
{
	lockdep_assert_held(&pool->lock);
	return pool->nr_hvo_kept * PERSIST_BLOCK_SIZE;
}
