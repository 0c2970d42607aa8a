/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Page tables of persistent IOMMU domains, from persist_alloc.
 *
 * See drivers/iommu/iommu-persist.c.
 */
#ifndef __IOMMU_PERSIST_H
#define __IOMMU_PERSIST_H

#include <linux/err.h>
#include <linux/generic_pt/iommu.h>

struct iommu_persist_tables;

#ifdef CONFIG_IOMMU_PERSIST

int iommu_persist_tables_attach(struct pt_iommu *iommu_table);
void iommu_persist_tables_detach(struct pt_iommu *iommu_table);
struct iommu_persist_tables *
iommu_persist_tables_of(struct pt_iommu *iommu_table);

#else /* !CONFIG_IOMMU_PERSIST */

static inline int iommu_persist_tables_attach(struct pt_iommu *iommu_table)
{
	return -EOPNOTSUPP;
}

static inline void iommu_persist_tables_detach(struct pt_iommu *iommu_table)
{
}

static inline struct iommu_persist_tables *
iommu_persist_tables_of(struct pt_iommu *iommu_table)
{
	return NULL;
}

#endif /* CONFIG_IOMMU_PERSIST */

#endif /* __IOMMU_PERSIST_H */
