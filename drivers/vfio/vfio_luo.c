// SPDX-License-Identifier: GPL-2.0
/*
 * Copyright (c) 2026 persistmem developers
 */

/**
 * DOC: VFIO device cdev live update
 *
 * A VMM that keeps its VM running across a live update of the host
 * preserves, in one LUO session, the guest's memory, the iommufd that maps
 * it and the VFIO device cdevs of the devices passed through, so that the
 * devices' DMA stays translated by the same page tables while the kernel is
 * replaced (see Documentation/userspace-api/iommufd_persist.rst).
 *
 * This handler preserves a device cdev only in the one configuration the
 * next kernel can take over without a reset: a PCI function alone in its
 * IOMMU group, bound through this cdev to an iommufd preserved in the same
 * session and attached to a persistent paging HWPT of it, without PASID
 * (-EINVAL otherwise, nothing changed), and the only device preserved on
 * that HWPT (-EBUSY otherwise): a handed-over page table must have one user,
 * whose retrieve takes it over. From preserve until unpreserve the
 * device's attachment cannot change: VFIO_DEVICE_ATTACH_IOMMUFD_PT and
 * VFIO_DEVICE_DETACH_IOMMUFD_PT get -EBUSY.
 *
 * Freeze asks the device's IOMMU driver to keep translating it with its
 * persistent domain across the kexec (iommu_live_update_freeze_device();
 * -EOPNOTSUPP from a driver that cannot, and the live update fails before
 * anything is torn down) and marks the PCI function so that the kexec
 * leaves its bus mastering on: DMA the device has under way goes on
 * through the same page table while the kernel is replaced.
 *
 * In the next kernel the device is still a bus master and still translated
 * through its page table. Retrieve gives it back to user space as the cdev
 * file of a device bound and attached as before, without a reset and
 * without a moment of blocked DMA: it finds the PCI function the record
 * names, which vfio-pci must be bound to by then, and the iommufd of the
 * record's token, which user space must have retrieved first; it binds the
 * device to that iommufd under its old device ID while the device keeps its
 * translation (iommufd_luo_device_bind()), opens it with no reset and its
 * bus mastering kept, makes its HWPT adopt the handed-over page table under
 * its old ID and attaches it there (iommufd_luo_device_attach()), where the
 * IOMMU driver takes the translation over as it is. A retrieve that fails
 * before it opens the device changes nothing and can be tried again (with
 * vfio-pci bound, or once the iommufd is retrieved); one that fails later
 * closes the device again, reset and no longer translated, and a retry
 * fails. Either way finish then treats the device as not retrieved.
 *
 * Finish of a device nobody retrieved blocks its handed-over translation
 * (iommu_live_update_release_device()) before the iommufd's finish, which
 * comes after it, releases the page table, and clears its bus mastering
 * unless an owner drives the device since: its DMA faults from then on.
 */

#define pr_fmt(fmt) "vfio_luo: " fmt

#include <linux/iommu.h>
#include <linux/iommufd.h>
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/iommufd_luo.h>
#include <linux/kexec_handover.h>
#include <linux/kho/abi/iommufd_persist.h>
#include <linux/kho/abi/vfio_persist.h>
#include <linux/liveupdate.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/vfio.h>

#include "vfio.h"

/* A preserved device: its cdev's device and its record */
struct vfio_luo {
	struct vfio_device *device;
	struct vfio_persist_ser *ser;
	struct iommufd_ctx *ictx;
	struct list_head node;
};

/* The preserved devices, to keep one per HWPT */
static LIST_HEAD(vfio_luo_preserved);
static DEFINE_MUTEX(vfio_luo_lock);

/* Add @luo unless another device is preserved on its HWPT */
static int vfio_luo_add(struct vfio_luo *luo)
{
	struct vfio_luo *other;

	guard(mutex)(&vfio_luo_lock);
	list_for_each_entry(other, &vfio_luo_preserved, node)
		if (other->ictx == luo->ictx &&
		    other->ser->hwpt_id == luo->ser->hwpt_id)
			return -EBUSY;
	list_add(&luo->node, &vfio_luo_preserved);
	return 0;
}

static bool vfio_luo_can_preserve(struct liveupdate_file_handler *handler,
				  struct file *file)
{
	return file->f_op == &vfio_device_fops;
}

