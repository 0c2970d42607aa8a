// SPDX-License-Identifier: GPL-2.0
/*
 * kexec_chain: three kernels in a row. Generation 1 preserves a memfd
 * with seed 1; generation 2 retrieves and verifies it, finishes its
 * session and preserves a new memfd with seed 2; generation 3 verifies
 * that one and checks that generation 1's session did not leak into it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmtest.h"

#define GENERATIONS	3
#define SIZE		(32ull << 20)
#define TOKEN		0x636861696eull

static void session_name(char *buf, size_t size, int gen)
{
	snprintf(buf, size, "chain-gen%d", gen);
}

static void preserve_generation(int luo, int gen)
{
	char name[32];
	int session, mfd, ret;
	void *p;

	session_name(name, sizeof(name), gen);
	session = luo_create_session(luo, name);
	if (session < 0)
		vt_fatal("gen %d: create session %s: %s", gen, name, strerror(-session));
	mfd = memfd_create(name, 0);
	if (mfd < 0 || ftruncate(mfd, SIZE))
		vt_fatal("gen %d: memfd_create: %s", gen, strerror(errno));
	p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (p == MAP_FAILED)
		vt_fatal("gen %d: mmap: %s", gen, strerror(errno));
	vt_fill_pattern(p, SIZE, gen, 0);
	munmap(p, SIZE);
	ret = luo_session_preserve_fd(session, mfd, TOKEN + gen);
	vt_result(ret == 0, "gen %d: preserve memfd with seed %d (ret %d)", gen, gen, ret);
	close(mfd);
}

static void verify_generation(int luo, int gen)
{
	int prev = gen - 1, session, mfd;
	char name[32];
	long long bad;
	struct stat st;
	void *p;

	session_name(name, sizeof(name), prev);
	session = luo_retrieve_session(luo, name);
	if (session < 0)
		vt_fatal("gen %d: retrieve session %s: %s", gen, name, strerror(-session));
	mfd = luo_session_retrieve_fd(session, TOKEN + prev);
	if (mfd < 0)
		vt_fatal("gen %d: retrieve memfd of gen %d: %s", gen, prev, strerror(-mfd));
	if (fstat(mfd, &st))
		vt_fatal("gen %d: fstat: %s", gen, strerror(errno));
	vt_result(st.st_size == (off_t)SIZE,
		  "gen %d: size of gen %d memfd: expected %llu, got %lld",
		  gen, prev, SIZE, (long long)st.st_size);
	p = mmap(NULL, SIZE, PROT_READ, MAP_SHARED, mfd, 0);
	if (p == MAP_FAILED)
		vt_fatal("gen %d: mmap: %s", gen, strerror(errno));
	bad = vt_check_pattern(p, SIZE, prev, 0);
	vt_result(bad < 0,
		  "gen %d: content of gen %d memfd matches seed %d (first bad offset %lld)",
		  gen, prev, prev, bad);
	munmap(p, SIZE);
	close(mfd);
	vt_result(luo_session_finish(session) == 0, "gen %d: finish session %s", gen, name);
	close(session);
}

int main(int argc, char **argv)
{
	int gen = vt_stage(argc, argv, GENERATIONS);
	int luo = luo_open_device();

	if (luo < 0)
		vt_fatal("gen %d: open %s: %s", gen, LUO_DEVICE, strerror(errno));
	if (gen > 1)
		verify_generation(luo, gen);
	if (gen > 2) {
		char name[32];
		int old;

		session_name(name, sizeof(name), gen - 2);
		old = luo_retrieve_session(luo, name);
		vt_result(old == -ENOENT,
			  "gen %d: finished session %s of gen %d is gone: expected -ENOENT, got %d",
			  gen, name, gen - 2, old);
	}
	if (gen < GENERATIONS) {
		preserve_generation(luo, gen);
		vt_hold();
	}
	return vt_finish();
}
