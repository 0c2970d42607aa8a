// SPDX-License-Identifier: GPL-2.0
/*
 * gmem_persist_cancel: a kexec that fails after persistent guest_memfds
 * were frozen leaves them working, and the next kexec still carries them.
 *
 * Generation 1 runs a default VM on a 64 MiB persistent guest_memfd
 * (2 MiB granules, MMAP|INIT_SHARED): its vCPU writes a pattern over the
 * first quarter, the file is preserved in a LUO session together with a
 * second persistent file, and the vCPU writes the second quarter (new
 * granules between preserve and freeze). With fault injection
 * (fail_kvm_gmem_persist_freeze: the second freeze call fails) and a
 * kexec image loaded, reboot(LINUX_REBOOT_CMD_KEXEC) must fail: the first
 * file was frozen and has to be thawed. Then everything works again: the
 * vCPU verifies what it wrote and fills the rest (new granules), a granule
 * is punched out (back to the pool) and allocated again (zeroed), the
 * second file kept its content, and the session takes a third file.
 * A file D of 256 granules of 4 KiB, allocated even pages first so that
 * each granule is a run of its own, is preserved between the two: frozen
 * with more runs than fit in its description's page, its runs go to a
 * KHO vmalloc array, which the cancel takes back. Its second half is then
 * punched out, leaving 128 runs, which the real freeze writes in the
 * description's page: the array the cancelled freeze described must not
 * be described any more.
 * Generation 2, after a real kexec, retrieves all four, links the first
 * into a new VM whose vCPU verifies every byte, and checks the others.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/kexec.h>

#include "gmem_vm.h"
#include "persist_test.h"

#define SESSION		"gmem-persist-cancel"
#define TOKEN_A		0x63616e6301ull
#define TOKEN_B		0x63616e6302ull
#define TOKEN_C		0x63616e6303ull
#define TOKEN_D		0x63616e6304ull
#define SIZE_A		(64 * GVM_MIB)
#define SIZE_B		(4 * GVM_MIB)
#define SIZE_C		(2 * GVM_MIB)
#define SIZE_D		(1 * GVM_MIB)
#define PAGE		4096ull
#define GRANULE		(2 * GVM_MIB)
#define SEED_B		0xb0b0ull
#define SEED_C		0xc0c0ull
#define SEED_D		0xd0d0ull
#define ESCAPED		"gmem_cancel.escaped"
#define SHARED_FLAGS	(GUEST_MEMFD_FLAG_PERSIST | GUEST_MEMFD_FLAG_MMAP | \
			 GUEST_MEMFD_FLAG_INIT_SHARED)

static uint32_t seed_a(void)
{
	return gvm_seed(0xca9ce100u);
}

static unsigned long long pools_free(void)
{
	return pt_node_stat(0, "free_bytes") + pt_node_stat(1, "free_bytes");
}

/* A persistent file with @size bytes of pattern @seed, written through mmap. */
static int filled_file(int vm, uint64_t size, uint64_t seed)
{
	int fd = gvm_create_gmem(vm, size, SHARED_FLAGS, GRANULE, 0);

	if (fd < 0)
		vt_fatal("KVM_CREATE_GUEST_MEMFD %llu MiB: %s", (unsigned long long)(size >> 20),
			 strerror(-fd));
	vt_fill_file(fd, size, seed);
	return fd;
}

/* D: 4 KiB granules, even pages allocated first, filled with its pattern. */
static int interleaved_file(int vm)
{
	int fd = gvm_create_gmem(vm, SIZE_D, SHARED_FLAGS, PAGE, 0), ret;

	if (fd < 0)
		vt_fatal("KVM_CREATE_GUEST_MEMFD of D: %s", strerror(-fd));
	ret = gvm_fallocate_interleaved(fd, SIZE_D, PAGE);
	if (ret)
		vt_fatal("fallocate of D, even pages first: %s", strerror(-ret));
	vt_fill_file(fd, SIZE_D, SEED_D);
	return fd;
}

/* The runs the cancelled freeze of D wrote, from its tracepoint line. */
static void check_d_frozen_runs(void)
{
	static const char *const keys[] = { "size", "nr_extents" };
	uint64_t v[4 * 2], runs = 0;
	int n = vt_trace_values("kvm_gmem_persist_freeze:", keys, 2, v, 4), i;

	for (i = 0; i < n && i < 4; i++)
		if (v[2 * i] == SIZE_D)
			runs = v[2 * i + 1];
	vt_result(runs == SIZE_D / PAGE,
		  "gen 1: the cancelled freeze wrote D's %llu runs, more than its page holds",
		  (unsigned long long)runs);
}

