// SPDX-License-Identifier: GPL-2.0
/*
 * persist_alloc_kexec: pools and preserved folios across two kexecs.
 *
 * Generation 1 allocates 1 GiB, 2 MiB and 4 KiB folios with each
 * attribute combination on both nodes (persist_alloc=0:2G,1:2G), fills
 * them with a pattern seeded by their owner key and preserves most of
 * them. Generation 2 finds the pools handed over, every preserved folio
 * pending under its owner with its order, node and attributes (direct map
 * still absent where it was), and nothing else; restores them (or
 * releases one), checks every pattern, writes new patterns into some and
 * preserves those again under new owners. Generation 3 checks that second
 * handover the same way and frees everything back to the pools. The
 * second kernel boots with a persist_alloc= that disagrees with the
 * handed-over pools, which win.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "persist_test.h"

#define SYSFS		"/sys/kernel/mm/persist_alloc"
#define GEN1_OWNER	1000
#define GEN2_OWNER	2000

struct tcase {
	int nid;
	unsigned int order;
	unsigned long flags;
	bool preserve;	/* generation 1 preserves it */
	bool again;	/* generation 2 preserves it again (with a new pattern) */
};

/*
 * Per node: one 1 GiB folio, a 2 MiB folio with every attribute set and a
 * 4 KiB folio with every set but HVO. Some are not preserved (they must
 * come back free), one is released in generation 2, and some are
 * preserved again for generation 3.
 */
#define A(ndm, hvo, zero)	((ndm) * PT_NO_DIRECT_MAP | (hvo) * PT_HVO | (zero) * PT_ZERO)
static const struct tcase cases[] = {
	{ 0, 18, A(1, 1, 0), true, true },
	{ 0, 9, A(0, 0, 0), true, false },
	{ 0, 9, A(1, 0, 0), true, true },
	{ 0, 9, A(0, 1, 0), true, false },
	{ 0, 9, A(0, 0, 1), false, false },
	{ 0, 9, A(1, 1, 0), true, true },
	{ 0, 9, A(1, 0, 1), true, false },
	{ 0, 9, A(0, 1, 1), true, true },
	{ 0, 9, A(1, 1, 1), true, false },
	{ 0, 0, A(0, 0, 0), true, true },
	{ 0, 0, A(1, 0, 0), true, false },
	{ 0, 0, A(0, 0, 1), false, false },
	{ 0, 0, A(1, 0, 1), true, true },
	{ 1, 18, A(0, 0, 1), true, false },
	{ 1, 9, A(0, 0, 0), false, false },
	{ 1, 9, A(1, 0, 0), true, false },
	{ 1, 9, A(0, 1, 0), true, true },
	{ 1, 9, A(0, 0, 1), true, false },
	{ 1, 9, A(1, 1, 0), true, true },
	{ 1, 9, A(1, 0, 1), false, false },
	{ 1, 9, A(0, 1, 1), true, false },
	{ 1, 9, A(1, 1, 1), true, true },
	{ 1, 0, A(0, 0, 0), true, false },
	{ 1, 0, A(1, 0, 0), true, true },
	{ 1, 0, A(0, 0, 1), true, false },	/* released in generation 2 */
	{ 1, 0, A(1, 0, 1), true, false },
};

#define NR_CASES	((int)ARRAY_SIZE(cases))
#define RELEASED	24
#define HVO_2M		3	/* its release fails on purpose in generation 2 */
#define FAIL_ATTR	"/sys/kernel/debug/persist_alloc/fail_persist_alloc"
#define PREHVO_MSG	\
	"persist_alloc: node 0: 1 handed-over 1 GiB HVO extents get their vmemmap optimized at boot"

struct alloc_line {
	unsigned long long phys, owner;
	unsigned int order;
	int nid;
	char attrs[64], state[16];
};

