// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc: vmemmap optimization (HVO) of huge granules.
 *
 * With PERSIST_ALLOC_HVO, the struct pages of a 2 MiB or 1 GiB folio past
 * its first vmemmap page are remapped to a shared read-only page and their
 * own vmemmap pages freed, as HugeTLB does (mm/hugetlb_vmemmap.c): a
 * 1 GiB folio then costs 4 KiB of struct pages instead of 16 MiB, a 2 MiB
 * one 4 KiB instead of 32 KiB. The owner must not write to tail struct
 * pages: such folios are for mappings without rmap (stage-2 page tables,
 * PFN maps). The vmemmap is restored before the granule is freed.
 */
#include <linux/mm.h>

#include "../hugetlb_vmemmap.h"
#include "internal.h"

/* Bytes of struct pages an optimized folio of @order does not use. */
unsigned long persist_hvo_saved(unsigned int order)
{
	return (sizeof(struct page) << order) - HUGETLB_VMEMMAP_RESERVE_SIZE;
}

/**
 * persist_hvo_optimize - optimize the vmemmap of a freshly built folio
 * @folio: a folio nobody else knows of yet, with its reference of 1
 *
 * Return: 0; -EINVAL for a folio too small; -EOPNOTSUPP without
 * CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP; -ENOMEM. Unchanged on failure.
 */
int persist_hvo_optimize(struct folio *folio)
{
	int err;

	if (!IS_ENABLED(CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP))
		return -EOPNOTSUPP;
	if (folio_order(folio) < PERSIST_ORDER_2M)
		return -EINVAL;
	/* The remapping wants a frozen folio: nobody may take a reference. */
	if (WARN_ON_ONCE(!folio_ref_freeze(folio, 1)))
		return -EBUSY;
	err = vmemmap_optimize_folio(folio);
	folio_ref_unfreeze(folio, 1);
	return err;
}

/**
 * persist_hvo_restore - give an optimized folio its own struct pages back
 * @folio: the folio, with only its owner's reference
 *
 * Return: 0 or -ENOMEM (the folio stays optimized then).
 */
int persist_hvo_restore(struct folio *folio)
{
	int err;

	if (WARN_ON_ONCE(!folio_ref_freeze(folio, 1)))
		return -EBUSY;
	err = vmemmap_restore_folio(folio);
	folio_ref_unfreeze(folio, 1);
	return err;
}
