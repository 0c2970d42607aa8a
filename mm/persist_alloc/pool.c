// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc pools: boot carve-out per NUMA node, growing and shrinking.
 */

/**
 * DOC: Pools
 *
 * Every NUMA node has at most one pool, a list of 1 GiB blocks. Blocks come
 * from two places:
 *
 * - the boot carve-out, ``persist_alloc=`` on the kernel command line,
 *   reserved from memblock right after the zones are known and before the
 *   buddy allocator starts (``persist_alloc_reserve_early()``, called from
 *   ``mm_core_init_early()``). ``persist_alloc=2G`` spreads 2 GiB over the
 *   nodes round robin; ``persist_alloc=0:1G,1:2G`` asks per node. Sizes are
 *   multiples of 1 GiB; blocks are 1 GiB aligned, kept out of KHO scratch
 *   and not counted when KHO sizes its scratch areas. A bad entry (size,
 *   node, not enough memory) is reported and that node's pool skipped; the
 *   kernel boots either way. ``persist_alloc_hvo=``, in the same syntax,
 *   asks that so many of the blocks carved start as free 1 GiB HVO folios
 *   (see "Keeping HVO blocks"): their vmemmap is mapped optimized before
 *   any of their struct pages is initialized, so the first 1 GiB HVO
 *   allocation of such a block costs what a reuse costs, and the 16 MiB
 *   of struct pages per GiB are never allocated while the block serves
 *   1 GiB HVO folios.
 * - growing at run time (sysfs ``grow``): a 1 GiB block taken from the
 *   buddy allocator with alloc_contig_pages(). Shrinking returns unused
 *   blocks, grown ones to the buddy allocator and carved ones too (they are
 *   then ordinary memory).
 *
 * The struct pages of a free granule are in their boot state: single
 * pages, refcount 1, not reserved (the carve-out is marked
 * MEMBLOCK_RSRV_NOINIT so memblock does not set PG_reserved on it).
 */

#define pr_fmt(fmt) "persist_alloc: " fmt

#include <linux/ctype.h>
#include <linux/gfp.h>
#include <linux/init.h>
#include <linux/kexec_handover.h>
#include <linux/kho/abi/persist_alloc.h>
#include <linux/memblock.h>
#include <linux/mm.h>
#include <linux/nodemask.h>
#include <linux/overflow.h>
#include <linux/slab.h>

#include "../mm_init.h"
#include "internal.h"

struct persist_pool *persist_pools[MAX_NUMNODES];
/* Serializes adding and removing blocks (boot, grow, shrink). */
DEFINE_MUTEX(persist_resize_lock);
/* Block of a physical address: index is phys / 1 GiB. */
DEFINE_XARRAY(persist_blocks);

/* Blocks carved at boot, before slab exists. */
#define PERSIST_BOOT_BLOCKS_MAX	1024
static struct persist_boot_block persist_boot_blocks[PERSIST_BOOT_BLOCKS_MAX] __initdata;
static unsigned int persist_nr_boot_blocks __initdata;
static struct persist_request persist_cmdline_request __initdata;
static struct persist_request persist_hvo_request __initdata;

/*
 * "<number>[KMGTPE]" to GiB. Unlike memparse(), a size that does not fit
 * in 64 bits is refused instead of wrapping (16777217T is not 1T).
 */
static int parse_gib(const char *s, unsigned long *gib)
{
	static const char suffixes[] = "KMGTPE";
	unsigned long long n, bytes;
	char num[24], *suffix;
	size_t len = strspn(s, "0123456789");
	unsigned int shift = 0;

	if (!len || len >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, len);
	num[len] = '\0';
	if (kstrtoull(num, 10, &n))
		return -EINVAL;
	if (s[len]) {
		suffix = strchr(suffixes, toupper(s[len]));
		if (!suffix || s[len + 1])
			return -EINVAL;
		shift = 10 * (suffix - suffixes + 1);
	}
	if (check_shl_overflow(n, shift, &bytes) || !bytes ||
	    !IS_ALIGNED(bytes, PERSIST_BLOCK_SIZE))
		return -EINVAL;
	*gib = bytes / PERSIST_BLOCK_SIZE;
	return 0;
}

