// SPDX-License-Identifier: GPL-2.0
/*
 * gmem_persist_kexec: persistent guest_memfd (GUEST_MEMFD_FLAG_PERSIST)
 * behind running VMs across two kexecs.
 *
 * Generation 1 creates, on each node (persist_alloc=0:3G,1:3G) and for
 * each granule (1 GiB, 2 MiB, 4 KiB), a KVM_X86_SW_PROTECTED_VM with a
 * private file (NO_DIRECT_MAP, memory private by attribute) and a default
 * VM with a shared file (MMAP|INIT_SHARED, HVO for the huge granules). The
 * file is placed on its node by the task's mempolicy (private) or mbind()
 * on its mapping (shared); the node's pool counters must show every byte
 * taken from that node at that granule, out of the direct map or with
 * its vmemmap saved as asked. Each vCPU fills its whole file with a
 * pattern of its own seed and KVM must map it at the granule's level.
 * All twelve files go into one LUO session.
 *
 * Generation 2 finds the files' memory pending on the right nodes,
 * retrieves every file (size kept), refuses to link a file into a VM of
 * the other type, links each into a new VM of its type, and a vCPU
 * verifies every byte of generation 1's pattern, then writes a new one.
 * The old session is finished (nothing stays pending) and the linked
 * files are preserved in a new session. Generation 3 verifies that second
 * pattern the same way, then closes everything: the pools are whole again.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gmem_vm.h"
#include "persist_test.h"

#define SESSION1	"gmem-persist-gen1"
#define SESSION2	"gmem-persist-gen2"
#define TOKEN		0x676d656d00ull
#define G1		GVM_GIB
#define M2		(2 * GVM_MIB)
#define K4		4096ull

struct gcase {
	int nid;
	uint64_t granule;
	bool private_mem;
};

/* 0 and 1 are a private and a shared file: check_link_type() uses them. */
static const struct gcase gcases[] = {
	{ 0, G1, true }, { 0, G1, false }, { 1, G1, true }, { 1, G1, false },
	{ 0, M2, true }, { 0, M2, false }, { 1, M2, true }, { 1, M2, false },
	{ 0, K4, true }, { 0, K4, false }, { 1, K4, true }, { 1, K4, false },
};

#define NR_CASES	((int)ARRAY_SIZE(gcases))

struct live {
	struct gvm g;
	int fd;		/* created (gen 1) or retrieved file */
	int lfd;	/* linked into g (gen 2, 3) */
	char name[48];
};

static struct live live[NR_CASES];

static uint64_t gc_size(const struct gcase *c)
{
	return c->granule == G1 ? G1 : c->granule == M2 ? 64 * GVM_MIB : 16 * GVM_MIB;
}

static unsigned long gc_type(const struct gcase *c)
{
	return c->private_mem ? KVM_X86_SW_PROTECTED_VM : KVM_X86_DEFAULT_VM;
}

static uint64_t gc_pflags(const struct gcase *c)
{
	if (c->private_mem)
		return GUEST_MEMFD_PERSIST_NO_DIRECT_MAP;
	return c->granule == K4 ? 0 : GUEST_MEMFD_PERSIST_HVO;
}

static uint32_t seed_of(int gen, int i)
{
	return gvm_seed(0x5eed0000u ^ (gen << 24) ^ (i << 12));
}

static const char *granule_name(uint64_t granule)
{
	return granule == G1 ? "1g" : granule == M2 ? "2m" : "4k";
}

static void name_cases(void)
{
	int i;

	for (i = 0; i < NR_CASES; i++)
		snprintf(live[i].name, sizeof(live[i].name), "node %d %s %s", gcases[i].nid,
			 granule_name(gcases[i].granule),
			 gcases[i].private_mem ? "private" : "shared");
}

struct node_stats {
	long long free, alloc, ndm, hvo;
};

