// SPDX-License-Identifier: GPL-2.0
/*
 * guest_memfd_persist_bench: persistent guest_memfd (GUEST_MEMFD_FLAG_PERSIST)
 * side by side with a memfd preserved by memfd_luo, in one VM run
 * (make bench). Every set is 2 GiB, fully allocated, preserved in one LUO
 * session:
 *  - gmem_1g, gmem_1g_hvo, gmem_1g_ndm: 1 GiB granules, plain, with HVO,
 *    and NO_DIRECT_MAP (private memory of a KVM_X86_SW_PROTECTED_VM);
 *  - gmem_2m, gmem_2m_hvo, gmem_4k: 2 MiB granules plain and with HVO
 *    (1 GiB set), 4 KiB granules;
 *  - gmem_baseline_memfd_luo: a memfd of 4 KiB pages, every page written
 *    (MADV_NOHUGEPAGE);
 *  - gmem_baseline_memfd_luo_thp: the same with shmem THP (shmem_enabled
 *    set to advise, MADV_HUGEPAGE): 2 MiB folios, upstream's strongest.
 * Two more files ride along: a 1 GiB file of 1 GiB granules, retrieved
 * first to warm the path up, and a last 4 KiB file whose freeze fails on
 * purpose (below).
 *
 * Stage 1 times the allocation (fallocate; page faults for the memfd) and
 * the preserve ioctl in userspace. Freeze runs inside reboot(KEXEC), and
 * trace buffers do not survive kexec, so it is measured in a dry run:
 * fault injection (fail_kvm_gmem_persist_freeze) fails the freeze of the
 * last file, so reboot() freezes every set, LUO unfreezes them and the
 * reboot fails; tracepoint kvm_gmem_persist_freeze has reported each
 * file's freeze time and the runs it wrote. The real kexec follows.
 * Handover metadata is measured from what is written, on both sides. KHO
 * counts the memory it holds preserved for serialized state and for its
 * map of preserved memory (debugfs kho/out/serialized_bytes and
 * radix_bytes); each file's preserve ioctl is measured by the rise of
 * their sum. That is all of memfd_luo's: its description, its folio array
 * and the array's chunks, and the radix tree pages that its folios need.
 * Ours writes its description's page at preserve; its runs are written
 * into that page at freeze (the bench checks that each file's runs fit
 * there, so that nothing else is written for it) and its granules join
 * persist_alloc's handover at freeze, as runs of all owners folded
 * together. Stage 2 counts those runs as received: the entries of the
 * file's owner key in the persist_alloc extent array the new kernel keeps
 * in debugfs. persist_alloc's array as a whole, as handed over (runs
 * moved into an array just big enough for them), is in its freeze line.
 * Stage 2 times the retrieve
 * ioctl in userspace and, with the tracepoint, inside the handler; then
 * the first use of every granule: an fallocate() of the whole file, which
 * puts into the file each granule the retrieve only claimed (for
 * memfd_luo, whose retrieve put every folio in the page cache, it walks
 * them). It checks each file's size and finishes the session. Under TCG
 * a retrieve of a few hundred microseconds varies by as much from one
 * kexec to the next, so every set is preserved again after its first use
 * and the retrieve is measured in ROUNDS kexecs in all, each reporting
 * its figures (scripts/vmtest.py --bench takes their median). The last
 * round links each file into a new VM of its type.
 *
 * memfd_luo's freeze only records the file position, so its preserve ioctl
 * is its preserve+freeze cost, and what it wrote at preserve is all it
 * hands over. Its records alone (one struct memfd_luo_folio_ser per folio,
 * one struct memfd_luo_ser, include/linux/kho/abi/memfd.h; the folios
 * counted from the rise of ShmemHugePages while it was written) are
 * reported too, as a lower bound. Ratios are given against both baselines.
 *
 * Figures are KTAP diagnostics "# bench: <key> <value> <unit>", scaled to
 * one GiB; ratios are memfd_luo's figure over ours. Times are measured
 * under QEMU TCG: compare ratios, not absolute values.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/kexec.h>
#include <linux/kvm.h>

#include "gmem_vm.h"
#include "persist_test.h"

#define SESSION		"gmem_bench"
/* Kexecs whose retrieves are measured: each figure is reported by each. */
#define ROUNDS		3
#define SET_SIZE	(2 * PT_GIB)
#define SZ_4K		4096ull
#define SZ_2M		(2 * PT_MIB)
#define STRUCT_PAGE	64ull
#define MEMFD_TOKEN	100
#define LAST_TOKEN	102
#define THP_ENABLED	"/sys/kernel/mm/transparent_hugepage/shmem_enabled"
#define SYSFS_BUILT	"/sys/kernel/mm/persist_alloc/node0/pending_built_bytes"
/* include/linux/kho/abi/memfd.h */
#define MEMFD_SER_BYTES		48ull
#define MEMFD_FOLIO_SER_BYTES	16ull
/* GUEST_MEMFD_PERSIST_INLINE_RUNS: runs written in the description's page */
#define GMEM_INLINE_RUNS	168

