/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Live Update ABI of the Intel VT-d driver: the translation of devices
 * that keep doing DMA across a kexec.
 */
#ifndef _LINUX_KHO_ABI_INTEL_IOMMU_PERSIST_H
#define _LINUX_KHO_ABI_INTEL_IOMMU_PERSIST_H

#include <linux/bits.h>
#include <linux/types.h>

/**
 * DOC: Intel VT-d persist KHO ABI
 *
 * When a live update preserves devices with their DMA running, the VT-d
 * units that translate them stay enabled across the kexec: just before
 * the jump, each such unit is switched to a root table of its own that
 * holds the context entries of the preserved devices and nothing else,
 * allocated with kho_alloc_preserve(). Every other device of the unit is
 * blocked from then on. In legacy mode these are a root table and context
 * tables of 4 KiB. In scalable mode they are a scalable-mode root table,
 * the context tables of its lower and upper halves, and for each device a
 * PASID directory of 128 entries and one PASID table, both 4 KiB, whose
 * only entry is the one the context entry names for requests without a
 * PASID (RID_PASID 0), a second-stage entry.
 *
 * The KHO subtree ``INTEL_IOMMU_PERSIST_NAME`` is one 4 KiB
 * ``struct intel_iommu_persist_ser``: one record per preserved device,
 * naming its unit by register base address and root table, and the
 * translation by its fields: those of the context entry (legacy mode) or
 * of the PASID entry (scalable mode). The next kernel checks every field, that
 * the unit still uses that root table, and that the page table is in
 * persist_alloc memory, then writes the entries again into tables of its
 * own, keeps translation enabled, reserves the domain IDs, and frees the
 * handed-over root and context tables. A unit whose records are refused
 * keeps translation enabled with nothing mapped, so that a device still
 * doing DMA faults rather than writes untranslated.
 *
 * This interface is a contract. Any modification to the structure layout
 * constitutes a breaking change. Such changes require incrementing the
 * version number in the INTEL_IOMMU_PERSIST_NAME string.
 */

/* Name of the KHO subtree. */
#define INTEL_IOMMU_PERSIST_NAME	"intel-iommu-persist-v2"

/* The record is a scalable-mode one: its fields are a PASID entry's. */
#define INTEL_IOMMU_PERSIST_SM		BIT(0)
/* Scalable mode: the PASID entry has page-walk snoop (PWSNP) set. */
#define INTEL_IOMMU_PERSIST_PWSNP	BIT(1)

/**
 * struct intel_iommu_persist_dev_ser - one device whose translation is kept
 * @reg_base: physical address of its VT-d unit's registers
 * @root:     physical address of the root table the unit was left on
 * @pgtable:  second-stage page table the device translates through
 * @did:      domain ID of the entry
 * @bus:      the device's bus number (requester ID)
 * @devfn:    its device and function number
 * @aw:       address width field of the entry (AGAW)
 * @flags:    INTEL_IOMMU_PERSIST_SM and _PWSNP; no other bit
 * @reserved: zero
 */
struct intel_iommu_persist_dev_ser {
	u64 reg_base;
	u64 root;
	u64 pgtable;
	u16 did;
	u8 bus;
	u8 devfn;
	u8 aw;
	u8 flags;
	u8 reserved[2];
} __packed;

/**
 * struct intel_iommu_persist_ser - the subtree: every device kept
 * @nr_devs:  number of records in @devs
 * @reserved: zero
 * @devs:     the records
 */
struct intel_iommu_persist_ser {
	u32 nr_devs;
	u32 reserved;
	struct intel_iommu_persist_dev_ser devs[];
} __packed;

/* Records that fit in the 4 KiB subtree. */
#define INTEL_IOMMU_PERSIST_MAX_DEVS					\
	((4096 - sizeof(struct intel_iommu_persist_ser)) /		\
	 sizeof(struct intel_iommu_persist_dev_ser))

#endif /* _LINUX_KHO_ABI_INTEL_IOMMU_PERSIST_H */
