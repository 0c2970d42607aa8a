// SPDX-License-Identifier: GPL-2.0
/*
 * Client side of the persist_alloc test consumer, for the vmtests.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "persist_test.h"

#define SYSFS	"/sys/kernel/mm/persist_alloc"

int pt_open(void)
{
	int fd = open(PT_TEST_FILE, O_RDWR);

	if (fd < 0)
		vt_fatal("open %s: %s", PT_TEST_FILE, strerror(errno));
	return fd;
}

int pt_cmd(int fd, const char *fmt, ...)
{
	char buf[96];
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return write(fd, buf, len) == len ? 0 : -errno;
}

int pt_slots(int fd, struct pt_slot *s, int max)
{
	char buf[8192], *line, *save;
	ssize_t len;
	int n = 0;

	len = pread(fd, buf, sizeof(buf) - 1, 0);
	if (len < 0)
		vt_fatal("read %s: %s", PT_TEST_FILE, strerror(errno));
	buf[len] = '\0';
	for (line = strtok_r(buf, "\n", &save); line && n < max;
	     line = strtok_r(NULL, "\n", &save), n++) {
		if (sscanf(line, "%u %lx %u %d %lu %d %d", &s[n].slot, &s[n].pfn, &s[n].order,
			   &s[n].nid, &s[n].flags, &s[n].present_first,
			   &s[n].present_last) != 7)
			vt_fatal("bad line from %s: '%s'", PT_TEST_FILE, line);
	}
	return n;
}

unsigned long long pt_slot_phys(int fd, unsigned int slot)
{
	struct pt_slot s[PT_MAX_SLOTS];
	int n = pt_slots(fd, s, PT_MAX_SLOTS), i;

	for (i = 0; i < n; i++)
		if (s[i].slot == slot)
			return (unsigned long long)s[i].pfn * 4096;
	vt_fatal("slot %u is not in use", slot);
}

/* Mirror of struct persist_alloc_extent_ser (include/linux/kho/abi/persist_alloc.h). */
struct pt_received_run {
	uint64_t phys, owner;
	uint32_t nr;
	uint16_t order, flags;
};

static_assert(sizeof(struct pt_received_run) == 24, "no padding");

/*
 * Bytes of the handover entries of @owner as the new kernel received them
 * (debugfs persist_alloc/received/extents, byte for byte), and in
 * @granules the granules they cover; -1 if there is no such file.
 */
int pt_extents(int nid, unsigned int order, const char *state, unsigned long long *phys,
	       int max)
{
	FILE *f = fopen(PT_ALLOCATIONS, "r");
	unsigned long long addr, owner;
	char flags[64], now[32];
	unsigned int o;
	int n = 0, node;

	if (!f)
		vt_fatal("open %s: %s", PT_ALLOCATIONS, strerror(errno));
	while (fscanf(f, "%llx %u %d %63s %llu %31s", &addr, &o, &node, flags, &owner,
		      now) == 6) {
		if (o != order || node != nid || strcmp(now, state))
			continue;
		if (phys && n < max)
			phys[n] = addr;
		n++;
	}
	fclose(f);
	return n;
}

long pt_received_bytes(uint64_t owner, unsigned long *granules)
{
	struct pt_received_run r;
	long bytes = 0;
	int fd = open("/sys/kernel/debug/persist_alloc/received/extents", O_RDONLY);

	*granules = 0;
	if (fd < 0)
		return -1;
	while (read(fd, &r, sizeof(r)) == sizeof(r)) {
		if (r.owner != owner)
			continue;
		bytes += sizeof(r);
		*granules += r.nr;
	}
	close(fd);
	return bytes;
}

