// SPDX-License-Identifier: GPL-2.0
/*
 * lib_test: KTAP tests of libpersistmem that need no KVM and no kexec.
 *
 * The state file: a round trip keeps every record; every damaged byte,
 * a truncated or grown file, another version, another vCPU count and
 * records that overrun the file are refused with the right errno before
 * anything is returned. Files that are malformed but carry a valid
 * checksum (a buggy or hostile writer) are refused by the checks behind
 * the checksum, and counted records (CPUID, MSRs) whose count does not fit
 * their size are refused before KVM sees them. And every argument check
 * of the library.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/compiler.h>

#include "persistmem.h"

static int nr_tests, nr_failed;

static __printf(2, 3) void result(int pass, const char *fmt, ...)
{
	va_list ap;

	printf("%s %d ", pass ? "ok" : "not ok", ++nr_tests);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!pass)
		nr_failed++;
}

/* A state of 2 vCPUs with a few records of known content. */
static int make_state(struct pm_state *st)
{
	uint8_t blob[300];

	for (unsigned int i = 0; i < sizeof(blob); i++)
		blob[i] = i * 7;
	if (pm_state_init(st, 2))
		return -1;
	pm_state_add(st, PM_REC_REGS, 0, blob, 144);
	pm_state_add(st, PM_REC_REGS, 1, blob + 1, 144);
	pm_state_add(st, PM_REC_XSAVE, 1, blob, sizeof(blob));
	pm_state_add(st, PM_REC_DEVICE, 0, "uart", 5);
	return st->err;
}

/* The bytes of a state file, to damage them. */
static size_t file_bytes(int fd, uint8_t **out)
{
	off_t len = lseek(fd, 0, SEEK_END);

	*out = malloc(len);
	if (pread(fd, *out, len, 0) != len)
		return 0;
	return len;
}

static int memfd_of(const uint8_t *buf, size_t len)
{
	int fd = memfd_create("t", MFD_CLOEXEC);

	if (fd < 0 || write(fd, buf, len) != (ssize_t)len)
		return -1;
	return fd;
}

static int read_bytes(const uint8_t *buf, size_t len, uint32_t vcpus, char *why)
{
	struct pm_state st;
	int fd = memfd_of(buf, len), ret;

	ret = pm_state_read(&st, fd, vcpus);
	snprintf(why, 128, "%s", st.why);
	if (!ret && st.buf)
		pm_state_free(&st);
	else if (ret && st.buf)
		result(0, "a refused state keeps no buffer");
	close(fd);
	return ret;
}

static void test_round_trip(void)
{
	struct pm_state st, in;
	uint32_t size;
	const uint8_t *p;
	int fd, ret;

	result(!make_state(&st), "state with 4 records built");
	fd = pm_state_write(&st, "t");
	result(fd >= 0, "state written to a memfd");
	result(fcntl(fd, F_GET_SEALS) & F_SEAL_WRITE, "state memfd sealed against writes");
	ret = pm_state_read(&in, fd, 2);
	result(!ret, "state read back (%s)", in.why);
	p = pm_state_find(&in, PM_REC_XSAVE, 1, &size);
	result(p && size == 300 && p[299] == (uint8_t)(299 * 7),
	       "XSAVE record of vCPU 1 intact (%u bytes)", p ? size : 0);
	p = pm_state_find(&in, PM_REC_REGS, 1, &size);
	result(p && size == 144 && p[0] == 7, "REGS record of vCPU 1 intact");
	result(!pm_state_find(&in, PM_REC_XSAVE, 0, NULL), "absent record not found");
	p = pm_state_find(&in, PM_REC_DEVICE, 0, &size);
	result(p && size == 5 && !strcmp((const char *)p, "uart"), "device record intact");
	pm_state_free(&in);
	result(!pm_state_read(&in, fd, 0), "vCPU count taken from the file");
	result(in.nr_vcpus == 2, "file says 2 vCPUs (%u)", in.nr_vcpus);
	pm_state_free(&in);
	pm_state_free(&st);
	close(fd);
}

