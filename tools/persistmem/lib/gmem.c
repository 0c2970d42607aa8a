// SPDX-License-Identifier: GPL-2.0
/*
 * libpersistmem: persistent guest_memfd creation and linking.
 */
#include <errno.h>
#include <sys/ioctl.h>

#include "persistmem.h"

int pm_gmem_create(int vm, const struct pm_gmem_spec *spec)
{
	struct kvm_create_guest_memfd args = {
		.size = spec->size,
		.flags = GUEST_MEMFD_FLAG_PERSIST,
		.granule_size = spec->granule,
	};
	int fd;

	if (spec->granule != 4096 && spec->granule != 2ull << 20 &&
	    spec->granule != 1ull << 30)
		return -EINVAL;
	if (!spec->size || spec->size % spec->granule)
		return -EINVAL;
	if (spec->mmap)
		args.flags |= GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;
	if (spec->no_direct_map)
		args.persist_flags |= GUEST_MEMFD_PERSIST_NO_DIRECT_MAP;
	if (spec->hvo)
		args.persist_flags |= GUEST_MEMFD_PERSIST_HVO;
	fd = ioctl(vm, KVM_CREATE_GUEST_MEMFD, &args);
	return fd < 0 ? -errno : fd;
}

int pm_gmem_link(int vm, int fd)
{
	struct kvm_link_guest_memfd args = { .fd = fd };
	int ret;

	if (fd < 0)
		return -EBADF;
	ret = ioctl(vm, KVM_LINK_GUEST_MEMFD, &args);
	return ret < 0 ? -errno : ret;
}
