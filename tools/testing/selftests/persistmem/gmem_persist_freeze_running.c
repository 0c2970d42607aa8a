// SPDX-License-Identifier: GPL-2.0
/*
 * gmem_persist_freeze_running: a VM whose vCPU and VMM keep faulting new
 * granules of its persistent guest_memfd runs on through a live update
 * cancelled after the file was frozen, and the real kexec keeps every
 * byte.
 *
 * Generation 1 runs a default VM on a 64 MiB persistent guest_memfd of
 * 4 KiB granules (MMAP|INIT_SHARED), so that every page the guest or the
 * VMM touches first is a new granule. The file is preserved, then a
 * 256 MiB file of 4 KiB granules. A vCPU thread fills the first half of
 * the VM's file in 1 MiB runs, a VMM thread writes the second half through
 * its mapping, page by page, both over and over until told to stop, so
 * that both are at work throughout the reboot. Meanwhile a third thread
 * fallocates the whole second file, holding its invalidate lock, and the
 * main thread reboots into a loaded kexec image with the second freeze
 * failing (fail_kvm_gmem_persist_freeze): the VM's file is frozen first
 * and stays frozen while the second file's freeze waits for the
 * fallocate, so the vCPU and the VMM thread fault new granules of a
 * frozen file. The reboot fails; both threads must never see an error
 * (no -EBUSY from KVM_RUN, no SIGBUS) and must make progress after the
 * thaw. Then the rest of the file is written, every byte verified by the
 * vCPU, and generation 2 retrieves the file after a real kexec, links it
 * into a new VM and verifies every byte again.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gmem_vm.h"
#include "persist_test.h"

#define SESSION		"gmem-persist-running"
#define TOKEN_A		0x72756e6e01ull
#define TOKEN_B		0x72756e6e02ull
#define SIZE_A		(64 * GVM_MIB)
#define SIZE_B		(256 * GVM_MIB)
#define HALF		(SIZE_A / 2)
#define RUN		GVM_MIB
#define PAGE		4096ull
#define ESCAPED		"gmem_running.escaped"
#define FLAGS		(GUEST_MEMFD_FLAG_PERSIST | GUEST_MEMFD_FLAG_MMAP | \
			 GUEST_MEMFD_FLAG_INIT_SHARED)

static uint32_t seed(void)
{
	return gvm_seed(0x4a11ce00u);
}

struct worker {
	struct gvm *g;
	int fd;
	pthread_t thread;
	/* Set by the main thread; progress in bytes, set by the worker. */
	int stop;
	uint64_t done;
	char why[300];
};

/*
 * The vCPU fills [0, HALF) one run at a time, over and over (the pattern
 * is the same each time), until stopped: however fast the machine, it is
 * at work throughout the reboot. @done counts bytes written.
 */
static void *vcpu_worker(void *arg)
{
	struct worker *w = arg;
	struct gvm_result r;

	while (!__atomic_load_n(&w->stop, __ATOMIC_SEQ_CST)) {
		if (!gvm_run(w->g, GVM_FILL, seed(), w->done % HALF, RUN, &r)) {
			snprintf(w->why, sizeof(w->why), "vCPU at %#llx: %s",
				 (unsigned long long)(w->done % HALF), r.why);
			break;
		}
		__atomic_add_fetch(&w->done, RUN, __ATOMIC_SEQ_CST);
	}
	return NULL;
}

/* The guest's pattern, written by the VMM into file page @page. */
static void host_write_page(struct gvm *g, uint64_t page)
{
	uint32_t *p = (uint32_t *)((char *)g->uaddr + page * PAGE), v = gvm_value(seed(), page);
	size_t i;

	for (i = 0; i < PAGE / 4; i++)
		p[i] = v;
}

/*
 * The VMM writes [HALF, SIZE_A) through the mapping, one new granule at a
 * time, over and over until stopped, pausing between pages so that the
 * first pass lasts. A fault it cannot take kills it with SIGBUS.
 */
