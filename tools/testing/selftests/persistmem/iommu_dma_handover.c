// SPDX-License-Identifier: GPL-2.0
/*
 * iommu_dma_handover: a device's DMA goes on across a kexec, translated by
 * VT-d (legacy mode) through the same persistent page table, and stops
 * when the next kernel finds nobody taking the device back.
 *
 * Generation 1 binds QEMU's edu device to vfio-pci, attaches its cdev to
 * a persistent HWPT mapping a persistent guest_memfd of two 2 MiB granules
 * (one mapping each), loads the device's buffer from the first granule by
 * DMA, zeroes the second and preserves the file, the iommufd and the
 * device. Once init has loaded the next kernel, right before it reboots
 * into it, the test starts a DMA of the buffer into the second granule:
 * the device runs it 100 ms (of QEMU's clock) later, in the reboot path
 * (LUO freeze, device shutdown, the unit switched to the handed-over
 * tables, the jump).
 *
 * Generation 2 boots with the VT-d unit still translating: one boot line
 * says it kept the device's translation, no DMA fault was logged, the
 * device is still a bus master, and the retrieved guest_memfd holds the
 * buffer in its second granule, where the IOVA maps. Nobody takes the
 * device back (no driver is bound to it, so its retrieve fails with
 * ENODEV), so finishing the session blocks its translation and clears its
 * bus mastering before the page table goes; DMA the device is made to do after
 * that faults and does not reach the memory.
 *
 * Run as iommu_dma_stolen, generation 2 opens the device's cdev as any
 * process with access to it could, instead of retrieving it, and binds it
 * to an iommufd of its own without attaching it anywhere: the device must
 * be blocked from then on. Made a bus master, its DMA to the IOVA the
 * handed-over table maps faults and does not reach the guest's memory.
 * Closed again, the device cannot be retrieved any more (EINVAL, with its
 * iommufd retrieved), and finish leaves the bus mastering of the device
 * its new owner opened again alone.
 *
 * Run as iommu_dma_adopt_other (two edu), generation 2 adopts the
 * handed-over page table for the second edu, as IOMMU_HWPT_DATA_PERSIST_ADOPT
 * allows: the first, which still translated through it, is blocked first
 * (one line says so) and its DMA faults, while the second's DMA goes
 * through the adopted table to the guest's memory.
 *
 * Run with _sm appended to its name, each but iommu_dma_refused runs the
 * same on a unit in scalable mode.
 *
 * Run as iommu_dma_refused, generation 1 damages the device's VT-d record
 * (its page table outside the pools, through a test-only debugfs knob):
 * generation 2 refuses it in one boot line and keeps the unit enabled
 * with nothing translated, so the device, still a bus master, cannot
 * reach memory; finish clears its bus mastering all the same.
 *
 * Run as iommu_dma_mode_mismatch (scalable mode), generation 2 boots with
 * intel_iommu=sm_off: a unit left translating in scalable mode cannot keep
 * translating in legacy mode, and is turned off at boot as after any
 * kexec. The device must stop being a bus master first (one boot line), or
 * its DMA would go to memory untranslated.
 *
 * Run as iommu_dma_shared_table, generation 1 makes the handover carry a
 * second record, for the next function (00:01.1) under another domain ID,
 * that names the device's page table too (the knob's second value): a
 * handed-over table has one user, so generation 2 refuses that record
 * (EEXIST, one boot line), keeps the device's own, and goes on as
 * iommu_dma_handover.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
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

#define SESSION		"iommu-dma-handover"
#define TOKEN_GMEM	1
#define TOKEN_IOMMUFD	2
#define TOKEN_EDU	3
#define GRANULE		(2ull << 20)
#define GMEM_SIZE	(2 * GRANULE)
#define IOVA_GMEM	(32ull << 20)
#define IOVA_TARGET	(IOVA_GMEM + GRANULE)
#define SEED		0xd4a0ff1ull
#define DMA_MS		5000
#define KEPT_LINE	"DMAR: dmar0: live update: translation kept for 1 devices, 0 refused"
#define REFUSED_LINE	"DMAR: dmar0: live update: translation kept for 0 devices, 1 refused"
#define REFUSED_DEV	"DMAR: dmar0: live update: 00:01.0 refused (-EINVAL)"
#define BLOCKED		"handed-over DMA blocked: not retrieved "
#define IDS_ARG		"iommu_dma_handover.ids"
#define ADOPTED_OTHER	"live update: 00:01.0 blocked: its page table was adopted for 0000:00:02.0"
#define OTHER_OWNER	"handed-over DMA: not retrieved, driven by another owner"
#define DAMAGE_KNOB	"/sys/kernel/debug/intel_iommu_persist_damage"
#define MISMATCH_LINE	"DMAR: dmar0: live update: left in scalable mode, run in legacy mode: bus mastering of 1 devices stopped"
#define SHARED_LINE	"DMAR: dmar0: live update: translation kept for 1 devices, 1 refused"
#define SHARED_DEV	"DMAR: dmar0: live update: 00:01.1 refused (-EEXIST)"

/* Whether this run is @test, on VT-d in legacy or (_sm) scalable mode */
static bool run_is(const char *test)
{
	size_t len = strlen(test);
	char name[64];

	return vt_cmdline_value("vmtest.test", name, sizeof(name)) &&
	       !strncmp(name, test, len) &&
	       (!name[len] || !strcmp(name + len, "_sm"));
}

