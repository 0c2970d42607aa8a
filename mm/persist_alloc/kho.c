// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc: handing pools and preserved extents over through KHO.
 */

/**
 * DOC: Handover across kexec
 *
 * A consumer marks an allocated folio with persist_alloc_preserve() under
 * an owner key of its choosing. At the next kexec the pools and the
 * preserved extents are handed to the next kernel in the KHO subtree
 * described in ``include/linux/kho/abi/persist_alloc.h``:
 *
 * - every block of every pool is preserved with KHO as one 1 GiB range
 *   when it joins a pool, so the next kernel keeps it reserved before its
 *   buddy allocator starts;
 * - the subtree blob is allocated once, with room for a block per GiB of
 *   the physical address space (at most PERSIST_HANDOVER_BLOCKS_MAX, the
 *   limit of the receiver too), and written as things change: a block's
 *   entry when it joins or leaves a pool, an extent's entry when its folio
 *   is preserved or unpreserved (the extent array grows ahead of time; the
 *   new array is preserved before the old one is dropped). At kexec the
 *   handover is already complete: the blackout only folds its entries
 *   into runs and moves them into an array of their size (below), one
 *   pass over what is preserved, and flags the
 *   blocks kept as free 1 GiB HVO folios, one pass over the pools' kept
 *   lists; never over the pools or the extents ever allocated.
 *
 * The handover is frozen with the live update (a LUO freeze notifier, run
 * after every preserved file froze). Freezing folds entries that follow
 * each other in the array and in memory, with one owner and one set of
 * attributes, into runs: a consumer preserving its granules in order hands
 * them over in a few entries, whatever their number. It costs one pass
 * over the preserved extents. The runs then move to an array just big
 * enough for them, so that the next kernel maps a few pages, not the room
 * one entry per granule took: one allocation of a page per 170 runs, and
 * one KHO unpreserve per page of the array they leave, which is sized for
 * the most extents preserved at once. A cancelled update unfolds the runs
 * again, into the array they left, preserved again; until KHO has the
 * chunk pages that takes, the handover stays in runs and preserving or
 * unpreserving fails with -ENOMEM, changing nothing.
 * From then on the handover cannot change:
 * preserving, unpreserving, freeing a preserved folio, growing or shrinking
 * a pool fail with -EBUSY. A cancelled live update unfreezes it as it was.
 * A kexec without a live update freezes it from the reboot notifier.
 *
 * The next kernel checks every field before it uses any and adopts what
 * passes, unit by unit (see "Adoption"): accepted blocks become the
 * nodes' pools again and every accepted extent is marked allocated,
 * pending its owner's persist_alloc_restore(). Adoption costs
 * O(blocks + extents). Restoring an extent costs O(1): its folio was
 * built at boot, by a worker, while the kernel booted (see
 * "Prebuilding"); a 1 GiB HVO extent even had its vmemmap optimized
 * before its struct pages were initialized (see "Pre-HVO").
 *
 * Handed-over extents that are neither restored nor released by the next
 * kexec are not handed over again; the kernel after that finds their
 * memory dirty and scrubs it before reuse (see "Scrubbing"). Nothing is
 * zeroed during the kexec itself.
 */

#define pr_fmt(fmt) "persist_alloc: " fmt

#include <linux/export.h>
#include <linux/kexec.h>
#include <linux/kexec_handover.h>
#include <linux/kho/abi/persist_alloc.h>
#include <linux/ktime.h>
#include <linux/liveupdate.h>
#include <linux/memblock.h>
#include <linux/mm.h>
#include <linux/reboot.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include <trace/events/persist_alloc.h>

#include "internal.h"

/* The handover layout is a contract with the next kernel: see the ABI header. */
static_assert(sizeof(struct persist_alloc_extent_ser) == 24);
static_assert(sizeof(struct persist_alloc_block_ser) == 16);

/* Outgoing handover, protected by persist_state_lock. */
static struct persist_alloc_ser *out_ser;
static size_t out_ser_size;
static struct persist_alloc_block_ser *out_blocks;
static unsigned long out_blocks_cap;
/* The same blocks, for a receiver that refuses the handover. */
static struct persist_alloc_ranges_ser *out_ranges;
static size_t out_ranges_size;
static struct persist_alloc_extent_ser *out_ext;
static unsigned long out_ext_cap;
static bool kho_ready;
static bool frozen;
/* The entries are runs: from a freeze until a cancel could unfold them. */
static bool out_folded;
/* The array compact_out() replaced, kept for a cancel to unfold into. */
static struct persist_alloc_extent_ser *thawed_ext;
static unsigned long thawed_cap;

