// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc test consumer: /sys/kernel/debug/persist_alloc/test
 *
 * Only built with CONFIG_PERSIST_ALLOC_TEST, for the persistmem vmtests and
 * benchmarks. Each open file is a consumer holding folios in numbered
 * slots. Commands are written as text, one per write():
 *
 *   alloc <nid> <order> <flags>   allocate into the lowest free slot
 *   fill <count> <nid> <order> <flags>
 *                                 allocate <count> folios; all or none
 *   free <slot>                   unmap the slot from user space, free it
 *   free-all                      free every slot that is not preserved
 *   preserve <slot> <owner>       hand the slot's folio over at kexec
 *   preserve-all <owner>          preserve every slot not preserved yet
 *   unpreserve <slot>             do not
 *   restore <phys> <owner>        take a handed-over folio into a free slot
 *   restore-all <owner>           restore every extent pending for <owner>
 *   release <phys> <owner>        give a handed-over folio back unused
 *   corrupt-handover <what>       damage the next handover: "version",
 *                                 "extent", "run" or "free" (every block
 *                                 but the 1 GiB HVO extents flagged
 *                                 free), to test that it is refused
 *   unmapped <phys> <nr_pages>    0 if no page of the range is in the
 *                                 kernel direct map, -EEXIST if one is,
 *                                 -EINVAL if it is not all in the pools
 *   residue <phys> <nr_pages> <seed>
 *                                 count the 8-byte words of a physical
 *                                 range that still hold the vmtests'
 *                                 pattern <seed> (as written from offset 0
 *                                 of <phys>), into test_result
 *   fail-next-freeze <errno>      make the next live update freeze fail
 *                                 with -<errno>, after persist_alloc froze,
 *                                 to test that a cancel unfreezes
 *   warn                          WARN(), to test that the vmtest runner
 *                                 fails a test whose kernel warned
 *
 * The time spent inside the persist_alloc calls of the last "fill",
 * "preserve-all" or "restore-all" command, in nanoseconds, is in
 * /sys/kernel/debug/persist_alloc/test_api_ns, for the benchmarks.
 *
 * A failed command returns its errno from write() and changes nothing
 * (the -all commands stop at the first error, keeping what they did).
 * read() lists the first TEST_LIST_MAX slots in use, one per line:
 *
 *   <slot> <pfn> <order> <nid> <flags> <direct map: first page> <last page>
 *
 * where the direct-map columns are 1 or 0 as kernel_page_present() says.
 * mmap() at offset <slot> GiB, MAP_SHARED, maps that slot's folio (as
 * VM_PFNMAP, a fault mapping the pages up to the next PMD boundary) so
 * that user space can fill and check it; a page that had a memory
 * failure is unmapped, and touching it then raises SIGBUS.
 * Closing the file frees every slot except the preserved ones, which stay
 * allocated for the next kernel.
 */
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/ktime.h>
#include <linux/liveupdate.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/set_memory.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/vmalloc.h>

#include "internal.h"

#define TEST_SLOT_SHIFT	30	/* mmap offset of a slot: slot << 30 */
#define TEST_SLOTS_MAX	BIT(20)
#define TEST_LIST_MAX	1024

static u64 test_api_ns;
static u64 test_result;
/* Armed by "fail-next-freeze": what the next freeze fails with. */
static int test_freeze_err;

/* Last on the freeze chain: persist_alloc froze when this fails. */
static int test_freeze(struct notifier_block *nb, unsigned long event, void *unused)
{
	if (event != LIVEUPDATE_FREEZE)
		return NOTIFY_DONE;
	return notifier_from_errno(xchg(&test_freeze_err, 0));
}

static struct notifier_block test_freeze_nb = {
	.notifier_call = test_freeze,
	.priority = INT_MIN,
};

struct persist_test {
	struct list_head list;	/* in test_consumers */
	struct mutex lock;	/* slot changes */
	struct address_space *mapping;
	struct xarray slots;
};

