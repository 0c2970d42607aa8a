// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc: charging granules to memory cgroups.
 *
 * A granule allocated with PERSIST_ALLOC_ACCOUNT, or restored and charged
 * with persist_folio_charge(), counts in the memory.current of the cgroup
 * it was charged to, and against its memory.max, until it is freed or
 * handed back pending. Pool memory is never reclaimed: a charge over the
 * limit reclaims the cgroup's other memory and then fails with -ENOMEM,
 * without calling the OOM killer, so that a tenant filling its limit with
 * granules gets an error instead of losing its processes.
 */

#define pr_fmt(fmt) "persist_alloc: " fmt

#include <linux/export.h>
#include <linux/gfp.h>
#include <linux/memcontrol.h>
#include <linux/mm.h>

#include "internal.h"

/* Charge @folio to the active memory cgroup or else the caller's. */
int persist_charge(struct folio *folio)
{
	return mem_cgroup_charge(folio, NULL, GFP_KERNEL | __GFP_RETRY_MAYFAIL);
}

/* Undo persist_charge(), if it was done; before the struct pages are reset. */
void persist_uncharge(struct folio *folio)
{
	mem_cgroup_uncharge(folio);
}

/**
 * persist_folio_charge - charge a restored granule to a memory cgroup
 * @folio: a folio from persist_alloc_restore(), not charged yet
 *
 * Charges @folio as an allocation with PERSIST_ALLOC_ACCOUNT would: to the
 * active memory cgroup (set_active_memcg()) or else the calling task's.
 * The charge goes with the folio when it is freed or handed back with
 * persist_alloc_unrestore(). May sleep.
 *
 * Return: 0 (also without memory cgroups); -EINVAL if @folio is not an
 * allocated granule or is charged already; -ENOMEM over the cgroup's
 * limit, with nothing charged.
 */
int persist_folio_charge(struct folio *folio)
{
	might_sleep();
	if (persist_folio_flags(folio) < 0 || folio_memcg_charged(folio))
		return -EINVAL;
	return persist_charge(folio);
}
EXPORT_SYMBOL_GPL(persist_folio_charge);
