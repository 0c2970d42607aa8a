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
 *
 * Each line is drained to the UART before the next tick, so "up" is when
 * the line went out, not when it entered a tty buffer that a slow console
 * empties seconds later; and ticks missed while the guest was paused are
 * skipped, not made up in a burst. Without both, the lines after a live
 * update carry times from before it, and the blackout cannot be read off
 * them.
 *
 * With pmw_testdev=1 each tick also reads the low byte of the number the
 * reference VMM's test device (--testdev, port 0xe0) answers, through
 * /dev/port, and appends " io=<byte> gaps=<reads that did not follow the
 * last by one>". /dev/port, not ioperm(): nested under QEMU's TCG, a
 * user-space IN faults after a restore (TCG checks the I/O bitmap only
 * for a TSS of type "available", and KVM hands TR back as "busy").
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <linux/compiler.h>

#define SLICE	(4ull << 20)
#define TESTDEV_PORT	0xe0

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
	const char *testdev = getenv("pmw_testdev");
	int port = testdev && !strcmp(testdev, "1") ?
		   open("/dev/port", O_RDONLY | O_CLOEXEC) : -1;
	unsigned int gaps = 0;
	char extra[48] = "";
	uint8_t seq = 0;
	uint64_t size = mib << 20, words, want, h = 0, n = 0, passes = 0;
	uint64_t *buf, off = 0;
	struct timespec next, t;

	buf = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (buf == MAP_FAILED) {
		say("pmw: cannot allocate %llu MiB\n", (unsigned long long)mib);
		for (;;)
			pause();
	}
	if (testdev && port < 0)
		say("pmw: no /dev/port for the test device\n");
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
		if (port >= 0) {
			uint8_t got = 0;

			if (pread(port, &got, 1, TESTDEV_PORT) != 1 ||
			    (n > 1 && got != (uint8_t)(seq + 1)))
				gaps++;
			seq = got;
			snprintf(extra, sizeof(extra), " io=%u gaps=%u", seq, gaps);
		}
		say("pmw: n=%llu up=%.3f pass=%llu sum=%016llx %s%s\n",
		    (unsigned long long)n, now(CLOCK_BOOTTIME),
		    (unsigned long long)passes, (unsigned long long)want, verdict,
		    extra);
		tcdrain(STDOUT_FILENO);
		next.tv_nsec += 100 * 1000 * 1000;
		if (next.tv_nsec >= 1000000000) {
			next.tv_nsec -= 1000000000;
			next.tv_sec++;
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec > next.tv_sec ||
		    (t.tv_sec == next.tv_sec && t.tv_nsec > next.tv_nsec))
			next = t;
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
	}
}
