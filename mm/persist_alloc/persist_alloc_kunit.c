// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for persist_alloc: granule bookkeeping of a 1 GiB block, the
 * command line, and allocations from a real pool when the test kernel was
 * booted with persist_alloc= (scripts/kunit.sh passes persist_alloc=1G).
 */
#include <kunit/test.h>
#include <linux/completion.h>
#include <linux/highmem.h>
#include <linux/kthread.h>
#include <linux/random.h>
#include <linux/kho/abi/persist_alloc.h>
#include <linux/mm.h>
#include <linux/set_memory.h>

#include "internal.h"

static struct persist_block *new_block(struct kunit *test)
{
	struct persist_block *blk = kunit_kzalloc(test, sizeof(*blk), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, blk);
	KUNIT_ASSERT_EQ(test, persist_block_init(blk, 0x40000000), 0);
	return blk;
}

static void block_exit(struct kunit *test, struct persist_block *blk)
{
	persist_block_destroy(blk);
}

static void block_1g_is_exclusive(struct kunit *test)
{
	struct persist_block *blk = new_block(test);

	KUNIT_EXPECT_EQ(test, persist_block_alloc(blk, PERSIST_ORDER_1G, true), 0);
	KUNIT_EXPECT_EQ(test, blk->nr_free, 0);
	KUNIT_EXPECT_EQ(test, persist_block_alloc(blk, PERSIST_ORDER_1G, true), -ENOSPC);
	KUNIT_EXPECT_EQ(test, persist_block_alloc(blk, PERSIST_ORDER_2M, true), -ENOSPC);
	KUNIT_EXPECT_EQ(test, persist_block_alloc(blk, 0, true), -ENOSPC);
	KUNIT_EXPECT_EQ(test, persist_block_free(blk, 0, PERSIST_ORDER_1G), 0);
	KUNIT_EXPECT_TRUE(test, persist_block_unused(blk));
	block_exit(test, blk);
}

static void block_split_and_merge(struct kunit *test)
{
	struct persist_block *blk = new_block(test);
	long page, chunk;

	page = persist_block_alloc(blk, 0, true);
	KUNIT_EXPECT_EQ(test, page, 0);
	KUNIT_EXPECT_EQ(test, blk->chunk_state[0], PERSIST_CHUNK_SPLIT);
	chunk = persist_block_alloc(blk, PERSIST_ORDER_2M, true);
	KUNIT_EXPECT_EQ(test, chunk, PERSIST_CHUNK_PAGES);
	KUNIT_EXPECT_EQ(test, blk->nr_free, PERSIST_BLOCK_PAGES - 1 - PERSIST_CHUNK_PAGES);
	/* A split block cannot serve 1 GiB until everything merged back. */
	KUNIT_EXPECT_EQ(test, persist_block_alloc(blk, PERSIST_ORDER_1G, true), -ENOSPC);
	KUNIT_EXPECT_EQ(test, persist_block_free(blk, page, 0), 0);
	KUNIT_EXPECT_EQ(test, blk->chunk_state[0], PERSIST_CHUNK_FREE);
	KUNIT_EXPECT_EQ(test, persist_block_alloc(blk, PERSIST_ORDER_1G, true), -ENOSPC);
	KUNIT_EXPECT_EQ(test, persist_block_free(blk, chunk, PERSIST_ORDER_2M), 0);
	KUNIT_EXPECT_TRUE(test, persist_block_unused(blk));
	KUNIT_EXPECT_EQ(test, persist_block_alloc(blk, PERSIST_ORDER_1G, true), 0);
	block_exit(test, blk);
}

static void block_4k_fills_split_chunks_first(struct kunit *test)
{
	struct persist_block *blk = new_block(test);
	unsigned long i;
	long idx;

	for (i = 0; i < PERSIST_CHUNK_PAGES; i++) {
		idx = persist_block_alloc(blk, 0, true);
		KUNIT_ASSERT_EQ(test, idx, (long)i);
	}
	/* Chunk 0 is full: without splitting there is no room. */
	KUNIT_EXPECT_EQ(test, persist_block_alloc(blk, 0, false), -ENOSPC);
	KUNIT_EXPECT_EQ(test, blk->chunk_state[1], PERSIST_CHUNK_FREE);
	/* A hole in chunk 0 is reused before another chunk is split. */
	KUNIT_EXPECT_EQ(test, persist_block_free(blk, 100, 0), 0);
	KUNIT_EXPECT_EQ(test, persist_block_alloc(blk, 0, false), 100);
	KUNIT_EXPECT_EQ(test, persist_block_alloc(blk, 0, true), PERSIST_CHUNK_PAGES);
	KUNIT_EXPECT_EQ(test, blk->chunk_state[1], PERSIST_CHUNK_SPLIT);
	block_exit(test, blk);
}