static void *host_worker(void *arg)
{
	struct timespec pause = { .tv_nsec = 200 * 1000 };
	struct worker *w = arg;

	while (!__atomic_load_n(&w->stop, __ATOMIC_SEQ_CST)) {
		host_write_page(w->g, (HALF + w->done % HALF) / PAGE);
		__atomic_add_fetch(&w->done, PAGE, __ATOMIC_SEQ_CST);
		nanosleep(&pause, NULL);
	}
	return NULL;
}

/* Allocates all of the second file: its invalidate lock held throughout. */
static void *fallocate_worker(void *arg)
{
	struct worker *w = arg;

	if (fallocate(w->fd, FALLOC_FL_KEEP_SIZE, 0, SIZE_B))
		snprintf(w->why, sizeof(w->why), "fallocate of the second file: %s",
			 strerror(errno));
	__atomic_store_n(&w->done, SIZE_B, __ATOMIC_SEQ_CST);
	return NULL;
}

static void start(struct worker *w, void *(*fn)(void *))
{
	int err = pthread_create(&w->thread, NULL, fn, w);

	if (err)
		vt_fatal("pthread_create: %s", strerror(err));
}

static uint64_t progress(struct worker *w)
{
	return __atomic_load_n(&w->done, __ATOMIC_SEQ_CST);
}

static void wait_progress(struct worker *w, uint64_t min, const char *what)
{
	int i;

	for (i = 0; i < 6000 && progress(w) < min && !w->why[0]; i++)
		usleep(10 * 1000);
	if (progress(w) < min)
		vt_fatal("gen 1: %s made no progress: %s", what, w->why[0] ? w->why : "timeout");
}

/* reboot(KEXEC) with the second freeze failing, while the workers run. */
static void cancelled_kexec(void)
{
	long left;
	int ret, err;

	ret = gvm_fail(GVM_FAIL_FREEZE, 2);
	if (ret)
		vt_fatal("arm %s: %s", GVM_FAIL_FREEZE, strerror(-ret));
	err = vt_kexec_cancelled(ESCAPED);
	vt_result(err, "gen 1: reboot(KEXEC) fails when a freeze fails (%s)",
		  err ? strerror(err) : "returned 0");
	left = gvm_fail_left(GVM_FAIL_FREEZE);
	vt_result(left == 0, "gen 1: the injected freeze failure was used (left %ld)", left);
	gvm_fail_off(GVM_FAIL_FREEZE);
}

