// SPDX-License-Identifier: GPL-2.0
/*
 * Copyright (c) 2026 persistmem developers
 */

/**
 * DOC: Adopting a handed-over page table
 *
 * A retrieved iommufd keeps the page tables the previous kernel handed over,
 * taken from persist_alloc at retrieve, each for its HWPT. The HWPT takes its
 * table over when the VMM allocates it again with
 * IOMMU_HWPT_DATA_PERSIST_ADOPT (see luo.c for the life cycle): the table is
 * adopted as it is and checked against the IOAS on the way, under the
 * io_pagetable's locks:
 *
 *   - iommu_persist_tables_adopt() checks every table and hands each
 *     translation here; it must lie inside one area, after the one before,
 *     and get the area's permissions;
 *   - the areas' memory is then pinned through their files as for a map,
 *     and each pinned run must be what the translations say;
 *   - the translations must cover the areas exactly, nothing else.
 *
 * Nothing is mapped: the domain's tables are those the device used before.
 */

#define pr_fmt(fmt) "iommufd_luo: " fmt

#include <linux/generic_pt/iommu.h>
#include <linux/iommu.h>
#include <linux/kho/abi/iommufd_persist.h>
#include <linux/persist_alloc.h>
#include <uapi/linux/iommufd.h>

#include "../iommu-persist.h"
#include "io_pagetable.h"
#include "iommufd_private.h"
#include "luo.h"

/**
 * struct iommufd_luo_pending - A handed-over page table, until a HWPT adopts it
 * @id:      ID of its HWPT, reserved in the new iommufd
 * @ioas_id: ID of the IOAS it maps
 * @top:     physical address of its top table
 * @level:   level of its top table
 * @nr:      number of chunks; 0 once adopted or lost
 * @busy:    an adoption is under way
 * @folios:  the chunks, restored from persist_alloc
 */
struct iommufd_luo_pending {
	u32 id;
	u32 ioas_id;
	phys_addr_t top;
	unsigned int level;
	unsigned int nr;
	bool busy;
	struct folio **folios;
};

/**
 * struct iommufd_luo_incoming - The page tables a retrieved iommufd holds
 * @lock:  protects the entries of @hwpts
 * @nr:    number of entries
 * @hwpts: one per handed-over HWPT
 */
struct iommufd_luo_incoming {
	struct mutex lock;	/* protects the entries of @hwpts */
	unsigned int nr;
	struct iommufd_luo_pending hwpts[] __counted_by(nr);
};

/**
 * iommufd_luo_tables_pending - Whether a page table waits for its HWPT
 * @in: The handed-over page tables of an iommufd, or NULL
 *
 * Return: true if one of @in was adopted by no HWPT yet.
 */
bool iommufd_luo_tables_pending(struct iommufd_luo_incoming *in)
{
	unsigned int i;

	if (!in)
		return false;
	guard(mutex)(&in->lock);
	for (i = 0; i < in->nr; i++)
		if (in->hwpts[i].nr)
			return true;
	return false;
}

static void iommufd_luo_incoming_free(struct iommufd_luo_incoming *in,
				      u64 owner, bool unrestore)
{
	unsigned int i, j;

	for (i = 0; i < in->nr; i++) {
		struct iommufd_luo_pending *p = &in->hwpts[i];

		for (j = 0; j < p->nr; j++) {
			if (!p->folios[j])
				continue;
			if (unrestore)
				WARN_ON_ONCE(persist_alloc_unrestore(p->folios[j], owner));
			else
				WARN_ON_ONCE(persist_free_folio(p->folios[j]));
		}
		kvfree(p->folios);
	}
	mutex_destroy(&in->lock);
	kfree(in);
}

/**
 * iommufd_luo_tables_restore - Take handed-over page tables from persist_alloc
 * @hwpts:    The HWPTs of a checked description
 * @nr_hwpts: Number of @hwpts
 * @chunks:   Their chunks, in the order of @hwpts
 * @owner:    The persist_alloc owner key of the chunks
 *
 * All or nothing: on failure the chunks taken go back to pending, untouched.
 *
 * Return: the page tables, each kept for its HWPT, or an ERR_PTR: the
 * error of persist_alloc_restore() for a chunk (-ENOENT, -EPERM for one it
 * does not hold for @owner), or -ENOMEM.
 */
