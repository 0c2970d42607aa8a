// SPDX-License-Identifier: GPL-2.0
/*
 * iommufd_persist_kexec, iommufd_persist_cancel, iommufd_persist_unretrieved:
 * an iommufd preserved in a LUO session across kexec, on the mock IOMMU.
 *
 * Generation 1 of each builds the same iommufd: one IOAS mapping a
 * persistent guest_memfd of 2 MiB granules at two IOVAs (whole, and its
 * second half again), a memfd, and in iommufd_persist_kexec a persistent
 * guest_memfd of one 1 GiB granule at 4 GiB (the persistent mock domain's
 * aperture goes beyond 2 GiB); a mock device attached to a persistent
 * HWPT. Patterns are written through the files and read back through the
 * IOAS by a mock access. The files, then the iommufd, are preserved; after
 * that the memfd is unmapped from one IOVA and mapped at another, which
 * the next kernel must see as they are at the kexec.
 *
 * iommufd_persist_kexec: generation 2 retrieves the iommufd first, which
 * retrieves the files it maps; the files retrieved by token afterwards are
 * the same. The IOAS is back under its old ID with every area: a new mock
 * domain on it reads every pattern at every IOVA, the memfd's translation
 * matches the host's, mapping and unmapping work. Finishing the session
 * frees the old page table's chunk. It is all preserved again (a new
 * persistent HWPT) and generation 3 finds it again.
 *
 * iommufd_persist_cancel: a kexec whose last freeze fails (fault
 * injection) after the iommufd froze, while a thread maps and unmaps: the
 * thread sees nothing but success or EBUSY, the chunk is unpreserved, and
 * everything works; generation 2 then retrieves it as above.
 *
 * iommufd_persist_unretrieved: generation 1 preserves a second iommufd
 * like the first. Generation 2 retrieves the files and the second iommufd
 * but not the first; finishing the session gives the first one's page
 * table chunk back to the pool, closing the second without adopting its
 * table gives back that one's, and the files' memory can be moved to
 * another VM, as no pin of the old kernel survived.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/kexec.h>

#include "gmem_vm.h"
#include "iofd.h"
#include "persist_test.h"

#define SESSION		"iommufd-persist"
#define TOKEN_A		0x696f6661ull	/* guest_memfd, 2 MiB granules */
#define TOKEN_M		0x696f666dull	/* memfd */
#define TOKEN_G		0x696f6667ull	/* guest_memfd, one 1 GiB granule */
#define TOKEN_C		0x696f6663ull	/* guest_memfd whose freeze fails */
#define TOKEN_FD	0x696f6664ull	/* the iommufd */
#define TOKEN_FD2	0x696f6632ull	/* iommufd_persist_unretrieved's second */
#define SIZE_A		(16 * GVM_MIB)
#define SIZE_M		(4 * GVM_MIB)
#define SIZE_G		GVM_GIB
#define IOVA_A		(32 * GVM_MIB)
#define IOVA_A2		(64 * GVM_MIB)	/* second half of A */
#define IOVA_M		(128 * GVM_MIB)
#define IOVA_G		(4 * GVM_GIB)	/* above the 2 GiB of ordinary mock domains */
#define IOVA_SPARE	(256 * GVM_MIB)
#define IOVA_EARLY	(320 * GVM_MIB)	/* unmapped after the preserve */
#define IOVA_LATE	(384 * GVM_MIB)	/* mapped after the preserve */
#define SEED_A		0xa11ull
#define SEED_M		0x3e3ull
#define SEED_G		0x619ull
#define ESCAPED		"iommufd_cancel.escaped"
#define GMEM_FLAGS	(GUEST_MEMFD_FLAG_PERSIST | GUEST_MEMFD_FLAG_MMAP | \
			 GUEST_MEMFD_FLAG_INIT_SHARED)

enum mode { KEXEC, CANCEL, UNRETRIEVED };

static long long pool_sum(const char *name)
{
	return pt_node_stat(0, name) + pt_node_stat(1, name);
}

