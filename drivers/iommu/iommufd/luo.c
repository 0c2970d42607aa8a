// SPDX-License-Identifier: GPL-2.0
/*
 * Copyright (c) 2026 persistmem developers
 */

/**
 * DOC: iommufd live update
 *
 * An iommufd can be preserved in a LUO session, so that a VMM gets its IO
 * address spaces back after the host kernel is replaced by kexec.
 *
 * What is preserved:
 *   - every IOAS, with its ID and every area: IOVA range, permissions, and
 *     the memory as the token of a file preserved in the same session (a
 *     memfd or a persistent guest_memfd) and an offset in it
 *     (include/linux/kho/abi/iommufd_persist.h);
 *   - every paging HWPT, which must be persistent (IOMMU_HWPT_ALLOC_PERSIST):
 *     its ID, its IOAS, and its page table as the 2 MiB chunks of its arena
 *     plus the top table and level, not one record per table.
 *
 * Preserve refuses an iommufd that has anything else: an area of user
 * memory or of a dma-buf, or of a file not preserved in the session
 * (-EINVAL), a HWPT that is not persistent (-EINVAL), a nested HWPT, a
 * vIOMMU, a fault or event queue or an emulated-device access
 * (-EOPNOTSUPP). Devices bound to the iommufd are not preserved by it.
 *
 * Life cycle:
 *   - preserve checks that the iommufd can be described, and changes
 *     nothing: it keeps working.
 *   - freeze (at kexec reboot) refuses new ioctls, waits up to a second
 *     for those under way (-EBUSY after that, so that an ioctl waiting for
 *     a file frozen before cannot hang the reboot), describes the iommufd
 *     and hands the chunks of its page tables to persist_alloc. From then
 *     on every ioctl that could change an object (map, unmap, copy, attach,
 *     allocation, destruction, options) fails with -EBUSY; devices bound
 *     by their driver (VFIO) are outside this gate, and are not preserved;
 *     the page tables stay as they are, and so does the DMA through them.
 *     A cancelled live update unfreezes: the chunks are unpreserved and the
 *     ioctls work again.
 *   - retrieve (next kernel) checks the whole description, takes the
 *     page-table chunks from persist_alloc, then returns a new iommufd with
 *     each IOAS under its old ID and each area at its IOVA, from the file of
 *     its token, which retrieve takes from the session. The IDs of the
 *     HWPTs are kept free. A retrieve that fails changes nothing preserved
 *     and can be tried again.
 *   - a HWPT takes its page table over when the VMM allocates it again, for
 *     a device, with IOMMU_HWPT_ALLOC_PERSIST on the same IOAS and
 *     IOMMU_HWPT_DATA_PERSIST_ADOPT naming its old ID: the domain's empty
 *     table is replaced by the handed-over one, never rebuilt, once
 *     iommu_persist_tables_adopt() has checked every table and every
 *     translation; each translation must lie inside an area with the area's
 *     permissions, and the areas' memory, pinned through their files as for
 *     any mapping, must be exactly what the table translates them to. The
 *     HWPT gets its old ID. A table that does not match is refused
 *     (-EINVAL) with one kernel log line.
 *   - finish gives the chunks of an iommufd that was not retrieved back to
 *     persist_alloc, which zeroes them. Chunks of a retrieved iommufd that
 *     no HWPT adopted go back to the pools when the iommufd is closed.
 */

#define pr_fmt(fmt) "iommufd_luo: " fmt

#include <linux/delay.h>
#include <linux/file.h>
#include <linux/generic_pt/iommu.h>
#include <linux/iommu.h>
#include <linux/kexec_handover.h>
#include <linux/kho/abi/guest_memfd_persist.h>
#include <linux/kho/abi/iommufd_persist.h>
#include <linux/kho/abi/memfd.h>
#include <linux/ktime.h>
#include <linux/liveupdate.h>
#include <linux/math64.h>
#include <linux/persist_alloc.h>
#include <linux/vmalloc.h>

#include "../iommu-persist.h"
#include "io_pagetable.h"
#include "iommufd_private.h"
#include "luo.h"

