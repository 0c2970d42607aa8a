// SPDX-License-Identifier: GPL-2.0
/*
 * Copyright (c) 2026 persistmem developers
 */

/**
 * DOC: Devices of a preserved iommufd
 *
 * A device keeps doing DMA across a live update only through a page table
 * the next kernel is handed. The driver that preserves the device (the
 * VFIO cdev handler) asks iommufd, while the device's attachment cannot
 * change, whether its binding can be handed over and how to name it:
 * the device must be alone in its IOMMU group, its iommufd preserved in the
 * same LUO session, and the device attached without PASID to a persistent
 * paging HWPT of it and to nothing else. The answer names the binding by
 * the iommufd's token and the object IDs, which the retrieved iommufd
 * gives back.
 *
 * In the next kernel the device still translates through the handed-over
 * page table. The driver that retrieves it binds it to the retrieved
 * iommufd under its old ID without blocking it first
 * (iommufd_luo_device_bind()), and has its HWPT adopt that page table
 * under its old ID and the device attached there, with the iommufd's
 * changes held off in between (iommufd_luo_device_attach()): the IOMMU
 * driver takes the translation over as it is, and the device's DMA never
 * stops.
 */

#include <linux/iommu.h>
#include <linux/iommufd.h>
#include <linux/iommufd_luo.h>
#include <linux/liveupdate.h>

#include "iommufd_private.h"

static int iommufd_luo_count_dev(struct device *dev, void *data)
{
	(*(unsigned int *)data)++;
	return 0;
}

/**
 * iommufd_luo_device_check - Whether a bound device can be preserved
 * @idev: The device's binding
 * @args: The preserve call of the device's file, for its session
 * @out:  How the binding is named, on success
 *
 * The caller keeps @idev's attachment from changing until the device is
 * no longer preserved.
 *
 * Return: 0, or -EINVAL if the device shares its IOMMU group, its iommufd
 * is not in @args' session, or it is not attached to exactly one
 * persistent paging HWPT without PASID.
 */
int iommufd_luo_device_check(struct iommufd_device *idev,
			     struct liveupdate_file_op_args *args,
			     struct iommufd_luo_device *out)
{
	struct iommufd_group *igroup = idev->igroup;
	struct iommufd_hw_pagetable *hwpt;
	unsigned int nr = 0;
	int rc = 0;

	if (!igroup->group)
		return -EINVAL;
	iommu_group_for_each_dev(igroup->group, &nr, iommufd_luo_count_dev);
	if (nr != 1)
		return -EINVAL;
	if (liveupdate_session_token(args, idev->ictx->file,
				     &out->iommufd_token))
		return -EINVAL;

	mutex_lock(&igroup->lock);
	hwpt = iommufd_device_hwpt(idev);
	if (!hwpt || !hwpt_is_paging(hwpt) ||
	    !iommufd_hwpt_domain_is_persistent(hwpt->domain)) {
		rc = -EINVAL;
	} else {
		out->dev_id = idev->obj.id;
		out->hwpt_id = hwpt->obj.id;
	}
	mutex_unlock(&igroup->lock);
	return rc;
}
EXPORT_SYMBOL_NS_GPL(iommufd_luo_device_check, "IOMMUFD");

/**
 * iommufd_luo_device_bind - Bind a device a live update handed over
 * @ictx:   The retrieved iommufd the device was bound to
 * @dev:    The device, alone in its group, still translated through the
 *          page table the previous kernel handed over
 * @dev_id: The device's ID in the preserving kernel's iommufd
 *
 * As iommufd_device_bind(), except that the device keeps its translation
 * until it is attached, and gets @dev_id back.
 *
 * Return: the binding, or ERR_PTR: -EEXIST if @dev_id is in use in @ictx,
 * -EINVAL if @dev no longer has a handed-over translation (it was bound or
 * blocked since), or the errors of iommufd_device_bind().
 */
struct iommufd_device *iommufd_luo_device_bind(struct iommufd_ctx *ictx,
					       struct device *dev, u32 dev_id)
{
	return iommufd_device_bind_live_update(ictx, dev, dev_id);
}
EXPORT_SYMBOL_NS_GPL(iommufd_luo_device_bind, "IOMMUFD");

/* The persistent HWPT @hwpt_id, adopting its handed-over table if need be */
static int iommufd_luo_hwpt_restore(struct iommufd_device *idev, u32 hwpt_id)
{
	struct iommufd_ctx *ictx = idev->ictx;
	struct iommufd_hwpt_paging *hwpt_paging;
	struct iommufd_object *obj;
	struct iommufd_ioas *ioas;
	u32 ioas_id;
	int rc = 0;

	if (!iommufd_luo_pending_ioas(ictx, hwpt_id, &ioas_id)) {
		ioas = iommufd_get_ioas(ictx, ioas_id);
		if (IS_ERR(ioas))
			return PTR_ERR(ioas);
		mutex_lock(&ioas->mutex);
		hwpt_paging = iommufd_hwpt_paging_adopt(ioas, idev, hwpt_id);
		if (IS_ERR(hwpt_paging))
			rc = PTR_ERR(hwpt_paging);
		else
			iommufd_object_finalize(ictx, &hwpt_paging->common.obj);
		mutex_unlock(&ioas->mutex);
		iommufd_put_object(ictx, &ioas->obj);
		if (rc)
			return rc;
	}

	obj = iommufd_get_object(ictx, hwpt_id, IOMMUFD_OBJ_HWPT_PAGING);
	if (IS_ERR(obj))
		return -EINVAL;
	hwpt_paging = container_of(obj, struct iommufd_hwpt_paging, common.obj);
	if (!iommufd_hwpt_domain_is_persistent(hwpt_paging->common.domain))
		rc = -EINVAL;
	iommufd_put_object(ictx, obj);
	return rc;
}

/**
 * iommufd_luo_device_attach - Attach a handed-over device where it was
 * @idev:    The device, bound by iommufd_luo_device_bind()
 * @hwpt_id: ID of the persistent HWPT it was attached to
 *
 * If no HWPT adopted the page table of @hwpt_id yet, one is allocated for
 * @idev on the table's IOAS and adopts it under @hwpt_id, as
 * IOMMU_HWPT_DATA_PERSIST_ADOPT does; @idev is then attached to @hwpt_id.
 * Until it is, the domain knows nothing of the device, which still
 * translates through the table: the iommufd's ioctls that change objects
 * (an unmap, which would not flush the device's IOTLB, a destroy) wait.
 *
 * Return: 0 once @idev is attached to @hwpt_id, a persistent paging HWPT;
 * -EINVAL if @hwpt_id is another object or none; the errors of the
 * adoption and of iommufd_device_attach().
 */
int iommufd_luo_device_attach(struct iommufd_device *idev, u32 hwpt_id)
{
	struct iommufd_ctx *ictx = idev->ictx;
	u32 pt_id = hwpt_id;
	int rc;

	down_write(&ictx->luo_rwsem);
	rc = iommufd_luo_hwpt_restore(idev, hwpt_id);
	if (!rc)
		rc = iommufd_device_attach(idev, IOMMU_NO_PASID, &pt_id);
	up_write(&ictx->luo_rwsem);
	return rc;
}
EXPORT_SYMBOL_NS_GPL(iommufd_luo_device_attach, "IOMMUFD");
