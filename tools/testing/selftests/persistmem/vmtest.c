// SPDX-License-Identifier: GPL-2.0
/*
 * Helpers for persistmem vmtest stage programs: KTAP reporting, seeded
 * patterns and thin wrappers around the LUO uapi.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/kexec.h>

#include "vmtest.h"

static int vt_count;
static int vt_failed;

int vt_stage(int argc, char **argv, int max_stage)
{
	char *end;
	long stage;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 2)
		goto usage;
	stage = strtol(argv[1], &end, 10);
	if (*end || stage < 1 || stage > max_stage)
		goto usage;
	return stage;
usage:
	fprintf(stderr, "usage: %s <stage 1..%d>\n", argv[0], max_stage);
	exit(2);
}

static void vt_vprint(const char *prefix, const char *fmt, va_list ap)
{
	fputs(prefix, stdout);
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
}

bool vt_result(bool pass, const char *fmt, ...)
{
	char prefix[32];
	va_list ap;

	vt_count++;
	if (!pass)
		vt_failed++;
	snprintf(prefix, sizeof(prefix), "%s %d ", pass ? "ok" : "not ok", vt_count);
	va_start(ap, fmt);
	vt_vprint(prefix, fmt, ap);
	va_end(ap);
	return pass;
}

void vt_diag(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vt_vprint("# ", fmt, ap);
	va_end(ap);
}

void vt_fatal(const char *fmt, ...)
{
	char prefix[32];
	va_list ap;

	vt_count++;
	vt_failed++;
	snprintf(prefix, sizeof(prefix), "not ok %d ", vt_count);
	va_start(ap, fmt);
	vt_vprint(prefix, fmt, ap);
	va_end(ap);
	vt_finish();
	exit(1);
}

static void vt_plan(void)
{
	printf("1..%d\n", vt_count);
	fflush(stdout);
}

void vt_next_args(const char *args)
{
	printf(VT_NEXT_ARGS "%s\n", args);
	fflush(stdout);
}

void vt_hold(void)
{
	vt_plan();
	puts(VT_HOLD_LINE);
	fflush(stdout);
	for (;;)
		pause();
}

static bool next_kernel_loaded(void)
{
	char c = '0';
	int fd = open("/sys/kernel/kexec_loaded", O_RDONLY);

	if (fd >= 0) {
		if (read(fd, &c, 1) != 1)
			c = '0';
		close(fd);
	}
	return c == '1';
}

void vt_hold_then(void (*at_kexec)(void *arg), void *arg)
{
	vt_plan();
	puts(VT_HOLD_LINE);
	fflush(stdout);
	while (!next_kernel_loaded())
		usleep(1000);
	at_kexec(arg);
	for (;;)
		pause();
}

int vt_finish(void)
{
	vt_plan();
	return vt_failed ? 1 : 0;
}

uint64_t vt_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static inline uint64_t vt_word(uint64_t seed, uint64_t off)
{
	/* splitmix64 of (seed, word offset) */
	uint64_t z = seed * 0x9e3779b97f4a7c15ull + off + 0x632be59bd9b4e019ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void vt_fill_pattern(void *buf, size_t len, uint64_t seed, uint64_t base_off)
{
	uint64_t *p = buf;
	size_t i;

	for (i = 0; i < len / 8; i++)
		p[i] = vt_word(seed, base_off + i * 8);
	for (i = len & ~7ul; i < len; i++)
		((uint8_t *)buf)[i] = vt_word(seed, base_off + (i & ~7ul)) >> (8 * (i & 7));
}

long long vt_check_pattern(const void *buf, size_t len, uint64_t seed, uint64_t base_off)
{
	const uint64_t *p = buf;
	size_t i, b;

	for (i = 0; i < len / 8; i++) {
		uint64_t want = vt_word(seed, base_off + i * 8);

		if (p[i] == want)
			continue;
		for (b = 0; b < 8; b++)
			if (((p[i] ^ want) >> (8 * b)) & 0xff)
				return i * 8 + b;
	}
	for (i = len & ~7ul; i < len; i++)
		if (((const uint8_t *)buf)[i] !=
		    (uint8_t)(vt_word(seed, base_off + (i & ~7ul)) >> (8 * (i & 7))))
			return i;
	return -1;
}

#define TRACEFS "/sys/kernel/tracing"

int vt_write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_TRUNC);
	ssize_t len = strlen(val);
	int ret;

	if (fd < 0)
		return -errno;
	ret = write(fd, val, len) == len ? 0 : -errno;
	close(fd);
	return ret;
}

int vt_trace_start(const char *system)
{
	char path[128];
	int ret;

	if (access(TRACEFS "/trace", F_OK) &&
	    mount("tracefs", TRACEFS, "tracefs", 0, NULL) && errno != EBUSY)
		return -errno;
	snprintf(path, sizeof(path), TRACEFS "/events/%s/enable", system);
	ret = vt_write_file(TRACEFS "/trace", "");
	if (!ret)
		ret = vt_write_file(path, "1");
	if (!ret)
		ret = vt_write_file(TRACEFS "/tracing_on", "1");
	return ret;
}