static size_t ser_size(unsigned long nr_blocks)
{
	return PAGE_ALIGN(sizeof(struct persist_alloc_ser) +
			  nr_blocks * sizeof(struct persist_alloc_block_ser));
}

/*
 * Blocks the outgoing blob has room for: every 1 GiB of this machine's
 * physical address space, so that the blob is sized once, added as a KHO
 * subtree once and never replaced while a kexec could need it.
 */
static unsigned long max_blocks(void)
{
	return min_t(u64, DIV_ROUND_UP(max_t(u64, max_possible_pfn, max_pfn),
				       PERSIST_BLOCK_PAGES), PERSIST_HANDOVER_BLOCKS_MAX);
}

/* Make the outgoing extent array hold @nr_extents; persist_state_lock held. */
static int reserve_out(unsigned long nr_extents)
{
	struct persist_alloc_extent_ser *ext;
	struct kho_vmalloc desc = {};
	unsigned long cap;
	int err;

	lockdep_assert_held(&persist_state_lock);
	if (nr_extents <= out_ext_cap)
		return 0;
	cap = max(roundup_pow_of_two(nr_extents), PAGE_SIZE / sizeof(*ext));
	ext = persist_fault() ? NULL : vzalloc(array_size(cap, sizeof(*ext)));
	if (!ext)
		return -ENOMEM;
	if (out_ext)
		memcpy(ext, out_ext, out_ser->nr_extents * sizeof(*ext));
	err = kho_preserve_vmalloc(ext, &desc);
	if (err) {
		vfree(ext);
		return err;
	}
	if (out_ext) {
		kho_unpreserve_vmalloc(&out_ser->extents);
		vfree(out_ext);
	}
	out_ser->extents = desc;
	out_ext = ext;
	out_ext_cap = cap;
	return 0;
}

static void write_block(struct persist_block *blk)
{
	struct persist_alloc_block_ser *b = &out_blocks[blk->ser_idx];

	b->phys = blk->base;
	b->nid = blk->pool->nid;
	b->flags = 0;
	out_ranges->phys[blk->ser_idx] = blk->base;
	out_ranges->nr = out_ser->nr_blocks;
}

static u32 flags_to_ser(unsigned long flags)
{
	return (flags & PERSIST_ALLOC_NO_DIRECT_MAP ? PERSIST_ALLOC_SER_NO_DIRECT_MAP : 0) |
	       (flags & PERSIST_ALLOC_HVO ? PERSIST_ALLOC_SER_HVO : 0);
}

/* A preserved 1 GiB HVO extent makes its block a pre-HVO block. */
static void write_block_hvo(struct persist_extent *ext, bool hvo)
{
	struct persist_alloc_block_ser *b = &out_blocks[ext->blk->ser_idx];

	if (ext->order != PERSIST_ORDER_1G || !(ext->flags & PERSIST_ALLOC_HVO))
		return;
	if (hvo)
		b->flags |= PERSIST_ALLOC_BLOCK_SER_HVO_1G;
	else
		b->flags &= ~PERSIST_ALLOC_BLOCK_SER_HVO_1G;
}

/* Append @ext to the outgoing extents; the array has room. */
static void add_extent(struct persist_extent *ext)
{
	struct persist_alloc_extent_ser *e = &out_ext[out_ser->nr_extents];

	e->phys = PFN_PHYS(ext->pfn);
	e->owner = ext->owner;
	e->nr = 1;
	e->order = ext->order;
	e->flags = flags_to_ser(ext->flags);
	ext->ser_idx = out_ser->nr_extents++;
	write_block_hvo(ext, true);
}

