// SPDX-License-Identifier: GPL-2.0
/*
 * guest_memfd_persist_test: persistent guest_memfd (GUEST_MEMFD_FLAG_PERSIST)
 * and KVM_LINK_GUEST_MEMFD against their uapi contract
 * (Documentation/virt/kvm/guest_memfd_persist.rst).
 *
 * - Creation: every field and flag; each bad input is refused with EINVAL;
 *   every valid mix of granule (4 KiB, 2 MiB, 1 GiB), attributes
 *   (NO_DIRECT_MAP, HVO) and guest_memfd flags is accepted and allocates
 *   nothing yet.
 * - Memory: fallocate() works on whole granules only, a punch-hole of part
 *   of a granule zeroes that part (private memory out of the direct map
 *   included) and keeps the granule; the persist_alloc pools
 *   (/sys/kernel/mm/persist_alloc/node<N>/) lose exactly the granules
 *   allocated and get them back on punch-hole and on the last close; an
 *   exhausted pool fails with ENOMEM and keeps no partial granule. Granules
 *   are charged to the memory cgroup of the file's creator: its memory.max
 *   bounds them (ENOMEM, the refused granule back in the pool).
 * - mmap(): MAP_SHARED only, fresh granules read as zeroes, every mapping
 *   and every file of the memory sees the same bytes, a punched hole reads
 *   zeroes. A mapping of 4 KiB or 2 MiB granules can be pinned for the long
 *   term, and a pinned granule punched out of the file goes back to the
 *   pool only when the pin is dropped; pinned memory is not moved.
 * - NUMA: the task's mempolicy and mbind() on a mapping choose the pool.
 * - Link: the memory has one owner. KVM_LINK_GUEST_MEMFD of memory a live
 *   VM holds is -EBUSY (into that VM too) and leaves the VM its memory;
 *   KVM_LINK_GUEST_MEMFD_MOVE takes the memory from its VM and file (its
 *   vCPU gets a memory fault exit, its memslots cannot bind the file again,
 *   the file can no longer map, allocate, punch or link it) and gives
 *   another VM of the same type a new file on it, usable in a memslot and
 *   by a running vCPU; bad input is refused.
 *
 * The kernel must be booted with persist_alloc= (1 GiB per node is enough);
 * the whole test is skipped when KVM does not report GUEST_MEMFD_FLAG_PERSIST
 * or no pool exists.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <linux/falloc.h>
#include <linux/stddef.h>	/* __DECLARE_FLEX_ARRAY, for io_uring.h */
#include <linux/io_uring.h>
#include <linux/sizes.h>

#include "kselftest_harness.h"
#include "cgroup_util.h"
#include "kvm_util.h"
#include "numaif.h"
#include "processor.h"
#include "test_util.h"
#include "ucall_common.h"

#define POOL_DIR	"/sys/kernel/mm/persist_alloc"
#define MAX_NODES	64

#define PERSIST		GUEST_MEMFD_FLAG_PERSIST
#define MMAP		GUEST_MEMFD_FLAG_MMAP
#define SHARED		GUEST_MEMFD_FLAG_INIT_SHARED
#define NDM		GUEST_MEMFD_PERSIST_NO_DIRECT_MAP
#define HVO		GUEST_MEMFD_PERSIST_HVO

#define ALLOC		FALLOC_FL_KEEP_SIZE
#define PUNCH		(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE)

/* Guest memory of the vCPU test: above 4 GiB, clear of slot 0 and MMIO. */
#define GUEST_GPA	SZ_4G
#define GUEST_SLOT	1
#define HOST_WORD(i)	(((u64)0x686f7374 << 32) | (i))
#define GUEST_WORD(i)	(((u64)0x67756573 << 32) | (i))

enum granule { G_4K, G_2M, G_1G, NR_GRANULES };

static const u64 granule_bytes[NR_GRANULES] = { SZ_4K, SZ_2M, SZ_1G };
static const char * const allocated_attr[NR_GRANULES] = {
	"allocated_4k_bytes", "allocated_2m_bytes", "allocated_1g_bytes",
};

static const u64 gmem_flag_sets[] = {
	PERSIST, PERSIST | SHARED, PERSIST | MMAP, PERSIST | MMAP | SHARED,
};

static const u64 persist_flag_sets[] = { 0, NDM, HVO, NDM | HVO };

/* One node's pool as persist_alloc's sysfs reports it. */
struct pool_node {
	u64 total;
	u64 free;
	u64 allocated[NR_GRANULES];
	u64 no_direct_map;
	u64 vmemmap_saved;
};

struct pool {
	struct pool_node node[MAX_NODES];
};

#define pool_sum(p, field)					\
({								\
	u64 __sum = 0;						\
	int __nid;						\
								\
	for (__nid = 0; __nid < MAX_NODES; __nid++)		\
		__sum += (p)->node[__nid].field;		\
	__sum;							\
})

static u64 node_attr(int nid, const char *attr)
{
	unsigned long long val;
	char path[128];
	FILE *f;
	int n;

	snprintf(path, sizeof(path), POOL_DIR "/node%d/%s", nid, attr);
	f = fopen(path, "r");
	TEST_ASSERT(f, "cannot open %s", path);
	n = fscanf(f, "%llu", &val);
	fclose(f);
	TEST_ASSERT(n == 1, "%s: expected a number", path);
	return val;
}

static void pool_read(struct pool *p)
{
	char dir[64];
	int nid, g;

	memset(p, 0, sizeof(*p));
	for (nid = 0; nid < MAX_NODES; nid++) {
		struct pool_node *n = &p->node[nid];

		snprintf(dir, sizeof(dir), POOL_DIR "/node%d", nid);
		if (access(dir, F_OK))
			continue;
		n->total = node_attr(nid, "total_bytes");
		n->free = node_attr(nid, "free_bytes");
		for (g = 0; g < NR_GRANULES; g++)
			n->allocated[g] = node_attr(nid, allocated_attr[g]);
		n->no_direct_map = node_attr(nid, "no_direct_map_bytes");
		n->vmemmap_saved = node_attr(nid, "vmemmap_saved_bytes");
	}
}

/* Fill @nids with the nodes that have a pool; returns how many. */
static int pool_nodes(int *nids)
{
	struct pool p;
	int nid, nr = 0;

	pool_read(&p);
	for (nid = 0; nid < MAX_NODES; nid++)
		if (p.node[nid].total)
			nids[nr++] = nid;
	return nr;
}

/*
 * Assert that the pools, summed over all nodes, went from @b to @a by
 * allocating @bytes of granule @g with attributes @pflags (negative: by
 * freeing them; 0: nothing changed).
 */
static void assert_pool_change(const struct pool *b, const struct pool *a,
			       int g, s64 bytes, u64 pflags)
{
	s64 d, want;
	int i;

	d = pool_sum(a, free) - pool_sum(b, free);
	TEST_ASSERT(d == -bytes,
		    "free_bytes: expected a change of %ld, got %ld (%lu -> %lu)",
		    -bytes, d, pool_sum(b, free), pool_sum(a, free));
	for (i = 0; i < NR_GRANULES; i++) {
		d = pool_sum(a, allocated[i]) - pool_sum(b, allocated[i]);
		want = i == g ? bytes : 0;
		TEST_ASSERT(d == want, "%s: expected a change of %ld, got %ld",
			    allocated_attr[i], want, d);
	}
	d = pool_sum(a, no_direct_map) - pool_sum(b, no_direct_map);
	want = pflags & NDM ? bytes : 0;
	TEST_ASSERT(d == want,
		    "no_direct_map_bytes: expected a change of %ld, got %ld (persist_flags %#lx)",
		    want, d, pflags);
	d = pool_sum(a, vmemmap_saved) - pool_sum(b, vmemmap_saved);
	if (!(pflags & HVO) || !bytes)
		TEST_ASSERT(!d,
			    "vmemmap_saved_bytes: expected no change, got %ld (persist_flags %#lx)",
			    d, pflags);
	else
		TEST_ASSERT(bytes > 0 ? d > 0 : d < 0,
			    "vmemmap_saved_bytes: expected a %s with HVO, got a change of %ld",
			    bytes > 0 ? "rise" : "drop", d);
}

/* Assert that only node @nid's free bytes changed, by -@bytes. */
static void assert_node_change(const struct pool *b, const struct pool *a,
			       int nid, s64 bytes)
{
	int i;

	for (i = 0; i < MAX_NODES; i++) {
		s64 d = a->node[i].free - b->node[i].free;
		s64 want = i == nid ? -bytes : 0;

		TEST_ASSERT(d == want,
			    "node%d free_bytes: expected a change of %ld, got %ld (granules wanted on node %d)",
			    i, want, d, nid);
	}
}

static int __gmem_create(struct kvm_vm *vm, u64 size, u64 flags, u64 granule,
			 u64 pflags)
{
	struct kvm_create_guest_memfd args = {
		.size = size,
		.flags = flags,
		.granule_size = granule,
		.persist_flags = pflags,
	};

	return __vm_ioctl(vm, KVM_CREATE_GUEST_MEMFD, &args);
}

static int gmem_create(struct kvm_vm *vm, u64 size, u64 flags, u64 granule,
		       u64 pflags)
{
	int fd = __gmem_create(vm, size, flags, granule, pflags);

	TEST_ASSERT(fd >= 0,
		    "KVM_CREATE_GUEST_MEMFD size %#lx flags %#lx granule %#lx persist_flags %#lx: expected a file, got errno %d",
		    size, flags, granule, pflags, errno);
	return fd;
}

