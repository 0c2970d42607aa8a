// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc: checking and adopting the previous kernel's handover.
 */

/**
 * DOC: Adoption
 *
 * Nothing the previous kernel handed over is trusted. Every field is
 * checked against this kernel before anything acts on it, and what is
 * wrong is refused at the smallest unit: an extent, else a block. Each
 * refusal is one boot line saying what was refused and why; the rest is
 * adopted and the kernel boots.
 *
 * Blocks are checked first, from persist_alloc_reserve_early(), before
 * sparse_init() and before the pre-HVO of any block: a block must be
 * 1 GiB aligned, carry known flags (not both "one 1 GiB HVO extent" and
 * "free 1 GiB HVO folio"), name an online node, be RAM of this
 * kernel lying in one zone of that node, stay outside KHO scratch, be
 * preserved by KHO as one 1 GiB range, and be listed once. Only blocks
 * that pass are pre-HVO'd (``persist_alloc_vmemmap_init_early()``) and
 * counted as their node's handed-over pool; a node whose blocks were all
 * refused gets the pool its ``persist_alloc=`` asks for from other memory.
 *
 * Extents are checked from the core initcall, once the accepted blocks
 * are pools again. An entry of the handover is a run of granules: the run
 * as a whole must have a known order and flags, HVO only on huge
 * granules, be naturally aligned, hold at least one granule and end in the
 * block it starts in, or it is refused whole. Its granules are then
 * adopted in order; each must lie inside an accepted block not flagged
 * free, not overlap an extent adopted before, and, in a block flagged as
 * one 1 GiB HVO extent, be exactly that extent. The first granule that
 * fails ends the run: it and the granules after it are refused, those
 * before it stay adopted. The run is claimed in its block under one lock
 * round trip, mapped back into the direct map in one call and counted in
 * its pool once; only the record of each granule is per granule.
 * So a handed-over count drives no more work than the blocks can hold,
 * plus one refusal per run. A refused extent's memory is simply not
 * claimed: it is free, dirty memory of its block (see
 * "Scrubbing"), zeroed before anyone gets it. A pre-HVO'd block whose
 * extent was refused is held by a quarantined extent: nobody restores it,
 * it is not handed over again, and the kernel after next gets it back as
 * dirty memory.
 *
 * A refused block that is RAM, outside scratch and preserved by KHO (so
 * this kernel does not use it) is zeroed in the background, then given to
 * the page allocator: neither this kernel nor the next gets its data, and
 * no memory is lost. Other refused blocks are not touched at all. A
 * handover refused as a whole (a version this kernel does not know) is
 * treated so too, block by block, through the ranges subtree every
 * version carries (see the ABI header).
 *
 * The checks themselves take the facts about this kernel's memory from
 * a ``struct persist_adopt_env``, so that KUnit feeds them crafted
 * handovers and crafted memory maps without a kexec.
 */

#define pr_fmt(fmt) "persist_alloc: " fmt

#include <linux/kexec_handover.h>
#include <linux/kho/abi/persist_alloc.h>
#include <linux/memblock.h>
#include <linux/mm.h>
#include <linux/sched/clock.h>
#include <linux/set_memory.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>

#include <asm/tlbflush.h>

#include "internal.h"

/* Refusal lines printed for extents before only a count is kept. */
#define REFUSED_EXTENT_LINES	8

static const char *const verdict_str[] = {
	[PERSIST_ADOPT]			= "adopted",
	[PERSIST_REFUSE_ALIGN]		= "misaligned",
	[PERSIST_REFUSE_FLAGS]		= "of unknown or conflicting flags",
	[PERSIST_REFUSE_NODE]		= "on no online node",
	[PERSIST_REFUSE_NOT_RAM]	= "not RAM in this kernel",
	[PERSIST_REFUSE_WRONG_NODE]	= "not in one zone of its node",
	[PERSIST_REFUSE_SCRATCH]	= "inside KHO scratch",
	[PERSIST_REFUSE_NOT_PRESERVED]	= "not preserved by KHO",
	[PERSIST_REFUSE_DUPLICATE]	= "listed twice",
	[PERSIST_REFUSE_TOO_MANY]	= "beyond the blocks this kernel takes",
	[PERSIST_REFUSE_ORDER]		= "of an order its flags forbid",
	[PERSIST_REFUSE_OUTSIDE]	= "outside every adopted block",
	[PERSIST_REFUSE_OVERLAP]	= "overlapping another extent",
	[PERSIST_REFUSE_HVO_BLOCK]	= "not the 1 GiB HVO extent its block is flagged for",
	[PERSIST_REFUSE_NOMEM]		= "lost to an allocation failure",
	[PERSIST_REFUSE_VERSION]	= "of a handover this kernel does not understand",
	[PERSIST_REFUSE_LENGTH]		= "a run of no granule or past the end of its block",
	[PERSIST_REFUSE_FREE_BLOCK]	= "inside a block handed over as free",
};

/**
 * persist_verdict_str - what a verdict says, for boot lines
 * @v: the verdict
 *
 * Return: a phrase that completes "block X is ..." or "extent X is ...".
 */
