// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc_refused: a damaged handover is refused, its memory kept out
 * of use until it is zeroed, and the kernel boots with a clear message.
 * Run as three vmtests:
 *
 *   persist_alloc_refused_version  the subtree says persist-alloc-v0: the
 *     next kernel does not recognize it at all, finds the blocks in the
 *     ranges subtree, zeroes them and only then gives them to the page
 *     allocator; persist_alloc=0:1G on its command line carves a new pool
 *     on node 0 from other memory;
 *   persist_alloc_refused_chain    the same, and a third kernel: it adopts
 *     the second kernel's pool, and the first kernel's data is nowhere in
 *     the memory of the refused blocks;
 *   persist_alloc_refused_extent   one extent lies outside every block:
 *     only that extent is refused (its memory comes back free and zeroed),
 *     the blocks and the other extent are adopted, and the command line
 *     is set aside for the handed-over pools;
 *   persist_alloc_refused_run      four 2 MiB folios that follow each other
 *     are handed over as one run, and the second of them is also listed
 *     alone before it: the next kernel adopts that one and the run's
 *     first granule, then refuses the run from its second granule on (it
 *     overlaps), not only that granule: its third and fourth are refused
 *     too, and the debugfs verdicts and pm-inspect say from which granule;
 *   persist_alloc_refused_run_nomem  the same run, not damaged, but the
 *     second kernel fails the record of its third granule: the first two
 *     are adopted, the third and fourth are refused with the allocation
 *     failure, given back to their block as free memory and out of the
 *     direct map again, as the rest of the block's free memory is;
 *   persist_alloc_refused_nomem    nothing is damaged, but the second
 *     kernel boots with fail_persist_alloc= failing its first fallible
 *     step, the record of the first extent: that extent alone is lost, as
 *     a refused one is, and everything else is adopted.
 *
 * Generation 1 boots with persist_alloc=0:1G,1:1G, preserves a 2 MiB folio
 * (filled with a pattern) on node 0 and a 1 GiB folio on node 1, and
 * damages the handover through the test consumer. Generation 2 checks the
 * message, the pools, that nothing is pending, that the old pool memory is
 * out of MemTotal until zeroed, never handed out by a pool, and that the
 * old extents cannot be restored.
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
#include "pmvm.h"

#define ADOPTED_MSG \
	"persist_alloc: adopted 2 of 2 handed-over blocks and 1 of 2 extents"
#define REFUSED_MSG \
	"persist_alloc: handover refused: not persist-alloc-v4; 2 of its 2 blocks will be zeroed"
#define NOMEM_MSG \
	"order 9 refused: lost to an allocation failure"
#define CHAIN_MSG \
	"persist_alloc: adopted 1 of 1 handed-over blocks and 0 of 0 extents"
#define CARVED_MSG \
	"persist_alloc: 1 GiB carved after kexec: zeroed before first use"
#define RUN_MSG \
	"refused: overlapping another extent; 2 more of its run with it"
#define RUN_ADOPTED_MSG \
	"persist_alloc: adopted 2 of 2 handed-over blocks and 2 of 5 extents in 2 runs"
#define RUN_NOMEM_ADOPTED_MSG \
	"persist_alloc: adopted 2 of 2 handed-over blocks and 2 of 4 extents in 1 runs"
#define RUN_VERDICTS	"/sys/kernel/debug/persist_alloc/received/verdicts"
#define RUN_FOLIOS	4
#define SEED		7
#define WORDS_2M	(2 * PT_MIB / 8)

static unsigned long long mem_total(void)
{
	long long kb = vt_proc_value("/proc/meminfo", "MemTotal: %lld kB");

	return kb < 0 ? 0 : kb * 1024;
}