static void assert_create_einval(struct kvm_vm *vm,
				 struct kvm_create_guest_memfd *args,
				 const char *what)
{
	int fd = __vm_ioctl(vm, KVM_CREATE_GUEST_MEMFD, args);

	TEST_ASSERT(fd < 0 && errno == EINVAL,
		    "%s (size %#llx flags %#llx granule %#llx persist_flags %#llx reserved %#llx %#llx %#llx %#llx): expected EINVAL, got %s %d",
		    what, args->size, args->flags, args->granule_size,
		    args->persist_flags, args->reserved[0], args->reserved[1],
		    args->reserved[2], args->reserved[3],
		    fd < 0 ? "errno" : "fd", fd < 0 ? errno : fd);
}

static void assert_create_einval_with(struct kvm_vm *vm, u64 size, u64 flags,
				      u64 granule, u64 pflags, const char *what)
{
	struct kvm_create_guest_memfd args = {
		.size = size,
		.flags = flags,
		.granule_size = granule,
		.persist_flags = pflags,
	};

	assert_create_einval(vm, &args, what);
}

static bool persist_flags_valid(int g, u64 flags, u64 pflags)
{
	if ((pflags & HVO) && g == G_4K)
		return false;
	return !((pflags & NDM) && (flags & (MMAP | SHARED)));
}

static int __link(struct kvm_vm *vm, u32 fd, u32 flags, int reserved_idx)
{
	struct kvm_link_guest_memfd link = { .fd = fd, .flags = flags };

	if (reserved_idx >= 0)
		link.reserved[reserved_idx] = 1;
	return __vm_ioctl(vm, KVM_LINK_GUEST_MEMFD, &link);
}

/* KVM_LINK_GUEST_MEMFD_MOVE of @fd, bound to another VM, into @vm. */
static int move_gmem(struct kvm_vm *vm, int fd)
{
	int new_fd = __link(vm, fd, KVM_LINK_GUEST_MEMFD_MOVE, -1);

	TEST_ASSERT(new_fd >= 0,
		    "KVM_LINK_GUEST_MEMFD_MOVE of fd %d: expected a new fd, got errno %d",
		    fd, errno);
	TEST_ASSERT(new_fd != fd, "KVM_LINK_GUEST_MEMFD_MOVE returned its argument %d", fd);
	return new_fd;
}

static void assert_link_fails(struct kvm_vm *vm, u32 fd, u32 flags,
			      int reserved_idx, int err, const char *what)
{
	int ret = __link(vm, fd, flags, reserved_idx);

	TEST_ASSERT(ret < 0 && errno == err,
		    "KVM_LINK_GUEST_MEMFD %s (fd %d flags %#x reserved[%d]): expected errno %d, got %s %d",
		    what, (int)fd, flags, reserved_idx, err,
		    ret < 0 ? "errno" : "fd", ret < 0 ? errno : ret);
}

static void assert_fallocate(int fd, int mode, u64 off, u64 len, int err)
{
	int ret = fallocate(fd, mode, off, len);

	if (!err)
		TEST_ASSERT(!ret,
			    "fallocate mode %#x offset %#lx len %#lx: expected success, got errno %d",
			    mode, off, len, errno);
	else
		TEST_ASSERT(ret == -1 && errno == err,
			    "fallocate mode %#x offset %#lx len %#lx: expected errno %d, got %s",
			    mode, off, len, err, ret ? strerror(errno) : "success");
}

static void *map_gmem(int fd, u64 size)
{
	return kvm_mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
}

/* A file whose memory moved to another VM can no longer reach it. */
static void assert_file_revoked(int fd, u64 size)
{
	void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	int ret;

	TEST_ASSERT(m == MAP_FAILED && errno == EPERM,
		    "mmap of a file whose memory moved: expected EPERM, got %s",
		    m == MAP_FAILED ? strerror(errno) : "a mapping");
	ret = fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, size);
	TEST_ASSERT(ret && errno == EPERM,
		    "fallocate of a file whose memory moved: expected EPERM, got %s",
		    ret ? strerror(errno) : "success");
	ret = fallocate(fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, 0, size);
	TEST_ASSERT(ret && errno == EPERM,
		    "punch-hole of a file whose memory moved: expected EPERM, got %s",
		    ret ? strerror(errno) : "success");
}

/*
 * Words checked in a range: all of them up to 2 MiB, the first and the last
 * of each 4 KiB page beyond (reading a whole 1 GiB granule under TCG costs
 * more than it proves).
 */
static bool word_sampled(u64 i, u64 words)
{
	return words <= SZ_2M / 8 || i % 512 == 0 || i % 512 == 511;
}

static void fill_words(u64 *mem, u64 len, u64 base)
{
	u64 i, words = len / 8;

	for (i = 0; i < words; i++)
		if (word_sampled(i, words))
			WRITE_ONCE(mem[i], HOST_WORD(base + i));
}

static void check_words(const u64 *mem, u64 len, u64 base, bool zero,
			const char *what)
{
	u64 i, words = len / 8;

	for (i = 0; i < words; i++) {
		u64 want = zero ? 0 : HOST_WORD(base + i);
		u64 got;

		if (!word_sampled(i, words))
			continue;
		got = READ_ONCE(mem[i]);
		TEST_ASSERT(got == want, "%s: word %lu: expected %#lx, got %#lx",
			    what, i, want, got);
	}
}

static void bind_task(int mode, int nid)
{
	unsigned long mask = 1UL << nid;

	kvm_set_mempolicy(mode, &mask, 8 * sizeof(mask));
}

static void unbind_task(void)
{
	kvm_set_mempolicy(MPOL_DEFAULT, NULL, 0);
}

/* A default VM, for creation and the rules of mmap(), memory and NUMA. */
FIXTURE(persist) {
	struct kvm_vm *vm;
};

FIXTURE_SETUP(persist)
{
	self->vm = vm_create_barebones();
}

FIXTURE_TEARDOWN(persist)
{
	kvm_vm_free(self->vm);
}

/* What the capabilities of a VM (or /dev/kvm, @vm NULL) must report. */
static void assert_persist_caps(struct kvm_vm *vm, const char *what)
{
	u64 flags, granules, attrs;

	flags = vm ? vm_check_cap(vm, KVM_CAP_GUEST_MEMFD_FLAGS) :
		kvm_check_cap(KVM_CAP_GUEST_MEMFD_FLAGS);
	granules = vm ? vm_check_cap(vm, KVM_CAP_GUEST_MEMFD_PERSIST) :
		   kvm_check_cap(KVM_CAP_GUEST_MEMFD_PERSIST);
	attrs = vm ? vm_check_cap(vm, KVM_CAP_GUEST_MEMFD_PERSIST_FLAGS) :
		kvm_check_cap(KVM_CAP_GUEST_MEMFD_PERSIST_FLAGS);
	TEST_ASSERT(flags & PERSIST, "%s: KVM_CAP_GUEST_MEMFD_FLAGS %#lx lacks PERSIST",
		    what, flags);
	TEST_ASSERT(granules == (SZ_4K | SZ_2M | SZ_1G),
		    "%s: KVM_CAP_GUEST_MEMFD_PERSIST %#lx, expected 4 KiB, 2 MiB and 1 GiB",
		    what, granules);
	TEST_ASSERT((attrs & NDM) && !(attrs & ~(NDM | HVO)),
		    "%s: KVM_CAP_GUEST_MEMFD_PERSIST_FLAGS %#lx, expected NO_DIRECT_MAP and maybe HVO",
		    what, attrs);
}

/*
 * PERSIST, the granule sizes and the attributes are reported for the VM
 * types whose memory survives a kexec, whatever the pools hold.
 */
TEST_F(persist, cap_reports_persist_granules_and_attributes)
{
	u64 types = kvm_check_cap(KVM_CAP_VM_TYPES);
	struct kvm_vm *vm;

	assert_persist_caps(self->vm, "default VM");
	assert_persist_caps(NULL, "/dev/kvm");

	if (!(types & BIT(KVM_X86_SW_PROTECTED_VM)))
		return;
	vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	assert_persist_caps(vm, "SW_PROTECTED VM");
	kvm_vm_free(vm);
}

/*
 * Upstream never checked reserved[] of KVM_CREATE_GUEST_MEMFD: without
 * PERSIST it is still ignored, with PERSIST it must be zero.
 */
TEST_F(persist, create_checks_reserved_with_persist_only)
{
	struct kvm_create_guest_memfd args;
	int j, fd;

	for (j = 0; j < ARRAY_SIZE(args.reserved); j++) {
		memset(&args, 0, sizeof(args));
		args.size = SZ_2M;
		args.reserved[j] = 1ULL << 63;
		fd = __vm_ioctl(self->vm, KVM_CREATE_GUEST_MEMFD, &args);
		TEST_ASSERT(fd >= 0, "reserved[%d] without PERSIST: expected a file, got errno %d",
			    j, errno);
		close(fd);

		args.flags = PERSIST;
		args.granule_size = SZ_2M;
		args.reserved[j] = 1;
		assert_create_einval(self->vm, &args, "reserved[] not zero");
		args.reserved[j] = 1ULL << 63;
		assert_create_einval(self->vm, &args, "reserved[] not zero");
	}
}

/*
 * granule_size and persist_flags sit in what were reserved[] words: without
 * PERSIST they are ignored as upstream ignores those, and the file is an
 * ordinary guest_memfd that takes nothing from the pools.
 */
TEST_F(persist, create_ignores_persist_fields_without_persist)
{
	static const u64 flag_sets[] = { 0, MMAP, MMAP | SHARED };
	static const u64 pflag_sets[] = { NDM, HVO, BIT(5) };
	struct pool p0, p1;
	int i, g, fd;

	pool_read(&p0);
	for (i = 0; i < ARRAY_SIZE(flag_sets); i++) {
		for (g = 0; g < NR_GRANULES + ARRAY_SIZE(pflag_sets); g++) {
			fd = g < NR_GRANULES ?
			     gmem_create(self->vm, SZ_2M, flag_sets[i], granule_bytes[g], 0) :
			     gmem_create(self->vm, SZ_2M, flag_sets[i], 0,
					 pflag_sets[g - NR_GRANULES]);
			assert_fallocate(fd, ALLOC, 0, SZ_2M, 0);
			close(fd);
		}
	}
	pool_read(&p1);
	assert_pool_change(&p0, &p1, G_2M, 0, 0);
}

