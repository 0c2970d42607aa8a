// SPDX-License-Identifier: GPL-2.0
/*
 * pm-vmm: the VM, its vCPU threads, and pausing them.
 *
 * Each vCPU has a thread in a KVM_RUN loop. Pausing sets immediate_exit
 * in every kvm_run and kicks the threads with SIGUSR1. A thread that was
 * in the guest comes back with -EINTR; one that was answering an I/O exit
 * enters KVM_RUN once more, and KVM completes that I/O (the data of an IN
 * into RAX, RIP past the instruction) before it returns -EINTR. Only then
 * does the thread count itself paused: a vCPU whose state is saved with
 * an I/O half done would repeat the instruction after the restore, and an
 * IN from a register with read side effects (the UART's IIR) would lose
 * what the first read took. The threads wait on the VMM's condition
 * variable until vmm_resume() or vmm_stop().
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>

#include "vmm.h"

#define TSS_ADDR	0xfffbd000

void vmm_set_irq(struct vmm *v, unsigned int irq, bool level)
{
	struct kvm_irq_level line = { .irq = irq, .level = level };

	if (ioctl(v->vm, KVM_IRQ_LINE, &line))
		vmm_log("IRQ %u: %m", irq);
}

int vmm_create_vm(struct vmm *v)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	int size;

	v->vm = ioctl(v->kvm, KVM_CREATE_VM, 0);
	if (v->vm < 0)
		return -errno;
	size = ioctl(v->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size <= 0)
		return -errno;
	v->run_size = size;
	if (ioctl(v->vm, KVM_SET_TSS_ADDR, TSS_ADDR) ||
	    ioctl(v->vm, KVM_CREATE_IRQCHIP) ||
	    ioctl(v->vm, KVM_CREATE_PIT2, &pit))
		return -errno;
	return 0;
}

/*
 * KVM's supported CPUID with this vCPU's APIC ID in it, without VMX and
 * SVM: the VMM does not save a guest's nested state (KVM_GET_NESTED_STATE),
 * so a guest running VMs of its own would lose them in a live update.
 */
static int set_cpuid(struct vmm *v, struct vcpu *c)
{
	size_t size = sizeof(struct kvm_cpuid2) + 256 * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *cpuid = calloc(1, size);
	int ret = 0;

	if (!cpuid)
		return -ENOMEM;
	cpuid->nent = 256;
	if (ioctl(v->kvm, KVM_GET_SUPPORTED_CPUID, cpuid)) {
		ret = -errno;
		goto out;
	}
	for (unsigned int i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		if (e->function == 1) {
			e->ebx = (e->ebx & 0x00ffffff) | c->index << 24;
			e->ecx &= ~(1u << 5);			/* VMX */
		}
		if (e->function == 0x80000001)
			e->ecx &= ~(1u << 2);			/* SVM */
		if (e->function == 0xb || e->function == 0x1f)
			e->edx = c->index;
	}
	if (ioctl(c->fd, KVM_SET_CPUID2, cpuid))
		ret = -errno;
out:
	free(cpuid);
	return ret;
}