static void generation1(int fd, const char *what)
{
	char args[256];
	unsigned long long p2m, p1g;
	int ret;

	ret = pt_cmd(fd, "alloc 0 9 1");
	vt_result(!ret, "gen 1: 2 MiB folio without direct map on node 0 (ret %d)", ret);
	vt_result(pt_pattern(fd, 0, 9, SEED, PT_FILL), "gen 1: 2 MiB folio filled");
	ret = pt_cmd(fd, "alloc 1 18 0");
	vt_result(!ret, "gen 1: 1 GiB folio on node 1 (ret %d)", ret);
	p2m = pt_slot_phys(fd, 0);
	p1g = pt_slot_phys(fd, 1);
	/* The probe of the later generations sees the pattern where it is. */
	vt_result(pt_residue(fd, p2m, 512, SEED) == WORDS_2M,
		  "gen 1: the pattern is found in all of the 2 MiB folio (%lld words)",
		  pt_residue(fd, p2m, 512, SEED));
	vt_result(!pt_cmd(fd, "preserve 0 7") && !pt_cmd(fd, "preserve 1 8"),
		  "gen 1: both preserved");
	if (what) {
		ret = pt_cmd(fd, "corrupt-handover %s", what);
		vt_result(!ret, "gen 1: handover to be damaged: %s (ret %d)", what, ret);
	}
	snprintf(args, sizeof(args),
		 "persist_alloc=0:1G vmtest.memtotal=%llu vmtest.p2m=%#llx vmtest.p1g=%#llx%s",
		 mem_total(), p2m, p1g, what ? "" : " fail_persist_alloc=1,100,0,1");
	vt_next_args(args);
}

/*
 * Four 2 MiB folios in a row on node 0, preserved in memory order under
 * one owner, so that the handover folds them into one run.
 */
static void generation1_run(int fd, bool nomem)
{
	unsigned long long phys[RUN_FOLIOS];
	char args[128];
	int i, ret;

	for (i = 0; i < RUN_FOLIOS; i++) {
		ret = pt_cmd(fd, "alloc 0 9 0");
		phys[i] = ret ? 0 : pt_slot_phys(fd, i);
		vt_result(!ret, "gen 1: 2 MiB folio %d on node 0 at %#llx (ret %d)", i, phys[i],
			  ret);
	}
	for (i = 1; i < RUN_FOLIOS; i++)
		if (phys[i] != phys[0] + i * 2 * PT_MIB)
			vt_fatal("gen 1: folio %d at %#llx, not after %#llx", i, phys[i], phys[0]);
	vt_result(pt_pattern(fd, 0, 9, SEED, PT_FILL), "gen 1: the first folio filled");
	for (i = 0; i < RUN_FOLIOS; i++)
		vt_result(!pt_cmd(fd, "preserve %d 7", i), "gen 1: folio %d preserved", i);
	if (!nomem) {
		ret = pt_cmd(fd, "corrupt-handover run");
		vt_result(!ret, "gen 1: handover to be damaged: run (ret %d)", ret);
	}
	/* The records of granules 0 and 1 are the first fallible steps. */
	snprintf(args, sizeof(args), "vmtest.p2m=%#llx%s", phys[0],
		 nomem ? " fail_persist_alloc=3,100,0,1" : "");
	vt_next_args(args);
}

/* Whether pm-inspect's JSON gives the 2 MiB granule at @phys this verdict. */
static bool run_granule_says(const char *json, unsigned long long phys, const char *verdict)
{
	char want[160];

	snprintf(want, sizeof(want),
		 "{\"phys\":%llu,\"order\":9,\"owner\":7,\"flags\":0,\"verdict\":\"%s\"",
		 phys, verdict);
	if (strstr(json, want))
		return true;
	vt_diag("pm-inspect: missing %s", want);
	return false;
}

/* The received verdicts from debugfs into @buf; false if unreadable. */
static bool run_verdicts(char *buf, size_t size)
{
	int vfd = open(RUN_VERDICTS, O_RDONLY);
	ssize_t len = vfd < 0 ? -1 : read(vfd, buf, size - 1);

	if (vfd >= 0)
		close(vfd);
	buf[len > 0 ? len : 0] = '\0';
	return len > 0;
}

/*
 * Two 2 MiB extents of the run pending, its first two granules: restored,
 * the others not there to restore; the first holds its pattern.
 */
