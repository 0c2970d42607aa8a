/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Live Update ABI of persistent guest_memfd (GUEST_MEMFD_FLAG_PERSIST).
 */
#ifndef _LINUX_KHO_ABI_GUEST_MEMFD_PERSIST_H
#define _LINUX_KHO_ABI_GUEST_MEMFD_PERSIST_H

#include <linux/types.h>
#include <linux/kho/abi/kexec_handover.h>

/**
 * DOC: guest_memfd persist KHO ABI
 *
 * A guest_memfd created with GUEST_MEMFD_FLAG_PERSIST is preserved by the
 * Live Update Orchestrator file handler registered under
 * ``GUEST_MEMFD_PERSIST_LUO_COMPATIBLE``. The handler's serialized data is
 * the physical address of one ``struct guest_memfd_persist_ser``, allocated
 * with kho_alloc_preserve(). It describes the file and points to an array
 * of ``nr_extents`` ``struct guest_memfd_persist_extent_ser``, preserved as
 * KHO vmalloc memory: one record per run of granules that follow each
 * other both in the file and in memory, not per granule, not per page.
 *
 * The granules themselves are persist_alloc extents, handed over by
 * persist_alloc under the owner key ``GUEST_MEMFD_PERSIST_OWNER(phys)``,
 * where ``phys`` is the physical address of the ``guest_memfd_persist_ser``:
 * one file cannot claim the granules of another.
 *
 * This interface is a contract. Any modification to the structure layout
 * constitutes a breaking change. Such changes require incrementing the
 * version number in the GUEST_MEMFD_PERSIST_LUO_COMPATIBLE string.
 *
 * Version 2: a record describes ``nr`` granules instead of one, and grew
 * from 16 to 24 bytes.
 */

/* The compatible string of the LUO file handler. */
#define GUEST_MEMFD_PERSIST_LUO_COMPATIBLE	"guest-memfd-persist-v2"

/* persist_alloc owner key of the granules of one file: "gmem" << 32 | ... */
#define GUEST_MEMFD_PERSIST_OWNER(phys)	(0x676d656d00000000ULL ^ (u64)(phys))

/**
 * struct guest_memfd_persist_extent_ser - a run of granules of the file
 * @pfn:   page frame number of the first granule, aligned to its size
 * @order: page order of the granules: 0, 9 or 18; the file's granule order
 * @index: page offset of the first granule in the file, aligned to its size
 * @nr:    number of granules, at least one; granule k of the run is at page
 *         frame @pfn + (k << @order) and at page offset @index + (k << @order)
 */
struct guest_memfd_persist_extent_ser {
	u64 pfn:52;
	u64 order:12;
	u64 index;
	u64 nr;
} __packed;

/**
 * struct guest_memfd_persist_ser - a preserved persistent guest_memfd
 * @size:          size of the file in bytes, a multiple of the granule
 * @flags:         GUEST_MEMFD_FLAG_* flags it was created with
 * @nr_extents:    number of entries in @extents
 * @extents:       KHO vmalloc descriptor of the array of
 *                 struct guest_memfd_persist_extent_ser, sorted by index,
 *                 not overlapping;
 *                 empty when @nr_extents is zero
 * @persist_flags: GUEST_MEMFD_PERSIST_* attributes it was created with
 * @order:         page order of its granule: 0, 9 or 18
 * @vm_type:       type of the VM that created it; only a VM of that type
 *                 may link it after retrieval
 */
struct guest_memfd_persist_ser {
	u64 size;
	u64 flags;
	u64 nr_extents;
	struct kho_vmalloc extents;
	u32 persist_flags;
	u16 order;
	u16 vm_type;
} __packed;

#endif /* _LINUX_KHO_ABI_GUEST_MEMFD_PERSIST_H */