const char *persist_verdict_str(enum persist_verdict v)
{
	if (v >= ARRAY_SIZE(verdict_str) || !verdict_str[v])
		return "refused";
	return verdict_str[v];
}

/**
 * persist_handover_nr_blocks - check the head of a handover blob
 * @ser:  the blob
 * @size: its size
 *
 * Return: the number of block entries the blob really holds (block
 * entries counted beyond its end are refused with a message), or -EPROTO
 * if it is not a blob of this version.
 */
long persist_handover_nr_blocks(const struct persist_alloc_ser *ser, size_t size)
{
	u64 room;

	if (size < sizeof(*ser) ||
	    strncmp(ser->compatible, PERSIST_ALLOC_KHO_COMPATIBLE, sizeof(ser->compatible)))
		return -EPROTO;
	room = (size - sizeof(*ser)) / sizeof(struct persist_alloc_block_ser);
	if (ser->nr_blocks > room) {
		pr_err("handover: %llu blocks counted in room for %llu, the rest refused\n",
		       ser->nr_blocks, room);
		return room;
	}
	return ser->nr_blocks;
}

/**
 * persist_ranges_nr - check the ranges subtree of a handover
 * @r:    the blob
 * @size: its size
 *
 * Return: the number of ranges it really holds (at most the blocks this
 * kernel takes), or -EPROTO if it is not a ranges blob.
 */
long persist_ranges_nr(const struct persist_alloc_ranges_ser *r, size_t size)
{
	u64 room;

	if (size < sizeof(*r) || r->magic != PERSIST_ALLOC_RANGES_MAGIC)
		return -EPROTO;
	room = (size - sizeof(*r)) / sizeof(r->phys[0]);
	return min3(r->nr, room, (u64)PERSIST_HANDOVER_BLOCKS_MAX);
}

/**
 * persist_check_block - decide whether a handed-over block can be adopted
 * @b:       the block entry
 * @prev:    the entries before it
 * @nr_prev: how many
 * @env:     facts about this kernel's memory
 *
 * Return: PERSIST_ADOPT or the reason for refusing it.
 */
enum persist_verdict persist_check_block(const struct persist_alloc_block_ser *b,
					 const struct persist_alloc_block_ser *prev,
					 unsigned long nr_prev,
					 const struct persist_adopt_env *env)
{
	unsigned long i;
	int nid;

	if (!IS_ALIGNED(b->phys, PERSIST_BLOCK_SIZE) || b->phys + PERSIST_BLOCK_SIZE < b->phys)
		return PERSIST_REFUSE_ALIGN;
	/*
	 * Before anything else that refuses a block: a refused block is
	 * zeroed, and this one may be an entry accepted before.
	 */
	for (i = 0; i < nr_prev; i++)
		if (prev[i].phys == b->phys)
			return PERSIST_REFUSE_DUPLICATE;
	/* One preserved extent, or none at all: not both. */
	if ((b->flags & ~PERSIST_ALLOC_BLOCK_SER_FLAGS) ||
	    (b->flags & PERSIST_ALLOC_BLOCK_SER_FLAGS) == PERSIST_ALLOC_BLOCK_SER_FLAGS)
		return PERSIST_REFUSE_FLAGS;
	if (b->nid >= nr_node_ids || !node_online(b->nid))
		return PERSIST_REFUSE_NODE;
	nid = env->block_node(b->phys);
	if (nid == -ENOENT)
		return PERSIST_REFUSE_NOT_RAM;
	if (nid != b->nid)
		return PERSIST_REFUSE_WRONG_NODE;
	if (env->in_scratch(b->phys, PERSIST_BLOCK_SIZE))
		return PERSIST_REFUSE_SCRATCH;
	if (!env->preserved(b->phys, PERSIST_ORDER_1G))
		return PERSIST_REFUSE_NOT_PRESERVED;
	return PERSIST_ADOPT;
}

/**
 * persist_block_scrubbable - whether a refused block may be zeroed
 * @b:   the block entry
 * @env: facts about this kernel's memory
 *
 * Only memory that is RAM, outside KHO scratch and preserved by KHO (so
 * reserved and unused by this kernel) is ever written.
 *
 * Return: true if zeroing it harms nobody.
 */
bool persist_block_scrubbable(const struct persist_alloc_block_ser *b,
			      const struct persist_adopt_env *env)
{
	return IS_ALIGNED(b->phys, PERSIST_BLOCK_SIZE) && env->block_node(b->phys) >= 0 &&
	       !env->in_scratch(b->phys, PERSIST_BLOCK_SIZE) &&
	       env->preserved(b->phys, PERSIST_ORDER_1G);
}

/**
 * persist_check_extent - check the fields of a handed-over run of extents
 * @e: the entry
 *
 * Where its granules lie (inside an adopted block, not overlapping) is
 * checked when each is claimed.
 *
 * Return: PERSIST_ADOPT or the reason for refusing the whole run.
 */
