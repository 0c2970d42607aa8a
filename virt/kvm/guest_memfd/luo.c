// SPDX-License-Identifier: GPL-2.0-only
/*
 * Live Update Orchestrator file handler of persistent guest_memfd.
 */

/**
 * DOC: Persistent guest_memfd live update
 *
 * A guest_memfd created with GUEST_MEMFD_FLAG_PERSIST can be preserved in a
 * LUO session. Other guest_memfd files are refused with -EOPNOTSUPP.
 *
 * What is preserved:
 *   - the size, the GUEST_MEMFD_FLAG_* flags, the granule and the
 *     GUEST_MEMFD_PERSIST_* attributes of the file;
 *   - the type of the VM that created it;
 *   - every allocated granule, its memory untouched, as runs of granules
 *     that follow each other in the file and in memory, one record of
 *     index, physical address and length per run
 *     (include/linux/kho/abi/guest_memfd_persist.h).
 *     The granules stay out of the direct map across the kexec if they were.
 *
 * What is not preserved, and must be redone by the VMM after retrieve:
 *   - the binding to a VM: the retrieved file is bound to none. The VMM
 *     links it into a new VM of the same type with KVM_LINK_GUEST_MEMFD,
 *     then sets up its memslots and memory attributes (private/shared) and
 *     the vCPU state;
 *   - the NUMA memory policy set with mbind() on its mappings.
 *
 * Life cycle:
 *   - preserve records the file's description; the file works as before.
 *   - freeze (at kexec reboot) stops granules from being added or removed,
 *     hands every granule to persist_alloc for preservation and records
 *     the extents. Faults that need a new granule wait from then on; the
 *     vCPUs keep running. A failed or cancelled live update unfreezes: the
 *     granules are unpreserved, the waiters go on, and the file works as
 *     before.
 *   - retrieve (next kernel) checks the whole description against the
 *     rules of a creation, claims the runs from persist_alloc, which checks
 *     every granule to be the file's with the file's attributes, and
 *     returns a file: O(runs). Each granule enters the file at its first
 *     use (see "Lazy adoption of retrieved granules"). A retrieve that
 *     fails changes nothing: the granules stay pending, their memory
 *     untouched, and the retrieve can be tried again.
 *   - finish releases what was not retrieved: persist_alloc zeroes those
 *     granules and gives them back to the pool.
 */

#define pr_fmt(fmt) "kvm_gmem_persist: " fmt

#include <kunit/visibility.h>
#include <linux/debugfs.h>
#include <linux/fault-inject.h>
#include <linux/file.h>
#include <linux/kexec_handover.h>
#include <linux/kho/abi/guest_memfd_persist.h>
#include <linux/ktime.h>
#include <linux/kvm_host.h>
#include <linux/liveupdate.h>
#include <linux/pagemap.h>
#include <linux/rwsem.h>
#include <linux/persist_alloc.h>
#include <linux/vmalloc.h>

#include "persist.h"
#include "../guest_memfd.h"

#define CREATE_TRACE_POINTS
#include <trace/events/kvm_gmem_persist.h>

/* The handover layout is a contract with the next kernel: see the ABI header. */
static_assert(sizeof(struct guest_memfd_persist_ser) == 48);
static_assert(offsetof(struct guest_memfd_persist_ser, persist_flags) == 40);
static_assert(sizeof(struct guest_memfd_persist_extent_ser) == 24);

static DECLARE_FAULT_ATTR(fail_kvm_gmem_persist_freeze);
static DECLARE_FAULT_ATTR(fail_kvm_gmem_persist_retrieve);
static struct dentry *kvm_gmem_persist_debugfs[2];
/* Whether guest_memfd's mount is up (the vendor module is loaded). */
static DECLARE_RWSEM(kvm_gmem_luo_mount);
static bool kvm_gmem_luo_mounted;

#define KVM_GMEM_PERSIST_VALID_FLAGS	(GUEST_MEMFD_FLAG_MMAP | \
					 GUEST_MEMFD_FLAG_INIT_SHARED | \
					 GUEST_MEMFD_FLAG_PERSIST)