/* Bound through this cdev to an iommufd and attached; dev_set->lock held */
static bool vfio_luo_bound(struct vfio_device_file *df)
{
	struct vfio_device *device = df->device;

	/* Pairs with the release of a bind, as vfio_device_fops' checks do */
	return !df->group && smp_load_acquire(&df->access_granted) &&
	       df->iommufd && device->iommufd_device &&
	       device->iommufd_attached;
}

static int vfio_luo_record(struct liveupdate_file_op_args *args,
			   struct vfio_device_file *df,
			   struct vfio_persist_ser *ser)
{
	struct vfio_device *device = df->device;
	struct iommufd_luo_device binding;
	struct pci_dev *pdev;
	int rc;

	if (!dev_is_pci(device->dev) || !vfio_luo_bound(df))
		return -EINVAL;
	rc = iommufd_luo_device_check(device->iommufd_device, args, &binding);
	if (rc)
		return rc;
	pdev = to_pci_dev(device->dev);
	memset(ser, 0, sizeof(*ser));
	ser->iommufd_token = binding.iommufd_token;
	ser->dev_id = binding.dev_id;
	ser->hwpt_id = binding.hwpt_id;
	ser->segment = pci_domain_nr(pdev->bus);
	ser->bus = pdev->bus->number;
	ser->devfn = pdev->devfn;
	ser->vendor = pdev->vendor;
	ser->device = pdev->device;
	return 0;
}

static int vfio_luo_preserve(struct liveupdate_file_op_args *args)
{
	struct vfio_device_file *df = args->file->private_data;
	struct vfio_device *device = df->device;
	struct vfio_persist_ser *ser;
	struct vfio_luo *luo;
	int rc;

	luo = kzalloc_obj(*luo);
	if (!luo)
		return -ENOMEM;
	ser = kho_alloc_preserve(sizeof(*ser));
	if (IS_ERR(ser)) {
		kfree(luo);
		return PTR_ERR(ser);
	}

	luo->device = device;
	luo->ser = ser;
	mutex_lock(&device->dev_set->lock);
	if (device->luo_preserved)
		rc = -EBUSY;
	else
		rc = vfio_luo_record(args, df, ser);
	if (!rc) {
		luo->ictx = df->iommufd;
		rc = vfio_luo_add(luo);
	}
	if (!rc)
		device->luo_preserved = true;
	mutex_unlock(&device->dev_set->lock);
	if (rc) {
		kho_unpreserve_free(ser);
		kfree(luo);
		return rc;
	}

	args->serialized_data = virt_to_phys(ser);
	args->private_data = luo;
	return 0;
}

static void vfio_luo_unpreserve(struct liveupdate_file_op_args *args)
{
	struct vfio_luo *luo = args->private_data;

	mutex_lock(&luo->device->dev_set->lock);
	luo->device->luo_preserved = false;
	mutex_lock(&vfio_luo_lock);
	list_del(&luo->node);
	mutex_unlock(&vfio_luo_lock);
	mutex_unlock(&luo->device->dev_set->lock);
	kho_unpreserve_free(luo->ser);
	kfree(luo);
}

static int vfio_luo_freeze(struct liveupdate_file_op_args *args)
{
	struct vfio_luo *luo = args->private_data;
	struct device *dev = luo->device->dev;
	int rc;

	rc = iommu_live_update_freeze_device(dev);
	if (rc) {
		dev_warn(dev, "live update refused: its IOMMU cannot keep translating it (%pe)\n",
			 ERR_PTR(rc));
		return rc;
	}
	WRITE_ONCE(to_pci_dev(dev)->live_update_dma, true);
	dev_info(dev, "frozen: DMA goes on across the kexec, through HWPT %u\n",
		 luo->ser->hwpt_id);
	return 0;
}

static void vfio_luo_unfreeze(struct liveupdate_file_op_args *args)
{
	struct vfio_luo *luo = args->private_data;
	struct device *dev = luo->device->dev;

	WRITE_ONCE(to_pci_dev(dev)->live_update_dma, false);
	iommu_live_update_unfreeze_device(dev);
}

static int vfio_luo_check(const struct vfio_persist_ser *ser)
{
	if (ser->reserved[0] || ser->reserved[1] || ser->reserved[2] ||
	    !ser->dev_id || !ser->hwpt_id)
		return -EINVAL;
	return 0;
}

