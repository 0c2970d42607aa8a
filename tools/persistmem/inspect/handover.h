/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pm-inspect: what a KHO handover holds, read from debugfs.
 */
#ifndef PM_INSPECT_HANDOVER_H
#define PM_INSPECT_HANDOVER_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <linux/bits.h>
#include <linux/compiler.h>
#include <linux/kernel.h>
#include <linux/types.h>

/*
 * The ABI versions this inspector decodes. A blob of any other version is
 * refused by name and not decoded. The layouts below mirror, field for
 * field, include/linux/kho/abi/{kexec_handover,persist_alloc,
 * guest_memfd_persist,luo}.h of the same kernel tree.
 */
#define KHO_COMPATIBLE		"kho-v4"
#define KHO_PROP_DATA		"preserved-data"
#define KHO_PROP_SIZE		"blob-size"
#define PA_NAME			"persist-alloc"
#define PA_COMPATIBLE		"persist-alloc-v4"
#define PA_RANGES_NAME		"persist-alloc-ranges"
#define PA_RANGES_MAGIC		0x7065727369737431ULL
#define PA_SER_NO_DIRECT_MAP	BIT(0)
#define PA_SER_HVO		BIT(1)
#define PA_SER_HWPOISON		BIT(2)
#define PA_BLOCK_SER_HVO_1G	BIT(0)
#define PA_BLOCK_SER_HVO_FREE	BIT(1)
#define LUO_NAME		"LUO"
#define LUO_COMPATIBLE		"luo-v5"
#define GMEM_COMPATIBLE		"guest-memfd-persist-v3"
#define GMEM_OWNER(phys)	(0x676d656d00000000ULL ^ (__u64)(phys))

struct pa_ser {			/* struct persist_alloc_ser */
	char compatible[32];
	__u64 nr_blocks;
	__u64 nr_extents;
	__u64 extents_phys;	/* struct kho_vmalloc */
	__u32 extents_pages;
	__u16 extents_flags;
	__u16 extents_order;
} __packed;

struct pa_block_ser {		/* struct persist_alloc_block_ser */
	__u64 phys;
	__u32 nid;
	__u32 flags;
} __packed;

struct pa_extent_ser {		/* struct persist_alloc_extent_ser */
	__u64 phys;
	__u64 owner;
	__u32 nr;
	__u16 order;
	__u16 flags;
} __packed;

struct luo_ser_head {		/* struct luo_ser */
	char compatible[8];
	__u64 liveupdate_num;
	__u64 sessions_pa;
	__u64 flbs_pa;
} __packed;

static_assert(sizeof(struct pa_ser) == 64, "persist_alloc_ser");
static_assert(sizeof(struct pa_block_ser) == 16, "persist_alloc_block_ser");
static_assert(sizeof(struct pa_extent_ser) == 24, "persist_alloc_extent_ser");
static_assert(sizeof(struct luo_ser_head) == 32, "luo_ser");

/* One subtree of the KHO root FDT and its blob. */
struct subtree {
	char name[64];
	__u64 phys;
	__u64 size;		/* as the root FDT says */
	unsigned char *data;	/* the blob as debugfs shows it */
	size_t len;
	char decoded[160];	/* one line: what it is, or why it was not decoded */
	bool refused;		/* of a version this inspector does not know */
};

struct block {
	struct pa_block_ser ser;
	char verdict[96];
};

/*
 * A handed-over extent (in) or one that will be handed over (out). A
 * received run of granules is shown as its granules, each a run of one.
 */
struct extent {
	struct pa_extent_ser ser;
	unsigned long run;	/* in: the handover entry it came from */
	char verdict[96];	/* in: "adopted" or why not; out: "" */
	char now[16];		/* pending, restored, preserved, quarantined, freed */
};

struct lu_file {
	__u64 token;
	char compatible[64];
	__u64 data;
	char state[32];
	/* guest_memfd: the extents under its owner key */
	bool gmem;
	unsigned long nr_ext, nr_runs, nr_pending, nr_restored, nr_refused;
	__u64 bytes;
	unsigned int order;
};

struct session {
	char name[256];		/* as escaped by LUO, then unescaped */
	bool incoming;
	char state[16];
	unsigned long nr_files;
	struct lu_file *files;
	unsigned long nr_listed;
};

struct handover {
	bool out;		/* the outgoing side, before a kexec */
	char dir[256];		/* debugfs root */
	char kho_compatible[32];
	bool kho_refused;
	struct subtree *sub;
	unsigned long nr_sub;
	/* persist_alloc */
	bool pa_decoded, verdicts_tried;
	__u64 pa_nr_blocks, pa_nr_extents;	/* as the head counts them */
	struct block *blocks;
	unsigned long nr_blocks;
	struct extent *ext;
	unsigned long nr_ext;
	unsigned long nr_runs;			/* in: entries received */
	/* LUO */
	bool luo_decoded, sessions_read;
	__u64 liveupdate_num;
	struct session *sessions;
	unsigned long nr_sessions;
	char warn[8][160];
	unsigned int nr_warn;
};

int handover_read(struct handover *h);
void handover_free(struct handover *h);
const char *size_str(unsigned int order);
/* Bytes of an extent of @order; 0 for an order no extent may have. */
__u64 extent_bytes(__u32 order);

#endif