/*
 * Bytes of the file's own handover records, as written: its description
 * and its runs. The persist_alloc entries of its granules are counted from
 * persist_alloc's handover, where runs of all owners are folded together.
 */
static u64 kvm_gmem_persist_meta_bytes(u64 nr_extents)
{
	return sizeof(struct guest_memfd_persist_ser) +
	       nr_extents * sizeof(struct guest_memfd_persist_extent_ser);
}

/* Whether granule @folio at page offset @index continues the run @e. */
static bool kvm_gmem_luo_run_continues(const struct guest_memfd_persist_extent_ser *e,
				       pgoff_t index, struct folio *folio)
{
	u64 pages = e->nr << e->order;

	return e->index + pages == index && e->pfn + pages == folio_pfn(folio);
}

/* Runs the granules of @p make; called with p->lock held. */
static u64 kvm_gmem_luo_count_runs(struct kvm_gmem_persist *p)
{
	struct guest_memfd_persist_extent_ser run = {};
	struct folio *folio;
	unsigned long g;
	u64 n = 0;

	xa_for_each(&p->granules, g, folio) {
		if (xa_is_value(folio))
			continue;
		if (n && kvm_gmem_luo_run_continues(&run, g << p->order, folio)) {
			run.nr++;
			continue;
		}
		run.pfn = folio_pfn(folio);
		run.order = p->order;
		run.index = g << p->order;
		run.nr = 1;
		n++;
	}
	return n;
}

/* Page frame of granule @k of the run @e. */
static unsigned long kvm_gmem_luo_run_pfn(const struct guest_memfd_persist_extent_ser *e, u64 k)
{
	return e->pfn + (k << e->order);
}

static struct kvm_gmem_persist *kvm_gmem_persist_of(struct file *file)
{
	struct inode *inode = kvm_gmem_file_inode(file);

	return inode ? kvm_gmem_persist(inode) : NULL;
}

static bool kvm_gmem_luo_can_preserve(struct liveupdate_file_handler *handler,
				      struct file *file)
{
	return !!kvm_gmem_file_inode(file);
}

static unsigned long kvm_gmem_luo_get_id(struct file *file)
{
	return (unsigned long)file_inode(file);
}

static int kvm_gmem_luo_preserve(struct liveupdate_file_op_args *args)
{
	struct inode *inode = file_inode(args->file);
	struct kvm_gmem_persist *p = kvm_gmem_persist_of(args->file);
	struct guest_memfd_persist_ser *ser;
	int err;

	if (!p)
		return -EOPNOTSUPP;
	/* A file that lost its memory to another VM hands nothing over. */
	if (kvm_gmem_file_revoked(args->file))
		return -EPERM;
	/* The freeze hands over the file's granules: those still claimed join. */
	err = kvm_gmem_persist_lazy_adopt_all(inode);
	if (err)
		return err;

	ser = kho_alloc_preserve(GUEST_MEMFD_PERSIST_SER_BYTES);
	if (IS_ERR(ser))
		return PTR_ERR(ser);

	ser->size = i_size_read(inode);
	ser->flags = GMEM_I(inode)->flags;
	ser->persist_flags = p->persist_flags;
	ser->order = p->order;
	ser->vm_type = p->vm_type;
	args->serialized_data = virt_to_phys(ser);
	return 0;
}

static void kvm_gmem_luo_unpreserve(struct liveupdate_file_op_args *args)
{
	if (WARN_ON_ONCE(!args->serialized_data))
		return;
	kho_unpreserve_free(phys_to_virt(args->serialized_data));
}

/* Unpreserve the first @nr granules of @p; called with p->lock held. */
static void kvm_gmem_luo_unpreserve_granules(struct kvm_gmem_persist *p,
					     unsigned long nr)
{
	struct folio *folio;
	unsigned long g;

	xa_for_each(&p->granules, g, folio) {
		if (xa_is_value(folio))
			continue;
		if (!nr--)
			break;
		WARN_ON_ONCE(persist_alloc_unpreserve(folio));
	}
}