static int read_all(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	ssize_t len, total = 0;

	if (fd < 0)
		vt_fatal("open %s: %s", path, strerror(errno));
	while ((len = read(fd, buf + total, size - 1 - total)) > 0)
		total += len;
	close(fd);
	buf[total] = '\0';
	return total;
}

static int allocations(struct alloc_line *a, int max)
{
	char buf[16384], *line, *save;
	int n = 0;

	read_all(PT_ALLOCATIONS, buf, sizeof(buf));
	for (line = strtok_r(buf, "\n", &save); line && n < max;
	     line = strtok_r(NULL, "\n", &save), n++) {
		if (sscanf(line, "%llx %u %d %63s %llu %15s", &a[n].phys, &a[n].order, &a[n].nid,
			   a[n].attrs, &a[n].owner, a[n].state) != 6)
			vt_fatal("bad line from %s: '%s'", PT_ALLOCATIONS, line);
	}
	return n;
}

static unsigned long long case_size(int i)
{
	return 4096ull << cases[i].order;
}

/* vmemmap_saved_bytes of both nodes must match the PT_HVO cases @held. */
static void check_hvo(int gen, const int *slot_of)
{
	unsigned long long want[2] = { 0, 0 };
	int i;

	for (i = 0; i < NR_CASES; i++)
		if ((cases[i].flags & PT_HVO) && (!slot_of || slot_of[i] >= 0))
			want[cases[i].nid] += (64ull << cases[i].order) - 4096;
	for (i = 0; i < 2; i++)
		vt_result(pt_node_stat(i, "vmemmap_saved_bytes") == want[i],
			  "gen %d: node %d vmemmap_saved_bytes %llu, expected %llu", gen, i,
			  pt_node_stat(i, "vmemmap_saved_bytes"), want[i]);
}

static int find_slot(struct pt_slot *s, int n, unsigned long pfn)
{
	int i;

	for (i = 0; i < n; i++)
		if (s[i].pfn == pfn)
			return i;
	return -1;
}

static void generation1(int fd)
{
	unsigned long long want[2] = { 0, 0 };
	struct pt_slot s[PT_MAX_SLOTS];
	int i, n, ret;

	for (i = 0; i < NR_CASES; i++) {
		ret = pt_cmd(fd, "alloc %d %u %lu", cases[i].nid, cases[i].order, cases[i].flags);
		if (ret)
			vt_fatal("case %d: alloc node %d order %u flags %lu: %d", i, cases[i].nid,
				 cases[i].order, cases[i].flags, ret);
		vt_result(pt_pattern(fd, i, cases[i].order, GEN1_OWNER + i, PT_FILL),
			  "gen 1: case %d (node %d order %u flags %lu) filled", i, cases[i].nid,
			  cases[i].order, cases[i].flags);
		if (!cases[i].preserve)
			continue;
		ret = pt_cmd(fd, "preserve %d %d", i, GEN1_OWNER + i);
		vt_result(!ret, "gen 1: case %d preserved as owner %d (ret %d)", i,
			  GEN1_OWNER + i, ret);
		want[cases[i].nid] += case_size(i);
	}
	n = pt_slots(fd, s, PT_MAX_SLOTS);
	vt_result(n == NR_CASES, "gen 1: %d folios held, expected %d", n, NR_CASES);
	check_hvo(1, NULL);

	ret = pt_cmd(fd, "preserve 0 5");
	vt_result(ret == -EBUSY, "gen 1: preserving twice: expected %d, got %d", -EBUSY, ret);
	ret = pt_cmd(fd, "free 0");
	vt_result(ret == -EBUSY, "gen 1: freeing a preserved folio: expected %d, got %d",
		  -EBUSY, ret);
	ret = pt_cmd(fd, "unpreserve 4");
	vt_result(ret == -EINVAL, "gen 1: unpreserving what is not preserved: expected %d, got %d",
		  -EINVAL, ret);
	vt_result(!pt_cmd(fd, "unpreserve 2") && !pt_cmd(fd, "preserve 2 1002"),
		  "gen 1: unpreserve and preserve again");
	for (i = 0; i < 2; i++)
		vt_result(pt_node_stat(i, "preserved_bytes") == want[i],
			  "gen 1: node %d preserved_bytes %llu, expected %llu", i,
			  pt_node_stat(i, "preserved_bytes"), want[i]);
}

