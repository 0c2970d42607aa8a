// SPDX-License-Identifier: GPL-2.0
/*
 * Driving the reference VMM from a vmtest stage; see pmvm.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pmvm.h"
#include "vmtest.h"

void pmvm_reset(struct pmvm *m)
{
	m->first_n = -1;
	m->last_n = -1;
	m->last_pass = -1;
	m->first_up = -1;
	m->last_up = -1;
	m->max_step = 0;
	m->starts = 0;
	m->bad = 0;
	m->back = 0;
	m->gaps = -1;
	m->held = false;
	m->others = 0;
	m->vmm[0] = 0;
	m->resumed[0] = 0;
	m->first[0] = 0;
}

int pmvm_start(struct pmvm *m, const char *const *argv)
{
	const char *args[32] = { PMVM_BIN };
	int pfd[2];
	unsigned int i;

	memset(m, 0, sizeof(*m));
	pmvm_reset(m);
	m->status = -1;
	for (i = 0; argv[i] && i + 2 < 32; i++)
		args[i + 1] = argv[i];
	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	m->pid = fork();
	if (m->pid < 0)
		return -errno;
	if (!m->pid) {
		cpu_set_t cpu0;

		/*
		 * All of the VMM on one CPU of this machine: nested under
		 * QEMU 7.2's TCG, guests whose vCPUs ran on both of its CPUs
		 * died now and then (tools/persistmem/README.rst, Limits).
		 */
		CPU_ZERO(&cpu0);
		CPU_SET(0, &cpu0);
		if (sched_setaffinity(0, sizeof(cpu0), &cpu0))
			_exit(126);
		dup2(pfd[1], STDOUT_FILENO);
		dup2(pfd[1], STDERR_FILENO);
		execv(PMVM_BIN, (char **)args);
		_exit(127);
	}
	close(pfd[1]);
	m->out = pfd[0];
	return 0;
}

static void pmvm_line(struct pmvm *m, char *line)
{
	char *own = strstr(line, "pm-vmm: ");
	long long n, pass;
	const char *gaps;
	double up;
	char verdict[8];

	/*
	 * The VMM's own lines can land inside a guest line: what comes
	 * before is the guest's, cut there (and never finished, when the
	 * VMM says the guest died).
	 */
	if (own > line) {
		vt_diag("guest (cut): %.*s", (int)(own - line), line);
		line = own;
	}
	if (strstr(line, "pm-vmm: testdev: vCPU"))
		m->held = true;
	if (!strncmp(line, "pm-vmm: ", 8)) {
		snprintf(m->vmm, sizeof(m->vmm), "%.*s", (int)sizeof(m->vmm) - 1, line);
		if (strstr(line, ": resumed:"))
			snprintf(m->resumed, sizeof(m->resumed), "%.*s",
				 (int)sizeof(m->resumed) - 1, line);
		vt_diag("%s", line);
		return;
	}
	if (!m->first[0] && strncmp(line, "pm-vmm: ", 8))
		snprintf(m->first, sizeof(m->first), "%.*s", (int)sizeof(m->first) - 1, line);
	if (!strncmp(line, "pmw: start", 10)) {
		m->starts++;
		vt_diag("guest: %s", line);
		return;
	}
	if (sscanf(line, "pmw: n=%lld up=%lf pass=%lld sum=%*x %7s",
		   &n, &up, &pass, verdict) != 4) {
		/* the guest kernel's own messages (an oops, say) go to the log */
		if (strncmp(line, "pmw: ", 5) && line[0] && m->others++ < PMVM_MAX_OTHERS)
			vt_diag("guest: %s", line);
		return;
	}
	/* A line the VMM's own output cut in two is no verdict. */
	if (strcmp(verdict, "ok") && strcmp(verdict, "BAD"))
		return;
	if (!strcmp(verdict, "BAD"))
		m->bad++;
	if ((m->last_n >= 0 && n <= m->last_n) || up < m->last_up)
		m->back++;
	if (m->first_n < 0) {
		m->first_n = n;
		m->first_up = up;
	} else if (up - m->last_up > m->max_step) {
		m->max_step = up - m->last_up;
	}
	gaps = strstr(line, " gaps=");
	if (gaps)
		m->gaps = atoll(gaps + 6);
	m->last_n = n;
	m->last_up = up;
	m->last_pass = pass;
}