static int kvm_gmem_luo_freeze(struct liveupdate_file_op_args *args)
{
	struct inode *inode = file_inode(args->file);
	struct kvm_gmem_persist *p = kvm_gmem_persist(inode);
	struct guest_memfd_persist_extent_ser *extents = NULL;
	struct guest_memfd_persist_ser *ser;
	u64 owner, start = ktime_get_ns();
	unsigned long g, i = 0, done = 0;
	struct folio *folio;
	u64 nr_runs = 0;
	int err = 0;

	if (WARN_ON_ONCE(!args->serialized_data))
		return -EINVAL;

	ser = phys_to_virt(args->serialized_data);
	owner = GUEST_MEMFD_PERSIST_OWNER(args->serialized_data);

	/* Fails as a real allocation would: after waiting for the locks. */
	filemap_invalidate_lock(inode->i_mapping);
	mutex_lock(&p->lock);
	if (should_fail(&fail_kvm_gmem_persist_freeze, 1)) {
		err = -ENOMEM;
		goto out;
	}
	/* Adopted at preserve; nothing claims granules into a live file since. */
	if (WARN_ON_ONCE(kvm_gmem_persist_lazy_unused(p))) {
		err = -EBUSY;
		goto out;
	}
	/*
	 * Counted first: a few runs are written after the description, in its
	 * page; more go to an array no larger than needed.
	 */
	nr_runs = kvm_gmem_luo_count_runs(p);
	if (nr_runs <= GUEST_MEMFD_PERSIST_INLINE_RUNS) {
		extents = ser->runs;
	} else {
		extents = vmalloc_array(nr_runs, sizeof(*extents));
		if (!extents) {
			err = -ENOMEM;
			goto out;
		}
	}

	xa_for_each(&p->granules, g, folio) {
		/* Being allocated: it goes in after the freeze, so it waits. */
		if (xa_is_value(folio))
			continue;
		err = persist_alloc_preserve(folio, owner);
		if (err) {
			kvm_gmem_luo_unpreserve_granules(p, done);
			goto out;
		}
		done++;
		if (i && kvm_gmem_luo_run_continues(&extents[i - 1], g << p->order, folio)) {
			extents[i - 1].nr++;
			continue;
		}
		extents[i].pfn = folio_pfn(folio);
		extents[i].order = p->order;
		extents[i].index = g << p->order;
		extents[i].nr = 1;
		i++;
	}

	/* What a cancelled freeze described must not be read as this one's. */
	memset(&ser->extents, 0, sizeof(ser->extents));
	if (extents != ser->runs) {
		err = kho_preserve_vmalloc(extents, &ser->extents);
		if (err) {
			memset(&ser->extents, 0, sizeof(ser->extents));
			kvm_gmem_luo_unpreserve_granules(p, done);
			goto out;
		}
		/* LUO does not keep a freeze's private_data: the file does. */
		p->extents = extents;
	}
	ser->nr_extents = i;
	WRITE_ONCE(p->frozen, true);
out:
	mutex_unlock(&p->lock);
	filemap_invalidate_unlock(inode->i_mapping);
	if (err) {
		if (extents != ser->runs)
			vfree(extents);
		return err;
	}
	trace_kvm_gmem_persist_freeze(ser->size, p->order, ser->nr_extents,
				      kvm_gmem_persist_meta_bytes(ser->nr_extents),
				      ktime_get_ns() - start);
	return 0;
}

/*
 * Not under the invalidate lock: an fallocate that waits for the thaw
 * holds it. The file's lock keeps the granules as they are.
 */
