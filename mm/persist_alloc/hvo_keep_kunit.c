// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for keeping freed 1 GiB HVO folios optimized (hvo_keep.c),
 * on a real pool (scripts/kunit.sh boots with persist_alloc=2G). Each case
 * leaves no block kept.
 */
#include <kunit/test.h>
#include <linux/mm.h>

#include "internal.h"

/* A 1 GiB HVO folio from a pool with an unused block, or the case skipped. */
static struct folio *hvo_1g(struct kunit *test)
{
	struct folio *folio = persist_alloc_folio(NUMA_NO_NODE, PERSIST_ORDER_1G,
						  PERSIST_ALLOC_HVO);

	if (IS_ERR(folio))
		kunit_skip(test, "no 1 GiB HVO folio: %pe (boot with persist_alloc=2G)", folio);
	return folio;
}

static unsigned long nr_kept(struct persist_pool *pool)
{
	unsigned long nr;

	spin_lock(&pool->lock);
	nr = pool->nr_hvo_kept;
	spin_unlock(&pool->lock);
	return nr;
}

static void unkeep_all(struct kunit *test, struct persist_pool *pool)
{
	while (nr_kept(pool))
		KUNIT_ASSERT_TRUE(test, persist_hvo_unkeep(pool));
}

/*
 * A freed 1 GiB HVO folio is kept: the free reaches no fallible step (it
 * needs no memory), and the next 1 GiB HVO allocation of the node gets
 * the same folio back with no fallible step but its extent record, as a
 * fresh folio (one reference, no flags its last owner left, its
 * attributes). An allocation that fails after taking it keeps it again.
 */
static void hvo_keep_free_and_reuse(struct kunit *test)
{
	struct folio *folio = hvo_1g(test);
	int nid = folio_nid(folio);
	struct persist_pool *pool = persist_pools[nid];
	unsigned long pfn = folio_pfn(folio), saved = pool->vmemmap_saved;
	unsigned int left;
	int ret;

	if (!IS_ENABLED(CONFIG_FAULT_INJECTION))
		kunit_skip(test, "needs CONFIG_FAULT_INJECTION");
	KUNIT_ASSERT_EQ(test, nr_kept(pool), 0);
	folio_mark_uptodate(folio);
	folio_set_dirty(folio);

	persist_fail_nth(1);
	ret = persist_free_folio(folio);
	left = persist_fail_nth_left();
	persist_fail_nth(0);
	KUNIT_EXPECT_EQ(test, ret, 0);
	KUNIT_EXPECT_EQ_MSG(test, left, 1, "the free of a 1 GiB HVO folio reached a fallible step");
	KUNIT_EXPECT_EQ(test, nr_kept(pool), 1);
	KUNIT_EXPECT_EQ(test, pool->vmemmap_saved, saved - persist_hvo_saved(PERSIST_ORDER_1G));
	KUNIT_EXPECT_EQ(test, pool->allocated[PERSIST_GRANULE_1G], 0);

	/* An allocation failing at its extent record (step 2) keeps it again. */
	persist_fail_nth(2);
	folio = persist_alloc_folio(nid, PERSIST_ORDER_1G, PERSIST_ALLOC_HVO);
	persist_fail_nth(0);
	KUNIT_EXPECT_EQ(test, PTR_ERR(folio), -ENOMEM);
	KUNIT_EXPECT_EQ(test, nr_kept(pool), 1);

	/* Steps: the extent, its record; a build would be one more. */
	persist_fail_nth(3);
	folio = persist_alloc_folio(nid, PERSIST_ORDER_1G, PERSIST_ALLOC_HVO);
	left = persist_fail_nth_left();
	persist_fail_nth(0);
	KUNIT_ASSERT_FALSE_MSG(test, IS_ERR(folio), "not taken from the kept block: %pe", folio);
	KUNIT_EXPECT_EQ(test, left, 1);
	KUNIT_EXPECT_EQ(test, folio_pfn(folio), pfn);
	KUNIT_EXPECT_EQ(test, folio_order(folio), PERSIST_ORDER_1G);
	KUNIT_EXPECT_EQ(test, folio_ref_count(folio), 1);
	KUNIT_EXPECT_FALSE(test, folio_test_uptodate(folio));
	KUNIT_EXPECT_FALSE(test, folio_test_dirty(folio));
	KUNIT_EXPECT_NULL(test, folio->mapping);
	KUNIT_EXPECT_PTR_EQ(test, page_folio(folio_page(folio, 12345)), folio);
	KUNIT_EXPECT_EQ(test, persist_folio_flags(folio), PERSIST_ALLOC_HVO);
	KUNIT_EXPECT_EQ(test, nr_kept(pool), 0);
	KUNIT_EXPECT_EQ(test, pool->vmemmap_saved, saved);
	KUNIT_EXPECT_EQ(test, pool->allocated[PERSIST_GRANULE_1G], 1);

	KUNIT_EXPECT_EQ(test, persist_free_folio(folio), 0);
	unkeep_all(test, pool);
}

