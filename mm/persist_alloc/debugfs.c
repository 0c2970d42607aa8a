// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc: /sys/kernel/debug/persist_alloc/
 *
 * allocations: one line per allocated granule,
 *   "<phys> <order> <node> <attributes>"
 * with attributes a comma separated list of "no_direct_map" and "zero",
 * or "-".
 */
#include <linux/debugfs.h>
#include <linux/mm.h>
#include <linux/seq_file.h>

#include "internal.h"

struct dentry *persist_debugfs_root;

static int allocations_show(struct seq_file *m, void *v)
{
	struct persist_extent *ext;
	unsigned long pfn;

	xa_lock(&persist_extents);
	xa_for_each(&persist_extents, pfn, ext) {
		phys_addr_t phys = PFN_PHYS(ext->pfn);

		seq_printf(m, "%pa %u %d ", &phys, ext->order, ext->blk->pool->nid);
		if (!(ext->flags & (PERSIST_ALLOC_NO_DIRECT_MAP | PERSIST_ALLOC_ZERO)))
			seq_puts(m, "-");
		if (ext->flags & PERSIST_ALLOC_NO_DIRECT_MAP)
			seq_puts(m, "no_direct_map");
		if (ext->flags & PERSIST_ALLOC_ZERO)
			seq_printf(m, "%szero",
				   ext->flags & PERSIST_ALLOC_NO_DIRECT_MAP ? "," : "");
		seq_putc(m, '\n');
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
	return 0;
}

/* Before the test interface (late_initcall) adds its file. */
subsys_initcall(persist_debugfs_init);
