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
#include "../internal.h"
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
 * Return: 0, -ENOMEM or -EBUSY (the folio stays optimized then).
 */
int persist_hvo_restore(struct folio *folio)
{
	int err;

	/* A pfn walker may hold a speculative reference for a moment. */
	if (!folio_ref_freeze(folio, 1))
		return -EBUSY;
	err = vmemmap_restore_folio(folio);
	folio_ref_unfreeze(folio, 1);
	return err;
}

/**
 * persist_hvo_restore_frozen - persist_hvo_restore() of a frozen folio
 * @folio: the folio, its reference count frozen at 0 by the caller
 *
 * Return: 0 or -ENOMEM (the folio stays optimized and frozen then).
 */
int persist_hvo_restore_frozen(struct folio *folio)
{
	if (persist_fault())
		return -ENOMEM;
	return vmemmap_restore_folio(folio);
}

/* Make @page a tail of the folio headed by @head, of @order. */
void persist_prep_tail(struct page *head, unsigned long i, unsigned int order)
{
	set_page_count(head + i, 0);
	prep_compound_tail(head + i, head, order);
}

/**
 * persist_hvo_build_folio - build an HVO folio from single pages, cheaply
 * @pfn:   first page frame of a free or handed-over granule
 * @order: PERSIST_ORDER_2M or PERSIST_ORDER_1G
 *
 * vmemmap_optimize_folio() keeps only the struct pages of the first
 * vmemmap page and maps the rest to the shared tail page, so only those
 * (and the first struct page of every other vmemmap page, which the
 * remapping checks) are made tails here: O(pages / 64) instead of
 * O(pages).
 *
 * Return: the optimized folio with a reference count of 1, or an ERR_PTR
 * (-ENOMEM) with the struct pages as they were.
 */
struct folio *persist_hvo_build_folio(unsigned long pfn, unsigned int order)
{
	struct page *page = pfn_to_page(pfn);
	struct folio *folio = (struct folio *)page;
	unsigned long i;
	int err;

	if (persist_fault())
		return ERR_PTR(-ENOMEM);
	for (i = 1; i < (1UL << order); i += i < HUGETLB_VMEMMAP_RESERVE_PAGES ? 1 :
	     HUGETLB_VMEMMAP_RESERVE_PAGES)
		persist_prep_tail(page, i, order);
	__folio_set_head(folio);
	prep_compound_head(page, order);
	err = persist_hvo_optimize(folio);
	if (err) {
		/* Only part of it is a folio: put every struct page back. */
		persist_folio_to_granule(folio);
		return ERR_PTR(err);
	}
	return folio;
}