/*
 * Read @len bytes at @iova through a mock access and compare them with the
 * pattern of @seed at file offset @off: samples of 256 bytes every 64 KiB
 * and at both ends.
 */
static bool reads_back(struct iofd *io, uint64_t iova, uint64_t len,
		       uint64_t seed, uint64_t off, const char *what)
{
	static uint8_t got[256], want[256];
	struct iommu_test_cmd create = {
		.op = IOMMU_TEST_OP_CREATE_ACCESS,
		.id = io->ioas,
	};
	uint64_t pos, step = 64 * 1024, bad = UINT64_MAX;
	int ret;

	ret = iofd_test_cmd(io->fd, &create);
	if (ret)
		return vt_result(false, "%s: create access: %s", what, strerror(-ret));
	for (pos = 0; pos < len; pos = pos + step < len ? pos + step : len) {
		uint64_t at = pos + sizeof(got) > len ? len - sizeof(got) : pos;
		struct iommu_test_cmd rw = {
			.op = IOMMU_TEST_OP_ACCESS_RW,
			.id = create.create_access.out_access_fd,
			.access_rw = { .iova = iova + at, .length = sizeof(got),
				       .uptr = (uintptr_t)got },
		};

		ret = iofd_test_cmd(io->fd, &rw);
		vt_fill_pattern(want, sizeof(want), seed, off + at);
		if (ret || memcmp(got, want, sizeof(got))) {
			bad = at;
			break;
		}
		if (at != pos)
			break;
	}
	close(create.create_access.out_access_fd);
	return vt_result(bad == UINT64_MAX, "%s: %llu MiB at IOVA %#llx read through the IOAS%s",
			 what, (unsigned long long)(len >> 20), (unsigned long long)iova,
			 bad == UINT64_MAX ? "" : " WRONG");
}

static int filled_gmem(int vm, uint64_t size, uint64_t granule, uint64_t seed)
{
	int fd = gvm_create_gmem(vm, size, GMEM_FLAGS, granule, 0);

	if (fd < 0)
		vt_fatal("KVM_CREATE_GUEST_MEMFD %llu MiB: %s",
			 (unsigned long long)(size >> 20), strerror(-fd));
	vt_fill_file(fd, size, seed);
	return fd;
}

static int filled_memfd(void)
{
	int fd = memfd_create("iommufd-persist", 0);

	if (fd < 0 || ftruncate(fd, SIZE_M))
		vt_fatal("memfd: %s", strerror(errno));
	vt_fill_file(fd, SIZE_M, SEED_M);
	return fd;
}

/* The memfd's translation in @hwpt is the host's, page by page. */
static bool memfd_translates(struct iofd *io, int mfd, uint64_t iova)
{
	struct iommu_test_cmd check = {
		.op = IOMMU_TEST_OP_MD_CHECK_MAP,
		.id = io->hwpt,
		.check_map = { .iova = iova, .length = SIZE_M },
	};
	void *p = mmap(NULL, SIZE_M, PROT_READ, MAP_SHARED, mfd, 0);
	int ret;

	if (p == MAP_FAILED)
		return vt_result(false, "mmap memfd: %s", strerror(errno));
	check.check_map.uptr = (uintptr_t)p;
	ret = iofd_test_cmd(io->fd, &check);
	munmap(p, SIZE_M);
	return vt_result(!ret, "the memfd at IOVA %#llx translates as the host maps it (%s)",
			 (unsigned long long)iova, ret ? strerror(-ret) : "ok");
}

/* Every area of the IOAS reads its pattern; @gen names the generation. */
static void check_areas(struct iofd *io, bool with_g, int gen)
{
	char what[64];

	snprintf(what, sizeof(what), "gen %d: guest_memfd", gen);
	reads_back(io, IOVA_A, SIZE_A, SEED_A, 0, what);
	snprintf(what, sizeof(what), "gen %d: its second half again", gen);
	reads_back(io, IOVA_A2, SIZE_A / 2, SEED_A, SIZE_A / 2, what);
	snprintf(what, sizeof(what), "gen %d: memfd", gen);
	reads_back(io, IOVA_M, SIZE_M, SEED_M, 0, what);
	if (with_g) {
		snprintf(what, sizeof(what), "gen %d: 1 GiB granule", gen);
		reads_back(io, IOVA_G, SIZE_G, SEED_G, 0, what);
	}
}