/* The handover layout is a contract with the next kernel: see the ABI header. */
static_assert(sizeof(struct iommufd_persist_ioas_ser) == 8);
static_assert(sizeof(struct iommufd_persist_area_ser) == 40);
static_assert(sizeof(struct iommufd_persist_hwpt_ser) == 24);
static_assert(sizeof(struct iommufd_persist_chunk_ser) == 8);

/* The files an area may map: what IOMMU_IOAS_MAP_FILE takes and LUO keeps. */
static const char *const iommufd_luo_area_files[] = {
	GUEST_MEMFD_PERSIST_LUO_COMPATIBLE,
	MEMFD_LUO_FH_COMPATIBLE,
	NULL,
};

/**
 * struct iommufd_luo_image - An iommufd as freeze hands it over
 * @nr_ioas:   number of IOAS
 * @nr_areas:  number of areas
 * @nr_hwpts:  number of HWPTs
 * @nr_chunks: number of table chunks
 * @ioas:      the IOAS array, the start of one vmalloc area holding them all
 * @areas:     the area array
 * @hwpts:     the HWPT array
 * @chunks:    the chunk array
 * @folios:    the folios of @chunks, to preserve and unpreserve them
 */
struct iommufd_luo_image {
	u32 nr_ioas;
	u32 nr_areas;
	u32 nr_hwpts;
	u32 nr_chunks;
	struct iommufd_persist_ioas_ser *ioas;
	struct iommufd_persist_area_ser *areas;
	struct iommufd_persist_hwpt_ser *hwpts;
	struct iommufd_persist_chunk_ser *chunks;
	struct folio **folios;
};

static size_t iommufd_luo_image_size(const struct iommufd_luo_image *img)
{
	return (size_t)img->nr_ioas * sizeof(*img->ioas) +
	       (size_t)img->nr_areas * sizeof(*img->areas) +
	       (size_t)img->nr_hwpts * sizeof(*img->hwpts) +
	       (size_t)img->nr_chunks * sizeof(*img->chunks);
}

/* Point the arrays of @img into @base, laid out as the ABI header says. */
static void iommufd_luo_image_layout(struct iommufd_luo_image *img, void *base)
{
	img->ioas = base;
	img->areas = (void *)(img->ioas + img->nr_ioas);
	img->hwpts = (void *)(img->areas + img->nr_areas);
	img->chunks = (void *)(img->hwpts + img->nr_hwpts);
}

static void iommufd_luo_image_free(struct iommufd_luo_image *img)
{
	vfree(img->ioas);
	kvfree(img->folios);
	memset(img, 0, sizeof(*img));
}

static bool iommufd_luo_ioctl_changes_nothing(unsigned int cmd)
{
	return cmd == IOMMU_GET_HW_INFO || cmd == IOMMU_IOAS_IOVA_RANGES;
}

/**
 * iommufd_luo_ioctl_enter - Let an ioctl in unless its iommufd is frozen
 * @ictx: The iommufd
 * @cmd:  The ioctl
 *
 * Every ioctl but those that change nothing holds the iommufd's live update
 * lock for reading until iommufd_luo_ioctl_exit(), so that freeze finds no
 * change under way and lets none start.
 *
 * Return: 0, or -EBUSY if the iommufd is frozen for a live update.
 */
int iommufd_luo_ioctl_enter(struct iommufd_ctx *ictx, unsigned int cmd)
{
	if (iommufd_luo_ioctl_changes_nothing(cmd))
		return 0;
	down_read(&ictx->luo_rwsem);
	if (READ_ONCE(ictx->luo_frozen)) {
		up_read(&ictx->luo_rwsem);
		return -EBUSY;
	}
	return 0;
}

/**
 * iommufd_luo_ioctl_exit - Counterpart of a successful iommufd_luo_ioctl_enter()
 * @ictx: The iommufd
 * @cmd:  The ioctl
 */
void iommufd_luo_ioctl_exit(struct iommufd_ctx *ictx, unsigned int cmd)
{
	if (!iommufd_luo_ioctl_changes_nothing(cmd))
		up_read(&ictx->luo_rwsem);
}

/* Describe one area, or only check it can be when @out is NULL. */
static int iommufd_luo_area(struct liveupdate_file_op_args *args,
			    struct iopt_area *area,
			    struct iommufd_persist_area_ser *out)
{
	struct iopt_pages *pages = area->pages;
	u64 token;
	int rc;