TEST_F(persist, create_rejects_bad_granule_size)
{
	static const u64 bad[] = {
		1, 512, SZ_2K, SZ_8K, SZ_64K, SZ_1M, SZ_2M - SZ_4K, SZ_2M + SZ_4K,
		SZ_4M, SZ_512M, SZ_2G, 1ULL << 40, 1ULL << 63, ~0ULL,
	};
	int i, f;

	for (i = 0; i < ARRAY_SIZE(bad); i++)
		for (f = 0; f < ARRAY_SIZE(gmem_flag_sets); f++)
			assert_create_einval_with(self->vm, SZ_4G, gmem_flag_sets[f],
						  bad[i], 0, "bad granule_size");
}

TEST_F(persist, create_granule_size_zero_is_4k)
{
	int fd;

	/* 0 selects the base page size: any page-aligned size is fine. */
	fd = gmem_create(self->vm, 3 * SZ_4K, MMAP | SHARED | PERSIST, 0, 0);
	TEST_ASSERT(!fallocate(fd, FALLOC_FL_KEEP_SIZE, SZ_4K, SZ_4K),
		    "fallocate of one 4 KiB granule with granule_size 0: errno %d",
		    errno);
	close(fd);
	assert_create_einval_with(self->vm, SZ_4K, PERSIST, 0, HVO,
				  "granule_size 0 (4 KiB) with HVO");
}

TEST_F(persist, create_rejects_unknown_persist_flags)
{
	int bit;

	for (bit = 0; bit < 64; bit++) {
		u64 unknown = BIT_ULL(bit);

		if (unknown & (NDM | HVO))
			continue;
		assert_create_einval_with(self->vm, SZ_2M, PERSIST, SZ_2M, unknown,
					  "unknown persist_flags bit");
		assert_create_einval_with(self->vm, SZ_2M, PERSIST, SZ_2M,
					  unknown | NDM | HVO,
					  "unknown persist_flags bit with known ones");
	}
}

TEST_F(persist, create_rejects_hvo_with_4k_granule)
{
	int f;

	for (f = 0; f < ARRAY_SIZE(gmem_flag_sets); f++)
		assert_create_einval_with(self->vm, SZ_2M, gmem_flag_sets[f], SZ_4K,
					  HVO, "HVO with a 4 KiB granule");
	assert_create_einval_with(self->vm, SZ_2M, PERSIST, SZ_4K, HVO | NDM,
				  "HVO with a 4 KiB granule");
}

TEST_F(persist, create_rejects_no_direct_map_with_shared_memory)
{
	static const u64 shared_sets[] = { MMAP, SHARED, MMAP | SHARED };
	int g, s;

	for (g = 0; g < NR_GRANULES; g++) {
		for (s = 0; s < ARRAY_SIZE(shared_sets); s++) {
			assert_create_einval_with(self->vm, granule_bytes[g],
						  PERSIST | shared_sets[s],
						  granule_bytes[g], NDM,
						  "NO_DIRECT_MAP with MMAP or INIT_SHARED");
			if (g != G_4K)
				assert_create_einval_with(self->vm, granule_bytes[g],
							  PERSIST | shared_sets[s],
							  granule_bytes[g], NDM | HVO,
							  "NO_DIRECT_MAP with MMAP or INIT_SHARED");
		}
	}
}

TEST_F(persist, create_rejects_sizes_not_whole_granules)
{
	static const u64 bad[NR_GRANULES][6] = {
		[G_4K] = { 0, 1, SZ_2K, SZ_4K + 1, SZ_4K + SZ_2K, 1ULL << 63 },
		[G_2M] = { 0, SZ_4K, SZ_1M, SZ_2M + SZ_4K, SZ_2M + SZ_1M, 1ULL << 63 },
		[G_1G] = { 0, SZ_2M, SZ_512M, SZ_1G + SZ_4K, SZ_1G + SZ_2M, 1ULL << 63 },
	};
	int g, i;

	for (g = 0; g < NR_GRANULES; g++)
		for (i = 0; i < ARRAY_SIZE(bad[g]); i++)
			assert_create_einval_with(self->vm, bad[g][i], PERSIST,
						  granule_bytes[g], 0,
						  "size not a whole number of granules");
}

