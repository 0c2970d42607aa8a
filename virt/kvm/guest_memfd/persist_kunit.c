// SPDX-License-Identifier: GPL-2.0-only
/*
 * KUnit tests for persistent guest_memfd: the creation arguments, the
 * checks on a file handed over by the previous kernel, the stage-2 mapping
 * order of a granule, descriptions crafted to break the restore, and
 * granules of an inode frozen for a live update through the LUO file
 * handler (the test kernel boots with a pool, persist_alloc=2G, and KVM
 * initialized: -cpu max has SVM).
 */
#include <kunit/test.h>
#include <linux/completion.h>
#include <linux/kthread.h>
#include <linux/kho/abi/guest_memfd_persist.h>
#include <linux/kvm_host.h>
#include <linux/falloc.h>
#include <linux/liveupdate.h>
#include <linux/persist_alloc.h>
#include <linux/sizes.h>

#include "persist.h"
#include "../guest_memfd.h"

#define PERSIST	GUEST_MEMFD_FLAG_PERSIST
#define MMAP	GUEST_MEMFD_FLAG_MMAP
#define SHARED	GUEST_MEMFD_FLAG_INIT_SHARED
#define NDM	GUEST_MEMFD_PERSIST_NO_DIRECT_MAP
#define HVO	GUEST_MEMFD_PERSIST_HVO
#define PUNCH	(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE)

struct args_case {
	u64 size, flags, granule, persist_flags;
	int err;
};

static const struct args_case args_cases[] = {
	/* Without PERSIST the new fields are reserved words, ignored. */
	{ SZ_2M, 0, 0, 0, 0 },
	{ SZ_2M, MMAP, SZ_2M, 0, 0 },
	{ SZ_2M, 0, 0, NDM, 0 },
	/* Granules, 0 being the base page size. */
	{ SZ_4K, PERSIST, 0, 0, 0 },
	{ SZ_4K, PERSIST, SZ_4K, 0, 0 },
	{ SZ_4M, PERSIST, SZ_2M, HVO, 0 },
	{ SZ_1G, PERSIST, SZ_1G, NDM | HVO, 0 },
	{ SZ_4M, PERSIST, SZ_8K, 0, -EINVAL },
	{ SZ_4M, PERSIST, SZ_4M, 0, -EINVAL },
	{ SZ_1G, PERSIST, SZ_512M, 0, -EINVAL },
	{ SZ_1G, PERSIST, ~0ULL, 0, -EINVAL },
	/* Sizes are whole granules. */
	{ SZ_2M + SZ_4K, PERSIST, SZ_2M, 0, -EINVAL },
	{ SZ_2M, PERSIST, SZ_1G, 0, -EINVAL },
	/* Attributes. */
	{ SZ_2M, PERSIST, SZ_2M, BIT(2), -EINVAL },
	{ SZ_2M, PERSIST, SZ_2M, BIT_ULL(63), -EINVAL },
	{ SZ_4K, PERSIST, SZ_4K, HVO, -EINVAL },
	{ SZ_4K, PERSIST, 0, HVO, -EINVAL },
	{ SZ_2M, PERSIST | MMAP, SZ_2M, NDM, -EINVAL },
	{ SZ_2M, PERSIST | SHARED, SZ_2M, NDM, -EINVAL },
	{ SZ_2M, PERSIST | MMAP | SHARED, SZ_2M, HVO, 0 },
};

static void create_args_are_checked(struct kunit *test)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(args_cases); i++) {
		const struct args_case *c = &args_cases[i];
		struct kvm_create_guest_memfd args = {
			.size = c->size,
			.flags = c->flags,
			.granule_size = c->granule,
			.persist_flags = c->persist_flags,
		};

		KUNIT_EXPECT_EQ_MSG(test, kvm_gmem_persist_check_args(&args), c->err,
				    "case %d: size %#llx flags %#llx granule %#llx attributes %#llx",
				    i, c->size, c->flags, c->granule, c->persist_flags);
	}
}

