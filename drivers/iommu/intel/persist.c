// SPDX-License-Identifier: GPL-2.0
/*
 * Copyright (c) 2026 persistmem developers
 */

/**
 * DOC: VT-d translation kept across a live update
 *
 * A device preserved for a live update (drivers/vfio/vfio_luo.c) keeps
 * doing DMA while the kernel is replaced; its VT-d unit must keep
 * translating it with the same page table, a persistent one whose tables
 * persist_alloc hands over, and must translate nothing else.
 *
 * In the preserving kernel, the freeze of such a device copies its live
 * context entry into a root and context table of its unit allocated with
 * kho_alloc_preserve(), and records the entry in the KHO subtree of
 * include/linux/kho/abi/intel_iommu_persist.h. In scalable mode the copy
 * points at a PASID directory and table of its own, also preserved, that
 * hold a copy of the device's live RID_PASID entry, and the record
 * describes that entry. At the kexec the unit is switched to that root
 * table instead of being disabled: from then on only preserved devices
 * translate, through their own tables.
 *
 * The next kernel finds translation enabled. If the subtree names the
 * unit and the unit runs in the mode it was left in, it keeps translation
 * enabled, checks every record (the unit still on the recorded root table,
 * a domain ID and address width the unit supports, a page table in
 * persist_alloc memory, no device twice, no domain ID with two page
 * tables), writes each accepted entry into tables of its own as a copied
 * entry (in scalable mode with a PASID directory and table of its own,
 * filled from the record), reserves its domain ID, then frees the
 * handed-over tables once the unit uses the new ones. A refused record
 * leaves its device blocked, and so does a record whose page table another
 * record names (a table has one user).
 *
 * A copied entry ends when the device is attached to a domain: the
 * persistent domain that adopted its table takes the entry's domain ID and
 * keeps the entry as it is (intel_iommu_live_update_attach(),
 * _keep_entry(); in scalable mode _keep_pasid_entry() switches the context
 * entry to the device's own PASID table once the attach wrote the same
 * RID_PASID entry there), any other domain replaces it as after kdump. It
 * is torn down when the device is blocked (bound by a new owner), when its
 * table is adopted for another device
 * (intel_iommu_live_update_release_table()), or by
 * intel_iommu_live_update_release() when nobody takes the device over.
 */

#define pr_fmt(fmt)	"DMAR: " fmt

#include <linux/crash_dump.h>
#include <linux/debugfs.h>
#include <linux/kexec_handover.h>
#include <linux/kho/abi/intel_iommu_persist.h>
#include <linux/pci.h>
#include <linux/persist_alloc.h>
#include <linux/slab.h>
#include <linux/xarray.h>

#include "../iommu-pages.h"
#include "../iommu-persist.h"
#include "iommu.h"
#include "pasid.h"

/*
 * The preserving kernel's tables of one unit, KHO-preserved: a root table
 * and its context tables, by bus number, for devfn 0 to 0x7f in scalable
 * mode (ctx_hi: 0x80 to 0xff)
 */
struct intel_persist_unit {
	struct root_entry *root;
	struct context_entry *ctx[256];
	struct context_entry *ctx_hi[256];
	unsigned int nr_devs;
};

/*
 * A copied context entry of the next kernel, written from a handed-over
 * record: in scalable mode with a PASID directory and table of its own.
 * It is current while the entry is marked copied, which ends once the
 * entry is torn down (and flushed) or taken over.
 */
struct intel_persist_kept {
	struct intel_iommu *iommu;
	u64 pgtable;
	u16 did;
	u8 bus;
	u8 devfn;
	u8 aw;
	struct pasid_dir_entry *dir;
	struct pasid_entry *pte;
};

static DEFINE_MUTEX(intel_persist_lock);
/* By unit sequence ID: outgoing units, and incoming root tables to free */
static DEFINE_XARRAY(intel_persist_units);
static DEFINE_XARRAY(intel_persist_old_roots);
/* By page table PFN: the intel_persist_kept whose entry uses it */
static DEFINE_XARRAY(intel_persist_kept);
static struct intel_iommu_persist_ser *intel_persist_out;
static struct intel_iommu_persist_ser *intel_persist_in;

#ifdef CONFIG_PERSIST_ALLOC_TEST
/*
 * Test only (the persistmem vmtests): damages the handover of the next
 * device frozen, which the next kernel must refuse. 1: its record names a
 * page table outside the pools; 2: a second record, of the next function
 * under the next domain ID, names its page table too.
 */
static u32 intel_persist_test_damage;

static void intel_persist_test_corrupt(struct intel_iommu_persist_dev_ser *rec)
{
	struct intel_iommu_persist_ser *out = intel_persist_out;
	u32 damage = intel_persist_test_damage;

	intel_persist_test_damage = 0;
	if (damage == 1)
		rec->pgtable = rec->root;
	if (damage == 2 && out->nr_devs < INTEL_IOMMU_PERSIST_MAX_DEVS) {
		out->devs[out->nr_devs] = *rec;
		out->devs[out->nr_devs].devfn++;
		out->devs[out->nr_devs++].did++;
	}
}

static int __init intel_persist_test_init(void)
{
	debugfs_create_u32("intel_iommu_persist_damage", 0600, NULL,
			   &intel_persist_test_damage);
	return 0;
}
late_initcall(intel_persist_test_init);
#else
static void intel_persist_test_corrupt(struct intel_iommu_persist_dev_ser *rec)
{
}
#endif

static void *intel_persist_table(void)
{
	void *table = kho_alloc_preserve(VTD_PAGE_SIZE);

	return IS_ERR(table) ? NULL : table;
}

static void intel_persist_unit_free(struct intel_iommu *iommu,
				    struct intel_persist_unit *unit)
{
	int bus;

	for (bus = 0; bus < ARRAY_SIZE(unit->ctx); bus++) {
		if (unit->ctx[bus])
			kho_unpreserve_free(unit->ctx[bus]);
		if (unit->ctx_hi[bus])
			kho_unpreserve_free(unit->ctx_hi[bus]);
	}
	kho_unpreserve_free(unit->root);
	xa_erase(&intel_persist_units, iommu->seq_id);
	kfree(unit);
}

