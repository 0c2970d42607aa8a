// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc_basic: the allocator inside one kernel, through its test
 * consumer (/sys/kernel/debug/persist_alloc/test) and sysfs. Boots with
 * persist_alloc=0:1G,1:1G. On both nodes, 4 KiB, 2 MiB and 1 GiB folios
 * with the attribute combinations: placement, alignment, zeroing,
 * direct-map removal (as kernel_page_present() sees it), vmemmap saved by
 * HVO, contents written and read back through a user mapping, and the
 * sysfs accounting; then
 * exhaustion and fallback to the other node, bad input on every surface,
 * and growing and shrinking a pool.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmtest.h"

#define TEST_FILE	"/sys/kernel/debug/persist_alloc/test"
#define SYSFS		"/sys/kernel/mm/persist_alloc"
#define GIB		(1024ull * 1024 * 1024)
#define NO_DIRECT_MAP	1
#define HVO		2
#define ZERO		4

struct slot {
	unsigned int slot, order;
	unsigned long pfn, flags;
	int nid, present_first, present_last;
};

static int cmd(int fd, const char *fmt, ...) __printf(2, 3);
static int cmd(int fd, const char *fmt, ...)
{
	char buf[64];
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return write(fd, buf, len) == len ? 0 : -errno;
}

/* Read the consumer's slot list; returns the number of slots in use. */
static int slots(int fd, struct slot *s, int max)
{
	char buf[8192], *line, *save;
	ssize_t len;
	int n = 0;

	len = pread(fd, buf, sizeof(buf) - 1, 0);
	if (len < 0)
		vt_fatal("read %s: %s", TEST_FILE, strerror(errno));
	buf[len] = '\0';
	for (line = strtok_r(buf, "\n", &save); line && n < max;
	     line = strtok_r(NULL, "\n", &save), n++) {
		if (sscanf(line, "%u %lx %u %d %lu %d %d", &s[n].slot, &s[n].pfn, &s[n].order,
			   &s[n].nid, &s[n].flags, &s[n].present_first,
			   &s[n].present_last) != 7)
			vt_fatal("bad line from %s: '%s'", TEST_FILE, line);
	}
	return n;
}

static unsigned long long sysfs_read(int nid, const char *name)
{
	char path[128], buf[64];
	int fd;
	ssize_t len;

	snprintf(path, sizeof(path), SYSFS "/node%d/%s", nid, name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		vt_fatal("open %s: %s", path, strerror(errno));
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		vt_fatal("read %s", path);
	buf[len] = '\0';
	return strtoull(buf, NULL, 0);
}

static int sysfs_write(int nid, const char *name, const char *val)
{
	char path[128];
	int fd, ret;

	snprintf(path, sizeof(path), SYSFS "/node%d/%s", nid, name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	ret = write(fd, val, strlen(val)) == (ssize_t)strlen(val) ? 0 : -errno;
	close(fd);
	return ret;
}

static const char *granule_file(unsigned int order)
{
	return order == 18 ? "allocated_1g_bytes" : order == 9 ? "allocated_2m_bytes" :
	       "allocated_4k_bytes";
}

/*
 * Check a 1 GiB folio in 2 MiB samples at the start, middle and end, and
 * smaller folios whole: a full 1 GiB pass per case would dominate the run.
 */
static bool fill_and_check(int fd, const struct slot *s, uint64_t seed, bool want_zero)
{
	size_t size = 4096ul << s->order, part = size > (2ul << 20) ? (2ul << 20) : size;
	size_t offs[3] = { 0, size / 2, size - part };
	int n = size > part ? 3 : 1, i;
	long long bad;
	uint8_t *p;

	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)s->slot << 30);
	if (p == MAP_FAILED) {
		vt_diag("mmap slot %u: %s", s->slot, strerror(errno));
		return false;
	}
	for (i = 0; i < n; i++) {
		if (want_zero) {
			size_t j;

			for (j = 0; j < part; j++)
				if (p[offs[i] + j]) {
					vt_diag("slot %u: byte %zu is %#x, want 0", s->slot,
						offs[i] + j, p[offs[i] + j]);
					munmap(p, size);
					return false;
				}
		}
		vt_fill_pattern(p + offs[i], part, seed, offs[i]);
	}
	for (i = 0; i < n; i++) {
		bad = vt_check_pattern(p + offs[i], part, seed, offs[i]);
		if (bad >= 0) {
			vt_diag("slot %u: pattern mismatch at %lld", s->slot,
				(long long)offs[i] + bad);
			munmap(p, size);
			return false;
		}
	}
	munmap(p, size);
	return true;
}