static struct guest_memfd_persist_ser good_ser(void)
{
	return (struct guest_memfd_persist_ser) {
		.size = 4ULL * SZ_2M,
		.flags = PERSIST | MMAP | SHARED,
		.nr_extents = 4,
		.persist_flags = HVO,
		.order = PERSIST_ORDER_2M,
	};
}

static void handover_description_is_checked(struct kunit *test)
{
	struct guest_memfd_persist_ser ser = good_ser();

	KUNIT_EXPECT_EQ(test, kvm_gmem_persist_check_ser(&ser), 0);
	ser.nr_extents = 0;
	KUNIT_EXPECT_EQ(test, kvm_gmem_persist_check_ser(&ser), 0);

	ser = good_ser();
	ser.order = 10;
	KUNIT_EXPECT_EQ(test, kvm_gmem_persist_check_ser(&ser), -EINVAL);
	ser = good_ser();
	ser.flags &= ~PERSIST;
	KUNIT_EXPECT_EQ(test, kvm_gmem_persist_check_ser(&ser), -EINVAL);
	ser = good_ser();
	ser.flags |= BIT_ULL(40);
	KUNIT_EXPECT_EQ(test, kvm_gmem_persist_check_ser(&ser), -EINVAL);
	ser = good_ser();
	ser.size = 0;
	KUNIT_EXPECT_EQ(test, kvm_gmem_persist_check_ser(&ser), -EINVAL);
	ser = good_ser();
	ser.size += SZ_4K;
	KUNIT_EXPECT_EQ(test, kvm_gmem_persist_check_ser(&ser), -EINVAL);
	ser = good_ser();
	ser.size = ~0ULL << 21;
	KUNIT_EXPECT_EQ(test, kvm_gmem_persist_check_ser(&ser), -EINVAL);
	ser = good_ser();
	ser.nr_extents = 5;
	KUNIT_EXPECT_EQ(test, kvm_gmem_persist_check_ser(&ser), -EINVAL);
	ser = good_ser();
	ser.nr_extents = ~0ULL;
	KUNIT_EXPECT_EQ(test, kvm_gmem_persist_check_ser(&ser), -EINVAL);
	ser = good_ser();
	ser.vm_type = KVM_X86_SW_PROTECTED_VM;
	KUNIT_EXPECT_EQ(test, kvm_gmem_persist_check_ser(&ser), 0);
	ser.vm_type = KVM_X86_SNP_VM;
	KUNIT_EXPECT_EQ(test, kvm_gmem_persist_check_ser(&ser), -EINVAL);
}

/*
 * PERSIST is for VM types whose memory means the same after a kexec, with
 * or without the hardware for the others: SEV, SEV-ES, SNP and TDX never.
 */
static void persist_only_for_vm_types_kept_across_kexec(struct kunit *test)
{
	static const struct {
		u32 type;
		bool ok;
	} types[] = {
		{ KVM_X86_DEFAULT_VM, true },
		{ KVM_X86_SW_PROTECTED_VM, true },
		{ KVM_X86_SEV_VM, false },
		{ KVM_X86_SEV_ES_VM, false },
		{ KVM_X86_SNP_VM, false },
		{ KVM_X86_TDX_VM, false },
		{ 6, false },
		{ ~0U, false },
	};
	int i;

	for (i = 0; i < ARRAY_SIZE(types); i++)
		KUNIT_EXPECT_EQ_MSG(test, kvm_gmem_persist_vm_type(types[i].type), types[i].ok,
				    "VM type %u", types[i].type);
}