static void block_exhaustion_changes_nothing(struct kunit *test)
{
	struct persist_block *blk = new_block(test);
	u8 states[PERSIST_BLOCK_CHUNKS];
	unsigned int c;

	for (c = 0; c < PERSIST_BLOCK_CHUNKS; c++)
		KUNIT_ASSERT_EQ(test, persist_block_alloc(blk, PERSIST_ORDER_2M, true),
				(long)c * PERSIST_CHUNK_PAGES);
	KUNIT_EXPECT_EQ(test, blk->nr_free, 0);
	memcpy(states, blk->chunk_state, sizeof(states));
	KUNIT_EXPECT_EQ(test, persist_block_alloc(blk, PERSIST_ORDER_2M, true), -ENOSPC);
	KUNIT_EXPECT_EQ(test, persist_block_alloc(blk, 0, true), -ENOSPC);
	KUNIT_EXPECT_EQ(test, persist_block_alloc(blk, PERSIST_ORDER_1G, true), -ENOSPC);
	KUNIT_EXPECT_EQ(test, blk->nr_free, 0);
	KUNIT_EXPECT_MEMEQ(test, states, blk->chunk_state, sizeof(states));
	block_exit(test, blk);
}

static void block_bad_free_refused(struct kunit *test)
{
	struct persist_block *blk = new_block(test);
	long chunk = persist_block_alloc(blk, PERSIST_ORDER_2M, true);
	long page = persist_block_alloc(blk, 0, true);
	unsigned long nr_free = blk->nr_free;

	KUNIT_ASSERT_EQ(test, chunk, 0);
	KUNIT_ASSERT_EQ(test, page, PERSIST_CHUNK_PAGES);
	/* Wrong order, misaligned, never allocated, out of range. */
	KUNIT_EXPECT_EQ(test, persist_block_free(blk, chunk, 0), -EINVAL);
	KUNIT_EXPECT_EQ(test, persist_block_free(blk, chunk, PERSIST_ORDER_1G), -EINVAL);
	KUNIT_EXPECT_EQ(test, persist_block_free(blk, page, PERSIST_ORDER_2M), -EINVAL);
	KUNIT_EXPECT_EQ(test, persist_block_free(blk, 3, PERSIST_ORDER_2M), -EINVAL);
	KUNIT_EXPECT_EQ(test, persist_block_free(blk, page + 1, 0), -EINVAL);
	KUNIT_EXPECT_EQ(test, persist_block_free(blk, PERSIST_BLOCK_PAGES, 0), -EINVAL);
	KUNIT_EXPECT_EQ(test, persist_block_free(blk, 0, 5), -EINVAL);
	KUNIT_EXPECT_EQ(test, blk->nr_free, nr_free);
	/* Double free. */
	KUNIT_EXPECT_EQ(test, persist_block_free(blk, page, 0), 0);
	KUNIT_EXPECT_EQ(test, persist_block_free(blk, page, 0), -EINVAL);
	KUNIT_EXPECT_EQ(test, persist_block_free(blk, chunk, PERSIST_ORDER_2M), 0);
	KUNIT_EXPECT_EQ(test, persist_block_free(blk, chunk, PERSIST_ORDER_2M), -EINVAL);
	KUNIT_EXPECT_TRUE(test, persist_block_unused(blk));
	block_exit(test, blk);
}

static void block_claim_places_granules(struct kunit *test)
{
	struct persist_block *blk = new_block(test);

	KUNIT_EXPECT_EQ(test, persist_block_claim(blk, 7, PERSIST_ORDER_2M), -EINVAL);
	KUNIT_EXPECT_EQ(test, persist_block_claim(blk, 1, PERSIST_ORDER_1G), -EINVAL);
	KUNIT_EXPECT_EQ(test, persist_block_claim(blk, 5 * PERSIST_CHUNK_PAGES,
						  PERSIST_ORDER_2M), 0);
	KUNIT_EXPECT_EQ(test, persist_block_claim(blk, 5 * PERSIST_CHUNK_PAGES + 3, 0), -EBUSY);
	KUNIT_EXPECT_EQ(test, persist_block_claim(blk, 7 * PERSIST_CHUNK_PAGES + 3, 0), 0);
	KUNIT_EXPECT_EQ(test, persist_block_claim(blk, 7 * PERSIST_CHUNK_PAGES + 3, 0), -EBUSY);
	KUNIT_EXPECT_EQ(test, persist_block_claim(blk, 7 * PERSIST_CHUNK_PAGES,
						  PERSIST_ORDER_2M), -EBUSY);
	KUNIT_EXPECT_EQ(test, persist_block_claim(blk, 0, PERSIST_ORDER_1G), -EBUSY);
	KUNIT_EXPECT_EQ(test, blk->nr_free, PERSIST_BLOCK_PAGES - PERSIST_CHUNK_PAGES - 1);
	/* Claimed granules free like allocated ones. */
	KUNIT_EXPECT_EQ(test, persist_block_free(blk, 7 * PERSIST_CHUNK_PAGES + 3, 0), 0);
	KUNIT_EXPECT_EQ(test, persist_block_free(blk, 5 * PERSIST_CHUNK_PAGES,
						 PERSIST_ORDER_2M), 0);
	KUNIT_EXPECT_EQ(test, persist_block_claim(blk, 0, PERSIST_ORDER_1G), 0);
	block_exit(test, blk);
}