static bool slot_preserved(struct folio *folio)
{
	struct persist_extent *ext = xa_load(&persist_extents, folio_pfn(folio));

	return ext && READ_ONCE(ext->preserved);
}

/* The open consumers, for the memory failure notifier. */
static LIST_HEAD(test_consumers);
static DEFINE_MUTEX(test_consumers_lock);

static int test_open(struct inode *inode, struct file *file)
{
	struct persist_test *t = kzalloc_obj(*t);

	if (!t)
		return -ENOMEM;
	mutex_init(&t->lock);
	xa_init_flags(&t->slots, XA_FLAGS_ALLOC);
	t->mapping = file->f_mapping;
	file->private_data = t;
	mutex_lock(&test_consumers_lock);
	list_add(&t->list, &test_consumers);
	mutex_unlock(&test_consumers_lock);
	return 0;
}

/* A page of a folio failed: unmap it wherever a consumer maps the folio. */
static int test_failure(struct notifier_block *nb, unsigned long pfn, void *data)
{
	struct folio *folio = data, *f;
	struct persist_test *t;
	unsigned long slot;

	mutex_lock(&test_consumers_lock);
	list_for_each_entry(t, &test_consumers, list) {
		mutex_lock(&t->lock);
		xa_for_each(&t->slots, slot, f) {
			if (f != folio)
				continue;
			unmap_mapping_range(t->mapping, ((loff_t)slot << TEST_SLOT_SHIFT) +
					    PFN_PHYS(pfn - folio_pfn(folio)), PAGE_SIZE, 1);
		}
		mutex_unlock(&t->lock);
	}
	mutex_unlock(&test_consumers_lock);
	return NOTIFY_OK;
}

static struct notifier_block test_failure_nb = {
	.notifier_call = test_failure,
};

static int test_free_slot(struct persist_test *t, unsigned long slot)
{
	struct folio *folio = xa_load(&t->slots, slot);
	int err;

	if (!folio)
		return -ENOENT;
	unmap_mapping_range(t->mapping, (loff_t)slot << TEST_SLOT_SHIFT, folio_size(folio), 1);
	err = persist_free_folio(folio);
	if (!err)
		xa_erase(&t->slots, slot);
	return err;
}

/* Apply @fn to every slot whose folio is not preserved; stop at an error. */
typedef int (*slot_fn_t)(struct persist_test *t, unsigned long slot, u64 arg);

static int apply_unpreserved(struct persist_test *t, slot_fn_t fn, u64 arg)
{
	struct folio *folio;
	unsigned long slot;
	int err;

	xa_for_each(&t->slots, slot, folio) {
		if (slot_preserved(folio))
			continue;
		err = fn(t, slot, arg);
		if (err)
			return err;
		cond_resched();
	}
	return 0;
}

static int free_slot_fn(struct persist_test *t, unsigned long slot, u64 unused)
{
	return test_free_slot(t, slot);
}

static int preserve_slot_fn(struct persist_test *t, unsigned long slot, u64 owner)
{
	u64 start = ktime_get_ns();
	int err = persist_alloc_preserve(xa_load(&t->slots, slot), owner);

	test_api_ns += ktime_get_ns() - start;
	return err;
}

static int test_free_all(struct persist_test *t)
{
	return apply_unpreserved(t, free_slot_fn, 0);
}

static int test_release(struct inode *inode, struct file *file)
{
	struct persist_test *t = file->private_data;

	mutex_lock(&test_consumers_lock);
	list_del(&t->list);
	mutex_unlock(&test_consumers_lock);
	WARN_ON(test_free_all(t));
	xa_destroy(&t->slots);
	kfree(t);
	return 0;
}

/* Slots filled by the running "fill" command. */
#define TEST_NEW	XA_MARK_1

/*
 * Account the persist_alloc call that began at @start and keep its folio
 * (or error) in the lowest free slot, returned in @slot.
 */