static bool file_has(int fd, uint64_t size, uint64_t seed, const char *what)
{
	long long bad;
	void *p;

	p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return vt_result(false, "%s: mmap: %s", what, strerror(errno));
	bad = vt_check_pattern(p, size, seed, 0);
	munmap(p, size);
	return vt_result(bad < 0, "%s: all %llu MiB intact (first bad offset %lld)", what,
			 (unsigned long long)(size >> 20), bad);
}

static void cancelled_kexec(void)
{
	char msg[64];
	long times;
	int ret, err;

	/* Flagged, so that stage 1 knows should this kernel boot after all. */
	gvm_arm_failing_kexec(3, ESCAPED "=1");

	vt_diag("gen 1: reboot(LINUX_REBOOT_CMD_KEXEC) with the 3rd freeze failing");
	ret = reboot(RB_KEXEC);
	err = errno;
	vt_result(ret < 0, "gen 1: reboot(KEXEC) fails when a freeze fails (%s)",
		  ret < 0 ? strerror(err) : "returned 0");
	times = gvm_fail_left(GVM_FAIL_FREEZE);
	vt_result(times == 0, "gen 1: the injected freeze failure was used (times %ld)", times);
	snprintf(msg, sizeof(msg), "Freeze failed for token[%#llx]", TOKEN_B);
	vt_result(vt_dmesg_contains(msg), "gen 1: the kernel log says '%s'", msg);
	gvm_fail_off(GVM_FAIL_FREEZE);

	ret = syscall(__NR_kexec_file_load, -1, -1, 0UL, NULL, (unsigned long)KEXEC_FILE_UNLOAD);
	vt_result(!ret, "gen 1: kexec image unloaded (%s)", ret ? strerror(errno) : "ok");
}

static bool is_zero(const void *p, size_t len)
{
	const uint64_t *q = p;
	size_t i;

	for (i = 0; i < len / 8; i++)
		if (q[i])
			return false;
	return true;
}

static void stage1(void)
{
	uint64_t quarter = SIZE_A / 4, last = SIZE_A - GRANULE;
	unsigned long long free0;
	int session, a, b, c, d, ret;
	const char *what;
	struct gvm g;
	char buf[8];

	if (vt_cmdline_value(ESCAPED, buf, sizeof(buf)))
		vt_fatal("gen 1 booted again: the kexec went through although a freeze failed");
	ret = gvm_create(&g, KVM_X86_DEFAULT_VM);
	if (ret)
		vt_fatal("create VM: %s", strerror(-ret));
	a = gvm_create_gmem(g.vm, SIZE_A, SHARED_FLAGS, GRANULE, 0);
	if (a < 0)
		vt_fatal("KVM_CREATE_GUEST_MEMFD: %s", strerror(-a));
	ret = gvm_set_gmem(&g, a, SIZE_A, false, &what);
	if (ret)
		vt_fatal("%s: %s", what, strerror(-ret));
	gvm_point(&g, GVM_FILL, seed_a(), 0, quarter, "gen 1: first quarter before preserve");
	b = filled_file(g.vm, SIZE_B, SEED_B);
	d = interleaved_file(g.vm);

	session = vt_session(SESSION, true);
	ret = luo_session_preserve_fd(session, a, TOKEN_A);
	vt_result(!ret, "gen 1: VM's file preserved first (ret %d)", ret);
	ret = luo_session_preserve_fd(session, d, TOKEN_D);
	vt_result(!ret, "gen 1: D, 256 runs, preserved next (ret %d)", ret);
	ret = luo_session_preserve_fd(session, b, TOKEN_B);
	vt_result(!ret, "gen 1: second file preserved (ret %d)", ret);
	gvm_point(&g, GVM_FILL, seed_a(), quarter, quarter,
		  "gen 1: second quarter between preserve and freeze");

	ret = vt_trace_start("kvm_gmem_persist");
	if (ret)
		vt_fatal("trace kvm_gmem_persist: %s", strerror(-ret));
	cancelled_kexec();
	check_d_frozen_runs();

	/* Thawed: old granules, new granules, fallocate and punch-hole all work. */
	gvm_point(&g, GVM_VERIFY, seed_a(), 0, 2 * quarter, "gen 1: after the cancelled kexec");
	gvm_point(&g, GVM_FILL, seed_a(), 2 * quarter, 2 * quarter,
		  "gen 1: new granules after the cancelled kexec");
	free0 = pools_free();
	ret = fallocate(a, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, last, GRANULE) ? -errno : 0;
	vt_result(!ret && pools_free() == free0 + GRANULE,
		  "gen 1: punch-hole of the last granule (ret %d, pools free %+lld)", ret,
		  (long long)(pools_free() - free0));
	ret = fallocate(a, FALLOC_FL_KEEP_SIZE, last, GRANULE) ? -errno : 0;
	vt_result(!ret && pools_free() == free0,
		  "gen 1: fallocate of the last granule (ret %d, pools free %+lld)", ret,
		  (long long)(pools_free() - free0));
	vt_result(is_zero((char *)g.uaddr + last, GRANULE),
		  "gen 1: the granule allocated again reads zero");
	gvm_point(&g, GVM_FILL, seed_a(), last, GRANULE, "gen 1: last granule written again");
	gvm_point(&g, GVM_VERIFY, seed_a(), 0, SIZE_A, "gen 1: whole file");
	file_has(b, SIZE_B, SEED_B, "gen 1: second file after the cancelled kexec");
	file_has(d, SIZE_D, SEED_D, "gen 1: D after the cancelled kexec");
	ret = fallocate(d, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, SIZE_D / 2, SIZE_D / 2);
	vt_result(!ret, "gen 1: D's second half punched out: 128 runs left (%s)",
		  ret ? strerror(errno) : "ok");

	c = filled_file(g.vm, SIZE_C, SEED_C);
	ret = luo_session_preserve_fd(session, c, TOKEN_C);
	vt_result(!ret, "gen 1: the session takes a third file after the cancel (ret %d)", ret);
	vt_hold();
}

