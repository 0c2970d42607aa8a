// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc: scrubbing memory a previous kernel may have left data in.
 */

/**
 * DOC: Scrubbing
 *
 * A pool block handed over by the previous kernel holds, besides the
 * extents preserved in it, whatever that kernel's users left in granules
 * they had allocated and not preserved: guest memory, private memory of
 * confidential guests among it. None of it may reach a user of this
 * kernel, or of the next one, with its contents, whatever flags the
 * caller passes.
 *
 * The handover does not say which granules were used: a list written by
 * the old kernel could be wrong, and a wrong "clean" would leak. So every
 * chunk of an adopted block is taken as dirty (``persist_block.dirty``),
 * and the block's free memory is removed from the direct map when it is
 * adopted, before user space runs; memory the old kernel kept out of the
 * direct map thus never comes back into it with its data. A granule taken
 * from dirty chunks is mapped again and zeroed first, by the allocation
 * that takes it: the cost lands on the first use of the memory, never on
 * the kexec blackout. A 2 MiB or 1 GiB granule clears the dirty state of
 * its chunks; a 4 KiB granule zeroes only its own page, and its chunk stays
 * dirty until it is taken whole, since its other pages may be in use.
 * A block leaving its pool is scrubbed as a whole first.
 *
 * A kernel booted by kexec treats the blocks it carves at boot the same
 * way: that memory was the previous kernel's, and may hold what its
 * users left there.
 */

#include <linux/bitmap.h>
#include <linux/mm.h>
#include <linux/set_memory.h>

#include "internal.h"

static int scrub_range(unsigned long pfn, unsigned long nr)
{
	int err;

	/* Mapping back a part of a removed large mapping may split it. */
	err = set_direct_map_valid_noflush(pfn_to_page(pfn), nr, true);
	if (err)
		return err;
	persist_zero_pages(pfn, nr);
	return 0;
}

/**
 * persist_scrub - zero what persist_block_alloc() found dirty in a granule
 * @blk:   the block
 * @idx:   index of the granule's first page in the block
 * @order: its order
 * @scrub: what persist_block_alloc() filled in
 *
 * The granule is in the direct map and zero where it was dirty when this
 * returns 0. On failure (the direct map could not be split, -ENOMEM) the
 * caller gives the granule back with persist_scrub_undo().
 *
 * Return: 0 or -ENOMEM.
 */
int persist_scrub(struct persist_block *blk, unsigned long idx, unsigned int order,
		  const struct persist_scrub *scrub)
{
	unsigned long pfn = PHYS_PFN(blk->base) + idx;
	unsigned int c;
	int err;

	if (scrub->page)
		return scrub_range(pfn, 1);
	/* A whole dirty block is mapped back in one piece, without a split. */
	if (order == PERSIST_ORDER_1G && bitmap_full(scrub->chunks, PERSIST_BLOCK_CHUNKS))
		return scrub_range(pfn, PERSIST_BLOCK_PAGES);
	for_each_set_bit(c, scrub->chunks, PERSIST_BLOCK_CHUNKS) {
		err = scrub_range(PHYS_PFN(blk->base) + c * PERSIST_CHUNK_PAGES,
				  PERSIST_CHUNK_PAGES);
		if (err)
			return err;
	}
	return 0;
}

/**
 * persist_scrub_undo - mark the chunks of a failed scrub dirty again
 * @blk:   the block, with its pool lock held
 * @scrub: the scrub that failed
 *
 * Chunks already zeroed are marked dirty again too: that costs a second
 * zeroing, never a leak.
 */
void persist_scrub_undo(struct persist_block *blk, const struct persist_scrub *scrub)
{
	bitmap_or(blk->dirty, blk->dirty, scrub->chunks, PERSIST_BLOCK_CHUNKS);
}

/**
 * persist_scrub_block - scrub a whole block nobody else can reach
 * @blk: the block, on no pool list any more: unused and leaving its pool,
 *       or kept and being taken (hvo_keep.c)
 *
 * Return: 0, or -ENOMEM if the direct map could not be restored (the block
 * must then stay out of use).
 */
int persist_scrub_block(struct persist_block *blk)
{
	struct persist_pool *pool = blk->pool;
	struct persist_scrub scrub = {};

	/* Others read the dirty state under the pool lock (direct_map.c). */
	spin_lock(&pool->lock);
	bitmap_copy(scrub.chunks, blk->dirty, PERSIST_BLOCK_CHUNKS);
	spin_unlock(&pool->lock);
	if (persist_scrub(blk, 0, PERSIST_ORDER_1G, &scrub))
		return -ENOMEM;
	spin_lock(&pool->lock);
	bitmap_zero(blk->dirty, PERSIST_BLOCK_CHUNKS);
	spin_unlock(&pool->lock);
	return 0;
}
