// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for persist_alloc: granule bookkeeping of a 1 GiB block, the
 * command line, and allocations from a real pool when the test kernel was
 * booted with persist_alloc= (scripts/kunit.sh passes persist_alloc=2G).
 */
#include <kunit/test.h>
#include <linux/completion.h>
#include <linux/highmem.h>
#include <linux/kthread.h>
#include <linux/random.h>
#include <linux/kho/abi/persist_alloc.h>
#include <linux/mm.h>
#include <linux/prandom.h>
#include <linux/set_memory.h>
#include <linux/sort.h>

#include "internal.h"

static struct persist_scrub kscrub;

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

	KUNIT_EXPECT_EQ(test, persist_block_alloc(blk, PERSIST_ORDER_1G, true, &kscrub), 0);
	KUNIT_EXPECT_EQ(test, blk->nr_free, 0);
	KUNIT_EXPECT_EQ(test, persist_block_alloc(blk, PERSIST_ORDER_1G, true, &kscrub), -ENOSPC);
	KUNIT_EXPECT_EQ(test, persist_block_alloc(blk, PERSIST_ORDER_2M, true, &kscrub), -ENOSPC);
	KUNIT_EXPECT_EQ(test, persist_block_alloc(blk, 0, true, &kscrub), -ENOSPC);
	KUNIT_EXPECT_EQ(test, persist_block_free(blk, 0, PERSIST_ORDER_1G), 0);
	KUNIT_EXPECT_TRUE(test, persist_block_unused(blk));
	block_exit(test, blk);
}

static void block_split_and_merge(struct kunit *test)
{
	struct persist_block *blk = new_block(test);
	long page, chunk;

	page = persist_block_alloc(blk, 0, true, &kscrub);
	KUNIT_EXPECT_EQ(test, page, 0);
	KUNIT_EXPECT_EQ(test, blk->chunk_state[0], PERSIST_CHUNK_SPLIT);
	chunk = persist_block_alloc(blk, PERSIST_ORDER_2M, true, &kscrub);
	KUNIT_EXPECT_EQ(test, chunk, PERSIST_CHUNK_PAGES);
	KUNIT_EXPECT_EQ(test, blk->nr_free, PERSIST_BLOCK_PAGES - 1 - PERSIST_CHUNK_PAGES);
	/* A split block cannot serve 1 GiB until everything merged back. */
	KUNIT_EXPECT_EQ(test, persist_block_alloc(blk, PERSIST_ORDER_1G, true, &kscrub), -ENOSPC);
	KUNIT_EXPECT_EQ(test, persist_block_free(blk, page, 0), 0);
	KUNIT_EXPECT_EQ(test, blk->chunk_state[0], PERSIST_CHUNK_FREE);
	KUNIT_EXPECT_EQ(test, persist_block_alloc(blk, PERSIST_ORDER_1G, true, &kscrub), -ENOSPC);
	KUNIT_EXPECT_EQ(test, persist_block_free(blk, chunk, PERSIST_ORDER_2M), 0);
	KUNIT_EXPECT_TRUE(test, persist_block_unused(blk));
	KUNIT_EXPECT_EQ(test, persist_block_alloc(blk, PERSIST_ORDER_1G, true, &kscrub), 0);
	block_exit(test, blk);
}

static void block_4k_fills_split_chunks_first(struct kunit *test)
{
	struct persist_block *blk = new_block(test);
	unsigned long i;
	long idx;

	for (i = 0; i < PERSIST_CHUNK_PAGES; i++) {
		idx = persist_block_alloc(blk, 0, true, &kscrub);
		KUNIT_ASSERT_EQ(test, idx, (long)i);
	}
	/* Chunk 0 is full: without splitting there is no room. */
	KUNIT_EXPECT_EQ(test, persist_block_alloc(blk, 0, false, &kscrub), -ENOSPC);
	KUNIT_EXPECT_EQ(test, blk->chunk_state[1], PERSIST_CHUNK_FREE);
	/* A hole in chunk 0 is reused before another chunk is split. */
	KUNIT_EXPECT_EQ(test, persist_block_free(blk, 100, 0), 0);
	KUNIT_EXPECT_EQ(test, persist_block_alloc(blk, 0, false, &kscrub), 100);
	KUNIT_EXPECT_EQ(test, persist_block_alloc(blk, 0, true, &kscrub), PERSIST_CHUNK_PAGES);
	KUNIT_EXPECT_EQ(test, blk->chunk_state[1], PERSIST_CHUNK_SPLIT);
	block_exit(test, blk);
}

static void block_exhaustion_changes_nothing(struct kunit *test)
{
	struct persist_block *blk = new_block(test);
	u8 states[PERSIST_BLOCK_CHUNKS];
	unsigned int c;

	for (c = 0; c < PERSIST_BLOCK_CHUNKS; c++)
		KUNIT_ASSERT_EQ(test, persist_block_alloc(blk, PERSIST_ORDER_2M, true, &kscrub),
				(long)c * PERSIST_CHUNK_PAGES);
	KUNIT_EXPECT_EQ(test, blk->nr_free, 0);
	memcpy(states, blk->chunk_state, sizeof(states));
	KUNIT_EXPECT_EQ(test, persist_block_alloc(blk, PERSIST_ORDER_2M, true, &kscrub), -ENOSPC);
	KUNIT_EXPECT_EQ(test, persist_block_alloc(blk, 0, true, &kscrub), -ENOSPC);
	KUNIT_EXPECT_EQ(test, persist_block_alloc(blk, PERSIST_ORDER_1G, true, &kscrub), -ENOSPC);
	KUNIT_EXPECT_EQ(test, blk->nr_free, 0);
	KUNIT_EXPECT_MEMEQ(test, states, blk->chunk_state, sizeof(states));
	block_exit(test, blk);
}