static void snap(struct node_stats *s, uint64_t granule)
{
	char alloc[32];
	int n;

	snprintf(alloc, sizeof(alloc), "allocated_%s_bytes", granule_name(granule));
	for (n = 0; n < 2; n++) {
		s[n].free = pt_node_stat(n, "free_bytes");
		s[n].alloc = pt_node_stat(n, alloc);
		s[n].ndm = pt_node_stat(n, "no_direct_map_bytes");
		s[n].hvo = pt_node_stat(n, "vmemmap_saved_bytes");
	}
}

/* The file's granules came from its node, with its attributes. */
static void check_placement(int i, const struct node_stats *b, const struct node_stats *a)
{
	const struct gcase *c = &gcases[i];
	int n = c->nid, o = !n;
	long long size = gc_size(c), order = __builtin_ctzll(c->granule) - 12;
	long long hvo = 0, ndm = c->private_mem ? size : 0;

	if (gc_pflags(c) & GUEST_MEMFD_PERSIST_HVO)
		hvo = size / c->granule * ((64ll << order) - 4096);
	vt_result(a[n].alloc - b[n].alloc == size && b[n].free - a[n].free == size &&
		  a[o].alloc == b[o].alloc && a[o].free == b[o].free,
		  "gen 1: %s: %lld MiB of %s granules from node %d (node %d allocated %+lld free %+lld, node %d allocated %+lld free %+lld)",
		  live[i].name, size >> 20, granule_name(c->granule), n, n, a[n].alloc - b[n].alloc,
		  a[n].free - b[n].free, o, a[o].alloc - b[o].alloc, a[o].free - b[o].free);
	vt_result(a[n].ndm - b[n].ndm == ndm && a[n].hvo - b[n].hvo == hvo,
		  "gen 1: %s: no_direct_map_bytes %+lld (expected %+lld), vmemmap_saved_bytes %+lld (expected %+lld)",
		  live[i].name, a[n].ndm - b[n].ndm, ndm, a[n].hvo - b[n].hvo, hvo);
}

/* KVM maps the file at its granule's level (the code slot is 4 KiB only). */
static void check_levels(int gen, int i)
{
	const struct gcase *c = &gcases[i];
	long long p1g = gvm_vm_stat(&live[i].g, "pages_1g");
	long long p2m = gvm_vm_stat(&live[i].g, "pages_2m");
	long long w1g = c->granule == G1 ? gc_size(c) / G1 : 0;
	long long w2m = c->granule == M2 ? gc_size(c) / M2 : 0;

	vt_result(p1g == w1g && p2m == w2m,
		  "gen %d: %s: stage 2 maps %lld 1G and %lld 2M pages, expected %lld and %lld",
		  gen, live[i].name, p1g, p2m, w1g, w2m);
}

static int falloc(int fd, uint64_t size)
{
	return fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, size) ? -errno : 0;
}

static void create_case(int i)
{
	const struct gcase *c = &gcases[i];
	struct live *l = &live[i];
	uint64_t size = gc_size(c);
	struct node_stats b[2], a[2];
	const char *what;
	long caps;
	int ret;

	ret = gvm_create(&l->g, gc_type(c));
	if (ret)
		vt_fatal("gen 1: %s: create VM type %lu: %s", l->name, gc_type(c),
			 strerror(-ret));
	if (i < 2) {
		caps = ioctl(l->g.vm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_FLAGS);
		vt_result(caps > 0 && (caps & GUEST_MEMFD_FLAG_PERSIST),
			  "gen 1: VM type %lu reports GUEST_MEMFD_FLAG_PERSIST (flags %#lx)",
			  gc_type(c), caps);
	}
	l->fd = gvm_create_gmem(l->g.vm, size,
				GUEST_MEMFD_FLAG_PERSIST | (c->private_mem ? 0 :
				GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED),
				c->granule, gc_pflags(c));
	if (l->fd < 0)
		vt_fatal("gen 1: %s: KVM_CREATE_GUEST_MEMFD: %s", l->name, strerror(-l->fd));

	snap(b, c->granule);
	if (c->private_mem) {
		/* Private memory follows the allocating task's policy. */
		ret = gvm_bind_task(c->nid);
		if (!ret)
			ret = falloc(l->fd, size);
		gvm_bind_task(-1);
		if (!ret)
			ret = gvm_set_gmem(&l->g, l->fd, size, true, &what);
		else
			what = "set_mempolicy + fallocate";
	} else {
		/* Shared memory follows the file's policy, set through its mapping. */
		ret = gvm_set_gmem(&l->g, l->fd, size, false, &what);
		if (!ret) {
			what = "mbind + fallocate";
			ret = gvm_mbind_node(l->g.uaddr, size, c->nid);
			if (!ret)
				ret = falloc(l->fd, size);
		}
	}
	if (ret)
		vt_fatal("gen 1: %s: %s: %s", l->name, what, strerror(-ret));
	snap(a, c->granule);
	check_placement(i, b, a);

	gvm_point(&l->g, GVM_FILL, seed_of(1, i), 0, size, "gen 1: %s", l->name);
	check_levels(1, i);
}

