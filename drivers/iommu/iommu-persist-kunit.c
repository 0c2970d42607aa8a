// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests of the table arenas: a page table adopted from the chunks of
 * another, the way the next kernel adopts a handed-over one, and every way
 * the handed-over description can be wrong. Included by iommu-persist.c.
 *
 * Copyright (c) 2026 persistmem developers
 */

#include <kunit/test.h>
#include <linux/generic_pt/iommu.h>
#include <linux/iommu.h>

struct test_table {
	union {
		struct iommu_domain domain;
		struct pt_iommu_amdv1 amdv1;
	};
	spinlock_t top_lock;	/* growing the top, which these tests never do */
};

PT_IOMMU_CHECK_DOMAIN(struct test_table, amdv1.iommu, domain);

static void test_change_top(struct pt_iommu *iommu_table,
			    phys_addr_t top_paddr, unsigned int top_level)
{
}

static spinlock_t *test_get_top_lock(struct pt_iommu *iommu_table)
{
	return &container_of(iommu_table, struct test_table, amdv1.iommu)->top_lock;
}

/* amdv1 always has a dynamic top, which needs these */
static const struct pt_iommu_driver_ops test_driver_ops = {
	.change_top = test_change_top,
	.get_top_lock = test_get_top_lock,
};

#define TEST_FEATURES	(BIT(PT_FEAT_DYNAMIC_TOP) | \
			 BIT(PT_FEAT_AMDV1_ENCRYPT_TABLES) | \
			 BIT(PT_FEAT_AMDV1_FORCE_COHERENCE))

static void test_iotlb_sync(struct iommu_domain *domain,
			    struct iommu_iotlb_gather *gather)
{
	iommu_put_pages_list(&gather->freelist);
}

static const struct iommu_domain_ops test_domain_ops = {
	IOMMU_PT_DOMAIN_OPS(amdv1),
	.iotlb_sync = test_iotlb_sync,
};

/* A four level table, 48 bits of IOVA, its tables from an arena */
static struct test_table *table_new(struct kunit *test)
{
	struct pt_iommu_amdv1_cfg cfg = {
		.common.features = TEST_FEATURES,
		.common.hw_max_vasz_lg2 = 48,
		.common.hw_max_oasz_lg2 = 52,
		.starting_level = 3,
	};
	struct test_table *t;

	t = kunit_kzalloc(test, sizeof(*t), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, t);
	spin_lock_init(&t->top_lock);
	t->domain.ops = &test_domain_ops;
	t->amdv1.iommu.nid = NUMA_NO_NODE;
	t->amdv1.iommu.driver_ops = &test_driver_ops;
	KUNIT_ASSERT_EQ(test, iommu_persist_tables_attach(&t->amdv1.iommu), 0);
	KUNIT_ASSERT_EQ(test, pt_iommu_amdv1_init(&t->amdv1, &cfg, GFP_KERNEL), 0);
	return t;
}

static void table_free(struct test_table *t)
{
	pt_iommu_deinit(&t->amdv1.iommu);
	iommu_persist_tables_detach(&t->amdv1.iommu);
}

/*
 * What a kexec does to a table: its chunks and its tree stay as they are,
 * and nothing owns them any more.
 */
static void table_forget(struct test_table *t)
{
	struct iommu_persist_tables *tables = iommu_persist_tables_of(&t->amdv1.iommu);
	struct iommu_persist_chunk *chunk, *tmp;

	list_splice_init(&tables->full, &tables->partial);
	list_for_each_entry_safe(chunk, tmp, &tables->partial, node) {
		list_del(&chunk->node);
		chunk->folio->private = NULL;
		mod_node_page_state(folio_pgdat(chunk->folio), NR_IOMMU_PAGES,
				    -CHUNK_PAGES);
		kfree(chunk);
	}
	kfree(tables);
	t->amdv1.iommu.table_mem = NULL;
}

static int table_chunks(struct test_table *t)
{
	phys_addr_t top;
	unsigned int level;

	return iommu_persist_tables_describe(&t->amdv1.iommu, NULL, 0, &top,
					     &level);
}

