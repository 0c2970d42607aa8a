// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc_basic: the allocator inside one kernel, through its test
 * consumer (/sys/kernel/debug/persist_alloc/test) and sysfs. Boots with
 * persist_alloc=0:1G,1:1G. On both nodes, 4 KiB, 2 MiB and 1 GiB folios
 * with the attribute combinations: placement, alignment, zeroing,
 * direct-map removal (as kernel_page_present() sees it), vmemmap saved by
 * PT_HVO, contents written and read back through a user mapping (of 1 GiB
 * folios, 64 bytes of every page, which TCG does in a fraction of the time
 * of the whole; zeroing is checked in full), and the sysfs accounting;
 * then exhaustion and fallback to the other node, bad input on every
 * surface, and growing and shrinking a pool.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "persist_test.h"

static const char *granule_file(unsigned int order)
{
	return order == 18 ? "allocated_1g_bytes" : order == 9 ? "allocated_2m_bytes" :
	       "allocated_4k_bytes";
}

static void one_case(int fd, int nid, unsigned int order, unsigned long flags)
{
	unsigned long long alloc_before = pt_node_stat(nid, granule_file(order));
	unsigned long long free_before = pt_node_stat(nid, "free_bytes");
	unsigned long long ndm_before = pt_node_stat(nid, "no_direct_map_bytes");
	unsigned long long hvo_before = pt_node_stat(nid, "vmemmap_saved_bytes");
	unsigned long long hvo_saved = flags & PT_HVO ? (64ull << order) - 4096 : 0;
	unsigned long long size = 4096ull << order;
	bool mapped = !(flags & PT_NO_DIRECT_MAP);
	struct pt_slot s[2];
	int ret, n;

	ret = pt_cmd(fd, "alloc %d %u %lu", nid, order, flags);
	if (!vt_result(!ret, "node %d order %u flags %lu: alloc (ret %d)", nid, order, flags, ret))
		return;
	n = pt_slots(fd, s, 2);
	if (n != 1)
		vt_fatal("expected one slot in use, got %d", n);
	vt_result(s[0].nid == nid && s[0].order == order && !(s[0].pfn & ((1ul << order) - 1)),
		  "node %d order %u flags %lu: placed on node %d, order %u, pfn %#lx aligned",
		  nid, order, flags, s[0].nid, s[0].order, s[0].pfn);
	vt_result(s[0].present_first == mapped && s[0].present_last == mapped,
		  "node %d order %u flags %lu: direct map present %d/%d, expected %d",
		  nid, order, flags, s[0].present_first, s[0].present_last, mapped);
	vt_result(pt_node_stat(nid, granule_file(order)) == alloc_before + size &&
		  pt_node_stat(nid, "free_bytes") == free_before - size &&
		  pt_node_stat(nid, "no_direct_map_bytes") == ndm_before + (mapped ? 0 : size) &&
		  pt_node_stat(nid, "vmemmap_saved_bytes") == hvo_before + hvo_saved,
		  "node %d order %u flags %lu: sysfs accounts %llu bytes, %llu vmemmap saved",
		  nid, order, flags, size, hvo_saved);
	vt_result(pt_pattern(fd, s[0].slot, order, nid * 1000 + order * 10 + flags,
			     (flags & (PT_ZERO | PT_NO_DIRECT_MAP) ? PT_CHECK_ZERO : 0) |
			     PT_FILL | PT_CHECK | (order == 18 ? PT_SAMPLE : 0)),
		  "node %d order %u flags %lu: contents %s, pattern written and read back%s",
		  nid, order, flags, flags & (PT_ZERO | PT_NO_DIRECT_MAP) ? "zeroed" : "unchecked",
		  order == 18 ? " (64 bytes of every page)" : "");
	ret = pt_cmd(fd, "free %u", s[0].slot);
	vt_result(!ret && pt_slots(fd, s, 2) == 0 &&
		  pt_node_stat(nid, granule_file(order)) == alloc_before &&
		  pt_node_stat(nid, "free_bytes") == free_before &&
		  pt_node_stat(nid, "no_direct_map_bytes") == ndm_before &&
		  pt_node_stat(nid, "vmemmap_saved_bytes") == hvo_before,
		  "node %d order %u flags %lu: free (ret %d), accounting restored",
		  nid, order, flags, ret);
}

