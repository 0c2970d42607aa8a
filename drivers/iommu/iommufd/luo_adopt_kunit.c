// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests of the match between a handed-over page table and its IOAS:
 * the translations recorded from the table walk, and the pinned runs of
 * the areas compared with them. Included by luo_adopt.c.
 *
 * Copyright (c) 2026 persistmem developers
 */

#include <kunit/test.h>

static void luo_adopt_test_free(void *leaves)
{
	kvfree(leaves);
}

/* The translations of a table, recorded item by item. */
static void luo_adopt_test_table(struct kunit *test,
				 struct iommufd_luo_adoption *ad)
{
	unsigned long i;

	memset(ad, 0, sizeof(*ad));
	/* 16 KiB of 4 KiB items, contiguous in memory: one translation */
	for (i = 0; i < 4; i++)
		KUNIT_ASSERT_EQ(test, iommufd_luo_leaf_record(ad, SZ_1M + i * SZ_4K,
							      SZ_1G + i * SZ_4K,
							      SZ_4K), 0);
	/* Then 2 MiB elsewhere in memory, right after in IOVA: another */
	KUNIT_ASSERT_EQ(test, iommufd_luo_leaf_record(ad, SZ_1M + SZ_16K,
						      SZ_2G, SZ_2M), 0);
	/* Then a hole in IOVA */
	KUNIT_ASSERT_EQ(test, iommufd_luo_leaf_record(ad, SZ_16M, SZ_4G,
						      SZ_4K), 0);
	kunit_add_action(test, luo_adopt_test_free, ad->leaves);
	KUNIT_ASSERT_EQ(test, ad->nr, 3);
	KUNIT_ASSERT_EQ(test, ad->leaf_bytes, SZ_16K + SZ_2M + SZ_4K);
}

static void iommufd_luo_leaf_record_test(struct kunit *test)
{
	struct iommufd_luo_adoption ad;

	luo_adopt_test_table(test, &ad);
	KUNIT_EXPECT_EQ(test, ad.leaves[0].size, SZ_16K);
	/* An item again, inside the last translation or before it: refused */
	KUNIT_EXPECT_EQ(test, iommufd_luo_leaf_record(&ad, SZ_16M, SZ_4G,
						      SZ_4K), -EINVAL);
	KUNIT_EXPECT_EQ(test, iommufd_luo_leaf_record(&ad, SZ_1M, SZ_1G,
						      SZ_4K), -EINVAL);
	KUNIT_EXPECT_EQ(test, ad.nr, 3);
}

static void iommufd_luo_check_run_test(struct kunit *test)
{
	struct iommufd_luo_adoption ad;

	/* Runs that match, split anywhere, across translations */
	luo_adopt_test_table(test, &ad);
	KUNIT_EXPECT_EQ(test, iommufd_luo_check_run(&ad, NULL, SZ_1M, SZ_1G,
						    SZ_8K), 0);
	KUNIT_EXPECT_EQ(test, iommufd_luo_check_run(&ad, NULL, SZ_1M + SZ_8K,
						    SZ_1G + SZ_8K, SZ_8K), 0);
	KUNIT_EXPECT_EQ(test, iommufd_luo_check_run(&ad, NULL, SZ_1M + SZ_16K,
						    SZ_2G, SZ_2M), 0);
	KUNIT_EXPECT_EQ(test, iommufd_luo_check_run(&ad, NULL, SZ_16M, SZ_4G,
						    SZ_4K), 0);
	KUNIT_EXPECT_EQ(test, iommufd_luo_check_done(&ad), 0);

	/* Memory the table does not translate there */
	luo_adopt_test_table(test, &ad);
	KUNIT_EXPECT_EQ(test, iommufd_luo_check_run(&ad, NULL, SZ_1M + SZ_4K,
						    SZ_1G, SZ_4K), -EINVAL);
	/* A run that goes on into the next translation's other memory */
	KUNIT_EXPECT_EQ(test, iommufd_luo_check_run(&ad, NULL, SZ_1M, SZ_1G,
						    SZ_16K + SZ_4K), -EINVAL);
	/* IOVA the table does not translate: the hole, below, above */
	KUNIT_EXPECT_EQ(test, iommufd_luo_check_run(&ad, NULL, SZ_8M,
						    SZ_4G, SZ_4K), -EINVAL);
	KUNIT_EXPECT_EQ(test, iommufd_luo_check_run(&ad, NULL, SZ_4K, SZ_1G,
						    SZ_4K), -EINVAL);
	KUNIT_EXPECT_EQ(test, iommufd_luo_check_run(&ad, NULL, SZ_16M + SZ_4K,
						    SZ_4G + SZ_4K, SZ_4K),
			-EINVAL);

	/* Translations the areas do not cover */
	luo_adopt_test_table(test, &ad);
	KUNIT_EXPECT_EQ(test, iommufd_luo_check_run(&ad, NULL, SZ_1M, SZ_1G,
						    SZ_16K), 0);
	KUNIT_EXPECT_EQ(test, iommufd_luo_check_done(&ad), -EINVAL);

	/* An empty table translates nothing */
	memset(&ad, 0, sizeof(ad));
	KUNIT_EXPECT_EQ(test, iommufd_luo_check_run(&ad, NULL, SZ_1M, SZ_1G,
						    SZ_4K), -EINVAL);
	KUNIT_EXPECT_EQ(test, iommufd_luo_check_done(&ad), 0);
}

static struct kunit_case iommufd_luo_adopt_test_cases[] = {
	KUNIT_CASE(iommufd_luo_leaf_record_test),
	KUNIT_CASE(iommufd_luo_check_run_test),
	{}
};

static struct kunit_suite iommufd_luo_adopt_test_suite = {
	.name = "iommufd_luo_adopt",
	.test_cases = iommufd_luo_adopt_test_cases,
};

kunit_test_suite(iommufd_luo_adopt_test_suite);
