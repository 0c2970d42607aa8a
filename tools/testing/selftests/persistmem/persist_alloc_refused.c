// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc_refused: a damaged handover is refused, its memory kept out
 * of use, and the kernel boots with a clear message. Run as two vmtests:
 *
 *   persist_alloc_refused_version  the subtree says persist-alloc-v0: the
 *     next kernel does not recognize it at all, so persist_alloc=0:1G on its
 *     command line carves a new pool on node 0;
 *   persist_alloc_refused_extent   one extent lies outside every block:
 *     only that extent is refused (its memory comes back free and zeroed),
 *     the blocks and the other extent are adopted, and the command line
 *     is set aside for the handed-over pools.
 *
 * Generation 1 boots with persist_alloc=0:1G,1:1G, preserves a 2 MiB folio
 * on node 0 and a 1 GiB folio on node 1, and damages the handover through
 * the test consumer. Generation 2 checks the message, the pools, that
 * nothing is pending, that the old pool memory is neither in MemTotal nor
 * handed out, and that the old extents cannot be restored.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "persist_test.h"

#define ADOPTED_MSG \
	"persist_alloc: adopted 2 of 2 handed-over blocks and 1 of 2 extents"

static unsigned long long mem_total(void)
{
	unsigned long long kb = 0;
	char line[128];
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb * 1024;
}

static void generation1(int fd, const char *what)
{
	char args[256];
	unsigned long long p2m, p1g;
	int ret;

	ret = pt_cmd(fd, "alloc 0 9 1");
	vt_result(!ret, "gen 1: 2 MiB folio without direct map on node 0 (ret %d)", ret);
	vt_result(pt_pattern(fd, 0, 9, 7, PT_FILL), "gen 1: 2 MiB folio filled");
	ret = pt_cmd(fd, "alloc 1 18 0");
	vt_result(!ret, "gen 1: 1 GiB folio on node 1 (ret %d)", ret);
	p2m = pt_slot_phys(fd, 0);
	p1g = pt_slot_phys(fd, 1);
	vt_result(!pt_cmd(fd, "preserve 0 7") && !pt_cmd(fd, "preserve 1 8"),
		  "gen 1: both preserved");
	ret = pt_cmd(fd, "corrupt-handover %s", what);
	vt_result(!ret, "gen 1: handover to be damaged: %s (ret %d)", what, ret);
	snprintf(args, sizeof(args),
		 "persist_alloc=0:1G vmtest.memtotal=%llu vmtest.p2m=%#llx vmtest.p1g=%#llx",
		 mem_total(), p2m, p1g);
	vt_next_args(args);
}

static void generation2_extent(int fd, unsigned long long p2m, unsigned long long p1g)
{
	int ret;

	vt_result(vt_dmesg_contains("refused: outside every adopted block"),
		  "gen 2: the kernel log names the refused extent");
	vt_result(vt_dmesg_contains(ADOPTED_MSG), "gen 2: the kernel log says what was adopted");
	vt_result(pt_node_stat(0, "total_bytes") == PT_GIB &&
		  pt_node_stat(1, "total_bytes") == PT_GIB,
		  "gen 2: both handed-over pools adopted: %llu and %llu bytes",
		  pt_node_stat(0, "total_bytes"), pt_node_stat(1, "total_bytes"));
	vt_result(pt_node_stat(0, "pending_bytes") == 0 &&
		  pt_node_stat(1, "pending_bytes") == PT_GIB,
		  "gen 2: only the 1 GiB extent pending: %llu and %llu bytes",
		  pt_node_stat(0, "pending_bytes"), pt_node_stat(1, "pending_bytes"));
	ret = pt_cmd(fd, "restore %llx 7", p2m);
	vt_result(ret == -ENOENT, "gen 2: refused extent cannot be restored: expected %d, got %d",
		  -ENOENT, ret);
	ret = pt_cmd(fd, "restore %llx 8", p1g);
	vt_result(!ret, "gen 2: the valid extent is restored (ret %d)", ret);
	/* The refused extent's memory is free again, and holds nothing. */
	ret = pt_cmd(fd, "alloc 0 18 0");
	vt_result(!ret && pt_slot_phys(fd, 1) == (p2m & ~(PT_GIB - 1)),
		  "gen 2: node 0's block taken whole (ret %d)", ret);
	vt_result(!ret && pt_pattern(fd, 1, 18, 0, PT_CHECK_ZERO),
		  "gen 2: the refused extent's memory reads zero");
	vt_result(!pt_cmd(fd, "free-all"), "gen 2: freed");
}

