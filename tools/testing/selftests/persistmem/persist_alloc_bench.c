// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc_bench: first figures of the persistent allocator, side by
 * side with what it replaces, in one VM run (make bench).
 *
 * Generation 1 (persist_alloc=0:3G,1:4G persist_alloc_hvo=1:1G):
 *  - a 1 GiB folio from the pool (plain; HVO built from single pages, HVO
 *    again once freed and kept, and the first HVO folio of node 1's block
 *    that persist_alloc_hvo=1:1G pre-HVO'd at boot), against 1 GiB from the buddy
 *    allocator (alloc_contig_pages(), through the pool's grow knob) and a
 *    runtime 1 GiB hugetlb page; nothing is zeroed on either side (no
 *    PERSIST_ALLOC_ZERO, no __GFP_ZERO, init_on_alloc off), each timed as
 *    one write() of its command or knob;
 *  - struct page bytes per GiB with and without HVO (1 GiB and 2 MiB);
 *  - preserve 1 GiB as one 1 GiB folio and as 512 2 MiB folios (each
 *    with and without HVO), and (scaled from 256 MiB) as 4 KiB folios,
 *    and a 1 GiB memfd with memfd_luo, whose handover metadata is what
 *    its preserve wrote, as KHO counts it (debugfs kho/out/);
 *  - leave one of node 1's two free blocks kept (a 1 GiB HVO folio built
 *    and freed), the other ordinary.
 * Generation 2: the first 1 GiB HVO folio of the kept block, which stays
 * kept across the kexec, against one built in the ordinary block (both
 * zeroed on the way: the memory holds the first kernel's data); restore
 * each set, retrieve the memfd, and the size of the handover as the new
 * kernel received it: per set, the bytes of its entries in the extent
 * array received (runs of granules).
 *
 * Per-set times are the time spent inside the persist_alloc calls, as the
 * test consumer measures it; memfd_luo times are its ioctls'. Each figure
 * is a KTAP diagnostic "# bench: <key> <value> <unit>"; the
 * runner (scripts/vmtest.py --bench) turns them into a table. Times are
 * measured under QEMU TCG: compare ratios, not absolute values.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "persist_test.h"

#define HUGETLB_1G	"/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages"
#define API_NS		"/sys/kernel/debug/persist_alloc/test_api_ns"
#define KHO_IN_BLOB	"/sys/kernel/debug/kho/in/sub_fdts/persist-alloc"
#define SESSION		"bench"
#define MEMFD_TOKEN	1
#define OWNER_1G	1
#define OWNER_2M	2
#define OWNER_4K	3
#define OWNER_1G_HVO	4
#define OWNER_2M_HVO	5
#define SET_4K		(256ull << 20)
#define STRUCT_PAGE	64ull

static void report_figure(const char *key, double value, const char *unit)
{
	vt_diag("bench: %s %.3f %s", key, value, unit);
}

/* Microseconds the last test-consumer command spent in persist_alloc calls. */
static double api_us(void)
{
	char buf[32] = "";
	int fd = open(API_NS, O_RDONLY);

	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) < 0)
		vt_fatal("read %s: %s", API_NS, strerror(errno));
	close(fd);
	return strtoull(buf, NULL, 0) / 1000.0;
}

/* Microseconds that @cmd takes, or -1 (reported) if it fails. */
static double timed_cmd(int fd, const char *what, const char *cmd)
{
	uint64_t t0 = vt_now_ns();
	int ret = pt_cmd(fd, "%s", cmd);
	uint64_t t1 = vt_now_ns();

	if (!vt_result(!ret, "%s: '%s' (ret %d)", what, cmd, ret))
		return -1;
	return (t1 - t0) / 1000.0;
}

static double timed_write(const char *path, const char *val)
{
	uint64_t t0 = vt_now_ns(), t1;
	int fd = open(path, O_WRONLY);
	ssize_t len = strlen(val);
	bool ok;

	ok = fd >= 0 && write(fd, val, len) == len;
	t1 = vt_now_ns();
	if (fd >= 0)
		close(fd);
	return ok ? (t1 - t0) / 1000.0 : -1;
}

