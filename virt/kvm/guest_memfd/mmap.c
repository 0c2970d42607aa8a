// SPDX-License-Identifier: GPL-2.0-only
/*
 * Persistent guest_memfd: host mappings.
 */

/**
 * DOC: Host mappings of persistent guest_memfd
 *
 * A persistent file created with GUEST_MEMFD_FLAG_MMAP and
 * GUEST_MEMFD_FLAG_INIT_SHARED can be mapped shared by the host (a VMM's
 * device emulation, vhost, io_uring). Mappings of 4 KiB and 2 MiB granules
 * map the folios of the page cache, 2 MiB ones by PMD where the mapping is
 * aligned, and can be pinned for the long term (pin_user_pages() with
 * FOLL_LONGTERM). HVO granules, whose tail struct pages are read-only, and
 * 1 GiB granules, which the mm cannot map as file folios by PUD, are PFN
 * mappings, by PMD or PUD where aligned; they cannot be pinned.
 *
 * A fault maps under the invalidate lock, inside the handler, so that a
 * punch-hole, which unmaps under it held exclusive, leaves nothing mapped
 * behind. A fault that needs a new granule while the file is frozen waits
 * for the thaw, with the mmap lock dropped where it may be. A granule with
 * a failed page (memory failure) is not mapped again.
 */

#include <linux/kvm_host.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/persist_alloc.h>

#include "persist.h"

/*
 * Whether host mappings of the file map granules by PFN: those that the
 * mm cannot map as folios without writing struct pages HVO freed (per-page
 * mapcounts of a PTE mapping), or at all by PUD (1 GiB file folios).
 */
static bool kvm_gmem_persist_pfnmap(struct kvm_gmem_persist *p)
{
	return p->order > PERSIST_ORDER_2M || (p->alloc_flags & PERSIST_ALLOC_HVO);
}

/*
 * Map @folio, locked and with a reference, at the fault: the reference
 * goes to the mapping. Done here, under the invalidate lock, not by the
 * generic code after the handler returns, so that a punch-hole or a move,
 * which unmap under it held exclusive, leave nothing mapped behind.
 */
static vm_fault_t kvm_gmem_persist_map_folio(struct vm_fault *vmf, struct folio *folio)
{
	vm_fault_t ret;

	vmf->page = folio_file_page(folio, vmf->pgoff);
	ret = finish_fault(vmf);
	folio_unlock(folio);
	if (ret)
		folio_put(folio);
	return ret ?: VM_FAULT_NOPAGE;
}

/*
 * Fault in a page of a persistent file's mapping. A new granule needed
 * while the file is frozen waits for the thaw, with the mmap lock dropped
 * where the fault allows it. Returns VM_FAULT_NOPAGE once mapped,
 * VM_FAULT_RETRY after waiting for the thaw, VM_FAULT_SIGBUS outside the
 * file, on private memory, or if no granule could be had (pool empty).
 */
static vm_fault_t kvm_gmem_persist_fault(struct vm_fault *vmf)
{
	struct file *file = vmf->vma->vm_file;
	struct inode *inode = file_inode(file);
	struct folio *folio;
	vm_fault_t ret;

	if (((loff_t)vmf->pgoff << PAGE_SHIFT) >= i_size_read(inode) ||
	    !(GMEM_I(inode)->flags & GUEST_MEMFD_FLAG_INIT_SHARED))
		return VM_FAULT_SIGBUS;
again:
	/*
	 * Punch-hole and a move unmap under the invalidate lock held
	 * exclusive: a file that lost its memory maps nothing after that.
	 */
	filemap_invalidate_lock_shared(inode->i_mapping);
	folio = kvm_gmem_file_revoked(file) ? ERR_PTR(-EPERM) :
		kvm_gmem_persist_try_folio(inode, vmf->pgoff >> kvm_gmem_persist(inode)->order);
	if (folio == ERR_PTR(-EBUSY)) {
		filemap_invalidate_unlock_shared(inode->i_mapping);
		if (vmf->flags & FAULT_FLAG_RETRY_NOWAIT)
			return VM_FAULT_RETRY;
		if (!(vmf->flags & FAULT_FLAG_ALLOW_RETRY)) {
			if (kvm_gmem_persist_wait_thaw(kvm_gmem_persist(inode), true))
				return VM_FAULT_SIGBUS;
			goto again;
		}
		/* The file, not the mapping, keeps the inode while unlocked. */
		get_file(file);
		release_fault_lock(vmf);
		/* Only a user fault returns for a signal; others would spin. */
		kvm_gmem_persist_wait_thaw(kvm_gmem_persist(inode),
					   !(vmf->flags & FAULT_FLAG_INTERRUPTIBLE));
		fput(file);
		return VM_FAULT_RETRY;
	}
	if (IS_ERR(folio)) {
		ret = VM_FAULT_SIGBUS;
		goto out;
	}
	/* A granule with a failed page is not mapped again, as KVM refuses it. */
	if (folio_test_hwpoison(folio)) {
		folio_unlock(folio);
		folio_put(folio);
		ret = VM_FAULT_HWPOISON;
		goto out;
	}

	if (!kvm_gmem_persist_pfnmap(kvm_gmem_persist(inode))) {
		ret = kvm_gmem_persist_map_folio(vmf, folio);
		goto out;
	}
	ret = vmf_insert_pfn(vmf->vma, vmf->address,
			     folio_pfn(folio) + (vmf->pgoff & (folio_nr_pages(folio) - 1)));
	folio_unlock(folio);
	folio_put(folio);
out:
	filemap_invalidate_unlock_shared(inode->i_mapping);
	return ret;
}