enum persist_verdict persist_check_extent(const struct persist_alloc_extent_ser *e)
{
	if (e->flags & PERSIST_ALLOC_SER_HWPOISON) {
		if (e->flags != PERSIST_ALLOC_SER_HWPOISON || e->owner)
			return PERSIST_REFUSE_FLAGS;
		if (e->order != PERSIST_ORDER_4K)
			return PERSIST_REFUSE_ORDER;
		if (e->nr != 1)
			return PERSIST_REFUSE_LENGTH;
		return IS_ALIGNED(e->phys, PAGE_SIZE) ? PERSIST_ADOPT : PERSIST_REFUSE_ALIGN;
	}
	if (e->flags & ~PERSIST_ALLOC_SER_FLAGS)
		return PERSIST_REFUSE_FLAGS;
	if (!persist_order_valid(e->order) ||
	    ((e->flags & PERSIST_ALLOC_SER_HVO) && e->order == PERSIST_ORDER_4K))
		return PERSIST_REFUSE_ORDER;
	if (!IS_ALIGNED(e->phys, PAGE_SIZE << e->order))
		return PERSIST_REFUSE_ALIGN;
	/* At most 2^32 granules of at most 2^30 bytes: no overflow. */
	if (!e->nr || (e->phys & (PERSIST_BLOCK_SIZE - 1)) +
		      ((u64)e->nr << (e->order + PAGE_SHIFT)) > PERSIST_BLOCK_SIZE)
		return PERSIST_REFUSE_LENGTH;
	return PERSIST_ADOPT;
}

/*
 * This kernel's facts, from memblock and KHO: asked only in early boot,
 * memblock may be gone by the initcalls.
 */
static int __init mem_block_node(phys_addr_t base)
{
	unsigned long first = PHYS_PFN(base), last = first + PERSIST_BLOCK_PAGES - 1;
	unsigned long start, end, covered = 0;
	int i, nid, found = NUMA_NO_NODE;
	struct zone *zone;

	for_each_mem_pfn_range(i, MAX_NUMNODES, &start, &end, &nid) {
		start = max(start, first);
		end = min(end, last + 1);
		if (start >= end)
			continue;
		if (found != NUMA_NO_NODE && found != nid)
			return -EXDEV;
		found = nid;
		covered += end - start;
	}
	if (covered != PERSIST_BLOCK_PAGES)
		return -ENOENT;
	for (zone = NODE_DATA(found)->node_zones;
	     zone < NODE_DATA(found)->node_zones + MAX_NR_ZONES; zone++)
		if (zone_spans_pfn(zone, first))
			return zone_spans_pfn(zone, last) ? found : -EXDEV;
	return -EXDEV;
}

static bool __init mem_in_scratch(phys_addr_t base, phys_addr_t size)
{
	return kho_scratch_overlap(base, size);
}

static const struct persist_adopt_env mem_env __initconst = {
	.block_node = mem_block_node,
	.in_scratch = mem_in_scratch,
	.preserved = kho_is_preserved,
};

/*
 * The handed-over blocks, their verdicts and whether a refused one may be
 * zeroed, decided in early boot and used by the adoption.
 */
#define HANDOVER_BLOCKS_MAX	PERSIST_HANDOVER_BLOCKS_MAX
static struct persist_alloc_block_ser handover_blocks[HANDOVER_BLOCKS_MAX] __initdata;
static u8 handover_verdict[HANDOVER_BLOCKS_MAX] __initdata;
static bool handover_scrubbable[HANDOVER_BLOCKS_MAX] __initdata;
static unsigned long nr_handover_blocks __initdata;
/* The handover is KHO-preserved and of this version: adoption reads it. */
static bool handover_understood __initdata;

/*
 * A subtree blob of the previous kernel, read only once KHO says it
 * preserved it as the folio kho_alloc_preserve() makes for its size.
 */
static const void *__init early_blob(const char *name, size_t *size)
{
	phys_addr_t phys;

	if (kho_retrieve_subtree(name, &phys, size))
		return NULL;
	if (!*size || !PAGE_ALIGNED(phys) || !kho_is_preserved(phys, get_order(*size))) {
		pr_err("handover: subtree %s at %pa is not preserved by KHO: ignored\n",
		       name, &phys);
		return NULL;
	}
	return phys_to_virt(phys);
}

/*
 * A handover refused as a whole still names, in its ranges subtree, the
 * memory that holds the sender's data: each range is checked as a block
 * would be, and those this kernel may write are zeroed (see
 * queue_refused_scrub()).
 */
