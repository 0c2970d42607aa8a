// SPDX-License-Identifier: GPL-2.0
/*
 * iommufd_persist_bench: a persistent iommufd domain handed over by LUO
 * side by side with rebuilding its mappings with IOMMU_IOAS_MAP_FILE after
 * kexec (what a VMM must do without it), in one VM run (make bench), on
 * the mock IOMMU.
 *
 * Two persistent guest_memfds of 4 GiB, one of 2 MiB granules and one of
 * 1 GiB granules, fully allocated. Six iommufds, each with one IOAS, a mock
 * device on a persistent HWPT and 1, 4 or 16 GiB of IOVA mapped from one of
 * the files (16 GiB: the whole file at four IOVAs), so that the domain
 * holds 2 MiB or 1 GiB IOPTEs (or contiguous entries of them). The mock
 * IOMMU gives persistent domains a 64 GiB aperture, room for that.
 *
 * Stage 1 times building the mappings and the preserve ioctl of each
 * iommufd, then kexecs for real: each iommufd's freeze logs one line with
 * its time and the size of its description, which the runner reads from
 * the console (the token's low byte is the configuration's index in
 * configs[] below). Stage 2 retrieves the files first, then times, per
 * iommufd, the retrieve ioctl and the IOMMU_HWPT_ALLOC that adopts the
 * handed-over table; and, on a fresh iommufd with a mock device, allocating
 * a persistent HWPT and mapping the same areas again with
 * IOMMU_IOAS_MAP_FILE. Both files are mapped once before, untimed, so that
 * neither side pays for a first pin of the retrieved files.
 *
 * Figures are KTAP diagnostics "# bench: <key> <value> <unit>"; times are
 * measured under QEMU TCG: compare ratios, not absolute values.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "gmem_vm.h"
#include "iofd.h"
#include "libliveupdate.h"

#define SESSION		"iommufd-bench"
#define FILE_SIZE	(4 * GVM_GIB)
#define IOVA_BASE	(4 * GVM_GIB)
#define TOKEN_FILE_2M	0x62663200ull
#define TOKEN_FILE_1G	0x62663100ull
#define TOKEN_IOFD	0x62690000ull	/* + index in configs[] */
#define GMEM_FLAGS	(GUEST_MEMFD_FLAG_PERSIST | GUEST_MEMFD_FLAG_MMAP | \
			 GUEST_MEMFD_FLAG_INIT_SHARED)

struct config {
	const char *key;
	uint64_t granule, size;
	struct iofd io;
};

#define CONFIG(k, g, s) { .key = (k), .granule = (g), .size = (s) }

static struct config configs[] = {
	CONFIG("iofd_2m_1g", 2 * GVM_MIB, GVM_GIB),
	CONFIG("iofd_2m_4g", 2 * GVM_MIB, 4 * GVM_GIB),
	CONFIG("iofd_2m_16g", 2 * GVM_MIB, 16 * GVM_GIB),
	CONFIG("iofd_1g_1g", GVM_GIB, GVM_GIB),
	CONFIG("iofd_1g_4g", GVM_GIB, 4 * GVM_GIB),
	CONFIG("iofd_1g_16g", GVM_GIB, 16 * GVM_GIB),
};

#define NR_CONFIGS ((int)ARRAY_SIZE(configs))

static void figure(const char *key, double value, const char *unit)
{
	vt_diag("bench: %s %.3f %s", key, value, unit);
}

static double us_since(uint64_t t0)
{
	return (vt_now_ns() - t0) / 1000.0;
}

/* A 4 GiB file of @granule granules, allocated from the pool of node @nid. */
static int make_file(int vm, uint64_t granule, int nid)
{
	int ret = gvm_bind_task(nid), fd;

	if (ret)
		vt_fatal("set_mempolicy(node %d): %s", nid, strerror(-ret));
	fd = gvm_create_gmem(vm, FILE_SIZE, GMEM_FLAGS, granule, 0);
	if (fd < 0)
		vt_fatal("KVM_CREATE_GUEST_MEMFD of %llu MiB granules: %s",
			 (unsigned long long)(granule >> 20), strerror(-fd));
	if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, FILE_SIZE))
		vt_fatal("fallocate of 4 GiB in %llu MiB granules on node %d: %s",
			 (unsigned long long)(granule >> 20), nid, strerror(errno));
	ret = gvm_bind_task(-1);
	if (ret)
		vt_fatal("set_mempolicy(default): %s", strerror(-ret));
	return fd;
}

