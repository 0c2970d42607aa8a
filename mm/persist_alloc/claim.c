// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc: claiming runs of handed-over extents for a lazy restore.
 */

/**
 * DOC: Claiming handed-over runs
 *
 * An owner that gets back a large number of granules need not restore
 * them all at once. persist_alloc_claim() checks a whole run of pending
 * extents against what the owner expects (that each is pending for it,
 * with the order and attributes it recorded) and marks them ``claimed``:
 * one pass under the state lock, no folio built, no page touched. The
 * owner then restores each granule with persist_alloc_restore() at its
 * first use, or gives it back with persist_alloc_release(), as for any
 * pending extent; persist_alloc_unclaim() undoes a claim whose owner
 * failed to set itself up.
 *
 * A claimed extent is still pending for the rest of persist_alloc (a
 * worker may build its folio, a memory failure marks it when restored),
 * but it no longer counts in ``pending_bytes``: its owner has it. Nothing
 * else may claim it, and it is never released by anyone but its owner.
 */

#define pr_fmt(fmt) "persist_alloc: " fmt

#include <linux/export.h>
#include <linux/mm.h>

#include "internal.h"

/*
 * Whether @ext is a pending, unclaimed extent of @owner at @pfn with
 * @order and attributes @flags: 0, or the error persist_alloc_claim()
 * returns.
 */
static int claim_check(const struct persist_extent *ext, unsigned long pfn,
		       unsigned int order, unsigned long flags, u64 owner)
{
	if (!ext || ext->pfn != pfn || !ext->pending)
		return -ENOENT;
	if (ext->owner != owner)
		return -EPERM;
	if (ext->order != order ||
	    (ext->flags & (PERSIST_ALLOC_NO_DIRECT_MAP | PERSIST_ALLOC_HVO)) != flags)
		return -EINVAL;
	if (ext->claimed)
		return -EBUSY;
	return 0;
}

/*
 * Pages of a run moving into or out of the pending counters of its pools,
 * gathered so that a run costs one round trip of the pool lock (two if it
 * crosses into another node's block).
 */
struct claim_count {
	struct persist_pool *pool;
	long pending;
	long built;
};

static void claim_flush(struct claim_count *c)
{
	if (!c->pool)
		return;
	spin_lock(&c->pool->lock);
	c->pool->pending_pages += c->pending;
	c->pool->built_pages += c->built;
	spin_unlock(&c->pool->lock);
	*c = (struct claim_count) {};
}

/* Count the pages of @ext, @sign 1 into the counters, -1 out of them. */
static void claim_account(struct claim_count *c, const struct persist_extent *ext, long sign)
{
	long pages = sign * (1L << ext->order);

	if (c->pool != ext->blk->pool) {
		claim_flush(c);
		c->pool = ext->blk->pool;
	}
	c->pending += pages;
	if (ext->built)
		c->built += pages;
}

/* The run is @nr granules of @order from @phys, inside the page frames. */
static bool claim_run_valid(phys_addr_t phys, unsigned int order, unsigned long nr)
{
	unsigned long pfn = PHYS_PFN(phys);

	return persist_order_valid(order) && nr && IS_ALIGNED(phys, PAGE_SIZE << order) &&
	       nr <= (ULONG_MAX - pfn) >> order;
}

/*
 * Look up the extent at each granule of the run of @nr granules of @order
 * from @pfn, with persist_state_lock held: @step sets or clears the claim
 * of each, or fails. The run is a run of indexes of the xarray of its
 * order (persist_extent_index()), walked one slot to the next under RCU.
 * The lock (and the RCU read section) is let go every
 * 1024 granules, so that a long run does not hold up every allocation,
 * free and restore: what is claimed so far stays so (nothing but its
 * owner touches a claimed extent), and each granule is checked when the
 * walk reaches it. Returns 0 or the first error, and in @done how many
 * steps succeeded.
 */
static int claim_walk(unsigned long pfn, unsigned int order, unsigned long nr,
		      int (*step)(struct persist_extent *ext, unsigned long at, void *arg,
				  struct claim_count *c),
		      void *arg, unsigned long *done)
{
	struct xarray *index = persist_extent_index(order);
	unsigned long first = index == &persist_extents ? pfn : pfn >> order, k;
	XA_STATE(xas, index, first);
	struct claim_count c = {};
	struct persist_extent *ext;
	bool fresh = true;
	int err = 0;

	lockdep_assert_held(&persist_state_lock);
	rcu_read_lock();
	for (k = 0; k < nr; k++) {
		ext = fresh ? xas_load(&xas) : xas_next(&xas);
		/* A slot reserved by an insert under way: no extent yet. */
		if (xa_is_zero(ext))
			ext = NULL;
		while (xas_retry(&xas, ext))
			ext = xas_load(&xas);
		fresh = false;
		err = step(ext, pfn + (k << order), arg, &c);
		if (err)
			break;
		if (!((k + 1) % 1024) && k + 1 < nr) {
			rcu_read_unlock();
			claim_flush(&c);
			mutex_unlock(&persist_state_lock);
			cond_resched();
			mutex_lock(&persist_state_lock);
			rcu_read_lock();
			xas_set(&xas, first + k + 1);
			fresh = true;
		}
	}
	rcu_read_unlock();
	claim_flush(&c);
	*done = k;
	return err;
}