int vmm_create_vcpus(struct vmm *v, bool fresh)
{
	for (unsigned int i = 0; i < v->nr_vcpus; i++) {
		struct vcpu *c = &v->vcpus[i];
		int ret;

		c->vmm = v;
		c->index = i;
		c->fd = ioctl(v->vm, KVM_CREATE_VCPU, i);
		if (c->fd < 0)
			return -errno;
		c->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
			      c->fd, 0);
		if (c->run == MAP_FAILED)
			return -errno;
		if (fresh) {
			ret = set_cpuid(v, c);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/* Answer an I/O exit; true if the test device holds the vCPU. */
static bool handle_io(struct vcpu *c)
{
	struct kvm_run *run = c->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	struct vmm *v = c->vmm;
	bool hold = false;

	for (uint32_t n = 0; n < run->io.count; n++, data += run->io.size) {
		uint16_t port = run->io.port;
		bool in = run->io.direction == KVM_EXIT_IO_IN;

		if (port >= 0x3f8 && port <= 0x3ff && run->io.size == 1)
			uart_io(v, port, in, data);
		else if (v->testdev.on && port >= TESTDEV_PORT &&
			 port < TESTDEV_PORT + TESTDEV_PORTS)
			hold |= testdev_io(v, in, data, run->io.size);
		else if (in)
			memset(data, 0xff, run->io.size);	/* nothing there */
	}
	return hold;
}

/* An exit the VMM cannot handle: say what KVM reported and where the guest was. */
static void report_exit(struct vcpu *c)
{
	struct kvm_run *run = c->run;
	struct kvm_regs regs;
	char where[64] = "";

	if (!ioctl(c->fd, KVM_GET_REGS, &regs))
		snprintf(where, sizeof(where), " at rip %#llx", regs.rip);
	if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR)
		vmm_log("vCPU %u: KVM internal error %u%s (data %#llx %#llx %#llx %#llx)",
			c->index, run->internal.suberror, where,
			run->internal.ndata > 0 ? run->internal.data[0] : 0,
			run->internal.ndata > 1 ? run->internal.data[1] : 0,
			run->internal.ndata > 2 ? run->internal.data[2] : 0,
			run->internal.ndata > 3 ? run->internal.data[3] : 0);
	else
		vmm_log("vCPU %u: unexpected exit %u%s", c->index, run->exit_reason, where);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *c = arg;
	struct vmm *v = c->vmm;
	bool settled = true;	/* no exit KVM has yet to complete */

	for (;;) {
		pthread_mutex_lock(&v->lock);
		if (v->pause && settled && !v->quit) {
			v->paused++;
			pthread_cond_broadcast(&v->cond);
			while (v->pause && !v->quit)
				pthread_cond_wait(&v->cond, &v->lock);
			v->paused--;
		}
		if (v->quit) {
			pthread_mutex_unlock(&v->lock);
			return NULL;
		}
		pthread_mutex_unlock(&v->lock);

		if (ioctl(c->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				settled = true;
				continue;
			}
			vmm_log("vCPU %u: KVM_RUN: %m", c->index);
			vmm_stop(v, VMM_EKVM);
			continue;
		}
		settled = false;
		switch (c->run->exit_reason) {
		case KVM_EXIT_IO:
			if (handle_io(c))
				testdev_hold(c);
			break;
		case KVM_EXIT_MMIO:
			if (!c->run->mmio.is_write)
				memset(c->run->mmio.data, 0xff, c->run->mmio.len);
			break;
		case KVM_EXIT_INTR:
			break;
		case KVM_EXIT_SHUTDOWN:
		case KVM_EXIT_SYSTEM_EVENT:
			vmm_log("vCPU %u: the guest shut down (exit %u)", c->index,
				c->run->exit_reason);
			vmm_stop(v, VMM_EGUEST);
			break;
		default:
			report_exit(c);
			vmm_stop(v, VMM_EKVM);
		}
	}
}

static void kick(int sig)
{
}

/*
 * The threads start under the lock: none enters KVM_RUN, or can ask for a
 * stop that kicks the others, before all of them exist. If one cannot be
 * created, those that were leave at once.
 */
int vmm_start_vcpus(struct vmm *v)
{
	struct sigaction sa = { .sa_handler = kick };
	int ret = 0;

	sigaction(SIGUSR1, &sa, NULL);
	pthread_mutex_lock(&v->lock);
	for (unsigned int i = 0; i < v->nr_vcpus && !ret; i++)
		ret = pthread_create(&v->vcpus[i].thread, NULL, vcpu_thread,
				     &v->vcpus[i]);
	if (ret)
		v->quit = true;
	pthread_mutex_unlock(&v->lock);
	return -ret;
}

static void kick_all(struct vmm *v)
{
	for (unsigned int i = 0; i < v->nr_vcpus; i++) {
		v->vcpus[i].run->immediate_exit = 1;
		pthread_kill(v->vcpus[i].thread, SIGUSR1);
	}
}

/*
 * A kick that lands while a thread is outside KVM_RUN (writing console
 * output, say) is lost on it: kick again every 100 ms until all stopped.
 */
void vmm_pause(struct vmm *v)
{
	pthread_mutex_lock(&v->lock);
	v->pause = true;
	pthread_cond_broadcast(&v->cond);	/* a vCPU the test device holds */
	kick_all(v);
	while (v->paused < v->nr_vcpus && !v->quit) {
		struct timespec t;

		clock_gettime(CLOCK_REALTIME, &t);
		t.tv_nsec += 100 * 1000 * 1000;
		if (t.tv_nsec >= 1000 * 1000 * 1000) {
			t.tv_sec++;
			t.tv_nsec -= 1000 * 1000 * 1000;
		}
		if (pthread_cond_timedwait(&v->cond, &v->lock, &t) == ETIMEDOUT)
			kick_all(v);
	}
	for (unsigned int i = 0; i < v->nr_vcpus; i++)
		v->vcpus[i].run->immediate_exit = 0;
	pthread_mutex_unlock(&v->lock);
}

void vmm_resume(struct vmm *v)
{
	pthread_mutex_lock(&v->lock);
	v->pause = false;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
}

void vmm_stop(struct vmm *v, int code)
{
	pthread_mutex_lock(&v->lock);
	if (!v->quit) {
		v->quit = true;
		v->exit_code = code;
		kick_all(v);
	}
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
}