static int test_keep(struct persist_test *t, struct folio *folio, u64 start, u32 *slot)
{
	int err;

	test_api_ns += ktime_get_ns() - start;
	if (IS_ERR(folio))
		return PTR_ERR(folio);
	err = xa_alloc(&t->slots, slot, folio, XA_LIMIT(0, TEST_SLOTS_MAX - 1), GFP_KERNEL);
	if (err) {
		persist_free_folio(folio);
		return err == -EBUSY ? -ENOSPC : err;
	}
	return 0;
}

static int test_alloc(struct persist_test *t, int nid, unsigned int order, unsigned long flags,
		      u32 *slot)
{
	u64 start = ktime_get_ns();

	return test_keep(t, persist_alloc_folio(nid, order, flags), start, slot);
}

static int test_fill(struct persist_test *t, unsigned long count, int nid, unsigned int order,
		     unsigned long flags)
{
	struct folio *folio;
	unsigned long i, slot;
	int err = 0;
	u32 new;

	for (i = 0; i < count && !err; i++) {
		err = test_alloc(t, nid, order, flags, &new);
		if (!err)
			xa_set_mark(&t->slots, new, TEST_NEW);
		cond_resched();
	}
	xa_for_each_marked(&t->slots, slot, folio, TEST_NEW) {
		xa_clear_mark(&t->slots, slot, TEST_NEW);
		/* All or none: free what this command allocated. */
		if (err)
			WARN_ON(test_free_slot(t, slot));
	}
	return err;
}

static int test_restore(struct persist_test *t, u64 phys, u64 owner)
{
	u64 start = ktime_get_ns();
	u32 slot;

	return test_keep(t, persist_alloc_restore(phys, owner), start, &slot);
}

static int test_restore_all(struct persist_test *t, u64 owner)
{
	struct persist_extent *ext;
	unsigned long pfn;
	int err;

	/* Restoring changes the entries, never the indices: a plain walk. */
	xa_for_each(&persist_extents, pfn, ext) {
		/* Claimed: its owner restores it at first use, not this. */
		if (!READ_ONCE(ext->pending) || READ_ONCE(ext->claimed) || ext->owner != owner)
			continue;
		err = test_restore(t, PFN_PHYS(pfn), owner);
		if (err)
			return err;
		cond_resched();
	}
	return 0;
}

static struct folio *test_slot(struct persist_test *t, unsigned long slot)
{
	return xa_load(&t->slots, slot);
}

/* Whether any page of a pool range is in the direct map. */
static int test_unmapped(u64 phys, unsigned long nr)
{
	unsigned long pfn = PHYS_PFN(phys), i;

	if (!nr || !PAGE_ALIGNED(phys) || nr > ULONG_MAX / PAGE_SIZE)
		return -EINVAL;
	for (i = 0; i < nr; i++) {
		if (!xa_load(&persist_blocks, PFN_PHYS(pfn + i) / PERSIST_BLOCK_SIZE))
			return -EINVAL;
		if (kernel_page_present(pfn_to_page(pfn + i)))
			return -EEXIST;
		if (!(i & 511))
			cond_resched();
	}
	return 0;
}