static void kvm_gmem_luo_unfreeze(struct liveupdate_file_op_args *args)
{
	struct inode *inode = file_inode(args->file);
	struct kvm_gmem_persist *p = kvm_gmem_persist(inode);
	struct guest_memfd_persist_ser *ser = phys_to_virt(args->serialized_data);
	struct guest_memfd_persist_extent_ser *extents;
	struct folio *folio;
	u64 i, k;

	mutex_lock(&p->lock);
	extents = p->extents ?: ser->runs;
	if (p->extents)
		kho_unpreserve_vmalloc(&ser->extents);
	memset(&ser->extents, 0, sizeof(ser->extents));
	p->extents = NULL;
	/* By the granules recorded: a punched one may have been put back since. */
	for (i = 0; i < ser->nr_extents; i++) {
		for (k = 0; k < extents[i].nr; k++) {
			folio = pfn_folio(kvm_gmem_luo_run_pfn(&extents[i], k));
			WARN_ON_ONCE(persist_alloc_unpreserve(folio));
		}
	}
	ser->nr_extents = 0;
	WRITE_ONCE(p->frozen, false);
	mutex_unlock(&p->lock);
	kvm_gmem_persist_thaw(inode);
	if (extents != ser->runs)
		vfree(extents);
}

/**
 * kvm_gmem_persist_check_ser - check a file handed over by the previous kernel
 * @ser: its description
 *
 * Return: 0, or -EINVAL for an unknown granule order or flag, a missing
 * GUEST_MEMFD_FLAG_PERSIST, a size that is zero, too large or not made of
 * whole granules, or more extents than the file has granules.
 */
int kvm_gmem_persist_check_ser(const struct guest_memfd_persist_ser *ser)
{
	u64 granule;

	if (!persist_order_valid(ser->order) ||
	    (ser->flags & ~KVM_GMEM_PERSIST_VALID_FLAGS) ||
	    !(ser->flags & GUEST_MEMFD_FLAG_PERSIST) ||
	    !kvm_gmem_persist_vm_type(ser->vm_type))
		return -EINVAL;
	granule = PAGE_SIZE << ser->order;
	if (!ser->size || !IS_ALIGNED(ser->size, granule) ||
	    ser->size > MAX_LFS_FILESIZE || ser->nr_extents > ser->size / granule)
		return -EINVAL;
	return 0;
}

/* Whether the runs of @ser are in its own page: then it has no array. */
static bool kvm_gmem_luo_inline(const struct guest_memfd_persist_ser *ser)
{
	return ser->nr_extents <= GUEST_MEMFD_PERSIST_INLINE_RUNS;
}

/*
 * The extent list of a handed-over file: its inline runs, its array, or
 * NULL for a file without granules. KHO restores a vmalloc area only
 * once: what a failed retrieve restored stays in the file's private data,
 * for the next retrieve and for finish, and ERR_PTR(-EINVAL) there
 * records an array that could not be restored. ERR_PTR(-EINVAL) is also
 * returned, each time, for a description that does not start its page
 * (its inline runs would be read past it) and for one whose runs are
 * inline, or that has none, but that describes an array as well.
 */
VISIBLE_IF_KUNIT struct guest_memfd_persist_extent_ser *
kvm_gmem_luo_extents(struct liveupdate_file_op_args *args, struct guest_memfd_persist_ser *ser)
{
	struct guest_memfd_persist_extent_ser *extents = args->private_data;

	if (extents)
		return extents;
	if (!PAGE_ALIGNED(ser))
		return ERR_PTR(-EINVAL);
	if (kvm_gmem_luo_inline(ser)) {
		if (ser->extents.first.phys || ser->extents.total_pages)
			return ERR_PTR(-EINVAL);
		return ser->nr_extents ? ser->runs : NULL;
	}
	extents = kho_restore_vmalloc(&ser->extents);
	if (!extents)
		extents = ERR_PTR(-EINVAL);
	args->private_data = extents;
	return extents;
}
EXPORT_SYMBOL_IF_KUNIT(kvm_gmem_luo_extents);

static void kvm_gmem_luo_put_extents(struct liveupdate_file_op_args *args)
{
	if (!IS_ERR(args->private_data))
		vfree(args->private_data);
	args->private_data = NULL;
}