static void request_spread(struct kunit *test)
{
	struct persist_request req;

	KUNIT_EXPECT_EQ(test, persist_parse_request("2G", &req), 0);
	KUNIT_EXPECT_EQ(test, req.spread_gib, 2);
	KUNIT_EXPECT_EQ(test, persist_parse_request("3072M", &req), 0);
	KUNIT_EXPECT_EQ(test, req.spread_gib, 3);
	KUNIT_EXPECT_EQ(test, persist_parse_request("1536M", &req), 1);
	KUNIT_EXPECT_EQ(test, req.spread_gib, 0);
	KUNIT_EXPECT_EQ(test, persist_parse_request("0", &req), 1);
	KUNIT_EXPECT_EQ(test, persist_parse_request("", &req), 1);
	KUNIT_EXPECT_EQ(test, persist_parse_request("1Gx", &req), 1);
}

static void request_per_node(struct kunit *test)
{
	struct persist_request req;

	KUNIT_EXPECT_EQ(test, persist_parse_request("0:1G,1:2G", &req), 0);
	KUNIT_EXPECT_EQ(test, req.spread_gib, 0);
	KUNIT_EXPECT_EQ(test, req.node_gib[0], 1);
	KUNIT_EXPECT_EQ(test, req.node_gib[1], 2);
}

static void request_bad_entries_skipped(struct kunit *test)
{
	struct persist_request req;
	char huge_node[32];

	/* Bad size, bad node, node twice, no colon: four bad, one good. */
	KUNIT_EXPECT_EQ(test, persist_parse_request("0:1G,1:3M,x:1G,0:2G,5", &req), 4);
	KUNIT_EXPECT_EQ(test, req.node_gib[0], 1);
	KUNIT_EXPECT_EQ(test, req.node_gib[1], 0);
	snprintf(huge_node, sizeof(huge_node), "%d:1G", MAX_NUMNODES);
	KUNIT_EXPECT_EQ(test, persist_parse_request(huge_node, &req), 1);
	KUNIT_EXPECT_EQ(test, persist_parse_request(":1G", &req), 1);
	KUNIT_EXPECT_EQ(test, persist_parse_request("1:", &req), 1);
	KUNIT_EXPECT_EQ(test, persist_parse_request("-1:1G", &req), 1);
}

/* A node with a pool; skips the test without one. */
static int pool_node(struct kunit *test)
{
	int nid;

	for_each_node(nid) {
		struct persist_pool *pool = READ_ONCE(persist_pools[nid]);

		if (pool && pool->nr_blocks)
			return nid;
	}
	kunit_skip(test, "no persist_alloc pool: boot with persist_alloc=1G");
	return NUMA_NO_NODE;
}

static unsigned long pool_free_pages(int nid)
{
	struct persist_pool *pool = persist_pools[nid];
	struct persist_block *blk;
	unsigned long nr = 0;

	spin_lock(&pool->lock);
	list_for_each_entry(blk, &pool->blocks, list)
		nr += blk->nr_free;
	spin_unlock(&pool->lock);
	return nr;
}

static bool folio_is_zero(struct folio *folio)
{
	unsigned long i;

	for (i = 0; i < folio_nr_pages(folio); i++) {
		void *p = kmap_local_folio(folio, i * PAGE_SIZE);
		bool zero = !memchr_inv(p, 0, PAGE_SIZE);

		kunmap_local(p);
		if (!zero)
			return false;
	}
	return true;
}

