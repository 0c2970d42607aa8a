// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc_hwpoison: a memory failure in a pool is handled without
 * harming the host, its owner is told, and the failed page never comes
 * back: not after free, not after kexec.
 *
 * Generation 1 (persist_alloc=0:1G,1:1G) allocates a 1 GiB HVO folio on
 * node 0 (preserved) and a 2 MiB folio without HVO on node 1, fills both,
 * and injects memory failures (debugfs hwpoison/corrupt-pfn) into a tail
 * page of the HVO folio whose struct page lies in the shared read-only
 * vmemmap, into a page of the 2 MiB folio, and into a free page of node
 * 1's pool. The host must not warn or oops; touching a failed page through
 * the consumer's mapping raises SIGBUS while its neighbours keep their
 * data; a second failure of a page is reported as such; the 2 MiB folio
 * frees, and node 1's pool, taken whole, never hands a failed page out.
 * Generation 2 finds the failed pages handed over: the free ones
 * quarantined, the one in the preserved folio marking it when it is
 * restored (SIGBUS again on that page only); freeing that folio leaves its
 * failed page quarantined.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "persist_test.h"

#define CORRUPT_PFN	"/sys/kernel/debug/hwpoison/corrupt-pfn"
#define UNPOISON_PFN	"/sys/kernel/debug/hwpoison/unpoison-pfn"
#define OWNER		77
#define SEED_1G		0x1111
#define SEED_2M		0x2222
#define TAIL_1G		1000	/* struct page far past the writable head page */
#define PAGE_2M		5
#define FREE_OFF	(300 * PT_MIB)	/* a free page of node 1's block */
#define ADOPTED_MSG	\
	"persist_alloc: adopted 2 of 2 handed-over blocks and 4 of 4 extents"

static int write_pfn(const char *file, unsigned long long phys)
{
	char val[32];

	snprintf(val, sizeof(val), "%#llx", phys >> 12);
	return vt_write_file(file, val);
}

static int inject(unsigned long long phys)
{
	return write_pfn(CORRUPT_PFN, phys);
}

static long long hw_corrupted_kb(void)
{
	return vt_proc_value("/proc/meminfo", "HardwareCorrupted: %lld kB");
}

/*
 * In a child: read one word of page @first of @slot, then of page @page;
 * its fate says what happened. Reading the page before a failed one first
 * makes its fault map the pages after it, the failed one excepted.
 */
static int touch(int fd, unsigned int slot, size_t size, size_t first, size_t page,
		 uint64_t *word)
{
	int status, pipefd[2];
	pid_t pid;

	if (pipe(pipefd))
		return -errno;
	pid = fork();
	if (!pid) {
		const uint64_t *p;
		uint64_t v;

		p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, (off_t)slot << 30);
		if (p == MAP_FAILED)
			_exit(2);
		/* Loads the compiler must not drop: the fault is the test. */
		v = __atomic_load_n(&p[first * 512], __ATOMIC_RELAXED);
		v = __atomic_load_n(&p[page * 512], __ATOMIC_RELAXED);
		if (write(pipefd[1], &v, sizeof(v)) != sizeof(v))
			_exit(3);
		_exit(0);
	}
	close(pipefd[1]);
	if (pid < 0 || waitpid(pid, &status, 0) != pid) {
		close(pipefd[0]);
		return -ECHILD;
	}
	if (WIFSIGNALED(status)) {
		close(pipefd[0]);
		return WTERMSIG(status) == SIGBUS ? -EHWPOISON : -EINTR;
	}
	if (read(pipefd[0], word, sizeof(*word)) != sizeof(*word))
		*word = 0;
	close(pipefd[0]);
	return WEXITSTATUS(status) ? -EIO : 0;
}

/* The word at the start of page @page of a folio filled with @seed. */
static uint64_t want_word(uint64_t seed, size_t page)
{
	uint64_t buf;

	vt_fill_pattern(&buf, sizeof(buf), seed, page * 4096);
	return buf;
}

static void check_page(int fd, unsigned int slot, size_t size, size_t page, uint64_t seed,
		       bool failed, const char *what)
{
	uint64_t word = 0;
	int ret = touch(fd, slot, size, failed ? page - 1 : page, page, &word);

	if (failed)
		vt_result(ret == -EHWPOISON, "%s: touching the failed page raises SIGBUS (%d)",
			  what, ret);
	else
		vt_result(!ret && word == want_word(seed, page),
			  "%s: its neighbour keeps its data (%d, %#llx)", what, ret,
			  (unsigned long long)word);
}