static void __init check_ranges_early(void)
{
	const struct persist_alloc_ranges_ser *r;
	unsigned long i, scrub = 0;
	enum persist_verdict v;
	size_t size;
	long nr = -ENOENT;

	r = early_blob(PERSIST_ALLOC_KHO_RANGES_NAME, &size);
	if (r)
		nr = persist_ranges_nr(r, size);
	if (nr < 0) {
		pr_err("handover refused: not %s, and no list of its memory: that stays reserved, unzeroed\n",
		       PERSIST_ALLOC_KHO_COMPATIBLE);
		return;
	}
	for (i = 0; i < nr; i++) {
		struct persist_alloc_block_ser *b = &handover_blocks[i];
		int nid;

		b->phys = r->phys[i];
		nid = mem_env.block_node(b->phys);
		b->nid = nid < 0 ? 0 : nid;
		handover_verdict[i] = PERSIST_REFUSE_VERSION;
		v = persist_check_block(b, handover_blocks, i, &mem_env);
		handover_scrubbable[i] = v != PERSIST_REFUSE_DUPLICATE &&
					 persist_block_scrubbable(b, &mem_env);
		scrub += handover_scrubbable[i];
		nr_handover_blocks = i + 1;
	}
	pr_err("handover refused: not %s; %lu of its %ld blocks will be zeroed\n",
	       PERSIST_ALLOC_KHO_COMPATIBLE, scrub, nr);
}

/**
 * persist_handover_check_early - check the handed-over blocks before boot uses them
 * @per_node: filled with the number of adoptable blocks per node
 *
 * Called once from persist_alloc_reserve_early(), after
 * kho_memory_init_early() and free_area_init(). Every refused block is
 * reported here.
 *
 * Return: the number of adoptable blocks.
 */
unsigned long __init persist_handover_check_early(unsigned long *per_node)
{
	const struct persist_alloc_block_ser *b;
	const struct persist_alloc_ser *ser;
	unsigned long i, good = 0;
	phys_addr_t phys;
	size_t size;
	long nr;

	ser = early_blob(PERSIST_ALLOC_KHO_NAME, &size);
	if (!ser) {
		/* No handover at all, or one this kernel cannot use: the ranges say. */
		if (!kho_retrieve_subtree(PERSIST_ALLOC_KHO_RANGES_NAME, &phys, &size))
			check_ranges_early();
		return 0;
	}
	nr = persist_handover_nr_blocks(ser, size);
	if (nr < 0) {
		check_ranges_early();
		return 0;
	}
	handover_understood = true;
	b = (const void *)(ser + 1);
	for (i = 0; i < nr; i++) {
		enum persist_verdict v = PERSIST_REFUSE_TOO_MANY;

		if (i < HANDOVER_BLOCKS_MAX) {
			handover_blocks[i] = b[i];
			v = persist_check_block(&b[i], handover_blocks, i, &mem_env);
			handover_verdict[i] = v;
			handover_scrubbable[i] = v != PERSIST_REFUSE_DUPLICATE &&
				persist_block_scrubbable(&b[i], &mem_env);
			nr_handover_blocks = i + 1;
		}
		if (v != PERSIST_ADOPT) {
			pr_err("handover: block %#llx (node %u) refused: %s\n", b[i].phys,
			       b[i].nid, persist_verdict_str(v));
			continue;
		}
		per_node[b[i].nid]++;
		good++;
	}
	return good;
}

/**
 * persist_handover_prehvo_block - the n-th block to pre-HVO on a node
 * @nid:  the node
 * @n:    index among all handed-over blocks, advanced past the one returned
 * @free: set to whether that block is a free 1 GiB HVO folio rather than
 *        one 1 GiB HVO extent
 *
 * Return: the physical address of the next adoptable block of @nid
 * flagged as one 1 GiB HVO extent or as a free 1 GiB HVO folio, or 0 when
 * there is none left.
 */
phys_addr_t __init persist_handover_prehvo_block(int nid, unsigned long *n, bool *free)
{
	for (; *n < nr_handover_blocks; (*n)++) {
		const struct persist_alloc_block_ser *b = &handover_blocks[*n];

		if (handover_verdict[*n] == PERSIST_ADOPT && b->nid == nid &&
		    (b->flags & PERSIST_ALLOC_BLOCK_SER_FLAGS)) {
			*free = b->flags & PERSIST_ALLOC_BLOCK_SER_HVO_FREE;
			(*n)++;
			return b->phys;
		}
	}
	return 0;
}

/*
 * Zero the refused blocks this kernel may write to, then give them to the
 * page allocator: reserved until then, nobody saw their data.
 */
static phys_addr_t *scrub_refused;
static unsigned long nr_scrub_refused;
/* In an entry of scrub_refused: zero the block, but keep it reserved. */
#define SCRUB_KEEP	1

static void scrub_refused_fn(struct work_struct *work)
{
	unsigned long i, j;
	struct page *page;
	phys_addr_t base;

	for (i = 0; i < nr_scrub_refused; i++) {
		base = scrub_refused[i] & ~(phys_addr_t)SCRUB_KEEP;
		persist_zero_pages(PHYS_PFN(base), PERSIST_BLOCK_PAGES);
		if (scrub_refused[i] & SCRUB_KEEP) {
			pr_info("handover: lost block %#llx zeroed, kept reserved\n", (u64)base);
			continue;
		}
		/*
		 * Taken from KHO, which hands a preserved range out once, and
		 * given to the page allocator page by page.
		 */
		page = kho_restore_pages(base, PERSIST_BLOCK_PAGES);
		if (!page) {
			pr_err("handover: refused block %#llx zeroed, kept: KHO does not give it\n",
			       (u64)base);
			continue;
		}
		for (j = 0; j < PERSIST_BLOCK_PAGES; j++) {
			__free_page(page + j);
			if (!(j & 4095))
				cond_resched();
		}
		pr_info("handover: refused block %#llx zeroed and released\n", (u64)base);
	}
	kfree(scrub_refused);
	scrub_refused = NULL;
}