int vt_trace_count(const char *event, const char *match)
{
	char line[512];
	FILE *f;
	int n = 0;

	vt_write_file(TRACEFS "/tracing_on", "0");
	f = fopen(TRACEFS "/trace", "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, event) && strstr(line, match))
			n++;
	fclose(f);
	return n;
}

/* Value of field "@key=" in a trace line, or VT_TRACE_NONE. */
static uint64_t trace_field(const char *line, const char *key)
{
	size_t klen = strlen(key);
	const char *p;

	for (p = strstr(line, key); p; p = strstr(p + 1, key))
		if ((p == line || p[-1] == ' ') && p[klen] == '=')
			return strtoull(p + klen + 1, NULL, 0);
	return VT_TRACE_NONE;
}

int vt_trace_values(const char *event, const char *const *keys, int nr_keys,
		    uint64_t *vals, int max)
{
	char line[512];
	int n = 0, k;
	FILE *f;

	vt_write_file(TRACEFS "/tracing_on", "0");
	f = fopen(TRACEFS "/trace", "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (!strstr(line, event))
			continue;
		for (k = 0; n < max && k < nr_keys; k++)
			vals[n * nr_keys + k] = trace_field(line, keys[k]);
		n++;
	}
	fclose(f);
	return n;
}

unsigned int vt_dmesg_count(const char *text)
{
	int len = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
	unsigned int n = 0;
	char *buf, *p;

	if (len <= 0)
		return 0;
	buf = malloc(len + 1);
	if (!buf)
		return 0;
	len = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, len);
	buf[len > 0 ? len : 0] = '\0';
	for (p = buf; (p = strstr(p, text)); p += strlen(text))
		n++;
	free(buf);
	return n;
}

bool vt_dmesg_contains(const char *text)
{
	return vt_dmesg_count(text);
}

const char *vt_cmdline_value(const char *key, char *buf, size_t size)
{
	char cmdline[4096], *p;
	size_t klen = strlen(key), n;
	FILE *f = fopen("/proc/cmdline", "r");

	if (!f)
		return NULL;
	p = fgets(cmdline, sizeof(cmdline), f);
	fclose(f);
	for (; p && (p = strstr(p, key)); p += klen) {
		if ((p == cmdline || p[-1] == ' ') && p[klen] == '=') {
			n = strcspn(p + klen + 1, "\n ");
			if (n >= size)
				return NULL;
			memcpy(buf, p + klen + 1, n);
			buf[n] = '\0';
			return buf;
		}
	}
	return NULL;
}

long long vt_proc_value(const char *path, const char *format)
{
	long long v = -1;
	char line[256];
	FILE *f = fopen(path, "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, format, &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

long long vt_kho_serialized(void)
{
	return vt_proc_value("/sys/kernel/debug/kho/out/serialized_bytes", "%lld");
}

long long vt_kho_radix(void)
{
	return vt_proc_value("/sys/kernel/debug/kho/out/radix_bytes", "%lld");
}

long long vt_kho_written(void)
{
	long long state = vt_kho_serialized(), radix = vt_kho_radix();

	return state < 0 || radix < 0 ? -1 : state + radix;
}

int vt_session(const char *name, bool create)
{
	static int luo = -1;
	int session;

	if (luo < 0) {
		luo = luo_open_device();
		if (luo < 0)
			vt_fatal("open %s: %s", LUO_DEVICE, strerror(errno));
	}
	session = create ? luo_create_session(luo, name) : luo_retrieve_session(luo, name);
	if (session < 0)
		vt_fatal("%s session '%s': %s", create ? "create" : "retrieve", name,
			 strerror(-session));
	return session;
}

int vt_kexec_load(const char *extra_args)
{
	char cmdline[4096];
	int kfd, ifd, ret = 0;
	ssize_t len;

	kfd = open("/proc/cmdline", O_RDONLY);
	if (kfd < 0)
		return -errno;
	len = read(kfd, cmdline, sizeof(cmdline) - 1);
	close(kfd);
	if (len <= 0 || len + strlen(extra_args) + 2 > sizeof(cmdline))
		return -EIO;
	cmdline[len] = '\0';
	cmdline[strcspn(cmdline, "\n")] = '\0';
	if (*extra_args) {
		strcat(cmdline, " ");
		strcat(cmdline, extra_args);
	}

	kfd = open(VT_KERNEL_IMAGE, O_RDONLY);
	ifd = open(VT_INITRD_IMAGE, O_RDONLY);
	if (kfd < 0 || ifd < 0 ||
	    syscall(__NR_kexec_file_load, kfd, ifd, strlen(cmdline) + 1, cmdline, 0UL))
		ret = -errno;
	if (kfd >= 0)
		close(kfd);
	if (ifd >= 0)
		close(ifd);
	return ret;
}

int vt_kexec_cancelled(const char *escaped)
{
	char arg[96];
	int ret, err;

	snprintf(arg, sizeof(arg), "%s=1", escaped);
	ret = vt_kexec_load(arg);
	if (ret)
		vt_fatal("kexec image not loaded: %s", strerror(-ret));
	ret = reboot(RB_KEXEC);
	err = ret < 0 ? errno : 0;
	if (syscall(__NR_kexec_file_load, -1, -1, 0UL, NULL, (unsigned long)KEXEC_FILE_UNLOAD))
		vt_fatal("kexec image not unloaded: %s", strerror(errno));
	return err;
}

void vt_fill_file(int fd, size_t len, uint64_t seed)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		vt_fatal("mmap of a file to fill: %s", strerror(errno));
	vt_fill_pattern(p, len, seed, 0);
	munmap(p, len);
}
