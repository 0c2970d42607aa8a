// SPDX-License-Identifier: GPL-2.0-only
/*
 * KVM_LINK_GUEST_MEMFD: bind a persistent guest_memfd to another VM.
 */

/**
 * DOC: Linking a persistent guest_memfd into a VM
 *
 * A guest_memfd file is one VM's view of its inode, which holds the memory.
 * KVM_LINK_GUEST_MEMFD opens a new view of the inode of a persistent
 * guest_memfd for the calling VM and returns it as a new file descriptor:
 * that is how a VM adopts guest memory retrieved after a live update (the
 * retrieved file is bound to no VM), or shares it with another VM of the
 * same type.
 *
 * The memory's contents and attributes are kept: private memory stays
 * private, so the VM type must be the one the file was created for, and
 * the flags of the file must be ones the VM supports. KVM does not carry
 * memory attributes over; the VMM sets them again with
 * KVM_SET_MEMORY_ATTRIBUTES.
 */

#include <linux/file.h>
#include <linux/kvm_host.h>

#include "persist.h"
#include "../guest_memfd.h"

/**
 * kvm_gmem_link - open a persistent guest_memfd for a VM
 * @kvm:  the VM
 * @args: the KVM_LINK_GUEST_MEMFD arguments
 *
 * Return: the new file descriptor; -EBADF if @args->fd is not open;
 * -EINVAL for non-zero flags or reserved fields, a file that is not a
 * persistent guest_memfd, or one created for another VM type.
 */
int kvm_gmem_link(struct kvm *kvm, struct kvm_link_guest_memfd *args)
{
	struct kvm_gmem_persist *p;
	struct inode *inode;
	struct file *file;
	int fd;

	if (args->flags || !mem_is_zero(args->reserved, sizeof(args->reserved)))
		return -EINVAL;

	CLASS(fd, src)(args->fd);
	if (fd_empty(src))
		return -EBADF;

	inode = kvm_gmem_file_inode(fd_file(src));
	if (!inode)
		return -EINVAL;
	p = GMEM_I(inode)->persist;
	if (!p || p->vm_type != kvm_gmem_vm_type(kvm) ||
	    (GMEM_I(inode)->flags & ~kvm_gmem_get_supported_flags(kvm)))
		return -EINVAL;

	fd = get_unused_fd_flags(0);
	if (fd < 0)
		return fd;

	ihold(inode);
	file = kvm_gmem_file_create(kvm, inode);
	if (IS_ERR(file)) {
		iput(inode);
		put_unused_fd(fd);
		return PTR_ERR(file);
	}

	fd_install(fd, file);
	return fd;
}
