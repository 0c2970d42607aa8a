// SPDX-License-Identifier: GPL-2.0
/*
 * gmem_persist_lazy: a retrieve claims a file's granules and each enters
 * the file at its first use; what is never used is neither lost nor kept.
 *
 * Generation 1 fills three persistent guest_memfds (MMAP|INIT_SHARED,
 * node 0), A of 32 MiB and B of 16 MiB in 2 MiB granules and C of 16 MiB
 * in 4 KiB granules, with patterns and preserves them. C's granules are
 * allocated even pages first, so that no two neighbours in the file are
 * neighbours in memory: 4096 runs, more than fit in the description's
 * page, handed over in a KHO vmalloc array; A and B have a few runs each,
 * written in their descriptions' pages. Generation 2 checks the run
 * counts as the retrieves read them (tracepoint).
 *
 * Generation 2 retrieves all three. Nothing may be pending any more, and
 * every granule of A and B must be claimed, none adopted yet: the
 * retrieve did O(runs) work. Then, on granules nobody has touched:
 *   - a punch-hole of granule 3 of A gives it back to the pool (free_bytes
 *     rises by 2 MiB);
 *   - a punch-hole of 8 KiB inside granule 5 of A adopts that granule and
 *     zeroes only those pages;
 *   - a read of granule 7 of A through a mapping adopts it alone and finds
 *     the pattern;
 *   - the close of B, never mapped, gives its 16 MiB back once the session
 *     is finished (LUO holds a retrieved file until then).
 * A is then preserved again, untouched granules included. C is linked
 * into a new VM whose vCPU writes the first half of it in 1 MiB runs,
 * over and over, each 4 KiB page a granule it adopts at its fault, while
 * C is preserved again: the preserve adopts every granule still claimed,
 * letting the file's lock go between batches, so that vCPU faults and
 * preserve adopt from the same runs at once. The vCPU must never fail,
 * nothing may stay claimed. Generation 3 must find A's pattern everywhere
 * but in the two holes, which read zero, and in C the vCPU's pattern in
 * the first half and the first kernel's in the second.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gmem_vm.h"
#include "persist_test.h"

#define SESSION1	"gmem-persist-lazy"
#define SESSION2	"gmem-persist-lazy-2"
#define TOKEN_A		0x6c617a7941ull
#define TOKEN_B		0x6c617a7942ull
#define TOKEN_C		0x6c617a7943ull
#define GRANULE		(2 * GVM_MIB)
#define SIZE_A		(32 * GVM_MIB)
#define SIZE_B		(16 * GVM_MIB)
#define NR_A		((int)(SIZE_A / GRANULE))
#define NR_B		((int)(SIZE_B / GRANULE))
#define PAGE		4096ull
#define SIZE_C		(16 * GVM_MIB)
#define HALF_C		(SIZE_C / 2)	/* written by the vCPU in generation 2 */
#define RUN		GVM_MIB
#define NODE		0
#define SEED_A		0x1a2f0000ull
#define SEED_B		0x1a2f1000ull
#define SEED_C		0x1a2f2000ull
#define PUNCHED		3		/* granule of A punched whole */
#define PART		5		/* granule of A punched in part */
#define PART_OFF	(PART * GRANULE + 8192)
#define PART_LEN	8192
#define READ		7		/* granule of A read */
#define FLAGS		(GUEST_MEMFD_FLAG_PERSIST | GUEST_MEMFD_FLAG_MMAP | \
			 GUEST_MEMFD_FLAG_INIT_SHARED)

static void *map_file(int fd, uint64_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		vt_fatal("mmap guest_memfd: %s", strerror(errno));
	return p;
}