TEST_F(persist, mmap_private_is_refused)
{
	int fd = gmem_create(self->vm, SZ_2M, PERSIST | MMAP | SHARED, SZ_2M, 0);
	void *mem;

	mem = mmap(NULL, SZ_2M, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	TEST_ASSERT(mem == MAP_FAILED && errno == EINVAL,
		    "mmap(MAP_PRIVATE): expected EINVAL, got %s",
		    mem == MAP_FAILED ? strerror(errno) : "a mapping");
	close(fd);
}

TEST_F(persist, mmap_without_mmap_flag_is_refused)
{
	static const u64 flag_sets[] = { PERSIST, PERSIST | SHARED };
	void *mem;
	int i, fd;

	for (i = 0; i < ARRAY_SIZE(flag_sets); i++) {
		fd = gmem_create(self->vm, SZ_2M, flag_sets[i], SZ_2M, 0);
		mem = mmap(NULL, SZ_2M, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		TEST_ASSERT(mem == MAP_FAILED && errno == ENODEV,
			    "mmap of flags %#lx: expected ENODEV, got %s", flag_sets[i],
			    mem == MAP_FAILED ? strerror(errno) : "a mapping");
		close(fd);
	}
}

TEST_F(persist, mmap_faults_sigbus_on_private_memory_and_beyond_eof)
{
	struct pool p0, p1;
	u8 *mem;
	int fd;

	pool_read(&p0);
	fd = gmem_create(self->vm, SZ_2M, PERSIST | MMAP, SZ_2M, 0);
	mem = map_gmem(fd, SZ_2M);
	TEST_EXPECT_SIGBUS((void)READ_ONCE(mem[0]));
	kvm_munmap(mem, SZ_2M);
	close(fd);

	fd = gmem_create(self->vm, SZ_2M, PERSIST | MMAP | SHARED, SZ_2M, 0);
	mem = map_gmem(fd, 2 * SZ_2M);
	TEST_EXPECT_SIGBUS((void)READ_ONCE(mem[SZ_2M]));
	pool_read(&p1);
	assert_pool_change(&p0, &p1, G_2M, 0, 0);
	kvm_munmap(mem, 2 * SZ_2M);
	close(fd);
}

TEST_F(persist, task_mempolicy_picks_the_pool_node)
{
	static const int modes[] = { MPOL_BIND, MPOL_PREFERRED };
	int nids[MAX_NODES], nr, i, m, g, fd;
	struct pool p0, p1;

	if (!is_numa_available())
		SKIP(return, "no NUMA in this kernel");
	nr = pool_nodes(nids);
	for (g = G_4K; g <= G_2M; g++) {
		for (m = 0; m < ARRAY_SIZE(modes); m++) {
			for (i = 0; i < nr; i++) {
				u64 gb = granule_bytes[g];

				fd = gmem_create(self->vm, gb, PERSIST, gb, 0);
				bind_task(modes[m], nids[i]);
				pool_read(&p0);
				assert_fallocate(fd, ALLOC, 0, gb, 0);
				pool_read(&p1);
				unbind_task();
				assert_node_change(&p0, &p1, nids[i], gb);
				close(fd);
			}
		}
	}
}

TEST_F(persist, mbind_on_a_mapping_picks_the_pool_node)
{
	int nids[MAX_NODES], nr, i, fd;
	struct pool p0, p1;
	u64 size;
	u8 *mem;

	if (!is_numa_available())
		SKIP(return, "no NUMA in this kernel");
	nr = pool_nodes(nids);
	size = 2 * nr * SZ_2M;
	fd = gmem_create(self->vm, size, PERSIST | MMAP | SHARED, SZ_2M, 0);
	mem = map_gmem(fd, size);

	for (i = 0; i < nr; i++) {
		unsigned long mask = 1UL << nids[i];
		u8 *fault = mem + 2 * i * SZ_2M;
		u8 *falloc = fault + SZ_2M;

		/* The file's policy wins over the task's. */
		if (nr > 1)
			bind_task(MPOL_PREFERRED, nids[(i + 1) % nr]);
		kvm_mbind(fault, 2 * SZ_2M, MPOL_BIND, &mask, 8 * sizeof(mask), 0);

		pool_read(&p0);
		WRITE_ONCE(fault[SZ_4K], 1);
		pool_read(&p1);
		assert_node_change(&p0, &p1, nids[i], SZ_2M);

		p0 = p1;
		assert_fallocate(fd, ALLOC, falloc - mem, SZ_2M, 0);
		pool_read(&p1);
		assert_node_change(&p0, &p1, nids[i], SZ_2M);
		unbind_task();
	}
	kvm_munmap(mem, size);
	close(fd);
}

/*
 * Exhaust the pool of one node under MPOL_BIND, with one of its blocks
 * broken by a 2 MiB granule: 1 GiB granules take the whole free blocks and
 * then fail with ENOMEM, nothing taken from the broken one; 2 MiB granules
 * take what is left and fail with ENOMEM, the granules taken before it
 * stay, and all of them come back on punch-hole.
 */
TEST_F_TIMEOUT(persist, exhausted_node_fails_with_enomem_and_no_partial_granule, 300)
{
	int nids[MAX_NODES], nid, fd_small, fd_1g, fd_2m;
	struct pool p0, p1, p2;
	u64 left, size;
	s64 d;

	if (!is_numa_available())
		SKIP(return, "no NUMA in this kernel");
	pool_nodes(nids);
	nid = nids[0];
	bind_task(MPOL_BIND, nid);

	pool_read(&p0);
	TEST_ASSERT(p0.node[nid].free == p0.node[nid].total && p0.node[nid].total >= SZ_1G,
		    "node%d: expected an unused pool of 1 GiB or more, %lu of %lu bytes free",
		    nid, p0.node[nid].free, p0.node[nid].total);

	/* Break one 1 GiB block with a 2 MiB granule. */
	fd_small = gmem_create(self->vm, SZ_2M, PERSIST, SZ_2M, 0);
	assert_fallocate(fd_small, ALLOC, 0, SZ_2M, 0);
	pool_read(&p1);
	assert_node_change(&p0, &p1, nid, SZ_2M);
	left = p1.node[nid].free;

	/* More 1 GiB granules than the node can have: ENOMEM, whole granules. */
	size = (left / SZ_1G + 1) * SZ_1G;
	fd_1g = gmem_create(self->vm, size, PERSIST, SZ_1G, 0);
	assert_fallocate(fd_1g, ALLOC, 0, size, ENOMEM);
	pool_read(&p2);
	d = p1.node[nid].free - p2.node[nid].free;
	TEST_ASSERT(d == (s64)(left / SZ_1G * SZ_1G),
		    "node%d: expected the %lu whole free 1 GiB blocks taken before ENOMEM, free dropped by %ld",
		    nid, left / SZ_1G, d);
	assert_pool_change(&p1, &p2, G_1G, d, 0);
	assert_node_change(&p1, &p2, nid, d);
	assert_fallocate(fd_1g, PUNCH, 0, size, 0);
	close(fd_1g);
	pool_read(&p2);
	assert_pool_change(&p1, &p2, G_1G, 0, 0);

	/* 2 MiB granules: everything left is taken, then ENOMEM. */
	fd_2m = gmem_create(self->vm, left + SZ_2M, PERSIST, SZ_2M, 0);
	assert_fallocate(fd_2m, ALLOC, 0, left + SZ_2M, ENOMEM);
	pool_read(&p2);
	TEST_ASSERT(!p2.node[nid].free,
		    "node%d: expected the pool exhausted after ENOMEM, %lu bytes free",
		    nid, p2.node[nid].free);
	/* The answer does not follow the fill. */
	assert_persist_caps(self->vm, "default VM, a node's pool exhausted");
	assert_pool_change(&p1, &p2, G_2M, left, 0);
	assert_node_change(&p1, &p2, nid, left);

	/* The granules taken stay: allocating them again takes nothing. */
	assert_fallocate(fd_2m, ALLOC, 0, left, 0);
	pool_read(&p1);
	assert_pool_change(&p2, &p1, G_2M, 0, 0);

	assert_fallocate(fd_2m, PUNCH, 0, left + SZ_2M, 0);
	assert_fallocate(fd_small, PUNCH, 0, SZ_2M, 0);
	pool_read(&p1);
	assert_pool_change(&p0, &p1, G_2M, 0, 0);
	close(fd_2m);
	close(fd_small);
	unbind_task();
}

/* One test per granule: 4 KiB, 2 MiB and 1 GiB. */
FIXTURE(granule) {
	struct kvm_vm *vm;
	u64 bytes;
};

FIXTURE_VARIANT(granule) {
	enum granule g;
};

FIXTURE_VARIANT_ADD(granule, 4k) {
	.g = G_4K,
};

FIXTURE_VARIANT_ADD(granule, 2m) {
	.g = G_2M,
};

FIXTURE_VARIANT_ADD(granule, 1g) {
	.g = G_1G,
};

FIXTURE_SETUP(granule)
{
	self->vm = vm_create_barebones();
	self->bytes = granule_bytes[variant->g];
}

FIXTURE_TEARDOWN(granule)
{
	kvm_vm_free(self->vm);
}

TEST_F(granule, create_accepts_every_valid_combination_and_allocates_nothing)
{
	u64 gb = self->bytes;
	struct pool p0, p1;
	struct stat st;
	int f, a, fd;

	pool_read(&p0);
	for (f = 0; f < ARRAY_SIZE(gmem_flag_sets); f++) {
		for (a = 0; a < ARRAY_SIZE(persist_flag_sets); a++) {
			u64 flags = gmem_flag_sets[f], pflags = persist_flag_sets[a];

			if (!persist_flags_valid(variant->g, flags, pflags))
				continue;
			fd = gmem_create(self->vm, 2 * gb, flags, gb, pflags);
			TEST_ASSERT(!fstat(fd, &st), "fstat of a guest_memfd failed");
			TEST_ASSERT(st.st_size == 2 * gb,
				    "flags %#lx persist_flags %#lx: expected st_size %lu, got %ld",
				    flags, pflags, 2 * gb, (long)st.st_size);
			close(fd);
		}
	}
	pool_read(&p1);
	assert_pool_change(&p0, &p1, variant->g, 0, 0);
}

/*
 * Allocation is by whole granules; a punch-hole of part of one is taken
 * (it zeroes that part, see punch_of_part_of_a_private_granule_zeroes_it),
 * of part of a page is not, as upstream.
 */
TEST_F(granule, fallocate_rejects_allocations_not_whole_granules)
{
	static const int modes[] = { ALLOC };
	u64 gb = self->bytes;
	const struct { u64 off, len; } bad[] = {
		{ 1, gb }, { 0, gb - 1 }, { 0, gb + 1 }, { SZ_2K, gb },
		{ 0, gb / 2 }, { gb / 2, gb / 2 }, { gb / 2, gb }, { gb, gb / 2 },
		{ SZ_4K, gb }, { 0, gb + SZ_4K }, { gb - SZ_4K, SZ_4K },
		{ gb + SZ_4K, gb - SZ_4K },
	};
	struct pool p0, p1;
	int fd, i, m;

	fd = gmem_create(self->vm, 2 * gb, PERSIST, gb, 0);
	pool_read(&p0);
	for (m = 0; m < ARRAY_SIZE(modes); m++)
		for (i = 0; i < ARRAY_SIZE(bad); i++)
			if (bad[i].off % gb || bad[i].len % gb)
				assert_fallocate(fd, modes[m], bad[i].off, bad[i].len, EINVAL);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		if (!(bad[i].off % gb || bad[i].len % gb))
			continue;
		assert_fallocate(fd, PUNCH, bad[i].off, bad[i].len,
				 bad[i].off % SZ_4K || bad[i].len % SZ_4K ? EINVAL : 0);
	}
	/* Beyond i_size, as upstream. */
	assert_fallocate(fd, ALLOC, 2 * gb, gb, EINVAL);
	assert_fallocate(fd, ALLOC, gb, 2 * gb, EINVAL);
	pool_read(&p1);
	assert_pool_change(&p0, &p1, variant->g, 0, 0);
	close(fd);
}

/*
 * Every attribute set the granule allows; for 1 GiB only NO_DIRECT_MAP with
 * HVO (each 1 GiB granule is zeroed, which is slow under TCG).
 */
TEST_F_TIMEOUT(granule, fallocate_takes_whole_granules_and_punch_hole_gives_them_back, 180)
{
	u64 gb = self->bytes, size = variant->g == G_1G ? gb : 2 * gb;
	struct pool p0, p1, p2;
	int a, fd;

	for (a = 0; a < ARRAY_SIZE(persist_flag_sets); a++) {
		u64 pflags = persist_flag_sets[a];

		if (!persist_flags_valid(variant->g, PERSIST, pflags))
			continue;
		if (variant->g == G_1G && pflags != (NDM | HVO))
			continue;
		fd = gmem_create(self->vm, size, PERSIST, gb, pflags);
		pool_read(&p0);

		assert_fallocate(fd, ALLOC, 0, gb, 0);
		pool_read(&p1);
		assert_pool_change(&p0, &p1, variant->g, gb, pflags);

		/* Allocated already: nothing more is taken. */
		assert_fallocate(fd, ALLOC, 0, gb, 0);
		pool_read(&p2);
		assert_pool_change(&p1, &p2, variant->g, 0, pflags);

		if (size > gb) {
			/* Over both granules: only the second one is new. */
			assert_fallocate(fd, ALLOC, 0, size, 0);
			pool_read(&p2);
			assert_pool_change(&p1, &p2, variant->g, gb, pflags);
			assert_fallocate(fd, PUNCH, gb, gb, 0);
			pool_read(&p2);
			assert_pool_change(&p1, &p2, variant->g, 0, pflags);
		}

		assert_fallocate(fd, PUNCH, 0, gb, 0);
		pool_read(&p2);
		assert_pool_change(&p1, &p2, variant->g, -gb, pflags);
		assert_pool_change(&p0, &p2, variant->g, 0, pflags);

		/* A hole punched again gives nothing back. */
		assert_fallocate(fd, PUNCH, 0, size, 0);
		pool_read(&p1);
		assert_pool_change(&p0, &p1, variant->g, 0, pflags);

		/* The last close gives back what is still allocated. */
		if (size > gb) {
			assert_fallocate(fd, ALLOC, 0, size, 0);
			pool_read(&p1);
			assert_pool_change(&p0, &p1, variant->g, size, pflags);
		}
		close(fd);
		pool_read(&p1);
		assert_pool_change(&p0, &p1, variant->g, 0, pflags);
	}
}

/*
 * memory.current moves with the charges each CPU caches ahead (up to
 * MEMCG_CHARGE_BATCH, 64 pages, per CPU), not only with what the test
 * charges: the margin a reading of it is compared with.
 */
static s64 cg_slack(void)
{
	return 64L * getpagesize() * sysconf(_SC_NPROCESSORS_CONF);
}

/*
 * A new child of the cgroup2 root with the memory controller (cgroup2
 * mounted on /sys/fs/cgroup first if it is nowhere), or NULL if the
 * kernel has no memory cgroups. Freed by the caller.
 */
static char *memcg_child(void)
{
	char root[PATH_MAX], name[64];
	char *cg;

	if (cg_find_unified_root(root, sizeof(root), NULL)) {
		if (mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, NULL))
			return NULL;
		strcpy(root, "/sys/fs/cgroup");
	}
	if (cg_read_strstr(root, "cgroup.controllers", "memory"))
		return NULL;
	TEST_ASSERT(!cg_write(root, "cgroup.subtree_control", "+memory"),
		    "enabling the memory controller under %s: %s", root, strerror(errno));
	snprintf(name, sizeof(name), "gmem_persist_test.%d", getpid());
	cg = cg_name(root, name);
	TEST_ASSERT(!cg_create(cg), "mkdir %s: %s", cg, strerror(errno));
	return cg;
}