static struct intel_persist_unit *
intel_persist_unit_get(struct intel_iommu *iommu)
{
	struct intel_persist_unit *unit;

	unit = xa_load(&intel_persist_units, iommu->seq_id);
	if (unit)
		return unit;
	unit = kzalloc_obj(*unit);
	if (!unit)
		return NULL;
	unit->root = intel_persist_table();
	if (!unit->root)
		goto err_free;
	if (xa_err(xa_store(&intel_persist_units, iommu->seq_id, unit,
			    GFP_KERNEL)))
		goto err_root;
	return unit;

err_root:
	kho_unpreserve_free(unit->root);
err_free:
	kfree(unit);
	return NULL;
}

/* The slot of @bus, @devfn in @unit's tables, as iommu_context_addr() */
static struct context_entry *
intel_persist_unit_context(struct intel_iommu *iommu,
			   struct intel_persist_unit *unit, u8 bus, u8 devfn)
{
	struct context_entry **tablep = &unit->ctx[bus];
	u64 *root = &unit->root[bus].lo;
	unsigned int index = devfn;

	if (sm_supported(iommu)) {
		if (devfn >= 0x80) {
			tablep = &unit->ctx_hi[bus];
			root = &unit->root[bus].hi;
		}
		index = (devfn & 0x7f) * 2;
	}
	if (!*tablep) {
		*tablep = intel_persist_table();
		if (!*tablep)
			return NULL;
		__iommu_flush_cache(iommu, *tablep, VTD_PAGE_SIZE);
		*root = virt_to_phys(*tablep) | 1;
		__iommu_flush_cache(iommu, root, sizeof(*root));
	}
	return &(*tablep)[index];
}

static int intel_persist_find(struct intel_iommu_persist_ser *ser,
			      struct intel_iommu *iommu, u8 bus, u8 devfn)
{
	u32 i;

	for (i = 0; ser && i < ser->nr_devs; i++)
		if (ser->devs[i].reg_base == iommu->reg_phys &&
		    ser->devs[i].bus == bus && ser->devs[i].devfn == devfn)
			return i;
	return -ENOENT;
}

static int intel_persist_out_get(void)
{
	struct intel_iommu_persist_ser *ser;
	int rc;

	if (intel_persist_out)
		return 0;
	ser = kho_alloc_preserve(PAGE_SIZE);
	if (IS_ERR(ser))
		return PTR_ERR(ser);
	rc = kho_add_subtree(INTEL_IOMMU_PERSIST_NAME, ser, PAGE_SIZE);
	if (rc) {
		kho_unpreserve_free(ser);
		return rc;
	}
	intel_persist_out = ser;
	return 0;
}

static void intel_persist_out_put(void)
{
	if (!intel_persist_out || intel_persist_out->nr_devs)
		return;
	kho_remove_subtree(intel_persist_out);
	kho_unpreserve_free(intel_persist_out);
	intel_persist_out = NULL;
}

/* Copy @dev's live context entry into @ctx; it must be @domain's */
static int intel_persist_copy_entry(struct intel_iommu *iommu,
				    struct device_domain_info *info,
				    struct dmar_domain *domain,
				    struct context_entry *ctx)
{
	struct pt_iommu_vtdss_hw_info pt_info;
	u16 did = domain_id_iommu(domain, iommu);
	struct context_entry *live;
	int rc = -EINVAL;

	pt_iommu_vtdss_hw_info(&domain->sspt, &pt_info);
	spin_lock(&iommu->lock);
	live = iommu_context_addr(iommu, info->bus, info->devfn, 0);
	if (live && context_present(live) && context_domain_id(live) == did &&
	    (live->lo & VTD_PAGE_MASK) == pt_info.ssptptr) {
		*ctx = *live;
		rc = 0;
	}
	spin_unlock(&iommu->lock);
	if (!rc)
		__iommu_flush_cache(iommu, ctx, sizeof(*ctx));
	return rc;
}

/* @dev's live RID_PASID entry, the unit's lock held */
static struct pasid_entry *intel_persist_live_pte(struct device_domain_info *info)
{
	struct pasid_dir_entry *dir;
	struct pasid_entry *table;

	if (!info->pasid_table)
		return NULL;
	dir = info->pasid_table->table;
	table = get_pasid_table_from_pde(&dir[IOMMU_NO_PASID >> PASID_PDE_SHIFT]);
	return table ? &table[IOMMU_NO_PASID & PASID_PTE_MASK] : NULL;
}

/*
 * Scalable mode: copy @dev's live context entry into @ctx, pointed at a
 * PASID directory and table of its own that hold a copy of its live
 * RID_PASID entry, which must be @domain's second-stage one.
 */
static int intel_persist_copy_sm_entry(struct intel_iommu *iommu,
				       struct device_domain_info *info,
				       struct dmar_domain *domain,
				       struct context_entry *ctx, u8 *flags)
{
	struct pt_iommu_vtdss_hw_info pt_info;
	u16 did = domain_id_iommu(domain, iommu);
	struct pasid_dir_entry *dir;
	struct context_entry *live;
	struct pasid_entry *table, *pte;
	int rc = -EINVAL;

	dir = intel_persist_table();
	table = intel_persist_table();
	if (!dir || !table) {
		rc = -ENOMEM;
		goto err_free;
	}
	pt_iommu_vtdss_hw_info(&domain->sspt, &pt_info);
	spin_lock(&iommu->lock);
	live = iommu_context_addr(iommu, info->bus, info->devfn, 0);
	pte = intel_persist_live_pte(info);
	if (live && context_present(live) && pte && pasid_pte_is_present(pte) &&
	    pasid_pte_get_pgtt(pte) == PASID_ENTRY_PGTT_SL_ONLY &&
	    pasid_get_domain_id(pte) == did &&
	    (pte->val[0] & VTD_PAGE_MASK) == pt_info.ssptptr &&
	    ((pte->val[0] >> 2) & 7) == pt_info.aw) {
		table[IOMMU_NO_PASID & PASID_PTE_MASK] = *pte;
		dir[IOMMU_NO_PASID >> PASID_PDE_SHIFT].val =
			virt_to_phys(table) | PASID_PTE_PRESENT;
		ctx[0].hi = live[0].hi;
		ctx[1] = live[1];
		/* No page requests: the unit's queue is not handed over */
		ctx[0].lo = (live[0].lo & ~(VTD_PAGE_MASK | context_pdts(7) |
					    BIT_ULL(4))) | virt_to_phys(dir);
		*flags = INTEL_IOMMU_PERSIST_SM;
		if (pte->val[1] & BIT_ULL(23))
			*flags |= INTEL_IOMMU_PERSIST_PWSNP;
		rc = 0;
	}
	spin_unlock(&iommu->lock);
	if (rc)
		goto err_free;
	__iommu_flush_cache(iommu, table, VTD_PAGE_SIZE);
	__iommu_flush_cache(iommu, dir, VTD_PAGE_SIZE);
	__iommu_flush_cache(iommu, ctx, 2 * sizeof(*ctx));
	return 0;

err_free:
	if (table)
		kho_unpreserve_free(table);
	if (dir)
		kho_unpreserve_free(dir);
	return rc;
}