static void test_damage(void)
{
	struct pm_state st;
	uint8_t *buf, *bad;
	size_t len, flips = 0, refused = 0;
	char why[128];
	int fd, ret;

	make_state(&st);
	fd = pm_state_write(&st, "t");
	len = file_bytes(fd, &buf);
	bad = malloc(len + 64);

	/* every single damaged byte is refused, none is taken */
	for (size_t i = 0; i < len; i++) {
		memcpy(bad, buf, len);
		bad[i] ^= 0x40;
		flips++;
		ret = read_bytes(bad, len, 2, why);
		if (ret == -EBADMSG || ret == -EPROTONOSUPPORT)
			refused++;
	}
	result(refused == flips, "each of %zu damaged bytes refused (%zu were)", flips, refused);

	memcpy(bad, buf, len);
	bad[len - 1] ^= 1;
	result(read_bytes(bad, len, 2, why) == -EBADMSG && strstr(why, "checksum"),
	       "damaged payload: -EBADMSG, \"%s\"", why);
	result(read_bytes(buf, len - 8, 2, why) == -EBADMSG,
	       "truncated file: -EBADMSG, \"%s\"", why);
	memcpy(bad, buf, len);
	memset(bad + len, 0, 64);
	result(read_bytes(bad, len + 64, 2, why) == -EBADMSG,
	       "grown file: -EBADMSG, \"%s\"", why);
	result(read_bytes(buf, 10, 2, why) == -EBADMSG, "10-byte file: -EBADMSG, \"%s\"", why);
	result(read_bytes(buf, 0, 2, why) == -EBADMSG, "empty file: -EBADMSG, \"%s\"", why);
	memcpy(bad, buf, len);
	memcpy(bad, "XXSTATE", 8);
	result(read_bytes(bad, len, 2, why) == -EBADMSG && strstr(why, "magic"),
	       "foreign file: -EBADMSG, \"%s\"", why);
	memcpy(bad, buf, len);
	bad[8] = 2;	/* version 2, checksum not fixed: the version is told first */
	result(read_bytes(bad, len, 2, why) == -EPROTONOSUPPORT && strstr(why, "version 2"),
	       "other version: -EPROTONOSUPPORT, \"%s\"", why);
	result(read_bytes(buf, len, 4, why) == -EINVAL && strstr(why, "4"),
	       "state for 2 vCPUs into a VM of 4: -EINVAL, \"%s\"", why);
	free(buf);
	free(bad);
	close(fd);
	pm_state_free(&st);
}

/* CRC-32 (IEEE, reflected), written here again to reseal edited files. */
static uint32_t crc32(const uint8_t *p, size_t len)
{
	uint32_t crc = ~0u;

	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? 0xedb88320u ^ (crc >> 1) : crc >> 1;
	}
	return ~crc;
}

/* Offsets in the file of make_state(): header, then record 0 (REGS, vCPU 0). */
#define HDR_NR_VCPUS	24
#define HDR_NR_RECORDS	28
#define HDR_CRC		32
#define REC0_VCPU	44
#define REC0_SIZE	48
#define REC0_RESERVED	52

/* Set the 32-bit field at @off of a copy of @buf, fix the CRC, read it. */
static int read_edited(const uint8_t *buf, size_t len, size_t off, uint32_t val,
		       char *why)
{
	uint8_t *bad = malloc(len);
	uint32_t crc;
	int ret;

	memcpy(bad, buf, len);
	memcpy(bad + off, &val, sizeof(val));
	memset(bad + HDR_CRC, 0, sizeof(crc));
	crc = crc32(bad, len);
	memcpy(bad + HDR_CRC, &crc, sizeof(crc));
	ret = read_bytes(bad, len, 0, why);
	free(bad);
	return ret;
}

/*
 * A state of one vCPU with a CPUID record of one entry claiming @nent and
 * an MSR record of none claiming @nmsrs: its restore, with no KVM at all.
 */
static int restore_counted(uint32_t nent, uint32_t nmsrs, char *why)
{
	uint8_t entries[sizeof(struct kvm_cpuid2) + sizeof(struct kvm_cpuid_entry2)] = {};
	struct kvm_cpuid2 *cpuid = (void *)entries;
	struct kvm_msrs msrs = { .nmsrs = nmsrs };
	struct pm_state st;
	int fd, ret;

	cpuid->nent = nent;
	pm_state_init(&st, 1);
	pm_state_add(&st, PM_REC_CPUID, 0, entries, sizeof(entries));
	pm_state_add(&st, PM_REC_MSRS, 0, &msrs, sizeof(msrs));
	fd = pm_state_write(&st, "t");
	pm_state_free(&st);
	ret = pm_state_read(&st, fd, 1);
	if (!ret)
		ret = pm_state_restore_vcpu(&st, -1, -1, 0);
	snprintf(why, 128, "%s", st.why);
	pm_state_free(&st);
	close(fd);
	return ret;
}

