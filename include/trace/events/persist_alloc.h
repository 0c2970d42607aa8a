/* SPDX-License-Identifier: GPL-2.0 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM persist_alloc

#if !defined(_TRACE_PERSIST_ALLOC_H) || defined(TRACE_HEADER_MULTI_READ)
#define _TRACE_PERSIST_ALLOC_H

#include <linux/tracepoint.h>

DECLARE_EVENT_CLASS(persist_alloc_extent,
		    TP_PROTO(unsigned long pfn, unsigned int order, int nid,
			     unsigned long flags, u64 owner),
		    TP_ARGS(pfn, order, nid, flags, owner),
		    TP_STRUCT__entry(__field(unsigned long, pfn)
				     __field(unsigned int, order)
				     __field(int, nid)
				     __field(unsigned long, flags)
				     __field(u64, owner)),
		    TP_fast_assign(__entry->pfn = pfn;
				   __entry->order = order;
				   __entry->nid = nid;
				   __entry->flags = flags;
				   __entry->owner = owner;),
		    TP_printk("pfn=%#lx order=%u nid=%d flags=%#lx owner=%llu",
			      __entry->pfn, __entry->order, __entry->nid, __entry->flags,
			      __entry->owner));

DEFINE_EVENT(persist_alloc_extent, persist_alloc,
	     TP_PROTO(unsigned long pfn, unsigned int order, int nid,
		      unsigned long flags, u64 owner),
	     TP_ARGS(pfn, order, nid, flags, owner));

DEFINE_EVENT(persist_alloc_extent, persist_free,
	     TP_PROTO(unsigned long pfn, unsigned int order, int nid,
		      unsigned long flags, u64 owner),
	     TP_ARGS(pfn, order, nid, flags, owner));

DEFINE_EVENT(persist_alloc_extent, persist_preserve,
	     TP_PROTO(unsigned long pfn, unsigned int order, int nid,
		      unsigned long flags, u64 owner),
	     TP_ARGS(pfn, order, nid, flags, owner));

DEFINE_EVENT(persist_alloc_extent, persist_restore,
	     TP_PROTO(unsigned long pfn, unsigned int order, int nid,
		      unsigned long flags, u64 owner),
	     TP_ARGS(pfn, order, nid, flags, owner));

#endif /* _TRACE_PERSIST_ALLOC_H */

/* This part must be outside protection */
#include <trace/define_trace.h>
