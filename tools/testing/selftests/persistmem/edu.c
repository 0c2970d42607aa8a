// SPDX-License-Identifier: GPL-2.0
/*
 * QEMU's edu device through a VFIO cdev bound to an iommufd (see edu.h).
 * Registers, from QEMU's hw/misc/edu.c: 0x00 identification, 0x04
 * liveness (reads back inverted), 0x80 DMA source, 0x88 destination, 0x90
 * count, 0x98 command (bit 0 run, bit 1 buffer to RAM). A DMA runs 100 ms
 * (of QEMU's virtual clock) after it is started.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/pci_regs.h>
#include <linux/vfio.h>

#include "edu.h"
#include "gmem_vm.h"
#include "vmtest.h"

#define EDU_VENDOR	0x1234
#define EDU_DEVICE	0x11e8
#define REG_DMA_SRC	0x80
#define REG_DMA_DST	0x88
#define REG_DMA_CNT	0x90
#define REG_DMA_CMD	0x98
#define DMA_RUN		1u
#define DMA_TO_RAM	2u
#define REG_IRQ_RAISE	0x60
#define REG_IRQ_ACK	0x64

static unsigned long sysfs_hex(const char *dir, const char *name)
{
	char path[256], buf[32] = "";
	int fd, n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? strtoul(buf, NULL, 16) : 0;
}

/* The @nth edu device by PCI address, from 0. */
static int find_edu(struct edu *e, unsigned int nth)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	char dir[256], best[16];
	struct dirent *de;
	unsigned int i;

	if (!d)
		return -errno;
	e->bdf[0] = '\0';
	for (i = 0; i <= nth; i++) {
		best[0] = '\0';
		rewinddir(d);
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.' ||
			    (e->bdf[0] && strcmp(de->d_name, e->bdf) <= 0) ||
			    (best[0] && strcmp(de->d_name, best) >= 0))
				continue;
			snprintf(dir, sizeof(dir), "/sys/bus/pci/devices/%.32s", de->d_name);
			if (sysfs_hex(dir, "vendor") == EDU_VENDOR &&
			    sysfs_hex(dir, "device") == EDU_DEVICE)
				snprintf(best, sizeof(best), "%.15s", de->d_name);
		}
		if (!best[0])
			break;
		memcpy(e->bdf, best, sizeof(best));
	}
	closedir(d);
	return i > nth ? 0 : -ENODEV;
}

/* The cdev vfio-pci made for @e, under its device in sysfs. */
static int open_cdev(struct edu *e)
{
	char path[256];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vfio-dev", e->bdf);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d)) && strncmp(de->d_name, "vfio", 4))
		;
	if (!de) {
		closedir(d);
		return -ENODEV;
	}
	snprintf(path, sizeof(path), "/dev/vfio/devices/%.32s", de->d_name);
	closedir(d);
	e->fd = open(path, O_RDWR);
	return e->fd < 0 ? -errno : 0;
}

int edu_open(struct edu *e)
{
	return edu_open_nth(e, 0);
}

int edu_probe_vfio(struct edu *e, unsigned int nth)
{
	char path[256];
	int ret;

	memset(e, 0, sizeof(*e));
	e->fd = -1;
	ret = find_edu(e, nth);
	if (ret)
		return ret;
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override", e->bdf);
	ret = vt_write_file(path, "vfio-pci");
	return ret ?: vt_write_file("/sys/bus/pci/drivers_probe", e->bdf);
}

int edu_open_nth(struct edu *e, unsigned int nth)
{
	return edu_probe_vfio(e, nth) ?: open_cdev(e);
}

static int region(struct edu *e, unsigned int index, struct vfio_region_info *info)
{
	memset(info, 0, sizeof(*info));
	info->argsz = sizeof(*info);
	info->index = index;
	return ioctl(e->fd, VFIO_DEVICE_GET_REGION_INFO, info) ? -errno : 0;
}

int edu_command(struct edu *e, uint16_t *cmd)
{
	return pread(e->fd, cmd, 2, e->config + PCI_COMMAND) == 2 ? 0 : -EIO;
}

