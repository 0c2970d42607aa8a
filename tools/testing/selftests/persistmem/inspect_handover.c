// SPDX-License-Identifier: GPL-2.0
/*
 * inspect_handover: the handover inspector (tools/persistmem/inspect,
 * /bin/pm-inspect) says what was preserved, what the next kernel adopted,
 * refused or still holds pending, and refuses blobs of unknown versions.
 *
 * Generation 1 preserves, through the allocator's test consumer, a 4 KiB
 * extent (the first in the handover) and a 2 MiB one; and in two LUO
 * sessions ("inspect-a", and "inspect b" whose name needs escaping) a
 * persistent guest_memfd of 8 MiB in 2 MiB granules, a memfd and a
 * persistent guest_memfd of 12 KiB in 4 KiB granules. pm-inspect --out
 * must list the sessions, files and the consumer's extents (a guest_memfd's
 * granules join the handover only when it freezes). The handover's first
 * extent is then damaged (moved outside every block) through the test
 * consumer.
 *
 * Generation 2, before anything is retrieved: 8 extents adopted and
 * pending (the guest_memfds' granules found by their owner keys, 4 of
 * 2 MiB and 3 of 4 KiB), the damaged one refused with its reason, both
 * blocks adopted, live update 1. After the first session, its guest_memfd and the
 * consumer's 2 MiB extent are retrieved, the counts move: 5 restored,
 * 3 pending, the file and its session retrieved. Finally copies of the
 * debugfs files with a version string changed (persist-alloc, LUO, KHO's
 * root) or a blob cut short are refused by name with exit status 2.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gmem_vm.h"
#include "persist_test.h"
#include "pmvm.h"

#define SESSION_A	"inspect-a"
#define SESSION_B	"inspect b"
#define OWNER		0x7465737431ull
#define GMEM_A_SIZE	(8 * GVM_MIB)
#define GMEM_B_SIZE	(12 * 1024ull)
#define MEMFD_SIZE	(1 * GVM_MIB)
#define FLAGS		(GUEST_MEMFD_FLAG_PERSIST | GUEST_MEMFD_FLAG_MMAP | \
			 GUEST_MEMFD_FLAG_INIT_SHARED)
#define FAKE		"/tmp/fake-debugfs"
static char out[1024 * 1024];

static int inspect(const char *const *args)
{
	return pmvm_inspect(args, out, sizeof(out));
}

/* Whether out[] contains the formatted text; says so and shows out[] if not. */
static __printf(1, 2) bool has(const char *fmt, ...)
{
	char want[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(want, sizeof(want), fmt, ap);
	va_end(ap);
	if (strstr(out, want))
		return true;
	vt_diag("missing: %s", want);
	return false;
}

static unsigned int count(const char *text)
{
	unsigned int n = 0;
	const char *p = out;

	while ((p = strstr(p, text))) {
		n++;
		p += strlen(text);
	}
	return n;
}

/* The table, as diagnostics, for whoever reads the log. */
static void show_table(const char *const *args)
{
	char *line, *save = NULL;
	int ret = inspect(args);

	vt_diag("pm-inspect%s%s (exit %d):", args[0] ? " " : "", args[0] ?: "", ret);
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		vt_diag("  %s", line);
}

static int gmem_file(int vm, uint64_t size, uint64_t granule)
{
	int fd = gvm_create_gmem(vm, size, FLAGS, granule, 0);

	if (fd < 0)
		vt_fatal("KVM_CREATE_GUEST_MEMFD %llu bytes: %s", (unsigned long long)size,
			 strerror(-fd));
	if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, size))
		vt_fatal("fallocate %llu bytes: %s", (unsigned long long)size, strerror(errno));
	return fd;
}

static void preserve(int session, int fd, uint64_t token)
{
	int ret = luo_session_preserve_fd(session, fd, token);

	if (ret)
		vt_fatal("LIVEUPDATE_SESSION_PRESERVE_FD token %llu: %s",
			 (unsigned long long)token, strerror(-ret));
}