struct iommufd_luo_incoming *
iommufd_luo_tables_restore(const struct iommufd_persist_hwpt_ser *hwpts,
			   u32 nr_hwpts,
			   const struct iommufd_persist_chunk_ser *chunks,
			   u64 owner)
{
	const struct iommufd_persist_chunk_ser *chunk = chunks;
	struct iommufd_luo_incoming *in;
	unsigned int i, j;
	int rc = -ENOMEM;

	in = kzalloc(struct_size(in, hwpts, nr_hwpts), GFP_KERNEL_ACCOUNT);
	if (!in)
		return ERR_PTR(-ENOMEM);
	mutex_init(&in->lock);
	in->nr = nr_hwpts;
	for (i = 0; i < in->nr; i++) {
		const struct iommufd_persist_hwpt_ser *hwpt = &hwpts[i];
		struct iommufd_luo_pending *p = &in->hwpts[i];

		p->id = hwpt->id;
		p->ioas_id = hwpt->ioas_id;
		p->top = hwpt->top;
		p->level = hwpt->level;
		p->folios = kvcalloc(hwpt->nr_chunks, sizeof(*p->folios),
				     GFP_KERNEL_ACCOUNT);
		if (hwpt->nr_chunks && !p->folios)
			goto err;
		p->nr = hwpt->nr_chunks;
		for (j = 0; j < p->nr; j++, chunk++) {
			struct folio *folio = persist_alloc_restore(chunk->phys, owner);

			if (IS_ERR(folio)) {
				pr_err("HWPT %u: table chunk at %#llx not restored: %pe\n",
				       p->id, chunk->phys, folio);
				rc = PTR_ERR(folio);
				goto err;
			}
			p->folios[j] = folio;
		}
	}
	return in;
err:
	iommufd_luo_incoming_free(in, owner, true);
	return ERR_PTR(rc);
}

/**
 * iommufd_luo_tables_unrestore - Undo iommufd_luo_tables_restore()
 * @in:    What it returned
 * @owner: The persist_alloc owner key of the chunks
 *
 * The chunks go back to pending, untouched, for a retrieve to come.
 */
void iommufd_luo_tables_unrestore(struct iommufd_luo_incoming *in, u64 owner)
{
	iommufd_luo_incoming_free(in, owner, true);
}

/**
 * struct iommufd_luo_leaf - Translations of a handed-over page table
 * @iova: first IOVA
 * @pa:   physical address it translates to
 * @size: bytes translated, linearly, from @iova to @pa
 *
 * Items that continue the previous one in both IOVA and memory extend it,
 * so that a mapping of contiguous memory takes one entry, not one per page.
 */
struct iommufd_luo_leaf {
	unsigned long iova;
	phys_addr_t pa;
	unsigned long size;
};

/**
 * struct iommufd_luo_adoption - A HWPT adopting a handed-over page table
 * @pending:     what it adopts
 * @iommu_table: its domain's page table
 * @iopt:        its IOAS's io_pagetable
 * @leaves:      the translations found, by increasing IOVA
 * @nr:          number of @leaves
 * @max:         room in @leaves
 * @leaf_bytes:  bytes the translations cover
 * @area_bytes:  bytes of the areas checked against them
 * @adopted:     the domain has taken the tables over
 */
struct iommufd_luo_adoption {
	struct device *dev;
	struct iommufd_luo_pending *pending;
	struct pt_iommu *iommu_table;
	struct io_pagetable *iopt;
	struct iommufd_luo_leaf *leaves;
	unsigned long nr;
	unsigned long max;
	u64 leaf_bytes;
	u64 area_bytes;
	bool adopted;
};

/*
 * Record a translation after the previous one: a translation that goes on
 * from it in both IOVA and memory extends it.
 */
static int iommufd_luo_leaf_record(struct iommufd_luo_adoption *ad,
				   unsigned long iova, phys_addr_t pa,
				   unsigned long size)
{
	struct iommufd_luo_leaf *leaf;

	if (ad->nr) {
		leaf = &ad->leaves[ad->nr - 1];
		if (iova < leaf->iova || iova - leaf->iova < leaf->size)
			return -EINVAL;
		if (iova - leaf->iova == leaf->size &&
		    pa == leaf->pa + leaf->size) {
			leaf->size += size;
			ad->leaf_bytes += size;
			return 0;
		}
	}
	if (ad->nr == ad->max) {
		unsigned long max = ad->max ? 2 * ad->max : 64;

		leaf = kvrealloc(ad->leaves, array_size(max, sizeof(*leaf)),
				 GFP_KERNEL_ACCOUNT);
		if (!leaf)
			return -ENOMEM;
		ad->leaves = leaf;
		ad->max = max;
	}
	ad->leaves[ad->nr++] = (struct iommufd_luo_leaf) {
		.iova = iova, .pa = pa, .size = size,
	};
	ad->leaf_bytes += size;
	return 0;
}

/*
 * A translation of the handed-over table, one item at a time, must lie
 * inside one area of the IOAS, after the one before, and have the area's
 * permissions; it is recorded to be compared with the area's memory once
 * that is pinned.
 */