static void generation2(int fd, bool version)
{
	unsigned long long memtotal, p2m, p1g, expect, now = mem_total(), phys;
	char buf[64], alloc_buf[256];
	int ret, afd;

	if (!vt_cmdline_value("vmtest.memtotal", buf, sizeof(buf)))
		vt_fatal("generation 1 did not pass vmtest.memtotal");
	memtotal = strtoull(buf, NULL, 0);
	p2m = strtoull(vt_cmdline_value("vmtest.p2m", buf, sizeof(buf)) ?: "0", NULL, 0);
	p1g = strtoull(vt_cmdline_value("vmtest.p1g", buf, sizeof(buf)) ?: "0", NULL, 0);
	if (!version) {
		generation2_extent(fd, p2m, p1g);
		return;
	}

	vt_result(vt_dmesg_contains("persist_alloc: handover refused"),
		  "gen 2: the kernel log says the handover was refused");
	vt_result(pt_node_stat(0, "total_bytes") == (version ? PT_GIB : 0) &&
		  pt_node_stat(1, "total_bytes") == 0,
		  "gen 2: pools node 0 %llu node 1 %llu bytes, expected %llu and 0",
		  pt_node_stat(0, "total_bytes"), pt_node_stat(1, "total_bytes"),
		  version ? PT_GIB : 0);
	afd = open(PT_ALLOCATIONS, O_RDONLY);
	ret = afd < 0 ? -errno : read(afd, alloc_buf, sizeof(alloc_buf));
	if (afd >= 0)
		close(afd);
	vt_result(ret == 0, "gen 2: no extent adopted (allocations read %d bytes)", ret);
	vt_result(pt_node_stat(0, "pending_bytes") == 0, "gen 2: nothing pending");

	/* The old 2 GiB stay reserved; the new carve adds 1 GiB when there is one. */
	expect = memtotal - (version ? PT_GIB : 0);
	vt_result(now + 64 * PT_MIB > expect && now < expect + 64 * PT_MIB,
		  "gen 2: MemTotal %llu MiB, expected about %llu MiB (old pools kept out of use)",
		  now / PT_MIB, expect / PT_MIB);

	ret = pt_cmd(fd, "restore %llx 7", p2m);
	vt_result(ret == -ENOENT, "gen 2: old extent cannot be restored: expected %d, got %d",
		  -ENOENT, ret);
	if (version) {
		ret = pt_cmd(fd, "alloc 0 18 0");
		phys = ret ? 0 : pt_slot_phys(fd, 0);
		vt_result(!ret && phys != (p2m & ~(PT_GIB - 1)) && phys != p1g,
			  "gen 2: new pool at %#llx, not in the refused blocks %#llx and %#llx",
			  phys, p2m & ~(PT_GIB - 1), p1g);
		vt_result(!pt_cmd(fd, "free 0"), "gen 2: freed");
	}
}

int main(int argc, char **argv)
{
	int gen = vt_stage(argc, argv, 2);
	bool version = !strcmp(basename(argv[0]), "persist_alloc_refused_version");
	int fd = pt_open();

	if (gen == 1) {
		generation1(fd, version ? "version" : "extent");
		vt_hold();
	}
	generation2(fd, version);
	close(fd);
	return vt_finish();
}
