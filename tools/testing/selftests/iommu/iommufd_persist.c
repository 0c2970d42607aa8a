// SPDX-License-Identifier: GPL-2.0-only
/*
 * Persistent paging HWPTs (IOMMU_HWPT_ALLOC_PERSIST) on iommufd's mock
 * IOMMU, and IOMMU_IOAS_MAP_FILE of persistent guest_memfd. Needs
 * persist_alloc pools (persist_alloc= on the kernel command line): a
 * persistent HWPT's page table comes from them, which the pools' sysfs
 * counters show, and so does the memory of a persistent guest_memfd, which
 * needs /dev/kvm.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>

#define __EXPORTED_HEADERS__
#include <linux/kvm.h>
#include <linux/liveupdate.h>

#include "iommufd_utils.h"

#define SZ_2M		(2UL << 20)
#define SZ_1G		(512 * SZ_2M)
#define POOL_SYSFS	"/sys/kernel/mm/persist_alloc"

/* Sum of a counter over the pools' nodes, or -1. */
static long pool_sum(const char *attr)
{
	struct dirent *de;
	long sum = 0;
	DIR *dir;

	dir = opendir(POOL_SYSFS);
	if (!dir)
		return -1;
	while ((de = readdir(dir))) {
		char path[320], buf[32];
		ssize_t n;
		int fd;

		if (strncmp(de->d_name, "node", 4))
			continue;
		snprintf(path, sizeof(path), POOL_SYSFS "/%s/%s", de->d_name,
			 attr);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0) {
			sum = -1;
			break;
		}
		buf[n] = 0;
		sum += strtol(buf, NULL, 10);
	}
	closedir(dir);
	return sum;
}

static long pool_2m_bytes(void)
{
	return pool_sum("allocated_2m_bytes");
}

/* Whether shmem gives memfds 4 KiB pages only. */
static bool shmem_thp_off(void)
{
	char buf[128] = "";
	ssize_t n;
	int fd;

	fd = open("/sys/kernel/mm/transparent_hugepage/shmem_enabled", O_RDONLY);
	if (fd < 0)
		return true;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 && (strstr(buf, "[never]") || strstr(buf, "[deny]"));
}

static __attribute__((constructor)) void setup_sizes(void)
{
	PAGE_SIZE = sysconf(_SC_PAGE_SIZE);
	BUFFER_SIZE = 16 * PAGE_SIZE;
	buffer = mmap(NULL, BUFFER_SIZE, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert(buffer != MAP_FAILED);
	mfd_buffer = memfd_mmap(BUFFER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
				&mfd);
	assert(mfd_buffer != MAP_FAILED);
}

FIXTURE(persist)
{
	int fd;
	uint32_t ioas_id;
	uint32_t stdev_id;
	uint32_t hwpt_id;
	uint32_t device_id;
	long pool_base;
};

FIXTURE_SETUP(persist)
{
	self->pool_base = -1;
	self->fd = open("/dev/iommu", O_RDWR);
	ASSERT_NE(-1, self->fd);
	test_ioctl_ioas_alloc(&self->ioas_id);
	test_cmd_mock_domain(self->ioas_id, &self->stdev_id, &self->hwpt_id,
			     &self->device_id);
	self->pool_base = pool_2m_bytes();
	if (pool_sum("total_bytes") <= 0)
		SKIP(return, "no persist_alloc pools: boot with persist_alloc=");
}

FIXTURE_TEARDOWN(persist)
{
	teardown_iommufd(self->fd, _metadata);
	if (self->pool_base < 0)
		return;
	/* Everything the test allocated went back to the pools. */
	EXPECT_EQ(self->pool_base, pool_2m_bytes());
}

/* What a live update would not preserve: nesting and fault queues. */
TEST_F(persist, refused_with_nest_parent_or_fault_queue)
{
	struct iommu_hwpt_selftest data = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT };
	uint32_t hwpt_id = 0, parent_id;

	test_err_hwpt_alloc(EOPNOTSUPP, self->device_id, self->ioas_id,
			    IOMMU_HWPT_ALLOC_PERSIST |
				    IOMMU_HWPT_ALLOC_NEST_PARENT,
			    &hwpt_id);
	EXPECT_ERRNO(EOPNOTSUPP,
		     _test_cmd_hwpt_alloc(self->fd, self->device_id,
					  self->ioas_id, 0,
					  IOMMU_HWPT_ALLOC_PERSIST |
						  IOMMU_HWPT_FAULT_ID_VALID,
					  &hwpt_id, IOMMU_HWPT_DATA_NONE, NULL,
					  0));
	/* An unknown flag next to it is still refused. */
	test_err_hwpt_alloc(EOPNOTSUPP, self->device_id, self->ioas_id,
			    IOMMU_HWPT_ALLOC_PERSIST | (1U << 31), &hwpt_id);
	EXPECT_EQ(0, hwpt_id);

	/* A nested HWPT cannot be persistent. */
	test_cmd_hwpt_alloc(self->device_id, self->ioas_id,
			    IOMMU_HWPT_ALLOC_NEST_PARENT, &parent_id);
	test_err_hwpt_alloc_nested(EOPNOTSUPP, self->device_id, parent_id,
				   IOMMU_HWPT_ALLOC_PERSIST, &hwpt_id,
				   IOMMU_HWPT_DATA_SELFTEST, &data,
				   sizeof(data));
	test_ioctl_destroy(parent_id);
	EXPECT_EQ(0, hwpt_id);
	EXPECT_EQ(self->pool_base, pool_2m_bytes());
}

