// SPDX-License-Identifier: GPL-2.0
/*
 * pm-workload: the guest's /init in the live-update demo and vmtests.
 *
 * Writes a pattern over a buffer of pmw_mib MiB (kernel command line,
 * default 256) and takes its checksum, then forever: every 100 ms bumps a
 * counter, checksums the next slice of the buffer again, and prints one
 * line on the console:
 *
 *   pmw: n=<counter> up=<seconds since boot> pass=<full passes> sum=<hex> ok|BAD
 *
 * "sum" is the checksum taken at start; a pass that finds another value
 * prints BAD. Across a host live update the guest must go on: n and up
 * never go back, no pass is BAD, and no second "pmw: start" appears.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/compiler.h>

#define SLICE	(4ull << 20)

static uint64_t mix(uint64_t h, uint64_t w)
{
	h ^= w;
	return h * 0x100000001b3ull;
}

static uint64_t sum_range(const uint64_t *p, size_t words, uint64_t h)
{
	for (size_t i = 0; i < words; i++)
		h = mix(h, p[i]);
	return h;
}

static double now(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static __printf(1, 2) void say(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (write(STDOUT_FILENO, buf, n) < 0)
		_exit(1);
}

int main(void)
{
	const char *env = getenv("pmw_mib");
	uint64_t mib = env ? strtoull(env, NULL, 0) : 256;
	uint64_t size = mib << 20, words, want, h = 0, n = 0, passes = 0;
	uint64_t *buf, off = 0;
	struct timespec next;

	buf = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (buf == MAP_FAILED) {
		say("pmw: cannot allocate %llu MiB\n", (unsigned long long)mib);
		for (;;)
			pause();
	}
	words = size / 8;
	for (uint64_t i = 0; i < words; i++)
		buf[i] = i * 0x9e3779b97f4a7c15ull ^ 0x5eed;
	want = sum_range(buf, words, 0xcbf29ce484222325ull);
	say("pmw: start mib=%llu sum=%016llx up=%.3f\n", (unsigned long long)mib,
	    (unsigned long long)want, now(CLOCK_BOOTTIME));

	h = 0xcbf29ce484222325ull;
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (;;) {
		uint64_t len = size - off < SLICE ? size - off : SLICE;
		const char *verdict = "ok";

		h = sum_range(buf + off / 8, len / 8, h);
		off += len;
		if (off == size) {
			passes++;
			if (h != want)
				verdict = "BAD";
			off = 0;
			h = 0xcbf29ce484222325ull;
		}
		n++;
		say("pmw: n=%llu up=%.3f pass=%llu sum=%016llx %s\n",
		    (unsigned long long)n, now(CLOCK_BOOTTIME),
		    (unsigned long long)passes, (unsigned long long)want, verdict);
		next.tv_nsec += 100 * 1000 * 1000;
		if (next.tv_nsec >= 1000000000) {
			next.tv_nsec -= 1000000000;
			next.tv_sec++;
		}
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
	}
}
