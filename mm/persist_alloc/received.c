// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc: the handover of the previous kernel, as received.
 */

/**
 * DOC: received handover
 *
 * A handover is used up at boot: the extent array is freed once its extents
 * are adopted, the verdicts exist only as boot lines. For operators and for
 * the handover inspector (``tools/persistmem/inspect/``), persist_alloc
 * keeps what it received and what it decided about each entry, in
 * ``/sys/kernel/debug/persist_alloc/received/``:
 *
 * ``extents``
 *   the handed-over extent array byte for byte as received: entries of
 *   ``struct persist_alloc_extent_ser`` (see the KHO ABI header), each
 *   a run of granules, as many as the array had room for. Failed pages (PERSIST_ALLOC_SER_HWPOISON)
 *   are entries too. Empty if no block was adopted or the array could not
 *   be restored: then every extent the head counts was refused.
 *
 * ``verdicts``
 *   one line per handed-over block, in the order of the blob, then one per
 *   entry of ``extents``: ``block <i> <verdict>`` and ``extent <i>
 *   <verdict>``, where the verdict is ``adopted`` or why it was refused, in
 *   the words of the boot lines. A run refused from one of its granules
 *   on reads ``extent <i> <verdict> from granule <k>``: its first k
 *   granules were adopted, the rest refused.
 *
 * The blocks themselves are in the head blob, which KHO keeps for its
 * debugfs (``/sys/kernel/debug/kho/in/sub_fdts/persist-alloc``, see
 * kho_restore_subtree_done()). What became of an adopted extent since
 * (still pending, restored by its owner, freed) is in ``allocations``.
 * Nothing is kept without CONFIG_DEBUG_FS; with it, 29 bytes per
 * handed-over run for the life of the kernel.
 */

#include <linux/debugfs.h>
#include <linux/kho/abi/persist_alloc.h>
#include <linux/mm.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "internal.h"

static struct {
	struct persist_alloc_extent_ser *ext;
	unsigned long nr_ext;
	u8 *ext_verdict;
	u32 *ext_at;
	u8 *blk_verdict;
	unsigned long nr_blk;
} received;

/**
 * persist_received_keep - keep a handover and its verdicts for debugfs
 * @ext:         the extent array as received, from kho_restore_vmalloc(), or
 *               NULL; taken over
 * @nr_ext:      number of entries of @ext that were read
 * @ext_verdict: the verdict on each of them (kvmalloc'ed), or NULL; taken over
 * @ext_at:      for each, its first refused granule (kvmalloc'ed), or NULL;
 *               taken over
 * @blk_verdict: the verdict on each handed-over block; copied
 * @nr_blk:      number of handed-over blocks
 *
 * Without @ext_verdict the extents are not kept: an array without verdicts
 * would say nothing of what this kernel did with it.
 */
void __init persist_received_keep(struct persist_alloc_extent_ser *ext,
				  unsigned long nr_ext, u8 *ext_verdict, u32 *ext_at,
				  const u8 *blk_verdict, unsigned long nr_blk)
{
	if (!IS_ENABLED(CONFIG_DEBUG_FS) || !ext_verdict || !ext_at) {
		if (ext)
			memset(ext, 0, nr_ext * sizeof(*ext));
		vfree(ext);
		kvfree(ext_verdict);
		kvfree(ext_at);
		ext = NULL;
		ext_verdict = NULL;
		ext_at = NULL;
		nr_ext = 0;
	}
	if (!IS_ENABLED(CONFIG_DEBUG_FS))
		return;
	received.ext = ext;
	received.nr_ext = nr_ext;
	received.ext_verdict = ext_verdict;
	received.ext_at = ext_at;
	received.blk_verdict = nr_blk ? kmemdup(blk_verdict, nr_blk, GFP_KERNEL) : NULL;
	received.nr_blk = received.blk_verdict ? nr_blk : 0;
}

static int verdicts_show(struct seq_file *m, void *v)
{
	unsigned long i;

	for (i = 0; i < received.nr_blk; i++)
		seq_printf(m, "block %lu %s\n", i, persist_verdict_str(received.blk_verdict[i]));
	for (i = 0; i < received.nr_ext; i++) {
		seq_printf(m, "extent %lu %s", i, persist_verdict_str(received.ext_verdict[i]));
		if (received.ext_verdict[i] != PERSIST_ADOPT && received.ext_at[i])
			seq_printf(m, " from granule %u", received.ext_at[i]);
		seq_putc(m, '\n');
	}
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(verdicts);

static struct debugfs_blob_wrapper extents_blob;

static int __init persist_received_init(void)
{
	struct dentry *dir;

	/* Nothing handed over (a cold boot): no directory. */
	if (!IS_ENABLED(CONFIG_DEBUG_FS) || (!received.nr_blk && !received.ext))
		return 0;
	dir = debugfs_create_dir("received", persist_debugfs_root);
	extents_blob.data = received.ext;
	extents_blob.size = received.nr_ext * sizeof(*received.ext);
	debugfs_create_blob("extents", 0400, dir, &extents_blob);
	debugfs_create_file("verdicts", 0400, dir, NULL, &verdicts_fops);
	return 0;
}
late_initcall(persist_received_init);
