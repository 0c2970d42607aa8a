// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for handed-over folios: building them at boot (prebuild.c)
 * and claiming runs of them (claim.c), on a real pool (scripts/kunit.sh
 * boots with persist_alloc=2G). A folio is made to look handed over as
 * adoption leaves it: its struct pages single pages again, its extent
 * pending for an owner.
 */
#include <kunit/test.h>
#include <linux/completion.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/mm.h>

#include "internal.h"

#define OWNER	0x7072656275696c64ULL	/* "prebuild" */

/* The node of a pool to test with: where a 4 KiB granule comes from. */
static int prebuild_pool_node(struct kunit *test)
{
	struct folio *folio = persist_alloc_folio(NUMA_NO_NODE, PERSIST_ORDER_4K, 0);
	int nid;

	if (IS_ERR(folio))
		kunit_skip(test, "no persist_alloc pool: boot with persist_alloc=2G");
	nid = folio_nid(folio);
	KUNIT_ASSERT_EQ(test, persist_free_folio(folio), 0);
	return nid;
}

static struct persist_extent *extent_at(unsigned long pfn)
{
	struct persist_extent *ext;

	mutex_lock(&persist_state_lock);
	ext = xa_load(&persist_extents, pfn);
	mutex_unlock(&persist_state_lock);
	return ext;
}

/* Allocate a granule and leave it as adoption would: pending, unbuilt if huge. */
static unsigned long handed_over(struct kunit *test, int nid, unsigned int order,
				 unsigned long flags)
{
	struct folio *folio = persist_alloc_folio(nid, order, flags);
	struct persist_extent *ext;
	unsigned long pfn;

	KUNIT_ASSERT_FALSE(test, IS_ERR(folio));
	pfn = folio_pfn(folio);
	ext = extent_at(pfn);
	KUNIT_ASSERT_NOT_NULL(test, ext);
	if (flags & PERSIST_ALLOC_HVO) {
		KUNIT_ASSERT_EQ(test, persist_hvo_restore(folio), 0);
		persist_account(ext->blk->pool, order, PERSIST_ALLOC_HVO, -1);
	}
	if (order)
		persist_folio_to_granule(folio);
	mutex_lock(&persist_state_lock);
	ext->owner = OWNER;
	ext->pending = true;
	persist_account_state(ext, &ext->blk->pool->pending_pages, 1);
	/* As adoption: a 4 KiB granule is its own folio. */
	ext->built = !order;
	if (ext->built)
		persist_account_state(ext, &ext->blk->pool->built_pages, 1);
	persist_prebuild_mark(ext);
	mutex_unlock(&persist_state_lock);
	return pfn;
}

static unsigned long pool_pages(int nid, bool built)
{
	struct persist_pool *pool = persist_pools[nid];
	unsigned long nr;

	spin_lock(&pool->lock);
	nr = built ? pool->built_pages : pool->pending_pages;
	spin_unlock(&pool->lock);
	return nr;
}

/*
 * The first @nr struct pages of the 2 MiB folio at @pfn are its head and
 * tails of it (all of them, or for HVO those of its own vmemmap page).
 */
static void expect_folio_2m(struct kunit *test, unsigned long pfn, unsigned long nr)
{
	struct page *head = pfn_to_page(pfn);
	unsigned long i, strays = 0;

	KUNIT_EXPECT_TRUE(test, PageHead(head));
	KUNIT_EXPECT_EQ(test, folio_order(page_folio(head)), PERSIST_ORDER_2M);
	KUNIT_EXPECT_EQ(test, page_ref_count(head), 1);
	for (i = 1; i < nr; i++)
		if (page_folio(head + i) != page_folio(head) || page_ref_count(head + i))
			strays++;
	KUNIT_EXPECT_EQ(test, strays, 0);
}

/*
 * The worker builds every pending huge folio of its node once, leaves
 * those a restore took first, and restores then hand the built folios
 * out as they are, to their owner only; a 4 KiB one was counted built.
 */