static DECLARE_WORK(scrub_refused_work, scrub_refused_fn);

/**
 * persist_handover_scrub_wait - wait for the zeroing of refused blocks
 *
 * Called before the handover is written: a kexec must not hand the next
 * kernel a refused block half zeroed.
 */
void persist_handover_scrub_wait(void)
{
	flush_work(&scrub_refused_work);
}

static void __init queue_refused_scrub(void)
{
	unsigned long i;
	bool keep;

	scrub_refused = kcalloc(nr_handover_blocks ?: 1, sizeof(*scrub_refused), GFP_KERNEL);
	if (!scrub_refused)
		return;
	for (i = 0; i < nr_handover_blocks; i++) {
		if (handover_verdict[i] == PERSIST_ADOPT || !handover_scrubbable[i])
			continue;
		/*
		 * A block lost after its pre-HVO has struct pages aliasing the
		 * zone's shared tail page: the page allocator must never get it.
		 */
		keep = handover_verdict[i] == PERSIST_REFUSE_NOMEM &&
		       persist_prehvo_done(PHYS_PFN(handover_blocks[i].phys));
		scrub_refused[nr_scrub_refused++] = handover_blocks[i].phys |
						    (keep ? SCRUB_KEEP : 0);
	}
	if (nr_scrub_refused)
		queue_work(system_dfl_long_wq, &scrub_refused_work);
}

static unsigned long flags_from_ser(u32 flags)
{
	return (flags & PERSIST_ALLOC_SER_NO_DIRECT_MAP ? PERSIST_ALLOC_NO_DIRECT_MAP : 0) |
	       (flags & PERSIST_ALLOC_SER_HVO ? PERSIST_ALLOC_HVO : 0);
}

/* Give granules [@from, @to) of the run at @pfn back to their block. */
static void __init unclaim_granules(struct persist_block *blk, unsigned long pfn,
				    unsigned int order, u32 from, u32 to)
{
	unsigned long idx = pfn - PHYS_PFN(blk->base);
	u32 k;

	spin_lock(&blk->pool->lock);
	for (k = from; k < to; k++)
		WARN_ON(persist_block_free(blk, idx + ((unsigned long)k << order), order));
	spin_unlock(&blk->pool->lock);
}

/*
 * Hide @nr pages at @pfn that were mapped back, again. Only part of a
 * large direct map entry may need a split, which can fail: the memory is
 * then free, dirty memory of its block left in the direct map, still
 * zeroed before anyone gets it, and said so.
 */
static void __init rehide_granules(unsigned long pfn, unsigned long nr)
{
	int err = set_direct_map_valid_noflush(pfn_to_page(pfn), nr, false);

	if (err)
		pr_err("handover: %lu refused pages at %#llx left in the direct map (%d)\n",
		       nr, (u64)PFN_PHYS(pfn), err);
}

/* Record the claimed granule at @pfn of run @s, pending its owner or held. */
static int __init adopt_record(struct persist_block *blk,
			       const struct persist_alloc_extent_ser *s,
			       unsigned long pfn, bool quarantine)
{
	struct persist_extent *ext;

	ext = persist_fault() ? NULL : kzalloc_obj(*ext);
	if (!ext)
		return -ENOMEM;
	ext->pfn = pfn;
	ext->order = s->order;
	ext->flags = flags_from_ser(s->flags);
	ext->blk = blk;
	ext->owner = s->owner;
	ext->pending = !quarantine;
	ext->quarantined = quarantine;
	/* A 4 KiB granule is its own folio: nothing to build (see "Prebuilding"). */
	ext->built = ext->pending && !s->order;
	if (persist_extent_insert(ext)) {
		kfree(ext);
		return -ENOMEM;
	}
	ext->prehvo = blk->hvo_1g && persist_prehvo_adopt(pfn, s->order);
	persist_prebuild_mark(ext);
	if (quarantine)
		ext->flags |= PERSIST_ALLOC_NO_DIRECT_MAP;
	return 0;
}

/*
 * Claim the granules of the run @s in its block, in order, and record each
 * one, pending its owner (or held in quarantine), up to the first that is
 * refused; @adopted counts those before it. The run is claimed under one
 * lock round trip, mapped back into the direct map in one call (unless it
 * was preserved out of it, or is quarantined) and counted in its pool
 * once: only the record is per granule.
 *
 * Return: PERSIST_ADOPT, or the verdict on the first refused granule.
 */
