// SPDX-License-Identifier: GPL-2.0
/*
 * Copyright (c) 2026 persistmem developers
 */

/**
 * DOC: Persistent IOMMU page tables
 *
 * A persistent paging domain (iommufd's IOMMU_HWPT_ALLOC_PERSIST) must keep
 * translating DMA while the kernel is replaced by kexec, so its page tables
 * live in memory that survives the kexec: persist_alloc's pools. Its driver
 * attaches a table arena (struct iommu_persist_tables) to the domain's
 * generic page table before initialising it, and generic_pt then takes
 * every table, the top one included, from the arena instead of the page
 * allocator.
 *
 * The arena is a set of chunks, each one 2 MiB persist_alloc granule of
 * the domain's node, zeroed and charged to the memory cgroup of the task
 * that needed it (the domain's creator for the first one, a mapping task
 * for later ones). Pages 1 to 511 of a chunk are 4 KiB tables, handed out
 * lowest first from the first chunk with room, in O(1); page 0 is never a
 * table, because the page of a table is how iommu-pages tells a chunk table
 * (a tail page) from one of its own (struct iommu_pages_chunk). A domain's
 * tables therefore sit in a few physically contiguous granules, which is
 * what the live update hands over: the chunks and the top table, not one
 * record per table.
 *
 * Tables are freed through iommu-pages as any others, once the IOTLB no
 * longer refers to them, from any context: a freed table goes back to its
 * chunk and is zeroed again when it is next handed out. A page that had a
 * memory failure is never handed out again. Chunks stay with the domain
 * until it is destroyed, which frees them to the pool.
 *
 * Only formats with 4 KiB tables and coherent table walks can use an arena:
 * anything else gets no table, so its domain fails to initialise.
 *
 * Across a live update, iommu_persist_tables_describe() gives the chunks and
 * the top table of a domain, which its owner preserves; in the next kernel
 * iommu_persist_tables_adopt() makes the restored chunks the arena of a new
 * domain and the tree in them its page table, after generic_pt walked all
 * of it: every table must be a page 1 to 511 of one of the chunks, reached
 * once, and every translation one the owner expects.
 */

#include <linux/bitmap.h>
#include <linux/delay.h>
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/persist_alloc.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/spinlock.h>
#include <linux/vmstat.h>

#include "iommu-pages.h"
#include "iommu-persist.h"

#define CHUNK_ORDER	PERSIST_ORDER_2M
#define CHUNK_PAGES	BIT(CHUNK_ORDER)
#define CHUNK_TABLES	(CHUNK_PAGES - 1)
#define CHUNK_SIZE	(CHUNK_PAGES * PAGE_SIZE)

/**
 * struct iommu_persist_chunk - One granule of an arena
 * @node: In the arena's partial or full list
 * @tables: The arena
 * @folio: The persist_alloc granule
 * @used: Which pages are tables in use or retired (page 0 never is)
 * @nr_used: Weight of @used
 * @nr_retired: Pages of @used retired after a memory failure
 * @pages: The iommu-pages view of the granule; must be last
 */
struct iommu_persist_chunk {
	struct list_head node;
	struct iommu_persist_tables *tables;
	struct folio *folio;
	DECLARE_BITMAP(used, CHUNK_PAGES);
	unsigned int nr_used;
	unsigned int nr_retired;
	struct iommu_pages_chunk pages;
};

/**
 * struct iommu_persist_tables - The table arena of one persistent domain
 * @mem: What generic_pt calls to allocate a table
 * @lock: Protects the lists and every chunk's @used and counts
 * @partial: Chunks with a free page, the first one handed out from
 * @full: Chunks without one
 * @nid: Node of the domain's tables (NUMA_NO_NODE: the allocating task's)
 */
struct iommu_persist_tables {
	struct pt_iommu_table_mem mem;
	spinlock_t lock;	/* taken from table frees in any context */
	struct list_head partial;
	struct list_head full;
	int nid;
};