/**
 * persist_parse_request - parse the value of persist_alloc= or persist_alloc_hvo=
 * @param: the parameter's name, for the messages
 * @str:   "<size>" or "<node>:<size>[,<node>:<size>...]"
 * @req:   filled with the request
 *
 * Entries that make no sense are reported and skipped, the others kept.
 *
 * Return: the number of bad entries, 0 if everything was accepted.
 */
int persist_parse_request(const char *param, const char *str, struct persist_request *req)
{
	char buf[256], *s = buf, *tok;
	int bad = 0;

	memset(req, 0, sizeof(*req));
	if (!str || !*str || strscpy(buf, str, sizeof(buf)) < 0) {
		pr_err("%s=%s: empty or too long\n", param, str ?: "");
		return 1;
	}
	if (!strchr(buf, ':')) {
		if (parse_gib(buf, &req->spread_gib)) {
			pr_err("%s=%s: size must be a non-zero multiple of 1G\n", param, buf);
			bad++;
		}
		return bad;
	}
	while ((tok = strsep(&s, ","))) {
		char *colon = strchr(tok, ':');
		unsigned long gib;
		unsigned int nid;

		if (!colon || colon == tok) {
			pr_err("entry '%s' is not <node>:<size>, skipped\n", tok);
			bad++;
			continue;
		}
		*colon = '\0';
		if (kstrtouint(tok, 10, &nid) || nid >= MAX_NUMNODES) {
			pr_err("unknown node '%s', skipped\n", tok);
			bad++;
			continue;
		}
		if (parse_gib(colon + 1, &gib)) {
			pr_err("node %u: size '%s' is not a non-zero multiple of 1G, skipped\n",
			       nid, colon + 1);
			bad++;
			continue;
		}
		if (req->node_gib[nid]) {
			pr_err("node %u given twice, second entry skipped\n", nid);
			bad++;
			continue;
		}
		req->node_gib[nid] = gib;
	}
	return bad;
}

static int __init persist_alloc_setup(char *str)
{
	persist_parse_request("persist_alloc", str, &persist_cmdline_request);
	return 0;
}
early_param("persist_alloc", persist_alloc_setup);

static int __init persist_alloc_hvo_setup(char *str)
{
	persist_parse_request("persist_alloc_hvo", str, &persist_hvo_request);
	return 0;
}
early_param("persist_alloc_hvo", persist_alloc_hvo_setup);

/* Reserve one 1 GiB block on @nid; false if the node has no room left. */
static bool __init reserve_boot_block(int nid)
{
	void *addr;

	if (persist_nr_boot_blocks == PERSIST_BOOT_BLOCKS_MAX)
		return false;
	/*
	 * Like a gigantic page: size aligned, outside KHO scratch, not
	 * counted when KHO sizes its scratch areas.
	 */
	addr = memblock_alloc_hugetlb(PERSIST_BLOCK_SIZE, nid, true);
	if (!addr)
		return false;
	memblock_reserved_mark_noinit(__pa(addr), PERSIST_BLOCK_SIZE);
	persist_boot_blocks[persist_nr_boot_blocks].base = __pa(addr);
	persist_boot_blocks[persist_nr_boot_blocks].nid = nid;
	persist_nr_boot_blocks++;
	return true;
}

static unsigned long __init reserve_on_node(int nid, unsigned long gib)
{
	unsigned long done = 0;

	if (!node_online(nid)) {
		pr_err("node %d is not online, its %lu GiB pool skipped\n", nid, gib);
		return 0;
	}
	while (done < gib && reserve_boot_block(nid))
		done++;
	if (done < gib)
		pr_err("node %d: only %lu of %lu GiB reserved (not enough aligned memory)\n",
		       nid, done, gib);
	return done;
}

/* Whether carved block @b can be pre-HVO'd, or why not (reported). */
static bool __init hvo_possible(const struct persist_boot_block *b)
{
	if (!IS_ENABLED(CONFIG_SPARSEMEM_VMEMMAP_PREINIT) || !is_power_of_2(sizeof(struct page))) {
		pr_err("persist_alloc_hvo=: block %pa not optimized: needs CONFIG_SPARSEMEM_VMEMMAP_PREINIT and a struct page of a power of 2 bytes\n",
		       &b->base);
		return false;
	}
	/* One zone's shared tail page stands for every tail of the block. */
	if (pfn_range_intersects_zones(b->nid, PHYS_PFN(b->base), PERSIST_BLOCK_PAGES)) {
		pr_err("persist_alloc_hvo=: block %pa not optimized: it spans two zones\n",
		       &b->base);
		return false;
	}
	return true;
}

