// SPDX-License-Identifier: GPL-2.0
/*
 * gmem_persist_many: 256 persistent guest_memfds in one LUO session.
 *
 * Generation 1 creates 252 files of 64 KiB with 4 KiB granules and four of
 * 4 MiB with 2 MiB granules (one with HVO), all MMAP|INIT_SHARED, fills
 * each through mmap with a pattern seeded by its index, and preserves all
 * of them in one session (closing its own descriptors). Generation 2
 * retrieves every one, checks its size and every byte of its pattern (a
 * file handed back under the wrong token shows as a wrong seed), finishes
 * the session and finds nothing left pending.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gmem_vm.h"
#include "persist_test.h"

#define SESSION		"gmem-persist-many"
#define TOKEN		0x6d616e7900000ull
#define NR_FILES	256
#define NR_HUGE		4
#define SEED		0x3a3a0000ull
#define FLAGS		(GUEST_MEMFD_FLAG_PERSIST | GUEST_MEMFD_FLAG_MMAP | \
			 GUEST_MEMFD_FLAG_INIT_SHARED)

static bool huge(int i)
{
	return i >= NR_FILES - NR_HUGE;
}

static uint64_t file_size(int i)
{
	return huge(i) ? 4 * GVM_MIB : 64 * 1024;
}

/* A failure of file @i at @step: the first few are shown. */
static void failed(int *nfail, int i, const char *step, long long detail)
{
	if ((*nfail)++ < 8)
		vt_diag("file %d: %s: %lld", i, step, detail);
}

static void stage1(void)
{
	int vm = gvm_create_vm(KVM_X86_DEFAULT_VM), session, fd, i, nfail = 0, ret;
	uint64_t t0, ns = 0;
	void *p;

	if (vm < 0)
		vt_fatal("create VM: %s", strerror(-vm));
	session = vt_session(SESSION, true);
	for (i = 0; i < NR_FILES; i++) {
		fd = gvm_create_gmem(vm, file_size(i), FLAGS, huge(i) ? 2 * GVM_MIB : 4096,
				     i == NR_FILES - 1 ? GUEST_MEMFD_PERSIST_HVO : 0);
		if (fd < 0)
			vt_fatal("file %d: KVM_CREATE_GUEST_MEMFD: %s", i, strerror(-fd));
		p = mmap(NULL, file_size(i), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			vt_fatal("file %d: mmap: %s", i, strerror(errno));
		vt_fill_pattern(p, file_size(i), SEED + i, 0);
		munmap(p, file_size(i));
		t0 = vt_now_ns();
		ret = luo_session_preserve_fd(session, fd, TOKEN + i);
		ns += vt_now_ns() - t0;
		if (ret)
			failed(&nfail, i, "preserve", ret);
		/* The session holds the file now. */
		close(fd);
	}
	vt_result(!nfail, "gen 1: %d files created, filled and preserved (%d failed)", NR_FILES,
		  nfail);
	vt_diag("gen 1: %d preserves took %llu us", NR_FILES, (unsigned long long)ns / 1000);
	vt_hold();
}

static int stage2(void)
{
	int session = vt_session(SESSION, false), fd, i, n, ret;
	int nfail_get = 0, nfail_size = 0, nfail_data = 0;
	uint64_t t0, ns = 0;
	long long bad;
	struct stat st;
	void *p;

	for (i = 0; i < NR_FILES; i++) {
		t0 = vt_now_ns();
		fd = luo_session_retrieve_fd(session, TOKEN + i);
		ns += vt_now_ns() - t0;
		if (fd < 0) {
			failed(&nfail_get, i, "retrieve", fd);
			continue;
		}
		st.st_size = -1;
		if (fstat(fd, &st) || st.st_size != (off_t)file_size(i)) {
			failed(&nfail_size, i, "size", st.st_size);
			close(fd);
			continue;
		}
		p = mmap(NULL, file_size(i), PROT_READ, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) {
			failed(&nfail_data, i, "mmap", -errno);
			close(fd);
			continue;
		}
		bad = vt_check_pattern(p, file_size(i), SEED + i, 0);
		if (bad >= 0)
			failed(&nfail_data, i, "first bad offset", bad);
		munmap(p, file_size(i));
		close(fd);
	}
	vt_result(!nfail_get, "gen 2: %d files retrieved (%d failed)", NR_FILES, nfail_get);
	vt_result(!nfail_size, "gen 2: every size kept (%d wrong)", nfail_size);
	vt_result(!nfail_data, "gen 2: every byte of every file intact (%d files bad)", nfail_data);
	vt_diag("gen 2: %d retrieves took %llu us", NR_FILES, (unsigned long long)ns / 1000);

	ret = luo_session_finish(session);
	vt_result(!ret, "gen 2: finish session (ret %d)", ret);
	for (n = 0; n < 2; n++)
		vt_result(pt_node_stat(n, "pending_bytes") == 0,
			  "gen 2: node %d has nothing pending (%llu)", n,
			  pt_node_stat(n, "pending_bytes"));
	close(session);
	return vt_finish();
}

int main(int argc, char **argv)
{
	if (vt_stage(argc, argv, 2) == 1)
		stage1();
	return stage2();
}
