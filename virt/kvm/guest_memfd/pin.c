// SPDX-License-Identifier: GPL-2.0-only
/*
 * Persistent guest_memfd: long-term pins through the file.
 */

/**
 * DOC: Pins of persistent guest_memfd through the file
 *
 * The shared memory of a persistent file (GUEST_MEMFD_FLAG_INIT_SHARED) is
 * what a VMM hands to devices for DMA as well as to its own device
 * emulation. iommufd's IOMMU_IOAS_MAP_FILE pins it by file offset through
 * memfd_pin_folios(), which asks the file for each folio: one call per
 * granule, whatever its size, HVO granules included, as a pin needs no
 * host mapping and touches only the head of a folio. The file's block size
 * is its granule size, and such a mapping takes whole granules, so that
 * no granule is pinned for a part nobody maps and an IOMMU can map each
 * with its largest page size.
 *
 * A pin takes only what a host fault could map: nothing beyond the file's
 * size, no private memory, nothing of a file whose memory was moved to
 * another VM, no granule with a failed page. Files out of the direct map
 * are refused, because the kernel reads and writes pinned memory through
 * it for emulated devices. A granule punched out while pinned stays
 * allocated, out of the file, until the last pin goes.
 */

#include <linux/kvm_host.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/persist_alloc.h>

#include "persist.h"

/**
 * kvm_gmem_persist_pin_folio - pin a granule of shared memory for the long term
 * @file:  the persistent guest_memfd
 * @index: page index in the file
 *
 * The granule is allocated if need be; if that has to wait for a frozen
 * file to thaw, it waits with no lock held. The pin is taken under the
 * invalidate lock, after the revoke check: a move, which revokes under it
 * held exclusive and then looks for pins, sees every pin of the file.
 *
 * Return: the granule's folio, pinned; ERR_PTR(-EINVAL) beyond the file's
 * size, for private memory or for a folio that cannot be pinned,
 * -EOPNOTSUPP out of the direct map, -EPERM for a file whose memory was
 * moved to another VM, -EHWPOISON for a granule with a failed page, -ENOMEM
 * if the pool is empty, -EINTR if a signal came while waiting for the thaw.
 */
struct folio *kvm_gmem_persist_pin_folio(struct file *file, pgoff_t index)
{
	struct inode *inode = file_inode(file);
	struct kvm_gmem_persist *p = kvm_gmem_persist(inode);
	struct folio *folio;
	int err;

	if (((loff_t)index << PAGE_SHIFT) >= i_size_read(inode) ||
	    !(GMEM_I(inode)->flags & GUEST_MEMFD_FLAG_INIT_SHARED))
		return ERR_PTR(-EINVAL);
	if (p->alloc_flags & PERSIST_ALLOC_NO_DIRECT_MAP)
		return ERR_PTR(-EOPNOTSUPP);

	for (;;) {
		filemap_invalidate_lock_shared(inode->i_mapping);
		if (kvm_gmem_file_revoked(file)) {
			folio = ERR_PTR(-EPERM);
			break;
		}
		folio = kvm_gmem_persist_try_folio(inode, index >> p->order);
		if (folio != ERR_PTR(-EBUSY))
			break;
		filemap_invalidate_unlock_shared(inode->i_mapping);
		err = kvm_gmem_persist_wait_thaw(p, false);
		if (err)
			return ERR_PTR(err);
	}
	if (!IS_ERR(folio)) {
		err = folio_test_hwpoison(folio) ? -EHWPOISON :
		      folio_pin_longterm(folio);
		folio_unlock(folio);
		folio_put(folio);
		if (err)
			folio = ERR_PTR(err);
	}
	filemap_invalidate_unlock_shared(inode->i_mapping);
	return folio;
}
