// SPDX-License-Identifier: GPL-2.0
/*
 * nested_kvm_smoke: KVM works inside the QEMU TCG guest (kvm_amd on an
 * SVM+NPT vCPU). Creates a default VM, a guest_memfd with flags 0 and one
 * with GUEST_MEMFD_FLAG_MMAP | INIT_SHARED, puts a tiny real-mode payload
 * into the mmap()ed guest_memfd, backs guest memory with it and runs one
 * vCPU: the guest stores a word to memory, writes a byte to an I/O port and
 * halts. The host sees the port write, then the HLT, then the stored word
 * through its own mapping of the guest_memfd.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "gmem_vm.h"
#include "vmtest.h"

#define MEM_SIZE	0x10000ul
#define CODE_GPA	0x1000
#define DATA_GPA	0x2000
#define IO_PORT		0x10
#define IO_VALUE	0x42
#define DATA_VALUE	0x1234

/* 16-bit real mode payload loaded at CODE_GPA. */
static const unsigned char payload[] = {
	0xb8, DATA_VALUE & 0xff, DATA_VALUE >> 8,	/* mov $DATA_VALUE, %ax */
	0xa3, DATA_GPA & 0xff, DATA_GPA >> 8,		/* mov %ax, (DATA_GPA) */
	0xb0, IO_VALUE,					/* mov $IO_VALUE, %al */
	0xe6, IO_PORT,					/* out %al, $IO_PORT */
	0xf4,						/* hlt */
};

int main(int argc, char **argv)
{
	struct kvm_userspace_memory_region2 region = { 0 };
	int kvm, vm, vcpu, gmem0, gmem, run_size, ret;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_run *run;
	long flags_cap;
	uint8_t *mem;

	vt_stage(argc, argv, 1);

	kvm = open("/dev/kvm", O_RDWR);
	if (kvm < 0)
		vt_fatal("open /dev/kvm: %s (kvm_amd needs -cpu max with svm,npt)",
			 strerror(errno));
	ret = ioctl(kvm, KVM_GET_API_VERSION, 0);
	vt_result(ret == KVM_API_VERSION, "KVM_GET_API_VERSION: expected %d, got %d",
		  KVM_API_VERSION, ret);
	vm = ioctl(kvm, KVM_CREATE_VM, KVM_X86_DEFAULT_VM);
	if (vm < 0)
		vt_fatal("KVM_CREATE_VM: %s", strerror(errno));

	flags_cap = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_FLAGS);
	vt_diag("KVM_CAP_GUEST_MEMFD_FLAGS = %#lx", flags_cap);
	vt_result(flags_cap >= 0 && (flags_cap & GUEST_MEMFD_FLAG_MMAP),
		  "default VM reports GUEST_MEMFD_FLAG_MMAP (caps %#lx)", flags_cap);

	gmem0 = gvm_create_gmem(vm, MEM_SIZE, 0, 0, 0);
	vt_result(gmem0 >= 0, "guest_memfd flags 0: %s", gmem0 >= 0 ? "created" : strerror(-gmem0));
	if (gmem0 >= 0)
		close(gmem0);

	gmem = gvm_create_gmem(vm, MEM_SIZE, GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED,
			       0, 0);
	if (!vt_result(gmem >= 0, "guest_memfd flags MMAP|INIT_SHARED: %s",
		       gmem >= 0 ? "created" : strerror(-gmem)))
		return vt_finish();
	mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, gmem, 0);
	if (mem == MAP_FAILED)
		vt_fatal("mmap guest_memfd: %s", strerror(errno));
	memcpy(mem + CODE_GPA, payload, sizeof(payload));

	region.slot = 0;
	region.flags = KVM_MEM_GUEST_MEMFD;
	region.guest_phys_addr = 0;
	region.memory_size = MEM_SIZE;
	region.userspace_addr = (uintptr_t)mem;
	region.guest_memfd = gmem;
	region.guest_memfd_offset = 0;
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION2, &region))
		vt_fatal("KVM_SET_USER_MEMORY_REGION2 with guest_memfd: %s", strerror(errno));

	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		vt_fatal("KVM_CREATE_VCPU: %s", strerror(errno));
	run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		vt_fatal("mmap kvm_run: %s", strerror(errno));

	if (ioctl(vcpu, KVM_GET_SREGS, &sregs))
		vt_fatal("KVM_GET_SREGS: %s", strerror(errno));
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	sregs.ds.base = 0;
	sregs.ds.selector = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs))
		vt_fatal("KVM_SET_SREGS: %s", strerror(errno));
	memset(&regs, 0, sizeof(regs));
	regs.rip = CODE_GPA;
	regs.rflags = 0x2;
	if (ioctl(vcpu, KVM_SET_REGS, &regs))
		vt_fatal("KVM_SET_REGS: %s", strerror(errno));

	ret = ioctl(vcpu, KVM_RUN, 0);
	if (ret)
		vt_fatal("KVM_RUN: %s", strerror(errno));
	vt_result(run->exit_reason == KVM_EXIT_IO && run->io.direction == KVM_EXIT_IO_OUT &&
		  run->io.port == IO_PORT && run->io.size == 1 &&
		  *((uint8_t *)run + run->io.data_offset) == IO_VALUE,
		  "first exit: expected IO out port %#x value %#x, got %s (%u) port %#x",
		  IO_PORT, IO_VALUE, gvm_exit_name(run->exit_reason), run->exit_reason,
		  run->exit_reason == KVM_EXIT_IO ? run->io.port : 0);

	ret = ioctl(vcpu, KVM_RUN, 0);
	if (ret)
		vt_fatal("second KVM_RUN: %s", strerror(errno));
	vt_result(run->exit_reason == KVM_EXIT_HLT, "second exit: expected HLT, got %s (%u)",
		  gvm_exit_name(run->exit_reason), run->exit_reason);
	vt_result(*(uint16_t *)(mem + DATA_GPA) == DATA_VALUE,
		  "guest store visible in guest_memfd: expected %#x, got %#x",
		  DATA_VALUE, *(uint16_t *)(mem + DATA_GPA));
	return vt_finish();
}