	/* Being mapped or unmapped: ioctls are excluded, so only in-kernel. */
	if (!pages)
		return -EBUSY;
	if (pages->type != IOPT_ADDRESS_FILE || area->page_offset)
		return -EINVAL;
	rc = liveupdate_session_token(args, pages->file, &token);
	if (rc)
		return rc == -ENOENT ? -EINVAL : rc;
	if (!out)
		return 0;
	out->iova = iopt_area_iova(area);
	out->length = iopt_area_length(area);
	out->token = token;
	out->start = pages->start + iopt_area_start_byte(area, out->iova);
	out->prot = area->iommu_prot & (IOMMU_READ | IOMMU_WRITE);
	out->pad = 0;
	return 0;
}

/*
 * Count (@img arrays NULL) or describe the areas of @ioas. Returns the
 * number of areas or an errno.
 */
static int iommufd_luo_ioas(struct liveupdate_file_op_args *args,
			    struct iommufd_ioas *ioas,
			    struct iommufd_persist_area_ser *out, u32 room)
{
	struct io_pagetable *iopt = &ioas->iopt;
	struct iopt_area *area;
	u32 n = 0;
	int rc = 0;

	down_read(&iopt->iova_rwsem);
	for (area = iopt_area_iter_first(iopt, 0, ULONG_MAX); area;
	     area = iopt_area_iter_next(area, 0, ULONG_MAX)) {
		if (out && n == room) {
			rc = -EBUSY;
			break;
		}
		rc = iommufd_luo_area(args, area, out ? &out[n] : NULL);
		if (rc)
			break;
		n++;
	}
	up_read(&iopt->iova_rwsem);
	return rc ?: n;
}

/*
 * Count or describe the table chunks of a persistent paging HWPT. Returns
 * the number of chunks or an errno.
 */
static int iommufd_luo_hwpt(struct iommufd_hwpt_paging *hwpt_paging,
			    struct iommufd_persist_hwpt_ser *out,
			    struct folio **folios, u32 room)
{
	struct iommu_domain *domain = hwpt_paging->common.domain;
	struct pt_iommu *iommu_table;
	unsigned int level;
	phys_addr_t top;
	int n;

	if (!iommufd_hwpt_domain_is_persistent(domain))
		return -EINVAL;
	iommu_table = iommupt_from_domain(domain);
	n = iommu_persist_tables_describe(iommu_table, out ? folios : NULL,
					  out ? room : 0, &top, &level);
	if (n < 0)
		return n == -ENOSPC ? -EBUSY : n;
	if (!out)
		return n;
	out->top = top;
	out->id = hwpt_paging->common.obj.id;
	out->ioas_id = hwpt_paging->ioas->obj.id;
	out->level = level;
	out->nr_chunks = n;
	return n;
}

static int iommufd_luo_check_type(struct iommufd_object *obj)
{
	switch (obj->type) {
	case IOMMUFD_OBJ_IOAS:
	case IOMMUFD_OBJ_HWPT_PAGING:
	case IOMMUFD_OBJ_DEVICE:
#ifdef CONFIG_IOMMUFD_TEST
	case IOMMUFD_OBJ_SELFTEST:
#endif
		return 0;
	default:
		return -EOPNOTSUPP;
	}
}

/* Running counts of one pass of iommufd_luo_walk(). */
struct iommufd_luo_count {
	u32 nr_ioas;
	u32 nr_areas;
	u32 nr_hwpts;
	u32 nr_chunks;
};

/* Count, or describe when @img's arrays are set up, one object. */
static int iommufd_luo_walk_one(struct liveupdate_file_op_args *args,
				struct iommufd_object *obj,
				struct iommufd_luo_image *img,
				struct iommufd_luo_count *c)
{
	bool fill = img->ioas;
	int n;