static void mapping_order_follows_slot_alignment(struct kunit *test)
{
	struct kvm_memory_slot slot = {};
	struct folio *folio;

	folio = folio_alloc(GFP_KERNEL, PERSIST_ORDER_2M);
	KUNIT_ASSERT_NOT_NULL(test, folio);

	/* guest frame numbers and file indexes congruent modulo 2 MiB */
	slot.base_gfn = SZ_1G >> PAGE_SHIFT;
	slot.gmem.pgoff = 0;
	KUNIT_EXPECT_EQ(test, kvm_gmem_persist_max_order(&slot, folio), PERSIST_ORDER_2M);
	slot.gmem.pgoff = SZ_2M >> PAGE_SHIFT;
	KUNIT_EXPECT_EQ(test, kvm_gmem_persist_max_order(&slot, folio), PERSIST_ORDER_2M);
	slot.base_gfn = (SZ_1G + SZ_4M) >> PAGE_SHIFT;
	slot.gmem.pgoff = SZ_1G >> PAGE_SHIFT;
	KUNIT_EXPECT_EQ(test, kvm_gmem_persist_max_order(&slot, folio), PERSIST_ORDER_2M);
	/* skewed by 4 KiB: only 4 KiB mappings line up */
	slot.gmem.pgoff = 1;
	KUNIT_EXPECT_EQ(test, kvm_gmem_persist_max_order(&slot, folio), 0);
	folio_put(folio);

	folio = folio_alloc(GFP_KERNEL, 0);
	KUNIT_ASSERT_NOT_NULL(test, folio);
	slot.gmem.pgoff = 0;
	KUNIT_EXPECT_EQ(test, kvm_gmem_persist_max_order(&slot, folio), 0);
	folio_put(folio);
}

static void put_inode(void *inode)
{
	iput(inode);
}

static void put_locked(struct folio *folio)
{
	folio_unlock(folio);
	folio_put(folio);
}

/* A persistent inode, dropped however the test ends. */
static struct inode *persist_inode(struct kunit *test, u64 size, u64 flags, u64 granule,
				   u64 persist_flags)
{
	struct inode *inode = kvm_gmem_inode_create(size, flags);

	KUNIT_ASSERT_FALSE(test, IS_ERR(inode));
	KUNIT_ASSERT_EQ(test, kunit_add_action_or_reset(test, put_inode, inode), 0);
	KUNIT_ASSERT_EQ(test, kvm_gmem_persist_setup(inode, 0, granule, persist_flags), 0);
	return inode;
}

/* A description from the previous kernel is held to the creation rules. */
static void handover_held_to_creation_rules(struct kunit *test)
{
	static const struct {
		u64 size, flags, granule, persist_flags;
		u32 vm_type;
	} bad[] = {
		{ SZ_2M, PERSIST | MMAP, SZ_2M, NDM, 0 },
		{ SZ_2M, PERSIST | SHARED, SZ_2M, NDM, 0 },
		{ SZ_4K, PERSIST, SZ_4K, HVO, 0 },
		{ SZ_2M, PERSIST, SZ_2M, BIT(5), 0 },
		{ SZ_2M + SZ_4K, PERSIST, SZ_2M, 0, 0 },
		{ SZ_2M, PERSIST, SZ_2M, 0, KVM_X86_SNP_VM },
		{ SZ_2M, PERSIST, SZ_2M, 0, KVM_X86_TDX_VM },
	};
	int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		struct inode *inode = kvm_gmem_inode_create(bad[i].size, bad[i].flags);

		KUNIT_ASSERT_FALSE(test, IS_ERR(inode));
		KUNIT_EXPECT_EQ_MSG(test, kvm_gmem_persist_setup(inode, bad[i].vm_type,
								 bad[i].granule,
								 bad[i].persist_flags),
				    -EINVAL, "case %d", i);
		KUNIT_EXPECT_NULL(test, kvm_gmem_persist(inode));
		iput(inode);
	}
}

struct crafted_case {
	const char *what;
	u64 nr, capacity;
	struct guest_memfd_persist_extent_ser e[3];
};

/*
 * Descriptions a damaged or hostile handover could hold, for a file of
 * four 2 MiB granules: each is refused before any granule is taken. A
 * record is { pfn, order, index, number of granules }.
 */