/*
 * Every pending folio was built at boot, by one worker per node that
 * logged it: restores only hand them out.
 */
static void check_prebuilt(int gen, const unsigned long long *want)
{
	unsigned long long built[2];
	int i, tries;

	for (tries = 0; tries < 300; tries++) {
		for (i = 0; i < 2; i++)
			built[i] = pt_node_stat(i, "pending_built_bytes");
		if (built[0] == want[0] && built[1] == want[1])
			break;
		usleep(100 * 1000);
	}
	for (i = 0; i < 2; i++)
		vt_result(built[i] == want[i],
			  "gen %d: node %d pending_built_bytes %llu, expected %llu", gen, i,
			  built[i], want[i]);
	vt_result(vt_dmesg_count("handed-over folios built for their owners in") == 2 &&
		  vt_dmesg_count(", 0 left to their restore") == 2,
		  "gen %d: both nodes' workers logged their builds, none failed", gen);
}

/* Check the pending extents of generation @gen against the cases. */
static void check_pending(int gen, unsigned int owner_base, bool (*kept)(int))
{
	struct alloc_line a[PT_MAX_SLOTS];
	unsigned long long want[2] = { 0, 0 };
	int n = allocations(a, PT_MAX_SLOTS), i, j, found = 0;

	for (i = 0; i < NR_CASES; i++) {
		if (!kept(i))
			continue;
		want[cases[i].nid] += case_size(i);
		for (j = 0; j < n; j++)
			if (a[j].owner == owner_base + i)
				break;
		if (!vt_result(j < n, "gen %d: owner %u handed over", gen, owner_base + i))
			continue;
		found++;
		vt_result(!strcmp(a[j].state, "pending") && a[j].order == cases[i].order &&
			  a[j].nid == cases[i].nid &&
			  !!strstr(a[j].attrs, "no_direct_map") ==
			  !!(cases[i].flags & PT_NO_DIRECT_MAP) &&
			  !!strstr(a[j].attrs, "hvo") == !!(cases[i].flags & PT_HVO) &&
			  !(a[j].phys & (case_size(i) - 1)),
			  "gen %d: owner %u: %s order %u node %d attrs %s at %#llx", gen,
			  owner_base + i, a[j].state, a[j].order, a[j].nid, a[j].attrs, a[j].phys);
	}
	vt_result(n == found, "gen %d: %d extents handed over, expected %d", gen, n, found);
	for (i = 0; i < 2; i++) {
		vt_result(pt_node_stat(i, "total_bytes") == 2 * PT_GIB,
			  "gen %d: node %d pool of 2 GiB handed over (%llu)", gen, i,
			  pt_node_stat(i, "total_bytes"));
		vt_result(pt_node_stat(i, "pending_bytes") == want[i] &&
			  pt_node_stat(i, "free_bytes") == 2 * PT_GIB - want[i],
			  "gen %d: node %d pending %llu free %llu, expected %llu and %llu", gen, i,
			  pt_node_stat(i, "pending_bytes"), pt_node_stat(i, "free_bytes"), want[i],
			  2 * PT_GIB - want[i]);
	}
	check_prebuilt(gen, want);
}

static bool kept_gen1(int i)
{
	return cases[i].preserve;
}

static bool kept_gen2(int i)
{
	return cases[i].preserve && cases[i].again;
}

static unsigned long long owner_phys(unsigned int owner)
{
	struct alloc_line a[PT_MAX_SLOTS];
	int n = allocations(a, PT_MAX_SLOTS), j;

	for (j = 0; j < n; j++)
		if (a[j].owner == owner && !strcmp(a[j].state, "pending"))
			return a[j].phys;
	vt_fatal("no pending extent of owner %u", owner);
}