static enum persist_verdict __init adopt_granules(const struct persist_alloc_extent_ser *s,
						  bool quarantine, u32 *adopted)
{
	struct persist_block *blk = xa_load(&persist_blocks, s->phys / PERSIST_BLOCK_SIZE);
	bool map = !(s->flags & PERSIST_ALLOC_SER_NO_DIRECT_MAP) && !quarantine;
	unsigned long pfn = PHYS_PFN(s->phys), nr = 1UL << s->order;
	struct persist_pool *pool;
	enum persist_verdict v;
	u32 k, claimed;
	int err = 0;

	*adopted = 0;
	v = persist_check_extent(s);
	if (v != PERSIST_ADOPT)
		return v;
	if (!blk || !blk->handed_over)
		return PERSIST_REFUSE_OUTSIDE;
	if (blk->handed_free)
		return PERSIST_REFUSE_FREE_BLOCK;
	/* A run of more than one 1 GiB granule is refused above. */
	if (blk->hvo_1g && !quarantine &&
	    (s->phys != blk->base || s->order != PERSIST_ORDER_1G ||
	     !(s->flags & PERSIST_ALLOC_SER_HVO)))
		return PERSIST_REFUSE_HVO_BLOCK;
	pool = blk->pool;

	spin_lock(&pool->lock);
	for (claimed = 0; claimed < s->nr; claimed++) {
		err = persist_block_claim(blk, pfn - PHYS_PFN(blk->base) +
					  ((unsigned long)claimed << s->order), s->order);
		if (err)
			break;
		/* A run can be 262144 granules of 4 KiB. */
		cond_resched_lock(&pool->lock);
	}
	spin_unlock(&pool->lock);
	if (err)
		v = err == -EBUSY ? PERSIST_REFUSE_OVERLAP : PERSIST_REFUSE_ALIGN;
	/*
	 * The block was hidden whole when adopted; map back what is not NDM.
	 * Mapping can split a large direct map entry, so it can fail: the run
	 * is then refused from its first granule, and hidden again.
	 */
	if (claimed && map &&
	    set_direct_map_valid_noflush(pfn_to_page(pfn), claimed * nr, true)) {
		rehide_granules(pfn, claimed * nr);
		unclaim_granules(blk, pfn, s->order, 0, claimed);
		return PERSIST_REFUSE_NOMEM;
	}
	for (k = 0; k < claimed; k++)
		if (adopt_record(blk, s, pfn + k * nr, quarantine))
			break;
	if (k < claimed) {
		if (map)
			rehide_granules(pfn + k * nr, (claimed - k) * nr);
		unclaim_granules(blk, pfn, s->order, k, claimed);
		v = PERSIST_REFUSE_NOMEM;
	}
	spin_lock(&pool->lock);
	pool->allocated[persist_order_granule(s->order)] += k;
	if (!quarantine)
		pool->pending_pages += k * nr;
	if (!quarantine && !s->order)
		pool->built_pages += k * nr;
	if (!map)
		pool->no_direct_map_pages += k * nr;
	spin_unlock(&pool->lock);
	*adopted = k;
	return v;
}

/*
 * Adopt the granules of the run @s in order, up to the first that is
 * refused: the run is refused from there. A run whose fields do not hold
 * is refused whole. Counts granules in @listed, adopted ones in @good,
 * refusal lines in @refused; sets @at to the first refused granule (the
 * run's length if none was).
 *
 * Return: PERSIST_ADOPT, or the verdict on the run or its first refused
 * granule.
 */
static enum persist_verdict __init adopt_run(const struct persist_alloc_extent_ser *s,
					     unsigned long *listed, unsigned long *good,
					     unsigned long *refused, u32 *at)
{
	enum persist_verdict v;

	*at = 0;
	v = persist_check_extent(s);
	if (v != PERSIST_ADOPT) {
		(*listed)++;
		if ((*refused)++ < REFUSED_EXTENT_LINES)
			pr_err("handover: extent %#llx order %u (run of %u) refused: %s\n",
			       s->phys, s->order, s->nr, persist_verdict_str(v));
		return v;
	}
	*listed += s->nr;
	v = adopt_granules(s, false, at);
	*good += *at;
	if (v != PERSIST_ADOPT && (*refused)++ < REFUSED_EXTENT_LINES)
		pr_err("handover: extent %#llx order %u refused: %s; %u more of its run with it\n",
		       s->phys + ((u64)*at << (s->order + PAGE_SHIFT)), s->order,
		       persist_verdict_str(v), s->nr - *at - 1);
	return v;
}

/* A failed page: quarantined again, or marking the folio around it. */
static enum persist_verdict __init adopt_hwpoison(const struct persist_alloc_extent_ser *s)
{
	struct persist_block *blk = xa_load(&persist_blocks, s->phys / PERSIST_BLOCK_SIZE);
	enum persist_verdict v = persist_check_extent(s);
	int err;

	if (v != PERSIST_ADOPT)
		return v;
	if (!blk || !blk->handed_over)
		return PERSIST_REFUSE_OUTSIDE;
	mutex_lock(&persist_state_lock);
	err = persist_hwpoison_adopt(blk, PHYS_PFN(s->phys));
	mutex_unlock(&persist_state_lock);
	if (err)
		pr_err("handover: failed page %#llx kept out of use without a record (%d)\n",
		       s->phys, err);
	return PERSIST_ADOPT;
}