unsigned long long pt_node_stat(int nid, const char *name)
{
	char path[128], buf[64];
	ssize_t len;
	int fd;

	snprintf(path, sizeof(path), SYSFS "/node%d/%s", nid, name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		vt_fatal("open %s: %s", path, strerror(errno));
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		vt_fatal("read %s", path);
	buf[len] = '\0';
	return strtoull(buf, NULL, 0);
}

long long pt_residue(int fd, unsigned long long phys, unsigned long nr_pages, uint64_t seed)
{
	char buf[32];
	ssize_t len;
	int rfd, ret;

	ret = pt_cmd(fd, "residue %llx %lu %llu", phys, nr_pages, (unsigned long long)seed);
	if (ret)
		return ret;
	rfd = open("/sys/kernel/debug/persist_alloc/test_result", O_RDONLY);
	if (rfd < 0)
		return -errno;
	len = read(rfd, buf, sizeof(buf) - 1);
	close(rfd);
	if (len <= 0)
		return -EIO;
	buf[len] = '\0';
	return strtoll(buf, NULL, 0);
}

int pt_node_write(int nid, const char *name, const char *val)
{
	ssize_t len = strlen(val);
	char path[128];
	int fd, ret;

	snprintf(path, sizeof(path), SYSFS "/node%d/%s", nid, name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	ret = write(fd, val, len) == len ? 0 : -errno;
	close(fd);
	return ret;
}

/* Word by word (a byte loop costs seconds per GiB under TCG); @len % 8 == 0 */
static bool is_zero(const uint8_t *p, size_t len, unsigned int slot, size_t off)
{
	const uint64_t *w = (const uint64_t *)p;
	size_t i, b;

	for (i = 0; i < len / 8; i++) {
		if (!w[i])
			continue;
		for (b = i * 8; !p[b]; b++)
			;
		vt_diag("slot %u: byte %zu is %#x, want 0", slot, off + b, p[b]);
		return false;
	}
	return true;
}

bool pt_pattern(int fd, unsigned int slot, unsigned int order, uint64_t seed, int ops)
{
	size_t size = 4096ul << order;
	size_t off, step, span;
	bool ok = true;
	long long bad;
	uint8_t *p;

	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)slot << 30);
	if (p == MAP_FAILED) {
		vt_diag("mmap slot %u: %s", slot, strerror(errno));
		return false;
	}
	if (ops & PT_CHECK_ZERO)
		ok = is_zero(p, size, slot, 0);
	step = ops & PT_SAMPLE ? 4096 : size;
	span = ops & PT_SAMPLE ? 64 : size;
	for (off = 0; ok && (ops & PT_FILL) && off < size; off += step)
		vt_fill_pattern(p + off, span, seed, off);
	for (off = 0; ok && (ops & PT_CHECK) && off < size; off += step) {
		bad = vt_check_pattern(p + off, span, seed, off);
		if (bad >= 0) {
			vt_diag("slot %u seed %llu: mismatch at %lld", slot,
				(unsigned long long)seed, (long long)off + bad);
			ok = false;
		}
	}
	munmap(p, size);
	return ok;
}

bool pt_is_quarantined(unsigned long long phys)
{
	char line[160], want[64];
	bool found = false;
	FILE *f = fopen(PT_ALLOCATIONS, "r");

	snprintf(want, sizeof(want), "0x%016llx 0 ", phys);
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, want, strlen(want)) && strstr(line, " quarantined"))
			found = true;
	if (f)
		fclose(f);
	return found;
}

unsigned long long pt_page_flags(unsigned long long phys)
{
	unsigned long long flags = 0;
	int fd = open("/proc/kpageflags", O_RDONLY);

	if (fd < 0 || pread(fd, &flags, sizeof(flags), (phys >> 12) * 8) != sizeof(flags))
		vt_diag("page flags of %#llx unreadable", phys);
	if (fd >= 0)
		close(fd);
	return flags;
}

bool pt_looks_like_folio(unsigned long long phys, unsigned int order)
{
	unsigned long long size = 4096ull << order;

	return (pt_page_flags(phys) & PT_KPF_HEAD) &&
	       (pt_page_flags(phys + 4096) & PT_KPF_TAIL) &&
	       (pt_page_flags(phys + 4242 * 4096ull % size) & PT_KPF_TAIL) &&
	       (pt_page_flags(phys + size - 4096) & PT_KPF_TAIL);
}

bool pt_cancelled_kexec(int fd, const char *escaped, const char *what)
{
	int ret, err;

	ret = pt_cmd(fd, "fail-next-freeze %d", ECANCELED);
	if (ret)
		vt_fatal("%s: fail-next-freeze: %d", what, ret);
	err = vt_kexec_cancelled(escaped);
	return vt_result(err == ECANCELED, "%s: reboot(KEXEC) fails with the freeze's error (%s)",
			 what, err ? strerror(err) : "returned 0");
}