static void block_bad_free_refused(struct kunit *test)
{
	struct persist_block *blk = new_block(test);
	long chunk = persist_block_alloc(blk, PERSIST_ORDER_2M, true, &kscrub);
	long page = persist_block_alloc(blk, 0, true, &kscrub);
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

/* The free and open chunk bitmaps say what the chunk states say. */
static void expect_chunk_bitmaps(struct kunit *test, const struct persist_block *blk)
{
	unsigned int c;

	for (c = 0; c < PERSIST_BLOCK_CHUNKS; c++) {
		bool free = blk->chunk_state[c] == PERSIST_CHUNK_FREE;
		bool open = blk->chunk_state[c] == PERSIST_CHUNK_SPLIT &&
			    blk->chunk_used[c] < PERSIST_CHUNK_PAGES;

		KUNIT_ASSERT_EQ_MSG(test, test_bit(c, blk->free_chunks), free, "chunk %u", c);
		KUNIT_ASSERT_EQ_MSG(test, test_bit(c, blk->open_chunks), open, "chunk %u", c);
	}
}

/*
 * Random allocations and frees of every order, with claims among them: the
 * chunk bitmaps that allocation searches follow every step, and a chunk
 * filled to its last page is no longer open.
 */
static void block_chunk_bitmaps_follow_states(struct kunit *test)
{
	static const unsigned int orders[] = { 0, 0, 0, PERSIST_ORDER_2M, PERSIST_ORDER_1G };
	struct persist_block *blk = new_block(test);
	struct { long idx; unsigned int order; } *held;
	unsigned int nr = 0, step, i;
	struct rnd_state rnd;

	held = kunit_kcalloc(test, 4096, sizeof(*held), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, held);
	prandom_seed_state(&rnd, 42);
	/* Chunk 0 full to its last page, then one page freed and taken again. */
	for (i = 0; i < PERSIST_CHUNK_PAGES; i++)
		KUNIT_ASSERT_EQ(test, persist_block_alloc(blk, 0, true, &kscrub), (long)i);
	KUNIT_EXPECT_FALSE(test, test_bit(0, blk->open_chunks));
	KUNIT_EXPECT_EQ(test, persist_block_free(blk, 7, 0), 0);
	KUNIT_EXPECT_TRUE(test, test_bit(0, blk->open_chunks));
	KUNIT_EXPECT_EQ(test, persist_block_alloc(blk, 0, false, &kscrub), 7);
	expect_chunk_bitmaps(test, blk);
	for (i = 0; i < PERSIST_CHUNK_PAGES; i++)
		KUNIT_ASSERT_EQ(test, persist_block_free(blk, i, 0), 0);
	expect_chunk_bitmaps(test, blk);

	for (step = 0; step < 3000; step++) {
		u32 r = prandom_u32_state(&rnd);

		if (nr && (r & 1 || nr == 4096)) {
			i = (r >> 1) % nr;
			KUNIT_ASSERT_EQ(test, persist_block_free(blk, held[i].idx,
								 held[i].order), 0);
			held[i] = held[--nr];
		} else if (r & 2 && !(r & 12)) {
			/* a claim of a random 4 KiB page, as adoption does */
			long idx = (r >> 4) % PERSIST_BLOCK_PAGES;

			if (!persist_block_claim(blk, idx, 0)) {
				held[nr].idx = idx;
				held[nr++].order = 0;
			}
		} else {
			unsigned int order = orders[(r >> 1) % ARRAY_SIZE(orders)];
			long idx = persist_block_alloc(blk, order, true, &kscrub);

			if (idx >= 0) {
				held[nr].idx = idx;
				held[nr++].order = order;
			}
		}
		expect_chunk_bitmaps(test, blk);
	}
	while (nr--)
		KUNIT_ASSERT_EQ(test, persist_block_free(blk, held[nr].idx, held[nr].order), 0);
	expect_chunk_bitmaps(test, blk);
	KUNIT_EXPECT_TRUE(test, persist_block_unused(blk));
	block_exit(test, blk);
}

static void request_spread(struct kunit *test)
{
	struct persist_request req;

	KUNIT_EXPECT_EQ(test, persist_parse_request("persist_alloc", "2G", &req), 0);
	KUNIT_EXPECT_EQ(test, req.spread_gib, 2);
	KUNIT_EXPECT_EQ(test, persist_parse_request("persist_alloc", "3072M", &req), 0);
	KUNIT_EXPECT_EQ(test, req.spread_gib, 3);
	KUNIT_EXPECT_EQ(test, persist_parse_request("persist_alloc", "1536M", &req), 1);
	KUNIT_EXPECT_EQ(test, req.spread_gib, 0);
	KUNIT_EXPECT_EQ(test, persist_parse_request("persist_alloc", "0", &req), 1);
	KUNIT_EXPECT_EQ(test, persist_parse_request("persist_alloc", "", &req), 1);
	KUNIT_EXPECT_EQ(test, persist_parse_request("persist_alloc", "1Gx", &req), 1);
}

static void request_per_node(struct kunit *test)
{
	struct persist_request req;

	KUNIT_EXPECT_EQ(test, persist_parse_request("persist_alloc", "0:1G,1:2G", &req), 0);
	KUNIT_EXPECT_EQ(test, req.spread_gib, 0);
	KUNIT_EXPECT_EQ(test, req.node_gib[0], 1);
	KUNIT_EXPECT_EQ(test, req.node_gib[1], 2);
}

static void request_bad_entries_skipped(struct kunit *test)
{
	struct persist_request req;
	char huge_node[32];

	/* Bad size, bad node, node twice, no colon: four bad, one good. */
	KUNIT_EXPECT_EQ(test, persist_parse_request("persist_alloc", "0:1G,1:3M,x:1G,0:2G,5", &req),
			4);
	KUNIT_EXPECT_EQ(test, req.node_gib[0], 1);
	KUNIT_EXPECT_EQ(test, req.node_gib[1], 0);
	snprintf(huge_node, sizeof(huge_node), "%d:1G", MAX_NUMNODES);
	KUNIT_EXPECT_EQ(test, persist_parse_request("persist_alloc", huge_node, &req), 1);
	KUNIT_EXPECT_EQ(test, persist_parse_request("persist_alloc", ":1G", &req), 1);
	KUNIT_EXPECT_EQ(test, persist_parse_request("persist_alloc", "1:", &req), 1);
	KUNIT_EXPECT_EQ(test, persist_parse_request("persist_alloc", "-1:1G", &req), 1);
	/* Sizes that would wrap around 64 bits, or carry junk, are refused. */
	KUNIT_EXPECT_EQ(test, persist_parse_request("persist_alloc", "16777217T", &req), 1);
	KUNIT_EXPECT_EQ(test, req.spread_gib, 0);
	KUNIT_EXPECT_EQ(test, persist_parse_request("persist_alloc", "0:18446744073709551616",
						    &req), 1);
	KUNIT_EXPECT_EQ(test, persist_parse_request("persist_alloc", "0:16E", &req), 1);
	KUNIT_EXPECT_EQ(test, persist_parse_request("persist_alloc", "0:1GB", &req), 1);
	KUNIT_EXPECT_EQ(test, persist_parse_request("persist_alloc", "0:1048576M", &req), 0);
	KUNIT_EXPECT_EQ(test, req.node_gib[0], 1024);
	KUNIT_EXPECT_EQ(test, persist_parse_request("persist_alloc", "3g", &req), 0);
	KUNIT_EXPECT_EQ(test, req.spread_gib, 3);
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
	kunit_skip(test, "no persist_alloc pool: boot with persist_alloc=2G");
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
	/* Kept HVO blocks are free, whole in their bookkeeping. */
	nr += pool->nr_hvo_kept * PERSIST_BLOCK_PAGES;
	spin_unlock(&pool->lock);
	return nr;
}

static void folio_fill(struct folio *folio, int c)
{
	unsigned long i;

	for (i = 0; i < folio_nr_pages(folio); i++) {
		void *p = kmap_local_folio(folio, i * PAGE_SIZE);

		memset(p, c, PAGE_SIZE);
		kunmap_local(p);
	}
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

/*
 * Every struct page of every block of the pool belongs to the pool's node
 * and to the zone that spans it, deferred struct page init or not: the
 * carve-out is MEMBLOCK_RSRV_NOINIT, so persist_alloc initializes what
 * early boot left.
 */
static void pool_struct_pages_initialized(struct kunit *test)
{
	int nid = pool_node(test);
	unsigned long i, pfn, bad = 0, first_bad = 0, blocks = 0;
	struct persist_block *blk;
	struct page *page;

	mutex_lock(&persist_resize_lock);
	list_for_each_entry(blk, &persist_pools[nid]->blocks, list) {
		for (i = 0; i < PERSIST_BLOCK_PAGES; i++) {
			pfn = PHYS_PFN(blk->base) + i;
			page = pfn_to_page(pfn);
			if (page_to_nid(page) == nid && zone_spans_pfn(page_zone(page), pfn))
				continue;
			if (!bad++)
				first_bad = pfn;
		}
		blocks++;
		cond_resched();
	}
	mutex_unlock(&persist_resize_lock);
	KUNIT_EXPECT_GT(test, blocks, 0);
	KUNIT_EXPECT_EQ_MSG(test, bad, 0, "struct pages not of node %d or their zone, first %#lx",
			    nid, first_bad);
}

static void pool_alloc_free_each_order(struct kunit *test)
{
	static const unsigned int orders[] = {
		PERSIST_ORDER_4K, PERSIST_ORDER_2M, PERSIST_ORDER_1G,
	};
	int nid = pool_node(test);
	unsigned long before = pool_free_pages(nid), pfn;
	struct folio *folio;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(orders); i++) {
		/* Dirty a granule first: ZERO must zero what the last user left. */
		folio = persist_alloc_folio(nid, orders[i], 0);
		KUNIT_ASSERT_FALSE(test, IS_ERR(folio));
		pfn = folio_pfn(folio);
		folio_fill(folio, 0xa5);
		KUNIT_ASSERT_EQ(test, persist_free_folio(folio), 0);
		folio = persist_alloc_folio(nid, orders[i], PERSIST_ALLOC_ZERO);
		KUNIT_ASSERT_FALSE_MSG(test, IS_ERR(folio), "order %u: %ld", orders[i],
				       PTR_ERR(folio));
		KUNIT_EXPECT_EQ_MSG(test, folio_pfn(folio), pfn,
				    "the dirtied granule was not handed out again");
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

#define STRUCT_PAGES_PER_PAGE	(PAGE_SIZE / sizeof(struct page))

/* Physical page that holds the struct page of @pfn, through the vmemmap. */
static phys_addr_t pfn_vmemmap_page(unsigned long pfn)
{
	return PAGE_ALIGN_DOWN(slow_virt_to_phys(pfn_to_page(pfn)));
}

static phys_addr_t vmemmap_page_of(struct folio *folio, unsigned long i)
{
	return pfn_vmemmap_page(folio_pfn(folio) + i);
}

static void pool_hvo(struct kunit *test)
{
	static const unsigned int orders[] = { PERSIST_ORDER_2M, PERSIST_ORDER_1G };
	int nid = pool_node(test);
	struct persist_pool *pool = persist_pools[nid];
	unsigned long saved, pfn;
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
		/*
		 * The vmemmap really is remapped: the struct pages past the
		 * first vmemmap page, the last one included, all live in one
		 * shared page, which is not the head's.
		 */
		KUNIT_EXPECT_EQ(test, vmemmap_page_of(folio, STRUCT_PAGES_PER_PAGE),
				vmemmap_page_of(folio, folio_nr_pages(folio) - 1));
		KUNIT_EXPECT_EQ(test, vmemmap_page_of(folio, 2 * STRUCT_PAGES_PER_PAGE),
				vmemmap_page_of(folio, STRUCT_PAGES_PER_PAGE));
		KUNIT_EXPECT_NE(test, vmemmap_page_of(folio, 0),
				vmemmap_page_of(folio, STRUCT_PAGES_PER_PAGE));
		pfn = folio_pfn(folio);
		KUNIT_EXPECT_EQ(test, persist_free_folio(folio), 0);
		KUNIT_EXPECT_EQ(test, pool->vmemmap_saved, 0);
		if (orders[i] == PERSIST_ORDER_1G) {
			/* Kept optimized for the next one, until it gives way. */
			KUNIT_EXPECT_EQ(test, pfn_vmemmap_page(pfn + STRUCT_PAGES_PER_PAGE),
					pfn_vmemmap_page(pfn + 2 * STRUCT_PAGES_PER_PAGE));
			KUNIT_EXPECT_TRUE(test, persist_hvo_unkeep(pool));
		}
		/* And restored: every vmemmap page its own again. */
		KUNIT_EXPECT_NE(test, pfn_vmemmap_page(pfn + STRUCT_PAGES_PER_PAGE),
				pfn_vmemmap_page(pfn + 2 * STRUCT_PAGES_PER_PAGE));
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

static bool on_list(const struct list_head *head, const struct list_head *entry)
{
	const struct list_head *pos;

	list_for_each(pos, head)
		if (pos == entry)
			return true;
	return false;
}

/* Every block of @nid's pool is on exactly the lists its state asks for. */
static void expect_pool_lists(struct kunit *test, int nid)
{
	struct persist_pool *pool = persist_pools[nid];
	struct persist_block *blk;

	spin_lock(&pool->lock);
	list_for_each_entry(blk, &pool->blocks, list) {
		bool unused = !blk->whole && persist_block_unused(blk);
		bool chunks = !blk->whole && !unused &&
			      !bitmap_empty(blk->free_chunks, PERSIST_BLOCK_CHUNKS);
		bool pages = !blk->whole &&
			     !bitmap_empty(blk->open_chunks, PERSIST_BLOCK_CHUNKS);

		KUNIT_EXPECT_EQ(test, on_list(&pool->unused, &blk->avail), unused);
		KUNIT_EXPECT_EQ(test, on_list(&pool->chunk_avail, &blk->avail), chunks);
		KUNIT_EXPECT_EQ(test, on_list(&pool->page_avail, &blk->page_link), pages);
	}
	spin_unlock(&pool->lock);
}

static struct persist_block *folio_block(struct folio *folio)
{
	return xa_load(&persist_blocks, folio_pfn(folio) / PERSIST_BLOCK_PAGES);
}

static unsigned int unused_blocks(struct persist_pool *pool)
{
	const struct list_head *pos;
	unsigned int n = 0;

	spin_lock(&pool->lock);
	list_for_each(pos, &pool->unused)
		n++;
	spin_unlock(&pool->lock);
	return n;
}

#define ON_UNUSED	BIT(0)
#define ON_CHUNK_AVAIL	BIT(1)
#define ON_PAGE_AVAIL	BIT(2)

/* Which of its pool's lists @blk is on. */
static unsigned int block_lists(struct persist_block *blk)
{
	struct persist_pool *pool = blk->pool;
	unsigned int on = 0;

	spin_lock(&pool->lock);
	if (on_list(&pool->unused, &blk->avail))
		on |= ON_UNUSED;
	if (on_list(&pool->chunk_avail, &blk->avail))
		on |= ON_CHUNK_AVAIL;
	if (on_list(&pool->page_avail, &blk->page_link))
		on |= ON_PAGE_AVAIL;
	spin_unlock(&pool->lock);
	return on;
}

static void free_unless_err(struct kunit *test, struct folio *folio)
{
	if (!IS_ERR_OR_NULL(folio))
		KUNIT_EXPECT_EQ(test, persist_free_folio(folio), 0);
}

/*
 * Two unused blocks; the first becomes a 1 GiB granule, a 2 MiB granule
 * goes to the second, and the first is freed: it is unused again and ahead
 * of the block in use in the pool. A 4 KiB granule must go to the block in
 * use, not split the unused one, which stays whole for the 1 GiB request
 * that follows. The pool's lists follow every step. (scripts/kunit.sh
 * boots with persist_alloc=2G nokaslr for this.)
 */
static void pool_small_granules_spare_unused_blocks(struct kunit *test)
{
	int nid = pool_node(test);
	struct folio *g1, *m2 = NULL, *p4 = NULL, *g1b = NULL;

	if (unused_blocks(persist_pools[nid]) < 2)
		kunit_skip(test, "needs two unused blocks in one pool: %s",
			   "boot with persist_alloc=2G nokaslr");
	expect_pool_lists(test, nid);
	g1 = persist_alloc_folio(nid, PERSIST_ORDER_1G, 0);
	KUNIT_ASSERT_FALSE(test, IS_ERR(g1));
	expect_pool_lists(test, nid);
	/* Spelled out, not by expect_pool_lists()'s rule: a whole block is on no list. */
	KUNIT_EXPECT_EQ(test, block_lists(folio_block(g1)), 0);
	m2 = persist_alloc_folio(nid, PERSIST_ORDER_2M, 0);
	if (IS_ERR(m2)) {
		KUNIT_FAIL(test, "no 2 MiB granule: %pe", m2);
		goto out;
	}
	KUNIT_EXPECT_PTR_NE(test, folio_block(m2), folio_block(g1));
	/* The first block is unused again, ahead of the one in use. */
	KUNIT_EXPECT_EQ(test, persist_free_folio(g1), 0);
	g1 = NULL;
	expect_pool_lists(test, nid);
	p4 = persist_alloc_folio(nid, PERSIST_ORDER_4K, 0);
	if (IS_ERR(p4)) {
		KUNIT_FAIL(test, "no 4 KiB granule: %pe", p4);
		goto out;
	}
	KUNIT_EXPECT_PTR_EQ(test, folio_block(p4), folio_block(m2));
	expect_pool_lists(test, nid);
	/* one chunk whole, one split with free pages, 510 free */
	KUNIT_EXPECT_EQ(test, block_lists(folio_block(m2)), ON_CHUNK_AVAIL | ON_PAGE_AVAIL);
	g1b = persist_alloc_folio(nid, PERSIST_ORDER_1G, 0);
	KUNIT_EXPECT_FALSE_MSG(test, IS_ERR(g1b), "a 4 KiB page split the unused block");
	expect_pool_lists(test, nid);
out:
	/* Whatever an expectation cut short, nothing stays allocated. */
	free_unless_err(test, g1b);
	free_unless_err(test, p4);
	free_unless_err(test, m2);
	free_unless_err(test, g1);
	expect_pool_lists(test, nid);
}

/*
 * A shrink takes a block off the lists, then scrubs it without the pool
 * lock; a memory failure may claim one of its pages meanwhile (hwpoison.c
 * does, under the lock). The block must stay off the lists: nothing may
 * be allocated from a block being released.
 */
static void pool_leaving_block_stays_unlisted(struct kunit *test)
{
	int nid = pool_node(test);
	struct persist_pool *pool = persist_pools[nid];
	bool claimed = false, listed_after_claim = true, freed = false;
	struct persist_block *blk;

	spin_lock(&pool->lock);
	blk = list_first_entry_or_null(&pool->unused, struct persist_block, avail);
	if (blk) {
		persist_block_unlist(blk);
		claimed = !persist_block_claim(blk, 5, PERSIST_ORDER_4K);
		listed_after_claim = on_list(&pool->chunk_avail, &blk->avail) ||
				     on_list(&pool->unused, &blk->avail) ||
				     on_list(&pool->page_avail, &blk->page_link);
		freed = !persist_block_free(blk, 5, PERSIST_ORDER_4K);
		persist_block_list(blk);
	}
	spin_unlock(&pool->lock);
	if (!blk)
		kunit_skip(test, "no unused block");
	KUNIT_EXPECT_TRUE(test, claimed);
	KUNIT_EXPECT_FALSE_MSG(test, listed_after_claim,
			       "a claim put a block being released back on the lists");
	KUNIT_EXPECT_TRUE(test, freed);
	expect_pool_lists(test, nid);
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

/*
 * A crafted memory map for the adoption checks: RAM is [1 GiB, 5 GiB),
 * node 0 below 3 GiB and node 1 above; 4 GiB - 5 GiB is KHO scratch; KHO
 * preserved the blocks at 1, 2 and 4 GiB, and 3 GiB is RAM nobody
 * preserved; 6 GiB is no RAM at all, 7 GiB spans two nodes.
 */
static int fake_block_node(phys_addr_t base)
{
	if (base == 7ULL * SZ_1G)
		return -EXDEV;
	if (base < SZ_1G || base >= 5ULL * SZ_1G)
		return -ENOENT;
	return base < 3ULL * SZ_1G ? 0 : 1;
}

static bool fake_in_scratch(phys_addr_t base, phys_addr_t size)
{
	return base < 5ULL * SZ_1G && base + size > 4ULL * SZ_1G;
}

static bool fake_preserved(phys_addr_t phys, unsigned int order)
{
	return order == PERSIST_ORDER_1G &&
	       (phys == SZ_1G || phys == SZ_2G || phys == 4ULL * SZ_1G);
}

static const struct persist_adopt_env fake_env = {
	.block_node = fake_block_node,
	.in_scratch = fake_in_scratch,
	.preserved = fake_preserved,
};

static enum persist_verdict check_one(u64 phys, u32 nid, u32 flags)
{
	static const struct persist_alloc_block_ser before = { .phys = SZ_1G };
	struct persist_alloc_block_ser b = { .phys = phys, .nid = nid, .flags = flags };

	return persist_check_block(&b, &before, 1, &fake_env);
}

static void adopt_block_checks_every_field(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, check_one(SZ_2G, 0, 0), PERSIST_ADOPT);
	KUNIT_EXPECT_EQ(test, check_one(SZ_2G, 0, PERSIST_ALLOC_BLOCK_SER_HVO_1G),
			PERSIST_ADOPT);
	KUNIT_EXPECT_EQ(test, check_one(SZ_2G, 0, PERSIST_ALLOC_BLOCK_SER_HVO_FREE),
			PERSIST_ADOPT);
	/* One 1 GiB HVO extent and free of extents at once. */
	KUNIT_EXPECT_EQ(test, check_one(SZ_2G, 0, PERSIST_ALLOC_BLOCK_SER_FLAGS),
			PERSIST_REFUSE_FLAGS);
	KUNIT_EXPECT_EQ(test, check_one(SZ_2G + SZ_2M, 0, 0), PERSIST_REFUSE_ALIGN);
	KUNIT_EXPECT_EQ(test, check_one(ALIGN_DOWN(U64_MAX, SZ_1G), 0, 0),
			PERSIST_REFUSE_ALIGN);
	KUNIT_EXPECT_EQ(test, check_one(SZ_2G, 0, BIT(5)), PERSIST_REFUSE_FLAGS);
	KUNIT_EXPECT_EQ(test, check_one(SZ_2G, nr_node_ids, 0), PERSIST_REFUSE_NODE);
	KUNIT_EXPECT_EQ(test, check_one(SZ_2G, U32_MAX, 0), PERSIST_REFUSE_NODE);
	KUNIT_EXPECT_EQ(test, check_one(6ULL * SZ_1G, 0, 0), PERSIST_REFUSE_NOT_RAM);
	KUNIT_EXPECT_EQ(test, check_one(0, 0, 0), PERSIST_REFUSE_NOT_RAM);
	if (num_online_nodes() > 1) {
		/* RAM of node 0 claimed by node 1, and a block over two nodes. */
		KUNIT_EXPECT_EQ(test, check_one(SZ_2G, 1, 0), PERSIST_REFUSE_WRONG_NODE);
		KUNIT_EXPECT_EQ(test, check_one(7ULL * SZ_1G, 1, 0), PERSIST_REFUSE_WRONG_NODE);
		KUNIT_EXPECT_EQ(test, check_one(4ULL * SZ_1G, 1, 0), PERSIST_REFUSE_SCRATCH);
		KUNIT_EXPECT_EQ(test, check_one(3ULL * SZ_1G, 1, 0),
				PERSIST_REFUSE_NOT_PRESERVED);
	}
	KUNIT_EXPECT_EQ(test, check_one(7ULL * SZ_1G, 0, 0), PERSIST_REFUSE_WRONG_NODE);
	KUNIT_EXPECT_EQ(test, check_one(SZ_1G, 0, 0), PERSIST_REFUSE_DUPLICATE);
	/* Refused for another reason, a second entry would be zeroed under the first. */
	KUNIT_EXPECT_EQ(test, check_one(SZ_1G, 0, PERSIST_ALLOC_BLOCK_SER_FLAGS),
			PERSIST_REFUSE_DUPLICATE);
	KUNIT_EXPECT_EQ(test, check_one(SZ_1G, U32_MAX, 0), PERSIST_REFUSE_DUPLICATE);
}

static void adopt_only_scrubs_unused_ram(struct kunit *test)
{
	struct persist_alloc_block_ser b = { .nid = 1 };

	b.phys = SZ_2G;		/* claims the wrong node, but is ours to zero */
	KUNIT_EXPECT_TRUE(test, persist_block_scrubbable(&b, &fake_env));
	b.phys = 3ULL * SZ_1G;	/* not preserved: this kernel may use it */
	KUNIT_EXPECT_FALSE(test, persist_block_scrubbable(&b, &fake_env));
	b.phys = 4ULL * SZ_1G;	/* scratch */
	KUNIT_EXPECT_FALSE(test, persist_block_scrubbable(&b, &fake_env));
	b.phys = 6ULL * SZ_1G;	/* not RAM */
	KUNIT_EXPECT_FALSE(test, persist_block_scrubbable(&b, &fake_env));
	b.phys = SZ_2G + SZ_4K;
	KUNIT_EXPECT_FALSE(test, persist_block_scrubbable(&b, &fake_env));
}

static void adopt_header_bounds_the_blocks(struct kunit *test)
{
	size_t size = sizeof(struct persist_alloc_ser) + 2 * sizeof(struct persist_alloc_block_ser);
	struct persist_alloc_ser *ser = kunit_kzalloc(test, size, GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, ser);
	strscpy(ser->compatible, PERSIST_ALLOC_KHO_COMPATIBLE, sizeof(ser->compatible));
	ser->nr_blocks = 2;
	KUNIT_EXPECT_EQ(test, persist_handover_nr_blocks(ser, size), 2);
	ser->nr_blocks = 3;
	KUNIT_EXPECT_EQ(test, persist_handover_nr_blocks(ser, size), 2);
	ser->nr_blocks = U64_MAX;
	KUNIT_EXPECT_EQ(test, persist_handover_nr_blocks(ser, size), 2);
	KUNIT_EXPECT_EQ(test, persist_handover_nr_blocks(ser, sizeof(*ser) - 1), -EPROTO);
	strscpy(ser->compatible, "persist-alloc-v0", sizeof(ser->compatible));
	KUNIT_EXPECT_EQ(test, persist_handover_nr_blocks(ser, size), -EPROTO);
	strscpy(ser->compatible, "persist-alloc-v10", sizeof(ser->compatible));
	KUNIT_EXPECT_EQ(test, persist_handover_nr_blocks(ser, size), -EPROTO);
}

/* Any receiver finds the ranges: their count is bounded by the blob and the limit. */
static void adopt_ranges_are_bounded(struct kunit *test)
{
	size_t size = struct_size_t(struct persist_alloc_ranges_ser, phys, 3);
	struct persist_alloc_ranges_ser *r = kunit_kzalloc(test, size, GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, r);
	r->magic = PERSIST_ALLOC_RANGES_MAGIC;
	r->nr = 2;
	KUNIT_EXPECT_EQ(test, persist_ranges_nr(r, size), 2);
	r->nr = 4;
	KUNIT_EXPECT_EQ(test, persist_ranges_nr(r, size), 3);
	r->nr = U64_MAX;
	KUNIT_EXPECT_EQ(test, persist_ranges_nr(r, size), 3);
	KUNIT_EXPECT_EQ(test, persist_ranges_nr(r, sizeof(*r) - 1), -EPROTO);
	r->magic = PERSIST_ALLOC_RANGES_MAGIC + 1;
	KUNIT_EXPECT_EQ(test, persist_ranges_nr(r, size), -EPROTO);
	/* However big the blob, no more than a handover's blocks. */
	r->magic = PERSIST_ALLOC_RANGES_MAGIC;
	KUNIT_EXPECT_EQ(test, persist_ranges_nr(r, SIZE_MAX), PERSIST_HANDOVER_BLOCKS_MAX);
}

static enum persist_verdict extent_run(u64 phys, u32 nr, u16 order, u16 flags)
{
	struct persist_alloc_extent_ser e = {
		.phys = phys, .nr = nr, .order = order, .flags = flags,
	};

	return persist_check_extent(&e);
}

static enum persist_verdict extent_one(u64 phys, u16 order, u16 flags)
{
	return extent_run(phys, 1, order, flags);
}

static void adopt_extent_checks_every_field(struct kunit *test)
{
	struct persist_alloc_extent_ser owned = {
		.phys = SZ_1G, .owner = 1, .nr = 1, .flags = PERSIST_ALLOC_SER_HWPOISON,
	};

	/* A failed page: one 4 KiB page, no attribute, no owner. */
	KUNIT_EXPECT_EQ(test, extent_one(SZ_1G + SZ_4K, 0, PERSIST_ALLOC_SER_HWPOISON),
			PERSIST_ADOPT);
	KUNIT_EXPECT_EQ(test, extent_one(SZ_1G + 1, 0, PERSIST_ALLOC_SER_HWPOISON),
			PERSIST_REFUSE_ALIGN);
	KUNIT_EXPECT_EQ(test, extent_one(SZ_1G, 9, PERSIST_ALLOC_SER_HWPOISON),
			PERSIST_REFUSE_ORDER);
	KUNIT_EXPECT_EQ(test, extent_one(SZ_1G, 0, PERSIST_ALLOC_SER_HWPOISON |
					 PERSIST_ALLOC_SER_NO_DIRECT_MAP),
			PERSIST_REFUSE_FLAGS);
	KUNIT_EXPECT_EQ(test, persist_check_extent(&owned), PERSIST_REFUSE_FLAGS);
	KUNIT_EXPECT_EQ(test, extent_one(SZ_1G, 18, PERSIST_ALLOC_SER_FLAGS), PERSIST_ADOPT);
	KUNIT_EXPECT_EQ(test, extent_one(SZ_1G + SZ_2M, 9, PERSIST_ALLOC_SER_HVO), PERSIST_ADOPT);
	KUNIT_EXPECT_EQ(test, extent_one(SZ_1G + SZ_4K, 0, PERSIST_ALLOC_SER_NO_DIRECT_MAP),
			PERSIST_ADOPT);
	KUNIT_EXPECT_EQ(test, extent_one(SZ_1G, 0, BIT(7)), PERSIST_REFUSE_FLAGS);
	KUNIT_EXPECT_EQ(test, extent_one(SZ_1G, 5, 0), PERSIST_REFUSE_ORDER);
	KUNIT_EXPECT_EQ(test, extent_one(SZ_1G, U16_MAX, 0), PERSIST_REFUSE_ORDER);
	KUNIT_EXPECT_EQ(test, extent_one(SZ_1G, 0, PERSIST_ALLOC_SER_HVO), PERSIST_REFUSE_ORDER);
	KUNIT_EXPECT_EQ(test, extent_one(SZ_1G + SZ_4K, 9, 0), PERSIST_REFUSE_ALIGN);
	KUNIT_EXPECT_EQ(test, extent_one(SZ_1G + SZ_2M, 18, 0), PERSIST_REFUSE_ALIGN);
	KUNIT_EXPECT_EQ(test, extent_one(SZ_1G + 8, 0, 0), PERSIST_REFUSE_ALIGN);
	/* A run holds at least one granule and ends in the block it starts in. */
	KUNIT_EXPECT_EQ(test, extent_run(SZ_1G, 0, 9, 0), PERSIST_REFUSE_LENGTH);
	KUNIT_EXPECT_EQ(test, extent_run(SZ_1G, 512, 9, 0), PERSIST_ADOPT);
	KUNIT_EXPECT_EQ(test, extent_run(SZ_1G, 513, 9, 0), PERSIST_REFUSE_LENGTH);
	KUNIT_EXPECT_EQ(test, extent_run(SZ_1G + SZ_2M, 511, 9, PERSIST_ALLOC_SER_HVO),
			PERSIST_ADOPT);
	KUNIT_EXPECT_EQ(test, extent_run(SZ_1G + SZ_2M, 512, 9, 0), PERSIST_REFUSE_LENGTH);
	KUNIT_EXPECT_EQ(test, extent_run(SZ_1G, 262144, 0, 0), PERSIST_ADOPT);
	KUNIT_EXPECT_EQ(test, extent_run(SZ_1G + SZ_4K, 262144, 0, 0), PERSIST_REFUSE_LENGTH);
	KUNIT_EXPECT_EQ(test, extent_run(SZ_1G, U32_MAX, 0, 0), PERSIST_REFUSE_LENGTH);
	KUNIT_EXPECT_EQ(test, extent_run(SZ_1G, U32_MAX, 18, 0), PERSIST_REFUSE_LENGTH);
	KUNIT_EXPECT_EQ(test, extent_run(SZ_1G, 2, 18, PERSIST_ALLOC_SER_HVO),
			PERSIST_REFUSE_LENGTH);
	KUNIT_EXPECT_EQ(test, extent_run(SZ_1G, 2, 0, PERSIST_ALLOC_SER_HWPOISON),
			PERSIST_REFUSE_LENGTH);
	KUNIT_EXPECT_EQ(test, extent_run(SZ_1G, 0, 0, PERSIST_ALLOC_SER_HWPOISON),
			PERSIST_REFUSE_LENGTH);
	KUNIT_EXPECT_STREQ(test, persist_verdict_str(PERSIST_REFUSE_OVERLAP),
			   "overlapping another extent");
	KUNIT_EXPECT_STREQ(test, persist_verdict_str(1000), "refused");
}

static void block_dirty_chunks_scrubbed_once(struct kunit *test)
{
	struct persist_block *blk = new_block(test);
	struct persist_scrub scrub;
	long idx;

	bitmap_fill(blk->dirty, PERSIST_BLOCK_CHUNKS);
	/* A 2 MiB granule scrubs its chunk, which is clean from then on. */
	idx = persist_block_alloc(blk, PERSIST_ORDER_2M, true, &scrub);
	KUNIT_ASSERT_EQ(test, idx, 0);
	KUNIT_EXPECT_EQ(test, bitmap_weight(scrub.chunks, PERSIST_BLOCK_CHUNKS), 1);
	KUNIT_EXPECT_TRUE(test, test_bit(0, scrub.chunks));
	KUNIT_EXPECT_FALSE(test, scrub.page);
	KUNIT_EXPECT_FALSE(test, test_bit(0, blk->dirty));
	KUNIT_EXPECT_EQ(test, persist_block_free(blk, 0, PERSIST_ORDER_2M), 0);
	KUNIT_EXPECT_EQ(test, persist_block_alloc(blk, PERSIST_ORDER_2M, true, &scrub), 0);
	KUNIT_EXPECT_TRUE(test, bitmap_empty(scrub.chunks, PERSIST_BLOCK_CHUNKS));
	/* 4 KiB granules of a dirty chunk scrub their page; the chunk stays dirty. */
	idx = persist_block_alloc(blk, 0, true, &scrub);
	KUNIT_EXPECT_EQ(test, idx, PERSIST_CHUNK_PAGES);
	KUNIT_EXPECT_TRUE(test, scrub.page);
	KUNIT_EXPECT_TRUE(test, bitmap_empty(scrub.chunks, PERSIST_BLOCK_CHUNKS));
	KUNIT_EXPECT_TRUE(test, test_bit(1, blk->dirty));
	KUNIT_EXPECT_EQ(test, persist_block_free(blk, idx, 0), 0);
	KUNIT_EXPECT_EQ(test, persist_block_free(blk, 0, PERSIST_ORDER_2M), 0);
	/* A 1 GiB granule takes every dirty chunk left, and the block is clean. */
	KUNIT_EXPECT_EQ(test, persist_block_alloc(blk, PERSIST_ORDER_1G, true, &scrub), 0);
	KUNIT_EXPECT_EQ(test, bitmap_weight(scrub.chunks, PERSIST_BLOCK_CHUNKS),
			PERSIST_BLOCK_CHUNKS - 1);
	KUNIT_EXPECT_FALSE(test, test_bit(0, scrub.chunks));
	KUNIT_EXPECT_TRUE(test, bitmap_empty(blk->dirty, PERSIST_BLOCK_CHUNKS));
	/* A failed scrub marks its chunks dirty again. */
	persist_scrub_undo(blk, &scrub);
	KUNIT_EXPECT_EQ(test, bitmap_weight(blk->dirty, PERSIST_BLOCK_CHUNKS),
			PERSIST_BLOCK_CHUNKS - 1);
	block_exit(test, blk);
}

/*
 * Every outgoing extent entry is a preserved extent of this kernel that
 * knows its index, with the fields it was preserved with, and every
 * outgoing block entry is a pool block that knows its index: the
 * handover kept up to date at each change is the one a full walk would
 * write. A folded handover holds runs: each granule of a run is such an
 * extent. Returns the number of extents; persist_state_lock held.
 */
static unsigned long check_outgoing(struct kunit *test)
{
	const struct persist_alloc_block_ser *blocks;
	const struct persist_alloc_extent_ser *ext;
	bool folded = persist_kho_folded();
	const struct persist_alloc_ser *ser;
	unsigned long i, n = 0, nr_blocks = 0;
	struct persist_extent *e;
	struct persist_block *blk;
	u32 k;
	int nid;

	ser = persist_kho_outgoing(&ext);
	blocks = (const void *)(ser + 1);
	for (i = 0; i < ser->nr_extents; i++) {
		/* No assertion with the lock held: a failure must not abort. */
		KUNIT_EXPECT_EQ(test, persist_check_extent(&ext[i]), PERSIST_ADOPT);
		if (!folded)
			KUNIT_EXPECT_EQ(test, ext[i].nr, 1);
		for (k = 0; k < ext[i].nr && k < PERSIST_BLOCK_PAGES; k++, n++) {
			e = xa_load(&persist_extents,
				    PHYS_PFN(ext[i].phys) + ((unsigned long)k << ext[i].order));
			KUNIT_EXPECT_NOT_NULL(test, e);
			if (!e)
				continue;
			KUNIT_EXPECT_TRUE(test, e->preserved);
			if (!folded)
				KUNIT_EXPECT_EQ(test, e->ser_idx, i);
			KUNIT_EXPECT_EQ(test, ext[i].owner, e->owner);
			KUNIT_EXPECT_EQ(test, ext[i].order, e->order);
			KUNIT_EXPECT_EQ(test, !!(ext[i].flags & PERSIST_ALLOC_SER_HVO),
					!!(e->flags & PERSIST_ALLOC_HVO));
			KUNIT_EXPECT_EQ(test, !!(ext[i].flags & PERSIST_ALLOC_SER_NO_DIRECT_MAP),
					!!(e->flags & PERSIST_ALLOC_NO_DIRECT_MAP));
		}
	}
	for_each_node(nid) {
		if (persist_pools[nid])
			nr_blocks += persist_pools[nid]->nr_blocks;
	}
	KUNIT_EXPECT_EQ(test, ser->nr_blocks, nr_blocks);
	for (i = 0; i < ser->nr_blocks; i++) {
		blk = xa_load(&persist_blocks, blocks[i].phys / PERSIST_BLOCK_SIZE);
		KUNIT_EXPECT_NOT_NULL(test, blk);
		if (!blk)
			continue;
		KUNIT_EXPECT_EQ(test, blk->ser_idx, i);
		KUNIT_EXPECT_EQ(test, blocks[i].nid, blk->pool->nid);
	}
	return n;
}

/* How often @folio is in the outgoing extents; persist_state_lock held. */
static unsigned long out_count(struct folio *folio, u64 *owner)
{
	const struct persist_alloc_extent_ser *ext;
	const struct persist_alloc_ser *ser = persist_kho_outgoing(&ext);
	u64 phys = PFN_PHYS(folio_pfn(folio));
	unsigned long i, n = 0;

	for (i = 0; i < ser->nr_extents; i++) {
		if (phys >= ext[i].phys &&
		    phys - ext[i].phys < ((u64)ext[i].nr << (ext[i].order + PAGE_SHIFT))) {
			*owner = ext[i].owner;
			n++;
		}
	}
	return n;
}

#define KHO_TEST_FOLIOS	300

/* The extents handed over before a case starts; skips it without KHO. */
static unsigned long outgoing_base(struct kunit *test)
{
	const struct persist_alloc_extent_ser *ext;
	unsigned long base;

	mutex_lock(&persist_state_lock);
	if (!persist_kho_outgoing(&ext)) {
		mutex_unlock(&persist_state_lock);
		kunit_skip(test, "no KHO: nothing is handed over");
	}
	base = check_outgoing(test);
	mutex_unlock(&persist_state_lock);
	return base;
}

static void kho_handover_follows_preserve(struct kunit *test)
{
	int nid = pool_node(test);
	struct folio **folios;
	unsigned long i, base;
	u64 owner = 0;

	base = outgoing_base(test);

	folios = kunit_kcalloc(test, KHO_TEST_FOLIOS, sizeof(*folios), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, folios);
	folios[0] = persist_alloc_folio(nid, PERSIST_ORDER_2M, PERSIST_ALLOC_NO_DIRECT_MAP);
	folios[1] = persist_alloc_folio(nid, PERSIST_ORDER_2M, PERSIST_ALLOC_HVO);
	for (i = 2; i < KHO_TEST_FOLIOS; i++)
		folios[i] = persist_alloc_folio(nid, PERSIST_ORDER_4K, 0);
	for (i = 0; i < KHO_TEST_FOLIOS; i++)
		KUNIT_ASSERT_FALSE(test, IS_ERR(folios[i]));
	/* Enough entries to grow the array, which must keep the old ones. */
	for (i = 0; i < KHO_TEST_FOLIOS; i++)
		KUNIT_ASSERT_EQ(test, persist_alloc_preserve(folios[i], 0x1000 + i), 0);
	mutex_lock(&persist_state_lock);
	KUNIT_EXPECT_EQ(test, check_outgoing(test), base + KHO_TEST_FOLIOS);
	for (i = 0; i < KHO_TEST_FOLIOS; i++) {
		KUNIT_EXPECT_EQ(test, out_count(folios[i], &owner), 1);
		KUNIT_EXPECT_EQ(test, owner, 0x1000 + i);
	}
	mutex_unlock(&persist_state_lock);

	/* Unpreserving from the middle and the end leaves no hole and no stale entry. */
	for (i = 0; i < KHO_TEST_FOLIOS; i += 3)
		KUNIT_EXPECT_EQ(test, persist_alloc_unpreserve(folios[i]), 0);
	KUNIT_EXPECT_EQ(test, persist_alloc_unpreserve(folios[KHO_TEST_FOLIOS - 1]), 0);
	KUNIT_EXPECT_EQ(test, persist_alloc_unpreserve(folios[0]), -EINVAL);
	KUNIT_EXPECT_EQ(test, persist_alloc_preserve(folios[1], 1), -EBUSY);
	mutex_lock(&persist_state_lock);
	KUNIT_EXPECT_EQ(test, check_outgoing(test), base + KHO_TEST_FOLIOS - 100 - 1);
	for (i = 0; i < KHO_TEST_FOLIOS; i++)
		KUNIT_EXPECT_EQ(test, out_count(folios[i], &owner),
				i % 3 && i != KHO_TEST_FOLIOS - 1 ? 1 : 0);
	mutex_unlock(&persist_state_lock);

	/* Preserved again under another owner: the new owner is handed over. */
	KUNIT_EXPECT_EQ(test, persist_alloc_preserve(folios[0], 0xfeed), 0);
	mutex_lock(&persist_state_lock);
	check_outgoing(test);
	KUNIT_EXPECT_EQ(test, out_count(folios[0], &owner), 1);
	KUNIT_EXPECT_EQ(test, owner, 0xfeed);
	mutex_unlock(&persist_state_lock);

	KUNIT_EXPECT_EQ(test, persist_free_folio(folios[2]), -EBUSY);
	for (i = 0; i < KHO_TEST_FOLIOS; i++) {
		persist_alloc_unpreserve(folios[i]);
		KUNIT_EXPECT_EQ(test, persist_free_folio(folios[i]), 0);
	}
	mutex_lock(&persist_state_lock);
	KUNIT_EXPECT_EQ(test, check_outgoing(test), base);
	mutex_unlock(&persist_state_lock);
}

static void kho_freeze_refuses_changes(struct kunit *test)
{
	const struct persist_alloc_extent_ser *ext;
	int nid = pool_node(test);
	struct folio *a, *b;
	unsigned long nr;
	u64 owner;

	mutex_lock(&persist_state_lock);
	if (!persist_kho_outgoing(&ext)) {
		mutex_unlock(&persist_state_lock);
		kunit_skip(test, "no KHO: nothing is handed over");
	}
	mutex_unlock(&persist_state_lock);
	a = persist_alloc_folio(nid, PERSIST_ORDER_4K, 0);
	b = persist_alloc_folio(nid, PERSIST_ORDER_4K, 0);
	KUNIT_ASSERT_FALSE(test, IS_ERR(a));
	KUNIT_ASSERT_FALSE(test, IS_ERR(b));
	KUNIT_ASSERT_EQ(test, persist_alloc_preserve(a, 0xa), 0);
	mutex_lock(&persist_state_lock);
	nr = check_outgoing(test);
	mutex_unlock(&persist_state_lock);

	persist_kho_freeze();
	KUNIT_EXPECT_TRUE(test, persist_kho_frozen());
	/* A second freeze (the reboot notifier after LUO's) changes nothing. */
	persist_kho_freeze();
	KUNIT_EXPECT_EQ(test, persist_alloc_preserve(b, 0xb), -EBUSY);
	KUNIT_EXPECT_EQ(test, persist_alloc_unpreserve(a), -EBUSY);
	KUNIT_EXPECT_EQ(test, persist_free_folio(a), -EBUSY);
	KUNIT_EXPECT_EQ(test, persist_pool_grow(nid, 1), -EBUSY);
	KUNIT_EXPECT_EQ(test, persist_pool_shrink(nid, 1), -EBUSY);
	mutex_lock(&persist_state_lock);
	KUNIT_EXPECT_EQ(test, check_outgoing(test), nr);
	KUNIT_EXPECT_EQ(test, out_count(a, &owner), 1);
	KUNIT_EXPECT_EQ(test, out_count(b, &owner), 0);
	mutex_unlock(&persist_state_lock);

	/* Cancelled: everything works again, on the handover as it was. */
	persist_kho_unfreeze();
	KUNIT_EXPECT_FALSE(test, persist_kho_frozen());
	KUNIT_EXPECT_EQ(test, persist_alloc_preserve(b, 0xb), 0);
	KUNIT_EXPECT_EQ(test, persist_alloc_unpreserve(a), 0);
	mutex_lock(&persist_state_lock);
	KUNIT_EXPECT_EQ(test, check_outgoing(test), nr);
	KUNIT_EXPECT_EQ(test, out_count(a, &owner), 0);
	KUNIT_EXPECT_EQ(test, out_count(b, &owner), 1);
	mutex_unlock(&persist_state_lock);
	KUNIT_EXPECT_EQ(test, persist_alloc_unpreserve(b), 0);
	KUNIT_EXPECT_EQ(test, persist_free_folio(a), 0);
	KUNIT_EXPECT_EQ(test, persist_free_folio(b), 0);
}

#define RUN_TEST_FOLIOS	16
#define RUN_TEST_OWNER	0xf01d

/* Entries of @owner in the outgoing handover, and their granules. */
static unsigned long out_runs(u64 owner, unsigned long *granules)
{
	const struct persist_alloc_extent_ser *ext;
	const struct persist_alloc_ser *ser = persist_kho_outgoing(&ext);
	unsigned long i, n = 0;

	*granules = 0;
	for (i = 0; i < ser->nr_extents; i++) {
		if (ext[i].owner != owner)
			continue;
		*granules += ext[i].nr;
		n++;
	}
	return n;
}

static int cmp_folio_pfn(const void *a, const void *b)
{
	unsigned long x = folio_pfn(*(struct folio **)a), y = folio_pfn(*(struct folio **)b);

	return x < y ? -1 : x > y;
}

/* @nr granules of 4 KiB from node @nid, in the order of their addresses. */
static struct folio **alloc_sorted_4k(struct kunit *test, int nid, unsigned long nr)
{
	struct folio **folios;
	unsigned long i;

	folios = kunit_kcalloc(test, nr, sizeof(*folios), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, folios);
	for (i = 0; i < nr; i++) {
		folios[i] = persist_alloc_folio(nid, PERSIST_ORDER_4K, 0);
		KUNIT_ASSERT_FALSE(test, IS_ERR(folios[i]));
	}
	sort(folios, nr, sizeof(*folios), cmp_folio_pfn, NULL);
	return folios;
}

/*
 * Freezing folds granules preserved one after the other, following each
 * other in memory, under one owner, into runs; a granule of another owner
 * in between ends a run. A cancel unfolds them: one entry per extent again,
 * each extent knowing its index, so that unpreserving works as before.
 */
static void kho_freeze_folds_runs(struct kunit *test)
{
	unsigned long i, runs, granules, base, expect = 0;
	int nid = pool_node(test);
	struct folio **folios;
	u64 owner;

	base = outgoing_base(test);

	folios = alloc_sorted_4k(test, nid, RUN_TEST_FOLIOS);
	/*
	 * Runs of the first owner: the fifth folio, of another owner, ends
	 * one, and so does a gap in memory or a block boundary.
	 */
	for (i = 0; i < RUN_TEST_FOLIOS; i++) {
		unsigned long pfn = folio_pfn(folios[i]);

		if (i == 4)
			continue;
		if (!i || i == 5 || pfn != folio_pfn(folios[i - 1]) + 1 ||
		    pfn / PERSIST_BLOCK_PAGES != (pfn - 1) / PERSIST_BLOCK_PAGES)
			expect++;
	}
	/* Out of a fresh pool most of them follow each other. */
	KUNIT_ASSERT_LT(test, expect, RUN_TEST_FOLIOS - 1);
	for (i = 0; i < RUN_TEST_FOLIOS; i++)
		KUNIT_ASSERT_EQ(test, persist_alloc_preserve(folios[i], RUN_TEST_OWNER + (i == 4)),
				0);
	mutex_lock(&persist_state_lock);
	KUNIT_EXPECT_EQ(test, out_runs(RUN_TEST_OWNER, &granules), RUN_TEST_FOLIOS - 1);
	mutex_unlock(&persist_state_lock);

	persist_kho_freeze();
	mutex_lock(&persist_state_lock);
	runs = out_runs(RUN_TEST_OWNER, &granules);
	KUNIT_EXPECT_EQ(test, runs, expect);
	KUNIT_EXPECT_EQ(test, granules, RUN_TEST_FOLIOS - 1);
	KUNIT_EXPECT_EQ(test, out_runs(RUN_TEST_OWNER + 1, &granules), 1);
	KUNIT_EXPECT_EQ(test, granules, 1);
	KUNIT_EXPECT_EQ(test, check_outgoing(test), base + RUN_TEST_FOLIOS);
	mutex_unlock(&persist_state_lock);

	persist_kho_unfreeze();
	mutex_lock(&persist_state_lock);
	KUNIT_EXPECT_EQ(test, out_runs(RUN_TEST_OWNER, &granules), RUN_TEST_FOLIOS - 1);
	KUNIT_EXPECT_EQ(test, check_outgoing(test), base + RUN_TEST_FOLIOS);
	mutex_unlock(&persist_state_lock);
	/* Unpreserving from the middle of a run that was: exact again. */
	KUNIT_EXPECT_EQ(test, persist_alloc_unpreserve(folios[2]), 0);
	mutex_lock(&persist_state_lock);
	KUNIT_EXPECT_EQ(test, check_outgoing(test), base + RUN_TEST_FOLIOS - 1);
	KUNIT_EXPECT_EQ(test, out_count(folios[2], &owner), 0);
	mutex_unlock(&persist_state_lock);
	for (i = 0; i < RUN_TEST_FOLIOS; i++) {
		persist_alloc_unpreserve(folios[i]);
		KUNIT_EXPECT_EQ(test, persist_free_folio(folios[i]), 0);
	}
	mutex_lock(&persist_state_lock);
	KUNIT_EXPECT_EQ(test, check_outgoing(test), base);
	mutex_unlock(&persist_state_lock);
}

#define COMPACT_TEST_FOLIOS	400
#define COMPACT_TEST_OWNER	0xc0de

/* Pages of the outgoing extent array as KHO preserves it; lock held. */
static unsigned int out_pages(void)
{
	const struct persist_alloc_extent_ser *ext;

	return persist_kho_outgoing(&ext)->extents.total_pages;
}

/* Entries of the outgoing extent array; lock held. */
static u64 out_nr(void)
{
	const struct persist_alloc_extent_ser *ext;

	return persist_kho_outgoing(&ext)->nr_extents;
}

/* The outgoing extent array; lock held. */
static const void *out_array(void)
{
	const struct persist_alloc_extent_ser *ext;

	persist_kho_outgoing(&ext);
	return ext;
}

/*
 * Freezing moves the runs into an array just big enough for them: the next
 * kernel maps that, not the room one entry per granule took. Without
 * memory for the move the runs stay in the big array. A cancel that cannot
 * preserve the big array again leaves the runs, a valid handover as they
 * are, which freeze again as they are; a change then fails and changes
 * nothing, or unfolds them first, into the big array.
 */
static void kho_freeze_compacts_runs(struct kunit *test)
{
	unsigned long i, base, granules;
	unsigned int big, small;
	int nid = pool_node(test);
	const void *big_array;
	struct folio **folios;
	u64 owner;

	base = outgoing_base(test);
	folios = alloc_sorted_4k(test, nid, COMPACT_TEST_FOLIOS);
	for (i = 0; i < COMPACT_TEST_FOLIOS; i++)
		KUNIT_ASSERT_EQ(test, persist_alloc_preserve(folios[i], COMPACT_TEST_OWNER), 0);
	mutex_lock(&persist_state_lock);
	big = out_pages();
	big_array = out_array();
	mutex_unlock(&persist_state_lock);
	KUNIT_ASSERT_GE(test, big, DIV_ROUND_UP((base + COMPACT_TEST_FOLIOS) *
					       sizeof(struct persist_alloc_extent_ser), PAGE_SIZE));

	/* No memory for the move: handed over in the big array, folded. */
	persist_fail_nth(1);
	persist_kho_freeze();
	KUNIT_EXPECT_EQ(test, persist_fail_nth_left(), 0);
	persist_fail_nth(0);
	mutex_lock(&persist_state_lock);
	KUNIT_EXPECT_TRUE(test, persist_kho_folded());
	KUNIT_EXPECT_EQ(test, out_pages(), big);
	KUNIT_EXPECT_EQ(test, check_outgoing(test), base + COMPACT_TEST_FOLIOS);
	mutex_unlock(&persist_state_lock);
	persist_kho_unfreeze();
	mutex_lock(&persist_state_lock);
	KUNIT_EXPECT_FALSE(test, persist_kho_folded());
	KUNIT_EXPECT_EQ(test, check_outgoing(test), base + COMPACT_TEST_FOLIOS);
	mutex_unlock(&persist_state_lock);

	/* Moved: the runs take what they need, at least one page. */
	persist_kho_freeze();
	mutex_lock(&persist_state_lock);
	/* With a spare entry (for the test consumer's damage). */
	small = DIV_ROUND_UP((out_nr() + 1) * sizeof(struct persist_alloc_extent_ser),
			     PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, out_pages(), small);
	KUNIT_EXPECT_LT(test, small, big);
	KUNIT_EXPECT_EQ(test, check_outgoing(test), base + COMPACT_TEST_FOLIOS);
	mutex_unlock(&persist_state_lock);

	/* A cancel that cannot preserve the big array again: still runs. */
	persist_fail_nth(1);
	persist_kho_unfreeze();
	KUNIT_EXPECT_EQ(test, persist_fail_nth_left(), 0);
	persist_fail_nth(0);
	KUNIT_EXPECT_FALSE(test, persist_kho_frozen());
	mutex_lock(&persist_state_lock);
	KUNIT_EXPECT_TRUE(test, persist_kho_folded());
	KUNIT_EXPECT_EQ(test, out_pages(), small);
	KUNIT_EXPECT_EQ(test, check_outgoing(test), base + COMPACT_TEST_FOLIOS);
	mutex_unlock(&persist_state_lock);

	/* Runs freeze again as they are, and still cannot unfold. */
	persist_kho_freeze();
	mutex_lock(&persist_state_lock);
	KUNIT_EXPECT_EQ(test, out_pages(), small);
	KUNIT_EXPECT_EQ(test, check_outgoing(test), base + COMPACT_TEST_FOLIOS);
	KUNIT_EXPECT_LT(test, out_runs(COMPACT_TEST_OWNER, &granules), COMPACT_TEST_FOLIOS);
	KUNIT_EXPECT_EQ(test, granules, COMPACT_TEST_FOLIOS);
	mutex_unlock(&persist_state_lock);
	persist_fail_nth(1);
	persist_kho_unfreeze();
	persist_fail_nth(0);
	mutex_lock(&persist_state_lock);
	KUNIT_EXPECT_TRUE(test, persist_kho_folded());
	mutex_unlock(&persist_state_lock);

	/* A change that cannot unfold them fails and changes nothing... */
	persist_fail_nth(1);
	KUNIT_EXPECT_EQ(test, persist_alloc_unpreserve(folios[1]), -ENOMEM);
	persist_fail_nth(0);
	mutex_lock(&persist_state_lock);
	KUNIT_EXPECT_TRUE(test, persist_kho_folded());
	KUNIT_EXPECT_EQ(test, out_count(folios[1], &owner), 1);
	KUNIT_EXPECT_EQ(test, check_outgoing(test), base + COMPACT_TEST_FOLIOS);
	mutex_unlock(&persist_state_lock);

	/* ...the next one unfolds them into the big array first. */
	KUNIT_EXPECT_EQ(test, persist_alloc_unpreserve(folios[1]), 0);
	mutex_lock(&persist_state_lock);
	KUNIT_EXPECT_FALSE(test, persist_kho_folded());
	KUNIT_EXPECT_EQ(test, out_pages(), big);
	KUNIT_EXPECT_PTR_EQ(test, out_array(), big_array);
	KUNIT_EXPECT_EQ(test, out_count(folios[1], &owner), 0);
	KUNIT_EXPECT_EQ(test, out_runs(COMPACT_TEST_OWNER, &granules), COMPACT_TEST_FOLIOS - 1);
	KUNIT_EXPECT_EQ(test, check_outgoing(test), base + COMPACT_TEST_FOLIOS - 1);
	mutex_unlock(&persist_state_lock);

	for (i = 0; i < COMPACT_TEST_FOLIOS; i++) {
		persist_alloc_unpreserve(folios[i]);
		KUNIT_EXPECT_EQ(test, persist_free_folio(folios[i]), 0);
	}
	mutex_lock(&persist_state_lock);
	KUNIT_EXPECT_EQ(test, check_outgoing(test), base);
	mutex_unlock(&persist_state_lock);
}

struct pool_counts {
	unsigned long allocated[PERSIST_NR_GRANULES];
	unsigned long free, no_direct_map, saved, preserved, pending, extents;
	u64 out_extents, out_blocks;
};

static void pool_counts(int nid, struct pool_counts *c)
{
	struct persist_pool *pool = persist_pools[nid];
	const struct persist_alloc_extent_ser *ext;
	const struct persist_alloc_ser *ser;
	struct persist_extent *e;
	unsigned long idx;

	memset(c, 0, sizeof(*c));
	spin_lock(&pool->lock);
	memcpy(c->allocated, pool->allocated, sizeof(c->allocated));
	c->no_direct_map = pool->no_direct_map_pages;
	c->saved = pool->vmemmap_saved;
	c->preserved = pool->preserved_pages;
	c->pending = pool->pending_pages;
	spin_unlock(&pool->lock);
	c->free = pool_free_pages(nid);
	xa_for_each(&persist_extents, idx, e)
		c->extents++;
	mutex_lock(&persist_state_lock);
	ser = persist_kho_outgoing(&ext);
	if (ser) {
		c->out_extents = ser->nr_extents;
		c->out_blocks = ser->nr_blocks;
	}
	mutex_unlock(&persist_state_lock);
}

static void expect_counts(struct kunit *test, const struct pool_counts *a,
			  const struct pool_counts *b, const char *what, unsigned int nth)
{
	KUNIT_EXPECT_TRUE_MSG(test, !memcmp(a, b, sizeof(*a)),
			      "%s failing at step %u changed the pool's state", what, nth);
}

#define FAULT_STEPS_MAX	16

/*
 * Each fallible step of allocation, free, preserve and pool growth is
 * failed in turn, as iommufd's fail_nth selftest does: the call fails
 * with nothing changed (bookkeeping, counters, handover), and succeeds
 * once no step is failed any more.
 */
static void fault_injection_changes_nothing(struct kunit *test)
{
	const unsigned long flags = PERSIST_ALLOC_NO_DIRECT_MAP | PERSIST_ALLOC_HVO |
				    PERSIST_ALLOC_ZERO;
	int nid = pool_node(test), verbose = persist_fault_attr.verbose;
	struct pool_counts before, after;
	struct folio *folio, **many;
	unsigned int nth, failed = 0, grown = 0;
	unsigned long i, nr_many;
	long ret;

	if (!IS_ENABLED(CONFIG_FAULT_INJECTION))
		kunit_skip(test, "needs CONFIG_FAULT_INJECTION");
	persist_fault_attr.verbose = 0;

	/* Allocation: bookkeeping, vmemmap, direct map, extent record. */
	for (nth = 1; nth < FAULT_STEPS_MAX; nth++) {
		pool_counts(nid, &before);
		persist_fail_nth(nth);
		folio = persist_alloc_folio(nid, PERSIST_ORDER_2M, flags);
		persist_fail_nth(0);
		if (!IS_ERR(folio))
			break;
		KUNIT_EXPECT_EQ(test, PTR_ERR(folio), -ENOMEM);
		pool_counts(nid, &after);
		expect_counts(test, &before, &after, "alloc", nth);
		failed++;
	}
	KUNIT_ASSERT_FALSE(test, IS_ERR(folio));
	KUNIT_EXPECT_GE(test, failed, 4);

	/* Free: the vmemmap restore; the folio stays the owner's. */
	for (nth = 1, failed = 0; nth < FAULT_STEPS_MAX; nth++) {
		pool_counts(nid, &before);
		persist_fail_nth(nth);
		ret = persist_free_folio(folio);
		persist_fail_nth(0);
		if (!ret)
			break;
		KUNIT_EXPECT_EQ(test, ret, -ENOMEM);
		pool_counts(nid, &after);
		expect_counts(test, &before, &after, "free", nth);
		KUNIT_EXPECT_TRUE(test, folio_test_large(folio));
		failed++;
	}
	KUNIT_EXPECT_EQ(test, ret, 0);
	KUNIT_EXPECT_GE(test, failed, 1);

	/* Preserve: growing the handover, wherever it must grow. */
	nr_many = 1100;
	many = kunit_kcalloc(test, nr_many, sizeof(*many), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, many);
	for (i = 0; i < nr_many; i++) {
		many[i] = persist_alloc_folio(nid, PERSIST_ORDER_4K, 0);
		KUNIT_ASSERT_FALSE(test, IS_ERR(many[i]));
	}
	for (i = 0, failed = 0; i < nr_many; i++) {
		pool_counts(nid, &before);
		persist_fail_nth(1);
		ret = persist_alloc_preserve(many[i], i);
		nth = persist_fail_nth_left();
		persist_fail_nth(0);
		if (ret) {
			KUNIT_EXPECT_EQ(test, ret, -ENOMEM);
			KUNIT_EXPECT_EQ(test, nth, 0);
			pool_counts(nid, &after);
			expect_counts(test, &before, &after, "preserve", 1);
			failed++;
			KUNIT_EXPECT_EQ(test, persist_alloc_preserve(many[i], i), 0);
		}
	}
	/* 1100 entries outgrow any array the earlier cases left. */
	KUNIT_EXPECT_GE(test, failed, 1);
	for (i = 0; i < nr_many; i++) {
		KUNIT_EXPECT_EQ(test, persist_alloc_unpreserve(many[i]), 0);
		KUNIT_EXPECT_EQ(test, persist_free_folio(many[i]), 0);
	}

	/* Growth: preserving the new block with KHO. */
	pool_counts(nid, &before);
	persist_fail_nth(1);
	ret = persist_pool_grow(nid, 1);
	nth = persist_fail_nth_left();
	persist_fail_nth(0);
	if (ret == 1) {
		grown = 1;
		KUNIT_EXPECT_EQ(test, persist_pool_shrink(nid, 1), 1);
	} else if (!nth) {
		KUNIT_EXPECT_EQ(test, ret, -ENOMEM);
		pool_counts(nid, &after);
		expect_counts(test, &before, &after, "grow", 1);
	}
	kunit_info(test, "grow: %s\n", grown ? "no fallible step reached" :
		   nth ? "no 1 GiB range free" : "failed and undone");
	persist_fault_attr.verbose = verbose;
}

static struct kunit_case persist_block_cases[] = {
	KUNIT_CASE(block_1g_is_exclusive),
	KUNIT_CASE(block_split_and_merge),
	KUNIT_CASE(block_4k_fills_split_chunks_first),
	KUNIT_CASE(block_exhaustion_changes_nothing),
	KUNIT_CASE(block_bad_free_refused),
	KUNIT_CASE(block_claim_places_granules),
	KUNIT_CASE(block_chunk_bitmaps_follow_states),
	KUNIT_CASE(block_dirty_chunks_scrubbed_once),
	{}
};

static struct kunit_case persist_request_cases[] = {
	KUNIT_CASE(request_spread),
	KUNIT_CASE(request_per_node),
	KUNIT_CASE(request_bad_entries_skipped),
	{}
};

static struct kunit_case persist_pool_cases[] = {
	KUNIT_CASE(pool_struct_pages_initialized),
	KUNIT_CASE(pool_alloc_free_each_order),
	KUNIT_CASE(pool_no_direct_map),
	KUNIT_CASE(pool_hvo),
	KUNIT_CASE(pool_parallel_stress),
	KUNIT_CASE(pool_small_granules_spare_unused_blocks),
	KUNIT_CASE(pool_leaving_block_stays_unlisted),
	KUNIT_CASE(pool_exhaustion_changes_nothing),
	KUNIT_CASE(pool_bad_free_refused),
	KUNIT_CASE(pool_bad_arguments),
	KUNIT_CASE(fault_injection_changes_nothing),
	{}
};

static struct kunit_case persist_kho_cases[] = {
	KUNIT_CASE(adopt_block_checks_every_field),
	KUNIT_CASE(adopt_only_scrubs_unused_ram),
	KUNIT_CASE(adopt_header_bounds_the_blocks),
	KUNIT_CASE(adopt_ranges_are_bounded),
	KUNIT_CASE(adopt_extent_checks_every_field),
	KUNIT_CASE(kho_handover_follows_preserve),
	KUNIT_CASE(kho_freeze_refuses_changes),
	KUNIT_CASE(kho_freeze_folds_runs),
	KUNIT_CASE(kho_freeze_compacts_runs),
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