/* Drop @ext from the outgoing extents; the last entry takes its place. */
static void remove_extent(struct persist_extent *ext)
{
	unsigned long last = out_ser->nr_extents - 1;
	struct persist_extent *moved;

	write_block_hvo(ext, false);
	if (ext->ser_idx != last) {
		out_ext[ext->ser_idx] = out_ext[last];
		/* A failed page's entry belongs to no extent. */
		if (!(out_ext[last].flags & PERSIST_ALLOC_SER_HWPOISON)) {
			moved = xa_load(&persist_extents, PHYS_PFN(out_ext[last].phys));
			moved->ser_idx = ext->ser_idx;
		}
	}
	memset(&out_ext[last], 0, sizeof(out_ext[last]));
	out_ser->nr_extents = last;
}

/**
 * persist_kho_block_added - preserve a block that joins a pool
 * @blk: the block, its pool set
 *
 * Return: 0; -EBUSY while the handover is frozen; -ENOSPC if the handover
 * has no room for it; the KHO error. The block must not join the pool
 * then.
 */
int persist_kho_block_added(struct persist_block *blk)
{
	int err;

	mutex_lock(&persist_state_lock);
	if (!kho_ready) {
		err = 0;
	} else if (frozen) {
		err = -EBUSY;
	} else if (out_ser->nr_blocks == out_blocks_cap) {
		err = -ENOSPC;
	} else if (persist_fault()) {
		err = -ENOMEM;
	} else {
		err = kho_preserve_pages(pfn_to_page(PHYS_PFN(blk->base)), PERSIST_BLOCK_PAGES);
		if (!err) {
			blk->ser_idx = out_ser->nr_blocks++;
			write_block(blk);
		}
	}
	mutex_unlock(&persist_state_lock);
	return err;
}

/**
 * persist_kho_block_removed - stop preserving a block leaving its pool
 * @blk: the block, no longer in persist_blocks
 *
 * Called with persist_resize_lock held, by a resize that
 * persist_kho_frozen() let through, so the handover is not frozen.
 */
void persist_kho_block_removed(struct persist_block *blk)
{
	struct persist_block *moved;
	unsigned long last;

	mutex_lock(&persist_state_lock);
	if (kho_ready && !WARN_ON_ONCE(frozen)) {
		kho_unpreserve_pages(pfn_to_page(PHYS_PFN(blk->base)), PERSIST_BLOCK_PAGES);
		last = out_ser->nr_blocks - 1;
		if (blk->ser_idx != last) {
			out_blocks[blk->ser_idx] = out_blocks[last];
			out_ranges->phys[blk->ser_idx] = out_ranges->phys[last];
			moved = xa_load(&persist_blocks,
					out_blocks[last].phys / PERSIST_BLOCK_SIZE);
			moved->ser_idx = blk->ser_idx;
		}
		memset(&out_blocks[last], 0, sizeof(out_blocks[last]));
		out_ranges->phys[last] = 0;
		out_ser->nr_blocks = last;
		out_ranges->nr = last;
	}
	mutex_unlock(&persist_state_lock);
}

/**
 * persist_kho_add_hwpoison - hand a failed page over, for good
 * @pfn: the page frame
 *
 * A failed page's entry is one of its own, so it is appended even while
 * the entries are runs (see unfold_out()).
 *
 * Return: 0; -EOPNOTSUPP without KHO; -EBUSY while the handover is frozen;
 * -ENOMEM if it could not grow.
 */
int persist_kho_add_hwpoison(unsigned long pfn)
{
	struct persist_alloc_extent_ser *e;
	int err;

	lockdep_assert_held(&persist_state_lock);
	if (!kho_ready)
		return -EOPNOTSUPP;
	if (frozen)
		return -EBUSY;
	err = reserve_out(out_ser->nr_extents + 1);
	if (err)
		return err;
	e = &out_ext[out_ser->nr_extents++];
	e->phys = PFN_PHYS(pfn);
	e->owner = 0;
	e->nr = 1;
	e->order = PERSIST_ORDER_4K;
	e->flags = PERSIST_ALLOC_SER_HWPOISON;
	return 0;
}

/**
 * persist_kho_frozen - whether the handover is frozen for a live update
 *
 * Stable while persist_resize_lock is held: freezing takes it too.
 *
 * Return: true from a freeze until it is cancelled.
 */
bool persist_kho_frozen(void)
{
	return READ_ONCE(frozen);
}

/**
 * persist_kho_outgoing - the handover as it stands, for the KUnit suite
 * @ext: set to the extent array
 *
 * Context: persist_state_lock held.
 * Return: the blob, or NULL without KHO.
 */