/* Open the iommufd, its IOAS and mappings, the device on a persistent HWPT. */
static void build(struct iofd *io, int a, int m, int g)
{
	int ret = iofd_open(io);

	if (ret)
		vt_fatal("iommufd and IOAS: %s", strerror(-ret));
	ret = iofd_mock_device(io);
	if (!ret)
		ret = iofd_persistent_hwpt(io);
	if (ret)
		vt_fatal("mock device on a persistent HWPT: %s", strerror(-ret));
	ret = iofd_map_file(io->fd, io->ioas, a, 0, SIZE_A, IOVA_A);
	if (!ret)
		ret = iofd_map_file(io->fd, io->ioas, a, SIZE_A / 2, SIZE_A / 2, IOVA_A2);
	if (!ret)
		ret = iofd_map_file(io->fd, io->ioas, m, 0, SIZE_M, IOVA_M);
	if (!ret && g >= 0)
		ret = iofd_map_file(io->fd, io->ioas, g, 0, SIZE_G, IOVA_G);
	if (!ret)
		ret = iofd_map_file(io->fd, io->ioas, m, 0, SIZE_M, IOVA_EARLY);
	if (ret)
		vt_fatal("IOMMU_IOAS_MAP_FILE: %s", strerror(-ret));
}

/*
 * Preserving changes nothing yet: the iommufd maps and unmaps until the
 * kexec, and what the next kernel gets is what it is then. The memfd's
 * mapping at IOVA_EARLY goes, one at IOVA_LATE comes.
 */
static void still_mutable(struct iofd *io, int m, int gen)
{
	int ret = iofd_unmap(io->fd, io->ioas, IOVA_EARLY, SIZE_M);

	if (!ret)
		ret = iofd_map_file(io->fd, io->ioas, m, 0, SIZE_M, IOVA_LATE);
	vt_result(!ret, "gen %d: preserved, the iommufd still unmaps and maps (%s)", gen,
		  ret ? strerror(-ret) : "ok");
}

static void preserve(int session, int fd, uint64_t token, const char *what)
{
	int ret = luo_session_preserve_fd(session, fd, token);

	if (ret)
		vt_fatal("preserving %s: %s", what, strerror(-ret));
}

struct hammer {
	struct iofd *io;
	int mfd;
	bool stop;	/* __atomic */
	long ok, busy, other, last_err;
};

/* Map and unmap a spare IOVA until told to stop, counting the outcomes. */
static void *hammer_fn(void *arg)
{
	struct hammer *h = arg;

	while (!__atomic_load_n(&h->stop, __ATOMIC_RELAXED)) {
		int ret = iofd_map_file(h->io->fd, h->io->ioas, h->mfd, 0, SIZE_M, IOVA_SPARE);

		/* What was mapped is unmapped, once the thaw lets it. */
		while (!ret) {
			ret = iofd_unmap(h->io->fd, h->io->ioas, IOVA_SPARE, SIZE_M);
			if (ret != -EBUSY)
				break;
			h->busy++;
			ret = 0;
			usleep(1000);
		}
		if (!ret) {
			h->ok++;
		} else if (ret == -EBUSY) {
			h->busy++;
		} else if (ret != -ENOENT && ret != -EEXIST) {
			h->other++;
			h->last_err = ret;
		}
	}
	return NULL;
}

