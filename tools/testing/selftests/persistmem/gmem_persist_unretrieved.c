// SPDX-License-Identifier: GPL-2.0
/*
 * gmem_persist_unretrieved: finishing a LUO session releases the
 * persistent guest_memfd nobody retrieved, and only that one.
 *
 * Generation 1 fills two 32 MiB persistent guest_memfds (2 MiB granules,
 * MMAP|INIT_SHARED, bound to node 0 with mbind()) with patterns through
 * mmap and preserves both. Generation 2 finds both pending on node 0,
 * retrieves and checks only the first, and finishes the session: node 0's
 * pending_bytes must drop and its free_bytes rise by exactly the second
 * file's size, and that file is gone from the session. The allocator's
 * test consumer, which allocates without zeroing, then takes the very
 * granules finish released: they must read zero, nothing of the old
 * content comes back.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gmem_vm.h"
#include "persist_test.h"

#define SESSION		"gmem-persist-unretrieved"
#define TOKEN		0x756e726574ull
#define SIZE		(32 * GVM_MIB)
#define GRANULE		(2 * GVM_MIB)
#define NODE		0
#define SEED		0x7e7e0000ull
#define FLAGS		(GUEST_MEMFD_FLAG_PERSIST | GUEST_MEMFD_FLAG_MMAP | \
			 GUEST_MEMFD_FLAG_INIT_SHARED)

static void *map_file(int fd, uint64_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		vt_fatal("mmap guest_memfd of %llu MiB: %s", (unsigned long long)(size >> 20),
			 strerror(errno));
	return p;
}

/* A persistent file of @size on NODE, all granules allocated. */
static int node_file(int vm, uint64_t size, void **map)
{
	int fd = gvm_create_gmem(vm, size, FLAGS, GRANULE, 0), ret;

	if (fd < 0)
		vt_fatal("KVM_CREATE_GUEST_MEMFD %llu MiB: %s", (unsigned long long)(size >> 20),
			 strerror(-fd));
	*map = map_file(fd, size);
	ret = gvm_mbind_node(*map, size, NODE);
	if (ret)
		vt_fatal("mbind to node %d: %s", NODE, strerror(-ret));
	ret = fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, size) ? -errno : 0;
	vt_result(!ret, "fallocate %llu MiB on node %d (ret %d)",
		  (unsigned long long)(size >> 20), NODE, ret);
	return fd;
}

static void stage1(void)
{
	unsigned long long free0 = pt_node_stat(NODE, "free_bytes");
	int vm = gvm_create_vm(KVM_X86_DEFAULT_VM), session, fd[2], i, ret;
	void *p;

	if (vm < 0)
		vt_fatal("create VM: %s", strerror(-vm));
	for (i = 0; i < 2; i++) {
		fd[i] = node_file(vm, SIZE, &p);
		vt_fill_pattern(p, SIZE, SEED + i, 0);
		munmap(p, SIZE);
	}
	vt_result(free0 - pt_node_stat(NODE, "free_bytes") == 2 * SIZE,
		  "gen 1: node %d gave %llu MiB, expected %llu", NODE,
		  (free0 - pt_node_stat(NODE, "free_bytes")) >> 20, (2 * SIZE) >> 20);

	session = vt_session(SESSION, true);
	for (i = 0; i < 2; i++) {
		ret = luo_session_preserve_fd(session, fd[i], TOKEN + i);
		vt_result(!ret, "gen 1: file %d preserved (ret %d)", i, ret);
	}
	vt_hold();
}

/*
 * The granules finish released must read zero to whoever gets them next.
 * The allocator's test consumer allocates without PERSIST_ALLOC_ZERO, so
 * what it reads is what finish left: take 2 MiB granules of NODE until
 * every released one is among them (the pool hands out its lowest free
 * granule first) and check those.
 */
