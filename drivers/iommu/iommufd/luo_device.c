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