static void create_filled(int vm, int session, uint64_t size, uint64_t granule, uint64_t seed,
			  uint64_t token)
{
	int fd = gvm_create_gmem(vm, size, FLAGS, granule, 0), ret;
	void *p;

	if (fd < 0)
		vt_fatal("KVM_CREATE_GUEST_MEMFD: %s", strerror(-fd));
	if (granule == PAGE) {
		ret = gvm_bind_task(NODE) ?: gvm_fallocate_interleaved(fd, size, PAGE);
		gvm_bind_task(-1);
		if (ret)
			vt_fatal("fallocate of C, even pages first: %s", strerror(-ret));
	}
	p = map_file(fd, size);
	ret = gvm_mbind_node(p, size, NODE);
	if (ret)
		vt_fatal("mbind to node %d: %s", NODE, strerror(-ret));
	vt_fill_pattern(p, size, seed, 0);
	munmap(p, size);
	ret = luo_session_preserve_fd(session, fd, token);
	vt_result(!ret, "gen 1: file of %llu MiB preserved (ret %d)",
		  (unsigned long long)size >> 20, ret);
}

static void stage1(void)
{
	int vm = gvm_create_vm(KVM_X86_DEFAULT_VM), session;

	if (vm < 0)
		vt_fatal("create VM: %s", strerror(-vm));
	session = vt_session(SESSION1, true);
	create_filled(vm, session, SIZE_A, GRANULE, SEED_A, TOKEN_A);
	create_filled(vm, session, SIZE_B, GRANULE, SEED_B, TOKEN_B);
	create_filled(vm, session, SIZE_C, PAGE, SEED_C, TOKEN_C);
	vt_hold();
}

/* 2 MiB extents of NODE in state @want. */
static int count_state(const char *want)
{
	return pt_extents(NODE, 9, want, NULL, 0);
}

static long long freed_since(unsigned long long avail)
{
	return (long long)(pt_node_stat(NODE, "free_bytes") - avail);
}

/* The first @len bytes at @p are zero: -1, or the offset of the first that is not. */
static long long first_nonzero(const unsigned char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i])
			return i;
	return -1;
}

/*
 * The runs each retrieve read: A and B a few, inline; C one per granule,
 * from its array.
 */
static void check_runs(void)
{
	static const char *const keys[] = { "size", "nr_extents" };
	uint64_t v[3 * 2];
	int n = vt_trace_values("kvm_gmem_persist_retrieve:", keys, 2, v, 3);

	vt_result(n == 3 && v[0] == SIZE_A && v[1] <= 4 && v[2] == SIZE_B && v[3] <= 4 &&
		  v[4] == SIZE_C && v[5] == SIZE_C / PAGE,
		  "gen 2: retrieves read %d files: A in %llu runs, B in %llu, C in %llu (expected %llu)",
		  n, n > 0 ? (unsigned long long)v[1] : 0ull,
		  n > 1 ? (unsigned long long)v[3] : 0ull,
		  n > 2 ? (unsigned long long)v[5] : 0ull, SIZE_C / PAGE);
}

static uint32_t vcpu_seed(void)
{
	return gvm_seed(0x1a2f3000u);
}

struct vcpu_worker {
	struct gvm g;
	pthread_t thread;
	int stop;		/* set by the main thread */
	uint64_t done;		/* bytes written, set by the worker */
	char why[300];
};

/* The vCPU fills [0, HALF_C) of C one run at a time, over and over. */
static void *vcpu_fill(void *arg)
{
	struct vcpu_worker *w = arg;
	struct gvm_result r;
	uint64_t at;

	while (!__atomic_load_n(&w->stop, __ATOMIC_SEQ_CST)) {
		at = __atomic_load_n(&w->done, __ATOMIC_SEQ_CST) % HALF_C;
		if (!gvm_run(&w->g, GVM_FILL, vcpu_seed(), at, RUN, &r)) {
			snprintf(w->why, sizeof(w->why), "vCPU at %#llx: %s",
				 (unsigned long long)at, r.why);
			break;
		}
		__atomic_add_fetch(&w->done, RUN, __ATOMIC_SEQ_CST);
	}
	return NULL;
}

/* Until @w has written @min bytes in all; false if it failed or hung. */
static bool vcpu_wait(struct vcpu_worker *w, uint64_t min)
{
	int i;

	for (i = 0; i < 6000 && !w->why[0]; i++) {
		if (__atomic_load_n(&w->done, __ATOMIC_SEQ_CST) >= min)
			return true;
		usleep(10 * 1000);
	}
	return false;
}