static void stage1(void)
{
	int session, i, n, ret;

	for (i = 0; i < NR_CASES; i++)
		create_case(i);

	session = vt_session(SESSION1, true);
	for (i = 0; i < NR_CASES; i++) {
		ret = luo_session_preserve_fd(session, live[i].fd, TOKEN + i);
		vt_result(!ret, "gen 1: %s: preserved as token %#llx (ret %d)", live[i].name,
			  TOKEN + i, ret);
	}
	for (n = 0; n < 2; n++)
		vt_diag("gen 1: node %d preserved_bytes %llu free_bytes %llu", n,
			pt_node_stat(n, "preserved_bytes"), pt_node_stat(n, "free_bytes"));
	/* The VMs keep running (idle) until the kexec. */
	vt_hold();
}

static void check_pending(int gen, bool all)
{
	unsigned long long want[2] = { 0, 0 }, got;
	int i, n;

	for (i = 0; all && i < NR_CASES; i++)
		want[gcases[i].nid] += gc_size(&gcases[i]);
	for (n = 0; n < 2; n++) {
		got = pt_node_stat(n, "pending_bytes");
		vt_result(got == want[n], "gen %d: node %d pending_bytes %llu, expected %llu (%s)",
			  gen, n, got, want[n], all ? "all files handed over" : "after finish");
	}
}

/* A file can only be linked into a VM of the type that created it. */
static void check_link_type(void)
{
	int sw = gvm_create_vm(KVM_X86_SW_PROTECTED_VM);
	int def = gvm_create_vm(KVM_X86_DEFAULT_VM);
	int ret;

	if (sw < 0 || def < 0)
		vt_fatal("gen 2: create scratch VMs: %s", strerror(-(sw < 0 ? sw : def)));
	ret = gvm_link(sw, live[1].fd);
	vt_result(ret == -EINVAL,
		  "gen 2: link a default VM's file into a SW_PROTECTED VM: expected %d, got %d",
		  -EINVAL, ret);
	if (ret >= 0)
		close(ret);
	ret = gvm_link(def, live[0].fd);
	vt_result(ret == -EINVAL,
		  "gen 2: link a SW_PROTECTED VM's file into a default VM: expected %d, got %d",
		  -EINVAL, ret);
	if (ret >= 0)
		close(ret);
	close(sw);
	close(def);
}