const struct persist_alloc_ser *persist_kho_outgoing(const struct persist_alloc_extent_ser **ext)
{
	lockdep_assert_held(&persist_state_lock);
	*ext = out_ext;
	return kho_ready ? out_ser : NULL;
}

#ifdef CONFIG_PERSIST_ALLOC_TEST
/* Set by the test consumer: damage the next handover on purpose. */
int persist_kho_test_corrupt;
/* What the damage overwrites, for a cancel to put back. */
static struct persist_alloc_ser frozen_header;
static struct persist_alloc_extent_ser frozen_ext0;
/* Where PERSIST_TEST_CORRUPT_RUN inserted its entry, or -1. */
static long frozen_inserted = -1;

/*
 * List the second granule of the first run of more than one alone, just
 * before that run: the next kernel adopts it, then the run's first granule,
 * and refuses the run from its second granule on, which overlaps.
 */
static void test_corrupt_run(struct persist_alloc_ser *ser, struct persist_alloc_extent_ser *ext)
{
	unsigned long i;

	for (i = 0; i < ser->nr_extents && ext[i].nr < 2; i++)
		;
	if (i == ser->nr_extents || ser->nr_extents == out_ext_cap)
		return;
	memmove(&ext[i + 1], &ext[i], (ser->nr_extents - i) * sizeof(*ext));
	ext[i].nr = 1;
	ext[i].phys += PAGE_SIZE << ext[i].order;
	ser->nr_extents++;
	frozen_inserted = i;
}

static void test_corrupt(struct persist_alloc_ser *ser, struct persist_alloc_extent_ser *ext)
{
	unsigned long i;

	frozen_header = *ser;
	if (ser->nr_extents)
		frozen_ext0 = ext[0];
	switch (persist_kho_test_corrupt) {
	case PERSIST_TEST_CORRUPT_VERSION:
		strscpy(ser->compatible, "persist-alloc-v0", sizeof(ser->compatible));
		break;
	case PERSIST_TEST_CORRUPT_EXTENT:
		/* An extent outside every block. */
		if (ser->nr_extents)
			ext[0].phys = 0;
		break;
	case PERSIST_TEST_CORRUPT_RUN:
		test_corrupt_run(ser, ext);
		break;
	case PERSIST_TEST_CORRUPT_FREE:
		/* Every block free but the 1 GiB HVO extents: extents in some. */
		for (i = 0; i < ser->nr_blocks; i++)
			if (!(out_blocks[i].flags & PERSIST_ALLOC_BLOCK_SER_HVO_1G))
				out_blocks[i].flags |= PERSIST_ALLOC_BLOCK_SER_HVO_FREE;
		break;
	}
}

/* A damage done on request does not outlive the cancel. */
static void test_repair(struct persist_alloc_ser *ser, struct persist_alloc_extent_ser *ext)
{
	if (frozen_inserted >= 0) {
		memmove(&ext[frozen_inserted], &ext[frozen_inserted + 1],
			(ser->nr_extents - frozen_inserted - 1) * sizeof(*ext));
		memset(&ext[ser->nr_extents - 1], 0, sizeof(*ext));
		frozen_inserted = -1;
	}
	*ser = frozen_header;
	if (ser->nr_extents)
		ext[0] = frozen_ext0;
}
#else
static inline void test_corrupt(struct persist_alloc_ser *ser,
				struct persist_alloc_extent_ser *ext)
{
}

static inline void test_repair(struct persist_alloc_ser *ser,
			       struct persist_alloc_extent_ser *ext)
{
}
#endif

/* Bytes a run of @e->nr granules spans. */
static u64 run_bytes(const struct persist_alloc_extent_ser *e)
{
	return (u64)e->nr << (e->order + PAGE_SHIFT);
}

/*
 * Whether @next continues the run @run: granules of the same owner, order
 * and attributes, right after it in the same block. Failed pages stay
 * entries of their own.
 */
static bool run_continues(const struct persist_alloc_extent_ser *run,
			  const struct persist_alloc_extent_ser *next)
{
	return !((run->flags | next->flags) & PERSIST_ALLOC_SER_HWPOISON) &&
	       run->owner == next->owner && run->order == next->order &&
	       run->flags == next->flags && run->nr <= U32_MAX - next->nr &&
	       next->phys == run->phys + run_bytes(run) &&
	       next->phys / PERSIST_BLOCK_SIZE == run->phys / PERSIST_BLOCK_SIZE;
}

