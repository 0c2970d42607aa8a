// SPDX-License-Identifier: GPL-2.0
/*
 * vfio_edu_dma, vfio_edu_dma_sm: device DMA through QEMU's VT-d, legacy
 * and scalable mode, as the kernel does it without a live update. QEMU's
 * edu device is bound to vfio-pci; its cdev is bound to an iommufd and
 * attached to an IOAS, which maps a memfd at IOVA_RAM. The device copies a
 * page of the memfd into its buffer and back to another IOVA of the memfd;
 * a copy to an IOVA nothing maps faults (the kernel logs a DMAR fault).
 * Then the same through a persistent HWPT (second stage, tables from the
 * persist_alloc pools, incoherent as QEMU's VT-d does not snoop its walks)
 * on a second IOAS mapping a persistent guest_memfd of 2 MiB granules:
 * the device moves onto it without detaching, DMA lands in the file both
 * ways, and an IOVA that file mapping no longer covers faults.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/pci_regs.h>

#include "edu.h"
#include "gmem_vm.h"
#include "iofd.h"
#include "vmtest.h"

#define MEMFD_SIZE	(2ull << 20)
#define IOVA_RAM	(16ull << 20)
#define IOVA_COPY	(IOVA_RAM + (1ull << 20))
#define IOVA_UNMAPPED	(64ull << 20)
#define SEED		0xed0ull
#define DMA_MS		5000
#define GMEM_SIZE	(4ull << 20)
#define IOVA_GMEM	(32ull << 20)

static bool dma(struct edu *e, uint64_t iova, bool to_ram, const char *what)
{
	int ret = edu_dma_start(e, iova, 0, EDU_DMA_MAX, to_ram);

	if (!ret)
		ret = edu_dma_wait(e, DMA_MS);
	return vt_result(!ret, "%s (%s)", what, ret ? strerror(-ret) : "ok");
}

static bool zeroed(const uint8_t *p, size_t len)
{
	while (len--)
		if (*p++)
			return false;
	return true;
}

/*
 * The device on a persistent HWPT of a second IOAS mapping a persistent
 * guest_memfd: a page copied from the file's first granule lands in its
 * second one.
 */
static void persistent_hwpt(struct iofd *io, struct edu *e)
{
	struct iommu_hwpt_alloc persist = { .size = sizeof(persist),
					    .flags = IOMMU_HWPT_ALLOC_PERSIST };
	unsigned int faults;
	uint32_t ioas = io->ioas, pt;
	uint8_t *mem;
	int vm, gfd, ret;

	ret = iofd_new_ioas(io);
	if (ret)
		vt_fatal("second IOAS: %s", strerror(-ret));
	persist.dev_id = e->devid;
	persist.pt_id = io->ioas;
	ret = ioctl(io->fd, IOMMU_HWPT_ALLOC, &persist) ? -errno : 0;
	vt_result(!ret, "persistent HWPT %u on VT-d (%s)", persist.out_hwpt_id,
		  ret ? strerror(-ret) : "ok");
	if (ret)
		return;

	vm = gvm_create_vm(0);
	if (vm < 0)
		vt_fatal("KVM_CREATE_VM: %s", strerror(-vm));
	/* One mapping per granule, so that the second can be unmapped alone */
	gfd = iofd_map_gmem(io, vm, GMEM_SIZE, IOVA_GMEM, &mem);
	if (gfd < 0)
		vt_fatal("persistent guest_memfd at IOVA %#llx: %s",
			 (unsigned long long)IOVA_GMEM, strerror(-gfd));
	vt_fill_pattern(mem, EDU_DMA_MAX, SEED + 1, 0);

	pt = persist.out_hwpt_id;
	ret = edu_attach(e, &pt);
	vt_result(!ret && pt == persist.out_hwpt_id,
		  "device replaced onto the persistent HWPT (%s)",
		  ret ? strerror(-ret) : "ok");
	faults = edu_dmar_faults();
	dma(e, IOVA_GMEM, false, "DMA from the first granule into the device");
	dma(e, IOVA_GMEM + (2 << 20), true, "DMA back into the second granule");
	vt_result(vt_check_pattern(mem + (2 << 20), EDU_DMA_MAX, SEED + 1, 0) < 0,
		  "the copy is in the guest_memfd where that IOVA maps");

	ret = iofd_unmap(io->fd, io->ioas, IOVA_GMEM + (2 << 20), 2 << 20);
	vt_result(!ret && edu_dmar_faults() == faults,
		  "second granule unmapped, no DMAR fault so far (%s)",
		  ret ? strerror(-ret) : "ok");
	memset(mem + (2 << 20), 0, EDU_DMA_MAX);
	dma(e, IOVA_GMEM + (2 << 20), true, "DMA to the unmapped granule runs");
	usleep(200000);
	vt_result(edu_dmar_faults() > faults && zeroed(mem + (2 << 20), EDU_DMA_MAX),
		  "it faults and does not reach the file");

	pt = ioas;
	ret = edu_attach(e, &pt);
	vt_result(!ret, "device back on the first IOAS (%s)", ret ? strerror(-ret) : "ok");
	munmap(mem, GMEM_SIZE);
	close(gfd);
	close(vm);
}