static void prebuild_builds_pending_folios(struct kunit *test)
{
	int nid = prebuild_pool_node(test);
	unsigned long pending = pool_pages(nid, false);
	unsigned long plain, hvo, early, small;
	struct persist_prebuild_stats st;
	struct persist_extent *ext;
	struct folio *folio;

	KUNIT_ASSERT_EQ(test, pool_pages(nid, true), 0);
	small = handed_over(test, nid, PERSIST_ORDER_4K, 0);
	KUNIT_EXPECT_EQ(test, pool_pages(nid, true), 1);
	plain = handed_over(test, nid, PERSIST_ORDER_2M, 0);
	hvo = handed_over(test, nid, PERSIST_ORDER_2M, PERSIST_ALLOC_HVO);
	early = handed_over(test, nid, PERSIST_ORDER_2M, 0);
	KUNIT_EXPECT_EQ(test, pool_pages(nid, false), pending + 3 * 512 + 1);
	KUNIT_EXPECT_FALSE(test, PageHead(pfn_to_page(plain)));

	/* Restored before any worker ran: built by its restore. */
	folio = persist_alloc_restore(PFN_PHYS(early), OWNER);
	KUNIT_ASSERT_FALSE(test, IS_ERR(folio));
	expect_folio_2m(test, early, PERSIST_CHUNK_PAGES);

	persist_prebuild_node(nid, &st);
	KUNIT_EXPECT_EQ(test, st.built, 2);
	KUNIT_EXPECT_EQ(test, st.failed, 0);
	/* Neither the 4 KiB extent nor the one restored. */
	KUNIT_EXPECT_EQ(test, st.seen, 2);
	KUNIT_EXPECT_EQ(test, pool_pages(nid, true), 2 * 512 + 1);
	KUNIT_EXPECT_EQ(test, pool_pages(nid, false), pending + 2 * 512 + 1);
	expect_folio_2m(test, plain, PERSIST_CHUNK_PAGES);
	expect_folio_2m(test, hvo, PAGE_SIZE / sizeof(struct page));
	ext = extent_at(plain);
	KUNIT_EXPECT_TRUE(test, ext->pending && ext->built && !ext->building);
	/* Nothing is built twice, or looked at twice. */
	persist_prebuild_node(nid, &st);
	KUNIT_EXPECT_EQ(test, st.built + st.failed + st.seen, 0);

	/* Built is still pending: another owner is refused, nothing moves. */
	KUNIT_EXPECT_EQ(test, PTR_ERR(persist_alloc_restore(PFN_PHYS(plain), OWNER + 1)),
			-EPERM);
	KUNIT_EXPECT_EQ(test, pool_pages(nid, true), 2 * 512 + 1);

	KUNIT_EXPECT_PTR_EQ(test, persist_alloc_restore(PFN_PHYS(plain), OWNER),
			    pfn_folio(plain));
	KUNIT_EXPECT_PTR_EQ(test, persist_alloc_restore(PFN_PHYS(hvo), OWNER), pfn_folio(hvo));
	KUNIT_EXPECT_PTR_EQ(test, persist_alloc_restore(PFN_PHYS(small), OWNER),
			    pfn_folio(small));
	KUNIT_EXPECT_EQ(test, persist_folio_flags(pfn_folio(hvo)), PERSIST_ALLOC_HVO);
	KUNIT_EXPECT_EQ(test, folio_order(pfn_folio(plain)), PERSIST_ORDER_2M);
	KUNIT_EXPECT_EQ(test, pool_pages(nid, true), 0);
	KUNIT_EXPECT_EQ(test, pool_pages(nid, false), pending);
	KUNIT_EXPECT_EQ(test, PTR_ERR(persist_alloc_restore(PFN_PHYS(plain), OWNER)), -ENOENT);

	KUNIT_EXPECT_EQ(test, persist_free_folio(pfn_folio(plain)), 0);
	KUNIT_EXPECT_EQ(test, persist_free_folio(pfn_folio(hvo)), 0);
	KUNIT_EXPECT_EQ(test, persist_free_folio(pfn_folio(early)), 0);
	KUNIT_EXPECT_EQ(test, persist_free_folio(pfn_folio(small)), 0);
}

#define NR_SMALL	256

/*
 * A worker looks at the extents adopted with a folio to build, not at
 * every extent of its node: with hundreds of thousands of 4 KiB extents
 * handed over it would hold persist_state_lock, and stall every
 * allocation and restore, for a walk of them all.
 */
