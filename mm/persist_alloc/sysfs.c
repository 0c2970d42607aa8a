// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc: /sys/kernel/mm/persist_alloc/node<N>/
 */

/**
 * DOC: sysfs
 *
 * One directory per node with memory, ``/sys/kernel/mm/persist_alloc/node<N>/``:
 *
 * ``total_bytes``, ``free_bytes``
 *   size of the node's pool and what is not allocated.
 * ``allocated_4k_bytes``, ``allocated_2m_bytes``, ``allocated_1g_bytes``
 *   allocated bytes per granule size.
 * ``no_direct_map_bytes``
 *   allocated bytes removed from the kernel direct map.
 * ``vmemmap_saved_bytes``
 *   struct page memory freed by HVO of allocated huge granules.
 * ``hvo_free_bytes``
 *   of ``free_bytes``, blocks kept as optimized free 1 GiB HVO folios for
 *   the next one: freed ones, pre-HVO'd ones (see "Keeping HVO blocks").
 * ``preserved_bytes``
 *   allocated bytes to be handed over at the next kexec.
 * ``pending_bytes``
 *   bytes handed over by the previous kernel that no owner restored or
 *   claimed yet (see "Claiming handed-over runs").
 * ``pending_built_bytes``
 *   of ``pending_bytes``, those whose folios are built already, so that
 *   restoring them costs O(1) per folio (see "Prebuilding").
 * ``grow``, ``shrink`` (write only, root)
 *   write a number of 1 GiB blocks to take from the buddy allocator or to
 *   give back (unused blocks only). A bad number fails with -EINVAL and
 *   changes nothing; a write that cannot do any of it fails with the
 *   reason (-ENOMEM, -EBUSY); a partial success returns the full count and
 *   ``total_bytes`` tells what was done.
 */

#include <linux/kobject.h>
#include <linux/mm.h>
#include <linux/nodemask.h>
#include <linux/slab.h>
#include <linux/sysfs.h>

#include "internal.h"

static struct kobject *persist_kobj;
static struct kobject *node_kobjs[MAX_NUMNODES];

static int kobj_nid(struct kobject *kobj)
{
	int nid;

	for (nid = 0; nid < MAX_NUMNODES; nid++)
		if (node_kobjs[nid] == kobj)
			return nid;
	return NUMA_NO_NODE;
}

struct persist_stats {
	unsigned long total;
	unsigned long free;
	unsigned long allocated[PERSIST_NR_GRANULES];
	unsigned long no_direct_map;
	unsigned long vmemmap_saved;
	unsigned long hvo_free;
	unsigned long preserved;
	unsigned long pending;
	unsigned long built;
};

static void read_stats(int nid, struct persist_stats *st)
{
	struct persist_pool *pool = READ_ONCE(persist_pools[nid]);
	struct persist_block *blk;
	int g;

	memset(st, 0, sizeof(*st));
	if (!pool)
		return;
	spin_lock(&pool->lock);
	st->total = pool->nr_blocks * PERSIST_BLOCK_SIZE;
	list_for_each_entry(blk, &pool->blocks, list)
		st->free += blk->nr_free << PAGE_SHIFT;
	st->hvo_free = persist_hvo_kept_bytes(pool);
	st->free += st->hvo_free;
	for (g = 0; g < PERSIST_NR_GRANULES; g++)
		st->allocated[g] = pool->allocated[g];
	st->no_direct_map = pool->no_direct_map_pages << PAGE_SHIFT;
	st->vmemmap_saved = pool->vmemmap_saved;
	st->preserved = pool->preserved_pages << PAGE_SHIFT;
	st->pending = pool->pending_pages << PAGE_SHIFT;
	st->built = pool->built_pages << PAGE_SHIFT;
	spin_unlock(&pool->lock);
	st->allocated[PERSIST_GRANULE_4K] *= SZ_4K;
	st->allocated[PERSIST_GRANULE_2M] *= SZ_2M;
	st->allocated[PERSIST_GRANULE_1G] *= SZ_1G;
}

