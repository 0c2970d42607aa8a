// SPDX-License-Identifier: GPL-2.0
/*
 * Granule bookkeeping inside one 1 GiB block of a persist_alloc pool.
 */

/**
 * DOC: Granules in a block
 *
 * Each pool is made of 1 GiB blocks, and every block hands out granules of
 * three sizes: the whole block (order 18), 2 MiB chunks (order 9) and 4 KiB
 * pages (order 0). The state is kept per block in two levels, a plain
 * bitmap scheme rather than a buddy allocator, because only three orders
 * exist:
 *
 * - the block is ``WHOLE`` (one 1 GiB granule allocated) or not;
 * - each of its 512 chunks is ``FREE``, ``WHOLE`` (one 2 MiB granule) or
 *   ``SPLIT`` into 4 KiB pages, with a per-chunk count of used pages and
 *   one bit per page in a 32 KiB bitmap allocated with the block.
 *
 * Splitting is implicit: a 2 MiB request takes a free chunk, a 4 KiB request
 * first fills chunks that are already split and only then splits a free
 * chunk. Merging is implicit too: a split chunk whose last page is freed
 * becomes ``FREE`` again, and a block with no used chunk can serve a 1 GiB
 * request again.
 *
 * Two more bitmaps of 512 bits find a chunk: the free chunks, and the split
 * chunks with a free page (open). A lookup is a find_first_bit() over 8
 * words, never a scan of chunk states or of pages. Every change moves the
 * block to the pool lists its new state asks for (see "Picking a block").
 *
 * These functions only do bookkeeping; the caller holds the pool lock.
 */

#include <linux/bitmap.h>
#include <linux/errno.h>
#include <linux/slab.h>

#include "internal.h"

int persist_block_init(struct persist_block *blk, phys_addr_t base)
{
	memset(blk, 0, sizeof(*blk));
	blk->pages = bitmap_zalloc(PERSIST_BLOCK_PAGES, GFP_KERNEL);
	if (!blk->pages)
		return -ENOMEM;
	blk->base = base;
	blk->nr_free = PERSIST_BLOCK_PAGES;
	bitmap_fill(blk->free_chunks, PERSIST_BLOCK_CHUNKS);
	INIT_LIST_HEAD(&blk->list);
	INIT_LIST_HEAD(&blk->avail);
	INIT_LIST_HEAD(&blk->page_link);
	return 0;
}

void persist_block_destroy(struct persist_block *blk)
{
	bitmap_free(blk->pages);
	blk->pages = NULL;
}

bool persist_block_unused(const struct persist_block *blk)
{
	return blk->nr_free == PERSIST_BLOCK_PAGES;
}

/* Take chunk @c for a 2 MiB granule or split it for 4 KiB pages. */
static void chunk_take(struct persist_block *blk, unsigned int c, u8 state)
{
	blk->chunk_state[c] = state;
	__clear_bit(c, blk->free_chunks);
	if (state == PERSIST_CHUNK_WHOLE)
		blk->nr_free -= PERSIST_CHUNK_PAGES;
	else
		__set_bit(c, blk->open_chunks);
}

static void chunk_release(struct persist_block *blk, unsigned int c)
{
	if (blk->chunk_state[c] == PERSIST_CHUNK_WHOLE)
		blk->nr_free += PERSIST_CHUNK_PAGES;
	blk->chunk_state[c] = PERSIST_CHUNK_FREE;
	blk->chunk_used[c] = 0;
	__set_bit(c, blk->free_chunks);
	__clear_bit(c, blk->open_chunks);
}

/* Take the whole block as one 1 GiB granule, if nothing of it is used. */
static int block_take(struct persist_block *blk)
{
	if (!persist_block_unused(blk))
		return -EBUSY;
	blk->whole = true;
	blk->nr_free = 0;
	return 0;
}

/* The first chunk set in @chunks (free or open ones), or -ENOSPC. */
static long find_chunk(const unsigned long *chunks)
{
	unsigned long c = find_first_bit(chunks, PERSIST_BLOCK_CHUNKS);

	return c < PERSIST_BLOCK_CHUNKS ? c : -ENOSPC;
}

static void page_take(struct persist_block *blk, unsigned long idx)
{
	unsigned int c = idx / PERSIST_CHUNK_PAGES;

	__set_bit(idx, blk->pages);
	if (++blk->chunk_used[c] == PERSIST_CHUNK_PAGES)
		__clear_bit(c, blk->open_chunks);
	blk->nr_free--;
}

/**
 * persist_block_alloc - take a granule from a block
 * @blk:   the block
 * @order: 0, PERSIST_ORDER_2M or PERSIST_ORDER_1G
 * @split: for order 0, whether a free chunk may be split; the pool first
 *         asks every block without splitting, so 4 KiB pages gather in
 *         chunks that are already split
 * @scrub: filled with what of the granule is dirty and must be scrubbed
 *         (persist_scrub()) before anyone sees it; the block forgets that
 *         those chunks were dirty
 *
 * Return: index of the first 4 KiB page of the granule within the block,
 * or -ENOSPC if the block cannot serve it. Nothing changes on failure.
 */
long persist_block_alloc(struct persist_block *blk, unsigned int order, bool split,
			 struct persist_scrub *scrub)
{
	unsigned long idx;
	long c;