/*
 * Granules are charged to the memory cgroup of the task that created the
 * file, whoever allocates them: a file created in a cgroup whose
 * memory.max is below the fallocate size, then fallocated by a task of
 * the root cgroup, gets ENOMEM; every granule the pool lost is charged
 * (none when the limit is below one granule), and the refused one is back
 * in the pool. Without the limit the same fallocate succeeds and charges
 * the whole size; the last close uncharges it and gives the pools back.
 */
TEST_F_TIMEOUT(granule, memcg_limit_below_the_fallocate_size_gives_enomem, 180)
{
	u64 gb = self->bytes, size, max;
	s64 d, cur0, cur1;
	struct pool p0, p1;
	char *cg, root[PATH_MAX];
	int fd;

	cg = memcg_child();
	if (!cg)
		SKIP(return, "no memory cgroups in this kernel");
	TEST_ASSERT(!cg_find_unified_root(root, sizeof(root), NULL), "cgroup2 root lost");
	size = variant->g == G_1G ? gb : variant->g == G_2M ? 2 * gb : SZ_4M;
	max = variant->g == G_4K ? SZ_1M : gb / 2;
	TEST_ASSERT(!cg_write_numeric(cg, "memory.max", max), "memory.max of %s", cg);

	/* In the cgroup only while the file is created. */
	TEST_ASSERT(!cg_enter_current(cg), "entering %s", cg);
	fd = gmem_create(self->vm, size, PERSIST, gb, 0);
	TEST_ASSERT(!cg_enter_current(root), "back to %s", root);

	cur0 = cg_read_long(cg, "memory.current");
	pool_read(&p0);
	assert_fallocate(fd, ALLOC, 0, size, ENOMEM);
	pool_read(&p1);
	cur1 = cg_read_long(cg, "memory.current");
	d = pool_sum(&p0, free) - pool_sum(&p1, free);
	assert_pool_change(&p0, &p1, variant->g, d, 0);
	TEST_ASSERT(cur1 <= (s64)max,
		    "memory.current %ld over memory.max %lu after ENOMEM", cur1, max);
	TEST_ASSERT(cur1 - cur0 >= d - cg_slack(),
		    "%ld bytes taken from the pools, memory.current rose by %ld only",
		    d, cur1 - cur0);
	if (variant->g == G_4K)
		TEST_ASSERT(d >= (s64)max / 2 && d < (s64)size,
			    "4 KiB granules under a %lu byte limit: %ld bytes taken",
			    max, d);
	else
		TEST_ASSERT(!d, "limit below one granule: %ld bytes taken", d);

	/* Without the limit: the whole size, charged. */
	TEST_ASSERT(!cg_write(cg, "memory.max", "max"), "memory.max of %s", cg);
	assert_fallocate(fd, ALLOC, 0, size, 0);
	pool_read(&p1);
	assert_pool_change(&p0, &p1, variant->g, size, 0);
	cur1 = cg_read_long(cg, "memory.current");
	TEST_ASSERT(cur1 - cur0 >= (s64)size - cg_slack(),
		    "%lu bytes allocated, memory.current rose by %ld only",
		    size, cur1 - cur0);

	close(fd);
	pool_read(&p1);
	assert_pool_change(&p0, &p1, variant->g, 0, 0);
	cur1 = cg_read_long(cg, "memory.current");
	TEST_ASSERT(cur1 < (s64)size,
		    "the file is gone, memory.current still %ld of %lu", cur1, size);
	TEST_ASSERT(!cg_destroy(cg), "rmdir %s: %s", cg, strerror(errno));
	free(cg);
}

/*
 * Pin @len bytes at @mem for the long term, as io_uring fixed buffers do
 * (pin_user_pages() with FOLL_LONGTERM | FOLL_WRITE, as vhost and VFIO
 * pin): the io_uring fd that holds the pins, or -1 with errno set.
 */
static int longterm_pin(void *mem, size_t len)
{
	struct iovec iov = { .iov_base = mem, .iov_len = len };
	struct io_uring_params params = {};
	int ring, err;

	ring = syscall(__NR_io_uring_setup, 1, &params);
	TEST_ASSERT(ring >= 0, "io_uring_setup: %s", strerror(errno));
	if (syscall(__NR_io_uring_register, ring, IORING_REGISTER_BUFFERS, &iov, 1)) {
		err = errno;
		close(ring);
		errno = err;
		return -1;
	}
	return ring;
}

/* Drop the pins of longterm_pin() now, not when the ring is torn down. */
static void longterm_unpin(int ring)
{
	TEST_ASSERT(!syscall(__NR_io_uring_register, ring, IORING_UNREGISTER_BUFFERS, NULL, 0),
		    "IORING_UNREGISTER_BUFFERS: %s", strerror(errno));
	close(ring);
}

/*
 * A shared mapping of 4 KiB or 2 MiB granules is made of page cache
 * folios, not PFNs, and can be pinned for the long term. A careless VMM
 * then punches a pinned granule out: the punch succeeds and the mapping
 * reads a fresh zeroed granule there, but the pool does not get the
 * pinned one back while the pin can still reach its bytes; it does once
 * the pin is dropped, and the rest of the file is untouched.
 */
TEST_F_TIMEOUT(granule, longterm_pin_of_a_shared_mapping_holds_its_granule, 120)
{
	u64 gb = self->bytes, size = 2 * gb, off;
	struct pool p0, p1;
	int fd, ring, i;
	u8 *mem;

	if (variant->g == G_1G)
		SKIP(return, "1 GiB granules: PFN mappings (no PUD folio mapping of files)");

	fd = gmem_create(self->vm, size, PERSIST | MMAP | SHARED, gb, 0);
	mem = map_gmem(fd, size);
	memset(mem, 0xa5, size);
	pool_read(&p0);

	ring = longterm_pin(mem, size);
	TEST_ASSERT(ring >= 0, "long-term pin of a shared mapping of %#lx granules: %s",
		    gb, strerror(errno));

	assert_fallocate(fd, PUNCH, 0, gb, 0);
	pool_read(&p1);
	assert_pool_change(&p0, &p1, variant->g, 0, 0);
	for (off = 0; off < gb; off += SZ_4K)
		TEST_ASSERT(!mem[off], "punched byte at %#lx: expected 0, got %#x", off, mem[off]);
	for (off = gb; off < size; off += SZ_4K)
		TEST_ASSERT(mem[off] == 0xa5, "byte at %#lx: expected 0xa5, got %#x",
			    off, mem[off]);
	/* The read faulted a new granule in: one granule more is allocated. */
	pool_read(&p1);
	assert_pool_change(&p0, &p1, variant->g, gb, 0);

	longterm_unpin(ring);
	for (i = 0; i < 100; i++) {
		pool_read(&p1);
		if (pool_sum(&p1, free) == pool_sum(&p0, free))
			break;
		usleep(100000);
	}
	assert_pool_change(&p0, &p1, variant->g, 0, 0);

	kvm_munmap(mem, size);
	close(fd);
}

/*
 * Two shared mappings of one file: fresh granules read zeroes and are
 * allocated by the read, data written through one mapping is read through
 * the other, a punched hole reads zeroes again. Huge granules with HVO.
 */
TEST_F_TIMEOUT(granule, mmap_shares_memory_and_fresh_granules_read_zero, 180)
{
	u64 gb = self->bytes, size = variant->g == G_1G ? gb : 2 * gb;
	u64 pflags = variant->g == G_4K ? 0 : HVO;
	struct pool p0, p1;
	u64 *m1, *m2;
	int fd;

	fd = gmem_create(self->vm, size, PERSIST | MMAP | SHARED, gb, pflags);
	pool_read(&p0);
	m1 = map_gmem(fd, size);
	m2 = map_gmem(fd, size);

	TEST_ASSERT(READ_ONCE(m1[0]) == 0, "fresh granule: first word not zero");
	pool_read(&p1);
	assert_pool_change(&p0, &p1, variant->g, gb, pflags);
	check_words(m1, gb, 0, true, "fresh granule through the first mapping");

	fill_words(m1, gb, 0);
	check_words(m2, gb, 0, false,
		    "data written through the first mapping, read through the second");
	if (size > gb) {
		check_words(m2 + gb / 8, gb, 0, true, "second fresh granule");
		pool_read(&p1);
		assert_pool_change(&p0, &p1, variant->g, 2 * gb, pflags);
		fill_words(m2 + gb / 8, gb, gb / 8);
		check_words(m1 + gb / 8, gb, gb / 8, false,
			    "data written through the second mapping, read through the first");
	}

	assert_fallocate(fd, PUNCH, 0, gb, 0);
	pool_read(&p1);
	assert_pool_change(&p0, &p1, variant->g, size - gb, pflags);
	check_words(m2, gb, 0, true, "punched granule read again");
	if (size > gb)
		check_words(m1 + gb / 8, gb, gb / 8, false, "granule next to the hole");

	kvm_munmap(m1, size);
	kvm_munmap(m2, size);
	close(fd);
	pool_read(&p1);
	assert_pool_change(&p0, &p1, variant->g, 0, pflags);
}

