// SPDX-License-Identifier: GPL-2.0
/*
 * iommu_dma_unpreserved: a device that was not preserved is quiesced at
 * the kexec as it always was, and cannot DMA into anything afterwards,
 * even though its VT-d unit stays enabled for a device that was.
 *
 * Generation 1, on the vtd-bridge machine: the edu device alone in its
 * group is preserved, attached to a persistent HWPT mapping a persistent
 * guest_memfd (as in iommu_dma_handover). An edu device behind the PCI
 * bridge is bound to a second iommufd, not preserved, whose IOAS maps a
 * memfd at the very IOVA the preserved device writes to. Both load their
 * buffers by DMA, and both start a DMA to that IOVA when init has loaded
 * the next kernel.
 *
 * Generation 2: the unit kept one device's translation; the unpreserved
 * device is no longer a bus master. Made one again, its DMA to and from
 * its old IOVA faults (its requester has no context entry), and the
 * guest_memfd the preserved device's table maps at that IOVA, zeroed
 * before, stays zero: its DMA lands nowhere, not through another device's
 * page table either.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/pci_regs.h>

#include "edu.h"
#include "gmem_vm.h"
#include "iofd.h"
#include "vmtest.h"

#define SESSION		"iommu-dma-unpreserved"
#define TOKEN_GMEM	1
#define TOKEN_IOMMUFD	2
#define TOKEN_EDU	3
#define GRANULE		(2ull << 20)
#define GMEM_SIZE	(2 * GRANULE)
#define IOVA_GMEM	(32ull << 20)
#define IOVA_TARGET	(IOVA_GMEM + GRANULE)
#define SEED		0x0be5e7edull
#define DMA_MS		5000
#define KEPT_LINE	"DMAR: dmar0: live update: translation kept for 1 devices, 0 refused"

static struct edu kept, other;

static bool zeroed(const uint8_t *p, size_t len)
{
	while (len--)
		if (*p++)
			return false;
	return true;
}

static int load_buffer(struct edu *e, uint64_t iova)
{
	int ret = edu_dma_start(e, iova, 0, EDU_DMA_MAX, false);

	return ret ?: edu_dma_wait(e, DMA_MS);
}

static void dma_at_kexec(void *arg)
{
	edu_dma_start(&kept, IOVA_TARGET, 0, EDU_DMA_MAX, true);
	edu_dma_start(&other, IOVA_TARGET, 0, EDU_DMA_MAX, true);
}

/* The preserved device on a persistent HWPT mapping a guest_memfd */
static struct iofd preserved_setup(int *gfd)
{
	struct iofd io;
	uint8_t *mem;
	uint32_t hwpt;
	int ret;

	*gfd = edu_on_persistent_gmem(&kept, &io, &hwpt, GMEM_SIZE, IOVA_GMEM, &mem);
	vt_fill_pattern(mem, EDU_DMA_MAX, SEED, 0);
	ret = load_buffer(&kept, IOVA_GMEM);
	vt_result(!ret, "gen 1: %s, to be preserved, loads its buffer (%s)", kept.bdf,
		  ret ? strerror(-ret) : "ok");
	return io;
}