static void one_gib_sources(int fd)
{
	double us, api, best = -1, best_api = -1;
	char buf[16] = "";
	int hfd, i;

	report_figure("alloc_1g_pool", timed_cmd(fd, "1 GiB from the pool", "alloc 0 18 0"), "us");
	report_figure("free_1g_pool", timed_cmd(fd, "1 GiB back to the pool", "free 0"), "us");
	/*
	 * HVO: the first folio of a block is built and optimized; freed, it
	 * is kept as it is, and the next one is that folio again.
	 */
	report_figure("alloc_1g_pool_hvo_built",
		      timed_cmd(fd, "1 GiB HVO folio, built", "alloc 0 18 2"), "us");
	report_figure("free_1g_pool_hvo", timed_cmd(fd, "1 GiB HVO folio freed, kept", "free 0"),
		      "us");
	vt_result(pt_node_stat(0, "hvo_free_bytes") == PT_GIB, "node 0 keeps 1 GiB HVO (%llu)",
		  pt_node_stat(0, "hvo_free_bytes"));
	/* Best of three: the first run of a path under TCG includes its translation. */
	for (i = 0; i < 3; i++) {
		us = timed_cmd(fd, "1 GiB HVO folio, the kept one", "alloc 0 18 2");
		api = api_us();
		vt_result(!pt_node_stat(0, "hvo_free_bytes"), "the kept 1 GiB HVO folio was taken");
		timed_cmd(fd, "1 GiB HVO folio freed, kept", "free 0");
		if (us >= 0 && (best < 0 || us < best)) {
			best = us;
			best_api = api;
		}
	}
	report_figure("alloc_1g_pool_hvo_kept", best, "us");
	report_figure("alloc_1g_pool_hvo_kept_in_call", best_api, "us");

	/* Node 1's first block started kept (persist_alloc_hvo=1:1G). */
	vt_result(pt_node_stat(1, "hvo_free_bytes") == PT_GIB,
		  "node 1 starts with 1 GiB kept HVO, pre-HVO'd at boot (%llu)",
		  pt_node_stat(1, "hvo_free_bytes"));
	us = timed_cmd(fd, "1 GiB HVO folio, pre-HVO'd at boot", "alloc 1 18 2");
	api = api_us();
	vt_result(!pt_node_stat(1, "hvo_free_bytes"), "the pre-HVO'd block was taken");
	report_figure("alloc_1g_pool_hvo_prehvo", us, "us");
	report_figure("alloc_1g_pool_hvo_prehvo_in_call", api, "us");
	timed_cmd(fd, "1 GiB HVO folio freed, kept", "free 0");

	us = timed_write("/sys/kernel/mm/persist_alloc/node1/grow", "1");
	if (vt_result(us >= 0, "1 GiB from the buddy allocator (alloc_contig_pages)")) {
		report_figure("alloc_1g_contig", us, "us");
		us = timed_write("/sys/kernel/mm/persist_alloc/node1/shrink", "1");
		vt_result(us >= 0, "1 GiB given back to the buddy allocator");
		report_figure("free_1g_contig", us, "us");
	}

	us = timed_write(HUGETLB_1G, "1");
	hfd = open(HUGETLB_1G, O_RDONLY);
	if (hfd >= 0) {
		if (read(hfd, buf, sizeof(buf) - 1) < 0)
			buf[0] = '\0';
		close(hfd);
	}
	if (vt_result(us >= 0 && atoi(buf) == 1, "1 GiB hugetlb page at run time (nr %s)", buf)) {
		report_figure("alloc_1g_hugetlb", us, "us");
		report_figure("free_1g_hugetlb", timed_write(HUGETLB_1G, "0"), "us");
	}
}