/*
 * Fold the outgoing entries into runs, in place; at freeze. Entries may be
 * runs already, left by a cancel that could not unfold them.
 */
static void fold_runs(void)
{
	unsigned long i, n = 0;

	for (i = 0; i < out_ser->nr_extents; i++) {
		if (n && run_continues(&out_ext[n - 1], &out_ext[i])) {
			out_ext[n - 1].nr += out_ext[i].nr;
			continue;
		}
		out_ext[n++] = out_ext[i];
	}
	memset(&out_ext[n], 0, (out_ser->nr_extents - n) * sizeof(*out_ext));
	out_ser->nr_extents = n;
	out_folded = true;
}

/*
 * Move the runs into an array just big enough for them, after fold_runs():
 * the array grew ahead of one entry per preserved granule, and the next
 * kernel restores and maps every page of it. The big array is kept, no
 * longer preserved, for a cancel to unfold into. If there is no memory for
 * the move, the runs are handed over where they are.
 */
static void compact_out(void)
{
	/* One spare entry, for the test consumer's damage (test_corrupt_run). */
	unsigned long cap = PAGE_ALIGN((out_ser->nr_extents + 1) * sizeof(*out_ext)) /
			    sizeof(*out_ext);
	struct persist_alloc_extent_ser *ext;
	struct kho_vmalloc desc = {};
	int err = -ENOMEM;

	if (cap >= out_ext_cap || thawed_ext)
		return;
	ext = persist_fault() ? NULL : vzalloc(array_size(cap, sizeof(*ext)));
	if (ext) {
		memcpy(ext, out_ext, out_ser->nr_extents * sizeof(*ext));
		err = kho_preserve_vmalloc(ext, &desc);
	}
	if (err) {
		vfree(ext);
		pr_warn("handover: its %llu runs stay in an array of %lu entries (%d)\n",
			out_ser->nr_extents, out_ext_cap, err);
		return;
	}
	kho_unpreserve_vmalloc(&out_ser->extents);
	thawed_ext = out_ext;
	thawed_cap = out_ext_cap;
	out_ser->extents = desc;
	out_ext = ext;
	out_ext_cap = cap;
}

/*
 * Preserve the array compact_out() replaced again and move the runs back
 * into it; for a cancel.
 */
static int thaw_out(void)
{
	struct kho_vmalloc desc = {};
	int err;

	if (!thawed_ext)
		return 0;
	/* Failed pages joined since: reserve_out() finds a bigger one. */
	if (out_ser->nr_extents > thawed_cap) {
		vfree(thawed_ext);
		thawed_ext = NULL;
		thawed_cap = 0;
		return 0;
	}
	err = persist_fault() ? -ENOMEM : kho_preserve_vmalloc(thawed_ext, &desc);
	if (err)
		return err;
	memcpy(thawed_ext, out_ext, out_ser->nr_extents * sizeof(*out_ext));
	kho_unpreserve_vmalloc(&out_ser->extents);
	vfree(out_ext);
	out_ser->extents = desc;
	out_ext = thawed_ext;
	out_ext_cap = thawed_cap;
	thawed_ext = NULL;
	thawed_cap = 0;
	return 0;
}

/*
 * Undo fold_runs() for a cancelled update: one entry per preserved extent
 * again, in the same order, each extent told its index. Backwards, so that
 * no run is overwritten before it is read: a run never moves down.
 */
static void unfold_runs(void)
{
	unsigned long i, runs = out_ser->nr_extents, n = 0;
	struct persist_alloc_extent_ser run;
	struct persist_extent *ext;
	u32 k;

	for (i = 0; i < runs; i++)
		n += out_ext[i].nr;
	out_ser->nr_extents = n;
	for (i = runs; i--; ) {
		run = out_ext[i];
		for (k = run.nr; k--; ) {
			struct persist_alloc_extent_ser *e = &out_ext[--n];

			*e = run;
			e->nr = 1;
			e->phys += (u64)k << (run.order + PAGE_SHIFT);
			if (e->flags & PERSIST_ALLOC_SER_HWPOISON)
				continue;
			ext = xa_load(&persist_extents, PHYS_PFN(e->phys));
			if (!WARN_ON_ONCE(!ext))
				ext->ser_idx = n;
		}
	}
}