/* Free the PASID directory and table a scalable-mode @ctx of ours names */
static void intel_persist_sm_tables_free(struct context_entry *ctx)
{
	struct pasid_dir_entry *dir;

	if (!(ctx->lo & 1))
		return;
	dir = phys_to_virt(ctx->lo & VTD_PAGE_MASK);
	if (dir[0].val & PASID_PTE_PRESENT)
		kho_unpreserve_free(phys_to_virt(dir[0].val & PDE_PFN_MASK));
	kho_unpreserve_free(dir);
}

/**
 * intel_iommu_live_update_freeze - Keep a device's translation at the kexec
 * @dev:    The device, alone in its group
 * @domain: The persistent domain it is attached to
 *
 * Return: 0; -EINVAL if @domain is not a persistent second-stage domain
 * @dev is attached to; -EBUSY if @dev is kept already; -ENOSPC past the
 * records the subtree holds; -ENOMEM.
 */
int intel_iommu_live_update_freeze(struct device *dev,
				   struct iommu_domain *domain)
{
	struct device_domain_info *info = dev_iommu_priv_get(dev);
	struct dmar_domain *dmar_domain = to_dmar_domain(domain);
	struct intel_iommu *iommu = info->iommu;
	struct intel_iommu_persist_dev_ser *rec;
	struct pt_iommu_vtdss_hw_info pt_info;
	struct intel_persist_unit *unit;
	struct context_entry *ctx;
	u8 flags = 0;
	int rc;

	if (!(domain->type & __IOMMU_DOMAIN_PAGING) ||
	    !intel_domain_is_ss_paging(dmar_domain) ||
	    !iommu_persist_tables_of(&dmar_domain->iommu) ||
	    info->domain != dmar_domain)
		return -EINVAL;

	guard(mutex)(&intel_persist_lock);
	if (intel_persist_find(intel_persist_out, iommu, info->bus,
			       info->devfn) >= 0)
		return -EBUSY;
	rc = intel_persist_out_get();
	if (rc)
		return rc;
	rc = -ENOSPC;
	if (intel_persist_out->nr_devs >= INTEL_IOMMU_PERSIST_MAX_DEVS)
		goto err_out;
	rc = -ENOMEM;
	unit = intel_persist_unit_get(iommu);
	if (!unit)
		goto err_out;
	ctx = intel_persist_unit_context(iommu, unit, info->bus, info->devfn);
	if (!ctx)
		goto err_unit;
	if (sm_supported(iommu))
		rc = intel_persist_copy_sm_entry(iommu, info, dmar_domain, ctx,
						 &flags);
	else
		rc = intel_persist_copy_entry(iommu, info, dmar_domain, ctx);
	if (rc)
		goto err_unit;

	pt_iommu_vtdss_hw_info(&dmar_domain->sspt, &pt_info);
	rec = &intel_persist_out->devs[intel_persist_out->nr_devs++];
	memset(rec, 0, sizeof(*rec));
	rec->reg_base = iommu->reg_phys;
	rec->root = virt_to_phys(unit->root);
	rec->pgtable = pt_info.ssptptr;
	rec->did = domain_id_iommu(dmar_domain, iommu);
	rec->bus = info->bus;
	rec->devfn = info->devfn;
	rec->aw = pt_info.aw;
	rec->flags = flags;
	intel_persist_test_corrupt(rec);
	unit->nr_devs++;
	return 0;

err_unit:
	if (!unit->nr_devs)
		intel_persist_unit_free(iommu, unit);
err_out:
	intel_persist_out_put();
	return rc;
}

/**
 * intel_iommu_live_update_unfreeze - Undo intel_iommu_live_update_freeze()
 * @dev: The device, after its live update was cancelled
 */
void intel_iommu_live_update_unfreeze(struct device *dev)
{
	struct device_domain_info *info = dev_iommu_priv_get(dev);
	struct intel_iommu *iommu = info->iommu;
	struct intel_persist_unit *unit;
	struct context_entry *ctx;
	int i;

	guard(mutex)(&intel_persist_lock);
	i = intel_persist_find(intel_persist_out, iommu, info->bus, info->devfn);
	unit = xa_load(&intel_persist_units, iommu->seq_id);
	if (WARN_ON(i < 0 || !unit))
		return;
	ctx = intel_persist_unit_context(iommu, unit, info->bus, info->devfn);
	if (WARN_ON(!ctx))
		return;
	if (sm_supported(iommu)) {
		intel_persist_sm_tables_free(ctx);
		context_clear_entry(&ctx[1]);
	}
	context_clear_entry(ctx);
	__iommu_flush_cache(iommu, ctx, 2 * sizeof(*ctx));
	intel_persist_out->devs[i] =
		intel_persist_out->devs[--intel_persist_out->nr_devs];
	if (!--unit->nr_devs)
		intel_persist_unit_free(iommu, unit);
	intel_persist_out_put();
}

/**
 * intel_iommu_live_update_shutdown - Hand a unit over at the kexec
 * @iommu: The unit, in the reboot path with every other CPU stopped
 *
 * Return: true if @iommu keeps preserved devices' translation and must stay
 * enabled: it now uses the handed-over tables, which translate them only.
 */
bool intel_iommu_live_update_shutdown(struct intel_iommu *iommu)
{
	struct intel_persist_unit *unit;

	unit = xa_load(&intel_persist_units, iommu->seq_id);
	if (!unit || !unit->nr_devs)
		return false;
	intel_iommu_set_root_table(iommu, unit->root);
	return true;
}

