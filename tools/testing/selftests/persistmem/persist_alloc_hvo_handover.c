// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc_hvo_handover: blocks kept as free 1 GiB HVO folios stay
 * kept across a kexec and hold nothing of the previous kernel for their
 * next owner; a cancelled kexec takes the flag back; a kept block with a
 * failed page goes over as an ordinary block; a handover that flags free
 * a block with extents or failed pages in it is refused at the smallest
 * unit.
 *
 * Generation 1 (persist_alloc=0:1G,1:3G persist_alloc_hvo=1:2G):
 *  - node 1's blocks A and E start kept (pre-HVO'd at boot); each taken as
 *    a 1 GiB HVO folio, filled and freed, is kept again. A memory failure
 *    in E holds it back;
 *  - node 0's block C serves a 1 GiB HVO folio built from single pages;
 *    filled and freed, it is kept too;
 *  - node 1's other block B serves a 2 MiB folio, filled and preserved.
 *
 * Generation 2: A and C come back kept, with their vmemmap optimized at
 * boot (one boot line per node), E as an ordinary block with its failed
 * page quarantined. B's 2 MiB folio is restored with its pattern and
 * preserved again. A kexec is cancelled in its freeze, which flagged A and
 * C. Then each is the next 1 GiB HVO folio of its node: asked without
 * zeroing, it is a folio, in the direct map again, and reads zero. C's is
 * filled and preserved, so that its block is one 1 GiB HVO extent now, and
 * A's freed and kept again. The handover is damaged: every block but C's
 * flagged free, B and E among them.
 *
 * Generation 3: C's extent comes back whole (the cancel took its free
 * flag back). The 2 MiB extent in B is refused, and B is kept like A and
 * E, E's failed page recorded. Two 1 GiB HVO folios are A and B and read
 * zero, B's with the refused extent's data before; E gives way at the
 * third, its failed page quarantined, and that allocation fails.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "persist_test.h"

#define SEED		0x6876686f
#define OWNER		4713
#define BAD_PAGE	4242	/* struct page in the shared read-only vmemmap */
#define CORRUPT_PFN	"/sys/kernel/debug/hwpoison/corrupt-pfn"
#define ESCAPED		"hvo_handover.escaped"
#define OPT_MSG(n)	"persist_alloc: node " #n ": 1 free 1 GiB HVO blocks handed over get " \
			"their vmemmap optimized at boot"
#define HELD_MSG	"in a free 1 GiB HVO block, held back when the block is next taken"
#define FREE_MSG	"refused: inside a block handed over as free"
#define UNFROZEN_MSG	"persist_alloc: handover unfrozen: the live update was cancelled"
#define UNRECORDED_MSG	"kept out of use without a record"

static unsigned long long arg(const char *key)
{
	char buf[32];

	return strtoull(vt_cmdline_value(key, buf, sizeof(buf)) ?: "0", NULL, 0);
}

/*
 * A 1 GiB HVO folio of node @nid, not asked zeroed, into the lowest free
 * slot @slot: its address, or 0. With @check, it must be a folio in the
 * direct map that reads zero.
 */
static unsigned long long take_1g(int fd, int nid, int slot, bool check, const char *what)
{
	unsigned long long phys;
	int ret;

	ret = pt_cmd(fd, "alloc %d 18 %d", nid, PT_HVO);
	phys = ret ? 0 : pt_slot_phys(fd, slot);
	if (!vt_result(phys, "%s: a 1 GiB HVO folio on node %d (%d)", what, nid, ret) || !check)
		return phys;
	ret = pt_cmd(fd, "unmapped %llx %llu", phys, PT_GIB / 4096);
	vt_result(ret == -EEXIST, "%s: %#llx is in the direct map again (unmapped: %d)",
		  what, phys, ret);
	vt_result(pt_looks_like_folio(phys, 18) &&
		  pt_pattern(fd, slot, 18, 0, PT_CHECK_ZERO | PT_SAMPLE),
		  "%s: a folio, and it reads zero", what);
	return phys;
}