int main(int argc, char **argv)
{
	struct iofd io;
	struct edu e;
	uint32_t pt;
	uint16_t cmd = 0;
	uint8_t *ram;
	int mfd, ret;

	vt_stage(argc, argv, 1);
	ret = edu_open(&e);
	if (ret)
		vt_fatal("edu on vfio-pci: %s", strerror(-ret));
	ret = iofd_open(&io);
	if (ret)
		vt_fatal("iommufd: %s", strerror(-ret));
	ret = edu_bind(&e, io.fd);
	vt_result(!ret, "%s: cdev bound to the iommufd, device ID %u (%s)", e.bdf, e.devid,
		  ret ? strerror(-ret) : "ok");
	if (ret)
		return vt_finish();
	vt_result(edu_read32(&e, 0) == 0x010000ed, "edu identifies itself (%#x)",
		  edu_read32(&e, 0));
	ret = edu_command(&e, &cmd);
	vt_result(!ret && (cmd & PCI_COMMAND_MASTER), "bus master enabled (command %#x)", cmd);

	pt = io.ioas;
	ret = edu_attach(&e, &pt);
	vt_result(!ret, "attached to the IOAS, HWPT %u (%s)", pt, ret ? strerror(-ret) : "ok");
	mfd = memfd_create("edu", 0);
	if (mfd < 0 || ftruncate(mfd, MEMFD_SIZE))
		vt_fatal("memfd: %s", strerror(errno));
	ram = mmap(NULL, MEMFD_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (ram == MAP_FAILED)
		vt_fatal("mmap memfd: %s", strerror(errno));
	vt_fill_pattern(ram, EDU_DMA_MAX, SEED, 0);
	ret = iofd_map_file(io.fd, io.ioas, mfd, 0, MEMFD_SIZE, IOVA_RAM);
	if (ret)
		vt_fatal("IOMMU_IOAS_MAP_FILE: %s", strerror(-ret));

	dma(&e, IOVA_RAM, false, "DMA of a page from RAM into the device");
	dma(&e, IOVA_COPY, true, "DMA of the page back to another IOVA");
	vt_result(vt_check_pattern(ram + (1 << 20), EDU_DMA_MAX, SEED, 0) < 0,
		  "the copy is in the memfd where that IOVA maps");

	/* The device ends its copy whether it faulted or not: the log tells. */
	dma(&e, IOVA_UNMAPPED, true, "DMA to an IOVA nothing maps runs");
	usleep(200000);
	vt_result(vt_dmesg_contains("DMAR: [DMA Write"), "the kernel logs a DMAR write fault");

	persistent_hwpt(&io, &e);

	edu_close(&e);
	close(io.fd);
	return vt_finish();
}
