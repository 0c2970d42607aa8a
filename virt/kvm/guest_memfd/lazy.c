// SPDX-License-Identifier: GPL-2.0-only
/*
 * Persistent guest_memfd: granules of a retrieved file adopted at first use.
 */

/**
 * DOC: Lazy adoption of retrieved granules
 *
 * A retrieve checks the file's runs and claims them from persist_alloc
 * (persist_alloc_claim()): every granule is checked there, to be pending
 * for this file with the file's granule size and attributes, and a run
 * that does not check out makes the retrieve fail, changing nothing. The
 * retrieve puts no granule into the file: besides persist_alloc's check,
 * its work is O(runs), whatever the file's size.
 *
 * A claimed granule is the inode's. It enters the inode's granules, the
 * page cache and its memory cgroup at first use, by whatever path first
 * needs it (a KVM fault, a host fault, a pin, an fallocate, a partial
 * punch-hole), under the file's lock, as an allocation would; the charge
 * can fail there as an allocation's would. Until then it is reachable
 * through the inode's files only: no mapping, pin or page cache entry of
 * it exists. A punch-hole gives a claimed granule back to persist_alloc
 * unused, zeroed before anyone gets it again, and so does the eviction of
 * the inode (its last file closed, and LUO's hold on it gone with its
 * session). Preserving the file for the next kexec adopts what is left
 * first, so that the freeze sees every granule: that costs the preserve,
 * outside the blackout, and may fail there with -ENOMEM as the charges
 * are made.
 */

#define pr_fmt(fmt) "kvm_gmem_persist: " fmt

#include <linux/bitmap.h>
#include <linux/bsearch.h>
#include <linux/kho/abi/guest_memfd_persist.h>
#include <linux/persist_alloc.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>

#include "persist.h"

/* Granules preserve adopts per hold of the file's lock. */
#define KVM_GMEM_LAZY_BATCH	64

/**
 * struct kvm_gmem_lazy_run - a claimed run of a retrieved file
 * @index: granule number of its first granule in the file
 * @pfn:   page frame of its first granule
 * @nr:    number of granules
 * @bit:   bit of its first granule in kvm_gmem_persist_lazy.unused
 */
struct kvm_gmem_lazy_run {
	pgoff_t index;
	unsigned long pfn;
	unsigned long nr;
	unsigned long bit;
};

/**
 * struct kvm_gmem_persist_lazy - what a retrieve claimed
 * @owner:     the persist_alloc key the granules were claimed with
 * @nr_runs:   number of @runs
 * @nr_bits:   granules of all @runs
 * @nr_unused: granules still claimed, not in the file's granules
 * @unused:    one bit per granule of @runs, in order: set while claimed
 * @runs:      the runs, sorted by index (and so by bit)
 *
 * Kept for the inode's life once made: a failed retrieve gives back
 * through the runs what it adopted too.
 */
struct kvm_gmem_persist_lazy {
	u64 owner;
	unsigned long nr_runs;
	unsigned long nr_bits;
	unsigned long nr_unused;
	unsigned long *unused;
	struct kvm_gmem_lazy_run runs[] __counted_by(nr_runs);
};

static int kvm_gmem_lazy_cmp_index(const void *key, const void *elt)
{
	const struct kvm_gmem_lazy_run *run = elt;
	pgoff_t index = *(const pgoff_t *)key;

	if (index < run->index)
		return -1;
	return index >= run->index + run->nr ? 1 : 0;
}

static int kvm_gmem_lazy_cmp_bit(const void *key, const void *elt)
{
	const struct kvm_gmem_lazy_run *run = elt;
	unsigned long bit = *(const unsigned long *)key;

	if (bit < run->bit)
		return -1;
	return bit >= run->bit + run->nr ? 1 : 0;
}

/*
 * The run holding granule @g of @p, and in @bit its bit, if @g is claimed
 * and unused; called with p->lock held.
 */
static struct kvm_gmem_lazy_run *kvm_gmem_lazy_find(struct kvm_gmem_persist *p,
						    unsigned long g, unsigned long *bit)
{
	struct kvm_gmem_persist_lazy *lazy = p->lazy;
	struct kvm_gmem_lazy_run *run;

	lockdep_assert_held(&p->lock);
	if (!lazy || !lazy->nr_unused)
		return NULL;
	run = bsearch(&g, lazy->runs, lazy->nr_runs, sizeof(*run), kvm_gmem_lazy_cmp_index);
	if (!run)
		return NULL;
	*bit = run->bit + g - run->index;
	return test_bit(*bit, lazy->unused) ? run : NULL;
}

