/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Live Update ABI of VFIO: a PCI device cdev bound to a preserved iommufd.
 */
#ifndef _LINUX_KHO_ABI_VFIO_PERSIST_H
#define _LINUX_KHO_ABI_VFIO_PERSIST_H

#include <linux/types.h>

/**
 * DOC: VFIO persist KHO ABI
 *
 * A VFIO device cdev is preserved by the Live Update Orchestrator file
 * handler registered under ``VFIO_PERSIST_LUO_COMPATIBLE``. The handler's
 * serialized data is the physical address of one
 * ``struct vfio_persist_ser``, allocated with kho_alloc_preserve().
 *
 * Only a PCI function alone in its IOMMU group, bound to an iommufd that
 * is preserved in the same LUO session and attached, without PASID, to a
 * persistent HWPT of it can be preserved. The record names the function
 * by its PCI address and IDs, and its binding by the token of the iommufd
 * in the session and the object IDs the preserving kernel gave the device
 * and the HWPT; the retrieved iommufd gives objects their old IDs back.
 *
 * This interface is a contract. Any modification to the structure layout
 * constitutes a breaking change. Such changes require incrementing the
 * version number in the VFIO_PERSIST_LUO_COMPATIBLE string.
 */

/* The compatible string of the LUO file handler. */
#define VFIO_PERSIST_LUO_COMPATIBLE	"vfio-cdev-persist-v1"

/**
 * struct vfio_persist_ser - one preserved VFIO PCI device cdev
 * @iommufd_token: token of the iommufd the device is bound to, in the same
 *                 session
 * @dev_id:        the device's object ID in that iommufd
 * @hwpt_id:       ID of the persistent HWPT the device is attached to
 * @segment:       PCI segment (domain) of the function
 * @bus:           its bus number
 * @devfn:         its device and function number
 * @vendor:        its vendor ID, as its config space reads
 * @device:        its device ID, as its config space reads
 * @reserved:      zero
 */
struct vfio_persist_ser {
	u64 iommufd_token;
	u32 dev_id;
	u32 hwpt_id;
	u32 segment;
	u8 bus;
	u8 devfn;
	u16 vendor;
	u16 device;
	u16 reserved[3];
} __packed;

#endif /* _LINUX_KHO_ABI_VFIO_PERSIST_H */