/*
 * Adopt the accepted blocks as pools again, their free memory hidden. A
 * block handed over as a free 1 GiB HVO folio and pre-HVO'd joins its
 * pool kept, as a block that persist_alloc_hvo= names does; it is dirty
 * like the others, so taking it zeroes it.
 */
static unsigned long __init adopt_blocks(void)
{
	unsigned long i, nr = 0, nr_plain = 0;
	struct persist_block *blk;
	struct page *page;
	bool kept;
	int err;

	for (i = 0; i < nr_handover_blocks; i++) {
		const struct persist_alloc_block_ser *b = &handover_blocks[i];

		if (handover_verdict[i] != PERSIST_ADOPT)
			continue;
		page = pfn_to_page(PHYS_PFN(b->phys));
		/* KHO leaves its magic on the first page of a preserved range. */
		set_page_private(page, 0);
		kept = (b->flags & PERSIST_ALLOC_BLOCK_SER_HVO_FREE) &&
		       persist_prehvo_done(PHYS_PFN(b->phys));
		/* A consistent free folio from here on, even if it is lost below. */
		if (kept)
			persist_hvo_prepare_free(b->phys, b->nid);
		/* Hidden before it joins a pool: nothing can fail after that. */
		err = set_direct_map_valid_noflush(page, PERSIST_BLOCK_PAGES, false);
		if (!err) {
			err = persist_pool_add_block(b->nid, b->phys, true, kept);
			/* Mapped again for the background zeroing of lost blocks. */
			if (err)
				set_direct_map_valid_noflush(page, PERSIST_BLOCK_PAGES, true);
		}
		if (err) {
			pr_err("handover: block %#llx lost: it cannot join its pool (%d)\n",
			       b->phys, err);
			handover_verdict[i] = PERSIST_REFUSE_NOMEM;
			continue;
		}
		/* Initcalls run one at a time: nobody allocates from it yet. */
		blk = xa_load(&persist_blocks, b->phys / PERSIST_BLOCK_SIZE);
		bitmap_fill(blk->dirty, PERSIST_BLOCK_CHUNKS);
		blk->handed_over = true;
		blk->hvo_1g = b->flags & PERSIST_ALLOC_BLOCK_SER_HVO_1G;
		blk->handed_free = b->flags & PERSIST_ALLOC_BLOCK_SER_HVO_FREE;
		nr_plain += blk->handed_free && !kept;
		nr++;
	}
	if (nr_plain)
		pr_info("handover: %lu free 1 GiB HVO blocks not optimized at boot, adopted as ordinary blocks\n",
			nr_plain);
	return nr;
}

/* Take @blk whole under its pool's lock, which its lists need; 0 or -EBUSY. */
static int __init claim_whole(struct persist_block *blk)
{
	int err;

	spin_lock(&blk->pool->lock);
	err = persist_block_claim(blk, 0, PERSIST_ORDER_1G);
	spin_unlock(&blk->pool->lock);
	return err;
}

/* Hold pre-HVO'd blocks whose extent was refused: nobody may reuse them. */
static void __init quarantine_hvo_blocks(void)
{
	struct persist_alloc_extent_ser s = { .nr = 1, .order = PERSIST_ORDER_1G,
					      .flags = PERSIST_ALLOC_SER_HVO };
	struct persist_block *blk;
	unsigned long i;
	u32 held;

	for (i = 0; i < nr_handover_blocks; i++) {
		if (handover_verdict[i] != PERSIST_ADOPT ||
		    !(handover_blocks[i].flags & PERSIST_ALLOC_BLOCK_SER_HVO_1G))
			continue;
		blk = xa_load(&persist_blocks, handover_blocks[i].phys / PERSIST_BLOCK_SIZE);
		if (!blk || blk->whole)
			continue;
		s.phys = blk->base;
		if (adopt_granules(&s, true, &held) == PERSIST_ADOPT)
			pr_err("handover: block %#llx quarantined: its 1 GiB HVO extent was refused\n",
			       (u64)blk->base);
		else if (!claim_whole(blk))
			/* No extent to hold it: the bookkeeping alone keeps it out of use. */
			pr_err("handover: block %#llx held: its 1 GiB HVO extent was refused\n",
			       (u64)blk->base);
	}
}

/*
 * A blob of the previous kernel, used up: kept while KHO's debugfs shows
 * it, else zeroed and freed. KHO checks it preserved the folio.
 */
static void __init release_blob(const char *name)
{
	phys_addr_t phys;
	size_t size;

	if (!kho_retrieve_subtree(name, &phys, &size))
		kho_restore_subtree_done(phys_to_virt(phys));
}

/*
 * After a kexec, a block carved at boot holds whatever the previous kernel
 * left in that memory, its users' private data among it. It is treated as
 * the free memory of an adopted block: out of the direct map and dirty,
 * zeroed before its first use. Initcalls run one at a time: nobody
 * allocates from the pools yet.
 */