/* The vmtests' pattern word: tools/testing/selftests/persistmem/vmtest.c. */
static u64 test_word(u64 seed, u64 off)
{
	u64 z = seed * 0x9e3779b97f4a7c15ull + off + 0x632be59bd9b4e019ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/*
 * Whatever owns the range now, it is only read, through a mapping of its
 * own (pages out of the direct map included).
 */
static int test_residue(u64 phys, unsigned long nr, u64 seed)
{
	unsigned long pfn = PHYS_PFN(phys), i;
	struct page **pages;
	const u64 *p;
	u64 found = 0;

	if (!PAGE_ALIGNED(phys) || !nr || nr > PERSIST_BLOCK_PAGES)
		return -EINVAL;
	pages = kvmalloc_array(nr, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return -ENOMEM;
	for (i = 0; i < nr; i++) {
		if (!pfn_valid(pfn + i)) {
			kvfree(pages);
			return -EFAULT;
		}
		pages[i] = pfn_to_page(pfn + i);
	}
	p = vmap(pages, nr, VM_MAP, PAGE_KERNEL_RO);
	kvfree(pages);
	if (!p)
		return -ENOMEM;
	for (i = 0; i < nr * PAGE_SIZE / sizeof(*p); i++) {
		found += READ_ONCE(p[i]) == test_word(seed, i * sizeof(*p));
		if (!(i & 4095))
			cond_resched();
	}
	vunmap(p);
	test_result = found;
	return 0;
}

static int test_command(struct persist_test *t, char *c)
{
	unsigned long flags, count, slot;
	unsigned int order;
	u64 phys, owner;
	int nid, err;
	u32 new;

	if (sscanf(c, "alloc %d %u %lu", &nid, &order, &flags) == 3)
		return test_alloc(t, nid, order, flags, &new);
	if (sscanf(c, "fill %lu %d %u %lu", &count, &nid, &order, &flags) == 4)
		return test_fill(t, count, nid, order, flags);
	if (!strcmp(c, "free-all"))
		return test_free_all(t);
	if (sscanf(c, "free %lu", &slot) == 1)
		return test_free_slot(t, slot);
	if (sscanf(c, "preserve-all %llu", &owner) == 1)
		return apply_unpreserved(t, preserve_slot_fn, owner);
	if (sscanf(c, "preserve %lu %llu", &slot, &owner) == 2)
		return test_slot(t, slot) ? persist_alloc_preserve(test_slot(t, slot), owner) :
					    -ENOENT;
	if (sscanf(c, "unpreserve %lu", &slot) == 1)
		return test_slot(t, slot) ? persist_alloc_unpreserve(test_slot(t, slot)) : -ENOENT;
	if (sscanf(c, "restore-all %llu", &owner) == 1)
		return test_restore_all(t, owner);
	if (sscanf(c, "restore %llx %llu", &phys, &owner) == 2)
		return test_restore(t, phys, owner);
	if (sscanf(c, "release %llx %llu", &phys, &owner) == 2)
		return persist_alloc_release(phys, owner);
	if (!strcmp(c, "corrupt-handover version")) {
		persist_kho_test_corrupt = PERSIST_TEST_CORRUPT_VERSION;
		return 0;
	}
	if (!strcmp(c, "corrupt-handover extent")) {
		persist_kho_test_corrupt = PERSIST_TEST_CORRUPT_EXTENT;
		return 0;
	}
	if (!strcmp(c, "corrupt-handover run")) {
		persist_kho_test_corrupt = PERSIST_TEST_CORRUPT_RUN;
		return 0;
	}
	if (!strcmp(c, "corrupt-handover free")) {
		persist_kho_test_corrupt = PERSIST_TEST_CORRUPT_FREE;
		return 0;
	}
	if (sscanf(c, "unmapped %llx %lu", &phys, &count) == 2)
		return test_unmapped(phys, count);
	if (sscanf(c, "residue %llx %lu %llu", &phys, &count, &owner) == 3)
		return test_residue(phys, count, owner);
	if (sscanf(c, "fail-next-freeze %d", &err) == 1) {
		if (err <= 0 || err > MAX_ERRNO)
			return -EINVAL;
		WRITE_ONCE(test_freeze_err, -err);
		return 0;
	}
	if (!strcmp(c, "warn")) {
		WARN(1, "persist_alloc test consumer: warning on request\n");
		return 0;
	}
	return -EINVAL;
}

static ssize_t test_write(struct file *file, const char __user *ubuf, size_t count,
			  loff_t *ppos)
{
	struct persist_test *t = file->private_data;
	char buf[64];
	int err;

	if (count >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	buf[count] = '\0';

	mutex_lock(&t->lock);
	test_api_ns = 0;
	err = test_command(t, strim(buf));
	mutex_unlock(&t->lock);
	return err ? err : count;
}

static ssize_t test_read(struct file *file, char __user *ubuf, size_t count, loff_t *ppos)
{
	struct persist_test *t = file->private_data;
	const size_t size = TEST_LIST_MAX * 80;
	struct persist_extent *ext;
	unsigned long slot, n = 0;
	struct folio *folio;
	size_t len = 0;
	ssize_t ret;
	char *buf;

	buf = kvmalloc(size, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	mutex_lock(&t->lock);
	xa_for_each(&t->slots, slot, folio) {
		if (n++ == TEST_LIST_MAX)
			break;
		ext = xa_load(&persist_extents, folio_pfn(folio));
		len += scnprintf(buf + len, size - len, "%lu %#lx %u %d %lu %d %d\n", slot,
				 folio_pfn(folio), folio_order(folio), folio_nid(folio),
				 ext ? ext->flags : 0,
				 kernel_page_present(folio_page(folio, 0)),
				 kernel_page_present(folio_page(folio, folio_nr_pages(folio) - 1)));
	}
	mutex_unlock(&t->lock);
	ret = simple_read_from_buffer(ubuf, count, ppos, buf, len);
	kvfree(buf);
	return ret;
}

/*
 * Map the pages after the faulting one along with it, up to the next PMD
 * boundary and as far as the folio and the VMA go, skipping failed pages:
 * a fault per page of a 1 GiB folio costs the tests seconds under TCG.
 */
static void test_fault_around(struct vm_fault *vmf, struct folio *folio, unsigned long idx)
{
	unsigned long addr = vmf->address + PAGE_SIZE;
	unsigned long end = min(ALIGN(addr, PMD_SIZE), vmf->vma->vm_end);

	for (idx++; addr < end && idx < folio_nr_pages(folio); addr += PAGE_SIZE, idx++) {
		if (persist_alloc_page_hwpoisoned(folio_pfn(folio) + idx))
			continue;
		if (vmf_insert_pfn(vmf->vma, addr, folio_pfn(folio) + idx) & VM_FAULT_ERROR)
			break;
	}
}

static vm_fault_t test_fault(struct vm_fault *vmf)
{
	struct persist_test *t = vmf->vma->vm_file->private_data;
	unsigned long slot = vmf->pgoff >> (TEST_SLOT_SHIFT - PAGE_SHIFT);
	unsigned long idx = vmf->pgoff & ((1UL << (TEST_SLOT_SHIFT - PAGE_SHIFT)) - 1);
	vm_fault_t ret = VM_FAULT_SIGBUS;
	struct folio *folio;

	mutex_lock(&t->lock);
	folio = xa_load(&t->slots, slot);
	if (folio && idx < folio_nr_pages(folio)) {
		if (persist_alloc_page_hwpoisoned(folio_pfn(folio) + idx)) {
			ret = VM_FAULT_HWPOISON;
		} else {
			ret = vmf_insert_pfn(vmf->vma, vmf->address, folio_pfn(folio) + idx);
			if (!(ret & VM_FAULT_ERROR))
				test_fault_around(vmf, folio, idx);
		}
	}
	mutex_unlock(&t->lock);
	return ret;
}

static const struct vm_operations_struct test_vm_ops = {
	.fault = test_fault,
};

static int test_mmap(struct file *file, struct vm_area_struct *vma)
{
	/* A private mapping would copy on write; its PFNs cannot. */
	if (vma_is_cow_mapping(vma))
		return -EINVAL;
	vm_flags_set(vma, VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_ops = &test_vm_ops;
	return 0;
}

static const struct file_operations test_fops = {
	.owner = THIS_MODULE,
	.open = test_open,
	.release = test_release,
	.read = test_read,
	.write = test_write,
	.mmap = test_mmap,
	.llseek = default_llseek,
};

static int __init persist_test_init(void)
{
	/* No proxy: the file is never removed, and the proxy has no mmap. */
	debugfs_create_file_unsafe("test", 0600, persist_debugfs_root, NULL, &test_fops);
	debugfs_create_u64("test_api_ns", 0400, persist_debugfs_root, &test_api_ns);
	debugfs_create_u64("test_result", 0400, persist_debugfs_root, &test_result);
	liveupdate_register_freeze_notifier(&test_freeze_nb);
	persist_alloc_register_failure_notifier(&test_failure_nb);
	return 0;
}
late_initcall(persist_test_init);