static const struct {
	dma_addr_t iova;
	phys_addr_t pa;
	size_t len;
	unsigned int prot;
} maps[] = {
	{ SZ_4K, SZ_4G + SZ_64K, SZ_16K, IOMMU_READ | IOMMU_WRITE },
	{ 5 * SZ_2M, SZ_8G + SZ_2M, SZ_2M, IOMMU_READ },
	{ 3ULL * SZ_1G, 7ULL * SZ_1G, SZ_1G, IOMMU_READ | IOMMU_WRITE },
};

struct expect {
	phys_addr_t shift;	/* what the owner gets wrong */
	unsigned int leaves;
};

static int expect_leaf(void *arg, dma_addr_t iova, phys_addr_t pa,
		       unsigned int size_lg2, unsigned int *prot)
{
	struct expect *expect = arg;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(maps); i++) {
		if (iova < maps[i].iova ||
		    iova + BIT_ULL(size_lg2) > maps[i].iova + maps[i].len)
			continue;
		if (pa != maps[i].pa + (iova - maps[i].iova) + expect->shift)
			return -EINVAL;
		*prot = maps[i].prot;
		expect->leaves++;
		return 0;
	}
	return -EINVAL;
}

static phys_addr_t table_top(struct test_table *t)
{
	phys_addr_t top;
	unsigned int level;

	t->amdv1.iommu.ops->get_top(&t->amdv1.iommu, &top, &level);
	return top;
}

/* The physical address field of an AMD v1 entry */
#define AMDV1_OA	GENMASK_ULL(51, 12)

static u64 *top_entries(phys_addr_t top)
{
	return phys_to_virt(top);
}