#define NDM		GUEST_MEMFD_PERSIST_NO_DIRECT_MAP
#define HVO		GUEST_MEMFD_PERSIST_HVO

/* Fields of tracepoints kvm_gmem_persist_freeze and _retrieve. */
static const char *const trace_keys[] = { "size", "order", "nr_extents", "meta_bytes", "ns" };
enum { TK_SIZE, TK_ORDER, TK_EXTENTS, TK_META, TK_NS, NR_TK };

struct gmem_set {
	const char *name;		/* figure key */
	unsigned long long size, granule, persist_flags;
	int nid;			/* pool it is bound to */
	bool protected_vm;		/* belongs to a KVM_X86_SW_PROTECTED_VM */
	bool table;			/* a set of the table, not a helper file */
	int fd;
	double preserve_us, retrieve_us, use_us;
	uint64_t trace[NR_TK];		/* freeze (stage 1), retrieve (stage 2) */
	bool traced;
	long long written;		/* KHO memory its preserve ioctl took */
	long pa_bytes;			/* its persist_alloc entries, received */
};

#define SET(_name, _size, _granule, _pflags, _nid, _protected, _table) {	\
	.name = _name, .size = _size, .granule = _granule,		\
	.persist_flags = _pflags, .nid = _nid, .protected_vm = _protected,	\
	.table = _table, .fd = -1 }

/*
 * In preservation order, which is LUO's freeze order and stage 2's
 * retrieve order: granule orders or sizes alternate so that trace lines
 * in another order would not match. gmem_1g_small is retrieved first:
 * under TCG the first run of a code path includes its translation, which
 * the first timed retrieve would otherwise pay.
 */
static struct gmem_set sets[] = {
	SET("gmem_1g_small", PT_GIB,   PT_GIB, 0,   1, false, false),
	SET("gmem_1g",	     SET_SIZE, PT_GIB, 0,   1, false, true),
	SET("gmem_2m",	     SET_SIZE, SZ_2M,  0,   0, false, true),
	SET("gmem_2m_hvo",   PT_GIB,   SZ_2M,  HVO, 0, false, true),
	SET("gmem_1g_hvo",   SET_SIZE, PT_GIB, HVO, 1, false, true),
	SET("gmem_4k",	     SET_SIZE, SZ_4K,  0,   0, false, true),
	SET("gmem_1g_ndm",   SET_SIZE, PT_GIB, NDM, 1, true,  true),
};

#define NR_SETS ((int)ARRAY_SIZE(sets))

/* Preserved last: its freeze is the one that fails in the dry run. */
static struct gmem_set last = SET("gmem_last", SZ_4K, SZ_4K, 0, 0, false, false);

struct memfd_set {
	const char *name;		/* figure key */
	const char *suffix;		/* of the ratio keys against it */
	bool thp;
	int fd;
	double alloc_us, preserve_us, retrieve_us, use_us;
	unsigned long long nr_folios, meta_bytes;
	long long written;		/* KHO memory its preserve ioctl took */
};