/* Node 1's two kept blocks, A into slot 0 and E into slot 1, filled and kept again. */
static void kept_blocks(int fd, unsigned long long *a, unsigned long long *e)
{
	char val[32];
	int ret;

	*a = take_1g(fd, 1, 0, false, "gen 1: A");
	*e = take_1g(fd, 1, 1, false, "gen 1: E");
	vt_result(*a && *e && pt_pattern(fd, 0, 18, SEED, PT_FILL | PT_SAMPLE) &&
		  pt_pattern(fd, 1, 18, SEED, PT_FILL | PT_SAMPLE) && !pt_cmd(fd, "free-all") &&
		  pt_node_stat(1, "hvo_free_bytes") == 2 * PT_GIB,
		  "gen 1: A %#llx and E %#llx filled, freed and kept again", *a, *e);
	if (access(CORRUPT_PFN, W_OK)) {
		vt_result(false, "%s: %s (CONFIG_HWPOISON_INJECT?)", CORRUPT_PFN, strerror(errno));
		return;
	}
	snprintf(val, sizeof(val), "%#llx", (*e >> 12) + BAD_PAGE);
	ret = vt_write_file(CORRUPT_PFN, val);
	vt_result(!ret && vt_dmesg_contains(HELD_MSG),
		  "gen 1: a memory failure in E is held back (%d)", ret);
}

static void generation1(int fd)
{
	unsigned long long a, c, e, b2m;
	char args[160];
	int ret;

	vt_result(pt_node_stat(1, "hvo_free_bytes") == 2 * PT_GIB &&
		  !pt_node_stat(0, "hvo_free_bytes"),
		  "gen 1: node 1 keeps its two pre-HVO'd blocks, node 0 none");
	kept_blocks(fd, &a, &e);
	c = take_1g(fd, 0, 0, false, "gen 1: C");
	vt_result(c && pt_pattern(fd, 0, 18, SEED + 1, PT_FILL | PT_SAMPLE) &&
		  !pt_cmd(fd, "free 0") && pt_node_stat(0, "hvo_free_bytes") == PT_GIB,
		  "gen 1: C %#llx, built, filled, freed and kept", c);
	ret = pt_cmd(fd, "alloc 1 9 0");
	b2m = ret ? 0 : pt_slot_phys(fd, 0);
	vt_result(b2m && (b2m & ~(PT_GIB - 1)) != a && (b2m & ~(PT_GIB - 1)) != e &&
		  pt_pattern(fd, 0, 9, SEED + 2, PT_FILL | PT_SAMPLE) &&
		  !pt_cmd(fd, "preserve 0 %d", OWNER),
		  "gen 1: a 2 MiB folio %#llx from node 1's other block B, preserved (%d)",
		  b2m, ret);
	snprintf(args, sizeof(args),
		 "vmtest.a=%#llx vmtest.c=%#llx vmtest.e=%#llx vmtest.b2m=%#llx", a, c, e, b2m);
	vt_next_args(args);
}