static void iommu_persist_adopt_test(struct kunit *test)
{
	unsigned long iommu_pages = global_node_page_state(NR_IOMMU_PAGES);
	struct test_table *old = table_new(test), *new;
	struct expect expect = {};
	struct folio **folios, *small;
	phys_addr_t top, new_top;
	unsigned int level, i;
	u64 *entry, saved;
	void *stray;
	int nr;

	for (i = 0; i < ARRAY_SIZE(maps); i++)
		KUNIT_ASSERT_EQ(test, iommu_map(&old->domain, maps[i].iova,
						maps[i].pa, maps[i].len,
						maps[i].prot, GFP_KERNEL), 0);
	nr = table_chunks(old);
	KUNIT_ASSERT_GE(test, nr, 1);
	folios = kunit_kcalloc(test, nr + 1, sizeof(*folios), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, folios);
	KUNIT_ASSERT_EQ(test, iommu_persist_tables_describe(&old->amdv1.iommu,
							    folios, nr - 1,
							    &top, &level),
			-ENOSPC);
	KUNIT_ASSERT_EQ(test, iommu_persist_tables_describe(&old->amdv1.iommu,
							    folios, nr, &top,
							    &level),
			nr);
	KUNIT_ASSERT_EQ(test, level, 3);
	/* Chunks still owned by an arena cannot be adopted */
	new = table_new(test);
	KUNIT_ASSERT_EQ(test, iommu_persist_tables_adopt(&new->amdv1.iommu,
							 folios, nr, top, level,
							 expect_leaf, &expect),
			-EINVAL);
	table_forget(old);
	new_top = table_top(new);

	/* The same chunk twice */
	folios[nr] = folios[0];
	KUNIT_EXPECT_EQ(test, iommu_persist_tables_adopt(&new->amdv1.iommu,
							 folios, nr + 1, top,
							 level, expect_leaf,
							 &expect),
			-EINVAL);
	/* A granule that is not a 2 MiB chunk */
	small = persist_alloc_folio(NUMA_NO_NODE, 0, PERSIST_ALLOC_ZERO);
	KUNIT_ASSERT_FALSE(test, IS_ERR(small));
	folios[nr] = small;
	KUNIT_EXPECT_EQ(test, iommu_persist_tables_adopt(&new->amdv1.iommu,
							 folios, nr + 1, top,
							 level, expect_leaf,
							 &expect),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, persist_free_folio(small), 0);
	/* No chunk at all */
	KUNIT_EXPECT_EQ(test, iommu_persist_tables_adopt(&new->amdv1.iommu,
							 folios, 0, top, level,
							 expect_leaf, &expect),
			-EINVAL);
	/* A top table outside the chunks, or on a chunk's first page */
	stray = (void *)get_zeroed_page(GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, stray);
	KUNIT_EXPECT_EQ(test, iommu_persist_tables_adopt(&new->amdv1.iommu,
							 folios, nr,
							 virt_to_phys(stray),
							 level, expect_leaf,
							 &expect),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, iommu_persist_tables_adopt(&new->amdv1.iommu,
							 folios, nr,
							 PFN_PHYS(folio_pfn(folios[0])),
							 level, expect_leaf,
							 &expect),
			-EINVAL);
	/* A level other than the table's */
	KUNIT_EXPECT_EQ(test, iommu_persist_tables_adopt(&new->amdv1.iommu,
							 folios, nr, top,
							 level + 1, expect_leaf,
							 &expect),
			-EINVAL);
	/* Translations the owner does not expect */
	expect.shift = SZ_2M;
	KUNIT_EXPECT_EQ(test, iommu_persist_tables_adopt(&new->amdv1.iommu,
							 folios, nr, top, level,
							 expect_leaf, &expect),
			-EINVAL);
	expect.shift = 0;

	/* A lower table outside the chunks */
	entry = top_entries(top);
	saved = entry[0];
	KUNIT_ASSERT_TRUE(test, saved & 1);
	KUNIT_ASSERT_EQ(test, entry[1], 0);
	WRITE_ONCE(entry[0], (saved & ~AMDV1_OA) | virt_to_phys(stray));
	KUNIT_EXPECT_EQ(test, iommu_persist_tables_adopt(&new->amdv1.iommu,
							 folios, nr, top, level,
							 expect_leaf, &expect),
			-EINVAL);
	WRITE_ONCE(entry[0], saved);
	free_page((unsigned long)stray);
	/* A lower table reached twice */
	WRITE_ONCE(entry[1], saved);
	KUNIT_EXPECT_EQ(test, iommu_persist_tables_adopt(&new->amdv1.iommu,
							 folios, nr, top, level,
							 expect_leaf, &expect),
			-EINVAL);
	WRITE_ONCE(entry[1], 0);

	/* None of that changed the new table */
	KUNIT_EXPECT_EQ(test, table_top(new), new_top);
	KUNIT_EXPECT_EQ(test, iommu_iova_to_phys(&new->domain, maps[0].iova), 0);
	KUNIT_EXPECT_EQ(test, table_chunks(new), 1);

	/* The tree as it was handed over */
	expect.leaves = 0;
	KUNIT_ASSERT_EQ(test, iommu_persist_tables_adopt(&new->amdv1.iommu,
							 folios, nr, top, level,
							 expect_leaf, &expect),
			0);
	/* 4 KiB items of the first range (its IOVA is only 4 KiB aligned), 2 more */
	KUNIT_EXPECT_EQ(test, expect.leaves, 6);
	KUNIT_EXPECT_EQ(test, table_top(new), top);
	/* The chunk of the empty top went back to its pool */
	KUNIT_EXPECT_EQ(test, table_chunks(new), nr);
	for (i = 0; i < ARRAY_SIZE(maps); i++) {
		KUNIT_EXPECT_EQ(test, iommu_iova_to_phys(&new->domain,
							 maps[i].iova),
				maps[i].pa);
		KUNIT_EXPECT_EQ(test, iommu_iova_to_phys(&new->domain,
							 maps[i].iova +
							 maps[i].len - 1),
				maps[i].pa + maps[i].len - 1);
	}
	/* It is the new table's now: unmapped, mapped again, freed */
	KUNIT_EXPECT_EQ(test, iommu_unmap(&new->domain, maps[0].iova,
					  maps[0].len), maps[0].len);
	KUNIT_EXPECT_EQ(test, iommu_iova_to_phys(&new->domain, maps[0].iova), 0);
	KUNIT_EXPECT_EQ(test, iommu_map(&new->domain, maps[0].iova, SZ_1M,
					maps[0].len, IOMMU_READ, GFP_KERNEL), 0);
	KUNIT_EXPECT_EQ(test, iommu_iova_to_phys(&new->domain, maps[0].iova),
			SZ_1M);
	table_free(new);
	KUNIT_EXPECT_EQ(test, global_node_page_state(NR_IOMMU_PAGES),
			iommu_pages);
}

