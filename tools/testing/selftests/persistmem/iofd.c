// SPDX-License-Identifier: GPL-2.0
/*
 * iommufd on the mock IOMMU for the persistmem vmtests (see iofd.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gmem_vm.h"

#include "iofd.h"

int iofd_test_cmd(int fd, struct iommu_test_cmd *cmd)
{
	cmd->size = sizeof(*cmd);
	return ioctl(fd, IOMMU_TEST_CMD, cmd) ? -errno : 0;
}

int iofd_new_ioas(struct iofd *io)
{
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };

	if (ioctl(io->fd, IOMMU_IOAS_ALLOC, &alloc))
		return -errno;
	io->ioas = alloc.out_ioas_id;
	return 0;
}

int iofd_open(struct iofd *io)
{
	int err;

	io->fd = open("/dev/iommu", O_RDWR);
	if (io->fd < 0)
		return -errno;
	err = iofd_new_ioas(io);
	if (err) {
		close(io->fd);
		io->fd = -1;
	}
	return err;
}

int iofd_mock_device(struct iofd *io)
{
	struct iommu_test_cmd cmd = {
		.op = IOMMU_TEST_OP_MOCK_DOMAIN,
		.id = io->ioas,
	};
	int ret = iofd_test_cmd(io->fd, &cmd);

	io->stdev = cmd.mock_domain.out_stdev_id;
	io->idev = cmd.mock_domain.out_idev_id;
	io->hwpt = cmd.mock_domain.out_hwpt_id;
	return ret;
}

int iofd_replace(struct iofd *io, uint32_t hwpt)
{
	struct iommu_test_cmd replace = {
		.op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
		.id = io->stdev,
		.mock_domain_replace = { .pt_id = hwpt },
	};
	int ret = iofd_test_cmd(io->fd, &replace);

	if (!ret)
		io->hwpt = hwpt;
	return ret;
}

int iofd_persistent_hwpt(struct iofd *io)
{
	struct iommu_hwpt_alloc alloc = {
		.size = sizeof(alloc),
		.flags = IOMMU_HWPT_ALLOC_PERSIST,
		.dev_id = io->idev,
		.pt_id = io->ioas,
	};

	if (ioctl(io->fd, IOMMU_HWPT_ALLOC, &alloc))
		return -errno;
	return iofd_replace(io, alloc.out_hwpt_id);
}

int iofd_map_file(int iommufd, uint32_t ioas, int fd, uint64_t start,
		  uint64_t length, uint64_t iova)
{
	struct iommu_ioas_map_file map = {
		.size = sizeof(map),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = ioas,
		.fd = fd,
		.start = start,
		.length = length,
		.iova = iova,
	};

	return ioctl(iommufd, IOMMU_IOAS_MAP_FILE, &map) ? -errno : 0;
}

int iofd_unmap(int iommufd, uint32_t ioas, uint64_t iova, uint64_t length)
{
	struct iommu_ioas_unmap cmd = {
		.size = sizeof(cmd),
		.ioas_id = ioas,
		.iova = iova,
		.length = length,
	};

	return ioctl(iommufd, IOMMU_IOAS_UNMAP, &cmd) ? -errno : 0;
}

int iofd_adopt(int iommufd, uint32_t dev, uint32_t ioas, uint32_t flags,
	       uint32_t hwpt_id, uint32_t reserved, uint32_t *out)
{
	struct iommu_hwpt_persist_adopt data = {
		.hwpt_id = hwpt_id,
		.__reserved = reserved,
	};
	struct iommu_hwpt_alloc alloc = {
		.size = sizeof(alloc),
		.flags = flags,
		.dev_id = dev,
		.pt_id = ioas,
		.data_type = IOMMU_HWPT_DATA_PERSIST_ADOPT,
		.data_len = sizeof(data),
		.data_uptr = (uintptr_t)&data,
	};

	if (ioctl(iommufd, IOMMU_HWPT_ALLOC, &alloc))
		return -errno;
	*out = alloc.out_hwpt_id;
	return 0;
}

int iofd_map_gmem(struct iofd *io, int vm, uint64_t size, uint64_t iova, uint8_t **mem)
{
	const uint64_t granule = 2ull << 20;
	uint64_t off;
	void *map;
	int fd, ret;

	fd = gvm_create_gmem(vm, size, GUEST_MEMFD_FLAG_PERSIST | GUEST_MEMFD_FLAG_MMAP |
			     GUEST_MEMFD_FLAG_INIT_SHARED, granule, 0);
	if (fd < 0)
		return fd;
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ret = map == MAP_FAILED ? -errno : 0;
	for (off = 0; !ret && off < size; off += granule)
		ret = iofd_map_file(io->fd, io->ioas, fd, off, granule, iova + off);
	if (ret) {
		if (map != MAP_FAILED)
			munmap(map, size);
		close(fd);
		return ret;
	}
	*mem = map;
	return fd;
}