/* The next carved block of @nid that persist_alloc_hvo= has not asked for. */
static struct persist_boot_block *__init next_plain_block(int nid)
{
	unsigned int i;

	for (i = 0; i < persist_nr_boot_blocks; i++)
		if (persist_boot_blocks[i].nid == nid && !persist_boot_blocks[i].hvo)
			return &persist_boot_blocks[i];
	return NULL;
}

/* Ask for the vmemmap of @b to be optimized; false if it cannot be. */
static bool __init ask_hvo(struct persist_boot_block *b)
{
	if (!b)
		return false;
	b->hvo = hvo_possible(b) ? PERSIST_BOOT_HVO_ASKED : PERSIST_BOOT_HVO_REFUSED;
	return true;
}

/*
 * Flag the carved blocks persist_alloc_hvo= asks for: per node, then the
 * spread count round robin over the nodes, as persist_alloc= carves. A
 * block that cannot be optimized counts as asked for, and stays plain.
 */
static void __init mark_hvo_blocks(void)
{
	struct persist_request *req = &persist_hvo_request;
	unsigned long left = req->spread_gib;
	bool progress = true;
	int nid;

	for (nid = 0; nid < MAX_NUMNODES; nid++) {
		while (req->node_gib[nid] && ask_hvo(next_plain_block(nid)))
			req->node_gib[nid]--;
		if (req->node_gib[nid])
			pr_err("persist_alloc_hvo=: node %d: %lu GiB more than carved at this boot, not optimized\n",
			       nid, req->node_gib[nid]);
	}
	while (left && progress) {
		progress = false;
		for_each_node(nid) {
			if (left && ask_hvo(next_plain_block(nid))) {
				left--;
				progress = true;
			}
		}
	}
	if (left)
		pr_err("persist_alloc_hvo=: %lu GiB more than carved at this boot, not optimized\n",
		       left);
}

/**
 * persist_boot_blocks_get - the blocks carved at this boot
 * @nr: set to their number
 *
 * Return: the array, valid until the init sections are freed.
 */
struct persist_boot_block *__init persist_boot_blocks_get(unsigned int *nr)
{
	*nr = persist_nr_boot_blocks;
	return persist_boot_blocks;
}

/**
 * persist_alloc_reserve_early - carve the boot pools out of memblock
 *
 * Called from mm_core_init_early() once zones and nodes are known, before
 * sparse_init() and the buddy allocator.
 */
void __init persist_alloc_reserve_early(void)
{
	static unsigned long handed[MAX_NUMNODES] __initdata;
	struct persist_request *req = &persist_cmdline_request;
	unsigned long left = req->spread_gib, total = 0;
	int nid;

	/*
	 * Handed-over pools win where they were accepted; the command line
	 * adds new ones, also on nodes whose handover was refused.
	 */
	if (persist_handover_check_early(handed)) {
		if (left)
			pr_info("pools handed over by the previous kernel kept, persist_alloc=%luG ignored\n",
				left);
		left = 0;
		for_each_node(nid) {
			if (!handed[nid])
				continue;
			if (req->node_gib[nid] && req->node_gib[nid] != handed[nid])
				pr_info("node %d: keeping the %lu GiB handed over, not the %lu GiB of persist_alloc=\n",
					nid, handed[nid], req->node_gib[nid]);
			req->node_gib[nid] = 0;
		}
	}
	/* Every node asked for, possible or not: an impossible one is reported. */
	for (nid = 0; nid < MAX_NUMNODES; nid++) {
		if (req->node_gib[nid])
			total += reserve_on_node(nid, req->node_gib[nid]);
	}
	/* Spread round robin over nodes with memory, one block at a time. */
	while (left) {
		bool progress = false;

		for_each_node_state(nid, N_MEMORY) {
			if (!left)
				break;
			if (reserve_boot_block(nid)) {
				left--;
				total++;
				progress = true;
			}
		}
		if (!progress) {
			pr_err("only %lu of %lu GiB reserved (not enough aligned memory)\n",
			       req->spread_gib - left, req->spread_gib);
			break;
		}
	}
	if (total)
		pr_info("reserved %lu GiB at boot\n", total);
	mark_hvo_blocks();
}