	n = iommufd_luo_check_type(obj);
	if (n)
		return n;
	if (obj->type == IOMMUFD_OBJ_IOAS) {
		struct iommufd_ioas *ioas =
			container_of(obj, struct iommufd_ioas, obj);

		if (fill && c->nr_ioas == img->nr_ioas)
			return -EBUSY;
		n = iommufd_luo_ioas(args, ioas,
				     fill ? img->areas + c->nr_areas : NULL,
				     fill ? img->nr_areas - c->nr_areas : 0);
		if (n < 0)
			return n;
		if (fill) {
			img->ioas[c->nr_ioas].id = obj->id;
			img->ioas[c->nr_ioas].nr_areas = n;
		}
		c->nr_ioas++;
		c->nr_areas += n;
	} else if (obj->type == IOMMUFD_OBJ_HWPT_PAGING) {
		struct iommufd_hwpt_paging *hwpt_paging =
			container_of(obj, struct iommufd_hwpt_paging,
				     common.obj);

		if (fill && c->nr_hwpts == img->nr_hwpts)
			return -EBUSY;
		n = iommufd_luo_hwpt(hwpt_paging,
				     fill ? &img->hwpts[c->nr_hwpts] : NULL,
				     fill ? img->folios + c->nr_chunks : NULL,
				     fill ? img->nr_chunks - c->nr_chunks : 0);
		if (n < 0)
			return n;
		c->nr_hwpts++;
		c->nr_chunks += n;
	}
	return 0;
}

/*
 * One pass over the objects of @ictx: count them into @img when its arrays
 * are not set up, else fill the arrays, which must then have room for what
 * the counting pass found. Objects are visited by increasing ID, each with
 * a reference: ioctls cannot change anything (ictx->luo_rwsem is held for
 * writing), but a device driver may unbind a device meanwhile.
 */
static int iommufd_luo_walk(struct liveupdate_file_op_args *args,
			    struct iommufd_ctx *ictx,
			    struct iommufd_luo_image *img)
{
	struct iommufd_luo_count c = {};
	struct iommufd_object *obj;
	unsigned long id;
	void *entry;
	int rc;

	/* What another live update handed over must be adopted first. */
	if (iommufd_luo_tables_pending(ictx->luo_incoming))
		return -EBUSY;
	xa_for_each(&ictx->objects, id, entry) {
		obj = iommufd_get_object(ictx, id, IOMMUFD_OBJ_ANY);
		if (IS_ERR(obj))
			continue;	/* going away */
		rc = iommufd_luo_walk_one(args, obj, img, &c);
		iommufd_put_object(ictx, obj);
		if (rc)
			return rc;
	}
	if (img->ioas)
		return c.nr_ioas == img->nr_ioas && c.nr_areas == img->nr_areas &&
		       c.nr_hwpts == img->nr_hwpts &&
		       c.nr_chunks == img->nr_chunks ? 0 : -EBUSY;
	img->nr_ioas = c.nr_ioas;
	img->nr_areas = c.nr_areas;
	img->nr_hwpts = c.nr_hwpts;
	img->nr_chunks = c.nr_chunks;
	return 0;
}

/* Describe @ictx into @img; the caller holds ictx->luo_rwsem for writing. */
static int iommufd_luo_describe(struct liveupdate_file_op_args *args,
				struct iommufd_ctx *ictx,
				struct iommufd_luo_image *img)
{
	size_t size;
	void *base;
	u32 i;
	int rc;

	memset(img, 0, sizeof(*img));
	rc = iommufd_luo_walk(args, ictx, img);
	if (rc)
		return rc;
	size = iommufd_luo_image_size(img);
	if (!size)
		return 0;
	base = vzalloc(size);
	if (!base)
		return -ENOMEM;
	iommufd_luo_image_layout(img, base);
	if (img->nr_chunks) {
		img->folios = kvcalloc(img->nr_chunks, sizeof(*img->folios),
				       GFP_KERNEL);
		if (!img->folios) {
			rc = -ENOMEM;
			goto err;
		}
	}
	rc = iommufd_luo_walk(args, ictx, img);
	if (rc)
		goto err;
	for (i = 0; i < img->nr_chunks; i++)
		img->chunks[i].phys = PFN_PHYS(folio_pfn(img->folios[i]));
	return 0;
err:
	iommufd_luo_image_free(img);
	return rc;
}

/**
 * struct iommufd_luo - A preserved iommufd, in the preserving kernel
 * @ictx: the iommufd
 * @ser:  its handover header
 * @img:  what freeze described, while frozen
 */
