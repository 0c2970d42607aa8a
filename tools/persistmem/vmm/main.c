// SPDX-License-Identifier: GPL-2.0
/*
 * pm-vmm: command line, guest memory and the control channel.
 *
 *   pm-vmm --name NAME --kernel BZIMAGE [--initrd FILE] [--cmdline STR]
 *          [--mem SIZE] [--vcpus N] [--backing gmem|memfd]
 *          [--granule 4K|2M|1G] [--hvo] [--prefault] [--testdev]
 *          [--control PATH]
 *   pm-vmm --resume NAME [--control PATH]
 *
 * The control channel (--control PATH, see control()) takes one command
 * per line and answers one line: "update" pauses the guest, saves its
 * state and preserves guest RAM and state in the LUO session NAME
 * ("ready ..." with the time each step took); "cancel" gives up a
 * prepared update and runs the guest on ("resumed"); "status" answers
 * "running" or "prepared"; "hold-io" arms the test device (testdev.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vmm.h"

void vmm_log(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	n = snprintf(buf, sizeof(buf), "pm-vmm: ");
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	/* nowhere else to say it if this fails */
	(void)!write(STDERR_FILENO, buf, n);
}

uint64_t vmm_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000ull + ts.tv_nsec / 1000;
}

uint64_t vmm_realtime_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000000ull + ts.tv_nsec / 1000;
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long n = strtoull(s, &end, 0);

	switch (*end) {
	case 'G':
	case 'g':
		n <<= 10;
		fallthrough;
	case 'M':
	case 'm':
		n <<= 10;
		fallthrough;
	case 'K':
	case 'k':
		n <<= 10;
		end++;
	}
	if (end == s || *end || !n)
		return -EINVAL;
	*out = n;
	return 0;
}

/* Memslot @id: @size bytes of the RAM file from @offset, at @gpa. */
static int add_slot(struct vmm *v, uint32_t id, uint64_t gpa, uint64_t offset,
		    uint64_t size)
{
	struct kvm_userspace_memory_region2 slot = {
		.slot = id,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)v->ram + offset,
	};

	if (v->backing == VMM_GMEM) {
		slot.flags = KVM_MEM_GUEST_MEMFD;
		slot.guest_memfd = v->ram_fd;
		slot.guest_memfd_offset = offset;
	}
	return ioctl(v->vm, KVM_SET_USER_MEMORY_REGION2, &slot) ? -errno : 0;
}

/* Map guest RAM and give it to the VM: below 3 GiB from GPA 0, the rest at 4 GiB. */
int vmm_map_ram(struct vmm *v)
{
	uint64_t low = vmm_low_ram(v);
	int ret;

	v->ram = mmap(NULL, v->ram_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      v->ram_fd, 0);
	if (v->ram == MAP_FAILED) {
		v->ram = NULL;
		return -errno;
	}
	madvise(v->ram, v->ram_size, MADV_HUGEPAGE);
	ret = add_slot(v, 0, 0, 0, low);
	if (!ret && v->ram_size > low)
		ret = add_slot(v, 1, VMM_HIGH_RAM, low, v->ram_size - low);
	return ret;
}

static int create_ram(struct vmm *v)
{
	if (v->backing == VMM_GMEM) {
		v->gmem.size = v->ram_size;
		v->gmem.mmap = true;
		v->ram_fd = pm_gmem_create(v->vm, &v->gmem);
		if (v->ram_fd < 0)
			return v->ram_fd;
	} else {
		v->ram_fd = memfd_create("pm-vmm-ram", MFD_CLOEXEC);
		if (v->ram_fd < 0 || ftruncate(v->ram_fd, v->ram_size))
			return -errno;
	}
	/* what a VMM that must not fail later on memory does */
	if (v->prefault &&
	    fallocate(v->ram_fd, FALLOC_FL_KEEP_SIZE, 0, v->ram_size))
		return -errno;
	return vmm_map_ram(v);
}