static const struct crafted_case crafted_cases[] = {
	{ "more extents than the array", 3, 2,
	  { { 512, 9, 0, 1 }, { 1024, 9, 512, 1 }, { 1536, 9, 1024, 1 } } },
	{ "more extents than granules", 5, 8, {} },
	{ "order not the file's", 1, 1, { { 512, 0, 0, 1 } } },
	{ "unsorted", 2, 2, { { 512, 9, 512, 1 }, { 1024, 9, 0, 1 } } },
	{ "overlapping", 2, 2, { { 512, 9, 512, 1 }, { 1024, 9, 512, 1 } } },
	{ "index not aligned", 1, 1, { { 512, 9, 1, 1 } } },
	{ "index past the end", 1, 1, { { 512, 9, 2048, 1 } } },
	{ "index far past the end", 1, 1, { { 512, 9, ~0ULL << 9, 1 } } },
	{ "pfn not aligned", 1, 1, { { 513, 9, 0, 1 } } },
	{ "run of no granule", 1, 1, { { 512, 9, 0, 0 } } },
	{ "run past the end", 1, 1, { { 512, 9, 1024, 3 } } },
	{ "run far past the end", 1, 1, { { 512, 9, 0, ~0ULL } } },
	{ "run overlapping the next", 2, 2, { { 512, 9, 0, 2 }, { 4096, 9, 512, 1 } } },
	{ "run past the last page frame", 1, 1, { { (1ULL << 52) - 512, 9, 0, 2 } } },
};

static void crafted_descriptions_are_refused(struct kunit *test)
{
	struct guest_memfd_persist_ser ser = {
		.size = 4ULL * SZ_2M,
		.flags = PERSIST,
		.order = PERSIST_ORDER_2M,
	};
	struct guest_memfd_persist_extent_ser one;
	struct folio *folio;
	struct inode *inode;
	int i;

	inode = persist_inode(test, ser.size, PERSIST, SZ_2M, 0);
	for (i = 0; i < ARRAY_SIZE(crafted_cases); i++) {
		const struct crafted_case *c = &crafted_cases[i];

		ser.nr_extents = c->nr;
		KUNIT_EXPECT_EQ_MSG(test, kvm_gmem_luo_restore(inode, &ser, c->e, c->capacity, 1),
				    -EINVAL, "%s", c->what);
		KUNIT_EXPECT_EQ(test, kvm_gmem_persist(inode)->nr_granules, 0);
	}

	/* Well formed, but naming memory nobody handed over: taken by no one. */
	folio = persist_alloc_folio(NUMA_NO_NODE, PERSIST_ORDER_2M, 0);
	KUNIT_ASSERT_FALSE(test, IS_ERR(folio));
	one = (struct guest_memfd_persist_extent_ser) { folio_pfn(folio), 9, 512, 1 };
	ser.nr_extents = 1;
	KUNIT_EXPECT_EQ(test, kvm_gmem_luo_restore(inode, &ser, &one, 1, 1), -ENOENT);
	KUNIT_EXPECT_EQ(test, kvm_gmem_persist(inode)->nr_granules, 0);
	KUNIT_EXPECT_EQ(test, folio_ref_count(folio), 1);
	KUNIT_EXPECT_EQ(test, persist_folio_flags(folio), 0);
	KUNIT_EXPECT_EQ(test, persist_free_folio(folio), 0);
}