static const char *const vfio_luo_iommufd_compat[] = {
	IOMMUFD_PERSIST_LUO_COMPATIBLE, NULL
};

/* The registered VFIO PCI device of the record's function, if the IDs match */
static struct vfio_device *vfio_luo_find(const struct vfio_persist_ser *ser)
{
	struct vfio_device *device = NULL;
	struct pci_dev *pdev;

	pdev = pci_get_domain_bus_and_slot(ser->segment, ser->bus, ser->devfn);
	if (!pdev)
		return NULL;
	if (pdev->vendor == ser->vendor && pdev->device == ser->device)
		device = vfio_device_get_from_dev(&pdev->dev);
	pci_dev_put(pdev);
	if (device && device->ops->bind_iommufd != vfio_iommufd_physical_bind) {
		vfio_device_put_registration(device);
		device = NULL;
	}
	return device;
}

/* Bind, open and attach @df's device as the record says; dev_set->lock held */
static int vfio_luo_open(struct vfio_device_file *df,
			 const struct vfio_persist_ser *ser)
{
	struct vfio_device *device = df->device;
	int rc;

	device->luo_dev_id = ser->dev_id;
	rc = vfio_df_open(df);
	device->luo_dev_id = 0;
	if (rc)
		return rc;
	rc = iommufd_luo_device_attach(device->iommufd_device, ser->hwpt_id);
	if (rc) {
		/* Blocked before the close resets it: no retry, no stale DMA */
		iommu_live_update_release_device(device->dev);
		vfio_df_close(df);
		return rc;
	}
	/* As vfio_iommufd_physical_attach_ioas() records an attach */
	device->iommufd_attached = true;
	device->cdev_opened = true;
	/* Paired with smp_load_acquire() in vfio_device_fops' checks */
	smp_store_release(&df->access_granted, true);
	return 0;
}

static int vfio_luo_take(struct liveupdate_file_op_args *args,
			 struct vfio_device *device,
			 const struct vfio_persist_ser *ser)
{
	struct vfio_device_file *df;
	struct iommufd_ctx *ictx;
	struct file *file;
	int rc;

	rc = liveupdate_session_retrieve(args, ser->iommufd_token,
					 vfio_luo_iommufd_compat, &file);
	if (rc)
		return rc;
	ictx = iommufd_ctx_from_file(file);
	fput(file);
	if (IS_ERR(ictx))
		return PTR_ERR(ictx);

	df = vfio_allocate_device_file(device);
	if (IS_ERR(df)) {
		rc = PTR_ERR(df);
		goto err_ictx;
	}
	/* As a cdev open makes it; its release puts this registration */
	if (!vfio_device_try_get_registration(device)) {
		kfree(df);
		rc = -ENODEV;
		goto err_ictx;
	}
	file = anon_inode_getfile_fmode("[vfio-device]", &vfio_device_fops, df,
					O_RDWR, FMODE_PREAD | FMODE_PWRITE);
	if (IS_ERR(file)) {
		vfio_device_put_registration(device);
		kfree(df);
		rc = PTR_ERR(file);
		goto err_ictx;
	}
	file->f_mapping = device->inode->i_mapping;

	rc = vfio_device_block_group(device);
	if (rc)
		goto err_file;
	mutex_lock(&device->dev_set->lock);
	df->iommufd = ictx;
	rc = vfio_luo_open(df, ser);
	if (rc)
		df->iommufd = NULL;
	mutex_unlock(&device->dev_set->lock);
	if (rc) {
		vfio_device_unblock_group(device);
		goto err_file;
	}
	args->file = file;
	return 0;

err_file:
	fput(file);
err_ictx:
	iommufd_ctx_put(ictx);
	return rc;
}

static int vfio_luo_retrieve(struct liveupdate_file_op_args *args)
{
	const struct vfio_persist_ser *ser = phys_to_virt(args->serialized_data);
	struct vfio_device *device;
	int rc = vfio_luo_check(ser);

	device = rc ? NULL : vfio_luo_find(ser);
	if (device) {
		rc = vfio_luo_take(args, device, ser);
		if (!rc)
			dev_info(device->dev, "retrieved: device %u on HWPT %u, not reset\n",
				 ser->dev_id, ser->hwpt_id);
		vfio_device_put_registration(device);
	} else if (!rc) {
		rc = -ENODEV;
	}
	if (rc)
		pr_err("%04x:%02x:%02x.%d [%04x:%04x]: not retrieved: %pe\n",
		       ser->segment, ser->bus, PCI_SLOT(ser->devfn),
		       PCI_FUNC(ser->devfn), ser->vendor, ser->device,
		       ERR_PTR(rc));
	return rc;
}