/*
 * Granule number of the first unused granule from bit *@from on, or -1UL;
 * *@from becomes its bit. Bits are only ever cleared, so a walk goes on
 * from there.
 */
static unsigned long kvm_gmem_lazy_next(struct kvm_gmem_persist *p, unsigned long *from)
{
	struct kvm_gmem_persist_lazy *lazy = p->lazy;
	struct kvm_gmem_lazy_run *run;
	unsigned long bit;

	if (!lazy || !lazy->nr_unused)
		return -1UL;
	bit = find_next_bit(lazy->unused, lazy->nr_bits, *from);
	if (bit >= lazy->nr_bits)
		return -1UL;
	*from = bit;
	run = bsearch(&bit, lazy->runs, lazy->nr_runs, sizeof(*run), kvm_gmem_lazy_cmp_bit);
	return run->index + bit - run->bit;
}

static unsigned long kvm_gmem_lazy_pfn(struct kvm_gmem_persist *p,
				       const struct kvm_gmem_lazy_run *run, unsigned long g)
{
	return run->pfn + ((g - run->index) << p->order);
}

/*
 * Give claimed granule @g (bit @bit of @run) back to the pool: restored,
 * then freed as a granule of the file would be, or left to the reaper
 * while someone holds a reference. Called with p->lock held.
 */
static int kvm_gmem_lazy_discard(struct kvm_gmem_persist *p, struct kvm_gmem_lazy_run *run,
				 unsigned long g, unsigned long bit)
{
	struct folio *folio;

	folio = persist_alloc_restore(PFN_PHYS(kvm_gmem_lazy_pfn(p, run, g)), p->lazy->owner);
	if (IS_ERR(folio))
		return PTR_ERR(folio);
	kvm_gmem_persist_discard(folio);
	clear_bit(bit, p->lazy->unused);
	p->lazy->nr_unused--;
	return 0;
}

static void kvm_gmem_lazy_unclaim(struct kvm_gmem_persist *p, unsigned long nr_runs)
{
	const struct kvm_gmem_lazy_run *run;
	unsigned long i;

	for (i = 0; i < nr_runs; i++) {
		run = &p->lazy->runs[i];
		persist_alloc_unclaim(PFN_PHYS(run->pfn), p->order, run->nr, p->lazy->owner);
		cond_resched();
	}
}

/**
 * kvm_gmem_persist_lazy_claim - claim the runs of a file being retrieved
 * @inode:   the new inode, set up with the file's granule and attributes,
 *           holding no granule
 * @extents: its runs, checked by the caller: each of the file's order,
 *           sorted by index without overlap, inside the file
 * @nr:      number of @extents
 * @owner:   the persist_alloc key of the file's granules
 *
 * Every granule of every run must be pending for @owner with the file's
 * attributes; all are claimed or none. O(@nr) here, and persist_alloc's
 * check of each granule; no granule is restored.
 *
 * Return: 0; the error of persist_alloc_claim() for the first run that
 * fails (-EINVAL, -ENOENT, -EPERM or -EBUSY), with nothing claimed;
 * -ENOMEM.
 */
int kvm_gmem_persist_lazy_claim(struct inode *inode,
				const struct guest_memfd_persist_extent_ser *extents,
				u64 nr, u64 owner)
{
	struct kvm_gmem_persist *p = kvm_gmem_persist(inode);
	unsigned long attrs = p->alloc_flags & (PERSIST_ALLOC_NO_DIRECT_MAP | PERSIST_ALLOC_HVO);
	struct kvm_gmem_persist_lazy *lazy;
	unsigned long bits = 0;
	int err = 0;
	u64 i;

	if (!nr)
		return 0;
	if (WARN_ON_ONCE(p->lazy || p->nr_granules))
		return -EINVAL;
	lazy = kvzalloc(struct_size(lazy, runs, nr), GFP_KERNEL_ACCOUNT);
	if (!lazy)
		return -ENOMEM;
	lazy->nr_runs = nr;
	lazy->owner = owner;
	for (i = 0; i < nr; i++) {
		lazy->runs[i] = (struct kvm_gmem_lazy_run) {
			.index = extents[i].index >> p->order,
			.pfn = extents[i].pfn,
			.nr = extents[i].nr,
			.bit = bits,
		};
		bits += extents[i].nr;
	}
	lazy->nr_bits = bits;
	lazy->unused = kvcalloc(BITS_TO_LONGS(bits), sizeof(long), GFP_KERNEL_ACCOUNT);
	if (!lazy->unused) {
		kvfree(lazy);
		return -ENOMEM;
	}

	mutex_lock(&p->lock);
	p->lazy = lazy;
	for (i = 0; i < nr && !err; i++) {
		err = persist_alloc_claim(PFN_PHYS(lazy->runs[i].pfn), p->order,
					  lazy->runs[i].nr, attrs, owner);
		cond_resched();
	}
	if (err) {
		kvm_gmem_lazy_unclaim(p, i - 1);
		p->lazy = NULL;
		kvfree(lazy->unused);
		kvfree(lazy);
	} else {
		/* Not bitmap_set(): a count of bits may not fit its unsigned int. */
		memset(lazy->unused, 0xff, BITS_TO_LONGS(bits) * sizeof(long));
		if (bits % BITS_PER_LONG)
			lazy->unused[bits / BITS_PER_LONG] = BITMAP_LAST_WORD_MASK(bits);
		lazy->nr_unused = bits;
	}
	mutex_unlock(&p->lock);
	return err;
}