int edu_set_command(struct edu *e, uint16_t cmd)
{
	return pwrite(e->fd, &cmd, 2, e->config + PCI_COMMAND) == 2 ? 0 : -EIO;
}

int edu_open_sysfs(struct edu *e, unsigned int nth)
{
	char path[256];
	struct stat st;
	void *bar;
	int fd, ret;

	memset(e, 0, sizeof(*e));
	e->fd = -1;
	ret = find_edu(e, nth);
	if (ret)
		return ret;
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", e->bdf);
	e->fd = open(path, O_RDWR);
	if (e->fd < 0)
		return -errno;
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource0", e->bdf);
	fd = open(path, O_RDWR | O_SYNC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		ret = -errno;
		close(fd);
		return ret;
	}
	bar = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ret = bar == MAP_FAILED ? -errno : 0;
	close(fd);
	if (ret)
		return ret;
	e->bar = bar;
	e->bar_size = st.st_size;
	return 0;
}

/* Map BAR0 of the bound device file and find its config region. */
static int map_regions(struct edu *e)
{
	struct vfio_region_info info;
	void *bar;
	int ret;

	ret = region(e, VFIO_PCI_BAR0_REGION_INDEX, &info);
	if (ret)
		return ret;
	if (!(info.flags & VFIO_REGION_INFO_FLAG_MMAP))
		return -EOPNOTSUPP;
	bar = mmap(NULL, info.size, PROT_READ | PROT_WRITE, MAP_SHARED, e->fd, info.offset);
	if (bar == MAP_FAILED)
		return -errno;
	e->bar = bar;
	e->bar_size = info.size;
	ret = region(e, VFIO_PCI_CONFIG_REGION_INDEX, &info);
	if (ret)
		return ret;
	e->config = info.offset;
	return 0;
}

int edu_use_fd(struct edu *e, int fd, uint32_t devid)
{
	e->fd = fd;
	e->devid = devid;
	return map_regions(e);
}

