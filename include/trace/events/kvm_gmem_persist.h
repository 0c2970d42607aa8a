/* SPDX-License-Identifier: GPL-2.0 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM kvm_gmem_persist

#if !defined(_TRACE_KVM_GMEM_PERSIST_H) || defined(TRACE_HEADER_MULTI_READ)
#define _TRACE_KVM_GMEM_PERSIST_H

#include <linux/tracepoint.h>

/*
 * One persistent guest_memfd handed over: its size, granule order, number
 * of runs of granules, bytes of its own handover records (its description
 * and runs; persist_alloc's entries are in persist_alloc's handover) and
 * the time the step took.
 */
DECLARE_EVENT_CLASS(kvm_gmem_persist_file,
		    TP_PROTO(u64 size, unsigned int order, u64 nr_extents,
			     u64 meta_bytes, u64 ns),
		    TP_ARGS(size, order, nr_extents, meta_bytes, ns),
		    TP_STRUCT__entry(__field(u64, size)
				     __field(unsigned int, order)
				     __field(u64, nr_extents)
				     __field(u64, meta_bytes)
				     __field(u64, ns)),
		    TP_fast_assign(__entry->size = size;
				   __entry->order = order;
				   __entry->nr_extents = nr_extents;
				   __entry->meta_bytes = meta_bytes;
				   __entry->ns = ns;),
		    TP_printk("size=%llu order=%u nr_extents=%llu meta_bytes=%llu ns=%llu",
			      __entry->size, __entry->order, __entry->nr_extents,
			      __entry->meta_bytes, __entry->ns));

DEFINE_EVENT(kvm_gmem_persist_file, kvm_gmem_persist_freeze,
	     TP_PROTO(u64 size, unsigned int order, u64 nr_extents,
		      u64 meta_bytes, u64 ns),
	     TP_ARGS(size, order, nr_extents, meta_bytes, ns));

DEFINE_EVENT(kvm_gmem_persist_file, kvm_gmem_persist_retrieve,
	     TP_PROTO(u64 size, unsigned int order, u64 nr_extents,
		      u64 meta_bytes, u64 ns),
	     TP_ARGS(size, order, nr_extents, meta_bytes, ns));

#endif /* _TRACE_KVM_GMEM_PERSIST_H */

/* This part must be outside protection */
#include <trace/define_trace.h>
