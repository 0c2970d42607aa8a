// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc_prehvo: blocks carved at boot that persist_alloc_hvo= names
 * start as free 1 GiB HVO folios, with struct pages nobody initialized
 * one by one, and behave as any kept block.
 *
 * Generation 1 (persist_alloc=0:1G,1:2G persist_alloc_hvo=0:1G,1:1G,3:1G):
 *  - the log says which blocks were optimized, and that node 3 had none
 *    carved; node 0 keeps its only block as an HVO block, node 1 one of
 *    its two;
 *  - node 0's first 1 GiB HVO folio is the kept block: /proc/kpageflags
 *    reads its head as a compound head and pages deep in it as tails (the
 *    zone's shared tail page was not overwritten with single pages by the
 *    struct page init of the carve-out); it is filled and preserved;
 *  - node 1's 2 MiB folios come from its other block first; once that is
 *    full, the kept block gives way: 512 more fit, and those checked are
 *    folios that read back what is written. Both blocks are filled with
 *    data and go back to the buddy allocator, so that node 1 has no pool
 *    at the kexec.
 *
 * Generation 2 (persist_alloc_hvo=1:2G): node 0's pool is handed over and
 * the 1 GiB HVO folio comes back with its pattern. Node 1's 2 GiB are
 * carved again after the kexec, at least one of them in memory the first
 * kernel filled, and optimized: they are out of the direct map until
 * their first use, and each 1 GiB HVO folio, asked without zeroing, is
 * mapped again and reads zero, so a kept block cannot hand the previous
 * kernel's data out. Freed, they are kept again.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "persist_test.h"

#define SEED		0x70726568
#define OWNER		4712
#define HVO_SAVED	(16 * PT_MIB - 4096)	/* struct pages a 1 GiB HVO folio saves */
#define OPT_MSG(n)	"persist_alloc: node " #n ": 1 GiB carved at boot get their vmemmap " \
			"optimized, 16380 KiB of struct pages not allocated"
#define OPT2_MSG	"persist_alloc: node 1: 2 GiB carved at boot get their vmemmap " \
			"optimized, 32760 KiB of struct pages not allocated"
#define NODE3_MSG	"persist_alloc: persist_alloc_hvo=: node 3: 1 GiB more than carved at this boot, not optimized"
#define CARVED_MSG	"persist_alloc: 2 GiB carved after kexec: zeroed before first use"

static void boot_state(void)
{
	vt_result(vt_dmesg_contains(OPT_MSG(0)) && vt_dmesg_contains(OPT_MSG(1)),
		  "gen 1: the log says '%s', and the same for node 1", OPT_MSG(0));
	vt_result(vt_dmesg_contains(NODE3_MSG), "gen 1: the log says '%s'", NODE3_MSG);
	vt_result(pt_node_stat(0, "free_bytes") == PT_GIB &&
		  pt_node_stat(0, "hvo_free_bytes") == PT_GIB &&
		  !pt_node_stat(0, "vmemmap_saved_bytes"),
		  "gen 1: node 0's only block is kept as an HVO block (%llu)",
		  pt_node_stat(0, "hvo_free_bytes"));
	vt_result(pt_node_stat(1, "free_bytes") == 2 * PT_GIB &&
		  pt_node_stat(1, "hvo_free_bytes") == PT_GIB,
		  "gen 1: node 1 has 2 GiB free, 1 GiB of it kept as an HVO block (%llu)",
		  pt_node_stat(1, "hvo_free_bytes"));
}