/* The handed-over subtree, if any; checked once */
static struct intel_iommu_persist_ser *intel_persist_incoming(void)
{
	static bool looked;
	phys_addr_t phys;
	size_t size;

	if (looked)
		return intel_persist_in;
	looked = true;
	if (kho_retrieve_subtree(INTEL_IOMMU_PERSIST_NAME, &phys, &size))
		return NULL;
	if (!PAGE_ALIGNED(phys) || !kho_is_preserved(phys, 0)) {
		pr_err("live update: handover at %pa refused: not preserved\n",
		       &phys);
		return NULL;
	}
	intel_persist_in = phys_to_virt(phys);
	if (size != PAGE_SIZE || intel_persist_in->reserved ||
	    intel_persist_in->nr_devs > INTEL_IOMMU_PERSIST_MAX_DEVS) {
		pr_err("live update: handover refused: %zu bytes, %u records\n",
		       size, intel_persist_in->nr_devs);
		kho_restore_subtree_done(intel_persist_in);
		intel_persist_in = NULL;
	}
	return intel_persist_in;
}

/*
 * @iommu was left translating devices in the other mode (legacy or scalable)
 * than the one this kernel runs it in: it cannot keep translating them, and
 * its translation is turned off. The devices stop being bus masters first,
 * so that their DMA does not go to memory untranslated.
 */
static void intel_persist_stop(struct intel_iommu *iommu,
			       const struct intel_iommu_persist_ser *in)
{
	unsigned int stopped = 0;
	struct pci_dev *pdev;
	u32 i;

	for (i = 0; i < in->nr_devs; i++) {
		if (in->devs[i].reg_base != iommu->reg_phys)
			continue;
		pdev = pci_get_domain_bus_and_slot(iommu->segment,
						   in->devs[i].bus,
						   in->devs[i].devfn);
		if (!pdev) {
			pr_err("%s: live update: %02x:%02x.%d not found, not stopped\n",
			       iommu->name, in->devs[i].bus,
			       PCI_SLOT(in->devs[i].devfn),
			       PCI_FUNC(in->devs[i].devfn));
			continue;
		}
		pci_clear_master(pdev);
		pci_wait_for_pending_transaction(pdev);
		pci_dev_put(pdev);
		stopped++;
	}
	pr_err("%s: live update: left in %s mode, run in %s mode: bus mastering of %u devices stopped\n",
	       iommu->name, sm_supported(iommu) ? "legacy" : "scalable",
	       sm_supported(iommu) ? "scalable" : "legacy", stopped);
}

/**
 * intel_iommu_live_update_keeps - Whether a unit found enabled stays so
 * @iommu: A unit whose translation the previous kernel left enabled
 *
 * Return: true if the previous kernel handed devices of @iommu over and
 * left it in the mode (legacy or scalable) this kernel runs it in: the
 * unit keeps translating while its new tables are set up. Otherwise it is
 * disabled, as after any kexec, the devices handed over stopped first.
 */
bool intel_iommu_live_update_keeps(struct intel_iommu *iommu)
{
	struct intel_iommu_persist_ser *in = intel_persist_incoming();
	u64 rtaddr = readq(iommu->reg + DMAR_RTADDR_REG);
	u32 i;

	for (i = 0; in && i < in->nr_devs; i++) {
		if (in->devs[i].reg_base != iommu->reg_phys)
			continue;
		if (!(rtaddr & DMA_RTADDR_SMT) == !sm_supported(iommu))
			return true;
		intel_persist_stop(iommu, in);
		return false;
	}
	return false;
}

static int intel_persist_check(struct intel_iommu *iommu,
			       const struct intel_iommu_persist_dev_ser *rec,
			       u64 root)
{
	const struct intel_iommu_persist_ser *in = intel_persist_in;
	bool sm = rec->flags & INTEL_IOMMU_PERSIST_SM;
	u32 i;

	if (memchr_inv(rec->reserved, 0, sizeof(rec->reserved)) ||
	    rec->root != root)
		return -EINVAL;
	if (rec->flags & ~(INTEL_IOMMU_PERSIST_SM | INTEL_IOMMU_PERSIST_PWSNP) ||
	    sm != sm_supported(iommu) || (sm && !ecap_slts(iommu->ecap)) ||
	    (!sm && rec->flags & INTEL_IOMMU_PERSIST_PWSNP))
		return -EINVAL;
	if (rec->did < IDA_START_DID || rec->did >= iommu->max_domain_id ||
	    rec->aw > 4 || !(cap_sagaw(iommu->cap) & BIT(rec->aw)))
		return -EINVAL;
	if (!rec->pgtable || rec->pgtable & ~VTD_PAGE_MASK ||
	    !persist_alloc_owns_pfn(PHYS_PFN(rec->pgtable)))
		return -EINVAL;
	if (context_copied(iommu, rec->bus, rec->devfn))
		return -EEXIST;
	/* A domain ID names one page table, which one device uses */
	for (i = 0; &in->devs[i] != rec; i++) {
		if (in->devs[i].pgtable == rec->pgtable)
			return -EEXIST;
		if (in->devs[i].reg_base == rec->reg_base &&
		    in->devs[i].did == rec->did)
			return -EEXIST;
	}
	return 0;
}

static void intel_persist_kept_free(struct intel_persist_kept *k)
{
	iommu_free_pages(k->pte);
	iommu_free_pages(k->dir);
	kfree(k);
}

/*
 * Scalable mode: a PASID directory and table of this kernel's for @k, whose
 * RID_PASID entry is the one @rec describes
 */