static void one_case(int fd, int nid, unsigned int order, unsigned long flags)
{
	unsigned long long alloc_before = sysfs_read(nid, granule_file(order));
	unsigned long long free_before = sysfs_read(nid, "free_bytes");
	unsigned long long ndm_before = sysfs_read(nid, "no_direct_map_bytes");
	unsigned long long hvo_before = sysfs_read(nid, "vmemmap_saved_bytes");
	unsigned long long hvo_saved = flags & HVO ? (64ull << order) - 4096 : 0;
	unsigned long long size = 4096ull << order;
	bool mapped = !(flags & NO_DIRECT_MAP);
	struct slot s[2];
	int ret, n;

	ret = cmd(fd, "alloc %d %u %lu", nid, order, flags);
	if (!vt_result(!ret, "node %d order %u flags %lu: alloc (ret %d)", nid, order, flags, ret))
		return;
	n = slots(fd, s, 2);
	if (n != 1)
		vt_fatal("expected one slot in use, got %d", n);
	vt_result(s[0].nid == nid && s[0].order == order && !(s[0].pfn & ((1ul << order) - 1)),
		  "node %d order %u flags %lu: placed on node %d, order %u, pfn %#lx aligned",
		  nid, order, flags, s[0].nid, s[0].order, s[0].pfn);
	vt_result(s[0].present_first == mapped && s[0].present_last == mapped,
		  "node %d order %u flags %lu: direct map present %d/%d, expected %d",
		  nid, order, flags, s[0].present_first, s[0].present_last, mapped);
	vt_result(sysfs_read(nid, granule_file(order)) == alloc_before + size &&
		  sysfs_read(nid, "free_bytes") == free_before - size &&
		  sysfs_read(nid, "no_direct_map_bytes") == ndm_before + (mapped ? 0 : size) &&
		  sysfs_read(nid, "vmemmap_saved_bytes") == hvo_before + hvo_saved,
		  "node %d order %u flags %lu: sysfs accounts %llu bytes, %llu vmemmap saved",
		  nid, order, flags, size, hvo_saved);
	vt_result(fill_and_check(fd, &s[0], nid * 1000 + order * 10 + flags,
				 flags & (ZERO | NO_DIRECT_MAP)),
		  "node %d order %u flags %lu: contents %s, pattern written and read back",
		  nid, order, flags, flags & (ZERO | NO_DIRECT_MAP) ? "zeroed" : "unchecked");
	ret = cmd(fd, "free %u", s[0].slot);
	vt_result(!ret && slots(fd, s, 2) == 0 &&
		  sysfs_read(nid, granule_file(order)) == alloc_before &&
		  sysfs_read(nid, "free_bytes") == free_before &&
		  sysfs_read(nid, "no_direct_map_bytes") == ndm_before &&
		  sysfs_read(nid, "vmemmap_saved_bytes") == hvo_before,
		  "node %d order %u flags %lu: free (ret %d), accounting restored",
		  nid, order, flags, ret);
}

