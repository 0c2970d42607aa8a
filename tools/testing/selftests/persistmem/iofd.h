/* SPDX-License-Identifier: GPL-2.0 */
/*
 * iommufd on the mock IOMMU, for the persistmem vmtests and benchmarks: an
 * iommufd with one IOAS, a mock device, a persistent HWPT the device moves
 * onto, file mappings, and the adoption of a handed-over page table.
 * Every call returns 0 or -errno.
 */
#ifndef _PERSISTMEM_IOFD_H
#define _PERSISTMEM_IOFD_H

#include <stdint.h>

#include <linux/iommufd.h>

#include "../../../../drivers/iommu/iommufd/iommufd_test.h"

/* An iommufd, its IOAS, the mock device on it and the HWPT it is on. */
struct iofd {
	int fd;
	uint32_t ioas, stdev, idev, hwpt;
};

int iofd_test_cmd(int fd, struct iommu_test_cmd *cmd);
/* A new IOAS of @io->fd, into @io->ioas. */
int iofd_new_ioas(struct iofd *io);
/* Open /dev/iommu into @io->fd with one IOAS in @io->ioas. */
int iofd_open(struct iofd *io);
/* A mock device on @io->ioas, with an automatic HWPT filled from it. */
int iofd_mock_device(struct iofd *io);
/* A persistent HWPT on @io->ioas, with @io's mock device moved onto it. */
int iofd_persistent_hwpt(struct iofd *io);
/* Move @io's mock device onto HWPT @hwpt. */
int iofd_replace(struct iofd *io, uint32_t hwpt);
/* IOMMU_IOAS_MAP_FILE at a fixed IOVA, readable and writeable. */
int iofd_map_file(int iommufd, uint32_t ioas, int fd, uint64_t start,
		  uint64_t length, uint64_t iova);
int iofd_unmap(int iommufd, uint32_t ioas, uint64_t iova, uint64_t length);
/*
 * A persistent guest_memfd of @size, 2 MiB granules, MMAP and INIT_SHARED,
 * of VM @vm, mapped in @mem and at @iova of @io->ioas, one mapping per
 * granule (so that one can be unmapped alone); its fd.
 */
int iofd_map_gmem(struct iofd *io, int vm, uint64_t size, uint64_t iova, uint8_t **mem);
/*
 * IOMMU_HWPT_ALLOC adopting the page table of handed-over HWPT @hwpt_id,
 * for device @dev on IOAS @ioas; the new HWPT's ID in @out.
 */
int iofd_adopt(int iommufd, uint32_t dev, uint32_t ioas, uint32_t flags,
	       uint32_t hwpt_id, uint32_t reserved, uint32_t *out);

#endif