static void pool_alloc_free_each_order(struct kunit *test)
{
	static const unsigned int orders[] = {
		PERSIST_ORDER_4K, PERSIST_ORDER_2M, PERSIST_ORDER_1G,
	};
	int nid = pool_node(test);
	unsigned long before = pool_free_pages(nid);
	struct folio *folio;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(orders); i++) {
		folio = persist_alloc_folio(nid, orders[i], PERSIST_ALLOC_ZERO);
		KUNIT_ASSERT_FALSE_MSG(test, IS_ERR(folio), "order %u: %ld", orders[i],
				       PTR_ERR(folio));
		KUNIT_EXPECT_EQ(test, folio_order(folio), orders[i]);
		KUNIT_EXPECT_EQ(test, folio_nid(folio), nid);
		KUNIT_EXPECT_TRUE(test, IS_ALIGNED(folio_pfn(folio), 1UL << orders[i]));
		KUNIT_EXPECT_EQ(test, folio_ref_count(folio), 1);
		KUNIT_EXPECT_TRUE(test, folio_is_zero(folio));
		KUNIT_EXPECT_EQ(test, pool_free_pages(nid), before - (1UL << orders[i]));
		KUNIT_EXPECT_EQ(test, persist_free_folio(folio), 0);
		KUNIT_EXPECT_EQ(test, pool_free_pages(nid), before);
	}
}

static void pool_no_direct_map(struct kunit *test)
{
	int nid = pool_node(test);
	struct persist_pool *pool = persist_pools[nid];
	struct folio *folio;
	unsigned int order;
	struct page *last;

	for (order = PERSIST_ORDER_4K; order <= PERSIST_ORDER_2M; order += PERSIST_ORDER_2M) {
		folio = persist_alloc_folio(nid, order, PERSIST_ALLOC_NO_DIRECT_MAP);
		KUNIT_ASSERT_FALSE(test, IS_ERR(folio));
		KUNIT_EXPECT_FALSE(test, kernel_page_present(folio_page(folio, 0)));
		last = folio_page(folio, folio_nr_pages(folio) - 1);
		KUNIT_EXPECT_FALSE(test, kernel_page_present(last));
		KUNIT_EXPECT_EQ(test, pool->no_direct_map_pages, folio_nr_pages(folio));
		KUNIT_EXPECT_EQ(test, persist_free_folio(folio), 0);
		/* Mapped again and zeroed before anyone else can get it. */
		KUNIT_EXPECT_TRUE(test, kernel_page_present(folio_page(folio, 0)));
		KUNIT_EXPECT_TRUE(test, folio_is_zero(folio));
		KUNIT_EXPECT_EQ(test, pool->no_direct_map_pages, 0);
	}
}

static void pool_hvo(struct kunit *test)
{
	static const unsigned int orders[] = { PERSIST_ORDER_2M, PERSIST_ORDER_1G };
	int nid = pool_node(test);
	struct persist_pool *pool = persist_pools[nid];
	unsigned long saved;
	struct folio *folio;
	struct page *tail;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(orders); i++) {
		folio = persist_alloc_folio(nid, orders[i], PERSIST_ALLOC_HVO |
					    PERSIST_ALLOC_NO_DIRECT_MAP);
		KUNIT_ASSERT_FALSE_MSG(test, IS_ERR(folio), "order %u: %ld", orders[i],
				       PTR_ERR(folio));
		saved = (sizeof(struct page) << orders[i]) - PAGE_SIZE;
		KUNIT_EXPECT_EQ(test, pool->vmemmap_saved, saved);
		/* Tails still read as tails of this folio through the shared page. */
		tail = folio_page(folio, folio_nr_pages(folio) - 1);
		KUNIT_EXPECT_PTR_EQ(test, page_folio(tail), folio);
		KUNIT_EXPECT_EQ(test, folio_order(folio), orders[i]);
		KUNIT_EXPECT_EQ(test, persist_free_folio(folio), 0);
		KUNIT_EXPECT_EQ(test, pool->vmemmap_saved, 0);
		/* The granule is usable again as small pages. */
		folio = persist_alloc_folio(nid, PERSIST_ORDER_4K, 0);
		KUNIT_ASSERT_FALSE(test, IS_ERR(folio));
		KUNIT_EXPECT_EQ(test, persist_free_folio(folio), 0);
	}
}

#define STRESS_THREADS	4
#define STRESS_ITERS	400

struct stress {
	int nid;
	unsigned int id;
	atomic_t *errors;
	struct completion done;
};