static void check_released_zero(const unsigned long long *released, int nr)
{
	struct pt_slot slots[PT_MAX_SLOTS];
	int t = pt_open(), n, i, j, found = 0;
	bool zero = true;

	for (n = 0; n < PT_MAX_SLOTS && found < nr; n++) {
		if (pt_cmd(t, "alloc %d 9 0", NODE))
			break;
		found = 0;
		pt_slots(t, slots, PT_MAX_SLOTS);
		for (i = 0; i < nr; i++)
			for (j = 0; j <= n; j++)
				found += (unsigned long long)slots[j].pfn << 12 == released[i];
	}
	vt_result(found == nr, "gen 2: the %d released granules allocated again (%d found in %d)",
		  nr, found, n);
	for (j = 0; j < n; j++) {
		for (i = 0; i < nr; i++)
			if ((unsigned long long)slots[j].pfn << 12 == released[i])
				zero &= pt_pattern(t, slots[j].slot, 9, 0, PT_CHECK_ZERO);
	}
	vt_result(found == nr && zero, "gen 2: released granules read zero, not file 1's data");
	vt_result(!pt_cmd(t, "free-all"), "gen 2: test allocations freed");
	close(t);
}

static int stage2(void)
{
	int session = vt_session(SESSION, false), fd, ret, nr;
	unsigned long long pending, avail, released[SIZE / GRANULE];
	long long bad;
	struct stat st;
	void *p;

	pending = pt_node_stat(NODE, "pending_bytes");
	vt_result(pending == 2 * SIZE, "gen 2: node %d pending_bytes %llu, expected %llu", NODE,
		  pending, 2 * SIZE);

	fd = luo_session_retrieve_fd(session, TOKEN);
	if (fd < 0)
		vt_fatal("gen 2: retrieve file 0: %s", strerror(-fd));
	if (fstat(fd, &st))
		vt_fatal("gen 2: fstat: %s", strerror(errno));
	vt_result(st.st_size == (off_t)SIZE, "gen 2: file 0 retrieved, size %lld",
		  (long long)st.st_size);
	p = map_file(fd, SIZE);
	bad = vt_check_pattern(p, SIZE, SEED, 0);
	vt_result(bad < 0, "gen 2: file 0 intact (first bad offset %lld)", bad);
	munmap(p, SIZE);

	nr = pt_extents(NODE, 9, "pending", released, SIZE / GRANULE);
	vt_result(nr == SIZE / GRANULE, "gen 2: %d granules of file 1 pending, expected %llu",
		  nr, SIZE / GRANULE);
	pending = pt_node_stat(NODE, "pending_bytes");
	avail = pt_node_stat(NODE, "free_bytes");
	vt_diag("gen 2: before finish: node %d pending %llu free %llu", NODE, pending, avail);
	ret = luo_session_finish(session);
	vt_result(!ret, "gen 2: finish with file 1 never retrieved (ret %d)", ret);
	vt_result(pending - pt_node_stat(NODE, "pending_bytes") == SIZE &&
		  pt_node_stat(NODE, "free_bytes") - avail == SIZE,
		  "gen 2: file 1 released: node %d pending %lld, free %+lld, expected -%llu and +%llu",
		  NODE, (long long)(pt_node_stat(NODE, "pending_bytes") - pending),
		  (long long)(pt_node_stat(NODE, "free_bytes") - avail), SIZE, SIZE);
	ret = luo_session_retrieve_fd(session, TOKEN + 1);
	vt_result(ret == -ENOENT, "gen 2: file 1 is gone after finish: expected %d, got %d",
		  -ENOENT, ret);
	if (ret >= 0)
		close(ret);

	check_released_zero(released, nr);
	p = map_file(fd, SIZE);
	bad = vt_check_pattern(p, SIZE, SEED, 0);
	vt_result(bad < 0, "gen 2: retrieved file 0 still intact (first bad offset %lld)", bad);
	munmap(p, SIZE);
	close(fd);
	close(session);
	return vt_finish();
}

int main(int argc, char **argv)
{
	if (vt_stage(argc, argv, 2) == 1)
		stage1();
	return stage2();
}