static void prebuild_looks_at_unbuilt_only(struct kunit *test)
{
	int nid = prebuild_pool_node(test);
	unsigned long *small, huge, i;
	struct persist_prebuild_stats st;

	small = kunit_kcalloc(test, NR_SMALL, sizeof(*small), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, small);
	for (i = 0; i < NR_SMALL / 2; i++)
		small[i] = handed_over(test, nid, PERSIST_ORDER_4K, 0);
	huge = handed_over(test, nid, PERSIST_ORDER_2M, 0);
	for (; i < NR_SMALL; i++)
		small[i] = handed_over(test, nid, PERSIST_ORDER_4K, 0);

	persist_prebuild_node(nid, &st);
	KUNIT_EXPECT_EQ(test, st.built, 1);
	KUNIT_EXPECT_EQ(test, st.seen, 1);
	expect_folio_2m(test, huge, PERSIST_CHUNK_PAGES);

	KUNIT_EXPECT_PTR_EQ(test, persist_alloc_restore(PFN_PHYS(huge), OWNER), pfn_folio(huge));
	KUNIT_EXPECT_EQ(test, persist_free_folio(pfn_folio(huge)), 0);
	for (i = 0; i < NR_SMALL; i++) {
		KUNIT_EXPECT_PTR_EQ(test, persist_alloc_restore(PFN_PHYS(small[i]), OWNER),
				    pfn_folio(small[i]));
		KUNIT_EXPECT_EQ(test, persist_free_folio(pfn_folio(small[i])), 0);
	}
}

struct restore_call {
	phys_addr_t phys;
	u64 owner;
	struct folio *folio;
	struct completion done;
};

static int restore_fn(void *data)
{
	struct restore_call *call = data;

	call->folio = persist_alloc_restore(call->phys, call->owner);
	complete(&call->done);
	return 0;
}

/*
 * A restore of the extent a worker holds waits for the worker and gets
 * the folio it built; a restore by another owner is refused at once.
 */
static void prebuild_restore_waits_for_worker(struct kunit *test)
{
	int nid = prebuild_pool_node(test);
	unsigned long pfn = handed_over(test, nid, PERSIST_ORDER_2M, 0);
	struct restore_call call = { .phys = PFN_PHYS(pfn), .owner = OWNER };
	struct persist_extent *ext = extent_at(pfn);
	struct task_struct *task;
	struct folio *folio;
	bool waited;

	init_completion(&call.done);
	mutex_lock(&persist_state_lock);
	ext->building = true;
	mutex_unlock(&persist_state_lock);

	KUNIT_EXPECT_EQ(test, PTR_ERR(persist_alloc_restore(PFN_PHYS(pfn), OWNER + 1)), -EPERM);
	task = kthread_run(restore_fn, &call, "prebuild_kunit");
	KUNIT_ASSERT_FALSE(test, IS_ERR(task));
	msleep(200);
	waited = !completion_done(&call.done);

	folio = persist_extent_build(ext);
	KUNIT_EXPECT_FALSE(test, IS_ERR(folio));
	persist_prebuild_put(ext, folio);
	KUNIT_ASSERT_TRUE(test, wait_for_completion_timeout(&call.done, 10 * HZ) > 0);

	KUNIT_EXPECT_TRUE_MSG(test, waited, "the restore did not wait for the worker");
	KUNIT_EXPECT_PTR_EQ(test, call.folio, folio);
	expect_folio_2m(test, pfn, PERSIST_CHUNK_PAGES);
	KUNIT_EXPECT_EQ(test, pool_pages(nid, true), 0);
	if (!IS_ERR(call.folio))
		KUNIT_EXPECT_EQ(test, persist_free_folio(call.folio), 0);
}

/* Give back @nr granules handed over by handed_over(), then skip. */
static void release_and_skip(struct kunit *test, const unsigned long *pfn, unsigned long nr)
{
	unsigned long i;

	for (i = 0; i < nr; i++)
		KUNIT_EXPECT_EQ(test, persist_alloc_release(PFN_PHYS(pfn[i]), OWNER), 0);
	kunit_skip(test, "granules not in a row");
}