static struct iommu_persist_chunk *to_chunk(struct iommu_pages_chunk *pages)
{
	return container_of(pages, struct iommu_persist_chunk, pages);
}

/* A page off the first chunk with room, marked used, or NULL. */
static void *take_table(struct iommu_persist_tables *tables,
			struct iommu_persist_chunk **chunkp)
{
	struct iommu_persist_chunk *chunk;
	unsigned long flags;
	unsigned int idx;

	spin_lock_irqsave(&tables->lock, flags);
	chunk = list_first_entry_or_null(&tables->partial,
					 struct iommu_persist_chunk, node);
	if (!chunk) {
		spin_unlock_irqrestore(&tables->lock, flags);
		return NULL;
	}
	idx = find_next_zero_bit(chunk->used, CHUNK_PAGES, 1);
	__set_bit(idx, chunk->used);
	if (++chunk->nr_used == CHUNK_TABLES)
		list_move_tail(&chunk->node, &tables->full);
	spin_unlock_irqrestore(&tables->lock, flags);

	*chunkp = chunk;
	return chunk->pages.base + ((unsigned long)idx << PAGE_SHIFT);
}

/* Give page @idx back to @chunk; the arena's lock is held. */
static void put_table(struct iommu_persist_chunk *chunk, unsigned long idx)
{
	struct iommu_persist_tables *tables = chunk->tables;

	if (WARN_ON_ONCE(!idx || idx >= CHUNK_PAGES ||
			 !__test_and_clear_bit(idx, chunk->used)))
		return;
	/* Behind the chunks in use, so that those fill up first. */
	if (chunk->nr_used-- == CHUNK_TABLES)
		list_move_tail(&chunk->node, &tables->partial);
}

static void persist_table_free(struct iommu_pages_chunk *pages, void *virt)
{
	struct iommu_persist_chunk *chunk = to_chunk(pages);
	unsigned long flags;

	spin_lock_irqsave(&chunk->tables->lock, flags);
	put_table(chunk, (virt - pages->base) >> PAGE_SHIFT);
	spin_unlock_irqrestore(&chunk->tables->lock, flags);
}

/*
 * Give the granule back to its pool. A passing reference (a pfn walker)
 * makes that fail for a moment: retry for up to a second, then leave the
 * granule allocated, with a warning, rather than free it under a user.
 */
static void chunk_free(struct iommu_persist_chunk *chunk)
{
	struct folio *folio = chunk->folio;
	phys_addr_t phys = PFN_PHYS(folio_pfn(folio));
	int tries = 0, err;

	mod_node_page_state(folio_pgdat(folio), NR_IOMMU_PAGES, -CHUNK_PAGES);
	folio->private = NULL;
	while ((err = persist_free_folio(folio)) == -EBUSY && ++tries < 50)
		msleep(20);
	if (err)
		pr_warn_ratelimited("iommu-persist: table granule at %pa not freed: %d\n",
				    &phys, err);
	kfree(chunk);
}

/* The chunk of @folio, not yet the table owner of its pages. */
static struct iommu_persist_chunk *chunk_new(struct iommu_persist_tables *tables,
					     struct folio *folio, gfp_t gfp)
{
	struct iommu_persist_chunk *chunk;
	unsigned int i;

	chunk = kzalloc(struct_size(chunk, pages.pages, CHUNK_PAGES),
			gfp & (GFP_KERNEL_ACCOUNT | __GFP_NOWARN));
	if (!chunk)
		return NULL;
	chunk->tables = tables;
	chunk->folio = folio;
	chunk->pages.free = persist_table_free;
	chunk->pages.base = folio_address(folio);
	for (i = 0; i < CHUNK_PAGES; i++)
		chunk->pages.pages[i].chunk = &chunk->pages;
	return chunk;
}