/* Tracepoints: alloc, preserve and free of one folio show up in tracefs. */
static void tracepoints(int fd)
{
	char match[64];
	struct pt_slot s[2];
	int ret;

	ret = vt_trace_start("persist_alloc");
	if (!vt_result(!ret, "tracefs: persist_alloc events enabled (ret %d)", ret))
		return;
	if (pt_cmd(fd, "alloc 1 9 1") || pt_slots(fd, s, 2) != 1 || pt_cmd(fd, "preserve 0 77") ||
	    pt_cmd(fd, "unpreserve 0") || pt_cmd(fd, "free 0"))
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
	struct pt_slot s[4];
	int ret, n;

	ret = pt_cmd(fd, "alloc 0 18 0");
	vt_result(!ret, "node 0: the whole pool as one 1 GiB folio (ret %d)", ret);
	ret = pt_cmd(fd, "alloc 0 0 0");
	vt_result(ret == -ENOMEM, "node 0 exhausted: 4 KiB alloc fails with ENOMEM (ret %d)", ret);
	vt_result(pt_node_stat(0, "free_bytes") == 0, "node 0 exhausted: free_bytes 0");
	ret = pt_cmd(fd, "alloc -1 9 0");
	n = pt_slots(fd, s, 4);
	vt_result(!ret && n == 2 && s[1].nid == 1,
		  "NUMA_NO_NODE falls back to node 1 (ret %d, slots %d, node %d)",
		  ret, n, n == 2 ? s[1].nid : -1);
	vt_result(!pt_cmd(fd, "free 0") && !pt_cmd(fd, "free 1") && pt_slots(fd, s, 4) == 0,
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
	unsigned long long free0 = pt_node_stat(0, "free_bytes");
	unsigned int i;
	struct pt_slot s[2];
	void *p;
	int ret;

	for (i = 0; i < ARRAY_SIZE(bad_cmds); i++) {
		ret = pt_cmd(fd, "%s", bad_cmds[i]);
		vt_result(ret == -bad_errno[i], "'%s' refused: expected %d, got %d",
			  bad_cmds[i], -bad_errno[i], ret);
	}
	ret = pt_cmd(fd, "free 3");
	vt_result(ret == -ENOENT, "'free 3' of an empty slot: expected %d, got %d", -ENOENT, ret);
	vt_result(pt_slots(fd, s, 2) == 0 && pt_node_stat(0, "free_bytes") == free0,
		  "bad commands changed nothing");
	/* Copy on write of a PFN mapping would hit a BUG_ON() at the fault. */
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	vt_result(p == MAP_FAILED && errno == EINVAL, "a private mapping refused: %s",
		  p == MAP_FAILED ? strerror(errno) : "mapped");
	if (p != MAP_FAILED)
		munmap(p, 4096);

	ret = pt_node_write(0, "grow", "0");
	vt_result(ret == -EINVAL, "grow 0: expected %d, got %d", -EINVAL, ret);
	ret = pt_node_write(0, "grow", "abc");
	vt_result(ret == -EINVAL, "grow abc: expected %d, got %d", -EINVAL, ret);
	ret = pt_node_write(0, "shrink", "-1");
	vt_result(ret == -EINVAL, "shrink -1: expected %d, got %d", -EINVAL, ret);
	ret = pt_node_write(0, "grow", "100000");
	vt_result(ret == -EINVAL, "grow 100000: expected %d, got %d", -EINVAL, ret);
	vt_result(pt_node_stat(0, "total_bytes") == PT_GIB, "bad sysfs writes changed nothing");
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

	ret = pt_node_write(1, "shrink", "2");
	vt_result(!ret && pt_node_stat(1, "total_bytes") == 0,
		  "node 1: shrink 2 gives back the one unused boot block (ret %d, total %llu)",
		  ret, pt_node_stat(1, "total_bytes"));
	ret = pt_node_write(1, "shrink", "1");
	vt_result(ret == -ENODEV, "node 1: shrink an empty pool: expected %d, got %d",
		  -ENODEV, ret);
	ret = pt_cmd(fd, "alloc 1 0 0");
	vt_result(ret == -ENOMEM, "node 1 without blocks: alloc fails with ENOMEM (ret %d)", ret);

	ret = pt_node_write(1, "grow", "1");
	if (ret) {
		diag_file("/proc/buddyinfo");
		diag_file("/sys/kernel/debug/kho/out/scratch_phys");
		diag_file("/sys/kernel/debug/kho/out/scratch_len");
	}
	vt_result(!ret && pt_node_stat(1, "total_bytes") == PT_GIB &&
		  pt_node_stat(1, "free_bytes") == PT_GIB,
		  "node 1: grow by one block from the buddy allocator (ret %d, total %llu)",
		  ret, pt_node_stat(1, "total_bytes"));
	ret = pt_cmd(fd, "alloc 1 18 4");
	vt_result(!ret, "node 1: zeroed 1 GiB folio from the grown block (ret %d)", ret);
	ret = pt_node_write(1, "shrink", "1");
	vt_result(ret == -EBUSY, "node 1: shrink with no unused block: expected %d, got %d",
		  -EBUSY, ret);
	vt_result(!pt_cmd(fd, "free 0"), "node 1: free the 1 GiB folio");
	ret = pt_node_write(1, "shrink", "1");
	vt_result(!ret && pt_node_stat(1, "total_bytes") == 0,
		  "node 1: grown block given back (ret %d)", ret);
	ret = pt_node_write(1, "grow", "1");
	vt_result(!ret && pt_node_stat(1, "total_bytes") == PT_GIB,
		  "node 1: grown again (ret %d)", ret);
}

int main(int argc, char **argv)
{
	static const unsigned long flag_sets[] = {
		0, PT_ZERO, PT_NO_DIRECT_MAP, PT_NO_DIRECT_MAP | PT_ZERO, PT_HVO,
		PT_HVO | PT_NO_DIRECT_MAP | PT_ZERO,
	};
	static const unsigned int orders[] = { 0, 9, 18 };
	unsigned int f, o;
	int fd, nid;

	vt_stage(argc, argv, 1);
	fd = pt_open();
	for (nid = 0; nid < 2; nid++)
		vt_result(pt_node_stat(nid, "total_bytes") == PT_GIB &&
			  pt_node_stat(nid, "free_bytes") == PT_GIB,
			  "node %d: boot pool of 1 GiB, all free", nid);
	for (nid = 0; nid < 2; nid++)
		for (f = 0; f < ARRAY_SIZE(flag_sets); f++)
			for (o = 0; o < ARRAY_SIZE(orders); o++)
				if (orders[o] || !(flag_sets[f] & PT_HVO))
					one_case(fd, nid, orders[o], flag_sets[f]);
	tracepoints(fd);
	pool_runs_dry(fd);
	bad_input(fd);
	grow_shrink(fd);
	close(fd);
	return vt_finish();
}