/* Restore the extents kept by @kept; returns their slots by case in @slot_of. */
static void restore_all(int fd, int gen, unsigned int owner_base, bool (*kept)(int),
			int *slot_of, uint64_t seed_base)
{
	struct pt_slot s[PT_MAX_SLOTS];
	unsigned long long phys;
	int i, n, k, ret;

	for (i = 0; i < NR_CASES; i++) {
		slot_of[i] = -1;
		if (!kept(i) || (gen == 2 && i == RELEASED))
			continue;
		phys = owner_phys(owner_base + i);
		ret = pt_cmd(fd, "restore %llx %u", phys, owner_base + i);
		if (!vt_result(!ret, "gen %d: owner %u restored (ret %d)", gen, owner_base + i,
			       ret))
			continue;
		n = pt_slots(fd, s, PT_MAX_SLOTS);
		k = find_slot(s, n, phys / 4096);
		if (k < 0)
			vt_fatal("restored folio %#llx not in a slot", phys);
		slot_of[i] = s[k].slot;
		vt_result(s[k].order == cases[i].order && s[k].nid == cases[i].nid &&
			  s[k].present_first == !(cases[i].flags & PT_NO_DIRECT_MAP) &&
			  s[k].present_last == !(cases[i].flags & PT_NO_DIRECT_MAP),
			  "gen %d: owner %u is a folio of order %u on node %d, direct map %d/%d",
			  gen, owner_base + i, s[k].order, s[k].nid, s[k].present_first,
			  s[k].present_last);
		vt_result(pt_pattern(fd, s[k].slot, cases[i].order, seed_base + i, PT_CHECK),
			  "gen %d: owner %u contents intact", gen, owner_base + i);
	}
}

/* Fail the @nth fallible step of persist_alloc in this thread (0: none). */
static void fail_nth(int nth)
{
	char path[64], val[16];

	snprintf(path, sizeof(path), "/proc/self/task/%ld/fail-nth", (long)syscall(SYS_gettid));
	snprintf(val, sizeof(val), "%d", nth);
	if (vt_write_file(path, val))
		vt_fatal("%s: %s", path, strerror(errno));
}

/*
 * A release that fails, restoring the vmemmap of the HVO folio built at
 * boot to free it, leaves the extent pending as it was, its folio built:
 * restore_all() below restores it and finds its contents.
 */
static void failed_releases(int fd)
{
	unsigned long long pending = pt_node_stat(0, "pending_bytes");
	int ret;

	vt_write_file(FAIL_ATTR "/verbose", "0");
	fail_nth(1);
	ret = pt_cmd(fd, "release %llx %u", owner_phys(GEN1_OWNER + HVO_2M), GEN1_OWNER + HVO_2M);
	fail_nth(0);
	vt_result(ret == -ENOMEM && pt_node_stat(0, "pending_bytes") == pending &&
		  pt_node_stat(0, "pending_built_bytes") == pending,
		  "gen 2: a failed release leaves owner %d pending, built (ret %d)",
		  GEN1_OWNER + HVO_2M, ret);
}

