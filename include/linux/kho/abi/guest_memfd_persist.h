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
 * with kho_alloc_preserve() of ``GUEST_MEMFD_PERSIST_SER_BYTES``. It
 * describes the file and holds ``nr_extents`` records
 * ``struct guest_memfd_persist_extent_ser``: one per run of granules that
 * follow each other both in the file and in memory, not per granule, not
 * per page. Up to ``GUEST_MEMFD_PERSIST_INLINE_RUNS`` records follow the
 * description in its own allocation, which starts a page; more are an
 * array preserved as KHO vmalloc memory.
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
 *
 * Version 3: the description is allocated ``GUEST_MEMFD_PERSIST_SER_BYTES``
 * long, and up to ``GUEST_MEMFD_PERSIST_INLINE_RUNS`` records are written
 * in it, after the description, instead of in a KHO vmalloc array.
 */

/* The compatible string of the LUO file handler. */
#define GUEST_MEMFD_PERSIST_LUO_COMPATIBLE	"guest-memfd-persist-v3"

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
 * @nr_extents:    number of runs of the file, sorted by index, not
 *                 overlapping: in @runs if there are at most
 *                 GUEST_MEMFD_PERSIST_INLINE_RUNS, in @extents otherwise
 * @extents:       KHO vmalloc descriptor of the array of @nr_extents
 *                 struct guest_memfd_persist_extent_ser when there are more
 *                 than GUEST_MEMFD_PERSIST_INLINE_RUNS; all zero otherwise,
 *                 and a reader refuses a description that breaks this
 * @persist_flags: GUEST_MEMFD_PERSIST_* attributes it was created with
 * @order:         page order of its granule: 0, 9 or 18
 * @vm_type:       type of the VM that created it; only a VM of that type
 *                 may link it after retrieval
 * @runs:          the runs, when there are at most
 *                 GUEST_MEMFD_PERSIST_INLINE_RUNS of them
 */
struct guest_memfd_persist_ser {
	u64 size;
	u64 flags;
	u64 nr_extents;
	struct kho_vmalloc extents;
	u32 persist_flags;
	u16 order;
	u16 vm_type;
	struct guest_memfd_persist_extent_ser runs[];
} __packed;

/* Bytes allocated for a description, its inline runs included: one page. */
#define GUEST_MEMFD_PERSIST_SER_BYTES	4096

/* Runs that fit in the description's allocation, after it. */
#define GUEST_MEMFD_PERSIST_INLINE_RUNS					\
	((GUEST_MEMFD_PERSIST_SER_BYTES - sizeof(struct guest_memfd_persist_ser)) / \
	 sizeof(struct guest_memfd_persist_extent_ser))

#endif /* _LINUX_KHO_ABI_GUEST_MEMFD_PERSIST_H */