static int intel_persist_sm_tables(struct intel_iommu *iommu,
				   struct intel_persist_kept *k,
				   const struct intel_iommu_persist_dev_ser *rec)
{
	struct pasid_entry *table;

	k->dir = iommu_alloc_pages_node_sz(iommu->node, GFP_KERNEL, SZ_4K);
	table = iommu_alloc_pages_node_sz(iommu->node, GFP_KERNEL, SZ_4K);
	if (!k->dir || !table) {
		iommu_free_pages(table);
		return -ENOMEM;
	}
	k->pte = &table[IOMMU_NO_PASID & PASID_PTE_MASK];
	pasid_set_domain_id(k->pte, rec->did);
	pasid_set_slptr(k->pte, rec->pgtable);
	pasid_set_address_width(k->pte, rec->aw);
	pasid_set_translation_type(k->pte, PASID_ENTRY_PGTT_SL_ONLY);
	pasid_set_fault_enable(k->pte);
	pasid_set_page_snoop(k->pte, rec->flags & INTEL_IOMMU_PERSIST_PWSNP);
	pasid_set_present(k->pte);
	k->dir[IOMMU_NO_PASID >> PASID_PDE_SHIFT].val =
		virt_to_phys(table) | PASID_PTE_PRESENT;
	__iommu_flush_cache(iommu, table, VTD_PAGE_SIZE);
	__iommu_flush_cache(iommu, k->dir, VTD_PAGE_SIZE);
	return 0;
}

static void intel_persist_write_entry(struct intel_iommu *iommu,
				      struct context_entry *ctx,
				      const struct intel_persist_kept *k)
{
	context_clear_entry(ctx);
	if (k->dir) {
		/* A directory of 128 entries (PDTS 0) */
		context_clear_entry(&ctx[1]);
		ctx->lo = virt_to_phys(k->dir) | context_pdts(0);
		context_set_sm_rid2pasid(ctx, IOMMU_NO_PASID);
	} else {
		context_set_domain_id(ctx, k->did);
		context_set_address_root(ctx, k->pgtable);
		context_set_address_width(ctx, k->aw);
		context_set_translation_type(ctx, CONTEXT_TT_MULTI_LEVEL);
	}
	context_set_fault_enable(ctx);
	context_set_present(ctx);
	__iommu_flush_cache(iommu, ctx, (k->dir ? 2 : 1) * sizeof(*ctx));
}

static int intel_persist_keep(struct intel_iommu *iommu,
			      const struct intel_iommu_persist_dev_ser *rec)
{
	struct intel_persist_kept *k;
	struct context_entry *ctx;
	bool reserved = false;
	int rc;

	k = kzalloc_obj(*k);
	if (!k)
		return -ENOMEM;
	k->iommu = iommu;
	k->pgtable = rec->pgtable;
	k->did = rec->did;
	k->bus = rec->bus;
	k->devfn = rec->devfn;
	k->aw = rec->aw;
	if (rec->flags & INTEL_IOMMU_PERSIST_SM) {
		rc = intel_persist_sm_tables(iommu, k, rec);
		if (rc)
			goto err_free;
	}
	/* The domain ID first: no domain of this kernel may take it */
	if (!ida_exists(&iommu->domain_ida, rec->did)) {
		rc = ida_alloc_range(&iommu->domain_ida, rec->did, rec->did,
				     GFP_KERNEL);
		if (rc < 0)
			goto err_free;
		reserved = true;
	}
	rc = xa_insert(&intel_persist_kept, PHYS_PFN(rec->pgtable), k,
		       GFP_KERNEL);
	if (rc) {
		rc = rc == -EBUSY ? -EEXIST : rc;
		goto err_free;
	}

	spin_lock(&iommu->lock);
	ctx = iommu_context_addr(iommu, rec->bus, rec->devfn, 1);
	if (!ctx) {
		spin_unlock(&iommu->lock);
		xa_erase(&intel_persist_kept, PHYS_PFN(rec->pgtable));
		rc = -ENOMEM;
		goto err_free;
	}
	intel_persist_write_entry(iommu, ctx, k);
	set_context_copied(iommu, rec->bus, rec->devfn);
	spin_unlock(&iommu->lock);
	return 0;

err_free:
	if (reserved)
		ida_free(&iommu->domain_ida, rec->did);
	intel_persist_kept_free(k);
	return rc;
}

/* Whether @root, where @iommu was left, is a handed-over table to free */
static bool intel_persist_old_root(struct intel_iommu *iommu, u64 root)
{
	const struct intel_iommu_persist_ser *in = intel_persist_in;
	u32 i;

	if (!kho_is_preserved(root, 0) || root == virt_to_phys(intel_persist_in))
		return false;
	for (i = 0; i < in->nr_devs; i++)
		if (in->devs[i].reg_base == iommu->reg_phys &&
		    in->devs[i].root == root)
			return true;
	return false;
}

/**
 * intel_iommu_live_update_adopt - Take over what a unit translates
 * @iommu: A unit intel_iommu_live_update_keeps() kept enabled, with its new
 *         (empty) root table allocated but not set yet
 *
 * Writes every accepted record into the new tables as a copied context
 * entry (in scalable mode with a PASID directory and table of its own)
 * and reserves its domain ID; one line tells what was kept and refused. A
 * refused record leaves its device blocked once the new root table is set.
 *
 * Return: 0, or -ENOMEM.
 */
int intel_iommu_live_update_adopt(struct intel_iommu *iommu)
{
	const struct intel_iommu_persist_ser *in = intel_persist_in;
	u64 root = readq(iommu->reg + DMAR_RTADDR_REG) & VTD_PAGE_MASK;
	unsigned int kept = 0, refused = 0;
	int rc;
	u32 i;

	iommu->copied_tables = bitmap_zalloc(BIT_ULL(16), GFP_KERNEL);
	if (!iommu->copied_tables)
		return -ENOMEM;
	if (intel_persist_old_root(iommu, root) &&
	    xa_err(xa_store(&intel_persist_old_roots, iommu->seq_id,
			    xa_mk_value(PHYS_PFN(root)), GFP_KERNEL)))
		return -ENOMEM;

	guard(mutex)(&intel_persist_lock);
	for (i = 0; i < in->nr_devs; i++) {
		const struct intel_iommu_persist_dev_ser *rec = &in->devs[i];

		if (rec->reg_base != iommu->reg_phys)
			continue;
		rc = intel_persist_check(iommu, rec, root);
		if (!rc)
			rc = intel_persist_keep(iommu, rec);
		if (rc == -ENOMEM)
			return rc;
		if (rc) {
			pr_err("%s: live update: %02x:%02x.%d refused (%pe)\n",
			       iommu->name, rec->bus, PCI_SLOT(rec->devfn),
			       PCI_FUNC(rec->devfn), ERR_PTR(rc));
			refused++;
		} else {
			kept++;
		}
	}
	pr_info("%s: live update: translation kept for %u devices, %u refused\n",
		iommu->name, kept, refused);
	return 0;
}