static struct memfd_set memfds[] = {
	{ .name = "gmem_baseline_memfd_luo", .suffix = "memfd_luo", .fd = -1 },
	{ .name = "gmem_baseline_memfd_luo_thp", .suffix = "memfd_luo_thp", .thp = true,
	  .fd = -1 },
};

#define NR_MEMFDS ((int)ARRAY_SIZE(memfds))

static void figure(const char *key, double value, const char *unit)
{
	vt_diag("bench: %s %.3f %s", key, value, unit);
}

/* @value measured on @bytes, for one GiB. */
static double per_gib(double value, unsigned long long bytes)
{
	return value * PT_GIB / bytes;
}

/* A baseline's figure over ours, when both are known: "x_<what>_<suffix>". */
static void ratio(const char *key, double memfd_luo, double ours, const char *what,
		  const struct memfd_set *m)
{
	char unit[96];

	snprintf(unit, sizeof(unit), "x_%s_%s", what, m->suffix);
	if (memfd_luo > 0 && ours > 0)
		figure(key, memfd_luo / ours, unit);
}

/* Preserve @fd as @token in @session; its time, and what KHO took for it. */
static void preserve_measured(const char *name, int session, int fd, int token,
			      double *us, long long *written)
{
	long long before = vt_kho_written(), after;
	uint64_t t0, t1;
	int ret;

	t0 = vt_now_ns();
	ret = luo_session_preserve_fd(session, fd, token);
	t1 = vt_now_ns();
	if (ret)
		vt_fatal("%s: LIVEUPDATE_SESSION_PRESERVE_FD: %s", name, strerror(-ret));
	*us = (t1 - t0) / 1000.0;
	after = vt_kho_written();
	*written = before < 0 || after < 0 ? -1 : after - before;
	vt_result(*written > 0, "%s: preserving it wrote %lld bytes of KHO memory", name,
		  *written);
}

static const char *err_str(int err)
{
	return err ? strerror(err < 0 ? -err : err) : "ok";
}

static int create_vm(unsigned long type)
{
	int vm = gvm_create_vm(type);

	if (vm < 0)
		vt_fatal("KVM_CREATE_VM type %lu: %s", type, strerror(-vm));
	return vm;
}

/* The type for private memory: SW_PROTECTED where KVM has it. */
static unsigned long protected_type(void)
{
	int types = ioctl(gvm_kvm(), KVM_CHECK_EXTENSION, KVM_CAP_VM_TYPES);

	if (types > 0 && (types & (1 << KVM_X86_SW_PROTECTED_VM)))
		return KVM_X86_SW_PROTECTED_VM;
	vt_diag("no KVM_X86_SW_PROTECTED_VM: gmem_1g_ndm belongs to a default VM");
	return KVM_X86_DEFAULT_VM;
}

/* Allocate from node @nid only; -1: back to the default policy. */
static void bind_node(int nid)
{
	int ret = gvm_bind_task(nid);

	if (ret)
		vt_fatal("set_mempolicy(node %d): %s", nid, strerror(-ret));
}

static unsigned int granule_order(unsigned long long granule)
{
	return granule == PT_GIB ? 18 : granule == SZ_2M ? 9 : 0;
}

static const char *granule_stat(unsigned long long granule)
{
	return granule == PT_GIB ? "allocated_1g_bytes" :
	       granule == SZ_2M ? "allocated_2m_bytes" : "allocated_4k_bytes";
}