static void stage1(void)
{
	static const char *const json_out[] = { "--out", "--json", NULL };
	static const char *const table_out[] = { "--out", NULL };
	int pt = pt_open(), vm, a, b, memfd, sa, sb, ret;
	bool ok;

	/* The consumer's extents first: the 4 KiB one is the handover's first entry. */
	if (pt_cmd(pt, "alloc 0 0 0") || pt_cmd(pt, "alloc 1 9 0") ||
	    pt_cmd(pt, "preserve 0 %llu", OWNER) || pt_cmd(pt, "preserve 1 %llu", OWNER))
		vt_fatal("test consumer: allocate and preserve 4 KiB on node 0, 2 MiB on node 1");
	vm = gvm_create_vm(KVM_X86_DEFAULT_VM);
	if (vm < 0)
		vt_fatal("create VM: %s", strerror(-vm));
	a = gmem_file(vm, GMEM_A_SIZE, 2 * GVM_MIB);
	b = gmem_file(vm, GMEM_B_SIZE, 4096);
	memfd = memfd_create("inspect", 0);
	if (memfd < 0 || ftruncate(memfd, MEMFD_SIZE))
		vt_fatal("memfd: %s", strerror(errno));
	sa = vt_session(SESSION_A, true);
	sb = vt_session(SESSION_B, true);
	preserve(sa, a, 1);
	preserve(sa, memfd, 2);
	preserve(sb, b, 3);

	ret = inspect(json_out);
	vt_result(ret == 0, "gen 1: pm-inspect --out --json exits 0 (%d)", ret);
	ok = has("\"side\":\"out\"") && has("\"preserved\":2,");
	ok &= has("\"persist_alloc\":{\"compatible\":\"persist-alloc-v4\",\"nr_blocks\":2,");
	ok &= has("\"nr_blocks\":2,\"nr_extents\":2,");
	ok &= has("{\"phys\":%llu,\"order\":0,\"owner\":%llu,", pt_slot_phys(pt, 0), OWNER);
	ok &= has("{\"phys\":%llu,\"order\":9,\"owner\":%llu,", pt_slot_phys(pt, 1), OWNER);
	vt_result(ok, "gen 1: 2 blocks, and the consumer's 2 extents preserved so far");
	vt_result(has("{\"name\":\"inspect-a\",\"state\":\"preserved\",\"nr_files\":2,") &&
		  has("\"token\":1,\"compatible\":\"guest-memfd-persist-v3\",") &&
		  has("\"token\":2,\"compatible\":\"memfd-v2\","),
		  "gen 1: session inspect-a: a guest_memfd and a memfd");
	vt_result(has("{\"name\":\"inspect b\",\"state\":\"preserved\",\"nr_files\":1,") &&
		  has("\"token\":3,\"compatible\":\"guest-memfd-persist-v3\","),
		  "gen 1: session \"inspect b\" (name unescaped): a guest_memfd");
	show_table(table_out);

	ret = pt_cmd(pt, "corrupt-handover extent");
	if (ret)
		vt_fatal("corrupt-handover extent: %s", strerror(-ret));
	vt_hold();
}

static void copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in, o;
	ssize_t n;

	in = open(from, O_RDONLY);
	o = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (in < 0 || o < 0)
		vt_fatal("copy %s to %s: %s", from, to, strerror(errno));
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(o, buf, n) != n)
			vt_fatal("write %s: %s", to, strerror(errno));
	close(in);
	close(o);
}

static const char *const copied[] = {
	"kho/in/fdt", "kho/in/sub_fdts/persist-alloc", "kho/in/sub_fdts/persist-alloc-ranges",
	"kho/in/sub_fdts/LUO", "persist_alloc/received/extents",
	"persist_alloc/received/verdicts", "persist_alloc/allocations", "liveupdate/sessions",
};

static void make_fake(void)
{
	static const char *const dirs[] = {
		"", "/kho", "/kho/in", "/kho/in/sub_fdts", "/persist_alloc",
		"/persist_alloc/received", "/liveupdate",
	};
	char from[256], to[256];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(dirs); i++) {
		snprintf(to, sizeof(to), FAKE "%s", dirs[i]);
		if (mkdir(to, 0700) && errno != EEXIST)
			vt_fatal("mkdir %s: %s", to, strerror(errno));
	}
	for (i = 0; i < ARRAY_SIZE(copied); i++) {
		snprintf(from, sizeof(from), "/sys/kernel/debug/%s", copied[i]);
		snprintf(to, sizeof(to), FAKE "/%s", copied[i]);
		copy_file(from, to);
	}
}

/* Replace the first @old in the fake copy of @file by @new (same length). */
static void patch(const char *file, const char *old, const char *new)
{
	char path[256], buf[65536], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), FAKE "/%s", file);
	fd = open(path, O_RDWR);
	n = fd < 0 ? -1 : read(fd, buf, sizeof(buf));
	if (n <= 0)
		vt_fatal("read %s: %s", path, strerror(errno));
	p = memmem(buf, n, old, strlen(old));
	if (!p)
		vt_fatal("%s holds no \"%s\"", path, old);
	if (pwrite(fd, new, strlen(new), p - buf) != (ssize_t)strlen(new))
		vt_fatal("write %s: %s", path, strerror(errno));
	close(fd);
}

