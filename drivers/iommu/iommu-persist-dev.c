// SPDX-License-Identifier: GPL-2.0
/*
 * Copyright (c) 2026 persistmem developers
 */

/**
 * DOC: Devices whose DMA keeps running across a live update
 *
 * The driver that preserves a device for a live update (the VFIO cdev
 * handler) asks the device's IOMMU driver, when the session freezes, to
 * keep translating the device with its persistent domain across the kexec
 * (iommu_live_update_freeze_device()), and to forget it again if the kexec
 * is cancelled. In the next kernel, a device whose translation was handed
 * over and that nobody takes over is blocked before the memory its page
 * table maps is released (iommu_live_update_release_device()), and a
 * device whose handed-over table is adopted for another device is blocked
 * first (iommu_live_update_release_table()). An IOMMU driver opts in
 * through the live_update_* ops of struct iommu_ops.
 */

#include <linux/device.h>
#include <linux/iommu.h>

#include "iommu-priv.h"

/* The ops of @dev's IOMMU driver, or NULL if no IOMMU translates @dev */
static const struct iommu_ops *iommu_live_update_ops(struct device *dev)
{
	if (!dev->iommu || !dev->iommu->iommu_dev)
		return NULL;
	return dev_iommu_ops(dev);
}

/**
 * iommu_live_update_freeze_device - Keep a device's translation at the kexec
 * @dev: The device, alone in its group, attached to a persistent domain
 *
 * Context: Process context, while nothing can change @dev's attachment.
 * Return: 0; -EOPNOTSUPP if @dev's IOMMU driver cannot hand it over; the
 * driver's error otherwise.
 */
int iommu_live_update_freeze_device(struct device *dev)
{
	const struct iommu_ops *ops = iommu_live_update_ops(dev);
	struct iommu_domain *domain;

	if (!ops)
		return -ENODEV;
	if (!ops->live_update_freeze)
		return -EOPNOTSUPP;
	domain = iommu_get_domain_for_dev(dev);
	if (!domain)
		return -EINVAL;
	return ops->live_update_freeze(dev, domain);
}
EXPORT_SYMBOL_GPL(iommu_live_update_freeze_device);

/**
 * iommu_live_update_unfreeze_device - Undo iommu_live_update_freeze_device()
 * @dev: The device, after its live update was cancelled
 */
void iommu_live_update_unfreeze_device(struct device *dev)
{
	const struct iommu_ops *ops = dev_iommu_ops(dev);

	if (ops->live_update_unfreeze)
		ops->live_update_unfreeze(dev);
}
EXPORT_SYMBOL_GPL(iommu_live_update_unfreeze_device);

/**
 * iommu_live_update_release_device - Block a handed-over device nobody took
 * @dev: The device, in the kernel the live update booted
 *
 * Does nothing for a device whose translation was not handed over, or that
 * was attached to a domain of this kernel since.
 *
 * Return: true if @dev still had its handed-over translation, now blocked.
 */
bool iommu_live_update_release_device(struct device *dev)
{
	const struct iommu_ops *ops = iommu_live_update_ops(dev);

	return ops && ops->live_update_release && ops->live_update_release(dev);
}
EXPORT_SYMBOL_GPL(iommu_live_update_release_device);

/**
 * iommu_live_update_device_kept - Whether a device's translation was handed over
 * @dev: The device, in the kernel a live update booted
 *
 * Return: true while @dev still translates through the page table the
 * previous kernel handed over: no domain of this kernel was attached to it
 * and it was not blocked since. Its driver must keep it running, in D0.
 */
bool iommu_live_update_device_kept(struct device *dev)
{
	const struct iommu_ops *ops = iommu_live_update_ops(dev);

	return ops && ops->live_update_kept && ops->live_update_kept(dev);
}
EXPORT_SYMBOL_GPL(iommu_live_update_device_kept);

/**
 * iommu_live_update_release_table - Block the other users of a handed-over table
 * @dev: The device a domain adopting the table is allocated for
 * @top: Physical address of the table's top level
 *
 * A handed-over table adopted for @dev must not go on translating another
 * device's DMA: the domain that adopts it knows @dev only, and would free
 * the table or unmap from it without flushing that device's IOTLB. Every
 * other device still translating through the table at @top is blocked.
 *
 * Return: the number of devices blocked.
 */
int iommu_live_update_release_table(struct device *dev, phys_addr_t top)
{
	const struct iommu_ops *ops = iommu_live_update_ops(dev);

	return ops && ops->live_update_release_table ?
	       ops->live_update_release_table(dev, top) : 0;
}
EXPORT_SYMBOL_GPL(iommu_live_update_release_table);