/* Whether the extent at @pfn is claimed. */
static bool claimed(unsigned long pfn)
{
	return READ_ONCE(extent_at(pfn)->claimed);
}

/*
 * Three handed-over 2 MiB granules in a row, as a file's run: a claim that
 * names one granule wrongly (owner, order, attributes, one more granule
 * than handed over, a hostile length) claims none of them and moves no
 * counter. A good claim takes them all out of the pending and built
 * counts once; restore and unrestore keep them claimed, unclaim makes them
 * pending again, and only their owner releases them.
 */
static void claim_run_all_or_nothing(struct kunit *test)
{
	int nid = prebuild_pool_node(test);
	unsigned long pending = pool_pages(nid, false), pfn[3];
	struct persist_prebuild_stats st;
	struct folio *folio;
	phys_addr_t phys;
	int i;

	for (i = 0; i < 3; i++)
		pfn[i] = handed_over(test, nid, PERSIST_ORDER_2M, 0);
	if (pfn[1] != pfn[0] + 512 || pfn[2] != pfn[1] + 512)
		release_and_skip(test, pfn, 3);
	phys = PFN_PHYS(pfn[0]);
	persist_prebuild_node(nid, &st);
	KUNIT_ASSERT_EQ(test, pool_pages(nid, false), pending + 3 * 512);
	KUNIT_ASSERT_EQ(test, pool_pages(nid, true), 3 * 512);

	KUNIT_EXPECT_EQ(test, persist_alloc_claim(phys, 9, 3, 0, OWNER + 1), -EPERM);
	KUNIT_EXPECT_EQ(test, persist_alloc_claim(phys, 9, 3, PERSIST_ALLOC_NO_DIRECT_MAP, OWNER),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, persist_alloc_claim(phys, 0, 3, 0, OWNER), -EINVAL);
	KUNIT_EXPECT_EQ(test, persist_alloc_claim(phys, 9, 4, 0, OWNER), -ENOENT);
	KUNIT_EXPECT_EQ(test, persist_alloc_claim(phys, 9, 0, 0, OWNER), -EINVAL);
	KUNIT_EXPECT_EQ(test, persist_alloc_claim(phys, 9, ULONG_MAX, 0, OWNER), -EINVAL);
	KUNIT_EXPECT_EQ(test, persist_alloc_claim(phys + PAGE_SIZE, 9, 1, 0, OWNER), -EINVAL);
	KUNIT_EXPECT_EQ(test, persist_alloc_claim(phys, 9, 1, PERSIST_ALLOC_ZERO, OWNER), -EINVAL);
	/* The last granule another file's: the first two are not taken either. */
	extent_at(pfn[2])->owner = OWNER + 1;
	KUNIT_EXPECT_EQ(test, persist_alloc_claim(phys, 9, 3, 0, OWNER), -EPERM);
	extent_at(pfn[2])->owner = OWNER;
	for (i = 0; i < 3; i++)
		KUNIT_EXPECT_FALSE(test, claimed(pfn[i]));
	KUNIT_EXPECT_EQ(test, pool_pages(nid, false), pending + 3 * 512);

	KUNIT_EXPECT_EQ(test, pool_pages(nid, true), 3 * 512);

	KUNIT_EXPECT_EQ(test, persist_alloc_claim(phys, 9, 3, 0, OWNER), 0);
	KUNIT_EXPECT_EQ(test, pool_pages(nid, false), pending);
	KUNIT_EXPECT_EQ(test, pool_pages(nid, true), 0);
	KUNIT_EXPECT_EQ(test, persist_alloc_claim(phys + SZ_2M, 9, 1, 0, OWNER), -EBUSY);
	/* Another owner can neither take nor release what is claimed. */
	KUNIT_EXPECT_EQ(test, PTR_ERR(persist_alloc_restore(phys, OWNER + 1)), -EPERM);
	KUNIT_EXPECT_EQ(test, persist_alloc_release(phys, OWNER + 1), -EPERM);

	/* Restored at first use, handed back: claimed still, counted nowhere. */
	folio = persist_alloc_restore(phys + SZ_2M, OWNER);
	KUNIT_ASSERT_FALSE(test, IS_ERR(folio));
	KUNIT_EXPECT_EQ(test, persist_alloc_unrestore(folio, OWNER), 0);
	KUNIT_EXPECT_TRUE(test, claimed(pfn[1]));
	KUNIT_EXPECT_EQ(test, pool_pages(nid, false), pending);

	/* Undone by its owner only; then pending again, all three. */
	persist_alloc_unclaim(phys, 9, 3, OWNER + 1);
	KUNIT_EXPECT_TRUE(test, claimed(pfn[0]));
	persist_alloc_unclaim(phys, 9, 3, OWNER);
	for (i = 0; i < 3; i++)
		KUNIT_EXPECT_FALSE(test, claimed(pfn[i]));
	KUNIT_EXPECT_EQ(test, pool_pages(nid, false), pending + 3 * 512);
	KUNIT_EXPECT_EQ(test, pool_pages(nid, true), 3 * 512);

	KUNIT_EXPECT_EQ(test, persist_alloc_claim(phys, 9, 3, 0, OWNER), 0);
	for (i = 0; i < 3; i++)
		KUNIT_EXPECT_EQ(test, persist_alloc_release(PFN_PHYS(pfn[i]), OWNER), 0);
	KUNIT_EXPECT_EQ(test, pool_pages(nid, false), pending);
	KUNIT_EXPECT_EQ(test, pool_pages(nid, true), 0);
	KUNIT_EXPECT_EQ(test, persist_alloc_claim(phys, 9, 1, 0, OWNER), -ENOENT);
}

