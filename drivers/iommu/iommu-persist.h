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

struct folio;
struct iommu_persist_tables;

/*
 * Whether a translation of a handed-over page table may be there, and with
 * which IOMMU_READ and IOMMU_WRITE: see struct pt_iommu_adopt_check.
 */
typedef int (*iommu_persist_leaf_fn)(void *arg, dma_addr_t iova,
				     phys_addr_t pa, unsigned int size_lg2,
				     unsigned int *prot);

#ifdef CONFIG_IOMMU_PERSIST

int iommu_persist_tables_attach(struct pt_iommu *iommu_table);
void iommu_persist_tables_detach(struct pt_iommu *iommu_table);
struct iommu_persist_tables *
iommu_persist_tables_of(struct pt_iommu *iommu_table);
int iommu_persist_tables_describe(struct pt_iommu *iommu_table,
				  struct folio **folios, unsigned int max,
				  phys_addr_t *top, unsigned int *level);
int iommu_persist_tables_adopt(struct pt_iommu *iommu_table,
			       struct folio **folios, unsigned int nr,
			       phys_addr_t top, unsigned int level,
			       iommu_persist_leaf_fn leaf, void *arg);

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

static inline int iommu_persist_tables_describe(struct pt_iommu *iommu_table,
						struct folio **folios,
						unsigned int max,
						phys_addr_t *top,
						unsigned int *level)
{
	return -EOPNOTSUPP;
}

static inline int iommu_persist_tables_adopt(struct pt_iommu *iommu_table,
					     struct folio **folios,
					     unsigned int nr, phys_addr_t top,
					     unsigned int level,
					     iommu_persist_leaf_fn leaf,
					     void *arg)
{
	return -EOPNOTSUPP;
}

#endif /* CONFIG_IOMMU_PERSIST */

#endif /* __IOMMU_PERSIST_H */
