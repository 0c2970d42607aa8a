// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc_freeze: the handover freezes with the live update, and a
 * cancelled update leaves it as it was and changeable again.
 *
 * Generation 1 allocates folios on both nodes, fills them and preserves
 * three, and 512 granules of 4 KiB besides: enough entries that the freeze
 * moves the runs into a smaller extent array, which the log line shows,
 * and that the cancel must preserve the bigger one again: KHO then holds
 * as much serialized state for the handover as before (debugfs
 * kho/out/serialized_bytes), no page preserved twice or left out. They
 * are unpreserved after the cancel.
 * The test consumer makes the next live update freeze fail after
 * persist_alloc froze (it is last on the freeze chain), so with a kexec
 * image loaded, reboot(LINUX_REBOOT_CMD_KEXEC) fails with that error and
 * the kernel log shows the handover frozen, then unfrozen. Then the
 * handover changes again: one folio is unpreserved and freed, another
 * preserved. Generation 2, after a real kexec, finds exactly the handover
 * of after the cancel: the three folios preserved then come back with
 * their contents under their owners, the unpreserved one is not pending.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "persist_test.h"

#define ESCAPED		"persist_freeze.escaped"
#define FROZEN_MSG	"persist_alloc: handover frozen: 2 blocks and 515 extents in "
/* The runs in an array of one page, where 515 entries took six. */
#define COMPACT_MSG	" runs, 4096 + 4096 bytes, in "
#define COMPACT_NR	512
#define COMPACT_OWNER	600
#define UNFROZEN_MSG	"persist_alloc: handover unfrozen: the live update was cancelled"
#define ADOPTED_MSG	\
	"persist_alloc: adopted 2 of 2 handed-over blocks and 3 of 3 extents"
#define OWNER		500

struct tcase {
	int nid;
	unsigned int order;
	unsigned long flags;
	bool before;	/* preserved before the cancelled kexec */
	bool after;	/* preserved after it */
};

static const struct tcase cases[] = {
	{ 0, 9, PT_NO_DIRECT_MAP, true, true },
	{ 0, 0, 0, true, false },		/* unpreserved and freed after the cancel */
	{ 1, 9, PT_HVO, true, true },
	{ 1, 0, PT_NO_DIRECT_MAP, false, true },	/* preserved after the cancel */
};

#define NR_CASES	((int)ARRAY_SIZE(cases))

static void cancelled_kexec(int fd)
{
	long long before = vt_kho_serialized(), after;
	long long radix = vt_kho_radix();

	/* Flagged, so that generation 1 knows should this kernel boot after all. */
	pt_cancelled_kexec(fd, ESCAPED, "gen 1");
	vt_result(vt_dmesg_contains(FROZEN_MSG), "gen 1: the log says '%s'", FROZEN_MSG);
	vt_result(vt_dmesg_contains(COMPACT_MSG), "gen 1: the log says '%s'", COMPACT_MSG);
	vt_result(vt_dmesg_contains(UNFROZEN_MSG), "gen 1: the log says '%s'", UNFROZEN_MSG);
	/*
	 * The serialized state only: the radix tree keeps the nodes the
	 * freeze's smaller array needed (KHO frees none before the kexec).
	 */
	after = vt_kho_serialized();
	vt_result(before > 0 && after == before,
		  "gen 1: KHO holds as much for the handover after the cancel (%lld bytes, was %lld; radix tree %lld bytes, was %lld)",
		  after, before, vt_kho_radix(), radix);
}

/* 4 KiB granules of another owner, preserved, in a second slot table. */
static int preserve_many(void)
{
	int fd = pt_open(), ret;

	ret = pt_cmd(fd, "fill %d 0 0 0", COMPACT_NR);
	vt_result(!ret, "gen 1: %d granules of 4 KiB allocated (%d)", COMPACT_NR, ret);
	ret = pt_cmd(fd, "preserve-all %d", COMPACT_OWNER);
	vt_result(!ret, "gen 1: and preserved (%d)", ret);
	return fd;
}

static void unpreserve_many(int fd)
{
	int i, ret = 0;

	for (i = 0; i < COMPACT_NR && !ret; i++)
		ret = pt_cmd(fd, "unpreserve %d", i);
	ret = ret ?: pt_cmd(fd, "free-all");
	vt_result(!ret, "gen 1: the %d granules unpreserved and freed after the cancel (%d)",
		  COMPACT_NR, ret);
	close(fd);
}

