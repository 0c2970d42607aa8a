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
 *   - every allocated granule, its memory untouched, as one record of
 *     index and physical address (include/linux/kho/abi/guest_memfd_persist.h).
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
 *     the extents. A failed or cancelled live update unfreezes: the
 *     granules are unpreserved and the file works as before.
 *   - retrieve (next kernel) rebuilds the inode from the extents, one
 *     persist_alloc restore per granule, O(extents), and returns a file.
 *   - finish releases what was not retrieved: persist_alloc zeroes those
 *     granules and gives them back to the pool.
 */

#define pr_fmt(fmt) "kvm_gmem_persist: " fmt

#include <linux/debugfs.h>
#include <linux/fault-inject.h>
#include <linux/file.h>
#include <linux/kexec_handover.h>
#include <linux/kho/abi/guest_memfd_persist.h>
#include <linux/kho/abi/persist_alloc.h>
#include <linux/ktime.h>
#include <linux/kvm_host.h>
#include <linux/liveupdate.h>
#include <linux/pagemap.h>
#include <linux/persist_alloc.h>
#include <linux/vmalloc.h>

#include "persist.h"
#include "../guest_memfd.h"

#define CREATE_TRACE_POINTS
#include <trace/events/kvm_gmem_persist.h>

/* The handover layout is a contract with the next kernel: see the ABI header. */
static_assert(sizeof(struct guest_memfd_persist_ser) == 48);
static_assert(offsetof(struct guest_memfd_persist_ser, persist_flags) == 40);
static_assert(sizeof(struct guest_memfd_persist_extent_ser) == 16);

static DECLARE_FAULT_ATTR(fail_kvm_gmem_persist_freeze);
static struct dentry *kvm_gmem_persist_debugfs;
static bool kvm_gmem_luo_registered;

#define KVM_GMEM_PERSIST_VALID_FLAGS	(GUEST_MEMFD_FLAG_MMAP | \
					 GUEST_MEMFD_FLAG_INIT_SHARED | \
					 GUEST_MEMFD_FLAG_PERSIST)

/* Bytes of handover records of one file: its own and persist_alloc's. */
static u64 kvm_gmem_persist_meta_bytes(u64 nr_extents)
{
	return sizeof(struct guest_memfd_persist_ser) +
	       nr_extents * (sizeof(struct guest_memfd_persist_extent_ser) +
			     sizeof(struct persist_alloc_extent_ser));
}

static struct kvm_gmem_persist *kvm_gmem_persist_of(struct file *file)
{
	struct inode *inode = kvm_gmem_file_inode(file);

	return inode ? GMEM_I(inode)->persist : NULL;
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

	if (!p)
		return -EOPNOTSUPP;
	/* A file that lost its memory to another VM hands nothing over. */
	if (kvm_gmem_file_revoked(args->file))
		return -EPERM;

	ser = kho_alloc_preserve(sizeof(*ser));
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
		if (!nr--)
			break;
		WARN_ON_ONCE(persist_alloc_unpreserve(folio));
	}
}

static int kvm_gmem_luo_freeze(struct liveupdate_file_op_args *args)
{
	struct inode *inode = file_inode(args->file);
	struct kvm_gmem_persist *p = GMEM_I(inode)->persist;
	struct guest_memfd_persist_extent_ser *extents = NULL;
	struct guest_memfd_persist_ser *ser;
	u64 owner, start = ktime_get_ns();
	unsigned long g, i = 0;
	struct folio *folio;
	int err = 0;

	if (WARN_ON_ONCE(!args->serialized_data))
		return -EINVAL;
	if (should_fail(&fail_kvm_gmem_persist_freeze, 1))
		return -ENOMEM;

	ser = phys_to_virt(args->serialized_data);
	owner = GUEST_MEMFD_PERSIST_OWNER(args->serialized_data);

	filemap_invalidate_lock(inode->i_mapping);
	mutex_lock(&p->lock);
	if (p->nr_granules) {
		extents = vmalloc_array(p->nr_granules, sizeof(*extents));
		if (!extents) {
			err = -ENOMEM;
			goto out;
		}
	}

	xa_for_each(&p->granules, g, folio) {
		err = persist_alloc_preserve(folio, owner);
		if (err) {
			kvm_gmem_luo_unpreserve_granules(p, i);
			goto out;
		}
		extents[i].pfn = folio_pfn(folio);
		extents[i].order = p->order;
		extents[i].index = g << p->order;
		i++;
	}

	if (extents) {
		err = kho_preserve_vmalloc(extents, &ser->extents);
		if (err) {
			kvm_gmem_luo_unpreserve_granules(p, i);
			goto out;
		}
	}
	ser->nr_extents = i;
	args->private_data = extents;
	p->frozen = true;
out:
	mutex_unlock(&p->lock);
	filemap_invalidate_unlock(inode->i_mapping);
	if (err) {
		vfree(extents);
		return err;
	}
	trace_kvm_gmem_persist_freeze(ser->size, p->order, ser->nr_extents,
				      kvm_gmem_persist_meta_bytes(ser->nr_extents),
				      ktime_get_ns() - start);
	return 0;
}

