// SPDX-License-Identifier: GPL-2.0
/*
 * persistmem vmtest init: PID 1 of every kernel generation in a vmtest.
 *
 * The kernel command line names the test and the stage:
 *   vmtest.test=<name> vmtest.stage=<n>
 * init mounts the pseudo filesystems, runs "/tests/<name> <n>" with stdout
 * on a pipe and forwards its KTAP output, framed as one KTAP document per
 * stage, to the results port (/dev/ttyS1; the console is ttyS0):
 *
 *   KTAP version 1
 *   # vmtest: test <name> stage <n> kernel <release> uptime <seconds>
 *   ...test points of the stage program...
 *   # vmtest: end stage <n> hold|exit <code>|signal <sig>
 *
 * If the stage program asks to be held (vmtest.h: vt_hold()), it stays
 * alive with its LUO sessions while init loads the same kernel with
 * kexec_file_load() (initrd from /sys/firmware/initrd, which the runner's
 * "retain_initrd" keeps) and the command line's stage bumped, plus any
 * parameters the stage asked for (vt_next_args()), then reboots into it
 * through KHO. Otherwise init prints "# vmtest: done" and
 * powers off. Any failure of init itself is reported on the results port
 * as "# vmtest: init error: ..." and the machine is powered off, so the
 * runner never waits for its timeout on a broken init.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmtest.h"

#define CMDLINE_MAX	4096
#define KERNEL_IMAGE	"/boot/bzImage"
#define INITRD_IMAGE	"/sys/firmware/initrd"
#define RESULTS_PORT	"/dev/ttyS1"

static FILE *results;

static __printf(1, 2) void report(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(results, fmt, ap);
	va_end(ap);
	fputc('\n', results);
	fflush(results);
}

static __noreturn void power_off(void)
{
	sync();
	reboot(RB_POWER_OFF);
	for (;;)
		pause();
}

static __printf(1, 2) __noreturn void init_error(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "vmtest-init: %s\n", msg);
	if (results)
		report("# vmtest: init error: %s", msg);
	power_off();
}

/* Seconds since this kernel booted, as /proc/uptime says. */
static double boot_seconds(void)
{
	FILE *f = fopen("/proc/uptime", "r");
	double up = 0;

	if (f) {
		if (fscanf(f, "%lf", &up) != 1)
			up = 0;
		fclose(f);
	}
	return up;
}

static void mount_fs(const char *src, const char *dst, const char *type)
{
	mkdir(dst, 0755);
	if (mount(src, dst, type, 0, NULL) < 0 && errno != EBUSY)
		init_error("mount %s on %s: %s", type, dst, strerror(errno));
}

static void read_cmdline(char *buf, size_t size)
{
	int fd = open("/proc/cmdline", O_RDONLY);
	ssize_t len;

	if (fd < 0)
		init_error("open /proc/cmdline: %s", strerror(errno));
	len = read(fd, buf, size - 1);
	close(fd);
	if (len < 0)
		init_error("read /proc/cmdline: %s", strerror(errno));
	buf[len] = '\0';
	if (len && buf[len - 1] == '\n')
		buf[len - 1] = '\0';
}

/* Copy the value of "key=" from @cmdline into @val; 0 if found. */
static int cmdline_param(const char *cmdline, const char *key, char *val, size_t size)
{
	size_t klen = strlen(key);
	const char *p = cmdline;

	while ((p = strstr(p, key))) {
		if ((p == cmdline || p[-1] == ' ') && p[klen] == '=') {
			size_t n = strcspn(p + klen + 1, " ");

			if (n >= size)
				return -1;
			memcpy(val, p + klen + 1, n);
			val[n] = '\0';
			return 0;
		}
		p += klen;
	}
	return -1;
}

static char next_args[512];

/* Whether parameter @tok ("key=value" or "key") is named in @args. */
static int replaced(const char *tok, const char *args)
{
	size_t klen = strcspn(tok, "=");
	const char *p = args;

	while (*p) {
		if (!strncmp(p, tok, klen) && (p[klen] == '=' || p[klen] == ' ' || !p[klen]))
			return 1;
		p += strcspn(p, " ");
		p += strspn(p, " ");
	}
	return 0;
}