static int iommufd_luo_leaf(void *arg, dma_addr_t iova, phys_addr_t pa,
			    unsigned int size_lg2, unsigned int *prot)
{
	struct iommufd_luo_adoption *ad = arg;
	struct iopt_area *area;
	unsigned long last;

	if (size_lg2 >= BITS_PER_LONG ||
	    check_add_overflow(iova, (1UL << size_lg2) - 1, &last))
		return -EINVAL;
	area = iopt_area_iter_first(ad->iopt, iova, last);
	if (!area || !area->pages || iova < iopt_area_iova(area) ||
	    last > iopt_area_last_iova(area))
		return -EINVAL;
	*prot = area->iommu_prot;
	return iommufd_luo_leaf_record(ad, iova, pa, 1UL << size_lg2);
}

static int iommufd_luo_adopt_tables(void *arg)
{
	struct iommufd_luo_adoption *ad = arg;
	struct iommufd_luo_pending *p = ad->pending;
	int rc;

	rc = iommu_persist_tables_adopt(ad->iommu_table, p->folios, p->nr,
					p->top, p->level, iommufd_luo_leaf, ad);
	ad->adopted = !rc;
	/* The domain knows ad->dev only: nothing else may translate with it */
	if (!rc)
		iommu_live_update_release_table(ad->dev, p->top);
	return rc;
}

/* The translation of each pinned run of each area is that run. */
static int iommufd_luo_check_run(void *arg, struct iopt_area *area,
				 unsigned long iova, phys_addr_t pa,
				 unsigned long len)
{
	struct iommufd_luo_adoption *ad = arg;
	unsigned long lo = 0, hi = ad->nr;

	/* The last translation starting at or below @iova. */
	while (hi - lo > 1) {
		unsigned long mid = lo + (hi - lo) / 2;

		if (ad->leaves[mid].iova <= iova)
			lo = mid;
		else
			hi = mid;
	}
	while (len) {
		const struct iommufd_luo_leaf *leaf = &ad->leaves[lo];
		unsigned long n;

		if (lo >= ad->nr || iova < leaf->iova ||
		    iova - leaf->iova >= leaf->size ||
		    leaf->pa + (iova - leaf->iova) != pa)
			return -EINVAL;
		n = min(len, leaf->size - (iova - leaf->iova));
		iova += n;
		pa += n;
		len -= n;
		ad->area_bytes += n;
		lo++;
	}
	return 0;
}

/* Every translation was inside an area: nothing else is mapped. */
static int iommufd_luo_check_done(void *arg)
{
	struct iommufd_luo_adoption *ad = arg;

	return ad->area_bytes == ad->leaf_bytes ? 0 : -EINVAL;
}

static const struct iopt_adopt_ops iommufd_luo_adopt_ops = {
	.adopt = iommufd_luo_adopt_tables,
	.check = iommufd_luo_check_run,
	.done = iommufd_luo_check_done,
};

/**
 * iommufd_luo_adopt_id - Read what IOMMU_HWPT_DATA_PERSIST_ADOPT asks for
 * @ictx:      The iommufd
 * @flags:     IOMMU_HWPT_ALLOC_* of the allocation
 * @user_data: Its data, of type IOMMU_HWPT_DATA_PERSIST_ADOPT
 * @id:        Receives the ID of the handed-over HWPT
 *
 * Return: 0; -EINVAL without IOMMU_HWPT_ALLOC_PERSIST, for a reserved field
 * set or an ID of no handed-over page table; -EFAULT.
 */
int iommufd_luo_adopt_id(struct iommufd_ctx *ictx, u32 flags,
			 const struct iommu_user_data *user_data, u32 *id)
{
	struct iommufd_luo_incoming *in = ictx->luo_incoming;
	struct iommu_hwpt_persist_adopt data;
	unsigned int i;
	int rc;

	if (!(flags & IOMMU_HWPT_ALLOC_PERSIST))
		return -EINVAL;
	rc = iommu_copy_struct_from_user(&data, user_data,
					 IOMMU_HWPT_DATA_PERSIST_ADOPT,
					 __reserved);
	if (rc)
		return rc;
	if (data.__reserved || !data.hwpt_id || !in)
		return -EINVAL;
	for (i = 0; i < in->nr; i++) {
		if (in->hwpts[i].id == data.hwpt_id) {
			*id = data.hwpt_id;
			return 0;
		}
	}
	return -EINVAL;
}

static struct iommufd_luo_pending *
iommufd_luo_pending_get(struct iommufd_luo_incoming *in, u32 id)
{
	unsigned int i;

	guard(mutex)(&in->lock);
	for (i = 0; i < in->nr; i++) {
		struct iommufd_luo_pending *p = &in->hwpts[i];

		if (p->id != id || !p->nr)
			continue;
		if (p->busy)
			return ERR_PTR(-EBUSY);
		p->busy = true;
		return p;
	}
	return ERR_PTR(-EINVAL);
}

