// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc: restoring handed-over extents for their owners.
 *
 * An extent adopted from the previous kernel's handover is allocated and
 * pending: only the owner that preserved it may take it, once, as a folio
 * with the attributes it had (persist_alloc_restore()), or give it back
 * unused (persist_alloc_release()).
 */

#define pr_fmt(fmt) "persist_alloc: " fmt

#include <linux/export.h>
#include <linux/mm.h>

#include <trace/events/persist_alloc.h>

#include "internal.h"

/* Make a restored extent pending again; its folio stays built. */
static void pend_again(struct persist_extent *ext)
{
	lockdep_assert_held(&persist_state_lock);
	ext->pending = true;
	ext->built = true;
	/* Claimed: its owner still has it, as before the restore. */
	if (!ext->claimed) {
		persist_account_state(ext, &ext->blk->pool->pending_pages, 1);
		persist_account_state(ext, &ext->blk->pool->built_pages, 1);
	}
	if (ext->flags & PERSIST_ALLOC_HVO)
		persist_account(ext->blk->pool, ext->order, PERSIST_ALLOC_HVO, -1);
}

static struct persist_extent *take_pending(phys_addr_t phys, u64 owner, int *err)
{
	struct persist_extent *ext;
	struct persist_pool *pool;

	ext = xa_load(&persist_extents, PHYS_PFN(phys));
	if (!ext || !ext->pending || PFN_PHYS(ext->pfn) != phys) {
		*err = -ENOENT;
		return NULL;
	}
	if (ext->owner != owner) {
		*err = -EPERM;
		return NULL;
	}
	if (ext->building) {
		*err = -EBUSY;
		return NULL;
	}
	pool = ext->blk->pool;
	ext->pending = false;
	ext->restoring = true;
	/* No worker is to look at it any more. */
	xa_clear_mark(&persist_extents, ext->pfn, PERSIST_EXT_UNBUILT);
	/* A claim took it out of the counters already. */
	if (ext->claimed)
		return ext;
	/* One round trip of the pool lock for both counters. */
	spin_lock(&pool->lock);
	pool->pending_pages -= 1UL << ext->order;
	if (ext->built)
		pool->built_pages -= 1UL << ext->order;
	spin_unlock(&pool->lock);
	return ext;
}

/**
 * persist_alloc_restore - take a folio handed over by the previous kernel
 * @phys:  its physical address, as recorded by its owner
 * @owner: the key it was preserved under
 *
 * The folio comes back with the attributes it had (out of the direct map
 * if it was) and a reference count of 1; it is allocated again, and may be
 * preserved again for the next kexec.
 *
 * Its folio is usually built already, at boot (see "Prebuilding"); if a
 * worker is building it right now, this waits for that one extent.
 *
 * Return: the folio, or ERR_PTR(-ENOENT) if no handed-over extent starts
 * at @phys (or it was restored already), ERR_PTR(-EPERM) if it belongs to
 * another owner, ERR_PTR(-ENOMEM) if its vmemmap could not be optimized
 * again (it stays pending then).
 */
struct folio *persist_alloc_restore(phys_addr_t phys, u64 owner)
{
	struct persist_extent *ext;
	struct folio *folio;
	unsigned long seq;
	int err;

	mutex_lock(&persist_state_lock);
	/* A worker is building its folio: wait for it rather than build it twice. */
	while (!(ext = take_pending(phys, owner, &err)) && err == -EBUSY) {
		seq = persist_prebuild_seq();
		mutex_unlock(&persist_state_lock);
		persist_prebuild_wait(seq);
		mutex_lock(&persist_state_lock);
	}
	mutex_unlock(&persist_state_lock);
	if (!ext)
		return ERR_PTR(err);
	if (ext->built) {
		/* Built at boot, or before a release that failed: O(1). */
		folio = pfn_folio(ext->pfn);
		ext->built = false;
	} else {
		folio = persist_extent_build(ext);
		if (IS_ERR(folio)) {
			mutex_lock(&persist_state_lock);
			ext->restoring = false;
			ext->pending = true;
			/* Under the lock: pending again, it may be claimed at once. */
			if (!ext->claimed)
				persist_account_state(ext, &ext->blk->pool->pending_pages, 1);
			mutex_unlock(&persist_state_lock);
			return folio;
		}
	}
	if (ext->flags & PERSIST_ALLOC_HVO)
		persist_account(ext->blk->pool, ext->order, PERSIST_ALLOC_HVO, 1);
	/*
	 * A page of it failed, in the previous kernel or while it was being
	 * built: its owner must know. Memory failures see it allocated from
	 * here on.
	 */
	mutex_lock(&persist_state_lock);
	if (persist_hwpoison_in(ext->pfn, 1UL << ext->order))
		folio_set_hwpoison(folio);
	ext->restoring = false;
	mutex_unlock(&persist_state_lock);
	trace_persist_restore(ext->pfn, ext->order, ext->blk->pool->nid, ext->flags, owner);
	return folio;
}
EXPORT_SYMBOL_GPL(persist_alloc_restore);