/* Rewrite "vmtest.stage=<n>" in @cmdline to @stage, add next_args. */
static void set_stage(char *cmdline, size_t size, int stage)
{
	char out[CMDLINE_MAX], *tok, *save;
	size_t len = 0;

	out[0] = '\0';
	for (tok = strtok_r(cmdline, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		if (!strncmp(tok, "vmtest.stage=", 13) || replaced(tok, next_args))
			continue;
		len += snprintf(out + len, sizeof(out) - len, "%s ", tok);
		if (len >= sizeof(out))
			init_error("command line too long");
	}
	if ((size_t)snprintf(cmdline, size, "%s%s%svmtest.stage=%d", out, next_args,
			     *next_args ? " " : "", stage) >= size)
		init_error("command line too long");
}

static void kexec_next(const char *cmdline_now, int next_stage)
{
	char cmdline[CMDLINE_MAX];
	int kfd, ifd;

	snprintf(cmdline, sizeof(cmdline), "%s", cmdline_now);
	set_stage(cmdline, sizeof(cmdline), next_stage);
	kfd = open(KERNEL_IMAGE, O_RDONLY);
	if (kfd < 0)
		init_error("open %s: %s", KERNEL_IMAGE, strerror(errno));
	ifd = open(INITRD_IMAGE, O_RDONLY);
	if (ifd < 0)
		init_error("open %s: %s (booted without retain_initrd?)",
			   INITRD_IMAGE, strerror(errno));
	if (syscall(__NR_kexec_file_load, kfd, ifd, strlen(cmdline) + 1, cmdline, 0UL))
		init_error("kexec_file_load: %s", strerror(errno));
	close(kfd);
	close(ifd);
	report("# vmtest: kexec to stage %d", next_stage);
	sync();
	reboot(RB_KEXEC);
	init_error("reboot(RB_KEXEC): %s", strerror(errno));
}

/* Forward the stage program's output; returns 1 if it asked to be held. */
static int forward_output(int fd)
{
	FILE *in = fdopen(fd, "r");
	char line[1024];

	if (!in)
		init_error("fdopen: %s", strerror(errno));
	while (fgets(line, sizeof(line), in)) {
		line[strcspn(line, "\n")] = '\0';
		if (!strcmp(line, VT_HOLD_LINE))
			return 1;
		if (!strncmp(line, VT_NEXT_ARGS, strlen(VT_NEXT_ARGS))) {
			const char *args = line + strlen(VT_NEXT_ARGS);
			size_t len = strlen(args);

			if (len >= sizeof(next_args))
				init_error("next-args longer than %zu bytes",
					   sizeof(next_args) - 1);
			memcpy(next_args, args, len + 1);
			report("# vmtest: next kernel gets '%s'", next_args);
			continue;
		}
		report("%s", line);
	}
	fclose(in);
	return 0;
}

int main(void)
{
	char cmdline[CMDLINE_MAX], test[128], stage_str[16], path[192];
	int pipefd[2], status, stage, held;
	struct utsname uts;
	pid_t pid;

	mount_fs("proc", "/proc", "proc");
	mount_fs("sysfs", "/sys", "sysfs");
	mount_fs("devtmpfs", "/dev", "devtmpfs");
	mount_fs("debugfs", "/sys/kernel/debug", "debugfs");
	mount_fs("tmpfs", "/tmp", "tmpfs");

	results = fopen(RESULTS_PORT, "w");
	if (!results) {
		results = stderr;
		init_error("open %s: %s", RESULTS_PORT, strerror(errno));
	}

	read_cmdline(cmdline, sizeof(cmdline));
	if (cmdline_param(cmdline, "vmtest.test", test, sizeof(test)) ||
	    strchr(test, '/'))
		init_error("no valid vmtest.test= on the command line");
	if (cmdline_param(cmdline, "vmtest.stage", stage_str, sizeof(stage_str)))
		strcpy(stage_str, "1");
	stage = atoi(stage_str);
	if (stage < 1)
		init_error("bad vmtest.stage=%s", stage_str);
	uname(&uts);

	report("KTAP version 1");
	report("# vmtest: test %s stage %d kernel %s uptime %.2f",
	       test, stage, uts.release, boot_seconds());

	snprintf(path, sizeof(path), "/tests/%s", test);
	if (pipe(pipefd))
		init_error("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		init_error("fork: %s", strerror(errno));
	if (!pid) {
		char *const argv[] = { path, stage_str, NULL };
		char *const envp[] = { "PATH=/bin:/tests", "HOME=/tmp", NULL };

		dup2(pipefd[1], STDOUT_FILENO);
		close(pipefd[0]);
		close(pipefd[1]);
		execve(path, argv, envp);
		printf("# vmtest: exec %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	close(pipefd[1]);

	held = forward_output(pipefd[0]);
	if (held) {
		report("# vmtest: end stage %d hold", stage);
		kexec_next(cmdline, stage + 1);
	}

	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			init_error("waitpid: %s", strerror(errno));
	}
	if (WIFEXITED(status))
		report("# vmtest: end stage %d exit %d", stage, WEXITSTATUS(status));
	else
		report("# vmtest: end stage %d signal %d", stage, WTERMSIG(status));
	report("# vmtest: done");
	power_off();
}