#define NR_LONG	2100

/*
 * A run longer than the claim's batch (the state lock is let go every
 * 1024 granules): one granule missing at its end undoes the claim of the
 * 2100 before it, across the batches; the run itself is claimed whole.
 */
static void claim_long_run_across_batches(struct kunit *test)
{
	int nid = prebuild_pool_node(test);
	unsigned long pending = pool_pages(nid, false), i, *pfn;
	phys_addr_t phys;

	pfn = kunit_kcalloc(test, NR_LONG, sizeof(*pfn), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, pfn);
	for (i = 0; i < NR_LONG; i++)
		pfn[i] = handed_over(test, nid, PERSIST_ORDER_4K, 0);
	for (i = 1; i < NR_LONG; i++)
		if (pfn[i] != pfn[0] + i)
			break;
	if (i < NR_LONG)
		release_and_skip(test, pfn, NR_LONG);
	phys = PFN_PHYS(pfn[0]);

	KUNIT_EXPECT_EQ(test, persist_alloc_claim(phys, 0, NR_LONG + 1, 0, OWNER), -ENOENT);
	KUNIT_EXPECT_FALSE(test, claimed(pfn[0]));
	KUNIT_EXPECT_FALSE(test, claimed(pfn[1500]));
	KUNIT_EXPECT_EQ(test, pool_pages(nid, false), pending + NR_LONG);
	KUNIT_EXPECT_EQ(test, persist_alloc_claim(phys, 0, NR_LONG, 0, OWNER), 0);
	KUNIT_EXPECT_TRUE(test, claimed(pfn[NR_LONG - 1]));
	KUNIT_EXPECT_EQ(test, pool_pages(nid, false), pending);
	for (i = 0; i < NR_LONG; i++)
		KUNIT_EXPECT_EQ(test, persist_alloc_release(PFN_PHYS(pfn[i]), OWNER), 0);
	KUNIT_EXPECT_EQ(test, pool_pages(nid, false), pending);
	KUNIT_EXPECT_EQ(test, pool_pages(nid, true), 0);
}

static struct kunit_case persist_prebuild_cases[] = {
	KUNIT_CASE(prebuild_builds_pending_folios),
	KUNIT_CASE(prebuild_restore_waits_for_worker),
	KUNIT_CASE(prebuild_looks_at_unbuilt_only),
	KUNIT_CASE(claim_run_all_or_nothing),
	KUNIT_CASE(claim_long_run_across_batches),
	{}
};

static struct kunit_suite persist_prebuild_suite = {
	.name = "persist_alloc_prebuild",
	.test_cases = persist_prebuild_cases,
};

kunit_test_suites(&persist_prebuild_suite);

MODULE_DESCRIPTION("KUnit tests for persist_alloc's building of handed-over folios");
MODULE_LICENSE("GPL");