/**
 * persist_alloc_release - give a handed-over extent back without using it
 * @phys:  its physical address
 * @owner: the key it was preserved under
 *
 * For owners that find they no longer need what they preserved: its
 * granule is freed, and zeroed before anyone gets it again.
 *
 * Return: 0; -ENOENT or -EPERM as persist_alloc_restore(); -ENOMEM or
 * -EBUSY if it could not be freed (an HVO folio's vmemmap, a transient
 * reference): it stays pending then, as it was (and claimed, if it was).
 */
int persist_alloc_release(phys_addr_t phys, u64 owner)
{
	struct folio *folio = persist_alloc_restore(phys, owner);
	struct persist_extent *ext;
	int err;

	if (IS_ERR(folio))
		return PTR_ERR(folio);
	err = persist_free_folio(folio);
	if (!err)
		return 0;
	/* Not freed: pending again, as it was, for a restore or another release. */
	mutex_lock(&persist_state_lock);
	ext = xa_load(&persist_extents, folio_pfn(folio));
	pend_again(ext);
	mutex_unlock(&persist_state_lock);
	return err;
}
EXPORT_SYMBOL_GPL(persist_alloc_release);

/**
 * persist_alloc_unrestore - hand a restored folio back as pending
 * @folio: a folio persist_alloc_restore() returned, not preserved since
 * @owner: the key it was restored with
 *
 * For an owner whose restore failed part way: the folio becomes pending
 * again, as it was before persist_alloc_restore(), its contents untouched,
 * so that a later restore takes it again (O(1), its folio is kept) or the
 * owner releases it. The caller's reference, which must be the only one,
 * passes to persist_alloc, and so does a charge of persist_folio_charge().
 *
 * Return: 0; -EINVAL if @folio is not a restored granule of @owner;
 * -EBUSY if it is preserved or someone else holds a reference.
 */
int persist_alloc_unrestore(struct folio *folio, u64 owner)
{
	struct persist_extent *ext;
	int err = 0;

	mutex_lock(&persist_state_lock);
	ext = xa_load(&persist_extents, folio_pfn(folio));
	if (!ext || ext->order != folio_order(folio) || ext->owner != owner ||
	    ext->pending || ext->restoring) {
		err = -EINVAL;
	} else if (ext->preserved || folio_ref_count(folio) != 1) {
		err = -EBUSY;
	} else {
		persist_uncharge(folio);
		pend_again(ext);
	}
	mutex_unlock(&persist_state_lock);
	return err;
}
EXPORT_SYMBOL_GPL(persist_alloc_unrestore);

/**
 * persist_folio_flags - the attributes of an allocated granule
 * @folio: a folio from persist_alloc_folio() or persist_alloc_restore()
 *
 * For owners to check that what they restored is what they preserved.
 *
 * Return: its PERSIST_ALLOC_NO_DIRECT_MAP and PERSIST_ALLOC_HVO flags, or
 * -EINVAL if @folio is not an allocated granule.
 */
long persist_folio_flags(struct folio *folio)
{
	struct persist_extent *ext;
	long flags = -EINVAL;

	mutex_lock(&persist_state_lock);
	ext = xa_load(&persist_extents, folio_pfn(folio));
	if (ext && ext->order == folio_order(folio) && !ext->pending &&
	    !ext->restoring)
		flags = ext->flags & (PERSIST_ALLOC_NO_DIRECT_MAP | PERSIST_ALLOC_HVO);
	mutex_unlock(&persist_state_lock);
	return flags;
}
EXPORT_SYMBOL_GPL(persist_folio_flags);
