// SPDX-License-Identifier: GPL-2.0
/*
 * A tiny VMM for the guest_memfd vmtests (see gmem_vm.h): a VM with one
 * 32-bit vCPU that fills or verifies guest_memfd memory page by page.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <linux/mempolicy.h>

#include "gmem_vm.h"

#define CODE_SIZE	GVM_MIB
#define CODE_GPA	0x1000
#define PORT_DONE	0x10
#define PORT_BAD	0x11
#define PORT_SEEN	0x12
#define HASH_MUL	0x9E3779B1u
#define MAX_EXITS	16

/*
 * 32-bit protected mode payload at CODE_GPA. Entry registers:
 *   eax mode (0 fill, 1 verify), ebx index of the first file page,
 *   edx seed, esi GPA of the first page, ebp number of pages.
 * Each page is filled (rep stosl) or checked (repe scasl) with
 * seed ^ (page * HASH_MUL) in every dword. At the end the guest writes the
 * GPA where it stopped to PORT_DONE; on a mismatch the GPA of the bad
 * dword to PORT_BAD, then the dword to PORT_SEEN. Then it halts.
 */
static const unsigned char payload[] = {
	0xfc,					/* 00: cld */
	0x85, 0xc0,				/* 01: test %eax,%eax */
	0x75, 0x1b,				/* 03: jnz verify (20) */
	/* fill: */
	0x85, 0xed,				/* 05: test %ebp,%ebp */
	0x74, 0x34,				/* 07: jz done (3d) */
	0x69, 0xc3, 0xb1, 0x79, 0x37, 0x9e,	/* 09: imul $HASH_MUL,%ebx,%eax */
	0x31, 0xd0,				/* 0f: xor %edx,%eax */
	0x89, 0xf7,				/* 11: mov %esi,%edi */
	0xb9, 0x00, 0x04, 0x00, 0x00,		/* 13: mov $1024,%ecx */
	0xf3, 0xab,				/* 18: rep stos %eax,%es:(%edi) */
	0x89, 0xfe,				/* 1a: mov %edi,%esi */
	0x43,					/* 1c: inc %ebx */
	0x4d,					/* 1d: dec %ebp */
	0xeb, 0xe5,				/* 1e: jmp fill (05) */
	/* verify: */
	0x85, 0xed,				/* 20: test %ebp,%ebp */
	0x74, 0x19,				/* 22: jz done (3d) */
	0x69, 0xc3, 0xb1, 0x79, 0x37, 0x9e,	/* 24: imul $HASH_MUL,%ebx,%eax */
	0x31, 0xd0,				/* 2a: xor %edx,%eax */
	0x89, 0xf7,				/* 2c: mov %esi,%edi */
	0xb9, 0x00, 0x04, 0x00, 0x00,		/* 2e: mov $1024,%ecx */
	0xf3, 0xaf,				/* 33: repe scas %es:(%edi),%eax */
	0x75, 0x0b,				/* 35: jne bad (42) */
	0x89, 0xfe,				/* 37: mov %edi,%esi */
	0x43,					/* 39: inc %ebx */
	0x4d,					/* 3a: dec %ebp */
	0xeb, 0xe3,				/* 3b: jmp verify (20) */
	/* done: */
	0x89, 0xf0,				/* 3d: mov %esi,%eax */
	0xe7, PORT_DONE,			/* 3f: out %eax,$PORT_DONE */
	0xf4,					/* 41: hlt */
	/* bad: */
	0x83, 0xef, 0x04,			/* 42: sub $4,%edi */
	0x89, 0xf8,				/* 45: mov %edi,%eax */
	0xe7, PORT_BAD,				/* 47: out %eax,$PORT_BAD */
	0x8b, 0x07,				/* 49: mov (%edi),%eax */
	0xe7, PORT_SEEN,			/* 4b: out %eax,$PORT_SEEN */
	0xf4,					/* 4d: hlt */
};