/* Entries the restored extent array holds, whatever nr_extents claims. */
static u64 kvm_gmem_luo_capacity(const struct guest_memfd_persist_ser *ser)
{
	if (kvm_gmem_luo_inline(ser))
		return GUEST_MEMFD_PERSIST_INLINE_RUNS;
	return (u64)ser->extents.total_pages * PAGE_SIZE /
	       sizeof(struct guest_memfd_persist_extent_ser);
}

/*
 * Give back to the pool the granules of @extents not taken by a file. The
 * runs may be what a retrieve refused, so none is trusted: persist_alloc
 * releases only what it holds pending for @owner, a run is followed only
 * while it does, and no more granules are tried than the file has. If the
 * file's description itself does not hold, its granule size is unknown:
 * only the first granule of each run is released, the others stay pending
 * until the next kexec, which scrubs them.
 */
static void kvm_gmem_luo_release(const struct guest_memfd_persist_ser *ser,
				 const struct guest_memfd_persist_extent_ser *extents,
				 u64 nr, u64 owner)
{
	bool valid = !kvm_gmem_persist_check_ser(ser);
	u64 left = valid ? ser->size >> (ser->order + PAGE_SHIFT) : nr;
	u64 i, k;

	for (i = 0; i < nr; i++) {
		if (valid && extents[i].order != ser->order)
			continue;
		for (k = 0; k < extents[i].nr && (valid || !k); k++) {
			/* Shifted by an order checked valid: k is 0 otherwise. */
			u64 pfn = extents[i].pfn + (k ? k << ser->order : 0);
			int err;

			if (!left--)
				return;
			err = persist_alloc_release(PFN_PHYS(pfn), owner);
			cond_resched();
			if (err && err != -ENOENT)
				pr_warn("granule at pfn %#llx not released: %pe\n", pfn,
					ERR_PTR(err));
			/* Not a granule held for this file: neither is the rest of the run. */
			if (err == -ENOENT || err == -EPERM)
				break;
		}
	}
}

/*
 * Every run in the array of at least one granule of the file's order,
 * inside the file and inside the page frames, sorted by index without
 * overlap, aligned in the file and in memory.
 */
static int kvm_gmem_luo_check_extents(const struct guest_memfd_persist_ser *ser,
				      const struct guest_memfd_persist_extent_ser *extents,
				      u64 capacity)
{
	u64 pages = 1ULL << ser->order, end = ser->size >> PAGE_SHIFT, next = 0, i;

	if (ser->nr_extents > capacity)
		return -EINVAL;
	for (i = 0; i < ser->nr_extents; i++) {
		const struct guest_memfd_persist_extent_ser *e = &extents[i];
		u64 pfn = e->pfn;

		if (e->order != ser->order || e->index < next || e->index >= end ||
		    !IS_ALIGNED(e->index, pages) || !IS_ALIGNED(pfn, pages) ||
		    !e->nr || e->nr > (end - e->index) >> ser->order ||
		    e->nr > ((1ULL << 52) - pfn) >> ser->order)
			return -EINVAL;
		next = e->index + (e->nr << ser->order);
	}
	return 0;
}

/**
 * kvm_gmem_luo_restore - give a retrieved file the granules handed over
 * @inode:    the new inode, set up with the file's granule and attributes
 * @ser:      the file's description, checked by kvm_gmem_persist_check_ser()
 * @extents:  its extent array, as restored
 * @capacity: how many entries @extents holds
 * @owner:    the persist_alloc key of the file's granules
 *
 * The whole description is checked, then every granule of every run is
 * claimed from persist_alloc, which checks that each is a pending extent
 * of @owner with the file's order and attributes. The granules enter the
 * file at first use (lazy.c): O(runs) here, whatever the file's size. All
 * or nothing: on failure no granule is claimed and @inode holds none.
 *
 * Return: 0; -EINVAL for a description that does not hold (more runs than
 * the array, a misplaced, misaligned, empty, overlong or disagreeing run)
 * or a granule without the file's attributes; -ENOENT or -EPERM for
 * memory persist_alloc does not hold for @owner; -ENOMEM.
 */