static void generation1(int fd)
{
	unsigned long long p1g, p2m, block1, bad1g, bad2m, badfree, free1;
	char args[256];
	int ret;

	if (access(CORRUPT_PFN, W_OK))
		vt_fatal("%s: %s (CONFIG_HWPOISON_INJECT?)", CORRUPT_PFN, strerror(errno));
	ret = pt_cmd(fd, "alloc 0 18 %d", PT_HVO);
	if (ret)
		vt_fatal("gen 1: 1 GiB HVO folio on node 0: %d", ret);
	ret = pt_cmd(fd, "alloc 1 9 0");
	if (ret)
		vt_fatal("gen 1: 2 MiB folio on node 1: %d", ret);
	p1g = pt_slot_phys(fd, 0);
	p2m = pt_slot_phys(fd, 1);
	block1 = p2m & ~(PT_GIB - 1);
	vt_result(pt_pattern(fd, 0, 18, SEED_1G, PT_FILL), "gen 1: 1 GiB HVO folio filled");
	vt_result(pt_pattern(fd, 1, 9, SEED_2M, PT_FILL), "gen 1: 2 MiB folio filled");
	vt_result(!pt_cmd(fd, "preserve 0 %d", OWNER), "gen 1: 1 GiB folio preserved");

	bad1g = p1g + TAIL_1G * 4096ull;
	bad2m = p2m + PAGE_2M * 4096ull;
	badfree = block1 + FREE_OFF;
	vt_result(!inject(bad1g), "gen 1: memory failure injected into the HVO folio's page %d",
		  TAIL_1G);
	vt_result(!inject(bad2m), "gen 1: memory failure injected into the 2 MiB folio's page %d",
		  PAGE_2M);
	vt_result(!inject(badfree), "gen 1: memory failure injected into a free page of node 1");
	ret = inject(bad2m);
	vt_result(ret == -EHWPOISON, "gen 1: a second failure of a page is refused (%d)", ret);
	ret = write_pfn(UNPOISON_PFN, bad2m);
	vt_result(ret == -EOPNOTSUPP, "gen 1: a failed pool page cannot be unpoisoned (%d)", ret);
	vt_result(vt_dmesg_contains("(node 0): allocated, its owner is told"),
		  "gen 1: the log says the HVO folio's owner is told");
	vt_result(vt_dmesg_contains("(node 1): free, taken out of its pool"),
		  "gen 1: the log says the free page is taken out of its pool");
	vt_result(hw_corrupted_kb() == 12, "gen 1: HardwareCorrupted %lld kB, want 12",
		  hw_corrupted_kb());

	check_page(fd, 0, PT_GIB, TAIL_1G, SEED_1G, true, "gen 1: HVO folio");
	check_page(fd, 0, PT_GIB, TAIL_1G + 1, SEED_1G, false, "gen 1: HVO folio");
	check_page(fd, 1, 2 * PT_MIB, PAGE_2M, SEED_2M, true, "gen 1: 2 MiB folio");
	check_page(fd, 1, 2 * PT_MIB, PAGE_2M - 1, SEED_2M, false, "gen 1: 2 MiB folio");

	ret = pt_cmd(fd, "free 1");
	vt_result(!ret, "gen 1: the 2 MiB folio with a failed page frees (%d)", ret);
	vt_result(pt_is_quarantined(bad2m) && pt_is_quarantined(badfree),
		  "gen 1: both failed pages of node 1 quarantined");
	free1 = pt_node_stat(1, "free_bytes");
	vt_result(free1 == PT_GIB - 2 * 4096,
		  "gen 1: node 1 has %llu bytes free, want 1 GiB - 8 KiB", free1);
	/* Taken whole: every granule but the failed pages, then nothing. */
	ret = pt_cmd(fd, "fill %llu 1 0 0", free1 / 4096);
	vt_result(!ret, "gen 1: node 1's pool taken whole in 4 KiB folios (%d)", ret);
	ret = pt_cmd(fd, "alloc 1 0 0");
	vt_result(ret == -ENOMEM, "gen 1: and no page left for another (%d)", ret);
	ret = pt_cmd(fd, "free-all");
	vt_result(!ret, "gen 1: all freed but the preserved folio (%d)", ret);

	snprintf(args, sizeof(args), "vmtest.hwp=%#llx,%#llx,%#llx", p1g, bad2m, badfree);
	vt_next_args(args);
}

static void generation2(int fd)
{
	unsigned long long p1g, bad2m, badfree;
	char buf[128];
	int ret;

	if (!vt_cmdline_value("vmtest.hwp", buf, sizeof(buf)) ||
	    sscanf(buf, "%llx,%llx,%llx", &p1g, &bad2m, &badfree) != 3)
		vt_fatal("gen 2: generation 1 passed no vmtest.hwp=");
	vt_result(vt_dmesg_contains(ADOPTED_MSG), "gen 2: the log says '%s'", ADOPTED_MSG);
	vt_result(hw_corrupted_kb() == 12, "gen 2: HardwareCorrupted %lld kB, want 12",
		  hw_corrupted_kb());
	vt_result(pt_is_quarantined(bad2m) && pt_is_quarantined(badfree),
		  "gen 2: the failed free pages are quarantined again");
	vt_result(pt_node_stat(1, "free_bytes") == PT_GIB - 2 * 4096,
		  "gen 2: node 1 has %llu bytes free, want 1 GiB - 8 KiB",
		  pt_node_stat(1, "free_bytes"));

	ret = pt_cmd(fd, "restore %llx %d", p1g, OWNER);
	if (!vt_result(!ret, "gen 2: the 1 GiB folio restored (%d)", ret))
		return;
	check_page(fd, 0, PT_GIB, TAIL_1G, SEED_1G, true, "gen 2: restored folio");
	check_page(fd, 0, PT_GIB, TAIL_1G - 1, SEED_1G, false, "gen 2: restored folio");
	ret = pt_cmd(fd, "free 0");
	vt_result(!ret, "gen 2: the restored folio with a failed page frees (%d)", ret);
	vt_result(pt_is_quarantined(p1g + TAIL_1G * 4096ull),
		  "gen 2: its failed page is quarantined");
	vt_result(pt_node_stat(0, "free_bytes") == PT_GIB - 4096,
		  "gen 2: node 0 has %llu bytes free, want 1 GiB - 4 KiB",
		  pt_node_stat(0, "free_bytes"));
	ret = pt_cmd(fd, "alloc 0 18 0");
	vt_result(ret == -ENOMEM, "gen 2: no 1 GiB folio over the failed page (%d)", ret);
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
