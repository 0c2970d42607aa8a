// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc: which blocks of a pool can serve which granule.
 */

/**
 * DOC: Picking a block
 *
 * A pool keeps each of its blocks on the lists that say what the block can
 * serve, so that an allocation takes a block off the head of a list
 * instead of asking every block of the pool under its lock:
 *
 * - ``unused``: nothing allocated. The only blocks a 1 GiB request can
 *   take, and the last resort of smaller ones, which keeps them whole as
 *   long as another block has room;
 * - ``chunk_avail``: in use, with a free 2 MiB chunk;
 * - ``page_avail``: with a split chunk that has a free 4 KiB page.
 *
 * A 4 KiB request takes the first block of ``page_avail``, then of
 * ``chunk_avail``, then of ``unused``; a 2 MiB request the first of
 * ``chunk_avail``, then of ``unused``; a 1 GiB request the first of
 * ``unused``. Every change of a block's bookkeeping (allocation, free,
 * claim of a handed-over granule) moves the block between the lists in
 * O(1), under the pool lock, to the head of a list it joins: the block
 * used last is used again first. Blocks join the lists when they join the
 * pool and leave them when they leave it.
 */

#include <linux/bitmap.h>
#include <linux/list.h>
#include <linux/lockdep.h>

#include "internal.h"

/**
 * persist_block_relist - put a block on the pool lists its state asks for
 * @blk: a block; one that is not in its pool's lists (being added, being
 *       released by a shrink, or a KUnit block without a pool) is left alone
 *
 * Called with the pool lock held, after the block's bookkeeping changed.
 * A block that a shrink took off the lists must stay off them even when a
 * memory failure claims one of its pages meanwhile: it is being scrubbed
 * and released, and nothing may be allocated from it.
 */
void persist_block_relist(struct persist_block *blk)
{
	struct persist_pool *pool = blk->pool;
	struct list_head *want = NULL;
	bool open;

	if (!blk->listed)
		return;
	lockdep_assert_held(&pool->lock);
	if (!blk->whole && persist_block_unused(blk))
		want = &pool->unused;
	else if (!blk->whole && !bitmap_empty(blk->free_chunks, PERSIST_BLOCK_CHUNKS))
		want = &pool->chunk_avail;
	if (want != blk->avail_list) {
		/* At the head: the block just used is used again first. */
		if (want)
			list_move(&blk->avail, want);
		else
			list_del_init(&blk->avail);
		blk->avail_list = want;
	}
	open = !blk->whole && !bitmap_empty(blk->open_chunks, PERSIST_BLOCK_CHUNKS);
	if (open && list_empty(&blk->page_link))
		list_add(&blk->page_link, &pool->page_avail);
	else if (!open)
		list_del_init(&blk->page_link);
}

/**
 * persist_block_list - put a block joining its pool on the pool's lists
 * @blk: the block; called with the pool lock held
 */
void persist_block_list(struct persist_block *blk)
{
	lockdep_assert_held(&blk->pool->lock);
	blk->listed = true;
	persist_block_relist(blk);
}

/**
 * persist_block_unlist - take a block leaving its pool off the pool's lists
 * @blk: the block; called with the pool lock held
 *
 * Until persist_block_list(), changes of its bookkeeping do not put it
 * back on any list.
 */
void persist_block_unlist(struct persist_block *blk)
{
	lockdep_assert_held(&blk->pool->lock);
	blk->listed = false;
	list_del_init(&blk->avail);
	list_del_init(&blk->page_link);
	blk->avail_list = NULL;
}

/**
 * persist_pool_pick - the block to serve a granule from
 * @pool:  the pool, its lock held
 * @order: PERSIST_ORDER_4K, PERSIST_ORDER_2M or PERSIST_ORDER_1G
 *
 * Return: a block that has room for a granule of @order, or NULL if no
 * block of the pool has.
 */
struct persist_block *persist_pool_pick(struct persist_pool *pool, unsigned int order)
{
	lockdep_assert_held(&pool->lock);
	if (order == PERSIST_ORDER_4K && !list_empty(&pool->page_avail))
		return list_first_entry(&pool->page_avail, struct persist_block, page_link);
	if (order != PERSIST_ORDER_1G && !list_empty(&pool->chunk_avail))
		return list_first_entry(&pool->chunk_avail, struct persist_block, avail);
	return list_first_entry_or_null(&pool->unused, struct persist_block, avail);
}