/*
 * Host mappings of huge granules are placed 2 MiB aligned and mapped by PMD
 * (or PUD): writing 4 MiB through them takes a few page faults, not one per
 * 4 KiB page as with 4 KiB granules.
 */
TEST_F_TIMEOUT(granule, mmap_maps_huge_granules_by_pmd, 180)
{
	u64 gb = self->bytes, size = gb < SZ_4M ? SZ_4M : gb, off;
	struct rusage r0, r1;
	long faults;
	u8 *mem;
	int fd;

	fd = gmem_create(self->vm, size, PERSIST | MMAP | SHARED, gb, 0);
	mem = map_gmem(fd, size);
	if (variant->g != G_4K)
		TEST_ASSERT(!((uintptr_t)mem % SZ_2M),
			    "mapping of %#lx bytes at %p: expected 2 MiB alignment", size, mem);

	getrusage(RUSAGE_SELF, &r0);
	for (off = 0; off < SZ_4M; off += SZ_4K)
		WRITE_ONCE(mem[off], 1);
	getrusage(RUSAGE_SELF, &r1);
	faults = r1.ru_minflt - r0.ru_minflt;
	if (variant->g == G_4K)
		TEST_ASSERT(faults >= SZ_4M / SZ_4K,
			    "4 KiB granules: expected a fault per page (%lu), got %ld",
			    (unsigned long)(SZ_4M / SZ_4K), faults);
	else
		TEST_ASSERT(faults <= 2 * (SZ_4M / SZ_2M) + 2,
			    "%#lx granules: expected at most %lu faults for 4 MiB, got %ld",
			    gb, (unsigned long)(2 * (SZ_4M / SZ_2M) + 2), faults);
	for (off = 0; off < SZ_4M; off += SZ_4K)
		TEST_ASSERT(mem[off] == 1, "byte at %#lx: expected 1, got %u", off, mem[off]);

	kvm_munmap(mem, size);
	close(fd);
}

/* Two default VMs: vm creates the files, vm2 takes them. */
FIXTURE(link) {
	struct kvm_vm *vm;
	struct kvm_vm *vm2;
};

FIXTURE_SETUP(link)
{
	self->vm = vm_create_barebones();
	self->vm2 = vm_create_barebones();
}

FIXTURE_TEARDOWN(link)
{
	kvm_vm_free(self->vm2);
	kvm_vm_free(self->vm);
}

TEST_F(link, returns_a_new_fd_on_the_same_memory)
{
	const u64 size = 2 * SZ_2M;
	struct stat st, st2;
	struct pool p0, p1;
	u64 *m, *m2;
	int fd, fd2;

	pool_read(&p0);
	fd = gmem_create(self->vm, size, PERSIST | MMAP | SHARED, SZ_2M, 0);
	m = map_gmem(fd, size);
	fill_words(m, SZ_2M, 0);
	kvm_munmap(m, size);

	fd2 = move_gmem(self->vm2, fd);
	TEST_ASSERT(!fstat(fd, &st) && !fstat(fd2, &st2), "fstat of a guest_memfd failed");
	TEST_ASSERT(st.st_ino == st2.st_ino && st2.st_size == size,
		    "new file: expected inode %lu size %lu, got inode %lu size %ld",
		    (unsigned long)st.st_ino, size, (unsigned long)st2.st_ino,
		    (long)st2.st_size);
	m2 = map_gmem(fd2, size);
	check_words(m2, SZ_2M, 0, false,
		    "written through the first file, read through the new one");
	pool_read(&p1);
	assert_pool_change(&p0, &p1, G_2M, SZ_2M, 0);
	assert_file_revoked(fd, size);

	/* The memory lives as long as one of the files; the new one punches. */
	close(fd);
	check_words(m2, SZ_2M, 0, false, "new file after the first one closed");
	assert_fallocate(fd2, PUNCH, 0, SZ_2M, 0);
	check_words(m2, SZ_2M, 0, true, "hole punched through the new file");
	kvm_munmap(m2, size);
	close(fd2);
	pool_read(&p1);
	assert_pool_change(&p0, &p1, G_2M, 0, 0);
}

TEST_F(link, refuses_files_that_are_not_guest_memfd)
{
	int memfd = memfd_create("not_gmem", 0);
	int null = open("/dev/null", O_RDWR);

	TEST_ASSERT(memfd >= 0 && null >= 0, "memfd_create or open /dev/null failed");
	assert_link_fails(self->vm2, memfd, 0, -1, EINVAL, "of a memfd");
	assert_link_fails(self->vm2, null, 0, -1, EINVAL, "of /dev/null");
	assert_link_fails(self->vm2, self->vm->fd, 0, -1, EINVAL, "of a VM fd");
	assert_link_fails(self->vm2, self->vm->kvm_fd, 0, -1, EINVAL, "of /dev/kvm");
	close(null);
	close(memfd);
}

TEST_F(link, refuses_guest_memfd_without_persist)
{
	static const u64 flag_sets[] = { 0, MMAP, MMAP | SHARED };
	int i, fd;

	for (i = 0; i < ARRAY_SIZE(flag_sets); i++) {
		fd = vm_create_guest_memfd(self->vm, SZ_2M, flag_sets[i]);
		assert_link_fails(self->vm2, fd, 0, -1, EINVAL, "of a guest_memfd without PERSIST");
		close(fd);
	}
}

TEST_F(link, refuses_nonzero_flags_and_reserved)
{
	struct kvm_link_guest_memfd link;
	int fd, fd2, i;

	fd = gmem_create(self->vm, SZ_2M, PERSIST, SZ_2M, 0);
	assert_link_fails(self->vm2, fd, 2, -1, EINVAL, "with unknown flags");
	assert_link_fails(self->vm2, fd, 1U << 31, -1, EINVAL, "with unknown flags");
	for (i = 0; i < ARRAY_SIZE(link.reserved); i++)
		assert_link_fails(self->vm2, fd, KVM_LINK_GUEST_MEMFD_MOVE, i, EINVAL,
				  "with reserved[] not zero");
	fd2 = move_gmem(self->vm2, fd);
	close(fd2);
	close(fd);
}

TEST_F(link, refuses_bad_fd_numbers)
{
	int fd, gone;

	fd = gmem_create(self->vm, SZ_2M, PERSIST, SZ_2M, 0);
	gone = dup(fd);
	TEST_ASSERT(gone >= 0, "dup failed");
	close(gone);
	assert_link_fails(self->vm2, -1, 0, -1, EBADF, "of fd -1");
	assert_link_fails(self->vm2, gone, 0, -1, EBADF, "of a closed fd");
	assert_link_fails(self->vm2, INT32_MAX, 0, -1, EBADF, "of fd INT32_MAX");
	close(fd);
}

TEST_F(link, refuses_a_vm_of_another_type)
{
	struct kvm_vm *prot, *prot2;
	int fd, fd_prot, fd2;

	if (!(kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SW_PROTECTED_VM)))
		SKIP(return, "KVM_X86_SW_PROTECTED_VM not supported");
	prot = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	prot2 = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);

	fd = gmem_create(self->vm, SZ_2M, PERSIST, SZ_2M, 0);
	fd_prot = gmem_create(prot, SZ_2M, PERSIST, SZ_2M, 0);
	assert_link_fails(self->vm2, fd_prot, 0, -1, EINVAL,
			  "of a SW_PROTECTED VM's file into a default VM");
	assert_link_fails(prot2, fd, 0, -1, EINVAL,
			  "of a default VM's file into a SW_PROTECTED VM");

	/* The same types link. */
	fd2 = move_gmem(prot2, fd_prot);
	close(fd2);
	fd2 = move_gmem(self->vm2, fd);
	close(fd2);

	close(fd_prot);
	close(fd);
	kvm_vm_free(prot2);
	kvm_vm_free(prot);
}

TEST_F(link, refuses_memory_a_live_vm_holds)
{
	const u64 size = 2 * SZ_2M;
	struct pool p0, p1;
	int fd, fd2;

	fd = gmem_create(self->vm, size, PERSIST | MMAP | SHARED, SZ_2M, 0);
	assert_fallocate(fd, ALLOC, 0, size, 0);
	assert_link_fails(self->vm2, fd, 0, -1, EBUSY, "of a file bound to a live VM");
	assert_link_fails(self->vm, fd, 0, -1, EBUSY, "of a file into its own VM");
	assert_link_fails(self->vm, fd, KVM_LINK_GUEST_MEMFD_MOVE, -1, EBUSY,
			  "move of a file into its own VM");

	/* The VM keeps its memory: it binds the file and the granules stay. */
	pool_read(&p0);
	vm_set_user_memory_region2(self->vm, GUEST_SLOT, KVM_MEM_GUEST_MEMFD,
				   GUEST_GPA, size, NULL, fd, 0);
	pool_read(&p1);
	assert_pool_change(&p0, &p1, G_2M, 0, 0);

	/* Once moved, the memory has a new owner and nothing else links it. */
	fd2 = move_gmem(self->vm2, fd);
	assert_link_fails(self->vm2, fd, 0, -1, EPERM, "of the moved-from file into the new VM");
	assert_link_fails(self->vm2, fd2, 0, -1, EBUSY, "a second time into the same VM");
	assert_link_fails(self->vm2, fd2, KVM_LINK_GUEST_MEMFD_MOVE, -1, EBUSY,
			  "move of the new file into its VM");
	assert_link_fails(self->vm, fd2, 0, -1, EBUSY, "of the new file into the first VM");

	/* The file that lost the memory has no hold on it, owner or not. */
	assert_file_revoked(fd, size);
	close(fd2);
	assert_link_fails(self->vm, fd, 0, -1, EPERM, "of a file whose memory moved away");
	assert_link_fails(self->vm, fd, KVM_LINK_GUEST_MEMFD_MOVE, -1, EPERM,
			  "move of a file whose memory moved away");
	close(fd);
}