	bitmap_zero(scrub->chunks, PERSIST_BLOCK_CHUNKS);
	scrub->page = false;
	if (blk->whole)
		return -ENOSPC;

	switch (order) {
	case PERSIST_ORDER_1G:
		if (block_take(blk))
			return -ENOSPC;
		bitmap_copy(scrub->chunks, blk->dirty, PERSIST_BLOCK_CHUNKS);
		bitmap_zero(blk->dirty, PERSIST_BLOCK_CHUNKS);
		persist_block_relist(blk);
		return 0;
	case PERSIST_ORDER_2M:
		c = find_chunk(blk->free_chunks);
		if (c < 0)
			return c;
		chunk_take(blk, c, PERSIST_CHUNK_WHOLE);
		if (__test_and_clear_bit(c, blk->dirty))
			__set_bit(c, scrub->chunks);
		persist_block_relist(blk);
		return c * PERSIST_CHUNK_PAGES;
	case 0:
		c = find_chunk(blk->open_chunks);
		if (c < 0) {
			if (!split)
				return -ENOSPC;
			c = find_chunk(blk->free_chunks);
			if (c < 0)
				return c;
			chunk_take(blk, c, PERSIST_CHUNK_SPLIT);
		}
		idx = find_next_zero_bit(blk->pages, (c + 1) * PERSIST_CHUNK_PAGES,
					 c * PERSIST_CHUNK_PAGES);
		if (WARN_ON_ONCE(idx >= (c + 1) * PERSIST_CHUNK_PAGES))
			return -ENOSPC;
		page_take(blk, idx);
		/*
		 * Other pages of a dirty chunk may be taken and written while
		 * this one is scrubbed, so only this page is: the chunk stays
		 * dirty until it is taken whole.
		 */
		scrub->page = test_bit(c, blk->dirty);
		persist_block_relist(blk);
		return idx;
	}
	return -EINVAL;
}

/**
 * persist_block_claim - mark a given granule of a block as allocated
 * @blk:   the block
 * @idx:   index of the granule's first 4 KiB page in the block
 * @order: 0, PERSIST_ORDER_2M or PERSIST_ORDER_1G
 *
 * Used when extents handed over by the previous kernel are put back into
 * a pool: the granule must be free and naturally aligned.
 *
 * Return: 0, -EINVAL for a misaligned or out-of-range granule, -EBUSY if
 * any part of it is in use. Nothing changes on failure.
 */
int persist_block_claim(struct persist_block *blk, unsigned long idx, unsigned int order)
{
	unsigned int c = idx / PERSIST_CHUNK_PAGES;

	if (!persist_order_valid(order) || idx >= PERSIST_BLOCK_PAGES ||
	    !IS_ALIGNED(idx, 1UL << order))
		return -EINVAL;
	if (blk->whole)
		return -EBUSY;

	switch (order) {
	case PERSIST_ORDER_1G:
		if (block_take(blk))
			return -EBUSY;
		break;
	case PERSIST_ORDER_2M:
		if (blk->chunk_state[c] != PERSIST_CHUNK_FREE)
			return -EBUSY;
		chunk_take(blk, c, PERSIST_CHUNK_WHOLE);
		break;
	default:
		if (blk->chunk_state[c] == PERSIST_CHUNK_WHOLE || test_bit(idx, blk->pages))
			return -EBUSY;
		if (blk->chunk_state[c] == PERSIST_CHUNK_FREE)
			chunk_take(blk, c, PERSIST_CHUNK_SPLIT);
		page_take(blk, idx);
		break;
	}
	persist_block_relist(blk);
	return 0;
}

/**
 * persist_block_free - give a granule back to its block
 * @blk:   the block
 * @idx:   index of the granule's first 4 KiB page in the block
 * @order: the order it was allocated with
 *
 * A chunk whose last 4 KiB page is freed merges back into a free chunk.
 *
 * Return: 0, or -EINVAL if the granule is not allocated with that order
 * (a double free or a wrong order); nothing changes then.
 */
int persist_block_free(struct persist_block *blk, unsigned long idx, unsigned int order)
{
	unsigned int c = idx / PERSIST_CHUNK_PAGES;

	if (!persist_order_valid(order) || idx >= PERSIST_BLOCK_PAGES ||
	    !IS_ALIGNED(idx, 1UL << order))
		return -EINVAL;

	switch (order) {
	case PERSIST_ORDER_1G:
		if (!blk->whole)
			return -EINVAL;
		blk->whole = false;
		blk->nr_free = PERSIST_BLOCK_PAGES;
		break;
	case PERSIST_ORDER_2M:
		if (blk->whole || blk->chunk_state[c] != PERSIST_CHUNK_WHOLE)
			return -EINVAL;
		chunk_release(blk, c);
		break;
	default:
		if (blk->whole || blk->chunk_state[c] != PERSIST_CHUNK_SPLIT ||
		    !test_bit(idx, blk->pages))
			return -EINVAL;
		__clear_bit(idx, blk->pages);
		__set_bit(c, blk->open_chunks);
		blk->nr_free++;
		if (!--blk->chunk_used[c])
			chunk_release(blk, c);
		break;
	}
	persist_block_relist(blk);
	return 0;
}
