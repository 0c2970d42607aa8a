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
 * retrieved file is bound to no VM).
 *
 * The memory has one owner: at most one live VM holds a file of the inode
 * at any time, so that a guest's private memory is reachable by that
 * guest only. A link while a file of the inode is bound to a VM, the
 * calling one included, fails with -EBUSY. KVM_LINK_GUEST_MEMFD_MOVE, for a
 * VMM that hands a running guest's memory to a new VM without a kexec,
 * first takes the given file, the one bound to the owner, away from its VM
 * and its holders (see kvm_gmem_file_revoke(): the VM's next access to the
 * memory is a memory fault exit, and the file can no longer map, allocate,
 * punch, preserve or link it), then binds the new file. A move of a file
 * bound to no VM is a plain link. Memory that may be pinned (io_uring fixed
 * buffers, vhost, VFIO pin through a host mapping of shared memory) is not
 * moved: the pins would keep the old VMM's access to memory the new VM can
 * make private. The VMM drops them first.
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
 * -EINVAL for unknown flags or non-zero reserved fields, a file that is not
 * a persistent guest_memfd, or one created for another VM type; -EPERM
 * for a file whose memory was moved away; -EBUSY if a VM holds a file of
 * the memory (for a move: one other than @args->fd, or the calling VM
 * itself) or, for a move, if the memory may be pinned. Nothing changes on
 * failure, except for a move whose memory the old VMM pinned while it
 * ran: the source file has then lost the memory already.
 */
int kvm_gmem_link(struct kvm *kvm, struct kvm_link_guest_memfd *args)
{
	/* Links of any memory, one at a time: checking and binding are one step. */
	static DEFINE_MUTEX(link_lock);
	bool move = args->flags & KVM_LINK_GUEST_MEMFD_MOVE;
	struct kvm_gmem_persist *p;
	struct inode *inode;
	struct kvm *owner;
	struct file *file;
	int fd;

	if ((args->flags & ~KVM_LINK_GUEST_MEMFD_MOVE) ||
	    !mem_is_zero(args->reserved, sizeof(args->reserved)))
		return -EINVAL;

	CLASS(fd, src)(args->fd);
	if (fd_empty(src))
		return -EBADF;

	inode = kvm_gmem_file_inode(fd_file(src));
	if (!inode)
		return -EINVAL;
	p = kvm_gmem_persist(inode);
	if (!p || p->vm_type != kvm_gmem_vm_type(kvm) ||
	    (GMEM_I(inode)->flags & ~kvm_gmem_get_supported_flags(kvm)))
		return -EINVAL;

	if (kvm_gmem_file_revoked(fd_file(src)))
		return -EPERM;

	fd = get_unused_fd_flags(0);
	if (fd < 0)
		return fd;

	guard(mutex)(&link_lock);
	/*
	 * Only a move takes memory from a VM, and only through the file that
	 * VM holds: every file bound to a VM was made by a create or a link,
	 * so a bound source is the one bound file of its memory.
	 */
	owner = kvm_gmem_file_vm(fd_file(src));
	if (owner == kvm || (!(move && owner) && kvm_gmem_inode_bound(inode)) ||
	    (move && owner && kvm_gmem_persist_pinned(inode))) {
		put_unused_fd(fd);
		return -EBUSY;
	}

	ihold(inode);
	file = kvm_gmem_file_create(kvm, inode);
	if (IS_ERR(file)) {
		iput(inode);
		put_unused_fd(fd);
		return PTR_ERR(file);
	}
	/* The new file has no fd yet: its VM reaches nothing before the revoke. */
	if (move && owner) {
		kvm_gmem_file_revoke(fd_file(src));
		/*
		 * Pins come through host mappings, which the revoke zapped and
		 * which fault no more, or through the file, which pins under
		 * the invalidate lock and checks the revoke first: a pin not
		 * seen now will not come.
		 */
		if (kvm_gmem_persist_pinned(inode)) {
			fput(file);
			put_unused_fd(fd);
			return -EBUSY;
		}
	}
	fd_install(fd, file);
	return fd;
}