/* D: its first half as written, its second half a hole. */
static void check_d(int d)
{
	long long bad = -1;
	void *p;

	p = mmap(NULL, SIZE_D, PROT_READ, MAP_SHARED, d, 0);
	if (p == MAP_FAILED) {
		vt_result(false, "gen 2: mmap D: %s", strerror(errno));
		return;
	}
	bad = vt_check_pattern(p, SIZE_D / 2, SEED_D, 0);
	vt_result(bad < 0 && is_zero((char *)p + SIZE_D / 2, SIZE_D / 2),
		  "gen 2: D's first half intact (first bad %lld), its second half zero", bad);
	munmap(p, SIZE_D);
}

static int stage2(void)
{
	int session = vt_session(SESSION, false), a, la, b, c, d, ret;
	const char *what;
	struct gvm g;

	a = gvm_retrieve(session, TOKEN_A, SIZE_A, "VM's file");
	b = gvm_retrieve(session, TOKEN_B, SIZE_B, "second file");
	c = gvm_retrieve(session, TOKEN_C, SIZE_C, "third file");
	d = gvm_retrieve(session, TOKEN_D, SIZE_D, "D, frozen with an array, then without");
	check_d(d);

	ret = gvm_create(&g, KVM_X86_DEFAULT_VM);
	if (ret)
		vt_fatal("gen 2: create VM: %s", strerror(-ret));
	la = gvm_link(g.vm, a);
	if (la < 0)
		vt_fatal("gen 2: KVM_LINK_GUEST_MEMFD: %s", strerror(-la));
	ret = gvm_set_gmem(&g, la, SIZE_A, false, &what);
	if (ret)
		vt_fatal("gen 2: %s: %s", what, strerror(-ret));
	gvm_point(&g, GVM_VERIFY, seed_a(), 0, SIZE_A, "gen 2: VM's file in a new VM");
	file_has(b, SIZE_B, SEED_B, "gen 2: second file");
	file_has(c, SIZE_C, SEED_C, "gen 2: third file");

	ret = luo_session_finish(session);
	vt_result(!ret, "gen 2: finish session (ret %d)", ret);
	gvm_destroy(&g);
	close(la);
	close(a);
	close(b);
	close(c);
	close(d);
	close(session);
	return vt_finish();
}

int main(int argc, char **argv)
{
	if (vt_stage(argc, argv, 2) == 1)
		stage1();
	return stage2();
}