/*
 * IOMMU_HWPT_DATA_PERSIST_ADOPT takes over a page table a live update
 * handed over to an iommufd retrieved from a LUO session: an iommufd opened
 * here has none, whatever the ID, and a malformed request is refused first.
 */
static int adopt_alloc(int fd, uint32_t device_id, uint32_t ioas_id,
		       uint32_t flags, struct iommu_hwpt_persist_adopt *adopt,
		       uint32_t len, uint32_t *hwpt_id)
{
	return _test_cmd_hwpt_alloc(fd, device_id, ioas_id, 0, flags, hwpt_id,
				    IOMMU_HWPT_DATA_PERSIST_ADOPT, adopt, len);
}

TEST_F(persist, adopt_needs_a_retrieved_iommufd)
{
	struct iommu_hwpt_persist_adopt adopt = { .hwpt_id = self->hwpt_id };
	const uint32_t persist = IOMMU_HWPT_ALLOC_PERSIST;
	uint32_t hwpt_id = 0;

	EXPECT_ERRNO(EINVAL, adopt_alloc(self->fd, self->device_id,
					 self->ioas_id, persist, &adopt,
					 sizeof(adopt), &hwpt_id));
	/* Without IOMMU_HWPT_ALLOC_PERSIST */
	EXPECT_ERRNO(EINVAL, adopt_alloc(self->fd, self->device_id,
					 self->ioas_id, 0, &adopt,
					 sizeof(adopt), &hwpt_id));
	/* Data shorter than the structure's mandatory part */
	EXPECT_ERRNO(EINVAL, adopt_alloc(self->fd, self->device_id,
					 self->ioas_id, persist, &adopt, 2,
					 &hwpt_id));
	adopt.__reserved = 1;
	EXPECT_ERRNO(EINVAL, adopt_alloc(self->fd, self->device_id,
					 self->ioas_id, persist, &adopt,
					 sizeof(adopt), &hwpt_id));
	EXPECT_EQ(0, hwpt_id);
	EXPECT_EQ(self->pool_base, pool_2m_bytes());
}

/* The page table is in a pool granule for as long as the HWPT lives. */
TEST_F(persist, tables_come_from_the_pools)
{
	uint32_t hwpt_id, plain_id;

	test_cmd_hwpt_alloc(self->device_id, self->ioas_id, 0, &plain_id);
	EXPECT_EQ(self->pool_base, pool_2m_bytes());

	test_cmd_hwpt_alloc(self->device_id, self->ioas_id,
			    IOMMU_HWPT_ALLOC_PERSIST, &hwpt_id);
	EXPECT_EQ(self->pool_base + SZ_2M, pool_2m_bytes());

	test_ioctl_destroy(hwpt_id);
	test_ioctl_destroy(plain_id);
	EXPECT_EQ(self->pool_base, pool_2m_bytes());
}

/* Mappings made before and after the HWPT exists translate through it. */
TEST_F(persist, translates_memfd_mappings)
{
	static const uint64_t iovas[] = {
		MOCK_APERTURE_START,
		MOCK_APERTURE_START + 64 * SZ_2M + 5 * 4096,
		(uint64_t)MOCK_APERTURE_LAST + 1 - 16 * 4096,
	};
	struct iommu_test_cmd check = {
		.size = sizeof(check),
		.op = IOMMU_TEST_OP_MD_CHECK_MAP,
		.check_map = { .length = BUFFER_SIZE,
			       .uptr = (uintptr_t)mfd_buffer },
	};
	uint32_t hwpt_id;
	unsigned int i;

	memset(mfd_buffer, 0xa5, BUFFER_SIZE);
	test_ioctl_ioas_map_fixed_file(mfd, 0, BUFFER_SIZE, iovas[0]);
	test_cmd_hwpt_alloc(self->device_id, self->ioas_id,
			    IOMMU_HWPT_ALLOC_PERSIST, &hwpt_id);
	for (i = 1; i < ARRAY_SIZE(iovas); i++)
		test_ioctl_ioas_map_fixed_file(mfd, 0, BUFFER_SIZE, iovas[i]);

	check.id = hwpt_id;
	for (i = 0; i < ARRAY_SIZE(iovas); i++) {
		check.check_map.iova = iovas[i];
		ASSERT_EQ(0, ioctl(self->fd,
				   _IOMMU_TEST_CMD(IOMMU_TEST_OP_MD_CHECK_MAP),
				   &check));
	}
	/* An IOVA that was never mapped does not translate. */
	check.check_map.iova = MOCK_APERTURE_START + 32 * SZ_2M;
	EXPECT_ERRNO(EINVAL,
		     ioctl(self->fd, _IOMMU_TEST_CMD(IOMMU_TEST_OP_MD_CHECK_MAP),
			   &check));

	for (i = 0; i < ARRAY_SIZE(iovas); i++)
		test_ioctl_ioas_unmap(iovas[i], BUFFER_SIZE);
	test_ioctl_destroy(hwpt_id);
}

