// SPDX-License-Identifier: GPL-2.0
/*
 * memfd_luo_roundtrip: a 256 MiB memfd filled with a seeded pattern, sealed
 * and positioned, is preserved in a LUO session (upstream memfd_luo) across
 * one kexec; stage 2 retrieves it and verifies size, seals, file position
 * and every byte. Preserve and retrieve times are printed as diagnostics:
 * this is the baseline persistmem has to beat.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmtest.h"

#define SESSION		"memfd-roundtrip"
#define TOKEN		0x6d656d66ull
#define SIZE		(256ull << 20)
#define SEED		0x5eed0001ull
#define FILE_POS	12345
#define SEALS		(F_SEAL_SHRINK | F_SEAL_GROW)

static void stage1(void)
{
	int session = vt_session(SESSION, true), mfd, ret;
	uint64_t t0, t1;
	void *p;

	mfd = memfd_create("roundtrip", MFD_ALLOW_SEALING);
	if (mfd < 0 || ftruncate(mfd, SIZE))
		vt_fatal("memfd_create + ftruncate %llu: %s", SIZE, strerror(errno));
	p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (p == MAP_FAILED)
		vt_fatal("mmap memfd: %s", strerror(errno));
	vt_fill_pattern(p, SIZE, SEED, 0);
	munmap(p, SIZE);
	vt_result(fcntl(mfd, F_ADD_SEALS, SEALS) == 0, "add seals %#x", SEALS);
	vt_result(lseek(mfd, FILE_POS, SEEK_SET) == FILE_POS, "seek to %d", FILE_POS);

	t0 = vt_now_ns();
	ret = luo_session_preserve_fd(session, mfd, TOKEN);
	t1 = vt_now_ns();
	if (!vt_result(ret == 0, "preserve 256 MiB memfd (ret %d)", ret))
		vt_fatal("nothing to verify after kexec");
	vt_diag("memfd_luo preserve 256 MiB: %llu us", (unsigned long long)(t1 - t0) / 1000);
	/* LUO owns the file now; our reference may go. */
	close(mfd);
	vt_hold();
}

static int stage2(void)
{
	int session = vt_session(SESSION, false), mfd, seals;
	uint64_t t0, t1;
	long long bad;
	struct stat st;
	void *p;

	t0 = vt_now_ns();
	mfd = luo_session_retrieve_fd(session, TOKEN);
	t1 = vt_now_ns();
	if (!vt_result(mfd >= 0, "retrieve memfd token %#llx: %s", TOKEN,
		       mfd >= 0 ? "ok" : strerror(-mfd)))
		return vt_finish();
	vt_diag("memfd_luo retrieve 256 MiB: %llu us", (unsigned long long)(t1 - t0) / 1000);

	if (fstat(mfd, &st))
		vt_fatal("fstat: %s", strerror(errno));
	vt_result(st.st_size == (off_t)SIZE, "size: expected %llu, got %lld",
		  SIZE, (long long)st.st_size);
	seals = fcntl(mfd, F_GET_SEALS);
	vt_result(seals == SEALS, "seals: expected %#x, got %#x", SEALS, seals);
	vt_result(lseek(mfd, 0, SEEK_CUR) == FILE_POS, "file position: expected %d, got %lld",
		  FILE_POS, (long long)lseek(mfd, 0, SEEK_CUR));

	p = mmap(NULL, SIZE, PROT_READ, MAP_SHARED, mfd, 0);
	if (p == MAP_FAILED)
		vt_fatal("mmap retrieved memfd: %s", strerror(errno));
	bad = vt_check_pattern(p, SIZE, SEED, 0);
	vt_result(bad < 0, "content: all %llu bytes match seed %#llx (first bad offset %lld)",
		  SIZE, SEED, bad);
	munmap(p, SIZE);
	close(mfd);
	vt_result(luo_session_finish(session) == 0, "finish session");
	return vt_finish();
}

int main(int argc, char **argv)
{
	if (vt_stage(argc, argv, 2) == 1)
		stage1();
	return stage2();
}