struct iommufd_luo {
	struct iommufd_ctx *ictx;
	struct iommufd_persist_ser *ser;
	struct iommufd_luo_image img;
};

static bool iommufd_luo_can_preserve(struct liveupdate_file_handler *handler,
				     struct file *file)
{
	struct iommufd_ctx *ictx = iommufd_ctx_from_file(file);

	if (IS_ERR(ictx))
		return false;
	iommufd_ctx_put(ictx);
	return true;
}

static int iommufd_luo_preserve(struct liveupdate_file_op_args *args)
{
	struct iommufd_ctx *ictx = args->file->private_data;
	struct iommufd_luo_image img = {};
	struct iommufd_luo *luo;
	int rc;

	/*
	 * Check now what freeze will need, so that the VMM learns it early:
	 * the counting pass refuses what cannot be described.
	 */
	if (down_write_killable(&ictx->luo_rwsem))
		return -EINTR;
	rc = iommufd_luo_walk(args, ictx, &img);
	up_write(&ictx->luo_rwsem);
	if (rc)
		return rc;

	luo = kzalloc_obj(*luo);
	if (!luo)
		return -ENOMEM;
	luo->ser = kho_alloc_preserve(sizeof(*luo->ser));
	if (IS_ERR(luo->ser)) {
		rc = PTR_ERR(luo->ser);
		kfree(luo);
		return rc;
	}
	luo->ictx = ictx;
	args->serialized_data = virt_to_phys(luo->ser);
	args->private_data = luo;
	return 0;
}

static void iommufd_luo_unpreserve(struct liveupdate_file_op_args *args)
{
	struct iommufd_luo *luo = args->private_data;

	kho_unpreserve_free(luo->ser);
	kfree(luo);
}

/*
 * Freeze refuses new ioctls at once, then waits for those under way, but
 * not forever: one may wait for a file of the session that froze before,
 * and the reboot must fail rather than hang. A second is ample for the
 * longest ioctl of a VMM that stopped using the iommufd.
 */
static int iommufd_luo_lock_frozen(struct iommufd_ctx *ictx)
{
	unsigned long deadline = jiffies + HZ;

	WRITE_ONCE(ictx->luo_frozen, true);
	while (!down_write_trylock(&ictx->luo_rwsem)) {
		if (time_after(jiffies, deadline)) {
			WRITE_ONCE(ictx->luo_frozen, false);
			pr_warn("freeze: an ioctl still runs after 1 s\n");
			return -EBUSY;
		}
		usleep_range(1000, 2000);
	}
	return 0;
}

/*
 * One line per frozen iommufd, for the operator reading the log of a
 * kexec: what it hands over and how long the freeze took.
 */
static void iommufd_luo_report_freeze(struct liveupdate_file_op_args *args,
				      const struct iommufd_luo_image *img,
				      u64 ns)
{
	u64 token;

	/* The file is in its session while it freezes. */
	if (WARN_ON_ONCE(liveupdate_session_token(args, args->file, &token)))
		token = 0;
	pr_info("token %#llx frozen in %llu us: %u IOAS, %u areas, %u HWPTs, %u table chunks, %zu bytes of description\n",
		token, div_u64(ns, NSEC_PER_USEC), img->nr_ioas, img->nr_areas,
		img->nr_hwpts, img->nr_chunks,
		sizeof(struct iommufd_persist_ser) + iommufd_luo_image_size(img));
}

static void iommufd_luo_unpreserve_chunks(struct iommufd_luo_image *img,
					  u32 nr)
{
	while (nr--)
		WARN_ON_ONCE(persist_alloc_unpreserve(img->folios[nr]));
}