static void cancelled_kexec(struct iofd *io, int m)
{
	long long preserved0 = pool_sum("preserved_bytes");
	struct hammer h = { .io = io, .mfd = m };
	pthread_t thread;
	int ret, err;

	/* Freezes go in preservation order: A, memfd, iommufd, then C fails. */
	gvm_arm_failing_kexec(2, ESCAPED "=1");

	if (pthread_create(&thread, NULL, hammer_fn, &h))
		vt_fatal("pthread_create: %s", strerror(errno));
	usleep(100000);
	ret = reboot(RB_KEXEC);
	err = errno;
	usleep(100000);
	__atomic_store_n(&h.stop, true, __ATOMIC_RELAXED);
	pthread_join(thread, NULL);
	gvm_fail_off(GVM_FAIL_FREEZE);
	vt_result(ret < 0, "gen 1: reboot(KEXEC) fails when the last freeze fails (%s)",
		  ret < 0 ? strerror(err) : "returned 0");
	vt_result(vt_dmesg_contains("Freeze failed for token"),
		  "gen 1: the kernel log names the failed freeze");
	vt_result(h.other == 0 && h.ok > 0,
		  "gen 1: map/unmap during the freeze: %ld done, %ld EBUSY, %ld other errors (last %s)",
		  h.ok, h.busy, h.other, h.other ? strerror(-h.last_err) : "none");
	vt_result(pool_sum("preserved_bytes") == preserved0,
		  "gen 1: nothing stays preserved by the failed freeze (%+lld bytes)",
		  pool_sum("preserved_bytes") - preserved0);
	ret = syscall(__NR_kexec_file_load, -1, -1, 0UL, NULL, (unsigned long)KEXEC_FILE_UNLOAD);
	vt_result(!ret, "gen 1: kexec image unloaded (%s)", ret ? strerror(errno) : "ok");

	/* Thawed: the mappings work and change again. */
	ret = iofd_map_file(io->fd, io->ioas, m, 0, SIZE_M, IOVA_SPARE);
	vt_result(!ret, "gen 1: map after the cancelled kexec (%s)", ret ? strerror(-ret) : "ok");
	reads_back(io, IOVA_SPARE, SIZE_M, SEED_M, 0, "gen 1: new mapping");
	ret = iofd_unmap(io->fd, io->ioas, IOVA_SPARE, SIZE_M);
	vt_result(!ret, "gen 1: unmap after the cancelled kexec (%s)", ret ? strerror(-ret) : "ok");
	check_areas(io, false, 1);
}

static void stage1(enum mode mode)
{
	int vm, session, a, m, g = -1, c = -1;
	struct iofd io;
	char buf[32];

	if (vt_cmdline_value(ESCAPED, buf, sizeof(buf)))
		vt_fatal("gen 1 booted again: the kexec went through although a freeze failed");
	vm = gvm_create_vm(0);
	if (vm < 0)
		vt_fatal("KVM_CREATE_VM: %s", strerror(-vm));
	a = filled_gmem(vm, SIZE_A, 2 * GVM_MIB, SEED_A);
	m = filled_memfd();
	if (mode == KEXEC)
		g = filled_gmem(vm, SIZE_G, GVM_GIB, SEED_G);
	build(&io, a, m, g);
	check_areas(&io, g >= 0, 1);
	memfd_translates(&io, m, IOVA_M);

	session = vt_session(SESSION, true);
	preserve(session, a, TOKEN_A, "guest_memfd");
	preserve(session, m, TOKEN_M, "memfd");
	if (g >= 0)
		preserve(session, g, TOKEN_G, "1 GiB guest_memfd");
	preserve(session, io.fd, TOKEN_FD, "iommufd");
	still_mutable(&io, m, 1);
	if (mode == UNRETRIEVED) {
		struct iofd io2;

		build(&io2, a, m, -1);
		preserve(session, io2.fd, TOKEN_FD2, "second iommufd");
	}
	snprintf(buf, sizeof(buf), "iofd_hwpt=%u", io.hwpt);
	vt_next_args(buf);
	if (mode == CANCEL) {
		c = filled_gmem(vm, 2 * GVM_MIB, 2 * GVM_MIB, 0);
		preserve(session, c, TOKEN_C, "last guest_memfd");
		cancelled_kexec(&io, m);
	}
	vt_hold();
}

static int retrieve(int session, uint64_t token, const char *what)
{
	int fd = luo_session_retrieve_fd(session, token);

	if (fd < 0)
		vt_fatal("retrieving %s: %s", what, strerror(-fd));
	return fd;
}

