// SPDX-License-Identifier: GPL-2.0
/*
 * pm-vmm: preparing a live update, cancelling it, and resuming after it.
 *
 * Prepare: pause the vCPUs, save VM, vCPU and UART state and the VMM's
 * own description of the VM into a sealed memfd, create the LUO session
 * named after the VM and preserve guest RAM (token 1) and the state
 * (token 2) in it. The VMM then holds the session until the kexec. Any
 * failure closes the session, which unpreserves what it had, and runs
 * the guest on: nothing changed.
 *
 * Resume, in the next kernel: retrieve the session and the state, check
 * the state, then retrieve guest RAM, build a new VM of the same shape,
 * link the guest_memfd into it (or map the memfd), restore the state, run.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm.h"

/* The VMM's own record: what the new VM must look like. */
struct vmm_info {
	uint64_t ram_size;
	uint64_t granule;
	uint32_t backing;
	uint32_t nr_vcpus;
	uint32_t hvo;
	uint32_t pad;
	uint64_t pause_realtime_us;
};

/* Into a sealed memfd; on failure *@why says which read failed. */
static int save_state(struct vmm *v, uint64_t pause_rt, char *why, size_t len)
{
	struct vmm_info info = {
		.ram_size = v->ram_size,
		.granule = v->gmem.granule,
		.backing = v->backing,
		.nr_vcpus = v->nr_vcpus,
		.hvo = v->gmem.hvo,
		.pause_realtime_us = pause_rt,
	};
	struct pm_state st;
	int ret;

	ret = pm_state_init(&st, v->nr_vcpus);
	if (ret)
		return ret;
	pm_state_add(&st, VMM_REC_INFO, 0, &info, sizeof(info));
	for (unsigned int i = 0; i < v->nr_vcpus && !st.err; i++)
		pm_state_save_vcpu(&st, v->kvm, v->vcpus[i].fd, i);
	uart_save(v, &st);
	testdev_save(v, &st);
	if (!st.err)
		pm_state_save_vm(&st, v->vm);
	ret = pm_state_write(&st, "pm-vmm-state");
	snprintf(why, len, "%s", st.err && st.why[0] ? st.why : pm_strerror(ret));
	pm_state_free(&st);
	return ret;
}

int vmm_prepare_update(struct vmm *v, char *msg, size_t len)
{
	uint64_t t0, t1, t2, t3, rt;
	const char *step;
	char why[160];
	int ret;

	if (v->session >= 0) {
		snprintf(msg, len, "error: an update is prepared already");
		return -EBUSY;
	}
	t0 = vmm_now_us();
	rt = vmm_realtime_us();
	vmm_pause(v);
	t1 = vmm_now_us();

	step = "saving state";
	ret = save_state(v, rt, why, sizeof(why));
	if (ret < 0) {
		snprintf(msg, len, "error: saving state: %s", why);
		goto undo;
	}
	v->state_fd = ret;
	t2 = vmm_now_us();

	step = "creating the session";
	ret = pm_session_create(v->name);
	if (ret < 0)
		goto fail;
	v->session = ret;
	step = "preserving guest RAM";
	ret = pm_session_preserve(v->session, v->ram_fd, VMM_TOKEN_RAM);
	if (ret)
		goto fail;
	step = "preserving the state";
	ret = pm_session_preserve(v->session, v->state_fd, VMM_TOKEN_STATE);
	if (ret)
		goto fail;
	t3 = vmm_now_us();
	snprintf(msg, len, "ready pause_us=%llu save_us=%llu preserve_us=%llu",
		 (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t1),
		 (unsigned long long)(t3 - t2));
	return 0;

fail:
	snprintf(msg, len, "error: %s: %s", step, pm_strerror(ret));
undo:
	if (v->session >= 0)
		close(v->session);
	if (v->state_fd >= 0)
		close(v->state_fd);
	v->session = -1;
	v->state_fd = -1;
	vmm_resume(v);
	return ret;
}

int vmm_cancel_update(struct vmm *v, char *msg, size_t len)
{
	if (v->session < 0) {
		snprintf(msg, len, "error: no update is prepared");
		return -EINVAL;
	}
	/* Closing the outgoing session unpreserves guest RAM and the state. */
	close(v->session);
	close(v->state_fd);
	v->session = -1;
	v->state_fd = -1;
	vmm_resume(v);
	snprintf(msg, len, "resumed");
	return 0;
}

