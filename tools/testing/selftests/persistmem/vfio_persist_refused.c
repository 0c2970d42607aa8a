// SPDX-License-Identifier: GPL-2.0
/*
 * vfio_persist_refused: a VMM preserving a VFIO device cdev wrongly, on a
 * q35 machine with VT-d, one edu device alone in its IOMMU group and two
 * behind a conventional PCI bridge (one group). Preserving the cdev is
 * refused with EINVAL, and changes nothing, while the device is not bound
 * to an iommufd, is bound but not attached, is attached to a HWPT that is
 * not persistent, its iommufd is not in the session, or it shares its
 * group. Once preserved, its attachment cannot change (EBUSY both ways).
 * A kexec whose freeze fails after the device froze (fault injection on a
 * guest_memfd preserved after it) is cancelled: the device is thawed, its
 * VT-d handover record withdrawn, and it still does DMA through its
 * persistent HWPT. Closing the session unpreserves it: it moves again.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/reboot.h>
#include <unistd.h>

#include <linux/vfio.h>

#include "edu.h"
#include "gmem_vm.h"
#include "iofd.h"
#include "libliveupdate.h"
#include "vmtest.h"

#define SESSION		"vfio-refused"
#define TOKEN_GMEM	1
#define TOKEN_IOMMUFD	2
#define TOKEN_EDU	3
#define TOKEN_SHARED	4
#define TOKEN_LAST	5
#define VTD_SUBTREE	"/sys/kernel/debug/kho/out/sub_fdts/intel-iommu-persist-v2"
#define GMEM_SIZE	(4ull << 20)
#define IOVA_GMEM	(32ull << 20)
#define SEED		0x7ef05edull
#define GMEM_FLAGS	(GUEST_MEMFD_FLAG_PERSIST | GUEST_MEMFD_FLAG_MMAP | \
			 GUEST_MEMFD_FLAG_INIT_SHARED)

static int preserve_edu(int session, struct edu *e, uint64_t token)
{
	return luo_session_preserve_fd(session, e->fd, token) ? -errno : 0;
}

static void preserve_refused(int session, struct edu *e, const char *why)
{
	int ret = preserve_edu(session, e, TOKEN_EDU);

	vt_result(ret == -EINVAL, "preserve refused while %s (%s)", why,
		  ret ? strerror(-ret) : "preserved");
}

static uint32_t persistent_hwpt(struct iofd *io, struct edu *e)
{
	struct iommu_hwpt_alloc alloc = { .size = sizeof(alloc),
					  .flags = IOMMU_HWPT_ALLOC_PERSIST,
					  .dev_id = e->devid, .pt_id = io->ioas };

	if (ioctl(io->fd, IOMMU_HWPT_ALLOC, &alloc))
		vt_fatal("persistent HWPT for %s: %s", e->bdf, strerror(errno));
	return alloc.out_hwpt_id;
}

static int detach(struct edu *e)
{
	struct vfio_device_detach_iommufd_pt det = { .argsz = sizeof(det) };

	return ioctl(e->fd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &det) ? -errno : 0;
}

static bool copied(struct edu *e, uint8_t *mem)
{
	int ret;

	memset(mem + (2 << 20), 0, EDU_DMA_MAX);
	ret = edu_dma_start(e, IOVA_GMEM, 0, EDU_DMA_MAX, false);
	if (!ret)
		ret = edu_dma_wait(e, 5000);
	if (!ret)
		ret = edu_dma_start(e, IOVA_GMEM + (2 << 20), 0, EDU_DMA_MAX, true);
	if (!ret)
		ret = edu_dma_wait(e, 5000);
	return !ret && vt_check_pattern(mem + (2 << 20), EDU_DMA_MAX, SEED, 0) < 0;
}

/* The two edu devices behind the bridge: preserving one is refused. */
static void shared_group(int session, struct iofd *io)
{
	struct edu b;
	uint32_t pt;
	int ret;

	ret = edu_open_nth(&b, 1);
	if (ret)
		vt_fatal("edu behind the bridge: %s", strerror(-ret));
	ret = edu_bind(&b, io->fd);
	if (ret)
		vt_fatal("%s: bind: %s", b.bdf, strerror(-ret));
	pt = persistent_hwpt(io, &b);
	ret = edu_attach(&b, &pt);
	if (ret)
		vt_fatal("%s: attach: %s", b.bdf, strerror(-ret));
	ret = preserve_edu(session, &b, TOKEN_SHARED);
	vt_result(ret == -EINVAL, "%s, in a group with another edu and the bridge: refused (%s)",
		  b.bdf, ret ? strerror(-ret) : "preserved");
	ret = detach(&b);
	vt_result(!ret, "%s: still detaches (%s)", b.bdf, ret ? strerror(-ret) : "ok");
	edu_close(&b);
}