/* Create @s in @vm, allocate all of it on its node, preserve it. */
static void setup_set(struct gmem_set *s, int vm, int session, int token)
{
	const char *stat = granule_stat(s->granule);
	unsigned long long alloc = pt_node_stat(s->nid, stat);
	unsigned long long saved = pt_node_stat(s->nid, "vmemmap_saved_bytes");
	unsigned long long ndm = pt_node_stat(s->nid, "no_direct_map_bytes");
	uint64_t t0, t1;
	int ret;

	bind_node(s->nid);
	s->fd = gvm_create_gmem(vm, s->size, GUEST_MEMFD_FLAG_PERSIST, s->granule,
				s->persist_flags);
	if (s->fd < 0)
		vt_fatal("%s: KVM_CREATE_GUEST_MEMFD: %s", s->name, strerror(-s->fd));
	t0 = vt_now_ns();
	ret = fallocate(s->fd, FALLOC_FL_KEEP_SIZE, 0, s->size);
	t1 = vt_now_ns();
	bind_node(-1);
	if (ret)
		vt_fatal("%s: fallocate of %llu bytes: %s", s->name, s->size, strerror(errno));

	alloc = pt_node_stat(s->nid, stat) - alloc;
	saved = pt_node_stat(s->nid, "vmemmap_saved_bytes") - saved;
	ndm = pt_node_stat(s->nid, "no_direct_map_bytes") - ndm;
	vt_result(alloc == s->size && ndm == (s->persist_flags & NDM ? s->size : 0),
		  "%s: node%d %s rose by %llu (want %llu), no_direct_map_bytes by %llu",
		  s->name, s->nid, stat, alloc, s->size, ndm);
	if (s->table) {
		figure(s->name, per_gib((t1 - t0) / 1000.0, s->size), "us_per_gib_alloc");
		figure(s->name, STRUCT_PAGE * (PT_GIB / SZ_4K) - per_gib(saved, s->size),
		       "struct_page_bytes_per_gib");
	}

	preserve_measured(s->name, session, s->fd, token, &s->preserve_us, &s->written);
	if (s->table) {
		figure(s->name, per_gib(s->preserve_us, s->size), "us_per_gib_preserve");
		figure(s->name, per_gib(s->written, s->size), "metadata_bytes_per_gib_written");
	}
}

/* A /proc/meminfo counter in bytes, 0 if absent. */
static unsigned long long meminfo_bytes(const char *name)
{
	unsigned long long kb = 0;
	size_t len = strlen(name);
	char line[128];
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, name, len) && line[len] == ':') {
			kb = strtoull(line + len + 1, NULL, 10);
			break;
		}
	}
	if (f)
		fclose(f);
	return kb * 1024;
}