/* Allocate, write, check, preserve, unpreserve and free, over and over. */
static int stress_fn(void *data)
{
	struct stress *s = data;
	struct folio *folio;
	unsigned int i, order;
	unsigned long flags;
	u64 *p;

	for (i = 0; i < STRESS_ITERS; i++) {
		order = get_random_u32_below(4) ? PERSIST_ORDER_4K : PERSIST_ORDER_2M;
		flags = order == PERSIST_ORDER_4K && !(i % 4) ? PERSIST_ALLOC_NO_DIRECT_MAP : 0;
		folio = persist_alloc_folio(s->nid, order, flags);
		if (IS_ERR(folio)) {
			if (PTR_ERR(folio) != -ENOMEM)
				atomic_inc(s->errors);
			continue;
		}
		if (!flags) {
			p = kmap_local_folio(folio, 0);
			*p = ((u64)s->id << 32) | i;
			cond_resched();
			if (*p != (((u64)s->id << 32) | i))
				atomic_inc(s->errors);
			kunmap_local(p);
		}
		if (!(i % 3) && (persist_alloc_preserve(folio, s->id) ||
				 persist_alloc_unpreserve(folio)))
			atomic_inc(s->errors);
		if (persist_free_folio(folio))
			atomic_inc(s->errors);
	}
	complete(&s->done);
	return 0;
}

static void pool_parallel_stress(struct kunit *test)
{
	int nid = pool_node(test);
	unsigned long before = pool_free_pages(nid);
	struct stress s[STRESS_THREADS];
	struct task_struct *t;
	atomic_t errors = ATOMIC_INIT(0);
	unsigned int i;

	for (i = 0; i < STRESS_THREADS; i++) {
		s[i] = (struct stress){ .nid = nid, .id = i, .errors = &errors };
		init_completion(&s[i].done);
		t = kthread_run(stress_fn, &s[i], "persist_stress/%u", i);
		if (IS_ERR(t))
			break;
	}
	KUNIT_EXPECT_EQ(test, i, STRESS_THREADS);
	/* The threads use s[] on this stack: wait for every one started. */
	while (i--)
		wait_for_completion(&s[i].done);
	KUNIT_EXPECT_EQ(test, atomic_read(&errors), 0);
	KUNIT_EXPECT_EQ(test, pool_free_pages(nid), before);
	KUNIT_EXPECT_EQ(test, persist_pools[nid]->no_direct_map_pages, 0);
}

static void pool_exhaustion_changes_nothing(struct kunit *test)
{
	int nid = pool_node(test);
	unsigned long before = pool_free_pages(nid), n = 0, i;
	struct folio **folios;
	struct folio *folio;

	folios = kunit_kcalloc(test, persist_pools[nid]->nr_blocks, sizeof(*folios),
			       GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, folios);
	while (n < persist_pools[nid]->nr_blocks) {
		folio = persist_alloc_folio(nid, PERSIST_ORDER_1G, 0);
		if (IS_ERR(folio))
			break;
		folios[n++] = folio;
	}
	KUNIT_EXPECT_EQ(test, n, persist_pools[nid]->nr_blocks);
	KUNIT_EXPECT_EQ(test, pool_free_pages(nid), 0);
	KUNIT_EXPECT_EQ(test, PTR_ERR(persist_alloc_folio(nid, PERSIST_ORDER_1G, 0)), -ENOMEM);
	KUNIT_EXPECT_EQ(test, PTR_ERR(persist_alloc_folio(nid, PERSIST_ORDER_2M, 0)), -ENOMEM);
	KUNIT_EXPECT_EQ(test, PTR_ERR(persist_alloc_folio(nid, PERSIST_ORDER_4K,
							  PERSIST_ALLOC_NO_DIRECT_MAP)), -ENOMEM);
	KUNIT_EXPECT_EQ(test, pool_free_pages(nid), 0);
	for (i = 0; i < n; i++)
		KUNIT_EXPECT_EQ(test, persist_free_folio(folios[i]), 0);
	KUNIT_EXPECT_EQ(test, pool_free_pages(nid), before);
}

static void pool_bad_free_refused(struct kunit *test)
{
	int nid = pool_node(test);
	unsigned long before = pool_free_pages(nid);
	struct folio *folio;
	struct page *page;

	/* Foreign folio. */
	page = alloc_page(GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, page);
	KUNIT_EXPECT_EQ(test, persist_free_folio(page_folio(page)), -EINVAL);
	__free_page(page);

	/* Still referenced elsewhere, then double free. */
	folio = persist_alloc_folio(nid, PERSIST_ORDER_4K, 0);
	KUNIT_ASSERT_FALSE(test, IS_ERR(folio));
	folio_get(folio);
	KUNIT_EXPECT_EQ(test, persist_free_folio(folio), -EBUSY);
	folio_put(folio);
	KUNIT_EXPECT_EQ(test, persist_free_folio(folio), 0);
	KUNIT_EXPECT_EQ(test, persist_free_folio(folio), -EINVAL);
	KUNIT_EXPECT_EQ(test, pool_free_pages(nid), before);
}

