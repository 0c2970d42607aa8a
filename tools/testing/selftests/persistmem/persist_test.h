/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Client side of the persist_alloc test consumer
 * (/sys/kernel/debug/persist_alloc/test, mm/persist_alloc/test.c) and of
 * the allocator's sysfs, for the persist_alloc vmtests. Failures to reach
 * these files end the stage with vt_fatal().
 */
#ifndef _PERSISTMEM_PERSIST_TEST_H
#define _PERSISTMEM_PERSIST_TEST_H

#include <stdbool.h>
#include <stdint.h>

#include "vmtest.h"

#define PT_TEST_FILE	"/sys/kernel/debug/persist_alloc/test"
#define PT_ALLOCATIONS	"/sys/kernel/debug/persist_alloc/allocations"
#define PT_GIB		(1024ull * 1024 * 1024)
#define PT_MIB		(1024ull * 1024)

/* PERSIST_ALLOC_* attribute bits, as the test consumer takes them. */
#define PT_NO_DIRECT_MAP	1
#define PT_HVO			2
#define PT_ZERO			4

#define PT_MAX_SLOTS	64

/* One line of the consumer's slot list. */
struct pt_slot {
	unsigned int slot, order;
	unsigned long pfn, flags;
	int nid, present_first, present_last;
};

/* Open the test consumer. */
int pt_open(void);
/* Write one command; 0 or -errno. */
__printf(2, 3) int pt_cmd(int fd, const char *fmt, ...);
/* The slots in use, at most @max; returns how many. */
int pt_slots(int fd, struct pt_slot *s, int max);
/* Physical address of the folio in @slot. */
unsigned long long pt_slot_phys(int fd, unsigned int slot);
/* /sys/kernel/mm/persist_alloc/node<nid>/<name> */
unsigned long long pt_node_stat(int nid, const char *name);
long pt_received_bytes(uint64_t owner, unsigned long *granules);
/*
 * Extents of @order on node @nid in state @state ("pending", "claimed",
 * ...), from debugfs allocations: their physical addresses in @phys (at
 * most @max, @phys may be NULL); returns how many there are.
 */
int pt_extents(int nid, unsigned int order, const char *state, unsigned long long *phys,
	       int max);
int pt_node_write(int nid, const char *name, const char *val);

#define PT_CHECK_ZERO	1	/* the folio must read as zero */
#define PT_FILL		2	/* write the pattern of @seed */
#define PT_CHECK	4	/* the pattern of @seed must be there */
#define PT_SAMPLE	8	/* fill and check 64 bytes of each page only */
/*
 * Map @slot and apply @ops in that order, to every byte of the folio,
 * whatever its size. Mismatches are
 * reported as diagnostics; returns whether everything matched.
 */
bool pt_pattern(int fd, unsigned int slot, unsigned int order, uint64_t seed, int ops);
/*
 * Words of the physical range [@phys, @phys + @nr_pages pages) that still
 * hold the pattern of @seed, whoever owns the range now; or -errno.
 */
long long pt_residue(int fd, unsigned long long phys, unsigned long nr_pages, uint64_t seed);
/* Whether the 4 KiB page at @phys is held in quarantine (a failed page). */
bool pt_is_quarantined(unsigned long long phys);

#define PT_KPF_HEAD	0x8000ull	/* KPF_COMPOUND_HEAD, bit 15 */
#define PT_KPF_TAIL	0x10000ull	/* KPF_COMPOUND_TAIL, bit 16 */
/* The flags /proc/kpageflags has for the page at @phys, or 0. */
unsigned long long pt_page_flags(unsigned long long phys);
/*
 * Whether the folio of @order at @phys reads as one: a compound head, and
 * tails after it, one deep in the shared vmemmap of an HVO folio and the
 * last (its struct pages were not written as single pages).
 */
bool pt_looks_like_folio(unsigned long long phys, unsigned int order);
/*
 * A kexec (vt_kexec_cancelled()) whose live update the test consumer makes
 * fail in its freeze, after persist_alloc froze, with ECANCELED; @what
 * names the stage in the test point. Returns whether it failed so.
 */
bool pt_cancelled_kexec(int fd, const char *escaped, const char *what);

#endif /* _PERSISTMEM_PERSIST_TEST_H */
