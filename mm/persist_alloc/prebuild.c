// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc: building handed-over folios before their owners ask.
 */

/**
 * DOC: Prebuilding
 *
 * A handed-over extent is adopted as the single pages its memory map was
 * initialized to at boot, and its folio must be built before its owner
 * gets it: for a plain 2 MiB or 1 GiB extent every tail struct page made
 * a tail of the head, O(pages); for an HVO extent its vmemmap optimized
 * again. Done by persist_alloc_restore(), that work falls inside the
 * owner's retrieve, in the blackout of a live update: a VMM waiting for
 * its guest memory waits for 262144 struct pages per GiB to be written.
 *
 * So right after adoption one worker per node builds the folios of the
 * node's pending extents, while the kernel goes on booting and before
 * user space asks for them. Each extent stays pending with its folio
 * built, and its restore only hands the folio out, in O(1). A worker
 * holds one extent at a time (``building``): a restore of that extent
 * waits for it, a restore of any other one does not, and an extent a
 * restore took first is not built twice. An extent whose build fails (an
 * HVO vmemmap that cannot be remapped now) stays as it was, and its
 * restore builds it, or fails, as it would have. A 4 KiB extent is its
 * own folio: adoption counts it built.
 *
 * Adoption marks the extents with a folio to build in persist_extents, and
 * a worker looks at those only. The 4 KiB extents that can make most of a
 * handover (half a million for 2 GiB) are never walked: a worker holds
 * persist_state_lock, which every allocation, free and restore takes, for
 * one marked extent at a time.
 *
 * Each worker reports in one boot line how many folios it built and in
 * how long; ``pending_built_bytes`` in sysfs says how much of the pending
 * memory is ready.
 */

#define pr_fmt(fmt) "persist_alloc: " fmt

#include <linux/sched/clock.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "internal.h"

/* Bumped, under persist_state_lock, each time a worker lets an extent go. */
static unsigned long prebuild_seq;
static DECLARE_WAIT_QUEUE_HEAD(prebuild_wq);

struct persist_prebuild {
	struct work_struct work;
	int nid;
};

/**
 * persist_extent_build - build the folio of a pending extent
 * @ext: a pending extent whose folio is not built, held by the caller
 *       (``restoring`` or ``building``)
 *
 * Return: the folio with a reference count of 1, or ERR_PTR(-ENOMEM) if
 * its vmemmap could not be optimized (its struct pages are as they were).
 */
struct folio *persist_extent_build(struct persist_extent *ext)
{
	struct folio *folio;

	if (ext->prehvo) {
		/* Its tail struct pages already are the shared tail page: O(1). */
		folio = persist_prehvo_folio(ext->pfn, ext->order);
		ext->prehvo = false;
		return folio;
	}
	if (ext->flags & PERSIST_ALLOC_HVO)
		return persist_hvo_build_folio(ext->pfn, ext->order);
	return persist_granule_to_folio(ext->pfn, ext->order);
}

/**
 * persist_prebuild_seq - where the workers are
 *
 * Called with persist_state_lock held, by a restore that found its extent
 * held by a worker, before it drops the lock to wait.
 *
 * Return: a value for persist_prebuild_wait().
 */
unsigned long persist_prebuild_seq(void)
{
	lockdep_assert_held(&persist_state_lock);
	return prebuild_seq;
}

/**
 * persist_prebuild_wait - wait until a worker lets an extent go
 * @seq: persist_prebuild_seq() from under the lock
 */
void persist_prebuild_wait(unsigned long seq)
{
	wait_event(prebuild_wq, READ_ONCE(prebuild_seq) != seq);
}

/**
 * persist_prebuild_mark - have the workers build an adopted extent
 * @ext: an extent just adopted, in persist_extents
 *
 * Marks it if its folio is to be built, so that the worker of its node
 * finds it without looking at the others: most of a handover can be 4 KiB
 * extents, and a worker looks under persist_state_lock, which every
 * allocation, free and restore takes too.
 */