static void struct_pages(int fd)
{
	unsigned long long before = pt_node_stat(0, "vmemmap_saved_bytes"), saved;

	if (timed_cmd(fd, "1 GiB HVO folio", "alloc 0 18 2") < 0)
		return;
	saved = pt_node_stat(0, "vmemmap_saved_bytes") - before;
	report_figure("struct_page_per_gib_plain", (PT_GIB / 4096) * STRUCT_PAGE, "bytes");
	report_figure("struct_page_per_gib_hvo_1g", (PT_GIB / 4096) * STRUCT_PAGE - saved, "bytes");
	vt_result(!pt_cmd(fd, "free-all"), "HVO folio freed");

	before = pt_node_stat(1, "vmemmap_saved_bytes");
	if (timed_cmd(fd, "512 2 MiB HVO folios", "fill 512 1 9 2") < 0)
		return;
	saved = pt_node_stat(1, "vmemmap_saved_bytes") - before;
	report_figure("struct_page_per_gib_hvo_2m", (PT_GIB / 4096) * STRUCT_PAGE - saved, "bytes");
	vt_result(!pt_cmd(fd, "free-all"), "HVO folios freed");
}

/* Fill a set into its own test file, preserve it; returns the fd. */
static int preserve_set(const char *name, const char *fill, unsigned int owner, double scale)
{
	char cmd[32];
	int fd = pt_open();

	timed_cmd(fd, name, fill);
	report_figure(name, api_us() * scale, "us_per_gib_alloc");
	snprintf(cmd, sizeof(cmd), "preserve-all %u", owner);
	timed_cmd(fd, name, cmd);
	report_figure(name, api_us() * scale, "us_per_gib_preserve");
	return fd;
}