static void first_hvo_folio(int fd)
{
	unsigned long long phys, kept = pt_node_stat(0, "hvo_free_bytes");
	int ret;

	ret = pt_cmd(fd, "alloc 0 18 %d", PT_HVO | PT_ZERO);
	phys = ret ? 0 : pt_slot_phys(fd, 0);
	if (!vt_result(phys && kept == PT_GIB && !pt_node_stat(0, "hvo_free_bytes") &&
		       pt_node_stat(0, "vmemmap_saved_bytes") == HVO_SAVED,
		       "gen 1: node 0's first 1 GiB HVO folio is the kept block (%d, %#llx)",
		       ret, phys))
		return;
	vt_result(pt_looks_like_folio(phys, 18),
		  "gen 1: /proc/kpageflags: its head a compound head, pages deep in it tails (%#llx %#llx)",
		  pt_page_flags(phys), pt_page_flags(phys + 4242 * 4096ull));
	vt_result(pt_pattern(fd, 0, 18, 0, PT_CHECK_ZERO | PT_SAMPLE) &&
		  pt_pattern(fd, 0, 18, SEED, PT_FILL | PT_CHECK | PT_SAMPLE),
		  "gen 1: it reads zero, then what is written to it");
	ret = pt_cmd(fd, "preserve 0 %d", OWNER);
	vt_result(!ret, "gen 1: preserved as owner %d (%d)", OWNER, ret);
}

/*
 * Both of node 1's blocks full of 2 MiB folios carrying the pattern, where
 * a sampled check reads, before they go back to the buddy allocator: the
 * next kernel carves node 1 again in this memory. Their addresses go to
 * the next kernel.
 */
static void leave_data(int fd)
{
	static unsigned long long phys[1024];
	unsigned long long blocks[2] = {};
	char args[96];
	int n, i, bad = 0;

	bad = pt_cmd(fd, "fill 512 1 9 0");
	n = pt_extents(1, 9, "allocated", phys, 1024);
	for (i = 1; !bad && i <= n; i++)
		bad = !pt_pattern(fd, i, 9, SEED, PT_FILL | PT_SAMPLE);
	for (i = 0; i < n && i < 1024; i++) {
		unsigned long long b = phys[i] & ~(PT_GIB - 1);

		if (b != blocks[0] && !blocks[1] && blocks[0])
			blocks[1] = b;
		if (!blocks[0])
			blocks[0] = b;
	}
	vt_result(!bad && n == 1024 && blocks[1],
		  "gen 1: node 1's blocks %#llx and %#llx full of 2 MiB folios with data (%d)",
		  blocks[0], blocks[1], n);
	snprintf(args, sizeof(args), "persist_alloc_hvo=1:2G vmtest.n1a=%#llx vmtest.n1b=%#llx",
		 blocks[0], blocks[1]);
	vt_next_args(args);
}

/* Node 1's ordinary block serves first; then the kept one gives way. */
static void block_gives_way(int fd)
{
	struct pt_slot slots[PT_MAX_SLOTS];
	int ret, n, i, good = 0;

	ret = pt_cmd(fd, "fill 512 1 9 0");
	vt_result(!ret && pt_node_stat(1, "hvo_free_bytes") == PT_GIB,
		  "gen 1: node 1's other block serves 512 2 MiB folios, the kept one stays (%d)",
		  ret);
	ret = pt_cmd(fd, "fill 32 1 9 0");
	vt_result(!ret && !pt_node_stat(1, "hvo_free_bytes"),
		  "gen 1: then the kept block gives way to 32 more (%d)", ret);
	/* Slot 0 is node 0's folio, 1 to 512 the other block's: list the rest. */
	for (i = 1; i <= 512; i++)
		ret |= pt_cmd(fd, "free %d", i);
	n = pt_slots(fd, slots, PT_MAX_SLOTS);
	for (i = 0; i < n; i++) {
		if (!slots[i].slot)
			continue;
		good += pt_looks_like_folio((unsigned long long)slots[i].pfn << 12, 9) &&
			pt_pattern(fd, slots[i].slot, 9, SEED + i, PT_FILL | PT_CHECK | PT_SAMPLE);
	}
	vt_result(!ret && good == 32,
		  "gen 1: %d of its 32 2 MiB folios are folios that hold their data", good);
	ret = pt_cmd(fd, "fill 480 1 9 0");
	vt_result(!ret && pt_node_stat(1, "free_bytes") == PT_GIB,
		  "gen 1: it holds 512 of them in all, the other block is free again (%d)", ret);
	leave_data(fd);
	ret = pt_cmd(fd, "free-all");
	vt_result(!ret && pt_node_stat(1, "free_bytes") == 2 * PT_GIB,
		  "gen 1: freed; the preserved folio stays (%d)", ret);
	ret = pt_node_write(1, "shrink", "2");
	vt_result(!ret && !pt_node_stat(1, "total_bytes"),
		  "gen 1: node 1's blocks back to the buddy allocator (%d)", ret);
}