/*
 * A device moved onto a persistent HWPT: the HWPT translates the IOAS's
 * mapping and an access reads and writes the file's bytes there; the HWPT
 * stays while the device is attached.
 */
TEST_F(persist, attached_device_translates_and_reads)
{
	uint8_t out[512], in[512];
	struct iommu_test_cmd rw = {
		.size = sizeof(rw),
		.op = IOMMU_TEST_OP_ACCESS_RW,
		.access_rw = { .iova = MOCK_APERTURE_START + 100,
			       .length = sizeof(in) },
	};
	struct iommu_test_cmd check_map = {
		.size = sizeof(check_map),
		.op = IOMMU_TEST_OP_MD_CHECK_MAP,
		.check_map = { .iova = MOCK_APERTURE_START,
			       .length = BUFFER_SIZE,
			       .uptr = (uintptr_t)mfd_buffer },
	};
	uint32_t hwpt_id, access_id;
	unsigned int i;

	for (i = 0; i < sizeof(out); i++)
		out[i] = i * 7 + 3;
	memset(mfd_buffer, 0, BUFFER_SIZE);
	test_ioctl_ioas_map_fixed_file(mfd, 0, BUFFER_SIZE,
				       MOCK_APERTURE_START);
	test_cmd_hwpt_alloc(self->device_id, self->ioas_id,
			    IOMMU_HWPT_ALLOC_PERSIST, &hwpt_id);
	test_cmd_mock_domain_replace(self->stdev_id, hwpt_id);

	check_map.id = hwpt_id;
	ASSERT_EQ(0, ioctl(self->fd, _IOMMU_TEST_CMD(IOMMU_TEST_OP_MD_CHECK_MAP),
			   &check_map));

	test_cmd_create_access(self->ioas_id, &access_id, 0);
	rw.id = access_id;
	rw.access_rw.uptr = (uintptr_t)out;
	rw.access_rw.flags = MOCK_ACCESS_RW_WRITE;
	ASSERT_EQ(0, ioctl(self->fd, _IOMMU_TEST_CMD(IOMMU_TEST_OP_ACCESS_RW),
			   &rw));
	ASSERT_EQ(0, memcmp((uint8_t *)mfd_buffer + 100, out, sizeof(out)));
	rw.access_rw.uptr = (uintptr_t)in;
	rw.access_rw.flags = 0;
	ASSERT_EQ(0, ioctl(self->fd, _IOMMU_TEST_CMD(IOMMU_TEST_OP_ACCESS_RW),
			   &rw));
	ASSERT_EQ(0, memcmp(in, out, sizeof(in)));
	test_cmd_destroy_access(access_id);

	/* Still attached: the HWPT cannot go. */
	EXPECT_ERRNO(EBUSY, _test_ioctl_destroy(self->fd, hwpt_id));
	test_cmd_mock_domain_replace(self->stdev_id, self->ioas_id);
	test_ioctl_ioas_unmap(MOCK_APERTURE_START, BUFFER_SIZE);
	test_ioctl_destroy(hwpt_id);
}

/*
 * Unmapping a whole leaf table's span frees the table back to the arena,
 * which hands it out again: 600 map/unmap cycles at as many IOVAs stay in
 * the first granule instead of taking 600 tables.
 */
TEST_F(persist, reuses_freed_tables)
{
	const unsigned int nr = 600;
	uint32_t hwpt_id;
	unsigned int i;
	int fd2m;

	/* 4 KiB pages, mapped by a leaf table, not one 2 MiB IOPTE. */
	ASSERT_TRUE(shmem_thp_off());
	fd2m = memfd_create("2m", 0);
	ASSERT_LE(0, fd2m);
	ASSERT_EQ(0, fallocate(fd2m, 0, 0, SZ_2M));

	test_cmd_hwpt_alloc(self->device_id, self->ioas_id,
			    IOMMU_HWPT_ALLOC_PERSIST, &hwpt_id);
	for (i = 0; i < nr; i++) {
		test_ioctl_ioas_map_fixed_file(fd2m, 0, SZ_2M,
					       MOCK_APERTURE_START + i * SZ_2M);
		test_ioctl_ioas_unmap(MOCK_APERTURE_START + i * SZ_2M, SZ_2M);
	}
	EXPECT_EQ(self->pool_base + SZ_2M, pool_2m_bytes());

	/* Kept mappings do spill into a second granule. */
	for (i = 0; i < nr; i++)
		test_ioctl_ioas_map_fixed_file(fd2m, 0, PAGE_SIZE,
					       MOCK_APERTURE_START + i * SZ_2M);
	EXPECT_EQ(self->pool_base + 2 * SZ_2M, pool_2m_bytes());
	test_ioctl_ioas_unmap(MOCK_APERTURE_START, nr * SZ_2M);
	test_ioctl_destroy(hwpt_id);
	close(fd2m);
}