static void pool_bad_arguments(struct kunit *test)
{
	int nid = pool_node(test);
	unsigned long before = pool_free_pages(nid);

	KUNIT_EXPECT_EQ(test, PTR_ERR(persist_alloc_folio(nid, 5, 0)), -EINVAL);
	KUNIT_EXPECT_EQ(test, PTR_ERR(persist_alloc_folio(nid, PERSIST_ORDER_1G + 1, 0)),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, PTR_ERR(persist_alloc_folio(nid, 0, BIT(12))), -EINVAL);
	KUNIT_EXPECT_EQ(test, PTR_ERR(persist_alloc_folio(nr_node_ids, 0, 0)), -EINVAL);
	KUNIT_EXPECT_EQ(test, PTR_ERR(persist_alloc_folio(-5, 0, 0)), -EINVAL);
	KUNIT_EXPECT_EQ(test, PTR_ERR(persist_alloc_folio(nid, PERSIST_ORDER_4K,
							  PERSIST_ALLOC_HVO)), -EINVAL);
	KUNIT_EXPECT_EQ(test, pool_free_pages(nid), before);
}

#define TEST_BLOCKS	2

/* A handover of TEST_BLOCKS blocks at 1 GiB and 2 GiB on node 0. */
static struct persist_alloc_ser *make_ser(struct kunit *test, size_t *size)
{
	struct persist_alloc_block_ser *b;
	struct persist_alloc_ser *ser;
	int i;

	*size = sizeof(*ser) + TEST_BLOCKS * sizeof(*b);
	ser = kunit_kzalloc(test, *size, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, ser);
	strscpy(ser->compatible, PERSIST_ALLOC_KHO_COMPATIBLE, sizeof(ser->compatible));
	ser->nr_blocks = TEST_BLOCKS;
	b = (void *)(ser + 1);
	for (i = 0; i < TEST_BLOCKS; i++)
		b[i].phys = (u64)(i + 1) * PERSIST_BLOCK_SIZE;
	return ser;
}

static const struct persist_alloc_extent_ser good_extents[] = {
	{ .phys = SZ_1G, .owner = 1, .order = PERSIST_ORDER_1G,
	  .flags = PERSIST_ALLOC_SER_NO_DIRECT_MAP },
	{ .phys = SZ_2G + SZ_2M, .owner = 2, .order = PERSIST_ORDER_2M },
	{ .phys = SZ_2G + SZ_4K, .owner = 3, .order = PERSIST_ORDER_4K },
	{ .phys = SZ_2G, .owner = 3, .order = PERSIST_ORDER_4K },
};

static void kho_check_accepts_valid(struct kunit *test)
{
	size_t size;
	struct persist_alloc_ser *ser = make_ser(test, &size);
	struct persist_alloc_block_ser *b = (void *)(ser + 1);
	struct persist_alloc_extent_ser ext[ARRAY_SIZE(good_extents)];

	KUNIT_EXPECT_EQ(test, persist_kho_check(ser, size, NULL), 0);
	ser->nr_extents = ARRAY_SIZE(good_extents);
	KUNIT_EXPECT_EQ(test, persist_kho_check(ser, size, good_extents), 0);
	/* The 1 GiB block as one HVO extent, flagged for pre-HVO. */
	memcpy(ext, good_extents, sizeof(ext));
	ext[0].flags |= PERSIST_ALLOC_SER_HVO;
	b[0].flags = PERSIST_ALLOC_BLOCK_SER_HVO_1G;
	KUNIT_EXPECT_EQ(test, persist_kho_check(ser, size, ext), 0);
	/* Without HVO on the extent, the flag is a lie. */
	KUNIT_EXPECT_EQ(test, persist_kho_check(ser, size, good_extents), -EINVAL);
}

static void kho_check_refuses_other_versions(struct kunit *test)
{
	size_t size;
	struct persist_alloc_ser *ser = make_ser(test, &size);

	KUNIT_EXPECT_EQ(test, persist_kho_check(ser, sizeof(*ser) - 1, NULL), -EPROTO);
	strscpy(ser->compatible, "persist-alloc-v0", sizeof(ser->compatible));
	KUNIT_EXPECT_EQ(test, persist_kho_check(ser, size, NULL), -EPROTO);
	strscpy(ser->compatible, "persist-alloc-v10", sizeof(ser->compatible));
	KUNIT_EXPECT_EQ(test, persist_kho_check(ser, size, NULL), -EPROTO);
}