/*
 * A kept block gives way to an allocation of another kind that finds no
 * room elsewhere: its struct pages are single pages again and a 2 MiB
 * folio comes out of it. Nothing kept is ever counted allocated.
 */
static void hvo_keep_gives_way(struct kunit *test)
{
	struct folio *folio = hvo_1g(test), *small;
	struct persist_pool *pool = persist_pools[folio_nid(folio)];
	unsigned long base = folio_pfn(folio), i, n = 0, strays = 0;
	struct folio **fill;

	fill = kunit_kcalloc(test, pool->nr_blocks * PERSIST_BLOCK_CHUNKS, sizeof(*fill),
			     GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, fill);
	KUNIT_ASSERT_EQ(test, persist_free_folio(folio), 0);
	KUNIT_ASSERT_EQ(test, nr_kept(pool), 1);

	/* Every 2 MiB chunk of the other blocks, then one of the kept block. */
	for (;;) {
		small = persist_alloc_folio(folio_nid(folio), PERSIST_ORDER_2M, 0);
		if (IS_ERR(small))
			break;
		fill[n++] = small;
		if (folio_pfn(small) - base < PERSIST_BLOCK_PAGES)
			break;
	}
	KUNIT_ASSERT_GT(test, n, 0);
	small = fill[n - 1];
	KUNIT_EXPECT_TRUE_MSG(test, folio_pfn(small) - base < PERSIST_BLOCK_PAGES,
			      "no 2 MiB folio came from the kept block");
	KUNIT_EXPECT_EQ(test, nr_kept(pool), 0);
	KUNIT_EXPECT_EQ(test, folio_order(small), PERSIST_ORDER_2M);
	for (i = 0; i < PERSIST_BLOCK_PAGES; i++) {
		struct page *page = pfn_to_page(base + i);

		if (page >= folio_page(small, 0) && page < folio_page(small, PERSIST_CHUNK_PAGES))
			continue;
		if (PageTail(page) || PageHead(page) || page_ref_count(page) != 1)
			strays++;
	}
	KUNIT_EXPECT_EQ_MSG(test, strays, 0, "struct pages of the block left as they were kept");
	while (n)
		KUNIT_EXPECT_EQ(test, persist_free_folio(fill[--n]), 0);
	unkeep_all(test, pool);
}

static struct kunit_case persist_hvo_keep_cases[] = {
	KUNIT_CASE(hvo_keep_free_and_reuse),
	KUNIT_CASE(hvo_keep_gives_way),
	{}
};

static struct kunit_suite persist_hvo_keep_suite = {
	.name = "persist_alloc_hvo_keep",
	.test_cases = persist_hvo_keep_cases,
};

kunit_test_suites(&persist_hvo_keep_suite);

MODULE_DESCRIPTION("KUnit tests for persist_alloc's kept 1 GiB HVO folios");
MODULE_LICENSE("GPL");
