// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc_hvo_keep: a freed 1 GiB HVO folio is kept optimized for
 * the next one, and gives way whenever the pool needs its block otherwise.
 *
 * Generation 1 (persist_alloc=0:1G,1:1G), through the test consumer:
 *  - node 0: a 1 GiB HVO folio, filled and freed, is kept
 *    (hvo_free_bytes, free_bytes); the next 1 GiB HVO folio is the same
 *    one; a 2 MiB folio with no other room takes the block back;
 *  - a memory failure in a kept block: the host does not oops on its
 *    shared read-only struct pages, the log says the page is held back,
 *    and the next 1 GiB HVO allocation restores the block instead of
 *    handing the failed page out: the page ends up quarantined, the rest
 *    of the block free for smaller folios;
 *  - node 1: a kept block is given back to the buddy allocator by a
 *    shrink, with its struct pages restored first;
 *  - node 1, grown by a block again: a 1 GiB HVO folio is filled and
 *    preserved.
 *
 * Generation 2 restores that folio, finds its pattern and frees it. It
 * holds the previous kernel's data and its block is dirty: it must not be
 * kept. The next 1 GiB HVO folio, asked without PERSIST_ALLOC_ZERO, is
 * the same memory and must read zero: a kept folio is handed out without
 * a scrub, and would carry the previous kernel's data to a new owner.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "persist_test.h"

#define CORRUPT_PFN	"/sys/kernel/debug/hwpoison/corrupt-pfn"
#define SEED		0x6b657074
#define BAD_PAGE	4242	/* struct page in the shared read-only vmemmap */
#define OWNER		4711
#define HANDOVER_SEED	0x68616e64
#define HELD_MSG	"in a free 1 GiB HVO block, held back when the block is next taken"

/* A 1 GiB HVO folio on @nid into slot 0; its physical address, or 0. */
static unsigned long long alloc_hvo_1g(int fd, int nid, int flags, const char *what)
{
	int ret = pt_cmd(fd, "alloc %d 18 %d", nid, PT_HVO | flags);

	if (!vt_result(!ret, "%s: 1 GiB HVO folio on node %d (%d)", what, nid, ret))
		return 0;
	return pt_slot_phys(fd, 0);
}

static void keep_and_reuse(int fd)
{
	unsigned long long phys, again;
	int ret;

	phys = alloc_hvo_1g(fd, 0, 0, "first");
	if (!phys)
		return;
	vt_result(pt_pattern(fd, 0, 18, SEED, PT_FILL | PT_SAMPLE), "first: folio filled");
	vt_result(!pt_cmd(fd, "free 0"), "first: freed");
	vt_result(pt_node_stat(0, "hvo_free_bytes") == PT_GIB &&
		  pt_node_stat(0, "free_bytes") == PT_GIB &&
		  !pt_node_stat(0, "allocated_1g_bytes") && !pt_node_stat(0, "vmemmap_saved_bytes"),
		  "first: kept (hvo_free_bytes %llu), free and not counted allocated",
		  pt_node_stat(0, "hvo_free_bytes"));

	/* The last owner's data must not reach the next one that asks for zeroes. */
	again = alloc_hvo_1g(fd, 0, PT_ZERO, "again");
	vt_result(again == phys && !pt_node_stat(0, "hvo_free_bytes") &&
		  pt_node_stat(0, "vmemmap_saved_bytes"),
		  "again: the kept folio %#llx (was %#llx), counted allocated and optimized",
		  again, phys);
	vt_result(again && pt_pattern(fd, 0, 18, SEED, PT_CHECK_ZERO | PT_SAMPLE),
		  "again: asked zeroed, it reads zero: nothing of its last owner left");
	vt_result(!pt_cmd(fd, "free 0"), "again: freed, kept");

	/* No room but the kept block: it gives way to a 2 MiB folio. */
	ret = pt_cmd(fd, "alloc 0 9 0");
	vt_result(!ret && (pt_slot_phys(fd, 0) & ~(PT_GIB - 1)) == phys &&
		  !pt_node_stat(0, "hvo_free_bytes"),
		  "a 2 MiB folio takes the kept block back (%d)", ret);
	vt_result(!ret && pt_pattern(fd, 0, 9, SEED, PT_FILL | PT_CHECK),
		  "the 2 MiB folio holds what is written to it");
	vt_result(!pt_cmd(fd, "free-all"), "2 MiB folio freed");
}

