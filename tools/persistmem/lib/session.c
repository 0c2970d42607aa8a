// SPDX-License-Identifier: GPL-2.0
/*
 * libpersistmem: LUO sessions, through /dev/liveupdate.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/liveupdate.h>

#include "persistmem.h"

#define PM_LUO_DEV	"/dev/liveupdate"

/*
 * One ioctl on /dev/liveupdate, which one process at a time may hold.
 * Create and retrieve take the same structure layout.
 */
static int luo_session(unsigned long cmd, const char *name)
{
	struct liveupdate_ioctl_create_session args = { .size = sizeof(args) };
	int dev, ret;

	if (!name || !*name || strlen(name) >= sizeof(args.name))
		return -EINVAL;
	memcpy(args.name, name, strlen(name));
	dev = open(PM_LUO_DEV, O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return -errno;
	ret = ioctl(dev, cmd, &args) ? -errno : args.fd;
	close(dev);
	return ret;
}

int pm_session_create(const char *name)
{
	return luo_session(LIVEUPDATE_IOCTL_CREATE_SESSION, name);
}

int pm_session_retrieve(const char *name)
{
	return luo_session(LIVEUPDATE_IOCTL_RETRIEVE_SESSION, name);
}

int pm_session_preserve(int session, int fd, uint64_t token)
{
	struct liveupdate_session_preserve_fd args = {
		.size = sizeof(args),
		.fd = fd,
		.token = token,
	};

	return ioctl(session, LIVEUPDATE_SESSION_PRESERVE_FD, &args) ? -errno : 0;
}

int pm_session_retrieve_fd(int session, uint64_t token)
{
	struct liveupdate_session_retrieve_fd args = {
		.size = sizeof(args),
		.token = token,
	};

	return ioctl(session, LIVEUPDATE_SESSION_RETRIEVE_FD, &args) ? -errno : args.fd;
}

int pm_session_finish(int session)
{
	struct liveupdate_session_finish args = { .size = sizeof(args) };

	return ioctl(session, LIVEUPDATE_SESSION_FINISH, &args) ? -errno : 0;
}