/* The mock's huge-page format and dirty tracking take the flag too. */
TEST_F(persist, huge_format_and_dirty_tracking)
{
	uint32_t huge_id, dirty_id;

	test_cmd_hwpt_alloc_iommupt(self->device_id, self->ioas_id,
				    IOMMU_HWPT_ALLOC_PERSIST, MOCK_IOMMUPT_HUGE,
				    &huge_id);
	test_cmd_hwpt_alloc(self->device_id, self->ioas_id,
			    IOMMU_HWPT_ALLOC_PERSIST |
				    IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
			    &dirty_id);
	EXPECT_EQ(self->pool_base + 2 * SZ_2M, pool_2m_bytes());
	test_ioctl_destroy(dirty_id);
	test_ioctl_destroy(huge_id);
}

/* Persistent guest_memfd of a DEFAULT VM, shared and mappable by the host. */
FIXTURE(persist_gmem)
{
	int fd;
	uint32_t ioas_id;
	uint32_t stdev_id;
	uint32_t hwpt_id;
	uint32_t device_id;
	uint32_t persist_id;
	int kvm;
	int vm;
	long pool_base;
};

FIXTURE_VARIANT(persist_gmem)
{
	uint64_t granule;
	uint64_t persist_flags;
};

FIXTURE_VARIANT_ADD(persist_gmem, granule_2m)
{
	.granule = SZ_2M,
};

FIXTURE_VARIANT_ADD(persist_gmem, granule_2m_hvo)
{
	.granule = SZ_2M,
	.persist_flags = GUEST_MEMFD_PERSIST_HVO,
};

FIXTURE_VARIANT_ADD(persist_gmem, granule_1g)
{
	.granule = SZ_1G,
};

FIXTURE_SETUP(persist_gmem)
{
	self->vm = -1;
	self->kvm = open("/dev/kvm", O_RDWR);
	if (self->kvm < 0)
		SKIP(return, "no /dev/kvm");
	if (pool_sum("total_bytes") <= 0)
		SKIP(return, "no persist_alloc pools: boot with persist_alloc=");
	self->vm = ioctl(self->kvm, KVM_CREATE_VM, 0);
	ASSERT_LE(0, self->vm);
	self->fd = open("/dev/iommu", O_RDWR);
	ASSERT_NE(-1, self->fd);
	test_ioctl_ioas_alloc(&self->ioas_id);
	test_cmd_mock_domain(self->ioas_id, &self->stdev_id, &self->hwpt_id,
			     &self->device_id);
	self->pool_base = pool_2m_bytes() + pool_sum("allocated_1g_bytes");
	test_cmd_hwpt_alloc(self->device_id, self->ioas_id,
			    IOMMU_HWPT_ALLOC_PERSIST, &self->persist_id);
}

FIXTURE_TEARDOWN(persist_gmem)
{
	if (self->kvm < 0 || self->vm < 0)
		return;
	teardown_iommufd(self->fd, _metadata);
	close(self->vm);
	close(self->kvm);
	EXPECT_EQ(self->pool_base,
		  pool_2m_bytes() + pool_sum("allocated_1g_bytes"));
}

static int gmem_create(int vm, uint64_t size, uint64_t granule,
		       uint64_t flags, uint64_t persist_flags)
{
	struct kvm_create_guest_memfd args = {
		.size = size,
		.flags = flags,
		.granule_size = granule,
		.persist_flags = persist_flags,
	};

	return ioctl(vm, KVM_CREATE_GUEST_MEMFD, &args);
}

#define GMEM_SHARED	(GUEST_MEMFD_FLAG_PERSIST | GUEST_MEMFD_FLAG_MMAP | \
			 GUEST_MEMFD_FLAG_INIT_SHARED)

/* The byte at file offset @off of pattern @seed. */
static uint8_t pattern(uint64_t off, unsigned int seed)
{
	return (off >> 12) * 31 + (off & 0xfff) + seed;
}

/*
 * Two granules mapped whole at two IOVAs: reads through the mapping give
 * what the VMM wrote through its own mapping of the file, and writes land
 * there. Where the host maps the file by page (2 MiB without HVO), the
 * mock domain's translation matches the host's.
 */
