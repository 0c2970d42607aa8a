/* SPDX-License-Identifier: GPL-2.0 */
/*
 * persist_alloc internals shared by its files.
 */
#ifndef _MM_PERSIST_ALLOC_INTERNAL_H
#define _MM_PERSIST_ALLOC_INTERNAL_H

#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/numa.h>
#include <linux/persist_alloc.h>
#include <linux/sizes.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/xarray.h>

#define PERSIST_BLOCK_SIZE	SZ_1G
#define PERSIST_CHUNK_SIZE	SZ_2M
#define PERSIST_BLOCK_PAGES	(PERSIST_BLOCK_SIZE >> PAGE_SHIFT)
#define PERSIST_CHUNK_PAGES	(PERSIST_CHUNK_SIZE >> PAGE_SHIFT)
#define PERSIST_BLOCK_CHUNKS	(PERSIST_BLOCK_SIZE / PERSIST_CHUNK_SIZE)
/* Most blocks one grow or shrink request may ask for. */
#define PERSIST_RESIZE_MAX	4096

enum persist_chunk_state {
	PERSIST_CHUNK_FREE,
	PERSIST_CHUNK_WHOLE,
	PERSIST_CHUNK_SPLIT,
};

/* Granule sizes, as indices into per-granule counters. */
enum persist_granule {
	PERSIST_GRANULE_4K,
	PERSIST_GRANULE_2M,
	PERSIST_GRANULE_1G,
	PERSIST_NR_GRANULES,
};

struct persist_pool;

/**
 * struct persist_block - one 1 GiB block of a pool
 * @base:        physical address, 1 GiB aligned
 * @pool:        the pool it belongs to
 * @list:        entry in the pool's block list
 * @nr_free:     free 4 KiB pages in the block
 * @whole:       the block is one allocated 1 GiB granule
 * @boot:        carved from memblock at boot (else grown from buddy)
 * @chunk_state: per 2 MiB chunk, an enum persist_chunk_state
 * @chunk_used:  per split chunk, allocated 4 KiB pages
 * @pages:       one bit per allocated 4 KiB page of split chunks
 */
struct persist_block {
	phys_addr_t base;
	struct persist_pool *pool;
	struct list_head list;
	unsigned long nr_free;
	bool whole;
	bool boot;
	u8 chunk_state[PERSIST_BLOCK_CHUNKS];
	u16 chunk_used[PERSIST_BLOCK_CHUNKS];
	unsigned long *pages;
};

/**
 * struct persist_pool - the pool of one NUMA node
 * @nid:       the node
 * @lock:      protects @blocks, the blocks' bookkeeping and @allocated
 * @blocks:    its 1 GiB blocks
 * @nr_blocks: number of blocks
 * @allocated: allocated granules, per enum persist_granule
 * @no_direct_map_pages: allocated pages removed from the direct map
 * @vmemmap_saved: bytes of struct pages freed by HVO
 * @preserved_pages: allocated pages to be handed over at the next kexec
 * @pending_pages: handed-over pages not restored yet
 */
struct persist_pool {
	int nid;
	spinlock_t lock;	/* blocks, their bookkeeping, counters */
	struct list_head blocks;
	unsigned long nr_blocks;
	unsigned long allocated[PERSIST_NR_GRANULES];
	unsigned long no_direct_map_pages;
	unsigned long vmemmap_saved;
	unsigned long preserved_pages;
	unsigned long pending_pages;
};

/**
 * struct persist_extent - one allocated granule
 * @pfn:         first page frame
 * @order:       PERSIST_ORDER_*
 * @flags:       PERSIST_ALLOC_* it was allocated with
 * @blk:         the block it lives in
 * @owner:       key of the consumer that preserved it
 * @preserved:   to be handed over at the next kexec
 * @pending:     handed over by the previous kernel, not restored yet
 * @handed_over: came from the previous kernel: zeroed when freed
 * @prehvo:      pending, and its vmemmap was optimized at boot
 */