static void setup_memfd(struct memfd_set *m, int session, int token)
{
	unsigned long long off, huge;
	char *p;
	uint64_t t0, t1;

	m->fd = memfd_create(m->name, 0);
	if (m->fd < 0 || ftruncate(m->fd, SET_SIZE))
		vt_fatal("%s: memfd of %llu bytes: %s", m->name, SET_SIZE, strerror(errno));
	p = mmap(NULL, SET_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
	if (p == MAP_FAILED)
		vt_fatal("%s: mmap: %s", m->name, strerror(errno));
	if (madvise(p, SET_SIZE, m->thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE))
		vt_fatal("%s: madvise: %s", m->name, strerror(errno));
	huge = meminfo_bytes("ShmemHugePages");
	t0 = vt_now_ns();
	for (off = 0; off < SET_SIZE; off += SZ_4K)
		p[off] = 1;
	t1 = vt_now_ns();
	munmap(p, SET_SIZE);
	m->alloc_us = (t1 - t0) / 1000.0;

	huge = meminfo_bytes("ShmemHugePages") - huge;
	if (huge > SET_SIZE)
		huge = SET_SIZE;
	m->nr_folios = (SET_SIZE - huge) / SZ_4K + huge / SZ_2M;
	m->meta_bytes = m->nr_folios * MEMFD_FOLIO_SER_BYTES + MEMFD_SER_BYTES;
	vt_diag("%s: %llu folios (%llu bytes in 2 MiB folios)", m->name, m->nr_folios, huge);
	vt_result(m->thp ? huge > SET_SIZE / 2 : !huge,
		  "%s: %llu of %llu bytes in 2 MiB folios, as asked", m->name, huge, SET_SIZE);

	preserve_measured(m->name, session, m->fd, token, &m->preserve_us, &m->written);

	figure(m->name, per_gib(m->alloc_us, SET_SIZE), "us_per_gib_alloc");
	figure(m->name, STRUCT_PAGE * (PT_GIB / SZ_4K), "struct_page_bytes_per_gib");
	figure(m->name, per_gib(m->preserve_us, SET_SIZE), "us_per_gib_preserve");
	figure(m->name, per_gib(m->preserve_us, SET_SIZE), "us_per_gib_preserve_freeze");
	figure(m->name, per_gib(m->written, SET_SIZE), "metadata_bytes_per_gib");
	figure(m->name, per_gib(m->written, SET_SIZE), "metadata_bytes_per_gib_written");
	figure(m->name, per_gib(m->meta_bytes, SET_SIZE), "metadata_bytes_per_gib_records");
	figure(m->name, per_gib(m->nr_folios, SET_SIZE), "extents_per_gib");
}

/*
 * Give the n-th line of tracepoint @event to the n-th file: LUO freezes in
 * preservation order and stage 2 retrieves in that order too. Size and
 * granule order must match.
 */
static void take_trace(const char *event)
{
	uint64_t vals[NR_SETS * NR_TK];
	bool match = true;
	int i, k, n;

	for (i = 0; i < NR_SETS; i++)
		sets[i].traced = false;
	n = vt_trace_values(event, trace_keys, NR_TK, vals, NR_SETS);
	if (!vt_result(n >= NR_SETS, "%s: %d trace lines for %d files", event, n, NR_SETS))
		return;
	for (i = 0; i < NR_SETS; i++) {
		struct gmem_set *s = &sets[i];
		const uint64_t *v = vals + i * NR_TK;

		for (k = 0; k < NR_TK; k++)
			if (v[k] == VT_TRACE_NONE)
				break;
		if (k < NR_TK || v[TK_SIZE] != s->size ||
		    v[TK_ORDER] != granule_order(s->granule)) {
			vt_diag("%s line %d: size %llu order %llu%s%s, want %s: size %llu order %u",
				event, i, (unsigned long long)v[TK_SIZE],
				(unsigned long long)v[TK_ORDER], k < NR_TK ? ", no field " : "",
				k < NR_TK ? trace_keys[k] : "", s->name, s->size,
				granule_order(s->granule));
			match = false;
			continue;
		}
		memcpy(s->trace, v, sizeof(s->trace));
		s->traced = true;
	}
	vt_result(match, "%s lines match the files in preservation order", event);
}

static void report_freeze(void)
{
	int i, k;

	for (i = 0; i < NR_SETS; i++) {
		struct gmem_set *s = &sets[i];
		double freeze, meta;

		if (!s->table || !s->traced)
			continue;
		freeze = per_gib(s->trace[TK_NS] / 1000.0, s->size);
		meta = per_gib(s->trace[TK_META], s->size);
		figure(s->name, freeze, "us_per_gib_freeze");
		figure(s->name, per_gib(s->preserve_us, s->size) + freeze,
		       "us_per_gib_preserve_freeze");
		figure(s->name, meta, "metadata_bytes_per_gib_records");
		figure(s->name, per_gib(s->trace[TK_EXTENTS], s->size), "runs_per_gib");
		vt_result(s->trace[TK_EXTENTS] <= GMEM_INLINE_RUNS,
			  "%s: its %llu runs fit in its description's page", s->name,
			  (unsigned long long)s->trace[TK_EXTENTS]);
		for (k = 0; k < NR_MEMFDS; k++)
			ratio(s->name, per_gib(memfds[k].preserve_us, SET_SIZE),
			      per_gib(s->preserve_us, s->size) + freeze,
			      "faster_preserve_freeze_than", &memfds[k]);
	}
}

#define GMEM_OWNER(data)	(0x676d656d00000000ULL ^ (data))
#define LU_SESSIONS	"/sys/kernel/debug/liveupdate/sessions"

/*
 * Stage 2, before any retrieve: the bytes of each set's entries in the
 * persist_alloc handover as received, found by the owner key the file's
 * data handle gives (liveupdate/sessions lists the handles by token).
 */
static void measure_received(void)
{
	char line[512], compat[64], state[32];
	unsigned long long token, data;
	unsigned long granules;
	FILE *f;
	int i;

	f = fopen(LU_SESSIONS, "r");
	if (!vt_result(!!f, "%s readable: %s", LU_SESSIONS, err_str(f ? 0 : errno)))
		return;
	while (fgets(line, sizeof(line), f)) {
		if (line[0] != '\t' ||
		    sscanf(line + 1, "%llu %63s %llx %31s", &token, compat, &data, state) != 4 ||
		    !token || token > NR_SETS)
			continue;
		sets[token - 1].pa_bytes = pt_received_bytes(GMEM_OWNER(data), &granules);
	}
	fclose(f);
	for (i = 0; i < NR_SETS; i++)
		vt_result(sets[i].pa_bytes > 0, "%s: %ld bytes of persist_alloc runs received",
			  sets[i].name, sets[i].pa_bytes);
}

/* Freeze every file in a kexec that the last file's freeze cancels. */
static void dry_run(void)
{
	uint64_t t0, t1;
	int ret, err;

	ret = vt_trace_start("kvm_gmem_persist");
	if (!vt_result(!ret, "tracepoints kvm_gmem_persist enabled: %s", err_str(ret)))
		return;
	ret = gvm_fail(GVM_FAIL_FREEZE, NR_SETS + 1);
	if (!vt_result(!ret, "%s: freeze call %d of %d fails: %s", GVM_FAIL_FREEZE,
		       NR_SETS + 1, NR_SETS + 1, err_str(ret)))
		return;
	ret = vt_kexec_load("");
	if (!vt_result(!ret, "kexec_file_load for the dry run: %s", err_str(ret))) {
		gvm_fail_off(GVM_FAIL_FREEZE);
		return;
	}

	sync();
	t0 = vt_now_ns();
	ret = reboot(RB_KEXEC);
	err = errno;
	t1 = vt_now_ns();
	gvm_fail_off(GVM_FAIL_FREEZE);
	syscall(__NR_kexec_file_load, -1, -1, 0ul, NULL, (unsigned long)KEXEC_FILE_UNLOAD);
	vt_result(ret < 0, "dry-run kexec cancelled by the failed freeze of the last file: %s",
		  err_str(ret < 0 ? err : 0));
	figure("gmem_dry_run", (t1 - t0) / 1000.0, "us_cancelled_reboot");

	take_trace("kvm_gmem_persist_freeze:");
	report_freeze();

	/* Unfrozen: allocation and punch-hole work again. */
	ret = fallocate(last.fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, 0, last.size);
	if (!ret)
		ret = fallocate(last.fd, FALLOC_FL_KEEP_SIZE, 0, last.size);
	vt_result(!ret, "after the cancelled kexec the last file is punched and refilled: %s",
		  err_str(ret ? errno : 0));
}

static void stage1(void)
{
	int vm, pvm, session, flags, i;

	vm = create_vm(KVM_X86_DEFAULT_VM);
	flags = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_FLAGS);
	if (flags < 0 || !(flags & GUEST_MEMFD_FLAG_PERSIST))
		vt_fatal("KVM_CAP_GUEST_MEMFD_FLAGS %#x lacks GUEST_MEMFD_FLAG_PERSIST (no pool?)",
			 flags);
	pvm = create_vm(protected_type());
	session = vt_session(SESSION, true);

	/* Baselines: THP only where asked for, whatever the command line says. */
	if (vt_write_file(THP_ENABLED, "advise"))
		vt_fatal("%s: %s", THP_ENABLED, strerror(errno));
	for (i = 0; i < NR_SETS; i++)
		setup_set(&sets[i], sets[i].protected_vm ? pvm : vm, session, i + 1);
	for (i = 0; i < NR_MEMFDS; i++)
		setup_memfd(&memfds[i], session, MEMFD_TOKEN + i);
	setup_set(&last, vm, session, LAST_TOKEN);

	dry_run();
	/* Files, VMs and the session stay open across the kexec. */
}