static void generation2(int fd)
{
	unsigned long long a = arg("vmtest.a"), c = arg("vmtest.c"), e = arg("vmtest.e");
	unsigned long long b2m = arg("vmtest.b2m"), phys = 0;
	char buf[8];
	int ret;

	if (vt_cmdline_value(ESCAPED, buf, sizeof(buf)))
		vt_fatal("gen 2 booted again: the kexec went through although its freeze failed");
	vt_result(vt_dmesg_contains(OPT_MSG(0)) && vt_dmesg_contains(OPT_MSG(1)),
		  "gen 2: the log says '%s', and the same for node 1", OPT_MSG(0));
	vt_result(pt_node_stat(0, "hvo_free_bytes") == PT_GIB &&
		  pt_node_stat(1, "hvo_free_bytes") == PT_GIB,
		  "gen 2: one block kept on each node, not E with its failed page (%llu, %llu)",
		  pt_node_stat(0, "hvo_free_bytes"), pt_node_stat(1, "hvo_free_bytes"));
	vt_result(pt_is_quarantined(e + BAD_PAGE * 4096ull),
		  "gen 2: E's failed page is quarantined");
	vt_result(!pt_cmd(fd, "unmapped %llx %llu", a, PT_GIB / 4096) &&
		  !pt_cmd(fd, "unmapped %llx %llu", c, PT_GIB / 4096),
		  "gen 2: A and C are out of the direct map until taken");
	if (vt_result(pt_extents(1, 9, "pending", &phys, 1) == 1 && phys == b2m,
		      "gen 2: the 2 MiB folio is pending on node 1 (%#llx)", phys)) {
		ret = pt_cmd(fd, "restore %llx %d", phys, OWNER);
		vt_result(!ret && pt_pattern(fd, 0, 9, SEED + 2, PT_CHECK | PT_SAMPLE) &&
			  !pt_cmd(fd, "preserve 0 %d", OWNER),
			  "gen 2: restored with its pattern, preserved again (%d)", ret);
	}
	/* Its freeze flagged A and C. */
	pt_cancelled_kexec(fd, ESCAPED, "gen 2");
	vt_result(vt_dmesg_contains(UNFROZEN_MSG), "gen 2: the log says '%s'", UNFROZEN_MSG);
	vt_result(take_1g(fd, 1, 1, true, "gen 2: node 1") == a,
		  "gen 2: node 1's folio is A (%#llx)", a);
	vt_result(take_1g(fd, 0, 2, true, "gen 2: node 0") == c,
		  "gen 2: node 0's folio is C (%#llx)", c);
	vt_result(!pt_cmd(fd, "free 1") && pt_node_stat(1, "hvo_free_bytes") == PT_GIB,
		  "gen 2: A freed and kept again");
	vt_result(pt_pattern(fd, 2, 18, SEED + 3, PT_FILL | PT_SAMPLE) &&
		  !pt_cmd(fd, "preserve 2 %d", OWNER) && !pt_cmd(fd, "corrupt-handover free"),
		  "gen 2: C filled and preserved; the handover will flag every other block free");
}

static void generation3(int fd)
{
	unsigned long long a = arg("vmtest.a"), c = arg("vmtest.c"), e = arg("vmtest.e");
	unsigned long long b = arg("vmtest.b2m") & ~(PT_GIB - 1), phys = 0, x, y;
	int ret;

	if (vt_result(pt_extents(0, 18, "pending", &phys, 1) == 1 && phys == c,
		      "gen 3: C's 1 GiB HVO extent is pending (%#llx)", phys)) {
		ret = pt_cmd(fd, "restore %llx %d", phys, OWNER);
		vt_result(!ret && pt_pattern(fd, 0, 18, SEED + 3, PT_CHECK | PT_SAMPLE),
			  "gen 3: restored with its pattern (%d)", ret);
	}
	vt_result(vt_dmesg_contains(FREE_MSG), "gen 3: the log says '%s'", FREE_MSG);
	vt_result(!pt_extents(1, 9, "pending", NULL, 0),
		  "gen 3: the 2 MiB extent in B is not pending");
	vt_result(pt_node_stat(1, "hvo_free_bytes") == 3 * PT_GIB,
		  "gen 3: A, B and E kept (%llu)", pt_node_stat(1, "hvo_free_bytes"));
	vt_result(!vt_dmesg_contains(UNRECORDED_MSG),
		  "gen 3: E's failed page recorded, to hold E back (no '%s')", UNRECORDED_MSG);
	x = take_1g(fd, 1, 1, true, "gen 3: node 1, first");
	y = take_1g(fd, 1, 2, true, "gen 3: node 1, second");
	vt_result((x == a && y == b) || (x == b && y == a),
		  "gen 3: they are A and B, B with the refused extent's data before (%#llx %#llx)",
		  x, y);
	ret = pt_cmd(fd, "alloc 1 18 %d", PT_HVO);
	vt_result(ret == -ENOMEM && pt_is_quarantined(e + BAD_PAGE * 4096ull) &&
		  !pt_node_stat(1, "hvo_free_bytes"),
		  "gen 3: E gave way, its failed page quarantined; no third folio (%d)", ret);
}

int main(int argc, char **argv)
{
	int gen = vt_stage(argc, argv, 3);
	int fd = pt_open();

	if (gen == 1) {
		generation1(fd);
		vt_hold();
	}
	if (gen == 2) {
		generation2(fd);
		vt_hold();
	}
	generation3(fd);
	return vt_finish();
}