static int iommufd_luo_freeze(struct liveupdate_file_op_args *args)
{
	struct iommufd_luo *luo = args->private_data;
	struct iommufd_ctx *ictx = luo->ictx;
	struct iommufd_luo_image *img = &luo->img;
	u64 owner = IOMMUFD_PERSIST_OWNER(args->serialized_data);
	u64 start = ktime_get_ns();
	u32 i = 0;
	int rc;

	rc = iommufd_luo_lock_frozen(ictx);
	if (rc)
		return rc;
	rc = iommufd_luo_describe(args, ictx, img);
	if (rc)
		goto out;
	for (i = 0; i < img->nr_chunks; i++) {
		rc = persist_alloc_preserve(img->folios[i], owner);
		if (rc)
			goto err_chunks;
	}
	memset(luo->ser, 0, sizeof(*luo->ser));
	if (img->ioas) {
		rc = kho_preserve_vmalloc(img->ioas, &luo->ser->objects);
		if (rc)
			goto err_chunks;
	}
	luo->ser->nr_ioas = img->nr_ioas;
	luo->ser->nr_areas = img->nr_areas;
	luo->ser->nr_hwpts = img->nr_hwpts;
	luo->ser->nr_chunks = img->nr_chunks;
	up_write(&ictx->luo_rwsem);
	iommufd_luo_report_freeze(args, img, ktime_get_ns() - start);
	return 0;

err_chunks:
	iommufd_luo_unpreserve_chunks(img, i);
	iommufd_luo_image_free(img);
out:
	WRITE_ONCE(ictx->luo_frozen, false);
	up_write(&ictx->luo_rwsem);
	return rc;
}

static void iommufd_luo_unfreeze(struct liveupdate_file_op_args *args)
{
	struct iommufd_luo *luo = args->private_data;
	struct iommufd_ctx *ictx = luo->ictx;
	struct iommufd_luo_image *img = &luo->img;

	down_write(&ictx->luo_rwsem);
	if (img->ioas)
		kho_unpreserve_vmalloc(&luo->ser->objects);
	iommufd_luo_unpreserve_chunks(img, img->nr_chunks);
	iommufd_luo_image_free(img);
	memset(luo->ser, 0, sizeof(*luo->ser));
	WRITE_ONCE(ictx->luo_frozen, false);
	up_write(&ictx->luo_rwsem);
}

/*
 * The arrays of a handed-over iommufd. KHO restores a vmalloc area only
 * once: it stays in the file's private data, for a retry and for finish;
 * ERR_PTR(-EINVAL) records arrays that could not be restored.
 */
static void *iommufd_luo_objects(struct liveupdate_file_op_args *args,
				 const struct iommufd_persist_ser *ser)
{
	void *objects = args->private_data;

	if (objects || !ser->objects.total_pages)
		return objects;
	objects = kho_restore_vmalloc(&ser->objects);
	if (!objects)
		objects = ERR_PTR(-EINVAL);
	args->private_data = objects;
	return objects;
}

static void iommufd_luo_put_objects(struct liveupdate_file_op_args *args)
{
	if (!IS_ERR(args->private_data))
		vfree(args->private_data);
	args->private_data = NULL;
}

/*
 * Lay the handed-over arrays out in @img and check everything retrieve
 * relies on: the arrays fit in what was restored, IDs are valid and
 * unique, areas are page-aligned, inside the IOVA space, readable or
 * writable, and do not overlap within their IOAS, every HWPT names a
 * preserved IOAS and owns at least one chunk, of whole 2 MiB.
 */