/* The other device on its own iommufd, a memfd at the same IOVAs */
static void unpreserved_setup(void)
{
	struct iofd io;
	uint32_t pt;
	uint8_t *ram;
	int mfd, ret;

	ret = edu_open_nth(&other, 1);
	if (!ret)
		ret = iofd_open(&io);
	if (!ret)
		ret = edu_bind(&other, io.fd);
	pt = io.ioas;
	if (!ret)
		ret = edu_attach(&other, &pt);
	if (ret)
		vt_fatal("gen 1: second edu, iommufd, bind, attach: %s", strerror(-ret));
	mfd = memfd_create("unpreserved", 0);
	if (mfd < 0 || ftruncate(mfd, GMEM_SIZE))
		vt_fatal("gen 1: memfd: %s", strerror(errno));
	ram = mmap(NULL, GMEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (ram == MAP_FAILED)
		vt_fatal("gen 1: mmap memfd: %s", strerror(errno));
	vt_fill_pattern(ram, EDU_DMA_MAX, SEED + 1, 0);
	ret = iofd_map_file(io.fd, io.ioas, mfd, 0, GMEM_SIZE, IOVA_GMEM);
	if (ret)
		vt_fatal("gen 1: map the memfd: %s", strerror(-ret));
	ret = load_buffer(&other, IOVA_GMEM);
	vt_result(!ret, "gen 1: %s, not preserved, loads its buffer (%s)", other.bdf,
		  ret ? strerror(-ret) : "ok");
}

static void stage1(void)
{
	int session, gfd, ret;
	struct iofd io;

	io = preserved_setup(&gfd);
	unpreserved_setup();
	vt_result(!edu_dmar_faults(), "gen 1: no DMAR fault");

	session = vt_session(SESSION, true);
	if (luo_session_preserve_fd(session, gfd, TOKEN_GMEM) ||
	    luo_session_preserve_fd(session, io.fd, TOKEN_IOMMUFD))
		vt_fatal("gen 1: preserve guest_memfd and iommufd: %s", strerror(errno));
	ret = luo_session_preserve_fd(session, kept.fd, TOKEN_EDU) ? -errno : 0;
	vt_result(!ret, "gen 1: %s preserved (%s)", kept.bdf, ret ? strerror(-ret) : "ok");
	vt_hold_then(dma_at_kexec, NULL);
}

static void dma_faults(struct edu *e, bool to_ram, uint8_t *mem)
{
	unsigned int faults = edu_dmar_faults();
	int ret;

	memset(mem + GRANULE, 0, EDU_DMA_MAX);
	ret = edu_dma_start(e, IOVA_TARGET, 0, EDU_DMA_MAX, to_ram);
	if (!ret)
		ret = edu_dma_wait(e, DMA_MS);
	usleep(200000);
	vt_result(!ret && edu_dmar_faults() > faults,
		  "gen 2: its DMA %s IOVA %#llx faults (%s, %u faults)",
		  to_ram ? "to" : "from", (unsigned long long)IOVA_TARGET,
		  ret ? strerror(-ret) : "ran", edu_dmar_faults() - faults);
	if (to_ram)
		vt_result(zeroed(mem + GRANULE, EDU_DMA_MAX),
			  "gen 2: the memory another device's table maps there is untouched");
}

static int stage2(void)
{
	int session = vt_session(SESSION, false), gfd, ret;
	uint16_t cmd = 0;
	uint8_t *mem;

	vt_result(vt_dmesg_contains(KEPT_LINE), "gen 2: boot line '%s'", KEPT_LINE);
	ret = edu_open_sysfs(&other, 1);
	if (ret)
		vt_fatal("gen 2: second edu through sysfs: %s", strerror(-ret));
	ret = edu_command(&other, &cmd);
	vt_result(!ret && !(cmd & PCI_COMMAND_MASTER),
		  "gen 2: %s, not preserved, is no longer a bus master (command %#x)",
		  other.bdf, cmd);

	gfd = gvm_retrieve(session, TOKEN_GMEM, GMEM_SIZE, "guest_memfd");
	mem = mmap(NULL, GMEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, gfd, 0);
	if (mem == MAP_FAILED)
		vt_fatal("gen 2: mmap guest_memfd: %s", strerror(errno));
	vt_result(vt_check_pattern(mem + GRANULE, EDU_DMA_MAX, SEED, 0) < 0,
		  "gen 2: the preserved device's DMA landed, its own buffer only");

	ret = edu_set_command(&other, cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	vt_result(!ret, "gen 2: %s made a bus master again (%s)", other.bdf,
		  ret ? strerror(-ret) : "ok");
	dma_faults(&other, true, mem);
	dma_faults(&other, false, mem);

	ret = luo_session_finish(session);
	vt_result(!ret, "gen 2: session finished (%s)", ret ? strerror(-ret) : "ok");
	munmap(mem, GMEM_SIZE);
	close(gfd);
	close(session);
	edu_close(&other);
	return vt_finish();
}

int main(int argc, char **argv)
{
	if (vt_stage(argc, argv, 2) == 1)
		stage1();
	return stage2();
}