/* A restored granule must have the attributes of the file it goes into. */
static void restored_granule_has_file_attributes(struct kunit *test)
{
	struct inode *plain, *ndm;
	struct folio *folio;

	plain = persist_inode(test, SZ_8K, PERSIST, SZ_4K, 0);
	ndm = persist_inode(test, SZ_8K, PERSIST, SZ_4K, NDM);

	folio = persist_alloc_folio(NUMA_NO_NODE, PERSIST_ORDER_4K,
				    PERSIST_ALLOC_NO_DIRECT_MAP);
	KUNIT_ASSERT_FALSE(test, IS_ERR(folio));
	KUNIT_EXPECT_EQ(test, persist_folio_flags(folio), PERSIST_ALLOC_NO_DIRECT_MAP);
	/* Out of the direct map into a file the host may map: refused. */
	KUNIT_EXPECT_EQ(test, kvm_gmem_persist_adopt(plain, 0, folio), -EINVAL);
	KUNIT_EXPECT_EQ(test, kvm_gmem_persist(plain)->nr_granules, 0);
	/* Into a NO_DIRECT_MAP file, where it belongs: the file frees it. */
	KUNIT_EXPECT_EQ(test, kvm_gmem_persist_adopt(ndm, 1, folio), 0);
	KUNIT_EXPECT_EQ(test, kvm_gmem_persist(ndm)->nr_granules, 1);

	folio = persist_alloc_folio(NUMA_NO_NODE, PERSIST_ORDER_4K, 0);
	KUNIT_ASSERT_FALSE(test, IS_ERR(folio));
	KUNIT_EXPECT_EQ(test, kvm_gmem_persist_adopt(ndm, 0, folio), -EINVAL);
	KUNIT_EXPECT_EQ(test, persist_free_folio(folio), 0);
	/* Not a granule of persist_alloc at all. */
	folio = folio_alloc(GFP_KERNEL, 0);
	KUNIT_ASSERT_NOT_NULL(test, folio);
	KUNIT_EXPECT_EQ(test, persist_folio_flags(folio), -EINVAL);
	KUNIT_EXPECT_EQ(test, kvm_gmem_persist_adopt(plain, 0, folio), -EINVAL);
	folio_put(folio);
}

/*
 * A file preserved in a live update that is not over, and a thread that
 * faults a new granule of it; undone however the test ends.
 */
struct preserved_file {
	struct liveupdate_file_op_args args;
	bool preserved, frozen, waiting;
	struct completion done;
	struct folio *folio;
};

static int fault_new_granule(void *data)
{
	struct preserved_file *pf = data;

	pf->folio = kvm_gmem_persist_get_folio(file_inode(pf->args.file), 0);
	complete(&pf->done);
	return 0;
}

static void unpreserve_file(void *data)
{
	struct preserved_file *pf = data;

	if (pf->frozen)
		kvm_gmem_luo_file_ops.unfreeze(&pf->args);
	if (pf->waiting) {
		wait_for_completion(&pf->done);
		if (!IS_ERR(pf->folio))
			put_locked(pf->folio);
	}
	if (pf->preserved)
		kvm_gmem_luo_file_ops.unpreserve(&pf->args);
	fput(pf->args.file);
}