/* Retrieve @token, timed; returns the fd or -errno. */
static int retrieve(int session, int token, const char *name,
		    unsigned long long size, double *us)
{
	uint64_t t0, t1;
	struct stat st = { .st_size = -1 };
	int fd;

	t0 = vt_now_ns();
	fd = luo_session_retrieve_fd(session, token);
	t1 = vt_now_ns();
	*us = (t1 - t0) / 1000.0;
	if (!vt_result(fd >= 0, "%s: retrieved: %s", name, err_str(fd < 0 ? fd : 0)))
		return fd;
	/* Before the report: its arguments may be read in any order. */
	if (fstat(fd, &st))
		st.st_size = -errno;
	vt_result((unsigned long long)st.st_size == size,
		  "%s: size %lld once retrieved, want %llu", name, (long long)st.st_size, size);
	return fd;
}

/* fallocate() the whole of @fd, timed: what the first use of every granule costs. */
static double first_use(int fd, const char *name, unsigned long long size)
{
	uint64_t t0;
	int ret;

	if (fd < 0)
		return 0;
	t0 = vt_now_ns();
	ret = fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, size) ? -errno : 0;
	t0 = vt_now_ns() - t0;
	vt_result(!ret, "%s: every granule used after the retrieve: %s", name, err_str(ret));
	return ret ? 0 : t0 / 1000.0;
}