static void __init hide_boot_blocks(void)
{
	struct persist_block *blk;
	unsigned long nr = 0;
	int nid;

	if (!is_kho_boot())
		return;
	for_each_node(nid) {
		if (!persist_pools[nid])
			continue;
		list_for_each_entry(blk, &persist_pools[nid]->blocks, list) {
			/* Still mapped after a failure: the zeroing comes all the same. */
			set_direct_map_valid_noflush(pfn_to_page(PHYS_PFN(blk->base)),
						     PERSIST_BLOCK_PAGES, false);
			bitmap_fill(blk->dirty, PERSIST_BLOCK_CHUNKS);
			nr++;
		}
	}
	if (!nr)
		return;
	flush_tlb_all();
	pr_info("%lu GiB carved after kexec: zeroed before first use\n", nr);
}

/**
 * persist_kho_adopt - take over what the previous kernel handed over
 *
 * Called with persist_resize_lock held, after persist_handover_check_early()
 * decided on the blocks.
 *
 * Return: the number of extents adopted.
 */
unsigned long __init persist_kho_adopt(void)
{
	unsigned long i, nr_blocks, nr_ext = 0, listed = 0, good = 0, refused = 0;
	struct persist_alloc_extent_ser *ext = NULL;
	u8 *verdict = NULL;
	u32 *at = NULL;
	struct persist_alloc_ser *ser;
	u64 start = local_clock();
	phys_addr_t phys;
	size_t size;

	/* Before the handed-over blocks join: those are hidden already. */
	hide_boot_blocks();
	nr_blocks = adopt_blocks();
	/* After adopt_blocks(), so that blocks it lost are zeroed too. */
	queue_refused_scrub();
	release_blob(PERSIST_ALLOC_KHO_RANGES_NAME);
	if (!handover_understood || kho_retrieve_subtree(PERSIST_ALLOC_KHO_NAME, &phys, &size)) {
		release_blob(PERSIST_ALLOC_KHO_NAME);
		persist_received_keep(NULL, 0, NULL, NULL, handover_verdict, nr_handover_blocks);
		return 0;
	}
	ser = phys_to_virt(phys);
	if (nr_blocks && ser->nr_extents) {
		u64 room;

		ext = kho_restore_vmalloc(&ser->extents);
		if (!ext) {
			pr_err("handover: its extent array cannot be restored, all %llu extents refused\n",
			       ser->nr_extents);
		} else {
			room = ((u64)ser->extents.total_pages << PAGE_SHIFT) / sizeof(*ext);
			nr_ext = min_t(u64, ser->nr_extents, room);
			if (nr_ext < ser->nr_extents)
				pr_err("handover: %llu extents counted in a %u page array, %llu refused\n",
				       ser->nr_extents, ser->extents.total_pages,
				       ser->nr_extents - nr_ext);
			/* Kept with the array for debugfs; no verdicts, no array. */
			if (IS_ENABLED(CONFIG_DEBUG_FS)) {
				verdict = kvcalloc(nr_ext, sizeof(*verdict), GFP_KERNEL);
				at = kvcalloc(nr_ext, sizeof(*at), GFP_KERNEL);
			}
		}
	}
	for (i = 0; i < nr_ext; i++) {
		enum persist_verdict v;
		u32 k;

		/* Failed pages after the extents they may lie in. */
		if (ext[i].flags & PERSIST_ALLOC_SER_HWPOISON)
			continue;
		v = adopt_run(&ext[i], &listed, &good, &refused, &k);
		if (verdict)
			verdict[i] = v;
		if (at)
			at[i] = k;
	}
	quarantine_hvo_blocks();
	/* Failed pages last: a quarantined 1 GiB extent already holds its own. */
	for (i = 0; i < nr_ext; i++) {
		enum persist_verdict v;

		if (!(ext[i].flags & PERSIST_ALLOC_SER_HWPOISON))
			continue;
		v = adopt_hwpoison(&ext[i]);
		if (verdict)
			verdict[i] = v;
		listed++;
		if (v == PERSIST_ADOPT) {
			good++;
			continue;
		}
		if (refused++ < REFUSED_EXTENT_LINES)
			pr_err("handover: failed page %#llx refused: %s\n", ext[i].phys,
			       persist_verdict_str(v));
	}
	if (refused > REFUSED_EXTENT_LINES)
		pr_err("handover: %lu more extents refused\n", refused - REFUSED_EXTENT_LINES);
	/* One flush for hiding the blocks and pre-HVO write protection. */
	if (nr_blocks)
		flush_tlb_all();
	/* Entries the array did not hold count as one refused extent each. */
	listed += ser->nr_extents - nr_ext;
	pr_info("adopted %lu of %lu handed-over blocks and %lu of %lu extents in %llu runs, taking %llu us\n",
		nr_blocks, nr_handover_blocks, good, listed, ser->nr_extents,
		div_u64(local_clock() - start, NSEC_PER_USEC));
	persist_received_keep(ext, nr_ext, verdict, at, handover_verdict, nr_handover_blocks);
	release_blob(PERSIST_ALLOC_KHO_NAME);
	if (good)
		persist_prebuild_start();
	return good;
}