struct persist_extent {
	unsigned long pfn;
	unsigned int order;
	unsigned long flags;
	struct persist_block *blk;
	u64 owner;
	bool preserved;
	bool pending;
	bool handed_over;
	bool prehvo;
};

/**
 * struct persist_request - what persist_alloc= asks for
 * @spread_gib: GiB to spread over all nodes
 * @node_gib:   GiB per node
 */
struct persist_request {
	unsigned long spread_gib;
	unsigned long node_gib[MAX_NUMNODES];
};

extern struct persist_pool *persist_pools[MAX_NUMNODES];
extern struct mutex persist_resize_lock;
/* Serializes preservation state changes: preserve, unpreserve, free. */
extern struct mutex persist_kho_lock;
extern struct xarray persist_blocks;
extern struct xarray persist_extents;
extern struct dentry *persist_debugfs_root;

int persist_parse_request(const char *str, struct persist_request *req);
long persist_pool_grow(int nid, unsigned long nr);
long persist_pool_shrink(int nid, unsigned long nr);

struct folio *persist_granule_to_folio(unsigned long pfn, unsigned int order);
void persist_folio_to_granule(struct folio *folio);
void persist_account(struct persist_pool *pool, unsigned int order, unsigned long flags,
		     long sign);
void persist_account_state(struct persist_extent *ext, unsigned long *counter, long sign);
void persist_zero_pages(unsigned long pfn, unsigned long nr);
int persist_pool_add_block(int nid, phys_addr_t base, bool boot);

/* The test consumer can make kho.c write a damaged handover. */
enum {
	PERSIST_TEST_CORRUPT_VERSION = 1,
	PERSIST_TEST_CORRUPT_EXTENT,
};

extern int persist_kho_test_corrupt;

/* kho.c */
int persist_kho_adopt(void);
int persist_kho_block_added(struct persist_block *blk);
void persist_kho_block_removed(struct persist_block *blk);

struct persist_alloc_ser;
struct persist_alloc_extent_ser;
int persist_kho_check(const struct persist_alloc_ser *ser, size_t size,
		      const struct persist_alloc_extent_ser *ext);
int persist_kho_fill(struct persist_alloc_ser *ser, size_t size,
		     struct persist_alloc_extent_ser *ext, unsigned long ext_cap);

unsigned long persist_hvo_saved(unsigned int order);
int persist_hvo_optimize(struct folio *folio);
int persist_hvo_restore(struct folio *folio);
struct folio *persist_prehvo_folio(unsigned long pfn, unsigned int order);
struct folio *persist_hvo_build_folio(unsigned long pfn, unsigned int order);
#ifdef CONFIG_SPARSEMEM_VMEMMAP_PREINIT
bool persist_prehvo_adopt(unsigned long pfn, unsigned int order);
#else
static inline bool persist_prehvo_adopt(unsigned long pfn, unsigned int order)
{
	return false;
}
#endif

int persist_direct_map_remove(struct folio *folio);
void persist_direct_map_restore(struct folio *folio);

int persist_block_init(struct persist_block *blk, phys_addr_t base);
void persist_block_destroy(struct persist_block *blk);
bool persist_block_unused(const struct persist_block *blk);
long persist_block_alloc(struct persist_block *blk, unsigned int order, bool split);
int persist_block_claim(struct persist_block *blk, unsigned long idx, unsigned int order);
int persist_block_free(struct persist_block *blk, unsigned long idx, unsigned int order);

static inline enum persist_granule persist_order_granule(unsigned int order)
{
	return order == PERSIST_ORDER_1G ? PERSIST_GRANULE_1G :
	       order == PERSIST_ORDER_2M ? PERSIST_GRANULE_2M : PERSIST_GRANULE_4K;
}

#endif /* _MM_PERSIST_ALLOC_INTERNAL_H */