static void report_first_use(void)
{
	double theirs[NR_MEMFDS];
	int i, k;

	for (k = 0; k < NR_MEMFDS; k++) {
		struct memfd_set *m = &memfds[k];

		m->use_us = first_use(m->fd, m->name, SET_SIZE);
		theirs[k] = per_gib(m->retrieve_us + m->use_us, SET_SIZE);
		figure(m->name, per_gib(m->use_us, SET_SIZE), "us_per_gib_first_use");
		figure(m->name, theirs[k], "us_per_gib_retrieve_use");
	}
	for (i = 0; i < NR_SETS; i++) {
		struct gmem_set *s = &sets[i];
		double us;

		s->use_us = first_use(s->fd, s->name, s->size);
		if (!s->table || s->fd < 0)
			continue;
		us = per_gib(s->retrieve_us + s->use_us, s->size);
		figure(s->name, per_gib(s->use_us, s->size), "us_per_gib_first_use");
		figure(s->name, us, "us_per_gib_retrieve_use");
		for (k = 0; k < NR_MEMFDS; k++)
			ratio(s->name, theirs[k], us, "faster_retrieve_use_than", &memfds[k]);
	}
}

static void report_retrieve(void)
{
	int i, k;

	for (k = 0; k < NR_MEMFDS; k++)
		figure(memfds[k].name, per_gib(memfds[k].retrieve_us, SET_SIZE),
		       "us_per_gib_retrieve");
	for (i = 0; i < NR_SETS; i++) {
		struct gmem_set *s = &sets[i];
		double us = per_gib(s->retrieve_us, s->size);

		if (!s->table || s->fd < 0)
			continue;
		figure(s->name, us, "us_per_gib_retrieve");
		for (k = 0; k < NR_MEMFDS; k++)
			ratio(s->name, per_gib(memfds[k].retrieve_us, SET_SIZE), us,
			      "faster_retrieve_than", &memfds[k]);
		if (!s->traced)
			continue;
		figure(s->name, per_gib(s->trace[TK_NS] / 1000.0, s->size),
		       "us_per_gib_retrieve_kernel");
		/* Added to what its preserve wrote (stage 1) by vmtest.py. */
		figure(s->name, per_gib(s->pa_bytes, s->size),
		       "metadata_bytes_per_gib_persist_alloc");
	}
}

/* Each file goes into a new VM of its type, as a VMM adopts it. */
static void link_all(void)
{
	int vm = create_vm(KVM_X86_DEFAULT_VM), pvm = create_vm(protected_type());
	int i, fd;

	for (i = 0; i < NR_SETS; i++) {
		struct gmem_set *s = &sets[i];

		if (s->fd < 0)
			continue;
		fd = gvm_link(s->protected_vm ? pvm : vm, s->fd);
		vt_result(fd >= 0, "%s: KVM_LINK_GUEST_MEMFD into a new VM: %s", s->name,
			  err_str(fd < 0 ? fd : 0));
		if (fd >= 0)
			close(fd);
	}
	close(pvm);
	close(vm);
}

/*
 * Let persist_alloc's boot workers finish building the handed-over folios
 * (the console says how long they took), so that the retrieves are timed
 * as a VMM that starts after them sees them; a retrieve that came earlier
 * would build what is left itself.
 */