/* C preserved again while a vCPU adopts its granules by faults. */
static void preserve_running(int next, int c)
{
	struct vcpu_worker w = { 0 };
	uint64_t before, after;
	const char *what;
	int lc, ret;

	ret = gvm_create(&w.g, KVM_X86_DEFAULT_VM);
	if (ret)
		vt_fatal("create VM: %s", strerror(-ret));
	lc = gvm_link(w.g.vm, c);
	if (lc < 0)
		vt_fatal("link C into a new VM: %s", strerror(-lc));
	ret = gvm_set_gmem(&w.g, lc, SIZE_C, false, &what);
	if (ret)
		vt_fatal("%s: %s", what, strerror(-ret));
	ret = pthread_create(&w.thread, NULL, vcpu_fill, &w);
	if (ret)
		vt_fatal("pthread_create: %s", strerror(ret));
	if (!vcpu_wait(&w, RUN))
		vt_fatal("gen 2: the vCPU made no progress: %s", w.why[0] ? w.why : "timeout");

	before = __atomic_load_n(&w.done, __ATOMIC_SEQ_CST);
	ret = luo_session_preserve_fd(next, c, TOKEN_C);
	after = __atomic_load_n(&w.done, __ATOMIC_SEQ_CST);
	vt_result(!ret && !pt_extents(NODE, 0, "claimed", NULL, 0) && after > before,
		  "gen 2: C preserved again while its vCPU ran (%llu KiB written meanwhile): ret %d, %d granules claimed",
		  (unsigned long long)(after - before) >> 10, ret,
		  pt_extents(NODE, 0, "claimed", NULL, 0));
	/* One whole pass after the preserve: all of [0, HALF_C) holds the pattern. */
	vt_result(vcpu_wait(&w, after + HALF_C + RUN),
		  "gen 2: the vCPU ran on after the preserve, never failing (%s)",
		  w.why[0] ? w.why : "no error");
	__atomic_store_n(&w.stop, 1, __ATOMIC_SEQ_CST);
	pthread_join(w.thread, NULL);
	vt_result(!w.why[0], "gen 2: the vCPU stopped without an error (%s)",
		  w.why[0] ? w.why : "none");
	gvm_destroy(&w.g);
	close(lc);
}

static void stage2(void)
{
	int session = vt_session(SESSION1, false), a, b, c, next, ret, claimed;
	unsigned long long avail = pt_node_stat(NODE, "free_bytes");
	long long bad;
	void *p;

	vt_result(pt_node_stat(NODE, "pending_bytes") == SIZE_A + SIZE_B + SIZE_C,
		  "gen 2: node %d pending_bytes %llu before the retrieves", NODE,
		  pt_node_stat(NODE, "pending_bytes"));
	ret = vt_trace_start("kvm_gmem_persist");
	if (ret)
		vt_fatal("trace kvm_gmem_persist: %s", strerror(-ret));
	a = gvm_retrieve(session, TOKEN_A, SIZE_A, "A");
	b = gvm_retrieve(session, TOKEN_B, SIZE_B, "B");
	c = gvm_retrieve(session, TOKEN_C, SIZE_C, "C");
	check_runs();
	claimed = count_state("claimed");
	vt_result(claimed == NR_A + NR_B && pt_node_stat(NODE, "pending_bytes") == 0,
		  "gen 2: retrieves claimed every granule and adopted none: %d claimed of %d, pending %llu",
		  claimed, NR_A + NR_B, pt_node_stat(NODE, "pending_bytes"));

	ret = fallocate(a, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, PUNCHED * GRANULE, GRANULE);
	vt_result(!ret && freed_since(avail) == GRANULE && count_state("claimed") == claimed - 1,
		  "gen 2: punch of an unused granule gave it back: ret %d, freed %lld, claimed %d",
		  ret ? -errno : 0, freed_since(avail), count_state("claimed"));

	ret = fallocate(a, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, PART_OFF, PART_LEN);
	vt_result(!ret && freed_since(avail) == GRANULE && count_state("claimed") == claimed - 2,
		  "gen 2: punch of part of an unused granule adopted it: ret %d, freed %lld, claimed %d",
		  ret ? -errno : 0, freed_since(avail), count_state("claimed"));

	p = map_file(a, SIZE_A);
	bad = vt_check_pattern((char *)p + READ * GRANULE, GRANULE, SEED_A, READ * GRANULE);
	vt_result(bad < 0 && count_state("claimed") == claimed - 3,
		  "gen 2: a read adopted its granule alone, pattern intact: first bad %lld, claimed %d",
		  bad, count_state("claimed"));
	munmap(p, SIZE_A);

	/* LUO holds a retrieved file until its session finishes. */
	ret = luo_session_finish(session);
	vt_result(!ret && freed_since(avail) == GRANULE,
		  "gen 2: finish released nothing of the retrieved files: ret %d, freed %lld", ret,
		  freed_since(avail));
	close(session);
	close(b);
	vt_result(freed_since(avail) == GRANULE + SIZE_B &&
		  count_state("claimed") == NR_A - 3,
		  "gen 2: close of an unused file gave its %llu MiB back: freed %lld, claimed %d",
		  SIZE_B >> 20, freed_since(avail), count_state("claimed"));

	next = vt_session(SESSION2, true);
	ret = luo_session_preserve_fd(next, a, TOKEN_A);
	vt_result(!ret && count_state("claimed") == 0,
		  "gen 2: A preserved again with its unused granules: ret %d, claimed %d", ret,
		  count_state("claimed"));
	preserve_running(next, c);
	vt_hold();
}