/* Tracepoints: alloc, preserve and free of one folio show up in tracefs. */
static void tracepoints(int fd)
{
	char match[64];
	struct slot s[2];
	int ret;

	ret = vt_trace_start("persist_alloc");
	if (!vt_result(!ret, "tracefs: persist_alloc events enabled (ret %d)", ret))
		return;
	if (cmd(fd, "alloc 1 9 1") || slots(fd, s, 2) != 1 || cmd(fd, "preserve 0 77") ||
	    cmd(fd, "unpreserve 0") || cmd(fd, "free 0"))
		vt_fatal("traced alloc, preserve, free failed");
	snprintf(match, sizeof(match), "pfn=%#lx order=9 nid=1", s[0].pfn);
	ret = vt_trace_count("persist_alloc:", match);
	vt_result(ret == 1, "trace: one persist_alloc event '%s' (got %d)", match, ret);
	ret = vt_trace_count("persist_preserve:", "owner=77");
	vt_result(ret == 1, "trace: one persist_preserve event with owner 77 (got %d)", ret);
	ret = vt_trace_count("persist_free:", match);
	vt_result(ret == 1, "trace: one persist_free event '%s' (got %d)", match, ret);
}

static void pool_runs_dry(int fd)
{
	struct slot s[4];
	int ret, n;

	ret = cmd(fd, "alloc 0 18 0");
	vt_result(!ret, "node 0: the whole pool as one 1 GiB folio (ret %d)", ret);
	ret = cmd(fd, "alloc 0 0 0");
	vt_result(ret == -ENOMEM, "node 0 exhausted: 4 KiB alloc fails with ENOMEM (ret %d)", ret);
	vt_result(sysfs_read(0, "free_bytes") == 0, "node 0 exhausted: free_bytes 0");
	ret = cmd(fd, "alloc -1 9 0");
	n = slots(fd, s, 4);
	vt_result(!ret && n == 2 && s[1].nid == 1,
		  "NUMA_NO_NODE falls back to node 1 (ret %d, slots %d, node %d)",
		  ret, n, n == 2 ? s[1].nid : -1);
	vt_result(!cmd(fd, "free 0") && !cmd(fd, "free 1") && slots(fd, s, 4) == 0,
		  "everything freed after the pool ran dry");
}

static void bad_input(int fd)
{
	static const char * const bad_cmds[] = {
		"alloc 0 5 0", "alloc 0 19 0", "alloc 0 0 64", "alloc 7 0 0",
		"alloc -3 0 0", "alloc 0 0 2", "bogus",
	};
	static const int bad_errno[] = {
		EINVAL, EINVAL, EINVAL, EINVAL, EINVAL, EINVAL, EINVAL,
	};
	unsigned long long free0 = sysfs_read(0, "free_bytes");
	unsigned int i;
	struct slot s[2];
	int ret;

	for (i = 0; i < ARRAY_SIZE(bad_cmds); i++) {
		ret = cmd(fd, "%s", bad_cmds[i]);
		vt_result(ret == -bad_errno[i], "'%s' refused: expected %d, got %d",
			  bad_cmds[i], -bad_errno[i], ret);
	}
	ret = cmd(fd, "free 3");
	vt_result(ret == -ENOENT, "'free 3' of an empty slot: expected %d, got %d", -ENOENT, ret);
	vt_result(slots(fd, s, 2) == 0 && sysfs_read(0, "free_bytes") == free0,
		  "bad commands changed nothing");

	ret = sysfs_write(0, "grow", "0");
	vt_result(ret == -EINVAL, "grow 0: expected %d, got %d", -EINVAL, ret);
	ret = sysfs_write(0, "grow", "abc");
	vt_result(ret == -EINVAL, "grow abc: expected %d, got %d", -EINVAL, ret);
	ret = sysfs_write(0, "shrink", "-1");
	vt_result(ret == -EINVAL, "shrink -1: expected %d, got %d", -EINVAL, ret);
	ret = sysfs_write(0, "grow", "100000");
	vt_result(ret == -EINVAL, "grow 100000: expected %d, got %d", -EINVAL, ret);
	vt_result(sysfs_read(0, "total_bytes") == GIB, "bad sysfs writes changed nothing");
}