/* Note a handed-over table page to free, once, if KHO preserved it */
static void intel_persist_old_page(struct xarray *pages, phys_addr_t phys)
{
	if (phys && PAGE_ALIGNED(phys) && kho_is_preserved(phys, 0) &&
	    phys != virt_to_phys(intel_persist_in) &&
	    !persist_alloc_owns_pfn(PHYS_PFN(phys)))
		xa_store(pages, PHYS_PFN(phys), xa_mk_value(1), GFP_KERNEL);
}

/*
 * The handed-over context table, and in scalable mode the PASID directory
 * and table, that @rec's device translated through on @old: only pages on
 * the path from the root table to its entry are freed, each once.
 */
static void intel_persist_old_tables(struct intel_iommu *iommu,
				     const struct intel_iommu_persist_dev_ser *rec,
				     struct root_entry *old,
				     struct xarray *pages)
{
	u64 entry = old[rec->bus].lo;
	unsigned int index = rec->devfn;
	struct pasid_dir_entry *dir;
	struct context_entry *ctx;
	phys_addr_t phys;

	if (sm_supported(iommu)) {
		if (rec->devfn >= 0x80)
			entry = old[rec->bus].hi;
		index = (rec->devfn & 0x7f) * 2;
	}
	phys = entry & VTD_PAGE_MASK;
	if (!(entry & 1) || !kho_is_preserved(phys, 0))
		return;
	intel_persist_old_page(pages, phys);
	if (!sm_supported(iommu))
		return;
	ctx = phys_to_virt(phys);
	phys = ctx[index].lo & VTD_PAGE_MASK;
	if (!(ctx[index].lo & 1) || !kho_is_preserved(phys, 0))
		return;
	intel_persist_old_page(pages, phys);
	dir = phys_to_virt(phys);
	if (dir[0].val & PASID_PTE_PRESENT)
		intel_persist_old_page(pages, dir[0].val & PDE_PFN_MASK);
}

/**
 * intel_iommu_live_update_adopted - Free a unit's handed-over tables
 * @iommu: A unit that now uses its new root table, as every unit does
 *
 * Frees the handed-over root table, and the tables on the path from it to
 * the entry of each record of the unit, if KHO preserved them: nothing the
 * handed-over tables name otherwise, and no page twice.
 */
void intel_iommu_live_update_adopted(struct intel_iommu *iommu)
{
	void *entry = xa_erase(&intel_persist_old_roots, iommu->seq_id);
	const struct intel_iommu_persist_ser *in = intel_persist_in;
	struct root_entry *old;
	unsigned long pfn;
	DEFINE_XARRAY(pages);
	void *page;
	u32 i;

	if (!entry)
		return;
	old = phys_to_virt(PFN_PHYS(xa_to_value(entry)));
	for (i = 0; in && i < in->nr_devs; i++)
		if (in->devs[i].reg_base == iommu->reg_phys)
			intel_persist_old_tables(iommu, &in->devs[i], old,
						 &pages);
	xa_erase(&pages, PHYS_PFN(virt_to_phys(old)));
	xa_for_each(&pages, pfn, page)
		kho_restore_free(pfn_to_kaddr(pfn));
	xa_destroy(&pages);
	kho_restore_free(old);
}

/* Forget the kept entries that ended: torn down and flushed, or taken over */
static void intel_persist_reap(void)
{
	struct intel_persist_kept *k;
	unsigned long index;
	bool ended;

	lockdep_assert_held(&intel_persist_lock);
	xa_for_each(&intel_persist_kept, index, k) {
		spin_lock(&k->iommu->lock);
		ended = !context_copied(k->iommu, k->bus, k->devfn);
		spin_unlock(&k->iommu->lock);
		if (ended) {
			xa_erase(&intel_persist_kept, index);
			intel_persist_kept_free(k);
		}
	}
}

/* The current kept entry of @info's device, if it has one */
static struct intel_persist_kept *
intel_persist_kept_of(struct device_domain_info *info)
{
	struct intel_persist_kept *k;
	unsigned long index;

	intel_persist_reap();
	xa_for_each(&intel_persist_kept, index, k)
		if (k->iommu == info->iommu && k->bus == info->bus &&
		    k->devfn == info->devfn)
			return k;
	return NULL;
}

/*
 * A device with ATS may have translations of a torn-down entry cached, from
 * before the kexec; they must go before an entry with device-TLB enabled
 * replaces it.
 */
static void intel_persist_flush_dev_iotlb(struct intel_iommu *iommu,
					  struct device *dev, u8 bus, u8 devfn)
{
	struct device_domain_info *info = dev_iommu_priv_get(dev);

	/* ATS Enable survives the kexec: not only this kernel's ats_enabled */
	if (!iommu->qi || !info || !info->ats_supported || !dev_is_pci(dev) ||
	    !pci_device_is_present(to_pci_dev(dev)))
		return;
	qi_flush_dev_iotlb(iommu, PCI_DEVID(bus, devfn), info->pfsid,
			   info->ats_qdep, 0, MAX_AGAW_PFN_WIDTH);
	/* DMA may be under way: the quirk's extra flush too */
	quirk_extra_dev_tlb_flush(info, 0, MAX_AGAW_PFN_WIDTH, IOMMU_NO_PASID,
				  info->ats_qdep);
}

/*
 * Scalable mode: tear @k's copied entry down and flush what the unit and
 * the device may cache of it. @dev, the device, then gets the context
 * entry of its own PASID table, in which nothing is attached yet or any
 * more.
 */
static bool intel_persist_sm_end(struct intel_persist_kept *k,
				 struct device *dev)
{
	struct intel_iommu *iommu = k->iommu;
	struct context_entry *ctx;
	bool ended = false;

	spin_lock(&iommu->lock);
	ctx = iommu_context_addr(iommu, k->bus, k->devfn, 1);
	if (ctx && context_copied(iommu, k->bus, k->devfn)) {
		context_clear_present(ctx);
		__iommu_flush_cache(iommu, ctx, sizeof(*ctx));
		iommu->flush.flush_context(iommu, 0, PCI_DEVID(k->bus, k->devfn),
					   DMA_CCMD_MASK_NOBIT,
					   DMA_CCMD_DEVICE_INVL);
		qi_flush_pasid_cache(iommu, k->did, QI_PC_ALL_PASIDS, 0);
		iommu->flush.flush_iotlb(iommu, k->did, 0, 0,
					 DMA_TLB_DSI_FLUSH);
		context_clear_entry(ctx);
		__iommu_flush_cache(iommu, ctx, sizeof(*ctx));
		clear_context_copied(iommu, k->bus, k->devfn);
		ended = true;
	}
	spin_unlock(&iommu->lock);

