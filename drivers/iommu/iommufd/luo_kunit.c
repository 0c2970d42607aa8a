// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests of the check of a handed-over iommufd description: what
 * retrieve and finish rely on, against every field another kernel could
 * have got wrong. Included by luo.c.
 *
 * Copyright (c) 2026 persistmem developers
 */

#include <kunit/test.h>

/* Two IOAS, three areas, one HWPT of two chunks: a valid description. */
struct luo_test_objects {
	struct iommufd_persist_ioas_ser ioas[2];
	struct iommufd_persist_area_ser areas[3];
	struct iommufd_persist_hwpt_ser hwpts[1];
	struct iommufd_persist_chunk_ser chunks[2];
} __packed;

struct luo_test_desc {
	struct iommufd_persist_ser ser;
	struct luo_test_objects *obj;
};

static void luo_test_fill(struct luo_test_desc *d)
{
	memset(d->obj, 0, sizeof(*d->obj));
	d->ser = (struct iommufd_persist_ser) {
		.nr_ioas = 2, .nr_areas = 3, .nr_hwpts = 1, .nr_chunks = 2,
		.objects = { .total_pages = 1 },
	};
	d->obj->ioas[0] = (struct iommufd_persist_ioas_ser) { .id = 1, .nr_areas = 2 };
	d->obj->ioas[1] = (struct iommufd_persist_ioas_ser) { .id = 4, .nr_areas = 1 };
	d->obj->areas[0] = (struct iommufd_persist_area_ser) {
		.iova = SZ_16M, .length = SZ_2M, .token = 7, .start = 0,
		.prot = IOMMU_READ | IOMMU_WRITE,
	};
	d->obj->areas[1] = (struct iommufd_persist_area_ser) {
		.iova = SZ_16M + SZ_2M, .length = SZ_4K, .token = 7,
		.start = SZ_2M, .prot = IOMMU_READ,
	};
	d->obj->areas[2] = (struct iommufd_persist_area_ser) {
		.iova = SZ_1G, .length = SZ_1G, .token = 8, .start = SZ_1G,
		.prot = IOMMU_WRITE,
	};
	d->obj->hwpts[0] = (struct iommufd_persist_hwpt_ser) {
		.top = 3 * SZ_2M + SZ_4K, .id = 2, .ioas_id = 1, .level = 2,
		.nr_chunks = 2,
	};
	d->obj->chunks[0].phys = 3 * SZ_2M;
	d->obj->chunks[1].phys = 8 * SZ_2M;
}

static int luo_test_check(struct luo_test_desc *d)
{
	struct iommufd_luo_image img;

	return iommufd_luo_check(&d->ser, d->obj, &img);
}

static void iommufd_luo_check_test(struct kunit *test)
{
	struct luo_test_desc d;
	struct iommufd_luo_image img;

	d.obj = kunit_kzalloc(test, PAGE_SIZE, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, d.obj);

	luo_test_fill(&d);
	KUNIT_ASSERT_EQ(test, luo_test_check(&d), 0);
	KUNIT_EXPECT_EQ(test, iommufd_luo_check(&d.ser, d.obj, &img), 0);
	KUNIT_EXPECT_PTR_EQ(test, (void *)img.areas, (void *)d.obj->areas);
	KUNIT_EXPECT_PTR_EQ(test, (void *)img.chunks, (void *)d.obj->chunks);

	/* Nothing at all is a valid, empty iommufd. */
	d.ser = (struct iommufd_persist_ser) {};
	KUNIT_EXPECT_EQ(test, iommufd_luo_check(&d.ser, NULL, &img), 0);

#define REFUSED(what, change)						\
	do {								\
		luo_test_fill(&d);					\
		change;							\
		KUNIT_EXPECT_EQ_MSG(test, luo_test_check(&d), -EINVAL, what); \
	} while (0)

	REFUSED("arrays larger than what was restored",
		d.ser.nr_areas = PAGE_SIZE / sizeof(d.obj->areas[0]));
	REFUSED("counts that overflow the size",
		d.ser.nr_chunks = U32_MAX);
	REFUSED("arrays not restored", d.ser.objects.total_pages = 0);
	REFUSED("IOAS ID zero", d.obj->ioas[0].id = 0);
	REFUSED("IOAS ID beyond the ID space", d.obj->ioas[1].id = 1U << 31);
	REFUSED("IOAS IDs not increasing", d.obj->ioas[1].id = 1);
	REFUSED("more areas than the array", d.obj->ioas[1].nr_areas = 2);
	REFUSED("areas left over", d.obj->ioas[1].nr_areas = 0);
	REFUSED("empty area", d.obj->areas[1].length = 0);
	REFUSED("IOVA not page aligned", d.obj->areas[0].iova += 512);
	REFUSED("length not page aligned", d.obj->areas[2].length -= 1);
	REFUSED("offset not page aligned", d.obj->areas[1].start = 1);
	REFUSED("unknown permission", d.obj->areas[0].prot |= IOMMU_CACHE);
	REFUSED("no permission", d.obj->areas[1].prot = 0);
	REFUSED("padding set", d.obj->areas[2].pad = 1);
	REFUSED("overlapping areas", d.obj->areas[1].iova = SZ_16M + SZ_1M);
	REFUSED("areas out of order", d.obj->areas[1].iova = 0);
	REFUSED("IOVA range wrapping",
		d.obj->areas[2].iova = (u64)-SZ_1G + SZ_4K);
	REFUSED("file range wrapping",
		d.obj->areas[2].start = (u64)-SZ_4K);
	REFUSED("HWPT ID zero", d.obj->hwpts[0].id = 0);
	REFUSED("HWPT ID beyond the ID space", d.obj->hwpts[0].id = 1U << 31);
	REFUSED("HWPT without a chunk",
		d.obj->hwpts[0].nr_chunks = 0; d.ser.nr_chunks = 0);
	REFUSED("HWPT with the ID of an IOAS", d.obj->hwpts[0].id = 4);
	REFUSED("HWPT of an IOAS not handed over", d.obj->hwpts[0].ioas_id = 3);
	REFUSED("more chunks than the array", d.obj->hwpts[0].nr_chunks = 3);
	REFUSED("chunks left over", d.obj->hwpts[0].nr_chunks = 1);
	REFUSED("chunk not 2 MiB aligned", d.obj->chunks[1].phys += SZ_4K);
#undef REFUSED
}

static struct kunit_case iommufd_luo_test_cases[] = {
	KUNIT_CASE(iommufd_luo_check_test),
	{}
};

static struct kunit_suite iommufd_luo_test_suite = {
	.name = "iommufd_luo",
	.test_cases = iommufd_luo_test_cases,
};

kunit_test_suite(iommufd_luo_test_suite);