#define PERSIST_STAT_ATTR(_name, _expr)						\
static ssize_t _name##_show(struct kobject *kobj, struct kobj_attribute *attr,	\
			    char *buf)						\
{										\
	struct persist_stats st;						\
										\
	read_stats(kobj_nid(kobj), &st);					\
	return sysfs_emit(buf, "%lu\n", _expr);					\
}										\
static struct kobj_attribute _name##_attr = __ATTR_RO(_name)

PERSIST_STAT_ATTR(total_bytes, st.total);
PERSIST_STAT_ATTR(free_bytes, st.free);
PERSIST_STAT_ATTR(allocated_4k_bytes, st.allocated[PERSIST_GRANULE_4K]);
PERSIST_STAT_ATTR(allocated_2m_bytes, st.allocated[PERSIST_GRANULE_2M]);
PERSIST_STAT_ATTR(allocated_1g_bytes, st.allocated[PERSIST_GRANULE_1G]);
PERSIST_STAT_ATTR(no_direct_map_bytes, st.no_direct_map);
PERSIST_STAT_ATTR(vmemmap_saved_bytes, st.vmemmap_saved);
PERSIST_STAT_ATTR(hvo_free_bytes, st.hvo_free);
PERSIST_STAT_ATTR(preserved_bytes, st.preserved);
PERSIST_STAT_ATTR(pending_bytes, st.pending);
PERSIST_STAT_ATTR(pending_built_bytes, st.built);

static ssize_t resize_store(struct kobject *kobj, const char *buf, size_t count,
			    long (*resize)(int nid, unsigned long nr))
{
	unsigned long nr;
	long ret;

	if (kstrtoul(buf, 0, &nr) || !nr || nr > PERSIST_RESIZE_MAX)
		return -EINVAL;
	ret = resize(kobj_nid(kobj), nr);
	return ret < 0 ? ret : count;
}

static ssize_t grow_store(struct kobject *kobj, struct kobj_attribute *attr,
			  const char *buf, size_t count)
{
	return resize_store(kobj, buf, count, persist_pool_grow);
}

static ssize_t shrink_store(struct kobject *kobj, struct kobj_attribute *attr,
			    const char *buf, size_t count)
{
	return resize_store(kobj, buf, count, persist_pool_shrink);
}

static struct kobj_attribute grow_attr = __ATTR_WO(grow);
static struct kobj_attribute shrink_attr = __ATTR_WO(shrink);

static struct attribute *persist_node_attrs[] = {
	&total_bytes_attr.attr,
	&free_bytes_attr.attr,
	&allocated_4k_bytes_attr.attr,
	&allocated_2m_bytes_attr.attr,
	&allocated_1g_bytes_attr.attr,
	&no_direct_map_bytes_attr.attr,
	&vmemmap_saved_bytes_attr.attr,
	&hvo_free_bytes_attr.attr,
	&preserved_bytes_attr.attr,
	&pending_bytes_attr.attr,
	&pending_built_bytes_attr.attr,
	&grow_attr.attr,
	&shrink_attr.attr,
	NULL,
};

static const struct attribute_group persist_node_group = {
	.attrs = persist_node_attrs,
};

static int __init persist_sysfs_init(void)
{
	char name[16];
	int nid, err;

	persist_kobj = kobject_create_and_add("persist_alloc", mm_kobj);
	if (!persist_kobj)
		return -ENOMEM;
	for_each_node_state(nid, N_MEMORY) {
		snprintf(name, sizeof(name), "node%d", nid);
		node_kobjs[nid] = kobject_create_and_add(name, persist_kobj);
		if (!node_kobjs[nid])
			return -ENOMEM;
		err = sysfs_create_group(node_kobjs[nid], &persist_node_group);
		if (err)
			return err;
	}
	return 0;
}
subsys_initcall(persist_sysfs_init);
