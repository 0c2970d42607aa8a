/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pm-vmm: the reference VMM of persistmem.
 *
 * One x86-64 VM with up to 8 vCPUs, the in-kernel LAPIC, IOAPIC, PIC and
 * PIT, guest RAM in one or two memslots of one file (a persistent
 * guest_memfd or a memfd), an 8250 UART at 0x3f8 (IRQ 4) as the console,
 * an MP table to describe the CPUs and interrupts, with --testdev a test
 * device (testdev.c), and nothing else: the guest boots with no ACPI and
 * no PCI.
 */
#ifndef _PM_VMM_H
#define _PM_VMM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <linux/compiler.h>
#include <linux/kvm.h>

#include "persistmem.h"

#define VMM_MAX_VCPUS	8
#define VMM_MAX_RAM	(64ull << 30)
/*
 * Guest RAM: the first 3 GiB at GPA 0, the rest from 4 GiB up, above the
 * IOAPIC, the LAPIC and the 32-bit hole they sit in.
 */
#define VMM_LOW_RAM_END	(3ull << 30)
#define VMM_HIGH_RAM	(4ull << 30)

/* Exit codes: each failure class has its own, for scripts and tests. */
enum vmm_exit {
	VMM_OK = 0,
	VMM_EUSAGE = 2,		/* bad command line */
	VMM_EKVM = 3,		/* KVM refused to create or run the VM */
	VMM_EMEM = 4,		/* guest memory could not be created or mapped */
	VMM_EBOOT = 5,		/* kernel or initrd cannot be loaded */
	VMM_ESESSION = 6,	/* --resume: no such session or file in it */
	VMM_ESTATE = 7,		/* --resume: state file damaged or foreign */
	VMM_ERESTORE = 8,	/* --resume: KVM refused the saved state */
	VMM_EGUEST = 9,		/* the guest shut down or crashed */
};

/* LUO tokens of the files a VMM preserves in its session. */
#define VMM_TOKEN_RAM	1
#define VMM_TOKEN_STATE	2

/* The VMM's own records in the state file. */
#define VMM_REC_UART	PM_REC_DEVICE		/* struct uart */
#define VMM_REC_INFO	(PM_REC_DEVICE + 1)	/* struct vmm_info (update.c) */
#define VMM_REC_TESTDEV	(PM_REC_DEVICE + 2)	/* __u32, the test device's next */

enum vmm_backing {
	VMM_GMEM,	/* persistent guest_memfd, DEFAULT VM, MMAP */
	VMM_MEMFD,	/* memfd, preserved by memfd_luo */
};

struct uart {
	uint8_t ier, lcr, mcr, scr, dll, dlm;
	bool thr_irq;		/* THR empty interrupt pending */
	bool irq_level;		/* line level last driven into IRQ 4 */
};

struct testdev {
	bool on;		/* --testdev, or saved with one */
	bool hold;		/* hold the vCPU of the next IN until a pause */
	uint32_t next;		/* what the next IN answers */
};

struct vcpu {
	struct vmm *vmm;
	int fd;
	unsigned int index;
	struct kvm_run *run;
	pthread_t thread;
};

struct vmm {
	const char *name;
	int kvm, vm;
	unsigned int nr_vcpus;
	struct vcpu vcpus[VMM_MAX_VCPUS];
	size_t run_size;

	enum vmm_backing backing;
	struct pm_gmem_spec gmem;
	int ram_fd;		/* guest_memfd or memfd */
	uint8_t *ram;		/* its mapping: GPA 0 at 0, GPA 4G at 3G */
	uint64_t ram_size;
	bool prefault;		/* allocate all of guest RAM at start */

	pthread_mutex_t lock;	/* UART, test device and pause state */
	pthread_cond_t cond;
	struct uart uart;
	struct testdev testdev;
	bool pause;		/* vCPUs asked to stop */
	unsigned int paused;	/* vCPUs stopped */
	bool quit;
	int exit_code;

	int session;		/* LUO session held across the kexec, or -1 */
	int state_fd;
};

/* boot.c */
int vmm_load_guest(struct vmm *v, const char *kernel, const char *initrd,
		   const char *cmdline);

/* uart.c */
void uart_io(struct vmm *v, uint16_t port, bool in, uint8_t *data);
void uart_save(struct vmm *v, struct pm_state *st);
int uart_restore(struct vmm *v, const struct pm_state *st);

/* testdev.c */
#define TESTDEV_PORT	0xe0
#define TESTDEV_PORTS	4
bool testdev_io(struct vmm *v, bool in, uint8_t *data, uint32_t size);
void testdev_hold(struct vcpu *c);
int testdev_arm(struct vmm *v, char *msg, size_t len);
void testdev_save(struct vmm *v, struct pm_state *st);
int testdev_restore(struct vmm *v, const struct pm_state *st);

/* vcpu.c */
int vmm_create_vm(struct vmm *v);
int vmm_create_vcpus(struct vmm *v, bool set_cpuid);
int vmm_start_vcpus(struct vmm *v);
void vmm_pause(struct vmm *v);
void vmm_resume(struct vmm *v);
void vmm_stop(struct vmm *v, int code);
void vmm_set_irq(struct vmm *v, unsigned int irq, bool level);

/* main.c */
int vmm_map_ram(struct vmm *v);

static inline uint64_t vmm_low_ram(const struct vmm *v)
{
	return v->ram_size < VMM_LOW_RAM_END ? v->ram_size : VMM_LOW_RAM_END;
}

/* update.c */
int vmm_prepare_update(struct vmm *v, char *msg, size_t len);
int vmm_cancel_update(struct vmm *v, char *msg, size_t len);
int vmm_resume_from(struct vmm *v);
uint64_t vmm_now_us(void);
uint64_t vmm_realtime_us(void);

__printf(1, 2) void vmm_log(const char *fmt, ...);

#endif /* _PM_VMM_H */