static int accept_leaf(void *arg, dma_addr_t iova, phys_addr_t pa,
		       unsigned int size_lg2, unsigned int *prot)
{
	*prot = IOMMU_READ | IOMMU_WRITE;
	return 0;
}

/*
 * A translation into the handed-over table memory is refused, whatever its
 * owner says: the device could rewrite its own tables through it.
 */
static void iommu_persist_adopt_leaf_in_tables_test(struct kunit *test)
{
	unsigned long iommu_pages = global_node_page_state(NR_IOMMU_PAGES);
	struct test_table *old = table_new(test), *new;
	struct folio *folios[4];
	unsigned int level, i;
	phys_addr_t top;
	int nr;

	KUNIT_ASSERT_EQ(test, iommu_persist_tables_describe(&old->amdv1.iommu,
							    folios, 4, &top,
							    &level), 1);
	KUNIT_ASSERT_EQ(test, iommu_map(&old->domain, SZ_2M,
					PFN_PHYS(folio_pfn(folios[0])), SZ_4K,
					IOMMU_READ | IOMMU_WRITE, GFP_KERNEL), 0);
	nr = iommu_persist_tables_describe(&old->amdv1.iommu, folios, 4, &top,
					   &level);
	KUNIT_ASSERT_EQ(test, nr, 1);
	table_forget(old);

	new = table_new(test);
	KUNIT_EXPECT_EQ(test, iommu_persist_tables_adopt(&new->amdv1.iommu,
							 folios, nr, top, level,
							 accept_leaf, NULL),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, table_chunks(new), 1);
	for (i = 0; i < nr; i++)
		KUNIT_EXPECT_EQ(test, persist_free_folio(folios[i]), 0);
	table_free(new);
	KUNIT_EXPECT_EQ(test, global_node_page_state(NR_IOMMU_PAGES),
			iommu_pages);
}

/* Tables without an arena cannot adopt through it */
static void iommu_persist_adopt_no_arena_test(struct kunit *test)
{
	struct test_table *plain;
	struct pt_iommu_amdv1_cfg cfg = {
		.common.features = TEST_FEATURES,
		.common.hw_max_vasz_lg2 = 48,
		.common.hw_max_oasz_lg2 = 52,
		.starting_level = 3,
	};
	struct folio *folio = NULL;
	phys_addr_t top;
	unsigned int level;

	plain = kunit_kzalloc(test, sizeof(*plain), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, plain);
	spin_lock_init(&plain->top_lock);
	plain->amdv1.iommu.nid = NUMA_NO_NODE;
	plain->amdv1.iommu.driver_ops = &test_driver_ops;
	KUNIT_ASSERT_EQ(test, pt_iommu_amdv1_init(&plain->amdv1, &cfg,
						  GFP_KERNEL), 0);
	KUNIT_EXPECT_EQ(test, iommu_persist_tables_describe(&plain->amdv1.iommu,
							    NULL, 0, &top,
							    &level),
			-EOPNOTSUPP);
	KUNIT_EXPECT_EQ(test, iommu_persist_tables_adopt(&plain->amdv1.iommu,
							 &folio, 1, 0, 3,
							 expect_leaf, NULL),
			-EOPNOTSUPP);
	pt_iommu_deinit(&plain->amdv1.iommu);
}

static struct kunit_case iommu_persist_test_cases[] = {
	KUNIT_CASE(iommu_persist_adopt_test),
	KUNIT_CASE(iommu_persist_adopt_leaf_in_tables_test),
	KUNIT_CASE(iommu_persist_adopt_no_arena_test),
	{}
};

static struct kunit_suite iommu_persist_test_suite = {
	.name = "iommu_persist",
	.test_cases = iommu_persist_test_cases,
};

kunit_test_suite(iommu_persist_test_suite);