static void kvm_gmem_luo_unfreeze(struct liveupdate_file_op_args *args)
{
	struct inode *inode = file_inode(args->file);
	struct kvm_gmem_persist *p = GMEM_I(inode)->persist;
	struct guest_memfd_persist_ser *ser = phys_to_virt(args->serialized_data);

	filemap_invalidate_lock(inode->i_mapping);
	mutex_lock(&p->lock);
	if (ser->nr_extents)
		kho_unpreserve_vmalloc(&ser->extents);
	kvm_gmem_luo_unpreserve_granules(p, ser->nr_extents);
	ser->nr_extents = 0;
	p->frozen = false;
	mutex_unlock(&p->lock);
	filemap_invalidate_unlock(inode->i_mapping);

	vfree(args->private_data);
	args->private_data = NULL;
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

/* Give back to the pool the granules of @extents not taken by a file. */
static void kvm_gmem_luo_release(const struct guest_memfd_persist_extent_ser *extents,
				 u64 nr, u64 owner)
{
	u64 i;

	for (i = 0; i < nr; i++) {
		int err = persist_alloc_release(PFN_PHYS(extents[i].pfn), owner);

		if (err && err != -ENOENT)
			pr_warn("granule at pfn %#llx not released: %pe\n",
				(u64)extents[i].pfn, ERR_PTR(err));
		cond_resched();
	}
}

static int kvm_gmem_luo_restore(struct inode *inode,
				const struct guest_memfd_persist_ser *ser,
				const struct guest_memfd_persist_extent_ser *extents,
				u64 owner)
{
	u64 i, next = 0;
	int err;

	for (i = 0; i < ser->nr_extents; i++) {
		const struct guest_memfd_persist_extent_ser *e = &extents[i];
		struct folio *folio;

		if (e->order != ser->order || e->index < next)
			return -EINVAL;
		folio = persist_alloc_restore(PFN_PHYS(e->pfn), owner);
		if (IS_ERR(folio))
			return PTR_ERR(folio);
		err = kvm_gmem_persist_adopt(inode, e->index, folio);
		if (err) {
			WARN_ON_ONCE(persist_free_folio(folio));
			return err;
		}
		next = e->index + (1UL << e->order);
		cond_resched();
	}
	return 0;
}

static int kvm_gmem_luo_retrieve(struct liveupdate_file_op_args *args)
{
	struct guest_memfd_persist_extent_ser *extents = NULL;
	struct guest_memfd_persist_ser *ser;
	u64 owner, start = ktime_get_ns();
	struct inode *inode;
	struct file *file;
	int err;

	ser = phys_to_virt(args->serialized_data);
	owner = GUEST_MEMFD_PERSIST_OWNER(args->serialized_data);

	if (ser->nr_extents) {
		extents = kho_restore_vmalloc(&ser->extents);
		if (!extents) {
			pr_err("extent list of a %llu byte file not restored\n", ser->size);
			kho_restore_free(ser);
			return -EINVAL;
		}
	}

	err = kvm_gmem_persist_check_ser(ser);
	if (err) {
		pr_err("refusing file: size %llu flags %#llx order %u extents %llu\n",
		       ser->size, ser->flags, ser->order, ser->nr_extents);
		goto out;
	}

	inode = kvm_gmem_inode_create(ser->size, ser->flags);
	if (IS_ERR(inode)) {
		err = PTR_ERR(inode);
		goto out;
	}
	err = kvm_gmem_persist_setup(inode, ser->vm_type, PAGE_SIZE << ser->order,
				     ser->persist_flags);
	if (!err)
		err = kvm_gmem_luo_restore(inode, ser, extents, owner);
	if (err) {
		pr_err("refusing file: extent list invalid: %pe\n", ERR_PTR(err));
		iput(inode);
		goto out;
	}

	file = kvm_gmem_file_create(NULL, inode);
	if (IS_ERR(file)) {
		err = PTR_ERR(file);
		iput(inode);
		goto out;
	}
	args->file = file;
	trace_kvm_gmem_persist_retrieve(ser->size, ser->order, ser->nr_extents,
					kvm_gmem_persist_meta_bytes(ser->nr_extents),
					ktime_get_ns() - start);
out:
	/* What a refused file did not take goes back to the pool, zeroed. */
	if (err)
		kvm_gmem_luo_release(extents, ser->nr_extents, owner);
	vfree(extents);
	kho_restore_free(ser);
	return err;
}

static void kvm_gmem_luo_finish(struct liveupdate_file_op_args *args)
{
	struct guest_memfd_persist_extent_ser *extents;
	struct guest_memfd_persist_ser *ser;

	/* Retrieved, or cleaned up by a failed retrieve. */
	if (args->retrieve_status)
		return;

	ser = phys_to_virt(args->serialized_data);
	if (ser->nr_extents) {
		extents = kho_restore_vmalloc(&ser->extents);
		if (extents) {
			kvm_gmem_luo_release(extents, ser->nr_extents,
					     GUEST_MEMFD_PERSIST_OWNER(args->serialized_data));
			vfree(extents);
		} else {
			pr_err("extent list lost: %llu granules stay unused\n",
			       ser->nr_extents);
		}
	}
	kho_restore_free(ser);
}

static const struct liveupdate_file_ops kvm_gmem_luo_file_ops = {
	.can_preserve = kvm_gmem_luo_can_preserve,
	.preserve = kvm_gmem_luo_preserve,
	.unpreserve = kvm_gmem_luo_unpreserve,
	.freeze = kvm_gmem_luo_freeze,
	.unfreeze = kvm_gmem_luo_unfreeze,
	.retrieve = kvm_gmem_luo_retrieve,
	.finish = kvm_gmem_luo_finish,
	.get_id = kvm_gmem_luo_get_id,
	.owner = THIS_MODULE,
};

static struct liveupdate_file_handler kvm_gmem_luo_handler = {
	.ops = &kvm_gmem_luo_file_ops,
	.compatible = GUEST_MEMFD_PERSIST_LUO_COMPATIBLE,
};

/**
 * kvm_gmem_persist_init - register the live update handler of guest_memfd
 *
 * Called once guest_memfd can create inodes. Without live update support
 * persistent guest_memfd still works, it just cannot be preserved.
 */
void kvm_gmem_persist_init(void)
{
	int err = liveupdate_register_file_handler(&kvm_gmem_luo_handler);

	if (err && err != -EOPNOTSUPP)
		pr_err("live update handler not registered: %pe\n", ERR_PTR(err));
	kvm_gmem_luo_registered = !err;
	kvm_gmem_persist_debugfs =
		fault_create_debugfs_attr("fail_kvm_gmem_persist_freeze", NULL,
					  &fail_kvm_gmem_persist_freeze);
}

/**
 * kvm_gmem_persist_exit - unregister the live update handler of guest_memfd
 */
void kvm_gmem_persist_exit(void)
{
	debugfs_remove_recursive(kvm_gmem_persist_debugfs);
	if (kvm_gmem_luo_registered)
		liveupdate_unregister_file_handler(&kvm_gmem_luo_handler);
	kvm_gmem_luo_registered = false;
}