/* C: the vCPU's pattern in [0, HALF_C), the first kernel's after it. */
static void check_c(int session)
{
	uint64_t page, i;
	long long bad = -1;
	uint32_t *w;
	char *p;
	int c;

	c = luo_session_retrieve_fd(session, TOKEN_C);
	if (c < 0)
		vt_fatal("gen 3: retrieve C: %s", strerror(-c));
	p = map_file(c, SIZE_C);
	for (page = 0; page < HALF_C / PAGE && bad < 0; page++) {
		w = (uint32_t *)(p + page * PAGE);
		for (i = 0; i < PAGE / 4; i++)
			if (w[i] != gvm_value(vcpu_seed(), page)) {
				bad = page * PAGE + i * 4;
				break;
			}
	}
	if (bad < 0)
		bad = vt_check_pattern(p + HALF_C, SIZE_C - HALF_C, SEED_C, HALF_C);
	vt_result(bad < 0,
		  "gen 3: C holds what its vCPU wrote during the preserve and the rest as it was (first bad %lld)",
		  bad);
	munmap(p, SIZE_C);
	close(c);
}

static int stage3(void)
{
	int session = vt_session(SESSION2, false), a, g, wrong = 0;
	long long bad;
	char *p;

	a = luo_session_retrieve_fd(session, TOKEN_A);
	if (a < 0)
		vt_fatal("gen 3: retrieve A: %s", strerror(-a));
	p = map_file(a, SIZE_A);
	for (g = 0; g < NR_A; g++) {
		uint64_t off = (uint64_t)g * GRANULE;

		if (g == PUNCHED) {
			bad = first_nonzero((unsigned char *)p + off, GRANULE);
		} else if (g == PART) {
			bad = vt_check_pattern(p + off, PART_OFF - off, SEED_A, off);
			if (bad < 0)
				bad = first_nonzero((unsigned char *)p + PART_OFF, PART_LEN);
			if (bad < 0)
				bad = vt_check_pattern(p + PART_OFF + PART_LEN,
						       off + GRANULE - PART_OFF - PART_LEN, SEED_A,
						       PART_OFF + PART_LEN);
		} else {
			bad = vt_check_pattern(p + off, GRANULE, SEED_A, off);
		}
		if (bad >= 0 && !wrong++)
			vt_result(false, "gen 3: granule %d of A wrong at offset %lld", g, bad);
	}
	vt_result(!wrong, "gen 3: A's pattern across two kexecs, holes zero (%d granules wrong)",
		  wrong);
	munmap(p, SIZE_A);
	check_c(session);
	vt_result(!luo_session_finish(session), "gen 3: finish");
	close(a);
	close(session);
	return vt_finish();
}

int main(int argc, char **argv)
{
	int gen = vt_stage(argc, argv, 3);

	if (gen == 1)
		stage1();
	if (gen == 2)
		stage2();
	return stage3();
}
