// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc: struct pages of the boot carve-out with deferred init.
 */

/**
 * DOC: Deferred struct page init
 *
 * With ``CONFIG_DEFERRED_STRUCT_PAGE_INIT``, as distributions build their
 * kernels, early boot initializes the struct pages of each node's last
 * zone only up to its first deferred section; the rest is initialized in
 * parallel later, but only where memblock has it free. The boot
 * carve-out is reserved with ``MEMBLOCK_RSRV_NOINIT``, so its struct pages
 * past that point are initialized by nobody. persist_alloc does it itself
 * when the carve-out becomes pools, as HugeTLB does for its boot pages:
 * every 1 GiB block in its boot state (single pages, refcount 1, movable
 * pageblocks), the blocks spread over one thread per CPU with padata.
 *
 * Handed-over blocks need none of this: KHO initializes the struct pages
 * of the memory it preserved before anyone uses them. For a pre-HVO'd
 * block those writes land in the zone's shared tail page, as memmap_init()
 * writes do without deferred init; hugetlb_bootmem_struct_page_init()
 * initializes that page again as tails, before any initcall and before
 * persist_alloc write-protects it.
 *
 * Of a carved block that ``persist_alloc_hvo=`` pre-HVO'd, only the 64
 * struct pages of the head vmemmap page are written, and its pageblocks'
 * migratetype: its tail struct pages are the zone's shared page, which
 * must not be written as single pages.
 */

#define pr_fmt(fmt) "persist_alloc: " fmt

#include <linux/sched/clock.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/padata.h>
#include <linux/page-isolation.h>

#include "../hugetlb_vmemmap.h"
#include "../mm_init.h"
#include "internal.h"

/* The zone of @nid that spans @pfn; each block lies in one zone. */
static enum zone_type __init block_zone(int nid, unsigned long pfn)
{
	enum zone_type zid;

	for (zid = 0; zid < MAX_NR_ZONES; zid++)
		if (zone_spans_pfn(&NODE_DATA(nid)->node_zones[zid], pfn))
			return zid;
	return ZONE_NORMAL;
}

/*
 * Not init_deferred_page(): once deferred init has run, every node's
 * first_deferred_pfn is reset and it takes every page for initialized.
 * Blocks that early boot did initialize (low zones) are written again.
 */
static void __init init_block_pages(unsigned long start, unsigned long end, void *arg)
{
	const struct persist_boot_block *blocks = arg;
	unsigned long b, i, pfn, own;
	enum zone_type zid;
	int nid;

	for (b = start; b < end; b++) {
		pfn = PHYS_PFN(blocks[b].base);
		nid = blocks[b].nid;
		zid = block_zone(nid, pfn);
		/* Pre-HVO'd: only the head vmemmap page is the block's own. */
		own = blocks[b].hvo == PERSIST_BOOT_HVO ? HUGETLB_VMEMMAP_RESERVE_PAGES :
			PERSIST_BLOCK_PAGES;
		for (i = 0; i < own; i++) {
			__init_single_page(pfn_to_page(pfn + i), pfn + i, zid, nid);
			if (pageblock_aligned(pfn + i + 1))
				cond_resched();
		}
		for (i = 0; i < PERSIST_BLOCK_PAGES; i += pageblock_nr_pages)
			init_pageblock_migratetype(pfn_to_page(pfn + i), MIGRATE_MOVABLE, false);
	}
}

/**
 * persist_memmap_init_blocks - initialize the struct pages of boot blocks
 * @blocks: the blocks carved at this boot
 * @nr:     how many
 *
 * Without deferred struct page init, early boot did it already.
 */
void __init persist_memmap_init_blocks(const struct persist_boot_block *blocks,
				       unsigned int nr)
{
	struct padata_mt_job job = {
		.thread_fn	= init_block_pages,
		.fn_arg		= (void *)blocks,
		.start		= 0,
		.size		= nr,
		.align		= 1,
		.min_chunk	= 1,
		.max_threads	= num_online_cpus(),
	};
	u64 start = local_clock();

	if (!IS_ENABLED(CONFIG_DEFERRED_STRUCT_PAGE_INIT) || !nr)
		return;
	padata_do_multithreaded(&job);
	pr_info("struct pages of %u GiB carved at boot initialized in %llu us\n", nr,
		div_u64(local_clock() - start, NSEC_PER_USEC));
}