static void frozen_inode_keeps_its_granules(struct kunit *test)
{
	struct preserved_file *pf;
	struct kvm_gmem_persist *p;
	struct folio *folio, *again;
	struct inode *inode;
	struct file *file;

	KUNIT_ASSERT_TRUE(test, persist_alloc_has_pool());
	inode = kvm_gmem_inode_create(4 * SZ_2M, PERSIST);
	KUNIT_ASSERT_FALSE(test, IS_ERR(inode));
	if (kvm_gmem_persist_setup(inode, 0, SZ_2M, 0)) {
		iput(inode);
		KUNIT_FAIL(test, "no persistent backing");
		return;
	}
	file = kvm_gmem_file_create(NULL, inode);
	if (IS_ERR(file))
		iput(inode);
	KUNIT_ASSERT_FALSE(test, IS_ERR(file));
	pf = kunit_kzalloc(test, sizeof(*pf), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, pf);
	pf->args.file = file;
	init_completion(&pf->done);
	/* Dropped however the test ends: the inode frees its granules. */
	KUNIT_ASSERT_EQ(test, kunit_add_action_or_reset(test, unpreserve_file, pf), 0);
	p = kvm_gmem_persist(inode);

	/* One 2 MiB folio serves every index of its granule. */
	folio = kvm_gmem_persist_get_folio(inode, 513);
	KUNIT_ASSERT_FALSE(test, IS_ERR(folio));
	KUNIT_EXPECT_EQ(test, folio_order(folio), PERSIST_ORDER_2M);
	KUNIT_EXPECT_EQ(test, folio->index, 512);
	KUNIT_EXPECT_TRUE(test, folio_test_uptodate(folio));
	put_locked(folio);
	again = kvm_gmem_persist_get_folio(inode, 1023);
	KUNIT_ASSERT_FALSE(test, IS_ERR(again));
	KUNIT_EXPECT_PTR_EQ(test, again, folio);
	put_locked(again);
	KUNIT_EXPECT_EQ(test, p->nr_granules, 1);

	/* Frozen as a reboot into the next kernel freezes it. */
	KUNIT_ASSERT_EQ(test, kvm_gmem_luo_file_ops.preserve(&pf->args), 0);
	pf->preserved = true;
	KUNIT_ASSERT_EQ(test, kvm_gmem_luo_file_ops.freeze(&pf->args), 0);
	pf->frozen = true;
	KUNIT_EXPECT_TRUE(test, p->frozen);
	/* Its granule is preserved: a second preserve is refused. */
	KUNIT_EXPECT_EQ(test, persist_alloc_preserve(folio, 1), -EBUSY);

	/*
	 * Frozen: no granule comes or goes, existing ones keep working. A
	 * fault that needs a new granule waits, neither failing nor adding it.
	 */
	again = kvm_gmem_persist_get_folio(inode, 600);
	KUNIT_ASSERT_FALSE(test, IS_ERR(again));
	KUNIT_EXPECT_PTR_EQ(test, again, folio);
	put_locked(again);
	KUNIT_ASSERT_FALSE(test, IS_ERR(kthread_run(fault_new_granule, pf, "gmem_frozen")));
	pf->waiting = true;
	KUNIT_EXPECT_EQ(test, wait_for_completion_timeout(&pf->done, HZ / 5), 0);
	KUNIT_EXPECT_EQ(test, p->nr_granules, 1);

	/* A cancelled live update: the waiter gets its granule, all works. */
	kvm_gmem_luo_file_ops.unfreeze(&pf->args);
	pf->frozen = false;
	KUNIT_EXPECT_FALSE(test, p->frozen);
	KUNIT_ASSERT_NE(test, wait_for_completion_timeout(&pf->done, 10 * HZ), 0);
	pf->waiting = false;
	KUNIT_ASSERT_FALSE(test, IS_ERR(pf->folio));
	KUNIT_EXPECT_EQ(test, pf->folio->index, 0);
	put_locked(pf->folio);
	KUNIT_EXPECT_EQ(test, p->nr_granules, 2);
	KUNIT_EXPECT_EQ(test, kvm_gmem_persist_punch_hole(inode, 0, 512), 0);
	KUNIT_EXPECT_EQ(test, kvm_gmem_persist_check_range(inode, 0, SZ_4K, SZ_2M), -EINVAL);
	KUNIT_EXPECT_EQ(test, kvm_gmem_persist_check_range(inode, 0, SZ_2M, SZ_2M), 0);
	KUNIT_EXPECT_EQ(test, kvm_gmem_persist_check_range(inode, PUNCH, SZ_4K, SZ_4K), 0);
	KUNIT_EXPECT_EQ(test, kvm_gmem_persist_punch_hole(inode, 512, 1024), 0);
	KUNIT_EXPECT_EQ(test, p->nr_granules, 0);
}

/*
 * A description with few runs holds them in its own page: they are used
 * there only if no array is described as well and the page is whole.
 */
