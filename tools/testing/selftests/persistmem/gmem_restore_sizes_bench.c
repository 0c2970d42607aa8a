// SPDX-License-Identifier: GPL-2.0
/*
 * gmem_restore_sizes_bench: the retrieve of a persistent guest_memfd of 1,
 * 4 and 16 GiB, in 1 GiB and in 2 MiB granules (make bench).
 *
 * The retrieve claims a file's runs: its cost should follow the runs and
 * granules the file has, not its pages. Each file is fully allocated with
 * the default memory policy (a 16 GiB file takes both nodes' pools), is
 * preserved alone or with the others of its kernel, and is retrieved
 * after a kexec, once the prebuild workers are done. The pools (18 GiB)
 * do not hold 16 GiB twice, so the files go in three kexecs:
 *  - generation 1 preserves the 16 GiB file of 1 GiB granules;
 *  - generation 2 retrieves it, gives it back, and preserves the 1 and
 *    4 GiB files of both granules;
 *  - generation 3 retrieves those and preserves the 16 GiB file of 2 MiB
 *    granules, which generation 4 retrieves.
 * Each kernel first retrieves a file of one 2 MiB granule, untimed, once
 * tracing is on: under TCG the first run of a code path pays its
 * translation, and the first traced event the trace buffer's setup.
 *
 * Per file: the retrieve ioctl timed in userspace, the handler's time and
 * the runs it read (tracepoint kvm_gmem_persist_retrieve), and the first
 * use of every granule (an fallocate() of the whole file). memfd_luo is
 * not run here: 18 GiB of pools leave no room for a 16 GiB memfd, and its
 * retrieve is linear in its folios (guest_memfd_persist_bench has it per
 * GiB, side by side). Figures are KTAP diagnostics
 * "# bench: <key> <value> <unit>", key sizes_<granule>_<GiB>g.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gmem_vm.h"
#include "persist_test.h"

#define SZ_2M		(2 * GVM_MIB)
#define WARM_TOKEN	99

struct sized_file {
	const char *key;	/* figure key */
	unsigned long long size, granule;
	int gen;		/* the kernel that retrieves it */
};

static const struct sized_file files[] = {
	{ "sizes_1g_16g", 16 * GVM_GIB, GVM_GIB, 2 },
	{ "sizes_1g_1g", GVM_GIB, GVM_GIB, 3 },
	{ "sizes_2m_1g", GVM_GIB, SZ_2M, 3 },
	{ "sizes_1g_4g", 4 * GVM_GIB, GVM_GIB, 3 },
	{ "sizes_2m_4g", 4 * GVM_GIB, SZ_2M, 3 },
	{ "sizes_2m_16g", 16 * GVM_GIB, SZ_2M, 4 },
};

#define NR_FILES	((int)ARRAY_SIZE(files))

static const char *const trace_keys[] = { "size", "nr_extents", "ns" };

static void figure(const char *key, double value, const char *unit)
{
	vt_diag("bench: %s %.3f %s", key, value, unit);
}

static const char *session_name(int gen)
{
	static char name[32];

	snprintf(name, sizeof(name), "gmem_sizes_%d", gen);
	return name;
}

/* Bytes of @granule granules allocated from both nodes' pools. */
static unsigned long long allocated(unsigned long long granule)
{
	const char *stat = granule == GVM_GIB ? "allocated_1g_bytes" : "allocated_2m_bytes";

	return pt_node_stat(0, stat) + pt_node_stat(1, stat);
}

/* Create a file of @size in @granule granules, allocate it, preserve it. */
static void preserve_file(int vm, int session, unsigned long long size,
			  unsigned long long granule, int token)
{
	int fd = gvm_create_gmem(vm, size, GUEST_MEMFD_FLAG_PERSIST, granule, 0), ret;
	unsigned long long before = allocated(granule);

	if (fd < 0)
		vt_fatal("KVM_CREATE_GUEST_MEMFD of %llu bytes: %s", size, strerror(-fd));
	if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, size))
		vt_fatal("fallocate of %llu bytes in %llu byte granules: %s", size, granule,
			 strerror(errno));
	ret = luo_session_preserve_fd(session, fd, token);
	vt_result(!ret && allocated(granule) - before == size,
		  "%llu MiB in %llu KiB granules, all from the pools (%llu MiB), preserved as token %d (%d)",
		  size >> 20, granule >> 10, (allocated(granule) - before) >> 20, token, ret);
}