static bool refused_run(void)
{
	return run_is("iommu_dma_refused");
}

static bool zeroed(const uint8_t *p, size_t len)
{
	while (len--)
		if (*p++)
			return false;
	return true;
}

static void dma_at_kexec(void *arg)
{
	edu_dma_start(arg, IOVA_TARGET, 0, EDU_DMA_MAX, true);
}

static void stage1(void)
{
	static struct edu e;
	int session, gfd, ret;
	struct iofd io;
	char ids[96];
	uint8_t *mem;
	uint32_t hwpt;

	gfd = edu_on_persistent_gmem(&e, &io, &hwpt, GMEM_SIZE, IOVA_GMEM, &mem);
	vt_fill_pattern(mem, EDU_DMA_MAX, SEED, 0);
	memset(mem + GRANULE, 0, EDU_DMA_MAX);

	ret = edu_dma_start(&e, IOVA_GMEM, 0, EDU_DMA_MAX, false);
	if (!ret)
		ret = edu_dma_wait(&e, DMA_MS);
	vt_result(!ret, "gen 1: the device loads its buffer from the first granule (%s)",
		  ret ? strerror(-ret) : "ok");
	vt_result(zeroed(mem + GRANULE, EDU_DMA_MAX) && !edu_dmar_faults(),
		  "gen 1: the second granule is zero, no DMAR fault");

	snprintf(ids, sizeof(ids), IDS_ARG "=%u,%u%s", io.ioas, hwpt,
		 run_is("iommu_dma_mode_mismatch") ? " intel_iommu=sm_off" : "");
	vt_next_args(ids);
	session = vt_session(SESSION, true);
	if (luo_session_preserve_fd(session, gfd, TOKEN_GMEM) ||
	    luo_session_preserve_fd(session, io.fd, TOKEN_IOMMUFD))
		vt_fatal("gen 1: preserve guest_memfd and iommufd: %s", strerror(errno));
	ret = luo_session_preserve_fd(session, e.fd, TOKEN_EDU) ? -errno : 0;
	vt_result(!ret, "gen 1: %s preserved on persistent HWPT %u (%s)", e.bdf,
		  hwpt, ret ? strerror(-ret) : "ok");
	if (refused_run() || run_is("iommu_dma_shared_table")) {
		ret = vt_write_file(DAMAGE_KNOB, refused_run() ? "1" : "2");
		vt_result(!ret, "gen 1: its VT-d record will be damaged (%s)",
			  ret ? strerror(-ret) : "ok");
	}
	vt_hold_then(dma_at_kexec, &e);
}