/* @chunk joins its arena: iommu-pages frees its tables to it from now on. */
static void chunk_add(struct iommu_persist_chunk *chunk)
{
	struct iommu_persist_tables *tables = chunk->tables;
	struct folio *folio = chunk->folio;
	unsigned long flags;

	folio->private = &chunk->pages;
	mod_node_page_state(folio_pgdat(folio), NR_IOMMU_PAGES, CHUNK_PAGES);

	spin_lock_irqsave(&tables->lock, flags);
	if (chunk->nr_used == CHUNK_TABLES)
		list_add_tail(&chunk->node, &tables->full);
	else
		list_add_tail(&chunk->node, &tables->partial);
	spin_unlock_irqrestore(&tables->lock, flags);
}

/* Adds a zeroed granule to the arena. May sleep. */
static int add_chunk(struct iommu_persist_tables *tables, gfp_t gfp)
{
	struct iommu_persist_chunk *chunk;
	struct folio *folio;

	folio = persist_alloc_folio(tables->nid, CHUNK_ORDER,
				    PERSIST_ALLOC_ZERO | PERSIST_ALLOC_ACCOUNT);
	if (IS_ERR(folio))
		return PTR_ERR(folio);
	chunk = chunk_new(tables, folio, gfp);
	if (!chunk) {
		persist_free_folio(folio);
		return -ENOMEM;
	}
	chunk_add(chunk);
	return 0;
}

static void *persist_table_alloc(struct pt_iommu_table_mem *mem, size_t size,
				 gfp_t gfp)
{
	struct iommu_persist_tables *tables =
		container_of(mem, struct iommu_persist_tables, mem);
	struct iommu_persist_chunk *chunk;
	unsigned long flags;
	void *table;

	if (WARN_ON_ONCE(size != PAGE_SIZE))
		return NULL;

	for (;;) {
		table = take_table(tables, &chunk);
		if (!table) {
			if (!gfpflags_allow_blocking(gfp) ||
			    add_chunk(tables, gfp))
				return NULL;
			continue;
		}
		if (!persist_alloc_page_hwpoisoned(PHYS_PFN(virt_to_phys(table))))
			break;
		/* Retired: it stays marked used, never handed out again. */
		spin_lock_irqsave(&tables->lock, flags);
		chunk->nr_retired++;
		spin_unlock_irqrestore(&tables->lock, flags);
	}
	memset(table, 0, PAGE_SIZE);
	return table;
}

/**
 * iommu_persist_tables_attach - Make a page table take its tables from an arena
 * @iommu_table: Generic page table, before its format's init
 *
 * Creates an empty arena on @iommu_table's node and sets it as its
 * table_mem: the init then allocates the top table from a first chunk.
 *
 * Context: Process context; may sleep.
 * Return: 0, or -ENOMEM.
 */
int iommu_persist_tables_attach(struct pt_iommu *iommu_table)
{
	struct iommu_persist_tables *tables;

	tables = kzalloc_obj(*tables, GFP_KERNEL_ACCOUNT);
	if (!tables)
		return -ENOMEM;
	tables->mem.alloc = persist_table_alloc;
	spin_lock_init(&tables->lock);
	INIT_LIST_HEAD(&tables->partial);
	INIT_LIST_HEAD(&tables->full);
	tables->nid = iommu_table->nid;
	iommu_table->table_mem = &tables->mem;
	return 0;
}
EXPORT_SYMBOL_GPL(iommu_persist_tables_attach);

/**
 * iommu_persist_tables_of - The arena of a page table
 * @iommu_table: Generic page table
 *
 * Return: the arena iommu_persist_tables_attach() gave @iommu_table, or NULL
 * if its tables come from elsewhere.
 */
struct iommu_persist_tables *iommu_persist_tables_of(struct pt_iommu *iommu_table)
{
	struct pt_iommu_table_mem *mem = iommu_table->table_mem;

	if (!mem || mem->alloc != persist_table_alloc)
		return NULL;
	return container_of(mem, struct iommu_persist_tables, mem);
}
EXPORT_SYMBOL_GPL(iommu_persist_tables_of);

