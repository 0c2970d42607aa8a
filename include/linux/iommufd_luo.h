/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What a device driver preserving a device bound to iommufd across a live
 * update needs of iommufd. See drivers/iommu/iommufd/luo_device.c.
 */
#ifndef __LINUX_IOMMUFD_LUO_H
#define __LINUX_IOMMUFD_LUO_H

#include <linux/err.h>
#include <linux/errno.h>
#include <linux/types.h>

struct device;
struct iommufd_ctx;
struct iommufd_device;
struct liveupdate_file_op_args;

/**
 * struct iommufd_luo_device - A device binding as a live update records it
 * @iommufd_token: token of the iommufd in the caller's LUO session
 * @dev_id:        object ID of the device in the iommufd
 * @hwpt_id:       object ID of the persistent HWPT it is attached to
 */
struct iommufd_luo_device {
	u64 iommufd_token;
	u32 dev_id;
	u32 hwpt_id;
};

#if IS_ENABLED(CONFIG_IOMMU_PERSIST) && IS_ENABLED(CONFIG_IOMMUFD)
int iommufd_luo_device_check(struct iommufd_device *idev,
			     struct liveupdate_file_op_args *args,
			     struct iommufd_luo_device *out);
struct iommufd_device *iommufd_luo_device_bind(struct iommufd_ctx *ictx,
					       struct device *dev, u32 dev_id);
int iommufd_luo_device_attach(struct iommufd_device *idev, u32 hwpt_id);
#else
static inline int iommufd_luo_device_check(struct iommufd_device *idev,
					   struct liveupdate_file_op_args *args,
					   struct iommufd_luo_device *out)
{
	return -EOPNOTSUPP;
}

static inline struct iommufd_device *
iommufd_luo_device_bind(struct iommufd_ctx *ictx, struct device *dev,
			u32 dev_id)
{
	return ERR_PTR(-EOPNOTSUPP);
}

static inline int iommufd_luo_device_attach(struct iommufd_device *idev,
					    u32 hwpt_id)
{
	return -EOPNOTSUPP;
}
#endif

#endif /* __LINUX_IOMMUFD_LUO_H */