/* Link retrieved file @i into a new VM of its type and check generation @gen - 1. */
static bool relink_case(int gen, int i)
{
	const struct gcase *c = &gcases[i];
	struct live *l = &live[i];
	uint64_t size = gc_size(c);
	const char *what;
	bool ok;
	int ret;

	ret = gvm_create(&l->g, gc_type(c));
	if (ret)
		vt_fatal("gen %d: %s: create VM type %lu: %s", gen, l->name, gc_type(c),
			 strerror(-ret));
	l->lfd = gvm_link(l->g.vm, l->fd);
	if (!vt_result(l->lfd >= 0, "gen %d: %s: KVM_LINK_GUEST_MEMFD into a new VM (%s)", gen,
		       l->name, l->lfd >= 0 ? "ok" : strerror(-l->lfd)))
		return false;
	/* The retrieved, unbound file is no longer needed. */
	close(l->fd);
	l->fd = -1;
	ret = gvm_set_gmem(&l->g, l->lfd, size, c->private_mem, &what);
	if (!vt_result(!ret, "gen %d: %s: memslot%s on the linked file (%s%s%s)", gen, l->name,
		       c->private_mem ? " and private attributes" : "", ret ? what : "ok",
		       ret ? ": " : "", ret ? strerror(-ret) : ""))
		return false;
	ok = gvm_point(&l->g, GVM_VERIFY, seed_of(gen - 1, i), 0, size,
		       "gen %d: %s: pattern of gen %d", gen, l->name, gen - 1);
	check_levels(gen, i);
	return ok;
}

static void retrieve_all(int gen, int session)
{
	struct stat st;
	int i;

	for (i = 0; i < NR_CASES; i++) {
		struct live *l = &live[i];

		l->lfd = -1;
		l->fd = luo_session_retrieve_fd(session, TOKEN + i);
		if (l->fd < 0)
			vt_fatal("gen %d: %s: retrieve token %#llx: %s", gen, l->name, TOKEN + i,
				 strerror(-l->fd));
		if (fstat(l->fd, &st))
			vt_fatal("gen %d: fstat: %s", gen, strerror(errno));
		vt_result(st.st_size == (off_t)gc_size(&gcases[i]),
			  "gen %d: %s: retrieved, size %lld, expected %llu", gen, l->name,
			  (long long)st.st_size, (unsigned long long)gc_size(&gcases[i]));
	}
}

static void stage2(void)
{
	int session = vt_session(SESSION1, false), next, i, ret;

	check_pending(2, true);
	retrieve_all(2, session);
	check_link_type();
	for (i = 0; i < NR_CASES; i++)
		if (relink_case(2, i))
			gvm_point(&live[i].g, GVM_FILL, seed_of(2, i), 0, gc_size(&gcases[i]),
				  "gen 2: %s", live[i].name);

	/*
	 * Finish first: LUO holds every retrieved file until its session
	 * finishes, and a file can be in only one session.
	 */
	ret = luo_session_finish(session);
	vt_result(!ret, "gen 2: finish session %s (ret %d)", SESSION1, ret);
	close(session);
	check_pending(2, false);

	next = vt_session(SESSION2, true);
	for (i = 0; i < NR_CASES; i++) {
		if (live[i].lfd < 0)
			continue;
		ret = luo_session_preserve_fd(next, live[i].lfd, TOKEN + i);
		vt_result(!ret, "gen 2: %s: linked file preserved again (ret %d)", live[i].name,
			  ret);
	}
	vt_hold();
}

static int stage3(void)
{
	int session = vt_session(SESSION2, false), i, n, ret;
	unsigned long long total, avail;

	check_pending(3, true);
	retrieve_all(3, session);
	for (i = 0; i < NR_CASES; i++)
		relink_case(3, i);
	ret = luo_session_finish(session);
	vt_result(!ret, "gen 3: finish session %s (ret %d)", SESSION2, ret);
	close(session);
	check_pending(3, false);

	for (i = 0; i < NR_CASES; i++) {
		gvm_destroy(&live[i].g);
		if (live[i].lfd >= 0)
			close(live[i].lfd);
		if (live[i].fd >= 0)
			close(live[i].fd);
	}
	for (n = 0; n < 2; n++) {
		total = pt_node_stat(n, "total_bytes");
		avail = pt_node_stat(n, "free_bytes");
		vt_result(avail == total,
			  "gen 3: node %d pool whole again after close: free %llu of %llu",
			  n, avail, total);
	}
	return vt_finish();
}

int main(int argc, char **argv)
{
	int gen = vt_stage(argc, argv, 3);

	name_cases();
	if (gen == 1)
		stage1();
	if (gen == 2)
		stage2();
	return stage3();
}