static struct persist_pool *pool_get(int nid)
{
	struct persist_pool *pool = persist_pools[nid];

	if (pool)
		return pool;
	pool = kzalloc_node(sizeof(*pool), GFP_KERNEL, nid);
	if (!pool)
		return NULL;
	pool->nid = nid;
	spin_lock_init(&pool->lock);
	INIT_LIST_HEAD(&pool->blocks);
	INIT_LIST_HEAD(&pool->unused);
	INIT_LIST_HEAD(&pool->hvo_kept);
	INIT_LIST_HEAD(&pool->chunk_avail);
	INIT_LIST_HEAD(&pool->page_avail);
	/* Readers look pools up without the resize lock. */
	smp_store_release(&persist_pools[nid], pool);
	return pool;
}

/*
 * Add a block to @nid's pool, as a kept 1 GiB HVO block if @kept (its
 * vmemmap optimized at boot, persist_hvo_prepare_free() done); called
 * with persist_resize_lock held.
 */
int persist_pool_add_block(int nid, phys_addr_t base, bool boot, bool kept)
{
	struct persist_block *blk;
	struct persist_pool *pool;
	int err;

	lockdep_assert_held(&persist_resize_lock);
	pool = pool_get(nid);
	if (!pool)
		return -ENOMEM;
	blk = kzalloc_node(sizeof(*blk), GFP_KERNEL, nid);
	if (!blk)
		return -ENOMEM;
	err = persist_block_init(blk, base);
	if (err)
		goto free_blk;
	blk->boot = boot;
	blk->pool = pool;
	err = persist_kho_block_added(blk);
	if (err)
		goto destroy;
	/* Kept before it is in persist_blocks, where allocations find blocks. */
	if (kept)
		persist_hvo_keep_new(blk);
	err = xa_insert(&persist_blocks, base / PERSIST_BLOCK_SIZE, blk, GFP_KERNEL);
	if (err)
		goto unpreserve;
	spin_lock(&pool->lock);
	list_add_tail(&blk->list, &pool->blocks);
	persist_block_list(blk);
	if (kept) {
		list_add_tail(&blk->kept_link, &pool->hvo_kept);
		pool->nr_hvo_kept++;
	}
	pool->nr_blocks++;
	spin_unlock(&pool->lock);
	return 0;

unpreserve:
	persist_kho_block_removed(blk);
destroy:
	persist_block_destroy(blk);
free_blk:
	kfree(blk);
	return err;
}

/**
 * persist_pool_grow - add 1 GiB blocks taken from the buddy allocator
 * @nid: node
 * @nr:  number of blocks
 *
 * Return: the number of blocks added, or -errno if none was: -ENODEV for a
 * node without memory, -ENOMEM if no 1 GiB range could be taken, -EBUSY
 * while the handover is frozen for a live update.
 */
long persist_pool_grow(int nid, unsigned long nr)
{
	const gfp_t gfp = GFP_KERNEL | __GFP_THISNODE | __GFP_NOWARN;
	unsigned long done = 0;
	struct page *page;
	int err = 0;

	if (nid < 0 || nid >= nr_node_ids || !node_state(nid, N_MEMORY))
		return -ENODEV;

	mutex_lock(&persist_resize_lock);
	if (persist_kho_frozen())
		err = -EBUSY;
	while (!err && done < nr) {
		page = alloc_contig_pages(PERSIST_BLOCK_PAGES, gfp, nid, NULL);
		if (!page) {
			err = -ENOMEM;
			break;
		}
		if (kho_scratch_overlap(page_to_phys(page), PERSIST_BLOCK_SIZE)) {
			/* Preserved memory must never live in KHO scratch. */
			free_contig_range(page_to_pfn(page), PERSIST_BLOCK_PAGES);
			err = -ENOMEM;
			break;
		}
		err = persist_pool_add_block(nid, page_to_phys(page), false, false);
		if (err) {
			free_contig_range(page_to_pfn(page), PERSIST_BLOCK_PAGES);
			break;
		}
		done++;
	}
	mutex_unlock(&persist_resize_lock);
	return done ? done : err;
}