/* Extents the outgoing entries stand for, runs or not. */
static u64 out_extents(void)
{
	u64 i, n = 0;

	for (i = 0; i < out_ser->nr_extents; i++)
		n += out_ext[i].nr;
	return n;
}

/*
 * One entry per preserved extent again after a cancelled update, in the
 * array the freeze compacted them out of. Preserving that array again
 * takes KHO a chunk page per 511 pages of it; until that succeeds the
 * handover stays in runs, which is a valid handover as it is: preserving
 * and unpreserving call this first and fail with its error, changing
 * nothing. A failed page's entry is appended to the runs meanwhile.
 */
static int unfold_out(void)
{
	int err;

	lockdep_assert_held(&persist_state_lock);
	if (!out_folded)
		return 0;
	err = thaw_out() ?: reserve_out(out_extents());
	if (err)
		return err;
	unfold_runs();
	out_folded = false;
	return 0;
}

/**
 * persist_kho_folded - whether the outgoing entries are runs
 *
 * Context: persist_state_lock held.
 * Return: true from a freeze until unfolding after a cancel succeeded.
 */
bool persist_kho_folded(void)
{
	lockdep_assert_held(&persist_state_lock);
	return out_folded;
}

/*
 * Flag the blocks kept whole as free 1 GiB HVO folios, for the next kernel
 * to keep them so: one pass over the kept blocks at freeze. Not one with a
 * failed page: a receiver that does not know the flag would zero the page
 * with the block and release it. Nothing can be preserved in a kept block
 * from the freeze on.
 */
static void flag_kept_blocks(void)
{
	struct persist_pool *pool;
	struct persist_block *blk;
	int nid;

	lockdep_assert_held(&persist_state_lock);
	for_each_node(nid) {
		pool = persist_pools[nid];
		if (!pool)
			continue;
		spin_lock(&pool->lock);
		list_for_each_entry(blk, &pool->hvo_kept, kept_link) {
			if (WARN_ON_ONCE(blk->ser_idx >= out_ser->nr_blocks) ||
			    persist_hwpoison_in(PHYS_PFN(blk->base), PERSIST_BLOCK_PAGES))
				continue;
			out_blocks[blk->ser_idx].flags |= PERSIST_ALLOC_BLOCK_SER_HVO_FREE;
		}
		spin_unlock(&pool->lock);
	}
}

/* Take flag_kept_blocks() back, for a cancelled update. */
static void unflag_kept_blocks(void)
{
	unsigned long i;

	lockdep_assert_held(&persist_state_lock);
	for (i = 0; i < out_ser->nr_blocks; i++)
		out_blocks[i].flags &= ~PERSIST_ALLOC_BLOCK_SER_HVO_FREE;
}

/**
 * persist_kho_freeze - make the handover final for a kexec
 *
 * Nothing that changes the handover succeeds from here until
 * persist_kho_unfreeze(). Idempotent: the reboot notifier freezes again
 * after a live update froze.
 */
void persist_kho_freeze(void)
{
	u64 start = ktime_get_ns();

	persist_handover_scrub_wait();
	mutex_lock(&persist_resize_lock);
	mutex_lock(&persist_state_lock);
	if (kho_ready && !frozen) {
		u64 nr;

		/* Failed pages that could not join it before. */
		persist_hwpoison_flush();
		nr = out_extents();
		WRITE_ONCE(frozen, true);
		fold_runs();
		compact_out();
		flag_kept_blocks();
		test_corrupt(out_ser, out_ext);
		pr_info("handover frozen: %llu blocks and %llu extents in %llu runs, %lu + %lu bytes, in %llu us\n",
			out_ser->nr_blocks, nr, out_ser->nr_extents,
			PAGE_SIZE << get_order(out_ser_size),
			(unsigned long)out_ser->extents.total_pages << PAGE_SHIFT,
			(ktime_get_ns() - start) / NSEC_PER_USEC);
	}
	mutex_unlock(&persist_state_lock);
	mutex_unlock(&persist_resize_lock);
}

/**
 * persist_kho_unfreeze - undo persist_kho_freeze() for a cancelled update
 *
 * Changes work again. Should the entries not unfold (no memory), the
 * handover stays in runs, valid as it is, until a change unfolds them.
 */
