/* SPDX-License-Identifier: GPL-2.0 */
/*
 * QEMU's edu device (PCI 1234:11e8) driven from user space through a VFIO
 * device cdev bound to an iommufd: the device copies between its 4 KiB
 * buffer (EDU_BUF in its DMA address space) and IOVAs of the domain it is
 * attached to. Its DMA addresses are 28 bits wide. Every call returns 0 or
 * -errno.
 */
#ifndef _PERSISTMEM_EDU_H
#define _PERSISTMEM_EDU_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/iommufd.h>

#include "iofd.h"

#define EDU_BUF		0x40000ull	/* the device's buffer */
#define EDU_BUF_SIZE	4096u
/*
 * QEMU 7.2 stops (hw_error) on a copy that ends at the end of the buffer:
 * copies stay below it.
 */
#define EDU_DMA_MAX	2048u
#define EDU_DMA_LIMIT	(256ull << 20)	/* IOVAs it can reach: 28 bits */

struct edu {
	char bdf[16];			/* 0000:00:03.0 */
	int fd;				/* VFIO device cdev */
	uint32_t devid;			/* its iommufd device ID */
	uint8_t *bar;			/* BAR0, accessed once per read or write */
	uint64_t bar_size;
	uint64_t config;		/* offset of the config region */
};

/* Bind the edu device to vfio-pci and open its cdev into @e->fd. */
int edu_open(struct edu *e);
/* The same for the @nth edu device by PCI address (edu_open(): 0). */
int edu_open_nth(struct edu *e, unsigned int nth);
/* Bind the @nth edu device to vfio-pci, without opening its cdev. */
int edu_probe_vfio(struct edu *e, unsigned int nth);
/*
 * A device file bound already (a cdev a live update gave back) into @e,
 * as device @devid of its iommufd: map BAR0, find the config region, and
 * change nothing.
 */
int edu_use_fd(struct edu *e, int fd, uint32_t devid);
/*
 * The @nth edu device without a driver, through sysfs: @e->fd is its
 * config space, @e->bar its BAR0 (resource0). For a device a live update
 * handed over, that nobody took back.
 */
int edu_open_sysfs(struct edu *e, unsigned int nth);
/* VFIO_DEVICE_BIND_IOMMUFD, then map BAR0 and enable memory and bus master. */
int edu_bind(struct edu *e, int iommufd);
/* VFIO_DEVICE_ATTACH_IOMMUFD_PT; @pt_id in: IOAS or HWPT, out: the HWPT. */
int edu_attach(struct edu *e, uint32_t *pt_id);
/*
 * IOMMU_HWPT_ALLOC_PERSIST on IOAS @ioas of @iommufd for the bound device,
 * and attach it there; the HWPT's ID in @hwpt.
 */
int edu_attach_persistent(struct edu *e, int iommufd, uint32_t ioas, uint32_t *hwpt);
/*
 * The first edu device on vfio-pci, bound to a new iommufd @io and attached
 * to a persistent HWPT (@hwpt) of its IOAS, which maps a persistent
 * guest_memfd of @size (iofd_map_gmem()) of a new VM at @iova; exits
 * through vt_fatal() on failure. Returns the guest_memfd, mapped in @mem.
 */
int edu_on_persistent_gmem(struct edu *e, struct iofd *io, uint32_t *hwpt,
			   uint64_t size, uint64_t iova, uint8_t **mem);
uint32_t edu_read32(struct edu *e, unsigned int reg);
/* The command register of a PCI function (config space offset 4). */
int edu_command(struct edu *e, uint16_t *cmd);
int edu_set_command(struct edu *e, uint16_t cmd);
/* Whether bus mastering is on in the function's command register. */
bool edu_bus_master(struct edu *e);
/* DMA remapping faults the kernel logged so far ("DMAR: [DMA ..."). */
unsigned int edu_dmar_faults(void);
/* Whether the test runs on a machine whose VT-d is in scalable mode. */
bool edu_scalable_mode(void);
/*
 * Start a DMA of @len bytes: from IOVA @iova into the buffer at @off
 * (@to_ram false), or from the buffer at @off to IOVA @iova (@to_ram true).
 * -EINVAL for a copy that would end past EDU_DMA_MAX.
 */
int edu_dma_start(struct edu *e, uint64_t iova, uint32_t off, uint32_t len, bool to_ram);
/* Wait up to @ms milliseconds for the DMA to end: 0, or -ETIMEDOUT. */
int edu_dma_wait(struct edu *e, int ms);
/*
 * The device's MSI signalled to a new eventfd through VFIO_DEVICE_SET_IRQS:
 * the eventfd, or -errno.
 */
int edu_msi_eventfd(struct edu *e);
/* Make the device raise its interrupt; wait up to @ms ms for @efd: 0 or -errno. */
int edu_irq_raise(struct edu *e, int efd, int ms);
void edu_close(struct edu *e);

#endif