/*
 * A VMM that pinned shared memory (io_uring fixed buffers here; vhost and
 * VFIO pin alike) and then moves it to a new VM would keep reaching, through
 * the pins, memory the new VM can make private: the move is refused and
 * changes nothing. Once the pins are dropped, the same move goes through.
 */
TEST_F(link, move_of_pinned_memory_is_refused)
{
	const u64 size = 2 * SZ_2M;
	int fd, fd2, ring;
	u64 *m;

	fd = gmem_create(self->vm, size, PERSIST | MMAP | SHARED, SZ_2M, 0);
	m = map_gmem(fd, size);
	fill_words(m, SZ_2M, 0);
	ring = longterm_pin(m, SZ_2M);
	TEST_ASSERT(ring >= 0, "long-term pin of a 2 MiB granule: %s", strerror(errno));

	assert_link_fails(self->vm2, fd, KVM_LINK_GUEST_MEMFD_MOVE, -1, EBUSY,
			  "move of memory its VMM pinned");
	check_words(m, SZ_2M, 0, false, "source mapping after the refused move");
	assert_fallocate(fd, ALLOC, SZ_2M, SZ_2M, 0);

	longterm_unpin(ring);
	fd2 = move_gmem(self->vm2, fd);
	assert_file_revoked(fd, size);
	kvm_munmap(m, size);
	close(fd2);
	close(fd);
}

TEST_F(link, moved_fd_backs_a_memslot_and_the_source_vm_loses_the_file)
{
	const u64 size = 2 * SZ_2M;
	int fd, fd2, ret;

	fd = gmem_create(self->vm, size, PERSIST | MMAP | SHARED, SZ_2M, 0);
	fd2 = move_gmem(self->vm2, fd);

	ret = __vm_set_user_memory_region2(self->vm2, GUEST_SLOT, KVM_MEM_GUEST_MEMFD,
					   GUEST_GPA, size, NULL, fd, 0);
	TEST_ASSERT(ret && errno == EINVAL,
		    "memslot of the second VM on the first VM's file: expected EINVAL, got %s",
		    ret ? strerror(errno) : "success");
	vm_set_user_memory_region2(self->vm2, GUEST_SLOT, KVM_MEM_GUEST_MEMFD,
				   GUEST_GPA, size, NULL, fd2, 0);

	ret = __vm_set_user_memory_region2(self->vm, GUEST_SLOT, KVM_MEM_GUEST_MEMFD,
					   GUEST_GPA, size, NULL, fd2, 0);
	TEST_ASSERT(ret && errno == EINVAL,
		    "memslot of the first VM on the new file: expected EINVAL, got %s",
		    ret ? strerror(errno) : "success");
	ret = __vm_set_user_memory_region2(self->vm, GUEST_SLOT, KVM_MEM_GUEST_MEMFD,
					   GUEST_GPA, size, NULL, fd, 0);
	TEST_ASSERT(ret && errno == EINVAL,
		    "memslot of the first VM on its own file after the move: expected EINVAL, got %s",
		    ret ? strerror(errno) : "success");

	/* Only the new file allocates and punches the memory. */
	assert_fallocate(fd2, ALLOC, 0, size, 0);
	assert_fallocate(fd2, PUNCH, 0, size, 0);
	assert_file_revoked(fd, size);
	close(fd2);
	close(fd);
}

/*
 * A new one-vCPU VM running @guest_code on @size bytes of the memory of
 * @fd, moved into it at GUEST_GPA (the guest's first argument): the VM's
 * file of the memory in *@fd_vm.
 */
static struct kvm_vm *vm_on_moved_gmem(int fd, u64 size, void *guest_code,
				       struct kvm_vcpu **vcpu, int *fd_vm)
{
	struct kvm_vm *vm;

	vm = __vm_create_shape_with_one_vcpu(VM_SHAPE_DEFAULT, vcpu, 1, guest_code);
	*fd_vm = move_gmem(vm, fd);
	vm_set_user_memory_region2(vm, GUEST_SLOT, KVM_MEM_GUEST_MEMFD,
				   GUEST_GPA, size, NULL, *fd_vm, 0);
	virt_map(vm, GUEST_GPA, GUEST_GPA, size / vm->page_size);
	vcpu_args_set(*vcpu, 1, GUEST_GPA);
	return vm;
}

/* Run @vcpu until its guest is done; a guest assertion fails the test. */
static void run_to_done(struct kvm_vcpu *vcpu)
{
	struct ucall uc;

	vcpu_run(vcpu);
	switch (get_ucall(vcpu, &uc)) {
	case UCALL_DONE:
		break;
	case UCALL_ABORT:
		REPORT_GUEST_ASSERT(uc);
		break;
	default:
		TEST_FAIL("unexpected ucall %lu, exit reason %s", uc.cmd,
			  exit_reason_str(vcpu->run->exit_reason));
	}
}

static void guest_check_and_write(u64 *mem, u64 words)
{
	u64 i;

	for (i = 0; i < words; i++)
		__GUEST_ASSERT(mem[i] == HOST_WORD(i),
			       "word %lu: expected %#lx, got %#lx", i, HOST_WORD(i), mem[i]);
	for (i = 0; i < words; i++)
		mem[i] = GUEST_WORD(i);
	GUEST_DONE();
}

/*
 * A vCPU of another VM runs on the linked file (2 MiB granule, aligned
 * memslot: mapped at 2 MiB in stage 2): it reads what the host wrote
 * through the first file and its writes show there.
 */
TEST_F_TIMEOUT(link, linked_fd_backs_a_running_guest, 180)
{
	const u64 size = SZ_2M, words = size / 8;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *guest;
	struct pool p0, p1;
	int fd, fd2;
	u64 *mem, i;

	pool_read(&p0);
	fd = gmem_create(self->vm, size, PERSIST | MMAP | SHARED, SZ_2M, 0);
	mem = map_gmem(fd, size);
	for (i = 0; i < words; i++)
		mem[i] = HOST_WORD(i);
	kvm_munmap(mem, size);

	guest = vm_on_moved_gmem(fd, size, guest_check_and_write, &vcpu, &fd2);
	vcpu_args_set(vcpu, 2, GUEST_GPA, words);
	mem = map_gmem(fd2, size);
	run_to_done(vcpu);

	for (i = 0; i < words; i++)
		TEST_ASSERT(mem[i] == GUEST_WORD(i),
			    "word %lu after the guest ran: expected %#lx, got %#lx",
			    i, GUEST_WORD(i), mem[i]);
	pool_read(&p1);
	assert_pool_change(&p0, &p1, G_2M, size, 0);

	kvm_vm_free(guest);
	kvm_munmap(mem, size);
	close(fd2);
	close(fd);
}

static void guest_write_twice(u64 *mem)
{
	WRITE_ONCE(mem[0], GUEST_WORD(0));
	GUEST_SYNC(0);
	WRITE_ONCE(mem[1], GUEST_WORD(1));
	GUEST_DONE();
}

/*
 * A 2 MiB persistent file of shared memory, created by @vm and moved into
 * a new VM, whose vCPU has run guest_write_twice() up to its sync (word 0
 * written): that VM, with the creator's file in *@fd, the new VM's in
 * *@fd_vm and a host mapping of the memory in *@mem.
 */
static struct kvm_vm *vm_after_first_write(struct kvm_vm *vm, struct kvm_vcpu **vcpu,
					   int *fd, int *fd_vm, u64 **mem)
{
	struct kvm_vm *guest;
	struct ucall uc;

	*fd = gmem_create(vm, SZ_2M, PERSIST | MMAP | SHARED, SZ_2M, 0);
	guest = vm_on_moved_gmem(*fd, SZ_2M, guest_write_twice, vcpu, fd_vm);
	vcpu_run(*vcpu);
	TEST_ASSERT(get_ucall(*vcpu, &uc) == UCALL_SYNC,
		    "first run: expected UCALL_SYNC, got %lu (exit %s)", uc.cmd,
		    exit_reason_str((*vcpu)->run->exit_reason));
	*mem = map_gmem(*fd_vm, SZ_2M);
	TEST_ASSERT((*mem)[0] == GUEST_WORD(0), "word 0: expected %#lx, got %#lx",
		    GUEST_WORD(0), (*mem)[0]);
	return guest;
}

/*
 * A move takes the memory from a VM whose vCPU runs on it: that vCPU's
 * next access is a memory fault exit and writes nothing, and the memory
 * holds what it wrote before.
 */
