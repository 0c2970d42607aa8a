// SPDX-License-Identifier: GPL-2.0
/*
 * Copyright (c) 2026 persistmem developers
 */

/**
 * DOC: Persistent paging HWPTs
 *
 * IOMMU_HWPT_ALLOC_PERSIST asks for a paging HWPT whose page table lives in
 * the persist_alloc pools (drivers/iommu/iommu-persist.c), the first thing a
 * live update of the host needs to keep a device's DMA translated while the
 * kernel is replaced. The IOMMU driver opts in by attaching a table arena to
 * the generic page table of the domain it allocates for the flag; iommufd
 * checks the result, so a driver that lets the flag through without an arena
 * cannot hand out a domain that would not survive.
 *
 * Persistence describes where the tables are, nothing else: a persistent
 * HWPT is mapped, unmapped, attached and destroyed as any paging HWPT.
 */

#include <linux/generic_pt/iommu.h>
#include <linux/iommu.h>
#include <uapi/linux/iommufd.h>

#include "../iommu-persist.h"
#include "iommufd_private.h"

/**
 * iommufd_hwpt_persist_check_flags - Refuse what cannot be persistent
 * @flags: IOMMU_HWPT_ALLOC_* of a paging HWPT allocation
 *
 * A nesting parent would need its nested domains and vIOMMU preserved too,
 * and a fault-capable HWPT its fault queue: neither is.
 *
 * Return: 0, or -EOPNOTSUPP.
 */
int iommufd_hwpt_persist_check_flags(u32 flags)
{
	if (!(flags & IOMMU_HWPT_ALLOC_PERSIST))
		return 0;
	if (flags & (IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_FAULT_ID_VALID))
		return -EOPNOTSUPP;
	return 0;
}

/**
 * iommufd_hwpt_persist_check_domain - Check a driver's domain for the flag
 * @domain: Domain the driver allocated
 * @flags: IOMMU_HWPT_ALLOC_* it was allocated with
 *
 * Return: 0, or -EOPNOTSUPP if IOMMU_HWPT_ALLOC_PERSIST was asked for and
 * @domain's tables do not come from a persistent arena.
 */
int iommufd_hwpt_persist_check_domain(struct iommu_domain *domain, u32 flags)
{
	if (!(flags & IOMMU_HWPT_ALLOC_PERSIST))
		return 0;
	if (!iommufd_hwpt_domain_is_persistent(domain))
		return -EOPNOTSUPP;
	return 0;
}

/**
 * iommufd_hwpt_domain_is_persistent - Whether a domain's tables are persistent
 * @domain: An iommu domain
 *
 * Return: true if @domain is on the generic page table and takes its tables
 * from a persistent arena.
 */
bool iommufd_hwpt_domain_is_persistent(struct iommu_domain *domain)
{
	struct pt_iommu *iommu_table = iommupt_from_domain(domain);

	return iommu_table && iommu_persist_tables_of(iommu_table);
}