/* The 1 GiB folio on node 1 in the consumer's slots other than @other. */
static unsigned long long node1_folio(int fd, unsigned long long other, int *slot)
{
	struct pt_slot s[PT_MAX_SLOTS];
	int n = pt_slots(fd, s, PT_MAX_SLOTS), i;

	for (i = 0; i < n; i++) {
		if (s[i].nid == 1 && s[i].order == 18 && (s[i].pfn << 12) != other) {
			*slot = s[i].slot;
			return (unsigned long long)s[i].pfn << 12;
		}
	}
	return 0;
}

static void generation2(int fd)
{
	unsigned long long phys, block = 0, a, b;
	int ret, i, slot, filled = 0;
	char buf[32];

	vt_result(vt_dmesg_contains(OPT2_MSG) && vt_dmesg_contains(CARVED_MSG),
		  "gen 2: node 1 carved after the kexec and optimized: '%s'", OPT2_MSG);
	if (vt_result(pt_extents(0, 18, "pending", &phys, 1) == 1,
		      "gen 2: the 1 GiB HVO folio is pending on node 0")) {
		ret = pt_cmd(fd, "restore %llx %d", phys, OWNER);
		vt_result(!ret && pt_pattern(fd, 0, 18, SEED, PT_CHECK | PT_SAMPLE),
			  "gen 2: restored with its pattern (%d)", ret);
		vt_result(!pt_cmd(fd, "free 0"), "gen 2: freed");
	}

	if (!vt_result(pt_node_stat(1, "hvo_free_bytes") == 2 * PT_GIB,
		       "gen 2: node 1's two new blocks are kept as HVO blocks"))
		return;
	a = strtoull(vt_cmdline_value("vmtest.n1a", buf, sizeof(buf)) ?: "0", NULL, 0);
	b = strtoull(vt_cmdline_value("vmtest.n1b", buf, sizeof(buf)) ?: "0", NULL, 0);
	for (i = 0; i < 2; i++) {
		ret = pt_cmd(fd, "alloc 1 18 %d", PT_HVO);
		block = ret ? 0 : node1_folio(fd, i ? block : 0, &slot);
		if (!vt_result(block, "gen 2: node 1's 1 GiB HVO folio %d, not asked zeroed (%d)",
			       i, ret))
			return;
		filled += block == a || block == b;
		ret = pt_cmd(fd, "unmapped %llx %llu", block, PT_GIB / 4096);
		vt_result(ret == -EEXIST, "gen 2: %#llx is in the direct map again (unmapped: %d)",
			  block, ret);
		vt_result(pt_looks_like_folio(block, 18) &&
			  pt_pattern(fd, slot, 18, 0, PT_CHECK_ZERO | PT_SAMPLE),
			  "gen 2: a folio, and it reads zero: nothing of the first kernel in it");
	}
	/* Otherwise "reads zero" would prove nothing. */
	vt_result(filled, "gen 2: %d of them is memory the first kernel filled", filled);
	ret = pt_cmd(fd, "free-all");
	vt_result(!ret && pt_node_stat(1, "hvo_free_bytes") == 2 * PT_GIB,
		  "gen 2: freed, kept again (%d)", ret);
}

int main(int argc, char **argv)
{
	int gen = vt_stage(argc, argv, 2);
	int fd = pt_open();

	if (gen == 1) {
		boot_state();
		first_hvo_folio(fd);
		block_gives_way(fd);
		vt_hold();
	}
	generation2(fd);
	return vt_finish();
}