static void failure_in_kept_block(int fd)
{
	unsigned long long phys, bad, free;
	char val[32];
	int ret;

	if (access(CORRUPT_PFN, W_OK)) {
		vt_result(false, "%s: %s (CONFIG_HWPOISON_INJECT?)", CORRUPT_PFN,
			  strerror(errno));
		return;
	}
	phys = alloc_hvo_1g(fd, 0, 0, "failure");
	if (!phys || !vt_result(!pt_cmd(fd, "free 0") &&
				pt_node_stat(0, "hvo_free_bytes") == PT_GIB,
				"failure: folio freed and kept"))
		return;
	bad = phys + BAD_PAGE * 4096ull;
	snprintf(val, sizeof(val), "%#llx", bad >> 12);
	ret = vt_write_file(CORRUPT_PFN, val);
	vt_result(!ret, "failure: memory failure injected into page %d of the kept block (%d)",
		  BAD_PAGE, ret);
	vt_result(vt_dmesg_contains(HELD_MSG), "failure: the log says '%s'", HELD_MSG);

	ret = pt_cmd(fd, "alloc 0 18 %d", PT_HVO);
	vt_result(ret == -ENOMEM, "failure: no 1 GiB HVO folio over the failed page (%d)", ret);
	free = pt_node_stat(0, "free_bytes");
	vt_result(pt_is_quarantined(bad) && !pt_node_stat(0, "hvo_free_bytes") &&
		  free == PT_GIB - 4096,
		  "failure: the block restored, its failed page quarantined (%llu bytes free)",
		  free);
	ret = pt_cmd(fd, "fill 511 0 9 0");
	vt_result(!ret, "failure: the rest of the block serves 511 2 MiB folios (%d)", ret);
	vt_result(!pt_cmd(fd, "free-all"), "failure: freed");
}

static void shrink_kept(int fd)
{
	long long before = pt_node_stat(1, "total_bytes");
	int ret;

	if (!alloc_hvo_1g(fd, 1, 0, "shrink") ||
	    !vt_result(!pt_cmd(fd, "free 0") && pt_node_stat(1, "hvo_free_bytes") == PT_GIB,
		       "shrink: folio freed and kept"))
		return;
	ret = pt_node_write(1, "shrink", "1");
	vt_result(!ret && pt_node_stat(1, "total_bytes") == before - PT_GIB &&
		  !pt_node_stat(1, "hvo_free_bytes"),
		  "shrink: the kept block went back to the buddy allocator (%d)", ret);
}

/* Generation 1: a 1 GiB HVO folio on node 1, filled and preserved. */
static void hand_over(int fd)
{
	int ret = pt_node_write(1, "grow", "1");

	if (!vt_result(!ret && pt_node_stat(1, "total_bytes") == PT_GIB,
		       "handover: node 1 grown by a block (%d)", ret) ||
	    !alloc_hvo_1g(fd, 1, 0, "handover"))
		return;
	vt_result(pt_pattern(fd, 0, 18, HANDOVER_SEED, PT_FILL | PT_SAMPLE) &&
		  !pt_cmd(fd, "preserve 0 %d", OWNER),
		  "handover: 1 GiB HVO folio filled and preserved as owner %d", OWNER);
}

/* Generation 2: the handed-over folio, freed, is not kept with its data. */
static void freed_after_handover(int fd)
{
	unsigned long long phys, again;
	int ret;

	if (!vt_result(pt_extents(1, 18, "pending", &phys, 1) == 1,
		       "gen 2: the 1 GiB HVO folio is pending on node 1"))
		return;
	ret = pt_cmd(fd, "restore %llx %d", phys, OWNER);
	if (!vt_result(!ret && pt_slot_phys(fd, 0) == phys,
		       "gen 2: restored by its owner (%d)", ret))
		return;
	vt_result(pt_pattern(fd, 0, 18, HANDOVER_SEED, PT_CHECK | PT_SAMPLE),
		  "gen 2: the previous kernel's pattern is there");
	ret = pt_cmd(fd, "free 0");
	vt_result(!ret && !pt_node_stat(1, "hvo_free_bytes") &&
		  pt_node_stat(1, "free_bytes") == PT_GIB,
		  "gen 2: freed (%d), not kept: its block is dirty (hvo_free_bytes %llu)", ret,
		  pt_node_stat(1, "hvo_free_bytes"));
	again = alloc_hvo_1g(fd, 1, 0, "gen 2: again, not zeroed");
	vt_result(again == phys, "gen 2: the same memory again (%#llx, was %#llx)", again, phys);
	vt_result(again && pt_pattern(fd, 0, 18, 0, PT_CHECK_ZERO),
		  "gen 2: it reads zero: nothing of the previous kernel reaches its new owner");
	vt_result(!pt_cmd(fd, "free-all"), "gen 2: freed");
}

int main(int argc, char **argv)
{
	int gen = vt_stage(argc, argv, 2);
	int fd = pt_open();

	if (gen == 1) {
		keep_and_reuse(fd);
		failure_in_kept_block(fd);
		shrink_kept(fd);
		hand_over(fd);
		vt_hold();
	}
	freed_after_handover(fd);
	return vt_finish();
}
