// SPDX-License-Identifier: GPL-2.0
/*
 * iommu_dma_kexec: a passed-through device keeps doing DMA across two host
 * kexecs, and each next kernel gives the VMM its device back, bound to the
 * retrieved iommufd and attached to the same persistent HWPT, without a
 * reset and without re-mapping anything.
 *
 * Generation 1 binds QEMU's edu device to vfio-pci, attaches its cdev to a
 * persistent HWPT mapping a persistent guest_memfd of two 2 MiB granules,
 * loads the device's buffer from the first granule by DMA and preserves
 * the file, the iommufd and the device. Once init has loaded the next
 * kernel, right before it reboots into it, the test starts a DMA of the
 * buffer to the second granule, which the device runs 100 ms (of QEMU's
 * clock) later, in the reboot path.
 *
 * Generation 2 checks the boot line of the kept translation, that no DMA
 * fault was logged and that the DMA landed. Then, as a careless VMM would,
 * it retrieves the device before vfio-pci is bound to it, and before the
 * iommufd is retrieved: both fail and change nothing. It retrieves the
 * iommufd, binds vfio-pci and retrieves the device: the file is bound
 * under the old device ID, the HWPT is back under its old ID, the device
 * is still a bus master and its buffer was not reset. New DMA runs both
 * ways through the same IOVAs (buffer <- second granule's last bytes,
 * buffer -> first granule's end), without a DMA fault. It preserves the
 * three files again in a new session and starts a DMA at the kexec as in
 * generation 1, to another IOVA; generation 3 checks the same again, and
 * that a second retrieve of the device gives the same file.
 *
 * Run as iommu_dma_kexec_sm, the same on a unit in scalable mode, where
 * the device keeps its RID_PASID entry instead of its context entry.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
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

#define SESSION		"iommu-dma-kexec"
#define TOKEN_GMEM	1
#define TOKEN_IOMMUFD	2
#define TOKEN_EDU	3
#define GRANULE		(2ull << 20)
#define GMEM_SIZE	(2 * GRANULE)
#define IOVA_GMEM	(32ull << 20)
#define SEED		0xd4a0ff1ull
#define DMA_MS		5000
#define KEPT_LINE	"DMAR: dmar0: live update: translation kept for 1 devices, 0 refused"
#define KEPT_ENTRY	"DMAR: dmar0: live update: 00:01.0 keeps its context entry"
#define KEPT_PASID	"DMAR: dmar0: live update: 00:01.0 keeps its PASID entry"
#define IDS_ARG		"iommu_dma_kexec.ids"

/* Where the DMA started at generation @gen's kexec lands: granule 1 */
static uint64_t kexec_target(int gen)
{
	return IOVA_GMEM + GRANULE + (uint64_t)(gen - 1) * EDU_DMA_MAX;
}

/* The same, read through sysfs: for a device no file is open for */
static bool bus_master_sysfs(struct edu *e)
{
	char path[96];
	uint16_t cmd = 0;
	int fd;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", e->bdf);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	if (pread(fd, &cmd, 2, PCI_COMMAND) != 2)
		cmd = 0;
	close(fd);
	return cmd & PCI_COMMAND_MASTER;
}

static void dma_at_kexec(void *arg)
{
	struct edu *e = arg;
	char name[16];
	int gen = 1;

	if (vt_cmdline_value(IDS_ARG, name, sizeof(name)))
		gen = 2;
	edu_dma_start(e, kexec_target(gen), 0, EDU_DMA_MAX, true);
}

static int dma(struct edu *e, uint64_t iova, uint32_t len, bool to_ram)
{
	int ret = edu_dma_start(e, iova, 0, len, to_ram);

	return ret ?: edu_dma_wait(e, DMA_MS);
}

/*
 * A second edu, alone in its group too, on the same persistent HWPT: a
 * handed-over table has one user, so it cannot be preserved with the first.
 */
static void second_on_hwpt(int session, struct edu *e, int iommufd, uint32_t hwpt)
{
	struct edu e2;
	uint32_t pt = hwpt;
	int ret;

	ret = edu_open_nth(&e2, 1);
	if (!ret)
		ret = edu_bind(&e2, iommufd);
	if (!ret)
		ret = edu_attach(&e2, &pt);
	if (ret)
		vt_fatal("gen 1: second edu on HWPT %u: %s", hwpt, strerror(-ret));
	ret = luo_session_preserve_fd(session, e2.fd, TOKEN_EDU + 1) ? -errno : 0;
	vt_result(ret == -EBUSY,
		  "gen 1: %s on the HWPT of preserved %s cannot be preserved: EBUSY (%s)",
		  e2.bdf, e->bdf, ret ? strerror(-ret) : "preserved");
	edu_close(&e2);
}

