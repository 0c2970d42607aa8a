// SPDX-License-Identifier: GPL-2.0
/*
 * gmem_persist_retrieve_retry: a retrieve of a persistent guest_memfd that
 * fails part way destroys nothing; the retry gets every byte.
 *
 * Generation 1 fills a 32 MiB persistent guest_memfd (2 MiB granules,
 * MMAP|INIT_SHARED, on node 0) with a pattern and preserves it.
 * Generation 2 arms fail_kvm_gmem_persist_retrieve so that the retrieve
 * fails once it has claimed every granule: it returns -ENOMEM and every
 * granule is pending again, none freed, none lost. A second retrieve, with
 * nothing injected, returns the file whole: every byte of the pattern,
 * nothing pending, and finish then releases nothing.
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

#define SESSION		"gmem-persist-retry"
#define TOKEN		0x7265747279ull
#define SIZE		(32 * GVM_MIB)
#define GRANULE		(2 * GVM_MIB)
#define NODE		0
#define SEED		0x72e7000ull
#define FAIL_AT		1
#define FLAGS		(GUEST_MEMFD_FLAG_PERSIST | GUEST_MEMFD_FLAG_MMAP | \
			 GUEST_MEMFD_FLAG_INIT_SHARED)

static void *map_file(int fd)
{
	void *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		vt_fatal("mmap guest_memfd: %s", strerror(errno));
	return p;
}

static void stage1(void)
{
	int vm = gvm_create_vm(KVM_X86_DEFAULT_VM), session, fd, ret;
	void *p;

	if (vm < 0)
		vt_fatal("create VM: %s", strerror(-vm));
	fd = gvm_create_gmem(vm, SIZE, FLAGS, GRANULE, 0);
	if (fd < 0)
		vt_fatal("KVM_CREATE_GUEST_MEMFD: %s", strerror(-fd));
	p = map_file(fd);
	ret = gvm_mbind_node(p, SIZE, NODE);
	if (ret)
		vt_fatal("mbind to node %d: %s", NODE, strerror(-ret));
	vt_fill_pattern(p, SIZE, SEED, 0);
	munmap(p, SIZE);

	session = vt_session(SESSION, true);
	ret = luo_session_preserve_fd(session, fd, TOKEN);
	vt_result(!ret, "gen 1: file of %llu MiB preserved (ret %d)", SIZE >> 20, ret);
	vt_hold();
}

static int stage2(void)
{
	int session = vt_session(SESSION, false), fd, ret;
	unsigned long long pending, avail;
	long long bad;
	struct stat st;
	void *p;

	pending = pt_node_stat(NODE, "pending_bytes");
	avail = pt_node_stat(NODE, "free_bytes");
	vt_result(pending == SIZE, "gen 2: node %d pending_bytes %llu, expected %llu", NODE,
		  pending, SIZE);

	ret = gvm_fail(GVM_FAIL_RETRIEVE, FAIL_AT);
	if (ret)
		vt_fatal("gen 2: arm %s: %s", GVM_FAIL_RETRIEVE, strerror(-ret));
	fd = luo_session_retrieve_fd(session, TOKEN);
	gvm_fail_off(GVM_FAIL_RETRIEVE);
	vt_result(fd == -ENOMEM, "gen 2: retrieve failed after its claim: expected %d, got %d",
		  -ENOMEM, fd);
	vt_result(gvm_fail_left(GVM_FAIL_RETRIEVE) == 0,
		  "gen 2: the injected failure was used (left %ld)",
		  gvm_fail_left(GVM_FAIL_RETRIEVE));
	if (fd >= 0)
		close(fd);
	vt_result(pt_node_stat(NODE, "pending_bytes") == pending &&
		  pt_node_stat(NODE, "free_bytes") == avail,
		  "gen 2: failed retrieve kept the memory: pending %llu free %+lld, expected %llu and 0",
		  pt_node_stat(NODE, "pending_bytes"),
		  (long long)(pt_node_stat(NODE, "free_bytes") - avail), pending);

	fd = luo_session_retrieve_fd(session, TOKEN);
	if (fd < 0)
		vt_fatal("gen 2: retrieve again: %s", strerror(-fd));
	if (fstat(fd, &st))
		vt_fatal("gen 2: fstat: %s", strerror(errno));
	vt_result(st.st_size == (off_t)SIZE, "gen 2: retried retrieve returns the file, size %lld",
		  (long long)st.st_size);
	vt_result(pt_node_stat(NODE, "pending_bytes") == 0,
		  "gen 2: nothing pending after the retry (%llu)",
		  pt_node_stat(NODE, "pending_bytes"));
	p = map_file(fd);
	bad = vt_check_pattern(p, SIZE, SEED, 0);
	vt_result(bad < 0, "gen 2: every byte came back (first bad offset %lld)", bad);
	munmap(p, SIZE);

	ret = luo_session_finish(session);
	vt_result(!ret, "gen 2: finish (ret %d)", ret);
	vt_result(pt_node_stat(NODE, "free_bytes") == avail,
		  "gen 2: finish released nothing of the retrieved file (free %+lld)",
		  (long long)(pt_node_stat(NODE, "free_bytes") - avail));
	p = map_file(fd);
	bad = vt_check_pattern(p, SIZE, SEED, 0);
	vt_result(bad < 0, "gen 2: file intact after finish (first bad offset %lld)", bad);
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