/*
 * The control channel is a pair of FIFOs (the host needs no networking):
 * commands, one line each, come in at PATH; each answer, one line, goes to
 * PATH.reply, which the client opens for reading before it writes.
 */
static void control(struct vmm *v, int cfd, const char *path)
{
	char cmd[64], msg[512], reply_path[256];
	ssize_t n;
	int rfd;

	n = read(cfd, cmd, sizeof(cmd) - 1);
	if (n <= 0)
		return;
	cmd[n] = 0;
	cmd[strcspn(cmd, "\r\n")] = 0;
	if (!strcmp(cmd, "update"))
		vmm_prepare_update(v, msg, sizeof(msg));
	else if (!strcmp(cmd, "cancel"))
		vmm_cancel_update(v, msg, sizeof(msg));
	else if (!strcmp(cmd, "hold-io"))
		testdev_arm(v, msg, sizeof(msg));
	else if (!strcmp(cmd, "status"))
		snprintf(msg, sizeof(msg), "%s", v->session >= 0 ? "prepared" : "running");
	else
		snprintf(msg, sizeof(msg), "error: unknown command '%s'", cmd);
	vmm_log("%s: %s: %s", __func__, cmd, msg);
	strcat(msg, "\n");
	snprintf(reply_path, sizeof(reply_path), "%s.reply", path);
	rfd = open(reply_path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (rfd < 0 || write(rfd, msg, strlen(msg)) < 0)
		vmm_log("%s: %s: nobody reads the answer", __func__, reply_path);
	if (rfd >= 0)
		close(rfd);
}

static int open_control(const char *path)
{
	char reply[256];
	int fd;

	if (snprintf(reply, sizeof(reply), "%s.reply", path) >= (int)sizeof(reply))
		return -ENAMETOOLONG;
	unlink(path);
	unlink(reply);
	if (mkfifo(path, 0600) || mkfifo(reply, 0600))
		return -errno;
	/* read-write: the FIFO never reports end of file between clients */
	fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static void usage(void)
{
	fprintf(stderr,
		"Usage: pm-vmm --name NAME --kernel BZIMAGE [--initrd FILE] [--cmdline STR]\n"
		"              [--mem SIZE] [--vcpus N] [--backing gmem|memfd]\n"
		"              [--granule 4K|2M|1G] [--hvo] [--prefault] [--testdev]\n"
		"              [--control PATH]\n"
		"       pm-vmm --resume NAME [--control PATH]\n");
	exit(VMM_EUSAGE);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },
		{ "cmdline", required_argument, NULL, 'c' },
		{ "mem", required_argument, NULL, 'm' },
		{ "vcpus", required_argument, NULL, 'v' },
		{ "backing", required_argument, NULL, 'b' },
		{ "granule", required_argument, NULL, 'g' },
		{ "hvo", no_argument, NULL, 'H' },
		{ "prefault", no_argument, NULL, 'P' },
		{ "testdev", no_argument, NULL, 'T' },
		{ "control", required_argument, NULL, 's' },
		{ "resume", required_argument, NULL, 'r' },
		{ }
	};
	static struct vmm vmm = {
		.nr_vcpus = 2, .ram_size = 1ull << 30, .backing = VMM_GMEM,
		.gmem.granule = 2ull << 20, .session = -1, .state_fd = -1,
		.ram_fd = -1,
		.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER,
	};
	const char *kernel = NULL, *initrd = NULL, *ctl = NULL, *resume = NULL;
	const char *cmdline = "console=ttyS0 panic=-1 quiet";
	struct vmm *v = &vmm;
	int opt, ret, lfd = -1;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			v->name = optarg;
			break;
		case 'k':
			kernel = optarg;
			break;
		case 'i':
			initrd = optarg;
			break;
		case 'c':
			cmdline = optarg;
			break;
		case 's':
			ctl = optarg;
			break;
		case 'r':
			resume = optarg;
			break;
		case 'H':
			v->gmem.hvo = true;
			break;
		case 'P':
			v->prefault = true;
			break;
		case 'T':
			v->testdev.on = true;
			break;
		case 'm':
			if (parse_size(optarg, &v->ram_size) || v->ram_size > VMM_MAX_RAM ||
			    v->ram_size < 64 << 20) {
				vmm_log("--mem %s: 64M to 64G", optarg);
				return VMM_EUSAGE;
			}
			break;
		case 'v':
			v->nr_vcpus = atoi(optarg);
			if (v->nr_vcpus < 1 || v->nr_vcpus > VMM_MAX_VCPUS) {
				vmm_log("--vcpus %s: 1 to %d", optarg, VMM_MAX_VCPUS);
				return VMM_EUSAGE;
			}
			break;
		case 'b':
			if (!strcmp(optarg, "gmem"))
				v->backing = VMM_GMEM;
			else if (!strcmp(optarg, "memfd"))
				v->backing = VMM_MEMFD;
			else
				usage();
			break;
		case 'g':
			if (parse_size(optarg, &v->gmem.granule) ||
			    (v->gmem.granule != 4096 && v->gmem.granule != 2ull << 20 &&
			     v->gmem.granule != 1ull << 30)) {
				vmm_log("--granule %s: 4K, 2M or 1G", optarg);
				return VMM_EUSAGE;
			}
			break;
		default:
			usage();
		}
	}
	if (optind != argc || (!resume && (!v->name || !kernel)) ||
	    (resume && (v->name || kernel)))
		usage();
	if (v->name && strlen(v->name) >= 64) {
		vmm_log("--name: at most 63 characters");
		return VMM_EUSAGE;
	}
	if (!resume && v->ram_size % v->gmem.granule) {
		vmm_log("--mem must be a multiple of the granule");
		return VMM_EUSAGE;
	}

	v->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (v->kvm < 0) {
		vmm_log("/dev/kvm: %m");
		return VMM_EKVM;
	}
	if (resume) {
		v->name = resume;
		ret = vmm_resume_from(v);
		if (ret)
			return ret;
	} else {
		ret = vmm_create_vm(v);
		if (!ret)
			ret = vmm_create_vcpus(v, true);
		if (ret) {
			vmm_log("creating the VM: %s", strerror(-ret));
			return VMM_EKVM;
		}
		ret = create_ram(v);
		if (ret) {
			vmm_log("guest RAM (%s, %llu MiB): %s",
				v->backing == VMM_GMEM ? "persistent guest_memfd" : "memfd",
				(unsigned long long)(v->ram_size >> 20), strerror(-ret));
			return VMM_EMEM;
		}
		if (vmm_load_guest(v, kernel, initrd, cmdline))
			return VMM_EBOOT;
		vmm_log("%s: %u vCPUs, %llu MiB of %s, started", v->name, v->nr_vcpus,
			(unsigned long long)(v->ram_size >> 20),
			v->backing == VMM_GMEM ? "persistent guest_memfd" : "memfd");
	}
	if (ctl) {
		lfd = open_control(ctl);
		if (lfd < 0) {
			vmm_log("--control %s: %s", ctl, strerror(-lfd));
			return VMM_EUSAGE;
		}
	}
	ret = vmm_start_vcpus(v);
	if (ret) {
		vmm_log("vCPU threads: %s", strerror(-ret));
		return VMM_EKVM;
	}
	for (;;) {
		struct pollfd pfd = { .fd = lfd, .events = POLLIN };

		pthread_mutex_lock(&v->lock);
		if (v->quit) {
			pthread_mutex_unlock(&v->lock);
			break;
		}
		pthread_mutex_unlock(&v->lock);
		if (poll(&pfd, lfd >= 0, 200) > 0)
			control(v, lfd, ctl);
	}
	for (unsigned int i = 0; i < v->nr_vcpus; i++)
		pthread_join(v->vcpus[i].thread, NULL);
	if (ctl) {
		char reply[256];

		snprintf(reply, sizeof(reply), "%s.reply", ctl);
		unlink(ctl);
		unlink(reply);
	}
	return v->exit_code;
}