int gvm_kvm(void)
{
	static int kvm = -1;

	if (kvm < 0) {
		kvm = open("/dev/kvm", O_RDWR);
		if (kvm < 0)
			vt_fatal("open /dev/kvm: %s", strerror(errno));
	}
	return kvm;
}

int gvm_create_vm(unsigned long type)
{
	int vm = ioctl(gvm_kvm(), KVM_CREATE_VM, type);

	return vm < 0 ? -errno : vm;
}

static void flat_segment(struct kvm_segment *s, unsigned short sel, unsigned char type)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->dpl = 0;
	s->db = 1;
	s->s = 1;
	s->l = 0;
	s->g = 1;
}

static int setup_vcpu(struct gvm *g)
{
	struct kvm_sregs sregs;
	int size;

	g->vcpu = ioctl(g->vm, KVM_CREATE_VCPU, 0);
	if (g->vcpu < 0)
		return -errno;
	size = ioctl(gvm_kvm(), KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size < 0)
		return -errno;
	g->run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, g->vcpu, 0);
	if (g->run == MAP_FAILED) {
		g->run = NULL;
		return -errno;
	}
	g->run_size = size;

	if (ioctl(g->vcpu, KVM_GET_SREGS, &sregs))
		return -errno;
	/* Protected mode (PE), paging off, caches on (CD and NW clear). */
	sregs.cr0 = (sregs.cr0 & ~0x60000000ull) | 1;
	flat_segment(&sregs.cs, 0x08, 11);		/* code, execute/read, accessed */
	flat_segment(&sregs.ds, 0x10, 3);		/* data, read/write, accessed */
	sregs.es = sregs.ds;
	sregs.ss = sregs.ds;
	sregs.fs = sregs.ds;
	sregs.gs = sregs.ds;
	if (ioctl(g->vcpu, KVM_SET_SREGS, &sregs))
		return -errno;
	return 0;
}