static void stage1(void)
{
	struct worker vcpu = { 0 }, host = { 0 }, alloc = { 0 };
	uint64_t vcpu_at, host_at;
	int session, a, b, ret;
	const char *what;
	struct gvm g;
	char buf[8];

	if (vt_cmdline_value(ESCAPED, buf, sizeof(buf)))
		vt_fatal("gen 1 booted again: the kexec went through although a freeze failed");
	if (access(GVM_FAIL_FREEZE, F_OK))
		vt_fatal("%s: %s", GVM_FAIL_FREEZE, strerror(errno));
	ret = gvm_create(&g, KVM_X86_DEFAULT_VM);
	if (ret)
		vt_fatal("create VM: %s", strerror(-ret));
	a = gvm_create_gmem(g.vm, SIZE_A, FLAGS, PAGE, 0);
	b = gvm_create_gmem(g.vm, SIZE_B, FLAGS, PAGE, 0);
	if (a < 0 || b < 0)
		vt_fatal("KVM_CREATE_GUEST_MEMFD: %s", strerror(-(a < 0 ? a : b)));
	ret = gvm_set_gmem(&g, a, SIZE_A, false, &what);
	if (ret)
		vt_fatal("%s: %s", what, strerror(-ret));

	session = vt_session(SESSION, true);
	ret = luo_session_preserve_fd(session, a, TOKEN_A);
	vt_result(!ret, "gen 1: VM's file preserved first (ret %d)", ret);
	ret = luo_session_preserve_fd(session, b, TOKEN_B);
	vt_result(!ret, "gen 1: second file preserved (ret %d)", ret);

	vcpu.g = &g;
	host.g = &g;
	alloc.fd = b;
	start(&vcpu, vcpu_worker);
	start(&host, host_worker);
	wait_progress(&vcpu, RUN, "the vCPU");
	wait_progress(&host, 16 * PAGE, "the VMM thread");
	start(&alloc, fallocate_worker);
	usleep(20 * 1000);

	cancelled_kexec();
	vcpu_at = progress(&vcpu);
	host_at = progress(&host);
	/* Faults on new granules during the freeze need a first pass under way. */
	vt_diag("gen 1: reboot returned with %llu KiB by the vCPU, %llu KiB by the VMM, of %llu",
		(unsigned long long)vcpu_at >> 10, (unsigned long long)host_at >> 10,
		HALF >> 10);
	/* They go on after the thaw: each gets further. */
	wait_progress(&vcpu, vcpu_at + RUN, "the vCPU after the thaw");
	wait_progress(&host, host_at + 16 * PAGE, "the VMM thread after the thaw");
	__atomic_store_n(&vcpu.stop, 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&host.stop, 1, __ATOMIC_SEQ_CST);
	pthread_join(vcpu.thread, NULL);
	pthread_join(host.thread, NULL);
	pthread_join(alloc.thread, NULL);
	vt_result(!vcpu.why[0], "gen 1: the vCPU never saw an error%s%s", vcpu.why[0] ? ": " : "",
		  vcpu.why);
	vt_result(!host.why[0] && !alloc.why[0], "gen 1: the VMM never saw an error%s%s",
		  alloc.why[0] ? ": " : "", alloc.why);
	vt_diag("gen 1: vCPU wrote %llu KiB, VMM %llu KiB before they were stopped",
		(unsigned long long)progress(&vcpu) >> 10,
		(unsigned long long)progress(&host) >> 10);

	/* What a first pass left, now that nothing is frozen; then every byte. */
	if (progress(&vcpu) < HALF)
		gvm_point(&g, GVM_FILL, seed(), progress(&vcpu), HALF - progress(&vcpu),
			  "gen 1: rest of the vCPU's half");
	for (; progress(&host) < HALF; host.done += PAGE)
		host_write_page(&g, (HALF + host.done) / PAGE);
	gvm_point(&g, GVM_VERIFY, seed(), 0, SIZE_A, "gen 1: whole file after the cancel");
	vt_hold();
}

static int stage2(void)
{
	int session = vt_session(SESSION, false), a, la, ret;
	const char *what;
	struct gvm g;

	a = gvm_retrieve(session, TOKEN_A, SIZE_A, "VM's file");
	ret = gvm_create(&g, KVM_X86_DEFAULT_VM);
	if (ret)
		vt_fatal("gen 2: create VM: %s", strerror(-ret));
	la = gvm_link(g.vm, a);
	if (la < 0)
		vt_fatal("gen 2: KVM_LINK_GUEST_MEMFD: %s", strerror(-la));
	ret = gvm_set_gmem(&g, la, SIZE_A, false, &what);
	if (ret)
		vt_fatal("gen 2: %s: %s", what, strerror(-ret));
	gvm_point(&g, GVM_VERIFY, seed(), 0, SIZE_A, "gen 2: every byte in a new VM");

	ret = luo_session_finish(session);
	vt_result(!ret, "gen 2: finish (the second file released) (ret %d)", ret);
	gvm_destroy(&g);
	close(la);
	close(a);
	close(session);
	return vt_finish();
}

int main(int argc, char **argv)
{
	if (vt_stage(argc, argv, 2) == 1)
		stage1();
	return stage2();
}