static void restore_run(int fd, unsigned long long p2m)
{
	int i, ret;

	vt_result(pt_node_stat(0, "pending_bytes") == 2 * 2 * PT_MIB,
		  "gen 2: two 2 MiB extents pending on node 0 (%llu bytes)",
		  pt_node_stat(0, "pending_bytes"));
	for (i = 0; i < RUN_FOLIOS; i++) {
		ret = pt_cmd(fd, "restore %llx 7", p2m + i * 2 * PT_MIB);
		vt_result(ret == (i < 2 ? 0 : -ENOENT),
			  "gen 2: granule %d of the run: restore returns %d, expected %d",
			  i, ret, i < 2 ? 0 : -ENOENT);
	}
	vt_result(pt_pattern(fd, 0, 9, SEED, PT_CHECK),
		  "gen 2: the adopted first granule holds its pattern");
	vt_result(!pt_cmd(fd, "free-all"), "gen 2: freed");
}

static void generation2_run(int fd)
{
	static const char *const json[] = { "--json", NULL };
	static char out[64 * 1024];
	unsigned long long p2m;
	char buf[64], verdicts[512];

	p2m = strtoull(vt_cmdline_value("vmtest.p2m", buf, sizeof(buf)) ?: "0", NULL, 0);
	vt_result(vt_dmesg_contains(RUN_MSG), "gen 2: the kernel log says '%s'", RUN_MSG);
	vt_result(vt_dmesg_contains(RUN_ADOPTED_MSG), "gen 2: the kernel log says '%s'",
		  RUN_ADOPTED_MSG);
	vt_result(run_verdicts(verdicts, sizeof(verdicts)) &&
		  strstr(verdicts, "extent 0 adopted\n") &&
		  strstr(verdicts, "extent 1 overlapping another extent from granule 1\n"),
		  "gen 2: the verdicts say the run was refused from its second granule");
	/* pm-inspect shows the run as its granules, each with its own verdict. */
	vt_result(pmvm_inspect(json, out, sizeof(out)) == 0 &&
		  run_granule_says(out, p2m, "adopted") &&
		  run_granule_says(out, p2m + 6 * PT_MIB, "overlapping another extent"),
		  "gen 2: pm-inspect: the run's first granule adopted, its last refused");
	restore_run(fd, p2m);
}

/*
 * The run's third granule failed its record: it and the fourth are free
 * memory of the block again, hidden with the rest of it.
 */
static void generation2_run_nomem(int fd)
{
	unsigned long long p2m, third;
	char buf[64], msg[160], verdicts[512];
	int ret;

	p2m = strtoull(vt_cmdline_value("vmtest.p2m", buf, sizeof(buf)) ?: "0", NULL, 0);
	third = p2m + 2 * 2 * PT_MIB;
	snprintf(msg, sizeof(msg),
		 "extent %#llx order 9 refused: lost to an allocation failure; 1 more of its run with it",
		 third);
	vt_result(vt_dmesg_contains(msg), "gen 2: the kernel log says '%s'", msg);
	vt_result(vt_dmesg_contains(RUN_NOMEM_ADOPTED_MSG), "gen 2: the kernel log says '%s'",
		  RUN_NOMEM_ADOPTED_MSG);
	vt_result(run_verdicts(verdicts, sizeof(verdicts)) &&
		  strstr(verdicts, "extent 0 lost to an allocation failure from granule 2\n"),
		  "gen 2: the verdicts say the run was refused from its third granule");
	vt_result(pt_node_stat(0, "free_bytes") == PT_GIB - 2 * 2 * PT_MIB,
		  "gen 2: all of node 0's block but the two adopted granules is free (%llu bytes)",
		  pt_node_stat(0, "free_bytes"));
	vt_result(pt_node_stat(0, "allocated_2m_bytes") == 2 * 2 * PT_MIB,
		  "gen 2: two 2 MiB granules counted allocated on node 0 (%llu bytes)",
		  pt_node_stat(0, "allocated_2m_bytes"));
	ret = pt_cmd(fd, "unmapped %llx %llu", third, 2 * 2 * PT_MIB / 4096);
	vt_result(!ret, "gen 2: the refused granules are out of the direct map (%d)", ret);
	ret = pt_cmd(fd, "unmapped %llx %llu", p2m, 2 * 2 * PT_MIB / 4096);
	vt_result(ret == -EEXIST, "gen 2: the adopted granules are in it (%d)", ret);
	restore_run(fd, p2m);
	/* The whole block can be taken: nothing of the run is left claimed. */
	ret = pt_cmd(fd, "alloc 0 18 0");
	vt_result(!ret, "gen 2: node 0's whole block is free again (ret %d)", ret);
	vt_result(!pt_cmd(fd, "free-all"), "gen 2: freed again");
}