/* Read what is there within @ms; false once the VMM's output ended. */
static bool pmvm_read(struct pmvm *m, int ms)
{
	struct pollfd pfd = { .fd = m->out, .events = POLLIN };
	ssize_t got;
	char *nl;

	if (m->out < 0 || poll(&pfd, 1, ms) <= 0)
		return m->out >= 0;
	got = read(m->out, m->buf + m->len, sizeof(m->buf) - 1 - m->len);
	if (got <= 0) {
		if (m->len)	/* what the guest said last, without its newline */
			vt_diag("guest (unfinished): %s", m->buf);
		m->len = 0;
		close(m->out);
		m->out = -1;
		return false;
	}
	m->len += got;
	m->buf[m->len] = 0;
	while ((nl = strchr(m->buf, '\n'))) {
		*nl = 0;
		pmvm_line(m, m->buf);
		m->len -= nl + 1 - m->buf;
		memmove(m->buf, nl + 1, m->len + 1);
	}
	if (m->len == sizeof(m->buf) - 1)	/* a line too long: drop it */
		m->len = 0;
	return true;
}

bool pmvm_wait(struct pmvm *m, long long n, long long pass, int timeout_s)
{
	uint64_t end = vt_now_ns() + timeout_s * 1000000000ull;

	while (m->last_n < n || (pass >= 0 && m->last_pass < pass)) {
		if (vt_now_ns() > end)
			return false;
		if (!pmvm_read(m, 200)) {
			/* its output ended: say how it ended, for the log */
			int st = pmvm_wait_exit(m, 5);

			vt_diag("pm-vmm's output ended: %s %d", st < 0 ? "still running" :
				st > 128 ? "killed by signal" : "exit status",
				st > 128 ? st - 128 : st);
			return false;
		}
	}
	return true;
}

void pmvm_follow(struct pmvm *m, int ms)
{
	uint64_t end = vt_now_ns() + ms * 1000000ull;

	while (vt_now_ns() < end && pmvm_read(m, 50))
		;
}

int pmvm_command(const char *cmd, char *reply, size_t len)
{
	struct pollfd pfd = { .events = POLLIN };
	size_t got = 0;
	ssize_t n;
	int cfd, ret = 0;

	reply[0] = 0;
	/* the reply FIFO first, read-write so it never reads end of file */
	pfd.fd = open(PMVM_CONTROL ".reply", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (pfd.fd < 0)
		return -errno;
	cfd = open(PMVM_CONTROL, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (cfd < 0 || write(cfd, cmd, strlen(cmd)) != (ssize_t)strlen(cmd))
		ret = -errno;
	if (cfd >= 0)
		close(cfd);
	while (!ret && got < len - 1 && !memchr(reply, '\n', got)) {
		if (poll(&pfd, 1, 120000) <= 0) {
			ret = -ETIMEDOUT;
			break;
		}
		n = read(pfd.fd, reply + got, len - 1 - got);
		if (n > 0)
			got += n;
		reply[got] = 0;
	}
	reply[strcspn(reply, "\n")] = 0;
	close(pfd.fd);
	return ret;
}

bool pmvm_went_on(const struct pmvm *m, long long n0)
{
	return m->first_n >= n0 + 1 && m->first_n <= n0 + 2 && !m->back && !m->starts;
}

int pmvm_stop(struct pmvm *m)
{
	kill(m->pid, SIGTERM);
	return pmvm_wait_exit(m, 10);
}

int pmvm_wait_exit(struct pmvm *m, int timeout_s)
{
	uint64_t end = vt_now_ns() + timeout_s * 1000000000ull;
	int st;

	while (vt_now_ns() < end) {
		pid_t p = waitpid(m->pid, &st, WNOHANG);

		if (p == m->pid) {
			pmvm_follow(m, 100);
			m->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			return m->status;
		}
		if (!pmvm_read(m, 100))
			usleep(100000);
	}
	return -1;
}

int pmvm_inspect(const char *const *args, char *out, size_t size)
{
	const char *argv[8] = { PMVM_INSPECT };
	int pipefd[2], status, i;
	size_t n = 0;
	ssize_t r;
	pid_t pid;

	for (i = 0; i < 6 && args[i]; i++)
		argv[i + 1] = args[i];
	if (pipe2(pipefd, O_CLOEXEC))
		vt_fatal("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		vt_fatal("fork: %s", strerror(errno));
	if (!pid) {
		dup2(pipefd[1], STDOUT_FILENO);
		execv(PMVM_INSPECT, (char **)argv);
		_exit(127);
	}
	close(pipefd[1]);
	for (;;) {
		char drop[512];

		/* What does not fit is read and dropped: the child must not block. */
		if (n < size - 1)
			r = read(pipefd[0], out + n, size - 1 - n);
		else
			r = read(pipefd[0], drop, sizeof(drop));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (n < size - 1)
			n += r;
	}
	out[n] = 0;
	close(pipefd[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			vt_fatal("waitpid: %s", strerror(errno));
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