static void test_sealed_malformed(void)
{
	struct pm_state st;
	uint8_t *buf;
	uint32_t two;
	size_t len;
	char why[128];
	int fd;

	make_state(&st);
	fd = pm_state_write(&st, "t");
	len = file_bytes(fd, &buf);
	close(fd);
	pm_state_free(&st);
	memcpy(&two, buf + HDR_NR_VCPUS, sizeof(two));
	result(two == 2 && !read_edited(buf, len, HDR_NR_VCPUS, 2, why),
	       "resealed unchanged file accepted: the test's CRC is the library's");
	result(read_edited(buf, len, REC0_SIZE, 1 << 20, why) == -EBADMSG &&
	       strstr(why, "overruns"),
	       "sealed record larger than the file: -EBADMSG, \"%s\"", why);
	result(read_edited(buf, len, REC0_SIZE, 0xffffffe0, why) == -EBADMSG,
	       "sealed record size near 4 GiB: -EBADMSG, \"%s\"", why);
	result(read_edited(buf, len, REC0_VCPU, 5, why) == -EBADMSG && strstr(why, "vCPU 5"),
	       "sealed record of vCPU 5 in a file of 2: -EBADMSG, \"%s\"", why);
	result(read_edited(buf, len, REC0_RESERVED, 1, why) == -EBADMSG && strstr(why, "reserved"),
	       "sealed record with reserved bits: -EBADMSG, \"%s\"", why);
	result(read_edited(buf, len, HDR_NR_RECORDS, 3, why) == -EBADMSG &&
	       strstr(why, "records"), "sealed header with 3 of 4 records: -EBADMSG, \"%s\"", why);
	result(read_edited(buf, len, HDR_NR_VCPUS, 0, why) == -EBADMSG,
	       "sealed header for 0 vCPUs: -EBADMSG, \"%s\"", why);
	result(read_edited(buf, len, HDR_NR_VCPUS, 5000, why) == -EBADMSG,
	       "sealed header for 5000 vCPUs: -EBADMSG, \"%s\"", why);
	free(buf);

	/* counted records whose count does not fit: refused before any ioctl */
	result(restore_counted(100, 0, why) == -EBADMSG && strstr(why, "CPUID"),
	       "CPUID record claiming 100 entries: -EBADMSG before KVM, \"%s\"", why);
	result(restore_counted(1, 0xffffffff, why) == -EBADMSG && strstr(why, "MSR"),
	       "MSR record claiming 2^32-1 entries: -EBADMSG before KVM, \"%s\"", why);
}

static void test_args(void)
{
	struct pm_state st;
	struct pm_gmem_spec spec = { .size = 1 << 20, .granule = 8192 };
	uint8_t x = 0;
	char name[65];

	result(pm_state_init(&st, 0) == -EINVAL, "0 vCPUs: -EINVAL");
	result(pm_state_init(&st, 1025) == -EINVAL, "1025 vCPUs: -EINVAL");
	pm_state_init(&st, 2);
	result(pm_state_add(&st, PM_REC_REGS, 2, &x, 1) == -EINVAL,
	       "record for vCPU 2 of 2: -EINVAL");
	result(pm_state_add(&st, PM_REC_REGS, 0, &x, 1) == -EINVAL,
	       "after an error every add fails");
	result(pm_state_write(&st, "t") == -EINVAL, "and the write reports it");
	pm_state_free(&st);
	pm_state_init(&st, 1);
	result(pm_state_add(&st, PM_REC_XSAVE, 0, &x, (16u << 20) + 1) == -EINVAL,
	       "record over 16 MiB: -EINVAL");
	pm_state_free(&st);
	result(pm_gmem_create(-1, &spec) == -EINVAL, "granule 8 KiB: -EINVAL");
	spec.granule = 2 << 20;
	result(pm_gmem_create(-1, &spec) == -EINVAL, "1 MiB in 2 MiB granules: -EINVAL");
	spec.size = 0;
	result(pm_gmem_create(-1, &spec) == -EINVAL, "size 0: -EINVAL");
	spec.size = 2 << 20;
	result(pm_gmem_create(-1, &spec) == -EBADF, "no VM: -EBADF");
	result(pm_gmem_link(-1, -1) == -EBADF, "link of no file: -EBADF");
	result(pm_session_create("") == -EINVAL, "empty session name: -EINVAL");
	result(pm_session_create(NULL) == -EINVAL, "no session name: -EINVAL");
	memset(name, 'x', 64);
	name[64] = 0;
	result(pm_session_retrieve(name) == -EINVAL, "64-byte session name: -EINVAL");
	result(pm_session_preserve(-1, 0, 1) == -EBADF, "preserve into no session: -EBADF");
	result(pm_session_retrieve_fd(-1, 1) == -EBADF, "retrieve from no session: -EBADF");
	result(pm_session_finish(-1) == -EBADF, "finish of no session: -EBADF");
	result(!strcmp(pm_strerror(-EBADMSG), "state file damaged"), "pm_strerror names damage");
}

int main(void)
{
	printf("KTAP version 1\n");
	test_round_trip();
	test_damage();
	test_sealed_malformed();
	test_args();
	printf("1..%d\n", nr_tests);
	printf("%d passed, %d failed\n", nr_tests - nr_failed, nr_failed);
	return nr_failed ? 1 : 0;
}