TEST_F(persist_gmem, map_file_reads_and_writes_the_granules)
{
	/* One 1 GiB granule: the pools have no room for more. */
	const uint64_t size = variant->granule == SZ_1G ? SZ_1G : 4 * SZ_2M;
	const uint64_t iova[2] = { SZ_1G, MOCK_APERTURE_START };
	struct iommu_test_cmd rw = {
		.size = sizeof(rw),
		.op = IOMMU_TEST_OP_ACCESS_RW,
	};
	uint8_t buf[4096];
	uint32_t access_id;
	unsigned int i, j;
	uint8_t *mem;
	int gmem;

	gmem = gmem_create(self->vm, size, variant->granule, GMEM_SHARED,
			   variant->persist_flags);
	ASSERT_LE(0, gmem);
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, gmem, 0);
	ASSERT_NE(MAP_FAILED, mem);
	/* Every granule allocated; the pages read below written. */
	for (i = 0; i < size; i += 4096)
		mem[i] = pattern(i, 1);
	for (i = 0; i < 3; i++) {
		uint64_t off = (i * ((variant->granule - sizeof(buf)) / 2)) &
			       ~4095ULL;

		for (j = 0; j < sizeof(buf); j++)
			mem[off + j] = pattern(off + j, 1);
	}

	/* The first granule at 1 GiB, all at the aperture's start. */
	test_ioctl_ioas_map_fixed_file(gmem, 0, variant->granule, iova[0]);
	if (variant->granule == SZ_2M)
		test_ioctl_ioas_map_fixed_file(gmem, 0, size, iova[1]);
	EXPECT_EQ(self->pool_base + size + SZ_2M,
		  pool_2m_bytes() + pool_sum("allocated_1g_bytes"));

	if (variant->granule == SZ_2M && !variant->persist_flags) {
		struct iommu_test_cmd check = {
			.size = sizeof(check),
			.op = IOMMU_TEST_OP_MD_CHECK_MAP,
			.id = self->persist_id,
			.check_map = { .iova = iova[1], .length = size,
				       .uptr = (uintptr_t)mem },
		};

		ASSERT_EQ(0, ioctl(self->fd,
				   _IOMMU_TEST_CMD(IOMMU_TEST_OP_MD_CHECK_MAP),
				   &check));
	}

	test_cmd_create_access(self->ioas_id, &access_id, 0);
	rw.id = access_id;

	/*
	 * The last two granules alone, from their offset in the file: the
	 * first byte of each page is that page's.
	 */
	if (variant->granule == SZ_2M) {
		const uint64_t iova2 = MOCK_APERTURE_START + 64 * SZ_2M;

		test_ioctl_ioas_map_fixed_file(gmem, size / 2, size / 2, iova2);
		for (i = 0; i < size / 2; i += 4096) {
			rw.access_rw.iova = iova2 + i;
			rw.access_rw.uptr = (uintptr_t)buf;
			rw.access_rw.length = 1;
			rw.access_rw.flags = 0;
			ASSERT_EQ(0, ioctl(self->fd,
					   _IOMMU_TEST_CMD(IOMMU_TEST_OP_ACCESS_RW),
					   &rw));
			ASSERT_EQ(pattern(size / 2 + i, 1), buf[0]);
		}
		test_ioctl_ioas_unmap(iova2, size / 2);
	}

	rw.access_rw.uptr = (uintptr_t)buf;
	rw.access_rw.length = sizeof(buf);
	/* First, middle and last page of the first granule. */
	for (i = 0; i < 3; i++) {
		uint64_t off = (i * ((variant->granule - sizeof(buf)) / 2)) &
			       ~4095ULL;

		rw.access_rw.iova = iova[0] + off;
		rw.access_rw.flags = 0;
		ASSERT_EQ(0, ioctl(self->fd,
				   _IOMMU_TEST_CMD(IOMMU_TEST_OP_ACCESS_RW),
				   &rw));
		for (j = 0; j < sizeof(buf); j++)
			ASSERT_EQ(pattern(off + j, 1), buf[j]);
		for (j = 0; j < sizeof(buf); j++)
			buf[j] = pattern(off + j, 2);
		rw.access_rw.flags = MOCK_ACCESS_RW_WRITE;
		ASSERT_EQ(0, ioctl(self->fd,
				   _IOMMU_TEST_CMD(IOMMU_TEST_OP_ACCESS_RW),
				   &rw));
		for (j = 0; j < sizeof(buf); j++)
			ASSERT_EQ(pattern(off + j, 2), mem[off + j]);
	}
	test_cmd_destroy_access(access_id);

	test_ioctl_ioas_unmap(iova[0], variant->granule);
	if (variant->granule == SZ_2M)
		test_ioctl_ioas_unmap(iova[1], size);
	munmap(mem, size);
	close(gmem);
}