int main(int argc, char **argv)
{
	struct iofd io;
	struct edu e;
	uint32_t pt, hwpt;
	int session, vm, gfd, last, ret, err;
	uint8_t *mem;

	vt_stage(argc, argv, 1);
	ret = edu_open(&e);
	if (ret)
		vt_fatal("edu on vfio-pci: %s", strerror(-ret));
	ret = iofd_open(&io);
	if (ret)
		vt_fatal("iommufd: %s", strerror(-ret));
	session = vt_session(SESSION, true);

	vm = gvm_create_vm(0);
	if (vm < 0)
		vt_fatal("KVM_CREATE_VM: %s", strerror(-vm));
	gfd = iofd_map_gmem(&io, vm, GMEM_SIZE, IOVA_GMEM, &mem);
	if (gfd < 0)
		vt_fatal("persistent guest_memfd mapped: %s", strerror(-gfd));
	vt_fill_pattern(mem, EDU_DMA_MAX, SEED, 0);
	if (luo_session_preserve_fd(session, gfd, TOKEN_GMEM))
		vt_fatal("preserve guest_memfd: %s", strerror(errno));

	preserve_refused(session, &e, "the cdev is not bound");
	ret = edu_bind(&e, io.fd);
	if (ret)
		vt_fatal("bind: %s", strerror(-ret));
	preserve_refused(session, &e, "bound but not attached");
	pt = io.ioas;
	ret = edu_attach(&e, &pt);
	if (ret)
		vt_fatal("attach to the IOAS: %s", strerror(-ret));
	preserve_refused(session, &e, "on an automatic HWPT, not persistent");
	hwpt = persistent_hwpt(&io, &e);
	pt = hwpt;
	ret = edu_attach(&e, &pt);
	if (ret)
		vt_fatal("attach to the persistent HWPT: %s", strerror(-ret));
	preserve_refused(session, &e, "its iommufd is not in the session");
	vt_result(copied(&e, mem), "nothing changed: DMA through the persistent HWPT lands");

	if (luo_session_preserve_fd(session, io.fd, TOKEN_IOMMUFD))
		vt_fatal("preserve iommufd: %s", strerror(errno));
	shared_group(session, &io);
	ret = preserve_edu(session, &e, TOKEN_EDU);
	vt_result(!ret, "%s preserved, alone in its group on persistent HWPT %u (%s)", e.bdf,
		  hwpt, ret ? strerror(-ret) : "ok");

	pt = io.ioas;
	ret = edu_attach(&e, &pt);
	vt_result(ret == -EBUSY, "preserved: moving it to another HWPT is refused (%s)",
		  ret ? strerror(-ret) : "moved");
	ret = detach(&e);
	vt_result(ret == -EBUSY, "preserved: detaching it is refused (%s)",
		  ret ? strerror(-ret) : "detached");
	vt_result(copied(&e, mem), "preserved: DMA still lands");

	/* Frozen in preservation order: gmem, iommufd, edu, then last fails. */
	last = gvm_create_gmem(vm, 2 << 20, GMEM_FLAGS, 2 << 20, 0);
	if (last < 0)
		vt_fatal("second persistent guest_memfd: %s", strerror(-last));
	if (luo_session_preserve_fd(session, last, TOKEN_LAST))
		vt_fatal("preserve the second guest_memfd: %s", strerror(errno));
	gvm_arm_failing_kexec(2, "");
	ret = reboot(RB_KEXEC);
	err = errno;
	gvm_fail_off(GVM_FAIL_FREEZE);
	vt_result(ret < 0, "kexec cancelled by a later freeze (%s)",
		  ret < 0 ? strerror(err) : "ok");
	vt_result(vt_dmesg_contains("frozen: DMA goes on across the kexec"),
		  "the device froze first: its translation was to be kept");
	vt_result(access(VTD_SUBTREE, F_OK) && errno == ENOENT,
		  "thawed: no VT-d handover record is left (%s)", strerror(errno));
	vt_result(copied(&e, mem), "after the cancelled kexec DMA still lands");
	pt = io.ioas;
	ret = edu_attach(&e, &pt);
	vt_result(ret == -EBUSY, "still preserved: moving it is refused (%s)",
		  ret ? strerror(-ret) : "moved");

	close(session);
	pt = io.ioas;
	ret = edu_attach(&e, &pt);
	vt_result(!ret, "session closed: the device moves again (%s)",
		  ret ? strerror(-ret) : "ok");

	edu_close(&e);
	munmap(mem, GMEM_SIZE);
	close(gfd);
	close(last);
	close(vm);
	close(io.fd);
	return vt_finish();
}