void persist_kho_unfreeze(void)
{
	int err;

	mutex_lock(&persist_state_lock);
	if (frozen) {
		test_repair(out_ser, out_ext);
		unflag_kept_blocks();
		err = unfold_out();
		if (err)
			pr_warn("handover: its extents stay in runs until a change can unfold them (%d)\n",
				err);
		WRITE_ONCE(frozen, false);
		persist_hwpoison_flush();
		pr_info("handover unfrozen: the live update was cancelled\n");
	}
	mutex_unlock(&persist_state_lock);
}

static int persist_kho_luo_freeze(struct notifier_block *nb, unsigned long event, void *unused)
{
	switch (event) {
	case LIVEUPDATE_FREEZE:
		persist_kho_freeze();
		return NOTIFY_OK;
	case LIVEUPDATE_UNFREEZE:
		persist_kho_unfreeze();
		return NOTIFY_OK;
	}
	return NOTIFY_DONE;
}

static struct notifier_block persist_kho_luo_nb = {
	.notifier_call = persist_kho_luo_freeze,
	.priority = PERSIST_KHO_FREEZE_PRIORITY,
};

/* A kexec that is no live update (LUO disabled) freezes the handover here. */
static int persist_kho_reboot(struct notifier_block *nb, unsigned long code, void *unused)
{
	if (kexec_in_progress)
		persist_kho_freeze();
	return NOTIFY_DONE;
}

static struct notifier_block persist_kho_reboot_nb = {
	.notifier_call = persist_kho_reboot,
};

/**
 * persist_alloc_preserve - hand a folio over at the next kexec
 * @folio: an allocated persistent folio
 * @owner: key of the consumer, which alone may take the folio back after
 *         kexec
 *
 * Return: 0; -EINVAL for a folio that is not an allocated granule;
 * -EBUSY if it is already preserved or the handover is frozen for a live
 * update; -EOPNOTSUPP without KHO; -ENOMEM if the handover could not grow.
 * Nothing changes on failure.
 */
int persist_alloc_preserve(struct folio *folio, u64 owner)
{
	struct persist_extent *ext;
	int err;

	mutex_lock(&persist_state_lock);
	ext = xa_load(&persist_extents, folio_pfn(folio));
	if (!ext || ext->pending || ext->restoring || ext->quarantined ||
	    ext->order != folio_order(folio)) {
		err = -EINVAL;
	} else if (ext->preserved || frozen) {
		err = -EBUSY;
	} else if (!kho_ready) {
		err = -EOPNOTSUPP;
	} else {
		err = unfold_out() ?: reserve_out(out_ser->nr_extents + 1);
		if (!err) {
			ext->owner = owner;
			WRITE_ONCE(ext->preserved, true);
			add_extent(ext);
			persist_account_state(ext, &ext->blk->pool->preserved_pages, 1);
			trace_persist_preserve(ext->pfn, ext->order, ext->blk->pool->nid,
					       ext->flags, owner);
		}
	}
	mutex_unlock(&persist_state_lock);
	return err;
}
EXPORT_SYMBOL_GPL(persist_alloc_preserve);

/**
 * persist_alloc_unpreserve - do not hand a folio over after all
 * @folio: a folio preserved with persist_alloc_preserve()
 *
 * Return: 0; -EINVAL if it is not preserved; -EBUSY if the handover is
 * frozen for a live update; -ENOMEM if a cancelled update left it in runs
 * and they cannot be unfolded yet. Nothing changes on failure.
 */
int persist_alloc_unpreserve(struct folio *folio)
{
	struct persist_extent *ext;
	int err = -EINVAL;

	mutex_lock(&persist_state_lock);
	ext = xa_load(&persist_extents, folio_pfn(folio));
	if (ext && ext->preserved && frozen) {
		err = -EBUSY;
	} else if (ext && ext->preserved) {
		err = unfold_out();
		if (!err) {
			WRITE_ONCE(ext->preserved, false);
			remove_extent(ext);
			persist_account_state(ext, &ext->blk->pool->preserved_pages, -1);
		}
	}
	mutex_unlock(&persist_state_lock);
	return err;
}
EXPORT_SYMBOL_GPL(persist_alloc_unpreserve);