/* Parts of granules are refused and leave nothing mapped. */
TEST_F(persist_gmem, map_file_takes_whole_granules)
{
	const uint64_t size = 2 * variant->granule;
	__u64 iova = SZ_1G;
	int gmem;

	gmem = gmem_create(self->vm, size, variant->granule, GMEM_SHARED,
			   variant->persist_flags);
	ASSERT_LE(0, gmem);

	EXPECT_ERRNO(EINVAL, _test_ioctl_ioas_map_file(self->fd, self->ioas_id,
						       gmem, 4096,
						       variant->granule, &iova,
						       IOMMU_IOAS_MAP_FIXED_IOVA |
						       IOMMU_IOAS_MAP_READABLE));
	EXPECT_ERRNO(EINVAL, _test_ioctl_ioas_map_file(self->fd, self->ioas_id,
						       gmem, 0,
						       variant->granule - 4096,
						       &iova,
						       IOMMU_IOAS_MAP_FIXED_IOVA |
						       IOMMU_IOAS_MAP_READABLE));
	EXPECT_ERRNO(EINVAL, _test_ioctl_ioas_map_file(self->fd, self->ioas_id,
						       gmem, variant->granule,
						       variant->granule + 4096,
						       &iova,
						       IOMMU_IOAS_MAP_FIXED_IOVA |
						       IOMMU_IOAS_MAP_READABLE));
	/* Beyond the file's end. */
	EXPECT_ERRNO(EINVAL, _test_ioctl_ioas_map_file(self->fd, self->ioas_id,
						       gmem, size,
						       variant->granule, &iova,
						       IOMMU_IOAS_MAP_FIXED_IOVA |
						       IOMMU_IOAS_MAP_READABLE));
	/* Nothing was mapped, nothing allocated but the HWPT's table. */
	EXPECT_ERRNO(ENOENT, _test_ioctl_ioas_unmap(self->fd, self->ioas_id,
						    SZ_1G, size, NULL));
	EXPECT_EQ(self->pool_base + SZ_2M,
		  pool_2m_bytes() + pool_sum("allocated_1g_bytes"));

	/* The same file maps in whole granules. */
	test_ioctl_ioas_map_fixed_file(gmem, 0, variant->granule, SZ_1G);
	test_ioctl_ioas_unmap(SZ_1G, variant->granule);
	close(gmem);
}

/*
 * Memory the host could not fault in cannot be pinned either: a file
 * without INIT_SHARED, one out of the direct map, a guest_memfd that is
 * not persistent.
 */
TEST_F(persist_gmem, map_file_refuses_what_the_host_cannot_map)
{
	const uint64_t granule = variant->granule;
	__u64 iova = SZ_1G;
	int gmem;

	gmem = gmem_create(self->vm, granule, granule,
			   GUEST_MEMFD_FLAG_PERSIST, variant->persist_flags);
	ASSERT_LE(0, gmem);
	test_err_ioctl_ioas_map_file(EINVAL, gmem, 0, granule, &iova);
	close(gmem);

	/* The same file with INIT_SHARED maps. */
	gmem = gmem_create(self->vm, granule, granule, GMEM_SHARED,
			   variant->persist_flags);
	ASSERT_LE(0, gmem);
	test_ioctl_ioas_map_fixed_file(gmem, 0, granule, SZ_1G);
	test_ioctl_ioas_unmap(SZ_1G, granule);
	close(gmem);

	gmem = gmem_create(self->vm, granule, granule, GMEM_SHARED,
			   variant->persist_flags |
				   GUEST_MEMFD_PERSIST_NO_DIRECT_MAP);
	if (gmem >= 0) {
		test_err_ioctl_ioas_map_file(EOPNOTSUPP, gmem, 0, granule,
					     &iova);
		close(gmem);
	}

	gmem = gmem_create(self->vm, granule, 0, GUEST_MEMFD_FLAG_MMAP |
			   GUEST_MEMFD_FLAG_INIT_SHARED, 0);
	ASSERT_LE(0, gmem);
	test_err_ioctl_ioas_map_file(EINVAL, gmem, 0, granule, &iova);
	close(gmem);

	EXPECT_EQ(self->pool_base + SZ_2M,
		  pool_2m_bytes() + pool_sum("allocated_1g_bytes"));
}

/*
 * Memory an IOAS maps for DMA cannot be moved to another VM
 * (KVM_LINK_GUEST_MEMFD_MOVE: EBUSY, nothing changes) until it is
 * unmapped; once moved, the old file cannot be mapped again (EPERM).
 */
