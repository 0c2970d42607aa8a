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
#include <linux/kexec_handover.h>
#include <linux/kho/abi/persist_alloc.h>
#include <linux/memblock.h>
#include <linux/mm.h>
#include <linux/mmzone.h>

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

#ifdef CONFIG_SPARSEMEM_VMEMMAP_PREINIT
/**
 * DOC: Pre-HVO
 *
 * A preserved 1 GiB HVO extent is handed over with its block flagged
 * (``PERSIST_ALLOC_BLOCK_SER_HVO_1G``). The next kernel maps the vmemmap of
 * such blocks optimized before their struct pages are ever initialized,
 * from sparse_vmemmap_init_nid_early(), as hugetlb does for boot-time
 * gigantic pages (hugetlb_vmemmap_init_early()): the head vmemmap page is
 * private, the rest is the zone's shared tail page. Adoption write-protects
 * the tails once hugetlb has initialized the shared tail pages, and
 * restoring the extent only prepares the 64 struct pages of its head
 * vmemmap page: O(1) instead of O(262144). Memory saved by pre-HVO is
 * never allocated in the first place.
 */
#define PREHVO_MAX	1024
static unsigned long prehvo_pfn[PREHVO_MAX] __initdata;
static unsigned int nr_prehvo __initdata;

static struct zone * __init zone_of(int nid, unsigned long pfn)
{
	struct zone *zone;

	for (zone = NODE_DATA(nid)->node_zones;
	     zone < NODE_DATA(nid)->node_zones + MAX_NR_ZONES; zone++)
		if (zone_spans_pfn(zone, pfn))
			return zone;
	return NULL;
}

static void __init prehvo_block(int nid, unsigned long pfn)
{
	unsigned long start = (unsigned long)pfn_to_page(pfn);
	unsigned long end = start + (sizeof(struct page) << PERSIST_ORDER_1G);
	unsigned long pnum = pfn_to_section_nr(pfn), i;
	struct zone *zone = zone_of(nid, pfn);
	void *map = pfn_to_page(pfn);

	if (!zone || nr_prehvo == PREHVO_MAX)
		return;
	if (vmemmap_populate_hvo(start, end, PERSIST_ORDER_1G, zone,
				 HUGETLB_VMEMMAP_RESERVE_SIZE)) {
		pr_warn("persist_alloc: no pre-HVO for %#lx: memmap allocation failed\n",
			pfn);
		return;
	}
	memmap_boot_pages_add(DIV_ROUND_UP(HUGETLB_VMEMMAP_RESERVE_SIZE, PAGE_SIZE));
	for (i = 0; i < PERSIST_BLOCK_SIZE / (1UL << PA_SECTION_SHIFT); i++) {
		sparse_init_early_section(nid, map, pnum + i, SECTION_IS_VMEMMAP_PREINIT);
		map += section_map_size();
	}
	prehvo_pfn[nr_prehvo++] = pfn;
}

/**
 * persist_alloc_vmemmap_init_early - pre-HVO the handed-over 1 GiB HVO extents
 * @nid: the node whose sections are about to be initialized
 *
 * Called from sparse_vmemmap_init_nid_early(). Only blocks the previous
 * kernel flagged as one 1 GiB HVO extent, and that passed every check of
 * persist_handover_check_early() (RAM of this node and zone, outside
 * scratch, preserved by KHO), are optimized.
 */
void __init persist_alloc_vmemmap_init_early(int nid)
{
	unsigned int before = nr_prehvo;
	unsigned long n = 0;
	phys_addr_t phys;

	BUILD_BUG_ON(!IS_ALIGNED(PERSIST_BLOCK_SIZE, 1UL << PA_SECTION_SHIFT));
	while ((phys = persist_handover_prehvo_block(nid, &n)))
		prehvo_block(nid, PHYS_PFN(phys));
	if (nr_prehvo > before)
		pr_info("persist_alloc: node %d: %u handed-over 1 GiB HVO extents get their vmemmap optimized at boot\n",
			nid, nr_prehvo - before);
}

/**
 * persist_prehvo_adopt - whether an adopted extent was pre-HVO'd
 * @pfn:   first page frame of the extent
 * @order: its order
 *
 * Its tail struct pages are write-protected now, as hugetlb does once the
 * shared tail pages are initialized; the caller flushes the TLB.
 *
 * Return: true if the extent's vmemmap is already optimized.
 */
bool __init persist_prehvo_adopt(unsigned long pfn, unsigned int order)
{
	unsigned long start = (unsigned long)pfn_to_page(pfn);
	unsigned int i;

	if (order != PERSIST_ORDER_1G)
		return false;
	for (i = 0; i < nr_prehvo; i++) {
		if (prehvo_pfn[i] != pfn)
			continue;
		vmemmap_wrprotect_hvo(start, start + (sizeof(struct page) << order),
				      pfn_to_nid(pfn), HUGETLB_VMEMMAP_RESERVE_SIZE);
		return true;
	}
	return false;
}
#endif /* CONFIG_SPARSEMEM_VMEMMAP_PREINIT */

/* Make @page a tail of the folio headed by @head, of @order. */
static void prep_tail(struct page *head, unsigned long i, unsigned int order)
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
		prep_tail(page, i, order);
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

/**
 * persist_prehvo_folio - the folio of a pre-HVO'd extent
 * @pfn:   first page frame
 * @order: its order
 *
 * Only the struct pages in the first vmemmap page are written; the others
 * are the zone's shared tail page, already a tail of this order.
 *
 * Return: the folio, with a reference count of 1.
 */
struct folio *persist_prehvo_folio(unsigned long pfn, unsigned int order)
{
	struct page *page = pfn_to_page(pfn);
	unsigned long i;

	for (i = 1; i < HUGETLB_VMEMMAP_RESERVE_PAGES; i++)
		prep_tail(page, i, order);
	__folio_set_head((struct folio *)page);
	prep_compound_head(page, order);
	return page_folio(page);
}