TEST_F_TIMEOUT(link, move_gives_the_source_vcpu_a_memory_fault_exit, 180)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *src;
	int fd, fd_src, fd_dst, r;
	u64 *mem;

	src = vm_after_first_write(self->vm, &vcpu, &fd, &fd_src, &mem);

	fd_dst = move_gmem(self->vm2, fd_src);
	r = _vcpu_run(vcpu);
	TEST_ASSERT(r < 0 && errno == EFAULT &&
		    vcpu->run->exit_reason == KVM_EXIT_MEMORY_FAULT &&
		    vcpu->run->memory_fault.gpa == GUEST_GPA,
		    "source vCPU after the move: expected EFAULT and a memory fault exit at %#lx, got %d errno %d exit %s gpa %#llx",
		    (u64)GUEST_GPA, r, errno, exit_reason_str(vcpu->run->exit_reason),
		    vcpu->run->memory_fault.gpa);
	/* The source's host mapping went with the memory: map the new file. */
	kvm_munmap(mem, SZ_2M);
	assert_file_revoked(fd_src, SZ_2M);
	mem = map_gmem(fd_dst, SZ_2M);
	TEST_ASSERT(mem[0] == GUEST_WORD(0) && !mem[1],
		    "after the move: expected words %#lx and 0, got %#lx and %#lx",
		    GUEST_WORD(0), mem[0], mem[1]);
	r = _vcpu_run(vcpu);
	TEST_ASSERT(r < 0 && errno == EFAULT, "source vCPU again: expected EFAULT, got %d errno %d",
		    r, errno);

	kvm_munmap(mem, SZ_2M);
	kvm_vm_free(src);
	close(fd_dst);
	close(fd_src);
	close(fd);
}

static void guest_fill_punch_check(u64 *mem, u64 words, u64 hole, u64 hole_words)
{
	u64 i;

	for (i = 0; i < words; i++)
		mem[i] = GUEST_WORD(i);
	GUEST_SYNC(1);
	for (i = 0; i < words; i++) {
		u64 want = i >= hole && i < hole + hole_words ? 0 : GUEST_WORD(i);

		__GUEST_ASSERT(mem[i] == want, "word %lu: expected %#lx, got %#lx", i, want,
			       mem[i]);
	}
	GUEST_DONE();
}

/*
 * What QEMU does on a private to shared conversion of one page: a punch of
 * 4 KiB inside a 2 MiB granule of private memory out of the direct map
 * (SW_PROTECTED VM, memory private by attribute). The guest reads zero
 * there and its data everywhere else; the granule is kept.
 */
TEST_F_TIMEOUT(link, punch_of_part_of_a_private_granule_zeroes_it, 180)
{
	const struct vm_shape shape = {
		.mode = VM_MODE_DEFAULT,
		.type = KVM_X86_SW_PROTECTED_VM,
	};
	const u64 size = SZ_2M, words = size / 8, hole = 5 * SZ_4K;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *guest;
	struct pool p0, p1;
	struct ucall uc;
	int fd;

	if (!(kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SW_PROTECTED_VM)))
		SKIP(return, "KVM_X86_SW_PROTECTED_VM not supported");
	guest = __vm_create_shape_with_one_vcpu(shape, &vcpu, 1, guest_fill_punch_check);
	fd = gmem_create(guest, size, PERSIST, SZ_2M, NDM);
	vm_set_user_memory_region2(guest, GUEST_SLOT, KVM_MEM_GUEST_MEMFD,
				   GUEST_GPA, size, NULL, fd, 0);
	virt_map(guest, GUEST_GPA, GUEST_GPA, size / guest->page_size);
	vm_mem_set_private(guest, GUEST_GPA, size);
	vcpu_args_set(vcpu, 4, GUEST_GPA, words, hole / 8, SZ_4K / 8);

	vcpu_run(vcpu);
	TEST_ASSERT(get_ucall(vcpu, &uc) == UCALL_SYNC,
		    "guest filling private memory: expected UCALL_SYNC, got %lu (exit %s)",
		    uc.cmd, exit_reason_str(vcpu->run->exit_reason));
	pool_read(&p0);
	assert_fallocate(fd, PUNCH, hole, SZ_4K, 0);
	pool_read(&p1);
	assert_pool_change(&p0, &p1, G_2M, 0, 0);

	run_to_done(vcpu);
	kvm_vm_free(guest);
	close(fd);
}

static void guest_touch(u64 *mem)
{
	WRITE_ONCE(*mem, GUEST_WORD(0));
	GUEST_DONE();
}

/*
 * A vCPU fault that needs a granule of an exhausted pool (the vCPU thread
 * is bound to a node whose pool a 1 GiB-granule file holds entirely) fails
 * KVM_RUN with a memory fault exit for that address and takes nothing;
 * once the pool has room again the same vCPU runs on.
 */
TEST_F_TIMEOUT(link, vcpu_fault_on_an_exhausted_pool_fails_cleanly, 300)
{
	int nids[MAX_NODES], nid, hog, fd, fd2, r;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *guest;
	struct pool p0, p1;
	struct ucall uc;
	u64 total;

	if (!is_numa_available())
		SKIP(return, "no NUMA in this kernel");
	pool_nodes(nids);
	nid = nids[0];
	pool_read(&p0);
	total = p0.node[nid].total;
	TEST_ASSERT(p0.node[nid].free == total && total && !(total % SZ_1G),
		    "node%d: expected an unused pool of whole GiBs, %lu of %lu bytes free",
		    nid, p0.node[nid].free, total);

	bind_task(MPOL_BIND, nid);
	hog = gmem_create(self->vm, total, PERSIST, SZ_1G, 0);
	assert_fallocate(hog, ALLOC, 0, total, 0);

	fd = gmem_create(self->vm, SZ_2M, PERSIST | MMAP | SHARED, SZ_2M, 0);
	guest = vm_on_moved_gmem(fd, SZ_2M, guest_touch, &vcpu, &fd2);

	pool_read(&p0);
	r = _vcpu_run(vcpu);
	TEST_ASSERT(r < 0 && (errno == ENOMEM || errno == EFAULT),
		    "KVM_RUN on an exhausted pool: expected ENOMEM or EFAULT, got %d errno %d",
		    r, errno);
	TEST_ASSERT(vcpu->run->exit_reason == KVM_EXIT_MEMORY_FAULT &&
		    vcpu->run->memory_fault.gpa == GUEST_GPA,
		    "expected a memory fault exit at %#lx, got exit %s gpa %#llx",
		    (u64)GUEST_GPA, exit_reason_str(vcpu->run->exit_reason),
		    vcpu->run->memory_fault.gpa);
	pool_read(&p1);
	assert_pool_change(&p0, &p1, G_2M, 0, 0);

	close(hog);
	vcpu_run(vcpu);
	TEST_ASSERT(get_ucall(vcpu, &uc) == UCALL_DONE,
		    "vCPU after the pool got room: expected UCALL_DONE, got %lu (exit %s)",
		    uc.cmd, exit_reason_str(vcpu->run->exit_reason));
	unbind_task();

	kvm_vm_free(guest);
	close(fd2);
	close(fd);
}

/* Whether reading @mem in a child process ends with SIGBUS. */
static bool read_sigbus(const u64 *mem)
{
	int status;
	pid_t pid;

	pid = fork();
	TEST_ASSERT(pid >= 0, "fork: %s", strerror(errno));
	if (!pid) {
		/* Not the library's handler, which reports and exits. */
		signal(SIGBUS, SIG_DFL);
		_exit(READ_ONCE(*mem) == GUEST_WORD(0) ? 0 : 1);
	}
	TEST_ASSERT(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS;
}

/*
 * A page of a 2 MiB granule fails (MADV_HWPOISON on the host mapping)
 * while a vCPU has the granule mapped and the host reads it: neither may
 * reach the granule after that. The vCPU's next write is a memory fault
 * exit with EHWPOISON and writes nothing; a host read of another page of
 * the granule gets SIGBUS; a punch of the granule and a new one are fine.
 */
TEST_F_TIMEOUT(link, memory_failure_unmaps_the_granule_from_vcpu_and_host, 180)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *guest;
	struct ucall uc;
	int fd, fd2, r;
	u64 *mem;

	guest = vm_after_first_write(self->vm, &vcpu, &fd, &fd2, &mem);
	TEST_ASSERT(!read_sigbus(mem), "a read before the failure got SIGBUS");

	TEST_ASSERT(!madvise((u8 *)mem + SZ_1M, SZ_4K, MADV_HWPOISON),
		    "MADV_HWPOISON: %s", strerror(errno));

	r = _vcpu_run(vcpu);
	TEST_ASSERT(r < 0 && errno == EHWPOISON &&
		    vcpu->run->exit_reason == KVM_EXIT_MEMORY_FAULT,
		    "vCPU write to a failed granule: expected EHWPOISON and a memory fault exit, got %d errno %d exit %s",
		    r, errno, exit_reason_str(vcpu->run->exit_reason));
	TEST_ASSERT(read_sigbus(mem), "host read of a failed granule: expected SIGBUS");

	/* The VMM gives the granule up: a fresh one reads zero and runs. */
	assert_fallocate(fd2, PUNCH, 0, SZ_2M, 0);
	TEST_ASSERT(!mem[0] && !mem[1], "new granule: expected zeroes, got %#lx %#lx",
		    mem[0], mem[1]);
	vcpu_run(vcpu);
	TEST_ASSERT(get_ucall(vcpu, &uc) == UCALL_DONE,
		    "vCPU on the new granule: expected UCALL_DONE, got %lu (exit %s)",
		    uc.cmd, exit_reason_str(vcpu->run->exit_reason));
	TEST_ASSERT(mem[1] == GUEST_WORD(1), "word 1: expected %#lx, got %#lx",
		    GUEST_WORD(1), mem[1]);

	kvm_munmap(mem, SZ_2M);
	kvm_vm_free(guest);
	close(fd2);
	close(fd);
}

int main(int argc, char **argv)
{
	struct kvm_vm *vm;
	struct pool p;
	int flags;

	TEST_REQUIRE(kvm_has_cap(KVM_CAP_GUEST_MEMFD));
	vm = vm_create_barebones();
	flags = vm_check_cap(vm, KVM_CAP_GUEST_MEMFD_FLAGS);
	kvm_vm_free(vm);
	TEST_REQUIRE(flags & PERSIST);
	/* The cases allocate: they need persist_alloc= on the command line. */
	pool_read(&p);
	TEST_REQUIRE(pool_sum(&p, total));
	return test_harness_run(argc, argv);
}