static int iommufd_luo_check(const struct iommufd_persist_ser *ser,
			     void *objects, struct iommufd_luo_image *img)
{
	u32 i, j, a = 0, c = 0;
	size_t size;

	memset(img, 0, sizeof(*img));
	img->nr_ioas = ser->nr_ioas;
	img->nr_areas = ser->nr_areas;
	img->nr_hwpts = ser->nr_hwpts;
	img->nr_chunks = ser->nr_chunks;
	size = iommufd_luo_image_size(img);
	if (size > (size_t)ser->objects.total_pages * PAGE_SIZE ||
	    (size && IS_ERR_OR_NULL(objects)))
		return -EINVAL;
	if (!size)
		return 0;
	iommufd_luo_image_layout(img, objects);

	for (i = 0; i < img->nr_ioas; i++) {
		const struct iommufd_persist_ioas_ser *ioas = &img->ioas[i];
		u64 next = 0;

		if (!ioas->id || ioas->id > INT_MAX ||
		    (i && ioas->id <= img->ioas[i - 1].id) ||
		    ioas->nr_areas > img->nr_areas - a)
			return -EINVAL;
		for (j = 0; j < ioas->nr_areas; j++, a++) {
			const struct iommufd_persist_area_ser *area = &img->areas[a];
			u64 last;

			if (!area->length || area->pad ||
			    !PAGE_ALIGNED(area->iova | area->length | area->start) ||
			    !area->prot ||
			    (area->prot & ~(IOMMU_READ | IOMMU_WRITE)) ||
			    check_add_overflow(area->iova, area->length - 1, &last) ||
			    area->iova < next ||
			    area->start + area->length < area->start)
				return -EINVAL;
			next = last + 1;
			if (!next)	/* the area ends at the top: no more */
				next = U64_MAX;
		}
	}
	if (a != img->nr_areas)
		return -EINVAL;

	for (i = 0; i < img->nr_hwpts; i++) {
		const struct iommufd_persist_hwpt_ser *hwpt = &img->hwpts[i];
		bool ioas_found = false;

		if (!hwpt->id || hwpt->id > INT_MAX ||
		    (i && hwpt->id <= img->hwpts[i - 1].id) ||
		    !hwpt->nr_chunks || hwpt->nr_chunks > img->nr_chunks - c)
			return -EINVAL;
		for (j = 0; j < img->nr_ioas; j++) {
			if (img->ioas[j].id == hwpt->id)
				return -EINVAL;
			if (img->ioas[j].id == hwpt->ioas_id)
				ioas_found = true;
		}
		if (!ioas_found)
			return -EINVAL;
		for (j = 0; j < hwpt->nr_chunks; j++, c++)
			if (!IS_ALIGNED(img->chunks[c].phys, SZ_2M))
				return -EINVAL;
	}
	return c == img->nr_chunks ? 0 : -EINVAL;
}

/* Give every table chunk back to persist_alloc, which zeroes it. */
static void iommufd_luo_release_chunks(const struct iommufd_luo_image *img,
				       u64 owner)
{
	u32 i;

	for (i = 0; i < img->nr_chunks; i++) {
		int rc = persist_alloc_release(img->chunks[i].phys, owner);

		if (rc && rc != -ENOENT)
			pr_warn("table chunk at %#llx not released: %pe\n",
				img->chunks[i].phys, ERR_PTR(rc));
		cond_resched();
	}
}

/* Map the areas of one handed-over IOAS again, each from its file. */
static int iommufd_luo_restore_areas(struct liveupdate_file_op_args *args,
				     struct iommufd_ctx *ictx,
				     struct iommufd_ioas *ioas,
				     const struct iommufd_persist_area_ser *areas,
				     u32 nr)
{
	u32 i;

	for (i = 0; i < nr; i++) {
		const struct iommufd_persist_area_ser *area = &areas[i];
		struct file *file;
		int rc;

		rc = liveupdate_session_retrieve(args, area->token,
						 iommufd_luo_area_files, &file);
		if (rc) {
			pr_err("file of token %#llx for IOVA %#llx: %pe\n",
			       area->token, area->iova, ERR_PTR(rc));
			return rc;
		}
		rc = iopt_map_file(ictx, &ioas->iopt, area->iova, file,
				   area->start, area->length,
				   area->prot | IOMMU_CACHE);
		fput(file);
		if (rc) {
			pr_err("area at IOVA %#llx length %#llx not restored: %pe\n",
			       area->iova, area->length, ERR_PTR(rc));
			return rc;
		}
	}
	return 0;
}

/*
 * Build the new iommufd: each IOAS under its old ID, its areas mapped
 * again. On error the caller releases the file, which destroys whatever
 * was built.
 */
static int iommufd_luo_restore(struct liveupdate_file_op_args *args,
			       struct iommufd_ctx *ictx,
			       const struct iommufd_luo_image *img)
{
	const struct iommufd_persist_area_ser *areas = img->areas;
	u32 i;
	int rc;

	/* A HWPT gets its ID back when it adopts its table: keep it free. */
	for (i = 0; i < img->nr_hwpts; i++) {
		rc = xa_insert(&ictx->objects, img->hwpts[i].id, NULL,
			       GFP_KERNEL_ACCOUNT);
		if (rc)
			return rc;
	}
	for (i = 0; i < img->nr_ioas; i++) {
		struct iommufd_ioas *ioas = iommufd_ioas_alloc(ictx);

		if (IS_ERR(ioas))
			return PTR_ERR(ioas);
		rc = iommufd_object_move_id(ictx, &ioas->obj, img->ioas[i].id);
		if (rc) {
			iommufd_object_abort_and_destroy(ictx, &ioas->obj);
			return rc;
		}
		iommufd_object_finalize(ictx, &ioas->obj);
		rc = iommufd_luo_restore_areas(args, ictx, ioas, areas,
					       img->ioas[i].nr_areas);
		if (rc)
			return rc;
		areas += img->ioas[i].nr_areas;
	}
	return 0;
}

