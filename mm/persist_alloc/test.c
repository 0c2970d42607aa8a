// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc test consumer: /sys/kernel/debug/persist_alloc/test
 *
 * Only built with CONFIG_PERSIST_ALLOC_TEST, for the persistmem vmtests.
 * Each open file is a consumer holding up to TEST_SLOTS folios. Commands
 * are written as text, one per write():
 *
 *   alloc <nid> <order> <flags>   allocate into the lowest free slot
 *   free <slot>                   unmap the slot from user space, free it
 *   preserve <slot> <owner>       hand the slot's folio over at kexec
 *   unpreserve <slot>             do not
 *   restore <phys> <owner>        take a handed-over folio into a free slot
 *   release <phys> <owner>        give a handed-over folio back unused
 *   corrupt-handover <what>       damage the next handover: "version" or
 *                                 "extent", to test that it is refused
 *
 * A failed command returns its errno from write() and changes nothing.
 * read() lists the slots in use, one per line:
 *
 *   <slot> <pfn> <order> <nid> <flags> <direct map: first page> <last page>
 *
 * where the direct-map columns are 1 or 0 as kernel_page_present() says.
 * mmap() at offset <slot> GiB maps that slot's folio (page by page, as
 * VM_PFNMAP) so that user space can fill and check it. Closing the file
 * frees every slot except the preserved ones, which stay allocated for
 * the next kernel.
 */
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/set_memory.h>
#include <linux/slab.h>

#include "internal.h"

#define TEST_SLOTS	64
#define TEST_SLOT_SHIFT	30	/* mmap offset of a slot: slot << 30 */

struct persist_test {
	struct mutex lock;	/* slots */
	struct address_space *mapping;
	struct folio *slots[TEST_SLOTS];
};

static int test_open(struct inode *inode, struct file *file)
{
	struct persist_test *t = kzalloc_obj(*t);

	if (!t)
		return -ENOMEM;
	mutex_init(&t->lock);
	t->mapping = file->f_mapping;
	file->private_data = t;
	return 0;
}

static int test_free_slot(struct persist_test *t, unsigned int slot)
{
	struct folio *folio = t->slots[slot];
	int err;

	unmap_mapping_range(t->mapping, (loff_t)slot << TEST_SLOT_SHIFT, folio_size(folio), 1);
	err = persist_free_folio(folio);
	if (!err)
		t->slots[slot] = NULL;
	return err;
}

static int test_release(struct inode *inode, struct file *file)
{
	struct persist_test *t = file->private_data;
	unsigned int slot;

	for (slot = 0; slot < TEST_SLOTS; slot++) {
		struct persist_extent *ext;

		if (!t->slots[slot])
			continue;
		ext = xa_load(&persist_extents, folio_pfn(t->slots[slot]));
		if (ext && READ_ONCE(ext->preserved))
			continue;
		WARN_ON(test_free_slot(t, slot));
	}
	kfree(t);
	return 0;
}

static int test_free_slot_index(struct persist_test *t)
{
	unsigned int slot;

	for (slot = 0; slot < TEST_SLOTS && t->slots[slot]; slot++)
		;
	return slot == TEST_SLOTS ? -ENOSPC : slot;
}

static int test_alloc(struct persist_test *t, int nid, unsigned int order, unsigned long flags)
{
	int slot = test_free_slot_index(t);
	struct folio *folio;

	if (slot < 0)
		return slot;
	folio = persist_alloc_folio(nid, order, flags);
	if (IS_ERR(folio))
		return PTR_ERR(folio);
	t->slots[slot] = folio;
	return 0;
}

static int test_restore(struct persist_test *t, u64 phys, u64 owner)
{
	int slot = test_free_slot_index(t);
	struct folio *folio;

	if (slot < 0)
		return slot;
	folio = persist_alloc_restore(phys, owner);
	if (IS_ERR(folio))
		return PTR_ERR(folio);
	t->slots[slot] = folio;
	return 0;
}

static struct folio *test_slot(struct persist_test *t, unsigned int slot)
{
	return slot < TEST_SLOTS ? t->slots[slot] : NULL;
}

