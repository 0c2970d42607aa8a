// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc_scrub: memory allocated and not preserved reaches nobody in
 * the next kernel with its contents.
 *
 * Generation 1 (persist_alloc=0:1G,1:1G) allocates a 1 GiB folio without
 * direct map and with HVO on node 0, and 2 MiB and 4 KiB folios with every
 * attribute set on node 1, fills every byte of each with a pattern and
 * preserves nothing. Generation 2 finds both blocks handed over, every
 * page of those folios out of its direct map before anything is
 * allocated, then takes each pool whole through the test consumer, which
 * does not ask for zeroed memory (4 KiB folios of a dirty chunk first,
 * then 2 MiB and 1 GiB folios), and reads every byte of every folio: all
 * zero. It ends with the pools free and full again.
 *
 * Hibernation, run only to its freezer test level (pm_test), goes through
 * while no pool memory is out of the direct map and is refused with -EBUSY
 * once some is: a NO_DIRECT_MAP folio in generation 1, blocks handed over
 * and not used yet in generation 2.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "persist_test.h"

#define NR_4K	512
#define NO_HIBERNATION_MSG \
	"persist_alloc: no hibernation while pool memory is out of the direct map"
#define ADOPTED_MSG \
	"persist_alloc: adopted 2 of 2 handed-over blocks and 0 of 0 extents"

struct tcase {
	int nid;
	unsigned int order;
	unsigned long flags;
};

#define F(ndm, hvo, zero)	((ndm) * PT_NO_DIRECT_MAP | (hvo) * PT_HVO | (zero) * PT_ZERO)
static const struct tcase cases[] = {
	{ 0, 18, F(1, 1, 0) },
	{ 1, 9, F(0, 0, 0) },
	{ 1, 9, F(1, 0, 0) },
	{ 1, 9, F(0, 1, 0) },
	{ 1, 9, F(1, 1, 0) },
	{ 1, 9, F(0, 0, 1) },
	{ 1, 9, F(1, 1, 1) },
	{ 1, 0, F(0, 0, 0) },
	{ 1, 0, F(1, 0, 0) },
	{ 1, 0, F(0, 0, 1) },
	{ 1, 0, F(1, 0, 1) },
};

#define NR_CASES	((int)ARRAY_SIZE(cases))

/* Hibernate as far as the freezer test level: 0 or -errno. */
static int hibernate_test(void)
{
	int ret;

	if (vt_write_file("/sys/power/pm_test", "freezer") ||
	    vt_write_file("/sys/module/suspend/parameters/pm_test_delay", "0"))
		vt_fatal("no hibernation test level (CONFIG_HIBERNATION, CONFIG_PM_DEBUG)");
	ret = vt_write_file("/sys/power/state", "disk");
	vt_write_file("/sys/power/pm_test", "none");
	return ret;
}

static void generation1(int fd)
{
	char args[1024] = "vmtest.scrub=";
	size_t len = strlen(args);
	int i, ret;

	/*
	 * Past persist_alloc's veto, the freezer test may still find too
	 * little memory for an image in this small VM: -ENOMEM is fine.
	 */
	ret = hibernate_test();
	vt_result((ret == 0 || ret == -ENOMEM) && !vt_dmesg_contains(NO_HIBERNATION_MSG),
		  "gen 1: hibernation not refused with no pool memory hidden (ret %d)", ret);

	for (i = 0; i < NR_CASES; i++) {
		const struct tcase *c = &cases[i];
		unsigned long long phys;

		ret = pt_cmd(fd, "alloc %d %u %lu", c->nid, c->order, c->flags);
		if (ret)
			vt_fatal("gen 1: alloc node %d order %u flags %lu: %d", c->nid,
				 c->order, c->flags, ret);
		phys = pt_slot_phys(fd, i);
		vt_result(pt_pattern(fd, i, c->order, 100 + i, PT_FILL | PT_CHECK),
			  "gen 1: folio %d (node %d order %u flags %lu) at %#llx filled", i,
			  c->nid, c->order, c->flags, phys);
		len += snprintf(args + len, sizeof(args) - len, "%s%llx:%u", i ? "," : "",
				phys, c->order);
	}
	vt_result(pt_node_stat(0, "preserved_bytes") == 0 &&
		  pt_node_stat(1, "preserved_bytes") == 0, "gen 1: nothing preserved");
	ret = hibernate_test();
	vt_result(ret == -EBUSY && vt_dmesg_contains(NO_HIBERNATION_MSG),
		  "gen 1: hibernation refused with NO_DIRECT_MAP folios allocated (ret %d)", ret);
	vt_next_args(args);
}