static void kho_check_refuses_bad_sizes(struct kunit *test)
{
	size_t size;
	struct persist_alloc_ser *ser = make_ser(test, &size);

	ser->nr_blocks = TEST_BLOCKS + 1;
	KUNIT_EXPECT_EQ(test, persist_kho_check(ser, size, NULL), -EINVAL);
	ser->nr_blocks = U64_MAX;
	KUNIT_EXPECT_EQ(test, persist_kho_check(ser, size, NULL), -EINVAL);
	ser->nr_blocks = TEST_BLOCKS;
	ser->nr_extents = 1;
	KUNIT_EXPECT_EQ(test, persist_kho_check(ser, size, NULL), -EINVAL);
}

static void kho_check_refuses_bad_blocks(struct kunit *test)
{
	size_t size;
	struct persist_alloc_ser *ser = make_ser(test, &size);
	struct persist_alloc_block_ser *b = (void *)(ser + 1);

	b[1].phys = SZ_2G + SZ_2M;
	KUNIT_EXPECT_EQ(test, persist_kho_check(ser, size, NULL), -EINVAL);
	b[1].phys = SZ_1G;
	KUNIT_EXPECT_EQ(test, persist_kho_check(ser, size, NULL), -EEXIST);
	b[1].phys = SZ_2G;
	b[1].nid = nr_node_ids;
	KUNIT_EXPECT_EQ(test, persist_kho_check(ser, size, NULL), -EINVAL);
	b[1].nid = 0;
	b[1].flags = BIT(5);
	KUNIT_EXPECT_EQ(test, persist_kho_check(ser, size, NULL), -EINVAL);
	/* Flagged as one 1 GiB HVO extent, but there is none. */
	b[1].flags = PERSIST_ALLOC_BLOCK_SER_HVO_1G;
	KUNIT_EXPECT_EQ(test, persist_kho_check(ser, size, NULL), -EINVAL);
}

static void kho_check_refuses_bad_extents(struct kunit *test)
{
	struct persist_alloc_extent_ser ext[2] = {};
	size_t size;
	struct persist_alloc_ser *ser = make_ser(test, &size);

	ser->nr_extents = 1;
	ext[0] = (struct persist_alloc_extent_ser){ .phys = 3ULL * SZ_1G, .order = 0 };
	KUNIT_EXPECT_EQ(test, persist_kho_check(ser, size, ext), -EINVAL);	/* outside */
	ext[0] = (struct persist_alloc_extent_ser){ .phys = SZ_1G + SZ_4K, .order = 9 };
	KUNIT_EXPECT_EQ(test, persist_kho_check(ser, size, ext), -EINVAL);	/* misaligned */
	ext[0] = (struct persist_alloc_extent_ser){ .phys = SZ_1G, .order = 5 };
	KUNIT_EXPECT_EQ(test, persist_kho_check(ser, size, ext), -EINVAL);	/* order */
	ext[0] = (struct persist_alloc_extent_ser){ .phys = SZ_1G, .flags = BIT(7) };
	KUNIT_EXPECT_EQ(test, persist_kho_check(ser, size, ext), -EINVAL);	/* flags */
	ser->nr_extents = 2;
	ext[0] = (struct persist_alloc_extent_ser){ .phys = SZ_1G, .order = 18 };
	ext[1] = (struct persist_alloc_extent_ser){ .phys = SZ_1G + SZ_2M, .order = 0 };
	KUNIT_EXPECT_EQ(test, persist_kho_check(ser, size, ext), -EBUSY);	/* overlap */
	ext[0] = (struct persist_alloc_extent_ser){ .phys = SZ_2G + SZ_2M, .order = 9 };
	ext[1] = (struct persist_alloc_extent_ser){ .phys = SZ_2G + SZ_2M, .order = 9 };
	KUNIT_EXPECT_EQ(test, persist_kho_check(ser, size, ext), -EBUSY);	/* twice */
}