static int iommufd_luo_retrieve(struct liveupdate_file_op_args *args)
{
	const struct iommufd_persist_ser *ser = phys_to_virt(args->serialized_data);
	u64 owner = IOMMUFD_PERSIST_OWNER(args->serialized_data);
	struct iommufd_luo_incoming *in;
	struct iommufd_luo_image img;
	struct iommufd_ctx *ictx;
	struct file *file;
	void *objects;
	int rc;

	objects = iommufd_luo_objects(args, ser);
	rc = iommufd_luo_check(ser, objects, &img);
	if (rc) {
		pr_err("refusing iommufd: %u IOAS, %u areas, %u HWPTs, %u chunks\n",
		       ser->nr_ioas, ser->nr_areas, ser->nr_hwpts,
		       ser->nr_chunks);
		return rc;
	}
	in = iommufd_luo_tables_restore(img.hwpts, img.nr_hwpts, img.chunks,
					owner);
	if (IS_ERR(in))
		return PTR_ERR(in);
	file = iommufd_ctx_file_create();
	if (IS_ERR(file)) {
		rc = PTR_ERR(file);
		goto err_tables;
	}
	ictx = file->private_data;
	rc = iommufd_luo_restore(args, ictx, &img);
	if (rc)
		goto err_file;
	ictx->luo_incoming = in;
	args->file = file;
	return 0;

err_file:
	fput(file);
err_tables:
	iommufd_luo_tables_unrestore(in, owner);
	return rc;
}

static void iommufd_luo_finish(struct liveupdate_file_op_args *args)
{
	struct iommufd_persist_ser *ser = phys_to_virt(args->serialized_data);
	struct iommufd_luo_image img;
	void *objects;

	objects = iommufd_luo_objects(args, ser);
	/* Retrieved, the new iommufd took every chunk; else they go back. */
	if (args->retrieve_status <= 0) {
		if (iommufd_luo_check(ser, objects, &img))
			pr_err("description refused: %u table chunks stay unused\n",
			       ser->nr_chunks);
		else
			iommufd_luo_release_chunks(&img,
						   IOMMUFD_PERSIST_OWNER(args->serialized_data));
	}
	iommufd_luo_put_objects(args);
	kho_restore_free(ser);
}

static const struct liveupdate_file_ops iommufd_luo_file_ops = {
	.can_preserve = iommufd_luo_can_preserve,
	.preserve = iommufd_luo_preserve,
	.unpreserve = iommufd_luo_unpreserve,
	.freeze = iommufd_luo_freeze,
	.unfreeze = iommufd_luo_unfreeze,
	.retrieve = iommufd_luo_retrieve,
	.finish = iommufd_luo_finish,
	.owner = THIS_MODULE,
	.retrieve_retry = true,
};

static struct liveupdate_file_handler iommufd_luo_handler = {
	.ops = &iommufd_luo_file_ops,
	.compatible = IOMMUFD_PERSIST_LUO_COMPATIBLE,
};

/**
 * iommufd_luo_init - Register the live update handler of iommufd files
 *
 * A kernel without live update has nothing to register; that is no error.
 */
void iommufd_luo_init(void)
{
	int rc = liveupdate_register_file_handler(&iommufd_luo_handler);

	if (rc && rc != -EOPNOTSUPP)
		pr_err("live update handler not registered: %pe\n", ERR_PTR(rc));
}

/**
 * iommufd_luo_exit - Unregister the live update handler of iommufd files
 */
void iommufd_luo_exit(void)
{
	liveupdate_unregister_file_handler(&iommufd_luo_handler);
}

#if IS_ENABLED(CONFIG_IOMMU_PERSIST_KUNIT_TEST)
#include "luo_kunit.c"
#endif