	if (ended && dev)
		intel_persist_flush_dev_iotlb(iommu, dev, k->bus, k->devfn);
	if (ended && dev && dev_iommu_priv_get(dev) &&
	    intel_pasid_setup_sm_context(dev))
		dev_err(dev, "live update: no context entry after the handed-over one\n");
	return ended;
}

/* Block the device of @k, @dev if it is known (probed) */
static bool intel_persist_end(struct intel_persist_kept *k, struct device *dev)
{
	bool ended;

	if (k->dir)
		return intel_persist_sm_end(k, dev);
	ended = intel_context_release_copied(k->iommu, k->bus, k->devfn);
	if (ended && dev)
		intel_persist_flush_dev_iotlb(k->iommu, dev, k->bus, k->devfn);
	return ended;
}

/**
 * intel_iommu_live_update_release_table - Block the other users of a table
 * @dev: The device a domain adopting the handed-over table is allocated for
 * @top: Physical address of the table
 *
 * One device at most was handed over with a table (intel_persist_check()).
 * If it is another than @dev and still translates through @top, its copied
 * context entry is torn down.
 *
 * Return: the number of devices blocked, 0 or 1.
 */
int intel_iommu_live_update_release_table(struct device *dev, phys_addr_t top)
{
	struct device_domain_info *info = dev_iommu_priv_get(dev);
	struct intel_persist_kept *k;
	struct pci_dev *pdev;
	bool ended;

	guard(mutex)(&intel_persist_lock);
	intel_persist_reap();
	k = xa_load(&intel_persist_kept, PHYS_PFN(top));
	if (!k || (info && info->iommu == k->iommu && info->bus == k->bus &&
		   info->devfn == k->devfn))
		return 0;
	pdev = pci_get_domain_bus_and_slot(k->iommu->segment, k->bus, k->devfn);
	ended = intel_persist_end(k, pdev ? &pdev->dev : NULL);
	pci_dev_put(pdev);
	if (!ended)
		return 0;
	pr_info("%s: live update: %02x:%02x.%d blocked: its page table was adopted for %s\n",
		k->iommu->name, k->bus, PCI_SLOT(k->devfn), PCI_FUNC(k->devfn),
		dev_name(dev));
	return 1;
}

/**
 * intel_iommu_live_update_release - Block a handed-over device nobody took
 * @dev: The device
 *
 * Tears down @dev's copied context entry, if it still has one: from then
 * on its DMA faults, before the memory its page table maps is released.
 * Also called whenever @dev is attached to a domain that does not take its
 * handed-over translation over: blocked (by a new owner for one), identity,
 * nested, or after a failed attach.
 *
 * Return: true if it had one.
 */
bool intel_iommu_live_update_release(struct device *dev)
{
	struct device_domain_info *info = dev_iommu_priv_get(dev);
	struct intel_persist_kept *k;

	if (!info)
		return false;
	if (!sm_supported(info->iommu)) {
		if (!intel_context_release_copied(info->iommu, info->bus,
						  info->devfn))
			return false;
		intel_persist_flush_dev_iotlb(info->iommu, dev, info->bus,
					      info->devfn);
		return true;
	}
	if (!context_copied(info->iommu, info->bus, info->devfn))
		return false;
	guard(mutex)(&intel_persist_lock);
	k = intel_persist_kept_of(info);
	return k && intel_persist_sm_end(k, dev);
}

/**
 * intel_iommu_live_update_kept - Whether a device still has its handed-over
 * translation
 * @dev: The device, in the kernel a live update booted
 *
 * Return: true while @dev translates through the context entry the previous
 * kernel handed over: no domain of this kernel was attached to it and it
 * was not blocked or released since.
 */
bool intel_iommu_live_update_kept(struct device *dev)
{
	struct device_domain_info *info = dev_iommu_priv_get(dev);

	return info && !is_kdump_kernel() &&
	       context_copied(info->iommu, info->bus, info->devfn);
}

/* The domain ID of @info's handed-over entry if it uses @domain's table */
static u16 intel_persist_kept_did(struct dmar_domain *domain,
				  struct device_domain_info *info)
{
	struct pt_iommu_vtdss_hw_info pt_info;
	struct intel_persist_kept *k;

	if (!intel_iommu_live_update_kept(info->dev) ||
	    !intel_domain_is_ss_paging(domain) ||
	    !iommu_persist_tables_of(&domain->iommu))
		return 0;
	pt_iommu_vtdss_hw_info(&domain->sspt, &pt_info);
	guard(mutex)(&intel_persist_lock);
	k = intel_persist_kept_of(info);
	if (k && k->pgtable == pt_info.ssptptr && k->aw == pt_info.aw)
		return k->did;
	return 0;
}

/**
 * intel_iommu_live_update_takes_over - Whether a domain takes a handed-over
 * translation over
 * @domain: A domain about to be attached to @info's device
 * @info:   The device
 *
 * Return: true if @domain adopted the page table the previous kernel handed
 * over for the device, which still translates through it: in scalable
 * mode its copied context entry stays until the attach has written the
 * PASID entry (intel_iommu_live_update_keep_pasid_entry()).
 */
bool intel_iommu_live_update_takes_over(struct dmar_domain *domain,
					struct device_domain_info *info)
{
	return intel_persist_kept_did(domain, info);
}

/**
 * intel_iommu_live_update_attach - Attach a domain to a unit for a device
 * @domain: A domain being attached to @info's device
 * @info:   The device
 *
 * As domain_attach_iommu(), except for a persistent domain that adopted the
 * page table a live update handed over for the device, attached for the
 * first time to its unit: it takes the domain ID the handed-over entry
 * uses, which intel_iommu_live_update_adopt() reserved, so that the entry
 * can be kept as it is (intel_iommu_live_update_keep_entry(),
 * _keep_pasid_entry()). The domain ID is freed with the domain's
 * attachment, as any.
 *
 * Return: 0, or the error of domain_attach_iommu().
 */
