/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The handed-over page tables of a retrieved iommufd, between luo.c, which
 * restores them, and luo_adopt.c, which gives them to their HWPTs.
 */
#ifndef __IOMMUFD_LUO_H
#define __IOMMUFD_LUO_H

#include <linux/types.h>

struct iommufd_luo_incoming;
struct iommufd_persist_chunk_ser;
struct iommufd_persist_hwpt_ser;

struct iommufd_luo_incoming *
iommufd_luo_tables_restore(const struct iommufd_persist_hwpt_ser *hwpts,
			   u32 nr_hwpts,
			   const struct iommufd_persist_chunk_ser *chunks,
			   u64 owner);
void iommufd_luo_tables_unrestore(struct iommufd_luo_incoming *in, u64 owner);
bool iommufd_luo_tables_pending(struct iommufd_luo_incoming *in);

#endif /* __IOMMUFD_LUO_H */