/**
 * iommu_persist_tables_detach - Free a page table's arena
 * @iommu_table: Generic page table after its deinit, or whose init failed
 *
 * Gives every chunk back to its pool, waiting up to a second each for
 * passing references. A chunk that still has a table in use means the page
 * table was not torn down: it is left allocated, with a warning, as the
 * IOMMU may still walk it.
 *
 * Context: Process context; may sleep.
 */
void iommu_persist_tables_detach(struct pt_iommu *iommu_table)
{
	struct iommu_persist_tables *tables = iommu_persist_tables_of(iommu_table);
	struct iommu_persist_chunk *chunk, *tmp;
	bool leaked = false;

	if (!tables)
		return;
	list_splice_init(&tables->full, &tables->partial);
	list_for_each_entry_safe(chunk, tmp, &tables->partial, node) {
		if (WARN_ON(chunk->nr_used != chunk->nr_retired)) {
			leaked = true;
			continue;
		}
		list_del(&chunk->node);
		chunk_free(chunk);
	}
	iommu_table->table_mem = NULL;
	if (!leaked)
		kfree(tables);
}
EXPORT_SYMBOL_GPL(iommu_persist_tables_detach);

/**
 * iommu_persist_tables_describe - What another kernel needs to adopt a page table
 * @iommu_table: Generic page table with an arena
 * @folios: Receives the arena's chunks, or NULL to count them
 * @max: Room in @folios
 * @top: Receives the physical address of the top table
 * @level: Receives the level of the top table
 *
 * The owner preserves the chunks and hands them over with @top and @level
 * and the table's format and configuration. Chunks without a table in use
 * are chunks too: a table may be freed and taken again until the caller
 * stops the table from changing.
 *
 * Context: The caller keeps the page table from changing (no map, no unmap)
 * while it uses the result.
 * Return: the number of chunks; -ENOSPC if there are more than @max (none
 * is written then); -EOPNOTSUPP if the table has no arena.
 */
int iommu_persist_tables_describe(struct pt_iommu *iommu_table,
				  struct folio **folios, unsigned int max,
				  phys_addr_t *top, unsigned int *level)
{
	struct iommu_persist_tables *tables = iommu_persist_tables_of(iommu_table);
	struct iommu_persist_chunk *chunk;
	unsigned long flags;
	unsigned int nr = 0;

	if (!tables || !iommu_table->ops || !iommu_table->ops->get_top)
		return -EOPNOTSUPP;

	spin_lock_irqsave(&tables->lock, flags);
	list_for_each_entry(chunk, &tables->partial, node)
		nr++;
	list_for_each_entry(chunk, &tables->full, node)
		nr++;
	if (folios && nr > max) {
		spin_unlock_irqrestore(&tables->lock, flags);
		return -ENOSPC;
	}
	if (folios) {
		nr = 0;
		list_for_each_entry(chunk, &tables->partial, node)
			folios[nr++] = chunk->folio;
		list_for_each_entry(chunk, &tables->full, node)
			folios[nr++] = chunk->folio;
	}
	spin_unlock_irqrestore(&tables->lock, flags);

	iommu_table->ops->get_top(iommu_table, top, level);
	return nr;
}
EXPORT_SYMBOL_GPL(iommu_persist_tables_describe);

struct persist_adopt {
	struct iommu_persist_tables *tables;
	struct iommu_persist_chunk **chunks;	/* sorted by pfn */
	unsigned int nr;
	iommu_persist_leaf_fn leaf;
	void *arg;
};

static int cmp_chunk_pfn(const void *a, const void *b)
{
	unsigned long pa = folio_pfn((*(struct iommu_persist_chunk **)a)->folio);
	unsigned long pb = folio_pfn((*(struct iommu_persist_chunk **)b)->folio);

	return pa < pb ? -1 : pa > pb;
}