static void generation2(int fd)
{
	int slot_of[NR_CASES], i, n, ret;
	unsigned long long free1, phys0;

	check_pending(2, GEN1_OWNER, kept_gen1);
	vt_result(vt_dmesg_contains(PREHVO_MSG),
		  "gen 2: the 1 GiB HVO extent of node 0 was pre-HVO'd");
	vt_result(vt_dmesg_contains("node 0: keeping the 2 GiB handed over, not the 1 GiB") &&
		  vt_dmesg_contains("node 1: keeping the 2 GiB handed over, not the 3 GiB"),
		  "gen 2: persist_alloc=0:1G,1:3G set aside for the handed-over pools, as logged");
	ret = pt_cmd(fd, "restore %llx %u", owner_phys(GEN1_OWNER), GEN1_OWNER + 1);
	vt_result(ret == -EPERM, "gen 2: restore under another owner: expected %d, got %d",
		  -EPERM, ret);
	ret = pt_cmd(fd, "restore %llx %u", owner_phys(GEN1_OWNER) + 4096, GEN1_OWNER);
	vt_result(ret == -ENOENT, "gen 2: restore where no extent starts: expected %d, got %d",
		  -ENOENT, ret);

	free1 = pt_node_stat(1, "free_bytes");
	ret = pt_cmd(fd, "release %llx %u", owner_phys(GEN1_OWNER + RELEASED),
		     GEN1_OWNER + RELEASED);
	vt_result(!ret && pt_node_stat(1, "free_bytes") == free1 + case_size(RELEASED),
		  "gen 2: owner %d released back to the pool (ret %d)", GEN1_OWNER + RELEASED,
		  ret);

	failed_releases(fd);

	phys0 = owner_phys(GEN1_OWNER);
	ret = vt_trace_start("persist_alloc");
	restore_all(fd, 2, GEN1_OWNER, kept_gen1, slot_of, GEN1_OWNER);
	check_hvo(2, slot_of);
	for (i = 0, n = 0; i < NR_CASES; i++)
		n += slot_of[i] >= 0;
	ret = ret ?: vt_trace_count("persist_restore:", "owner=10");
	vt_result(ret == n, "gen 2: %d persist_restore trace events, expected %d", ret, n);
	ret = pt_cmd(fd, "restore %llx %u", phys0, GEN1_OWNER);
	vt_result(ret == -ENOENT, "gen 2: restore twice: expected %d, got %d", -ENOENT, ret);

	for (i = 0; i < NR_CASES; i++) {
		if (slot_of[i] < 0)
			continue;
		if (!cases[i].again) {
			vt_result(!pt_cmd(fd, "free %d", slot_of[i]), "gen 2: owner %d freed",
				  GEN1_OWNER + i);
			continue;
		}
		vt_result(pt_pattern(fd, slot_of[i], cases[i].order, GEN2_OWNER + i, PT_FILL) &&
			  !pt_cmd(fd, "preserve %d %d", slot_of[i], GEN2_OWNER + i),
			  "gen 2: case %d rewritten and preserved as owner %d", i, GEN2_OWNER + i);
	}
}

static void generation3(int fd)
{
	int slot_of[NR_CASES], i;

	check_pending(3, GEN2_OWNER, kept_gen2);
	vt_result(vt_dmesg_contains(PREHVO_MSG),
		  "gen 3: the 1 GiB HVO extent of node 0 was pre-HVO'd again");
	restore_all(fd, 3, GEN2_OWNER, kept_gen2, slot_of, GEN2_OWNER);
	check_hvo(3, slot_of);
	for (i = 0; i < NR_CASES; i++)
		if (slot_of[i] >= 0)
			vt_result(!pt_cmd(fd, "free %d", slot_of[i]), "gen 3: owner %d freed",
				  GEN2_OWNER + i);
	for (i = 0; i < 2; i++)
		vt_result(pt_node_stat(i, "free_bytes") == 2 * PT_GIB &&
			  pt_node_stat(i, "pending_bytes") == 0 &&
			  pt_node_stat(i, "no_direct_map_bytes") == 0,
			  "gen 3: node %d pool all free again", i);
}

int main(int argc, char **argv)
{
	int gen = vt_stage(argc, argv, 3);
	int fd = pt_open();

	if (gen == 1) {
		generation1(fd);
		/* A command line that disagrees with what is handed over. */
		vt_next_args("persist_alloc=0:1G,1:3G");
	} else if (gen == 2) {
		generation2(fd);
	} else {
		generation3(fd);
	}
	if (gen < 3)
		vt_hold();
	close(fd);
	return vt_finish();
}