static void kho_fill_round_trip(struct kunit *test)
{
	struct persist_alloc_extent_ser *ext, *e;
	struct folio *folios[3];
	struct persist_alloc_ser *ser;
	unsigned long i, j, found = 0;
	int nid = pool_node(test);
	size_t size = SZ_64K;

	ser = kunit_kzalloc(test, size, GFP_KERNEL);
	ext = kunit_kcalloc(test, 8, sizeof(*ext), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, ser);
	KUNIT_ASSERT_NOT_NULL(test, ext);
	folios[0] = persist_alloc_folio(nid, PERSIST_ORDER_2M, PERSIST_ALLOC_NO_DIRECT_MAP);
	folios[1] = persist_alloc_folio(nid, PERSIST_ORDER_4K, 0);
	folios[2] = persist_alloc_folio(nid, PERSIST_ORDER_4K, 0);
	for (i = 0; i < 3; i++)
		KUNIT_ASSERT_FALSE(test, IS_ERR(folios[i]));
	KUNIT_ASSERT_EQ(test, persist_alloc_preserve(folios[0], 0xabc), 0);
	KUNIT_ASSERT_EQ(test, persist_alloc_preserve(folios[1], 0xdef), 0);

	KUNIT_EXPECT_EQ(test, persist_kho_fill(ser, size, ext, 1), -ENOSPC);
	KUNIT_EXPECT_EQ(test, persist_kho_fill(ser, size, ext, 8), 0);
	KUNIT_EXPECT_EQ(test, persist_kho_check(ser, size, ext), 0);
	KUNIT_EXPECT_EQ(test, ser->nr_blocks, persist_pools[nid]->nr_blocks);
	KUNIT_EXPECT_EQ(test, ser->nr_extents, 2);
	for (i = 0; i < ser->nr_extents; i++) {
		e = &ext[i];
		for (j = 0; j < 2; j++) {
			if (e->phys != PFN_PHYS(folio_pfn(folios[j])))
				continue;
			found++;
			KUNIT_EXPECT_EQ(test, e->owner, j ? 0xdefULL : 0xabcULL);
			KUNIT_EXPECT_EQ(test, e->order, folio_order(folios[j]));
			KUNIT_EXPECT_EQ(test, e->flags, j ? 0 : PERSIST_ALLOC_SER_NO_DIRECT_MAP);
		}
	}
	KUNIT_EXPECT_EQ(test, found, 2);

	KUNIT_EXPECT_EQ(test, persist_free_folio(folios[0]), -EBUSY);
	KUNIT_EXPECT_EQ(test, persist_alloc_preserve(folios[0], 1), -EBUSY);
	KUNIT_EXPECT_EQ(test, persist_alloc_unpreserve(folios[2]), -EINVAL);
	for (i = 0; i < 2; i++)
		KUNIT_EXPECT_EQ(test, persist_alloc_unpreserve(folios[i]), 0);
	for (i = 0; i < 3; i++)
		KUNIT_EXPECT_EQ(test, persist_free_folio(folios[i]), 0);
}

static struct kunit_case persist_block_cases[] = {
	KUNIT_CASE(block_1g_is_exclusive),
	KUNIT_CASE(block_split_and_merge),
	KUNIT_CASE(block_4k_fills_split_chunks_first),
	KUNIT_CASE(block_exhaustion_changes_nothing),
	KUNIT_CASE(block_bad_free_refused),
	KUNIT_CASE(block_claim_places_granules),
	{}
};

static struct kunit_case persist_request_cases[] = {
	KUNIT_CASE(request_spread),
	KUNIT_CASE(request_per_node),
	KUNIT_CASE(request_bad_entries_skipped),
	{}
};

static struct kunit_case persist_pool_cases[] = {
	KUNIT_CASE(pool_alloc_free_each_order),
	KUNIT_CASE(pool_no_direct_map),
	KUNIT_CASE(pool_hvo),
	KUNIT_CASE(pool_parallel_stress),
	KUNIT_CASE(pool_exhaustion_changes_nothing),
	KUNIT_CASE(pool_bad_free_refused),
	KUNIT_CASE(pool_bad_arguments),
	{}
};

static struct kunit_case persist_kho_cases[] = {
	KUNIT_CASE(kho_check_accepts_valid),
	KUNIT_CASE(kho_check_refuses_other_versions),
	KUNIT_CASE(kho_check_refuses_bad_sizes),
	KUNIT_CASE(kho_check_refuses_bad_blocks),
	KUNIT_CASE(kho_check_refuses_bad_extents),
	KUNIT_CASE(kho_fill_round_trip),
	{}
};

static struct kunit_suite persist_kho_suite = {
	.name = "persist_alloc_kho",
	.test_cases = persist_kho_cases,
};

static struct kunit_suite persist_pool_suite = {
	.name = "persist_alloc_pool",
	.test_cases = persist_pool_cases,
};

static struct kunit_suite persist_request_suite = {
	.name = "persist_alloc_cmdline",
	.test_cases = persist_request_cases,
};

static struct kunit_suite persist_block_suite = {
	.name = "persist_alloc_block",
	.test_cases = persist_block_cases,
};

kunit_test_suites(&persist_block_suite, &persist_request_suite, &persist_pool_suite,
		  &persist_kho_suite);

MODULE_DESCRIPTION("KUnit tests for persist_alloc");
MODULE_LICENSE("GPL");
