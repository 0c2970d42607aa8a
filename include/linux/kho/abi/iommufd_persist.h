/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Live Update ABI of iommufd: the IOAS and persistent HWPTs of an iommufd.
 */
#ifndef _LINUX_KHO_ABI_IOMMUFD_PERSIST_H
#define _LINUX_KHO_ABI_IOMMUFD_PERSIST_H

#include <linux/types.h>
#include <linux/kho/abi/kexec_handover.h>

/**
 * DOC: iommufd persist KHO ABI
 *
 * An iommufd is preserved by the Live Update Orchestrator file handler
 * registered under ``IOMMUFD_PERSIST_LUO_COMPATIBLE``. The handler's
 * serialized data is the physical address of one
 * ``struct iommufd_persist_ser``, allocated with kho_alloc_preserve(). It
 * points to one array preserved as KHO vmalloc memory that holds, back to
 * back and in this order:
 *
 *   - ``nr_ioas`` ``struct iommufd_persist_ioas_ser``, by increasing ID;
 *   - ``nr_areas`` ``struct iommufd_persist_area_ser``, grouped by IOAS in
 *     the order of the IOAS array, by increasing IOVA within one IOAS;
 *   - ``nr_hwpts`` ``struct iommufd_persist_hwpt_ser``, by increasing ID;
 *   - ``nr_chunks`` ``struct iommufd_persist_chunk_ser``, grouped by HWPT
 *     in the order of the HWPT array.
 *
 * An area names the memory it maps by the token of a file preserved in the
 * same LUO session (a memfd or a persistent guest_memfd) and a byte offset
 * in it, never by physical address. A HWPT's page table is described by the
 * 2 MiB persist_alloc chunks of its arena, handed over by persist_alloc
 * under the owner key ``IOMMUFD_PERSIST_OWNER(phys)``, where ``phys`` is
 * the physical address of the ``iommufd_persist_ser``, and by its top
 * table and level.
 *
 * Object IDs are those of the preserving kernel; the retrieved iommufd
 * gives every object its old ID back.
 *
 * This interface is a contract. Any modification to the structure layout
 * constitutes a breaking change. Such changes require incrementing the
 * version number in the IOMMUFD_PERSIST_LUO_COMPATIBLE string.
 */

/* The compatible string of the LUO file handler. */
#define IOMMUFD_PERSIST_LUO_COMPATIBLE	"iommufd-persist-v1"

/* persist_alloc owner key of the table chunks of one iommufd: "iofd"... */
#define IOMMUFD_PERSIST_OWNER(phys)	(0x696f666400000000ULL ^ (u64)(phys))

/**
 * struct iommufd_persist_ioas_ser - one IOAS
 * @id:       its object ID
 * @nr_areas: number of its areas in the area array
 */
struct iommufd_persist_ioas_ser {
	u32 id;
	u32 nr_areas;
} __packed;

/**
 * struct iommufd_persist_area_ser - one mapping of an IOAS
 * @iova:   first IOVA, aligned to PAGE_SIZE
 * @length: length in bytes, a non-zero multiple of PAGE_SIZE
 * @token:  LUO token of the file mapped, in the same session
 * @start:  byte offset of @iova's memory in that file, aligned to PAGE_SIZE
 * @prot:   IOMMU_READ and IOMMU_WRITE (include/linux/iommu.h) of the mapping
 * @pad:    zero
 */
struct iommufd_persist_area_ser {
	u64 iova;
	u64 length;
	u64 token;
	u64 start;
	u32 prot;
	u32 pad;
} __packed;

/**
 * struct iommufd_persist_hwpt_ser - one persistent paging HWPT
 * @top:       physical address of its top table, in one of its chunks
 * @id:        its object ID
 * @ioas_id:   ID of the IOAS it maps
 * @level:     level of the top table, as generic_pt counts it
 * @nr_chunks: number of its chunks in the chunk array
 */
struct iommufd_persist_hwpt_ser {
	u64 top;
	u32 id;
	u32 ioas_id;
	u32 level;
	u32 nr_chunks;
} __packed;

/**
 * struct iommufd_persist_chunk_ser - one 2 MiB chunk of a HWPT's tables
 * @phys: physical address of the chunk, aligned to 2 MiB
 */
struct iommufd_persist_chunk_ser {
	u64 phys;
} __packed;

/**
 * struct iommufd_persist_ser - a preserved iommufd
 * @nr_ioas:   number of IOAS
 * @nr_areas:  number of areas, of all IOAS
 * @nr_hwpts:  number of persistent HWPTs
 * @nr_chunks: number of table chunks, of all HWPTs
 * @objects:   KHO vmalloc descriptor of the arrays described above; empty
 *             when all four counts are zero
 */
struct iommufd_persist_ser {
	u32 nr_ioas;
	u32 nr_areas;
	u32 nr_hwpts;
	u32 nr_chunks;
	struct kho_vmalloc objects;
} __packed;

#endif /* _LINUX_KHO_ABI_IOMMUFD_PERSIST_H */