int edu_bind(struct edu *e, int iommufd)
{
	struct vfio_device_bind_iommufd bind = {
		.argsz = sizeof(bind),
		.iommufd = iommufd,
	};
	uint16_t cmd;
	int ret;

	if (ioctl(e->fd, VFIO_DEVICE_BIND_IOMMUFD, &bind))
		return -errno;
	e->devid = bind.out_devid;
	ret = map_regions(e);
	if (ret)
		return ret;
	ret = edu_command(e, &cmd);
	if (ret)
		return ret;
	return edu_set_command(e, cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
}

int edu_attach(struct edu *e, uint32_t *pt_id)
{
	struct vfio_device_attach_iommufd_pt attach = {
		.argsz = sizeof(attach),
		.pt_id = *pt_id,
	};

	if (ioctl(e->fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach))
		return -errno;
	*pt_id = attach.pt_id;
	return 0;
}

int edu_attach_persistent(struct edu *e, int iommufd, uint32_t ioas, uint32_t *hwpt)
{
	struct iommu_hwpt_alloc alloc = { .size = sizeof(alloc),
					  .flags = IOMMU_HWPT_ALLOC_PERSIST,
					  .dev_id = e->devid, .pt_id = ioas };
	uint32_t pt;
	int ret;

	if (ioctl(iommufd, IOMMU_HWPT_ALLOC, &alloc))
		return -errno;
	pt = alloc.out_hwpt_id;
	ret = edu_attach(e, &pt);
	if (!ret)
		*hwpt = alloc.out_hwpt_id;
	return ret;
}

int edu_on_persistent_gmem(struct edu *e, struct iofd *io, uint32_t *hwpt,
			   uint64_t size, uint64_t iova, uint8_t **mem)
{
	int vm, gfd, ret;

	ret = edu_open(e);
	if (!ret)
		ret = iofd_open(io);
	if (!ret)
		ret = edu_bind(e, io->fd);
	if (!ret)
		ret = edu_attach_persistent(e, io->fd, io->ioas, hwpt);
	if (ret)
		vt_fatal("edu on a persistent HWPT: %s", strerror(-ret));
	vm = gvm_create_vm(0);
	if (vm < 0)
		vt_fatal("KVM_CREATE_VM: %s", strerror(-vm));
	gfd = iofd_map_gmem(io, vm, size, iova, mem);
	if (gfd < 0)
		vt_fatal("persistent guest_memfd mapped: %s", strerror(-gfd));
	return gfd;
}

uint32_t edu_read32(struct edu *e, unsigned int reg)
{
	return __atomic_load_n((uint32_t *)(e->bar + reg), __ATOMIC_RELAXED);
}

bool edu_bus_master(struct edu *e)
{
	uint16_t cmd = 0;

	return !edu_command(e, &cmd) && (cmd & PCI_COMMAND_MASTER);
}

unsigned int edu_dmar_faults(void)
{
	return vt_dmesg_count("DMAR: [DMA ");
}

bool edu_scalable_mode(void)
{
	char machine[32];
	size_t len;

	if (!vt_cmdline_value("vmtest.machine", machine, sizeof(machine)))
		return false;
	len = strlen(machine);
	return len > 3 && !strcmp(machine + len - 3, "-sm");
}

int edu_msi_eventfd(struct edu *e)
{
	char buf[sizeof(struct vfio_irq_set) + sizeof(int32_t)];
	struct vfio_irq_set *set = (struct vfio_irq_set *)buf;
	int32_t efd;

	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (efd < 0)
		return -errno;
	memset(buf, 0, sizeof(buf));
	set->argsz = sizeof(buf);
	set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	set->index = VFIO_PCI_MSI_IRQ_INDEX;
	set->count = 1;
	memcpy(set->data, &efd, sizeof(efd));
	if (ioctl(e->fd, VFIO_DEVICE_SET_IRQS, set)) {
		int ret = -errno;

		close(efd);
		return ret;
	}
	return efd;
}

int edu_irq_raise(struct edu *e, int efd, int ms)
{
	struct pollfd pfd = { .fd = efd, .events = POLLIN };
	uint64_t count;
	int ret;

	__atomic_store_n((uint32_t *)(e->bar + REG_IRQ_RAISE), 1, __ATOMIC_RELAXED);
	ret = poll(&pfd, 1, ms);
	__atomic_store_n((uint32_t *)(e->bar + REG_IRQ_ACK), 1, __ATOMIC_RELAXED);
	if (ret < 0)
		return -errno;
	if (!ret || read(efd, &count, sizeof(count)) != sizeof(count))
		return -ETIMEDOUT;
	return 0;
}

static void write64(struct edu *e, unsigned int reg, uint64_t val)
{
	__atomic_store_n((uint64_t *)(e->bar + reg), val, __ATOMIC_RELAXED);
}

int edu_dma_start(struct edu *e, uint64_t iova, uint32_t off, uint32_t len, bool to_ram)
{
	if (!len || off >= EDU_DMA_MAX || len > EDU_DMA_MAX - off ||
	    iova >= EDU_DMA_LIMIT || len > EDU_DMA_LIMIT - iova)
		return -EINVAL;
	if (edu_read32(e, REG_DMA_CMD) & DMA_RUN)
		return -EBUSY;
	write64(e, REG_DMA_SRC, to_ram ? EDU_BUF + off : iova);
	write64(e, REG_DMA_DST, to_ram ? iova : EDU_BUF + off);
	write64(e, REG_DMA_CNT, len);
	write64(e, REG_DMA_CMD, DMA_RUN | (to_ram ? DMA_TO_RAM : 0));
	return 0;
}

int edu_dma_wait(struct edu *e, int ms)
{
	uint64_t end = vt_now_ns() + (uint64_t)ms * 1000000;

	while (edu_read32(e, REG_DMA_CMD) & DMA_RUN) {
		if (vt_now_ns() > end)
			return -ETIMEDOUT;
		usleep(1000);
	}
	return 0;
}

void edu_close(struct edu *e)
{
	if (e->bar)
		munmap(e->bar, e->bar_size);
	if (e->fd >= 0)
		close(e->fd);
	e->bar = NULL;
	e->fd = -1;
}