/*
 * A mock device on a scratch IOAS adopts the handed-over page table into a
 * HWPT on the retrieved IOAS, after the requests that must fail, and moves
 * onto it: the adopted table is the IOAS's first domain.
 */
static void adopt(struct iofd *io, uint32_t old_hwpt, int gen)
{
	struct iommu_ioas_alloc scratch = { .size = sizeof(scratch) };
	struct iofd dev = { .fd = io->fd };
	long long alloc0;
	uint32_t id = 0;
	int ret;

	if (ioctl(io->fd, IOMMU_IOAS_ALLOC, &scratch))
		vt_fatal("scratch IOAS: %s", strerror(errno));
	dev.ioas = scratch.out_ioas_id;
	ret = iofd_mock_device(&dev);
	if (ret)
		vt_fatal("mock device on the scratch IOAS: %s", strerror(-ret));

	ret = iofd_adopt(io->fd, dev.idev, io->ioas, 0, old_hwpt, 0, &id);
	vt_result(ret == -EINVAL, "gen %d: adopting needs IOMMU_HWPT_ALLOC_PERSIST (%s)", gen,
		  strerror(-ret));
	ret = iofd_adopt(io->fd, dev.idev, io->ioas, IOMMU_HWPT_ALLOC_PERSIST, old_hwpt + 100, 0,
			 &id);
	vt_result(ret == -EINVAL, "gen %d: adopting an ID that was no HWPT (%s)", gen,
		  strerror(-ret));
	ret = iofd_adopt(io->fd, dev.idev, io->ioas, IOMMU_HWPT_ALLOC_PERSIST, old_hwpt, 1, &id);
	vt_result(ret == -EINVAL, "gen %d: adopting with a reserved field set (%s)", gen,
		  strerror(-ret));
	ret = iofd_adopt(io->fd, dev.idev, dev.ioas, IOMMU_HWPT_ALLOC_PERSIST, old_hwpt, 0, &id);
	vt_result(ret == -EINVAL, "gen %d: adopting onto another IOAS (%s)", gen, strerror(-ret));

	alloc0 = pool_sum("allocated_2m_bytes");
	ret = iofd_adopt(io->fd, dev.idev, io->ioas, IOMMU_HWPT_ALLOC_PERSIST, old_hwpt, 0, &id);
	vt_result(!ret && id == old_hwpt, "gen %d: HWPT %u adopts its page table (%s, ID %u)",
		  gen, old_hwpt, ret ? strerror(-ret) : "ok", id);
	if (ret)
		exit(vt_finish());
	vt_result(pool_sum("allocated_2m_bytes") == alloc0,
		  "gen %d: its table pages are the handed-over ones (pools %+lld bytes)", gen,
		  pool_sum("allocated_2m_bytes") - alloc0);
	ret = iofd_adopt(io->fd, dev.idev, io->ioas, IOMMU_HWPT_ALLOC_PERSIST, old_hwpt, 0, &id);
	vt_result(ret == -EINVAL, "gen %d: the page table is adopted once (%s)", gen,
		  strerror(-ret));

	io->stdev = dev.stdev;
	io->idev = dev.idev;
	ret = iofd_replace(io, old_hwpt);
	vt_result(!ret, "gen %d: the device moves onto the adopted HWPT (%s)", gen,
		  ret ? strerror(-ret) : "ok");
}