static int check_info(struct vmm *v, const struct pm_state *st)
{
	uint32_t size;
	const struct vmm_info *info = pm_state_find(st, VMM_REC_INFO, 0, &size);

	if (!info || size != sizeof(*info)) {
		vmm_log("%s: the state has no VM description", v->name);
		return -EBADMSG;
	}
	if (info->nr_vcpus != st->nr_vcpus || !info->nr_vcpus ||
	    info->nr_vcpus > VMM_MAX_VCPUS || info->backing > VMM_MEMFD ||
	    info->hvo > 1 || info->pad ||
	    (info->granule != 4096 && info->granule != 2ull << 20 &&
	     info->granule != 1ull << 30) ||
	    info->ram_size < 64ull << 20 || info->ram_size > VMM_MAX_RAM ||
	    info->ram_size % info->granule) {
		vmm_log("%s: the state describes a VM this VMM cannot build", v->name);
		return -EBADMSG;
	}
	v->nr_vcpus = info->nr_vcpus;
	v->ram_size = info->ram_size;
	v->backing = info->backing;
	v->gmem.granule = info->granule;
	v->gmem.hvo = info->hvo;
	return 0;
}

static uint64_t pause_realtime(const struct pm_state *st)
{
	const struct vmm_info *info = pm_state_find(st, VMM_REC_INFO, 0, NULL);

	return info->pause_realtime_us;
}

int vmm_resume_from(struct vmm *v)
{
	uint64_t t0 = vmm_now_us(), t1, t2, now_rt;
	struct pm_state st;
	struct stat sb;
	int ret, fd;

	v->session = pm_session_retrieve(v->name);
	if (v->session < 0) {
		vmm_log("--resume %s: session: %s", v->name, pm_strerror(v->session));
		return VMM_ESESSION;
	}
	fd = pm_session_retrieve_fd(v->session, VMM_TOKEN_STATE);
	if (fd < 0) {
		vmm_log("--resume %s: state file (token %d): %s", v->name,
			VMM_TOKEN_STATE, pm_strerror(fd));
		return VMM_ESESSION;
	}
	ret = pm_state_read(&st, fd, 0);
	close(fd);
	if (ret) {
		vmm_log("--resume %s: %s: %s", v->name, pm_strerror(ret), st.why);
		return VMM_ESTATE;
	}
	if (check_info(v, &st)) {
		pm_state_free(&st);
		return VMM_ESTATE;
	}
	v->ram_fd = pm_session_retrieve_fd(v->session, VMM_TOKEN_RAM);
	if (v->ram_fd < 0) {
		vmm_log("--resume %s: guest RAM (token %d): %s", v->name,
			VMM_TOKEN_RAM, pm_strerror(v->ram_fd));
		pm_state_free(&st);
		return VMM_ESESSION;
	}
	if (fstat(v->ram_fd, &sb) || (uint64_t)sb.st_size != v->ram_size) {
		vmm_log("--resume %s: guest RAM file is not the %llu MiB the state says",
			v->name, (unsigned long long)(v->ram_size >> 20));
		pm_state_free(&st);
		return VMM_ESTATE;
	}
	t1 = vmm_now_us();

	ret = vmm_create_vm(v);
	if (!ret)
		ret = vmm_create_vcpus(v, false);
	if (ret) {
		vmm_log("--resume %s: creating the VM: %s", v->name, strerror(-ret));
		pm_state_free(&st);
		return VMM_EKVM;
	}
	if (v->backing == VMM_GMEM) {
		fd = pm_gmem_link(v->vm, v->ram_fd);
		if (fd < 0) {
			vmm_log("--resume %s: linking guest RAM into the VM: %s",
				v->name, strerror(-fd));
			pm_state_free(&st);
			return VMM_EMEM;
		}
		close(v->ram_fd);
		v->ram_fd = fd;
	}
	ret = vmm_map_ram(v);
	if (ret) {
		vmm_log("--resume %s: mapping guest RAM: %s", v->name, strerror(-ret));
		pm_state_free(&st);
		return VMM_EMEM;
	}
	for (unsigned int i = 0; i < v->nr_vcpus && !ret; i++)
		ret = pm_state_restore_vcpu(&st, v->kvm, v->vcpus[i].fd, i);
	if (!ret)
		ret = pm_state_restore_vm(&st, v->vm);
	if (!ret)
		ret = uart_restore(v, &st);
	if (!ret)
		ret = testdev_restore(v, &st);
	if (ret) {
		vmm_log("--resume %s: restoring state: %s: %s", v->name,
			pm_strerror(ret), st.why);
		pm_state_free(&st);
		return VMM_ERESTORE;
	}
	/*
	 * Before the guest runs: a session that is not finished goes back to
	 * LUO when the VMM exits, and a retry must find the guest as saved.
	 */
	ret = pm_session_finish(v->session);
	if (ret) {
		vmm_log("--resume %s: finishing the session: %s", v->name,
			pm_strerror(ret));
		pm_state_free(&st);
		return VMM_ERESTORE;
	}
	close(v->session);
	v->session = -1;
	t2 = vmm_now_us();
	now_rt = vmm_realtime_us();
	vmm_log("%s: resumed: retrieve_us=%llu restore_us=%llu blackout_ms=%llu",
		v->name, (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t1),
		(unsigned long long)((now_rt - pause_realtime(&st)) / 1000));
	pm_state_free(&st);
	return 0;
}