/* Map @c's IOVA range from @file into @ioas: 4 GiB areas at most. */
static int map_config(const struct config *c, int iommufd, uint32_t ioas, int file)
{
	uint64_t off;
	int ret = 0;

	for (off = 0; off < c->size && !ret; off += FILE_SIZE) {
		uint64_t len = c->size - off < FILE_SIZE ? c->size - off : FILE_SIZE;

		ret = iofd_map_file(iommufd, ioas, file, 0, len, IOVA_BASE + off);
	}
	return ret;
}

static void stage1(void)
{
	int vm = gvm_create_vm(0), f2m, f1g, session, i, ret;
	uint32_t hwpt = 0;
	char buf[32];

	if (vm < 0)
		vt_fatal("KVM_CREATE_VM: %s", strerror(-vm));
	f2m = make_file(vm, 2 * GVM_MIB, 0);
	f1g = make_file(vm, GVM_GIB, 1);
	session = vt_session(SESSION, true);
	ret = luo_session_preserve_fd(session, f2m, TOKEN_FILE_2M);
	if (!ret)
		ret = luo_session_preserve_fd(session, f1g, TOKEN_FILE_1G);
	if (ret)
		vt_fatal("preserving the files: %s", strerror(-ret));

	for (i = 0; i < NR_CONFIGS; i++) {
		struct config *c = &configs[i];
		uint64_t t0;

		ret = iofd_open(&c->io);
		if (!ret)
			ret = iofd_mock_device(&c->io);
		if (!ret)
			ret = iofd_persistent_hwpt(&c->io);
		if (ret)
			vt_fatal("%s: mock device on a persistent HWPT: %s", c->key,
				 strerror(-ret));
		/* Stage 2 finds each IOAS under ID 1 again. */
		if (c->io.ioas != 1)
			vt_fatal("%s: IOAS ID %u, not 1", c->key, c->io.ioas);
		if (i && c->io.hwpt != hwpt)
			vt_fatal("%s: HWPT ID %u, not %u as the others", c->key, c->io.hwpt, hwpt);
		hwpt = c->io.hwpt;
		t0 = vt_now_ns();
		ret = map_config(c, c->io.fd, c->io.ioas, c->granule == GVM_GIB ? f1g : f2m);
		if (ret)
			vt_fatal("%s: IOMMU_IOAS_MAP_FILE: %s", c->key, strerror(-ret));
		figure(c->key, us_since(t0), "us_map");
	}
	for (i = 0; i < NR_CONFIGS; i++) {
		uint64_t t0 = vt_now_ns();

		ret = luo_session_preserve_fd(session, configs[i].io.fd, TOKEN_IOFD + i);
		if (ret)
			break;
		figure(configs[i].key, us_since(t0), "us_preserve");
	}
	if (!vt_result(i == NR_CONFIGS, "%d of %d iommufds preserved (%s)", i, NR_CONFIGS,
		       i < NR_CONFIGS ? strerror(-ret) : "ok"))
		exit(vt_finish());
	snprintf(buf, sizeof(buf), "iofd_hwpt=%u", hwpt);
	vt_next_args(buf);
	vt_hold();
}

/*
 * Retrieve @c's iommufd into @c->io.fd and adopt its table; returns the
 * time both took.
 */