/* Preserve the files generation @gen + 1 retrieves, and a warm-up file. */
static void preserve_for(int gen)
{
	int vm = gvm_create_vm(KVM_X86_DEFAULT_VM), session, i;

	if (vm < 0)
		vt_fatal("KVM_CREATE_VM: %s", strerror(-vm));
	session = vt_session(session_name(gen), true);
	preserve_file(vm, session, SZ_2M, SZ_2M, WARM_TOKEN);
	for (i = 0; i < NR_FILES; i++)
		if (files[i].gen == gen + 1)
			preserve_file(vm, session, files[i].size, files[i].granule, i);
	vt_hold();
}

/* Until the prebuild workers have built every handed-over folio. */
static void wait_prebuilt(void)
{
	int tries, n;

	for (tries = 0; tries < 1200; tries++) {
		for (n = 0; n < 2; n++)
			if (pt_node_stat(n, "pending_built_bytes") !=
			    pt_node_stat(n, "pending_bytes"))
				break;
		if (n == 2)
			return;
		usleep(50 * 1000);
	}
	vt_result(false, "handed-over folios not built at boot after 60 s");
}

/* Retrieve, time and give back the files of generation @gen. */
static void retrieve_all(int gen)
{
	uint64_t vals[(NR_FILES + 1) * 3], t0;
	double us[NR_FILES];
	int session, fd[NR_FILES], i, n = 0, k, warm, ret;

	session = vt_session(session_name(gen - 1), false);
	wait_prebuilt();
	ret = vt_trace_start("kvm_gmem_persist");
	if (ret)
		vt_fatal("trace kvm_gmem_persist: %s", strerror(-ret));
	warm = luo_session_retrieve_fd(session, WARM_TOKEN);
	if (warm < 0)
		vt_fatal("retrieve the warm-up file: %s", strerror(-warm));
	close(warm);
	for (i = 0; i < NR_FILES; i++) {
		fd[i] = -1;
		if (files[i].gen != gen)
			continue;
		t0 = vt_now_ns();
		fd[i] = luo_session_retrieve_fd(session, i);
		us[i] = (vt_now_ns() - t0) / 1000.0;
		if (!vt_result(fd[i] >= 0, "%s: retrieved (%d)", files[i].key, fd[i]))
			continue;
		n++;
	}
	/* The warm-up file's line first. */
	k = vt_trace_values("kvm_gmem_persist_retrieve:", trace_keys, 3, vals, NR_FILES + 1);
	vt_result(k == n + 1 && vals[0] == SZ_2M, "%d retrieve trace lines for %d files", k,
		  n + 1);

	for (i = 0, k = 1; i < NR_FILES; i++) {
		const struct sized_file *f = &files[i];
		const uint64_t *v = vals + k * 3;
		double use;

		if (fd[i] < 0)
			continue;
		if (vt_result(v[0] == f->size, "%s: trace line %d is its retrieve", f->key, k)) {
			figure(f->key, us[i], "us_retrieve");
			figure(f->key, v[2] / 1000.0, "us_retrieve_kernel");
			figure(f->key, v[1], "runs");
			figure(f->key, f->size / f->granule, "granules");
		}
		k++;
		t0 = vt_now_ns();
		ret = fallocate(fd[i], FALLOC_FL_KEEP_SIZE, 0, f->size) ? -errno : 0;
		use = (vt_now_ns() - t0) / 1000.0;
		if (vt_result(!ret, "%s: every granule used (%d)", f->key, ret))
			figure(f->key, use, "us_first_use");
		close(fd[i]);
	}
	ret = luo_session_finish(session);
	vt_result(!ret, "session of generation %d finished (%d)", gen - 1, ret);
	close(session);
}

int main(int argc, char **argv)
{
	int gen = vt_stage(argc, argv, 4);

	if (gen > 1)
		retrieve_all(gen);
	if (gen < 4)
		preserve_for(gen);
	return vt_finish();
}