int gvm_create(struct gvm *g, unsigned long type)
{
	struct kvm_userspace_memory_region2 region = { 0 };
	int ret;

	memset(g, 0, sizeof(*g));
	g->vcpu = -1;
	g->gmem = -1;
	g->type = type;
	g->vm = gvm_create_vm(type);
	if (g->vm < 0)
		return g->vm;

	g->code = mmap(NULL, CODE_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (g->code == MAP_FAILED) {
		ret = -errno;
		g->code = NULL;
		goto err;
	}
	memcpy((char *)g->code + CODE_GPA, payload, sizeof(payload));
	region.slot = 0;
	region.guest_phys_addr = 0;
	region.memory_size = CODE_SIZE;
	region.userspace_addr = (uintptr_t)g->code;
	if (ioctl(g->vm, KVM_SET_USER_MEMORY_REGION2, &region)) {
		ret = -errno;
		goto err;
	}
	ret = setup_vcpu(g);
	if (ret)
		goto err;
	return 0;
err:
	gvm_destroy(g);
	return ret;
}

void gvm_destroy(struct gvm *g)
{
	if (g->run)
		munmap(g->run, g->run_size);
	if (g->vcpu >= 0)
		close(g->vcpu);
	if (g->vm >= 0)
		close(g->vm);
	if (g->code)
		munmap(g->code, CODE_SIZE);
	if (g->resv)
		munmap(g->resv, g->resv_len);
	memset(g, 0, sizeof(*g));
	g->vm = -1;
	g->vcpu = -1;
	g->gmem = -1;
}

int gvm_create_gmem(int vm, uint64_t size, uint64_t flags, uint64_t granule,
		    uint64_t persist_flags)
{
	struct kvm_create_guest_memfd args = {
		.size = size,
		.flags = flags,
		.granule_size = granule,
		.persist_flags = persist_flags,
	};
	int fd = ioctl(vm, KVM_CREATE_GUEST_MEMFD, &args);

	return fd < 0 ? -errno : fd;
}

int gvm_link(int vm, int fd)
{
	struct kvm_link_guest_memfd args = { .fd = fd };
	int ret = ioctl(vm, KVM_LINK_GUEST_MEMFD, &args);

	return ret < 0 ? -errno : ret;
}

int gvm_set_gmem(struct gvm *g, int fd, uint64_t size, bool private_mem, const char **what)
{
	struct kvm_userspace_memory_region2 region = { 0 };
	struct kvm_memory_attributes attr = { 0 };
	uintptr_t aligned;
	void *addr;

	*what = "reserve address space";
	g->resv_len = size + GVM_GIB;
	g->resv = mmap(NULL, g->resv_len, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (g->resv == MAP_FAILED) {
		g->resv = NULL;
		return -errno;
	}
	aligned = ((uintptr_t)g->resv + GVM_GIB - 1) & ~(uintptr_t)(GVM_GIB - 1);
	if (private_mem) {
		*what = "mmap anonymous userspace_addr";
		addr = mmap((void *)aligned, size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
	} else {
		*what = "mmap guest_memfd";
		addr = mmap((void *)aligned, size, PROT_READ | PROT_WRITE,
			    MAP_SHARED | MAP_FIXED, fd, 0);
	}
	if (addr == MAP_FAILED)
		return -errno;
	g->uaddr = addr;

	*what = "KVM_SET_USER_MEMORY_REGION2";
	region.slot = 1;
	region.flags = KVM_MEM_GUEST_MEMFD;
	region.guest_phys_addr = GVM_GMEM_GPA;
	region.memory_size = size;
	region.userspace_addr = (uintptr_t)addr;
	region.guest_memfd = fd;
	region.guest_memfd_offset = 0;
	if (ioctl(g->vm, KVM_SET_USER_MEMORY_REGION2, &region))
		return -errno;
	g->gmem = fd;
	g->size = size;
	g->private_mem = private_mem;

	if (!private_mem)
		return 0;
	*what = "KVM_SET_MEMORY_ATTRIBUTES private";
	attr.address = GVM_GMEM_GPA;
	attr.size = size;
	attr.attributes = KVM_MEMORY_ATTRIBUTE_PRIVATE;
	if (ioctl(g->vm, KVM_SET_MEMORY_ATTRIBUTES, &attr))
		return -errno;
	return 0;
}

uint32_t gvm_seed(uint32_t seed)
{
	uint32_t inv = HASH_MUL;
	int i;

	/* Inverse of HASH_MUL mod 2^32 (Newton): page seed * inv holds 0. */
	for (i = 0; i < 5; i++)
		inv *= 2 - HASH_MUL * inv;
	while (seed * inv < (1u << 20))
		seed += 0x01000193;
	return seed;
}

/* Shared with the SIGALRM handler: accessed with __atomic builtins only. */
static int timed_out;
static struct kvm_run *running;

static void on_alarm(int sig)
{
	struct kvm_run *run = __atomic_load_n(&running, __ATOMIC_SEQ_CST);

	__atomic_store_n(&timed_out, 1, __ATOMIC_SEQ_CST);
	/* Caught outside KVM_RUN: make the next KVM_RUN return at once. */
	if (run)
		__atomic_store_n(&run->immediate_exit, 1, __ATOMIC_SEQ_CST);
}

static void arm_timer(unsigned int seconds)
{
	static bool installed;
	struct itimerval it = { .it_value = { .tv_sec = seconds } };

	if (!installed) {
		struct sigaction sa = { .sa_handler = on_alarm };

		sigemptyset(&sa.sa_mask);
		sigaction(SIGALRM, &sa, NULL);
		installed = true;
	}
	__atomic_store_n(&timed_out, 0, __ATOMIC_SEQ_CST);
	setitimer(ITIMER_REAL, &it, NULL);
}

static void disarm_timer(void)
{
	struct itimerval it = { 0 };

	setitimer(ITIMER_REAL, &it, NULL);
	__atomic_store_n(&running, NULL, __ATOMIC_SEQ_CST);
}

const char *gvm_exit_name(unsigned int reason)
{
	switch (reason) {
	case KVM_EXIT_IO: return "IO";
	case KVM_EXIT_HLT: return "HLT";
	case KVM_EXIT_MMIO: return "MMIO";
	case KVM_EXIT_SHUTDOWN: return "SHUTDOWN";
	case KVM_EXIT_FAIL_ENTRY: return "FAIL_ENTRY";
	case KVM_EXIT_INTERNAL_ERROR: return "INTERNAL_ERROR";
	case KVM_EXIT_MEMORY_FAULT: return "MEMORY_FAULT";
	case KVM_EXIT_INTR: return "INTR";
	default: return "other";
	}
}

/* Where the guest is: the GPA it is working on (edi) and the page (esi). */
static void where(struct gvm *g, char *buf, size_t size)
{
	struct kvm_regs regs;

	if (ioctl(g->vcpu, KVM_GET_REGS, &regs))
		snprintf(buf, size, "(registers unavailable)");
	else
		snprintf(buf, size, "rip %#llx page gpa %#llx edi %#llx pages left %llu",
			 regs.rip, regs.rsi, regs.rdi, regs.rbp);
}

static void failed_run(struct gvm *g, struct gvm_result *r, int err)
{
	struct kvm_run *run = g->run;
	char pos[96];

	where(g, pos, sizeof(pos));
	if (err == EINTR && __atomic_load_n(&timed_out, __ATOMIC_SEQ_CST))
		snprintf(r->why, sizeof(r->why), "guest timed out: %s", pos);
	else if (run->exit_reason == KVM_EXIT_MEMORY_FAULT)
		snprintf(r->why, sizeof(r->why),
			 "KVM_RUN: %s, memory fault at gpa %#llx size %#llx flags %#llx",
			 strerror(err), run->memory_fault.gpa, run->memory_fault.size,
			 run->memory_fault.flags);
	else
		snprintf(r->why, sizeof(r->why), "KVM_RUN: %s (exit %s %u): %s", strerror(err),
			 gvm_exit_name(run->exit_reason), run->exit_reason, pos);
}

/* Handle one OUT of the payload; false on anything unexpected. */
static bool port_io(struct gvm *g, struct gvm_result *r, bool *done, bool *bad)
{
	struct kvm_run *run = g->run;
	uint32_t val;

	if (run->io.direction != KVM_EXIT_IO_OUT || run->io.size != 4 || run->io.count != 1) {
		snprintf(r->why, sizeof(r->why), "unexpected I/O: port %#x dir %u size %u",
			 run->io.port, run->io.direction, run->io.size);
		return false;
	}
	memcpy(&val, (char *)run + run->io.data_offset, sizeof(val));
	switch (run->io.port) {
	case PORT_DONE:
		r->addr = val;
		*done = true;
		return true;
	case PORT_BAD:
		r->addr = val;
		*bad = true;
		return true;
	case PORT_SEEN:
		r->seen = val;
		return true;
	}
	snprintf(r->why, sizeof(r->why), "unexpected I/O port %#x", run->io.port);
	return false;
}

bool gvm_run(struct gvm *g, enum gvm_mode mode, uint32_t seed, uint64_t off,
	     uint64_t len, struct gvm_result *r)
{
	uint64_t end = GVM_GMEM_GPA + off + len, t0;
	bool done = false, bad = false;
	struct kvm_regs regs = { 0 };
	int exits, ret, err;

	memset(r, 0, sizeof(*r));
	if (g->gmem < 0 || (off | len) & 4095 || !len || off + len > g->size) {
		snprintf(r->why, sizeof(r->why), "bad range [%#llx, +%#llx) of %#llx",
			 (unsigned long long)off, (unsigned long long)len,
			 (unsigned long long)g->size);
		return false;
	}
	regs.rip = CODE_GPA;
	regs.rflags = 0x2;
	regs.rax = mode;
	regs.rbx = off / 4096;
	regs.rdx = seed;
	regs.rsi = GVM_GMEM_GPA + off;
	regs.rbp = len / 4096;
	if (ioctl(g->vcpu, KVM_SET_REGS, &regs)) {
		snprintf(r->why, sizeof(r->why), "KVM_SET_REGS: %s", strerror(errno));
		return false;
	}

	t0 = vt_now_ns();
	/* Only the timer sets immediate_exit again: KVM_RUN then returns -EINTR. */
	g->run->immediate_exit = 0;
	__atomic_store_n(&running, g->run, __ATOMIC_SEQ_CST);
	arm_timer(30 + len / (8 * GVM_MIB));
	for (exits = 0; exits < MAX_EXITS; exits++) {
		ret = ioctl(g->vcpu, KVM_RUN, 0);
		err = errno;
		if (ret) {
			failed_run(g, r, err);
			break;
		}
		if (g->run->exit_reason == KVM_EXIT_HLT)
			break;
		if (g->run->exit_reason != KVM_EXIT_IO) {
			failed_run(g, r, 0);
			break;
		}
		if (!port_io(g, r, &done, &bad))
			break;
	}
	disarm_timer();
	r->ns = vt_now_ns() - t0;
	if (r->why[0])
		return false;
	if (exits == MAX_EXITS) {
		snprintf(r->why, sizeof(r->why), "no HLT after %d exits", MAX_EXITS);
	} else if (bad) {
		r->want = gvm_value(seed, (r->addr - GVM_GMEM_GPA) / 4096);
		snprintf(r->why, sizeof(r->why),
			 "mismatch at gpa %#llx (file offset %#llx): expected %#x, found %#x",
			 (unsigned long long)r->addr,
			 (unsigned long long)(r->addr - GVM_GMEM_GPA), r->want, r->seen);
	} else if (!done) {
		snprintf(r->why, sizeof(r->why), "guest halted without a report");
	} else if (r->addr != (uint32_t)end) {
		snprintf(r->why, sizeof(r->why), "guest stopped at %#llx, expected %#llx",
			 (unsigned long long)r->addr, (unsigned long long)end);
	} else {
		r->pass = true;
	}
	return r->pass;
}

bool gvm_point(struct gvm *g, enum gvm_mode mode, uint32_t seed, uint64_t off,
	       uint64_t len, const char *fmt, ...)
{
	struct gvm_result r;
	char name[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	gvm_run(g, mode, seed, off, len, &r);
	return vt_result(r.pass, "%s: vCPU %s %llu MiB at offset %llu MiB seed %#x in %llu ms%s%s",
			 name, mode == GVM_FILL ? "filled" : "verified",
			 (unsigned long long)(len >> 20), (unsigned long long)(off >> 20), seed,
			 (unsigned long long)(r.ns / 1000000), r.pass ? "" : ": ", r.why);
}

long long gvm_vm_stat(struct gvm *g, const char *name)
{
	struct kvm_stats_header hdr;
	struct kvm_stats_desc *desc;
	long long val = -1;
	size_t dsize;
	char *descs;
	uint64_t v;
	unsigned int i;
	int fd;

	fd = ioctl(g->vm, KVM_GET_STATS_FD, NULL);
	if (fd < 0)
		return -1;
	if (pread(fd, &hdr, sizeof(hdr), 0) != sizeof(hdr))
		goto out;
	dsize = sizeof(*desc) + hdr.name_size;
	descs = malloc(dsize * hdr.num_desc);
	if (!descs)
		goto out;
	if (pread(fd, descs, dsize * hdr.num_desc, hdr.desc_offset) !=
	    (ssize_t)(dsize * hdr.num_desc))
		goto out_free;
	for (i = 0; i < hdr.num_desc; i++) {
		desc = (struct kvm_stats_desc *)(descs + i * dsize);
		if (strcmp(desc->name, name))
			continue;
		if (pread(fd, &v, sizeof(v), hdr.data_offset + desc->offset) == sizeof(v))
			val = v;
		break;
	}
out_free:
	free(descs);
out:
	close(fd);
	return val;
}

int gvm_mbind_node(void *addr, size_t len, int node)
{
	unsigned long mask = 1ul << node;

	if (syscall(__NR_mbind, addr, len, MPOL_BIND, &mask, 8 * sizeof(mask) + 1, 0))
		return -errno;
	return 0;
}

int gvm_bind_task(int node)
{
	unsigned long mask = node < 0 ? 0 : 1ul << node;
	long ret;

	if (node < 0)
		ret = syscall(__NR_set_mempolicy, MPOL_DEFAULT, NULL, 0);
	else
		ret = syscall(__NR_set_mempolicy, MPOL_BIND, &mask, 8 * sizeof(mask) + 1);
	return ret ? -errno : 0;
}

int gvm_fallocate_interleaved(int fd, uint64_t size, uint64_t granule)
{
	uint64_t off, at;

	for (off = 0; off < 2 * size; off += 2 * granule) {
		at = off < size ? off : off - size + granule;
		if (fallocate(fd, FALLOC_FL_KEEP_SIZE, at, granule))
			return -errno;
	}
	return 0;
}

static int gvm_fail_write(const char *attr, const char *name, const char *val)
{
	char path[160];

	snprintf(path, sizeof(path), "%s/%s", attr, name);
	return vt_write_file(path, val);
}

int gvm_fail(const char *attr, unsigned int nth)
{
	char val[16];
	int ret;

	snprintf(val, sizeof(val), "%u", nth);
	ret = gvm_fail_write(attr, "times", "1");
	if (!ret)
		ret = gvm_fail_write(attr, "interval", val);
	if (!ret)
		ret = gvm_fail_write(attr, "verbose", "1");
	/* Last: calls are counted only while the probability is not zero. */
	if (!ret)
		ret = gvm_fail_write(attr, "probability", "100");
	return ret;
}

int gvm_fail_off(const char *attr)
{
	return gvm_fail_write(attr, "probability", "0");
}

long gvm_fail_left(const char *attr)
{
	char path[160], buf[32];
	ssize_t len;
	int fd;

	snprintf(path, sizeof(path), "%s/times", attr);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return -EIO;
	buf[len] = '\0';
	return strtol(buf, NULL, 0);
}

int gvm_retrieve(int session, uint64_t token, uint64_t size, const char *what)
{
	struct stat st;
	int fd;

	fd = luo_session_retrieve_fd(session, token);
	if (fd < 0)
		vt_fatal("gen 2: retrieve %s: %s", what, strerror(-fd));
	if (fstat(fd, &st))
		vt_fatal("gen 2: fstat: %s", strerror(errno));
	vt_result(st.st_size == (off_t)size, "gen 2: %s retrieved, size %lld, expected %llu", what,
		  (long long)st.st_size, (unsigned long long)size);
	return fd;
}

void gvm_arm_failing_kexec(unsigned int nth, const char *flag)
{
	int ret;

	if (access(GVM_FAIL_FREEZE, F_OK))
		vt_fatal("%s: %s (CONFIG_FAULT_INJECTION_DEBUG_FS?)", GVM_FAIL_FREEZE,
			 strerror(errno));
	ret = gvm_fail(GVM_FAIL_FREEZE, nth);
	if (ret)
		vt_fatal("arm %s: %s", GVM_FAIL_FREEZE, strerror(-ret));
	ret = vt_kexec_load(flag);
	if (!vt_result(!ret, "kexec image loaded: %s", ret ? strerror(-ret) : "ok"))
		exit(vt_finish());
}