VISIBLE_IF_KUNIT int kvm_gmem_luo_restore(struct inode *inode,
					  const struct guest_memfd_persist_ser *ser,
					  const struct guest_memfd_persist_extent_ser *extents,
					  u64 capacity, u64 owner)
{
	int err;

	err = kvm_gmem_persist_check_ser(ser);
	if (!err)
		err = kvm_gmem_luo_check_extents(ser, extents, capacity);
	if (err)
		return err;
	err = kvm_gmem_persist_lazy_claim(inode, extents, ser->nr_extents, owner);
	/* Fails as the file's creation after it may: every claim is undone. */
	if (!err && should_fail(&fail_kvm_gmem_persist_retrieve, 1)) {
		kvm_gmem_persist_disown(inode, owner);
		err = -ENOMEM;
	}
	return err;
}
EXPORT_SYMBOL_IF_KUNIT(kvm_gmem_luo_restore);

/*
 * A failed retrieve changes nothing: the granules stay pending and the
 * description stays, so the retrieve can be retried (LUO does not keep its
 * error: retrieve_retry), and finish releases what is still pending.
 */
static int kvm_gmem_luo_rebuild(struct liveupdate_file_op_args *args)
{
	struct guest_memfd_persist_ser *ser = phys_to_virt(args->serialized_data);
	u64 owner = GUEST_MEMFD_PERSIST_OWNER(args->serialized_data);
	struct guest_memfd_persist_extent_ser *extents;
	u64 start = ktime_get_ns();
	struct inode *inode;
	struct file *file;
	int err;

	/* Allocated as a page: its inline runs are read up to its end. */
	if (!PAGE_ALIGNED(args->serialized_data)) {
		pr_err("refusing file: description at %#llx does not start a page\n",
		       args->serialized_data);
		return -EINVAL;
	}
	err = kvm_gmem_persist_check_ser(ser);
	if (err) {
		pr_err("refusing file: size %llu flags %#llx order %u extents %llu\n",
		       ser->size, ser->flags, ser->order, ser->nr_extents);
		return err;
	}
	extents = kvm_gmem_luo_extents(args, ser);
	if (IS_ERR(extents)) {
		pr_err("extent list of a %llu byte file not restored\n", ser->size);
		return PTR_ERR(extents);
	}

	inode = kvm_gmem_inode_create(ser->size, ser->flags);
	if (IS_ERR(inode))
		return PTR_ERR(inode);
	err = kvm_gmem_persist_setup(inode, ser->vm_type, PAGE_SIZE << ser->order,
				     ser->persist_flags);
	if (err) {
		pr_err("refusing file: flags %#llx attributes %#x VM type %u: %pe\n",
		       ser->flags, ser->persist_flags, ser->vm_type, ERR_PTR(err));
		goto out_iput;
	}
	err = kvm_gmem_luo_restore(inode, ser, extents, kvm_gmem_luo_capacity(ser), owner);
	if (err) {
		pr_err("file of %llu bytes not rebuilt, its memory kept: %pe\n",
		       ser->size, ERR_PTR(err));
		goto out_iput;
	}
	file = kvm_gmem_file_create(NULL, inode);
	if (IS_ERR(file)) {
		err = PTR_ERR(file);
		kvm_gmem_persist_disown(inode, owner);
		goto out_iput;
	}

	args->file = file;
	trace_kvm_gmem_persist_retrieve(ser->size, ser->order, ser->nr_extents,
					kvm_gmem_persist_meta_bytes(ser->nr_extents),
					ktime_get_ns() - start);
	kvm_gmem_luo_put_extents(args);
	kho_restore_free(ser);
	return 0;

out_iput:
	iput(inode);
	return err;
}

static int kvm_gmem_luo_retrieve(struct liveupdate_file_op_args *args)
{
	int err = -ENODEV;

	down_read(&kvm_gmem_luo_mount);
	if (kvm_gmem_luo_mounted)
		err = kvm_gmem_luo_rebuild(args);
	else
		pr_warn_ratelimited("retrieve before KVM is loaded: load kvm_amd or kvm_intel and retry\n");
	up_read(&kvm_gmem_luo_mount);
	return err;
}