int intel_iommu_live_update_attach(struct dmar_domain *domain,
				   struct device_domain_info *info)
{
	struct intel_iommu *iommu = info->iommu;
	u16 did = intel_persist_kept_did(domain, info);
	struct iommu_domain_info *di;

	if (!did)
		return domain_attach_iommu(domain, iommu);
	di = kzalloc_obj(*di);
	if (!di)
		return -ENOMEM;
	di->refcnt = 1;
	di->did = did;
	di->iommu = iommu;
	mutex_lock(&iommu->did_lock);
	if (!ida_exists(&iommu->domain_ida, did) ||
	    xa_load(&domain->iommu_array, iommu->seq_id) ||
	    xa_insert(&domain->iommu_array, iommu->seq_id, di, GFP_KERNEL)) {
		kfree(di);
		di = NULL;
	}
	mutex_unlock(&iommu->did_lock);
	if (!di)
		return domain_attach_iommu(domain, iommu);
	dev_info(info->dev, "live update: domain ID %u taken over\n", did);
	return 0;
}

/**
 * intel_iommu_live_update_keep_entry - Keep a handed-over context entry
 * @iommu:       The unit, its lock held
 * @context:     The device's context entry
 * @bus:         Its bus number
 * @devfn:       Its device and function number
 * @did:         Domain ID of the domain being attached
 * @pt:          The domain's page table
 * @translation: The translation type the entry must have
 *
 * A copied entry that already says what the attach would write stays as it
 * is, no longer marked copied: the device's DMA under way is translated
 * without a gap. One line says so.
 *
 * Return: true if the entry was kept.
 */
bool intel_iommu_live_update_keep_entry(struct intel_iommu *iommu,
					struct context_entry *context,
					u8 bus, u8 devfn, u16 did,
					const struct pt_iommu_vtdss_hw_info *pt,
					int translation)
{
	struct context_entry want = {};

	assert_spin_locked(&iommu->lock);
	if (is_kdump_kernel() || !context_copied(iommu, bus, devfn))
		return false;
	context_set_domain_id(&want, did);
	context_set_address_root(&want, pt->ssptptr);
	context_set_address_width(&want, pt->aw);
	context_set_translation_type(&want, translation);
	context_set_fault_enable(&want);
	context_set_present(&want);
	if (want.lo != context->lo || want.hi != context->hi)
		return false;
	clear_context_copied(iommu, bus, devfn);
	pr_info("%s: live update: %02x:%02x.%d keeps its context entry\n",
		iommu->name, bus, PCI_SLOT(devfn), PCI_FUNC(devfn));
	return true;
}

/**
 * intel_iommu_live_update_keep_pasid_entry - Keep a handed-over translation
 * in scalable mode
 * @info: A device a second-stage domain was just attached to, its
 *        RID_PASID entry written
 *
 * A device whose copied context entry stayed while a domain that adopted
 * its handed-over page table was attached (intel_iommu_live_update_takes_over())
 * now has two RID_PASID entries: the one it translates through and the one
 * the attach wrote in its own PASID table. If they are the same, the
 * context entry is switched to its own PASID table in one write, and
 * translation goes on without a gap; one line says so. Otherwise the
 * copied entry is torn down and replaced, as after kdump.
 *
 * Return: 0, or the error of intel_pasid_setup_sm_context().
 */
int intel_iommu_live_update_keep_pasid_entry(struct device_domain_info *info)
{
	struct intel_iommu *iommu = info->iommu;
	struct context_entry want[2] = {}, *ctx;
	struct intel_persist_kept *k;
	struct pasid_entry *pte;
	bool kept = false;

	if (!sm_supported(iommu) || is_kdump_kernel() ||
	    !context_copied(iommu, info->bus, info->devfn))
		return 0;

	guard(mutex)(&intel_persist_lock);
	k = intel_persist_kept_of(info);
	if (!k)
		return intel_pasid_setup_sm_context(info->dev);
	context_entry_set_pasid_table(want, info->dev);
	spin_lock(&iommu->lock);
	ctx = iommu_context_addr(iommu, info->bus, info->devfn, 1);
	pte = intel_persist_live_pte(info);
	if (ctx && pte && context_copied(iommu, info->bus, info->devfn) &&
	    !memcmp(pte, k->pte, sizeof(*pte)) && want[0].hi == ctx[0].hi &&
	    !memcmp(&want[1], &ctx[1], sizeof(want[1]))) {
		WRITE_ONCE(ctx->lo, want[0].lo);
		__iommu_flush_cache(iommu, ctx, sizeof(*ctx));
		clear_context_copied(iommu, info->bus, info->devfn);
		kept = true;
	}
	spin_unlock(&iommu->lock);
	if (!kept)
		return intel_pasid_setup_sm_context(info->dev);

	/*
	 * The same translation: no IOTLB entry went stale, and the flush of
	 * the domain's IOTLB the spec asks for only makes the unit walk the
	 * same table again.
	 */
	iommu->flush.flush_context(iommu, 0, PCI_DEVID(info->bus, info->devfn),
				   DMA_CCMD_MASK_NOBIT, DMA_CCMD_DEVICE_INVL);
	qi_flush_pasid_cache(iommu, k->did, QI_PC_PASID_SEL, IOMMU_NO_PASID);
	iommu->flush.flush_iotlb(iommu, k->did, 0, 0, DMA_TLB_DSI_FLUSH);
	xa_erase(&intel_persist_kept, PHYS_PFN(k->pgtable));
	intel_persist_kept_free(k);
	pr_info("%s: live update: %02x:%02x.%d keeps its PASID entry\n",
		iommu->name, info->bus, PCI_SLOT(info->devfn),
		PCI_FUNC(info->devfn));
	/* Its DMA aliases, which kept nothing, get their entries now */
	if (intel_pasid_setup_sm_context(info->dev))
		dev_err(info->dev, "live update: its DMA aliases have no context entry\n");
	return 0;
}

static int __init intel_persist_in_free(void)
{
	if (intel_persist_in)
		kho_restore_subtree_done(intel_persist_in);
	intel_persist_in = NULL;
	return 0;
}
late_initcall(intel_persist_in_free);