/* Returns false, with @blk untouched, if it could not be scrubbed. */
static bool release_block(struct persist_block *blk)
{
	unsigned long pfn = PHYS_PFN(blk->base);

	/* Leftovers of a previous kernel go nowhere unscrubbed. */
	if (persist_scrub_block(blk))
		return false;
	/*
	 * A memory failure may have quarantined a page since the block was
	 * picked: it finds blocks under this lock, and one it holds stays.
	 */
	mutex_lock(&persist_state_lock);
	if (!persist_block_unused(blk)) {
		mutex_unlock(&persist_state_lock);
		return false;
	}
	xa_erase(&persist_blocks, blk->base / PERSIST_BLOCK_SIZE);
	mutex_unlock(&persist_state_lock);
	persist_kho_block_removed(blk);
	if (blk->boot) {
		/* Never counted as RAM: hand it to the buddy allocator now. */
		free_reserved_area(__va(blk->base), __va(blk->base + PERSIST_BLOCK_SIZE),
				   -1, NULL);
	} else {
		free_contig_range(pfn, PERSIST_BLOCK_PAGES);
	}
	persist_block_destroy(blk);
	kfree(blk);
	return true;
}

/**
 * persist_pool_shrink - give unused blocks back to the buddy allocator
 * @nid: node
 * @nr:  number of blocks
 *
 * Only blocks without any allocated granule are given back.
 *
 * Return: the number of blocks released, or -errno if none was: -ENODEV
 * for a node without a pool, -EBUSY if no block is unused or the handover
 * is frozen for a live update.
 */
long persist_pool_shrink(int nid, unsigned long nr)
{
	struct persist_block *blk, *tmp;
	struct persist_pool *pool;
	unsigned long done = 0;
	LIST_HEAD(victims);

	if (nid < 0 || nid >= nr_node_ids)
		return -ENODEV;
	mutex_lock(&persist_resize_lock);
	if (persist_kho_frozen()) {
		mutex_unlock(&persist_resize_lock);
		return -EBUSY;
	}
	pool = persist_pools[nid];
	if (!pool || !pool->nr_blocks) {
		mutex_unlock(&persist_resize_lock);
		return -ENODEV;
	}
again:
	spin_lock(&pool->lock);
	list_for_each_entry_safe_reverse(blk, tmp, &pool->blocks, list) {
		if (done == nr)
			break;
		if (!persist_block_unused(blk))
			continue;
		persist_block_unlist(blk);
		list_move(&blk->list, &victims);
		pool->nr_blocks--;
		done++;
	}
	spin_unlock(&pool->lock);
	/* Kept HVO blocks are free too, once they have their struct pages back. */
	if (done < nr && persist_hvo_unkeep(pool))
		goto again;
	list_for_each_entry_safe(blk, tmp, &victims, list) {
		list_del_init(&blk->list);
		if (release_block(blk))
			continue;
		/* Not scrubbed: it stays in its pool, still dirty and hidden. */
		spin_lock(&pool->lock);
		list_add_tail(&blk->list, &pool->blocks);
		persist_block_list(blk);
		pool->nr_blocks++;
		spin_unlock(&pool->lock);
		done--;
	}
	mutex_unlock(&persist_resize_lock);
	return done ? done : -EBUSY;
}

/* Turn the boot carve-out into pools, once slab is up. */
static int __init persist_pools_init(void)
{
	unsigned int i;
	int err;

	persist_memmap_init_blocks(persist_boot_blocks, persist_nr_boot_blocks);
	mutex_lock(&persist_resize_lock);
	/* A consistent free folio from here on, even if it is lost below. */
	for (i = 0; i < persist_nr_boot_blocks; i++)
		if (persist_boot_blocks[i].hvo == PERSIST_BOOT_HVO)
			persist_hvo_prepare_free(persist_boot_blocks[i].base,
						 persist_boot_blocks[i].nid);
	for (i = 0; i < persist_nr_boot_blocks; i++) {
		const struct persist_boot_block *b = &persist_boot_blocks[i];

		err = persist_pool_add_block(b->nid, b->base, true, b->hvo == PERSIST_BOOT_HVO);
		if (err)
			pr_err("block %pa on node %d lost: %d\n", &b->base, b->nid, err);
	}
	persist_kho_adopt();
	mutex_unlock(&persist_resize_lock);
	return 0;
}
core_initcall(persist_pools_init);