TEST_F(persist_gmem, map_file_keeps_the_memory_from_a_move)
{
	const uint64_t granule = variant->granule;
	struct kvm_link_guest_memfd link = {
		.flags = KVM_LINK_GUEST_MEMFD_MOVE,
	};
	__u64 iova = SZ_1G;
	int gmem, vm2, moved;
	uint8_t *mem;

	gmem = gmem_create(self->vm, granule, granule, GMEM_SHARED,
			   variant->persist_flags);
	ASSERT_LE(0, gmem);
	mem = mmap(NULL, granule, PROT_READ | PROT_WRITE, MAP_SHARED, gmem, 0);
	ASSERT_NE(MAP_FAILED, mem);
	mem[0] = 0x5a;
	test_ioctl_ioas_map_fixed_file(gmem, 0, granule, SZ_1G);

	vm2 = ioctl(self->kvm, KVM_CREATE_VM, 0);
	ASSERT_LE(0, vm2);
	link.fd = gmem;
	EXPECT_EQ(-1, ioctl(vm2, KVM_LINK_GUEST_MEMFD, &link));
	EXPECT_EQ(EBUSY, errno);
	/* The old VM still has its memory, and the IOAS its mapping. */
	EXPECT_EQ(0x5a, mem[0]);
	test_ioctl_ioas_unmap(SZ_1G, granule);

	moved = ioctl(vm2, KVM_LINK_GUEST_MEMFD, &link);
	ASSERT_LE(0, moved);
	test_err_ioctl_ioas_map_file(EPERM, gmem, 0, granule, &iova);
	test_ioctl_ioas_map_fixed_file(moved, 0, granule, SZ_1G);
	test_ioctl_ioas_unmap(SZ_1G, granule);

	munmap(mem, granule);
	close(moved);
	close(gmem);
	close(vm2);
}

/*
 * Preserving an iommufd in a LUO session: what it holds must be describable
 * by file token and persistent page table, or preserve refuses it and
 * nothing changes. Freeze and retrieve need a kexec: the persistmem vmtests
 * iommufd_persist_kexec, _cancel and _unretrieved run them.
 */
FIXTURE(persist_luo)
{
	int fd;
	uint32_t ioas_id;
	uint32_t stdev_id;
	uint32_t hwpt_id;
	uint32_t device_id;
	uint32_t persist_id;
	int luo;
	int session;
	long pool_base;
};

#define TOKEN_MFD	0x6d6664ULL
#define TOKEN_IOMMUFD	0x696f6d6dULL

static int luo_session(int luo, const char *what)
{
	struct liveupdate_ioctl_create_session args = { .size = sizeof(args) };

	snprintf((char *)args.name, sizeof(args.name), "iommufd-%s-%d", what,
		 getpid());
	if (ioctl(luo, LIVEUPDATE_IOCTL_CREATE_SESSION, &args))
		return -1;
	return args.fd;
}

/* 0, or the errno of LIVEUPDATE_SESSION_PRESERVE_FD. */
static int luo_preserve(int session, int fd, uint64_t token)
{
	struct liveupdate_session_preserve_fd args = {
		.size = sizeof(args),
		.fd = fd,
		.token = token,
	};

	return ioctl(session, LIVEUPDATE_SESSION_PRESERVE_FD, &args) ? errno : 0;
}

FIXTURE_SETUP(persist_luo)
{
	self->pool_base = -1;
	self->session = -1;
	self->luo = open("/dev/liveupdate", O_RDWR);
	if (self->luo < 0)
		SKIP(return, "no /dev/liveupdate: boot with liveupdate=on");
	if (pool_sum("total_bytes") <= 0)
		SKIP(return, "no persist_alloc pools: boot with persist_alloc=");
	self->session = luo_session(self->luo, "test");
	ASSERT_LE(0, self->session);
	self->fd = open("/dev/iommu", O_RDWR);
	ASSERT_NE(-1, self->fd);
	self->pool_base = pool_2m_bytes();
	test_ioctl_ioas_alloc(&self->ioas_id);
	test_cmd_mock_domain(self->ioas_id, &self->stdev_id, &self->hwpt_id,
			     &self->device_id);
	test_cmd_hwpt_alloc(self->device_id, self->ioas_id,
			    IOMMU_HWPT_ALLOC_PERSIST, &self->persist_id);
	/* The device moves on; its automatic, non-persistent HWPT goes. */
	test_cmd_mock_domain_replace(self->stdev_id, self->persist_id);
	memset(mfd_buffer, 0x3c, BUFFER_SIZE);
}

FIXTURE_TEARDOWN(persist_luo)
{
	if (self->session >= 0)
		close(self->session);
	if (self->pool_base >= 0) {
		teardown_iommufd(self->fd, _metadata);
		/* Everything the test allocated went back to the pools. */
		EXPECT_EQ(self->pool_base, pool_2m_bytes());
	}
	if (self->luo >= 0)
		close(self->luo);
}

/* Whether the persistent HWPT still translates @iova to the memfd. */
static int check_mfd_map(int fd, uint32_t hwpt_id, uint64_t iova)
{
	struct iommu_test_cmd check = {
		.size = sizeof(check),
		.op = IOMMU_TEST_OP_MD_CHECK_MAP,
		.id = hwpt_id,
		.check_map = { .iova = iova, .length = BUFFER_SIZE,
			       .uptr = (uintptr_t)mfd_buffer },
	};

	return ioctl(fd, _IOMMU_TEST_CMD(IOMMU_TEST_OP_MD_CHECK_MAP), &check);
}