void persist_prebuild_mark(struct persist_extent *ext)
{
	if (ext->pending && !ext->built)
		xa_set_mark(&persist_extents, ext->pfn, PERSIST_EXT_UNBUILT);
}

/*
 * The next marked extent of @nid from *@pfn on, held if it is still
 * pending with no folio built. The mark of each one looked at goes.
 */
static struct persist_extent *prebuild_take(int nid, unsigned long *pfn,
					    unsigned long *seen)
{
	struct persist_extent *ext;

	lockdep_assert_held(&persist_state_lock);
	for (ext = xa_find(&persist_extents, pfn, ULONG_MAX, PERSIST_EXT_UNBUILT); ext;
	     ext = xa_find_after(&persist_extents, pfn, ULONG_MAX, PERSIST_EXT_UNBUILT)) {
		if (ext->blk->pool->nid != nid)
			continue;
		(*seen)++;
		xa_clear_mark(&persist_extents, *pfn, PERSIST_EXT_UNBUILT);
		if (!ext->pending || ext->built || ext->building)
			continue;
		ext->building = true;
		return ext;
	}
	return NULL;
}

/**
 * persist_prebuild_put - let an extent go once its build is done
 * @ext:   an extent held as ``building``
 * @folio: what persist_extent_build() returned; an error leaves it unbuilt
 *
 * Wakes up the restores that wait for a worker.
 */
void persist_prebuild_put(struct persist_extent *ext, struct folio *folio)
{
	mutex_lock(&persist_state_lock);
	ext->building = false;
	if (!IS_ERR(folio)) {
		ext->built = true;
		if (!ext->claimed)
			persist_account_state(ext, &ext->blk->pool->built_pages, 1);
	}
	WRITE_ONCE(prebuild_seq, prebuild_seq + 1);
	mutex_unlock(&persist_state_lock);
	wake_up_all(&prebuild_wq);
}

/**
 * persist_prebuild_node - build the folios of a node's pending extents
 * @nid: the node
 * @st:  filled with what was done
 */
void persist_prebuild_node(int nid, struct persist_prebuild_stats *st)
{
	struct persist_extent *ext;
	unsigned long pfn = 0;
	struct folio *folio;

	memset(st, 0, sizeof(*st));
	for (;;) {
		mutex_lock(&persist_state_lock);
		ext = prebuild_take(nid, &pfn, &st->seen);
		mutex_unlock(&persist_state_lock);
		if (!ext)
			break;
		folio = persist_extent_build(ext);
		persist_prebuild_put(ext, folio);
		if (IS_ERR(folio))
			st->failed++;
		else
			st->built++;
		cond_resched();
	}
}

static void prebuild_fn(struct work_struct *work)
{
	struct persist_prebuild *pb = container_of(work, struct persist_prebuild, work);
	struct persist_prebuild_stats st;
	u64 start = local_clock();

	persist_prebuild_node(pb->nid, &st);
	pr_info("node %d: %lu handed-over folios built for their owners in %llu us, %lu left to their restore\n",
		pb->nid, st.built, div_u64(local_clock() - start, NSEC_PER_USEC), st.failed);
	kfree(pb);
}

/**
 * persist_prebuild_start - start building what was handed over
 *
 * Called once the handover is adopted: one worker for each node with
 * pending memory.
 */
void __init persist_prebuild_start(void)
{
	struct persist_prebuild *pb;
	struct persist_pool *pool;
	int nid;

	for_each_node(nid) {
		pool = persist_pools[nid];
		if (!pool || !READ_ONCE(pool->pending_pages))
			continue;
		pb = kzalloc_obj(*pb);
		if (!pb) {
			pr_warn("node %d: handed-over folios are built at their restore: no memory for a worker\n",
				nid);
			continue;
		}
		INIT_WORK(&pb->work, prebuild_fn);
		pb->nid = nid;
		queue_work_node(nid, system_dfl_long_wq, &pb->work);
	}
}