static void kvm_gmem_luo_finish(struct liveupdate_file_op_args *args)
{
	struct guest_memfd_persist_ser *ser = phys_to_virt(args->serialized_data);
	struct guest_memfd_persist_extent_ser *extents;

	/* Retrieved: the file owns its granules and freed its description. */
	if (args->retrieve_status > 0)
		return;

	extents = kvm_gmem_luo_extents(args, ser);
	if (IS_ERR(extents))
		pr_err("extent list lost: %llu granules stay unused\n", ser->nr_extents);
	else if (extents)
		kvm_gmem_luo_release(ser, extents,
				     min(ser->nr_extents, kvm_gmem_luo_capacity(ser)),
				     GUEST_MEMFD_PERSIST_OWNER(args->serialized_data));
	kvm_gmem_luo_put_extents(args);
	kho_restore_free(ser);
}

VISIBLE_IF_KUNIT const struct liveupdate_file_ops kvm_gmem_luo_file_ops = {
	.can_preserve = kvm_gmem_luo_can_preserve,
	.preserve = kvm_gmem_luo_preserve,
	.unpreserve = kvm_gmem_luo_unpreserve,
	.freeze = kvm_gmem_luo_freeze,
	.unfreeze = kvm_gmem_luo_unfreeze,
	.retrieve = kvm_gmem_luo_retrieve,
	.finish = kvm_gmem_luo_finish,
	.get_id = kvm_gmem_luo_get_id,
	.owner = THIS_MODULE,
	.retrieve_retry = true,
};
EXPORT_SYMBOL_IF_KUNIT(kvm_gmem_luo_file_ops);

static struct liveupdate_file_handler kvm_gmem_luo_handler = {
	.ops = &kvm_gmem_luo_file_ops,
	.compatible = GUEST_MEMFD_PERSIST_LUO_COMPATIBLE,
};

/*
 * The handler is kvm.ko's (built in), registered once at boot: LUO
 * deserialises the previous kernel's sessions on the first open of
 * /dev/liveupdate, maybe before the vendor module is loaded, and a handler
 * missing then would lose every file for good. What needs the vendor
 * module, the guest_memfd mount that retrieve creates inodes on, is
 * checked at retrieve: until it is up (kvm_gmem_persist_init()), retrieve
 * is -ENODEV and can be retried. A retrieved file pins the vendor module
 * through its file operations.
 */
static int __init kvm_gmem_luo_init(void)
{
	int err = liveupdate_register_file_handler(&kvm_gmem_luo_handler);

	if (err && err != -EOPNOTSUPP)
		pr_err("live update handler not registered: %pe\n", ERR_PTR(err));
	kvm_gmem_persist_debugfs[0] =
		fault_create_debugfs_attr("fail_kvm_gmem_persist_freeze", NULL,
					  &fail_kvm_gmem_persist_freeze);
	kvm_gmem_persist_debugfs[1] =
		fault_create_debugfs_attr("fail_kvm_gmem_persist_retrieve", NULL,
					  &fail_kvm_gmem_persist_retrieve);
	return 0;
}
late_initcall(kvm_gmem_luo_init);

/**
 * kvm_gmem_persist_init - let retrieve create guest_memfd files
 *
 * Called by kvm_init() when the vendor module loads, once nothing of the
 * load can fail any more: a file retrieved before would pin, through its
 * file operations, a module about to be freed.
 */
void kvm_gmem_persist_init(void)
{
	down_write(&kvm_gmem_luo_mount);
	kvm_gmem_luo_mounted = true;
	up_write(&kvm_gmem_luo_mount);
}

/**
 * kvm_gmem_persist_exit - stop retrieve from creating guest_memfd files
 *
 * Called before the guest_memfd mount goes, when the vendor module
 * unloads; it waits for the retrieves under way.
 */
void kvm_gmem_persist_exit(void)
{
	down_write(&kvm_gmem_luo_mount);
	kvm_gmem_luo_mounted = false;
	up_write(&kvm_gmem_luo_mount);
}