/*
 * A persistent HWPT and memfd mappings, the memfd preserved first: the
 * iommufd is preserved, keeps working until the kexec, and cannot be
 * preserved a second time.
 */
TEST_F(persist_luo, preserves_file_mappings_and_persistent_hwpts)
{
	int other;

	test_ioctl_ioas_map_fixed_file(mfd, 0, BUFFER_SIZE, MOCK_APERTURE_START);
	test_ioctl_ioas_map_fixed_file(mfd, 0, BUFFER_SIZE, SZ_1G);
	ASSERT_EQ(0, luo_preserve(self->session, mfd, TOKEN_MFD));
	ASSERT_EQ(0, luo_preserve(self->session, self->fd, TOKEN_IOMMUFD));

	/* Preserved is not frozen: it maps, translates and unmaps. */
	test_ioctl_ioas_map_fixed_file(mfd, 0, BUFFER_SIZE, SZ_1G / 2);
	EXPECT_EQ(0, check_mfd_map(self->fd, self->persist_id, SZ_1G / 2));
	EXPECT_EQ(0, check_mfd_map(self->fd, self->persist_id, SZ_1G));
	test_ioctl_ioas_unmap(SZ_1G / 2, BUFFER_SIZE);

	/* One file, one session. */
	other = luo_session(self->luo, "other");
	ASSERT_LE(0, other);
	EXPECT_EQ(EBUSY, luo_preserve(other, self->fd, TOKEN_IOMMUFD));
	close(other);

	test_ioctl_ioas_unmap(MOCK_APERTURE_START, BUFFER_SIZE);
	test_ioctl_ioas_unmap(SZ_1G, BUFFER_SIZE);
}

/*
 * An area of a file that is not preserved in the session, or is preserved
 * in another one, could not be named after kexec: -EINVAL, and the token
 * is still free for the preserve that works once the file is in.
 */
TEST_F(persist_luo, refuses_a_file_not_in_the_session)
{
	int other;

	test_ioctl_ioas_map_fixed_file(mfd, 0, BUFFER_SIZE, SZ_1G);
	EXPECT_EQ(EINVAL, luo_preserve(self->session, self->fd, TOKEN_IOMMUFD));

	other = luo_session(self->luo, "other");
	ASSERT_LE(0, other);
	ASSERT_EQ(0, luo_preserve(other, mfd, TOKEN_MFD));
	EXPECT_EQ(EINVAL, luo_preserve(self->session, self->fd, TOKEN_IOMMUFD));
	close(other);

	ASSERT_EQ(0, luo_preserve(self->session, mfd, TOKEN_MFD));
	EXPECT_EQ(0, luo_preserve(self->session, self->fd, TOKEN_IOMMUFD));
	EXPECT_EQ(0, check_mfd_map(self->fd, self->persist_id, SZ_1G));
	test_ioctl_ioas_unmap(SZ_1G, BUFFER_SIZE);
}

/* Memory mapped by user address has no file to name: -EINVAL. */
TEST_F(persist_luo, refuses_user_memory)
{
	test_ioctl_ioas_map_fixed(buffer, BUFFER_SIZE, SZ_1G);
	EXPECT_EQ(EINVAL, luo_preserve(self->session, self->fd, TOKEN_IOMMUFD));
	test_ioctl_ioas_unmap(SZ_1G, BUFFER_SIZE);
	EXPECT_EQ(0, luo_preserve(self->session, self->fd, TOKEN_IOMMUFD));
}

/* A HWPT whose page table would not survive the kexec: -EINVAL. */
TEST_F(persist_luo, refuses_a_hwpt_that_is_not_persistent)
{
	uint32_t plain_id;

	test_cmd_hwpt_alloc(self->device_id, self->ioas_id, 0, &plain_id);
	EXPECT_EQ(EINVAL, luo_preserve(self->session, self->fd, TOKEN_IOMMUFD));
	test_ioctl_destroy(plain_id);
	EXPECT_EQ(0, luo_preserve(self->session, self->fd, TOKEN_IOMMUFD));
}

/* An emulated device's access pins pages outside any HWPT: -EOPNOTSUPP. */
TEST_F(persist_luo, refuses_an_access)
{
	uint32_t access_fd;

	test_cmd_create_access(self->ioas_id, &access_fd, 0);
	EXPECT_EQ(EOPNOTSUPP,
		  luo_preserve(self->session, self->fd, TOKEN_IOMMUFD));
	close(access_fd);
	EXPECT_EQ(0, luo_preserve(self->session, self->fd, TOKEN_IOMMUFD));
}

TEST_HARNESS_MAIN
