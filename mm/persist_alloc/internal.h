/* SPDX-License-Identifier: GPL-2.0 */
/*
 * persist_alloc internals shared by its files.
 */
#ifndef _MM_PERSIST_ALLOC_INTERNAL_H
#define _MM_PERSIST_ALLOC_INTERNAL_H

#include <linux/fault-inject.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/numa.h>
#include <linux/persist_alloc.h>
#include <linux/sched.h>
#include <linux/sizes.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/xarray.h>

#define PERSIST_BLOCK_SIZE	SZ_1G
#define PERSIST_CHUNK_SIZE	SZ_2M
#define PERSIST_BLOCK_PAGES	(PERSIST_BLOCK_SIZE >> PAGE_SHIFT)
#define PERSIST_CHUNK_PAGES	(PERSIST_CHUNK_SIZE >> PAGE_SHIFT)
#define PERSIST_BLOCK_CHUNKS	(PERSIST_BLOCK_SIZE / PERSIST_CHUNK_SIZE)
/* Most blocks a handover carries, the sender's and the receiver's limit. */
#define PERSIST_HANDOVER_BLOCKS_MAX	4096
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
 * @handed_over: adopted from the previous kernel's handover
 * @hvo_1g:      handed over as one 1 GiB HVO extent (pre-HVO'd at boot)
 * @handed_free: handed over as a free 1 GiB HVO folio: no extent lies in it
 * @hvo_kept:    free, kept whole as an optimized 1 GiB folio (hvo_keep.c)
 * @kept_link:   entry in the pool's @hvo_kept list while @hvo_kept
 * @ser_idx:     its entry in the outgoing handover
 * @chunk_state: per 2 MiB chunk, an enum persist_chunk_state
 * @chunk_used:  per split chunk, allocated 4 KiB pages
 * @pages:       one bit per allocated 4 KiB page of split chunks
 * @dirty:       per 2 MiB chunk: its free memory may hold data of a
 *               previous kernel, and is out of the direct map; it is
 *               zeroed before it is handed out (see "Scrubbing")
 * @free_chunks: per 2 MiB chunk: free
 * @open_chunks: per 2 MiB chunk: split, with a free 4 KiB page
 * @listed:      on its pool's lists: in the pool and not being released
 * @avail:       entry in the pool's @unused or @chunk_avail list, if on one
 * @avail_list:  which of the two that is, or NULL
 * @page_link:   entry in the pool's @page_avail list, if on it
 */
struct persist_block {
	phys_addr_t base;
	struct persist_pool *pool;
	struct list_head list;
	unsigned long nr_free;
	bool whole;
	bool boot;
	bool handed_over;
	bool hvo_1g;
	bool handed_free;
	bool hvo_kept;
	struct list_head kept_link;
	unsigned int ser_idx;
	u8 chunk_state[PERSIST_BLOCK_CHUNKS];
	u16 chunk_used[PERSIST_BLOCK_CHUNKS];
	unsigned long *pages;
	DECLARE_BITMAP(dirty, PERSIST_BLOCK_CHUNKS);
	DECLARE_BITMAP(free_chunks, PERSIST_BLOCK_CHUNKS);
	DECLARE_BITMAP(open_chunks, PERSIST_BLOCK_CHUNKS);
	bool listed;
	struct list_head avail;
	struct list_head *avail_list;
	struct list_head page_link;
};

/**
 * struct persist_scrub - what of a granule just taken must be scrubbed
 * @chunks: dirty chunks of a 2 MiB or 1 GiB granule (their bits in the
 *          block are cleared when the granule is taken)
 * @page:   a 4 KiB granule from a dirty chunk (the chunk stays dirty)
 */
struct persist_scrub {
	DECLARE_BITMAP(chunks, PERSIST_BLOCK_CHUNKS);
	bool page;
};

/**
 * struct persist_pool - the pool of one NUMA node
 * @nid:       the node
 * @lock:      protects @blocks, the blocks' bookkeeping and @allocated
 * @blocks:    its 1 GiB blocks
 * @unused:    blocks of @blocks with nothing allocated
 * @chunk_avail: blocks in use with a free 2 MiB chunk
 * @page_avail: blocks with a split chunk that has a free 4 KiB page
 * @hvo_kept:  free blocks kept as optimized 1 GiB folios (hvo_keep.c)
 * @nr_hvo_kept: number of blocks on @hvo_kept
 * @nr_blocks: number of blocks
 * @allocated: allocated granules, per enum persist_granule
 * @no_direct_map_pages: allocated pages removed from the direct map
 * @vmemmap_saved: bytes of struct pages freed by HVO
 * @preserved_pages: allocated pages to be handed over at the next kexec
 * @pending_pages: handed-over pages not restored or claimed yet
 * @built_pages: of @pending_pages, those whose folio is built
 */
struct persist_pool {
	int nid;
	spinlock_t lock;	/* blocks, their bookkeeping, counters */
	struct list_head blocks;
	struct list_head unused;
	struct list_head chunk_avail;
	struct list_head page_avail;
	struct list_head hvo_kept;
	unsigned long nr_hvo_kept;
	unsigned long nr_blocks;
	unsigned long allocated[PERSIST_NR_GRANULES];
	unsigned long no_direct_map_pages;
	unsigned long vmemmap_saved;
	unsigned long preserved_pages;
	unsigned long pending_pages;
	unsigned long built_pages;
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
 * @claimed:     pending, and claimed by its owner (claim.c): not counted
 *               in the pool's pending pages any more; stays set once the
 *               owner restores it, until it is freed
 * @prehvo:      pending, and its vmemmap was optimized at boot
 * @restoring:   taken from pending by persist_alloc_restore(), its folio
 *               not built yet
 * @building:    pending, its folio being built by a worker (prebuild.c)
 * @built:       pending, its folio built: at boot, or before a failed
 *               release
 * @quarantined: held so that nobody uses its memory: it is never restored
 *               and never handed over
 * @ser_idx:     while preserved and the handover's entries not folded into
 *               runs, its entry in the outgoing handover
 */
struct persist_extent {
	unsigned long pfn;
	unsigned int order;
	unsigned long flags;
	struct persist_block *blk;
	u64 owner;
	bool preserved;
	bool pending;
	bool claimed;
	bool prehvo;
	bool restoring;
	bool building;
	bool built;
	bool quarantined;
	unsigned long ser_idx;
};

/*
 * What persist_alloc_hvo= made of a carved block's vmemmap: nothing; asked
 * for but impossible, so nothing either; asked for, not mapped yet; or
 * mapped optimized, so it starts as a kept 1 GiB HVO block.
 */
enum persist_boot_hvo {
	PERSIST_BOOT_PLAIN,
	PERSIST_BOOT_HVO_REFUSED,
	PERSIST_BOOT_HVO_ASKED,
	PERSIST_BOOT_HVO,
};

/**
 * struct persist_boot_block - a block carved at boot, before slab exists
 * @base: physical address
 * @nid:  node
 * @hvo:  what persist_alloc_hvo= made of its vmemmap (enum persist_boot_hvo)
 */
struct persist_boot_block {
	phys_addr_t base;
	int nid;
	u8 hvo;
};

struct persist_boot_block *persist_boot_blocks_get(unsigned int *nr);

/* memmap.c */
void persist_memmap_init_blocks(const struct persist_boot_block *blocks, unsigned int nr);

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
/* Serializes changes of an extent's state: free, preserve, restore, claim. */
extern struct mutex persist_state_lock;
extern struct xarray persist_blocks;
extern struct xarray persist_extents;
struct xarray *persist_extent_index(unsigned int order);
int persist_extent_insert(struct persist_extent *ext);
void persist_extent_erase(struct persist_extent *ext);
extern struct dentry *persist_debugfs_root;

/*
 * Fallible steps fail on request: /sys/kernel/debug/persist_alloc/
 * fail_persist_alloc, fail_persist_alloc= on the command line, or a
 * task's fail-nth, so that tests can fail each step in turn.
 */
extern struct fault_attr persist_fault_attr;

static inline bool persist_fault(void)
{
	return should_fail(&persist_fault_attr, 1);
}

/*
 * For the KUnit tests: fail the @nth fallible step of the calling task
 * from now on (0: none), as iommufd's fail_nth selftest does; and what is
 * left of that count.
 */
static inline void persist_fail_nth(unsigned int nth)
{
#ifdef CONFIG_FAULT_INJECTION
	WRITE_ONCE(current->fail_nth, nth);
#endif
}

static inline unsigned int persist_fail_nth_left(void)
{
#ifdef CONFIG_FAULT_INJECTION
	return READ_ONCE(current->fail_nth);
#else
	return 0;
#endif
}

int persist_parse_request(const char *param, const char *str, struct persist_request *req);
long persist_pool_grow(int nid, unsigned long nr);
long persist_pool_shrink(int nid, unsigned long nr);

struct folio *persist_granule_to_folio(unsigned long pfn, unsigned int order);
void persist_folio_to_granule(struct folio *folio);
void persist_account(struct persist_pool *pool, unsigned int order, unsigned long flags,
		     long sign);
void persist_account_locked(struct persist_pool *pool, unsigned int order,
			    unsigned long flags, long sign);
void persist_pool_put(struct persist_block *blk, unsigned long pfn, unsigned int order,
		      unsigned long flags);
void persist_account_state(struct persist_extent *ext, unsigned long *counter, long sign);
void persist_zero_pages(unsigned long pfn, unsigned long nr);
int persist_pool_add_block(int nid, phys_addr_t base, bool boot, bool kept);

/* memcg.c */
int persist_charge(struct folio *folio);
void persist_uncharge(struct folio *folio);

/* The test consumer can make kho.c write a damaged handover. */
enum {
	PERSIST_TEST_CORRUPT_VERSION = 1,
	PERSIST_TEST_CORRUPT_EXTENT,
	PERSIST_TEST_CORRUPT_RUN,
	PERSIST_TEST_CORRUPT_FREE,
};

extern int persist_kho_test_corrupt;

/* kho.c */
int persist_kho_block_added(struct persist_block *blk);
void persist_kho_block_removed(struct persist_block *blk);

struct persist_alloc_ser;
struct persist_alloc_block_ser;
struct persist_alloc_extent_ser;
bool persist_kho_frozen(void);
bool persist_kho_folded(void);
int persist_kho_add_hwpoison(unsigned long pfn);
void persist_kho_freeze(void);
void persist_kho_unfreeze(void);
const struct persist_alloc_ser *persist_kho_outgoing(const struct persist_alloc_extent_ser **ext);
/*
 * Order on the live update freeze chain: late, because other freeze
 * notifiers may still preserve folios; only the test consumer's comes after.
 */
#define PERSIST_KHO_FREEZE_PRIORITY	(INT_MIN + 1)

/* adopt.c: what is decided about each handed-over block and extent. */
enum persist_verdict {
	PERSIST_ADOPT,
	PERSIST_REFUSE_ALIGN,
	PERSIST_REFUSE_FLAGS,
	PERSIST_REFUSE_NODE,
	PERSIST_REFUSE_NOT_RAM,
	PERSIST_REFUSE_WRONG_NODE,
	PERSIST_REFUSE_SCRATCH,
	PERSIST_REFUSE_NOT_PRESERVED,
	PERSIST_REFUSE_DUPLICATE,
	PERSIST_REFUSE_TOO_MANY,
	PERSIST_REFUSE_ORDER,
	PERSIST_REFUSE_OUTSIDE,
	PERSIST_REFUSE_OVERLAP,
	PERSIST_REFUSE_HVO_BLOCK,
	PERSIST_REFUSE_NOMEM,
	PERSIST_REFUSE_VERSION,
	PERSIST_REFUSE_LENGTH,
	PERSIST_REFUSE_FREE_BLOCK,
};

/**
 * struct persist_adopt_env - facts about this kernel's memory
 * @block_node: the node of the one zone that holds all of the 1 GiB block
 *              at the address as RAM; -ENOENT if it is not all RAM,
 *              -EXDEV if it spans nodes or zones
 * @in_scratch: whether a range overlaps KHO scratch
 * @preserved:  whether KHO preserved exactly this (address, order) range
 */
struct persist_adopt_env {
	int (*block_node)(phys_addr_t base);
	bool (*in_scratch)(phys_addr_t base, phys_addr_t size);
	bool (*preserved)(phys_addr_t phys, unsigned int order);
};

const char *persist_verdict_str(enum persist_verdict v);
long persist_handover_nr_blocks(const struct persist_alloc_ser *ser, size_t size);
struct persist_alloc_ranges_ser;
long persist_ranges_nr(const struct persist_alloc_ranges_ser *r, size_t size);
enum persist_verdict persist_check_block(const struct persist_alloc_block_ser *b,
					 const struct persist_alloc_block_ser *prev,
					 unsigned long nr_prev,
					 const struct persist_adopt_env *env);
bool persist_block_scrubbable(const struct persist_alloc_block_ser *b,
			      const struct persist_adopt_env *env);
enum persist_verdict persist_check_extent(const struct persist_alloc_extent_ser *e);
unsigned long persist_handover_check_early(unsigned long *per_node);
phys_addr_t persist_handover_prehvo_block(int nid, unsigned long *n, bool *free);
unsigned long persist_kho_adopt(void);

/* received.c */
void persist_received_keep(struct persist_alloc_extent_ser *ext, unsigned long nr_ext,
			   u8 *ext_verdict, u32 *ext_at, const u8 *blk_verdict,
			   unsigned long nr_blk);
void persist_handover_scrub_wait(void);

unsigned long persist_hvo_saved(unsigned int order);
int persist_hvo_optimize(struct folio *folio);
int persist_hvo_restore(struct folio *folio);
int persist_hvo_restore_frozen(struct folio *folio);
void persist_prep_tail(struct page *head, unsigned long i, unsigned int order);
struct folio *persist_prehvo_folio(unsigned long pfn, unsigned int order);
struct folio *persist_hvo_build_folio(unsigned long pfn, unsigned int order);

/* hvo_keep.c */
/* Whether a freed folio of @order and @flags is kept optimized (hvo_keep.c). */
static inline bool persist_hvo_keeps(unsigned int order, unsigned long flags)
{
	return order == PERSIST_ORDER_1G && (flags & PERSIST_ALLOC_HVO);
}

/*
 * Whether @blk may hold data of the previous kernel (scrub.c): a 1 GiB
 * folio freed from it is not kept whole but goes back to its block, whose
 * next allocation scrubs it. (Only a block carved after a kexec, or
 * handed over as a free 1 GiB HVO folio, is ever kept dirty, from the
 * start; taking it scrubs it.)
 */
static inline bool persist_block_dirty(struct persist_block *blk)
{
	bool dirty;

	spin_lock(&blk->pool->lock);
	dirty = !bitmap_empty(blk->dirty, PERSIST_BLOCK_CHUNKS);
	spin_unlock(&blk->pool->lock);
	return dirty;
}

void persist_hvo_keep(struct persist_block *blk, struct folio *folio, unsigned long flags);
struct folio *persist_hvo_take_kept(struct persist_pool *pool, unsigned long flags,
				    struct persist_block **blkp, bool *zeroed);
bool persist_hvo_unkeep(struct persist_pool *pool);
void persist_hvo_prepare_free(phys_addr_t base, int nid);
void persist_hvo_keep_new(struct persist_block *blk);
unsigned long persist_hvo_kept_bytes(struct persist_pool *pool);

/* prebuild.c */
struct folio *persist_extent_build(struct persist_extent *ext);
unsigned long persist_prebuild_seq(void);
void persist_prebuild_wait(unsigned long seq);
void persist_prebuild_put(struct persist_extent *ext, struct folio *folio);
/* In persist_extents: a pending extent whose folio is still to be built. */
#define PERSIST_EXT_UNBUILT	XA_MARK_0

/**
 * struct persist_prebuild_stats - what a prebuild worker did
 * @built:  folios it built
 * @failed: builds that failed, left to their restore
 * @seen:   extents of its node it looked at: those adopted unbuilt, not
 *          every extent handed over
 */
struct persist_prebuild_stats {
	unsigned long built;
	unsigned long failed;
	unsigned long seen;
};

void persist_prebuild_mark(struct persist_extent *ext);
void persist_prebuild_node(int nid, struct persist_prebuild_stats *st);
void persist_prebuild_start(void);
#ifdef CONFIG_SPARSEMEM_VMEMMAP_PREINIT
bool persist_prehvo_adopt(unsigned long pfn, unsigned int order);
bool persist_prehvo_done(unsigned long pfn);
#else
static inline bool persist_prehvo_adopt(unsigned long pfn, unsigned int order)
{
	return false;
}

static inline bool persist_prehvo_done(unsigned long pfn)
{
	return false;
}
#endif

/* hwpoison.c */
bool persist_hwpoison_in(unsigned long pfn, unsigned long nr);
int persist_hwpoison_record(unsigned long pfn);
void persist_hwpoison_flush(void);
void persist_hwpoison_put(struct persist_block *blk, unsigned long pfn, unsigned int order);
int persist_hwpoison_adopt(struct persist_block *blk, unsigned long pfn);

int persist_direct_map_remove(struct folio *folio);
void persist_direct_map_restore(struct folio *folio);

int persist_block_init(struct persist_block *blk, phys_addr_t base);
void persist_block_destroy(struct persist_block *blk);
bool persist_block_unused(const struct persist_block *blk);
long persist_block_alloc(struct persist_block *blk, unsigned int order, bool split,
			 struct persist_scrub *scrub);
int persist_scrub(struct persist_block *blk, unsigned long idx, unsigned int order,
		  const struct persist_scrub *scrub);
void persist_scrub_undo(struct persist_block *blk, const struct persist_scrub *scrub);
int persist_scrub_block(struct persist_block *blk);
int persist_block_claim(struct persist_block *blk, unsigned long idx, unsigned int order);
int persist_block_free(struct persist_block *blk, unsigned long idx, unsigned int order);

/* avail.c */
void persist_block_relist(struct persist_block *blk);
void persist_block_list(struct persist_block *blk);
void persist_block_unlist(struct persist_block *blk);
struct persist_block *persist_pool_pick(struct persist_pool *pool, unsigned int order);

static inline enum persist_granule persist_order_granule(unsigned int order)
{
	return order == PERSIST_ORDER_1G ? PERSIST_GRANULE_1G :
	       order == PERSIST_ORDER_2M ? PERSIST_GRANULE_2M : PERSIST_GRANULE_4K;
}

#endif /* _MM_PERSIST_ALLOC_INTERNAL_H */
