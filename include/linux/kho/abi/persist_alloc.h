/* SPDX-License-Identifier: GPL-2.0 */
/*
 * persist_alloc KHO ABI.
 */
#ifndef _LINUX_KHO_ABI_PERSIST_ALLOC_H
#define _LINUX_KHO_ABI_PERSIST_ALLOC_H

#include <linux/types.h>
#include <linux/kho/abi/kexec_handover.h>

/**
 * DOC: persist_alloc KHO ABI
 *
 * persist_alloc hands its pools and its preserved extents over to the next
 * kernel in a KHO subtree named ``PERSIST_ALLOC_KHO_NAME``. The subtree blob
 * is one ``struct persist_alloc_ser``, followed by ``nr_blocks`` entries of
 * ``struct persist_alloc_block_ser``. The extents are a separate array of
 * ``nr_extents`` ``struct persist_alloc_extent_ser``, preserved as KHO
 * vmalloc memory and described by ``extents``. An entry is a run: granules
 * of one order, one owner and one set of attributes that follow each other
 * in memory, inside one block.
 *
 * Every block is also preserved with KHO as one 1 GiB range, so the next
 * kernel keeps the whole pool out of its early allocations and out of the
 * buddy allocator whether or not it understands this ABI; one that refuses
 * the data keeps the memory unused.
 *
 * Version 2: the sender no longer zeroes anything at kexec. The receiver
 * must treat every part of a block that is not a listed extent as holding
 * the sender's data, and scrub it before any reuse.
 * Version 3: entries flagged PERSIST_ALLOC_SER_HWPOISON list failed pages.
 * A version 2 receiver would refuse them one by one and so reuse the
 * pages; it refuses a version 3 handover as a whole instead.
 *
 * Version 4: an extent entry describes ``nr`` granules instead of one, and
 * its order and flags shrank to 16 bits to make room for the count. A
 * version 3 receiver would read the count as an order. Version 4 later
 * gained the block flag ``PERSIST_ALLOC_BLOCK_SER_HVO_FREE``: a receiver
 * that does not know it refuses such a block alone, zeroes it and gives
 * it to its page allocator. Its pool is smaller by that block, and no
 * data is lost, since no extent lies in it.
 *
 * This interface is a contract. Any modification to the structure layout
 * constitutes a breaking change. Such changes require incrementing the
 * version number in the PERSIST_ALLOC_KHO_COMPATIBLE string.
 */

/* The compatibility string, stored in struct persist_alloc_ser. */
#define PERSIST_ALLOC_KHO_COMPATIBLE	"persist-alloc-v4"
/* Name of the KHO subtree. */
#define PERSIST_ALLOC_KHO_NAME		"persist-alloc"

/* Extent attributes, as the PERSIST_ALLOC_* allocation flags. */
#define PERSIST_ALLOC_SER_NO_DIRECT_MAP	BIT(0)
#define PERSIST_ALLOC_SER_HVO		BIT(1)
#define PERSIST_ALLOC_SER_FLAGS		(PERSIST_ALLOC_SER_NO_DIRECT_MAP | \
					 PERSIST_ALLOC_SER_HVO)
/*
 * Not an extent but a 4 KiB page that had a memory failure (order 0, no
 * other flag, owner 0, a run of one). It may lie inside a listed extent;
 * the receiver must never hand it out, and marks the folio restored
 * around it.
 */
#define PERSIST_ALLOC_SER_HWPOISON	BIT(2)

/*
 * The block is one preserved 1 GiB extent with HVO: the next kernel maps
 * its struct pages optimized from the start ("pre-HVO"), before they are
 * initialized, so that restoring it costs O(1) instead of O(pages).
 */
#define PERSIST_ALLOC_BLOCK_SER_HVO_1G	BIT(0)
/*
 * The block is free, kept whole as a 1 GiB HVO folio: no extent lies in it.
 * The next kernel may map its struct pages optimized from the start and
 * keep it so, for its first 1 GiB HVO allocation; it holds the sender's
 * data all the same. Set at the freeze, never together with
 * PERSIST_ALLOC_BLOCK_SER_HVO_1G. A receiver that does not know the flag
 * refuses the block, zeroes it and releases it.
 */
#define PERSIST_ALLOC_BLOCK_SER_HVO_FREE	BIT(1)
#define PERSIST_ALLOC_BLOCK_SER_FLAGS	(PERSIST_ALLOC_BLOCK_SER_HVO_1G | \
					 PERSIST_ALLOC_BLOCK_SER_HVO_FREE)

/**
 * struct persist_alloc_block_ser - one 1 GiB block of a pool
 * @phys:  physical address, 1 GiB aligned
 * @nid:   NUMA node of the pool
 * @flags: PERSIST_ALLOC_BLOCK_SER_* flags
 */
struct persist_alloc_block_ser {
	u64 phys;
	u32 nid;
	u32 flags;
} __packed;

/**
 * struct persist_alloc_extent_ser - a run of preserved granules
 * @phys:  physical address of the first granule, aligned to the granule
 *         size, inside a block
 * @owner: key chosen by the consumer that preserved them
 * @nr:    number of granules, at least one; the run ends inside the block
 *         of @phys, so a 1 GiB granule is always a run of one
 * @order: order of each granule: 0, 9 or 18
 * @flags: PERSIST_ALLOC_SER_* attributes of each granule
 */
struct persist_alloc_extent_ser {
	u64 phys;
	u64 owner;
	u32 nr;
	u16 order;
	u16 flags;
} __packed;

/**
 * struct persist_alloc_ser - head of the persist_alloc subtree blob
 * @compatible: PERSIST_ALLOC_KHO_COMPATIBLE, NUL padded
 * @nr_blocks:  number of struct persist_alloc_block_ser after this header
 * @nr_extents: number of entries in @extents
 * @extents:    KHO vmalloc descriptor of the struct persist_alloc_extent_ser
 *              array; empty when @nr_extents is zero
 */
struct persist_alloc_ser {
	char compatible[32];
	u64 nr_blocks;
	u64 nr_extents;
	struct kho_vmalloc extents;
} __packed;

/**
 * DOC: persist_alloc ranges
 * Next to the handover, a second KHO subtree named
 * ``PERSIST_ALLOC_KHO_RANGES_NAME`` lists where the blocks of the pools
 * are, one ``struct persist_alloc_ranges_ser``, in a layout that no
 * version of the handover changes. It is for a receiver that refuses the
 * handover, a version it does not know included: such a receiver still
 * learns which memory holds the sender's data, keeps it out of use and
 * zeroes it, so that the kernel after it cannot receive that data either.
 * The receiver checks every range as it checks a block (1 GiB aligned,
 * RAM of one zone, outside KHO scratch, preserved by KHO as one 1 GiB
 * range) and writes nothing else.
 */

/* Name of the KHO subtree of the ranges. */
#define PERSIST_ALLOC_KHO_RANGES_NAME	"persist-alloc-ranges"
/* Value of struct persist_alloc_ranges_ser.magic. */
#define PERSIST_ALLOC_RANGES_MAGIC	0x7065727369737431ULL	/* "persist1" */

/**
 * struct persist_alloc_ranges_ser - the blocks of the pools, for any receiver
 * @magic: PERSIST_ALLOC_RANGES_MAGIC
 * @nr:    number of entries in @phys
 * @phys:  physical addresses of the 1 GiB blocks, in no particular order
 */
struct persist_alloc_ranges_ser {
	u64 magic;
	u64 nr;
	u64 phys[];
} __packed;

#endif /* _LINUX_KHO_ABI_PERSIST_ALLOC_H */