/*
 * Take back what persist_kho_init() preserved before @failed (NULL: no block
 * was reached) and the outgoing blob: nothing is handed over then, and the
 * next kernel sees no pools rather than a blob it must refuse.
 */
static void __init kho_init_undo(struct persist_block *failed)
{
	struct persist_block *blk;
	int nid;

	for_each_node(nid) {
		if (!failed || !persist_pools[nid])
			continue;
		list_for_each_entry(blk, &persist_pools[nid]->blocks, list) {
			if (blk == failed) {
				failed = NULL;
				break;
			}
			kho_unpreserve_pages(pfn_to_page(PHYS_PFN(blk->base)),
					     PERSIST_BLOCK_PAGES);
		}
	}
	if (out_ext) {
		kho_unpreserve_vmalloc(&out_ser->extents);
		vfree(out_ext);
		out_ext = NULL;
		out_ext_cap = 0;
	}
	if (out_ranges) {
		kho_remove_subtree(out_ranges);
		kho_unpreserve_free(out_ranges);
		out_ranges = NULL;
	}
	if (out_ser) {
		kho_remove_subtree(out_ser);
		kho_unpreserve_free(out_ser);
		out_ser = NULL;
		out_ser_size = 0;
		out_blocks = NULL;
		out_blocks_cap = 0;
	}
	kho_ready = false;
}

static int __init persist_kho_init(void)
{
	struct persist_block *blk, *failed = NULL;
	int nid, err = 0;

	if (!kho_is_enabled())
		return 0;
	mutex_lock(&persist_resize_lock);
	mutex_lock(&persist_state_lock);
	kho_ready = true;
	out_ser_size = ser_size(max_blocks());
	out_ser = kho_alloc_preserve(out_ser_size);
	if (IS_ERR(out_ser)) {
		err = PTR_ERR(out_ser);
		out_ser = NULL;
	} else {
		err = kho_add_subtree(PERSIST_ALLOC_KHO_NAME, out_ser, out_ser_size);
		if (err) {
			kho_unpreserve_free(out_ser);
			out_ser = NULL;
		}
	}
	if (!err) {
		out_ranges_size = PAGE_ALIGN(struct_size(out_ranges, phys, max_blocks()));
		out_ranges = kho_alloc_preserve(out_ranges_size);
		if (IS_ERR(out_ranges)) {
			err = PTR_ERR(out_ranges);
			out_ranges = NULL;
		} else {
			out_ranges->magic = PERSIST_ALLOC_RANGES_MAGIC;
			err = kho_add_subtree(PERSIST_ALLOC_KHO_RANGES_NAME, out_ranges,
					      out_ranges_size);
			if (err) {
				kho_unpreserve_free(out_ranges);
				out_ranges = NULL;
			}
		}
	}
	if (!err) {
		strscpy(out_ser->compatible, PERSIST_ALLOC_KHO_COMPATIBLE,
			sizeof(out_ser->compatible));
		out_blocks = (void *)(out_ser + 1);
		out_blocks_cap = max_blocks();
		err = reserve_out(1);
	}
	for_each_node(nid) {
		struct persist_pool *pool = persist_pools[nid];

		if (err || !pool)
			continue;
		list_for_each_entry(blk, &pool->blocks, list) {
			if (out_ser->nr_blocks == out_blocks_cap)
				err = -ENOSPC;
			else
				err = kho_preserve_pages(pfn_to_page(PHYS_PFN(blk->base)),
							 PERSIST_BLOCK_PAGES);
			if (err) {
				failed = blk;
				break;
			}
			blk->ser_idx = out_ser->nr_blocks++;
			write_block(blk);
		}
	}
	if (err) {
		pr_err("cannot preserve the pools with KHO (%d): they will not survive kexec\n",
		       err);
		kho_init_undo(failed);
	} else {
		/* Failed pages recorded before KHO was up, adopted ones included. */
		persist_hwpoison_flush();
	}
	mutex_unlock(&persist_state_lock);
	mutex_unlock(&persist_resize_lock);
	if (!err) {
		register_reboot_notifier(&persist_kho_reboot_nb);
		liveupdate_register_freeze_notifier(&persist_kho_luo_nb);
	}
	return 0;
}

/* Once KHO is up: preserve the pools and publish the blob. */
late_initcall(persist_kho_init);