static ssize_t test_write(struct file *file, const char __user *ubuf, size_t count,
			  loff_t *ppos)
{
	struct persist_test *t = file->private_data;
	unsigned long flags;
	unsigned int order, slot;
	u64 phys, owner;
	char buf[64], *c;
	int nid, err = 0;

	if (count >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	buf[count] = '\0';
	c = strim(buf);

	mutex_lock(&t->lock);
	if (sscanf(c, "alloc %d %u %lu", &nid, &order, &flags) == 3)
		err = test_alloc(t, nid, order, flags);
	else if (sscanf(c, "free %u", &slot) == 1)
		err = test_slot(t, slot) ? test_free_slot(t, slot) : -ENOENT;
	else if (sscanf(c, "preserve %u %llu", &slot, &owner) == 2)
		err = test_slot(t, slot) ? persist_alloc_preserve(t->slots[slot], owner) : -ENOENT;
	else if (sscanf(c, "unpreserve %u", &slot) == 1)
		err = test_slot(t, slot) ? persist_alloc_unpreserve(t->slots[slot]) : -ENOENT;
	else if (sscanf(c, "restore %llx %llu", &phys, &owner) == 2)
		err = test_restore(t, phys, owner);
	else if (sscanf(c, "release %llx %llu", &phys, &owner) == 2)
		err = persist_alloc_release(phys, owner);
	else if (!strcmp(c, "corrupt-handover version"))
		persist_kho_test_corrupt = PERSIST_TEST_CORRUPT_VERSION;
	else if (!strcmp(c, "corrupt-handover extent"))
		persist_kho_test_corrupt = PERSIST_TEST_CORRUPT_EXTENT;
	else
		err = -EINVAL;
	mutex_unlock(&t->lock);
	return err ? err : count;
}

static ssize_t test_read(struct file *file, char __user *ubuf, size_t count, loff_t *ppos)
{
	struct persist_test *t = file->private_data;
	const size_t size = TEST_SLOTS * 80;
	struct persist_extent *ext;
	unsigned int slot;
	size_t len = 0;
	ssize_t ret;
	char *buf;

	buf = kmalloc(size, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	mutex_lock(&t->lock);
	for (slot = 0; slot < TEST_SLOTS; slot++) {
		struct folio *folio = t->slots[slot];

		if (!folio)
			continue;
		ext = xa_load(&persist_extents, folio_pfn(folio));
		len += scnprintf(buf + len, size - len, "%u %#lx %u %d %lu %d %d\n", slot,
				 folio_pfn(folio), folio_order(folio), folio_nid(folio),
				 ext ? ext->flags : 0,
				 kernel_page_present(folio_page(folio, 0)),
				 kernel_page_present(folio_page(folio, folio_nr_pages(folio) - 1)));
	}
	mutex_unlock(&t->lock);
	ret = simple_read_from_buffer(ubuf, count, ppos, buf, len);
	kfree(buf);
	return ret;
}

static vm_fault_t test_fault(struct vm_fault *vmf)
{
	struct persist_test *t = vmf->vma->vm_file->private_data;
	unsigned long slot = vmf->pgoff >> (TEST_SLOT_SHIFT - PAGE_SHIFT);
	unsigned long idx = vmf->pgoff & ((1UL << (TEST_SLOT_SHIFT - PAGE_SHIFT)) - 1);
	struct folio *folio;
	vm_fault_t ret = VM_FAULT_SIGBUS;

	if (slot >= TEST_SLOTS)
		return ret;
	mutex_lock(&t->lock);
	folio = t->slots[slot];
	if (folio && idx < folio_nr_pages(folio))
		ret = vmf_insert_pfn(vmf->vma, vmf->address, folio_pfn(folio) + idx);
	mutex_unlock(&t->lock);
	return ret;
}

static const struct vm_operations_struct test_vm_ops = {
	.fault = test_fault,
};

static int test_mmap(struct file *file, struct vm_area_struct *vma)
{
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
	return 0;
}
late_initcall(persist_test_init);