/**
 * kvm_gmem_persist_lazy_adopt - put a claimed granule into its file
 * @inode: a persistent guest_memfd inode
 * @g:     granule number
 *
 * Called with the file's lock held, by what first needs granule @g. The
 * granule is restored from persist_alloc, charged to the file's memory
 * cgroup and put in the file's granules and page cache, as an allocated
 * one would be.
 *
 * Return: the granule's folio with a reference for the caller; NULL if
 * @g is not a claimed, unused granule of the file; ERR_PTR(-ENOMEM) (the
 * memory cgroup's limit included) or another error of
 * persist_alloc_restore() or kvm_gmem_persist_adopt(), the granule still
 * claimed, to be tried again.
 */
struct folio *kvm_gmem_persist_lazy_adopt(struct inode *inode, unsigned long g)
{
	struct kvm_gmem_persist *p = kvm_gmem_persist(inode);
	struct kvm_gmem_lazy_run *run;
	struct folio *folio;
	unsigned long bit;
	u64 owner;
	int err;

	run = kvm_gmem_lazy_find(p, g, &bit);
	if (!run)
		return NULL;
	owner = p->lazy->owner;
	folio = persist_alloc_restore(PFN_PHYS(kvm_gmem_lazy_pfn(p, run, g)), owner);
	if (IS_ERR(folio))
		return folio;
	err = kvm_gmem_persist_adopt(inode, g << p->order, folio);
	if (err) {
		/*
		 * Claimed again, as it was: a later use tries again. Should
		 * someone hold a reference past the wait, the granule is lost
		 * to the file (its uses fail) and stays out of the pool.
		 */
		kvm_gmem_persist_unrestore(folio, owner);
		return ERR_PTR(err);
	}
	clear_bit(bit, p->lazy->unused);
	p->lazy->nr_unused--;
	folio_get(folio);
	return folio;
}

/**
 * kvm_gmem_persist_lazy_adopt_all - adopt every granule still claimed
 * @inode: a persistent guest_memfd inode
 *
 * For a preserve: the freeze hands over the file's granules only. The
 * file's lock is let go every few granules, so that faults of a running
 * guest go on meanwhile.
 *
 * Return: 0; -EINTR if a fatal signal came; or the error of the first
 * granule that could not be adopted.
 */
int kvm_gmem_persist_lazy_adopt_all(struct inode *inode)
{
	struct kvm_gmem_persist *p = kvm_gmem_persist(inode);
	unsigned long g, from = 0;
	struct folio *folio;
	int err = 0, n;

	while (!err) {
		mutex_lock(&p->lock);
		for (n = 0; n < KVM_GMEM_LAZY_BATCH && !err; n++) {
			g = kvm_gmem_lazy_next(p, &from);
			if (g == -1UL)
				break;
			folio = kvm_gmem_persist_lazy_adopt(inode, g);
			if (IS_ERR(folio))
				err = PTR_ERR(folio);
			else if (folio)
				folio_put(folio);
		}
		mutex_unlock(&p->lock);
		if (err || n < KVM_GMEM_LAZY_BATCH)
			break;
		if (fatal_signal_pending(current))
			err = -EINTR;
		cond_resched();
	}
	return err;
}

