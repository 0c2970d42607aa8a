// SPDX-License-Identifier: GPL-2.0
/*
 * pm-vmm: the test device (--testdev), for the live update's own tests.
 *
 * Four ports from 0xe0. Every IN from them answers the next number of a
 * 32-bit sequence (its low bytes for a narrower IN); OUTs are ignored. A
 * guest reading it in a loop expects each number to be one more than the
 * last: an IN the VMM answered but the guest never got shows as a gap.
 * The next number is device state, saved and restored with the UART's.
 *
 * The control command "hold-io" arms the device: it answers the next IN
 * as always, then holds that vCPU out of KVM_RUN until a pause is asked
 * for. The pause therefore finds the vCPU in an I/O exit that KVM has not
 * completed yet, deterministically: the case vcpu.c settles before it
 * counts a vCPU paused. Saved unsettled, the vCPU would repeat the IN
 * after the restore and the guest would see a gap.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vmm.h"

bool testdev_io(struct vmm *v, bool in, uint8_t *data, uint32_t size)
{
	bool hold = false;
	uint32_t seq;

	if (!in)
		return false;
	pthread_mutex_lock(&v->lock);
	seq = v->testdev.next++;
	if (v->testdev.hold) {
		v->testdev.hold = false;
		hold = true;
	}
	pthread_mutex_unlock(&v->lock);
	/* little-endian: the low bytes of the number first */
	memcpy(data, &seq, size < sizeof(seq) ? size : sizeof(seq));
	return hold;
}

void testdev_hold(struct vcpu *c)
{
	struct vmm *v = c->vmm;

	vmm_log("testdev: vCPU %u holds its IN until a pause", c->index);
	pthread_mutex_lock(&v->lock);
	while (!v->pause && !v->quit)
		pthread_cond_wait(&v->cond, &v->lock);
	pthread_mutex_unlock(&v->lock);
}

int testdev_arm(struct vmm *v, char *msg, size_t len)
{
	if (!v->testdev.on) {
		snprintf(msg, len, "error: no test device (--testdev)");
		return -ENODEV;
	}
	pthread_mutex_lock(&v->lock);
	v->testdev.hold = true;
	pthread_mutex_unlock(&v->lock);
	snprintf(msg, len, "armed");
	return 0;
}

void testdev_save(struct vmm *v, struct pm_state *st)
{
	if (v->testdev.on)
		pm_state_add(st, VMM_REC_TESTDEV, 0, &v->testdev.next,
			     sizeof(v->testdev.next));
}

int testdev_restore(struct vmm *v, const struct pm_state *st)
{
	uint32_t size;
	const uint32_t *next = pm_state_find(st, VMM_REC_TESTDEV, 0, &size);

	if (!next)
		return 0;	/* saved without the device */
	if (size != sizeof(*next))
		return -EBADMSG;
	v->testdev.on = true;
	v->testdev.next = *next;
	return 0;
}