/* The IOAS is back under its old ID, translated by the adopted table. */
static void check_retrieved(struct iofd *io, int m, bool with_g, uint32_t old_hwpt, int gen)
{
	struct iommu_ioas_iova_ranges ranges = {
		.size = sizeof(ranges),
		.ioas_id = io->ioas,
	};
	char what[64];
	int ret;

	ret = ioctl(io->fd, IOMMU_IOAS_IOVA_RANGES, &ranges) ? -errno : 0;
	vt_result(!ret || ret == -EMSGSIZE, "gen %d: IOAS %u is there under its old ID (%s)",
		  gen, io->ioas, ret && ret != -EMSGSIZE ? strerror(-ret) : "ok");
	adopt(io, old_hwpt, gen);
	check_areas(io, with_g, gen);
	memfd_translates(io, m, IOVA_M);
	ret = iofd_map_file(io->fd, io->ioas, m, 0, SIZE_M, IOVA_SPARE);
	if (!ret)
		reads_back(io, IOVA_SPARE, SIZE_M, SEED_M, 0, "new mapping in the adopted table");
	if (!ret)
		ret = iofd_unmap(io->fd, io->ioas, IOVA_SPARE, SIZE_M);
	vt_result(!ret, "gen %d: map and unmap work on the retrieved IOAS (%s)", gen,
		  ret ? strerror(-ret) : "ok");
	/* The IOAS is as it was at the kexec, not at the preserve. */
	snprintf(what, sizeof(what), "gen %d: memfd mapped after the preserve", gen);
	reads_back(io, IOVA_LATE, SIZE_M, SEED_M, 0, what);
	ret = iofd_unmap(io->fd, io->ioas, IOVA_EARLY, SIZE_M);
	vt_result(ret == -ENOENT, "gen %d: unmapped after the preserve: nothing there (%s)", gen,
		  strerror(-ret));
	/* Ready for another preserve. */
	ret = iofd_unmap(io->fd, io->ioas, IOVA_LATE, SIZE_M);
	if (!ret)
		ret = iofd_map_file(io->fd, io->ioas, m, 0, SIZE_M, IOVA_EARLY);
	if (ret)
		vt_fatal("gen %d: back to the first generation's mappings: %s", gen,
			 strerror(-ret));
	/* The same area twice is refused: the old one is there. */
	ret = iofd_map_file(io->fd, io->ioas, m, 0, SIZE_M, IOVA_M);
	vt_result(ret == -EEXIST, "gen %d: the memfd's IOVA range is in use (%s)", gen,
		  strerror(-ret));
}

static int stage_retrieve(enum mode mode, int gen, uint32_t ioas)
{
	bool with_g = mode == KEXEC;
	int session = vt_session(SESSION, false), a, m, g = -1, c = -1, a2, ret;
	long long pending0, free0;
	struct iofd io = { .ioas = ioas };
	uint32_t old_hwpt;
	char buf[16];

	if (!vt_cmdline_value("iofd_hwpt", buf, sizeof(buf)))
		vt_fatal("no iofd_hwpt= from the previous generation");
	old_hwpt = strtoul(buf, NULL, 0);
	/* It takes its table chunk and, retrieving them, the guest_memfds' granules. */
	pending0 = pool_sum("pending_bytes");
	io.fd = retrieve(session, TOKEN_FD, "iommufd");
	vt_result(pending0 - pool_sum("pending_bytes") ==
		  (long long)(2 * GVM_MIB + SIZE_A + (with_g ? SIZE_G : 0)),
		  "gen %d: iommufd retrieved first, with its table chunk and its files (pending %+lld)",
		  gen, pool_sum("pending_bytes") - pending0);
	a = retrieve(session, TOKEN_A, "guest_memfd");
	m = retrieve(session, TOKEN_M, "memfd");
	if (with_g)
		g = retrieve(session, TOKEN_G, "1 GiB guest_memfd");
	a2 = luo_session_retrieve_fd(session, TOKEN_A);
	vt_result(a2 >= 0, "gen %d: a file the iommufd took is retrieved again (%s)", gen,
		  a2 < 0 ? strerror(-a2) : "ok");
	if (a2 >= 0)
		close(a2);
	/* Kept open: LUO's reference goes at finish, with the file's memory. */
	if (mode == CANCEL)
		c = retrieve(session, TOKEN_C, "last guest_memfd");
	check_retrieved(&io, m, with_g, old_hwpt, gen);

	pending0 = pool_sum("pending_bytes");
	free0 = pool_sum("free_bytes");
	ret = luo_session_finish(session);
	vt_result(!ret, "gen %d: session finished (%s)", gen, ret ? strerror(-ret) : "ok");
	vt_result(pool_sum("pending_bytes") == pending0 && pool_sum("free_bytes") == free0,
		  "gen %d: finish takes nothing from the retrieved iommufd (pending %+lld, free %+lld)",
		  gen, pool_sum("pending_bytes") - pending0, pool_sum("free_bytes") - free0);
	close(session);
	check_areas(&io, with_g, gen);

	if (mode != KEXEC || gen == 3) {
		if (c >= 0)
			close(c);
		close(a);
		close(m);
		if (g >= 0)
			close(g);
		close(io.fd);
		return vt_finish();
	}
	/* Again, with the adopted table, which the device still uses. */
	session = vt_session(SESSION, true);
	preserve(session, a, TOKEN_A, "guest_memfd");
	preserve(session, m, TOKEN_M, "memfd");
	preserve(session, g, TOKEN_G, "1 GiB guest_memfd");
	preserve(session, io.fd, TOKEN_FD, "iommufd");
	still_mutable(&io, m, gen);
	vt_hold();
}

