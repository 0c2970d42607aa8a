// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc: pre-HVO of handed-over 1 GiB HVO extents and free 1 GiB
 * HVO blocks, and of carved blocks at boot.
 */

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
 *
 * Blocks carved at this boot that ``persist_alloc_hvo=`` names are mapped
 * the same way, and join their pool as kept 1 GiB HVO blocks (see
 * "Keeping HVO blocks"): nothing ever initializes their tail struct
 * pages, which are the shared page's already, so they cost neither the
 * memory nor the boot time of 262144 struct pages per GiB until an
 * allocation of another kind needs the block. So are the blocks the
 * previous kernel kept as free 1 GiB HVO folios
 * (``PERSIST_ALLOC_BLOCK_SER_HVO_FREE``): they stay kept across the kexec.
 */

#include <linux/bsearch.h>
#include <linux/memblock.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/sort.h>

#include "../hugetlb_vmemmap.h"
#include "../internal.h"
#include "internal.h"

#ifdef CONFIG_SPARSEMEM_VMEMMAP_PREINIT
/* Room for every block a handover may hold. */
#define PREHVO_MAX	PERSIST_HANDOVER_BLOCKS_MAX
static unsigned long prehvo_pfn[PREHVO_MAX] __initdata;
static unsigned int nr_prehvo __initdata;
static bool prehvo_sorted __initdata;

static struct zone * __init zone_of(int nid, unsigned long pfn)
{
	struct zone *zone;

	for (zone = NODE_DATA(nid)->node_zones;
	     zone < NODE_DATA(nid)->node_zones + MAX_NR_ZONES; zone++)
		if (zone_spans_pfn(zone, pfn))
			return zone;
	return NULL;
}

/*
 * Map the vmemmap of the block at @pfn optimized; false if it lies in no
 * zone of @nid. A mapping that fails half way leaves some of the block's
 * vmemmap on the zone's shared tail page, which any later write of its
 * struct pages would corrupt: like hugetlb, and like the memmap of any
 * section a moment later, that is fatal.
 */
static bool __init prehvo_block(int nid, unsigned long pfn)
{
	unsigned long start = (unsigned long)pfn_to_page(pfn);
	unsigned long end = start + (sizeof(struct page) << PERSIST_ORDER_1G);
	unsigned long pnum = pfn_to_section_nr(pfn), i;
	struct zone *zone = zone_of(nid, pfn);
	void *map = pfn_to_page(pfn);

	if (!zone)
		return false;
	if (vmemmap_populate_hvo(start, end, PERSIST_ORDER_1G, zone,
				 HUGETLB_VMEMMAP_RESERVE_SIZE))
		panic("persist_alloc: no memory for the optimized memmap of %#lx\n", pfn);
	memmap_boot_pages_add(DIV_ROUND_UP(HUGETLB_VMEMMAP_RESERVE_SIZE, PAGE_SIZE));
	for (i = 0; i < PERSIST_BLOCK_SIZE / (1UL << PA_SECTION_SHIFT); i++) {
		sparse_init_early_section(nid, map, pnum + i, SECTION_IS_VMEMMAP_PREINIT);
		map += section_map_size();
	}
	return true;
}

/* The carved blocks of @nid that persist_alloc_hvo= asks for, each once. */
static unsigned int __init prehvo_carved(int nid)
{
	struct persist_boot_block *blocks;
	unsigned int nr, i, done = 0;

	blocks = persist_boot_blocks_get(&nr);
	for (i = 0; i < nr; i++) {
		if (blocks[i].nid != nid || blocks[i].hvo != PERSIST_BOOT_HVO_ASKED)
			continue;
		if (prehvo_block(nid, PHYS_PFN(blocks[i].base))) {
			blocks[i].hvo = PERSIST_BOOT_HVO;
			done++;
		} else {
			blocks[i].hvo = PERSIST_BOOT_HVO_REFUSED;
		}
	}
	return done;
}

/**
 * persist_alloc_vmemmap_init_early - pre-HVO 1 GiB blocks of a node
 * @nid: the node whose sections are about to be initialized
 *
 * Called from sparse_vmemmap_init_nid_early(). Optimized are the blocks
 * the previous kernel flagged as one 1 GiB HVO extent or as a free 1 GiB
 * HVO folio, and that passed every check of persist_handover_check_early()
 * (RAM of this node and zone, outside scratch, preserved by KHO), and the
 * blocks carved at this boot that persist_alloc_hvo= asks for.
 */
void __init persist_alloc_vmemmap_init_early(int nid)
{
	unsigned int nr_ext = 0, nr_free = 0, carved;
	unsigned long n = 0, pfn;
	phys_addr_t phys;
	bool free;

	BUILD_BUG_ON(!IS_ALIGNED(PERSIST_BLOCK_SIZE, 1UL << PA_SECTION_SHIFT));
	while ((phys = persist_handover_prehvo_block(nid, &n, &free))) {
		pfn = PHYS_PFN(phys);
		if (nr_prehvo == PREHVO_MAX || !prehvo_block(nid, pfn))
			continue;
		prehvo_pfn[nr_prehvo++] = pfn;
		if (free)
			nr_free++;
		else
			nr_ext++;
	}
	if (nr_ext)
		pr_info("persist_alloc: node %d: %u handed-over 1 GiB HVO extents get their vmemmap optimized at boot\n",
			nid, nr_ext);
	if (nr_free)
		pr_info("persist_alloc: node %d: %u free 1 GiB HVO blocks handed over get their vmemmap optimized at boot\n",
			nid, nr_free);
	carved = prehvo_carved(nid);
	if (carved)
		pr_info("persist_alloc: node %d: %u GiB carved at boot get their vmemmap optimized, %lu KiB of struct pages not allocated\n",
			nid, carved, carved * (persist_hvo_saved(PERSIST_ORDER_1G) / SZ_1K));
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

	if (order != PERSIST_ORDER_1G || !persist_prehvo_done(pfn))
		return false;
	vmemmap_wrprotect_hvo(start, start + (sizeof(struct page) << order),
			      pfn_to_nid(pfn), HUGETLB_VMEMMAP_RESERVE_SIZE);
	return true;
}

static int __init cmp_pfn(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;

	return x < y ? -1 : x > y;
}

/**
 * persist_prehvo_done - whether a handed-over block was pre-HVO'd
 * @pfn: its first page frame
 *
 * Return: true if the vmemmap of the block at @pfn was mapped optimized
 * at boot, for the 1 GiB HVO extent or the free folio it was flagged for.
 */
bool __init persist_prehvo_done(unsigned long pfn)
{
	/* Asked once per block after early boot: sorted by then, once. */
	if (!prehvo_sorted) {
		sort(prehvo_pfn, nr_prehvo, sizeof(prehvo_pfn[0]), cmp_pfn, NULL);
		prehvo_sorted = true;
	}
	return bsearch(&pfn, prehvo_pfn, nr_prehvo, sizeof(prehvo_pfn[0]), cmp_pfn);
}

#endif /* CONFIG_SPARSEMEM_VMEMMAP_PREINIT */

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
		persist_prep_tail(page, i, order);
	__folio_set_head((struct folio *)page);
	prep_compound_head(page, order);
	return page_folio(page);
}
