// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc: removing folios from the kernel direct map and back.
 *
 * As mm/secretmem.c does for single pages, but for whole granules: one
 * set_direct_map_valid_noflush() call covers a 2 MiB or 1 GiB folio, and a
 * naturally aligned folio that covers a whole large direct-map entry is
 * changed in place without splitting it.
 */
#include <linux/mm.h>
#include <linux/set_memory.h>

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