/*
 * A table of the tree must be a page 1 to 511 of one of the chunks, not
 * poisoned, and not reached before; it is marked in use as it is found.
 */
static int adopt_table(void *arg, phys_addr_t pa, size_t size)
{
	struct persist_adopt *adopt = arg;
	unsigned long pfn = PHYS_PFN(pa);
	unsigned int lo = 0, hi = adopt->nr;

	if (size != PAGE_SIZE || offset_in_page(pa))
		return -EINVAL;
	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;
		struct iommu_persist_chunk *chunk = adopt->chunks[mid];
		unsigned long first = folio_pfn(chunk->folio);

		if (pfn < first) {
			hi = mid;
		} else if (pfn >= first + CHUNK_PAGES) {
			lo = mid + 1;
		} else {
			if (pfn == first || __test_and_set_bit(pfn - first, chunk->used))
				return -EINVAL;
			chunk->nr_used++;
			return persist_alloc_page_hwpoisoned(pfn) ? -EHWPOISON : 0;
		}
	}
	return -EINVAL;
}

static phys_addr_t chunk_phys(struct iommu_persist_chunk *chunk)
{
	return PFN_PHYS(folio_pfn(chunk->folio));
}

/* Does [@pa, @end) overlap a chunk of the tree or of the arena? */
static bool leaf_in_chunks(struct persist_adopt *adopt, phys_addr_t pa,
			   phys_addr_t end)
{
	struct iommu_persist_tables *tables = adopt->tables;
	struct iommu_persist_chunk *chunk;
	unsigned int lo = 0, hi = adopt->nr;
	unsigned long flags;
	bool hit = false;

	/* The first chunk of the tree that ends after @pa */
	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (chunk_phys(adopt->chunks[mid]) + CHUNK_SIZE <= pa)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < adopt->nr && chunk_phys(adopt->chunks[lo]) < end)
		return true;

	spin_lock_irqsave(&tables->lock, flags);
	list_for_each_entry(chunk, &tables->partial, node)
		hit |= chunk_phys(chunk) < end &&
		       pa < chunk_phys(chunk) + CHUNK_SIZE;
	list_for_each_entry(chunk, &tables->full, node)
		hit |= chunk_phys(chunk) < end &&
		       pa < chunk_phys(chunk) + CHUNK_SIZE;
	spin_unlock_irqrestore(&tables->lock, flags);
	return hit;
}

/* No translation may reach table memory: the device would own its tables. */
static int adopt_leaf(void *arg, dma_addr_t iova, phys_addr_t pa,
		      unsigned int size_lg2, unsigned int *prot)
{
	struct persist_adopt *adopt = arg;

	if (leaf_in_chunks(adopt, pa, pa + BIT_ULL(size_lg2)))
		return -EINVAL;
	return adopt->leaf(adopt->arg, iova, pa, size_lg2, prot);
}

static const struct pt_iommu_adopt_check persist_adopt_check = {
	.table = adopt_table,
	.leaf = adopt_leaf,
};

/*
 * After an adoption: the chunk the empty top table came from, and chunks
 * handed over without a table in use. A handed-over granule is zeroed by
 * its pool before its next user gets it.
 */
static void free_unused_chunks(struct iommu_persist_tables *tables)
{
	struct iommu_persist_chunk *chunk, *tmp;
	unsigned long flags;
	LIST_HEAD(unused);

	spin_lock_irqsave(&tables->lock, flags);
	list_for_each_entry_safe(chunk, tmp, &tables->partial, node)
		if (!chunk->nr_used)
			list_move(&chunk->node, &unused);
	spin_unlock_irqrestore(&tables->lock, flags);

	list_for_each_entry_safe(chunk, tmp, &unused, node) {
		list_del(&chunk->node);
		chunk_free(chunk);
	}
}