static void generation2_extent(int fd, unsigned long long p2m, unsigned long long p1g,
			       bool nomem)
{
	const char *why = nomem ? NOMEM_MSG : "refused: outside every adopted block";
	int ret;

	vt_result(vt_dmesg_contains(why), "gen 2: the kernel log says '%s'", why);
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

/* The refused blocks are zeroed in the background, then released. */
static bool wait_released(unsigned long long block)
{
	char msg[96];
	int i;

	snprintf(msg, sizeof(msg),
		 "persist_alloc: handover: refused block %#llx zeroed and released", block);
	for (i = 0; i < 240 && !vt_dmesg_contains(msg); i++)
		usleep(500 * 1000);
	return vt_result(vt_dmesg_contains(msg), "gen 2: the log says '%s'", msg);
}

/*
 * The pool carved after the kexec lies in memory the first kernel used:
 * out of the direct map until a granule of it is taken, and that granule
 * zeroed, whatever the caller asks for.
 */
static void new_pool_hidden(int fd)
{
	unsigned long long phys, block, other_half;
	int ret;

	vt_result(vt_dmesg_contains(CARVED_MSG), "gen 2: the log says '%s'", CARVED_MSG);
	ret = pt_cmd(fd, "alloc 0 0 0");
	phys = ret ? 0 : pt_slot_phys(fd, 0);
	if (!vt_result(!ret && phys, "gen 2: a 4 KiB folio of the new pool (ret %d)", ret))
		return;
	block = phys & ~(PT_GIB - 1);
	other_half = phys - block < PT_GIB / 2 ? block + PT_GIB / 2 : block;
	ret = pt_cmd(fd, "unmapped %llx %llu", other_half, PT_GIB / 2 / 4096);
	vt_result(ret == 0,
		  "gen 2: the rest of the new block %#llx is out of the direct map (ret %d)",
		  block, ret);
	vt_result(pt_pattern(fd, 0, 0, 0, PT_CHECK_ZERO), "gen 2: the folio taken reads zero");
	vt_result(!pt_cmd(fd, "free 0"), "gen 2: freed");
}

static void generation2(int fd, bool version, bool nomem)
{
	unsigned long long memtotal, p2m, p1g, expect, now, phys;
	char buf[64], alloc_buf[256];
	int ret, afd;

	if (!vt_cmdline_value("vmtest.memtotal", buf, sizeof(buf)))
		vt_fatal("generation 1 did not pass vmtest.memtotal");
	memtotal = strtoull(buf, NULL, 0);
	p2m = strtoull(vt_cmdline_value("vmtest.p2m", buf, sizeof(buf)) ?: "0", NULL, 0);
	p1g = strtoull(vt_cmdline_value("vmtest.p1g", buf, sizeof(buf)) ?: "0", NULL, 0);
	if (!version) {
		generation2_extent(fd, p2m, p1g, nomem);
		return;
	}

	vt_result(vt_dmesg_contains(REFUSED_MSG), "gen 2: the log says '%s'", REFUSED_MSG);
	vt_result(pt_node_stat(0, "total_bytes") == PT_GIB &&
		  pt_node_stat(1, "total_bytes") == 0,
		  "gen 2: pools node 0 %llu node 1 %llu bytes, expected %llu and 0",
		  pt_node_stat(0, "total_bytes"), pt_node_stat(1, "total_bytes"), PT_GIB);
	afd = open(PT_ALLOCATIONS, O_RDONLY);
	ret = afd < 0 ? -errno : read(afd, alloc_buf, sizeof(alloc_buf));
	if (afd >= 0)
		close(afd);
	vt_result(ret == 0, "gen 2: no extent adopted (allocations read %d bytes)", ret);
	vt_result(pt_node_stat(0, "pending_bytes") == 0, "gen 2: nothing pending");
	ret = pt_cmd(fd, "restore %llx 7", p2m);
	vt_result(ret == -ENOENT, "gen 2: old extent cannot be restored: expected %d, got %d",
		  -ENOENT, ret);
	new_pool_hidden(fd);
	ret = pt_cmd(fd, "alloc 0 18 0");
	phys = ret ? 0 : pt_slot_phys(fd, 0);
	vt_result(!ret && phys != (p2m & ~(PT_GIB - 1)) && phys != p1g,
		  "gen 2: new pool at %#llx, not in the refused blocks %#llx and %#llx",
		  phys, p2m & ~(PT_GIB - 1), p1g);
	vt_result(!pt_cmd(fd, "free 0"), "gen 2: freed");

	/* Zeroed, then given to the page allocator: no data, no memory lost. */
	wait_released(p2m & ~(PT_GIB - 1));
	wait_released(p1g);
	vt_result(pt_residue(fd, p2m, 512, SEED) == 0,
		  "gen 2: none of the pattern left where the folio was (%lld words)",
		  pt_residue(fd, p2m, 512, SEED));
	/* The old 2 GiB are RAM again; the new carve takes 1 GiB. */
	now = mem_total();
	expect = memtotal + PT_GIB;
	vt_result(now + 64 * PT_MIB > expect && now < expect + 64 * PT_MIB,
		  "gen 2: MemTotal %llu MiB, expected about %llu MiB (refused blocks released)",
		  now / PT_MIB, expect / PT_MIB);
}

/* The kernel after: the second kernel's pool, no trace of the first's data. */
static void generation3(int fd)
{
	unsigned long long p2m;
	char buf[64];
	int ret;

	p2m = strtoull(vt_cmdline_value("vmtest.p2m", buf, sizeof(buf)) ?: "0", NULL, 0);
	vt_result(vt_dmesg_contains(CHAIN_MSG), "gen 3: the log says '%s'", CHAIN_MSG);
	vt_result(!vt_dmesg_contains("persist_alloc: handover refused"),
		  "gen 3: the second kernel's handover is not refused");
	vt_result(pt_residue(fd, p2m, 512, SEED) == 0,
		  "gen 3: none of the first kernel's pattern where its folio was (%lld words)",
		  pt_residue(fd, p2m, 512, SEED));
	ret = pt_cmd(fd, "alloc 0 18 0");
	vt_result(!ret && pt_pattern(fd, 0, 18, 0, PT_CHECK_ZERO),
		  "gen 3: node 0's pool works and reads zero (ret %d)", ret);
	vt_result(!pt_cmd(fd, "free 0"), "gen 3: freed");
}

int main(int argc, char **argv)
{
	bool chain = !strcmp(basename(argv[0]), "persist_alloc_refused_chain");
	bool version = chain || !strcmp(basename(argv[0]), "persist_alloc_refused_version");
	bool nomem = !strcmp(basename(argv[0]), "persist_alloc_refused_nomem");
	bool run_nomem = !strcmp(basename(argv[0]), "persist_alloc_refused_run_nomem");
	bool run = run_nomem || !strcmp(basename(argv[0]), "persist_alloc_refused_run");
	int gen = vt_stage(argc, argv, chain ? 3 : 2);
	int fd = pt_open();

	if (gen == 1) {
		if (run)
			generation1_run(fd, run_nomem);
		else
			generation1(fd, version ? "version" : nomem ? NULL : "extent");
		vt_hold();
	}
	if (gen == 2 && run_nomem) {
		generation2_run_nomem(fd);
	} else if (gen == 2 && run) {
		generation2_run(fd);
	} else if (gen == 2) {
		generation2(fd, version, nomem);
		if (chain)
			vt_hold();
	} else {
		generation3(fd);
	}
	close(fd);
	return vt_finish();
}
