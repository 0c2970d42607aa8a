// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc: removing folios from the kernel direct map and back.
 *
 * As mm/secretmem.c does for single pages, but for whole granules: one
 * set_direct_map_valid_noflush() call covers a 2 MiB or 1 GiB folio, and a
 * naturally aligned folio that covers a whole large direct-map entry is
 * changed in place without splitting it.
 *
 * Hibernation is refused while any pool memory is out of the direct map.
 */
#include <linux/bitmap.h>
#include <linux/mm.h>
#include <linux/notifier.h>
#include <linux/set_memory.h>
#include <linux/suspend.h>

#include <asm/tlbflush.h>

#include "internal.h"

/**
 * persist_direct_map_remove - unmap a folio from the direct map
 * @folio: the folio, already zeroed or filled as its owner needs
 *
 * Return: 0, -EOPNOTSUPP if the architecture cannot change the direct map,
 * or the error of the page attribute change (-ENOMEM for a split that
 * could not allocate); the mapping is unchanged on failure.
 */
int persist_direct_map_remove(struct folio *folio)
{
	unsigned long addr = (unsigned long)folio_address(folio);
	int err;

	if (!can_set_direct_map())
		return -EOPNOTSUPP;
	if (persist_fault())
		return -ENOMEM;
	err = set_direct_map_valid_noflush(folio_page(folio, 0), folio_nr_pages(folio), false);
	if (err)
		return err;
	flush_tlb_kernel_range(addr, addr + folio_size(folio));
	return 0;
}

/**
 * persist_direct_map_restore - map a folio removed by
 * persist_direct_map_remove() again
 * @folio: the folio
 *
 * Cannot fail: any split of a large mapping was done by the removal.
 */
void persist_direct_map_restore(struct folio *folio)
{
	WARN_ON_ONCE(set_direct_map_valid_noflush(folio_page(folio, 0),
						  folio_nr_pages(folio), true));
}

/* Whether some pool memory is out of the direct map right now. */
static bool persist_direct_map_holes(void)
{
	struct persist_block *blk;
	bool holes = false;
	int nid;

	for_each_node(nid) {
		struct persist_pool *pool = READ_ONCE(persist_pools[nid]);

		if (!pool)
			continue;
		spin_lock(&pool->lock);
		holes = pool->no_direct_map_pages;
		list_for_each_entry(blk, &pool->blocks, list)
			holes |= !bitmap_empty(blk->dirty, PERSIST_BLOCK_CHUNKS);
		spin_unlock(&pool->lock);
		if (holes)
			break;
	}
	return holes;
}

/*
 * A hibernation image is a copy of memory through the direct map: it would
 * fault on memory removed from it, and would write out memory its owner
 * asked to keep from the kernel. Refuse, as secretmem does.
 */
static int persist_pm_notify(struct notifier_block *nb, unsigned long action, void *data)
{
	if (action != PM_HIBERNATION_PREPARE || !persist_direct_map_holes())
		return NOTIFY_DONE;
	pr_warn_ratelimited("persist_alloc: no hibernation while pool memory is out of the direct map\n");
	return notifier_from_errno(-EBUSY);
}

static struct notifier_block persist_pm_nb = {
	.notifier_call = persist_pm_notify,
};

static int __init persist_direct_map_init(void)
{
	return register_pm_notifier(&persist_pm_nb);
}
core_initcall(persist_direct_map_init);