/**
 * iommu_persist_tables_adopt - Take over a page table another kernel built
 * @iommu_table: Generic page table with an arena, just initialised, empty
 *               and not yet used by any IOMMU
 * @folios: The chunks handed over for it, restored from persist_alloc
 * @nr: Number of @folios
 * @top: Physical address of the handed-over top table
 * @level: Its level
 * @leaf: Says, for each translation of the tree, whether it may be there
 *        and with which permissions (see struct pt_iommu_adopt_check)
 * @arg: Passed to @leaf
 *
 * Nothing handed over is trusted. Each folio must be a 2 MiB persist_alloc
 * granule, given once, that belongs to no arena. generic_pt walks the whole
 * tree, and each table must be a page 1 to 511 of one of @folios, not
 * poisoned and reached once; no translation may reach into one of @folios
 * or of the arena's chunks, and @leaf must accept each one. The folios are
 * claimed for the walk, so that an adoption running at the same time with
 * one of them fails. If all of that holds, the folios are chunks
 * of @iommu_table's arena, the tree is its page table and the empty chunk
 * its initialisation took is freed.
 *
 * Context: Process context; may sleep.
 * Return: 0; -EINVAL if the folios or the tree are refused, -EHWPOISON if a
 * table had a memory failure, an error of @leaf, -ENOMEM, or -EOPNOTSUPP if
 * the table has no arena or cannot adopt. On error, @iommu_table and the
 * folios are as they were: the caller still owns the folios.
 */
int iommu_persist_tables_adopt(struct pt_iommu *iommu_table,
			       struct folio **folios, unsigned int nr,
			       phys_addr_t top, unsigned int level,
			       iommu_persist_leaf_fn leaf, void *arg)
{
	struct iommu_persist_tables *tables = iommu_persist_tables_of(iommu_table);
	struct persist_adopt adopt = {
		.tables = tables, .nr = nr, .leaf = leaf, .arg = arg,
	};
	unsigned int i, claimed = 0;
	int err;

	might_sleep();
	if (!tables || !iommu_table->ops || !iommu_table->ops->adopt)
		return -EOPNOTSUPP;
	if (!nr)
		return -EINVAL;
	for (i = 0; i < nr; i++)
		if (folio_order(folios[i]) != CHUNK_ORDER ||
		    persist_folio_flags(folios[i]) < 0)
			return -EINVAL;

	adopt.chunks = kvcalloc(nr, sizeof(*adopt.chunks), GFP_KERNEL);
	if (!adopt.chunks)
		return -ENOMEM;
	for (i = 0; i < nr; i++) {
		adopt.chunks[i] = chunk_new(tables, folios[i], GFP_KERNEL_ACCOUNT);
		if (!adopt.chunks[i]) {
			err = -ENOMEM;
			goto out;
		}
	}
	/*
	 * Claim each folio for its chunk, so that a folio of an arena, of a
	 * concurrent adoption, or given twice, is found taken.
	 */
	for (claimed = 0; claimed < nr; claimed++)
		if (cmpxchg(&folios[claimed]->private, NULL,
			    &adopt.chunks[claimed]->pages)) {
			err = -EINVAL;
			goto out;
		}
	sort(adopt.chunks, nr, sizeof(*adopt.chunks), cmp_chunk_pfn, NULL);

	err = iommu_table->ops->adopt(iommu_table, top, level,
				      &persist_adopt_check, &adopt);
	if (err)
		goto out;

	for (i = 0; i < nr; i++)
		chunk_add(adopt.chunks[i]);
	kvfree(adopt.chunks);
	free_unused_chunks(tables);
	return 0;

out:
	for (i = 0; i < claimed; i++)
		WRITE_ONCE(folios[i]->private, NULL);
	for (i = 0; i < nr; i++)
		kfree(adopt.chunks[i]);
	kvfree(adopt.chunks);
	return err;
}
EXPORT_SYMBOL_GPL(iommu_persist_tables_adopt);

#if IS_ENABLED(CONFIG_IOMMU_PERSIST_KUNIT_TEST)
#include "iommu-persist-kunit.c"
#endif