/* File status flags belong to the open file: set on @a, seen on @b */
static bool same_file(int a, int b)
{
	int fa = fcntl(a, F_GETFL), fb = fcntl(b, F_GETFL);
	bool same;

	if (fa < 0 || fb < 0 || (fa & O_NONBLOCK) || (fb & O_NONBLOCK) ||
	    fcntl(a, F_SETFL, fa | O_NONBLOCK))
		return false;
	same = fcntl(b, F_GETFL) & O_NONBLOCK;
	fcntl(a, F_SETFL, fa);
	return same;
}

/* Preserve the three files in a new session, pass the IDs on, hold. */
static __noreturn void preserve_and_hold(int gen, int gfd, int iommufd,
					 struct edu *e, uint32_t ioas,
					 uint32_t hwpt)
{
	char buf[64];
	int session, ret;

	session = vt_session(gen == 1 ? SESSION : SESSION "-2", true);
	if (luo_session_preserve_fd(session, gfd, TOKEN_GMEM) ||
	    luo_session_preserve_fd(session, iommufd, TOKEN_IOMMUFD))
		vt_fatal("gen %d: preserve guest_memfd and iommufd: %s", gen,
			 strerror(errno));
	ret = luo_session_preserve_fd(session, e->fd, TOKEN_EDU) ? -errno : 0;
	vt_result(!ret, "gen %d: %s preserved as device %u on HWPT %u (%s)", gen,
		  e->bdf, e->devid, hwpt, ret ? strerror(-ret) : "ok");
	if (gen == 1)
		second_on_hwpt(session, e, iommufd, hwpt);
	snprintf(buf, sizeof(buf), IDS_ARG "=%u,%u,%u", e->devid, ioas, hwpt);
	vt_next_args(buf);
	vt_hold_then(dma_at_kexec, e);
}

/* Interrupts: set up through the device file, one raised reaches user space */
static void check_msi(struct edu *e, int gen)
{
	int efd = edu_msi_eventfd(e), ret;

	ret = efd < 0 ? efd : edu_irq_raise(e, efd, DMA_MS);
	vt_result(!ret, "gen %d: MSI set up through the file: an interrupt reaches it (%s)",
		  gen, ret ? strerror(-ret) : "ok");
	if (efd >= 0)
		close(efd);
}

static void stage1(void)
{
	static struct edu e;
	struct iofd io;
	uint32_t hwpt;
	uint8_t *mem;
	int gfd, ret;

	gfd = edu_on_persistent_gmem(&e, &io, &hwpt, GMEM_SIZE, IOVA_GMEM, &mem);
	vt_fill_pattern(mem, EDU_DMA_MAX, SEED, 0);
	memset(mem + GRANULE, 0, GRANULE);
	ret = dma(&e, IOVA_GMEM, EDU_DMA_MAX, false);
	vt_result(!ret && !edu_dmar_faults(),
		  "gen 1: the device loads its buffer from the first granule (%s)",
		  ret ? strerror(-ret) : "ok");
	check_msi(&e, 1);
	preserve_and_hold(1, gfd, io.fd, &e, io.ioas, hwpt);
}

/*
 * The careless VMM allocates an object first, which takes the device's old
 * ID: the retrieve fails with EEXIST, changes nothing, and succeeds once
 * the ID is free again.
 */
static void id_taken(int session, int iommufd, uint32_t old_dev, int gen)
{
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	struct iommu_destroy destroy = { .size = sizeof(destroy) };
	int fd;

	if (ioctl(iommufd, IOMMU_IOAS_ALLOC, &alloc))
		vt_fatal("gen %d: IOMMU_IOAS_ALLOC: %s", gen, strerror(errno));
	fd = luo_session_retrieve_fd(session, TOKEN_EDU);
	vt_result(alloc.out_ioas_id == old_dev && fd == -EEXIST,
		  "gen %d: a new IOAS took ID %u (device's: %u): retrieve EEXIST (%s)",
		  gen, alloc.out_ioas_id, old_dev, fd < 0 ? strerror(-fd) : "retrieved");
	if (fd >= 0)
		vt_fatal("gen %d: retrieved under another ID", gen);
	destroy.id = alloc.out_ioas_id;
	if (ioctl(iommufd, IOMMU_DESTROY, &destroy))
		vt_fatal("gen %d: IOMMU_DESTROY: %s", gen, strerror(errno));
}