static void memfd_preserve(void)
{
	int session = vt_session(SESSION, true), mfd, ret;
	long long written;
	uint64_t t0, t1;
	void *p;

	/* The session's first file pays for LUO's block of file records. */
	mfd = memfd_create("warm-up", 0);
	if (mfd < 0 || ftruncate(mfd, 4096) ||
	    luo_session_preserve_fd(session, mfd, MEMFD_TOKEN + 1))
		vt_fatal("warm-up memfd: %s", strerror(errno));
	close(mfd);
	mfd = memfd_create("bench", 0);
	if (mfd < 0 || ftruncate(mfd, PT_GIB))
		vt_fatal("memfd: %s", strerror(errno));
	p = mmap(NULL, PT_GIB, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (p == MAP_FAILED)
		vt_fatal("mmap memfd: %s", strerror(errno));
	memset(p, 0x5a, PT_GIB);
	munmap(p, PT_GIB);
	written = vt_kho_written();
	t0 = vt_now_ns();
	ret = luo_session_preserve_fd(session, mfd, MEMFD_TOKEN);
	t1 = vt_now_ns();
	vt_result(!ret, "memfd_luo: 1 GiB memfd preserved (ret %d)", ret);
	report_figure("memfd_luo", (t1 - t0) / 1000.0, "us_per_gib_preserve");
	/* What the preserve wrote: its folio array, its chunks, KHO's tree. */
	written = written < 0 || vt_kho_written() < 0 ? -1 : vt_kho_written() - written;
	if (vt_result(written > 0, "memfd_luo: its preserve wrote %lld bytes of KHO memory",
		      written))
		report_figure("memfd_luo", written, "metadata_bytes_per_gib");
	close(mfd);
}

static void generation1(void)
{
	int fd = pt_open();

	one_gib_sources(fd);
	struct_pages(fd);
	close(fd);
	/* The files stay open: their preserved folios are handed over. */
	preserve_set("persist_1g", "fill 1 0 18 0", OWNER_1G, 1);
	preserve_set("persist_2m", "fill 512 1 9 0", OWNER_2M, 1);
	preserve_set("persist_4k", "fill 65536 0 0 0", OWNER_4K, (double)PT_GIB / SET_4K);
	preserve_set("persist_1g_hvo", "fill 1 1 18 2", OWNER_1G_HVO, 1);
	preserve_set("persist_2m_hvo", "fill 512 0 9 2", OWNER_2M_HVO, 1);
	memfd_preserve();
	fd = pt_open();
	vt_result(!pt_cmd(fd, "alloc 1 18 2") && !pt_cmd(fd, "free-all") &&
		  pt_node_stat(1, "hvo_free_bytes") == PT_GIB &&
		  pt_node_stat(1, "free_bytes") == 2 * PT_GIB,
		  "node 1 keeps a block for the kexec, and has another free");
	close(fd);
}

static void restore_set(const char *name, unsigned int owner, double scale,
			unsigned long long set_bytes, unsigned long nr)
{
	unsigned long granules;
	char cmd[32];
	int fd = pt_open();
	long bytes;

	snprintf(cmd, sizeof(cmd), "restore-all %u", owner);
	timed_cmd(fd, name, cmd);
	report_figure(name, api_us() * scale, "us_per_gib_restore");
	bytes = pt_received_bytes(owner, &granules);
	vt_result(bytes > 0 && granules == nr, "%s: %lu of %lu granules in %ld bytes received",
		  name, granules, nr, bytes);
	report_figure(name, bytes * (double)PT_GIB / set_bytes, "metadata_bytes_per_gib");
	vt_result(!pt_cmd(fd, "free-all"), "%s: restored set freed", name);
	close(fd);
}

/* Bytes in a file that does not know its size (debugfs blobs). */
static long file_bytes(const char *path)
{
	char buf[4096];
	long total = 0;
	ssize_t len;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -1;
	while ((len = read(fd, buf, sizeof(buf))) > 0)
		total += len;
	close(fd);
	return total;
}

/* Each timed, then what persist_alloc_folio() took of it. */
static void handed_over_hvo(void)
{
	int fd = pt_open();

	vt_result(pt_node_stat(1, "hvo_free_bytes") == PT_GIB,
		  "node 1's kept block is kept after the kexec");
	report_figure("alloc_1g_pool_hvo_handed_kept",
		      timed_cmd(fd, "1 GiB HVO folio, kept across the kexec", "alloc 1 18 2"),
		      "us");
	report_figure("alloc_1g_pool_hvo_handed_kept_in_call", api_us(), "us");
	report_figure("alloc_1g_pool_hvo_handed_built",
		      timed_cmd(fd, "1 GiB HVO folio, built in a handed-over block",
				"alloc 1 18 2"), "us");
	report_figure("alloc_1g_pool_hvo_handed_built_in_call", api_us(), "us");
	vt_result(!pt_cmd(fd, "free-all"), "both freed");
	close(fd);
}

static void generation2(void)
{
	uint64_t t0, t1;
	int session, mfd;
	long blob;

	handed_over_hvo();
	restore_set("persist_1g", OWNER_1G, 1, PT_GIB, 1);
	restore_set("persist_2m", OWNER_2M, 1, PT_GIB, 512);
	restore_set("persist_4k", OWNER_4K, (double)PT_GIB / SET_4K, SET_4K, SET_4K / 4096);
	restore_set("persist_1g_hvo", OWNER_1G_HVO, 1, PT_GIB, 1);
	restore_set("persist_2m_hvo", OWNER_2M_HVO, 1, PT_GIB, 512);
	blob = file_bytes(KHO_IN_BLOB);
	if (vt_result(blob > 0, "handover blob received (%ld bytes)", blob))
		report_figure("persist_handover_blob", blob, "bytes");

	session = vt_session(SESSION, false);
	t0 = vt_now_ns();
	mfd = luo_session_retrieve_fd(session, MEMFD_TOKEN);
	t1 = vt_now_ns();
	vt_result(mfd >= 0, "memfd_luo: 1 GiB memfd retrieved (ret %d)", mfd);
	report_figure("memfd_luo", (t1 - t0) / 1000.0, "us_per_gib_restore");
	close(mfd);
	mfd = luo_session_retrieve_fd(session, MEMFD_TOKEN + 1);
	if (vt_result(mfd >= 0, "warm-up memfd retrieved (ret %d)", mfd))
		close(mfd);
	vt_result(!luo_session_finish(session), "memfd_luo: session finished");
}

int main(int argc, char **argv)
{
	if (vt_stage(argc, argv, 2) == 1) {
		generation1();
		vt_hold();
	}
	generation2();
	return vt_finish();
}