static double retrieve_adopt(struct config *c, int session, int i, uint32_t old_hwpt)
{
	struct iofd dev;
	double retrieve_us, adopt_us;
	uint32_t id = 0;
	uint64_t t0;
	int ret;

	t0 = vt_now_ns();
	dev.fd = luo_session_retrieve_fd(session, TOKEN_IOFD + i);
	retrieve_us = us_since(t0);
	if (dev.fd < 0)
		vt_fatal("%s: retrieving the iommufd: %s", c->key, strerror(-dev.fd));
	/* The device comes on a scratch IOAS, as the VMM's would come. */
	ret = iofd_new_ioas(&dev);
	if (!ret)
		ret = iofd_mock_device(&dev);
	if (ret)
		vt_fatal("%s: mock device: %s", c->key, strerror(-ret));
	t0 = vt_now_ns();
	/* The first IOAS of an iommufd has ID 1, kept across kexec. */
	ret = iofd_adopt(dev.fd, dev.idev, 1, IOMMU_HWPT_ALLOC_PERSIST, old_hwpt, 0, &id);
	adopt_us = us_since(t0);
	if (ret || id != old_hwpt)
		vt_fatal("%s: adopting HWPT %u: %s (ID %u)", c->key, old_hwpt,
			 ret ? strerror(-ret) : "ok", id);
	ret = iofd_replace(&dev, id);
	if (ret)
		vt_fatal("%s: device onto the adopted HWPT: %s", c->key, strerror(-ret));
	figure(c->key, retrieve_us, "us_retrieve");
	figure(c->key, adopt_us, "us_adopt");
	figure(c->key, retrieve_us + adopt_us, "us_retrieve_adopt");
	c->io.fd = dev.fd;
	return retrieve_us + adopt_us;
}

/*
 * What a VMM does without a handover: a new persistent HWPT and the same
 * areas mapped again (attaching the device is not timed, as for adopt).
 * Returns the time, or reports nothing with @c NULL (a warm-up).
 */
static double rebuild(struct config *c, int file)
{
	struct iommu_hwpt_alloc alloc = { .size = sizeof(alloc),
					  .flags = IOMMU_HWPT_ALLOC_PERSIST };
	struct config all = { "warm-up", 0, FILE_SIZE, { 0 } };
	struct iofd io;
	uint64_t t0;
	double us;
	int ret;

	ret = iofd_open(&io);
	if (!ret)
		ret = iofd_mock_device(&io);
	if (ret)
		vt_fatal("a fresh iommufd with a mock device: %s", strerror(-ret));
	alloc.dev_id = io.idev;
	alloc.pt_id = io.ioas;
	t0 = vt_now_ns();
	ret = ioctl(io.fd, IOMMU_HWPT_ALLOC, &alloc) ? -errno : 0;
	us = us_since(t0);
	if (!ret)
		ret = iofd_replace(&io, alloc.out_hwpt_id);
	if (ret)
		vt_fatal("persistent HWPT for the mock device: %s", strerror(-ret));
	t0 = vt_now_ns();
	ret = map_config(c ?: &all, io.fd, io.ioas, file);
	us += us_since(t0);
	if (ret)
		vt_fatal("%s: mapping again: %s", c ? c->key : all.key, strerror(-ret));
	close(io.fd);
	if (c)
		figure(c->key, us, "us_rebuild");
	return us;
}

static int stage2(void)
{
	int session = vt_session(SESSION, false), f2m, f1g, i, ret;
	uint32_t old_hwpt;
	char buf[16];

	if (!vt_cmdline_value("iofd_hwpt", buf, sizeof(buf)))
		vt_fatal("no iofd_hwpt= from the previous generation");
	old_hwpt = strtoul(buf, NULL, 0);
	f2m = luo_session_retrieve_fd(session, TOKEN_FILE_2M);
	f1g = luo_session_retrieve_fd(session, TOKEN_FILE_1G);
	if (f2m < 0 || f1g < 0)
		vt_fatal("retrieving the files: %s", strerror(-(f2m < 0 ? f2m : f1g)));
	/* Whatever a first pin of the retrieved files costs, none pays it. */
	rebuild(NULL, f2m);
	rebuild(NULL, f1g);

	for (i = 0; i < NR_CONFIGS; i++) {
		struct config *c = &configs[i];
		int file = c->granule == GVM_GIB ? f1g : f2m;
		double handed, mapped;

		handed = retrieve_adopt(c, session, i, old_hwpt);
		mapped = rebuild(c, file);
		if (handed > 0)
			figure(c->key, mapped / handed, "x_faster_than_rebuild");
	}
	ret = luo_session_finish(session);
	vt_result(!ret, "%d iommufds retrieved and adopted, session finished (%s)", NR_CONFIGS,
		  ret ? strerror(-ret) : "ok");
	for (i = 0; i < NR_CONFIGS; i++)
		close(configs[i].io.fd);
	return vt_finish();
}

int main(int argc, char **argv)
{
	int gen = vt_stage(argc, argv, 2);

	if (gen == 1)
		stage1();
	return stage2();
}