/* A device nobody may use: made a bus master (again), its DMA faults. */
static void dma_after_release(struct edu *e, uint8_t *mem)
{
	unsigned int faults = edu_dmar_faults();
	uint16_t cmd = 0;
	int ret;

	memset(mem + GRANULE, 0, EDU_DMA_MAX);
	ret = edu_command(e, &cmd);
	if (!ret)
		ret = edu_set_command(e, cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	if (!ret)
		ret = edu_dma_start(e, IOVA_TARGET, 0, EDU_DMA_MAX, true);
	if (!ret)
		ret = edu_dma_wait(e, DMA_MS);
	vt_result(!ret, "gen 2: a bus master, the device runs a DMA to the IOVA (%s)",
		  ret ? strerror(-ret) : "ok");
	usleep(200000);
	vt_result(edu_dmar_faults() > faults, "gen 2: it faults (%u DMAR faults logged)",
		  edu_dmar_faults() - faults);
	vt_result(zeroed(mem + GRANULE, EDU_DMA_MAX),
		  "gen 2: and does not reach the memory that IOVA mapped");
}

/* The record was refused: the device is blocked from boot on. */
static int stage2_refused(void)
{
	int session = vt_session(SESSION, false), gfd, ret;
	uint8_t *mem;
	struct edu e;

	vt_result(vt_dmesg_contains(REFUSED_DEV), "gen 2: boot line '%s'", REFUSED_DEV);
	vt_result(vt_dmesg_contains(REFUSED_LINE), "gen 2: boot line '%s'", REFUSED_LINE);
	vt_result(!vt_dmesg_contains("Translation was enabled for dmar0 but"),
		  "gen 2: the unit stays enabled, translating nothing for it");
	ret = edu_open_sysfs(&e, 0);
	if (ret)
		vt_fatal("gen 2: edu through sysfs: %s", strerror(-ret));
	gfd = gvm_retrieve(session, TOKEN_GMEM, GMEM_SIZE, "guest_memfd");
	mem = mmap(NULL, GMEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, gfd, 0);
	if (mem == MAP_FAILED)
		vt_fatal("gen 2: mmap guest_memfd: %s", strerror(errno));
	vt_result(vt_check_pattern(mem, EDU_DMA_MAX, SEED, 0) < 0,
		  "gen 2: the guest_memfd itself is intact");
	vt_result(edu_bus_master(&e), "gen 2: %s is still a bus master", e.bdf);
	dma_after_release(&e, mem);

	ret = luo_session_finish(session);
	vt_result(!ret, "gen 2: session finished (%s)", ret ? strerror(-ret) : "ok");
	vt_result(vt_dmesg_contains(BLOCKED "(no handed-over translation left)"),
		  "gen 2: finish names the refused device");
	vt_result(!edu_bus_master(&e), "gen 2: and clears its bus mastering");
	munmap(mem, GMEM_SIZE);
	close(gfd);
	close(session);
	edu_close(&e);
	return vt_finish();
}

/* The next kernel runs the unit in the other mode: the device is stopped. */
static int stage2_mismatch(void)
{
	int session = vt_session(SESSION, false), gfd, fd, ret;
	uint8_t *mem;
	struct edu e;

	vt_result(vt_dmesg_contains(MISMATCH_LINE), "gen 2: boot line '%s'", MISMATCH_LINE);
	vt_result(vt_dmesg_contains("Translation was enabled for dmar0 but"),
		  "gen 2: the unit's translation was turned off at boot");
	ret = edu_open_sysfs(&e, 0);
	if (ret)
		vt_fatal("gen 2: edu through sysfs: %s", strerror(-ret));
	vt_result(!edu_bus_master(&e), "gen 2: %s is no bus master any more", e.bdf);
	gfd = gvm_retrieve(session, TOKEN_GMEM, GMEM_SIZE, "guest_memfd");
	mem = mmap(NULL, GMEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, gfd, 0);
	if (mem == MAP_FAILED)
		vt_fatal("gen 2: mmap guest_memfd: %s", strerror(errno));
	vt_result(vt_check_pattern(mem + GRANULE, EDU_DMA_MAX, SEED, 0) < 0 &&
		  vt_check_pattern(mem, EDU_DMA_MAX, SEED, 0) < 0,
		  "gen 2: the DMA started before the kexec landed, still translated");
	fd = luo_session_retrieve_fd(session, TOKEN_EDU);
	vt_result(fd < 0, "gen 2: the device cannot be retrieved (%s)",
		  fd < 0 ? strerror(-fd) : "retrieved");
	if (fd >= 0)
		close(fd);
	ret = luo_session_finish(session);
	vt_result(!ret, "gen 2: session finished (%s)", ret ? strerror(-ret) : "ok");
	vt_result(!edu_bus_master(&e), "gen 2: %s is still no bus master", e.bdf);
	munmap(mem, GMEM_SIZE);
	close(gfd);
	close(session);
	edu_close(&e);
	return vt_finish();
}

static int stage2(void)
{
	const char *kept = KEPT_LINE;
	int session = vt_session(SESSION, false), gfd, fd, ret;
	uint8_t *mem;
	struct edu e;

	if (run_is("iommu_dma_shared_table")) {
		kept = SHARED_LINE;
		vt_result(vt_dmesg_contains(SHARED_DEV),
			  "gen 2: a second record with the device's table refused: '%s'",
			  SHARED_DEV);
	}
	vt_result(vt_dmesg_contains(kept), "gen 2: boot line '%s'", kept);
	vt_result(!vt_dmesg_contains("Translation was enabled for dmar0 but"),
		  "gen 2: translation was not turned off at boot");
	vt_result(!edu_dmar_faults(), "gen 2: no DMAR fault since boot (%u)", edu_dmar_faults());
	ret = edu_open_sysfs(&e, 0);
	if (ret)
		vt_fatal("gen 2: edu through sysfs: %s", strerror(-ret));
	vt_result(edu_bus_master(&e), "gen 2: %s is still a bus master", e.bdf);
	vt_result(!(edu_read32(&e, 0x98) & 1), "gen 2: its DMA has run");

	gfd = gvm_retrieve(session, TOKEN_GMEM, GMEM_SIZE, "guest_memfd");
	mem = mmap(NULL, GMEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, gfd, 0);
	if (mem == MAP_FAILED)
		vt_fatal("gen 2: mmap guest_memfd: %s", strerror(errno));
	vt_result(vt_check_pattern(mem + GRANULE, EDU_DMA_MAX, SEED, 0) < 0,
		  "gen 2: the DMA started before the kexec landed where its IOVA maps");
	vt_result(vt_check_pattern(mem, EDU_DMA_MAX, SEED, 0) < 0,
		  "gen 2: the first granule is intact");

	fd = luo_session_retrieve_fd(session, TOKEN_EDU);
	vt_result(fd == -ENODEV, "gen 2: not bound to vfio-pci, it cannot be retrieved (%s)",
		  fd < 0 ? strerror(-fd) : "retrieved");
	if (fd >= 0)
		close(fd);

	ret = luo_session_finish(session);
	vt_result(!ret, "gen 2: session finished (%s)", ret ? strerror(-ret) : "ok");
	vt_result(vt_dmesg_contains(BLOCKED "(translation torn down)"),
		  "gen 2: finish blocked the device's translation");
	vt_result(!edu_bus_master(&e), "gen 2: and cleared its bus mastering");
	dma_after_release(&e, mem);

	munmap(mem, GMEM_SIZE);
	close(gfd);
	close(session);
	edu_close(&e);
	return vt_finish();
}

/* The table is adopted for another device: the one it served is blocked. */
static int stage2_adopt_other(void)
{
	int session = vt_session(SESSION, false), gfd, iommufd, ret;
	uint32_t ioas = 0, hwpt = 0, out = 0;
	struct edu e, e2;
	unsigned int faults;
	uint8_t *mem;
	char ids[64];

	if (!vt_cmdline_value(IDS_ARG, ids, sizeof(ids)) ||
	    sscanf(ids, "%u,%u", &ioas, &hwpt) != 2)
		vt_fatal("gen 2: no %s on the command line", IDS_ARG);
	vt_result(vt_dmesg_contains(KEPT_LINE), "gen 2: boot line '%s'", KEPT_LINE);
	gfd = gvm_retrieve(session, TOKEN_GMEM, GMEM_SIZE, "guest_memfd");
	mem = mmap(NULL, GMEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, gfd, 0);
	if (mem == MAP_FAILED)
		vt_fatal("gen 2: mmap guest_memfd: %s", strerror(errno));
	iommufd = luo_session_retrieve_fd(session, TOKEN_IOMMUFD);
	if (iommufd < 0)
		vt_fatal("gen 2: retrieve iommufd: %s", strerror(-iommufd));
	ret = edu_open_sysfs(&e, 0);
	if (ret)
		vt_fatal("gen 2: edu through sysfs: %s", strerror(-ret));

	ret = edu_open_nth(&e2, 1);
	if (!ret)
		ret = edu_bind(&e2, iommufd);
	if (!ret)
		ret = iofd_adopt(iommufd, e2.devid, ioas, IOMMU_HWPT_ALLOC_PERSIST,
				 hwpt, 0, &out);
	if (!ret)
		ret = edu_attach(&e2, &out);
	vt_result(!ret, "gen 2: HWPT %u's table adopted for %s (%s)", hwpt, e2.bdf,
		  ret ? strerror(-ret) : "ok");
	if (ret)
		vt_fatal("gen 2: nothing more to check");
	vt_result(vt_dmesg_contains(ADOPTED_OTHER),
		  "gen 2: %s, which translated through it, is blocked first", e.bdf);

	faults = edu_dmar_faults();
	memset(mem + GRANULE, 0, EDU_DMA_MAX);
	ret = edu_dma_start(&e, IOVA_TARGET, 0, EDU_DMA_MAX, true);
	if (!ret)
		ret = edu_dma_wait(&e, DMA_MS);
	usleep(200000);
	vt_result(!ret && edu_dmar_faults() > faults && zeroed(mem + GRANULE, EDU_DMA_MAX),
		  "gen 2: its DMA to the IOVA faults and does not reach the memory (%s)",
		  ret ? strerror(-ret) : "ok");
	ret = edu_dma_start(&e2, IOVA_GMEM, 0, EDU_DMA_MAX, false);
	if (!ret)
		ret = edu_dma_wait(&e2, DMA_MS);
	if (!ret)
		ret = edu_dma_start(&e2, IOVA_TARGET, 0, EDU_DMA_MAX, true);
	if (!ret)
		ret = edu_dma_wait(&e2, DMA_MS);
	vt_result(!ret && vt_check_pattern(mem + GRANULE, EDU_DMA_MAX, SEED, 0) < 0,
		  "gen 2: %s's DMA goes through the adopted table (%s)", e2.bdf,
		  ret ? strerror(-ret) : "ok");

	ret = luo_session_finish(session);
	vt_result(!ret, "gen 2: session finished (%s)", ret ? strerror(-ret) : "ok");
	vt_result(vt_dmesg_contains(BLOCKED "(no handed-over translation left)") &&
		  !edu_bus_master(&e), "gen 2: and cleared %s's bus mastering", e.bdf);
	munmap(mem, GMEM_SIZE);
	edu_close(&e2);
	edu_close(&e);
	close(iommufd);
	close(gfd);
	close(session);
	return vt_finish();
}

/* Someone else binds the handed-over device: it is blocked, not theirs. */
static int stage2_stolen(void)
{
	int session = vt_session(SESSION, false), gfd, fd, ret;
	unsigned int faults;
	struct iofd io;
	uint8_t *mem;
	struct edu e;

	vt_result(vt_dmesg_contains(KEPT_LINE), "gen 2: boot line '%s'", KEPT_LINE);
	gfd = gvm_retrieve(session, TOKEN_GMEM, GMEM_SIZE, "guest_memfd");
	mem = mmap(NULL, GMEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, gfd, 0);
	if (mem == MAP_FAILED)
		vt_fatal("gen 2: mmap guest_memfd: %s", strerror(errno));
	memset(mem + GRANULE, 0, EDU_DMA_MAX);

	faults = edu_dmar_faults();
	ret = edu_open(&e);
	if (!ret)
		ret = iofd_open(&io);
	if (!ret)
		ret = edu_bind(&e, io.fd);
	vt_result(!ret, "gen 2: %s opened and bound to another iommufd, not attached (%s)",
		  e.bdf, ret ? strerror(-ret) : "ok");
	if (ret)
		vt_fatal("gen 2: nothing more to check");
	ret = edu_dma_start(&e, IOVA_TARGET, 0, EDU_DMA_MAX, true);
	if (!ret)
		ret = edu_dma_wait(&e, DMA_MS);
	vt_result(!ret, "gen 2: the new owner runs a DMA to the handed-over IOVA (%s)",
		  ret ? strerror(-ret) : "ok");
	usleep(200000);
	vt_result(edu_dmar_faults() > faults, "gen 2: it faults (%u DMAR faults logged)",
		  edu_dmar_faults() - faults);
	vt_result(zeroed(mem + GRANULE, EDU_DMA_MAX),
		  "gen 2: and does not reach the guest memory that IOVA mapped");

	edu_close(&e);
	fd = luo_session_retrieve_fd(session, TOKEN_IOMMUFD);
	if (fd < 0)
		vt_fatal("gen 2: retrieve iommufd: %s", strerror(-fd));
	ret = luo_session_retrieve_fd(session, TOKEN_EDU);
	vt_result(ret == -EINVAL, "gen 2: closed again, it cannot be retrieved: EINVAL (%s)",
		  ret < 0 ? strerror(-ret) : "retrieved");
	if (ret >= 0)
		close(ret);
	close(fd);

	ret = edu_open(&e);
	if (!ret)
		ret = edu_bind(&e, io.fd);
	if (ret)
		vt_fatal("gen 2: open and bind again: %s", strerror(-ret));
	ret = luo_session_finish(session);
	vt_result(!ret, "gen 2: session finished (%s)", ret ? strerror(-ret) : "ok");
	vt_result(vt_dmesg_contains(OTHER_OWNER) && edu_bus_master(&e),
		  "gen 2: finish leaves the bus mastering of its owner's device alone");
	munmap(mem, GMEM_SIZE);
	close(gfd);
	close(session);
	edu_close(&e);
	close(io.fd);
	return vt_finish();
}

int main(int argc, char **argv)
{
	if (vt_stage(argc, argv, 2) == 1)
		stage1();
	if (run_is("iommu_dma_stolen"))
		return stage2_stolen();
	if (run_is("iommu_dma_adopt_other"))
		return stage2_adopt_other();
	if (run_is("iommu_dma_mode_mismatch"))
		return stage2_mismatch();
	return refused_run() ? stage2_refused() : stage2();
}
