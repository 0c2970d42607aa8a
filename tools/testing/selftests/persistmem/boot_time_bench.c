// SPDX-License-Identifier: GPL-2.0
/*
 * boot_time_bench: what persist_alloc costs the boot (make bench).
 *
 * Three kernels of the same VM are timed, each booted by kexec, so that
 * they are booted the same way:
 *  - generation 2: no pools (no persist_alloc=);
 *  - generation 3: 8 GiB of pools carved at boot (persist_alloc=0:4G,1:4G),
 *    nothing handed over;
 *  - generation 4: the same pools handed over by generation 3, with what
 *    a host preserves: 3 GiB of 2 MiB granules and 256 MiB of 4 KiB ones
 *    on node 0, two 1 GiB granules and one 1 GiB HVO granule on node 1;
 *    it gives its pools back to the buddy allocator, so that
 *  - generation 5 carves the 8 GiB again, with persist_alloc_hvo=0:4G,1:4G:
 *    every block pre-HVO'd, its tail struct pages never initialized.
 * Generation 1 is the cold boot that starts the chain and is not timed.
 *
 * A boot is timed from the kernel's first instruction (timestamp 0 of its
 * log) to "Run /init as init process", read from /dev/kmsg. Generation 4
 * also reports when persist_alloc's workers had built the handed-over
 * folios, which they do in the background: a VMM that retrieves earlier
 * gets the rest built by its restore. Figures are KTAP diagnostics
 * "# bench: boot_<kernel> <value> ms_to_init", with the struct pages the
 * boot allocated (nr_memmap_boot_pages) as "memmap_boot_mib"; under QEMU
 * TCG boot times vary by a few hundred ms from one run to the next.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "persist_test.h"

#define POOLS		"persist_alloc=0:4G,1:4G"
#define PREHVO		"persist_alloc_hvo=0:4G,1:4G"
#define OWNER		3
#define RUN_INIT	"Run /init as init process"
#define PREBUILT	"handed-over folios built for their owners"

/* What generation 3 preserves: count, node, order, flags. */
static const struct {
	unsigned long count;
	int nid;
	unsigned int order;
	unsigned long flags;
	unsigned long long bytes;
} sets[] = {
	{ 1536,  0, 9,  0, 1536ull << 21 },
	{ 65536, 0, 0,  0, 65536ull << 12 },
	{ 2,     1, 18, 0, 2ull << 30 },
	{ 1,     1, 18, 2, 1ull << 30 },	/* PERSIST_ALLOC_HVO */
};

#define NR_SETS ((int)ARRAY_SIZE(sets))

/*
 * The log timestamp, in ms, of the @nth record (from 1) that contains
 * @text, or of the last one if @nth is 0; -1 if there is none.
 */
static double kmsg_ms(const char *text, int nth)
{
	char rec[2048];
	double ms = -1;
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK), seen = 0;
	ssize_t len;

	if (fd < 0)
		return -1;
	while ((len = read(fd, rec, sizeof(rec) - 1)) != 0) {
		unsigned long long ts;
		char *body;

		if (len < 0) {
			if (errno == EPIPE)	/* overwritten records: go on */
				continue;
			break;
		}
		rec[len] = '\0';
		body = strchr(rec, ';');
		if (!body || !strstr(body, text) ||
		    sscanf(rec, "%*u,%*u,%llu", &ts) != 1)
			continue;
		ms = ts / 1000.0;
		if (++seen == nth)
			break;
	}
	close(fd);
	return ms;
}

/* Memory of the struct pages the boot allocated, from /proc/vmstat, in MiB. */
static double memmap_boot_mib(void)
{
	return vt_proc_value("/proc/vmstat", "nr_memmap_boot_pages %lld") * 4096.0 / (1 << 20);
}

static void report_boot(const char *kernel)
{
	double ms = kmsg_ms(RUN_INIT, 1);

	if (vt_result(ms > 0, "%s: booted to init in %.0f ms", kernel, ms))
		vt_diag("bench: boot_%s %.3f ms_to_init", kernel, ms);
	vt_diag("bench: boot_%s %.3f memmap_boot_mib", kernel, memmap_boot_mib());
}

static unsigned long long pending(void)
{
	return pt_node_stat(0, "pending_bytes") + pt_node_stat(1, "pending_bytes");
}

static void preserve_sets(void)
{
	unsigned long long want = 0;
	int fd = pt_open(), i;

	for (i = 0; i < NR_SETS; i++) {
		vt_result(!pt_cmd(fd, "fill %lu %d %u %lu", sets[i].count, sets[i].nid,
				  sets[i].order, sets[i].flags),
			  "%lu granules of order %u allocated on node %d", sets[i].count,
			  sets[i].order, sets[i].nid);
		want += sets[i].bytes;
	}
	vt_result(!pt_cmd(fd, "preserve-all %d", OWNER) &&
		  pt_node_stat(0, "preserved_bytes") + pt_node_stat(1, "preserved_bytes") == want,
		  "%llu bytes kept for the next kernel", want);
	/* The file stays open: its preserved folios are handed over. */
}

/* The handed-over pools: wait for the workers, then take everything. */
static void receive(void)
{
	unsigned long long want = 0, built = 0;
	int fd = pt_open(), i, tries;

	for (i = 0; i < NR_SETS; i++)
		want += sets[i].bytes;
	vt_result(pending() == want, "%llu bytes handed over, %llu expected", pending(), want);
	for (tries = 0; tries < 1200; tries++) {
		built = pt_node_stat(0, "pending_built_bytes") +
			pt_node_stat(1, "pending_built_bytes");
		if (built == want && kmsg_ms(PREBUILT, 2) > 0)
			break;
		usleep(50 * 1000);
	}
	if (vt_result(built == want, "workers built %llu of %llu bytes", built, want))
		vt_diag("bench: boot_handover %.3f ms_to_prebuilt", kmsg_ms(PREBUILT, 0));
	vt_result(!pt_cmd(fd, "restore-all %d", OWNER) && !pending(),
		  "everything restored, nothing pending");
	vt_result(!pt_cmd(fd, "free-all"), "everything freed");
}

int main(int argc, char **argv)
{
	int gen = vt_stage(argc, argv, 5);

	switch (gen) {
	case 1:
		vt_result(!pt_node_stat(0, "total_bytes") && !pt_node_stat(1, "total_bytes"),
			  "no pools in the first kernel");
		vt_hold();
	case 2:
		report_boot("no_pools");
		vt_result(!pt_node_stat(0, "total_bytes"), "no pools");
		vt_next_args(POOLS);
		vt_hold();
	case 3:
		report_boot("pools_8g");
		vt_result(pt_node_stat(0, "total_bytes") + pt_node_stat(1, "total_bytes") ==
			  8ull << 30, "8 GiB of pools");
		preserve_sets();
		vt_hold();
	case 4:
		report_boot("pools_8g_handover");
		receive();
		vt_result(!pt_node_write(0, "shrink", "4") && !pt_node_write(1, "shrink", "4"),
			  "the pools given back to the buddy allocator");
		vt_next_args(PREHVO);
		vt_hold();
	default:
		report_boot("pools_8g_prehvo");
		vt_result(pt_node_stat(0, "hvo_free_bytes") + pt_node_stat(1, "hvo_free_bytes") ==
			  8ull << 30, "8 GiB of pools, all of it kept as 1 GiB HVO blocks");
		return vt_finish();
	}
}