static int stage_unretrieved(void)
{
	int session = vt_session(SESSION, false), a, m, fd2, vm, vm2, linked, moved, ret;
	long long pending0, free0;
	struct kvm_link_guest_memfd link = { .flags = KVM_LINK_GUEST_MEMFD_MOVE };

	a = retrieve(session, TOKEN_A, "guest_memfd");
	m = retrieve(session, TOKEN_M, "memfd");
	pending0 = pool_sum("pending_bytes");
	fd2 = retrieve(session, TOKEN_FD2, "second iommufd");
	vt_result(pending0 - pool_sum("pending_bytes") == 2 * GVM_MIB,
		  "gen 2: the second iommufd takes its table chunk (pending %+lld)",
		  pool_sum("pending_bytes") - pending0);
	pending0 = pool_sum("pending_bytes");
	free0 = pool_sum("free_bytes");
	ret = luo_session_finish(session);
	vt_result(!ret, "gen 2: session finished without retrieving the first iommufd (%s)",
		  ret ? strerror(-ret) : "ok");
	vt_result(pending0 - pool_sum("pending_bytes") == 2 * GVM_MIB &&
		  pool_sum("free_bytes") - free0 == 2 * GVM_MIB,
		  "gen 2: its page table's chunk went back to the pool (pending %+lld, free %+lld)",
		  pool_sum("pending_bytes") - pending0, pool_sum("free_bytes") - free0);
	free0 = pool_sum("free_bytes");
	close(fd2);
	vt_result(pool_sum("free_bytes") - free0 == 2 * GVM_MIB,
		  "gen 2: closing the second without adopting gives its chunk back (free %+lld)",
		  pool_sum("free_bytes") - free0);
	vt_result(!vt_dmesg_contains("iommufd_luo:"), "gen 2: the iommufd handler logged nothing");

	/* A move is refused while the memory may be pinned: none is. */
	vm = gvm_create_vm(0);
	vm2 = gvm_create_vm(0);
	if (vm < 0 || vm2 < 0)
		vt_fatal("KVM_CREATE_VM: %s", strerror(-(vm < 0 ? vm : vm2)));
	linked = gvm_link(vm, a);
	if (linked < 0)
		vt_fatal("KVM_LINK_GUEST_MEMFD: %s", strerror(-linked));
	link.fd = linked;
	moved = ioctl(vm2, KVM_LINK_GUEST_MEMFD, &link);
	vt_result(moved >= 0, "gen 2: no old pin keeps the guest_memfd from a move (%s)",
		  moved < 0 ? strerror(errno) : "ok");
	close(session);
	close(m);
	return vt_finish();
}

int main(int argc, char **argv)
{
	const char *name = basename(argv[0]);
	enum mode mode = !strcmp(name, "iommufd_persist_cancel") ? CANCEL :
			 !strcmp(name, "iommufd_persist_unretrieved") ? UNRETRIEVED : KEXEC;
	int gen = vt_stage(argc, argv, mode == KEXEC ? 3 : 2);

	if (gen == 1)
		stage1(mode);
	if (mode == UNRETRIEVED)
		return stage_unretrieved();
	/* The first IOAS of a fresh iommufd has ID 1, kept across kexec. */
	return stage_retrieve(mode, gen, 1);
}