static void inline_runs_are_checked(struct kunit *test)
{
	struct liveupdate_file_op_args args = {};
	struct guest_memfd_persist_ser *ser;
	void *page;

	page = kunit_kzalloc(test, GUEST_MEMFD_PERSIST_SER_BYTES, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, page);
	KUNIT_ASSERT_TRUE(test, PAGE_ALIGNED(page));
	ser = page;
	*ser = good_ser();
	KUNIT_EXPECT_PTR_EQ(test, kvm_gmem_luo_extents(&args, ser), &ser->runs[0]);
	ser->nr_extents = GUEST_MEMFD_PERSIST_INLINE_RUNS;
	KUNIT_EXPECT_PTR_EQ(test, kvm_gmem_luo_extents(&args, ser), &ser->runs[0]);
	KUNIT_EXPECT_LE(test, (unsigned long)&ser->runs[GUEST_MEMFD_PERSIST_INLINE_RUNS],
			(unsigned long)page + GUEST_MEMFD_PERSIST_SER_BYTES);

	/* Inline runs and an array: which is the file's is not known. */
	ser->extents.total_pages = 1;
	KUNIT_EXPECT_EQ(test, PTR_ERR(kvm_gmem_luo_extents(&args, ser)), -EINVAL);
	ser->extents.total_pages = 0;
	ser->extents.first.phys = PAGE_SIZE;
	KUNIT_EXPECT_EQ(test, PTR_ERR(kvm_gmem_luo_extents(&args, ser)), -EINVAL);
	/* No runs at all, and yet an array. */
	ser->nr_extents = 0;
	KUNIT_EXPECT_EQ(test, PTR_ERR(kvm_gmem_luo_extents(&args, ser)), -EINVAL);
	ser->extents.first.phys = 0;
	KUNIT_EXPECT_NULL(test, kvm_gmem_luo_extents(&args, ser));

	/* A description that does not start its page would be read past it. */
	ser = page + 64;
	*ser = good_ser();
	KUNIT_EXPECT_EQ(test, PTR_ERR(kvm_gmem_luo_extents(&args, ser)), -EINVAL);
	ser->nr_extents = GUEST_MEMFD_PERSIST_INLINE_RUNS + 1;
	KUNIT_EXPECT_EQ(test, PTR_ERR(kvm_gmem_luo_extents(&args, ser)), -EINVAL);
	KUNIT_EXPECT_NULL(test, args.private_data);
}

/*
 * Without the vendor module there is no mount to rebuild a file on: the
 * retrieve is -ENODEV and may be tried again once it is loaded.
 */
static void retrieve_needs_kvm_loaded(struct kunit *test)
{
	struct guest_memfd_persist_ser *ser;
	struct liveupdate_file_op_args args = {};

	ser = kunit_kzalloc(test, sizeof(*ser), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, ser);
	*ser = good_ser();
	ser->nr_extents = 0;
	args.serialized_data = virt_to_phys(ser);

	kvm_gmem_persist_exit();
	KUNIT_EXPECT_EQ(test, kvm_gmem_luo_file_ops.retrieve(&args), -ENODEV);
	kvm_gmem_persist_init();
	KUNIT_EXPECT_NULL(test, args.file);
	KUNIT_EXPECT_NULL(test, args.private_data);
}

static struct kunit_case kvm_gmem_persist_cases[] = {
	KUNIT_CASE(create_args_are_checked),
	KUNIT_CASE(handover_description_is_checked),
	KUNIT_CASE(persist_only_for_vm_types_kept_across_kexec),
	KUNIT_CASE(mapping_order_follows_slot_alignment),
	KUNIT_CASE(handover_held_to_creation_rules),
	KUNIT_CASE(crafted_descriptions_are_refused),
	KUNIT_CASE(inline_runs_are_checked),
	KUNIT_CASE(restored_granule_has_file_attributes),
	KUNIT_CASE(frozen_inode_keeps_its_granules),
	KUNIT_CASE(retrieve_needs_kvm_loaded),
	{}
};

static struct kunit_suite kvm_gmem_persist_suite = {
	.name = "kvm_gmem_persist",
	.test_cases = kvm_gmem_persist_cases,
};

kunit_test_suite(kvm_gmem_persist_suite);