/*
 * Clear the bus mastering of a device nobody drives: no driver, or a VFIO
 * device nobody opened. With its translation @blocked just now, no owner
 * had attached a domain to it, so it is cleared whoever drives it.
 * Return: false if it was left to its owner.
 */
static bool vfio_luo_stop(struct pci_dev *pdev, bool blocked)
{
	struct vfio_device *device = vfio_device_get_from_dev(&pdev->dev);
	bool owned;

	if (!device) {
		owned = READ_ONCE(pdev->dev.driver);
		if (blocked || !owned)
			pci_clear_master(pdev);
		return blocked || !owned;
	}
	/* Under the lock an open takes: none slips in before the clear */
	mutex_lock(&device->dev_set->lock);
	owned = device->open_count;
	if (blocked || !owned)
		pci_clear_master(pdev);
	mutex_unlock(&device->dev_set->lock);
	vfio_device_put_registration(device);
	return blocked || !owned;
}

/*
 * The handed-over device nobody retrieved: its translation blocked, if its
 * IOMMU still had it, and no longer a bus master unless someone drives it
 * since (which replaced or blocked its translation). Its PCI address and
 * IDs must match the record.
 */
static void vfio_luo_release(const struct vfio_persist_ser *ser)
{
	struct pci_dev *pdev;
	bool blocked;

	pdev = pci_get_domain_bus_and_slot(ser->segment, ser->bus, ser->devfn);
	if (!pdev)
		return;
	if (pdev->vendor == ser->vendor && pdev->device == ser->device) {
		blocked = iommu_live_update_release_device(&pdev->dev);
		if (!vfio_luo_stop(pdev, blocked))
			pci_info(pdev, "handed-over DMA: not retrieved, driven by another owner\n");
		else
			pci_info(pdev, "handed-over DMA blocked: not retrieved (%s)\n",
				 blocked ? "translation torn down" :
				 "no handed-over translation left");
	}
	pci_dev_put(pdev);
}

static void vfio_luo_finish(struct liveupdate_file_op_args *args)
{
	struct vfio_persist_ser *ser = phys_to_virt(args->serialized_data);

	if (args->retrieve_status <= 0)
		vfio_luo_release(ser);
	kho_restore_free(ser);
}

static const struct liveupdate_file_ops vfio_luo_file_ops = {
	.can_preserve = vfio_luo_can_preserve,
	.preserve = vfio_luo_preserve,
	.unpreserve = vfio_luo_unpreserve,
	.freeze = vfio_luo_freeze,
	.unfreeze = vfio_luo_unfreeze,
	.retrieve = vfio_luo_retrieve,
	.finish = vfio_luo_finish,
	.owner = THIS_MODULE,
	.retrieve_retry = true,
};

static struct liveupdate_file_handler vfio_luo_handler = {
	.ops = &vfio_luo_file_ops,
	.compatible = VFIO_PERSIST_LUO_COMPATIBLE,
};

/**
 * vfio_luo_change_allowed - Whether a device's iommufd attachment may change
 * @device: The device, with its dev_set->lock held
 *
 * Return: 0, or -EBUSY while the device is preserved for a live update.
 */
int vfio_luo_change_allowed(struct vfio_device *device)
{
	lockdep_assert_held(&device->dev_set->lock);
	return device->luo_preserved ? -EBUSY : 0;
}

/**
 * vfio_luo_init - Register the live update handler of VFIO device cdevs
 *
 * A kernel without live update has nothing to register; that is no error.
 */
void vfio_luo_init(void)
{
	int rc = liveupdate_register_file_handler(&vfio_luo_handler);

	if (rc && rc != -EOPNOTSUPP)
		pr_err("live update handler not registered: %pe\n", ERR_PTR(rc));
}

/**
 * vfio_luo_exit - Unregister the live update handler of VFIO device cdevs
 */
void vfio_luo_exit(void)
{
	liveupdate_unregister_file_handler(&vfio_luo_handler);
}
