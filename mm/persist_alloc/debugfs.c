// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc: /sys/kernel/debug/persist_alloc/
 *
 * allocations: one line per allocated granule,
 *   "<phys> <order> <node> <attributes> <owner> <state>"
 * with attributes a comma separated list of "no_direct_map", "hvo" and
 * "zero", or "-"; owner the key it is preserved under (0 if none) and
 * state one of
 * "allocated", "preserved" (for the next kexec), "pending" (handed over
 * by the previous kernel, not restored yet), "claimed" (pending, claimed
 * by its owner, to be restored at first use) or "quarantined" (held out of
 * use for good: a refused 1 GiB HVO extent, a page that had a memory
 * failure).
 *
 * fail_persist_alloc: the fault injection attributes (see
 * Documentation/fault-injection/fault-injection.rst) of the steps that can
 * fail: allocating bookkeeping, optimizing or restoring a vmemmap,
 * changing the direct map, recording an extent (at adoption too), growing
 * the handover, preserving a block, recording a memory failure.
 */
#include <linux/debugfs.h>
#include <linux/mm.h>
#include <linux/seq_file.h>

#include "internal.h"

struct dentry *persist_debugfs_root;

static void persist_show_flags(struct seq_file *m, unsigned long flags)
{
	static const struct {
		unsigned long flag;
		const char *name;
	} names[] = {
		{ PERSIST_ALLOC_NO_DIRECT_MAP, "no_direct_map" },
		{ PERSIST_ALLOC_HVO, "hvo" },
		{ PERSIST_ALLOC_ZERO, "zero" },
	};
	const char *sep = "";
	unsigned int i;

	if (!flags)
		seq_putc(m, '-');
	for (i = 0; i < ARRAY_SIZE(names); i++) {
		if (flags & names[i].flag) {
			seq_printf(m, "%s%s", sep, names[i].name);
			sep = ",";
		}
	}
}

static int allocations_show(struct seq_file *m, void *v)
{
	struct persist_extent *ext;
	unsigned long pfn;

	xa_lock(&persist_extents);
	xa_for_each(&persist_extents, pfn, ext) {
		phys_addr_t phys = PFN_PHYS(ext->pfn);

		seq_printf(m, "%pa %u %d ", &phys, ext->order, ext->blk->pool->nid);
		persist_show_flags(m, ext->flags);
		seq_printf(m, " %llu %s\n", ext->owner,
			   ext->quarantined ? "quarantined" :
			   ext->claimed && ext->pending ? "claimed" :
			   ext->pending ? "pending" :
			   ext->preserved ? "preserved" : "allocated");
	}
	xa_unlock(&persist_extents);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(allocations);

static int __init persist_debugfs_init(void)
{
	persist_debugfs_root = debugfs_create_dir("persist_alloc", NULL);
	debugfs_create_file("allocations", 0400, persist_debugfs_root, NULL,
			    &allocations_fops);
	fault_create_debugfs_attr("fail_persist_alloc", persist_debugfs_root,
				  &persist_fault_attr);
	return 0;
}

/* Early, so that later initcalls can add their files. */
subsys_initcall(persist_debugfs_init);