/**
 * kvm_gmem_persist_lazy_release - take claimed granules of a range out
 * @inode: a persistent guest_memfd inode
 * @first: first granule number
 * @end:   granule number past the range; set to where this call stopped
 * @out:   the granules taken, restored, for kvm_gmem_persist_discard()
 *
 * Called with the file's lock held, by a punch-hole: the claimed, unused
 * granules of the range leave the file, as many as @out has room for, so
 * that the caller frees them once it lets its locks go. They were never
 * mapped or pinned. Only the runs that meet the range are looked at, and
 * only their unused granules.
 *
 * Return: 0, or the error of persist_alloc_restore() (*@end is then the
 * granule that failed, which stays claimed with the rest of the range).
 */
int kvm_gmem_persist_lazy_release(struct inode *inode, unsigned long first,
				  unsigned long *end, struct folio_batch *out)
{
	struct kvm_gmem_persist *p = kvm_gmem_persist(inode);
	struct kvm_gmem_persist_lazy *lazy = p->lazy;
	unsigned long bit, stop, lo = 0, hi, mid, g;
	struct kvm_gmem_lazy_run *run;
	struct folio *folio;

	lockdep_assert_held(&p->lock);
	if (!lazy || !lazy->nr_unused)
		return 0;
	/* The first run that ends past @first. */
	for (hi = lazy->nr_runs; lo < hi;) {
		mid = lo + (hi - lo) / 2;
		if (lazy->runs[mid].index + lazy->runs[mid].nr <= first)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (run = lazy->runs + lo; run < lazy->runs + lazy->nr_runs && run->index < *end;
	     run++) {
		bit = run->bit + (first > run->index ? first - run->index : 0);
		stop = run->bit + min(*end - run->index, run->nr);
		for_each_set_bit_from(bit, lazy->unused, stop) {
			g = run->index + bit - run->bit;
			if (!folio_batch_space(out)) {
				*end = g;
				return 0;
			}
			folio = persist_alloc_restore(PFN_PHYS(kvm_gmem_lazy_pfn(p, run, g)),
						      lazy->owner);
			if (IS_ERR(folio)) {
				*end = g;
				return PTR_ERR(folio);
			}
			clear_bit(bit, lazy->unused);
			lazy->nr_unused--;
			folio_batch_add(out, folio);
		}
	}
	return 0;
}

/**
 * kvm_gmem_persist_lazy_unused - whether a file has claimed granules unused
 * @p: the persistent backing of a guest_memfd inode, its lock held
 *
 * Return: true if some granule a retrieve claimed is not in the file yet.
 */
bool kvm_gmem_persist_lazy_unused(struct kvm_gmem_persist *p)
{
	lockdep_assert_held(&p->lock);
	return p->lazy && p->lazy->nr_unused;
}

/**
 * kvm_gmem_persist_lazy_drop - let go of what a file still has claimed
 * @inode: a persistent guest_memfd inode
 * @keep:  true for a retrieve that failed: the granules, those it adopted
 *         and handed back included, become pending again, their memory
 *         untouched, for the retrieve to be retried; false for an inode
 *         that goes away: its unused granules go back to the pool
 *
 * A granule that cannot be restored to be freed stays claimed, out of
 * use, until the next kexec, which does not hand it over; it is reported.
 */
void kvm_gmem_persist_lazy_drop(struct inode *inode, bool keep)
{
	struct kvm_gmem_persist *p = kvm_gmem_persist(inode);
	struct kvm_gmem_persist_lazy *lazy;
	struct kvm_gmem_lazy_run *run;
	unsigned long bit;
	int err;

	mutex_lock(&p->lock);
	lazy = p->lazy;
	if (lazy && keep)
		kvm_gmem_lazy_unclaim(p, lazy->nr_runs);
	for (run = lazy ? lazy->runs : NULL; !keep && run && run < lazy->runs + lazy->nr_runs;
	     run++) {
		bit = run->bit;
		for_each_set_bit_from(bit, lazy->unused, run->bit + run->nr) {
			err = kvm_gmem_lazy_discard(p, run, run->index + bit - run->bit, bit);
			if (err)
				pr_warn_ratelimited("claimed granule at pfn %#lx not released: %pe\n",
						    kvm_gmem_lazy_pfn(p, run,
								      run->index + bit - run->bit),
						    ERR_PTR(err));
			cond_resched();
		}
	}
	p->lazy = NULL;
	mutex_unlock(&p->lock);
	if (lazy) {
		kvfree(lazy->unused);
		kvfree(lazy);
	}
}