struct claim_want {
	unsigned int order;
	unsigned long flags;
	u64 owner;
};

/* Claim @ext, which must be the pending extent of the owner at @at. */
static int claim_step(struct persist_extent *ext, unsigned long at, void *arg,
		      struct claim_count *c)
{
	const struct claim_want *w = arg;
	int err = claim_check(ext, at, w->order, w->flags, w->owner);

	if (err)
		return err;
	ext->claimed = true;
	claim_account(c, ext, -1);
	return 0;
}

/*
 * Give up the claim of @ext if it is a claimed extent of the owner at @at;
 * granules released since leave gaps in the run. A pending one goes back
 * into the pending counters; one the owner restored is in none, and is
 * counted there if it is ever handed back pending.
 */
static int unclaim_step(struct persist_extent *ext, unsigned long at, void *arg,
			struct claim_count *c)
{
	const struct claim_want *w = arg;

	if (!ext || ext->pfn != at || ext->order != w->order || ext->owner != w->owner ||
	    !ext->claimed || ext->restoring)
		return 0;
	ext->claimed = false;
	if (ext->pending)
		claim_account(c, ext, 1);
	return 0;
}

/**
 * persist_alloc_claim - take a run of handed-over extents for its owner
 * @phys:  physical address of the first granule
 * @order: PERSIST_ORDER_* of every granule
 * @nr:    number of granules, which follow each other in memory
 * @flags: the PERSIST_ALLOC_NO_DIRECT_MAP and PERSIST_ALLOC_HVO flags each
 *         must have
 * @owner: the key they were preserved under
 *
 * Checks every granule of the run and claims them all, or none: each is
 * then its owner's, to restore with persist_alloc_restore() when it is
 * first used or to give back with persist_alloc_release(). O(@nr) under
 * one lock, no folio built.
 *
 * Return: 0; -EINVAL for a run that is empty, misaligned or past the
 * largest page frame number, for @flags other than those two, or for a
 * granule of another order or other attributes; -ENOENT if a granule is
 * not a pending handed-over extent (refused at boot, restored already);
 * -EPERM if one belongs to another owner; -EBUSY if one is claimed
 * already. Nothing is claimed on error.
 */
int persist_alloc_claim(phys_addr_t phys, unsigned int order, unsigned long nr,
			unsigned long flags, u64 owner)
{
	struct claim_want w = { .order = order, .flags = flags, .owner = owner };
	unsigned long pfn = PHYS_PFN(phys), done, undone;
	int err;

	if (!claim_run_valid(phys, order, nr) ||
	    (flags & ~(PERSIST_ALLOC_NO_DIRECT_MAP | PERSIST_ALLOC_HVO)))
		return -EINVAL;
	mutex_lock(&persist_state_lock);
	err = claim_walk(pfn, order, nr, claim_step, &w, &done);
	if (err && done)
		claim_walk(pfn, order, done, unclaim_step, &w, &undone);
	mutex_unlock(&persist_state_lock);
	return err;
}
EXPORT_SYMBOL_GPL(persist_alloc_claim);

/**
 * persist_alloc_unclaim - give a claimed run back as pending
 * @phys:  physical address of its first granule
 * @order: PERSIST_ORDER_* of every granule
 * @nr:    number of granules
 * @owner: the key it was claimed with
 *
 * For an owner that claimed the run with persist_alloc_claim() and could
 * not go on: the granules it has not restored become pending again, for
 * a later claim or a release. Granules restored since stay the owner's,
 * no longer claimed: handed back with persist_alloc_unrestore(), they are
 * pending as any other. Anything that is not a claimed extent of @owner
 * is left alone.
 */
void persist_alloc_unclaim(phys_addr_t phys, unsigned int order, unsigned long nr, u64 owner)
{
	struct claim_want w = { .order = order, .owner = owner };
	unsigned long done;

	if (!claim_run_valid(phys, order, nr))
		return;
	mutex_lock(&persist_state_lock);
	claim_walk(PHYS_PFN(phys), order, nr, unclaim_step, &w, &done);
	mutex_unlock(&persist_state_lock);
}
EXPORT_SYMBOL_GPL(persist_alloc_unclaim);