static void diag_file(const char *path)
{
	char buf[2048];
	ssize_t len;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return;
	buf[len] = '\0';
	vt_diag("%s:\n%s", path, buf);
}

/*
 * Node 1: give the boot block back, grow a block from the buddy allocator
 * (the range just released is a 1 GiB range the buddy allocator can give:
 * the first pageblocks of a node fill with unmovable kernel memory, so on a
 * small VM a grow may find no other), then shrink and grow again.
 */
static void grow_shrink(int fd)
{
	int ret;

	ret = sysfs_write(1, "shrink", "2");
	vt_result(!ret && sysfs_read(1, "total_bytes") == 0,
		  "node 1: shrink 2 gives back the one unused boot block (ret %d, total %llu)",
		  ret, sysfs_read(1, "total_bytes"));
	ret = sysfs_write(1, "shrink", "1");
	vt_result(ret == -ENODEV, "node 1: shrink an empty pool: expected %d, got %d",
		  -ENODEV, ret);
	ret = cmd(fd, "alloc 1 0 0");
	vt_result(ret == -ENOMEM, "node 1 without blocks: alloc fails with ENOMEM (ret %d)", ret);

	ret = sysfs_write(1, "grow", "1");
	if (ret) {
		diag_file("/proc/buddyinfo");
		diag_file("/sys/kernel/debug/kho/out/scratch_phys");
		diag_file("/sys/kernel/debug/kho/out/scratch_len");
	}
	vt_result(!ret && sysfs_read(1, "total_bytes") == GIB && sysfs_read(1, "free_bytes") == GIB,
		  "node 1: grow by one block from the buddy allocator (ret %d, total %llu)",
		  ret, sysfs_read(1, "total_bytes"));
	ret = cmd(fd, "alloc 1 18 4");
	vt_result(!ret, "node 1: zeroed 1 GiB folio from the grown block (ret %d)", ret);
	ret = sysfs_write(1, "shrink", "1");
	vt_result(ret == -EBUSY, "node 1: shrink with no unused block: expected %d, got %d",
		  -EBUSY, ret);
	vt_result(!cmd(fd, "free 0"), "node 1: free the 1 GiB folio");
	ret = sysfs_write(1, "shrink", "1");
	vt_result(!ret && sysfs_read(1, "total_bytes") == 0,
		  "node 1: grown block given back (ret %d)", ret);
	ret = sysfs_write(1, "grow", "1");
	vt_result(!ret && sysfs_read(1, "total_bytes") == GIB,
		  "node 1: grown again (ret %d)", ret);
}

int main(int argc, char **argv)
{
	static const unsigned long flag_sets[] = {
		0, ZERO, NO_DIRECT_MAP, NO_DIRECT_MAP | ZERO, HVO, HVO | NO_DIRECT_MAP | ZERO,
	};
	static const unsigned int orders[] = { 0, 9, 18 };
	unsigned int f, o;
	int fd, nid;

	vt_stage(argc, argv, 1);
	fd = open(TEST_FILE, O_RDWR);
	if (fd < 0)
		vt_fatal("open %s: %s", TEST_FILE, strerror(errno));
	for (nid = 0; nid < 2; nid++)
		vt_result(sysfs_read(nid, "total_bytes") == GIB &&
			  sysfs_read(nid, "free_bytes") == GIB,
			  "node %d: boot pool of 1 GiB, all free", nid);
	for (nid = 0; nid < 2; nid++)
		for (f = 0; f < ARRAY_SIZE(flag_sets); f++)
			for (o = 0; o < ARRAY_SIZE(orders); o++)
				if (orders[o] || !(flag_sets[f] & HVO))
					one_case(fd, nid, orders[o], flag_sets[f]);
	tracepoints(fd);
	pool_runs_dry(fd);
	bad_input(fd);
	grow_shrink(fd);
	close(fd);
	return vt_finish();
}
