// SPDX-License-Identifier: GPL-2.0
/*
 * kvm_selftest: run one KVM selftest (tools/testing/selftests/kvm) as a
 * one-stage vmtest. scripts/kvm-selftests.sh builds the selftests and the
 * runner packs them as /tests/kvm/<name>. This program is linked in /tests
 * under the vmtest's name (vmtests.conf: program kvm_selftest), so argv[0]
 * names the selftest; the kernel parameter vmtest.kvm=<name> overrides it.
 * vmtest.kvm_args=<a>,<b>,... passes arguments to it (a kselftest harness
 * filter such as -T,<test> for a test the vmtest kernel cannot run).
 * vmtest.vfio_edu=1 binds the first edu device to vfio-pci and names it to
 * a VFIO selftest (tools/testing/selftests/vfio) in VFIO_SELFTESTS_BDF.
 *
 * The selftest runs with stdout and stderr on one pipe. Each of its result
 * lines ("ok N ..." / "not ok N ...", as the kselftest harness prints them)
 * becomes a test point of this stage; every other line is forwarded as a
 * diagnostic ("# > ..."), so that the runner sees a single KTAP document.
 * A last test point tells how the selftest ended: it passes on exit status
 * 0 with as many results as the selftest planned (if it printed a plan).
 * A selftest skipped as a whole (exit status 4, KSFT_SKIP) fails: the
 * vmtest kernel is built and booted for it.
 */
#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "edu.h"
#include "vmtest.h"

#define KVM_DIR		"/tests/kvm"
/* Forwarded lines stay well within init's 1024-byte line buffer. */
#define FWD_MAX		800

/* "ok N desc" or "not ok N desc": sets @pass and @desc. */
static bool parse_result(const char *line, bool *pass, const char **desc)
{
	const char *p;

	if (!strncmp(line, "ok ", 3)) {
		*pass = true;
		p = line + 3;
	} else if (!strncmp(line, "not ok ", 7)) {
		*pass = false;
		p = line + 7;
	} else {
		return false;
	}
	if (!isdigit((unsigned char)*p))
		return false;
	while (isdigit((unsigned char)*p))
		p++;
	if (*p && *p != ' ')
		return false;
	*desc = *p ? p + 1 : p;
	return true;
}

#define MAX_ARGS	16

static pid_t spawn(const char *path, char *args, int *out)
{
	char *argv[MAX_ARGS + 2] = { (char *)path };
	int pipefd[2], n = 1;
	char *arg;
	pid_t pid;

	while ((arg = strsep(&args, ",")) && n <= MAX_ARGS)
		if (*arg)
			argv[n++] = arg;
	if (arg)
		vt_fatal("more than %d arguments in vmtest.kvm_args", MAX_ARGS);

	if (pipe(pipefd))
		vt_fatal("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		vt_fatal("fork: %s", strerror(errno));
	if (!pid) {
		dup2(pipefd[1], STDOUT_FILENO);
		dup2(pipefd[1], STDERR_FILENO);
		close(pipefd[0]);
		close(pipefd[1]);
		/* The KVM selftest library reads its guest code from argv[0]. */
		execv(path, argv);
		printf("exec %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	close(pipefd[1]);
	*out = pipefd[0];
	return pid;
}

int main(int argc, char **argv)
{
	int fd, status, planned = -1, results = 0, n;
	char name[64], path[128], line[1024], args[256] = "";
	bool partial = false, pass;
	const char *desc;
	pid_t pid;
	FILE *in;

	vt_stage(argc, argv, 1);
	if (!vt_cmdline_value("vmtest.kvm", name, sizeof(name)))
		snprintf(name, sizeof(name), "%s", basename(argv[0]));
	if (!*name || strchr(name, '/'))
		vt_fatal("bad KVM selftest name '%s'", name);
	snprintf(path, sizeof(path), KVM_DIR "/%s", name);
	if (access(path, X_OK))
		vt_fatal("%s: %s (scripts/kvm-selftests.sh builds it into build/kvm-selftests)",
			 path, strerror(errno));

	if (vt_cmdline_value("vmtest.vfio_edu", line, sizeof(line))) {
		struct edu e;
		int ret = edu_probe_vfio(&e, 0);

		if (ret)
			vt_fatal("edu on vfio-pci: %s", strerror(-ret));
		setenv("VFIO_SELFTESTS_BDF", e.bdf, 1);
	}
	vt_cmdline_value("vmtest.kvm_args", args, sizeof(args));
	vt_diag("running %s %s", path, args);
	pid = spawn(path, args, &fd);
	in = fdopen(fd, "r");
	if (!in)
		vt_fatal("fdopen: %s", strerror(errno));
	while (fgets(line, sizeof(line), in)) {
		size_t len = strlen(line);
		bool whole = len && line[len - 1] == '\n';

		if (whole)
			line[--len] = '\0';
		/* The rest of an overlong line is never a result or a plan. */
		if (!partial && parse_result(line, &pass, &desc)) {
			vt_result(pass, "%.*s", FWD_MAX, desc);
			results++;
		} else {
			if (!partial && sscanf(line, "1..%d", &n) == 1)
				planned = n;
			vt_diag("> %.*s", FWD_MAX, line);
		}
		partial = !whole;
	}
	fclose(in);

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			vt_fatal("waitpid: %s", strerror(errno));
	if (WIFSIGNALED(status)) {
		vt_result(false, "%s killed by signal %d", name, WTERMSIG(status));
	} else if (WEXITSTATUS(status) == KSFT_SKIP) {
		vt_result(false, "%s skipped as a whole (exit status %d): see its output above",
			  name, KSFT_SKIP);
	} else if (planned >= 0) {
		vt_result(!WEXITSTATUS(status) && planned == results,
			  "%s: exit status %d, %d results of %d planned", name,
			  WEXITSTATUS(status), results, planned);
	} else {
		vt_result(!WEXITSTATUS(status), "%s: exit status %d (no KTAP plan printed)",
			  name, WEXITSTATUS(status));
	}
	return vt_finish();
}