/* Every page of every folio of generation 1 is out of the direct map. */
static void check_hidden(int fd)
{
	char buf[1024], *s, *tok;
	int hidden = 0;

	if (!vt_cmdline_value("vmtest.scrub", buf, sizeof(buf)))
		vt_fatal("gen 2: generation 1 passed no vmtest.scrub=");
	for (s = buf; (tok = strsep(&s, ","));) {
		unsigned long long phys;
		unsigned int order;
		int ret;

		if (sscanf(tok, "%llx:%u", &phys, &order) != 2)
			vt_fatal("gen 2: bad vmtest.scrub entry '%s'", tok);
		ret = pt_cmd(fd, "unmapped %llx %lu", phys, 1ul << order);
		if (!vt_result(ret == 0,
			       "gen 2: old folio %#llx order %u out of the direct map (ret %d)",
			       phys, order, ret))
			continue;
		hidden++;
	}
	vt_result(hidden == NR_CASES, "gen 2: %d of %d old folios hidden", hidden, NR_CASES);
}

/* Take @nr folios of @order on @nid into slots from *@slot and check them zero. */
static int take_and_check(int fd, int nid, unsigned int order, int nr, unsigned int *slot)
{
	int taken = 0, bad = 0;

	while (nr < 0 || taken < nr) {
		if (pt_cmd(fd, "alloc %d %u 0", nid, order))
			break;
		if (!pt_pattern(fd, *slot, order, 0, PT_CHECK_ZERO))
			bad++;
		(*slot)++;
		taken++;
	}
	vt_result(!bad && taken, "gen 2: node %d: %d folios of order %u taken, %d not zero",
		  nid, taken, order, bad);
	return taken;
}

static void generation2(int fd)
{
	unsigned int slot = 0;
	int ret;

	vt_result(vt_dmesg_contains(ADOPTED_MSG), "gen 2: both blocks adopted, no extent");
	check_hidden(fd);
	ret = hibernate_test();
	vt_result(ret == -EBUSY, "gen 2: hibernation refused while old memory is hidden (ret %d)",
		  ret);
	vt_result(pt_node_stat(0, "free_bytes") == PT_GIB &&
		  pt_node_stat(1, "free_bytes") == PT_GIB,
		  "gen 2: both pools free: %llu and %llu bytes", pt_node_stat(0, "free_bytes"),
		  pt_node_stat(1, "free_bytes"));

	take_and_check(fd, 0, 18, -1, &slot);
	take_and_check(fd, 1, 0, NR_4K, &slot);
	take_and_check(fd, 1, 9, -1, &slot);
	vt_result(pt_node_stat(0, "free_bytes") == 0 && pt_node_stat(1, "free_bytes") == 0,
		  "gen 2: pools taken whole: %llu and %llu bytes left",
		  pt_node_stat(0, "free_bytes"), pt_node_stat(1, "free_bytes"));
	ret = pt_cmd(fd, "free-all");
	vt_result(!ret && pt_node_stat(0, "free_bytes") == PT_GIB &&
		  pt_node_stat(1, "free_bytes") == PT_GIB,
		  "gen 2: everything freed (ret %d)", ret);
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