static void wait_prebuilt(void)
{
	unsigned long long pending[2], built[2];
	uint64_t t0 = vt_now_ns();
	int tries, n;

	if (access(SYSFS_BUILT, F_OK)) {
		vt_diag("no %s: this kernel builds folios in the retrieve", SYSFS_BUILT);
		return;
	}
	for (tries = 0; tries < 1200; tries++) {
		for (n = 0; n < 2; n++) {
			pending[n] = pt_node_stat(n, "pending_bytes");
			built[n] = pt_node_stat(n, "pending_built_bytes");
		}
		if (built[0] == pending[0] && built[1] == pending[1])
			break;
		usleep(50 * 1000);
	}
	figure("gmem_prebuild", (vt_now_ns() - t0) / 1000.0, "us_waited");
	vt_result(built[0] == pending[0] && built[1] == pending[1],
		  "handed-over folios built at boot: node 0 %llu of %llu bytes, node 1 %llu of %llu",
		  built[0], pending[0], built[1], pending[1]);
}

/* The session generation @gen preserves into. */
static const char *session_name(int gen)
{
	static char name[32];

	snprintf(name, sizeof(name), "%s_%d", SESSION, gen);
	return gen == 1 ? SESSION : name;
}

/*
 * Every set, retrieved and used, preserved again for the next round: under
 * TCG a retrieve of a few hundred microseconds varies by as much from one
 * kexec to the next, so each round reports its figures again.
 */
static void preserve_again(int gen)
{
	int session = vt_session(session_name(gen), true), ret, i;

	for (i = 0; i < NR_SETS; i++) {
		ret = sets[i].fd < 0 ? -EBADF : luo_session_preserve_fd(session, sets[i].fd, i + 1);
		if (ret)
			vt_fatal("%s: preserve again: %s", sets[i].name, strerror(-ret));
	}
	for (i = 0; i < NR_MEMFDS; i++) {
		ret = memfds[i].fd < 0 ? -EBADF :
		      luo_session_preserve_fd(session, memfds[i].fd, MEMFD_TOKEN + i);
		if (ret)
			vt_fatal("%s: preserve again: %s", memfds[i].name, strerror(-ret));
	}
}

static void stage2(int gen)
{
	unsigned long long pending;
	int session, ret, i;
	double us;

	vt_diag("round %d of %d", gen - 1, ROUNDS);
	ret = vt_trace_start("kvm_gmem_persist");
	vt_result(!ret, "tracepoints kvm_gmem_persist enabled: %s", err_str(ret));
	session = vt_session(session_name(gen - 1), false);
	wait_prebuilt();
	measure_received();

	for (i = 0; i < NR_SETS; i++)
		sets[i].fd = retrieve(session, i + 1, sets[i].name, sets[i].size,
				      &sets[i].retrieve_us);
	for (i = 0; i < NR_MEMFDS; i++)
		memfds[i].fd = retrieve(session, MEMFD_TOKEN + i, memfds[i].name, SET_SIZE,
					&memfds[i].retrieve_us);
	if (gen == 2)
		last.fd = retrieve(session, LAST_TOKEN, last.name, last.size, &us);
	if (!ret)
		take_trace("kvm_gmem_persist_retrieve:");
	report_retrieve();
	report_first_use();

	/* A linked file is its VM's: only the last round links. */
	if (gen == 1 + ROUNDS)
		link_all();
	ret = luo_session_finish(session);
	vt_result(!ret, "session finished: %s", err_str(ret));
	pending = pt_node_stat(0, "pending_bytes") + pt_node_stat(1, "pending_bytes");
	vt_result(!pending, "nothing left pending in the pools (%llu bytes)", pending);
}

int main(int argc, char **argv)
{
	int gen = vt_stage(argc, argv, 1 + ROUNDS);

	if (gen == 1) {
		stage1();
		vt_hold();
	}
	stage2(gen);
	if (gen <= ROUNDS) {
		preserve_again(gen);
		vt_hold();
	}
	return vt_finish();
}