#ifdef CONFIG_ARCH_SUPPORTS_HUGE_PFNMAP
/*
 * Map a whole 2 MiB or 1 GiB range of a PFN mapping at once: a mapping of
 * shared memory whose address and file offset are aligned to the mapping
 * size, inside a granule at least that large, gets one PMD or PUD entry
 * instead of one PTE per 4 KiB page. Returns VM_FAULT_NOPAGE once mapped,
 * VM_FAULT_FALLBACK to map by pages (also to wait there for a frozen file
 * to thaw), VM_FAULT_SIGBUS if no granule could be had.
 */
static vm_fault_t kvm_gmem_persist_huge_fault(struct vm_fault *vmf, unsigned int order)
{
	struct vm_area_struct *vma = vmf->vma;
	struct inode *inode = file_inode(vma->vm_file);
	struct kvm_gmem_persist *p = kvm_gmem_persist(inode);
	unsigned long size = PAGE_SIZE << order;
	unsigned long addr = ALIGN_DOWN(vmf->address, size);
	pgoff_t index = linear_page_index(vma, addr);
	bool write = vmf->flags & FAULT_FLAG_WRITE;
	struct folio *folio;
	unsigned long pfn;
	vm_fault_t ret;

	/* Folio mappings get their PMDs from the fault, as page cache THPs do. */
	if (!kvm_gmem_persist_pfnmap(p) || order > p->order ||
	    (order != PMD_ORDER && order != PUD_ORDER) ||
	    !(GMEM_I(inode)->flags & GUEST_MEMFD_FLAG_INIT_SHARED) ||
	    addr < vma->vm_start || addr + size > vma->vm_end ||
	    !IS_ALIGNED(index, 1UL << order) ||
	    ((loff_t)index << PAGE_SHIFT) + size > i_size_read(inode))
		return VM_FAULT_FALLBACK;

	filemap_invalidate_lock_shared(inode->i_mapping);
	folio = kvm_gmem_file_revoked(vma->vm_file) ? ERR_PTR(-EPERM) :
		kvm_gmem_persist_try_folio(inode, index >> p->order);
	if (IS_ERR(folio)) {
		ret = folio == ERR_PTR(-EBUSY) ? VM_FAULT_FALLBACK : VM_FAULT_SIGBUS;
		goto out;
	}
	/* The fault by pages refuses it. */
	if (folio_test_hwpoison(folio)) {
		folio_unlock(folio);
		folio_put(folio);
		ret = VM_FAULT_FALLBACK;
		goto out;
	}

	pfn = folio_pfn(folio) + (index & (folio_nr_pages(folio) - 1));
	if (order == PMD_ORDER)
		ret = vmf_insert_pfn_pmd(vmf, pfn, write);
	else
		ret = vmf_insert_pfn_pud(vmf, pfn, write);
	folio_unlock(folio);
	folio_put(folio);
out:
	filemap_invalidate_unlock_shared(inode->i_mapping);
	return ret;
}

#endif /* CONFIG_ARCH_SUPPORTS_HUGE_PFNMAP */

static const struct vm_operations_struct kvm_gmem_persist_vm_ops = {
	.fault		= kvm_gmem_persist_fault,
#ifdef CONFIG_ARCH_SUPPORTS_HUGE_PFNMAP
	.huge_fault	= kvm_gmem_persist_huge_fault,
#endif
#ifdef CONFIG_NUMA
	.get_policy	= kvm_gmem_get_policy,
	.set_policy	= kvm_gmem_set_policy,
#endif
};

/**
 * kvm_gmem_persist_mmap - set up a userspace mapping of a persistent file
 * @file: the persistent guest_memfd
 * @vma:  the shared mapping
 *
 * Granules of 4 KiB and 2 MiB are mapped as the folios of the page cache
 * (2 MiB ones by PMD where aligned), so that the mapping can be pinned.
 * HVO granules, whose tail struct pages are read-only, and 1 GiB granules,
 * which the mm maps as folios by PTE only, are mapped by PFN, by PMD or PUD
 * where aligned. Neither kind is dumped, expanded or mlocked.
 */
int kvm_gmem_persist_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct kvm_gmem_persist *p = kvm_gmem_persist(file_inode(file));

	if (kvm_gmem_persist_pfnmap(p))
		vm_flags_set(vma, VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP);
	else
		vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_ops = &kvm_gmem_persist_vm_ops;
	return 0;
}

#ifdef CONFIG_TRANSPARENT_HUGEPAGE
/**
 * kvm_gmem_persist_get_unmapped_area - place a mapping of a persistent file
 * @file:  the persistent guest_memfd
 * @addr:  address hint
 * @len:   length of the mapping
 * @pgoff: file offset in pages
 * @flags: MAP_* flags
 *
 * 2 MiB aligned where it can be, so that faults can map by PMD.
 *
 * Return: the address, or a negative errno.
 */
unsigned long kvm_gmem_persist_get_unmapped_area(struct file *file, unsigned long addr,
						 unsigned long len, unsigned long pgoff,
						 unsigned long flags)
{
	return thp_get_unmapped_area(file, addr, len, pgoff, flags);
}
#endif