static void generation1(int fd)
{
	char args[512] = "vmtest.freeze=", buf[8];
	size_t len = strlen(args);
	int i, ret, many;

	if (vt_cmdline_value(ESCAPED, buf, sizeof(buf)))
		vt_fatal("gen 1 booted again: the kexec went through although a freeze failed");
	for (i = 0; i < NR_CASES; i++) {
		const struct tcase *c = &cases[i];

		ret = pt_cmd(fd, "alloc %d %u %lu", c->nid, c->order, c->flags);
		if (ret)
			vt_fatal("gen 1: alloc node %d order %u flags %lu: %d", c->nid,
				 c->order, c->flags, ret);
		vt_result(pt_pattern(fd, i, c->order, OWNER + i, PT_FILL),
			  "gen 1: folio %d (node %d order %u flags %lu) filled", i, c->nid,
			  c->order, c->flags);
		if (c->before) {
			ret = pt_cmd(fd, "preserve %d %d", i, OWNER + i);
			vt_result(!ret, "gen 1: folio %d preserved (%d)", i, ret);
		}
		len += snprintf(args + len, sizeof(args) - len, "%s%llx", i ? "," : "",
				pt_slot_phys(fd, i));
	}

	many = preserve_many();
	cancelled_kexec(fd);
	unpreserve_many(many);

	/* Thawed: the handover changes again. */
	for (i = 0; i < NR_CASES; i++) {
		const struct tcase *c = &cases[i];

		if (c->before && !c->after) {
			ret = pt_cmd(fd, "unpreserve %d", i);
			vt_result(!ret, "gen 1: folio %d unpreserved after the cancel (%d)",
				  i, ret);
			ret = pt_cmd(fd, "free %d", i);
			vt_result(!ret, "gen 1: folio %d freed after the cancel (%d)", i, ret);
		} else if (!c->before && c->after) {
			ret = pt_cmd(fd, "preserve %d %d", i, OWNER + i);
			vt_result(!ret, "gen 1: folio %d preserved after the cancel (%d)", i, ret);
		} else if (c->before) {
			ret = pt_cmd(fd, "preserve %d %d", i, OWNER + i);
			vt_result(ret == -EBUSY, "gen 1: folio %d still preserved (%d)", i, ret);
		}
	}
	/* Pools resize again; a block that joins and leaves is not handed over. */
	ret = pt_node_write(0, "grow", "1");
	if (ret == -ENOMEM)
		vt_diag("gen 1: no free 1 GiB range on node 0 to grow into");
	else if (vt_result(!ret, "gen 1: node 0's pool grows after the cancel (%d)", ret))
		vt_result(!pt_node_write(0, "shrink", "1"), "gen 1: and shrinks");
	vt_next_args(args);
}

static void generation2(int fd)
{
	char buf[512], *s, *tok;
	int i = 0, slot = 0, ret;

	if (!vt_cmdline_value("vmtest.freeze", buf, sizeof(buf)))
		vt_fatal("gen 2: generation 1 passed no vmtest.freeze=");
	for (s = buf; (tok = strsep(&s, ",")) && i < NR_CASES; i++) {
		const struct tcase *c = &cases[i];
		unsigned long long phys = strtoull(tok, NULL, 16);

		ret = pt_cmd(fd, "restore %llx %d", phys, OWNER + i);
		if (!c->after) {
			vt_result(ret == -ENOENT,
				  "gen 2: folio %d, unpreserved, not handed over (%d)", i, ret);
			continue;
		}
		if (!vt_result(!ret, "gen 2: folio %d restored (%d)", i, ret))
			continue;
		vt_result(pt_pattern(fd, slot, c->order, OWNER + i, PT_CHECK),
			  "gen 2: folio %d kept its contents", i);
		slot++;
	}
	vt_result(i == NR_CASES, "gen 2: %d of %d folios checked", i, NR_CASES);
	vt_result(vt_dmesg_contains(ADOPTED_MSG), "gen 2: the log says '%s'", ADOPTED_MSG);
}

int main(int argc, char **argv)
{
	int gen = vt_stage(argc, argv, 2);
	int fd = pt_open();

	if (gen == 1) {
		generation1(fd);
		vt_hold();
	}
	generation2(fd);
	close(fd);
	return vt_finish();
}