/* The device's runtime PM status: vfio-pci idles a device nobody opened */
static bool runtime_pm_is(struct edu *e, const char *status)
{
	char path[96], buf[32] = "";
	ssize_t len;
	int fd;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/power/runtime_status",
		 e->bdf);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len > 0 && buf[len - 1] == '\n')
		buf[len - 1] = '\0';
	return !strcmp(buf, status);
}

/* The careless VMM: the device cannot come back before its prerequisites. */
static void retrieve_too_early(int session, struct edu *e, int gen)
{
	struct edu other;
	int fd;

	fd = luo_session_retrieve_fd(session, TOKEN_EDU);
	vt_result(fd == -ENODEV,
		  "gen %d: retrieve before vfio-pci is bound: ENODEV (%s)", gen,
		  fd < 0 ? strerror(-fd) : "retrieved");
	if (fd >= 0)
		close(fd);
	if (edu_probe_vfio(e, 0) || edu_probe_vfio(&other, 1))
		vt_fatal("gen %d: bind vfio-pci to edu", gen);
	usleep(100000);
	vt_result(runtime_pm_is(e, "active") && runtime_pm_is(&other, "suspended"),
		  "gen %d: vfio-pci keeps %s active, lets %s idle", gen, e->bdf,
		  other.bdf);
	fd = luo_session_retrieve_fd(session, TOKEN_EDU);
	vt_result(fd == -EINVAL,
		  "gen %d: retrieve before its iommufd is retrieved: EINVAL (%s)", gen,
		  fd < 0 ? strerror(-fd) : "retrieved");
	if (fd >= 0)
		close(fd);
	vt_result(bus_master_sysfs(e), "gen %d: and left %s a bus master", gen,
		  e->bdf);
}