/**
 * iommufd_luo_pending_ioas - The IOAS of a table no HWPT adopted yet
 * @ictx:    The retrieved iommufd
 * @id:      ID of the HWPT the table had
 * @ioas_id: Receives the ID of the IOAS it maps
 *
 * Return: 0, or -ENOENT if no table of @id waits for its HWPT.
 */
int iommufd_luo_pending_ioas(struct iommufd_ctx *ictx, u32 id, u32 *ioas_id)
{
	struct iommufd_luo_incoming *in = ictx->luo_incoming;
	unsigned int i;

	if (!in)
		return -ENOENT;
	guard(mutex)(&in->lock);
	for (i = 0; i < in->nr; i++) {
		if (in->hwpts[i].id == id && in->hwpts[i].nr) {
			*ioas_id = in->hwpts[i].ioas_id;
			return 0;
		}
	}
	return -ENOENT;
}

/**
 * iommufd_luo_hwpt_adopt - Give a new persistent HWPT its handed-over table
 * @idev:        The device the HWPT is allocated for, bound to the retrieved
 *               iommufd
 * @hwpt_paging: The HWPT, allocated with IOMMU_HWPT_ALLOC_PERSIST on the
 *               IOAS the table maps, not added to it yet
 * @id:          ID the HWPT had, from iommufd_luo_adopt_id()
 *
 * The domain's empty table is replaced by the handed-over one, checked
 * against the IOAS: every translation inside an area with its permissions,
 * every area translated to the memory of its file, which is pinned as any
 * mapping's. On success the HWPT has its old ID and its IOAS the domain.
 * Once the domain took the tables over, any other device that still
 * translates through them is blocked (iommu_live_update_release_table()):
 * the domain knows @idev's device only. On a failure before the tables were
 * taken over nothing changed; after, the tables go with the domain when the
 * HWPT is destroyed, and @idev's device, if it still translates through
 * them, is blocked first.
 *
 * Return: 0; -EBUSY if another adoption of @id runs; -EINVAL if the table
 * was adopted already, maps another IOAS or does not match it; the errors
 * of iommu_persist_tables_adopt() or of pinning.
 */
int iommufd_luo_hwpt_adopt(struct iommufd_device *idev,
			   struct iommufd_hwpt_paging *hwpt_paging, u32 id)
{
	struct iommufd_ctx *ictx = idev->ictx;
	struct iommufd_ioas *ioas = hwpt_paging->ioas;
	struct iommufd_luo_adoption ad = {
		.dev = idev->dev,
		.iommu_table = iommupt_from_domain(hwpt_paging->common.domain),
		.iopt = &ioas->iopt,
	};
	struct iommufd_luo_incoming *in = ictx->luo_incoming;
	struct iommufd_luo_pending *p;
	int rc;

	p = iommufd_luo_pending_get(in, id);
	if (IS_ERR(p))
		return PTR_ERR(p);
	ad.pending = p;
	if (p->ioas_id != ioas->obj.id) {
		rc = -EINVAL;
	} else {
		rc = iopt_table_adopt_domain(&ioas->iopt,
					     hwpt_paging->common.domain,
					     &iommufd_luo_adopt_ops, &ad);
		if (rc)
			pr_err_ratelimited("HWPT %u: handed-over page table %s: %pe\n",
					   id, ad.adopted ?
					   "does not match its IOAS" : "refused",
					   ERR_PTR(rc));
	}
	kvfree(ad.leaves);

	mutex_lock(&in->lock);
	if (ad.adopted) {
		/* The chunks are the domain's now, whatever happened next. */
		kvfree(p->folios);
		p->folios = NULL;
		p->nr = 0;
	}
	p->busy = false;
	mutex_unlock(&in->lock);
	if (rc) {
		if (ad.adopted && iommu_live_update_release_device(idev->dev))
			dev_err(idev->dev, "handed-over DMA blocked: its page table was refused\n");
		return rc;
	}

	/* Into the slot kept for it: iommufd_object_finalize() fills it. */
	xa_erase(&ictx->objects, hwpt_paging->common.obj.id);
	hwpt_paging->common.obj.id = id;
	return 0;
}

/**
 * iommufd_luo_ctx_destroy - Free what a retrieved iommufd did not adopt
 * @ictx: The iommufd, its objects destroyed
 *
 * persist_alloc zeroes the chunks before it hands them out again.
 */
void iommufd_luo_ctx_destroy(struct iommufd_ctx *ictx)
{
	if (ictx->luo_incoming)
		iommufd_luo_incoming_free(ictx->luo_incoming, 0, false);
	ictx->luo_incoming = NULL;
}

#if IS_ENABLED(CONFIG_IOMMU_PERSIST_KUNIT_TEST)
#include "luo_adopt_kunit.c"
#endif