static void refused_versions(void)
{
	static const char *const args[] = { "--debugfs", FAKE, NULL };
	bool ok;
	int ret;

	make_fake();
	ret = inspect(args);
	vt_result(ret == 0 && has("persist_alloc extents: 9 handed over"),
		  "gen 2: a copy of the debugfs files reads the same (exit %d)", ret);

	patch("kho/in/sub_fdts/persist-alloc", "persist-alloc-v4", "persist-alloc-v9");
	ret = inspect(args);
	ok = has("refused: version \"persist-alloc-v9\", this inspector knows persist-alloc-v4");
	vt_result(ret == 2 && ok && !strstr(out, "persist_alloc pools"),
		  "gen 2: persist-alloc-v9 refused by name, not decoded (exit %d)", ret);
	patch("kho/in/sub_fdts/persist-alloc", "persist-alloc-v9", "persist-alloc-v4");

	patch("kho/in/sub_fdts/LUO", "luo-v5", "luo-v4");
	ret = inspect(args);
	vt_result(ret == 2 && has("refused: version \"luo-v4\", this inspector knows luo-v5"),
		  "gen 2: luo-v4 refused by name (exit %d)", ret);
	patch("kho/in/sub_fdts/LUO", "luo-v4", "luo-v5");

	patch("kho/in/fdt", "kho-v4", "kho-v9");
	ret = inspect(args);
	vt_result(ret == 2 && has("kho-v9 REFUSED: this inspector knows kho-v4") &&
		  !strstr(out, "persist_alloc"),
		  "gen 2: a KHO root of kho-v9 refused as a whole (exit %d)", ret);
	patch("kho/in/fdt", "kho-v9", "kho-v4");

	if (truncate(FAKE "/kho/in/sub_fdts/persist-alloc", 10))
		vt_fatal("truncate: %s", strerror(errno));
	ret = inspect(args);
	vt_result(ret == 2 && has("refused: no version string"),
		  "gen 2: a persist-alloc blob cut to 10 bytes refused (exit %d)", ret);
}

static void stage2(void)
{
	static const char *const json[] = { "--json", NULL };
	static const char *const table[] = { NULL };
	int ret, sa, fd, pt, runs;
	bool ok;

	ret = inspect(json);
	vt_result(ret == 0, "gen 2: pm-inspect --json exits 0 (%d)", ret);
	ok = has("\"luo\":{\"compatible\":\"luo-v5\",\"liveupdate\":1}");
	vt_result(has("\"side\":\"in\"") && ok,
		  "gen 2: LUO blob luo-v5 read, live update 1");
	/* 9 extents in runs: 2 of the consumer, at least one per file. */
	for (runs = 4, ok = false; runs <= 9 && !ok; runs++)
		ok = has("\"nr_blocks\":2,\"nr_extents\":%d,\"nr_runs_received\":%d,",
			 runs, runs);
	vt_result(count("\"verdict\":\"adopted\"}") == 2 && ok,
		  "gen 2: both blocks adopted, 9 extents received in %d runs", runs - 1);
	ok = has("\"summary\":{\"adopted\":8,\"refused\":1,\"pending\":8,");
	ok &= has("\"pending\":8,\"restored\":0,\"freed\":0,");
	vt_result(ok,
		  "gen 2: 8 extents adopted and pending, 1 refused");
	ok = has("{\"phys\":0,\"order\":0,\"owner\":%llu,\"flags\":0,", OWNER);
	ok &= has("\"flags\":0,\"verdict\":\"outside every adopted block\",\"now\":\"-\"}");
	vt_result(ok,
		  "gen 2: the damaged extent refused: outside every adopted block");
	vt_result(has("\"sessions\":[]"),
		  "gen 2: no session listed before /dev/liveupdate is read");

	sa = vt_session(SESSION_A, false);
	fd = gvm_retrieve(sa, 1, GMEM_A_SIZE, "guest_memfd of inspect-a");
	pt = pt_open();
	ret = pt_cmd(pt, "restore-all %llu", OWNER);
	vt_result(!ret, "gen 2: the consumer's adopted extent restored (%d)", ret);

	ret = inspect(json);
	ok = has("\"summary\":{\"adopted\":8,\"refused\":1,\"pending\":3,");
	ok &= has("\"pending\":3,\"restored\":5,\"freed\":0,");
	vt_result(ret == 0 && ok,
		  "gen 2: after retrieve: 5 restored, 3 pending (exit %d)", ret);
	ok = has("{\"name\":\"inspect-a\",\"state\":\"retrieved\",\"nr_files\":2,");
	ok &= has("\"state\":\"retrieved\",\"extents\":4,\"bytes\":%llu,\"granule\":\"2M\",",
		  GMEM_A_SIZE);
	ok &= has("\"granule\":\"2M\",\"pending\":0,\"restored\":4,\"refused\":0,\"runs\":");
	ok &= has("\"token\":2,\"compatible\":\"memfd-v2\",");
	vt_result(ok && count("\"state\":\"pending\"") == 3,
		  "gen 2: inspect-a retrieved, its guest_memfd restored, its memfd pending");
	ok = has("{\"name\":\"inspect b\",\"state\":\"pending\",\"nr_files\":1,");
	ok &= has("\"extents\":3,\"bytes\":%llu,\"granule\":\"4K\",", GMEM_B_SIZE);
	ok &= has("\"granule\":\"4K\",\"pending\":3,\"restored\":0,\"refused\":0,\"runs\":");
	vt_result(ok,
		  "gen 2: \"inspect b\" pending, its 3 extents pending");
	show_table(table);
	refused_versions();
	close(fd);
}

int main(int argc, char **argv)
{
	int stage = vt_stage(argc, argv, 2);

	if (stage == 1)
		stage1();
	stage2();
	return vt_finish();
}