static int stage_next(int gen)
{
	uint32_t old_dev = 0, ioas = 0, old_hwpt = 0;
	struct iommu_destroy destroy = { .size = sizeof(destroy) };
	unsigned int faults;
	int session, gfd, iommufd, fd, fd2, ret;
	static struct edu e;
	uint8_t *mem, *buf;
	uint32_t pt_unused;
	char ids[32];

	if (!vt_cmdline_value(IDS_ARG, ids, sizeof(ids)) ||
	    sscanf(ids, "%u,%u,%u", &old_dev, &ioas, &old_hwpt) != 3)
		vt_fatal("gen %d: no %s on the command line", gen, IDS_ARG);
	session = vt_session(gen == 2 ? SESSION : SESSION "-2", false);

	vt_result(vt_dmesg_contains(KEPT_LINE), "gen %d: boot line '%s'", gen,
		  KEPT_LINE);
	vt_result(!edu_dmar_faults(), "gen %d: no DMAR fault since boot (%u)", gen,
		  edu_dmar_faults());

	gfd = gvm_retrieve(session, TOKEN_GMEM, GMEM_SIZE, "guest_memfd");
	mem = mmap(NULL, GMEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, gfd, 0);
	if (mem == MAP_FAILED)
		vt_fatal("gen %d: mmap guest_memfd: %s", gen, strerror(errno));
	vt_result(vt_check_pattern(mem + kexec_target(gen - 1) - IOVA_GMEM,
				   EDU_DMA_MAX, SEED, 0) < 0,
		  "gen %d: the DMA started at the kexec landed where its IOVA maps",
		  gen);

	retrieve_too_early(session, &e, gen);

	iommufd = luo_session_retrieve_fd(session, TOKEN_IOMMUFD);
	if (iommufd < 0)
		vt_fatal("gen %d: retrieve iommufd: %s", gen, strerror(-iommufd));
	id_taken(session, iommufd, old_dev, gen);
	fd = luo_session_retrieve_fd(session, TOKEN_EDU);
	vt_result(fd >= 0, "gen %d: %s retrieved (%s)", gen, e.bdf,
		  fd < 0 ? strerror(-fd) : "ok");
	if (fd < 0)
		vt_fatal("gen %d: nothing more to check", gen);
	fd2 = luo_session_retrieve_fd(session, TOKEN_EDU);
	vt_result(fd2 >= 0 && same_file(fd, fd2),
		  "gen %d: retrieved again: the same file (%s)",
		  gen, fd2 < 0 ? strerror(-fd2) : "ok");
	if (fd2 >= 0)
		close(fd2);
	edu_close(&e);
	ret = edu_use_fd(&e, fd, old_dev);
	vt_result(!ret, "gen %d: its BAR0 and config space through the file (%s)",
		  gen, ret ? strerror(-ret) : "ok");
	if (ret)
		vt_fatal("gen %d: nothing more to check", gen);
	vt_result(edu_bus_master(&e), "gen %d: still a bus master", gen);
	check_msi(&e, gen);

	destroy.id = old_hwpt;
	ret = ioctl(iommufd, IOMMU_DESTROY, &destroy) ? -errno : 0;
	vt_result(ret == -EBUSY, "gen %d: HWPT %u is back and in use: destroy EBUSY (%s)",
		  gen, old_hwpt, ret ? strerror(-ret) : "destroyed");
	ret = iofd_adopt(iommufd, old_dev, ioas, IOMMU_HWPT_ALLOC_PERSIST,
			 old_hwpt, 0, &pt_unused);
	vt_result(ret == -EINVAL,
		  "gen %d: its table is adopted already: adopting it again EINVAL (%s)",
		  gen, ret ? strerror(-ret) : "adopted twice");
	vt_result(vt_dmesg_contains("live update: domain ID") &&
		  vt_dmesg_contains(edu_scalable_mode() ? KEPT_PASID : KEPT_ENTRY),
		  "gen %d: VT-d took the translation over: its domain ID, the %s entry as it was",
		  gen, edu_scalable_mode() ? "PASID" : "context");

	/* No reset: the buffer still holds what generation 1 loaded. */
	faults = edu_dmar_faults();
	buf = mem + GRANULE - EDU_DMA_MAX;
	memset(buf, 0, EDU_DMA_MAX);
	ret = dma(&e, IOVA_GMEM + GRANULE - EDU_DMA_MAX, EDU_DMA_MAX, true);
	vt_result(!ret && vt_check_pattern(buf, EDU_DMA_MAX, SEED, 0) < 0,
		  "gen %d: buffer -> end of granule 0 by DMA: the buffer kept its bytes (%s)",
		  gen, ret ? strerror(-ret) : "ok");
	vt_fill_pattern(mem + 2 * GRANULE - EDU_DMA_MAX, EDU_DMA_MAX, SEED + gen, 0);
	ret = dma(&e, IOVA_GMEM + 2 * GRANULE - EDU_DMA_MAX, EDU_DMA_MAX, false);
	if (!ret)
		ret = dma(&e, IOVA_GMEM + GRANULE - EDU_DMA_MAX, EDU_DMA_MAX, true);
	vt_result(!ret && vt_check_pattern(buf, EDU_DMA_MAX, SEED + gen, 0) < 0,
		  "gen %d: end of granule 1 -> buffer -> end of granule 0, same IOVAs (%s)",
		  gen, ret ? strerror(-ret) : "ok");
	vt_result(edu_dmar_faults() == faults, "gen %d: no DMAR fault (%u)", gen,
		  edu_dmar_faults() - faults);
	/* Give the next kexec's DMA what generation 1 loaded. */
	ret = dma(&e, IOVA_GMEM, EDU_DMA_MAX, false);
	if (ret)
		vt_fatal("gen %d: reload the buffer: %s", gen, strerror(-ret));

	ret = luo_session_finish(session);
	vt_result(!ret, "gen %d: session finished (%s)", gen,
		  ret ? strerror(-ret) : "ok");
	vt_result(edu_bus_master(&e) && !vt_dmesg_contains("handed-over DMA blocked"),
		  "gen %d: finish leaves the retrieved device alone", gen);
	close(session);
	munmap(mem, GMEM_SIZE);
	if (gen == 2)
		preserve_and_hold(gen, gfd, iommufd, &e, ioas, old_hwpt);
	close(gfd);
	close(iommufd);
	edu_close(&e);
	return vt_finish();
}

int main(int argc, char **argv)
{
	int stage = vt_stage(argc, argv, 3);

	if (stage == 1)
		stage1();
	return stage_next(stage);
}
