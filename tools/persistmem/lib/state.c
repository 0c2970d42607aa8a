// SPDX-License-Identifier: GPL-2.0
/*
 * libpersistmem: the state file's format.
 *
 * A state file is a header and a sequence of records, each a small header
 * and a payload padded to 8 bytes:
 *
 *   struct pm_state_hdr  magic "PMSTATE", version, sizes, vCPU count,
 *                        record count, CRC-32 of the whole file with the
 *                        CRC field zero
 *   struct pm_rec_hdr    type, vCPU index, payload size
 *   payload
 *   ...
 *
 * All fields are little-endian host order (the file never leaves the
 * machine). The reader checks everything before it returns a record: a
 * file written by another version, a truncated, grown or damaged one, or
 * one for another number of vCPUs is refused as a whole.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/compiler.h>

#include "persistmem.h"

#define PM_STATE_MAX_VCPUS	1024
#define PM_REC_MAX		(16u << 20)
#define PM_STATE_MAX		(256u << 20)

struct pm_state_hdr {
	char magic[8];
	uint32_t version;
	uint32_t hdr_size;
	uint64_t total;
	uint32_t nr_vcpus;
	uint32_t nr_records;
	uint32_t crc;
	uint32_t reserved;
};

struct pm_rec_hdr {
	uint32_t type;
	uint32_t vcpu;
	uint32_t size;
	uint32_t reserved;
};

static uint32_t crc_table[256];

static uint32_t pm_crc32(const uint8_t *p, size_t len)
{
	uint32_t crc = ~0u;

	if (!crc_table[1]) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;

			for (int k = 0; k < 8; k++)
				c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
			crc_table[i] = c;
		}
	}
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static size_t pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

int pm_state_init(struct pm_state *st, uint32_t nr_vcpus)
{
	memset(st, 0, sizeof(*st));
	if (!nr_vcpus || nr_vcpus > PM_STATE_MAX_VCPUS)
		return -EINVAL;
	st->nr_vcpus = nr_vcpus;
	st->cap = 64 << 10;
	st->buf = calloc(1, st->cap);
	if (!st->buf)
		return -ENOMEM;
	st->len = sizeof(struct pm_state_hdr);
	return 0;
}

int pm_state_add(struct pm_state *st, uint32_t type, uint32_t vcpu,
		 const void *data, uint32_t size)
{
	struct pm_rec_hdr rec = { .type = type, .vcpu = vcpu, .size = size };
	size_t need = sizeof(rec) + pad8(size);

	if (st->err)
		return st->err;
	if (size > PM_REC_MAX || vcpu >= st->nr_vcpus ||
	    st->len + need > PM_STATE_MAX)
		return st->err = -EINVAL;
	if (st->len + need > st->cap) {
		size_t cap = st->cap;
		uint8_t *buf;

		while (st->len + need > cap)
			cap *= 2;
		buf = realloc(st->buf, cap);
		if (!buf)
			return st->err = -ENOMEM;
		memset(buf + st->cap, 0, cap - st->cap);
		st->buf = buf;
		st->cap = cap;
	}
	memcpy(st->buf + st->len, &rec, sizeof(rec));
	memcpy(st->buf + st->len + sizeof(rec), data, size);
	st->len += need;
	return 0;
}

int pm_state_write(struct pm_state *st, const char *name)
{
	struct pm_state_hdr hdr = {
		.magic = PM_STATE_MAGIC,
		.version = PM_STATE_VERSION,
		.hdr_size = sizeof(hdr),
		.total = st->len,
		.nr_vcpus = st->nr_vcpus,
	};
	size_t off, done;
	int fd;

	if (st->err)
		return st->err;
	for (off = sizeof(hdr); off < st->len; hdr.nr_records++) {
		const struct pm_rec_hdr *rec = (const void *)(st->buf + off);

		off += sizeof(*rec) + pad8(rec->size);
	}
	memcpy(st->buf, &hdr, sizeof(hdr));
	hdr.crc = pm_crc32(st->buf, st->len);
	memcpy(st->buf, &hdr, sizeof(hdr));

	fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	for (done = 0; done < st->len; ) {
		ssize_t n = write(fd, st->buf + done, st->len - done);

		if (n <= 0) {
			int err = n < 0 ? -errno : -EIO;

			close(fd);
			return err;
		}
		done += n;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static __printf(3, 4) int refuse(struct pm_state *st, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->why, sizeof(st->why), fmt, ap);
	va_end(ap);
	free(st->buf);
	st->buf = NULL;
	st->len = 0;
	return err;
}

int pm_state_read(struct pm_state *st, int fd, uint32_t nr_vcpus)
{
	struct pm_state_hdr hdr;
	struct stat sb;
	uint32_t crc, n;
	size_t off;

	memset(st, 0, sizeof(*st));
	if (fstat(fd, &sb))
		return -errno;
	if (sb.st_size < (off_t)sizeof(hdr))
		return refuse(st, -EBADMSG, "state file too short (%lld bytes)",
			      (long long)sb.st_size);
	if (sb.st_size > PM_STATE_MAX)
		return refuse(st, -EBADMSG, "state file too large (%lld bytes)",
			      (long long)sb.st_size);
	st->buf = malloc(sb.st_size);
	if (!st->buf)
		return -ENOMEM;
	if (pread(fd, st->buf, sb.st_size, 0) != sb.st_size)
		return refuse(st, -EIO, "state file unreadable");
	st->len = sb.st_size;
	memcpy(&hdr, st->buf, sizeof(hdr));

	if (memcmp(hdr.magic, PM_STATE_MAGIC, sizeof(PM_STATE_MAGIC)))
		return refuse(st, -EBADMSG, "not a persistmem state file (magic)");
	if (hdr.version != PM_STATE_VERSION)
		return refuse(st, -EPROTONOSUPPORT,
			      "state file version %u, this VMM reads version %u",
			      hdr.version, PM_STATE_VERSION);
	if (hdr.hdr_size != sizeof(hdr) || hdr.total != st->len || hdr.reserved)
		return refuse(st, -EBADMSG, "state file header inconsistent (size %llu, file %zu)",
			      (unsigned long long)hdr.total, st->len);
	crc = hdr.crc;
	hdr.crc = 0;
	memcpy(st->buf, &hdr, sizeof(hdr));
	if (pm_crc32(st->buf, st->len) != crc)
		return refuse(st, -EBADMSG, "state file checksum mismatch");
	if (!hdr.nr_vcpus || hdr.nr_vcpus > PM_STATE_MAX_VCPUS)
		return refuse(st, -EBADMSG, "state file for %u vCPUs", hdr.nr_vcpus);
	if (nr_vcpus && hdr.nr_vcpus != nr_vcpus)
		return refuse(st, -EINVAL, "state file for %u vCPUs, the VM has %u",
			      hdr.nr_vcpus, nr_vcpus);

	for (off = sizeof(hdr), n = 0; off < st->len; n++) {
		struct pm_rec_hdr rec;

		if (st->len - off < sizeof(rec))
			return refuse(st, -EBADMSG, "record %u truncated", n);
		memcpy(&rec, st->buf + off, sizeof(rec));
		if (rec.size > PM_REC_MAX ||
		    pad8(rec.size) > st->len - off - sizeof(rec))
			return refuse(st, -EBADMSG, "record %u overruns the file", n);
		if (rec.vcpu >= hdr.nr_vcpus)
			return refuse(st, -EBADMSG, "record %u names vCPU %u", n, rec.vcpu);
		if (rec.reserved)
			return refuse(st, -EBADMSG, "record %u has reserved bits set", n);
		off += sizeof(rec) + pad8(rec.size);
	}
	if (n != hdr.nr_records)
		return refuse(st, -EBADMSG, "state file has %u records, header says %u",
			      n, hdr.nr_records);
	st->nr_vcpus = hdr.nr_vcpus;
	return 0;
}

const void *pm_state_find(const struct pm_state *st, uint32_t type,
			  uint32_t vcpu, uint32_t *size)
{
	size_t off;

	for (off = sizeof(struct pm_state_hdr); off < st->len; ) {
		const struct pm_rec_hdr *rec = (const void *)(st->buf + off);

		if (rec->type == type && rec->vcpu == vcpu) {
			if (size)
				*size = rec->size;
			return rec + 1;
		}
		off += sizeof(*rec) + pad8(rec->size);
	}
	return NULL;
}

void pm_state_free(struct pm_state *st)
{
	free(st->buf);
	memset(st, 0, sizeof(*st));
}

const char *pm_strerror(int err)
{
	switch (err) {
	case -EBADMSG:
		return "state file damaged";
	case -EPROTONOSUPPORT:
		return "state file of another version";
	case -ENOENT:
		return "no such session or token";
	case -EBUSY:
		return "busy (another process holds /dev/liveupdate?)";
	default:
		return strerror(-err);
	}
}
